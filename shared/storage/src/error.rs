use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
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
    /// A DynamoDB request that failed for a reason a later attempt can fix: throttling, a 5xx,
    /// a timeout, the network.
    #[error("DynamoDB request failed: {0}")]
    Dynamo(#[source] BoxError),
    /// A DynamoDB request refused for a reason no retry fixes: validation, access denied, a
    /// missing table, a malformed request (`code` is DynamoDB's error code).
    #[error("DynamoDB refused the request ({code}): {source}")]
    DynamoRejected {
        code: String,
        #[source]
        source: BoxError,
    },
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
    /// A request the SDK refused to build (a missing required field): a programming error.
    pub(crate) fn request_build(e: aws_sdk_dynamodb::error::BuildError) -> Self {
        StoreError::InvalidTransaction(format!("request not built: {e}"))
    }

    /// A failed conditional write: `ConditionFailed { label }` when its condition did not hold,
    /// else classified as [`StoreError::dynamo`] does.
    pub(crate) fn conditional<E>(e: SdkError<E, HttpResponse>, label: &str, failed: bool) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        if failed {
            StoreError::ConditionFailed {
                label: label.to_string(),
            }
        } else {
            StoreError::dynamo(e)
        }
    }

    /// Classify a failed SDK call ([`sdk_failure_is_transient`]).
    pub(crate) fn dynamo<E>(e: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        match sdk_failure_is_transient(&e) {
            Ok(()) => StoreError::Dynamo(Box::new(e)),
            Err(code) => StoreError::DynamoRejected {
                code,
                source: Box::new(e),
            },
        }
    }
}

/// Error codes of AWS services that a later attempt can succeed on (throttling, capacity,
/// contention, the service's own faults). Sources: the DynamoDB API reference "Common errors" and
/// "Error handling with DynamoDB" (which are retryable); SQS's throttling codes.
const TRANSIENT_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    "ExpiredTokenException",
    "KMSThrottlingException",
];

/// `Ok(())` when a failed AWS SDK call is worth retrying later (a timeout, a dispatch failure, an
/// unreadable response, HTTP 429 or 5xx, or a throttling / contention / internal error code);
/// otherwise `Err(code)` with the service's error code (validation, access, missing resource:
/// the same request fails the same way).
pub fn sdk_failure_is_transient<E: ProvideErrorMetadata>(
    e: &SdkError<E, HttpResponse>,
) -> Result<(), String> {
    match e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            Ok(())
        }
        SdkError::ConstructionFailure(_) => Err("ConstructionFailure".into()),
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status().as_u16();
            let code = ctx.err().code().unwrap_or("").to_string();
            if status == 429 || status >= 500 || TRANSIENT_CODES.contains(&code.as_str()) {
                Ok(())
            } else if code.is_empty() {
                Err(format!("HTTP {status}"))
            } else {
                Err(code)
            }
        }
        // Future variants: assume a retry may help (the once-only markers make it harmless).
        _ => Ok(()),
    }
}

impl From<serde_dynamo::Error> for StoreError {
    fn from(e: serde_dynamo::Error) -> Self {
        StoreError::Decode(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    fn service(status: u16, code: Option<&str>) -> SdkError<GetItemError, HttpResponse> {
        let mut meta = ErrorMetadata::builder().message("test");
        if let Some(c) = code {
            meta = meta.code(c);
        }
        let raw = HttpResponse::new(
            StatusCode::try_from(status).expect("status"),
            SdkBody::empty(),
        );
        SdkError::service_error(GetItemError::generic(meta.build()), raw)
    }

    #[test]
    fn only_transient_failures_are_retryable() {
        let cases: &[(u16, Option<&str>, bool)] = &[
            (400, Some("ThrottlingException"), true),
            (400, Some("ProvisionedThroughputExceededException"), true),
            (400, Some("RequestLimitExceeded"), true),
            (400, Some("TransactionConflictException"), true),
            (500, Some("InternalServerError"), true),
            (503, None, true),
            (429, None, true),
            (400, Some("ValidationException"), false),
            (400, Some("AccessDeniedException"), false),
            (400, Some("ResourceNotFoundException"), false),
            (400, Some("UnrecognizedClientException"), false),
            (400, Some("ItemCollectionSizeLimitExceededException"), false),
            (403, None, false),
        ];
        for &(status, code, retryable) in cases {
            let e = StoreError::dynamo(service(status, code));
            assert_eq!(e.is_retryable(), retryable, "{status} {code:?}: {e}");
            if !retryable {
                assert!(
                    matches!(&e, StoreError::DynamoRejected { code: c, .. } if !c.is_empty()),
                    "{e}"
                );
            }
        }
    }

    #[test]
    fn timeouts_and_network_failures_are_retryable() {
        let t: SdkError<GetItemError, HttpResponse> =
            SdkError::timeout_error(Box::new(std::io::Error::other("slow")));
        assert!(StoreError::dynamo(t).is_retryable());
        let c: SdkError<GetItemError, HttpResponse> =
            SdkError::construction_failure(Box::new(std::io::Error::other("bad input")));
        assert!(!StoreError::dynamo(c).is_retryable());
    }
}
