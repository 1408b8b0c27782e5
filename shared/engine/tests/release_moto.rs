//! Holds ending while sales are re-priced, against moto: the release moves the amount it read
//! (conditional on it), the adjustment moves the bucket of the state it read (conditional on
//! it), so no money is stranded in `pending` and none is released twice.

use std::collections::BTreeMap;

use engine::attribution::BindSource;
use engine::release::release_due;
use engine::sales::{invoice_paid, PaidInvoice};
use rules::program::{Duration, Reward};
use rules::{Currency, EntryKind};
use storage::customers::{self, CommissionState};
use storage::ledger;
use testkit::engine::*;

/// Far past every hold of the scenario (business time of the schedule's run).
const RELEASE_AT: i64 = T0 + 400 * DAY;

/// Hybrid plan: the first sale earns 250.00 flat, every later one 5 %. A renewal delivered
/// before the customer's first invoice is booked as the first sale (flat) and re-priced to
/// 5 % with an `adjusted` entry when the first invoice arrives.
fn hybrid() -> Reward {
    Reward::Hybrid {
        first_sale_flat: usd(25_000),
        rate: "0.05".parse().expect("rate"),
    }
}

/// Every commission of alice is released once, with its current amount, and the balance says
/// the same: pending 0, available = Σ amounts.
async fn assert_released_once_and_nothing_pending(w: &World, customers_n: usize, case: i32) {
    let commissions = customers::partner_commissions(w.t(), "alice", 0, RELEASE_AT)
        .await
        .expect("commissions");
    assert_eq!(
        commissions.len(),
        customers_n * 2,
        "case {case}: two commissions per customer"
    );
    let entries = ledger::entries(w.t(), "alice", "demo", Currency::USD)
        .await
        .expect("entries");
    // Per commission: (pending move, available move, released entries).
    let mut moves: BTreeMap<String, (i64, i64, usize)> = BTreeMap::new();
    for e in &entries {
        let Some(cid) = &e.commission_id else {
            continue;
        };
        let m = moves.entry(cid.clone()).or_default();
        m.0 += e.delta.pending;
        m.1 += e.delta.available;
        if e.kind == EntryKind::Released {
            m.2 += 1;
        }
    }
    let mut total = 0;
    for c in &commissions {
        assert_eq!(
            c.state,
            CommissionState::Available,
            "case {case}: {} still pending after its hold",
            c.commission_id
        );
        let (pending, available, released) =
            moves.get(&c.commission_id).copied().unwrap_or_default();
        assert_eq!(
            (pending, available, released),
            (0, c.amount, 1),
            "case {case}: {} (amount {}): pending, available moves and releases",
            c.commission_id,
            c.amount
        );
        total += c.amount;
    }
    assert_eq!(
        w.balance("alice", "demo").await,
        (0, total, 0),
        "case {case}: balance"
    );
}

/// The program, seeded.
async fn seeded() -> World {
    let w = World::new().await;
    w.seed(
        &program("demo", hybrid(), Duration::Lifetime, None),
        &["prod_demo"],
    )
    .await;
    w
}

/// Customer `cus_{i}`, bound to alice, whose renewal `in_b{i}` was booked first (250.00 flat,
/// pending); returns their first invoice `in_a{i}`, which re-prices the renewal to 5 %
/// (−225.00) and earns 250.00 itself.
async fn renewal_booked_first(w: &World, i: usize) -> PaidInvoice {
    let cus = format!("cus_{i}");
    w.bind(&cus, None, BindSource::Code("alice".into()), T0)
        .await;
    invoice_paid(
        &w.engine,
        invoice(
            &format!("evt_b{i}"),
            &format!("in_b{i}"),
            &cus,
            T0 + 31 * DAY,
            vec![line("prod_demo", 50_000)],
        ),
    )
    .await
    .expect("renewal");
    invoice(
        &format!("evt_a{i}"),
        &format!("in_a{i}"),
        &cus,
        T0 + DAY,
        vec![line("prod_demo", 300_000)],
    )
}

/// `n` requests to the table: a head start for the other side of a race (moto serves one
/// request at a time, so the two sides interleave request by request).
async fn lag(w: &World, n: u32) {
    for _ in 0..n {
        customers::sales_state(w.t(), "demo", "cus_lag")
            .await
            .expect("read");
    }
}

/// The release of the renewal's commission and the booking that re-prices it, started with
/// every offset of one against the other (in requests), so that each lands inside the other's
/// read-then-commit window somewhere in the sweep.
#[tokio::test]
async fn release_racing_an_adjustment_strands_nothing_and_releases_once() {
    for offset in -12i32..=28 {
        let w = seeded().await;
        let first_invoice = renewal_booked_first(&w, 0).await;
        let booking = {
            let w = World {
                engine: w.engine.clone(),
            };
            tokio::spawn(async move {
                lag(&w, offset.max(0).unsigned_abs()).await;
                invoice_paid(&w.engine, first_invoice).await.map(|_| ())
            })
        };
        let release = {
            let w = World {
                engine: w.engine.clone(),
            };
            tokio::spawn(async move {
                lag(&w, offset.min(0).unsigned_abs()).await;
                release_due(&w.engine, RELEASE_AT, "schedule:race")
                    .await
                    .map(|_| ())
            })
        };
        booking.await.expect("task").expect("booking");
        release.await.expect("task").expect("release");
        // The next scheduled run releases whatever was booked after the racing run read.
        release_due(&w.engine, RELEASE_AT, "schedule:after")
            .await
            .expect("release");
        assert_released_once_and_nothing_pending(&w, 1, offset).await;
        for (inv, amount) in [("in_b0", 2_500), ("in_a0", 25_000)] {
            let c = customers::get_commission(w.t(), "alice", &format!("demo:{inv}:t1"))
                .await
                .expect("read")
                .expect("commission");
            assert_eq!(c.amount, amount, "offset {offset}: {inv}");
        }
    }
}

/// Several runs of the schedule at once, while several customers' renewals are re-priced.
#[tokio::test]
async fn concurrent_releases_and_adjustments_release_each_commission_once() {
    const CUSTOMERS: usize = 8;
    let w = seeded().await;
    let mut first_invoices = vec![];
    for i in 0..CUSTOMERS {
        first_invoices.push(renewal_booked_first(&w, i).await);
    }
    let mut tasks = vec![];
    for (i, inv) in first_invoices.into_iter().enumerate() {
        let e = w.engine.clone();
        tasks.push(tokio::spawn(async move {
            invoice_paid(&e, inv).await.map(|_| ())
        }));
        if i % 2 == 0 {
            let e = w.engine.clone();
            tasks.push(tokio::spawn(async move {
                release_due(&e, RELEASE_AT, &format!("schedule:run{i}"))
                    .await
                    .map(|_| ())
            }));
        }
    }
    for t in tasks {
        t.await.expect("task").expect("booking or release");
    }
    release_due(&w.engine, RELEASE_AT, "schedule:after")
        .await
        .expect("release");
    assert_released_once_and_nothing_pending(&w, CUSTOMERS, 0).await;
}

#[tokio::test]
async fn a_release_after_an_adjustment_moves_the_adjusted_amount() {
    let w = seeded().await;
    let first_invoice = renewal_booked_first(&w, 0).await;
    invoice_paid(&w.engine, first_invoice)
        .await
        .expect("first sale");
    let released = release_due(&w.engine, RELEASE_AT, "schedule:x")
        .await
        .expect("release");
    assert_eq!(released.len(), 2);
    assert_released_once_and_nothing_pending(&w, 1, 0).await;
    assert_eq!(w.balance("alice", "demo").await, (0, 27_500, 0));
}
