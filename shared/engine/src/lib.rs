//! Domain operations of the partner program engine, over `storage` and `rules`:
//! [`attribution`] binds customers to partners, [`sales`] turns paid invoices into commissions
//! exactly once, [`release`] ends holds. Functions stay thin: they parse their trigger and call
//! these.
//!
//! Modules, lowest first (each uses only those before it): [`catalog`] (programs through a
//! short cache), [`binding`] (write a binding, flag a self-referral: what attribution and sales
//! share), [`sales`] (intake, booking, waiting sales, side events), [`attribution`] (the public
//! bind operations, which book waiting sales), [`release`], [`payout`] (the payout run, which
//! releases first).

pub mod attribution;
pub mod binding;
pub mod catalog;
pub mod payout;
pub mod release;
pub mod sales;

use std::sync::Arc;
use std::time::Duration;

use storage::outbox::{self, DeliverError};
use storage::{StoreError, Table};

/// Where outbox messages go after a write: each kind to its consumer's queue
/// ([`outbox::Routes`]). A kind without a route stays in the unsent index (listed by
/// `partnerctl outbox`); a routed one whose send fails waits there for the outbox sweep
/// (`storage::outbox::sweep`, the `outbox-sweep` job of functions/housekeeping).
#[derive(Clone, Debug)]
pub struct OutboxTarget {
    pub sqs: aws_sdk_sqs::Client,
    pub routes: outbox::Routes,
}

/// What every operation needs, built once per process.
#[derive(Clone, Debug)]
pub struct Engine {
    pub table: Table,
    /// Keys that sign and verify click ids.
    pub keys: tracking::KeyRing,
    pub outbox: Option<OutboxTarget>,
    /// Actions one booking transaction may use (at most [`MAX_TX_ACTIONS_FOR_BOOKING`]); a larger
    /// correction continues in further transactions.
    pub tx_budget: usize,
    /// Programs and products, cached for the warm function ([`Engine::with_program_cache`]).
    pub catalog: Arc<catalog::Catalog>,
}

/// Upper bound of [`Engine::tx_budget`]: DynamoDB's 100 actions, less room for the fixed part of
/// a booking (markers, sales state, level sale, partner levels, membership).
pub const MAX_TX_ACTIONS_FOR_BOOKING: usize = sales::booking::TX_BUDGET;

/// How long a warm function keeps programs and products (the redirect keeps links as long).
pub const PROGRAM_CACHE_TTL: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("commission rules: {0}")]
    Plan(#[from] rules::plan::PlanError),
    #[error("inconsistent data: {0}")]
    Inconsistent(String),
    /// The trigger names something that cannot be an id of ours (kept for an operator).
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A queue refused or failed a send (worth retrying).
    #[error("queue: {0}")]
    Queue(String),
    #[error(transparent)]
    Rail(#[from] payout::rail::RailError),
}

impl EngineError {
    /// Worth retrying (redelivery): storage trouble, contention.
    pub fn is_retryable(&self) -> bool {
        match self {
            EngineError::Store(e) => {
                e.is_retryable() || matches!(e, StoreError::ConditionFailed { .. })
            }
            EngineError::Queue(_) => true,
            EngineError::Rail(e) => matches!(e, payout::rail::RailError::Unavailable(_)),
            EngineError::Plan(_) | EngineError::Inconsistent(_) | EngineError::Invalid(_) => false,
        }
    }
}

impl Engine {
    pub fn new(table: Table, keys: tracking::KeyRing) -> Self {
        Engine {
            table,
            keys,
            outbox: None,
            tx_budget: sales::booking::TX_BUDGET,
            catalog: Arc::new(catalog::Catalog::new(Duration::ZERO)),
        }
    }

    /// Keep programs and products for `ttl` of technical time (functions use
    /// [`PROGRAM_CACHE_TTL`]; without it every read goes to the table).
    pub fn with_program_cache(mut self, ttl: Duration) -> Self {
        self.catalog = Arc::new(catalog::Catalog::new(ttl));
        self
    }

    /// Send outbox messages right after the write, each kind to its consumer's queue. Without
    /// any route (no consumer configured) nothing is sent and no SQS client is kept.
    pub fn with_outbox(mut self, sqs: aws_sdk_sqs::Client, routes: outbox::Routes) -> Self {
        self.outbox = (!routes.is_empty()).then_some(OutboxTarget { sqs, routes });
        self
    }

    /// Deliver messages this process has just committed to the outbox (no read needed), each
    /// to its kind's queue. Failures are logged and the message stays unsent in the outbox's
    /// unsent index, for the outbox sweep (the `outbox-sweep` schedule) or a redelivery of the
    /// event (its processed marker lists the message) to send. A kind without a route stays
    /// unsent without a send.
    pub async fn deliver_new(&self, envelopes: &[messages::Envelope]) {
        let Some(t) = &self.outbox else { return };
        if envelopes.is_empty() {
            return;
        }
        let rows: Vec<_> = envelopes.iter().map(outbox::row_of).collect();
        if let Err(e) = outbox::deliver_routed(&self.table, &t.sqs, &t.routes, &rows).await {
            tracing::warn!(error = %e, "outbox delivery failed; left in the unsent index");
        }
    }

    /// Deliver these outbox messages if they are still unsent (and routed). Failures are
    /// logged, as in [`Engine::deliver_new`].
    pub async fn deliver_outbox(&self, ids: &[String]) {
        let Some(t) = &self.outbox else { return };
        if ids.is_empty() {
            return;
        }
        let r: Result<outbox::Delivery, DeliverError> = async {
            let rows = outbox::unsent_by_id(&self.table, ids).await?;
            outbox::deliver_routed(&self.table, &t.sqs, &t.routes, &rows).await
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, "outbox delivery failed; left in the unsent index");
        }
    }
}

/// Epoch ms → UTC date-time (business time).
pub(crate) fn utc(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC)
}

/// Attempts of an optimistic read-decide-write loop before giving up as contention.
pub(crate) const OPTIMISTIC_ATTEMPTS: u32 = 10;

#[cfg(test)]
mod tests {
    #[test]
    fn every_link_code_fits_in_a_click_id() {
        assert_eq!(
            storage::links::MAX_CODE_LEN,
            tracking::click_id::INLINE_CODE_MAX_LEN
        );
    }
}
