//! Races, retries and arrival orders between bindings and sales, against moto: whatever the
//! order or the interleaving, every sale is booked once, for the partner the program's model
//! names, and nothing is left waiting.

use engine::attribution::{BindOutcome, BindSource};
use engine::sales::{invoice_paid, sweep_waiting_sales, PaidInvoice, SaleOutcome};
use rules::attribution::{AttributionMethod, BindingCause};
use rules::program::Duration;
use rules::{AttributionModel, PartnerStatus, Program};
use storage::customers::{self, BindingHistoryRow, BindingRow};
use storage::Tx;
use testkit::catalogue;
use testkit::engine::*;

const HOUR: i64 = 3_600_000;

fn demo(model: AttributionModel) -> Program {
    let mut p = program("demo", pct("0.25"), Duration::Lifetime, None);
    p.attribution = model;
    p
}

async fn world(model: AttributionModel) -> World {
    let w = World::new().await;
    w.seed(&demo(model), &["prod_demo"]).await;
    w
}

fn sale(event: &str, inv: &str, customer: &str, at_ms: i64) -> PaidInvoice {
    invoice(event, inv, customer, at_ms, vec![line("prod_demo", 9900)])
}

async fn bind_code(w: &World, customer: &str, code: &str, at: i64) -> BindOutcome {
    w.bind(customer, None, BindSource::Code(code.into()), at)
        .await
}

/// The tier-1 commission of `invoice` for each of the seeded partners: (partner, amount) for
/// those that have one with a non-zero amount.
async fn earners(w: &World, invoice: &str) -> Vec<(String, i64)> {
    let mut out = vec![];
    for p in ["alice", "bob", "carol"] {
        let cid = format!("demo:{invoice}:t1");
        if let Some(c) = customers::get_commission(w.t(), p, &cid).await.unwrap() {
            if c.amount != 0 {
                out.push((p.to_string(), c.amount));
            }
        }
    }
    out
}

async fn waiting(w: &World, customer: &str) -> usize {
    customers::unattributed_of_customer(w.t(), customer)
        .await
        .unwrap()
        .len()
}

/// Write a binding as a bind does, and nothing else: the state a bind leaves when it dies (or
/// times out) after its binding transaction and before booking the waiting sales.
async fn binding_only(w: &World, customer: &str, partner: &str, at_ms: i64) {
    let cause = BindingCause::Code {
        code: partner.into(),
    };
    let row = BindingRow {
        program_id: "demo".into(),
        customer_key: customer.into(),
        email: None,
        partner_id: partner.into(),
        cause: cause.clone(),
        cause_at_ms: at_ms,
        bound_at_ms: at_ms,
        version: 1,
        source_event: "test".into(),
        via_email_of: None,
    };
    let hist = BindingHistoryRow {
        program_id: "demo".into(),
        customer_key: customer.into(),
        action: "bound".into(),
        partner_id: partner.into(),
        previous_partner_id: None,
        cause,
        cause_at_ms: at_ms,
        at_ms,
        version: 1,
        source_event: "test".into(),
    };
    let mut tx = Tx::new();
    customers::write_binding(&mut tx, &row, &hist, 0).unwrap();
    tx.commit(w.t()).await.unwrap();
}

/// A bind by partner code, on a task of its own (to race something else).
fn spawn_bind(
    engine: engine::Engine,
    customer: String,
    code: &str,
    at_ms: i64,
) -> tokio::task::JoinHandle<Result<(), engine::EngineError>> {
    let code = code.to_string();
    tokio::spawn(async move {
        engine::attribution::bind(
            &engine,
            engine::attribution::BindRequest {
                program_id: None,
                customer_key: customer,
                email: None,
                source: BindSource::Code(code),
                at_ms,
                source_event: "test".into(),
            },
        )
        .await
        .map(|_| ())
    })
}

/// `checkout.session.completed` (or `/v1/track/lead`) and the customer's first `invoice.paid`
/// processed at the same moment, 50 times: every sale is booked exactly once, none waits.
#[tokio::test]
async fn a_sale_and_its_binding_at_the_same_moment_always_meet() {
    let w = world(AttributionModel::FirstClick).await;
    let mut tasks = vec![];
    for i in 0..50 {
        let engine = w.engine.clone();
        let customer = format!("cus_race{i}");
        let bind_engine = engine.clone();
        let bind_customer = customer.clone();
        tasks.push(spawn_bind(bind_engine, bind_customer, "alice", T0));
        tasks.push(tokio::spawn(async move {
            invoice_paid(
                &engine,
                sale(
                    &format!("evt_{i}"),
                    &format!("in_{i}"),
                    &customer,
                    T0 + 1000,
                ),
            )
            .await
            .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for i in 0..50 {
        assert_eq!(
            earners(&w, &format!("in_{i}")).await,
            vec![("alice".to_string(), 2475)],
            "sale {i}"
        );
        assert_eq!(waiting(&w, &format!("cus_race{i}")).await, 0, "sale {i}");
    }
    assert_eq!(w.balance("alice", "demo").await, (50 * 2475, 0, 0));
}

/// A bind that wrote its binding and died before booking: its retry answers `already_bound`
/// and still books the waiting sale, once.
#[tokio::test]
async fn a_retried_bind_books_what_the_first_attempt_left_waiting() {
    let w = world(AttributionModel::FirstClick).await;
    let out = invoice_paid(&w.engine, sale("evt_1", "in_1", "cus_1", T0 + HOUR))
        .await
        .unwrap();
    assert!(matches!(out, SaleOutcome::Unattributed { .. }), "{out:?}");
    binding_only(&w, "cus_1", "alice", T0).await;
    assert_eq!(earners(&w, "in_1").await, vec![]);
    let again = bind_code(&w, "cus_1", "alice", T0).await;
    assert!(
        matches!(again, BindOutcome::AlreadyBound { .. }),
        "{again:?}"
    );
    assert_eq!(earners(&w, "in_1").await, vec![("alice".into(), 2475)]);
    assert_eq!(waiting(&w, "cus_1").await, 0);
    // and once more: nothing more
    bind_code(&w, "cus_1", "alice", T0).await;
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
}

/// The same half-finished bind, never retried: the periodic sweep books the sale.
#[tokio::test]
async fn the_sweep_books_waiting_sales_of_customers_bound_since() {
    let w = world(AttributionModel::FirstClick).await;
    invoice_paid(&w.engine, sale("evt_1", "in_1", "cus_1", T0 + HOUR))
        .await
        .unwrap();
    invoice_paid(&w.engine, sale("evt_2", "in_2", "cus_2", T0 + HOUR))
        .await
        .unwrap();
    binding_only(&w, "cus_1", "alice", T0).await;
    let report = sweep_waiting_sales(&w.engine, T0 + 2 * HOUR).await.unwrap();
    assert_eq!((report.waiting, report.bound_customers), (2, 1));
    assert_eq!(report.commission_ids, vec!["demo:in_1:t1".to_string()]);
    assert_eq!(earners(&w, "in_1").await, vec![("alice".into(), 2475)]);
    // cus_2 was never bound: it keeps waiting
    assert_eq!(waiting(&w, "cus_2").await, 1);
    // a second sweep books nothing
    let again = sweep_waiting_sales(&w.engine, T0 + 3 * HOUR).await.unwrap();
    assert_eq!((again.waiting, again.commission_ids.len()), (1, 0));
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
}

/// Last-click: a rebind racing the customer's first paid invoice. The first commission and the
/// final binding always name the same partner, and that partner is the model's choice: a
/// cause before the payment wins, one after it never moves the customer.
#[tokio::test]
async fn a_rebind_racing_the_first_invoice_names_one_partner() {
    let w = world(AttributionModel::LastClick).await;
    let mut tasks = vec![];
    for i in 0..24 {
        let customer = format!("cus_r{i}");
        bind_code(&w, &customer, "alice", T0).await;
        // even: carol's cause comes before the payment; odd: after it
        let carol_at = if i % 2 == 0 { T0 + HOUR } else { T0 + 3 * HOUR };
        let (e1, e2) = (w.engine.clone(), w.engine.clone());
        let c1 = customer.clone();
        tasks.push(spawn_bind(e1, c1, "carol", carol_at));
        tasks.push(tokio::spawn(async move {
            invoice_paid(
                &e2,
                sale(
                    &format!("evt_{i}"),
                    &format!("in_{i}"),
                    &customer,
                    T0 + 2 * HOUR,
                ),
            )
            .await
            .map(|_| ())
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    for i in 0..24 {
        let want = if i % 2 == 0 { "carol" } else { "alice" };
        let b = customers::get_binding(w.t(), "demo", &format!("cus_r{i}"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(b.partner_id, want, "binding {i}");
        assert_eq!(
            earners(&w, &format!("in_{i}")).await,
            vec![(want.to_string(), 2475)],
            "commission {i}"
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// The customer's own click binding (alice's link, clicked at T0).
    Click,
    /// The customer's first invoice, paid a day later.
    Invoice,
}

/// Sale-time fallbacks (carol's promotion code on the invoice; bob's binding of the same e-mail
/// under another customer key, recorded before the payment) and the customer's click binding,
/// delivered in either order, give the same partner and the same ledger under each model.
#[tokio::test]
async fn arrival_order_does_not_choose_the_partner() {
    // (model, promotion code on the invoice, e-mail binding of bob, partner the model names)
    let cases = [
        (AttributionModel::FirstClick, true, true, "alice"),
        (AttributionModel::FirstClick, true, false, "alice"),
        (AttributionModel::FirstClick, false, true, "alice"),
        // last-click: the latest cause at or before the payment; the code on the invoice is at
        // the payment itself
        (AttributionModel::LastClick, true, true, "carol"),
        (AttributionModel::LastClick, true, false, "carol"),
        (AttributionModel::LastClick, false, true, "bob"),
        (AttributionModel::LastClick, false, false, "alice"),
    ];
    for (model, promo, by_email, want) in cases {
        for order in [[Step::Click, Step::Invoice], [Step::Invoice, Step::Click]] {
            let w = world(model).await;
            let click = w.click("alice", "v1", T0).await;
            if by_email {
                // another customer key of the same person, referred by bob two hours later
                let out = w
                    .bind(
                        "cus_other",
                        Some("cus_1@customers.test"),
                        BindSource::Code("bob".into()),
                        T0 + 2 * HOUR,
                    )
                    .await;
                assert!(matches!(out, BindOutcome::Bound { .. }), "{out:?}");
            }
            let mut inv = sale("evt_1", "in_1", "cus_1", T0 + 24 * HOUR);
            if promo {
                inv.promotion_codes = vec!["promo_demo".into()];
            }
            for step in order {
                match step {
                    Step::Click => {
                        w.bind(
                            "cus_1",
                            Some("cus_1@customers.test"),
                            BindSource::ClickId(click.clone()),
                            T0 + 24 * HOUR + 5_000,
                        )
                        .await;
                    }
                    Step::Invoice => {
                        invoice_paid(&w.engine, inv.clone()).await.unwrap();
                    }
                }
            }
            let case = format!("{model:?} promo={promo} email={by_email} {order:?}");
            assert_eq!(
                earners(&w, "in_1").await,
                vec![(want.to_string(), 2475)],
                "{case}"
            );
            let b = customers::get_binding(w.t(), "demo", "cus_1")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(b.partner_id, want, "{case}");
            for p in ["alice", "bob", "carol"] {
                let (pending, _, _) = w.balance(p, "demo").await;
                assert_eq!(pending, if p == want { 2475 } else { 0 }, "{case}: {p}");
            }
        }
    }
}

/// A re-attributed commission tells the new partner, and the previous partner's ledger shows
/// the reversal.
#[tokio::test]
async fn a_late_click_that_counts_moves_the_booked_sale_with_a_reversal() {
    let w = world(AttributionModel::FirstClick).await;
    let click = w.click("alice", "v1", T0).await;
    let mut inv = sale("evt_1", "in_1", "cus_1", T0 + 24 * HOUR);
    inv.promotion_codes = vec!["promo_demo".into()];
    invoice_paid(&w.engine, inv).await.unwrap();
    assert_eq!(earners(&w, "in_1").await, vec![("carol".into(), 2475)]);
    let out = w
        .bind(
            "cus_1",
            None,
            BindSource::ClickId(click),
            T0 + 24 * HOUR + 5_000,
        )
        .await;
    assert!(matches!(out, BindOutcome::Bound { .. }), "{out:?}");
    assert_eq!(
        w.entries("carol", "demo").await,
        vec![("earned".into(), 2475), ("adjusted".into(), -2475)]
    );
    assert_eq!(
        w.entries("alice", "demo").await,
        vec![("earned".into(), 2475)]
    );
    let c = customers::get_commission(w.t(), "alice", "demo:in_1:t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.attributed_by, Some(AttributionMethod::Click));
    // a renewal goes to alice; replaying the bind changes nothing
    invoice_paid(
        &w.engine,
        sale("evt_2", "in_2", "cus_1", T0 + 31 * 24 * HOUR),
    )
    .await
    .unwrap();
    assert_eq!(earners(&w, "in_2").await, vec![("alice".into(), 2475)]);
    assert_eq!(w.balance("alice", "demo").await, (4950, 0, 0));
    assert_eq!(w.balance("carol", "demo").await, (0, 0, 0));
}

/// A binding found by e-mail applies only to invoices paid after that lead was recorded, and
/// the commission says it was attributed by e-mail.
#[tokio::test]
async fn an_email_binding_claims_only_invoices_paid_after_the_lead() {
    let w = world(AttributionModel::FirstClick).await;
    // paid before anyone referred the customer
    invoice_paid(&w.engine, sale("evt_1", "in_1", "cus_1", T0))
        .await
        .unwrap();
    // bob's lead of the same person under another customer key
    w.bind(
        "cus_other",
        Some("cus_1@customers.test"),
        BindSource::Code("bob".into()),
        T0 + HOUR,
    )
    .await;
    assert_eq!(earners(&w, "in_1").await, vec![], "paid before the lead");
    assert_eq!(waiting(&w, "cus_1").await, 1);
    // paid after it
    let out = invoice_paid(&w.engine, sale("evt_2", "in_2", "cus_1", T0 + 2 * HOUR))
        .await
        .unwrap();
    assert!(matches!(out, SaleOutcome::Booked { .. }), "{out:?}");
    assert_eq!(earners(&w, "in_2").await, vec![("bob".into(), 2475)]);
    let c = customers::get_commission(w.t(), "bob", "demo:in_2:t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.attributed_by, Some(AttributionMethod::Email));
    let b = customers::get_binding(w.t(), "demo", "cus_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.via_email_of.as_deref(), Some("cus_other"));
}

/// Stripe stamps a payment in whole seconds: a lead recorded 400 ms into the payment's second
/// covers it.
#[tokio::test]
async fn a_lead_in_the_payments_own_second_covers_it() {
    let w = world(AttributionModel::FirstClick).await;
    bind_code(&w, "cus_1", "alice", T0 + 400).await;
    let out = invoice_paid(&w.engine, sale("evt_1", "in_1", "cus_1", T0))
        .await
        .unwrap();
    assert!(matches!(out, SaleOutcome::Booked { .. }), "{out:?}");
    assert_eq!(earners(&w, "in_1").await, vec![("alice".into(), 2475)]);
}

/// A banned partner's new sales earn nothing: they wait, unattributed, for an operator.
#[tokio::test]
async fn a_banned_partners_new_sales_wait_for_an_operator() {
    let w = world(AttributionModel::FirstClick).await;
    bind_code(&w, "cus_1", "alice", T0).await;
    invoice_paid(&w.engine, sale("evt_1", "in_1", "cus_1", T0 + HOUR))
        .await
        .unwrap();
    let mut alice = catalogue::partner("alice");
    alice.status = PartnerStatus::Banned;
    w.t()
        .put(storage::partners::partner_item(&alice).unwrap())
        .await
        .unwrap();
    let out = invoice_paid(
        &w.engine,
        sale("evt_2", "in_2", "cus_1", T0 + 31 * 24 * HOUR),
    )
    .await
    .unwrap();
    assert!(matches!(out, SaleOutcome::Unattributed { .. }), "{out:?}");
    assert_eq!(earners(&w, "in_2").await, vec![]);
    assert_eq!(waiting(&w, "cus_1").await, 1);
    // what was earned before the ban stays
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
    // an operator reassigns the customer: the waiting sale goes to carol
    let out = engine::attribution::bind(
        &w.engine,
        engine::attribution::BindRequest {
            program_id: Some("demo".into()),
            customer_key: "cus_1".into(),
            email: None,
            source: BindSource::Manual {
                partner_id: "carol".into(),
                reason: "alice banned".into(),
                operator: "ops".into(),
            },
            at_ms: T0 + 32 * 24 * HOUR,
            source_event: "operator:test".into(),
        },
    )
    .await
    .unwrap();
    assert!(matches!(out, BindOutcome::Bound { .. }), "{out:?}");
    // an operator's assignment covers the customer's waiting sales, whenever they were paid
    assert_eq!(earners(&w, "in_2").await, vec![("carol".into(), 2475)]);
    assert_eq!(waiting(&w, "cus_1").await, 0);
    let c = customers::get_commission(w.t(), "carol", "demo:in_2:t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.attributed_by, Some(AttributionMethod::Manual));
    // alice keeps what she earned before the ban
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
}
