//! Partner levels in business time, against moto: the same invoices of three customers,
//! delivered in any order (or all at once), give the same commissions, with and without the
//! rate lock; a late invoice that moves a level crossing re-prices the later sales of the
//! partner's other customers with `adjusted` entries; the promotion is told once.

use engine::attribution::BindSource;
use engine::sales::{invoice_paid, PaidInvoice};
use rules::program::Duration;
use storage::{customers, partners};
use testkit::engine::*;

/// 25 %, and 40 % from two active customers on.
fn leveled(lock_rate_at_first_sale: bool) -> rules::Program {
    let mut p = program("demo", pct("0.25"), Duration::Lifetime, None);
    p.levels = vec![rules::Level {
        name: "Partner+".into(),
        threshold: rules::LevelThreshold::ActiveCustomers { count: 2 },
        rate: "0.40".parse().expect("rate"),
    }];
    p.lock_rate_at_first_sale = lock_rate_at_first_sale;
    p
}

/// $99.00 invoices: customer 1 on days 1 and 4, customer 2 on day 2 (the crossing sale),
/// customer 3 on days 3 and 5.
fn invoices() -> Vec<PaidInvoice> {
    [
        ("in_1a", "cus_1", 1),
        ("in_2", "cus_2", 2),
        ("in_3a", "cus_3", 3),
        ("in_1b", "cus_1", 4),
        ("in_3b", "cus_3", 5),
    ]
    .into_iter()
    .map(|(id, customer, d)| {
        invoice(
            &format!("evt_{id}"),
            id,
            customer,
            T0 + d * DAY,
            vec![line("prod_demo", 9_900)],
        )
    })
    .collect()
}

const IDS: [&str; 5] = ["in_1a", "in_2", "in_3a", "in_1b", "in_3b"];

async fn world(lock: bool) -> World {
    let w = World::new().await;
    w.seed(&leveled(lock), &["prod_demo"]).await;
    for c in ["cus_1", "cus_2", "cus_3"] {
        w.bind(c, None, BindSource::Code("alice".into()), T0).await;
    }
    w
}

/// Alice's tier-1 commission per invoice, in `IDS` order.
async fn commissions(w: &World) -> Vec<i64> {
    let mut out = vec![];
    for id in IDS {
        let c = customers::get_commission(w.t(), "alice", &format!("demo:{id}:t1"))
            .await
            .expect("read commission");
        out.push(c.map_or(0, |c| c.amount));
    }
    out
}

/// Deliver the invoices in `order` (indexes into `invoices()`), one after the other or all at
/// once; return the commissions, after checking that the ledger sums to them and that no
/// re-pricing is left unfinished.
async fn deliver(lock: bool, order: &[usize], concurrent: bool) -> Vec<i64> {
    let w = world(lock).await;
    let all = invoices();
    let deliveries: Vec<PaidInvoice> = order.iter().map(|i| all[*i].clone()).collect();
    if concurrent {
        let futs = deliveries.into_iter().map(|inv| {
            let e = w.engine.clone();
            async move { invoice_paid(&e, inv).await }
        });
        for r in futures::future::join_all(futs).await {
            r.expect("invoice paid");
        }
    } else {
        for inv in deliveries {
            invoice_paid(&w.engine, inv).await.expect("invoice paid");
        }
    }
    let amounts = commissions(&w).await;
    let ledger: i64 = w.entries("alice", "demo").await.iter().map(|e| e.1).sum();
    assert_eq!(ledger, amounts.iter().sum::<i64>(), "ledger = commissions");
    assert_eq!(w.balance("alice", "demo").await, (ledger, 0, 0));
    let levels = partners::partner_levels(w.t(), "alice", "demo")
        .await
        .expect("read levels")
        .expect("levels stored");
    assert_eq!(levels.level, 1);
    assert_eq!(
        levels.level_history.changes()[0]
            .effective_after
            .timestamp_millis(),
        T0 + 2 * DAY,
        "promoted after customer 2's first sale"
    );
    assert_eq!(levels.reprice_from_ms, None, "re-pricing finished");
    // Told once, whatever the order: the promotion's message is written with the levels.
    let told = storage::outbox::unsent_of_kind(w.t(), messages::Kind::LevelPromoted)
        .await
        .expect("outbox");
    assert_eq!(told.len(), 1, "{told:?}");
    assert_eq!(told[0].message_id, "level-promoted:demo:alice:1");
    assert!(
        told[0].body.contains("\"level_name\":\"Partner+\""),
        "{}",
        told[0].body
    );
    assert!(
        told[0].body.contains("\"rate_percent\":\"40\""),
        "{}",
        told[0].body
    );
    amounts
}

const WITHOUT_LOCK: [i64; 5] = [2_475, 2_475, 3_960, 3_960, 3_960];
/// Locked at each customer's first sale: customer 1's renewal keeps 25 %.
const WITH_LOCK: [i64; 5] = [2_475, 2_475, 3_960, 2_475, 3_960];

/// Issue 9: customer 3's $99 invoice earned 24.75 instead of 39.60 when customer 2's first
/// invoice arrived after it. It is re-priced by an adjustment of +14.85.
#[tokio::test]
async fn a_late_crossing_sale_re_prices_another_customer() {
    let w = world(false).await;
    let all = invoices();
    for i in [0, 2, 1] {
        invoice_paid(&w.engine, all[i].clone()).await.expect("paid");
    }
    assert_eq!(commissions(&w).await[..3], [2_475, 2_475, 3_960]);
    let mut entries = w.entries("alice", "demo").await;
    entries.sort();
    assert_eq!(
        entries,
        vec![
            ("adjusted".into(), 1_485),
            ("earned".into(), 2_475),
            ("earned".into(), 2_475),
            ("earned".into(), 2_475)
        ]
    );
}

/// Issue 9: a renewal arriving before its customer's first invoice counted that customer twice
/// and promoted the partner a customer early: customer 2's first sale (the real crossing)
/// earned 40 % instead of 25 %.
#[tokio::test]
async fn a_renewal_before_its_first_invoice_does_not_promote_early() {
    let w = world(false).await;
    let all = invoices();
    for i in [3, 0, 1, 2] {
        invoice_paid(&w.engine, all[i].clone()).await.expect("paid");
    }
    assert_eq!(commissions(&w).await[..4], [2_475, 2_475, 3_960, 3_960]);
}

/// Delivery orders (in order, reversed, crossing sale last, renewals first, …) and all at once,
/// with and without the rate lock: the same commissions every time.
#[tokio::test]
async fn every_delivery_order_gives_the_same_commissions() {
    let orders: [[usize; 5]; 6] = [
        [0, 1, 2, 3, 4],
        [4, 3, 2, 1, 0],
        [0, 2, 3, 4, 1],
        [3, 4, 0, 2, 1],
        [2, 4, 1, 3, 0],
        [1, 3, 0, 4, 2],
    ];
    for (lock, want) in [(false, WITHOUT_LOCK), (true, WITH_LOCK)] {
        for order in &orders {
            assert_eq!(
                deliver(lock, order, false).await,
                want,
                "lock {lock}, order {order:?}"
            );
        }
        for order in [&orders[0], &orders[3]] {
            assert_eq!(
                deliver(lock, order, true).await,
                want,
                "lock {lock}, all at once"
            );
        }
    }
}

/// A crash between a booking that changed the history and the re-pricing after it leaves
/// `reprice_from_ms` stored; the partner's next booking finishes it. The stored state here is
/// that of such a crash (a crossing moved from day 3 to day 2): the levels say "promoted after
/// day 2, re-price from day 2", and customer 3's day-3 sale still has its 25 %.
#[tokio::test]
async fn an_unfinished_re_pricing_is_finished_by_the_next_booking() {
    let w = world(false).await;
    let all = invoices();
    for i in [0, 2] {
        invoice_paid(&w.engine, all[i].clone()).await.expect("paid");
    }
    assert_eq!(commissions(&w).await[..3], [2_475, 0, 2_475]);
    let crossing = chrono::DateTime::from_timestamp_millis(T0 + 2 * DAY).expect("time");
    let history = rules::LevelHistory::from_changes([rules::LevelChange {
        level: 1,
        effective_after: crossing,
    }]);
    let read = partners::partner_levels(w.t(), "alice", "demo")
        .await
        .expect("read")
        .expect("stored by the two bookings");
    // Customers 1 and 3 alone: promoted after customer 3's day-3 sale.
    assert_eq!(
        read.level_history.changes()[0]
            .effective_after
            .timestamp_millis(),
        T0 + 3 * DAY
    );
    let crashed = partners::PartnerLevels {
        level: 1,
        level_history: history,
        version: read.version + 1,
        reprice_from_ms: Some(T0 + 2 * DAY),
        ..read.clone()
    };
    let mut tx = storage::Tx::new();
    partners::put_partner_levels(&mut tx, &crashed, read.version).expect("levels");
    tx.commit(w.t()).await.expect("commit");
    // Customer 1's renewal (day 4) cannot change the levels; its booking finds the marker.
    invoice_paid(&w.engine, all[3].clone()).await.expect("paid");
    assert_eq!(commissions(&w).await[..4], [2_475, 0, 3_960, 3_960]);
    let levels = partners::partner_levels(w.t(), "alice", "demo")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(levels.reprice_from_ms, None);
}
