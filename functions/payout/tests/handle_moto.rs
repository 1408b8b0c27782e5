//! The payout functions against moto: the schedule's Scheduled Event (events/payout/) starts
//! the due run at its `time` and puts the chunks on a real SQS queue; the worker takes the
//! queue's messages as Lambda's SQS event source would, reports only a poison message as a
//! batch item failure, and a redelivered chunk changes nothing.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use engine::payout::rail::Rails;
use engine::payout::SqsChunkQueue;
use rules::program::{Duration, Reward};
use rules::PayoutItemState;
use storage::payouts::{self, RunState};
use testkit::engine::*;

fn scheduled(time: &str) -> EventBridgeEvent<serde_json::Value> {
    let mut ev = testkit::events::sample("payout/scheduled.json");
    ev["time"] = serde_json::json!(time);
    serde_json::from_value(ev).expect("a scheduled event")
}

/// The queue's messages as the SQS event source hands them to the worker.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str) -> SqsEvent {
    let out = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .send()
        .await
        .expect("receive");
    let mut event = SqsEvent::default();
    for m in out.messages.unwrap_or_default() {
        event.records.push(SqsMessage {
            message_id: m.message_id,
            receipt_handle: m.receipt_handle,
            body: m.body,
            event_source: Some("aws:sqs".into()),
            ..Default::default()
        });
    }
    event
}

#[tokio::test]
async fn the_schedule_fans_out_through_sqs_and_the_worker_writes_the_items() {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None::<Reward>),
        &["prod_demo"],
    )
    .await;
    for (case, partner, total) in [("a", "alice", 49_900), ("b", "bob", 19_900)] {
        w.customer_of_pays(case, partner, T0 + DAY, total).await;
    }
    let sqs = aws_sdk_sqs::Client::new(&storage::testing::local_config().await);
    let url = storage::testing::fresh_queue(&sqs).await.expect("queue");
    let queue = SqsChunkQueue {
        sqs: sqs.clone(),
        queue_url: url.clone(),
    };

    // Thursday: the demo program pays on Fridays, nothing is due.
    let thursday = payout::schedule(
        &w.engine,
        &queue,
        &scheduled("2026-04-09T00:15:00Z"),
        "req-0",
    )
    .await
    .expect("schedule");
    assert!(thursday.runs.is_empty(), "{thursday:?}");

    // The sample event: Friday 2026-04-10 00:15 UTC, the holds of T0 + 1 day have ended.
    let event: EventBridgeEvent<serde_json::Value> =
        serde_json::from_value(testkit::events::sample("payout/scheduled.json")).expect("event");
    let report = payout::schedule(&w.engine, &queue, &event, "req-1")
        .await
        .expect("schedule");
    assert_eq!(report.runs.len(), 1, "{report:?}");
    let r = &report.runs[0];
    assert_eq!(
        (
            r.program_id.as_str(),
            r.date.as_str(),
            r.outcome,
            r.balances,
            r.chunks
        ),
        ("demo", "2026-04-10", "taken", 2, 1)
    );
    // A second delivery joins the run: nothing new is sent.
    let again = payout::schedule(&w.engine, &queue, &event, "req-2")
        .await
        .expect("schedule");
    assert_eq!(again.runs[0].outcome, "busy");

    let mut batch = receive(&sqs, &url).await;
    assert_eq!(batch.records.len(), 1, "one chunk on the queue");
    batch.records.push(SqsMessage {
        message_id: Some("poison".into()),
        body: Some("{\"not\":\"a chunk\"}".into()),
        ..Default::default()
    });
    let good = batch.records[0].message_id.clone().unwrap();

    let response = payout::work(&w.engine, &Rails::manual(), batch.clone()).await;
    let failed: Vec<&str> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, ["poison"], "only the poison message fails");

    let items = payouts::run_items(w.t(), "demo", "2026-04-10")
        .await
        .unwrap();
    assert_eq!(items.len(), 1, "alice is due, bob is below the minimum");
    assert_eq!(
        (items[0].partner_id.as_str(), items[0].amount),
        ("alice", 12_475)
    );
    assert_eq!(items[0].state, PayoutItemState::Approved);
    let run = payouts::get_run(w.t(), "demo", "2026-04-10")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.state, RunState::Done);

    // The good chunk delivered again (SQS is at least once): same items, same balances.
    batch
        .records
        .retain(|r| r.message_id.as_deref() == Some(good.as_str()));
    let response = payout::work(&w.engine, &Rails::manual(), batch).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        payouts::run_items(w.t(), "demo", "2026-04-10")
            .await
            .unwrap(),
        items
    );
    assert_eq!(w.balance("alice", "demo").await.0, 0);

    // The next day's invocation finds the run done and starts nothing new.
    let saturday = payout::schedule(
        &w.engine,
        &queue,
        &scheduled("2026-04-11T00:15:00Z"),
        "req-3",
    )
    .await
    .expect("schedule");
    assert_eq!(saturday.runs.len(), 1);
    assert_eq!(saturday.runs[0].outcome, "done");
}

#[tokio::test]
async fn a_scheduled_event_without_its_time_is_refused() {
    let w = World::new().await;
    let sqs = aws_sdk_sqs::Client::new(&storage::testing::local_config().await);
    let queue = SqsChunkQueue {
        sqs,
        queue_url: "http://unused".into(),
    };
    let mut ev = testkit::events::sample("payout/scheduled.json");
    ev.as_object_mut().unwrap().remove("time");
    let ev: EventBridgeEvent<serde_json::Value> = serde_json::from_value(ev).unwrap();
    let err = payout::schedule(&w.engine, &queue, &ev, "req")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("event.time"), "{err}");
}

#[tokio::test]
async fn a_friday_the_schedule_missed_is_caught_up_once_by_the_next_invocation() {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None::<Reward>),
        &["prod_demo"],
    )
    .await;
    w.customer_of_pays("a", "alice", T0 + DAY, 49_900).await;
    let sqs = aws_sdk_sqs::Client::new(&storage::testing::local_config().await);
    let url = storage::testing::fresh_queue(&sqs).await.expect("queue");
    let queue = SqsChunkQueue {
        sqs,
        queue_url: url,
    };
    let at = |t: &str| scheduled(t);
    // Friday's invocation never came; Saturday's runs Friday's date.
    let saturday = payout::schedule(&w.engine, &queue, &at("2026-04-11T00:15:00Z"), "sat")
        .await
        .expect("schedule");
    assert_eq!(saturday.runs.len(), 1, "{saturday:?}");
    assert_eq!(
        (saturday.runs[0].date.as_str(), saturday.runs[0].outcome),
        ("2026-04-10", "taken")
    );
    // Sunday finds it under way; the Tuesday after is past the catch-up window: no run at all.
    let sunday = payout::schedule(&w.engine, &queue, &at("2026-04-12T00:15:00Z"), "sun")
        .await
        .expect("schedule");
    assert_eq!(sunday.runs[0].outcome, "busy", "{sunday:?}");
    let tuesday = payout::schedule(&w.engine, &queue, &at("2026-04-14T00:15:00Z"), "tue")
        .await
        .expect("schedule");
    assert!(tuesday.runs.is_empty(), "{tuesday:?}");
    assert_eq!(
        payouts::list_runs(w.t(), "demo", 10).await.unwrap().len(),
        1,
        "one run for the Friday"
    );
}
