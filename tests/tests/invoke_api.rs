//! The Lambda Invoke API of `make dev` (what `aws lambda invoke --endpoint-url` and
//! `cargo lambda invoke` call) with the sample events of `events/`, as the README shows, and
//! `partnerctl` reading what the invocations wrote.

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use serde_json::json;
use system_tests::{Reply, Stack};

/// A sample HTTP API event of `events/`.
fn sample(rel: &str) -> ApiGatewayV2httpRequest {
    let path = format!("{}/../events/{rel}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The function's answer: an HTTP API response (the invocation itself succeeded).
fn http_answer(reply: &Reply) -> ApiGatewayV2httpResponse {
    assert_eq!(
        (reply.status, reply.header("x-amz-function-error")),
        (200, None),
        "{}",
        reply.text()
    );
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("not an HTTP API response ({e}): {}", reply.text()))
}

fn body_json(answer: &ApiGatewayV2httpResponse) -> serde_json::Value {
    match &answer.body {
        Some(Body::Text(t)) => serde_json::from_str(t).expect("JSON body"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sample_events_through_the_invoke_api() {
    let stack = Stack::start().await;

    // events/redirect/click.json: alice's link, clicked
    let click = http_answer(
        &stack
            .invoke("redirect", &sample("redirect/click.json"))
            .await,
    );
    assert_eq!(click.status_code, 302, "{click:?}");
    let location = click
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("location");
    assert!(
        location.starts_with("https://example.com/pricing?ref_click="),
        "{location}"
    );
    assert!(
        click.cookies.iter().any(|c| c.starts_with("ref_vid=")),
        "{click:?}"
    );

    // events/api/track-lead-code.json: the merchant binds a customer by alice's code
    let lead = sample("api/track-lead-code.json");
    let customer = serde_json::from_str::<serde_json::Value>(lead.body.as_deref().expect("body"))
        .expect("JSON body")["customer_key"]
        .as_str()
        .expect("customer_key")
        .to_string();
    let bound = http_answer(&stack.invoke("api", &lead).await);
    assert_eq!(bound.status_code, 201, "{bound:?}");
    assert_eq!(
        body_json(&bound),
        json!({"program_id": "demo", "partner_id": "alice", "customer_key": customer, "status": "bound"})
    );

    // the operator sees the binding
    let view = stack.partnerctl_json(&["customer", "--program", "demo", &customer]);
    assert!(
        view.to_string().contains("\"alice\""),
        "partnerctl customer: {view:#}"
    );

    // events/notifier/email.json: bob's commission e-mail and alice's payout e-mail, one batch;
    // events/notifier/bounce.json: SES reports an invited friend's address as hard-bounced
    for (file, what) in [("email.json", "e-mails"), ("bounce.json", "bounce")] {
        let path = format!("{}/../events/notifier/{file}", env!("CARGO_MANIFEST_DIR"));
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("sample")).expect("JSON");
        let r = stack.invoke("notifier", &event).await;
        assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
        assert_eq!(
            r.json()["batchItemFailures"],
            json!([]),
            "{what}: {}",
            r.text()
        );
    }
    let sent = stack.partnerctl_json(&["mail"]);
    let subjects: Vec<&str> = sent
        .as_array()
        .expect("mail log")
        .iter()
        .filter(|m| m["state"] == "sent")
        .filter_map(|m| m["subject"].as_str())
        .collect();
    assert!(subjects.contains(&"You earned $24.75"), "{sent:#}");
    assert!(subjects.contains(&"We sent you $124.75"), "{sent:#}");
    let attention = stack.partnerctl(&["attention"]);
    assert!(
        attention.contains("email-hard-bounce") && attention.contains("friend@example.org"),
        "{attention}"
    );

    // an unknown function is the Invoke API's 404
    let unknown = stack
        .invoke("no-such-function", &sample("redirect/click.json"))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
}
