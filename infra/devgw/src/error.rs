//! devgw's errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DevgwError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Template { path: String, message: String },
    #[error("schedule expression {expression:?}: {message}")]
    Schedule { expression: String, message: String },
    #[error("no function named {0:?}")]
    UnknownFunction(String),
    #[error("function {name} is not available: {reason}")]
    Unavailable { name: String, reason: String },
    #[error("listening on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("starting {path}: {source}")]
    Spawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("SQS: {0}")]
    Sqs(String),
    #[error("{0}")]
    Usage(String),
    #[error("benchmark: {0}")]
    Bench(String),
}
