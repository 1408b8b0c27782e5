//! Transactional outbox: a message is written in the same transaction as the fact that causes
//! it, then delivered to SQS by [`deliver`] and marked sent. Unsent messages sit in a sparse,
//! sharded index ([`keys::outbox_unsent_gsi`]) that [`sweep`] reads, so none is left behind.

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use messages::Envelope;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::table::{to_item, ItemExt, Query, Table};
use crate::tx::{Tx, UpdateSpec};

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
/// attempt left unsent).
pub async fn unsent_by_id(table: &Table, ids: &[String]) -> Result<Vec<OutboxRow>, StoreError> {
    let mut out = vec![];
    for id in ids {
        if let Some(r) = table.get_as::<OutboxRow>(&keys::outbox(id)).await? {
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
        for ok in out.successful() {
            let idx: usize = ok
                .id()
                .trim_start_matches('m')
                .parse()
                .unwrap_or(usize::MAX);
            if let Some(r) = chunk.get(idx) {
                mark_sent(table, &r.message_id).await?;
                sent += 1;
            }
        }
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

/// Mark a message sent: it leaves the unsent index. One conditional `UpdateItem`.
pub async fn mark_sent(table: &Table, message_id: &str) -> Result<(), StoreError> {
    let (expr, cond, names, values) = UpdateSpec::new()
        .set_n("sent_ms", table.clock.now_ms())
        .remove(keys::GSI2PK)
        .remove(keys::GSI2SK)
        .condition("attribute_exists(PK)", &[], vec![])
        .into_parts();
    table
        .client
        .update_item()
        .table_name(&table.name)
        .set_key(Some(Table::key_item(&keys::outbox(message_id))))
        .update_expression(expr)
        .set_condition_expression(cond)
        .set_expression_attribute_names(Some(names))
        .set_expression_attribute_values(values)
        .send()
        .await
        .map_err(StoreError::dynamo)?;
    Ok(())
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

/// Deliver every unsent message (the periodic sweep).
pub async fn sweep(
    table: &Table,
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
) -> Result<usize, DeliverError> {
    let rows = unsent(table).await?;
    deliver(table, sqs, queue_url, &rows).await
}
