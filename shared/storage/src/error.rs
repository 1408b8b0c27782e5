use thiserror::Error;

pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Storage errors. `AlreadyDone` is not a failure: it is how a duplicate write is reported.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The write's once-only marker already exists: a repeat of work already committed.
    #[error("already done")]
    AlreadyDone,
    /// A business condition of the write failed (e.g. a uniqueness or state check).
    #[error("condition failed on {label}")]
    ConditionFailed { label: String },
    /// A transaction was built that would break DynamoDB's rules; a programming error.
    #[error("invalid transaction: {0}")]
    InvalidTransaction(String),
    /// Contention that outlasted the retries (TransactionConflict, throttling).
    #[error("contention persisted after {attempts} attempts")]
    Contention { attempts: u32 },
    #[error("stored item is malformed: {0}")]
    Decode(String),
    #[error("DynamoDB request failed: {0}")]
    Dynamo(#[source] BoxError),
    #[error("configuration: {0}")]
    Config(String),
}

impl StoreError {
    /// True for `ConditionFailed` on the transaction action labelled `label` (the error's label
    /// is the action's label and its key).
    pub fn is_condition_failed_on(&self, label: &str) -> bool {
        match self {
            StoreError::ConditionFailed { label: l } => {
                l == label
                    || l.strip_prefix(label)
                        .is_some_and(|rest| rest.starts_with(' '))
            }
            _ => false,
        }
    }

    /// Worth retrying later (queue redelivery, HTTP 5xx to a retrying sender).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Contention { .. } | StoreError::Dynamo(_))
    }
    pub(crate) fn dynamo<E: std::error::Error + Send + Sync + 'static>(e: E) -> Self {
        StoreError::Dynamo(Box::new(e))
    }
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(e: serde_dynamo::Error) -> Self {
        StoreError::Decode(e.to_string())
    }
}
