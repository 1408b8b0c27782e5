//! From a verified body to what the engine should do: parsing and mapping only, no I/O.
//!
//! Nothing here fails: a body we cannot understand becomes [`Interpretation::NotAnEvent`] or
//! [`Action::NeedsAttention`], which the handler records for an operator and answers with 200
//! (Stripe retrying a payload we do not understand would not make us understand it).
//!
//! ## The commission base of an invoice line
//!
//! For API version `2025-02-24.acacia` (NOTES.md, "Invoice"):
//! - `amount` is the line's amount **before** discounts (discounts are listed separately in
//!   `discount_amounts[]`, allocated per line, invoice-level discounts included);
//! - it **includes** inclusive tax (`tax_amounts[]` with `inclusive: true`, computed on the
//!   discounted amount) and does **not** include exclusive tax (added on top of `amount`).
//!
//! So the base is `amount − Σ discount_amounts[].amount − Σ tax_amounts[inclusive].amount`
//! (the rule is `rules::sale::line_commission_base`; this module only reads the amounts), and
//! exclusive tax is left alone. The sign is kept: a proration credit line is negative and
//! lowers the base. `amount_excluding_tax` is not used: its documented meaning ("excluding all
//! tax and discounts") does not match what payloads carry (it still holds the discount).
//! Customer-balance credit and `pretax_credit_amounts` (billing credits) are not subtracted:
//! the customer paid for the line, with money held earlier.
//! Metered and `commission: exclude` lines keep their amount and are only flagged; the
//! engine decides what they earn.

use std::collections::HashSet;

use rules::plan::{InvoiceFacts, InvoicePayment, SaleLine};
use rules::sale::{line_commission_base as base_of, LineAmounts};
use rules::{Currency, Money};
use tracing::debug;

use crate::sink::{
    AccountUpdate, BindRequest, BindSource, ChargeFact, MoneyBack, PaidInvoice, PaymentFailed,
    ReversedTransfer, SubscriptionEnded, TransfersCapability,
};
use crate::stripe::{self, Expandable, PriceRef, TESTED_API_VERSIONS};
use rules::refund::{ChargeView, DisputeStatus, Observation, RefundStatus};

/// The event types this function acts on.
pub const HANDLED_TYPES: &[&str] = &[
    "checkout.session.completed",
    "customer.created",
    "customer.updated",
    "invoice.paid",
    "invoice.payment_failed",
    "customer.subscription.deleted",
];

/// Money going back: refunds and disputes of a charge, applied to the commissions of the sale
/// the charge paid ([`Action::MoneyBack`]). Dispute inquiries (`warning_*`) change nothing and
/// are ignored.
pub const MONEY_BACK_TYPES: &[&str] = &[
    "charge.refunded",
    "charge.refund.updated",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
];

/// Stripe Connect payouts: a connected account's `transfers` capability
/// ([`Action::AccountUpdated`]) and a reversal of one of our transfers
/// ([`Action::TransferReversed`]).
pub const CONNECT_PAYOUT_TYPES: &[&str] = &["account.updated", "transfer.reversed"];

/// The customer metadata key that carries a click id.
pub const REF_CLICK_KEY: &str = "ref_click";

/// The event envelope, as far as we read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub id: String,
    pub kind: String,
    /// Business time: `created` (seconds) in milliseconds.
    pub created_ms: i64,
    pub api_version: Option<String>,
    pub livemode: bool,
    /// The connected account of a Connect event.
    pub account: Option<String>,
}

impl Envelope {
    /// Rendered with an API version the project does not test against ([`TESTED_API_VERSIONS`]).
    pub fn api_version_untested(&self) -> bool {
        !self
            .api_version
            .as_deref()
            .is_some_and(|v| TESTED_API_VERSIONS.contains(&v))
    }
    /// How the engine records what delivered a write (`stripe:evt_…`).
    pub fn source_event(&self) -> String {
        format!("{}:{}", engine::sales::STRIPE_SOURCE, self.id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interpretation {
    /// Not a Stripe event object at all (not JSON, or no id / type / created / data.object).
    NotAnEvent {
        reason: String,
    },
    Event {
        envelope: Envelope,
        action: Action,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Try these bindings in order until one binds (or finds the customer already bound).
    Bind(Vec<BindRequest>),
    /// `more_lines`: the event shows only the first page of the invoice's lines
    /// (`lines.has_more`); the rest must be fetched before booking.
    InvoicePaid {
        invoice: Box<PaidInvoice>,
        more_lines: bool,
    },
    PaymentFailed(PaymentFailed),
    SubscriptionEnded(SubscriptionEnded),
    /// A refund or dispute of a charge.
    MoneyBack(Box<MoneyBack>),
    /// A connected account's `transfers` capability, as of the event.
    AccountUpdated(AccountUpdate),
    /// The platform reversed one of our payout transfers.
    TransferReversed(Box<ReversedTransfer>),
    Ignore(Ignored),
    /// A type we act on that we cannot fully read: an operator must look.
    NeedsAttention(Unreadable),
}

/// Why a payload of a handled type cannot be processed as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// `unreadable`, `price-not-expanded`, ….
    pub code: &'static str,
    pub reason: String,
}

impl Unreadable {
    fn shape(reason: String) -> Self {
        Unreadable {
            code: reason_code::UNREADABLE,
            reason,
        }
    }
}

/// Reason codes of needs-attention records written by this function.
pub mod reason_code {
    /// A signed body that is not a Stripe event.
    pub const NOT_AN_EVENT: &str = "not-an-event";
    /// A handled type in a shape we cannot read.
    pub const UNREADABLE: &str = "unreadable";
    /// An invoice line whose price is an id, not an object (its product is unknown).
    pub const PRICE_NOT_EXPANDED: &str = "price-not-expanded";
    /// `lines.has_more` and no Stripe API key configured (or Stripe refused the read).
    pub const LINES_HAS_MORE: &str = "lines-has-more";
    /// Rendered with an API version not in `TESTED_API_VERSIONS`.
    pub const API_VERSION_UNTESTED: &str = "api-version-untested";
    /// A test-mode event in a live deployment, or a live event in a test deployment.
    pub const LIVEMODE_MISMATCH: &str = "livemode-mismatch";
    /// A Connect event (`account` set) of an account the deployment does not accept.
    pub const CONNECT_ACCOUNT: &str = "connect-account";
    /// Our processing failed in a way a redelivery would repeat.
    pub const PERMANENT_FAILURE: &str = "permanent-failure";
    /// A reversed payout transfer that matches no payout item able to take the money back
    /// (metadata inconsistent, unknown item, another transfer, a partial reversal).
    pub const TRANSFER_UNMATCHED: &str = "transfer-unmatched";
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ignored {
    /// A type we do not act on.
    UnhandledType,
    /// Readable, but there is nothing to do (no click id, no customer, …).
    NothingToDo(&'static str),
}

/// Read a (verified) request body.
pub fn interpret(body: &[u8]) -> Interpretation {
    let event: stripe::Event<'_> = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => {
            let reason = if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
                format!("JSON, but not a Stripe event: {e}")
            } else {
                format!("not JSON: {e}")
            };
            return Interpretation::NotAnEvent { reason };
        }
    };
    let Some(created_ms) = event.created.checked_mul(1000) else {
        return Interpretation::NotAnEvent {
            reason: format!("created {} is out of range", event.created),
        };
    };
    let envelope = Envelope {
        id: event.id.clone(),
        kind: event.kind.clone(),
        created_ms,
        api_version: event.api_version.clone(),
        livemode: event.livemode,
        account: event.account.clone(),
    };
    let action = match map(&envelope, &event) {
        Ok(a) => a,
        Err(why) => Action::NeedsAttention(why),
    };
    Interpretation::Event { envelope, action }
}

fn parse<'a, T: serde::Deserialize<'a>>(
    raw: &'a serde_json::value::RawValue,
) -> Result<T, Unreadable> {
    serde_json::from_str(raw.get()).map_err(|e| Unreadable::shape(format!("data.object: {e}")))
}

fn map(env: &Envelope, event: &stripe::Event<'_>) -> Result<Action, Unreadable> {
    let object = event.data.object;
    Ok(match env.kind.as_str() {
        "checkout.session.completed" => checkout_bindings(env, parse(object)?),
        "customer.created" => customer_binding(env, parse(object)?, None),
        "customer.updated" => {
            let previous = event
                .data
                .previous_attributes
                .and_then(|raw| serde_json::from_str(raw.get()).ok());
            customer_binding(env, parse(object)?, Some(previous))
        }
        "invoice.paid" => {
            let inv: stripe::Invoice = parse(object)?;
            let more_lines = inv.lines.has_more;
            Action::InvoicePaid {
                invoice: Box::new(paid_invoice(env, inv)?),
                more_lines,
            }
        }
        "invoice.payment_failed" => {
            let inv: stripe::Invoice = parse(object)?;
            match inv.customer {
                None => Action::Ignore(Ignored::NothingToDo("the invoice has no customer")),
                Some(c) => Action::PaymentFailed(PaymentFailed {
                    event_id: env.id.clone(),
                    invoice_id: inv.id,
                    customer_key: c.id().to_string(),
                    at_ms: env.created_ms,
                }),
            }
        }
        "charge.refunded" => charge_refunded(env, parse(object)?)?,
        "charge.refund.updated" | "refund.created" | "refund.updated" | "refund.failed" => {
            refund(env, parse(object)?)?
        }
        kind if kind.starts_with("charge.dispute.") && MONEY_BACK_TYPES.contains(&kind) => {
            dispute(env, parse(object)?)?
        }
        "account.updated" => account_updated(env, parse(object)?)?,
        "transfer.reversed" => transfer_reversed(env, parse(object)?)?,
        "customer.subscription.deleted" => {
            let sub: stripe::Subscription = parse(object)?;
            match sub.customer {
                None => Action::Ignore(Ignored::NothingToDo("the subscription has no customer")),
                Some(c) => Action::SubscriptionEnded(SubscriptionEnded {
                    event_id: env.id.clone(),
                    subscription_id: sub.id,
                    customer_key: c.id().to_string(),
                    at_ms: env.created_ms,
                }),
            }
        }
        _ => Action::Ignore(Ignored::UnhandledType),
    })
}

/// The key money going back is kept under: the charge, else the payment intent.
fn charge_key(
    charge: Option<&Expandable>,
    payment_intent: Option<&Expandable>,
    what: &str,
) -> Result<String, Unreadable> {
    charge
        .or(payment_intent)
        .map(|e| e.id().to_string())
        .ok_or_else(|| Unreadable::shape(format!("the {what} names no charge or payment intent")))
}

fn currency_of(code: &str) -> Result<Currency, Unreadable> {
    Currency::new(code).map_err(|e| Unreadable::shape(e.to_string()))
}

/// `charge.refunded`: the charge's cumulative view of its refunds.
fn charge_refunded(env: &Envelope, c: stripe::Charge) -> Result<Action, Unreadable> {
    let currency = currency_of(&c.currency)?;
    Ok(Action::MoneyBack(Box::new(MoneyBack {
        event_id: env.id.clone(),
        source: "stripe".into(),
        at_ms: env.created_ms,
        charge_key: c.id,
        payment_intent: c.payment_intent.as_ref().map(|p| p.id().to_string()),
        invoice_id: c.invoice.as_ref().map(|i| i.id().to_string()),
        customer_key: c.customer.as_ref().map(|i| i.id().to_string()),
        currency: Some(currency),
        fact: ChargeFact::Charge {
            amount: c.amount,
            view: ChargeView {
                amount_refunded: c.amount_refunded,
                at_ms: env.created_ms,
                event_id: env.id.clone(),
            },
        },
    })))
}

/// `refund.*`, `charge.refund.updated`: one refund at the status the event reports.
fn refund(env: &Envelope, r: stripe::Refund) -> Result<Action, Unreadable> {
    let status = RefundStatus::parse(&r.status)
        .ok_or_else(|| Unreadable::shape(format!("refund status {:?} is not known", r.status)))?;
    Ok(Action::MoneyBack(Box::new(MoneyBack {
        event_id: env.id.clone(),
        source: "stripe".into(),
        at_ms: env.created_ms,
        charge_key: charge_key(r.charge.as_ref(), r.payment_intent.as_ref(), "refund")?,
        payment_intent: r.payment_intent.as_ref().map(|p| p.id().to_string()),
        invoice_id: None,
        customer_key: None,
        currency: Some(currency_of(&r.currency)?),
        fact: ChargeFact::Refund(Observation {
            id: r.id,
            amount: r.amount,
            status,
            at_ms: env.created_ms,
            event_id: env.id.clone(),
        }),
    })))
}

/// `charge.dispute.*`: the disputed amount at the dispute's status; an inquiry changes nothing.
fn dispute(env: &Envelope, d: stripe::Dispute) -> Result<Action, Unreadable> {
    let status = DisputeStatus::parse(&d.status)
        .ok_or_else(|| Unreadable::shape(format!("dispute status {:?} is not known", d.status)))?;
    if !status.takes_back() && d.status.starts_with("warning_") {
        return Ok(Action::Ignore(Ignored::NothingToDo(
            "a dispute inquiry (warning_*) changes nothing",
        )));
    }
    Ok(Action::MoneyBack(Box::new(MoneyBack {
        event_id: env.id.clone(),
        source: "stripe".into(),
        at_ms: env.created_ms,
        charge_key: charge_key(d.charge.as_ref(), d.payment_intent.as_ref(), "dispute")?,
        payment_intent: d.payment_intent.as_ref().map(|p| p.id().to_string()),
        invoice_id: None,
        customer_key: None,
        currency: Some(currency_of(&d.currency)?),
        fact: ChargeFact::Dispute(Observation {
            id: d.id,
            amount: d.amount,
            status,
            at_ms: env.created_ms,
            event_id: env.id.clone(),
        }),
    })))
}

/// `account.updated`: the account's `transfers` capability as of the event. Delivered to a
/// Connect endpoint, the event's `account` is the account itself.
fn account_updated(env: &Envelope, a: stripe::Account) -> Result<Action, Unreadable> {
    if !a.id.starts_with("acct_") {
        return Err(Unreadable::shape(format!(
            "account id {:?} is not an acct_ id",
            a.id
        )));
    }
    if let Some(other) = env.account.as_deref().filter(|e| *e != a.id) {
        return Err(Unreadable::shape(format!(
            "an event of connected account {other} about account {}",
            a.id
        )));
    }
    let Some(value) = a.capabilities.and_then(|c| c.transfers) else {
        return Ok(Action::Ignore(Ignored::NothingToDo(
            "the account has no transfers capability",
        )));
    };
    let transfers = TransfersCapability::parse(&value).ok_or_else(|| {
        Unreadable::shape(format!(
            "account {}: transfers capability {value:?} is not known",
            a.id
        ))
    })?;
    Ok(Action::AccountUpdated(AccountUpdate {
        event_id: env.id.clone(),
        account_id: a.id,
        transfers,
        at_ms: env.created_ms,
    }))
}

/// `transfer.reversed`: a reversal of one of our payouts (`metadata.payout_item`); any other
/// transfer of the platform is not ours to book.
fn transfer_reversed(env: &Envelope, t: stripe::Transfer) -> Result<Action, Unreadable> {
    let transfer = ReversedTransfer {
        event_id: env.id.clone(),
        created_ms: t.created.checked_mul(1000).ok_or_else(|| {
            Unreadable::shape(format!("transfer created {} is out of range", t.created))
        })?,
        transfer_id: t.id,
        amount: t.amount,
        amount_reversed: t.amount_reversed,
        currency: t.currency,
        reversed: t.reversed,
        metadata: t.metadata.unwrap_or_default(),
    };
    if !transfer.is_payout() {
        return Ok(Action::Ignore(Ignored::NothingToDo(
            "not a partner payout: the transfer has no metadata.payout_item",
        )));
    }
    Ok(Action::TransferReversed(Box::new(transfer)))
}

fn non_blank(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

/// `checkout.session.completed`: the click id first, then each promotion code.
fn checkout_bindings(env: &Envelope, s: stripe::CheckoutSession) -> Action {
    let Some(customer) = s.customer.as_ref().map(Expandable::id) else {
        return Action::Ignore(Ignored::NothingToDo("the session has no customer"));
    };
    let email = non_blank(s.customer_details.as_ref().and_then(|d| d.email.as_deref()))
        .or_else(|| non_blank(s.customer_email.as_deref()));
    let mut sources = vec![];
    if let Some(click) = non_blank(s.client_reference_id.as_deref()) {
        sources.push(BindSource::ClickId(click));
    }
    let mut seen = HashSet::new();
    for d in s.discounts.iter().flatten() {
        if let Some(code) = non_blank(d.promotion_code.as_ref().map(Expandable::id)) {
            if seen.insert(code.clone()) {
                sources.push(BindSource::Coupon(code));
            }
        }
    }
    if sources.is_empty() {
        return Action::Ignore(Ignored::NothingToDo(
            "no client_reference_id and no promotion code",
        ));
    }
    Action::Bind(
        sources
            .into_iter()
            .map(|source| BindRequest {
                program_id: None,
                customer_key: customer.to_string(),
                email: email.clone(),
                source,
                at_ms: env.created_ms,
                source_event: env.source_event(),
            })
            .collect(),
    )
}

/// `customer.created` / `customer.updated`: `metadata.ref_click`. On an update whose
/// `previous_attributes` show that `ref_click` did not change, nothing is done (the binding was
/// attempted when it was set); without readable `previous_attributes` the binding is attempted
/// (the engine answers "already bound" to a repeat).
fn customer_binding(
    env: &Envelope,
    c: stripe::Customer,
    previous: Option<Option<stripe::CustomerPrevious>>,
) -> Action {
    let click = non_blank(
        c.metadata
            .as_ref()
            .and_then(|m| m.get(REF_CLICK_KEY))
            .map(String::as_str),
    );
    let Some(click) = click else {
        return Action::Ignore(Ignored::NothingToDo("no metadata.ref_click"));
    };
    if let Some(Some(prev)) = previous {
        let changed = prev
            .metadata
            .as_ref()
            .is_some_and(|m| m.contains_key(REF_CLICK_KEY));
        if !changed {
            return Action::Ignore(Ignored::NothingToDo(
                "metadata.ref_click did not change in this update",
            ));
        }
    }
    Action::Bind(vec![BindRequest {
        program_id: None,
        customer_key: c.id,
        email: non_blank(c.email.as_deref()),
        source: BindSource::ClickId(click),
        at_ms: env.created_ms,
        source_event: env.source_event(),
    }])
}

/// The commission base of one line: after discounts, excluding tax (see the module doc).
pub fn line_commission_base(line: &stripe::InvoiceLine) -> Result<i64, String> {
    let discounts: Vec<i64> = line
        .discount_amounts
        .iter()
        .flatten()
        .map(|d| d.amount)
        .collect();
    let inclusive_taxes: Vec<i64> = line
        .tax_amounts
        .iter()
        .flatten()
        .filter(|t| t.inclusive)
        .map(|t| t.amount)
        .collect();
    base_of(LineAmounts {
        amount: line.amount,
        discounts: &discounts,
        inclusive_taxes: &inclusive_taxes,
    })
    .ok_or_else(|| format!("line {:?}: amounts overflow", line.id))
}

fn invoice_line(line: &stripe::InvoiceLine, currency: Currency) -> Result<SaleLine, Unreadable> {
    let amount_minor = line_commission_base(line).map_err(Unreadable::shape)?;
    let (product, usage_type, metadata) = match (&line.price, &line.plan) {
        (Some(PriceRef::Id(price)), _) => {
            return Err(Unreadable {
                code: reason_code::PRICE_NOT_EXPANDED,
                reason: format!(
                    "line {}: price {price} is an id, not an object, so its product is unknown",
                    line.id.as_deref().unwrap_or("?")
                ),
            })
        }
        (Some(PriceRef::Object(p)), _) => (
            p.product.as_ref(),
            p.recurring.as_ref().and_then(|r| r.usage_type.as_deref()),
            p.metadata.as_ref(),
        ),
        (None, Some(p)) => (
            p.product.as_ref(),
            p.usage_type.as_deref(),
            p.metadata.as_ref(),
        ),
        (None, None) => (None, None, None),
    };
    Ok(SaleLine {
        product_id: product.map(|p| p.id().to_string()),
        amount: Money::new(amount_minor, currency),
        metered: usage_type == Some("metered"),
        excluded_by_metadata: metadata
            .and_then(|m| m.get("commission"))
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("exclude")),
    })
}

/// Promotion code ids of an invoice: `discount.promotion_code`, then expanded `discounts[]`,
/// then expanded line discounts; de-duplicated, first occurrence kept.
fn promotion_codes(inv: &stripe::Invoice) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    let mut push = |code: Option<&str>| {
        if let Some(code) = non_blank(code) {
            if !out.contains(&code) {
                out.push(code);
            }
        }
    };
    push(
        inv.discount
            .as_ref()
            .and_then(|d| d.promotion_code.as_ref())
            .map(Expandable::id),
    );
    for d in inv.discounts.iter().flatten() {
        push(d.promotion_code());
    }
    for code in line_promotion_codes(&inv.lines.data) {
        push(Some(&code));
    }
    out
}

/// Promotion codes of expanded line discounts, in order, de-duplicated.
fn line_promotion_codes(lines: &[stripe::InvoiceLine]) -> Vec<String> {
    let mut out: Vec<String> = vec![];
    for line in lines {
        let codes = line
            .discounts
            .iter()
            .flatten()
            .map(|d| d.promotion_code())
            .chain(
                line.discount_amounts
                    .iter()
                    .flatten()
                    .map(|a| a.discount.as_ref().and_then(|d| d.promotion_code())),
            );
        for code in codes.flatten().filter_map(|c| non_blank(Some(c))) {
            if !out.contains(&code) {
                out.push(code);
            }
        }
    }
    out
}

/// Replace an invoice's lines by the complete list fetched from Stripe (`lines.has_more`), and
/// add the promotion codes of the lines that were not in the event.
pub fn complete_lines(
    inv: &mut PaidInvoice,
    all_lines: &[stripe::InvoiceLine],
) -> Result<(), Unreadable> {
    let currency = inv.facts.currency;
    inv.facts.lines = all_lines
        .iter()
        .map(|l| invoice_line(l, currency))
        .collect::<Result<Vec<_>, _>>()?;
    for code in line_promotion_codes(all_lines) {
        if !inv.promotion_codes.contains(&code) {
            inv.promotion_codes.push(code);
        }
    }
    Ok(())
}

fn paid_invoice(env: &Envelope, inv: stripe::Invoice) -> Result<PaidInvoice, Unreadable> {
    let customer = inv
        .customer
        .as_ref()
        .map(|c| c.id().to_string())
        .ok_or_else(|| Unreadable::shape("the invoice has no customer".to_string()))?;
    let currency = Currency::new(&inv.currency).map_err(|e| Unreadable::shape(e.to_string()))?;
    let lines = inv
        .lines
        .data
        .iter()
        .map(|l| invoice_line(l, currency))
        .collect::<Result<Vec<_>, _>>()?;
    let promotion_codes = promotion_codes(&inv);
    debug!(
        invoice = %inv.id,
        amount_paid = inv.amount_paid,
        billing_reason = inv.billing_reason.as_deref().unwrap_or(""),
        lines = lines.len(),
        "invoice paid"
    );
    let paid_at = chrono::DateTime::from_timestamp_millis(env.created_ms)
        .ok_or_else(|| Unreadable::shape(format!("created {} is out of range", env.created_ms)))?;
    Ok(PaidInvoice {
        event_id: env.id.clone(),
        source: "stripe".into(),
        customer_key: customer,
        customer_email: non_blank(inv.customer_email.as_deref()),
        subscription_id: inv.subscription.as_ref().map(|s| s.id().to_string()),
        promotion_codes,
        facts: InvoiceFacts {
            invoice_id: inv.id,
            paid_at,
            lines,
            currency,
            payment: Some(InvoicePayment {
                charge_key: inv
                    .charge
                    .as_ref()
                    .or(inv.payment_intent.as_ref())
                    .map(|c| c.id().to_string()),
                payment_intent: inv.payment_intent.as_ref().map(|p| p.id().to_string()),
                amount_paid: inv.amount_paid,
                total: inv.total.unwrap_or(inv.amount_paid),
            }),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(json: &str) -> stripe::InvoiceLine {
        serde_json::from_str(json).expect("line")
    }

    #[test]
    fn base_subtracts_discounts_and_inclusive_tax_only() {
        // 120.00 incl. 20 % VAT, 20.00 off: VAT on 100.00 is 16.67; base 83.33.
        let l = line(
            r#"{"amount":12000,"discount_amounts":[{"amount":2000,"discount":"di_1"}],
                "tax_amounts":[{"amount":1667,"inclusive":true,"tax_rate":"txr_1"}]}"#,
        );
        assert_eq!(line_commission_base(&l), Ok(8333));
        // Exclusive tax is not in `amount`: nothing to subtract.
        let l = line(
            r#"{"amount":10000,"discount_amounts":[],
                "tax_amounts":[{"amount":2000,"inclusive":false}]}"#,
        );
        assert_eq!(line_commission_base(&l), Ok(10000));
        // Several discounts and null lists.
        let l = line(
            r#"{"amount":10000,"discount_amounts":[{"amount":1000,"discount":"di_1"},{"amount":500,"discount":"di_2"}],
                "tax_amounts":null}"#,
        );
        assert_eq!(line_commission_base(&l), Ok(8500));
        let l = line(r#"{"amount":700,"discount_amounts":null}"#);
        assert_eq!(line_commission_base(&l), Ok(700));
    }

    #[test]
    fn a_proration_credit_stays_negative() {
        let l = line(r#"{"amount":-5000,"discount_amounts":[],"tax_amounts":[]}"#);
        assert_eq!(line_commission_base(&l), Ok(-5000));
    }

    #[test]
    fn overflow_is_unreadable_not_a_panic() {
        let l = line(&format!(
            r#"{{"amount":{},"discount_amounts":[{{"amount":1,"discount":"di_1"}}]}}"#,
            i64::MIN
        ));
        assert!(line_commission_base(&l).is_err());
    }

    #[test]
    fn plan_is_read_when_price_is_absent() {
        let l = line(
            r#"{"amount":100,"price":null,
                "plan":{"product":"prod_x","usage_type":"metered","metadata":{"commission":"exclude"}}}"#,
        );
        assert_eq!(
            invoice_line(&l, Currency::USD),
            Ok::<_, Unreadable>(SaleLine {
                product_id: Some("prod_x".into()),
                amount: Money::new(100, Currency::USD),
                metered: true,
                excluded_by_metadata: true
            })
        );
    }

    #[test]
    fn expanded_product_and_discounts() {
        let l = line(
            r#"{"amount":100,"price":{"product":{"id":"prod_y","object":"product","name":"Y"},
                "recurring":{"usage_type":"licensed"},"metadata":{}},
                "discounts":[{"id":"di_9","object":"discount","promotion_code":{"id":"promo_line","code":"LINE"}}],
                "discount_amounts":[{"amount":10,"discount":{"id":"di_9","promotion_code":"promo_amt"}}]}"#,
        );
        let inv_line = invoice_line(&l, Currency::USD).expect("line");
        assert_eq!(inv_line.product_id.as_deref(), Some("prod_y"));
        assert_eq!(inv_line.amount.minor, 90);
        assert!(!inv_line.metered && !inv_line.excluded_by_metadata);
        let inv = stripe::Invoice {
            id: "in_1".into(),
            customer: Some(Expandable::Id("cus_1".into())),
            customer_email: None,
            currency: "eur".into(),
            subscription: None,
            billing_reason: None,
            amount_paid: 0,
            total: None,
            charge: None,
            payment_intent: None,
            discount: None,
            discounts: Some(vec![
                stripe::DiscountRef::Id("di_1".into()),
                stripe::DiscountRef::Object(stripe::Discount {
                    promotion_code: Some(Expandable::Id("promo_inv".into())),
                }),
            ]),
            lines: stripe::LineList {
                data: vec![l],
                has_more: false,
                total_count: None,
            },
        };
        assert_eq!(
            promotion_codes(&inv),
            vec!["promo_inv", "promo_line", "promo_amt"]
        );
    }

    #[test]
    fn not_an_event() {
        assert!(matches!(
            interpret(b"not json at all"),
            Interpretation::NotAnEvent { reason } if reason.starts_with("not JSON")
        ));
        assert!(matches!(
            interpret(br#"[1,2,3]"#),
            Interpretation::NotAnEvent { reason } if reason.starts_with("JSON, but")
        ));
        assert!(matches!(
            interpret(br#"{"id":"evt_1","type":"invoice.paid"}"#),
            Interpretation::NotAnEvent { .. }
        ));
        assert!(matches!(
            interpret(br#"{"id":"evt_1","type":"x","created":9223372036854775807,"data":{"object":{}}}"#),
            Interpretation::NotAnEvent { reason } if reason.contains("out of range")
        ));
    }

    #[test]
    fn known_type_in_an_unknown_shape_is_ignored() {
        let body =
            br#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":{"id":"in_1"}}}"#;
        let Interpretation::Event { action, envelope } = interpret(body) else {
            panic!("an event")
        };
        assert!(envelope.api_version_untested());
        assert!(
            matches!(action, Action::NeedsAttention(ref u) if u.code == reason_code::UNREADABLE)
        );
        let body = br#"{"id":"evt_1","type":"invoice.paid","created":1,"data":{"object":{"id":"in_1","customer":"cus_1","currency":"dollars","lines":{"data":[]}}}}"#;
        let Interpretation::Event { action, .. } = interpret(body) else {
            panic!("an event")
        };
        assert!(matches!(action, Action::NeedsAttention(u) if u.reason.contains("currency")));
    }
}
