//! PayPal Payouts (developer.paypal.com: "Payouts API" v1 reference — create batch payout,
//! show payout batch details; "Get an access token"; "Payouts error messages"; "Handle
//! unclaimed payouts").
//!
//! * Token: `POST /v1/oauth2/token` (HTTP Basic with the client id and secret,
//!   `grant_type=client_credentials`), cached until five minutes before its `expires_in`, on
//!   the injected clock; a 401 on a cached token drops it and asks for a new one once.
//! * Hand-over: `POST /v1/payments/payouts` with the batch id as `sender_batch_id` and as the
//!   `PayPal-Request-Id` header (PayPal keeps both 30 days), each item's id as
//!   `sender_item_id`, amounts as decimal strings in PayPal's format
//!   ([`rules::paypal_value`]). HTTP 201 acknowledges the batch (`payout_batch_id`); 5xx and
//!   timeouts are answered "unavailable" (the same batch is sent again under the same ids
//!   later); a 400 naming the `sender_batch_id` as a duplicate means the batch exists: its
//!   HATEOAS link gives the `payout_batch_id` and the batch is read.
//! * Status: `GET /v1/payments/payouts/{payout_batch_id}?page=…&page_size=1000&total_required=true`
//!   until the last page; each item's `transaction_status` → SUCCESS sent; FAILED, BLOCKED
//!   failed; RETURNED (an UNCLAIMED item after 30 days), REFUNDED, REVERSED returned; PENDING,
//!   UNCLAIMED, ONHOLD, NEW still pending.

use std::sync::Mutex;

use base64::Engine as _;
use engine::payout::rail::{Rail, RailAnswer, RailError, RailOutcome};
use rules::{paypal_value, PayoutMethod, PAYPAL_CURRENCIES};
use serde::Deserialize;
use serde_json::{json, Value};
use storage::rail_batches::RailBatch;

use crate::http::{form, Http, HttpError};

/// PayPal's limit of items per batch.
pub const MAX_ITEMS_PER_BATCH: usize = 15_000;
/// A `sender_batch_id` PayPal has not acknowledged is sent again for 29 days (PayPal keeps it
/// 30), never after.
pub const RESEND_WINDOW_MS: i64 = 29 * 24 * 3_600_000;
/// Batches whose items are final are read daily this long after they were written, for
/// UNCLAIMED items turning RETURNED (30 days) and reversals.
pub const WATCH_MS: i64 = 31 * 24 * 3_600_000;
/// Items per status page (PayPal's maximum).
pub const PAGE_SIZE: u32 = 1000;
/// The token is renewed this long before PayPal says it expires.
const TOKEN_MARGIN_MS: i64 = 300_000;

/// Client credentials of a PayPal REST app.
#[derive(Clone)]
pub struct Credentials {
    pub client_id: String,
    pub secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

pub struct PayPal {
    http: Http,
    base: String,
    credentials: Credentials,
    /// Subject and note of PayPal's e-mail to the receiver.
    pub email_subject: String,
    pub note: String,
    token: Mutex<Option<(String, i64)>>,
}

impl std::fmt::Debug for PayPal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayPal")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Deserialize)]
struct Token {
    access_token: String,
    #[serde(default)]
    expires_in: i64,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    name: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    details: Vec<Value>,
    #[serde(default)]
    links: Vec<Value>,
}

#[derive(Debug, Deserialize)]
struct BatchBody {
    batch_header: BatchHeader,
    #[serde(default)]
    items: Vec<ItemBody>,
    #[serde(default)]
    total_pages: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct BatchHeader {
    payout_batch_id: String,
    #[serde(default)]
    batch_status: String,
    #[serde(default)]
    time_created: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ItemBody {
    #[serde(default)]
    payout_item_id: String,
    #[serde(default)]
    transaction_status: String,
    #[serde(default)]
    time_processed: Option<String>,
    payout_item: SentItem,
    #[serde(default)]
    errors: Option<ItemError>,
}

#[derive(Debug, Deserialize)]
struct SentItem {
    #[serde(default)]
    sender_item_id: String,
}

#[derive(Debug, Deserialize)]
struct ItemError {
    #[serde(default)]
    name: String,
    #[serde(default)]
    message: String,
}

fn unavailable(e: HttpError) -> RailError {
    RailError::Unavailable(format!("PayPal: {e}"))
}

fn time_ms(t: Option<&str>) -> Option<i64> {
    t.and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|d| d.timestamp_millis())
}

impl PayPal {
    /// `base`: `https://api-m.paypal.com` (live), `https://api-m.sandbox.paypal.com`, or a
    /// local fake.
    pub fn new(http: Http, base: &str, credentials: Credentials) -> PayPal {
        PayPal {
            http,
            base: base.trim_end_matches('/').to_string(),
            credentials,
            email_subject: "You have a payout".into(),
            note: "Your partner commissions".into(),
            token: Mutex::new(None),
        }
    }

    fn cached_token(&self) -> Option<String> {
        let now = self.http.clock().now_ms();
        let guard = self.token.lock().ok()?;
        guard
            .as_ref()
            .filter(|(_, exp)| now < exp - TOKEN_MARGIN_MS)
            .map(|(t, _)| t.clone())
    }

    fn drop_token(&self) {
        if let Ok(mut g) = self.token.lock() {
            *g = None;
        }
    }

    async fn token(&self) -> Result<String, RailError> {
        if let Some(t) = self.cached_token() {
            return Ok(t);
        }
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.credentials.client_id, self.credentials.secret
        ));
        let answer = self
            .http
            .send(
                "POST",
                &format!("{}/v1/oauth2/token", self.base),
                &[
                    ("authorization", format!("Basic {basic}")),
                    ("accept", "application/json".into()),
                ],
                Some((
                    "application/x-www-form-urlencoded",
                    form(&[("grant_type", "client_credentials")]),
                )),
            )
            .await
            .map_err(unavailable)?;
        match answer.status {
            200 => {
                let t: Token = answer
                    .json()
                    .map_err(|e| RailError::Refused(format!("PayPal token: {e}")))?;
                let exp = self.http.clock().now_ms() + t.expires_in.max(0) * 1000;
                if let Ok(mut g) = self.token.lock() {
                    *g = Some((t.access_token.clone(), exp));
                }
                Ok(t.access_token)
            }
            s if s >= 500 => Err(RailError::Unavailable(format!("PayPal token: HTTP {s}"))),
            s => Err(RailError::Refused(format!(
                "PayPal refused the client credentials (HTTP {s}): {}",
                String::from_utf8_lossy(&answer.body)
            ))),
        }
    }

    /// An authorised request; a 401 on a cached token asks for a new token once.
    async fn call(
        &self,
        method: &str,
        uri: &str,
        extra: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<crate::http::Answer, RailError> {
        for fresh in [false, true] {
            let token = self.token().await?;
            let mut headers = vec![
                ("authorization", format!("Bearer {token}")),
                ("accept", "application/json".into()),
            ];
            headers.extend(extra.iter().cloned());
            let answer = self
                .http
                .send(
                    method,
                    uri,
                    &headers,
                    body.clone().map(|b| ("application/json", b)),
                )
                .await
                .map_err(unavailable)?;
            if answer.status == 401 && !fresh {
                self.drop_token();
                continue;
            }
            return Ok(answer);
        }
        Err(RailError::Refused("PayPal: unauthorised".into()))
    }

    /// The request body of a batch (every member: a PayPal batch is sent whole).
    pub fn batch_body(&self, batch: &RailBatch) -> Result<Value, RailError> {
        let mut items = vec![];
        for m in &batch.members {
            let PayoutMethod::PayPal { email } = &m.method else {
                return Err(RailError::Refused(format!(
                    "item {} is not a PayPal payout",
                    m.item_id
                )));
            };
            let value = paypal_value(m.currency, m.amount).ok_or_else(|| {
                RailError::Refused(format!(
                    "PayPal cannot carry {} minor units of {} (item {})",
                    m.amount,
                    m.currency.code(),
                    m.item_id
                ))
            })?;
            items.push(json!({
                "recipient_type": "EMAIL",
                "amount": {"value": value, "currency": m.currency.code()},
                "receiver": email,
                "note": self.note,
                "sender_item_id": m.item_id,
            }));
        }
        Ok(json!({
            "sender_batch_header": {
                "sender_batch_id": batch.batch_id,
                "recipient_type": "EMAIL",
                "email_subject": self.email_subject,
            },
            "items": items,
        }))
    }

    async fn read(
        &self,
        batch: &RailBatch,
        payout_batch_id: &str,
    ) -> Result<RailAnswer, RailError> {
        let mut by_item: std::collections::HashMap<String, ItemBody> = Default::default();
        let mut created = None;
        let mut page = 1;
        loop {
            let uri = format!(
                "{}/v1/payments/payouts/{}?page={page}&page_size={PAGE_SIZE}&total_required=true",
                self.base,
                crate::http::escape(payout_batch_id)
            );
            let answer = self.call("GET", &uri, &[], None).await?;
            match answer.status {
                200 => {}
                s if s >= 500 => {
                    return Err(RailError::Unavailable(format!(
                        "PayPal GET batch: HTTP {s}"
                    )))
                }
                s => {
                    return Err(RailError::Refused(format!(
                        "PayPal GET batch {payout_batch_id}: HTTP {s}: {}",
                        String::from_utf8_lossy(&answer.body)
                    )))
                }
            }
            let body: BatchBody = answer.json().map_err(RailError::Refused)?;
            created = created.or(time_ms(body.batch_header.time_created.as_deref()));
            let pages = body.total_pages.unwrap_or(1);
            for item in body.items {
                by_item.insert(item.payout_item.sender_item_id.clone(), item);
            }
            if page >= pages {
                break;
            }
            page += 1;
        }
        let fallback = created.unwrap_or_else(|| self.http.clock().now_ms());
        let outcomes = batch
            .members
            .iter()
            .map(|m| match by_item.get(&m.item_id) {
                None => RailOutcome::pending(),
                Some(i) => outcome_of(i, fallback),
            })
            .collect();
        Ok(RailAnswer {
            rail_ref: Some(payout_batch_id.to_string()),
            outcomes,
        })
    }
}

/// What one item's `transaction_status` means for the ledger.
fn outcome_of(i: &ItemBody, fallback_ms: i64) -> RailOutcome {
    let at_ms = time_ms(i.time_processed.as_deref()).unwrap_or(fallback_ms);
    let reason = || match &i.errors {
        Some(e) if !e.name.is_empty() => {
            format!("PayPal {}: {} {}", i.transaction_status, e.name, e.message)
                .trim()
                .to_string()
        }
        _ => format!("PayPal {}", i.transaction_status),
    };
    match i.transaction_status.as_str() {
        "SUCCESS" => RailOutcome::Sent {
            at_ms,
            reference: i.payout_item_id.clone(),
        },
        "FAILED" | "BLOCKED" => RailOutcome::Failed {
            at_ms,
            reason: reason(),
        },
        "RETURNED" | "REFUNDED" | "REVERSED" => RailOutcome::Returned {
            at_ms,
            reason: reason(),
        },
        other => RailOutcome::Pending {
            note: Some(format!("PayPal {other}")),
        },
    }
}

/// The `payout_batch_id` a duplicate-batch error links to (`…/v1/payments/payouts/{id}`).
fn linked_batch_id(err: &ErrorBody) -> Option<String> {
    let hrefs = err
        .links
        .iter()
        .chain(err.details.iter())
        .filter_map(|v| v.get("href").or_else(|| v.get("link")))
        .filter_map(Value::as_str);
    for href in hrefs {
        if let Some((_, tail)) = href.split_once("/v1/payments/payouts/") {
            let id: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if !id.is_empty() {
                return Some(id);
            }
        }
    }
    None
}

fn names_duplicate_batch(err: &ErrorBody) -> bool {
    let text = format!("{} {} {:?}", err.name, err.message, err.details).to_ascii_lowercase();
    text.contains("sender_batch_id") && (text.contains("exist") || text.contains("duplicate"))
}

#[async_trait::async_trait]
impl Rail for PayPal {
    fn name(&self) -> &'static str {
        "paypal"
    }
    fn carries(&self, method: &PayoutMethod) -> bool {
        matches!(method, PayoutMethod::PayPal { .. })
    }
    fn batch_limit(&self) -> usize {
        // One transaction records the batch with its items' state changes.
        engine::payout::handover::MAX_BATCH_ITEMS.min(MAX_ITEMS_PER_BATCH)
    }
    fn watch_ms(&self) -> i64 {
        WATCH_MS
    }
    fn resend_window_ms(&self) -> Option<i64> {
        Some(RESEND_WINDOW_MS)
    }

    async fn hand_over(&self, batch: &RailBatch, _open: &[bool]) -> Result<RailAnswer, RailError> {
        if batch.members.len() > MAX_ITEMS_PER_BATCH {
            return Err(RailError::Refused(format!(
                "batch {} has {} items; PayPal takes {MAX_ITEMS_PER_BATCH}",
                batch.batch_id,
                batch.members.len()
            )));
        }
        if let Some(m) = batch
            .members
            .iter()
            .find(|m| !PAYPAL_CURRENCIES.contains(&m.currency.code()))
        {
            return Err(RailError::Refused(format!(
                "PayPal does not pay {} (item {})",
                m.currency.code(),
                m.item_id
            )));
        }
        let body = serde_json::to_vec(&self.batch_body(batch)?)
            .map_err(|e| RailError::Refused(format!("batch body: {e}")))?;
        let answer = self
            .call(
                "POST",
                &format!("{}/v1/payments/payouts", self.base),
                &[("paypal-request-id", batch.batch_id.clone())],
                Some(body),
            )
            .await?;
        match answer.status {
            200 | 201 => {
                let b: BatchBody = answer.json().map_err(RailError::Refused)?;
                tracing::info!(batch = %batch.batch_id, payout_batch_id = %b.batch_header.payout_batch_id, status = %b.batch_header.batch_status, "PayPal accepted the batch");
                Ok(RailAnswer {
                    rail_ref: Some(b.batch_header.payout_batch_id),
                    outcomes: vec![RailOutcome::pending(); batch.members.len()],
                })
            }
            s if s >= 500 => Err(RailError::Unavailable(format!(
                "PayPal POST payouts: HTTP {s} (sent again under the same sender_batch_id)"
            ))),
            s => {
                let err: ErrorBody = answer.json().unwrap_or(ErrorBody {
                    name: String::new(),
                    message: String::from_utf8_lossy(&answer.body).into_owned(),
                    details: vec![],
                    links: vec![],
                });
                if names_duplicate_batch(&err) {
                    if let Some(id) = linked_batch_id(&err) {
                        tracing::info!(batch = %batch.batch_id, payout_batch_id = %id, "PayPal knows the batch; reading it");
                        return self.read(batch, &id).await;
                    }
                }
                if err.name == "INSUFFICIENT_FUNDS" {
                    let reason = format!("PayPal {}: {}", err.name, err.message);
                    return Ok(RailAnswer {
                        rail_ref: None,
                        outcomes: vec![RailOutcome::Deferred { reason }; batch.members.len()],
                    });
                }
                Err(RailError::Refused(format!(
                    "PayPal POST payouts: HTTP {s} {}: {}",
                    err.name, err.message
                )))
            }
        }
    }

    async fn status(&self, batch: &RailBatch) -> Result<RailAnswer, RailError> {
        match &batch.rail_ref {
            Some(id) => self.read(batch, id).await,
            None => Ok(RailAnswer {
                rail_ref: None,
                outcomes: vec![RailOutcome::pending(); batch.members.len()],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_batch_error_names_the_original_batch() {
        // The shape of PayPal's answer to a reused sender_batch_id (Payouts error messages:
        // USER_BUSINESS_ERROR, with a HATEOAS link to the original payout).
        let err: ErrorBody = serde_json::from_value(json!({
            "name": "USER_BUSINESS_ERROR",
            "message": "User business error.",
            "debug_id": "f1c2",
            "details": [{
                "field": "SENDER_BATCH_ID",
                "location": "body",
                "issue": "Batch with given sender_batch_id already exists",
                "link": [],
            }],
            "links": [{"href": "https://api-m.sandbox.paypal.com/v1/payments/payouts/5UXD2E8A7EBQJ", "rel": "self", "method": "GET"}]
        }))
        .unwrap();
        assert!(names_duplicate_batch(&err));
        assert_eq!(linked_batch_id(&err).as_deref(), Some("5UXD2E8A7EBQJ"));
    }

    #[test]
    fn item_statuses_map_to_the_ledger() {
        let item = |s: &str| ItemBody {
            payout_item_id: "PI1".into(),
            transaction_status: s.into(),
            time_processed: Some("2026-04-10T09:00:00Z".into()),
            payout_item: SentItem {
                sender_item_id: "x".into(),
            },
            errors: None,
        };
        assert!(matches!(
            outcome_of(&item("SUCCESS"), 0),
            RailOutcome::Sent { .. }
        ));
        for s in ["FAILED", "BLOCKED"] {
            assert!(
                matches!(outcome_of(&item(s), 0), RailOutcome::Failed { .. }),
                "{s}"
            );
        }
        for s in ["RETURNED", "REFUNDED", "REVERSED"] {
            assert!(
                matches!(outcome_of(&item(s), 0), RailOutcome::Returned { .. }),
                "{s}"
            );
        }
        for s in ["PENDING", "UNCLAIMED", "ONHOLD", "NEW"] {
            assert!(
                matches!(outcome_of(&item(s), 0), RailOutcome::Pending { .. }),
                "{s}"
            );
        }
        let RailOutcome::Sent { at_ms, .. } = outcome_of(&item("SUCCESS"), 0) else {
            unreachable!()
        };
        assert_eq!(at_ms, 1_775_811_600_000);
    }
}
