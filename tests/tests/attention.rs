//! Nothing fails silently, through `make dev`: a transient DynamoDB failure answers Stripe 500
//! and writes nothing; a permanent one, a payload this release cannot vouch for, or a refund it
//! does not apply yet, becomes a needs-attention record answered 200, which `partnerctl
//! attention` lists and replays once.

use serde_json::{json, Value};
use system_tests::dynamo_faults::{DynamoFaults, Fault};
use system_tests::{stripe, Stack};

async fn bind_bob(stack: &Stack) {
    let lead = stack
        .track_lead(
            json!({"code": "bob", "customer_key": "cus_demo1", "email": "carol@example.com"}),
        )
        .await;
    assert_eq!(lead.status, 201, "{}", lead.text());
}

async fn deliver(stack: &Stack, body: &[u8], t: i64) -> (u16, Value) {
    let r = stack.deliver_stripe(body, t).await;
    let json = serde_json::from_slice(&r.body).unwrap_or_else(|_| Value::String(r.text()));
    (r.status, json)
}

/// Deliver a signed event that the webhook must keep as a needs-attention record (200).
async fn deliver_parked(stack: &Stack, body: &[u8], t: i64) {
    let (status, reply) = deliver(stack, body, t).await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (200, Some("needs_attention")),
        "{reply}"
    );
}

/// `events/stripe/{name}.json` created at `t`, with `field` of the event set to `value`.
fn edited_event(name: &str, t: i64, field: &str, value: Value) -> Vec<u8> {
    let mut event: Value = serde_json::from_slice(&stripe::event(name, t)).expect("json");
    event[field] = value;
    serde_json::to_vec(&event).expect("json")
}

fn bob(stack: &Stack) -> Value {
    stack.partnerctl_json(&["partner", "bob"])
}

fn open_records(stack: &Stack) -> Vec<Value> {
    stack
        .partnerctl_json(&["attention"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn replay(stack: &Stack, args: &[&str]) -> (i32, String, String) {
    let out = stack
        .shell("target/debug/partnerctl")
        .args(["attention", "replay"])
        .args(args)
        .output()
        .expect("run partnerctl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn storage_failures_are_classified_and_a_parked_event_is_replayed_once() {
    let moto = std::env::var("AWS_ENDPOINT_URL").expect("make test's moto");
    let faults = DynamoFaults::start(&moto).await;
    let stack = Stack::start_with(&[("AWS_ENDPOINT_URL_DYNAMODB", faults.url.as_str())]).await;
    bind_bob(&stack).await;
    let t = stripe::next_second().await;
    let invoice = stripe::event("invoice.paid", t);

    // Transient: DynamoDB answers 500 to every transaction. Stripe gets a 500 (it retries),
    // nothing is booked and nothing is parked.
    faults.arm("TransactWriteItems", Fault::Transient);
    let (status, body) = deliver(&stack, &invoice, t).await;
    assert!(faults.disarm() > 0, "the booking reached DynamoDB");
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["type"], "urn:partner-engine:problem:temporary-failure");
    assert_eq!(bob(&stack)["balances"], json!([]), "nothing half-written");
    assert!(open_records(&stack).is_empty());

    // Permanent: DynamoDB refuses the transaction (access denied). Stripe gets a 200, the
    // event is parked with its payload, nothing is booked.
    faults.arm("TransactWriteItems", Fault::Permanent);
    let (status, body) = deliver(&stack, &invoice, t).await;
    faults.disarm();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "needs_attention", "{body}");
    assert_eq!(bob(&stack)["balances"], json!([]));
    let open = open_records(&stack);
    assert_eq!(open.len(), 1, "{open:?}");
    let id = open[0]["id"].as_str().expect("id").to_string();
    assert_eq!(id, "stripe:evt_demo_invoice_paid");
    assert_eq!(open[0]["reason_code"], "permanent-failure");
    assert!(
        open[0]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("AccessDenied"),
        "{open:?}"
    );
    let shown = stack.partnerctl_json(&["attention", "show", &id]);
    assert_eq!(
        shown["payload"].as_str().map(str::as_bytes),
        Some(invoice.as_slice()),
        "the raw payload is kept"
    );

    // After the fix (access restored): the replay books once and closes the record.
    let (code, out, err) = replay(&stack, &[&id]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("processed (booked"), "{out}");
    assert_eq!(bob(&stack)["balances"][0]["pending"], json!(2475));
    assert!(open_records(&stack).is_empty());
    let month = stack.partnerctl_json(&["attention", "--month", &month_now()]);
    assert_eq!(month[0]["state"], "resolved", "{month}");

    // A second replay is refused (closed); Stripe's own redelivery books nothing more.
    let (code, _, err) = replay(&stack, &[&id]);
    assert_ne!(code, 0);
    assert!(err.contains("resolved already"), "{err}");
    let (status, body) = deliver(&stack, &invoice, t).await;
    assert_eq!(
        (status, body["outcome"].as_str()),
        (200, Some("already_processed")),
        "{body}"
    );
    assert_eq!(bob(&stack)["balances"][0]["pending"], json!(2475));
    assert_eq!(bob(&stack)["commissions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn an_untested_api_version_waits_for_an_operator() {
    let stack = Stack::start().await;
    bind_bob(&stack).await;
    let t = stripe::next_second().await;
    let body = edited_event("invoice.paid", t, "api_version", "2099-01-01.future".into());

    deliver_parked(&stack, &body, t).await;
    assert_eq!(bob(&stack)["balances"], json!([]), "not booked on a guess");
    let open = open_records(&stack);
    assert_eq!(open[0]["reason_code"], "api-version-untested", "{open:?}");
    let id = open[0]["id"].as_str().expect("id").to_string();

    // Replayed as it is: still parked (exit 3), still open, nothing booked.
    let (code, out, err) = replay(&stack, &[&id]);
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains("still needs attention"), "{out}");
    assert_eq!(open_records(&stack).len(), 1);
    assert_eq!(bob(&stack)["balances"], json!([]));

    // The operator checked the payload and accepts the version: booked once.
    let (code, out, err) = replay(&stack, &[&id, "--accept-api-version"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(bob(&stack)["balances"][0]["pending"], json!(2475));
    assert!(open_records(&stack).is_empty());

    // A test-mode event is never booked in a live deployment: here (test mode) a live one
    // is parked, and an operator dismisses it.
    let t = stripe::next_second().await;
    let body = edited_event("invoice.paid.renewal", t, "livemode", true.into());
    deliver_parked(&stack, &body, t).await;
    let open = open_records(&stack);
    assert_eq!(open[0]["reason_code"], "livemode-mismatch", "{open:?}");
    let id = open[0]["id"].as_str().expect("id").to_string();
    stack.partnerctl(&[
        "attention",
        "dismiss",
        &id,
        "--reason",
        "a live event sent to a test stack",
    ]);
    assert!(open_records(&stack).is_empty());
    assert_eq!(bob(&stack)["balances"][0]["pending"], json!(2475));
}

fn month_now() -> String {
    chrono::Utc::now().format("%Y-%m").to_string()
}
