//! The payout run's three Lambda functions, one binary told apart by `JOB`
//! (template.yaml: `PayoutFunction`, `PayoutWorkerFunction`, `PayoutPollerFunction`):
//!
//! | `JOB` | trigger | does |
//! |---|---|---|
//! | `schedule` | EventBridge rule, daily at 00:15 UTC (every time zone is on its local payout date at one of these) | for every program due on its local date (catching up a missed day once), takes the run with a lease, releases the holds that ended by the event's `time`, and fans the payable balances out to the payout queue ([`engine::payout::run::start_due_runs`]) |
//! | `worker` | the payout queue (SQS, `ReportBatchItemFailures`) | works each chunk: writes each payout item with its reservation, approves, and hands the items an automatic rail carries to it in recorded batches ([`engine::payout::worker::work_chunk`]); the last chunk finishes the run |
//! | `poll` | EventBridge rule, every 15 minutes | hands over items an operator approved, then takes over every rail batch due for a status read (or whose worker died) and books what the rail says ([`engine::payout::handover::poll_due`]) |
//!
//! The event's `time` is the run's business time; the lease and the submit guard use the
//! injected clock. Both are idempotent: a repeated schedule joins the run or finds it done, a
//! redelivered chunk finds its items and goes on from where they are. A failed schedule run
//! returns an error (Lambda retries it twice, then `PayoutDeadLetterQueue` keeps the event); a
//! failed chunk is reported as a batch item failure, comes back after the queue's visibility
//! timeout, and after five receives waits in `PayoutDeadLetterQueue` for an operator
//! (`partnerctl dead-letters --queue-url …`).

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use engine::payout::handover::BatchReport;
use engine::payout::rail::Rails;
use engine::payout::run::RunStarted;
use engine::payout::{ChunkMessage, ChunkQueue, SqsChunkQueue};
use serde::Serialize;
use tracking::KeyRing;

pub mod rails_config;

/// Environment variable naming the function's job ([`Job`]).
pub const JOB_ENV: &str = "JOB";
/// Environment variable of the tracking key (the engine is the same everywhere).
pub const TRACKING_KEY_ENV: &str = "TRACKING_KEY";
/// Environment variable of the payout queue's URL (the schedule sends chunks to it).
pub const PAYOUT_QUEUE_URL_ENV: &str = "PAYOUT_QUEUE_URL";

/// The job a function runs, from `JOB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Job {
    Schedule,
    Worker,
    Poll,
}

impl Job {
    pub const ALL: [Job; 3] = [Job::Schedule, Job::Worker, Job::Poll];

    pub fn as_str(self) -> &'static str {
        match self {
            Job::Schedule => "schedule",
            Job::Worker => "worker",
            Job::Poll => "poll",
        }
    }

    pub fn parse(s: &str) -> Result<Job, PayoutFnError> {
        Job::ALL
            .into_iter()
            .find(|j| j.as_str() == s.trim())
            .ok_or_else(|| PayoutFnError::Invalid {
                name: JOB_ENV,
                reason: format!(
                    "{s:?} is not a job (one of: {})",
                    Job::ALL.map(Job::as_str).join(", ")
                ),
            })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PayoutFnError {
    #[error("missing configuration {0}")]
    Missing(&'static str),
    #[error("invalid configuration {name}: {reason}")]
    Invalid { name: &'static str, reason: String },
    #[error(transparent)]
    Store(#[from] storage::StoreError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error("SSM parameter {name}: {reason}")]
    Ssm { name: String, reason: String },
}

/// What the schedule did (the function's result, visible in the invocation record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleReport {
    /// The event's business time, epoch ms.
    pub at_ms: i64,
    /// One per program due at that time (none on other days).
    pub runs: Vec<RunStarted>,
}

/// What a function needs, built once per process.
pub struct Deps {
    pub job: Job,
    pub engine: engine::Engine,
    /// The payout queue (the schedule's; the worker does not send).
    pub queue: Option<SqsChunkQueue>,
    /// The automatic rails this deployment has credentials for (the worker's and the poller's).
    pub rails: Rails,
}

/// The job and its dependencies from the environment (`JOB`, `TRACKING_KEY`, `TABLE_NAME`, and
/// for the schedule `PAYOUT_QUEUE_URL`).
pub async fn production() -> Result<Deps, PayoutFnError> {
    let get = |k: &'static str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let job = Job::parse(&get(JOB_ENV).ok_or(PayoutFnError::Missing(JOB_ENV))?)?;
    let key = get(TRACKING_KEY_ENV).ok_or(PayoutFnError::Missing(TRACKING_KEY_ENV))?;
    let keys = KeyRing::from_secrets(&key, None).map_err(|e| PayoutFnError::Invalid {
        name: TRACKING_KEY_ENV,
        reason: e.to_string(),
    })?;
    let aws = storage::table::aws_config().await;
    let table = storage::Table::from_env(&aws)?;
    // Messages the worker writes (why a balance waits, forfeitures, payouts sent) go to their
    // consumer's queue at once; a failed send waits for the outbox sweep.
    let engine = engine::Engine::new(table, keys)
        .with_program_cache(engine::PROGRAM_CACHE_TTL)
        .with_outbox(
            aws_sdk_sqs::Client::new(&aws),
            storage::outbox::Routes::from_env(),
        );
    let queue = match job {
        Job::Schedule => Some(SqsChunkQueue {
            sqs: aws_sdk_sqs::Client::new(&aws),
            queue_url: get(PAYOUT_QUEUE_URL_ENV)
                .ok_or(PayoutFnError::Missing(PAYOUT_QUEUE_URL_ENV))?,
        }),
        Job::Worker | Job::Poll => None,
    };
    let rails = match job {
        Job::Schedule => Rails::manual(),
        Job::Worker | Job::Poll => {
            let config = rails_config::load(&get, &aws).await?;
            config
                .build(engine.table.clock.clone())
                .map_err(|e| PayoutFnError::Invalid {
                    name: "rails",
                    reason: e.to_string(),
                })?
        }
    };
    Ok(Deps {
        job,
        engine,
        queue,
        rails,
    })
}

/// Most batches one poll takes over per shard of the poll index (16 shards).
pub const POLL_LIMIT_PER_SHARD: usize = 50;

/// What the poller did (the function's result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PollReport {
    /// Approved items handed over (operators' approvals).
    pub handed_over: usize,
    pub batches: Vec<BatchReport>,
}

/// How far ahead "read now" reaches (every open batch).
const READ_NOW_HORIZON_MS: i64 = 366 * 86_400_000;

/// The rails poller: hand over what operators approved, then work every batch due. An event
/// whose `detail` is `{"read_now": true}` (events/payout-poller/read-now.json, an operator's
/// invocation) reads every open batch now instead of only those due.
pub async fn poll(
    engine: &engine::Engine,
    rails: &Rails,
    event: &serde_json::Value,
    owner: &str,
) -> Result<PollReport, PayoutFnError> {
    let owner = format!("poll:{owner}");
    let handed =
        engine::payout::handover::hand_over_approved(engine, rails, &owner, POLL_LIMIT_PER_SHARD)
            .await?;
    let now = engine.table.clock.now_ms();
    let read_now = event["detail"]["read_now"].as_bool().unwrap_or(false);
    let due_by = if read_now {
        now + READ_NOW_HORIZON_MS
    } else {
        now
    };
    let batches =
        engine::payout::handover::poll_due_by(engine, rails, &owner, POLL_LIMIT_PER_SHARD, due_by)
            .await?;
    for b in &batches {
        tracing::info!(batch = %b.batch_id, rail = %b.rail, outcome = b.outcome, sent = b.sent, failed = b.failed, returned = b.returned, waiting = b.waiting, "rail batch polled");
    }
    Ok(PollReport {
        handed_over: handed.len(),
        batches,
    })
}

/// The daily schedule at the event's business time; `owner` names this invocation in the
/// run's lease (its request id).
pub async fn schedule(
    engine: &engine::Engine,
    queue: &dyn ChunkQueue,
    event: &EventBridgeEvent<serde_json::Value>,
    owner: &str,
) -> Result<ScheduleReport, PayoutFnError> {
    let at_ms = event
        .time
        .map(|t| t.timestamp_millis())
        .ok_or(PayoutFnError::Invalid {
            name: "event.time",
            reason: "a scheduled event carries its time".into(),
        })?;
    let runs = engine::payout::run::start_due_runs(engine, queue, at_ms, owner).await?;
    for r in &runs {
        tracing::info!(
            program = %r.program_id,
            date = %r.date,
            outcome = r.outcome,
            balances = r.balances,
            chunks = r.chunks,
            "payout run"
        );
    }
    Ok(ScheduleReport { at_ms, runs })
}

/// Work a batch of chunks; every chunk that failed (a body that is not a chunk, or an error
/// while working it) is a batch item failure: it comes back after the visibility timeout, and
/// after the queue's `maxReceiveCount` waits in the dead-letter queue. The others are done.
pub async fn work(engine: &engine::Engine, rails: &Rails, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let outcome = match serde_json::from_str::<ChunkMessage>(
            record.body.as_deref().unwrap_or(""),
        ) {
            Err(e) => {
                tracing::error!(message_id = %id, error = %e, "not a payout chunk; it goes to the dead-letter queue after its retries");
                Err(())
            }
            Ok(chunk) => match engine::payout::worker::work_chunk(engine, rails, &chunk).await {
                Ok(done) => {
                    tracing::info!(
                        message_id = %id,
                        program = %chunk.program_id,
                        date = %chunk.date,
                        chunk = done.chunk,
                        "payout chunk worked"
                    );
                    Ok(())
                }
                Err(e) => {
                    tracing::warn!(message_id = %id, program = %chunk.program_id, date = %chunk.date, chunk = chunk.chunk, error = %e, "payout chunk failed; retried");
                    Err(())
                }
            },
        };
        if outcome.is_err() {
            response.batch_item_failures.push(BatchItemFailure {
                item_identifier: id,
            });
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_by_name_and_in_the_template() {
        let template = include_str!("../../../template.yaml");
        for j in Job::ALL {
            assert_eq!(Job::parse(j.as_str()).ok(), Some(j));
            assert!(
                template.contains(&format!("JOB: {}", j.as_str())),
                "JOB: {} not in template.yaml",
                j.as_str()
            );
        }
        let err = Job::parse("payouts").unwrap_err().to_string();
        assert!(err.contains("schedule, worker"), "{err}");
    }
}
