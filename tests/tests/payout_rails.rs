//! A payout run of `make dev` paying the demo partners through the fake PayPal (make dev's
//! default, `FAKE_RAILS=on`), through the public interfaces only: the daily rule fires on a
//! Friday past the hold, the worker hands bob's payout to PayPal in one recorded batch (what
//! the fake received is read from its documented `GET /_fake/received`), the poller
//! (`events/payout-poller/read-now.json` through the Invoke API) reads PayPal's answer and
//! books bob paid once; PayPal reverses it later and the next poll books it back, once, and
//! marks bob's PayPal address unusable; `partnerctl payouts batches` shows the batch.

use serde_json::{json, Value};
use system_tests::payouts::{buckets, friday_after, rfc3339, until_finished};
use system_tests::Stack;

const HOLD_DAYS: i64 = 90;

/// One of the fake's JSON routes (README "Payout rails": `GET /_fake/received`, …).
async fn fake(base: &str, method: &str, path: &str, body: Option<Value>) -> Value {
    let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
    system_tests::http::send(
        method,
        &format!("{base}{path}"),
        &[("content-type", "application/json")],
        body,
    )
    .await
    .expect("the fake answers")
    .json()
}

fn read_now() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/payout-poller/read-now.json"
        ))
        .expect("sample event"),
    )
    .expect("JSON")
}

#[tokio::test]
async fn a_payout_run_pays_bob_once_through_the_fake_paypal_and_books_a_reversal_once() {
    let stack = Stack::start_with(&[("FAKE_RAILS", "on"), ("EMAIL_QUEUE_URL", "")]).await;
    let paypal = stack.setting("PAYPAL_API_BASE").to_string();

    // Five customers of bob pay: bob earns 123.75 (alice, tier 2, 24.75: below the minimum).
    let mut last = 0;
    for i in 0..5 {
        last = stack.bob_sale("rails", i).await;
    }
    assert_eq!(buckets(&stack, "bob"), (12_375, 0, 0, 0));

    let friday = friday_after(last, HOLD_DAYS);
    let run = format!("demo:{}", friday.format("%Y-%m-%d"));
    let fired = stack
        .post(
            &format!("/dev/schedule/payout?time={}", rfc3339(friday)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(fired.status, 200, "{}", fired.text());
    until_finished(&stack, &run).await;

    // The worker handed bob's item to PayPal: one POST, a token first.
    let received = fake(&paypal, "GET", "/_fake/received", None).await;
    let posts: Vec<&Value> = received
        .as_array()
        .expect("received")
        .iter()
        .filter(|r| r["path"] == "/v1/payments/payouts")
        .collect();
    assert_eq!(posts.len(), 1, "{received:#}");
    assert_eq!(received[0]["path"], "/v1/oauth2/token");
    let items = posts[0]["body"]["items"].as_array().expect("items");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["receiver"], "bob@example.com");
    assert_eq!(
        items[0]["amount"],
        json!({"value": "123.75", "currency": "USD"})
    );
    let sender_item_id = items[0]["sender_item_id"].as_str().unwrap().to_string();
    let sender_batch_id = posts[0]["body"]["sender_batch_header"]["sender_batch_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        buckets(&stack, "bob"),
        (0, 0, 12_375, 0),
        "reserved while PayPal works"
    );

    // The operator sees the batch; the poller reads PayPal's answer.
    let listed = stack.partnerctl(&["payouts", "batches"]);
    assert!(
        listed.contains(&sender_batch_id) && listed.contains("paypal"),
        "{listed}"
    );
    let polled = stack.invoke("payout-poller", &read_now()).await;
    assert_eq!(polled.status, 200, "{}", polled.text());
    assert_eq!(
        polled.header("x-amz-function-error"),
        None,
        "{}",
        polled.text()
    );
    let report = polled.json();
    assert_eq!(report["batches"][0]["sent"], 1, "{report:#}");
    assert_eq!(buckets(&stack, "bob"), (0, 0, 0, 12_375), "paid");
    let detail = stack.partnerctl_json(&["payouts", "show", &run]);
    assert_eq!(detail["items"][0]["state"], "sent", "{detail:#}");

    // Polling again changes nothing; PayPal reverses the payout later: booked back once.
    stack.invoke("payout-poller", &read_now()).await;
    assert_eq!(buckets(&stack, "bob"), (0, 0, 0, 12_375));
    let moved = fake(
        &paypal,
        "POST",
        &format!("/_fake/items/{sender_item_id}"),
        Some(json!({"status": "REVERSED"})),
    )
    .await;
    assert_eq!(moved["status"], "REVERSED", "{moved}");
    for _ in 0..2 {
        let r = stack.invoke("payout-poller", &read_now()).await;
        assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
    }
    assert_eq!(
        buckets(&stack, "bob"),
        (0, 12_375, 0, 0),
        "back in available, once"
    );
    let standing = stack.partnerctl(&["payouts", "partner", "bob"]);
    assert!(standing.contains("REVERSED"), "{standing}");

    // PayPal received one batch with one item for bob, whatever was polled.
    let batches = fake(&paypal, "GET", "/_fake/batches", None).await;
    assert_eq!(batches.as_array().map(Vec::len), Some(1), "{batches:#}");

    // The next Friday does not pay bob's unusable address again.
    let next = friday + chrono::Duration::days(7);
    let fired = stack
        .post(
            &format!("/dev/schedule/payout?time={}", rfc3339(next)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(fired.status, 200, "{}", fired.text());
    let finished = until_finished(&stack, &format!("demo:{}", next.format("%Y-%m-%d"))).await;
    assert_eq!(finished["summary"]["items"], 0, "{finished:#}");
    assert!(
        finished["summary"]["waiting"]["payout_method_unusable"]["balances"] == 1,
        "{finished:#}"
    );
}
