//! The operator command's library: program files, local setup and read-only views (the outbox's
//! unsent messages among them).

pub mod apply;
pub mod attention;
pub mod dead_letters;
pub mod mail;
pub mod outbox;
pub mod payouts;
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

/// The engine for an operator's command, with `keys`, sending outbox messages to the
/// consumers' queues of the environment (`EMAIL_QUEUE_URL`, `CRM_SYNC_QUEUE_URL`).
pub fn operator_engine(
    table: storage::Table,
    keys: tracking::KeyRing,
    aws: &aws_config::SdkConfig,
) -> engine::Engine {
    engine::Engine::new(table, keys).with_outbox(
        aws_sdk_sqs::Client::new(aws),
        storage::outbox::Routes::from_env(),
    )
}

/// Keys for operations that verify no click id (a manual assignment, a scheduled job): the
/// tracking key from `TRACKING_KEY` when set, else a stand-in that satisfies the engine.
pub fn operator_keys() -> Result<tracking::KeyRing, CliError> {
    let key = std::env::var("TRACKING_KEY")
        .ok()
        .filter(|k| !k.trim().is_empty())
        .unwrap_or_else(|| "operator-manual-assignment".into());
    tracking::KeyRing::from_secrets(&key, None).map_err(|e| CliError::Usage(e.to_string()))
}
