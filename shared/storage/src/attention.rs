//! Needs-attention records: an external trigger that could not be processed and that a retry
//! would not process either (a payload we cannot fully read, a test-mode event in a live
//! deployment, a permanent failure of ours). The record keeps what an operator needs to fix and
//! replay it: the event's id and type, why, and the raw payload (or where to get it).
//!
//! One item per event (`{source}:{event id}`): a second delivery of the same event counts on the
//! same record and reopens it if it had been closed. Open records sit in a sparse index
//! ([`keys::attention_open_gsi`]); every record is also listed by the month it was first seen.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::table::{to_item, ItemExt, Query, Table};
use crate::tx::{Tx, UpdateSpec};

/// Payloads up to this size are kept in the record (DynamoDB items hold 400 KB); a larger one is
/// referred to (Stripe keeps events 30 days: `GET /v1/events/{id}`).
pub const MAX_INLINE_PAYLOAD_BYTES: usize = 300_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttentionState {
    Open,
    /// Replayed and processed.
    Resolved,
    /// Closed by an operator without a replay (nothing to do).
    Dismissed,
}

impl AttentionState {
    pub fn as_str(self) -> &'static str {
        match self {
            AttentionState::Open => "open",
            AttentionState::Resolved => "resolved",
            AttentionState::Dismissed => "dismissed",
        }
    }
}

/// A needs-attention record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttentionRecord {
    /// `{source}:{event id}`, e.g. `stripe:evt_1`.
    pub id: String,
    /// `stripe`, ….
    pub source: String,
    #[serde(default)]
    pub event_id: Option<String>,
    #[serde(default)]
    pub event_type: Option<String>,
    /// Machine-readable reason (`api-version-untested`, `lines-has-more`, `permanent-failure`, …).
    pub reason_code: String,
    pub reason: String,
    /// The event's business time, when it has one.
    #[serde(default)]
    pub business_at_ms: Option<i64>,
    #[serde(default)]
    pub livemode: Option<bool>,
    #[serde(default)]
    pub api_version: Option<String>,
    /// Technical time of the first and the latest delivery.
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub deliveries: u32,
    pub state: AttentionState,
    /// The raw body as received (UTF-8), when it fits.
    #[serde(default)]
    pub payload: Option<String>,
    /// Where to find the payload when it is not kept.
    #[serde(default)]
    pub payload_ref: Option<String>,
    /// An operator checked the payload of an untested API version and lets it be processed.
    #[serde(default)]
    pub accept_api_version: bool,
    #[serde(default)]
    pub accepted_by: Option<String>,
    #[serde(default)]
    pub closed_ms: Option<i64>,
    #[serde(default)]
    pub closed_by: Option<String>,
    /// What the replay answered, or why it was dismissed.
    #[serde(default)]
    pub resolution: Option<String>,
}

/// What a handler knows when it parks a trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAttention<'a> {
    pub source: &'a str,
    /// The event's id; `None` for a body that is not an event (then the body's digest names it).
    pub event_id: Option<&'a str>,
    pub event_type: Option<&'a str>,
    pub reason_code: &'a str,
    pub reason: &'a str,
    pub business_at_ms: Option<i64>,
    pub livemode: Option<bool>,
    pub api_version: Option<&'a str>,
    pub payload: &'a [u8],
}

impl NewAttention<'_> {
    /// The record's id: `{source}:{event id}`, or `{source}:body-{sha256}` without an event id.
    pub fn id(&self) -> String {
        match self.event_id {
            Some(e) => format!("{}:{e}", self.source),
            None => {
                use sha2::{Digest, Sha256};
                let h = Sha256::digest(self.payload);
                let hex: String = h.iter().take(16).map(|b| format!("{b:02x}")).collect();
                format!("{}:body-{hex}", self.source)
            }
        }
    }
}

/// Whether [`record`] created the record or counted another delivery on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    New,
    Again,
}

fn month_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_else(|| "0000-00".into())
}

/// Park a trigger. A first delivery creates the record (conditional put); another delivery of
/// the same event counts on it, takes the latest reason and reopens it (one update). Returns
/// the record's id.
pub async fn record(
    table: &Table,
    new: &NewAttention<'_>,
) -> Result<(String, Recorded), StoreError> {
    let id = new.id();
    let now = table.clock.now_ms();
    let (payload, payload_ref) = match std::str::from_utf8(new.payload) {
        Ok(s) if s.len() <= MAX_INLINE_PAYLOAD_BYTES => (Some(s.to_string()), None),
        _ => (
            None,
            Some(match (new.source, new.event_id) {
                ("stripe", Some(e)) => format!(
                    "{} bytes, not kept: GET https://api.stripe.com/v1/events/{e} (Stripe keeps events 30 days)",
                    new.payload.len()
                ),
                _ => format!("{} bytes, not kept", new.payload.len()),
            }),
        ),
    };
    let rec = AttentionRecord {
        id: id.clone(),
        source: new.source.to_string(),
        event_id: new.event_id.map(str::to_string),
        event_type: new.event_type.map(str::to_string),
        reason_code: new.reason_code.to_string(),
        reason: new.reason.to_string(),
        business_at_ms: new.business_at_ms,
        livemode: new.livemode,
        api_version: new.api_version.map(str::to_string),
        first_seen_ms: now,
        last_seen_ms: now,
        deliveries: 1,
        state: AttentionState::Open,
        payload,
        payload_ref,
        accept_api_version: false,
        accepted_by: None,
        closed_ms: None,
        closed_by: None,
        resolution: None,
    };
    let item = to_item(&rec, &keys::attention(&id))?
        .with_gsi2(keys::attention_open_gsi(&id, now))
        .with_gsi1(keys::attention_month_gsi(&month_of(now), &id, now));
    match table.put_if_absent(item).await {
        Ok(()) => return Ok((id, Recorded::New)),
        Err(StoreError::AlreadyDone) => {}
        Err(e) => return Err(e),
    }
    let (gpk, gsk) = keys::attention_open_gsi(&id, now);
    let spec = UpdateSpec::new()
        .set_s("state", AttentionState::Open.as_str())
        .set_s("reason_code", new.reason_code)
        .set_s("reason", new.reason)
        .set_n("last_seen_ms", now)
        .set_s(keys::GSI2PK, gpk)
        .set_s(keys::GSI2SK, gsk)
        .add_n("deliveries", 1);
    let mut tx = Tx::new();
    tx.update(&keys::attention(&id), spec, "needs-attention delivery")?;
    tx.commit(table).await?;
    Ok((id, Recorded::Again))
}

pub async fn get(table: &Table, id: &str) -> Result<Option<AttentionRecord>, StoreError> {
    table.get_as(&keys::attention(id)).await
}

/// Open records, oldest first.
pub async fn open(table: &Table) -> Result<Vec<AttentionRecord>, StoreError> {
    table
        .query_as(Query::gsi2(keys::ATTENTION_OPEN_PK.to_string()))
        .await
}

/// Every record first seen in a month (`YYYY-MM`), open or closed.
pub async fn of_month(table: &Table, month: &str) -> Result<Vec<AttentionRecord>, StoreError> {
    table
        .query_as(Query::gsi1(keys::attention_month_pk(month)))
        .await
}

/// Let an open record of an untested API version be processed on its next delivery or replay.
/// `Ok(false)` if there is no open record with this id.
pub async fn accept_api_version(table: &Table, id: &str, by: &str) -> Result<bool, StoreError> {
    let spec = UpdateSpec::new()
        .set("accept_api_version", AttributeValue::Bool(true))
        .set_s("accepted_by", by)
        .condition(
            "#st = :open",
            &[("#st", "state")],
            vec![(":open", AttributeValue::S("open".into()))],
        );
    let mut tx = Tx::new();
    tx.update(&keys::attention(id), spec, "needs-attention accept version")?;
    match tx.commit(table).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Close an open record (resolved by a replay, or dismissed), leaving the open index.
/// Idempotent: `Ok(false)` if it was not open (closed already, or unknown).
pub async fn close(
    table: &Table,
    id: &str,
    state: AttentionState,
    resolution: &str,
    by: &str,
) -> Result<bool, StoreError> {
    if state == AttentionState::Open {
        return Err(StoreError::InvalidTransaction(
            "close needs resolved or dismissed".into(),
        ));
    }
    let spec = UpdateSpec::new()
        .set_s("state", state.as_str())
        .set_s("resolution", resolution)
        .set_s("closed_by", by)
        .set_n("closed_ms", table.clock.now_ms())
        .remove(keys::GSI2PK)
        .remove(keys::GSI2SK)
        .condition(
            "#st = :open",
            &[("#st", "state")],
            vec![(":open", AttributeValue::S("open".into()))],
        );
    let mut tx = Tx::new();
    tx.update(&keys::attention(id), spec, "needs-attention close")?;
    match tx.commit(table).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A CloudWatch embedded-metric-format line (one JSON object on standard output, which Lambda
/// sends to CloudWatch Logs and CloudWatch turns into the metric `NeedsAttention` in
/// `namespace`, without dimensions so one alarm covers every reason; the reason rides along as
/// a property for Logs Insights). Format: "Specification: Embedded metric format" (CloudWatch
/// User Guide).
pub fn metric_line(namespace: &str, reason_code: &str, now_ms: i64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[]],
                "Metrics": [{"Name": "NeedsAttention", "Unit": "Count"}]
            }]
        },
        "NeedsAttention": 1,
        "reason_code": reason_code,
    })
    .to_string()
}
