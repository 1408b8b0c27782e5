//! External events and their side facts: the processed-event marker (exactly once per event),
//! ended subscriptions and invoices in collections.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys::{self, Key};
use crate::table::{to_item, ItemExt, Table};
use crate::tx::Tx;

/// Processed-event markers outlive Stripe's 30-day event history (and its 3-day retries).
pub const EVENT_MARKER_TTL_DAYS: i64 = 45;

/// An external event, processed. Written after everything the event caused is committed, so a
/// redelivery that finds it does nothing but re-send the messages listed in `outbox_ids` that
/// are still unsent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessedEvent {
    /// `stripe`, `sale-feed`, ….
    pub source: String,
    pub event_id: String,
    /// Business time of the event.
    pub at_ms: i64,
    /// Outbox messages the event's bookings enqueued.
    #[serde(default)]
    pub outbox_ids: Vec<String>,
}

fn processed_event_item(e: &ProcessedEvent) -> Result<crate::Item, StoreError> {
    Ok(to_item(e, &keys::processed_event(&e.source, &e.event_id))?
        .with_ttl(e.at_ms / 1000 + EVENT_MARKER_TTL_DAYS * 86_400))
}

/// Record the event as processed (idempotent: the first marker stays).
pub async fn mark_processed(table: &Table, e: &ProcessedEvent) -> Result<(), StoreError> {
    match table.put_if_absent(processed_event_item(e)?).await {
        Ok(()) | Err(StoreError::AlreadyDone) => Ok(()),
        Err(err) => Err(err),
    }
}

/// A subscription that ended: its payments after `ended_at_ms` earn nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionEnd {
    pub subscription_id: String,
    pub customer_key: String,
    pub ended_at_ms: i64,
    pub source_event: String,
}

/// Record a subscription's end; when events repeat or arrive out of order the earliest end
/// wins (one conditional put).
pub async fn record_subscription_end(
    table: &Table,
    end: &SubscriptionEnd,
) -> Result<(), StoreError> {
    let mut tx = Tx::new();
    tx.put_if(
        to_item(end, &keys::subscription_ended(&end.subscription_id))?,
        "attribute_not_exists(PK) OR ended_at_ms > :at",
        &[],
        vec![(":at", AttributeValue::N(end.ended_at_ms.to_string()))],
        "subscription end",
    )?;
    match tx.commit(table).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// An invoice whose payment failed ("in collections"), for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceInCollections {
    pub invoice_id: String,
    pub customer_key: String,
    pub at_ms: i64,
    pub source_event: String,
}

/// Record an invoice in collections (idempotent: the first record stays).
pub async fn record_in_collections(
    table: &Table,
    row: &InvoiceInCollections,
) -> Result<(), StoreError> {
    let item = to_item(
        row,
        &keys::invoice_in_collections(&row.customer_key, &row.invoice_id),
    )?;
    match table.put_if_absent(item).await {
        Ok(()) | Err(StoreError::AlreadyDone) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What an arriving payment needs to know first, in one `BatchGetItem`: whether its event was
/// processed, and whether its subscription (if any) has ended.
pub async fn event_and_subscription(
    table: &Table,
    source: &str,
    event_id: &str,
    subscription_id: Option<&str>,
) -> Result<(Option<ProcessedEvent>, Option<SubscriptionEnd>), StoreError> {
    let marker_key = keys::processed_event(source, event_id);
    let sub_key: Option<Key> = subscription_id.map(keys::subscription_ended);
    let mut wanted = vec![marker_key.clone()];
    wanted.extend(sub_key.clone());
    let mut found = table.batch_get(&wanted).await?;
    let marker = match found.remove(&marker_key) {
        Some(item) => Some(serde_dynamo::from_item(item)?),
        None => None,
    };
    let end = match sub_key.and_then(|k| found.remove(&k)) {
        Some(item) => Some(serde_dynamo::from_item(item)?),
        None => None,
    };
    Ok((marker, end))
}
