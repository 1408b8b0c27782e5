//! Events beside the sale itself: a payment that failed, a subscription that ended.

use storage::events::{self, InvoiceInCollections, ProcessedEvent, SubscriptionEnd};
use storage::keys;

use super::STRIPE_SOURCE;
use crate::{Engine, EngineError};

/// An invoice whose payment failed: nothing is earned on it ("in collections").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFailed {
    pub event_id: String,
    pub invoice_id: String,
    pub customer_key: String,
    /// Business time: the event's `created`.
    pub at_ms: i64,
}

/// A subscription that ended: no further recurring commissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionEnded {
    pub event_id: String,
    pub subscription_id: String,
    pub customer_key: String,
    /// Business time: the event's `created`.
    pub at_ms: i64,
}

fn processed(event_id: &str, at_ms: i64) -> ProcessedEvent {
    ProcessedEvent {
        source: STRIPE_SOURCE.into(),
        event_id: event_id.into(),
        at_ms,
        outbox_ids: vec![],
    }
}

/// `invoice.payment_failed`: nothing is earned; the invoice is recorded as in collections so an
/// operator can answer "I don't see this month's commission". A later `invoice.paid` earns once.
pub async fn invoice_payment_failed(engine: &Engine, f: PaymentFailed) -> Result<(), EngineError> {
    let t = &engine.table;
    if !keys::safe_id(&f.invoice_id)
        || !keys::safe_id(&f.customer_key)
        || !keys::safe_id(&f.event_id)
    {
        return Ok(());
    }
    let row = InvoiceInCollections {
        invoice_id: f.invoice_id.clone(),
        customer_key: f.customer_key.clone(),
        at_ms: f.at_ms,
        source_event: format!("{STRIPE_SOURCE}:{}", f.event_id),
    };
    events::record_in_collections(t, &row).await?;
    Ok(events::mark_processed(t, &processed(&f.event_id, f.at_ms)).await?)
}

/// `customer.subscription.deleted`: payments of the subscription after `at_ms` earn nothing
/// (`rules::sale::subscription_end_stops_payment`). The earliest end wins when events repeat.
pub async fn subscription_ended(engine: &Engine, e: SubscriptionEnded) -> Result<(), EngineError> {
    let t = &engine.table;
    if !keys::safe_id(&e.subscription_id) || !keys::safe_id(&e.event_id) {
        return Ok(());
    }
    let end = SubscriptionEnd {
        subscription_id: e.subscription_id.clone(),
        customer_key: e.customer_key.clone(),
        ended_at_ms: e.at_ms,
        source_event: format!("{STRIPE_SOURCE}:{}", e.event_id),
    };
    events::record_subscription_end(t, &end).await?;
    Ok(events::mark_processed(t, &processed(&e.event_id, e.at_ms)).await?)
}
