//! Scheduled jobs of the engine. One binary, deployed as one Lambda function per job
//! (template.yaml: `HousekeepingFunction`, `ReleaseHoldsFunction`, `OutboxSweepFunction`), each
//! with its own EventBridge schedule, its own least-privilege policy and `JOB` naming the job.
//! The schedule's event is delivered unchanged, so its `time` is the business time of the run: a
//! late or repeated delivery does the same work, and every job is idempotent.
//!
//! | `JOB` | job | schedule |
//! |---|---|---|
//! | `waiting-sales` | sales still waiting for attribution whose customer has since been bound are booked ([`engine::sales::sweep_waiting_sales`]: a bind that died after writing its binding is repaired whatever its client does) | hourly |
//! | `release-holds` | pending commissions whose hold has ended at the event's time move to the available balance ([`engine::release::release_due`]; conditional writes: a second or concurrent run releases nothing twice) | hourly |
//! | `outbox-sweep` | outbox messages whose immediate send failed are delivered to their consumer's queue ([`storage::outbox::sweep`]; only kinds with a queue are read) | every 5 minutes |
//!
//! A failed run returns an error: Lambda retries the asynchronous invocation twice, then the
//! event goes to the functions' dead-letter queue (`HousekeepingDeadLetterQueue`), where an
//! operator can list and replay it.

use std::collections::BTreeMap;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::Serialize;
use tracking::KeyRing;

/// Environment variable of the tracking key (the engine verifies click ids with it; the jobs
/// themselves do not need it, but the engine is the same everywhere).
pub const TRACKING_KEY_ENV: &str = "TRACKING_KEY";
/// Environment variable naming the function's job ([`Job`]).
pub const JOB_ENV: &str = "JOB";

/// The job a function runs, from `JOB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Job {
    WaitingSales,
    ReleaseHolds,
    OutboxSweep,
}

impl Job {
    pub const ALL: [Job; 3] = [Job::WaitingSales, Job::ReleaseHolds, Job::OutboxSweep];

    pub fn as_str(self) -> &'static str {
        match self {
            Job::WaitingSales => "waiting-sales",
            Job::ReleaseHolds => "release-holds",
            Job::OutboxSweep => "outbox-sweep",
        }
    }

    /// The name of the job's schedule event in template.yaml (part of the rule's name, which
    /// the Scheduled Event carries in `resources`).
    pub fn schedule_event(self) -> &'static str {
        match self {
            Job::WaitingSales => "SweepWaitingSales",
            Job::ReleaseHolds => "ReleaseHolds",
            Job::OutboxSweep => "OutboxSweep",
        }
    }

    /// The job a Scheduled Event was for, from the rule in its `resources` (SAM names a rule
    /// `{stack}-{Function}{Event}-{suffix}`, devgw `{Function}{Event}`); `None` when no rule
    /// names one (an operator then says which job: `partnerctl dead-letters replay --job`).
    pub fn of_event(event: &EventBridgeEvent<serde_json::Value>) -> Option<Job> {
        let resources = event.resources.as_deref().unwrap_or_default();
        Job::ALL.into_iter().find(|j| {
            resources.iter().any(|arn| {
                arn.rsplit('/')
                    .next()
                    .unwrap_or("")
                    .contains(j.schedule_event())
            })
        })
    }

    pub fn parse(s: &str) -> Result<Job, JobError> {
        Job::ALL
            .into_iter()
            .find(|j| j.as_str() == s.trim())
            .ok_or_else(|| JobError::Invalid {
                name: JOB_ENV,
                reason: format!(
                    "{s:?} is not a job (one of: {})",
                    Job::ALL.map(Job::as_str).join(", ")
                ),
            })
    }
}

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
    #[error("outbox sweep: {0}")]
    Deliver(#[from] storage::outbox::DeliverError),
}

/// What a run did (the function's result, visible in the invocation record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "job", rename_all = "kebab-case")]
pub enum RunReport {
    WaitingSales {
        /// The schedule's business time, epoch ms.
        at_ms: i64,
        waiting_sales: usize,
        bound_customers: usize,
        commissions_booked: Vec<String>,
    },
    ReleaseHolds {
        at_ms: i64,
        /// Commissions this run released (a repeated run releases none).
        released: Vec<String>,
    },
    OutboxSweep {
        at_ms: i64,
        /// Messages sent per routed kind; kinds without a consumer queue are not read.
        sent: BTreeMap<String, usize>,
    },
}

/// The job (`JOB`) and the engine, from the environment (`TRACKING_KEY`, `TABLE_NAME`, and the
/// consumers' queue URLs of `storage::outbox::Routes::from_env`); built once per process.
pub async fn production() -> Result<(Job, engine::Engine), JobError> {
    let get = |k: &'static str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let job = Job::parse(&get(JOB_ENV).ok_or(JobError::Missing(JOB_ENV))?)?;
    let key = get(TRACKING_KEY_ENV).ok_or(JobError::Missing(TRACKING_KEY_ENV))?;
    let keys = KeyRing::from_secrets(&key, None).map_err(|e| JobError::Invalid {
        name: TRACKING_KEY_ENV,
        reason: e.to_string(),
    })?;
    let aws = storage::table::aws_config().await;
    let table = storage::Table::from_env(&aws)?;
    let engine = engine::Engine::new(table, keys)
        .with_program_cache(engine::PROGRAM_CACHE_TTL)
        .with_outbox(
            aws_sdk_sqs::Client::new(&aws),
            storage::outbox::Routes::from_env(),
        );
    Ok((job, engine))
}

/// One scheduled run of `job` at the event's business time.
pub async fn handle(
    engine: &engine::Engine,
    job: Job,
    event: EventBridgeEvent<serde_json::Value>,
) -> Result<RunReport, JobError> {
    let at_ms = event
        .time
        .map(|t| t.timestamp_millis())
        .ok_or(JobError::Invalid {
            name: "event.time",
            reason: "a scheduled event carries its time".into(),
        })?;
    match job {
        Job::WaitingSales => {
            let report = engine::sales::sweep_waiting_sales(engine, at_ms).await?;
            tracing::info!(
                at_ms,
                waiting = report.waiting,
                bound = report.bound_customers,
                booked = report.commission_ids.len(),
                "waiting sales swept"
            );
            Ok(RunReport::WaitingSales {
                at_ms,
                waiting_sales: report.waiting,
                bound_customers: report.bound_customers,
                commissions_booked: report.commission_ids,
            })
        }
        Job::ReleaseHolds => {
            let source = match &event.id {
                Some(id) => format!("schedule:{id}"),
                None => format!("schedule:release-holds@{at_ms}"),
            };
            let released = engine::release::release_due(engine, at_ms, &source).await?;
            tracing::info!(at_ms, released = released.len(), "holds released");
            Ok(RunReport::ReleaseHolds { at_ms, released })
        }
        Job::OutboxSweep => {
            let sent = match &engine.outbox {
                Some(t) => storage::outbox::sweep(&engine.table, &t.sqs, &t.routes).await?,
                None => {
                    tracing::info!(
                        "no consumer queue configured: every message stays in the outbox"
                    );
                    storage::outbox::SweepReport::new()
                }
            };
            tracing::info!(at_ms, sent = ?sent, "outbox swept");
            Ok(RunReport::OutboxSweep {
                at_ms,
                sent: sent
                    .into_iter()
                    .map(|(k, n)| (k.as_str().to_string(), n))
                    .collect(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_of_a_scheduled_event_is_named_by_its_rule() {
        let template = include_str!("../../../template.yaml");
        for j in Job::ALL {
            assert!(
                template.contains(&format!(
                    "        {}:\n          Type: Schedule",
                    j.schedule_event()
                )),
                "{}: no such schedule event in template.yaml",
                j.schedule_event()
            );
            assert!(template.contains(&format!("JOB: {}", j.as_str())), "{j:?}");
            for arn in [
                format!(
                    "arn:aws:events:eu-west-1:123456789012:rule/partner-engine-Fn{}-1A2B3C",
                    j.schedule_event()
                ),
                format!(
                    "arn:aws:events:us-east-1:123456789012:rule/HousekeepingFunction{}",
                    j.schedule_event()
                ),
            ] {
                let ev: EventBridgeEvent<serde_json::Value> =
                    serde_json::from_value(serde_json::json!({
                        "detail-type": "Scheduled Event", "source": "aws.events", "detail": {},
                        "resources": [arn], "time": "2026-06-05T12:00:00Z"
                    }))
                    .expect("event");
                assert_eq!(Job::of_event(&ev), Some(j));
            }
        }
        let none: EventBridgeEvent<serde_json::Value> = serde_json::from_value(serde_json::json!({
            "detail-type": "Scheduled Event", "source": "aws.events", "detail": {}, "resources": []
        }))
        .expect("event");
        assert_eq!(Job::of_event(&none), None);
    }

    #[test]
    fn jobs_by_name() {
        for j in Job::ALL {
            assert_eq!(Job::parse(j.as_str()).ok(), Some(j));
            assert_eq!(serde_json::to_value(j).ok(), Some(j.as_str().into()));
        }
        assert_eq!(Job::parse(" release-holds\n").ok(), Some(Job::ReleaseHolds));
        let err = Job::parse("payouts").unwrap_err().to_string();
        assert!(
            err.contains("waiting-sales, release-holds, outbox-sweep"),
            "{err}"
        );
    }
}
