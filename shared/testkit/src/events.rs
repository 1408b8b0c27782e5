//! The sample events of `events/`, read as `aws_lambda_events` types.

use std::path::PathBuf;

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::request::LambdaRequest;
use lambda_http::Request;
use serde_json::Value;

/// A path relative to the repository root.
pub fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

/// `events/{rel}` as JSON (tests edit it before turning it into a request).
pub fn sample(rel: &str) -> Value {
    let path = repo_path(&format!("events/{rel}"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// An API Gateway HTTP API (payload format 2.0) event, typed: fails when `ev` is not one.
pub fn http_api_event(ev: &Value) -> ApiGatewayV2httpRequest {
    serde_json::from_value(ev.clone())
        .unwrap_or_else(|e| panic!("not an HTTP API payload 2.0 event ({e}): {ev}"))
}

/// The request lambda_http hands the function for this HTTP API event.
pub fn http_request(ev: &Value) -> Request {
    LambdaRequest::ApiGatewayV2(http_api_event(ev)).into()
}
