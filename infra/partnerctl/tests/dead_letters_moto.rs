//! Dead letters against moto: a scheduled run that Lambda gave up on (its event in the body,
//! `ErrorMessage` as an attribute, as Lambda writes it) is listed, replayed at its own time
//! once, and leaves the queue; one that cannot be replayed stays.

use aws_sdk_sqs::types::MessageAttributeValue;
use partnerctl::{dead_letters, Format};
use storage::outbox::Routes;
use storage::{testing, Tx};

fn scheduled_event(rule: &str, time: &str) -> String {
    serde_json::json!({
        "version": "0", "id": "c0ffee00-0000-4000-8000-000000000001",
        "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": time, "region": "us-east-1",
        "resources": [format!("arn:aws:events:us-east-1:123456789012:rule/{rule}")],
        "detail": {}
    })
    .to_string()
}

#[tokio::test]
async fn a_failed_sweep_is_listed_replayed_once_and_leaves_the_queue() {
    let config = testing::local_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let table = testing::fresh_table().await.unwrap();
    let dlq = testing::fresh_queue(&sqs).await.unwrap();
    let emails = testing::fresh_queue(&sqs).await.unwrap();

    // A commission e-mail whose send failed: unsent in the outbox.
    let envelope = messages::Envelope {
        id: "commission-earned:demo:in_1:t1".into(),
        at_ms: 1_780_000_000_000,
        message: messages::Message::CommissionEarned {
            partner_id: "bob".into(),
            program_id: "demo".into(),
            commission_id: "demo:in_1:t1".into(),
            tier: 1,
            amount_minor: 2475,
            currency: "USD".into(),
            available_at_ms: 1_787_776_000_000,
            product_id: None,
        },
    };
    let mut tx = Tx::new();
    storage::outbox::enqueue(&mut tx, &envelope).unwrap();
    tx.commit(&table).await.unwrap();

    // The sweep that would have sent it failed three times; then a message nobody can replay.
    for (body, error) in [
        (
            scheduled_event(
                "partner-engine-OutboxSweepFunctionOutboxSweep-1X2Y3Z",
                "2026-06-05T12:05:00Z",
            ),
            "Task timed out after 60.00 seconds",
        ),
        ("not an event".to_string(), "garbage"),
    ] {
        sqs.send_message()
            .queue_url(&dlq)
            .message_body(body)
            .message_attributes(
                "ErrorMessage",
                MessageAttributeValue::builder()
                    .data_type("String")
                    .string_value(error)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
    }

    let listed: serde_json::Value =
        serde_json::from_str(&dead_letters::list(&sqs, &dlq, Format::Json).await.unwrap()).unwrap();
    let listed = listed.as_array().cloned().unwrap_or_default();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let sweep = listed
        .iter()
        .find(|l| l["job"] == "outbox-sweep")
        .expect("the sweep, by its rule");
    assert_eq!(sweep["error"], "Task timed out after 60.00 seconds");
    assert!(sweep["event_time"]
        .as_str()
        .unwrap()
        .starts_with("2026-06-05T12:05:00"));

    let keys = tracking::KeyRing::from_secrets("dead-letter-test-tracking-key", None).unwrap();
    let engine = engine::Engine::new(table.clone(), keys).with_outbox(
        sqs.clone(),
        Routes::none().with_consumer(messages::Consumer::Email, &emails),
    );
    let done = dead_letters::replay(&sqs, &dlq, &engine, None, None)
        .await
        .unwrap();
    let ok: Vec<_> = done
        .iter()
        .filter(|r| matches!(r, dead_letters::Replayed::Done { .. }))
        .collect();
    assert_eq!(ok.len(), 1, "{done:?}");
    assert!(
        done.iter().any(|r| matches!(r, dead_letters::Replayed::Failed { why, .. } if why.contains("not a scheduled event"))),
        "{done:?}"
    );
    assert!(storage::outbox::unsent(&table).await.unwrap().is_empty());

    // Replayed again: the sweep's letter is gone, nothing is sent twice; the bad one stays.
    let again = dead_letters::replay(&sqs, &dlq, &engine, None, None)
        .await
        .unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
    assert!(matches!(again[0], dead_letters::Replayed::Failed { .. }));
    let received = sqs
        .receive_message()
        .queue_url(&emails)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1, "the e-mail message, once");
    assert!(received[0]
        .body()
        .unwrap()
        .contains("commission-earned:demo:in_1:t1"));
}
