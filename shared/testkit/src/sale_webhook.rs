//! Fixtures of the sale-webhook function's tests: request events of `events/sale-webhook/`,
//! signed as Stripe signs them, and a recording sink in place of the engine.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use lambda_http::Request;
use sale_webhook::policy::EventPolicy;
use sale_webhook::signature::sign_header;
use sale_webhook::sink::NewAttention;
use sale_webhook::{
    BindOutcome, BindRequest, Deps, MoneyBack, MoneyBackOutcome, PaidInvoice, PaymentFailed,
    SaleOutcome, SaleSink, SigningSecrets, SinkError, SubscriptionEnded,
};
use storage::ManualClock;

use crate::events;

pub const SECRET: &str = "whsec_test_sale_webhook_current";
pub const OLD_SECRET: &str = "whsec_test_sale_webhook_previous";

pub use crate::events::repo_path;

/// A request event of `events/sale-webhook/` as JSON.
pub fn event_json(name: &str) -> serde_json::Value {
    events::sample(&format!("sale-webhook/{name}.json"))
}

pub fn body_of(event: &serde_json::Value) -> String {
    event["body"].as_str().expect("body").to_string()
}

/// The Stripe event inside a request event, parsed (to read `created`, `id`).
pub fn stripe_of(event: &serde_json::Value) -> serde_json::Value {
    serde_json::from_str(&body_of(event)).expect("stripe JSON")
}

/// Stripe's `created` of a request event, seconds.
pub fn created_s(event: &serde_json::Value) -> i64 {
    stripe_of(event)["created"].as_i64().expect("created")
}

/// Set the `stripe-signature` header (None removes it) and turn the event into a request
/// through lambda_http's own deserialisation.
pub fn to_request(mut event: serde_json::Value, signature: Option<String>) -> Request {
    let headers = event["headers"].as_object_mut().expect("headers");
    headers.remove("stripe-signature");
    if let Some(sig) = signature {
        headers.insert("stripe-signature".into(), sig.into());
    }
    events::http_request(&event)
}

/// The event with its body signed with `secret` at `t` (seconds).
pub fn signed(event: serde_json::Value, secret: &str, t: i64) -> Request {
    let sig = sign_header(secret, t, body_of(&event).as_bytes());
    to_request(event, Some(sig))
}

/// `events/sale-webhook/{name}.json`, signed with [`SECRET`] two seconds after the event.
pub fn signed_request(name: &str) -> (Request, i64) {
    let ev = event_json(name);
    let t = created_s(&ev) + 2;
    (signed(ev, SECRET, t), t)
}

/// Replace the request event's body (keeping everything else).
pub fn with_body(mut event: serde_json::Value, body: &str) -> serde_json::Value {
    event["body"] = body.into();
    event
}

#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Bind(BindRequest),
    InvoicePaid(PaidInvoice),
    PaymentFailed(PaymentFailed),
    SubscriptionEnded(SubscriptionEnded),
    MoneyBack(MoneyBack),
    /// A needs-attention record: its id and reason code.
    NeedsAttention {
        id: String,
        reason_code: String,
    },
}

/// Records every call; answers binds from a queue (default: bound), fails on demand.
#[derive(Default, Clone)]
pub struct RecordingSink {
    pub calls: Arc<Mutex<Vec<Call>>>,
    pub bind_answers: Arc<Mutex<VecDeque<BindOutcome>>>,
    pub sale_answer: Arc<Mutex<Option<SaleOutcome>>>,
    pub fail_with: Arc<Mutex<Option<SinkError>>>,
    /// Attention ids whose untested API version an operator accepted.
    pub accepted_versions: Arc<Mutex<Vec<String>>>,
}

impl RecordingSink {
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().expect("lock").clone()
    }
    pub fn answer_binds(&self, answers: Vec<BindOutcome>) {
        *self.bind_answers.lock().expect("lock") = answers.into();
    }
    pub fn fail(&self, e: SinkError) {
        *self.fail_with.lock().expect("lock") = Some(e);
    }
    fn record(&self, c: Call) -> Result<(), SinkError> {
        self.calls.lock().expect("lock").push(c);
        match self.fail_with.lock().expect("lock").clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl SaleSink for RecordingSink {
    async fn bind(&self, req: BindRequest) -> Result<BindOutcome, SinkError> {
        self.record(Call::Bind(req))?;
        Ok(self
            .bind_answers
            .lock()
            .expect("lock")
            .pop_front()
            .unwrap_or(BindOutcome::Bound {
                program_id: "demo".into(),
                partner_id: "alice".into(),
            }))
    }
    async fn invoice_paid(&self, inv: PaidInvoice) -> Result<SaleOutcome, SinkError> {
        self.record(Call::InvoicePaid(inv))?;
        Ok(self
            .sale_answer
            .lock()
            .expect("lock")
            .clone()
            .unwrap_or(SaleOutcome::Booked {
                program_ids: vec!["demo".into()],
                commission_ids: vec!["demo:in_demo1:t1".into()],
            }))
    }
    async fn invoice_payment_failed(&self, f: PaymentFailed) -> Result<(), SinkError> {
        self.record(Call::PaymentFailed(f))
    }
    async fn subscription_ended(&self, e: SubscriptionEnded) -> Result<(), SinkError> {
        self.record(Call::SubscriptionEnded(e))
    }
    async fn money_back(&self, m: MoneyBack) -> Result<MoneyBackOutcome, SinkError> {
        self.record(Call::MoneyBack(m))?;
        Ok(MoneyBackOutcome::Applied {
            commission_ids: vec!["demo:in_demo1:t1".into()],
        })
    }
    /// Recorded; fails only with a retryable failure (a permanent one would be parked again).
    async fn needs_attention(&self, rec: &NewAttention<'_>) -> Result<String, SinkError> {
        let id = rec.id();
        self.calls.lock().expect("lock").push(Call::NeedsAttention {
            id: id.clone(),
            reason_code: rec.reason_code.to_string(),
        });
        match self.fail_with.lock().expect("lock").clone() {
            Some(e) if e.is_retryable() => Err(e),
            _ => Ok(id),
        }
    }
    async fn api_version_accepted(&self, attention_id: &str) -> Result<bool, SinkError> {
        Ok(self
            .accepted_versions
            .lock()
            .expect("lock")
            .iter()
            .any(|a| a == attention_id))
    }
}

/// Deps with a recording sink, the given secrets and a manual clock at `now_s`.
pub fn deps(secrets: &str, now_s: i64) -> (Deps<RecordingSink>, RecordingSink, ManualClock) {
    let sink = RecordingSink::default();
    let clock = ManualClock::at(now_s * 1000);
    let deps = Deps {
        sink: sink.clone(),
        secrets: SigningSecrets::from_list(secrets).expect("secrets"),
        clock: Arc::new(clock.clone()),
        policy: EventPolicy::test_mode(),
        lines: None,
        feed: sale_webhook::FeedSources::none(),
    };
    (deps, sink, clock)
}

/// The sale feed source of the tests and its secrets (current, previous).
pub const FEED_SOURCE: &str = "billing";
pub const FEED_SECRET: &str = "whsec_test_sale_feed_current";
pub const OLD_FEED_SECRET: &str = "whsec_test_sale_feed_previous";

/// The feed sources of the tests: `billing` with [`FEED_SECRET`] and [`OLD_FEED_SECRET`].
pub fn feed_sources() -> sale_webhook::FeedSources {
    sale_webhook::FeedSources::from_spec(&format!("{FEED_SOURCE}={FEED_SECRET},{OLD_FEED_SECRET}"))
        .expect("feed sources")
}

/// `events/sale-feed/{name}.json` as JSON (tests edit it).
pub fn feed_body(name: &str) -> serde_json::Value {
    events::sample(&format!("sale-feed/{name}.json"))
}

/// `events/sale-webhook/feed.{name}.json` with `body`, its `sale-signature` set to
/// `signature` (None removes it), as lambda_http's request.
pub fn feed_request(name: &str, body: &str, signature: Option<String>) -> Request {
    let mut event = event_json(&format!("feed.{name}"));
    event["body"] = body.into();
    let headers = event["headers"].as_object_mut().expect("headers");
    headers.remove("sale-signature");
    if let Some(sig) = signature {
        headers.insert("sale-signature".into(), sig.into());
    }
    events::http_request(&event)
}
