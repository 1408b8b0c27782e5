//! The rails money leaves by, behind one trait.
//!
//! Designed for PayPal Payouts (a batch POST whose `sender_item_id` is the item id, a status
//! read by batch and item, items that turn RETURNED or REVERSED later) and Stripe Connect (one
//! transfer per item under an idempotency key derived from the item id, `transfer.reversed`
//! events): [`Rail::submit`] hands over a batch, [`Rail::status`] answers for one item, and
//! [`Rail::returned`] lists money that came back. Idempotency keys derive from the payout item
//! id, never from which items share a batch, so a re-run that batches differently still
//! cannot pay an item twice.
//!
//! This rail is [`ManualRail`]: not automatic, its items are exported as a PayPal
//! Payouts Web file and settled by an operator (`partnerctl payouts export` / `mark`).

use storage::payouts::PayoutItem;

/// What a rail knows about one item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RailOutcome {
    /// The rail has no record of the item (it never arrived): submitting it again is safe.
    Unknown,
    /// Accepted, not final yet.
    Pending,
    /// The money left: booked `paid` at the rail's time.
    Sent { at_ms: i64, reference: String },
    /// Refused or failed before money left: booked `payout_released`.
    Failed { at_ms: i64, reason: String },
}

/// Money that came back after it was sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnedPayout {
    pub item_id: String,
    pub at_ms: i64,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RailError {
    /// Worth trying again later (5xx, timeout, rate limit): the item stays submitted and the
    /// next attempt asks the rail first.
    #[error("rail unavailable: {0}")]
    Unavailable(String),
    /// The rail refused the request itself (credentials, format): an operator must look.
    #[error("rail refused the request: {0}")]
    Refused(String),
}

#[async_trait::async_trait]
pub trait Rail: Send + Sync {
    /// The rail's name (`manual`, `paypal`, `stripe`), recorded on the items it carries.
    fn name(&self) -> &'static str;
    /// Whether the run hands items to the rail itself; a manual rail's items wait, approved,
    /// for an operator's export.
    fn automatic(&self) -> bool;
    /// Hand over items already marked submitted; answers, per item and in order, what the
    /// rail says now. Each item's idempotency key is its `item_id`.
    async fn submit(&self, items: &[PayoutItem]) -> Result<Vec<RailOutcome>, RailError>;
    /// What the rail knows about one item.
    async fn status(&self, item: &PayoutItem) -> Result<RailOutcome, RailError>;
    /// Money that came back since `since_ms`.
    async fn returned(&self, since_ms: i64) -> Result<Vec<ReturnedPayout>, RailError>;
}

/// The manual rail: an operator exports approved items as a PayPal Payouts Web file
/// (`partnerctl payouts export`), uploads it, and marks the outcome (`partnerctl payouts
/// mark`). The run never calls it.
#[derive(Debug, Clone, Copy, Default)]
pub struct ManualRail;

#[async_trait::async_trait]
impl Rail for ManualRail {
    fn name(&self) -> &'static str {
        "manual"
    }
    fn automatic(&self) -> bool {
        false
    }
    async fn submit(&self, items: &[PayoutItem]) -> Result<Vec<RailOutcome>, RailError> {
        // Exported by an operator: pending until marked.
        Ok(vec![RailOutcome::Pending; items.len()])
    }
    async fn status(&self, _item: &PayoutItem) -> Result<RailOutcome, RailError> {
        Ok(RailOutcome::Pending)
    }
    async fn returned(&self, _since_ms: i64) -> Result<Vec<ReturnedPayout>, RailError> {
        Ok(vec![])
    }
}
