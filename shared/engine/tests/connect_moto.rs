//! Stripe Connect's events against moto: a transfer the platform reversed is booked back once
//! and holds the partner, however often and however early it arrives; a connected account's
//! `transfers` capability is kept as of its newest event and decides whether the run pays.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use chrono::{NaiveDate, TimeZone, Utc};
use engine::payout::assess::{self, Assessed};
use engine::payout::connect::{
    self, AccountOutcome, AccountUpdate, ReversalOutcome, ReversedTransfer,
};
use engine::payout::handover;
use engine::payout::rail::{Rail, RailAnswer, RailError, RailOutcome, Rails};
use engine::payout::{run, worker};
use engine::Engine;
use rules::program::{Duration, Reward};
use rules::{BalanceOutcome, Currency, PayoutBlocker, PayoutItemState, PayoutMethod};
use storage::connect_accounts::{self, TransfersCapability};
use storage::ledger::BalanceRow;
use storage::metrics::RequestCounter;
use storage::payouts::{self, PayoutChunk, PayoutItem};
use storage::rail_batches::RailBatch;
use storage::{keys, ledger, partners, testing, Table};
use testkit::catalogue;
use testkit::engine::*;
use testkit::faults::RecordingQueue;

const DATE: &str = "2026-04-10";
const ITEM: &str = "demo:2026-04-10:alice:USD";
/// alice's commission: 25 % of 499.00.
const AMOUNT: i64 = 12_475;

fn at(day: u32, hour: u32) -> i64 {
    Utc.with_ymd_and_hms(2026, 4, day, hour, 15, 0)
        .unwrap()
        .timestamp_millis()
}

/// A Stripe Connect rail that records what it was handed and answers each open member with a
/// transfer (`tr_{partner}`), or, when told to hold its answers, with nothing yet.
#[derive(Default)]
struct TransferRail {
    hold_answers: AtomicBool,
    handed: Mutex<Vec<String>>,
}

impl TransferRail {
    fn handed(&self) -> Vec<String> {
        self.handed.lock().unwrap().clone()
    }
}

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
            if !*open || self.hold_answers.load(Ordering::SeqCst) {
                outcomes.push(RailOutcome::pending());
                continue;
            }
            self.handed.lock().unwrap().push(m.item_id.clone());
            outcomes.push(RailOutcome::Sent {
                at_ms: b.created_at_ms,
                reference: format!("tr_{}", m.partner_id),
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
    rail: Arc<TransferRail>,
    rails: Rails,
}

/// Program `demo`, alice paid by Stripe Connect (`acct_alice`), her 499.00 sale of T0 + 1 day
/// past its hold by the run of Friday 2026-04-10.
async fn setup() -> Setup {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None::<Reward>),
        &["prod_demo"],
    )
    .await;
    let rail = Arc::new(TransferRail::default());
    let s = Setup {
        w,
        rails: Rails::new(vec![rail.clone()]),
        rail,
    };
    s.method("alice", stripe("acct_alice")).await;
    s.w.customer_of_pays("a1", "alice", T0 + DAY, 49_900).await;
    s
}

fn stripe(account: &str) -> PayoutMethod {
    PayoutMethod::StripeConnect {
        account_id: account.into(),
    }
}

impl Setup {
    fn e(&self) -> &Engine {
        &self.w.engine
    }
    async fn method(&self, partner: &str, method: PayoutMethod) {
        let mut p = catalogue::partner(partner);
        p.payout_method = method;
        self.w
            .t()
            .put(partners::partner_item(&p).unwrap())
            .await
            .unwrap();
    }
    /// The run of Friday `day` (April 2026) and its chunks, through `engine`.
    async fn run_with(&self, engine: &Engine, day: u32) -> Vec<PayoutChunk> {
        let q = RecordingQueue::default();
        let date = NaiveDate::from_ymd_opt(2026, 4, day).unwrap();
        run::run_program(self.e(), &q, "demo", date, at(day, 0), "schedule")
            .await
            .expect("run");
        let mut chunks = vec![];
        for m in q.take() {
            chunks.push(
                worker::work_chunk(engine, &self.rails, &m)
                    .await
                    .expect("chunk"),
            );
        }
        chunks
    }
    async fn run(&self, day: u32) -> Vec<PayoutChunk> {
        self.run_with(self.e(), day).await
    }
    async fn item(&self, date: &str) -> Option<PayoutItem> {
        payouts::get_item(
            self.w.t(),
            &keys::payout_item("demo", date, "alice", Currency::USD),
        )
        .await
        .unwrap()
    }
    /// alice's (pending, available, in payout, paid).
    async fn buckets(&self) -> (i64, i64, i64, i64) {
        let b = ledger::balance(self.w.t(), "alice", "demo", Currency::USD)
            .await
            .unwrap();
        (b.pending, b.available, b.in_payout, b.paid)
    }
    async fn count(&self, kind: &str) -> usize {
        self.w
            .entries("alice", "demo")
            .await
            .iter()
            .filter(|(k, _)| k == kind)
            .count()
    }
    async fn hold(&self) -> Option<String> {
        partners::payout_standing(self.w.t(), "alice")
            .await
            .unwrap()
            .hold
            .map(|h| h.reason)
    }
    async fn reverse(&self, t: &ReversedTransfer) -> ReversalOutcome {
        connect::transfer_reversed(self.e(), t, at(14, 9))
            .await
            .expect("reversal")
    }
    async fn account(
        &self,
        event: &str,
        transfers: TransfersCapability,
        at_ms: i64,
    ) -> AccountOutcome {
        connect::account_updated(
            self.e(),
            &AccountUpdate {
                event_id: event.into(),
                account_id: "acct_alice".into(),
                transfers,
                at_ms,
            },
        )
        .await
        .expect("account")
    }
}

/// The reversal of alice's transfer `tr_alice`, with the metadata the rail writes.
fn reversal() -> ReversedTransfer {
    let metadata = [
        ("payout_item", ITEM),
        ("payout_batch", "pb_x"),
        ("program", "demo"),
        ("date", DATE),
        ("partner", "alice"),
        ("currency", "USD"),
    ];
    ReversedTransfer {
        event_id: "evt_reversed".into(),
        transfer_id: "tr_alice".into(),
        amount: AMOUNT,
        amount_reversed: AMOUNT,
        currency: "usd".into(),
        reversed: true,
        created_ms: at(10, 0),
        metadata: metadata
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn reasons(chunks: &[PayoutChunk]) -> Vec<String> {
    chunks
        .iter()
        .flat_map(|c| c.waiting.iter())
        .filter(|w| w.partner_id == "alice")
        .flat_map(|w| w.reasons.clone())
        .collect()
}

#[tokio::test]
async fn a_reversal_books_payout_returned_once_and_holds_the_partner() {
    let s = setup().await;
    s.run(10).await;
    let item = s.item(DATE).await.expect("item");
    assert_eq!(item.state, PayoutItemState::Sent);
    assert_eq!(item.rail_note.as_deref(), Some("tr_alice"));
    assert_eq!(s.buckets().await, (0, 0, 0, AMOUNT));

    assert_eq!(
        s.reverse(&reversal()).await,
        ReversalOutcome::Returned {
            item_id: ITEM.into(),
            booked_sent: false
        }
    );
    // Stripe delivers it again: nothing more.
    assert_eq!(
        s.reverse(&reversal()).await,
        ReversalOutcome::AlreadyBooked {
            item_id: ITEM.into(),
            state: PayoutItemState::Returned
        }
    );
    assert_eq!(s.count("payout_returned").await, 1);
    assert_eq!(s.buckets().await, (0, AMOUNT, 0, 0), "back in available");
    let item = s.item(DATE).await.unwrap();
    assert_eq!(item.state, PayoutItemState::Returned);
    assert!(item.rail_note.unwrap().contains("tr_alice"));
    let hold = s.hold().await.expect("held for an operator");
    assert!(hold.contains("tr_alice") && hold.contains(ITEM), "{hold}");
    // The partner is told once (the outbox message of the move).
    assert!(s
        .w
        .t()
        .get(&keys::outbox(&format!("payout-returned:{ITEM}")))
        .await
        .unwrap()
        .is_some());

    // The next Friday pays nothing: the balance waits for the operator.
    let chunks = s.run(17).await;
    assert!(s.item("2026-04-17").await.is_none());
    assert_eq!(reasons(&chunks), vec!["held_by_operator"]);
    assert_eq!(s.rail.handed(), vec![ITEM.to_string()], "one transfer only");

    // Once the operator lifts the hold, the money is paid again.
    partners::set_payout_hold(s.w.t(), "alice", None)
        .await
        .unwrap();
    s.run(24).await;
    let again = s.item("2026-04-24").await.expect("paid again");
    assert_eq!((again.state, again.amount), (PayoutItemState::Sent, AMOUNT));
    assert_eq!(s.buckets().await, (0, 0, 0, AMOUNT));
}

#[tokio::test]
async fn a_reversal_that_overtakes_the_transfer_books_it_sent_then_returned() {
    let s = setup().await;
    s.rail.hold_answers.store(true, Ordering::SeqCst);
    s.run(10).await;
    let submitted = s.item(DATE).await.unwrap();
    assert_eq!(submitted.state, PayoutItemState::Submitted);
    assert_eq!(s.buckets().await, (0, 0, AMOUNT, 0));

    // Delivered twice at once: one books it, the other finds it booked.
    let t = reversal();
    let (a, b) = tokio::join!(s.reverse(&t), s.reverse(&t));
    let mut outcomes = [a, b];
    outcomes.sort_by_key(|o| matches!(o, ReversalOutcome::AlreadyBooked { .. }));
    assert!(
        matches!(outcomes[0], ReversalOutcome::Returned { .. }),
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes[1],
        ReversalOutcome::AlreadyBooked {
            item_id: ITEM.into(),
            state: PayoutItemState::Returned
        }
    );
    assert_eq!(
        s.count("paid").await,
        1,
        "the transfer is booked sent first"
    );
    assert_eq!(s.count("payout_returned").await, 1);
    assert_eq!(s.buckets().await, (0, AMOUNT, 0, 0));
    assert!(s.hold().await.is_some());

    // The rail's answer arrives late: it books nothing.
    let late = handover::book(
        s.e(),
        &submitted,
        &RailOutcome::Sent {
            at_ms: at(10, 0),
            reference: "tr_alice".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(late.state, PayoutItemState::Returned);
    assert_eq!(s.count("paid").await, 1);
    assert_eq!(s.buckets().await, (0, AMOUNT, 0, 0));
}

#[tokio::test]
async fn reversals_that_match_no_item_book_nothing_and_say_why() {
    let s = setup().await;
    s.run(10).await;
    let entries = s.w.entries("alice", "demo").await;
    let cases: Vec<(&str, ReversedTransfer)> = vec![
        ("metadata[currency]", {
            let mut t = reversal();
            t.metadata.remove("currency");
            t
        }),
        ("no payout item", {
            let mut t = reversal();
            t.metadata
                .insert("payout_item".into(), "demo:2026-04-03:alice:USD".into());
            t.metadata.insert("date".into(), "2026-04-03".into());
            t
        }),
        ("disagrees", {
            let mut t = reversal();
            t.metadata.insert("partner".into(), "bob".into());
            t
        }),
        ("payout item demo:2026-04-10:alice:USD is 12475 USD", {
            let mut t = reversal();
            t.amount = 10_000;
            t.amount_reversed = 10_000;
            t
        }),
        ("partial reversal", {
            let mut t = reversal();
            t.amount_reversed = 5_000;
            t.reversed = false;
            t
        }),
        ("paid by transfer tr_alice, not this one", {
            let mut t = reversal();
            t.transfer_id = "tr_other".into();
            t
        }),
    ];
    for (why, t) in cases {
        match s.reverse(&t).await {
            ReversalOutcome::Unmatched { reason } => {
                assert!(reason.contains(why), "{why}: {reason}")
            }
            other => panic!("{why}: {other:?}"),
        }
    }
    assert_eq!(
        s.w.entries("alice", "demo").await,
        entries,
        "nothing booked"
    );
    assert_eq!(s.item(DATE).await.unwrap().state, PayoutItemState::Sent);
    assert!(s.hold().await.is_none());

    // An item never handed to Stripe (no rail configured: it waits for the export).
    let manual = Setup {
        rails: Rails::manual(),
        ..setup().await
    };
    manual.run(10).await;
    assert_eq!(
        manual.item(DATE).await.unwrap().state,
        PayoutItemState::Approved
    );
    match manual.reverse(&reversal()).await {
        ReversalOutcome::Unmatched { reason } => {
            assert!(reason.contains("never handed to Stripe"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn account_updates_out_of_order_keep_the_newest() {
    let s = setup().await;
    let (t1, t2, t3) = (at(1, 0), at(2, 0), at(3, 0));
    let recorded = |o: AccountOutcome| match o {
        AccountOutcome::Recorded(a) => (a.transfers, a.as_of_ms, a.event_id),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        recorded(s.account("evt_2", TransfersCapability::Active, t2).await),
        (TransfersCapability::Active, t2, "evt_2".to_string())
    );
    // An older event arrives late: the newer one stands.
    match s.account("evt_1", TransfersCapability::Inactive, t1).await {
        AccountOutcome::Stale { recorded: Some(a) } => {
            assert_eq!((a.transfers, a.as_of_ms), (TransfersCapability::Active, t2))
        }
        other => panic!("{other:?}"),
    }
    // The same event again: written again, the same facts.
    recorded(s.account("evt_2", TransfersCapability::Active, t2).await);
    let kept = connect_accounts::get(s.w.t(), "acct_alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (kept.transfers, kept.as_of_ms, kept.event_id.as_str()),
        (TransfersCapability::Active, t2, "evt_2")
    );
    assert_eq!(
        recorded(s.account("evt_3", TransfersCapability::Pending, t3).await).0,
        TransfersCapability::Pending
    );
    let bad = connect::account_updated(
        s.e(),
        &AccountUpdate {
            event_id: "evt_4".into(),
            account_id: "cus_1".into(),
            transfers: TransfersCapability::Active,
            at_ms: t3,
        },
    )
    .await;
    assert!(bad.is_err());
}

#[tokio::test]
async fn an_inactive_account_makes_the_run_wait_and_reactivation_pays() {
    let s = setup().await;
    s.account("evt_off", TransfersCapability::Inactive, at(9, 0))
        .await;
    let chunks = s.run(10).await;
    assert!(s.item(DATE).await.is_none(), "not handed to Stripe");
    assert!(s.rail.handed().is_empty());
    assert_eq!(reasons(&chunks), vec!["payout_method_unusable"]);
    assert_eq!(s.buckets().await, (0, AMOUNT, 0, 0));

    // The reason the rules were given names the account and its capability.
    let partner = partners::get_partner(s.w.t(), "alice")
        .await
        .unwrap()
        .unwrap();
    let standing = partners::payout_standing(s.w.t(), "alice").await.unwrap();
    let account = connect_accounts::get(s.w.t(), "acct_alice").await.unwrap();
    let row: BalanceRow =
        s.w.t()
            .get_as(&keys::balance("alice", "demo", Currency::USD))
            .await
            .unwrap()
            .unwrap();
    let program = s
        .e()
        .catalog
        .versions(s.w.t(), "demo")
        .await
        .unwrap()
        .unwrap();
    let program = &program
        .in_force_at(Utc.timestamp_millis_opt(at(10, 0)).unwrap())
        .program;
    let Assessed { outcome, .. } = assess::decide(
        program,
        &partner,
        &standing,
        account.as_ref(),
        &row,
        0,
        at(10, 0),
    );
    match outcome {
        BalanceOutcome::Wait { blockers, .. } => {
            assert!(blockers.contains(&PayoutBlocker::PayoutMethodUnusable {
                reason: "Stripe account acct_alice: transfers capability inactive".into()
            }))
        }
        other => panic!("{other:?}"),
    }
    // With a rail's rejection on file as well, both reasons.
    let mut rejected = standing.clone();
    rejected.unusable = Some(partners::UnusableMethod {
        method: stripe("acct_alice"),
        reason: "insufficient_capabilities_for_transfer".into(),
        at_ms: 0,
    });
    assert_eq!(
        assess::method_unusable(&partner, &rejected, account.as_ref()).as_deref(),
        Some(
            "insufficient_capabilities_for_transfer; Stripe account acct_alice: transfers capability inactive"
        )
    );
    // Another account's record says nothing about alice's method.
    let mut other = account.clone().unwrap();
    other.account_id = "acct_other".into();
    assert_eq!(
        assess::method_unusable(&partner, &standing, Some(&other)),
        None
    );

    // Stripe reactivates the account: the next run pays.
    s.account("evt_on", TransfersCapability::Active, at(15, 0))
        .await;
    s.run(17).await;
    let item = s.item("2026-04-17").await.expect("paid");
    assert_eq!((item.state, item.amount), (PayoutItemState::Sent, AMOUNT));
    assert_eq!(
        s.rail.handed(),
        vec!["demo:2026-04-17:alice:USD".to_string()]
    );
}

/// `BatchGetItem` requests of the worker's chunk, through a counting client.
async fn batch_gets_of_the_chunk(s: &Setup) -> u64 {
    let counter = RequestCounter::new();
    let (ddb, _) = counter.clients(&testing::local_config().await);
    let engine = Engine::new(Table::new(ddb, s.w.t().name.clone()), s.e().keys.clone());
    s.run_with(&engine, 10).await;
    counter
        .snapshot()
        .get("DynamoDB.BatchGetItem")
        .copied()
        .unwrap_or(0)
}

#[tokio::test]
async fn accounts_are_read_in_one_more_request_only_for_chunks_paid_by_stripe() {
    let paypal = Setup {
        rails: Rails::manual(),
        ..setup().await
    };
    paypal
        .method(
            "alice",
            PayoutMethod::PayPal {
                email: "alice@partners.test".into(),
            },
        )
        .await;
    let connect = Setup {
        rails: Rails::manual(),
        ..setup().await
    };
    let without = batch_gets_of_the_chunk(&paypal).await;
    let with = batch_gets_of_the_chunk(&connect).await;
    assert!(without >= 1);
    assert_eq!(with, without + 1, "{with} vs {without}");
    assert!(paypal.item(DATE).await.is_some() && connect.item(DATE).await.is_some());
}
