//! Stripe Connect payout events through the handler and the real engine, against moto: a
//! partner paid by a transfer the platform then reverses, and their account's capability
//! going off and on again; the ledger, the standing and the next runs say what happened.

use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, TimeZone, Utc};
use engine::payout::rail::{Rail, RailAnswer, RailError, RailOutcome, Rails};
use engine::payout::{run, worker};
use lambda_http::http::StatusCode;
use lambda_http::Body;
use rules::program::{Duration, Reward};
use rules::{Currency, PayoutItemState, PayoutMethod};
use sale_webhook::engine_adapter::EngineSink;
use sale_webhook::{handle, Deps};
use storage::connect_accounts::{self, TransfersCapability};
use storage::payouts::{self, PayoutChunk, PayoutItem};
use storage::rail_batches::RailBatch;
use storage::{attention, keys, ledger, partners};
use testkit::catalogue;
use testkit::engine::{pct, program, World, DAY, T0};
use testkit::faults::RecordingQueue;
use testkit::sale_webhook::*;

/// The partner's Stripe account and the transfer of the samples.
const ACCOUNT: &str = "acct_demo_alice";
const TRANSFER: &str = "tr_demo_alice";

/// Stripe Connect as a recorder: every open member is transferred as `tr_demo_{partner}`.
#[derive(Default)]
struct TransferRail(Mutex<Vec<String>>);

#[async_trait::async_trait]
impl Rail for TransferRail {
    fn name(&self) -> &'static str {
        "stripe_connect"
    }
    fn carries(&self, m: &PayoutMethod) -> bool {
        matches!(m, PayoutMethod::StripeConnect { .. })
    }
    fn batch_limit(&self) -> usize {
        98
    }
    fn watch_ms(&self) -> i64 {
        0
    }
    fn resend_window_ms(&self) -> Option<i64> {
        None
    }
    async fn hand_over(&self, b: &RailBatch, open: &[bool]) -> Result<RailAnswer, RailError> {
        let mut outcomes = vec![];
        for (m, open) in b.members.iter().zip(open) {
            if !*open {
                outcomes.push(RailOutcome::pending());
                continue;
            }
            self.0.lock().unwrap().push(m.item_id.clone());
            outcomes.push(RailOutcome::Sent {
                at_ms: b.created_at_ms,
                reference: format!("tr_demo_{}", m.partner_id),
            });
        }
        Ok(RailAnswer {
            rail_ref: None,
            outcomes,
        })
    }
    async fn status(&self, b: &RailBatch) -> Result<RailAnswer, RailError> {
        Ok(RailAnswer {
            rail_ref: None,
            outcomes: vec![RailOutcome::pending(); b.members.len()],
        })
    }
}

struct Setup {
    w: World,
    sink: EngineSink,
    rail: Arc<TransferRail>,
    rails: Rails,
}

/// Program `demo`; alice, paid to `acct_demo_alice`, earned 124.75 on a sale of T0 + 1 day.
async fn setup() -> Setup {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None::<Reward>),
        &["prod_demo"],
    )
    .await;
    let mut alice = catalogue::partner("alice");
    alice.payout_method = PayoutMethod::StripeConnect {
        account_id: ACCOUNT.into(),
    };
    w.t()
        .put(partners::partner_item(&alice).unwrap())
        .await
        .unwrap();
    w.customer_of_pays("a1", "alice", T0 + DAY, 49_900).await;
    let rail = Arc::new(TransferRail::default());
    Setup {
        sink: EngineSink::new(w.engine.clone()),
        rails: Rails::new(vec![rail.clone()]),
        rail,
        w,
    }
}

impl Setup {
    /// The payout run of Friday `day` (April 2026, 00:15 UTC) and its chunks.
    async fn run(&self, day: u32) -> Vec<PayoutChunk> {
        let q = RecordingQueue::default();
        let at = Utc
            .with_ymd_and_hms(2026, 4, day, 0, 15, 0)
            .unwrap()
            .timestamp_millis();
        let date = NaiveDate::from_ymd_opt(2026, 4, day).unwrap();
        run::run_program(&self.w.engine, &q, "demo", date, at, "schedule")
            .await
            .expect("run");
        let mut chunks = vec![];
        for m in q.take() {
            chunks.push(
                worker::work_chunk(&self.w.engine, &self.rails, &m)
                    .await
                    .expect("chunk"),
            );
        }
        chunks
    }
    async fn item(&self, date: &str) -> Option<PayoutItem> {
        payouts::get_item(
            self.w.t(),
            &keys::payout_item("demo", date, "alice", Currency::USD),
        )
        .await
        .unwrap()
    }
    /// Deliver a sample, its Stripe body edited, signed a second after the event.
    async fn deliver(
        &self,
        name: &str,
        edit: impl FnOnce(&mut serde_json::Value),
    ) -> (StatusCode, serde_json::Value) {
        let ev = event_json(name);
        let mut stripe = stripe_of(&ev);
        edit(&mut stripe);
        let ev = with_body(ev, &stripe.to_string());
        let t = created_s(&ev) + 1;
        let (base, _, _) = deps(SECRET, t);
        let deps = Deps {
            sink: self.sink.clone(),
            secrets: base.secrets,
            clock: base.clock,
            policy: base.policy,
            lines: None,
            feed: base.feed,
        };
        let resp = handle(&deps, signed(ev, SECRET, t))
            .await
            .expect("response");
        let json = match resp.body() {
            Body::Text(t) => serde_json::from_str(t).expect("json"),
            other => panic!("{other:?}"),
        };
        (resp.status(), json)
    }
}

fn outcome(answer: &(StatusCode, serde_json::Value)) -> String {
    assert_eq!(answer.0, StatusCode::OK, "{}", answer.1);
    answer.1["outcome"].as_str().unwrap_or_default().to_string()
}

fn reasons(chunks: &[PayoutChunk]) -> Vec<String> {
    chunks
        .iter()
        .flat_map(|c| c.waiting.iter())
        .flat_map(|w| w.reasons.clone())
        .collect()
}

#[tokio::test]
async fn a_reversed_transfer_and_an_account_switched_off_and_on_through_the_webhook() {
    let s = setup().await;
    s.run(10).await;
    let paid = s.item("2026-04-10").await.expect("item");
    assert_eq!(paid.state, PayoutItemState::Sent);
    assert_eq!(paid.rail_note.as_deref(), Some(TRANSFER));

    // The platform reverses the transfer; Stripe delivers the event twice.
    let first = s.deliver("transfer.reversed", |_| {}).await;
    assert_eq!(outcome(&first), "payout_returned", "{}", first.1);
    assert_eq!(
        outcome(&s.deliver("transfer.reversed", |_| {}).await),
        "already_processed"
    );
    let entries = s.w.entries("alice", "demo").await;
    assert_eq!(
        entries
            .iter()
            .filter(|(k, _)| k == "payout_returned")
            .count(),
        1,
        "{entries:?}"
    );
    let b = ledger::balance(s.w.t(), "alice", "demo", Currency::USD)
        .await
        .unwrap();
    assert_eq!((b.available, b.paid), (12_475, 0));
    let standing = partners::payout_standing(s.w.t(), "alice").await.unwrap();
    let hold = standing.hold.expect("held");
    assert!(hold.reason.contains(TRANSFER), "{}", hold.reason);
    assert_eq!(hold.by, "stripe:evt_demo_transfer_reversed");

    // The account loses its transfers capability (12 April); an older event arrives after.
    assert_eq!(
        outcome(&s.deliver("account.updated", |_| {}).await),
        "account_recorded"
    );
    let older = s
        .deliver("account.updated", |e| {
            e["id"] = "evt_demo_account_updated_earlier".into();
            e["created"] = 1_775_900_000.into();
            e["data"]["object"]["capabilities"]["transfers"] = "active".into();
        })
        .await;
    assert_eq!(outcome(&older), "account_stale");
    let kept = connect_accounts::get(s.w.t(), ACCOUNT)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.transfers, TransfersCapability::Inactive);
    assert_eq!(kept.event_id, "evt_demo_account_updated");

    // Friday 17: held, and the account cannot receive transfers.
    let chunks = s.run(17).await;
    assert!(s.item("2026-04-17").await.is_none());
    assert_eq!(
        reasons(&chunks),
        vec!["payout_method_unusable", "held_by_operator"]
    );

    // The operator lifts the hold and Stripe reactivates the account: Friday 24 pays.
    partners::set_payout_hold(s.w.t(), "alice", None)
        .await
        .unwrap();
    let on = s
        .deliver("account.updated", |e| {
            e["id"] = "evt_demo_account_updated_again".into();
            e["created"] = 1_776_500_000.into();
            e["data"]["object"]["capabilities"]["transfers"] = "active".into();
        })
        .await;
    assert_eq!(outcome(&on), "account_recorded");
    s.run(24).await;
    let again = s.item("2026-04-24").await.expect("paid again");
    assert_eq!((again.state, again.amount), (PayoutItemState::Sent, 12_475));
    assert_eq!(
        *s.rail.0.lock().unwrap(),
        vec!["demo:2026-04-10:alice:USD", "demo:2026-04-24:alice:USD"]
    );
}

#[tokio::test]
async fn a_reversal_of_an_unknown_payout_item_is_kept_for_an_operator() {
    let s = setup().await;
    let answer = s
        .deliver("transfer.reversed", |e| {
            e["id"] = "evt_demo_transfer_reversed_unknown".into();
            let m = &mut e["data"]["object"]["metadata"];
            m["date"] = "2026-03-27".into();
            m["payout_item"] = "demo:2026-03-27:alice:USD".into();
        })
        .await;
    assert_eq!(outcome(&answer), "needs_attention");
    let rec = attention::get(s.w.t(), "stripe:evt_demo_transfer_reversed_unknown")
        .await
        .unwrap()
        .expect("record");
    assert_eq!(rec.reason_code, "transfer-unmatched");
    assert!(
        rec.reason
            .contains("no payout item demo:2026-03-27:alice:USD"),
        "{}",
        rec.reason
    );
    assert!(partners::payout_standing(s.w.t(), "alice")
        .await
        .unwrap()
        .hold
        .is_none());
}
