//! `POST /webhooks/sale`: the sale feed, for merchants who bill outside Stripe (Shopify, Paddle,
//! Chargebee, their own billing). Parsing, validation and mapping only, no I/O; the handler
//! ([`crate::handler::process_feed`]) hands the result to the same engine operations as
//! Stripe's events (no second implementation of any rule).
//!
//! ## The format (version 1, `docs/openapi.yaml` `SaleFeedEvent`)
//!
//! One JSON object per request, signed like Stripe's webhooks: `Sale-Signature: t=…,v1=…`
//! (HMAC-SHA256 of `"{t}.{raw body}"`, several `v1` while rotating, ±300 s), with the secret of
//! the source named by `Sale-Source` (each source has its own, [`FeedSources`]).
//!
//! | field | sale | refund | chargeback | chargeback_won |
//! |---|---|---|---|---|
//! | `id` (unique per source: processed once) | required | required | required | required |
//! | `type` | `sale` | `refund` | `chargeback` | `chargeback_won` |
//! | `occurred_at` (RFC 3339: business time) | required | required | required | required |
//! | `order_id` (the sale; refunds name it) | required | required | required | required |
//! | `currency` (ISO 4217) | required | required | required | required |
//! | `customer.key`, `customer.email` | key required | optional | optional | optional |
//! | `click_id`, `promotion_codes`, `subscription_id` | optional | – | – | – |
//! | `amount_paid` (charged, tax included) | default Σ lines | – | – | – |
//! | `lines[]`: `product_id`, `amount`, `type`, `exclude_from_commission` | ≥ 1 | – | – | – |
//! | `amount` | – | required > 0 | required > 0 | optional |
//! | `refund_id` / `chargeback_id` | – | default `id` | default `order_id` | default `order_id` |
//! | `metadata` (any JSON, ignored) | optional | optional | optional | optional |
//!
//! A line's `amount` is its commission base in minor units (after discounts, without tax; a
//! credit is negative). `type` is `one_time` (default), `subscription` (a fee of
//! `subscription_id`, which is then required) or `metered` (usage: never earns). Refunds and
//! chargebacks take back pro rata: `amount ÷ amount_paid` of each commission of the sale.
//!
//! Order ids and event ids are the source's own: the engine keeps them as `{source}:{order_id}`
//! (invoice and charge) and `feed:{source}` (processed markers), so two sources never collide.
//! Unknown fields are refused (a misspelt `click_id` would silently lose an attribution).

use std::collections::BTreeMap;

use rules::plan::{InvoiceFacts, InvoicePayment, SaleLine};
use rules::refund::{DisputeStatus, Observation, RefundStatus};
use rules::{Currency, Money};
use serde::Deserialize;

use crate::signature::SigningSecrets;
use crate::sink::{BindRequest, BindSource, ChargeFact, MoneyBack, PaidInvoice};

/// The header naming the source (its secret verifies the signature).
pub const SOURCE_HEADER: &str = "sale-source";
/// The signature header, shaped like `Stripe-Signature`.
pub const SIGNATURE_HEADER: &str = "sale-signature";
/// Prefix of the engine source of a feed (`feed:{name}`).
pub const ENGINE_SOURCE_PREFIX: &str = "feed:";

/// A source name: 1–40 of `a-z 0-9 - _` (it becomes part of order and event keys).
pub fn valid_source_name(name: &str) -> bool {
    (1..=40).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The engine source of a feed source (`feed:billing`).
pub fn engine_source(name: &str) -> String {
    format!("{ENGINE_SOURCE_PREFIX}{name}")
}

/// The feed source of an engine source, if it is one (`feed:billing` → `billing`).
pub fn source_of_engine_source(source: &str) -> Option<&str> {
    source
        .strip_prefix(ENGINE_SOURCE_PREFIX)
        .filter(|n| valid_source_name(n))
}

/// Each configured source and its signing secrets. `Debug` never prints a secret.
#[derive(Debug, Clone, Default)]
pub struct FeedSources(BTreeMap<String, SigningSecrets>);

/// Why a sources list cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourcesError {
    #[error("source name {0:?} is not 1-40 of a-z, 0-9, - and _")]
    BadName(String),
    #[error("source {0:?} has no secret")]
    NoSecret(String),
    #[error("source {0:?} is listed twice")]
    Twice(String),
    #[error("{0:?} is not name=secret[,secret…]")]
    Shape(String),
}

impl FeedSources {
    /// No source: every feed request is refused.
    pub fn none() -> Self {
        FeedSources::default()
    }

    /// Add a source with its comma-separated secrets (current first, then older ones).
    pub fn add(&mut self, name: &str, secrets: &str) -> Result<(), SourcesError> {
        if !valid_source_name(name) {
            return Err(SourcesError::BadName(name.into()));
        }
        let s = SigningSecrets::from_list(secrets)
            .ok_or_else(|| SourcesError::NoSecret(name.into()))?;
        if self.0.insert(name.to_string(), s).is_some() {
            return Err(SourcesError::Twice(name.into()));
        }
        Ok(())
    }

    /// `billing=whsec_a,whsec_old;shop=whsec_b` (local development and tests).
    pub fn from_spec(spec: &str) -> Result<Self, SourcesError> {
        let mut out = FeedSources::none();
        for part in spec.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (name, secrets) = part
                .split_once('=')
                .ok_or_else(|| SourcesError::Shape(part.chars().take(40).collect()))?;
            out.add(name.trim(), secrets)?;
        }
        Ok(out)
    }

    pub fn secrets(&self, name: &str) -> Option<&SigningSecrets> {
        self.0.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A field of the event that is missing or wrong: the answer names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path (`lines[1].amount`, `customer.key`); `.` for the body itself.
    pub field: String,
    pub detail: String,
    /// Not JSON at all (syntax, encoding, truncated): a 400, not a 422.
    pub malformed: bool,
}

impl FieldError {
    fn new(field: impl Into<String>, detail: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            detail: detail.into(),
            malformed: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EventType {
    Sale,
    Refund,
    Chargeback,
    ChargebackWon,
}

impl EventType {
    fn as_str(self) -> &'static str {
        match self {
            EventType::Sale => "sale",
            EventType::Refund => "refund",
            EventType::Chargeback => "chargeback",
            EventType::ChargebackWon => "chargeback_won",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum LineType {
    #[default]
    OneTime,
    Subscription,
    Metered,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCustomer {
    key: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireLine {
    #[serde(default)]
    product_id: Option<String>,
    amount: i64,
    #[serde(default, rename = "type")]
    kind: LineType,
    #[serde(default)]
    exclude_from_commission: bool,
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEvent {
    id: String,
    #[serde(rename = "type")]
    kind: EventType,
    occurred_at: String,
    order_id: String,
    currency: String,
    #[serde(default)]
    customer: Option<WireCustomer>,
    #[serde(default)]
    click_id: Option<String>,
    #[serde(default)]
    promotion_codes: Option<Vec<String>>,
    #[serde(default)]
    subscription_id: Option<String>,
    #[serde(default)]
    amount_paid: Option<i64>,
    #[serde(default)]
    lines: Option<Vec<WireLine>>,
    #[serde(default)]
    amount: Option<i64>,
    #[serde(default)]
    refund_id: Option<String>,
    #[serde(default)]
    chargeback_id: Option<String>,
    #[serde(default)]
    #[allow(dead_code)]
    metadata: Option<serde_json::Value>,
}

/// A feed event, read: its envelope and what the engine should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEvent {
    pub id: String,
    /// `sale`, `refund`, `chargeback`, `chargeback_won`.
    pub kind: &'static str,
    /// Business time: `occurred_at`.
    pub at_ms: i64,
    pub action: FeedAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedAction {
    /// Bind by the click id first (when given), then book the sale.
    Sale {
        bind: Option<BindRequest>,
        invoice: Box<PaidInvoice>,
    },
    MoneyBack(Box<MoneyBack>),
}

/// The id as the engine keys it: no `#`, no control characters, at most 200 bytes.
fn id_field(field: &str, v: &str) -> Result<String, FieldError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if v.len() > 120 || v.chars().any(|c| c == '#' || c.is_control()) {
        return Err(FieldError::new(
            field,
            "at most 120 bytes, without '#' or control characters",
        ));
    }
    Ok(v.to_string())
}

fn optional_text(v: Option<&str>) -> Option<String> {
    v.map(str::trim).filter(|s| !s.is_empty()).map(String::from)
}

/// Read a body of `source` (verified). The error names the first field that is wrong.
pub fn read(source: &str, body: &[u8]) -> Result<FeedEvent, FieldError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let wire: WireEvent = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let malformed = inner.is_syntax() || inner.is_eof() || inner.is_io();
        let detail = inner.to_string();
        // serde's messages end with " at line L column C": keep only what is wrong.
        let detail = detail
            .split(" at line ")
            .next()
            .unwrap_or(&detail)
            .to_string();
        let field = if malformed {
            ".".to_string()
        } else if path == "." || path == "?" || path.is_empty() {
            missing_field(&detail).unwrap_or_else(|| ".".into())
        } else {
            path
        };
        FieldError {
            malformed,
            ..FieldError::new(field, detail)
        }
    })?;
    map(source, wire)
}

/// `missing field `x`` at the top level names `x`.
fn missing_field(detail: &str) -> Option<String> {
    let rest = detail.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_string())
}

fn map(source: &str, w: WireEvent) -> Result<FeedEvent, FieldError> {
    let id = id_field("id", &w.id)?;
    let at = chrono::DateTime::parse_from_rfc3339(w.occurred_at.trim()).map_err(|e| {
        FieldError::new(
            "occurred_at",
            format!("not an RFC 3339 time (2026-12-01T10:00:00Z): {e}"),
        )
    })?;
    let at_ms = at.timestamp_millis();
    let order_id = id_field("order_id", &w.order_id)?;
    let currency =
        Currency::new(w.currency.trim()).map_err(|e| FieldError::new("currency", e.to_string()))?;
    let order_key = format!("{source}:{order_id}");
    let customer_key = match w.customer.as_ref().and_then(|c| c.key.as_deref()) {
        Some(k) => Some(id_field("customer.key", k)?),
        None => None,
    };
    let email = w
        .customer
        .as_ref()
        .and_then(|c| optional_text(c.email.as_deref()));
    if let Some(e) = &email {
        if !e.contains('@') || e.len() > 254 {
            return Err(FieldError::new("customer.email", "not an e-mail address"));
        }
    }
    let engine_source = engine_source(source);
    let refuse = |field: &str, what: &str| -> Result<(), FieldError> {
        Err(FieldError::new(
            field,
            format!("not a field of a {what} event"),
        ))
    };
    let kind = w.kind.as_str();
    if w.kind != EventType::Sale {
        for (present, field) in [
            (w.lines.is_some(), "lines"),
            (w.click_id.is_some(), "click_id"),
            (w.promotion_codes.is_some(), "promotion_codes"),
            (w.amount_paid.is_some(), "amount_paid"),
            (w.subscription_id.is_some(), "subscription_id"),
        ] {
            if present {
                refuse(field, kind)?;
            }
        }
    }
    let action = match w.kind {
        EventType::Sale => {
            for (present, field) in [
                (w.amount.is_some(), "amount"),
                (w.refund_id.is_some(), "refund_id"),
                (w.chargeback_id.is_some(), "chargeback_id"),
            ] {
                if present {
                    refuse(field, kind)?;
                }
            }
            let customer_key =
                customer_key.ok_or_else(|| FieldError::new("customer.key", "required"))?;
            let subscription_id = match w.subscription_id.as_deref() {
                Some(s) => Some(id_field("subscription_id", s)?),
                None => None,
            };
            let wire_lines = w.lines.unwrap_or_default();
            if wire_lines.is_empty() {
                return Err(FieldError::new("lines", "at least one line is required"));
            }
            let mut lines = Vec::with_capacity(wire_lines.len());
            let mut total: i64 = 0;
            for (i, l) in wire_lines.iter().enumerate() {
                let product_id = match l.product_id.as_deref() {
                    Some(p) => Some(id_field(&format!("lines[{i}].product_id"), p)?),
                    None => None,
                };
                if l.kind == LineType::Subscription && subscription_id.is_none() {
                    return Err(FieldError::new(
                        "subscription_id",
                        format!("required: lines[{i}] is a subscription fee"),
                    ));
                }
                total = total.checked_add(l.amount).ok_or_else(|| {
                    FieldError::new(format!("lines[{i}].amount"), "the sum overflows")
                })?;
                lines.push(SaleLine {
                    product_id,
                    amount: Money::new(l.amount, currency),
                    metered: l.kind == LineType::Metered,
                    excluded_by_metadata: l.exclude_from_commission,
                });
            }
            let amount_paid = match w.amount_paid {
                Some(a) if a < 0 => {
                    return Err(FieldError::new("amount_paid", "must not be negative"))
                }
                Some(a) => a,
                None => total.max(0),
            };
            let mut promotion_codes: Vec<String> = vec![];
            for (i, c) in w.promotion_codes.iter().flatten().enumerate() {
                let c = id_field(&format!("promotion_codes[{i}]"), c)?;
                if !promotion_codes.contains(&c) {
                    promotion_codes.push(c);
                }
            }
            let paid_at = chrono::DateTime::from_timestamp_millis(at_ms)
                .ok_or_else(|| FieldError::new("occurred_at", "out of range"))?;
            let bind = optional_text(w.click_id.as_deref()).map(|click| BindRequest {
                program_id: None,
                customer_key: customer_key.clone(),
                email: email.clone(),
                source: BindSource::ClickId(click),
                at_ms,
                source_event: format!("{engine_source}:{id}"),
            });
            FeedAction::Sale {
                bind,
                invoice: Box::new(PaidInvoice {
                    event_id: id.clone(),
                    source: engine_source,
                    customer_key,
                    customer_email: email,
                    subscription_id,
                    promotion_codes,
                    facts: InvoiceFacts {
                        invoice_id: order_key.clone(),
                        paid_at,
                        lines,
                        currency,
                        payment: Some(InvoicePayment {
                            charge_key: Some(order_key),
                            payment_intent: None,
                            amount_paid,
                            // The feed has no credit balance: everything charged was paid.
                            total: amount_paid,
                        }),
                    },
                }),
            }
        }
        EventType::Refund | EventType::Chargeback | EventType::ChargebackWon => {
            let amount = match (w.kind, w.amount) {
                (EventType::ChargebackWon, a) => a.unwrap_or(0).max(0),
                (_, Some(a)) if a > 0 => a,
                (_, Some(_)) => return Err(FieldError::new("amount", "must be positive")),
                (_, None) => return Err(FieldError::new("amount", "required")),
            };
            let fact = if w.kind == EventType::Refund {
                if w.chargeback_id.is_some() {
                    refuse("chargeback_id", kind)?;
                }
                let refund_id = match w.refund_id.as_deref() {
                    Some(r) => id_field("refund_id", r)?,
                    None => id.clone(),
                };
                ChargeFact::Refund(Observation {
                    id: refund_id,
                    amount,
                    status: RefundStatus::Succeeded,
                    at_ms,
                    event_id: id.clone(),
                })
            } else {
                if w.refund_id.is_some() {
                    refuse("refund_id", kind)?;
                }
                let chargeback_id = match w.chargeback_id.as_deref() {
                    Some(c) => id_field("chargeback_id", c)?,
                    None => order_id.clone(),
                };
                ChargeFact::Dispute(Observation {
                    id: chargeback_id,
                    amount,
                    status: if w.kind == EventType::Chargeback {
                        DisputeStatus::NeedsResponse
                    } else {
                        DisputeStatus::Won
                    },
                    at_ms,
                    event_id: id.clone(),
                })
            };
            FeedAction::MoneyBack(Box::new(MoneyBack {
                event_id: id.clone(),
                source: engine_source,
                at_ms,
                charge_key: order_key.clone(),
                payment_intent: None,
                invoice_id: Some(order_key),
                customer_key,
                currency: Some(currency),
                fact,
            }))
        }
    };
    Ok(FeedEvent {
        id,
        kind,
        at_ms,
        action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: serde_json::Value) -> FieldError {
        read("billing", v.to_string().as_bytes()).expect_err("refused")
    }

    fn sale() -> serde_json::Value {
        json!({
            "id": "evt_1", "type": "sale", "occurred_at": "2026-12-01T10:00:00Z",
            "order_id": "1001", "currency": "usd",
            "customer": {"key": "cust_42", "email": "carol@example.com"},
            "click_id": "ck_1", "subscription_id": "sub_9", "amount_paid": 12000,
            "lines": [
                {"product_id": "pro", "amount": 9900, "type": "subscription"},
                {"product_id": "usage", "amount": 600, "type": "metered"},
                {"product_id": "credits", "amount": 1500, "exclude_from_commission": true}
            ]
        })
    }

    #[test]
    fn a_sale_becomes_a_binding_and_an_invoice_keyed_by_source() {
        let e = read("billing", sale().to_string().as_bytes()).expect("read");
        assert_eq!((e.id.as_str(), e.kind), ("evt_1", "sale"));
        assert_eq!(e.at_ms, 1_796_119_200_000);
        let FeedAction::Sale { bind, invoice } = e.action else {
            panic!("a sale")
        };
        let bind = bind.expect("click id binds");
        assert_eq!(bind.source, BindSource::ClickId("ck_1".into()));
        assert_eq!(bind.source_event, "feed:billing:evt_1");
        assert_eq!(invoice.source, "feed:billing");
        assert_eq!(invoice.facts.invoice_id, "billing:1001");
        assert_eq!(invoice.customer_email.as_deref(), Some("carol@example.com"));
        let lines: Vec<_> = invoice
            .facts
            .lines
            .iter()
            .map(|l| (l.amount.minor, l.metered, l.excluded_by_metadata))
            .collect();
        assert_eq!(
            lines,
            vec![
                (9900, false, false),
                (600, true, false),
                (1500, false, true)
            ]
        );
        let pay = invoice.facts.payment.expect("payment");
        assert_eq!(pay.charge_key.as_deref(), Some("billing:1001"));
        assert_eq!((pay.amount_paid, pay.total), (12000, 12000));
    }

    #[test]
    fn amount_paid_defaults_to_the_lines() {
        let mut s = sale();
        s.as_object_mut().expect("object").remove("amount_paid");
        let e = read("billing", s.to_string().as_bytes()).expect("read");
        let FeedAction::Sale { invoice, .. } = e.action else {
            panic!("a sale")
        };
        assert_eq!(invoice.facts.payment.expect("payment").amount_paid, 12000);
    }

    #[test]
    fn refunds_and_chargebacks_name_the_sale() {
        let r = json!({"id": "evt_2", "type": "refund", "occurred_at": "2026-12-05T00:00:00+01:00",
            "order_id": "1001", "currency": "USD", "amount": 5000});
        let e = read("billing", r.to_string().as_bytes()).expect("read");
        let FeedAction::MoneyBack(m) = e.action else {
            panic!("money back")
        };
        assert_eq!(m.charge_key, "billing:1001");
        assert_eq!(m.source, "feed:billing");
        assert!(matches!(&m.fact, ChargeFact::Refund(o)
            if o.id == "evt_2" && o.amount == 5000 && o.status == RefundStatus::Succeeded));
        let c = json!({"id": "evt_3", "type": "chargeback", "occurred_at": "2026-12-06T00:00:00Z",
            "order_id": "1001", "currency": "usd", "amount": 12000});
        let FeedAction::MoneyBack(m) = read("billing", c.to_string().as_bytes())
            .expect("read")
            .action
        else {
            panic!("money back")
        };
        assert!(matches!(&m.fact, ChargeFact::Dispute(o)
            if o.id == "1001" && o.status == DisputeStatus::NeedsResponse));
        let w = json!({"id": "evt_4", "type": "chargeback_won", "occurred_at": "2026-12-20T00:00:00Z",
            "order_id": "1001", "currency": "usd"});
        let FeedAction::MoneyBack(m) = read("billing", w.to_string().as_bytes())
            .expect("read")
            .action
        else {
            panic!("money back")
        };
        assert!(matches!(&m.fact, ChargeFact::Dispute(o)
            if o.id == "1001" && o.status == DisputeStatus::Won));
    }

    #[test]
    fn errors_name_the_field() {
        let cases: Vec<(serde_json::Value, &str)> = vec![
            (json!({"type": "sale"}), "id"),
            (
                {
                    let mut s = sale();
                    s["lines"][1]["amount"] = json!("6.00");
                    s
                },
                "lines[1].amount",
            ),
            (
                {
                    let mut s = sale();
                    s["click"] = json!("x");
                    s
                },
                "click",
            ),
            (
                {
                    let mut s = sale();
                    s["customer"] = json!({"email": "a@b.c"});
                    s
                },
                "customer.key",
            ),
            (
                {
                    let mut s = sale();
                    s["occurred_at"] = json!("yesterday");
                    s
                },
                "occurred_at",
            ),
            (
                {
                    let mut s = sale();
                    s["currency"] = json!("dollars");
                    s
                },
                "currency",
            ),
            (
                {
                    let mut s = sale();
                    s["type"] = json!("purchase");
                    s
                },
                "type",
            ),
            (
                {
                    let mut s = sale();
                    s["lines"] = json!([]);
                    s
                },
                "lines",
            ),
            (
                {
                    let mut s = sale();
                    s.as_object_mut().expect("o").remove("subscription_id");
                    s
                },
                "subscription_id",
            ),
            (
                {
                    let mut s = sale();
                    s["order_id"] = json!("a#b");
                    s
                },
                "order_id",
            ),
            (
                json!({"id": "e", "type": "refund", "occurred_at": "2026-12-01T00:00:00Z",
                    "order_id": "1", "currency": "usd"}),
                "amount",
            ),
            (
                json!({"id": "e", "type": "refund", "occurred_at": "2026-12-01T00:00:00Z",
                    "order_id": "1", "currency": "usd", "amount": 5, "lines": []}),
                "lines",
            ),
        ];
        for (body, field) in cases {
            let e = err(body.clone());
            assert_eq!(e.field, field, "{body}: {e:?}");
        }
        // An unknown field's name is in the detail.
        let mut s = sale();
        s["click"] = json!("x");
        assert!(err(s).detail.contains("unknown field `click`"));
        let e = read("billing", b"not json").expect_err("refused");
        assert!(e.malformed && e.field == ".", "{e:?}");
        assert!(!err(json!({"type": "sale"})).malformed);
    }

    #[test]
    fn sources_from_a_spec() {
        let s = FeedSources::from_spec("billing=whsec_a,whsec_b; shop=whsec_c").expect("spec");
        assert_eq!(s.names().collect::<Vec<_>>(), vec!["billing", "shop"]);
        assert_eq!(s.secrets("billing").map(|s| s.len()), Some(2));
        assert!(FeedSources::from_spec("").expect("empty").is_empty());
        assert_eq!(
            FeedSources::from_spec("Bad=x").map(|_| ()),
            Err(SourcesError::BadName("Bad".into()))
        );
        assert_eq!(
            FeedSources::from_spec("a=x;a=y").map(|_| ()),
            Err(SourcesError::Twice("a".into()))
        );
        assert_eq!(
            FeedSources::from_spec("a=").map(|_| ()),
            Err(SourcesError::NoSecret("a".into()))
        );
        assert!(format!("{s:?}").contains("redacted"));
        assert_eq!(source_of_engine_source("feed:billing"), Some("billing"));
        assert_eq!(source_of_engine_source("stripe"), None);
    }
}
