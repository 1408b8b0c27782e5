//! The parts of Stripe's payloads this function reads, for API version
//! [`PINNED_API_VERSION`]. Field paths and their meaning: `events/stripe/NOTES.md`.
//!
//! Every type ignores unknown fields (no `deny_unknown_fields`), so a field Stripe adds does not
//! break us; fields that Stripe documents as nullable or optional are `Option` or defaulted, so
//! a `null` where we expected a list does not either. Only what the mapping really needs is
//! required.

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The Stripe API version the endpoint is pinned to. Payloads of another version are still
/// parsed (and a warning logged): after `2025-03-31.basil` the invoice line's `price` is an id
/// only, so metered / excluded flags would read as `false`; see NOTES.md.
pub const PINNED_API_VERSION: &str = "2025-02-24.acacia";

/// The API versions whose payloads the project tests against its fixtures (`events/stripe/`).
/// An event of a handled type rendered with any other version (or none) is not booked: it
/// becomes a needs-attention record until an operator accepts it (`partnerctl attention
/// replay --accept-api-version`) or a release adds the version here with its fixtures.
pub const TESTED_API_VERSIONS: &[&str] = &[PINNED_API_VERSION];

/// The event envelope. `data.object` is kept raw and parsed once the type is known.
#[derive(Debug, Deserialize)]
pub struct Event<'a> {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix seconds.
    pub created: i64,
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub livemode: bool,
    /// Set on events of a connected account (Stripe Connect).
    #[serde(default)]
    pub account: Option<String>,
    #[serde(borrow)]
    pub data: EventData<'a>,
}

#[derive(Debug, Deserialize)]
pub struct EventData<'a> {
    #[serde(borrow)]
    pub object: &'a RawValue,
    #[serde(borrow, default)]
    pub previous_attributes: Option<&'a RawValue>,
}

/// An expandable reference: an id, or the expanded object (of which only the id is read).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

/// A discount: an id (`di_…`), or the expanded Discount whose `promotion_code` we want.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DiscountRef {
    Id(String),
    Object(Discount),
}

impl DiscountRef {
    pub fn promotion_code(&self) -> Option<&str> {
        match self {
            DiscountRef::Id(_) => None,
            DiscountRef::Object(d) => d.promotion_code.as_ref().map(Expandable::id),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Discount {
    #[serde(default)]
    pub promotion_code: Option<Expandable>,
}

// ---- checkout.session.completed ------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct CheckoutSession {
    pub id: String,
    #[serde(default)]
    pub client_reference_id: Option<String>,
    #[serde(default)]
    pub customer: Option<Expandable>,
    #[serde(default)]
    pub customer_details: Option<CustomerDetails>,
    /// Only what was passed in when the session was created; `customer_details.email` is the
    /// address the customer typed.
    #[serde(default)]
    pub customer_email: Option<String>,
    #[serde(default)]
    pub discounts: Option<Vec<SessionDiscount>>,
}

#[derive(Debug, Deserialize)]
pub struct CustomerDetails {
    #[serde(default)]
    pub email: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SessionDiscount {
    #[serde(default)]
    pub promotion_code: Option<Expandable>,
}

// ---- customer.created / customer.updated ---------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
}

/// `data.previous_attributes` of a `customer.updated`: which metadata keys changed. A key that
/// was added shows as `null`, hence the `Option` values.
#[derive(Debug, Default, Deserialize)]
pub struct CustomerPrevious {
    #[serde(default)]
    pub metadata: Option<HashMap<String, Option<String>>>,
}

// ---- invoice.paid / invoice.payment_failed -------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct Invoice {
    pub id: String,
    #[serde(default)]
    pub customer: Option<Expandable>,
    #[serde(default)]
    pub customer_email: Option<String>,
    /// Lower-case ISO code.
    pub currency: String,
    #[serde(default)]
    pub subscription: Option<Expandable>,
    #[serde(default)]
    pub billing_reason: Option<String>,
    #[serde(default)]
    pub amount_paid: i64,
    /// Minor units; `amount_paid` is less when part came from the customer's credit balance.
    #[serde(default)]
    pub total: Option<i64>,
    /// The latest charge of the invoice (acacia; removed in basil): refunds and disputes of it
    /// are this invoice's.
    #[serde(default)]
    pub charge: Option<Expandable>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    /// The single discount, when there is exactly one (acacia).
    #[serde(default)]
    pub discount: Option<Discount>,
    #[serde(default)]
    pub discounts: Option<Vec<DiscountRef>>,
    pub lines: LineList,
}

#[derive(Debug, Deserialize)]
pub struct LineList {
    #[serde(default)]
    pub data: Vec<InvoiceLine>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub total_count: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct InvoiceLine {
    #[serde(default)]
    pub id: Option<String>,
    /// Minor units. Includes inclusive tax; excludes exclusive tax; discounts not subtracted.
    pub amount: i64,
    #[serde(default)]
    pub discount_amounts: Option<Vec<DiscountAmount>>,
    #[serde(default)]
    pub discounts: Option<Vec<DiscountRef>>,
    #[serde(default)]
    pub tax_amounts: Option<Vec<TaxAmount>>,
    #[serde(default)]
    pub price: Option<PriceRef>,
    /// The legacy mirror of `price` on subscription lines; read only when `price` is absent.
    #[serde(default)]
    pub plan: Option<Plan>,
}

#[derive(Debug, Deserialize)]
pub struct DiscountAmount {
    pub amount: i64,
    #[serde(default)]
    pub discount: Option<DiscountRef>,
}

#[derive(Debug, Deserialize)]
pub struct TaxAmount {
    pub amount: i64,
    #[serde(default)]
    pub inclusive: bool,
}

/// A line's price: an object in the events of the pinned version; a bare id means the price
/// (and so its product) is not in the payload.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PriceRef {
    Id(String),
    Object(Price),
}

#[derive(Debug, Deserialize)]
pub struct Price {
    #[serde(default)]
    pub product: Option<Expandable>,
    #[serde(default)]
    pub recurring: Option<Recurring>,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize)]
pub struct Recurring {
    #[serde(default)]
    pub usage_type: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Plan {
    #[serde(default)]
    pub product: Option<Expandable>,
    #[serde(default)]
    pub usage_type: Option<String>,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
}

// ---- customer.subscription.deleted ---------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct Subscription {
    pub id: String,
    #[serde(default)]
    pub customer: Option<Expandable>,
}

// ---- charge.refunded, refund.*, charge.refund.updated, charge.dispute.* ----------------------

/// `charge.refunded`: `amount_refunded` is cumulative; `refunds` is not included since
/// 2022-11-15 (NOTES.md, "Charge, refunds and disputes").
#[derive(Debug, Deserialize)]
pub struct Charge {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_refunded: i64,
    pub currency: String,
    #[serde(default)]
    pub customer: Option<Expandable>,
    /// The charge's invoice (acacia; removed in basil).
    #[serde(default)]
    pub invoice: Option<Expandable>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
}

/// A Refund (`re_…`): `refund.created`, `refund.updated`, `refund.failed`,
/// `charge.refund.updated`.
#[derive(Debug, Deserialize)]
pub struct Refund {
    pub id: String,
    pub amount: i64,
    pub currency: String,
    /// `pending`, `requires_action`, `succeeded`, `failed`, `canceled`.
    pub status: String,
    /// Nullable: refunds of some payment methods name only the payment intent.
    #[serde(default)]
    pub charge: Option<Expandable>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
}

/// A Dispute (`dp_…`): `charge.dispute.*`.
#[derive(Debug, Deserialize)]
pub struct Dispute {
    pub id: String,
    /// The disputed amount.
    pub amount: i64,
    pub currency: String,
    pub status: String,
    #[serde(default)]
    pub charge: Option<Expandable>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
}

// ---- account.updated, transfer.reversed (Stripe Connect payouts) ---------------------------

/// An Account (`acct_…`): `account.updated`. Only its `transfers` capability is read.
#[derive(Debug, Deserialize)]
pub struct Account {
    pub id: String,
    /// Requested capabilities and their states; absent or without `transfers` when the
    /// account was never given one.
    #[serde(default)]
    pub capabilities: Option<AccountCapabilities>,
}

#[derive(Debug, Deserialize)]
pub struct AccountCapabilities {
    /// `active`, `inactive` or `pending`.
    #[serde(default)]
    pub transfers: Option<String>,
}

/// A Transfer (`tr_…`): `transfer.reversed` (full and partial reversals). Our payouts carry
/// their payout item in `metadata` (`rails::stripe_connect`).
#[derive(Debug, Deserialize)]
pub struct Transfer {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub amount_reversed: i64,
    pub currency: String,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// True only once the whole amount was reversed.
    #[serde(default)]
    pub reversed: bool,
    #[serde(default)]
    pub metadata: Option<HashMap<String, String>>,
}
