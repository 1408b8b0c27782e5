//! `partnerctl dead-letters`: scheduled runs that failed three times (Lambda's asynchronous
//! retries) and wait in `HousekeepingDeadLetterQueue`, and their replay after a fix.
//!
//! Lambda puts the event itself in the message body, with the attributes `RequestID`,
//! `ErrorCode` and `ErrorMessage` (AWS Lambda Developer Guide, "Dead-letter queues"). A replay
//! runs the job in this process at the event's own `time` (the business time of the run that
//! failed) with this release's code, then deletes the message; every job is idempotent, so a
//! replay of a run that did part of its work does the rest, once.

use std::fmt::Write as _;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use housekeeping::{Job, RunReport};

use crate::{CliError, Format};

/// How long a message being replayed stays hidden from another reader (seconds).
const REPLAY_VISIBILITY_S: i32 = 120;

/// A dead letter, as listed.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadLetter {
    pub message_id: String,
    /// When it reached the queue (epoch ms).
    pub sent_ms: Option<i64>,
    /// The job it was for: from the rule in the event's `resources`.
    pub job: Option<&'static str>,
    /// The event's `time`: the business time of the failed run.
    pub event_time: Option<String>,
    pub error: Option<String>,
}

fn sqs_err(e: impl std::fmt::Debug) -> CliError {
    CliError::Aws(format!("{e:?}"))
}

fn attribute(m: &Message, name: &str) -> Option<String> {
    m.message_attributes()
        .and_then(|a| a.get(name))
        .and_then(|v| v.string_value())
        .map(str::to_string)
}

fn event_of(m: &Message) -> Option<EventBridgeEvent<serde_json::Value>> {
    serde_json::from_str(m.body()?).ok()
}

fn describe(m: &Message) -> DeadLetter {
    let event = event_of(m);
    DeadLetter {
        message_id: m.message_id().unwrap_or_default().to_string(),
        sent_ms: m
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .and_then(|v| v.parse().ok()),
        job: event.as_ref().and_then(Job::of_event).map(Job::as_str),
        event_time: event.as_ref().and_then(|e| e.time).map(|t| t.to_rfc3339()),
        error: attribute(m, "ErrorMessage"),
    }
}

/// Read up to `max` messages, hiding them for `visibility` seconds (0: a peek that leaves them
/// visible), de-duplicated by message id.
pub(crate) async fn receive(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    visibility: i32,
    max: usize,
) -> Result<Vec<Message>, CliError> {
    let mut out: Vec<Message> = vec![];
    for _ in 0..(max / 10 + 2) {
        let r = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .message_attribute_names("All")
            .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
            .send()
            .await
            .map_err(sqs_err)?;
        let batch = r.messages.unwrap_or_default();
        let before = out.len();
        for m in batch {
            if !out.iter().any(|o| o.message_id() == m.message_id()) {
                out.push(m);
            }
        }
        if out.len() == before || out.len() >= max {
            break;
        }
    }
    Ok(out)
}

/// The dead letters, without taking them off the queue.
pub async fn list(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    format: Format,
) -> Result<String, CliError> {
    let letters: Vec<DeadLetter> = receive(sqs, queue_url, 0, 100)
        .await?
        .iter()
        .map(describe)
        .collect();
    if format == Format::Json {
        return serde_json::to_string(&letters)
            .map(|s| s + "\n")
            .map_err(|e| CliError::Usage(e.to_string()));
    }
    let mut out = String::new();
    if letters.is_empty() {
        let _ = writeln!(out, "no dead letters");
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:<38} {:<14} {:<26}  ERROR",
        "MESSAGE", "JOB", "EVENT TIME"
    );
    for l in &letters {
        let _ = writeln!(
            out,
            "{:<38} {:<14} {:<26}  {}",
            l.message_id,
            l.job.unwrap_or("?"),
            l.event_time.as_deref().unwrap_or("?"),
            l.error.as_deref().unwrap_or("")
        );
    }
    Ok(out)
}

/// What a replay did with one dead letter.
#[derive(Debug)]
pub enum Replayed {
    /// The job ran; the message is deleted.
    Done {
        message_id: String,
        report: RunReport,
    },
    /// It failed again (or cannot be read); the message stays for a later replay.
    Failed { message_id: String, why: String },
}

/// Replay the dead letters (all, or the one with `message_id`) with `engine`. `job` overrides
/// the job read from the event's rule.
pub async fn replay(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    engine: &engine::Engine,
    message_id: Option<&str>,
    job: Option<Job>,
) -> Result<Vec<Replayed>, CliError> {
    let mut out = vec![];
    for m in receive(sqs, queue_url, REPLAY_VISIBILITY_S, 100).await? {
        let id = m.message_id().unwrap_or_default().to_string();
        if message_id.is_some_and(|wanted| wanted != id) {
            show_again(sqs, queue_url, &m).await;
            continue;
        }
        let Some(event) = event_of(&m) else {
            show_again(sqs, queue_url, &m).await;
            out.push(Replayed::Failed {
                message_id: id,
                why: "the message body is not a scheduled event".into(),
            });
            continue;
        };
        let Some(job) = job.or_else(|| Job::of_event(&event)) else {
            show_again(sqs, queue_url, &m).await;
            out.push(Replayed::Failed {
                message_id: id,
                why: "no job named by the event's rule: say which with --job".into(),
            });
            continue;
        };
        let outcome = housekeeping::handle(engine, job, event).await;
        if outcome.is_err() {
            // Visible again at once, for the list and a later replay.
            show_again(sqs, queue_url, &m).await;
        }
        match outcome {
            Ok(report) => {
                delete(sqs, queue_url, &m).await?;
                out.push(Replayed::Done {
                    message_id: id,
                    report,
                });
            }
            Err(e) => out.push(Replayed::Failed {
                message_id: id,
                why: e.to_string(),
            }),
        }
    }
    Ok(out)
}

/// Take a replayed message off the queue.
pub(crate) async fn delete(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    m: &Message,
) -> Result<(), CliError> {
    if let Some(h) = m.receipt_handle() {
        sqs.delete_message()
            .queue_url(queue_url)
            .receipt_handle(h)
            .send()
            .await
            .map_err(sqs_err)?;
    }
    Ok(())
}

/// Make a received message visible again at once (best effort: otherwise it reappears when its
/// visibility timeout ends).
pub(crate) async fn show_again(sqs: &aws_sdk_sqs::Client, queue_url: &str, m: &Message) {
    if let Some(h) = m.receipt_handle() {
        let _ = sqs
            .change_message_visibility()
            .queue_url(queue_url)
            .receipt_handle(h)
            .visibility_timeout(0)
            .send()
            .await;
    }
}
