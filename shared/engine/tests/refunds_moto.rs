//! Money going back, against moto: refunds and disputes of a sale's charge take back its
//! commissions pro rata, exactly once, in every order of delivery (the sale included),
//! duplicated and concurrent; a refund after the release claws back; tier 2 follows; an invoice
//! paid partly from credit earns on the money received.

use engine::attribution::BindSource;
use engine::release::release_due;
use engine::sales::{invoice_paid, money_back, MoneyBack, MoneyBackOutcome, PaidInvoice};
use rules::ledger::EntryKind;
use rules::plan::{InvoicePayment, SaleLine};
use rules::program::{Duration, Reward};
use rules::refund::{ChargeView, DisputeStatus, Observation, RefundStatus};
use rules::{Currency, Money};
use storage::charges::{self, ChargeFact};
use storage::customers::{self, CommissionRow, CommissionState};
use storage::ledger::{self, LedgerEntry};
use testkit::engine::*;

/// Past the 90-day hold of every sale of the scenarios.
const AFTER_HOLD: i64 = T0 + 120 * DAY;

#[derive(Debug, Clone)]
enum Delivery {
    Sale(PaidInvoice),
    MoneyBack(MoneyBack),
}

/// A world with program `demo` (25 %, lifetime; tier 2 5 %) on `prod_demo`.
async fn seeded() -> World {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, Some(pct("0.05"))),
        &["prod_demo"],
    )
    .await;
    w
}

/// The sale of case `case`: customer `cus_{case}` pays invoice `in_{case}` with charge
/// `ch_{case}` (`amount_paid` of `total` with money; the rest from credit).
fn sale_paid(case: &str, currency: Currency, total: i64, amount_paid: i64) -> PaidInvoice {
    let mut inv = invoice(
        &format!("evt_sale_{case}"),
        &format!("in_{case}"),
        &format!("cus_{case}"),
        T0 + DAY,
        vec![SaleLine::new("prod_demo", Money::new(total, currency))],
    );
    inv.facts.currency = currency;
    inv.facts.payment = Some(InvoicePayment {
        charge_key: Some(format!("ch_{case}")),
        payment_intent: Some(format!("pi_{case}")),
        amount_paid,
        total,
    });
    inv
}

fn sale(case: &str, total: i64) -> Delivery {
    Delivery::Sale(sale_paid(case, Currency::USD, total, total))
}

fn money(case: &str, event: &str, at_ms: i64, fact: ChargeFact) -> Delivery {
    Delivery::MoneyBack(MoneyBack {
        event_id: format!("evt_{event}_{case}"),
        source: "stripe".into(),
        at_ms,
        charge_key: format!("ch_{case}"),
        payment_intent: Some(format!("pi_{case}")),
        invoice_id: None,
        customer_key: None,
        currency: Some(Currency::USD),
        fact,
    })
}

fn refund(case: &str, id: &str, amount: i64, status: RefundStatus, day: i64) -> Delivery {
    let event = format!("{id}_{status:?}");
    money(
        case,
        &event,
        T0 + day * DAY,
        ChargeFact::Refund(Observation {
            id: format!("{id}_{case}"),
            amount,
            status,
            at_ms: T0 + day * DAY,
            event_id: format!("evt_{event}_{case}"),
        }),
    )
}

fn dispute(case: &str, amount: i64, status: DisputeStatus, day: i64) -> Delivery {
    let event = format!("dp_{status:?}");
    money(
        case,
        &event,
        T0 + day * DAY,
        ChargeFact::Dispute(Observation {
            id: format!("dp_{case}"),
            amount,
            status,
            at_ms: T0 + day * DAY,
            event_id: format!("evt_{event}_{case}"),
        }),
    )
}

fn charge_refunded(case: &str, amount: i64, refunded: i64, day: i64) -> Delivery {
    let event = format!("ch_refunded_{refunded}");
    money(
        case,
        &event,
        T0 + day * DAY,
        ChargeFact::Charge {
            amount,
            view: ChargeView {
                amount_refunded: refunded,
                at_ms: T0 + day * DAY,
                event_id: format!("evt_{event}_{case}"),
            },
        },
    )
}

async fn bind(w: &World, case: &str, partner: &str) {
    w.bind(
        &format!("cus_{case}"),
        None,
        BindSource::Code(partner.into()),
        T0,
    )
    .await;
}

async fn deliver(w: &World, d: &Delivery) {
    match d {
        Delivery::Sale(inv) => {
            invoice_paid(&w.engine, inv.clone()).await.expect("sale");
        }
        Delivery::MoneyBack(m) => {
            money_back(&w.engine, m.clone()).await.expect("money back");
        }
    }
}

async fn commission(w: &World, partner: &str, case: &str, tier: u8) -> CommissionRow {
    customers::get_commission(w.t(), partner, &format!("demo:in_{case}:t{tier}"))
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("commission of {partner} on {case} t{tier}"))
}

/// The commission is at `net` after refunds, and its ledger entries say the same: their
/// moves sum to its net, with nothing left in `pending` once it is released.
async fn assert_net(w: &World, partner: &str, case: &str, tier: u8, net: i64, why: &str) {
    let c = commission(w, partner, case, tier).await;
    assert_eq!(c.net(), net, "{why}: {case} t{tier} net ({c:?})");
    let entries = ledger::entries(w.t(), partner, "demo", c.currency)
        .await
        .expect("entries");
    let mine: Vec<&LedgerEntry> = entries
        .iter()
        .filter(|e| e.commission_id.as_deref() == Some(c.commission_id.as_str()))
        .collect();
    let total: i64 = mine.iter().map(|e| e.delta.total()).sum();
    assert_eq!(total, net, "{why}: {case} t{tier} entries sum to its net");
    let pending: i64 = mine.iter().map(|e| e.delta.pending).sum();
    let expect_pending = if c.state == CommissionState::Pending {
        net
    } else {
        0
    };
    assert_eq!(pending, expect_pending, "{why}: {case} pending moves");
}

/// The balance of (partner, demo, currency) equals the sum of its entries.
async fn assert_books_balance(w: &World, partner: &str, currency: Currency) {
    let entries = ledger::entries(w.t(), partner, "demo", currency)
        .await
        .expect("entries");
    let (mut p, mut a, mut f, mut d) = (0, 0, 0, 0);
    for e in &entries {
        p += e.delta.pending;
        a += e.delta.available;
        f += e.delta.in_payout;
        d += e.delta.paid;
    }
    let b = ledger::balance(w.t(), partner, "demo", currency)
        .await
        .expect("balance");
    assert_eq!(
        (b.pending, b.available, b.in_payout, b.paid),
        (p, a, f, d),
        "{partner} {currency}: balance is the sum of the entries"
    );
}

/// $99.00 at 25 % = 24.75. Refunds of 33.00 (succeeded) and 16.50 (pending) take back
/// round(2475 × 4950 ÷ 9900) = 12.38, in all 24 orders of the sale, the two refunds and the
/// charge's own `charge.refunded` view, each delivered twice.
#[tokio::test]
async fn partial_refunds_in_every_order_and_twice_take_back_the_same() {
    let w = seeded().await;
    for (n, order) in testkit::permutations(4).into_iter().enumerate() {
        let case = format!("p{n}");
        bind(&w, &case, "alice").await;
        let deliveries = [
            sale(&case, 9900),
            refund(&case, "re_1", 3300, RefundStatus::Succeeded, 3),
            refund(&case, "re_2", 1650, RefundStatus::Pending, 4),
            charge_refunded(&case, 9900, 4950, 4),
        ];
        for &i in order.iter().chain(order.iter()) {
            deliver(&w, &deliveries[i]).await;
        }
        assert_net(
            &w,
            "alice",
            &case,
            1,
            2475 - 1238,
            &format!("order {order:?}"),
        )
        .await;
        let c = commission(&w, "alice", &case, 1).await;
        assert_eq!(c.reversed_pending, 1238, "order {order:?}");
        assert_eq!(
            c.amount, 2475,
            "order {order:?}: the commission keeps its amount"
        );
    }
    assert_books_balance(&w, "alice", Currency::USD).await;
    let b = w.balance("alice", "demo").await;
    assert_eq!(b, (24 * 1237, 0, 0), "pending holds every net");
}

/// A refund seen pending and then failed gives the reversal back (`adjusted` into pending);
/// delivered the other way round, the failed status is the latest and nothing is taken.
#[tokio::test]
async fn a_refund_that_fails_after_pending_gives_back_what_it_took() {
    let w = seeded().await;
    for (case, order) in [("f_in_order", [0, 1, 2]), ("f_shuffled", [2, 0, 1])] {
        bind(&w, case, "alice").await;
        let d = [
            sale(case, 9900),
            refund(case, "re_1", 9900, RefundStatus::Pending, 2),
            refund(case, "re_1", 9900, RefundStatus::Failed, 5),
        ];
        for i in order {
            deliver(&w, &d[i]).await;
        }
        assert_net(&w, "alice", case, 1, 2475, case).await;
    }
    let kinds: Vec<(String, i64)> = w
        .entries("alice", "demo")
        .await
        .into_iter()
        .filter(|(k, _)| k != "earned")
        .collect();
    assert_eq!(
        kinds,
        vec![("reversed".into(), 2475), ("adjusted".into(), 2475)],
        "only the in-order case took back (and gave back)"
    );
    assert_books_balance(&w, "alice", Currency::USD).await;
}

/// A dispute reverses the disputed amount while open; `won` reinstates it, `lost` keeps it, in
/// every order of its events; an inquiry changes nothing (it is ignored by the webhook).
#[tokio::test]
async fn disputes_won_and_lost_in_every_order() {
    use DisputeStatus::*;
    let w = seeded().await;
    for (end, net) in [(Won, 2475), (Lost, 0)] {
        for (n, order) in testkit::permutations(4).into_iter().enumerate() {
            let case = format!("d{end:?}{n}");
            bind(&w, &case, "alice").await;
            let d = [
                sale(&case, 9900),
                dispute(&case, 9900, NeedsResponse, 2),
                dispute(&case, 9900, UnderReview, 3),
                dispute(&case, 9900, end, 9),
            ];
            for &i in &order {
                deliver(&w, &d[i]).await;
            }
            assert_net(&w, "alice", &case, 1, net, &format!("{end:?} {order:?}")).await;
        }
    }
    assert_books_balance(&w, "alice", Currency::USD).await;
}

/// A refund and a dispute on one charge together never take back more than 100 %.
#[tokio::test]
async fn a_refund_and_a_dispute_on_one_charge_take_back_at_most_everything() {
    let w = seeded().await;
    bind(&w, "rd", "alice").await;
    for d in [
        sale("rd", 9900),
        refund("rd", "re_1", 5000, RefundStatus::Succeeded, 2),
        dispute("rd", 9900, DisputeStatus::Lost, 3),
    ] {
        deliver(&w, &d).await;
    }
    assert_net(&w, "alice", "rd", 1, 0, "refund + lost dispute").await;
    let c = commission(&w, "alice", "rd", 1).await;
    assert_eq!(c.reversed_pending, 2475, "never more than the commission");
    assert_books_balance(&w, "alice", Currency::USD).await;
}

/// A refund before its sale is parked on the charge (listed as parked) and applied when the
/// sale is booked: the ledger ends as in order.
#[tokio::test]
async fn a_refund_before_its_sale_is_parked_then_applied_at_booking() {
    let w = seeded().await;
    bind(&w, "early", "alice").await;
    let Delivery::MoneyBack(m) = refund("early", "re_1", 4950, RefundStatus::Succeeded, 2) else {
        unreachable!()
    };
    let outcome = money_back(&w.engine, m.clone()).await.expect("refund");
    assert_eq!(outcome, MoneyBackOutcome::Parked);
    let parked = charges::parked_in_month(w.t(), "2026-01")
        .await
        .expect("parked");
    assert_eq!(
        parked
            .iter()
            .map(|c| c.charge_key.as_str())
            .collect::<Vec<_>>(),
        vec!["ch_early"]
    );
    assert_eq!(
        money_back(&w.engine, m).await.expect("again"),
        MoneyBackOutcome::AlreadyApplied
    );
    deliver(&w, &sale("early", 9900)).await;
    assert_net(&w, "alice", "early", 1, 2475 - 1238, "applied at booking").await;
    assert!(
        charges::parked_in_month(w.t(), "2026-01")
            .await
            .expect("parked")
            .is_empty(),
        "booked: no longer parked"
    );
    let charge = charges::get(w.t(), "ch_early")
        .await
        .expect("read")
        .expect("charge");
    assert_eq!(charge.customer_key.as_deref(), Some("cus_early"));
    assert_eq!(charge.invoice_id.as_deref(), Some("in_early"));
}

/// Tier 2 follows its tier-1 sale: bob's customer refunds half; bob's 24.75 and alice's
/// (his recruiter's) 4.95 are each taken back pro rata (12.38 and 2.48).
#[tokio::test]
async fn tier_2_follows_the_sale() {
    let w = seeded().await;
    bind(&w, "t2", "bob").await;
    deliver(&w, &sale("t2", 9900)).await;
    deliver(&w, &refund("t2", "re_1", 4950, RefundStatus::Succeeded, 2)).await;
    assert_net(&w, "bob", "t2", 1, 2475 - 1238, "tier 1").await;
    assert_net(&w, "alice", "t2", 2, 495 - 248, "tier 2").await;
    assert_books_balance(&w, "alice", Currency::USD).await;
    assert_books_balance(&w, "bob", Currency::USD).await;
}

/// After the hold a refund claws back from `available`; after a payout the balance goes
/// negative, is never payable, and the next released commission nets it.
#[tokio::test]
async fn a_refund_after_the_release_claws_back_and_the_next_commission_nets_it() {
    let w = seeded().await;
    bind(&w, "cb", "alice").await;
    deliver(&w, &sale("cb", 9900)).await;
    release_due(&w.engine, AFTER_HOLD, "schedule:release")
        .await
        .expect("release");
    assert_eq!(w.balance("alice", "demo").await, (0, 2475, 0));
    // Paid out, as the payout run posts it: reserved in an item, then confirmed by the rail.
    let mut tx = storage::Tx::new();
    let reserved = LedgerEntry::new(
        "payout_reserved:test",
        "alice",
        "demo",
        Currency::USD,
        EntryKind::PayoutReserved,
        2475,
        None,
        AFTER_HOLD,
        "payout",
        "schedule:payout",
    )
    .expect("entry");
    ledger::post(&mut tx, &reserved).expect("post");
    tx.commit(w.t()).await.expect("reserved");
    let mut tx = storage::Tx::new();
    let paid = LedgerEntry::new(
        "paid:test",
        "alice",
        "demo",
        Currency::USD,
        EntryKind::Paid,
        2475,
        None,
        AFTER_HOLD + 1,
        "payout",
        "schedule:payout",
    )
    .expect("entry");
    ledger::post(&mut tx, &paid).expect("post");
    tx.commit(w.t()).await.expect("paid");
    // A full refund a month later.
    let full = refund("cb", "re_1", 9900, RefundStatus::Succeeded, 130);
    deliver(&w, &full).await;
    deliver(&w, &full).await;
    let c = commission(&w, "alice", "cb", 1).await;
    assert_eq!((c.reversed_pending, c.reversed_available), (0, 2475));
    assert_eq!(w.balance("alice", "demo").await, (0, -2475, 2475));
    let b = ledger::balance(w.t(), "alice", "demo", Currency::USD)
        .await
        .expect("balance");
    assert_eq!(b.payable(0), None, "a negative balance is never paid");
    let kinds: Vec<String> = w
        .entries("alice", "demo")
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        kinds,
        vec![
            "earned",
            "released",
            "payout_reserved",
            "paid",
            "clawed_back"
        ]
    );
    // The next sale (198.00 → 49.50) is released and nets the clawback.
    bind(&w, "cb2", "alice").await;
    deliver(&w, &sale("cb2", 19800)).await;
    release_due(&w.engine, AFTER_HOLD, "schedule:release2")
        .await
        .expect("release");
    let b = ledger::balance(w.t(), "alice", "demo", Currency::USD)
        .await
        .expect("balance");
    assert_eq!((b.pending, b.available, b.paid), (0, 4950 - 2475, 2475));
    assert_eq!(b.payable(0), Some(2475));
    assert_books_balance(&w, "alice", Currency::USD).await;
}

/// A refund racing the hold release, with every offset of one against the other: the
/// commission ends released once, with exactly its net available and nothing pending.
#[tokio::test]
async fn a_refund_racing_the_release_strands_nothing() {
    let w = seeded().await;
    for offset in -6i32..=10 {
        let case = format!("race{}", offset + 6);
        bind(&w, &case, "alice").await;
        deliver(&w, &sale(&case, 9900)).await;
        let Delivery::MoneyBack(m) = refund(&case, "re_1", 3300, RefundStatus::Succeeded, 2) else {
            unreachable!()
        };
        let e1 = w.engine.clone();
        let e2 = w.engine.clone();
        let t = w.t().clone();
        let lag = move |n: u32, t: storage::Table| async move {
            for _ in 0..n {
                let _ = customers::sales_state(&t, "demo", "cus_lag").await;
            }
        };
        let refund_task = tokio::spawn({
            let t = t.clone();
            async move {
                lag(offset.max(0).unsigned_abs(), t).await;
                money_back(&e1, m).await.map(|_| ())
            }
        });
        let release_task = tokio::spawn(async move {
            lag(offset.min(0).unsigned_abs(), t).await;
            release_due(&e2, AFTER_HOLD, "schedule:race")
                .await
                .map(|_| ())
        });
        refund_task.await.expect("task").expect("refund");
        release_task.await.expect("task").expect("release");
        release_due(&w.engine, AFTER_HOLD, "schedule:after")
            .await
            .expect("release");
        let c = commission(&w, "alice", &case, 1).await;
        assert_eq!(c.state, CommissionState::Available, "offset {offset}");
        assert_net(
            &w,
            "alice",
            &case,
            1,
            2475 - 825,
            &format!("offset {offset}"),
        )
        .await;
    }
    let b = w.balance("alice", "demo").await;
    assert_eq!(b, (0, 17 * (2475 - 825), 0));
    assert_books_balance(&w, "alice", Currency::USD).await;
}

/// The sale and its refund events delivered at the same moment, several times each.
#[tokio::test]
async fn concurrent_deliveries_converge() {
    let w = seeded().await;
    for round in 0..3 {
        let case = format!("conc{round}");
        bind(&w, &case, "alice").await;
        let deliveries = [
            sale(&case, 9900),
            refund(&case, "re_1", 3300, RefundStatus::Succeeded, 2),
            refund(&case, "re_2", 1650, RefundStatus::Succeeded, 3),
            dispute(&case, 4950, DisputeStatus::NeedsResponse, 4),
        ];
        let mut tasks = vec![];
        for d in deliveries.iter().chain(deliveries.iter()) {
            let w2 = World {
                engine: w.engine.clone(),
            };
            let d = d.clone();
            tasks.push(tokio::spawn(async move { deliver(&w2, &d).await }));
        }
        for t in tasks {
            t.await.expect("task");
        }
        assert_net(&w, "alice", &case, 1, 0, &format!("round {round}")).await;
    }
    assert_books_balance(&w, "alice", Currency::USD).await;
}

/// Currencies without cents and with three decimals round once, half away from zero.
#[tokio::test]
async fn jpy_and_kwd_round_once() {
    let w = seeded().await;
    // (case, currency, charge, refunded, commission, net)
    let cases = [
        // ¥12,000 at 25 % = ¥3,000; ¥1,000 refunded → ¥250 back.
        ("jpy", Currency::JPY, 12_000, 1_000, 3_000, 2_750),
        // 12.345 KWD at 25 % = 3.08625 → 3.086; 5.000 refunded → 1.24992… → 1.250 back.
        ("kwd", Currency::KWD, 12_345, 5_000, 3_086, 1_836),
    ];
    for (case, currency, charge, refunded, earned, net) in cases {
        bind(&w, case, "alice").await;
        deliver(
            &w,
            &Delivery::Sale(sale_paid(case, currency, charge, charge)),
        )
        .await;
        let Delivery::MoneyBack(mut m) = refund(case, "re_1", refunded, RefundStatus::Succeeded, 2)
        else {
            unreachable!()
        };
        m.currency = Some(currency);
        money_back(&w.engine, m).await.expect("refund");
        let c = commission(&w, "alice", case, 1).await;
        assert_eq!(c.amount, earned, "{case}: earned");
        assert_net(&w, "alice", case, 1, net, case).await;
        assert_books_balance(&w, "alice", currency).await;
    }
}

/// An invoice of 99.00 paid 49.50 from the customer's credit balance earns on the 49.50
/// received (12.38); a refund of 20.00 of the 49.50 charge takes back round(1238 × 2000 ÷
/// 4950) = 5.00.
#[tokio::test]
async fn an_invoice_paid_partly_from_credit_earns_on_the_money_received() {
    let w = seeded().await;
    bind(&w, "credit", "alice").await;
    deliver(
        &w,
        &Delivery::Sale(sale_paid("credit", Currency::USD, 9900, 4950)),
    )
    .await;
    assert_eq!(commission(&w, "alice", "credit", 1).await.amount, 1238);
    deliver(
        &w,
        &refund("credit", "re_1", 2000, RefundStatus::Succeeded, 2),
    )
    .await;
    assert_net(&w, "alice", "credit", 1, 1238 - 500, "credit").await;
}

/// Hybrid plan: a renewal booked first as the first sale (250.00 flat), half refunded (125.00
/// back), then re-priced to 5 % (25.00) when the first invoice arrives: the reversal follows
/// the amount (12.50 back in all), in the same transaction as the re-pricing.
#[tokio::test]
async fn a_re_pricing_moves_the_reversal_with_the_amount() {
    let w = World::new().await;
    let hybrid = Reward::Hybrid {
        first_sale_flat: usd(25_000),
        rate: "0.05".parse().expect("rate"),
    };
    w.seed(
        &program("demo", hybrid, Duration::Lifetime, None),
        &["prod_demo"],
    )
    .await;
    bind(&w, "rp", "alice").await;
    let mut renewal = sale_paid("rp", Currency::USD, 50_000, 50_000);
    renewal.facts.paid_at = chrono::DateTime::from_timestamp_millis(T0 + 31 * DAY).expect("t");
    invoice_paid(&w.engine, renewal).await.expect("renewal");
    deliver(
        &w,
        &refund("rp", "re_1", 25_000, RefundStatus::Succeeded, 32),
    )
    .await;
    assert_net(&w, "alice", "rp", 1, 12_500, "before the re-pricing").await;
    let mut first = invoice(
        "evt_first_rp",
        "in_first_rp",
        "cus_rp",
        T0 + DAY,
        vec![line("prod_demo", 300_000)],
    );
    first.facts.payment = None;
    invoice_paid(&w.engine, first).await.expect("first invoice");
    let c = commission(&w, "alice", "rp", 1).await;
    assert_eq!((c.amount, c.reversed_pending), (2_500, 1_250));
    assert_net(&w, "alice", "rp", 1, 1_250, "after the re-pricing").await;
    assert_books_balance(&w, "alice", Currency::USD).await;
}
