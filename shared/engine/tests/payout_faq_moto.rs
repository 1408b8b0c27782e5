//! The payout FAQ as rules, against moto, in worked cents (issue 14): $80 carried then paid with
//! the next $40; six months of accrual, forfeited with a warning 30 days before, or paid anyway;
//! the 90-day window anchored to the account; no payout method, then one added; a held item
//! approved a week later after a clawback; the preview equal to the run that follows it. Every
//! partner is told why they wait once, not every week.

use chrono::{NaiveDate, TimeZone, Utc};
use engine::attribution::BindSource;
use engine::payout::export::{self, Mark};
use engine::payout::rail::Rails;
use engine::payout::review::{review_run, ReviewAction};
use engine::payout::{preview, run, worker, ChunkMessage, ChunkQueue};
use engine::sales::invoice_paid;
use engine::EngineError;
use messages::Kind;
use rules::program::{Duration, Reward};
use rules::{AccrualPolicy, Currency, HoldAnchor, PayoutItemState, PayoutMethod, PayoutReview};
use storage::customers;
use storage::payouts::{self, RunSummary};
use storage::{ledger, outbox, partners};
use testkit::engine::*;

#[derive(Default)]
struct Queue(std::sync::Mutex<Vec<ChunkMessage>>);

#[async_trait::async_trait]
impl ChunkQueue for Queue {
    async fn send(&self, chunks: &[ChunkMessage]) -> Result<(), EngineError> {
        self.0.lock().unwrap().extend_from_slice(chunks);
        Ok(())
    }
}

fn date(m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, m, d).unwrap()
}

/// The schedule's time on a payout date: 00:15 UTC.
fn run_time(d: NaiveDate) -> i64 {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 15, 0).unwrap())
        .timestamp_millis()
}

fn ms(m: u32, d: u32) -> i64 {
    Utc.with_ymd_and_hms(2026, m, d, 12, 0, 0)
        .unwrap()
        .timestamp_millis()
}

async fn world(edit: impl FnOnce(&mut rules::Program)) -> World {
    let w = World::new().await;
    let mut p = program("demo", pct("0.25"), Duration::Lifetime, None::<Reward>);
    edit(&mut p);
    w.seed(&p, &["prod_demo"]).await;
    w
}

/// The Friday run of `d`, with its chunks worked; its summary.
async fn friday(w: &World, d: NaiveDate) -> RunSummary {
    let q = Queue::default();
    run::run_program(&w.engine, &q, "demo", d, run_time(d), "test")
        .await
        .expect("run");
    let chunks = std::mem::take(&mut *q.0.lock().unwrap());
    for c in &chunks {
        worker::work_chunk(&w.engine, &Rails::manual(), c)
            .await
            .expect("chunk");
    }
    let ds = d.format("%Y-%m-%d").to_string();
    payouts::get_run(w.t(), "demo", &ds)
        .await
        .unwrap()
        .and_then(|r| r.summary)
        .expect("a finished run")
}

/// Customer `cus_{case}` of `partner` pays `total` cents at `at_ms` (invoice `in_{case}{n}`).
async fn pays(w: &World, case: &str, n: u32, partner: &str, at_ms: i64, total: i64) {
    let customer = format!("cus_{case}");
    w.bind(&customer, None, BindSource::Code(partner.into()), T0)
        .await;
    invoice_paid(
        &w.engine,
        invoice(
            &format!("evt_{case}{n}"),
            &format!("in_{case}{n}"),
            &customer,
            at_ms,
            vec![line("prod_demo", total)],
        ),
    )
    .await
    .expect("sale");
}

async fn buckets(w: &World, partner: &str) -> (i64, i64, i64, i64) {
    let b = ledger::balance(w.t(), partner, "demo", Currency::USD)
        .await
        .unwrap();
    (b.pending, b.available, b.in_payout, b.paid)
}

async fn messages_of(w: &World, kind: Kind) -> Vec<serde_json::Value> {
    outbox::unsent_of_kind(w.t(), kind)
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

async fn items(w: &World, d: &str) -> Vec<(String, i64, PayoutItemState)> {
    payouts::run_items(w.t(), "demo", d)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.partner_id, i.amount, i.state))
        .collect()
}

/// "What if I only have $80 in commission?" It waits (the partner is told once, $20 short), and
/// goes out with the next $40: $120, the oldest commission first.
#[tokio::test]
async fn eighty_dollars_wait_and_go_out_with_the_next_forty() {
    let w = world(|_| {}).await;
    pays(&w, "a", 1, "alice", ms(1, 6), 32_000).await; // $80, available Apr 6
    let s = friday(&w, date(4, 10)).await;
    assert_eq!(s.items, 0);
    assert_eq!(s.waiting["below_minimum"].amounts[&Currency::USD], 8_000);
    let detail = payouts::run_chunks(w.t(), "demo", "2026-04-10", 1)
        .await
        .unwrap();
    assert_eq!(detail[0].waiting[0].needed, Some(2_000));
    // Three more Fridays under the minimum: told once, not every week.
    for d in [date(4, 17), date(4, 24), date(5, 1)] {
        friday(&w, d).await;
    }
    let told = messages_of(&w, Kind::PayoutWaiting).await;
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0]["reasons"], serde_json::json!(["below_minimum"]));
    assert_eq!(told[0]["needed_minor"], 2_000);
    assert_eq!(told[0]["run_date"], "2026-04-10");

    pays(&w, "a", 2, "alice", ms(2, 1), 16_000).await; // $40, available May 2
    let s = friday(&w, date(5, 8)).await;
    assert_eq!((s.items, s.item_amounts[&Currency::USD]), (1, 12_000));
    let item = &payouts::run_items(w.t(), "demo", "2026-05-08")
        .await
        .unwrap()[0];
    assert_eq!(
        item.lots,
        [
            ("2026-04-06".to_string(), 8_000),
            ("2026-05-02".to_string(), 4_000)
        ]
        .into()
    );
    assert_eq!(buckets(&w, "alice").await, (0, 0, 12_000, 0));
    let row = w
        .t()
        .get_as::<ledger::BalanceRow>(&storage::keys::balance("alice", "demo", Currency::USD))
        .await
        .unwrap()
        .unwrap();
    assert!(row.lots.is_empty() && row.told.is_empty(), "{row:?}");
}

/// Ontraport's six months, per commission: $50 available Apr 6 and $30 available May 16.
/// Warned from Sep 6 (the run of Sep 11), $50 forfeited by the run of Oct 9, the $30 warned of
/// from Oct 17 (the run of Oct 23) and forfeited on Nov 16's run of Nov 20.
#[tokio::test]
async fn six_months_then_forfeited_with_a_warning_thirty_days_before() {
    let w = world(|p| p.accrual = AccrualPolicy::ForfeitAfterMonths { months: 6 }).await;
    pays(&w, "f", 1, "alice", ms(1, 6), 20_000).await; // $50 → Apr 6
    pays(&w, "f", 2, "alice", ms(2, 15), 12_000).await; // $30 → May 16
    friday(&w, date(5, 22)).await;
    friday(&w, date(9, 4)).await; // Oct 6 is 32 days away: no warning yet
    assert!(messages_of(&w, Kind::ForfeitWarning).await.is_empty());
    friday(&w, date(9, 11)).await;
    friday(&w, date(9, 18)).await; // not warned twice
    let warned = messages_of(&w, Kind::ForfeitWarning).await;
    assert_eq!(warned.len(), 1, "{warned:#?}");
    assert_eq!(
        (
            &warned[0]["forfeit_on"],
            &warned[0]["amount_minor"],
            &warned[0]["needed_minor"]
        ),
        (
            &serde_json::json!("2026-10-06"),
            &serde_json::json!(5_000),
            &serde_json::json!(2_000)
        )
    );

    let s = friday(&w, date(10, 9)).await;
    assert_eq!(
        (s.forfeited, s.forfeited_amounts[&Currency::USD]),
        (1, 5_000)
    );
    assert_eq!(buckets(&w, "alice").await, (0, 3_000, 0, 0));
    let forfeited: Vec<_> = ledger::entries(w.t(), "alice", "demo", Currency::USD)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == rules::EntryKind::Forfeited)
        .collect();
    assert_eq!(forfeited.len(), 1);
    assert_eq!(forfeited[0].amount, 5_000);
    assert_eq!(
        forfeited[0].reason,
        "unpaid under the payout minimum for 6 months"
    );
    let gone = messages_of(&w, Kind::Forfeited).await;
    assert_eq!(gone.len(), 1);
    assert_eq!(gone[0]["amount_minor"], 5_000);

    friday(&w, date(10, 16)).await; // Nov 16 is 31 days away
    assert_eq!(messages_of(&w, Kind::ForfeitWarning).await.len(), 1);
    friday(&w, date(10, 23)).await;
    let warned = messages_of(&w, Kind::ForfeitWarning).await;
    assert_eq!(warned.len(), 2);
    assert_eq!(warned[1]["forfeit_on"], "2026-11-16");
    assert_eq!(warned[1]["amount_minor"], 3_000);
    friday(&w, date(11, 20)).await;
    assert_eq!(buckets(&w, "alice").await, (0, 0, 0, 0));
    assert_eq!(messages_of(&w, Kind::Forfeited).await.len(), 2);
    // The reasons never changed: the partner was told once that the balance waits.
    assert_eq!(messages_of(&w, Kind::PayoutWaiting).await.len(), 1);
}

/// The same six months under `pay_after_months`: the $80 is paid under the minimum on the
/// first run from Oct 6, when a usable payout method is on file; bob, without one, waits.
#[tokio::test]
async fn six_months_then_paid_anyway_under_the_minimum() {
    let w = world(|p| p.accrual = AccrualPolicy::PayAfterMonths { months: 6 }).await;
    pays(&w, "p", 1, "alice", ms(1, 6), 32_000).await; // $80 → Apr 6
    pays(&w, "q", 1, "bob", ms(1, 6), 32_000).await;
    let mut bob = testkit::catalogue::partner("bob");
    bob.payout_method = PayoutMethod::None;
    w.t()
        .put(partners::partner_item(&bob).unwrap())
        .await
        .unwrap();
    let s = friday(&w, date(10, 2)).await;
    assert_eq!(s.items, 0, "Oct 2: not yet six months");
    let s = friday(&w, date(10, 9)).await;
    assert_eq!((s.items, s.item_amounts[&Currency::USD]), (1, 8_000));
    let paid = &payouts::run_items(w.t(), "demo", "2026-10-09")
        .await
        .unwrap()[0];
    assert_eq!(
        (paid.partner_id.as_str(), paid.under_minimum),
        ("alice", true)
    );
    assert_eq!(buckets(&w, "bob").await, (0, 8_000, 0, 0));
    assert_eq!(s.waiting["no_payout_method"].balances, 1);
}

/// "Sales are eligible for payment after the account has passed the 90 day refund period":
/// under `hold_anchor: account` the renewal of Feb 6 is available with the first sale of Jan 6
/// (Apr 6), the renewal of May 6 at once; under the default each waits its own 90 days.
#[tokio::test]
async fn the_ninety_days_anchored_to_the_account() {
    for (anchor, want) in [
        (
            HoldAnchor::Account,
            [ms(1, 6) + 90 * DAY, ms(1, 6) + 90 * DAY, ms(5, 6)],
        ),
        (
            HoldAnchor::Sale,
            [
                ms(1, 6) + 90 * DAY,
                ms(2, 6) + 90 * DAY,
                ms(5, 6) + 90 * DAY,
            ],
        ),
    ] {
        let w = world(|p| p.hold_anchor = anchor).await;
        pays(&w, "h", 1, "alice", ms(1, 6), 40_000).await;
        pays(&w, "h", 2, "alice", ms(2, 6), 40_000).await;
        pays(&w, "h", 3, "alice", ms(5, 6), 40_000).await;
        let mut avail: Vec<(String, i64)> =
            customers::partner_commissions(w.t(), "alice", 0, i64::MAX)
                .await
                .unwrap()
                .into_iter()
                .map(|c| (c.invoice_id, c.available_at_ms))
                .collect();
        avail.sort();
        assert_eq!(
            avail.iter().map(|(_, a)| *a).collect::<Vec<_>>(),
            want.to_vec(),
            "{anchor:?}"
        );
        // The run of May 8 pays what the anchor made available: all three ($300) or the first
        // two sales' ($100 + $100: the May 6 one waits its own hold).
        let s = friday(&w, date(5, 8)).await;
        let paid = s.item_amounts.get(&Currency::USD).copied().unwrap_or(0);
        match anchor {
            HoldAnchor::Account => assert_eq!(paid, 30_000),
            HoldAnchor::Sale => assert_eq!(paid, 20_000),
        }
    }
}

/// "Do we have a valid PayPal address from you?" carol has none: she waits (told once) and is
/// paid at the next run after she adds one; an operator's hold and a method the rail rejected
/// are reasons too, the latter until the partner changes the method.
#[tokio::test]
async fn no_payout_method_then_one_added_and_paid_at_the_next_run() {
    let w = world(|_| {}).await;
    pays(&w, "c", 1, "carol", ms(1, 6), 49_900).await; // $124.75
    let mut carol = testkit::catalogue::partner("carol");
    carol.payout_method = PayoutMethod::None;
    w.t()
        .put(partners::partner_item(&carol).unwrap())
        .await
        .unwrap();
    let s = friday(&w, date(4, 10)).await;
    assert_eq!((s.items, s.waiting["no_payout_method"].balances), (0, 1));
    friday(&w, date(4, 17)).await;
    let told = messages_of(&w, Kind::PayoutWaiting).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0]["reasons"], serde_json::json!(["no_payout_method"]));

    // She enters an address the rail then rejects: a new reason, told.
    carol.payout_method = PayoutMethod::PayPal {
        email: "carol.old@partners.test".into(),
    };
    w.t()
        .put(partners::partner_item(&carol).unwrap())
        .await
        .unwrap();
    partners::mark_method_unusable(
        w.t(),
        "carol",
        &partners::UnusableMethod {
            method: carol.payout_method.clone(),
            reason: "RECEIVER_UNREGISTERED".into(),
            at_ms: 0,
        },
    )
    .await
    .unwrap();
    let s = friday(&w, date(4, 24)).await;
    assert_eq!(s.waiting["payout_method_unusable"].balances, 1);
    let told = messages_of(&w, Kind::PayoutWaiting).await;
    assert_eq!(told.len(), 2);
    assert_eq!(
        told[1]["reasons"],
        serde_json::json!(["payout_method_unusable"])
    );

    // A new address: paid at the next run.
    carol.payout_method = PayoutMethod::PayPal {
        email: "carol@partners.test".into(),
    };
    w.t()
        .put(partners::partner_item(&carol).unwrap())
        .await
        .unwrap();
    let s = friday(&w, date(5, 1)).await;
    assert_eq!((s.items, s.item_amounts[&Currency::USD]), (1, 12_475));
    assert_eq!(buckets(&w, "carol").await, (0, 0, 12_475, 0));
}

/// Kartra: "All of our Affiliates are reviewed manually". Items wait as created; an operator
/// holds alice's; $40.00 of her sale is refunded (a $10.00 clawback); a week later the
/// approval shrinks the item to $239.75 and gives the $10.00 back to cover the clawback.
#[tokio::test]
async fn a_held_item_approved_a_week_later_after_a_clawback() {
    use engine::sales::{money_back, MoneyBack};
    use rules::plan::InvoicePayment;
    use rules::refund::{Observation, RefundStatus};
    use storage::charges::ChargeFact;

    let w = world(|p| p.payout_review = PayoutReview::Manual).await;
    w.bind("cus_r", None, BindSource::Code("alice".into()), T0)
        .await;
    let mut inv = invoice(
        "evt_r",
        "in_r",
        "cus_r",
        ms(1, 6),
        vec![line("prod_demo", 99_900)],
    );
    inv.facts.payment = Some(InvoicePayment {
        charge_key: Some("ch_r".into()),
        payment_intent: Some("pi_r".into()),
        amount_paid: 99_900,
        total: 99_900,
    });
    invoice_paid(&w.engine, inv).await.expect("sale");
    pays(&w, "b", 1, "bob", ms(1, 6), 49_900).await; // $124.75

    let s = friday(&w, date(4, 10)).await;
    assert_eq!(s.items, 2);
    assert_eq!(
        items(&w, "2026-04-10").await,
        vec![
            ("alice".into(), 24_975, PayoutItemState::Created),
            ("bob".into(), 12_475, PayoutItemState::Created),
        ],
        "under review: nothing approved, nothing exported"
    );
    assert!(export::export_run(&w.engine, "demo", "2026-04-10", "x0")
        .await
        .unwrap()
        .is_empty());
    let held = review_run(
        &w.engine,
        "demo",
        "2026-04-10",
        &["alice".into()],
        ReviewAction::Hold,
        "ops",
        ms(4, 10),
    )
    .await
    .unwrap();
    assert_eq!(held.len(), 1);
    review_run(
        &w.engine,
        "demo",
        "2026-04-10",
        &["bob".into()],
        ReviewAction::Approve,
        "ops",
        ms(4, 10),
    )
    .await
    .unwrap();

    let at = ms(4, 13);
    money_back(
        &w.engine,
        MoneyBack {
            event_id: "evt_refund_r".into(),
            source: "stripe".into(),
            at_ms: at,
            charge_key: "ch_r".into(),
            payment_intent: Some("pi_r".into()),
            invoice_id: None,
            customer_key: None,
            currency: Some(Currency::USD),
            fact: ChargeFact::Refund(Observation {
                id: "re_r".into(),
                amount: 4_000,
                status: RefundStatus::Succeeded,
                at_ms: at,
                event_id: "evt_refund_r".into(),
            }),
        },
    )
    .await
    .expect("refund");
    assert_eq!(buckets(&w, "alice").await, (0, -1_000, 24_975, 0));

    let approved = review_run(
        &w.engine,
        "demo",
        "2026-04-10",
        &[],
        ReviewAction::Approve,
        "ops",
        ms(4, 17),
    )
    .await
    .unwrap();
    assert_eq!(
        approved.len(),
        1,
        "bob's was approved already: {approved:?}"
    );
    assert_eq!(
        (
            approved[0].amount_before,
            approved[0].amount_after,
            approved[0].to
        ),
        (24_975, 23_975, PayoutItemState::Approved)
    );
    assert_eq!(buckets(&w, "alice").await, (0, 0, 23_975, 0));
    // Approving again changes nothing.
    assert!(review_run(
        &w.engine,
        "demo",
        "2026-04-10",
        &[],
        ReviewAction::Approve,
        "ops",
        ms(4, 17)
    )
    .await
    .unwrap()
    .is_empty());
    let exported = export::export_run(&w.engine, "demo", "2026-04-10", "x1")
        .await
        .unwrap();
    assert_eq!(exported.len(), 2);
    export::mark(&w.engine, "demo", "2026-04-10", &Mark::Sent, &[], ms(4, 17))
        .await
        .unwrap();
    assert_eq!(buckets(&w, "alice").await, (0, 0, 0, 23_975));
    assert_eq!(buckets(&w, "bob").await, (0, 0, 0, 12_475));

    // A cancelled item gives its money back with its accrual clocks.
    pays(&w, "b", 2, "bob", ms(2, 6), 49_900).await;
    friday(&w, date(5, 8)).await;
    let cancelled = review_run(
        &w.engine,
        "demo",
        "2026-05-08",
        &[],
        ReviewAction::Cancel,
        "ops",
        ms(5, 8),
    )
    .await
    .unwrap();
    assert_eq!(cancelled.len(), 1);
    assert_eq!(buckets(&w, "bob").await, (0, 12_475, 0, 12_475));
    let row = w
        .t()
        .get_as::<ledger::BalanceRow>(&storage::keys::balance("bob", "demo", Currency::USD))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.lots, [("2026-05-07".to_string(), 12_475)].into());
}

/// The preview is the run that follows it: the same items, the same waiting balances and
/// reasons, the same forfeiture, and it writes nothing.
#[tokio::test]
async fn the_preview_equals_the_run_that_follows_it() {
    let w = world(|p| p.accrual = AccrualPolicy::ForfeitAfterMonths { months: 6 }).await;
    pays(&w, "a", 1, "alice", ms(1, 6), 49_900).await; // $124.75, paid
    pays(&w, "b", 1, "bob", ms(1, 6), 20_000).await; // $50 → Apr 6, forfeited Oct 6
    pays(&w, "b", 2, "bob", ms(6, 1), 12_000).await; // $30 → Aug 30, waits
    pays(&w, "c", 1, "carol", ms(1, 6), 49_900).await;
    let mut carol = testkit::catalogue::partner("carol");
    carol.payout_method = PayoutMethod::None;
    w.t()
        .put(partners::partner_item(&carol).unwrap())
        .await
        .unwrap();
    // Nothing released yet: the preview releases the holds in memory, as the run will.
    let program = storage::programs::get_program(w.t(), "demo")
        .await
        .unwrap()
        .unwrap();
    let t = preview::run_time_for(&program, date(10, 9)).expect("a Friday");
    assert_eq!(t, run_time(date(10, 9)));
    let before = buckets(&w, "bob").await;
    let p = preview::preview(&w.engine, "demo", date(10, 9), t)
        .await
        .unwrap();
    assert_eq!(
        buckets(&w, "bob").await,
        before,
        "the preview writes nothing"
    );
    assert!(outbox::unsent_of_kind(w.t(), Kind::Forfeited)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(p.forfeited_amounts[&Currency::USD], 5_000);

    let s = friday(&w, date(10, 9)).await;
    let run_items: Vec<(String, i64)> = items(&w, "2026-10-09")
        .await
        .into_iter()
        .map(|(p, a, _)| (p, a))
        .collect();
    let preview_items: Vec<(String, i64)> = p
        .items
        .iter()
        .map(|i| (i.partner_id.clone(), i.amount))
        .collect();
    assert_eq!(preview_items, run_items);
    assert_eq!(run_items, vec![("alice".to_string(), 12_475)]);
    let mut run_waiting: Vec<_> = payouts::run_chunks(w.t(), "demo", "2026-10-09", 1)
        .await
        .unwrap()
        .into_iter()
        .flat_map(|c| c.waiting)
        .collect();
    run_waiting.sort_by(|a, b| a.partner_id.cmp(&b.partner_id));
    assert_eq!(p.waiting, run_waiting);
    assert_eq!(s.forfeited_amounts[&Currency::USD], 5_000);
    assert_eq!(buckets(&w, "bob").await, (0, 3_000, 0, 0));
    assert!(
        preview::run_time_for(&program, date(10, 8)).is_none(),
        "a Thursday"
    );
}
