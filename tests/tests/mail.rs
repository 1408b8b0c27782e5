//! Partner e-mail through `make dev` (issue 15): a sale's commission e-mails go from the outbox
//! through the e-mail queue to the notifier and local SES, and `partnerctl mail` shows what was
//! sent (recipient, subject, text body); SES's bounce report, delivered to the mail-events queue
//! as the configuration set's SNS destination would, marks the address: the partner's next
//! commission e-mail is skipped (and says why), the operator sees it in `partnerctl partner` and
//! `partnerctl attention`, and the other partner's mail still flows.

use std::time::Duration;

use serde_json::{json, Value};
use system_tests::Stack;

/// `partnerctl mail` (today's log) until `done` holds for it, for at most 60 s.
async fn mail_until(stack: &Stack, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..600 {
        let log = stack.partnerctl_json(&["mail"]);
        let rows = log.as_array().cloned().unwrap_or_default();
        if done(&rows) {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: {:#}", stack.partnerctl_json(&["mail"]));
}

fn of<'a>(rows: &'a [Value], tag: &str, to: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|r| r["message_id"].as_str().unwrap_or("").contains(tag) && r["recipient"] == to)
        .collect()
}

#[tokio::test]
async fn commission_mail_is_sent_listed_and_stops_after_a_hard_bounce() {
    let stack = Stack::start().await;
    let tag = format!("mail{}", std::process::id());
    stack.bob_sale(&tag, 1).await;

    let rows = mail_until(&stack, "both commission e-mails sent", |rows| {
        ["bob@example.com", "alice@example.com"]
            .iter()
            .all(|to| of(rows, &tag, to).iter().any(|r| r["state"] == "sent"))
    })
    .await;
    let bob = of(&rows, &tag, "bob@example.com")[0];
    assert_eq!(bob["kind"], "commission_earned");
    assert_eq!(bob["subject"], "You earned $24.75");
    let text = bob["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("You earned a commission of $24.75."),
        "{text}"
    );
    assert!(text.contains("Product:       prod_demo"), "{text}");
    assert!(text.contains("Demo Inc., 1 Example Street"), "{text}");
    let alice = of(&rows, &tag, "alice@example.com")[0];
    assert_eq!(alice["subject"], "You earned $4.95 from your team");
    // The human-readable log shows the same, body included.
    let listing = stack.partnerctl(&["mail"]);
    assert!(
        listing.contains("to bob@example.com")
            && listing.contains("| You earned a commission of $24.75."),
        "{listing}"
    );

    // SES reports bob's address as hard-bounced (the event as SNS delivers it, raw, to the
    // mail-events queue).
    let bounce = json!({
        "eventType": "Bounce",
        "bounce": {
            "bounceType": "Permanent", "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": "bob@example.com", "action": "failed",
                                   "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"}],
            "timestamp": "2026-12-04T10:41:02.669Z", "feedbackId": format!("fb-{tag}")
        },
        "mail": {"messageId": bob["ses_message_id"], "destination": ["bob@example.com"]}
    });
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("moto endpoint");
    let sqs = aws_sdk_sqs::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .endpoint_url(endpoint)
            .region(aws_config::Region::new("us-east-1"))
            .load()
            .await,
    );
    sqs.send_message()
        .queue_url(stack.setting("MAIL_EVENTS_QUEUE_URL"))
        .message_body(bounce.to_string())
        .send()
        .await
        .expect("send the bounce");
    let mut shown = String::new();
    for _ in 0..600 {
        shown = stack.partnerctl(&["partner", "bob"]);
        if shown.contains("hard_bounce") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        shown.contains("bob@example.com hard_bounce on 2026-12-04"),
        "{shown}"
    );
    let attention = stack.partnerctl(&["attention"]);
    assert!(attention.contains("email-hard-bounce"), "{attention}");

    // The next sale: bob's commission e-mail is skipped and says why; alice's is sent.
    stack.bob_sale(&tag, 2).await;
    let tag2 = format!("{tag}_2");
    let rows = mail_until(&stack, "the second sale's e-mails handled", |rows| {
        !of(rows, &tag2, "bob@example.com").is_empty()
            && of(rows, &tag2, "alice@example.com")
                .iter()
                .any(|r| r["state"] == "sent")
    })
    .await;
    let bob = of(&rows, &tag2, "bob@example.com")[0];
    assert_eq!(bob["state"], "skipped", "{bob:#}");
    assert!(
        bob["note"]
            .as_str()
            .unwrap_or_default()
            .contains("hard_bounce"),
        "{bob:#}"
    );
}
