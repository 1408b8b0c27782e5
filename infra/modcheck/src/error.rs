//! What can stop a check: a file that cannot be read or parsed, a module without a file.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: cannot parse: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: no file for `mod {module}` (looked for {looked_for})")]
    MissingModule {
        path: PathBuf,
        module: String,
        looked_for: String,
    },
}
