//! Transactional outbox: a message is written in the same transaction as the fact that causes
//! it, then delivered to its consumer's queue ([`Routes`]) by [`deliver_routed`] and marked
//! sent. Unsent messages sit in a sparse, sharded index partitioned by kind
//! ([`keys::outbox_unsent_gsi`]) that [`sweep`] reads for the routed kinds only, so none is left
//! behind and a kind without a consumer (no queue configured) stays unsent, costs the sweep
//! nothing, and is listed by `partnerctl outbox` ([`unsent_of_kind`]).

use std::collections::BTreeMap;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use messages::{Consumer, Envelope, Kind};
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
        .with_gsi2(keys::outbox_unsent_gsi(&row.kind, &env.id, env.at_ms));
    tx.put_new(item, "outbox message")
}

/// Unsent messages of one kind, oldest first (one query per shard).
pub async fn unsent_of_kind(table: &Table, kind: Kind) -> Result<Vec<OutboxRow>, StoreError> {
    let mut out = vec![];
    for shard in 0..keys::DUE_SHARDS {
        out.extend(
            table
                .query_as::<OutboxRow>(Query::gsi2(keys::outbox_unsent_pk(kind.as_str(), shard)))
                .await?,
        );
    }
    out.sort_by_key(|r| (r.created_ms, r.message_id.clone()));
    Ok(out)
}

/// Unsent messages of every kind, oldest first (operators and tests; the sweep reads only the
/// routed kinds).
pub async fn unsent(table: &Table) -> Result<Vec<OutboxRow>, StoreError> {
    let mut out = vec![];
    for kind in Kind::ALL {
        out.extend(unsent_of_kind(table, kind).await?);
    }
    out.sort_by_key(|r| (r.created_ms, r.message_id.clone()));
    Ok(out)
}

/// Where each message kind goes: its consumer's queue. A kind whose consumer has no queue is
/// not routed: its messages stay unsent in the outbox, never put on a queue nobody reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    queues: BTreeMap<Kind, String>,
}

impl Routes {
    /// No routes: every message stays in the outbox.
    pub fn none() -> Self {
        Routes::default()
    }

    /// From the process environment: each consumer's queue URL variable
    /// ([`Consumer::queue_url_env`]: `EMAIL_QUEUE_URL`, `CRM_SYNC_QUEUE_URL`).
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From any name → value lookup; blank values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut r = Routes::none();
        for c in Consumer::ALL {
            if let Some(url) = get(c.queue_url_env()) {
                r = r.with_consumer(c, url);
            }
        }
        r
    }

    /// Route every kind of `consumer` to `queue_url` (blank: no route).
    pub fn with_consumer(mut self, consumer: Consumer, queue_url: impl Into<String>) -> Self {
        let url = queue_url.into().trim().to_string();
        if url.is_empty() {
            return self;
        }
        for k in consumer.kinds() {
            self.queues.insert(k, url.clone());
        }
        self
    }

    /// The queue of a kind, if it has a consumer.
    pub fn queue_of(&self, kind: Kind) -> Option<&str> {
        self.queues.get(&kind).map(String::as_str)
    }

    /// The kinds that have a queue, in [`Kind::ALL`] order.
    pub fn routed_kinds(&self) -> Vec<Kind> {
        self.queues.keys().copied().collect()
    }

    pub fn is_empty(&self) -> bool {
        self.queues.is_empty()
    }
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

/// What [`deliver_routed`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Messages sent and marked sent.
    pub sent: usize,
    /// Messages left unsent because their kind has no route.
    pub unrouted: usize,
}

/// Send each row to its kind's queue ([`Routes`]) and mark it sent; rows of a kind without a
/// route (or of a kind this build does not know) are left unsent. Every routed kind is
/// attempted; the first failure is returned after the others were tried.
pub async fn deliver_routed(
    table: &Table,
    sqs: &aws_sdk_sqs::Client,
    routes: &Routes,
    rows: &[OutboxRow],
) -> Result<Delivery, DeliverError> {
    let mut by_queue: BTreeMap<&str, Vec<OutboxRow>> = BTreeMap::new();
    let mut d = Delivery::default();
    for r in rows {
        match Kind::parse(&r.kind).and_then(|k| routes.queue_of(k)) {
            Some(q) => by_queue.entry(q).or_default().push(r.clone()),
            None => d.unrouted += 1,
        }
    }
    let mut first_err = None;
    for (queue_url, rows) in by_queue {
        match deliver(table, sqs, queue_url, &rows).await {
            Ok(n) => d.sent += n,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(d),
    }
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

/// What a [`sweep`] sent, per routed kind (a kind absent here was not read).
pub type SweepReport = BTreeMap<Kind, usize>;

/// Deliver every unsent message of the routed kinds: the periodic sweep (the `outbox-sweep`
/// job of functions/housekeeping). Reads only the routed kinds' partitions of the unsent index.
/// Every routed kind is attempted; the first failure is returned after the others were tried.
pub async fn sweep(
    table: &Table,
    sqs: &aws_sdk_sqs::Client,
    routes: &Routes,
) -> Result<SweepReport, DeliverError> {
    let mut report = SweepReport::new();
    let mut first_err = None;
    for kind in routes.routed_kinds() {
        let Some(queue_url) = routes.queue_of(kind) else {
            continue;
        };
        let r = async {
            let rows = unsent_of_kind(table, kind).await?;
            deliver(table, sqs, queue_url, &rows).await
        }
        .await;
        match r {
            Ok(n) => {
                report.insert(kind, n);
            }
            Err(e) => {
                report.insert(kind, 0);
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_per_consumer_from_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let r = Routes::from_lookup(env(&[("EMAIL_QUEUE_URL", " http://q/email ")]));
        assert_eq!(r.queue_of(Kind::CommissionEarned), Some("http://q/email"));
        assert_eq!(r.queue_of(Kind::PartnerInvite), Some("http://q/email"));
        assert_eq!(r.queue_of(Kind::CrmSyncPartner), None);
        assert_eq!(
            r.routed_kinds(),
            vec![
                Kind::CommissionEarned,
                Kind::CommissionReversed,
                Kind::PartnerInvite,
                Kind::PayoutWaiting,
                Kind::ForfeitWarning,
                Kind::Forfeited,
                Kind::PayoutSent,
                Kind::PayoutFailed,
                Kind::LevelPromoted,
            ]
        );
        let blank =
            Routes::from_lookup(env(&[("EMAIL_QUEUE_URL", " "), ("CRM_SYNC_QUEUE_URL", "")]));
        assert!(blank.is_empty());
        let both = Routes::from_lookup(env(&[
            ("EMAIL_QUEUE_URL", "http://q/email"),
            ("CRM_SYNC_QUEUE_URL", "http://q/crm"),
        ]));
        assert_eq!(both.queue_of(Kind::CrmSyncPartner), Some("http://q/crm"));
        assert_eq!(both.routed_kinds().len(), Kind::ALL.len());
        // The old single queue's variable routes nothing.
        assert!(Routes::from_lookup(env(&[("OUTBOX_QUEUE_URL", "http://q/outbox")])).is_empty());
    }
}
