//! Reading an API Gateway HTTP API (payload 2.0) request: context, credentials, JSON body.
//! Shared by every route.

use lambda_http::http::header::{AUTHORIZATION, CONTENT_TYPE};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use serde::de::DeserializeOwned;

use crate::problem::{Problem, ProblemKind};

/// Largest accepted body, in bytes (after base64 decoding).
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// Alternative header carrying a tracking key (for clients that cannot set `Authorization`).
pub const TRACKING_KEY_HEADER: &str = "x-tracking-key";
/// Longest credential looked up; longer ones are unknown without a read.
pub const MAX_KEY_LEN: usize = 512;

/// What the handler uses from the request context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// API Gateway's request id (`requestContext.requestId`).
    pub request_id: Option<String>,
    /// Business time: `requestContext.timeEpoch` (epoch ms), when present and positive.
    pub at_ms: Option<i64>,
    /// The path the route is matched on: `rawPath` without a named stage's prefix.
    pub path: String,
}

impl RequestInfo {
    pub fn from_request(req: &Request) -> Self {
        let (request_id, at_ms, stage) = match req.request_context_ref() {
            Some(RequestContext::ApiGatewayV2(ctx)) => (
                ctx.request_id.clone().filter(|r| !r.is_empty()),
                Some(ctx.time_epoch).filter(|t| *t > 0),
                ctx.stage.clone(),
            ),
            _ => (None, None, None),
        };
        let raw = req.raw_http_path();
        let raw = if raw.is_empty() {
            req.uri().path()
        } else {
            raw
        };
        let path = match stage.as_deref() {
            Some(s) if !s.is_empty() && s != "$default" => {
                let prefix = format!("/{s}");
                match raw.strip_prefix(&prefix) {
                    Some(rest) if rest.starts_with('/') => rest,
                    _ => raw,
                }
            }
            _ => raw,
        };
        RequestInfo {
            request_id,
            at_ms,
            path: path.to_string(),
        }
    }
}

/// The credential presented: `Authorization: Bearer <key>`, else `X-Tracking-Key: <key>`.
/// `None` when neither carries a non-blank value.
pub fn presented_tracking_key(req: &Request) -> Option<String> {
    let header = |name| {
        req.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::trim)
            .find(|v| !v.is_empty())
    };
    let bearer = header(AUTHORIZATION.as_str()).and_then(|v| {
        let (scheme, rest) = v.split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| rest.trim())
            .filter(|k| !k.is_empty())
    });
    bearer
        .or_else(|| header(TRACKING_KEY_HEADER))
        .map(str::to_string)
}

/// Is the declared media type JSON (`application/json`, parameters allowed)?
pub fn is_json(req: &Request) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// The body as `T`, read from a JSON object: size, media type, syntax, then shape (`T` refuses
/// unknown fields with `#[serde(deny_unknown_fields)]`).
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, Problem> {
    let body: &[u8] = req.body().as_ref();
    if body.len() > MAX_BODY_BYTES {
        return Err(Problem::new(
            ProblemKind::PayloadTooLarge,
            format!(
                "the body is {} bytes; at most {MAX_BODY_BYTES} are accepted",
                body.len()
            ),
        ));
    }
    if !is_json(req) {
        return Err(Problem::new(
            ProblemKind::UnsupportedMediaType,
            "send the body as application/json",
        ));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::new(
            ProblemKind::MalformedJson,
            "the body is empty",
        ));
    }
    // Syntax first (malformed), then shape (invalid): an object, with `T`'s fields only.
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| Problem::new(ProblemKind::MalformedJson, e.to_string()))?;
    if !value.is_object() {
        return Err(Problem::new(
            ProblemKind::InvalidRequest,
            "the body must be a JSON object",
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| Problem::new(ProblemKind::InvalidRequest, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::http;
    use lambda_http::Body;

    fn req(headers: &[(&str, &str)], body: &str) -> Request {
        let mut b = http::Request::builder()
            .method("POST")
            .uri("/v1/track/lead");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Body::from(body.to_string())).expect("request")
    }

    #[test]
    fn credentials() {
        let k = |h: &[(&str, &str)]| presented_tracking_key(&req(h, ""));
        assert_eq!(k(&[("authorization", "Bearer abc")]), Some("abc".into()));
        assert_eq!(k(&[("authorization", "bearer  abc ")]), Some("abc".into()));
        assert_eq!(k(&[("x-tracking-key", "xyz")]), Some("xyz".into()));
        assert_eq!(
            k(&[("authorization", "Bearer abc"), ("x-tracking-key", "xyz")]),
            Some("abc".into())
        );
        assert_eq!(
            k(&[("authorization", "Basic dTpw"), ("x-tracking-key", "xyz")]),
            Some("xyz".into())
        );
        assert_eq!(k(&[("authorization", "Basic dTpw")]), None);
        assert_eq!(k(&[("authorization", "Bearer ")]), None);
        assert_eq!(k(&[("x-tracking-key", "  ")]), None);
        assert_eq!(k(&[]), None);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        a: Option<String>,
    }

    #[test]
    fn bodies() {
        let json = [("content-type", "application/json; charset=utf-8")];
        let kind = |h: &[(&str, &str)], b: &str| json_body::<T>(&req(h, b)).map_err(|p| p.kind);
        assert!(kind(&json, r#"{"a":"x"}"#).is_ok());
        assert_eq!(
            kind(&[("content-type", "text/plain")], "{}").unwrap_err(),
            ProblemKind::UnsupportedMediaType
        );
        assert_eq!(
            kind(&[], "{}").unwrap_err(),
            ProblemKind::UnsupportedMediaType
        );
        assert_eq!(kind(&json, "").unwrap_err(), ProblemKind::MalformedJson);
        assert_eq!(kind(&json, "{").unwrap_err(), ProblemKind::MalformedJson);
        assert_eq!(kind(&json, "nope").unwrap_err(), ProblemKind::MalformedJson);
        assert_eq!(
            kind(&json, r#"{"b":1}"#).unwrap_err(),
            ProblemKind::InvalidRequest
        );
        assert_eq!(
            kind(&json, r#"{"a":1}"#).unwrap_err(),
            ProblemKind::InvalidRequest
        );
        assert_eq!(kind(&json, "[]").unwrap_err(), ProblemKind::InvalidRequest);
        assert_eq!(
            kind(&json, r#"["x"]"#).unwrap_err(),
            ProblemKind::InvalidRequest
        );
        assert_eq!(
            kind(&json, "null").unwrap_err(),
            ProblemKind::InvalidRequest
        );
        assert_eq!(
            kind(&json, r#"{"a":"x"} {}"#).unwrap_err(),
            ProblemKind::MalformedJson
        );
        let big = format!(r#"{{"a":"{}"}}"#, "x".repeat(MAX_BODY_BYTES));
        assert_eq!(kind(&json, &big).unwrap_err(), ProblemKind::PayloadTooLarge);
        // too large wins over a wrong media type
        assert_eq!(kind(&[], &big).unwrap_err(), ProblemKind::PayloadTooLarge);
    }
}
