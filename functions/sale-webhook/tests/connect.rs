//! Stripe Connect payout events through the handler, with a recording sink:
//! `account.updated` and `transfer.reversed` from `events/sale-webhook/`, signed by the test
//! helper; exactly what the engine receives, and how each outcome is answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use lambda_http::http::StatusCode;
use lambda_http::Body;
use rules::PayoutItemState;
use sale_webhook::sink::NewAttention;
use sale_webhook::{
    handle, AccountOutcome, AccountUpdate, BindOutcome, BindRequest, Deps, MoneyBack,
    MoneyBackOutcome, PaidInvoice, PaymentFailed, ReversalOutcome, ReversedTransfer, SaleOutcome,
    SaleSink, SinkError, SubscriptionEnded, TransfersCapability,
};
use storage::connect_accounts::ConnectAccount;
use testkit::sale_webhook::*;

/// The Connect samples; each body is the Stripe payload of the same name.
const CONNECT_EVENTS: &[&str] = &["account.updated", "transfer.reversed"];

#[derive(Debug, Clone, PartialEq)]
enum ConnectCall {
    Account(AccountUpdate),
    Reversal(ReversedTransfer, i64),
}

/// [`RecordingSink`] that also records the Connect calls and answers them as told.
#[derive(Clone, Default)]
struct ConnectSink {
    inner: RecordingSink,
    connect: Arc<Mutex<Vec<ConnectCall>>>,
    reversal_answer: Arc<Mutex<Option<ReversalOutcome>>>,
}

impl ConnectSink {
    fn connect_calls(&self) -> Vec<ConnectCall> {
        self.connect.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl SaleSink for ConnectSink {
    async fn bind(&self, req: BindRequest) -> Result<BindOutcome, SinkError> {
        self.inner.bind(req).await
    }
    async fn invoice_paid(&self, inv: PaidInvoice) -> Result<SaleOutcome, SinkError> {
        self.inner.invoice_paid(inv).await
    }
    async fn invoice_payment_failed(&self, f: PaymentFailed) -> Result<(), SinkError> {
        self.inner.invoice_payment_failed(f).await
    }
    async fn subscription_ended(&self, e: SubscriptionEnded) -> Result<(), SinkError> {
        self.inner.subscription_ended(e).await
    }
    async fn money_back(&self, m: MoneyBack) -> Result<MoneyBackOutcome, SinkError> {
        self.inner.money_back(m).await
    }
    async fn needs_attention(&self, rec: &NewAttention<'_>) -> Result<String, SinkError> {
        self.inner.needs_attention(rec).await
    }
    async fn api_version_accepted(&self, attention_id: &str) -> Result<bool, SinkError> {
        self.inner.api_version_accepted(attention_id).await
    }
    async fn account_updated(&self, u: AccountUpdate) -> Result<AccountOutcome, SinkError> {
        self.connect
            .lock()
            .unwrap()
            .push(ConnectCall::Account(u.clone()));
        Ok(AccountOutcome::Recorded(ConnectAccount {
            account_id: u.account_id,
            transfers: u.transfers,
            as_of_ms: u.at_ms,
            event_id: u.event_id,
            recorded_at_ms: 0,
        }))
    }
    async fn transfer_reversed(
        &self,
        t: ReversedTransfer,
        at_ms: i64,
    ) -> Result<ReversalOutcome, SinkError> {
        let item_id = t.metadata.get("payout_item").cloned().unwrap_or_default();
        self.connect
            .lock()
            .unwrap()
            .push(ConnectCall::Reversal(t, at_ms));
        Ok(self
            .reversal_answer
            .lock()
            .unwrap()
            .clone()
            .unwrap_or(ReversalOutcome::Returned {
                item_id,
                booked_sent: false,
            }))
    }
}

/// Deliver `name` with its Stripe body edited, signed 2 s after the event, to `sink`.
async fn deliver<S: SaleSink + Clone>(
    sink: &S,
    name: &str,
    edit: impl FnOnce(&mut serde_json::Value),
) -> (StatusCode, serde_json::Value) {
    let ev = event_json(name);
    let mut stripe = stripe_of(&ev);
    edit(&mut stripe);
    let ev = with_body(ev, &stripe.to_string());
    let t = created_s(&ev) + 2;
    let (base, _, _) = deps(SECRET, t);
    let deps = Deps {
        sink: sink.clone(),
        secrets: base.secrets,
        clock: base.clock,
        policy: base.policy,
        lines: None,
        feed: base.feed,
    };
    let resp = handle(&deps, signed(ev, SECRET, t))
        .await
        .expect("never Err");
    let json = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).expect("json"),
        other => panic!("{other:?}"),
    };
    (resp.status(), json)
}

fn assert_received(answer: &(StatusCode, serde_json::Value), outcome: &str) {
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    assert_eq!(answer.1["outcome"], outcome, "{}", answer.1);
}

fn parked(sink: &ConnectSink) -> Vec<String> {
    sink.inner
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::NeedsAttention { reason_code, .. } => Some(reason_code),
            _ => None,
        })
        .collect()
}

#[test]
fn the_connect_samples_are_signed_events_of_their_type() {
    for name in CONNECT_EVENTS {
        let ev = event_json(name);
        let body = body_of(&ev);
        assert_eq!(
            ev["headers"]["content-length"],
            body.len().to_string(),
            "{name}"
        );
        let stripe = stripe_of(&ev);
        assert_eq!(stripe["type"], *name);
        assert_eq!(
            stripe["api_version"],
            sale_webhook::stripe::PINNED_API_VERSION
        );
        assert_eq!(
            ev["requestContext"]["timeEpoch"],
            created_s(&ev) * 1000 + 400,
            "{name}"
        );
        // Once `events/stripe/{name}.json` holds the payload, the body must be it byte for
        // byte (as for every other sample: tests/webhook.rs).
        let path = repo_path(&format!("events/stripe/{name}.json"));
        if let Ok(payload) = std::fs::read_to_string(path) {
            assert_eq!(body, payload, "{name}: body drifted from events/stripe");
        }
    }
}

#[tokio::test]
async fn account_updated_keeps_the_accounts_transfers_capability() {
    let sink = ConnectSink::default();
    let a = deliver(&sink, "account.updated", |_| {}).await;
    assert_received(&a, "account_recorded");
    assert_eq!(a.1["event_id"], "evt_demo_account_updated");
    assert_eq!(
        sink.connect_calls(),
        vec![ConnectCall::Account(AccountUpdate {
            event_id: "evt_demo_account_updated".into(),
            account_id: "acct_demo_alice".into(),
            transfers: TransfersCapability::Inactive,
            at_ms: 1_775_982_600_000,
        })]
    );
    // A connected account's own event, though STRIPE_CONNECT_ACCOUNTS lists none (the test
    // policy refuses every other Connect event).
    assert!(parked(&sink).is_empty());

    let a = deliver(&sink, "account.updated", |s| {
        s["data"]["object"]["capabilities"]["transfers"] = "active".into();
    })
    .await;
    assert_received(&a, "account_recorded");
    assert!(a.1["detail"].as_str().unwrap().contains("transfers active"));
}

#[tokio::test]
async fn account_updates_we_cannot_use_are_ignored_or_kept_for_an_operator() {
    let sink = ConnectSink::default();
    let a = deliver(&sink, "account.updated", |s| {
        s["data"]["object"]["capabilities"] = serde_json::json!({"card_payments": "active"});
    })
    .await;
    assert_received(&a, "ignored");
    let a = deliver(&sink, "account.updated", |s| {
        s["data"]["object"]["capabilities"]["transfers"] = "suspended".into();
    })
    .await;
    assert_received(&a, "needs_attention");
    let a = deliver(&sink, "account.updated", |s| {
        s["account"] = "acct_someone_else".into();
    })
    .await;
    assert_received(&a, "needs_attention");
    assert!(sink.connect_calls().is_empty());
    assert_eq!(parked(&sink), vec!["unreadable", "unreadable"]);
}

#[tokio::test]
async fn transfer_reversed_reaches_the_engine_with_the_items_metadata() {
    let sink = ConnectSink::default();
    let a = deliver(&sink, "transfer.reversed", |_| {}).await;
    assert_received(&a, "payout_returned");
    let metadata: HashMap<String, String> = [
        ("currency", "USD"),
        ("date", "2026-04-10"),
        ("partner", "alice"),
        ("payout_batch", "pb_71a44d2100d7bb1ebc471973"),
        ("payout_item", "demo:2026-04-10:alice:USD"),
        ("program", "demo"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        sink.connect_calls(),
        vec![ConnectCall::Reversal(
            ReversedTransfer {
                event_id: "evt_demo_transfer_reversed".into(),
                transfer_id: "tr_demo_alice".into(),
                amount: 12_475,
                amount_reversed: 12_475,
                currency: "usd".into(),
                reversed: true,
                created_ms: 1_775_780_105_000,
                metadata,
            },
            // Business time: the event's created.
            1_776_157_200_000
        )]
    );

    *sink.reversal_answer.lock().unwrap() = Some(ReversalOutcome::AlreadyBooked {
        item_id: "demo:2026-04-10:alice:USD".into(),
        state: PayoutItemState::Returned,
    });
    assert_received(
        &deliver(&sink, "transfer.reversed", |_| {}).await,
        "already_processed",
    );
}

#[tokio::test]
async fn a_reversal_that_matches_no_item_needs_attention() {
    let sink = ConnectSink::default();
    *sink.reversal_answer.lock().unwrap() = Some(ReversalOutcome::Unmatched {
        reason: "reversed transfer tr_demo_alice: no payout item demo:2026-04-10:alice:USD".into(),
    });
    let a = deliver(&sink, "transfer.reversed", |_| {}).await;
    assert_received(&a, "needs_attention");
    assert!(a.1["detail"]
        .as_str()
        .unwrap()
        .contains("transfer-unmatched: reversed transfer tr_demo_alice: no payout item"));
    assert_eq!(parked(&sink), vec!["transfer-unmatched"]);
}

#[tokio::test]
async fn transfers_that_are_not_our_payouts_are_ignored() {
    let sink = ConnectSink::default();
    let a = deliver(&sink, "transfer.reversed", |s| {
        s["data"]["object"]["metadata"] = serde_json::json!({"order": "o_1"});
    })
    .await;
    assert_received(&a, "ignored");
    assert!(a.1["detail"]
        .as_str()
        .unwrap()
        .contains("no metadata.payout_item"));
    assert!(sink.connect_calls().is_empty());
    assert!(parked(&sink).is_empty());
}

#[tokio::test]
async fn a_sink_that_pays_no_partners_keeps_the_events_for_an_operator() {
    // The tests' plain recorder keeps the trait's defaults: nothing is dropped.
    let sink = RecordingSink::default();
    for name in CONNECT_EVENTS {
        let a = deliver(&sink, name, |_| {}).await;
        assert_received(&a, "needs_attention");
    }
    let codes: Vec<String> = sink
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::NeedsAttention { reason_code, .. } => Some(reason_code),
            _ => None,
        })
        .collect();
    assert_eq!(codes, vec!["permanent-failure", "permanent-failure"]);
}
