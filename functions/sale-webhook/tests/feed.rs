//! `POST /webhooks/sale` end to end with a recording sink: the request events of
//! `events/sale-webhook/feed.*.json` through lambda_http's request types. Signature cases like
//! Stripe's (`webhook.rs`), per source; answers that name the field; what the engine is asked.

use lambda_http::http::StatusCode;
use lambda_http::Body;
use rules::refund::{DisputeStatus, RefundStatus};
use sale_webhook::signature::{sign_header, sign_hex};
use sale_webhook::{handle, BindSource, ChargeFact, SinkError};
use testkit::sale_webhook::*;

const FEED_EVENTS: &[&str] = &["sale", "refund", "chargeback", "chargeback_won"];

struct Answer {
    status: StatusCode,
    content_type: String,
    json: serde_json::Value,
}

/// Deps at `now_s` with the feed's sources.
fn feed_deps(now_s: i64) -> (sale_webhook::Deps<RecordingSink>, RecordingSink) {
    let (mut deps, sink, _) = deps(SECRET, now_s);
    deps.feed = feed_sources();
    (deps, sink)
}

async fn send(deps: &sale_webhook::Deps<RecordingSink>, req: lambda_http::Request) -> Answer {
    let resp = handle(deps, req).await.expect("never Err");
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let status = resp.status();
    let json = match resp.into_body() {
        Body::Text(t) => serde_json::from_str(&t).unwrap_or_default(),
        _ => serde_json::Value::Null,
    };
    Answer {
        status,
        content_type,
        json,
    }
}

fn body(name: &str) -> String {
    std::fs::read_to_string(repo_path(&format!("events/sale-feed/{name}.json"))).expect("body")
}

const NOW: i64 = 1_800_000_000;

/// The sample `name` signed with `secret` at `t`.
fn signed_feed(name: &str, secret: &str, t: i64) -> lambda_http::Request {
    let b = body(name);
    let sig = sign_header(secret, t, b.as_bytes());
    feed_request(name, &b, Some(sig))
}

fn assert_problem(a: &Answer, status: u16, kind: &str, field: &str) {
    assert_eq!(a.status.as_u16(), status, "{}", a.json);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(
        a.json["type"],
        format!("urn:partner-engine:problem:{kind}"),
        "{}",
        a.json
    );
    assert_eq!(a.json["field"], field, "{}", a.json);
}

#[test]
fn request_events_wrap_the_feed_samples_byte_for_byte() {
    for name in FEED_EVENTS {
        let ev = event_json(&format!("feed.{name}"));
        assert_eq!(
            body_of(&ev),
            body(name),
            "{name}: body drifted from events/sale-feed"
        );
        let req = feed_request(name, &body(name), Some("t=1,v1=00".into()));
        assert_eq!(req.method(), "POST");
        assert_eq!(req.uri().path(), "/webhooks/sale");
        assert_eq!(req.headers()["sale-source"], FEED_SOURCE);
    }
}

#[tokio::test]
async fn every_sample_is_accepted_and_reaches_the_engine() {
    let (deps, sink) = feed_deps(NOW);
    for name in FEED_EVENTS {
        let a = send(&deps, signed_feed(name, FEED_SECRET, NOW - 5)).await;
        assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.json);
        assert_eq!(a.json["received"], true);
    }
    let calls = sink.calls();
    // The sample sale has no click id: no binding, straight to the booking.
    let Call::InvoicePaid(inv) = &calls[0] else {
        panic!("{calls:?}")
    };
    assert_eq!(inv.source, "feed:billing");
    assert_eq!(inv.event_id, "evt_feed_1001_sale");
    assert_eq!(inv.facts.invoice_id, "billing:1001");
    assert_eq!(inv.subscription_id.as_deref(), Some("sub_demo1"));
    let kinds: Vec<_> = calls[1..]
        .iter()
        .map(|c| match c {
            Call::MoneyBack(m) => {
                assert_eq!(m.charge_key, "billing:1001");
                match &m.fact {
                    ChargeFact::Refund(o) => {
                        assert_eq!((o.amount, o.status), (5000, RefundStatus::Succeeded));
                        "refund"
                    }
                    ChargeFact::Dispute(o) if o.status == DisputeStatus::Won => "won",
                    ChargeFact::Dispute(o) => {
                        assert_eq!((o.id.as_str(), o.amount), ("cb_1001", 8400));
                        "chargeback"
                    }
                    ChargeFact::Charge { .. } => "charge",
                }
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(kinds, vec!["refund", "chargeback", "won"]);
}

#[tokio::test]
async fn a_click_id_binds_before_the_sale_books() {
    let (deps, sink) = feed_deps(NOW);
    let mut b = feed_body("sale");
    b["click_id"] = "ck_from_t_js".into();
    let text = b.to_string();
    let req = feed_request(
        "sale",
        &text,
        Some(sign_header(FEED_SECRET, NOW, text.as_bytes())),
    );
    let a = send(&deps, req).await;
    assert_eq!(a.json["outcome"], "booked", "{}", a.json);
    assert!(
        a.json["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("click id: bound"),
        "{}",
        a.json
    );
    let calls = sink.calls();
    let Call::Bind(bind) = &calls[0] else {
        panic!("{calls:?}")
    };
    assert_eq!(bind.source, BindSource::ClickId("ck_from_t_js".into()));
    assert_eq!(bind.customer_key, "cus_demo1");
    assert_eq!(bind.email.as_deref(), Some("carol@example.com"));
    assert_eq!(bind.source_event, "feed:billing:evt_feed_1001_sale");
    // At the sale's own business time, not the delivery's.
    assert_eq!(bind.at_ms, 1_741_000_093_000);
    assert!(matches!(&calls[1], Call::InvoicePaid(_)));
}

#[tokio::test]
async fn signature_cases_like_stripes() {
    let (deps, sink) = feed_deps(NOW);
    let b = body("sale");
    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing"),
        (Some("v1=abc".into()), "malformed"),
        (Some(format!("t={NOW}")), "no v1"),
        (
            Some(sign_header("whsec_someone_else", NOW, b.as_bytes())),
            "no match",
        ),
        // The Stripe endpoint's secret does not sign feed events.
        (Some(sign_header(SECRET, NOW, b.as_bytes())), "no match"),
        (
            Some(sign_header(FEED_SECRET, NOW - 301, b.as_bytes())),
            "outside tolerance (old)",
        ),
        (
            Some(sign_header(FEED_SECRET, NOW + 301, b.as_bytes())),
            "outside tolerance (future)",
        ),
        // A signature over another body.
        (
            Some(sign_header(FEED_SECRET, NOW, body("refund").as_bytes())),
            "another body",
        ),
    ];
    for (sig, why) in cases {
        let a = send(&deps, feed_request("sale", &b, sig)).await;
        assert_problem(&a, 400, "sale-signature-invalid", "Sale-Signature");
        assert!(a.json["detail"].is_string(), "{why}");
    }
    assert!(sink.calls().is_empty(), "nothing reaches the engine");

    // Accepted: the edges of the tolerance, the previous secret, several v1 (rotation).
    for t in [NOW - 300, NOW + 300] {
        let a = send(
            &deps,
            feed_request("sale", &b, Some(sign_header(FEED_SECRET, t, b.as_bytes()))),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    }
    let old = sign_header(OLD_FEED_SECRET, NOW, b.as_bytes());
    assert_eq!(
        send(&deps, feed_request("sale", &b, Some(old)))
            .await
            .status,
        StatusCode::OK
    );
    let rotating = format!(
        "t={NOW},v1={},v1={},v0=ignored",
        sign_hex("whsec_not_ours", NOW, b.as_bytes()),
        sign_hex(FEED_SECRET, NOW, b.as_bytes())
    );
    assert_eq!(
        send(&deps, feed_request("sale", &b, Some(rotating)))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn the_source_header_picks_the_secret() {
    let (deps, sink) = feed_deps(NOW);
    let b = body("sale");
    let sig = sign_header(FEED_SECRET, NOW, b.as_bytes());
    for source in [None, Some("shop"), Some("")] {
        let mut ev = event_json("feed.sale");
        let h = ev["headers"].as_object_mut().expect("headers");
        h.insert("sale-signature".into(), sig.clone().into());
        match source {
            None => {
                h.remove("sale-source");
            }
            Some(s) => {
                h.insert("sale-source".into(), s.into());
            }
        }
        let a = send(&deps, testkit::events::http_request(&ev)).await;
        assert_problem(&a, 400, "unknown-sale-source", "Sale-Source");
    }
    // No source configured at all: every request is refused the same way.
    let (mut none, _) = feed_deps(NOW);
    none.feed = sale_webhook::FeedSources::none();
    let a = send(&none, feed_request("sale", &b, Some(sig))).await;
    assert_problem(&a, 400, "unknown-sale-source", "Sale-Source");
    assert!(sink.calls().is_empty());
}

#[tokio::test]
async fn a_wrong_field_is_named_and_nothing_is_written() {
    let (deps, sink) = feed_deps(NOW);
    let mut cases: Vec<(String, u16, &str, &str)> = vec![];
    let mut e = feed_body("sale");
    e["lines"][0]["amount"] = "99.00".into();
    cases.push((e.to_string(), 422, "invalid-sale-event", "lines[0].amount"));
    let mut e = feed_body("sale");
    e["customer"]
        .as_object_mut()
        .expect("customer")
        .remove("key");
    cases.push((e.to_string(), 422, "invalid-sale-event", "customer.key"));
    let mut e = feed_body("sale");
    e["clickid"] = "x".into();
    cases.push((e.to_string(), 422, "invalid-sale-event", "clickid"));
    let mut e = feed_body("refund");
    e.as_object_mut().expect("refund").remove("amount");
    cases.push((e.to_string(), 422, "invalid-sale-event", "amount"));
    let mut e = feed_body("chargeback");
    e["occurred_at"] = "20 April".into();
    cases.push((e.to_string(), 422, "invalid-sale-event", "occurred_at"));
    cases.push((
        "{\"id\": \"evt_1\",".into(),
        400,
        "malformed-sale-event",
        ".",
    ));
    for (text, status, kind, field) in cases {
        let req = feed_request(
            "sale",
            &text,
            Some(sign_header(FEED_SECRET, NOW, text.as_bytes())),
        );
        let a = send(&deps, req).await;
        assert_problem(&a, status, kind, field);
    }
    assert!(sink.calls().is_empty(), "{:?}", sink.calls());
}

#[tokio::test]
async fn failures_retry_or_become_needs_attention_records_of_the_source() {
    let (deps, sink) = feed_deps(NOW);
    sink.fail(SinkError::Retryable("throttled".into()));
    let a = send(&deps, signed_feed("refund", FEED_SECRET, NOW)).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", a.json);

    let (deps, sink) = feed_deps(NOW);
    sink.fail(SinkError::Permanent("a bug of ours".into()));
    let a = send(&deps, signed_feed("refund", FEED_SECRET, NOW)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.json["outcome"], "needs_attention", "{}", a.json);
    let parked: Vec<_> = sink
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::NeedsAttention { id, reason_code } => Some((id, reason_code)),
            _ => None,
        })
        .collect();
    assert_eq!(
        parked,
        vec![(
            "feed:billing:evt_feed_1001_refund_1".to_string(),
            "permanent-failure".to_string()
        )]
    );
}

#[tokio::test]
async fn only_post() {
    let (deps, _) = feed_deps(NOW);
    let mut ev = event_json("feed.sale");
    ev["requestContext"]["http"]["method"] = "GET".into();
    let a = send(&deps, testkit::events::http_request(&ev)).await;
    assert_eq!(a.status, StatusCode::METHOD_NOT_ALLOWED);
}
