//! SQS event source mapping: poll a queue, invoke the function with a real-shaped SQS event, and
//! delete only the records that succeeded (`ReportBatchItemFailures`). Failed records come back
//! after the queue's visibility timeout and move to its dead-letter queue after `maxReceiveCount`
//! receives, by the queue's own redrive policy, as on AWS. Several batches are handled at once,
//! one per instance of the function (one at a time for a FIFO queue).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName, QueueAttributeName,
};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::error::DevgwError;
use crate::runtime::{FunctionChannel, Outcome};
use crate::template::{queue_env_name, QueueRef, SqsSpec};
use crate::{Shutdown, REGION};

/// SQS's own limit on one ReceiveMessage.
const MAX_RECEIVE: u32 = 10;
/// Pause between receives while a queue is empty.
const IDLE_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueTarget {
    pub url: String,
    pub arn: String,
}

fn sqs_err(context: &str, e: impl std::fmt::Debug) -> DevgwError {
    DevgwError::Sqs(format!("{context}: {e:?}"))
}

/// The URL of a queue of the template: from the environment (`OUTBOX_QUEUE_URL`, as printed by
/// `partnerctl setup-local`, or `QUEUE_URL_OutboxQueue`), else by name (`{prefix}-{LogicalId}`).
pub async fn resolve_queue(
    client: &aws_sdk_sqs::Client,
    queue: &QueueRef,
    prefix: &str,
) -> Result<QueueTarget, DevgwError> {
    let from_env = |id: &str| {
        std::env::var(queue_env_name(id))
            .or_else(|_| std::env::var(format!("QUEUE_URL_{id}")))
            .ok()
            .filter(|v| !v.is_empty())
    };
    let url = match queue {
        QueueRef::LogicalId(id) => match from_env(id) {
            Some(u) => u,
            None => get_url(client, &format!("{prefix}-{id}")).await?,
        },
        QueueRef::Arn(arn) => {
            let name = arn.rsplit(':').next().unwrap_or(arn);
            get_url(client, name).await?
        }
    };
    let arn = client
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sqs_err(&format!("GetQueueAttributes {url}"), e))?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| DevgwError::Sqs(format!("{url} has no QueueArn")))?;
    Ok(QueueTarget { url, arn })
}

async fn get_url(client: &aws_sdk_sqs::Client, name: &str) -> Result<String, DevgwError> {
    client
        .get_queue_url()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| sqs_err(&format!("GetQueueUrl {name}"), e))?
        .queue_url
        .ok_or_else(|| DevgwError::Sqs(format!("no URL for queue {name}")))
}

/// The Lambda SQS event for these messages.
pub fn sqs_event(messages: &[Message], queue_arn: &str) -> SqsEvent {
    let records = messages
        .iter()
        .map(|m| {
            let attributes = m
                .attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.as_str().to_string(), v.clone()))
                .collect();
            let message_attributes = m
                .message_attributes()
                .into_iter()
                .flatten()
                .map(|(k, v)| {
                    let a = SqsMessageAttribute {
                        string_value: v.string_value().map(str::to_string),
                        binary_value: v.binary_value().map(|b| Base64Data(b.as_ref().to_vec())),
                        string_list_values: v.string_list_values().to_vec(),
                        binary_list_values: v
                            .binary_list_values()
                            .iter()
                            .map(|b| Base64Data(b.as_ref().to_vec()))
                            .collect(),
                        data_type: Some(v.data_type().to_string()),
                    };
                    (k.clone(), a)
                })
                .collect();
            SqsMessage {
                message_id: Some(m.message_id().unwrap_or_default().to_string()),
                receipt_handle: Some(m.receipt_handle().unwrap_or_default().to_string()),
                body: Some(m.body().unwrap_or_default().to_string()),
                md5_of_body: Some(m.md5_of_body().unwrap_or_default().to_string()),
                md5_of_message_attributes: m.md5_of_message_attributes().map(str::to_string),
                attributes,
                message_attributes,
                event_source_arn: Some(queue_arn.to_string()),
                event_source: Some("aws:sqs".into()),
                aws_region: Some(REGION.into()),
            }
        })
        .collect();
    SqsEvent { records }
}

/// Which message ids failed, by Lambda's rules for the SQS event source: a function error fails
/// the whole batch; with `ReportBatchItemFailures`, the response is an `SqsBatchResponse` whose
/// `itemIdentifier`s fail. An empty or `null` response or list is a success; a malformed one (not
/// JSON, not that shape, an empty or unknown identifier) fails the whole batch.
pub fn failed_ids(
    outcome: &Outcome,
    report_batch_item_failures: bool,
    ids: &[String],
) -> BTreeSet<String> {
    let all = || ids.iter().cloned().collect::<BTreeSet<_>>();
    let body = match outcome {
        Outcome::Error { .. } => return all(),
        Outcome::Response(_) if !report_batch_item_failures => return BTreeSet::new(),
        Outcome::Response(b) => b,
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return BTreeSet::new();
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return all();
    };
    // Lambda counts these as a success; SqsBatchResponse requires the list.
    if v.get("batchItemFailures").is_none_or(Value::is_null) {
        return BTreeSet::new();
    }
    let Ok(response) = serde_json::from_value::<SqsBatchResponse>(v) else {
        return all();
    };
    let mut out = BTreeSet::new();
    for f in response.batch_item_failures {
        let id = f.item_identifier;
        if id.is_empty() || !ids.contains(&id) {
            return all();
        }
        out.insert(id);
    }
    out
}

async fn receive(
    client: &aws_sdk_sqs::Client,
    url: &str,
    batch_size: u32,
) -> Result<Vec<Message>, DevgwError> {
    let mut out: Vec<Message> = vec![];
    while u32::try_from(out.len()).unwrap_or(u32::MAX) < batch_size {
        let want = (batch_size - u32::try_from(out.len()).unwrap_or(0)).min(MAX_RECEIVE);
        let got = client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(i32::try_from(want).unwrap_or(10))
            // Short polls: the local moto server handles one request at a time
            // (infra/moto_serial.py), so a long poll would hold up every other request.
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| sqs_err(&format!("ReceiveMessage {url}"), e))?
            .messages
            .unwrap_or_default();
        let n = got.len();
        out.extend(got);
        // Only keep filling a large batch while full receives keep coming.
        if u32::try_from(n).unwrap_or(0) < want {
            break;
        }
    }
    Ok(out)
}

async fn delete(
    client: &aws_sdk_sqs::Client,
    url: &str,
    messages: &[&Message],
) -> Result<(), DevgwError> {
    for chunk in messages.chunks(10) {
        let mut entries = vec![];
        for (i, m) in chunk.iter().enumerate() {
            entries.push(
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .map_err(|e| sqs_err("DeleteMessageBatch entry", e))?,
            );
        }
        let out = client
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| sqs_err(&format!("DeleteMessageBatch {url}"), e))?;
        if !out.failed.is_empty() {
            return Err(DevgwError::Sqs(format!(
                "DeleteMessageBatch {url}: {} failed",
                out.failed.len()
            )));
        }
    }
    Ok(())
}

/// How many batches of a queue may be handled at once: one per instance of the function, as
/// Lambda's event source mapping invokes concurrently; one for a FIFO queue (its order kept).
pub fn batch_concurrency(chan: &FunctionChannel, queue_url: &str) -> usize {
    if queue_url.ends_with(".fifo") {
        1
    } else {
        chan.concurrency
    }
}

/// Poll one queue for one function until shutdown. Each batch goes to one invocation; up to
/// [`batch_concurrency`] batches are in flight at once, and the queue is not polled while that
/// many are.
pub async fn run_poller(
    chan: Arc<FunctionChannel>,
    spec: SqsSpec,
    client: aws_sdk_sqs::Client,
    prefix: String,
    mut shutdown: Shutdown,
) {
    let mut last_error = String::new();
    let target = loop {
        match resolve_queue(&client, &spec.queue, &prefix).await {
            Ok(t) => break t,
            Err(e) => {
                let msg = e.to_string();
                if msg != last_error {
                    tracing::warn!(function = %chan.name, event = %spec.event, error = %msg, "queue not found yet; retrying every 5 s");
                    last_error = msg;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = shutdown.wait() => return,
                }
            }
        }
    };
    let slots = Arc::new(Semaphore::new(batch_concurrency(&chan, &target.url)));
    tracing::info!(function = %chan.name, event = %spec.event, queue = %target.url, batch_size = spec.batch_size, concurrent_batches = slots.available_permits(), "polling");
    let target = Arc::new(target);
    let spec = Arc::new(spec);
    // Dropped (and so aborted) at shutdown: the records of an unfinished batch stay on the queue.
    let mut batches = JoinSet::new();
    last_error.clear();
    loop {
        while batches.try_join_next().is_some() {}
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s {
                Ok(s) => s,
                Err(_) => return,
            },
            _ = shutdown.wait() => return,
        };
        let started = Instant::now();
        let got = tokio::select! {
            r = receive(&client, &target.url, spec.batch_size) => r,
            _ = shutdown.wait() => return,
        };
        let messages = match got {
            Ok(m) => {
                last_error.clear();
                m
            }
            Err(e) => {
                drop(slot);
                let msg = e.to_string();
                if msg != last_error {
                    tracing::warn!(function = %chan.name, error = %msg, "receive failed; retrying");
                    last_error = msg;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                    _ = shutdown.wait() => return,
                }
                continue;
            }
        };
        if messages.is_empty() {
            drop(slot);
            tokio::select! {
                _ = tokio::time::sleep(IDLE_POLL.saturating_sub(started.elapsed())) => {}
                _ = shutdown.wait() => return,
            }
            continue;
        }
        let (chan, client, target, spec) =
            (chan.clone(), client.clone(), target.clone(), spec.clone());
        batches.spawn(async move {
            handle_batch(&chan, &client, &target, &spec, &messages).await;
            drop(slot);
        });
    }
}

/// Invoke the function with one batch and delete the records that succeeded.
async fn handle_batch(
    chan: &FunctionChannel,
    client: &aws_sdk_sqs::Client,
    target: &QueueTarget,
    spec: &SqsSpec,
    messages: &[Message],
) {
    let ids: Vec<String> = messages
        .iter()
        .map(|m| m.message_id().unwrap_or_default().to_string())
        .collect();
    let outcome = match serde_json::to_vec(&sqs_event(messages, &target.arn)) {
        Ok(payload) => match chan.invoke(Bytes::from(payload)).await {
            Ok(o) => o,
            Err(e) => {
                tracing::warn!(function = %chan.name, error = %e, "cannot invoke; messages stay on the queue");
                Outcome::error("Runtime.Unavailable", &e.to_string())
            }
        },
        Err(e) => {
            tracing::warn!(function = %chan.name, error = %e, "cannot serialise the SQS event; messages stay on the queue");
            Outcome::error("Runtime.Unavailable", &e.to_string())
        }
    };
    let failed = failed_ids(&outcome, spec.report_batch_item_failures, &ids);
    let done: Vec<&Message> = messages
        .iter()
        .filter(|m| !failed.contains(m.message_id().unwrap_or_default()))
        .collect();
    if let Err(e) = delete(client, &target.url, &done).await {
        tracing::warn!(function = %chan.name, error = %e, "delete failed; those messages will be delivered again");
    }
    if failed.is_empty() {
        tracing::info!(function = %chan.name, queue = %target.url, "SQS batch of {} record(s) done", ids.len());
    } else {
        tracing::warn!(
            function = %chan.name, queue = %target.url,
            "SQS batch of {} record(s): {} failed, back on the queue after its visibility timeout",
            ids.len(), failed.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::MessageAttributeValue;

    fn ids() -> Vec<String> {
        vec!["a".into(), "b".into(), "c".into()]
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn resp(s: &str) -> Outcome {
        Outcome::Response(Bytes::from(s.to_string()))
    }

    #[test]
    fn batch_item_failures() {
        assert_eq!(
            failed_ids(
                &resp(r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#),
                true,
                &ids()
            ),
            set(&["b"])
        );
        assert_eq!(
            failed_ids(&resp(r#"{"batchItemFailures":[]}"#), true, &ids()),
            set(&[])
        );
        assert_eq!(
            failed_ids(&resp(r#"{"batchItemFailures":null}"#), true, &ids()),
            set(&[])
        );
        assert_eq!(failed_ids(&resp("null"), true, &ids()), set(&[]));
        assert_eq!(failed_ids(&resp(""), true, &ids()), set(&[]));
        assert_eq!(failed_ids(&resp("{}"), true, &ids()), set(&[]));
        // malformed lists fail the whole batch
        assert_eq!(
            failed_ids(
                &resp(r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#),
                true,
                &ids()
            ),
            set(&["a", "b", "c"])
        );
        assert_eq!(
            failed_ids(
                &resp(r#"{"batchItemFailures":[{"itemIdentifier":"zz"}]}"#),
                true,
                &ids()
            ),
            set(&["a", "b", "c"])
        );
        assert_eq!(
            failed_ids(&resp(r#"{"batchItemFailures":[{"id":"a"}]}"#), true, &ids()),
            set(&["a", "b", "c"])
        );
        assert_eq!(
            failed_ids(&resp("not json"), true, &ids()),
            set(&["a", "b", "c"])
        );
        // without ReportBatchItemFailures a response is a success whatever it says
        assert_eq!(
            failed_ids(
                &resp(r#"{"batchItemFailures":[{"itemIdentifier":"b"}]}"#),
                false,
                &ids()
            ),
            set(&[])
        );
        // a function error fails everything
        assert_eq!(
            failed_ids(&Outcome::error("Unhandled", "boom"), true, &ids()),
            set(&["a", "b", "c"])
        );
    }

    #[test]
    fn event_shape() {
        let m = Message::builder()
            .message_id("m-1")
            .receipt_handle("rh-1")
            .body("{\"kind\":\"email\"}")
            .md5_of_body("abc")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "1")
            .attributes(MessageSystemAttributeName::SentTimestamp, "1772789400000")
            .message_attributes(
                "type",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value("welcome")
                    .build()
                    .expect("valid attribute"),
            )
            .build();
        let ev = serde_json::to_value(sqs_event(&[m], "arn:aws:sqs:us-east-1:123456789012:q"))
            .expect("the event serialises");
        let r = &ev["Records"][0];
        assert_eq!(r["messageId"], "m-1");
        assert_eq!(r["receiptHandle"], "rh-1");
        assert_eq!(r["body"], "{\"kind\":\"email\"}");
        assert_eq!(r["attributes"]["ApproximateReceiveCount"], "1");
        assert_eq!(r["attributes"]["SentTimestamp"], "1772789400000");
        assert_eq!(r["messageAttributes"]["type"]["stringValue"], "welcome");
        assert_eq!(r["messageAttributes"]["type"]["dataType"], "String");
        assert_eq!(r["eventSource"], "aws:sqs");
        assert_eq!(r["eventSourceARN"], "arn:aws:sqs:us-east-1:123456789012:q");
        assert_eq!(r["awsRegion"], "us-east-1");
        assert_eq!(r["md5OfBody"], "abc");

        // what a function reading an SqsEvent sees
        let read: SqsEvent = serde_json::from_value(ev).expect("an SQS event");
        let record = &read.records[0];
        assert_eq!(record.message_id.as_deref(), Some("m-1"));
        assert_eq!(record.body.as_deref(), Some("{\"kind\":\"email\"}"));
        assert_eq!(
            record.message_attributes["type"].string_value.as_deref(),
            Some("welcome")
        );
    }

    #[test]
    fn binary_attributes_are_base64() {
        let m = Message::builder()
            .message_id("m-2")
            .message_attributes(
                "blob",
                MessageAttributeValue::builder()
                    .data_type("Binary")
                    .binary_value(aws_sdk_sqs::primitives::Blob::new(vec![0xff, 0x00, 0x01]))
                    .build()
                    .expect("valid attribute"),
            )
            .build();
        let ev = serde_json::to_value(sqs_event(&[m], "arn")).expect("the event serialises");
        let a = &ev["Records"][0]["messageAttributes"]["blob"];
        assert_eq!(a["binaryValue"], "/wAB");
        assert_eq!(a["dataType"], "Binary");
    }
}
