//! Scheduled jobs of the engine, one EventBridge schedule each (template.yaml
//! `HousekeepingFunction`). Business time is the event's own `time`, so a late or repeated
//! delivery does the same work; every job is idempotent.
//!
//! - the sweep of waiting sales (`engine::sales::sweep_waiting_sales`): sales still waiting for
//!   attribution whose customer has since been bound are booked (a bind that died after writing
//!   its binding is repaired whatever its client does).
//!
//! A failed run returns an error: Lambda retries the asynchronous invocation twice, then the
//! event goes to the function's dead-letter queue (`HousekeepingDeadLetterQueue`), where an
//! operator can list and replay it.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Serialize;
use tracking::KeyRing;

/// Environment variable of the tracking key (the engine verifies click ids with it; the sweep
/// itself does not need it, but the engine is the same everywhere).
pub const TRACKING_KEY_ENV: &str = "TRACKING_KEY";
/// Environment variable of the outbox queue (messages of sales the sweep books).
pub const OUTBOX_QUEUE_URL_ENV: &str = "OUTBOX_QUEUE_URL";

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("missing configuration {0}")]
    Missing(&'static str),
    #[error("invalid configuration {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] storage::StoreError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
}

/// What a run did (the function's result, visible in the invocation record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunReport {
    /// The schedule's business time, epoch ms.
    pub at_ms: i64,
    pub waiting_sales: usize,
    pub bound_customers: usize,
    pub commissions_booked: Vec<String>,
}

/// The engine, from the environment (`TRACKING_KEY`, `TABLE_NAME`, optional
/// `OUTBOX_QUEUE_URL`); built once per process.
pub async fn production_engine() -> Result<engine::Engine, JobError> {
    let get = |k: &'static str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let key = get(TRACKING_KEY_ENV).ok_or(JobError::Missing(TRACKING_KEY_ENV))?;
    let keys = KeyRing::from_secrets(&key, None).map_err(|e| JobError::Invalid {
        name: TRACKING_KEY_ENV,
        reason: e.to_string(),
    })?;
    let aws = storage::table::aws_config().await;
    let table = storage::Table::from_env(&aws)?;
    let engine = engine::Engine::new(table, keys).with_program_cache(engine::PROGRAM_CACHE_TTL);
    Ok(match get(OUTBOX_QUEUE_URL_ENV) {
        Some(url) => engine.with_outbox(aws_sdk_sqs::Client::new(&aws), url.trim()),
        None => engine,
    })
}

/// One scheduled run at the event's business time.
pub async fn handle(
    engine: &engine::Engine,
    event: EventBridgeEvent<serde_json::Value>,
) -> Result<RunReport, JobError> {
    let at_ms = event
        .time
        .map(|t| t.timestamp_millis())
        .ok_or(JobError::Invalid {
            name: "event.time",
            reason: "a scheduled event carries its time".into(),
        })?;
    let report = engine::sales::sweep_waiting_sales(engine, at_ms).await?;
    tracing::info!(
        at_ms,
        waiting = report.waiting,
        bound = report.bound_customers,
        booked = report.commission_ids.len(),
        "waiting sales swept"
    );
    Ok(RunReport {
        at_ms,
        waiting_sales: report.waiting,
        bound_customers: report.bound_customers,
        commissions_booked: report.commission_ids,
    })
}
