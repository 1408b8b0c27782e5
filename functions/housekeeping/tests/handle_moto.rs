//! The scheduled runs against moto: the schedule's `time` is the business time of each job. The
//! waiting-sales job books the waiting sales of customers bound since (as a half-finished bind
//! leaves them); the release job moves exactly the commissions whose hold has ended, once, even
//! when two runs overlap; the outbox sweep delivers what an immediate send failed to.

use engine::attribution::BindSource;
use engine::sales::invoice_paid;
use housekeeping::{Job, RunReport};
use rules::program::Duration;
use rules::{Currency, EntryKind};
use storage::customers::{self, CommissionState};
use testkit::engine::*;

fn scheduled(at_ms: i64) -> aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value> {
    let mut ev = testkit::events::sample("housekeeping/scheduled.json");
    let at = chrono::DateTime::from_timestamp_millis(at_ms).unwrap();
    ev["time"] = serde_json::json!(at.to_rfc3339());
    serde_json::from_value(ev).expect("a scheduled event")
}

#[tokio::test]
async fn a_scheduled_run_sweeps_at_the_events_time() {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None),
        &["prod_demo"],
    )
    .await;
    invoice_paid(
        &w.engine,
        invoice("evt_1", "in_1", "cus_1", T0, vec![line("prod_demo", 9900)]),
    )
    .await
    .unwrap();
    let report = sweep(&w, T0 + 3_600_000).await;
    assert_eq!(
        report,
        RunReport::WaitingSales {
            at_ms: T0 + 3_600_000,
            waiting_sales: 1,
            bound_customers: 0,
            commissions_booked: vec![]
        }
    );
    // a week later the sale is outside the sweep's window
    let later = sweep(&w, T0 + 7 * DAY).await;
    assert!(
        matches!(
            later,
            RunReport::WaitingSales {
                waiting_sales: 0,
                ..
            }
        ),
        "{later:?}"
    );
    // bound since: the next run books it (a bind books it too; this one is the sweep's)
    w.bind("cus_1", None, BindSource::Code("alice".into()), T0 - DAY)
        .await;
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
    let again = sweep(&w, T0 + 2 * 3_600_000).await;
    assert!(
        matches!(&again, RunReport::WaitingSales { commissions_booked, .. } if commissions_booked.is_empty()),
        "{again:?}"
    );
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
}

async fn sweep(w: &World, at_ms: i64) -> RunReport {
    housekeeping::handle(&w.engine, Job::WaitingSales, scheduled(at_ms))
        .await
        .unwrap()
}

#[tokio::test]
async fn an_event_without_time_is_refused() {
    let w = World::new().await;
    for job in Job::ALL {
        let mut ev = scheduled(T0);
        ev.time = None;
        let err = housekeeping::handle(&w.engine, job, ev).await.unwrap_err();
        assert!(err.to_string().contains("event.time"), "{job:?}: {err}");
    }
}

/// alice earns on two sales a day apart (cus_1 at T0, cus_2 at T0 + 1 day); returns the two
/// commissions' `available_at_ms`, in order.
async fn two_commissions(w: &World) -> (i64, i64) {
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None),
        &["prod_demo"],
    )
    .await;
    for (i, at) in [(1, T0), (2, T0 + DAY)] {
        let cus = format!("cus_{i}");
        w.bind(&cus, None, BindSource::Code("alice".into()), at - DAY)
            .await;
        invoice_paid(
            &w.engine,
            invoice(
                &format!("evt_{i}"),
                &format!("in_{i}"),
                &cus,
                at,
                vec![line("prod_demo", 9900)],
            ),
        )
        .await
        .unwrap();
    }
    let mut due: Vec<i64> = customers::partner_commissions(w.t(), "alice", 0, i64::MAX)
        .await
        .unwrap()
        .iter()
        .map(|c| c.available_at_ms)
        .collect();
    due.sort();
    assert_eq!(due.len(), 2);
    assert!(due[0] > T0 && due[1] > due[0], "{due:?}");
    (due[0], due[1])
}

async fn release(w: &World, at_ms: i64) -> Vec<String> {
    match housekeeping::handle(&w.engine, Job::ReleaseHolds, scheduled(at_ms))
        .await
        .unwrap()
    {
        RunReport::ReleaseHolds { released, at_ms: a } => {
            assert_eq!(a, at_ms);
            released
        }
        other => panic!("not a release report: {other:?}"),
    }
}

/// Released ledger entries of alice, per commission.
async fn released_entries(w: &World) -> Vec<String> {
    let mut ids: Vec<String> = storage::ledger::entries(w.t(), "alice", "demo", Currency::USD)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Released)
        .filter_map(|e| e.commission_id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn holds_end_at_the_schedules_time_exactly_once() {
    let w = World::new().await;
    let (first, second) = two_commissions(&w).await;
    // A second before the first hold ends: nothing moves.
    assert!(release(&w, first - 1_000).await.is_empty());
    assert_eq!(w.balance("alice", "demo").await, (2 * 2475, 0, 0));
    // At the boundary: the first, only.
    let released = release(&w, first).await;
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(w.balance("alice", "demo").await, (2475, 2475, 0));
    // The same time again (a redelivered event): nothing more.
    assert!(release(&w, first).await.is_empty());
    // After the second hold: the second, then nothing.
    assert_eq!(release(&w, second + 3_600_000).await.len(), 1);
    assert!(release(&w, second + 7_200_000).await.is_empty());
    assert_eq!(w.balance("alice", "demo").await, (0, 2 * 2475, 0));
    assert_eq!(released_entries(&w).await.len(), 2);
}

#[tokio::test]
async fn two_concurrent_release_runs_release_each_commission_once() {
    for round in 0..3 {
        let w = World::new().await;
        let (_, second) = two_commissions(&w).await;
        let at = second + 3_600_000;
        // Two deliveries of the same schedule (or two overlapping hours) at once.
        let (a, b) = tokio::join!(
            housekeeping::handle(&w.engine, Job::ReleaseHolds, scheduled(at)),
            housekeeping::handle(&w.engine, Job::ReleaseHolds, scheduled(at + 1_000)),
        );
        let mut all = vec![];
        for r in [a, b] {
            match r.unwrap() {
                RunReport::ReleaseHolds { released, .. } => all.extend(released),
                other => panic!("{other:?}"),
            }
        }
        all.sort();
        let commissions = customers::partner_commissions(w.t(), "alice", 0, i64::MAX)
            .await
            .unwrap();
        let mut ids: Vec<String> = commissions
            .iter()
            .map(|c| c.commission_id.clone())
            .collect();
        ids.sort();
        assert_eq!(all, ids, "round {round}: each released by exactly one run");
        assert!(commissions
            .iter()
            .all(|c| c.state == CommissionState::Available));
        assert_eq!(
            released_entries(&w).await,
            ids,
            "round {round}: one entry each"
        );
        assert_eq!(w.balance("alice", "demo").await, (0, 2 * 2475, 0));
    }
}

#[tokio::test]
async fn the_outbox_sweep_delivers_what_the_immediate_send_failed_to() {
    let w = World::new().await;
    let config = storage::testing::local_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = storage::testing::fresh_queue(&sqs).await.unwrap();
    let email =
        |url: String| storage::outbox::Routes::none().with_consumer(messages::Consumer::Email, url);
    // The e-mail queue's URL names a queue that does not exist (yet): the send after the
    // booking fails and the message stays unsent.
    let broken = World {
        engine: w
            .engine
            .clone()
            .with_outbox(sqs.clone(), email(format!("{queue}-missing"))),
    };
    broken
        .seed(
            &program("demo", pct("0.25"), Duration::Lifetime, None),
            &["prod_demo"],
        )
        .await;
    broken
        .bind("cus_1", None, BindSource::Code("alice".into()), T0 - DAY)
        .await;
    invoice_paid(
        &broken.engine,
        invoice("evt_1", "in_1", "cus_1", T0, vec![line("prod_demo", 9900)]),
    )
    .await
    .unwrap();
    assert_eq!(storage::outbox::unsent(w.t()).await.unwrap().len(), 1);

    // The sweep with the broken route fails (Lambda retries it, then the dead-letter queue).
    let err = housekeeping::handle(&broken.engine, Job::OutboxSweep, scheduled(T0 + 300_000))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("outbox sweep"), "{err}");

    // Fixed: the next sweep delivers it, once.
    let fixed = w
        .engine
        .clone()
        .with_outbox(sqs.clone(), email(queue.clone()));
    let report = housekeeping::handle(&fixed, Job::OutboxSweep, scheduled(T0 + 600_000))
        .await
        .unwrap();
    assert_eq!(
        report,
        RunReport::OutboxSweep {
            at_ms: T0 + 600_000,
            // Every kind of the e-mail consumer was read; one message was sent.
            sent: messages::Consumer::Email
                .kinds()
                .map(|k| (
                    k.as_str().to_string(),
                    usize::from(k == messages::Kind::CommissionEarned)
                ))
                .collect()
        }
    );
    assert!(storage::outbox::unsent(w.t()).await.unwrap().is_empty());
    let got = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let bodies: Vec<_> = got
        .messages()
        .iter()
        .map(|m| messages::Envelope::from_json(m.body().unwrap()).unwrap())
        .collect();
    assert_eq!(bodies.len(), 1);
    assert_eq!(bodies[0].message.kind(), "commission_earned");
    let again = housekeeping::handle(&fixed, Job::OutboxSweep, scheduled(T0 + 900_000))
        .await
        .unwrap();
    assert!(
        matches!(&again, RunReport::OutboxSweep { sent, .. } if sent.values().all(|n| *n == 0)),
        "{again:?}"
    );

    // Without any consumer queue the sweep reads and sends nothing.
    let none = housekeeping::handle(&w.engine, Job::OutboxSweep, scheduled(T0 + 900_000))
        .await
        .unwrap();
    assert_eq!(
        none,
        RunReport::OutboxSweep {
            at_ms: T0 + 900_000,
            sent: Default::default()
        }
    );
}
