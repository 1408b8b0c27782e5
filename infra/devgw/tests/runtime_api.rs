//! The Runtime API, driven by hand as a runtime client would.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::request;
use devgw::runtime::{self, FunctionChannel, Generation, Outcome};

const NEXT: &str = "/2018-06-01/runtime/invocation/next";

#[tokio::test]
async fn next_response_error_and_timeout() {
    let chan = FunctionChannel::new("fake", Duration::from_millis(400));
    let gen = Generation::new();
    let server = runtime::start_server(chan.clone(), gen.clone())
        .await
        .expect("runtime server");
    let addr = server.addr;

    // 1. a response
    let c = chan.clone();
    let invoke = tokio::spawn(async move { c.invoke(Bytes::from_static(b"{\"x\":1}")).await });
    let next = request(addr, "GET", NEXT, &[], b"").await;
    assert_eq!(next.status, 200);
    assert_eq!(next.body, b"{\"x\":1}");
    let id = next
        .header("lambda-runtime-aws-request-id")
        .expect("request id")
        .to_string();
    let deadline: u128 = next
        .header("lambda-runtime-deadline-ms")
        .and_then(|d| d.parse().ok())
        .expect("deadline");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    assert!(deadline > now && deadline <= now + 400);
    assert_eq!(
        next.header("lambda-runtime-invoked-function-arn"),
        Some("arn:aws:lambda:us-east-1:123456789012:function:fake")
    );
    assert!(next
        .header("lambda-runtime-trace-id")
        .is_some_and(|t| t.starts_with("Root=1-")));
    assert!(gen.first_next().is_some());
    let done = request(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/response"),
        &[],
        b"{\"ok\":true}",
    )
    .await;
    assert_eq!(done.status, 202);
    let outcome = invoke.await.expect("join").expect("invoked");
    assert_eq!(
        outcome,
        Outcome::Response(Bytes::from_static(b"{\"ok\":true}"))
    );

    // an unknown request id
    let bad = request(
        addr,
        "POST",
        "/2018-06-01/runtime/invocation/nope/response",
        &[],
        b"{}",
    )
    .await;
    assert_eq!(bad.status, 400);

    // 2. an error
    let c = chan.clone();
    let invoke = tokio::spawn(async move { c.invoke(Bytes::from_static(b"{}")).await });
    let next = request(addr, "GET", NEXT, &[], b"").await;
    let id = next
        .header("lambda-runtime-aws-request-id")
        .expect("request id")
        .to_string();
    let err = request(
        addr,
        "POST",
        &format!("/2018-06-01/runtime/invocation/{id}/error"),
        &[("Lambda-Runtime-Function-Error-Type", "MyError")],
        b"{\"errorType\":\"MyError\",\"errorMessage\":\"boom\"}",
    )
    .await;
    assert_eq!(err.status, 202);
    match invoke.await.expect("join").expect("invoked") {
        Outcome::Error { error_type, body } => {
            assert_eq!(error_type, "MyError");
            assert!(String::from_utf8_lossy(&body).contains("boom"));
        }
        other => panic!("expected an error, got {other:?}"),
    }

    // 3. no answer within the timeout
    let c = chan.clone();
    let invoke = tokio::spawn(async move { c.invoke(Bytes::from_static(b"{}")).await });
    let _ = request(addr, "GET", NEXT, &[], b"").await;
    match invoke.await.expect("join").expect("invoked") {
        Outcome::Error { error_type, .. } => assert_eq!(error_type, "Sandbox.Timedout"),
        other => panic!("expected a timeout, got {other:?}"),
    }

    // init error is recorded
    let init = request(
        addr,
        "POST",
        "/2018-06-01/runtime/init/error",
        &[("Lambda-Runtime-Function-Error-Type", "Runtime.ConfigError")],
        b"{\"errorMessage\":\"TABLE_NAME is not set\"}",
    )
    .await;
    assert_eq!(init.status, 202);
    assert!(matches!(
        gen.init_error(),
        Some(Outcome::Error { ref error_type, .. }) if error_type == "Runtime.ConfigError"
    ));

    let unknown = request(addr, "GET", "/2018-06-01/runtime/other", &[], b"").await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn queued_invocations_fail_when_told() {
    let chan = FunctionChannel::new("fake", Duration::from_secs(5));
    let c = chan.clone();
    let invoke = tokio::spawn(async move { c.invoke(Bytes::from_static(b"{}")).await });
    // let the invocation reach the queue
    tokio::time::sleep(Duration::from_millis(50)).await;
    let n = chan
        .fail_queued(&Outcome::error("Runtime.InitError", "cannot start"))
        .await;
    assert_eq!(n, 1);
    assert!(invoke.await.expect("join").expect("invoked").is_error());
}
