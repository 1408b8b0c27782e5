//! The narrow interface the handler needs from the engine: the things a Stripe event can
//! ask for, in the engine's own types, and keeping what cannot be processed for an operator. The handler is generic over it, so tests use a
//! recording fake and the benchmark a no-op; `engine_adapter` implements it with the real engine.

use thiserror::Error;

pub use engine::attribution::{BindOutcome, BindRejection, BindRequest, BindSource};
pub use engine::payout::connect::{
    AccountOutcome, AccountUpdate, ReversalOutcome, ReversedTransfer,
};
pub use engine::sales::{
    MoneyBack, MoneyBackOutcome, PaidInvoice, PaymentFailed, SaleOutcome, SubscriptionEnded,
};
pub use storage::attention::NewAttention;
pub use storage::charges::ChargeFact;
pub use storage::connect_accounts::TransfersCapability;

/// The engine failed. `Retryable` becomes a 500 so that Stripe delivers the event again.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SinkError {
    #[error("temporary failure: {0}")]
    Retryable(String),
    #[error("failure: {0}")]
    Permanent(String),
}

impl SinkError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, SinkError::Retryable(_))
    }
}

#[async_trait::async_trait]
pub trait SaleSink: Send + Sync {
    async fn bind(&self, req: BindRequest) -> Result<BindOutcome, SinkError>;
    async fn invoice_paid(&self, inv: PaidInvoice) -> Result<SaleOutcome, SinkError>;
    async fn invoice_payment_failed(&self, f: PaymentFailed) -> Result<(), SinkError>;
    async fn subscription_ended(&self, e: SubscriptionEnded) -> Result<(), SinkError>;
    /// A refund or dispute of a charge.
    async fn money_back(&self, m: MoneyBack) -> Result<MoneyBackOutcome, SinkError>;
    /// Keep a trigger that cannot be processed as a needs-attention record; returns its id.
    async fn needs_attention(&self, rec: &NewAttention<'_>) -> Result<String, SinkError>;
    /// Whether an operator accepted the untested API version of this record's event.
    async fn api_version_accepted(&self, attention_id: &str) -> Result<bool, SinkError>;
    /// Keep a connected account's `transfers` capability as of the event.
    ///
    /// The default is for sinks that pay no partners (tests' recorders, the benchmark): a
    /// permanent failure, so the handler keeps the event as a needs-attention record instead of
    /// dropping it.
    async fn account_updated(&self, u: AccountUpdate) -> Result<AccountOutcome, SinkError> {
        Err(SinkError::Permanent(format!(
            "this sink does not record Stripe accounts (account {})",
            u.account_id
        )))
    }
    /// Book the platform's reversal of a payout transfer at business time `at_ms`.
    ///
    /// Default: as for [`SaleSink::account_updated`], a permanent failure (kept for an
    /// operator).
    async fn transfer_reversed(
        &self,
        t: ReversedTransfer,
        _at_ms: i64,
    ) -> Result<ReversalOutcome, SinkError> {
        Err(SinkError::Permanent(format!(
            "this sink does not book payout reversals (transfer {})",
            t.transfer_id
        )))
    }
}
