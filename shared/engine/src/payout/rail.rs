//! The rails money leaves by, behind one trait.
//!
//! An automatic rail receives a [`RailBatch`]: the items handed over together, already
//! recorded (with their id) and marked submitted in one transaction before the rail is called
//! ([`super::handover`]). It answers one [`RailOutcome`] per member, in the batch's order:
//!
//! * PayPal Payouts (`rails::paypal`): one `POST /v1/payments/payouts` per batch, the batch id
//!   as `sender_batch_id` and `PayPal-Request-Id`, each item's id as `sender_item_id`; the
//!   status is read back by `payout_batch_id` ([`RailBatch::rail_ref`]) until every item is final.
//! * Stripe Connect (`rails::stripe_connect`): one `POST /v1/transfers` per member under the
//!   idempotency key `{item id}:{attempt}`; a take-over (attempt > 1) lists the item's
//!   `transfer_group` first and only transfers when the list shows none for the item.
//!
//! Idempotency keys derive from item ids and the recorded batch, never from whoever happens to
//! call, so a re-run after a crash sends the same thing under the same ids.
//!
//! Without an automatic rail for a method (no credentials configured), items wait approved for
//! an operator's export (`partnerctl payouts export` / `mark`: the manual rail).

use std::sync::Arc;

use rules::PayoutMethod;
use storage::rail_batches::RailBatch;

/// What a rail says about one member of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RailOutcome {
    /// Nothing new: accepted, in progress (PayPal PENDING, ONHOLD, UNCLAIMED, …), or not asked.
    Pending { note: Option<String> },
    /// The money left: booked `paid` at the rail's time.
    Sent { at_ms: i64, reference: String },
    /// Refused or failed before money reached the receiver: booked `payout_released`; the
    /// receiver is marked unusable until the partner changes it.
    Failed { at_ms: i64, reason: String },
    /// Sent, then the money came back (PayPal RETURNED, REVERSED, REFUNDED after SUCCESS):
    /// booked `payout_returned` once; the receiver is marked unusable.
    Returned { at_ms: i64, reason: String },
    /// Not sent this time, for a reason a later attempt may not have (a platform balance too
    /// low, the rail unavailable for this item): the item stays submitted, an operator sees
    /// why, and the next attempt asks the rail before sending again.
    Deferred { reason: String },
}

impl RailOutcome {
    /// Nothing to book.
    pub fn pending() -> RailOutcome {
        RailOutcome::Pending { note: None }
    }
}

/// A rail's answer for a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RailAnswer {
    /// The rail's own id of the batch, once it has one (PayPal's `payout_batch_id`).
    pub rail_ref: Option<String>,
    /// One per member, in the batch's order.
    pub outcomes: Vec<RailOutcome>,
}

#[derive(Debug, thiserror::Error)]
pub enum RailError {
    /// Worth trying again later (5xx, timeout, rate limit beyond the backoff): the items stay
    /// submitted and the next attempt sends the same batch under the same id or reads it.
    #[error("rail unavailable: {0}")]
    Unavailable(String),
    /// The rail refused the request itself (credentials, format): an operator must look.
    #[error("rail refused the request: {0}")]
    Refused(String),
}

#[async_trait::async_trait]
pub trait Rail: Send + Sync {
    /// The rail's name (`paypal`, `stripe_connect`), recorded on its batches and items.
    fn name(&self) -> &'static str;
    /// Whether this rail pays `method` (PayPal e-mails, Stripe Connect accounts).
    fn carries(&self, method: &PayoutMethod) -> bool;
    /// Most members per batch (each batch is recorded in one transaction with its items'
    /// state changes, so at most [`super::handover::MAX_BATCH_ITEMS`]).
    fn batch_limit(&self) -> usize;
    /// How long a batch whose items are all final is still read for money coming back
    /// (technical ms; 0: never, the rail's events say it).
    fn watch_ms(&self) -> i64;
    /// How long after it was written a batch the rail never acknowledged may be sent again
    /// (PayPal keeps a `sender_batch_id` 30 days); `None`: always.
    fn resend_window_ms(&self) -> Option<i64>;
    /// Hand the batch over (again: same ids; `attempt` counts take-overs). `open[i]` says
    /// whether member `i`'s item still waits for the rail; a rail that sends one request per
    /// member sends only those.
    async fn hand_over(&self, batch: &RailBatch, open: &[bool]) -> Result<RailAnswer, RailError>;
    /// What the rail says now about a batch it acknowledged ([`RailBatch::rail_ref`]).
    async fn status(&self, batch: &RailBatch) -> Result<RailAnswer, RailError>;
}

/// The automatic rails a deployment has credentials for. An item whose method no rail
/// carries waits approved for the manual export.
#[derive(Clone, Default)]
pub struct Rails {
    rails: Vec<Arc<dyn Rail>>,
}

impl Rails {
    /// No automatic rail: every item waits for the manual export.
    pub fn manual() -> Rails {
        Rails::default()
    }
    pub fn new(rails: Vec<Arc<dyn Rail>>) -> Rails {
        Rails { rails }
    }
    /// The rail that pays `method`, if one is configured.
    pub fn for_method(&self, method: &PayoutMethod) -> Option<&dyn Rail> {
        self.rails
            .iter()
            .find(|r| r.carries(method))
            .map(|r| r.as_ref())
    }
    /// The rail named `name` (a recorded batch's).
    pub fn by_name(&self, name: &str) -> Option<&dyn Rail> {
        self.rails
            .iter()
            .find(|r| r.name() == name)
            .map(|r| r.as_ref())
    }
    pub fn names(&self) -> Vec<&'static str> {
        self.rails.iter().map(|r| r.name()).collect()
    }
}

impl std::fmt::Debug for Rails {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}
