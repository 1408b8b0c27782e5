//! The scheduled run against moto: the schedule's `time` is the business time of the sweep, and
//! a run books the waiting sales of customers bound since (as a half-finished bind leaves them).

use engine::attribution::BindSource;
use engine::sales::invoice_paid;
use rules::program::Duration;
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
    let report = housekeeping::handle(&w.engine, scheduled(T0 + 3_600_000))
        .await
        .unwrap();
    assert_eq!((report.waiting_sales, report.bound_customers), (1, 0));
    assert_eq!(report.at_ms, T0 + 3_600_000);
    // a week later the sale is outside the sweep's window
    let later = housekeeping::handle(&w.engine, scheduled(T0 + 7 * DAY))
        .await
        .unwrap();
    assert_eq!(later.waiting_sales, 0);
    // bound since: the next run books it (a bind books it too; this one is the sweep's)
    w.bind("cus_1", None, BindSource::Code("alice".into()), T0 - DAY)
        .await;
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
    let again = housekeeping::handle(&w.engine, scheduled(T0 + 2 * 3_600_000))
        .await
        .unwrap();
    assert_eq!(again.commissions_booked, Vec::<String>::new());
    assert_eq!(w.balance("alice", "demo").await, (2475, 0, 0));
}

#[tokio::test]
async fn an_event_without_time_is_refused() {
    let w = World::new().await;
    let mut ev = scheduled(T0);
    ev.time = None;
    let err = housekeeping::handle(&w.engine, ev).await.unwrap_err();
    assert!(err.to_string().contains("event.time"), "{err}");
}
