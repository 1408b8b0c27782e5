//! Stripe Connect transfers (Stripe API reference: "Create a transfer", "List all transfers",
//! "Idempotent requests", "Errors"; Connect guide "Separate charges and transfers").
//!
//! * One `POST /v1/transfers` per item: `amount` (minor units), `currency`, `destination`
//!   (the connected account), `transfer_group` = the payout item id, `metadata[payout_item]`,
//!   `metadata[payout_batch]` and the item's key (`program`, `date`, `partner`, `currency`, read
//!   back from `transfer.reversed` events); `Idempotency-Key: {item id}:{attempt}`. Stripe stores the
//!   first answer to a key, errors included, and may forget a key after 24 hours, so a key is
//!   used by one attempt only.
//! * A take-over (attempt > 1) lists the item's transfer group first
//!   (`GET /v1/transfers?transfer_group=…`) and transfers only when the list shows none for the
//!   item: the transfer an earlier attempt made is found, not made again.
//! * `balance_insufficient` (the platform's balance does not cover it), 429 beyond the
//!   backoff, 5xx and timeouts defer the item to the next attempt (an operator sees why); a
//!   destination Stripe refuses (missing, no `transfers` capability) fails it.

use engine::payout::rail::{Rail, RailAnswer, RailError, RailOutcome};
use rules::PayoutMethod;
use serde::Deserialize;
use storage::rail_batches::{BatchMember, RailBatch};

use crate::http::{escape, form, Answer, Http, HttpError};

/// The Stripe API version the adapter reads (the project's pin).
pub const STRIPE_VERSION: &str = "2025-02-24.acacia";

/// Codes of a refused destination: the receiver is unusable until the partner changes it.
const DESTINATION_CODES: [&str; 4] = [
    "account_invalid",
    "insufficient_capabilities_for_transfer",
    "resource_missing",
    "transfers_not_allowed",
];

pub struct StripeConnect {
    http: Http,
    base: String,
    key: String,
}

impl std::fmt::Debug for StripeConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConnect")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Transfer {
    id: String,
    #[serde(default)]
    created: i64,
    #[serde(default)]
    reversed: bool,
    #[serde(default)]
    metadata: std::collections::HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
struct TransferList {
    data: Vec<Transfer>,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
}

impl StripeConnect {
    /// `base`: `https://api.stripe.com` or a local fake; `key`: a secret or restricted key
    /// that may write transfers.
    pub fn new(http: Http, base: &str, key: &str) -> StripeConnect {
        StripeConnect {
            http,
            base: base.trim_end_matches('/').to_string(),
            key: key.to_string(),
        }
    }

    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("authorization", format!("Bearer {}", self.key)),
            ("stripe-version", STRIPE_VERSION.into()),
        ]
    }

    /// The transfer an earlier attempt made for the member, if Stripe has one.
    async fn find(&self, m: &BatchMember) -> Result<Option<Transfer>, String> {
        let uri = format!(
            "{}/v1/transfers?transfer_group={}&limit=100",
            self.base,
            escape(&m.item_id)
        );
        let answer = self
            .http
            .send("GET", &uri, &self.headers(), None)
            .await
            .map_err(|e| e.to_string())?;
        if answer.status != 200 {
            return Err(describe(&answer));
        }
        let list: TransferList = answer.json()?;
        Ok(list
            .data
            .into_iter()
            .find(|t| t.metadata.get("payout_item") == Some(&m.item_id)))
    }

    async fn transfer(&self, batch: &RailBatch, m: &BatchMember) -> RailOutcome {
        let PayoutMethod::StripeConnect { account_id } = &m.method else {
            return RailOutcome::Failed {
                at_ms: self.http.clock().now_ms(),
                reason: format!("item {} is not a Stripe Connect payout", m.item_id),
            };
        };
        if batch.attempt > 1 {
            match self.find(m).await {
                Ok(Some(t)) => return sent(&t),
                Ok(None) => {}
                Err(e) => {
                    return RailOutcome::Deferred {
                        reason: format!("listing transfer group: {e}"),
                    }
                }
            }
        }
        let amount = m.amount.to_string();
        let currency = m.currency.lower();
        let body = form(&[
            ("amount", &amount),
            ("currency", &currency),
            ("destination", account_id),
            ("transfer_group", &m.item_id),
            ("metadata[payout_item]", &m.item_id),
            ("metadata[payout_batch]", &batch.batch_id),
            // The item's key, for `transfer.reversed` events.
            ("metadata[program]", &batch.program_id),
            ("metadata[date]", &batch.date),
            ("metadata[partner]", &m.partner_id),
            ("metadata[currency]", m.currency.code()),
            ("description", &format!("Partner payout {}", m.reference)),
        ]);
        let mut headers = self.headers();
        headers.push((
            "idempotency-key",
            format!("{}:{}", m.item_id, batch.attempt),
        ));
        let answer = self
            .http
            .send(
                "POST",
                &format!("{}/v1/transfers", self.base),
                &headers,
                Some(("application/x-www-form-urlencoded", body)),
            )
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(HttpError::RateLimited) => {
                return RailOutcome::Deferred {
                    reason: "Stripe rate limit".into(),
                }
            }
            Err(e) => {
                return RailOutcome::Deferred {
                    reason: format!("Stripe: {e}"),
                }
            }
        };
        if answer.status == 200 {
            return match answer.json::<Transfer>() {
                Ok(t) => sent(&t),
                Err(e) => RailOutcome::Deferred { reason: e },
            };
        }
        let code = answer
            .json::<ErrorBody>()
            .ok()
            .and_then(|b| b.error.code)
            .unwrap_or_default();
        let reason = describe(&answer);
        if answer.status < 500 && DESTINATION_CODES.contains(&code.as_str()) {
            RailOutcome::Failed {
                at_ms: self.http.clock().now_ms(),
                reason,
            }
        } else {
            // balance_insufficient, 5xx, 401/403 (keys), anything else: the next attempt lists
            // the group first, then tries under a new key.
            RailOutcome::Deferred { reason }
        }
    }
}

fn sent(t: &Transfer) -> RailOutcome {
    if t.reversed {
        return RailOutcome::Returned {
            at_ms: t.created * 1000,
            reason: format!("Stripe transfer {} reversed", t.id),
        };
    }
    RailOutcome::Sent {
        at_ms: t.created * 1000,
        reference: t.id.clone(),
    }
}

fn describe(a: &Answer) -> String {
    match a.json::<ErrorBody>() {
        Ok(b) => format!(
            "Stripe HTTP {} {} {}: {}",
            a.status,
            b.error.kind.unwrap_or_default(),
            b.error.code.unwrap_or_default(),
            b.error.message.unwrap_or_default()
        ),
        Err(_) => format!("Stripe HTTP {}", a.status),
    }
}

#[async_trait::async_trait]
impl Rail for StripeConnect {
    fn name(&self) -> &'static str {
        "stripe_connect"
    }
    fn carries(&self, method: &PayoutMethod) -> bool {
        matches!(method, PayoutMethod::StripeConnect { .. })
    }
    fn batch_limit(&self) -> usize {
        engine::payout::handover::MAX_BATCH_ITEMS
    }
    fn watch_ms(&self) -> i64 {
        // Reversals arrive as `transfer.reversed` events.
        0
    }
    fn resend_window_ms(&self) -> Option<i64> {
        None
    }
    async fn hand_over(&self, batch: &RailBatch, open: &[bool]) -> Result<RailAnswer, RailError> {
        let mut outcomes = vec![];
        for (i, m) in batch.members.iter().enumerate() {
            if open.get(i).copied().unwrap_or(false) {
                outcomes.push(self.transfer(batch, m).await);
            } else {
                outcomes.push(RailOutcome::pending());
            }
        }
        Ok(RailAnswer {
            rail_ref: None,
            outcomes,
        })
    }
    async fn status(&self, batch: &RailBatch) -> Result<RailAnswer, RailError> {
        Ok(RailAnswer {
            rail_ref: None,
            outcomes: vec![RailOutcome::pending(); batch.members.len()],
        })
    }
}
