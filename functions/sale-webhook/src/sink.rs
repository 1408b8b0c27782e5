//! The narrow interface the handler needs from the engine: exactly the four things a Stripe
//! event can ask for. The handler is generic over it, so tests use a recording fake and the
//! benchmark a no-op; `engine_adapter` implements it with the real engine.

use rules::Currency;
use thiserror::Error;

/// How a customer was referred.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindSource {
    /// A click id (Checkout's `client_reference_id`, or the customer's `metadata.ref_click`).
    ClickId(String),
    /// A Stripe promotion code id (`promo_…`) used at checkout.
    Coupon(String),
}

/// Bind a customer to the partner who referred them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindRequest {
    /// Stripe customer id (`cus_…`).
    pub customer_key: String,
    pub email: Option<String>,
    pub source: BindSource,
    /// Business time: the Stripe event's `created`, in milliseconds.
    pub at_ms: i64,
    /// The Stripe event id, for the binding's history.
    pub source_event: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindOutcome {
    Bound {
        program_id: String,
        partner_id: String,
    },
    AlreadyBound {
        program_id: String,
        partner_id: String,
    },
    /// Not bound (self-referral, unknown or expired click, …): the engine recorded why.
    Rejected { reason: String },
}

/// One invoice line, already reduced to what commissions need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    /// Stripe product id (`prod_…`).
    pub product_id: Option<String>,
    /// Minor units, after discounts, excluding tax (see `interpret::line_commission_base`).
    pub amount_minor: i64,
    /// A metered (usage) price: overage, not the plan.
    pub metered: bool,
    /// The price says `metadata.commission = "exclude"`.
    pub excluded: bool,
}

/// A paid invoice: the sale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidInvoice {
    pub event_id: String,
    pub invoice_id: String,
    pub customer_key: String,
    pub customer_email: Option<String>,
    pub currency: Currency,
    pub lines: Vec<InvoiceLine>,
    /// Business time: the event's `created`, in milliseconds.
    pub paid_at_ms: i64,
    pub subscription_id: Option<String>,
    /// Promotion code ids (`promo_…`) of the invoice's discounts, de-duplicated, in order.
    pub promotion_codes: Vec<String>,
    /// For logs and operators; commissions use `lines`.
    pub billing_reason: Option<String>,
    pub amount_paid_minor: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaleOutcome {
    Booked {
        detail: String,
    },
    Unattributed,
    AlreadyProcessed,
    NotOnAnyProgram,
    /// Processed, nothing earned (self-referral, ended subscription, …).
    NotCommissionable {
        reason: String,
    },
}

/// An invoice whose payment failed: nothing is earned on it ("in collections").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFailed {
    pub event_id: String,
    pub invoice_id: String,
    pub customer_key: String,
    pub at_ms: i64,
}

/// A subscription that ended: no further recurring commissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionEnded {
    pub event_id: String,
    pub subscription_id: String,
    pub customer_key: String,
    pub at_ms: i64,
}

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
}
