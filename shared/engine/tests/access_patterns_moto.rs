//! The access patterns of docs/data-model.md not exercised elsewhere, against moto.

use engine::attribution::BindSource;
use engine::sales::invoice_paid;
use rules::program::Duration;
use rules::Currency;
use storage::table::ItemExt;
use storage::{customers, keys, ledger, partners, programs, Query, Table};
use testkit::engine::*;

#[tokio::test]
async fn listings_by_program_email_month_and_date() {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None),
        &["prod_demo"],
    )
    .await;
    w.seed(
        &program("other", pct("0.10"), Duration::Lifetime, None),
        &["prod_other"],
    )
    .await;

    // #2 all programs, #9 a program's partners
    let mut ids: Vec<String> = programs::list_programs(w.t())
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.id)
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["demo", "other"]);
    let members: Vec<String> = partners::program_members(w.t(), "demo")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.membership.partner_id)
        .collect();
    assert_eq!(members, vec!["alice", "bob", "carol"]);
    assert_eq!(
        partners::partner_memberships(w.t(), "alice")
            .await
            .unwrap()
            .len(),
        2
    );

    // #19 binding by normalised e-mail
    w.bind(
        "cus_1",
        Some("Erin@Example.com"),
        BindSource::Code("alice".into()),
        T0,
    )
    .await;
    let by_email = customers::bindings_by_email(w.t(), "demo", "erin@example.com")
        .await
        .unwrap();
    assert_eq!(by_email.len(), 1);
    assert_eq!(by_email[0].customer_key, "cus_1");

    // #23 unattributed by e-mail and by month
    let mut inv = invoice(
        "evt_u",
        "in_u",
        "cus_9",
        T0 + DAY,
        vec![line("prod_demo", 9900)],
    );
    inv.customer_email = Some("Frank@Example.com".into());
    invoice_paid(&w.engine, inv).await.unwrap();
    assert_eq!(
        customers::unattributed_of_email(w.t(), "frank@example.com")
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        customers::unattributed_in_month(w.t(), "2026-01")
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(customers::unattributed_in_month(w.t(), "2026-02")
        .await
        .unwrap()
        .is_empty());

    // a sale by e-mail: another customer key with a bound e-mail is attributed to the same partner
    let mut by_mail = invoice(
        "evt_m",
        "in_m",
        "cus_other_key",
        T0 + 2 * DAY,
        vec![line("prod_demo", 10_000)],
    );
    by_mail.customer_email = Some("erin@example.com".into());
    invoice_paid(&w.engine, by_mail).await.unwrap();
    assert_eq!(w.balance("alice", "demo").await, (2500, 0, 0));

    // #28 a partner's commissions by date, #31 a partner's balances
    invoice_paid(
        &w.engine,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + 10 * DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await
    .unwrap();
    let all = customers::partner_commissions(w.t(), "alice", 0, T0 + 365 * DAY)
        .await
        .unwrap();
    assert_eq!(
        all.iter()
            .map(|c| c.invoice_id.as_str())
            .collect::<Vec<_>>(),
        vec!["in_m", "in_1"]
    );
    let window = customers::partner_commissions(w.t(), "alice", T0 + 5 * DAY, T0 + 11 * DAY)
        .await
        .unwrap();
    assert_eq!(window.len(), 1);
    let balances = ledger::partner_balances(w.t(), "alice").await.unwrap();
    assert_eq!(balances.len(), 1);
    assert_eq!(
        (
            balances[0].program_id.as_str(),
            balances[0].currency,
            balances[0].pending
        ),
        ("demo", Currency::USD, 2500 + 2475)
    );
}

#[tokio::test]
async fn payout_run_and_its_items() {
    // #34: the payout job's items live in the run's partition (written by the payout issue's job).
    let w = World::new().await;
    let t = w.t();
    t.put(Table::key_item(&keys::payout_run("demo", "2026-04-03")).with_s("status", "sending"))
        .await
        .unwrap();
    for p in ["alice", "bob"] {
        t.put(
            Table::key_item(&keys::payout_item("demo", "2026-04-03", p, Currency::USD))
                .with_n("amount", 12_000),
        )
        .await
        .unwrap();
    }
    let run = t
        .get(&keys::payout_run("demo", "2026-04-03"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.s("status"), Some("sending"));
    let items = t
        .query(
            Query::table(keys::payout_run_pk("demo", "2026-04-03"))
                .begins_with(keys::PAYOUT_ITEM_PREFIX),
        )
        .await
        .unwrap();
    assert_eq!(items.len(), 2);
}
