//! The scheduled jobs of `make dev`, fired through `POST /dev/schedule/<function>?time=…` at
//! chosen business times: holds end exactly at their boundary and once; an outbox message whose
//! first send failed is delivered by the sweep; a message of a kind without a consumer stays in
//! the outbox (`partnerctl outbox`) and reaches no queue.

use serde_json::{json, Value};
use system_tests::{Reply, Stack};

/// The demo program's hold (infra/dev/demo.yaml: 90 days).
const HOLD_MS: i64 = 90 * 86_400_000;

/// [`Stack::bob_sale`]: bob earns 24.75, alice 4.95; the invoice's business time, seconds.
async fn sale(stack: &Stack, tag: &str, i: usize) -> i64 {
    stack.bob_sale(tag, i).await
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("time")
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Fire a schedule as of business time `at_ms`, as the README shows; the invocation's answer.
async fn fire(stack: &Stack, schedule: &str, at_ms: i64) -> Reply {
    let r = stack
        .post(
            &format!("/dev/schedule/{schedule}?time={}", rfc3339(at_ms)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(r.status, 200, "{schedule}: {}", r.text());
    r
}

/// [`fire`], for a run that must succeed: its report.
async fn run(stack: &Stack, schedule: &str, at_ms: i64) -> Value {
    let r = fire(stack, schedule, at_ms).await;
    assert_eq!(
        r.header("x-amz-function-error"),
        None,
        "{schedule}: {}",
        r.text()
    );
    r.json()
}

/// `(pending, available)` of a partner in the demo program (USD).
fn balance(stack: &Stack, partner: &str) -> (i64, i64) {
    let view = stack.partnerctl_json(&["partner", partner]);
    let b = &view["balances"][0];
    (
        b["pending"].as_i64().unwrap_or(0),
        b["available"].as_i64().unwrap_or(0),
    )
}

/// `released` ledger entries of a partner.
fn released_entries(stack: &Stack, partner: &str) -> usize {
    let view = stack.partnerctl_json(&["partner", partner]);
    view["entries"]
        .as_array()
        .map(|es| es.iter().filter(|e| e["kind"] == "released").count())
        .unwrap_or(0)
}

/// `partnerctl outbox --kind KIND --format json`: (unsent count, message ids).
fn outbox(stack: &Stack, kind: &str) -> (i64, Vec<String>) {
    let v = stack.partnerctl_json(&["outbox", "--kind", kind]);
    let count = v["kinds"][0]["unsent"].as_i64().expect("unsent count");
    assert_eq!(v["kinds"][0]["kind"], kind, "{v:#}");
    let ids = v["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["message_id"].as_str().unwrap_or_default().to_string())
        .collect();
    (count, ids)
}

async fn sqs() -> aws_sdk_sqs::Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("moto endpoint");
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .load()
        .await;
    aws_sdk_sqs::Client::new(&config)
}

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}{}x{nanos}", std::process::id())
}

#[tokio::test]
async fn the_hold_release_schedule_moves_exactly_the_commissions_due_at_its_time_once() {
    let stack = Stack::start().await;

    // make dev lists each job's schedule and can fire it.
    let listing = stack.get("/dev/functions").await.json();
    let schedules: Vec<(String, String)> = listing["functions"]
        .as_array()
        .expect("functions")
        .iter()
        .flat_map(|f| {
            f["schedules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |s| {
                    (
                        f["name"].as_str().unwrap_or_default().to_string(),
                        s["event"].as_str().unwrap_or_default().to_string(),
                    )
                })
        })
        .collect();
    for (function, event) in [
        ("housekeeping", "SweepWaitingSales"),
        ("release-holds", "ReleaseHolds"),
        ("outbox-sweep", "OutboxSweep"),
    ] {
        assert!(
            schedules.contains(&(function.to_string(), event.to_string())),
            "{function}/{event} not in {schedules:?}"
        );
    }

    // Two sales a few seconds apart: their holds end a few seconds apart, 90 days later.
    let tag = unique("hold");
    let first = sale(&stack, &tag, 1).await * 1000;
    let second = sale(&stack, &tag, 2).await * 1000;
    assert!(second > first);
    let view = stack.partnerctl_json(&["partner", "bob"]);
    let mut due: Vec<i64> = view["commissions"]
        .as_array()
        .expect("commissions")
        .iter()
        .map(|c| c["available_at_ms"].as_i64().expect("available_at_ms"))
        .collect();
    due.sort();
    assert_eq!(due, vec![first + HOLD_MS, second + HOLD_MS], "{view:#}");
    assert_eq!(balance(&stack, "bob"), (2 * 2475, 0));
    assert_eq!(balance(&stack, "alice"), (2 * 495, 0));

    // A second before the first hold ends: nothing moves.
    let report = run(&stack, "release-holds", first + HOLD_MS - 1000).await;
    assert_eq!(report["released"], json!([]), "{report:#}");
    assert_eq!(balance(&stack, "bob"), (2 * 2475, 0));

    // At the first boundary (by the event's name this time): the first sale's commissions only.
    let report = run(&stack, "ReleaseHolds", first + HOLD_MS).await;
    assert_eq!(report["job"], "release-holds", "{report:#}");
    assert_eq!(
        report["released"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    assert_eq!(balance(&stack, "bob"), (2475, 2475));
    assert_eq!(balance(&stack, "alice"), (495, 495));

    // The same time again (a redelivery): nothing more.
    let report = run(&stack, "release-holds", first + HOLD_MS).await;
    assert_eq!(report["released"], json!([]), "{report:#}");

    // After the second boundary: the rest, once, however often it fires.
    let report = run(&stack, "release-holds", second + HOLD_MS + 3_600_000).await;
    assert_eq!(
        report["released"].as_array().map(Vec::len),
        Some(2),
        "{report:#}"
    );
    let report = run(&stack, "release-holds", second + HOLD_MS + 7_200_000).await;
    assert_eq!(report["released"], json!([]), "{report:#}");
    assert_eq!(balance(&stack, "bob"), (0, 2 * 2475));
    assert_eq!(balance(&stack, "alice"), (0, 2 * 495));
    assert_eq!(released_entries(&stack, "bob"), 2);
    assert_eq!(released_entries(&stack, "alice"), 2);
}

#[tokio::test]
async fn an_outbox_message_whose_first_send_failed_is_delivered_by_the_sweep() {
    // The e-mail consumer's queue is configured, but does not exist yet: the send right after
    // the booking fails.
    let name = unique("email-");
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("moto endpoint");
    let url = format!("{}/123456789012/{name}", endpoint.trim_end_matches('/'));
    let stack = Stack::start_with(&[("EMAIL_QUEUE_URL", url.as_str())]).await;
    let tag = unique("sweep");
    let created = sale(&stack, &tag, 1).await * 1000;
    let (count, ids) = outbox(&stack, "commission_earned");
    assert_eq!(count, 2, "bob's and alice's commission e-mails: {ids:?}");

    // A sweep while the queue is still missing fails (Lambda would retry it, then the
    // dead-letter queue) and leaves the messages unsent.
    let failed = fire(&stack, "outbox-sweep", created + 300_000).await;
    assert_eq!(
        failed.header("x-amz-function-error"),
        Some("Unhandled"),
        "{}",
        failed.text()
    );
    assert_eq!(outbox(&stack, "commission_earned").0, 2);

    // The queue exists now: the next sweep delivers both, once.
    let sqs = sqs().await;
    let created_queue = sqs
        .create_queue()
        .queue_name(&name)
        .send()
        .await
        .expect("create queue");
    let queue = created_queue.queue_url().unwrap_or(&url).to_string();
    let report = run(&stack, "outbox-sweep", created + 600_000).await;
    assert_eq!(
        report["sent"],
        json!({"commission_earned": 2, "commission_reversed": 0, "partner_invite": 0,
               "payout_waiting": 0, "forfeit_warning": 0, "forfeited": 0, "payout_sent": 0,
               "payout_failed": 0, "level_promoted": 0}),
        "{report:#}"
    );
    assert_eq!(outbox(&stack, "commission_earned"), (0, vec![]));
    let mut got = vec![];
    for _ in 0..4 {
        let r = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        for m in r.messages() {
            let body: Value = serde_json::from_str(m.body().unwrap_or_default()).expect("JSON");
            got.push(body["id"].as_str().unwrap_or_default().to_string());
            assert_eq!(body["type"], "commission_earned", "{body:#}");
        }
    }
    got.sort();
    let mut want = ids;
    want.sort();
    assert_eq!(got, want);
    // Nothing left to send.
    let report = run(&stack, "outbox-sweep", created + 900_000).await;
    assert_eq!(report["sent"]["commission_earned"], json!(0), "{report:#}");
}

#[tokio::test]
async fn a_message_of_a_kind_without_a_consumer_stays_in_the_outbox() {
    // The e-mail consumer switched off (its queue variable blank): no consumer queue at all.
    let stack = Stack::start_with(&[("EMAIL_QUEUE_URL", "")]).await;
    let tag = unique("noconsumer");
    let created = sale(&stack, &tag, 1).await * 1000;

    let (count, ids) = outbox(&stack, "commission_earned");
    assert_eq!(count, 2, "{ids:?}");
    assert!(
        ids.iter().all(|id| id.contains(&tag)),
        "this sale's messages: {ids:?}"
    );
    // Listed with every kind and its consumer's variable.
    let all = stack.partnerctl_json(&["outbox"]);
    let kinds: Vec<_> = all["kinds"]
        .as_array()
        .expect("kinds")
        .iter()
        .map(|k| {
            (
                k["kind"].as_str().unwrap_or_default().to_string(),
                k["queue_url_env"].as_str().unwrap_or_default().to_string(),
                k["unsent"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("commission_earned".into(), "EMAIL_QUEUE_URL".into(), 2),
            ("commission_reversed".into(), "EMAIL_QUEUE_URL".into(), 0),
            ("partner_invite".into(), "EMAIL_QUEUE_URL".into(), 0),
            ("crm_sync_partner".into(), "CRM_SYNC_QUEUE_URL".into(), 0),
            ("payout_waiting".into(), "EMAIL_QUEUE_URL".into(), 0),
            ("forfeit_warning".into(), "EMAIL_QUEUE_URL".into(), 0),
            ("forfeited".into(), "EMAIL_QUEUE_URL".into(), 0),
            ("payout_sent".into(), "EMAIL_QUEUE_URL".into(), 0),
            ("payout_failed".into(), "EMAIL_QUEUE_URL".into(), 0),
            ("level_promoted".into(), "EMAIL_QUEUE_URL".into(), 0),
        ]
    );
    let text = stack.partnerctl(&["outbox"]);
    assert!(
        text.contains("commission_earned") && text.contains(&ids[0]),
        "{text}"
    );

    // The sweep has no route for it: it reads and sends nothing, and the messages stay.
    let report = run(&stack, "outbox-sweep", created + 300_000).await;
    assert_eq!(report["sent"], json!({}), "{report:#}");
    assert_eq!(outbox(&stack, "commission_earned"), (2, ids.clone()));

    // No queue of the local AWS holds them (peeked: visibility 0 leaves other tests' messages).
    let sqs = sqs().await;
    let queues = sqs.list_queues().send().await.expect("list queues");
    for q in queues.queue_urls() {
        let r = sqs
            .receive_message()
            .queue_url(q)
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await
            .expect("receive");
        for m in r.messages() {
            let body = m.body().unwrap_or_default();
            assert!(!body.contains(&tag), "{q} received {body}");
        }
    }
}

/// A release run that Lambda gave up on waits in the dead-letter queue (Lambda writes the event
/// as the body and `ErrorMessage` as an attribute; devgw runs schedules synchronously, so the
/// test writes it as Lambda would). The operator lists it and replays it: the run happens at
/// the event's own time, once, and the letter leaves the queue.
#[tokio::test]
async fn a_failed_release_run_is_listed_and_replayed_from_the_dead_letter_queue() {
    let stack = Stack::start().await;
    let tag = unique("dlq");
    let paid = sale(&stack, &tag, 1).await * 1000;
    assert_eq!(balance(&stack, "bob"), (2475, 0));

    let event = json!({
        "version": "0", "id": format!("{tag}-run"), "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "region": "us-east-1",
        "time": rfc3339(paid + HOLD_MS),
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/ReleaseHoldsFunctionReleaseHolds"],
        "detail": {}
    });
    let dlq = stack
        .setting("HOUSEKEEPING_DEAD_LETTER_QUEUE_URL")
        .to_string();
    let sent = sqs()
        .await
        .send_message()
        .queue_url(&dlq)
        .message_body(event.to_string())
        .message_attributes(
            "ErrorMessage",
            aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value("Task timed out after 60.00 seconds")
                .build()
                .expect("attribute"),
        )
        .send()
        .await
        .expect("send to the dead-letter queue");
    let id = sent.message_id().expect("message id").to_string();

    let listed = stack.partnerctl_json(&["dead-letters"]);
    let letter = listed
        .as_array()
        .and_then(|l| l.iter().find(|m| m["message_id"] == id.as_str()))
        .unwrap_or_else(|| panic!("{id} not listed: {listed:#}"))
        .clone();
    assert_eq!(letter["job"], "release-holds", "{letter:#}");
    assert_eq!(letter["error"], "Task timed out after 60.00 seconds");

    let out = stack.partnerctl(&["dead-letters", "replay", "--message", &id]);
    assert!(out.contains(&format!("{id}: done")), "{out}");
    assert_eq!(
        balance(&stack, "bob"),
        (0, 2475),
        "released at the event's time"
    );
    let listed = stack.partnerctl_json(&["dead-letters"]);
    assert!(
        !listed
            .as_array()
            .is_some_and(|l| l.iter().any(|m| m["message_id"] == id.as_str())),
        "{listed:#}"
    );
    // Fired again by the schedule: nothing more to release.
    let report = run(&stack, "release-holds", paid + HOLD_MS).await;
    assert_eq!(report["released"], json!([]), "{report:#}");
}
