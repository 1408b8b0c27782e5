//! The operator command's library: program files, local setup and read-only views (the outbox's
//! unsent messages among them).

pub mod apply;
pub mod attention;
pub mod outbox;
pub mod setup;
pub mod show;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Store(#[from] storage::StoreError),
    #[error("AWS: {0}")]
    Aws(String),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
}
