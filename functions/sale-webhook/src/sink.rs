//! The narrow interface the handler needs from the engine: the things a Stripe event can
//! ask for, in the engine's own types, and keeping what cannot be processed for an operator. The handler is generic over it, so tests use a
//! recording fake and the benchmark a no-op; `engine_adapter` implements it with the real engine.

use thiserror::Error;

pub use engine::attribution::{BindOutcome, BindRejection, BindRequest, BindSource};
pub use engine::sales::{
    MoneyBack, MoneyBackOutcome, PaidInvoice, PaymentFailed, SaleOutcome, SubscriptionEnded,
};
pub use storage::attention::NewAttention;
pub use storage::charges::ChargeFact;

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
}
