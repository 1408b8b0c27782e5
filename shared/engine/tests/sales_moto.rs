//! Sales to commissions against moto, in worked cents; duplicates, shuffles and concurrency.

use engine::attribution::BindSource;
use engine::sales::{invoice_paid, PaidInvoice, PaymentFailed, SaleOutcome, SubscriptionEnded};
use rules::plan::SaleLine;
use rules::program::{Duration, Reward};
use storage::customers;
use testkit::engine::*;

async fn world(p: rules::Program) -> World {
    let w = World::new().await;
    w.seed(&p, &["prod_demo"]).await;
    w
}

async fn bind_code(w: &World, customer: &str, code: &str, at: i64) {
    w.bind(customer, None, BindSource::Code(code.into()), at)
        .await;
}

async fn pay(w: &World, inv: PaidInvoice) -> SaleOutcome {
    invoice_paid(&w.engine, inv).await.unwrap()
}

/// Ontraport: 25% of a $99 subscription; the overage and the SMS credits earn nothing.
#[tokio::test]
async fn quarter_of_a_subscription_not_of_overages_or_credits() {
    let w = world(program("demo", pct("0.25"), Duration::Lifetime, None)).await;
    bind_code(&w, "cus_1", "alice", T0).await;
    let lines = vec![
        line("prod_demo", 9900),
        SaleLine {
            product_id: Some("prod_demo".into()),
            amount: rules::Money::new(1500, rules::Currency::USD),
            metered: true,
            excluded_by_metadata: false,
        },
        SaleLine {
            product_id: Some("prod_demo".into()),
            amount: rules::Money::new(2000, rules::Currency::USD),
            metered: false,
            excluded_by_metadata: true,
        },
    ];
    let out = pay(&w, invoice("evt_1", "in_1", "cus_1", T0 + DAY, lines)).await;
    assert!(matches!(out, SaleOutcome::Booked { .. }), "{out:?}");
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
    let c = customers::get_commission(w.t(), "alice", "demo:in_1:t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c.amount, c.base), (2475, 9900));
    assert_eq!(
        c.available_at_ms,
        T0 + DAY + 90 * DAY,
        "90-day hold from business time"
    );
    // and every month after
    pay(
        &w,
        invoice(
            "evt_2",
            "in_2",
            "cus_1",
            T0 + 31 * DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    assert_eq!(w.balance("alice", "demo").await, (4950, 0, 0));
}

#[tokio::test]
async fn two_tier_split_on_the_same_base() {
    let w = world(program(
        "demo",
        pct("0.25"),
        Duration::Lifetime,
        Some(pct("0.05")),
    ))
    .await;
    bind_code(&w, "cus_1", "bob", T0).await; // bob was recruited by alice
    pay(
        &w,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    assert_eq!(w.balance("bob", "demo").await, (2475, 0, 0));
    assert_eq!(w.balance("alice", "demo").await, (495, 0, 0));
    // alice's own customer: no recruiter above alice, no tier 2
    bind_code(&w, "cus_2", "alice", T0).await;
    pay(
        &w,
        invoice(
            "evt_2",
            "in_2",
            "cus_2",
            T0 + DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    assert_eq!(w.balance("alice", "demo").await, (495 + 2475, 0, 0));
}

#[tokio::test]
async fn hybrid_first_sale_flat_then_percentage() {
    let hybrid = Reward::Hybrid {
        first_sale_flat: usd(25_000),
        rate: "0.05".parse().unwrap(),
    };
    let w = world(program("demo", hybrid, Duration::Lifetime, None)).await;
    bind_code(&w, "cus_1", "alice", T0).await;
    pay(
        &w,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + DAY,
            vec![line("prod_demo", 300_000)],
        ),
    )
    .await;
    pay(
        &w,
        invoice(
            "evt_2",
            "in_2",
            "cus_1",
            T0 + 31 * DAY,
            vec![line("prod_demo", 50_000)],
        ),
    )
    .await;
    assert_eq!(
        w.entries("alice", "demo").await,
        vec![("earned".into(), 25_000), ("earned".into(), 2_500)]
    );
}

#[tokio::test]
async fn cps_pays_once_and_a_trial_counts_when_it_rebills() {
    let cps = Reward::Flat {
        amounts: usd(2_000),
    };
    let w = world(program("demo", cps, Duration::FirstSaleOnly, None)).await;
    bind_code(&w, "cus_1", "alice", T0).await;
    pay(
        &w,
        invoice(
            "evt_0",
            "in_0",
            "cus_1",
            T0 + DAY,
            vec![line("prod_demo", 0)],
        ),
    )
    .await; // $0 trial
    assert_eq!(w.balance("alice", "demo").await, (0, 0, 0));
    pay(
        &w,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + 31 * DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    pay(
        &w,
        invoice(
            "evt_2",
            "in_2",
            "cus_1",
            T0 + 61 * DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    assert_eq!(
        w.entries("alice", "demo").await,
        vec![("earned".into(), 2_000)]
    );
    let c = customers::get_commission(w.t(), "alice", "demo:in_1:t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        c.earned_at_ms,
        T0 + 31 * DAY,
        "the rebill is the first sale"
    );
}

#[tokio::test]
async fn payment_failed_then_paid_earns_once() {
    let w = world(program("demo", pct("0.25"), Duration::Lifetime, None)).await;
    bind_code(&w, "cus_1", "alice", T0).await;
    for _delivery in 0..2 {
        engine::sales::invoice_payment_failed(
            &w.engine,
            PaymentFailed {
                event_id: "evt_f".into(),
                invoice_id: "in_1".into(),
                customer_key: "cus_1".into(),
                at_ms: T0 + DAY,
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(w.balance("alice", "demo").await, (0, 0, 0));
    pay(
        &w,
        invoice(
            "evt_p",
            "in_1",
            "cus_1",
            T0 + 3 * DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    pay(
        &w,
        invoice(
            "evt_p",
            "in_1",
            "cus_1",
            T0 + 3 * DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    // the same invoice in another event (Stripe sends invoice.paid and a retry as new events)
    pay(
        &w,
        invoice(
            "evt_p2",
            "in_1",
            "cus_1",
            T0 + 3 * DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
}

#[tokio::test]
async fn a_product_not_on_the_program_earns_nothing() {
    let w = world(program("demo", pct("0.25"), Duration::Lifetime, None)).await;
    bind_code(&w, "cus_1", "alice", T0).await;
    let out = pay(
        &w,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + DAY,
            vec![line("prod_other", 9900)],
        ),
    )
    .await;
    assert_eq!(out, SaleOutcome::NotOnAnyProgram);
    assert_eq!(w.balance("alice", "demo").await, (0, 0, 0));
}

#[tokio::test]
async fn a_twelve_month_cap() {
    let w = world(program(
        "demo",
        pct("0.25"),
        Duration::Months { months: 12 },
        None,
    ))
    .await;
    bind_code(&w, "cus_1", "alice", T0).await;
    // 13 monthly invoices on the 5th of each month, 12:00 UTC
    let mut at = chrono::DateTime::from_timestamp_millis(T0 + DAY).unwrap();
    for i in 0..13 {
        pay(
            &w,
            invoice(
                &format!("evt_{i}"),
                &format!("in_{i:02}"),
                "cus_1",
                at.timestamp_millis(),
                vec![line("prod_demo", 9900)],
            ),
        )
        .await;
        at = at.checked_add_months(chrono::Months::new(1)).unwrap();
    }
    assert_eq!(w.balance("alice", "demo").await, (12 * 2475, 0, 0));
}

#[tokio::test]
async fn subscription_deleted_stops_recurring_commissions() {
    let w = world(program("demo", pct("0.25"), Duration::Lifetime, None)).await;
    bind_code(&w, "cus_1", "alice", T0).await;
    pay(
        &w,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    engine::sales::subscription_ended(
        &w.engine,
        SubscriptionEnded {
            event_id: "evt_del".into(),
            subscription_id: "sub_cus_1".into(),
            customer_key: "cus_1".into(),
            at_ms: T0 + 10 * DAY,
        },
    )
    .await
    .unwrap();
    let out = pay(
        &w,
        invoice(
            "evt_2",
            "in_2",
            "cus_1",
            T0 + 31 * DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    assert!(
        matches!(out, SaleOutcome::NotCommissionable { .. }),
        "{out:?}"
    );
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
}

#[tokio::test]
async fn paid_before_checkout_is_booked_when_the_binding_arrives() {
    let w = world(program(
        "demo",
        pct("0.25"),
        Duration::Lifetime,
        Some(pct("0.05")),
    ))
    .await;
    let click = w.click("bob", "v1", T0).await;
    // invoice.paid arrives before checkout.session.completed
    let out = pay(
        &w,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + 10_000,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    assert_eq!(
        out,
        SaleOutcome::Unattributed {
            program_ids: vec!["demo".into()]
        }
    );
    assert_eq!(
        customers::unattributed_of_customer(w.t(), "cus_1")
            .await
            .unwrap()
            .len(),
        1
    );
    w.bind(
        "cus_1",
        Some("cus_1@customers.test"),
        BindSource::ClickId(click),
        T0 + 10_000,
    )
    .await;
    assert_eq!(w.balance("bob", "demo").await, (2475, 0, 0));
    assert_eq!(w.balance("alice", "demo").await, (495, 0, 0));
    assert!(customers::unattributed_of_customer(w.t(), "cus_1")
        .await
        .unwrap()
        .is_empty());
    // a binding whose cause came after the invoice does not take it
    let out = pay(
        &w,
        invoice("evt_2", "in_x", "cus_2", T0, vec![line("prod_demo", 9900)]),
    )
    .await;
    assert!(matches!(out, SaleOutcome::Unattributed { .. }));
    w.bind("cus_2", None, BindSource::Code("carol".into()), T0 + DAY)
        .await;
    assert_eq!(w.balance("carol", "demo").await, (0, 0, 0));
}

/// Invoices of one scenario, for replays.
fn scenario() -> Vec<PaidInvoice> {
    vec![
        invoice(
            "evt_a",
            "in_a",
            "cus_1",
            T0 + DAY,
            vec![line("prod_demo", 300_000)],
        ),
        invoice(
            "evt_b",
            "in_b",
            "cus_1",
            T0 + 31 * DAY,
            vec![line("prod_demo", 50_000)],
        ),
        invoice(
            "evt_c",
            "in_c",
            "cus_1",
            T0 + 61 * DAY,
            vec![line("prod_demo", 50_000)],
        ),
        invoice(
            "evt_d",
            "in_d",
            "cus_2",
            T0 + 2 * DAY,
            vec![line("prod_demo", 9_900)],
        ),
    ]
}

async fn ledger_after(
    reward: Reward,
    duration: Duration,
    order: &[usize],
    twice: bool,
    concurrent: bool,
) -> Vec<(i64, i64, i64)> {
    let w = world(program("demo", reward, duration, Some(pct("0.05")))).await;
    bind_code(&w, "cus_1", "bob", T0).await;
    bind_code(&w, "cus_2", "bob", T0).await;
    let invs = scenario();
    let mut deliveries: Vec<PaidInvoice> = order.iter().map(|i| invs[*i].clone()).collect();
    if twice {
        deliveries.extend(order.iter().rev().map(|i| invs[*i].clone()));
    }
    if concurrent {
        let futs = deliveries.into_iter().map(|inv| {
            let e = w.engine.clone();
            async move { invoice_paid(&e, inv).await }
        });
        for r in futures::future::join_all(futs).await {
            r.unwrap();
        }
    } else {
        for inv in deliveries {
            invoice_paid(&w.engine, inv).await.unwrap();
        }
    }
    let mut out = vec![];
    for p in ["bob", "alice"] {
        out.push(w.balance(p, "demo").await);
    }
    // per-commission amounts too
    for id in ["in_a", "in_b", "in_c", "in_d"] {
        let c = customers::get_commission(w.t(), "bob", &format!("demo:{id}:t1"))
            .await
            .unwrap();
        out.push((c.map(|c| c.amount).unwrap_or(0), 0, 0));
    }
    out
}

#[tokio::test]
async fn replays_shuffles_and_concurrency_give_the_in_order_ledger() {
    let plans: Vec<(Reward, Duration)> = vec![
        (
            Reward::Hybrid {
                first_sale_flat: usd(25_000),
                rate: "0.05".parse().unwrap(),
            },
            Duration::Lifetime,
        ),
        (
            Reward::Flat {
                amounts: usd(2_000),
            },
            Duration::FirstSaleOnly,
        ),
        (pct("0.25"), Duration::Payments { count: 2 }),
    ];
    for (reward, duration) in plans {
        let in_order = ledger_after(reward.clone(), duration, &[0, 1, 2, 3], false, false).await;
        // renewal before the first sale, delivered twice, and all at once
        let shuffled = ledger_after(reward.clone(), duration, &[2, 1, 3, 0], true, false).await;
        assert_eq!(shuffled, in_order, "{reward:?} shuffled");
        let concurrent = ledger_after(reward.clone(), duration, &[1, 2, 0, 3], true, true).await;
        assert_eq!(concurrent, in_order, "{reward:?} concurrent");
    }
}

#[tokio::test]
async fn a_renewal_before_the_first_sale_is_corrected_with_an_adjustment() {
    let hybrid = Reward::Hybrid {
        first_sale_flat: usd(25_000),
        rate: "0.05".parse().unwrap(),
    };
    let w = world(program("demo", hybrid, Duration::Lifetime, None)).await;
    bind_code(&w, "cus_1", "alice", T0).await;
    let s = scenario();
    invoice_paid(&w.engine, s[1].clone()).await.unwrap(); // renewal first: booked as the first sale
    invoice_paid(&w.engine, s[0].clone()).await.unwrap();
    let mut entries = w.entries("alice", "demo").await;
    entries.sort();
    assert_eq!(
        entries,
        vec![
            ("adjusted".into(), -22_500),
            ("earned".into(), 25_000),
            ("earned".into(), 25_000)
        ],
        "the renewal's flat 250.00 becomes 5% of 500.00"
    );
    assert_eq!(w.balance("alice", "demo").await, (25_000 + 2_500, 0, 0));
}

#[tokio::test]
async fn holds_release_into_available_once() {
    let w = world(program("demo", pct("0.25"), Duration::Lifetime, None)).await;
    bind_code(&w, "cus_1", "alice", T0).await;
    pay(
        &w,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    assert!(
        engine::release::release_due(&w.engine, T0 + 90 * DAY, "schedule:x")
            .await
            .unwrap()
            .is_empty()
    );
    let r = engine::release::release_due(&w.engine, T0 + 91 * DAY, "schedule:y")
        .await
        .unwrap();
    assert_eq!(r, vec!["demo:in_1:t1".to_string()]);
    assert!(
        engine::release::release_due(&w.engine, T0 + 92 * DAY, "schedule:z")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(w.balance("alice", "demo").await, (0, 2475, 0));
    let payable = storage::ledger::payable_balances(w.t(), "demo")
        .await
        .unwrap();
    assert_eq!(payable.len(), 1);
}

#[tokio::test]
async fn commission_earned_goes_through_the_outbox_exactly_once() {
    let w = World::new().await;
    let config = storage::testing::local_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let q = storage::testing::fresh_queue(&sqs).await.unwrap();
    let w = World {
        engine: w.engine.with_outbox(sqs.clone(), email_route(q.clone())),
    };
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None),
        &["prod_demo"],
    )
    .await;
    bind_code(&w, "cus_1", "alice", T0).await;
    pay(
        &w,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    pay(
        &w,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await;
    assert!(storage::outbox::unsent(w.t()).await.unwrap().is_empty());
    let mut bodies = vec![];
    for _ in 0..3 {
        let r = sqs
            .receive_message()
            .queue_url(&q)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        bodies.extend(
            r.messages()
                .iter()
                .filter_map(|m| m.body().map(str::to_string)),
        );
    }
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let env = messages::Envelope::from_json(&bodies[0]).unwrap();
    assert_eq!(env.id, "commission-earned:demo:in_1:t1");
}

#[tokio::test]
async fn level_promotion_applies_after_the_crossing_sale() {
    let mut p = program("demo", pct("0.20"), Duration::Lifetime, None);
    p.levels = vec![rules::Level {
        name: "Gold".into(),
        threshold: rules::LevelThreshold::ActiveCustomers { count: 2 },
        rate: "0.30".parse().unwrap(),
    }];
    let w = world(p).await;
    for c in ["cus_1", "cus_2", "cus_3"] {
        bind_code(&w, c, "alice", T0).await;
    }
    pay(
        &w,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + DAY,
            vec![line("prod_demo", 10_000)],
        ),
    )
    .await;
    pay(
        &w,
        invoice(
            "evt_2",
            "in_2",
            "cus_2",
            T0 + 2 * DAY,
            vec![line("prod_demo", 10_000)],
        ),
    )
    .await; // crosses: still 20%
    pay(
        &w,
        invoice(
            "evt_3",
            "in_3",
            "cus_3",
            T0 + 3 * DAY,
            vec![line("prod_demo", 10_000)],
        ),
    )
    .await; // 30%
    assert_eq!(
        w.entries("alice", "demo").await,
        vec![
            ("earned".into(), 2_000),
            ("earned".into(), 2_000),
            ("earned".into(), 3_000)
        ]
    );
}

/// A correction that does not fit one transaction continues in the next ones, and the ledger is
/// the same as with one big transaction. A payments cap of 1 with the first sale arriving last
/// re-prices every later invoice.
#[tokio::test]
async fn a_large_correction_spans_several_transactions() {
    let cap = Duration::Payments { count: 1 };
    let mut results = vec![];
    for budget in [engine::sales::booking::TX_BUDGET, 8] {
        let mut w = world(program("demo", pct("0.25"), cap, None)).await;
        w.engine.tx_budget = budget;
        bind_code(&w, "cus_1", "alice", T0).await;
        // six renewals arrive first (each booked as "the first payment" in turn), then the real first sale
        for i in (1..=6).rev() {
            pay(
                &w,
                invoice(
                    &format!("evt_{i}"),
                    &format!("in_{i}"),
                    "cus_1",
                    T0 + i * 30 * DAY,
                    vec![line("prod_demo", 10_000)],
                ),
            )
            .await;
        }
        pay(
            &w,
            invoice(
                "evt_0",
                "in_0",
                "cus_1",
                T0 + DAY,
                vec![line("prod_demo", 10_000)],
            ),
        )
        .await;
        let mut amounts = vec![];
        for i in 0..=6 {
            let c = customers::get_commission(w.t(), "alice", &format!("demo:in_{i}:t1"))
                .await
                .unwrap();
            amounts.push(c.map(|c| c.amount).unwrap_or(0));
        }
        results.push((w.balance("alice", "demo").await, amounts));
    }
    assert_eq!(results[0].0, (2_500, 0, 0), "only the first payment earns");
    assert_eq!(results[0].1, vec![2_500, 0, 0, 0, 0, 0, 0]);
    assert_eq!(results[1], results[0], "budget 8 gives the same books");
}

/// Commission e-mails (and invitations) to this queue, as `EMAIL_QUEUE_URL` does.
fn email_route(queue_url: impl Into<String>) -> storage::outbox::Routes {
    storage::outbox::Routes::none().with_consumer(messages::Consumer::Email, queue_url)
}
