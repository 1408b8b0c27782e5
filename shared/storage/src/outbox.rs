//! Transactional outbox: a message is written in the same transaction as the fact that causes
//! it, then delivered to SQS by [`deliver`] and marked sent. Unsent messages sit in a sparse,
//! sharded index ([`keys::outbox_unsent_gsi`]) that [`sweep`] reads, so none is left behind.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use messages::Envelope;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::table::{to_item, ItemExt, Query, Table};
use crate::tx::Tx;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub message_id: String,
    pub body: String,
    pub kind: String,
    pub created_ms: i64,
    #[serde(default)]
    pub sent_ms: Option<i64>,
}

/// Add the message to a transaction (written only if new: the id is the fact's).
pub fn enqueue(tx: &mut Tx, env: &Envelope) -> Result<(), StoreError> {
    let row = row_of(env);
    let item = to_item(&row, &keys::outbox(&env.id))?
        .with_gsi2(keys::outbox_unsent_gsi(&env.id, env.at_ms));
    tx.put_new(item, "outbox message")
}

/// Unsent messages, oldest first within each shard.
pub async fn unsent(table: &Table) -> Result<Vec<OutboxRow>, StoreError> {
    let mut out = vec![];
    for shard in 0..keys::DUE_SHARDS {
        out.extend(
            table
                .query_as::<OutboxRow>(Query::gsi2(keys::outbox_unsent_pk(shard)))
                .await?,
        );
    }
    out.sort_by_key(|r| (r.created_ms, r.message_id.clone()));
    Ok(out)
}

/// Unsent messages among these ids (after a write: deliver what it enqueued, or what a previous
/// attempt left unsent). One `BatchGetItem` per 100 ids.
pub async fn unsent_by_id(table: &Table, ids: &[String]) -> Result<Vec<OutboxRow>, StoreError> {
    let wanted: Vec<keys::Key> = ids.iter().map(|id| keys::outbox(id)).collect();
    let mut found = table.batch_get(&wanted).await?;
    let mut out = vec![];
    for k in &wanted {
        if let Some(item) = found.remove(k) {
            let r: OutboxRow = serde_dynamo::from_item(item)?;
            if r.sent_ms.is_none() {
                out.push(r);
            }
        }
    }
    Ok(out)
}

#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("SQS: {0}")]
    Sqs(String),
}

/// Send rows to the queue (batches of 10), then mark each sent. At-least-once: a crash between
/// the send and the mark re-sends later with the same message id, which consumers de-duplicate.
pub async fn deliver(
    table: &Table,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    rows: &[OutboxRow],
) -> Result<usize, DeliverError> {
    let mut sent = 0;
    for chunk in rows.chunks(10) {
        let mut req = sqs.send_message_batch().queue_url(queue_url);
        for (i, r) in chunk.iter().enumerate() {
            let mut e = SendMessageBatchRequestEntry::builder()
                .id(format!("m{i}"))
                .message_body(&r.body);
            if queue_url.ends_with(".fifo") {
                e = e
                    .message_group_id(&r.kind)
                    .message_deduplication_id(dedup_id(&r.message_id));
            }
            req = req.entries(e.build().map_err(|e| DeliverError::Sqs(e.to_string()))?);
        }
        let out = req
            .send()
            .await
            .map_err(|e| DeliverError::Sqs(format!("{e:?}")))?;
        let mut accepted = vec![];
        for ok in out.successful() {
            let idx: usize = ok
                .id()
                .trim_start_matches('m')
                .parse()
                .unwrap_or(usize::MAX);
            if let Some(r) = chunk.get(idx) {
                accepted.push(r);
            }
        }
        sent += accepted.len();
        mark_all_sent(table, &accepted).await?;
        if let Some(f) = out.failed().first() {
            return Err(DeliverError::Sqs(format!(
                "{} of {} failed, first: {:?}",
                out.failed().len(),
                chunk.len(),
                f.message()
            )));
        }
    }
    Ok(sent)
}

fn dedup_id(id: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(id.as_bytes());
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Mark rows sent in one `BatchWriteItem` per 25: each row is written again with `sent_ms` and
/// without its unsent-index keys (the body never changes, so the overwrite loses nothing).
async fn mark_all_sent(table: &Table, rows: &[&OutboxRow]) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let now = table.clock.now_ms();
    let mut items = vec![];
    for r in rows {
        let sent = OutboxRow {
            sent_ms: Some(now),
            ..(*r).clone()
        };
        items.push(to_item(&sent, &keys::outbox(&r.message_id))?);
    }
    table.batch_put(items).await
}

/// The row an envelope is stored as.
pub fn row_of(env: &Envelope) -> OutboxRow {
    OutboxRow {
        message_id: env.id.clone(),
        body: env.to_json(),
        kind: env.message.kind().to_string(),
        created_ms: env.at_ms,
        sent_ms: None,
    }
}

/// Deliver every unsent message: the periodic sweep. No deployed function calls it yet; the
/// "nothing fails silently" issue (10) schedules it.
pub async fn sweep(
    table: &Table,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<usize, DeliverError> {
    let rows = unsent(table).await?;
    deliver(table, sqs, queue_url, &rows).await
}
