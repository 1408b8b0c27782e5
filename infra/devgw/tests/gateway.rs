//! End to end: the real `bench-hello` echo function run by devgw through its Runtime API, reached
//! through the invoke API, an HTTP API route and a schedule.

mod common;

use std::time::Duration;

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use common::{bin_dir, hello_binary, request, temp_dir};
use devgw::gateway::{self, GatewayConfig, RunningGateway};

const TEMPLATE: &str = r#"
Globals:
  Function:
    Timeout: 5
Resources:
  EchoFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: bench-hello
    Properties:
      Environment:
        Variables:
          GREETING: hello
      Events:
        Get:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /echo/{name}
        Any:
          Type: HttpApi
          Properties:
            Method: ANY
            Path: /any/{proxy+}
        Friday:
          Type: Schedule
          Properties:
            Schedule: cron(0 9 ? * FRI *)
  MissingFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: devgw-test-no-such-binary
    Properties:
      Events:
        Get:
          Type: HttpApi
          Properties:
            Method: GET
            Path: /missing
"#;

async fn start() -> RunningGateway {
    let hello = hello_binary();
    let dir = temp_dir("gw");
    let template = dir.join("template.yaml");
    std::fs::write(&template, TEMPLATE).expect("write template");
    let running = gateway::start(GatewayConfig {
        root: dir.clone(),
        template,
        functions_file: None,
        bin_dir: hello
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(bin_dir),
        listen: "127.0.0.1:0".into(),
        auto_schedules: false,
        sqs: false,
        queue_prefix: "unused".into(),
        concurrency: usize::from(gateway::DEFAULT_CONCURRENCY),
    })
    .await
    .expect("gateway starts");
    // The template has been read.
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        running.wait_ready(Duration::from_secs(30)).await,
        "functions start"
    );
    running
}

#[tokio::test]
async fn invoke_http_schedule_and_restart() {
    let gw = start().await;
    let addr = gw.addr();

    // invoke API: the raw event comes back
    let r = request(
        addr,
        "POST",
        "/2015-03-31/functions/bench-hello/invocations",
        &[],
        br#"{"hello":"world"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), serde_json::json!({"hello": "world"}));
    assert_eq!(r.header("x-amz-executed-version"), Some("$LATEST"));
    assert!(r.header("x-amz-function-error").is_none());

    // by ARN with a qualifier, as SDKs may send it
    let r = request(
        addr,
        "POST",
        "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Abench-hello%3A%24LATEST/invocations",
        &[],
        b"[1,2]",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"[1,2]");

    // asynchronous invocation
    let r = request(
        addr,
        "POST",
        "/2015-03-31/functions/bench-hello/invocations",
        &[("X-Amz-Invocation-Type", "Event")],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 202);

    let r = request(
        addr,
        "POST",
        "/2015-03-31/functions/nope/invocations",
        &[],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("x-amzn-errortype"),
        Some("ResourceNotFoundException")
    );

    // a function whose binary is not built answers at once
    let r = request(
        addr,
        "POST",
        "/2015-03-31/functions/devgw-test-no-such-binary/invocations",
        &[],
        b"{}",
    )
    .await;
    assert_eq!(r.status, 502);
    let r = request(addr, "GET", "/missing", &[], b"").await;
    assert_eq!(r.status, 503);

    // HTTP API route: the echo returns the v2 event, which API Gateway serves as JSON
    let r = request(
        addr,
        "GET",
        "/echo/al%20ice?utm=x&a=1&a=2",
        &[("User-Agent", "devgw-test"), ("Cookie", "a=1; b=2")],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let ev = r.json();
    assert_eq!(ev["version"], "2.0");
    assert_eq!(ev["routeKey"], "GET /echo/{name}");
    assert_eq!(ev["rawPath"], "/echo/al%20ice");
    assert_eq!(ev["rawQueryString"], "utm=x&a=1&a=2");
    assert_eq!(ev["pathParameters"]["name"], "al ice");
    assert_eq!(ev["queryStringParameters"]["a"], "1,2");
    assert_eq!(ev["cookies"], serde_json::json!(["a=1", "b=2"]));
    assert_eq!(ev["headers"]["user-agent"], "devgw-test");
    assert_eq!(ev["requestContext"]["http"]["sourceIp"], "127.0.0.1");
    assert_eq!(ev["requestContext"]["http"]["userAgent"], "devgw-test");
    assert_eq!(ev["requestContext"]["stage"], "$default");
    assert!(ev["requestContext"]["timeEpoch"]
        .as_i64()
        .is_some_and(|t| t > 1_700_000_000_000));
    // the event the function received reads as an HTTP API request
    let typed: ApiGatewayV2httpRequest =
        serde_json::from_slice(&r.body).expect("an API Gateway v2 request");
    assert_eq!(typed.route_key.as_deref(), Some("GET /echo/{name}"));
    assert_eq!(typed.request_context.http.method, "GET");
    assert_eq!(typed.query_string_parameters.all("a"), Some(vec!["1", "2"]));
    assert_eq!(
        typed.path_parameters.get("name").map(String::as_str),
        Some("al ice")
    );

    let r = request(
        addr,
        "POST",
        "/any/a/b",
        &[("Content-Type", "application/json")],
        br#"{"k":"v"}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let ev = r.json();
    assert_eq!(ev["routeKey"], "ANY /any/{proxy+}");
    assert_eq!(ev["pathParameters"]["proxy"], "a/b");
    assert_eq!(ev["body"], r#"{"k":"v"}"#);
    assert_eq!(ev["isBase64Encoded"], false);

    let r = request(addr, "GET", "/nothing/here", &[], b"").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.json(), serde_json::json!({"message": "Not Found"}));

    // a schedule fired on demand "on Friday"
    let r = request(
        addr,
        "POST",
        "/dev/schedule/bench-hello?time=2026-03-06T09:00:00Z",
        &[],
        b"",
    )
    .await;
    assert_eq!(r.status, 200);
    let ev = r.json();
    assert_eq!(ev["detail-type"], "Scheduled Event");
    assert_eq!(ev["source"], "aws.events");
    assert_eq!(ev["time"], "2026-03-06T09:00:00Z");
    assert_eq!(
        ev["resources"][0],
        "arn:aws:events:us-east-1:123456789012:rule/EchoFunctionFriday"
    );
    let typed: EventBridgeEvent = serde_json::from_value(ev).expect("an EventBridge event");
    assert_eq!(typed.detail_type, "Scheduled Event");
    assert_eq!(
        typed.time.map(|t| t.to_rfc3339()),
        Some("2026-03-06T09:00:00+00:00".to_string())
    );
    let r = request(addr, "POST", "/dev/schedule/Friday", &[], b"").await;
    assert_eq!(r.status, 200, "by event name");
    let r = request(addr, "POST", "/dev/schedule/nope", &[], b"").await;
    assert_eq!(r.status, 404);

    // listing
    let r = request(addr, "GET", "/dev/functions", &[], b"").await;
    assert_eq!(r.status, 200);
    let list = r.json();
    let echo = list["functions"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["name"] == "bench-hello"))
        .expect("echo listed")
        .clone();
    assert_eq!(echo["status"]["state"], "ready");
    assert_eq!(
        echo["routes"],
        serde_json::json!(["GET /echo/{name}", "ANY /any/{proxy+}"])
    );
    assert_eq!(echo["schedules"][0]["firing"], "manual");
    assert!(echo["schedules"][0]["next"].as_str().is_some());
    let missing = list["functions"]
        .as_array()
        .and_then(|a| a.iter().find(|f| f["name"] == "devgw-test-no-such-binary"))
        .expect("missing listed");
    assert_eq!(missing["status"]["state"], "missing");

    // a crashed process is restarted and serves again
    let pid = echo["pid"].as_u64().expect("pid");
    assert!(pid > 0);
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let mut restarted = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = request(addr, "GET", "/dev/functions", &[], b"").await;
        let list = r.json();
        let now = list["functions"]
            .as_array()
            .and_then(|a| a.iter().find(|f| f["name"] == "bench-hello"))
            .map(|f| (f["pid"].as_u64().unwrap_or(0), f["status"]["state"].clone()));
        if let Some((p, state)) = now {
            if p != 0 && p != pid && state == "ready" {
                restarted = true;
                break;
            }
        }
    }
    assert!(restarted, "the function came back after being killed");
    let r = request(
        addr,
        "POST",
        "/2015-03-31/functions/bench-hello/invocations",
        &[],
        b"{\"again\":true}",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"{\"again\":true}");

    let r = request(addr, "GET", "/dev/ready", &[], b"").await;
    assert_eq!(r.status, 200);
    gw.stop().await;
}

#[tokio::test]
async fn bench_init_times_the_hello_binary() {
    let hello = hello_binary();
    let r = devgw::bench::run(&devgw::bench::BenchOptions {
        binary: hello,
        name: "bench-hello".into(),
        runs: 3,
        warmup: 0,
        memory_mb: 128,
        env: vec![],
        event: Some(bytes::Bytes::from_static(b"{\"ping\":1}")),
        timeout: Duration::from_secs(10),
    })
    .await
    .expect("bench runs");
    assert_eq!(r.init.runs, 3);
    assert!(r.init.min > Duration::ZERO && r.init.min <= r.init.p50 && r.init.p50 <= r.init.max);
    assert!(r.size_bytes > 0);
    assert_eq!(
        r.last_outcome,
        Some(devgw::runtime::Outcome::Response(
            bytes::Bytes::from_static(b"{\"ping\":1}")
        ))
    );
    assert!(r.first_invoke.is_some());
}
