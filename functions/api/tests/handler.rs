//! The handler with doubles behind `LeadTracker` (no AWS): the sample events' shape, our own
//! failures, and what reaches the engine.

use std::sync::Mutex;

use api::{Deps, LeadTracker};
use engine::attribution::{BindOutcome, BindRequest, BindSource};
use engine::EngineError;
use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use serde_json::json;
use storage::StoreError;
use testkit::api::*;

/// Knows one key (`DEMO_KEY` → `demo`), records bind requests, answers with `outcome`.
struct Double {
    key_error: Option<fn() -> EngineError>,
    outcome: fn() -> Result<BindOutcome, EngineError>,
    seen: Mutex<Vec<BindRequest>>,
}

impl Double {
    fn answering(outcome: fn() -> Result<BindOutcome, EngineError>) -> Deps<Double> {
        Deps {
            tracker: Double {
                key_error: None,
                outcome,
                seen: Mutex::new(vec![]),
            },
        }
    }
    fn seen(&self) -> Vec<BindRequest> {
        self.seen.lock().expect("lock").clone()
    }
}

#[async_trait::async_trait]
impl LeadTracker for Double {
    async fn program_for_key(&self, presented: &str) -> Result<Option<String>, EngineError> {
        if let Some(e) = self.key_error {
            return Err(e());
        }
        Ok((presented == DEMO_KEY).then(|| "demo".to_string()))
    }
    async fn bind(&self, req: BindRequest) -> Result<BindOutcome, EngineError> {
        self.seen.lock().expect("lock").push(req);
        (self.outcome)()
    }
}

fn bound() -> Result<BindOutcome, EngineError> {
    Ok(BindOutcome::Bound {
        program_id: "demo".into(),
        partner_id: "alice".into(),
    })
}

#[test]
fn the_sample_events_have_the_http_api_shape() {
    for name in [
        "track-lead-click.json",
        "track-lead-code.json",
        "track-lead-bad-email.json",
    ] {
        let ev = event(name);
        let typed: ApiGatewayV2httpRequest =
            serde_json::from_value(ev.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(typed.version.as_deref(), Some("2.0"), "{name}");
        assert_eq!(
            typed.route_key.as_deref(),
            Some("POST /v1/track/lead"),
            "{name}"
        );
        assert_eq!(typed.raw_path.as_deref(), Some("/v1/track/lead"), "{name}");
        assert_eq!(typed.raw_query_string.as_deref(), Some(""), "{name}");
        assert_eq!(typed.request_context.http.method.as_str(), "POST", "{name}");
        assert_eq!(
            typed.request_context.route_key.as_deref(),
            Some("POST /v1/track/lead"),
            "{name}"
        );
        assert_eq!(
            typed.request_context.stage.as_deref(),
            Some("$default"),
            "{name}"
        );
        assert_eq!(typed.request_context.time_epoch, T0, "{name}");
        assert!(typed.request_context.request_id.is_some(), "{name}");
        assert!(!typed.is_base64_encoded, "{name}");
        for (k, _) in typed.headers.iter() {
            assert_eq!(
                k.as_str(),
                k.as_str().to_ascii_lowercase(),
                "{name}: header names are lower-case"
            );
        }
        let body = typed.body.as_deref().expect("body");
        assert_eq!(
            ev["headers"]["content-length"],
            json!(body.len().to_string()),
            "{name}"
        );
        let parsed: api::track_lead::TrackLeadBody =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(parsed.customer_key.is_some(), "{name}");
        // lambda_http reads it the same way
        let req = request(&ev);
        let info = api::request::RequestInfo::from_request(&req);
        assert_eq!(
            (info.at_ms, info.path.as_str()),
            (Some(T0), "/v1/track/lead"),
            "{name}"
        );
        assert_eq!(
            api::request::presented_tracking_key(&req).as_deref(),
            Some(DEMO_KEY),
            "{name}"
        );
    }
    // the click event's id is genuine, for link alice, two days before the request
    let body: serde_json::Value = serde_json::from_str(
        event("track-lead-click.json")["body"]
            .as_str()
            .expect("body"),
    )
    .expect("json");
    let claims = keys()
        .verify_click_id(body["click_id"].as_str().expect("click_id"))
        .expect("verifies with the test key");
    assert_eq!(
        (claims.link_code(), claims.at_ms),
        (Some("alice"), T0 - 2 * DAY)
    );
}

#[tokio::test]
async fn the_engine_gets_the_keys_program_and_the_business_time() {
    let deps = Double::answering(bound);
    let a = call(&deps, &event("track-lead-code.json")).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let seen = deps.tracker.seen();
    assert_eq!(
        seen,
        vec![BindRequest {
            program_id: Some("demo".into()),
            customer_key: "cus_QdT6Hn3mMy0bCd".into(),
            email: Some("erin@customer.example".into()),
            source: BindSource::Code("alice".into()),
            at_ms: T0,
            source_event: "api:YkR8tk3QIAMEc4R=".into(),
        }]
    );
    // strings are trimmed, blanks are absent
    let ev = lead(
        &json!({"click_id": " c1 ", "code": "", "customer_key": " cus_2 ", "email": " "}),
        Some(DEMO_KEY),
    );
    let a = call(&deps, &ev).await;
    assert_eq!(a.body["customer_key"], "cus_2");
    let last = deps.tracker.seen().pop().expect("bind");
    assert_eq!(
        (last.source, last.customer_key, last.email),
        (BindSource::ClickId("c1".into()), "cus_2".into(), None)
    );
}

#[tokio::test]
async fn storage_trouble_is_a_503_with_retry_after() {
    let deps =
        Double::answering(|| Err(EngineError::Store(StoreError::Contention { attempts: 8 })));
    let a = call(&deps, &event("track-lead-code.json")).await;
    assert_eq!(
        (a.status, a.problem()),
        (503, "temporarily-unavailable".to_string())
    );
    assert_eq!(a.header("retry-after"), Some("1"));
    assert_eq!(a.body["request_id"], "YkR8tk3QIAMEc4R=");
    // also when the key lookup fails
    let deps = Deps {
        tracker: Double {
            key_error: Some(|| EngineError::Store(StoreError::Contention { attempts: 8 })),
            outcome: bound,
            seen: Mutex::new(vec![]),
        },
    };
    let a = call(&deps, &event("track-lead-code.json")).await;
    assert_eq!(
        (a.status, a.problem()),
        (503, "temporarily-unavailable".to_string())
    );
    assert!(deps.tracker.seen().is_empty());
}

#[tokio::test]
async fn other_failures_are_a_500_without_internals() {
    let deps = Double::answering(|| {
        Err(EngineError::Inconsistent(
            "binding PROGRAM#demo has version -3".into(),
        ))
    });
    let a = call(&deps, &event("track-lead-code.json")).await;
    assert_eq!((a.status, a.problem()), (500, "internal-error".to_string()));
    assert!(a.header("retry-after").is_none());
    let text = a.body.to_string();
    assert!(
        !text.contains("PROGRAM#") && !text.contains("version"),
        "{text}"
    );
}

#[tokio::test]
async fn no_business_time_is_our_failure_and_binds_nothing() {
    let deps = Double::answering(bound);
    let mut ev = event("track-lead-code.json");
    ev["requestContext"]["timeEpoch"] = 0.into();
    let a = call(&deps, &ev).await;
    assert_eq!((a.status, a.problem()), (500, "internal-error".to_string()));
    assert!(deps.tracker.seen().is_empty());
}

#[tokio::test]
async fn a_base64_body_is_decoded() {
    use base64::Engine;
    let deps = Double::answering(bound);
    let mut ev = event("track-lead-code.json");
    let body = ev["body"].as_str().expect("body").to_string();
    ev["body"] = base64::engine::general_purpose::STANDARD
        .encode(body)
        .into();
    ev["isBase64Encoded"] = true.into();
    assert_eq!(call(&deps, &ev).await.status, 201);
}
