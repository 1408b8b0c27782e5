//! Program edits take effect from their business time, against moto: raising the rate, removing
//! a product or a late-arriving old invoice never books `adjusted` entries on what was earned;
//! each invoice is priced with the program version in force at its paid time.

use engine::attribution::BindSource;
use engine::sales::{invoice_paid, PaidInvoice, SaleOutcome};
use rules::plan::SaleLine;
use rules::program::Duration;
use rules::{Program, ProgramProduct};
use storage::customers;
use testkit::catalogue;
use testkit::engine::*;

const COURSE: &str = "prod_course";

/// Invoice `in_{n}` (event `evt_{n}`) of `customer`, paid on day `day` after T0.
async fn pay(w: &World, n: u32, customer: &str, day: i64, lines: Vec<SaleLine>) -> SaleOutcome {
    let inv: PaidInvoice = invoice(
        &format!("evt_{n}"),
        &format!("in_{n}"),
        customer,
        T0 + day * DAY,
        lines,
    );
    invoice_paid(&w.engine, inv).await.unwrap()
}

async fn bind(w: &World, customer: &str, at: i64) {
    w.bind(customer, None, BindSource::Code("alice".into()), at)
        .await;
}

fn products(p: &Program, ids: &[&str]) -> Vec<ProgramProduct> {
    ids.iter()
        .map(|id| ProgramProduct::new(&p.id, *id))
        .collect()
}

async fn commission(w: &World, invoice: &str) -> (i64, i64) {
    let c = customers::get_commission(w.t(), "alice", &format!("demo:{invoice}:t1"))
        .await
        .unwrap()
        .unwrap();
    (c.amount, c.base)
}

/// Every ledger entry of alice is an `earned` one: their amounts, in business-time order.
async fn only_earned(w: &World) -> Vec<i64> {
    let entries = w.entries("alice", "demo").await;
    assert!(
        entries.iter().all(|(kind, _)| kind == "earned"),
        "{entries:?}"
    );
    entries.into_iter().map(|(_, a)| a).collect()
}

/// 25 % → 30 % on day 10: the $24.75 of day 1 stays, the day-31 renewal earns $29.70.
#[tokio::test]
async fn raising_the_rate_prices_the_renewal_and_leaves_earlier_commissions() {
    let w = World::new().await;
    let p = program("demo", pct("0.25"), Duration::Lifetime, None);
    w.seed(&p, &["prod_demo"]).await;
    bind(&w, "cus_1", T0).await;
    pay(&w, 1, "cus_1", 1, vec![line("prod_demo", 9900)]).await;
    assert_eq!(commission(&w, "in_1").await, (2475, 9900));

    let mut raised = p.clone();
    raised.plan.reward = pct("0.30");
    let written =
        catalogue::edit_program(w.t(), &raised, &products(&p, &["prod_demo"]), T0 + 10 * DAY).await;
    assert_eq!(
        written, 2,
        "the stored program as the first version, then the edit"
    );

    let out = pay(&w, 2, "cus_1", 31, vec![line("prod_demo", 9900)]).await;
    assert!(matches!(out, SaleOutcome::Booked { .. }), "{out:?}");
    assert_eq!(commission(&w, "in_1").await, (2475, 9900));
    assert_eq!(commission(&w, "in_2").await, (2970, 9900));
    assert_eq!(only_earned(&w).await, vec![2475, 2970]);
    assert_eq!(w.balance("alice", "demo").await, (5445, 0, 0));
}

/// The course leaves the program on day 10: the day-1 $74.75 on subscription + course does not
/// move, the renewal earns on the subscription only, a course-only invoice paid after the
/// removal is on no program, and a late course invoice paid before it still earns.
#[tokio::test]
async fn removing_a_product_moves_nothing_already_earned() {
    let w = World::new().await;
    let p = program("demo", pct("0.25"), Duration::Lifetime, None);
    w.seed(&p, &["prod_demo", COURSE]).await;
    bind(&w, "cus_1", T0).await;
    let both = || vec![line("prod_demo", 9900), line(COURSE, 20000)];
    pay(&w, 1, "cus_1", 1, both()).await;
    assert_eq!(commission(&w, "in_1").await, (7475, 29900));

    catalogue::edit_program(w.t(), &p, &products(&p, &["prod_demo"]), T0 + 10 * DAY).await;

    pay(&w, 2, "cus_1", 31, both()).await;
    assert_eq!(commission(&w, "in_1").await, (7475, 29900));
    assert_eq!(commission(&w, "in_2").await, (2475, 9900));

    // Paid after the removal, the course alone earns nowhere.
    bind(&w, "cus_2", T0).await;
    let out = pay(&w, 3, "cus_2", 20, vec![line(COURSE, 20000)]).await;
    assert_eq!(out, SaleOutcome::NotOnAnyProgram);

    // Paid before the removal and delivered late, it finds the program and earns 25 %.
    bind(&w, "cus_3", T0).await;
    let out = pay(&w, 4, "cus_3", 5, vec![line(COURSE, 20000)]).await;
    assert!(matches!(out, SaleOutcome::Booked { .. }), "{out:?}");
    assert_eq!(commission(&w, "in_4").await, (5000, 20000));

    // In business-time order: days 1, 5, 31.
    assert_eq!(only_earned(&w).await, vec![7475, 5000, 2475]);
}

/// Day 20's sale is booked at the new 30 %; day 5's invoice arrives afterwards and is priced
/// with the 25 % of its own time. It becomes the first sale; day 20 keeps its 30 %.
#[tokio::test]
async fn a_late_old_invoice_is_priced_with_its_own_version() {
    let w = World::new().await;
    let p = program("demo", pct("0.25"), Duration::Lifetime, None);
    w.seed(&p, &["prod_demo"]).await;
    let mut raised = p.clone();
    raised.plan.reward = pct("0.30");
    catalogue::edit_program(w.t(), &raised, &products(&p, &["prod_demo"]), T0 + 10 * DAY).await;
    bind(&w, "cus_1", T0).await;

    pay(&w, 2, "cus_1", 20, vec![line("prod_demo", 9900)]).await;
    assert_eq!(commission(&w, "in_2").await, (2970, 9900));

    pay(&w, 1, "cus_1", 5, vec![line("prod_demo", 9900)]).await;
    assert_eq!(commission(&w, "in_1").await, (2475, 9900));
    assert_eq!(commission(&w, "in_2").await, (2970, 9900));
    assert_eq!(only_earned(&w).await, vec![2475, 2970]);

    let rows = customers::customer_invoices(w.t(), "demo", "cus_1")
        .await
        .unwrap();
    let first: Vec<(&str, bool)> = rows
        .iter()
        .map(|r| (r.facts.invoice_id.as_str(), r.booked.is_first_sale))
        .collect();
    assert!(
        first.contains(&("in_1", true)) && first.contains(&("in_2", false)),
        "{first:?}"
    );
}
