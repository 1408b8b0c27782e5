//! API Gateway HTTP API (payload format 2.0): an HTTP request turned into the Lambda event, and
//! the function's response turned back into an HTTP response.

use std::collections::BTreeMap;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::routes::RouteMatch;
use crate::ACCOUNT_ID;

/// What the gateway knows of one incoming request.
#[derive(Debug, Clone)]
pub struct HttpRequestInfo<'a> {
    pub method: &'a str,
    /// Path as sent, percent-encoded.
    pub raw_path: &'a str,
    /// Query string as sent, without `?`.
    pub raw_query: &'a str,
    /// `HTTP/1.1`.
    pub protocol: &'a str,
    /// In arrival order, names in any case.
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    pub source_ip: String,
    /// Port the gateway listens on (for `x-forwarded-port`).
    pub port: u16,
    pub request_id: String,
    pub trace_id: String,
    pub now: DateTime<Utc>,
}

/// Whether a body of this content type is passed as text (otherwise base64).
fn is_text(content_type: Option<&str>) -> bool {
    let Some(ct) = content_type else {
        return true;
    };
    let ct = ct.to_ascii_lowercase();
    let essence = ct.split(';').next().unwrap_or("").trim();
    essence.starts_with("text/")
        || essence.ends_with("+json")
        || essence.ends_with("+xml")
        || matches!(
            essence,
            "application/json"
                | "application/xml"
                | "application/javascript"
                | "application/x-www-form-urlencoded"
                | "application/graphql"
                | ""
        )
}

/// The payload format 2.0 event for a matched request.
pub fn to_v2_event(req: &HttpRequestInfo<'_>, m: &RouteMatch) -> Value {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    let mut cookies: Vec<String> = vec![];
    for (name, value) in &req.headers {
        let name = name.to_ascii_lowercase();
        if name == "cookie" {
            cookies.extend(
                value
                    .split(';')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(str::to_string),
            );
            continue;
        }
        headers
            .entry(name)
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    headers
        .entry("x-forwarded-for".into())
        .or_insert_with(|| req.source_ip.clone());
    headers
        .entry("x-forwarded-proto".into())
        .or_insert_with(|| "http".into());
    headers
        .entry("x-forwarded-port".into())
        .or_insert_with(|| req.port.to_string());
    headers
        .entry("x-amzn-trace-id".into())
        .or_insert_with(|| req.trace_id.clone());

    let mut query: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(req.raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }

    let domain = headers
        .get("host")
        .cloned()
        .unwrap_or_else(|| format!("127.0.0.1:{}", req.port));
    let domain_prefix = domain.split('.').next().unwrap_or("").to_string();
    let user_agent = headers.get("user-agent").cloned().unwrap_or_default();

    let mut ev = Map::new();
    ev.insert("version".into(), json!("2.0"));
    ev.insert("routeKey".into(), json!(m.route_key));
    ev.insert("rawPath".into(), json!(req.raw_path));
    ev.insert("rawQueryString".into(), json!(req.raw_query));
    if !cookies.is_empty() {
        ev.insert("cookies".into(), json!(cookies));
    }
    ev.insert("headers".into(), json!(headers));
    if !query.is_empty() {
        ev.insert("queryStringParameters".into(), json!(query));
    }
    if !m.params.is_empty() {
        ev.insert("pathParameters".into(), json!(m.params));
    }
    ev.insert(
        "requestContext".into(),
        json!({
            "accountId": ACCOUNT_ID,
            "apiId": "devgw",
            "domainName": domain,
            "domainPrefix": domain_prefix,
            "http": {
                "method": req.method,
                "path": crate::routes::percent_decode(req.raw_path),
                "protocol": req.protocol,
                "sourceIp": req.source_ip,
                "userAgent": user_agent,
            },
            "requestId": req.request_id,
            "routeKey": m.route_key,
            "stage": "$default",
            "time": req.now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": req.now.timestamp_millis(),
        }),
    );
    if !req.body.is_empty() {
        let text = is_text(headers.get("content-type").map(String::as_str))
            .then(|| std::str::from_utf8(req.body).ok())
            .flatten();
        match text {
            Some(t) => {
                ev.insert("body".into(), json!(t));
                ev.insert("isBase64Encoded".into(), json!(false));
            }
            None => {
                ev.insert(
                    "body".into(),
                    json!(base64::engine::general_purpose::STANDARD.encode(req.body)),
                );
                ev.insert("isBase64Encoded".into(), json!(true));
            }
        }
    } else {
        ev.insert("isBase64Encoded".into(), json!(false));
    }
    Value::Object(ev)
}

/// An HTTP response to write back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponseParts {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponseParts {
    pub fn json(status: u16, body: &Value) -> Self {
        HttpResponseParts {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
        }
    }

    /// API Gateway's own error responses: `{"message": "..."}`.
    pub fn message(status: u16, message: &str) -> Self {
        Self::json(status, &json!({ "message": message }))
    }
}

fn header_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Interpret a function's response as payload format 2.0 does. `Err` is a malformed response
/// (API Gateway answers 502).
pub fn from_v2_response(payload: &[u8]) -> Result<HttpResponseParts, String> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| format!("response is not JSON: {e}"))?;
    let obj = match &value {
        Value::Object(o) if o.contains_key("statusCode") => o,
        // Valid JSON without a statusCode: 200, application/json, the response as the body.
        _ => {
            return Ok(HttpResponseParts {
                status: 200,
                headers: vec![("content-type".into(), "application/json".into())],
                body: payload.to_vec(),
            })
        }
    };
    let status = match obj.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .and_then(|s| u16::try_from(s).ok())
    .filter(|s| (100..=599).contains(s))
    .ok_or_else(|| "statusCode is not a valid HTTP status".to_string())?;
    let mut headers: Vec<(String, String)> = vec![];
    if let Some(Value::Object(h)) = obj.get("headers") {
        for (k, v) in h {
            headers.push((k.to_ascii_lowercase(), header_value(v)));
        }
    }
    if let Some(Value::Object(h)) = obj.get("multiValueHeaders") {
        for (k, vs) in h {
            let k = k.to_ascii_lowercase();
            if let Value::Array(vs) = vs {
                // multiValueHeaders replace a header of the same name.
                headers.retain(|(n, _)| *n != k);
                for v in vs {
                    headers.push((k.clone(), header_value(v)));
                }
            }
        }
    }
    if let Some(Value::Array(cookies)) = obj.get("cookies") {
        for c in cookies {
            headers.push(("set-cookie".into(), header_value(c)));
        }
    }
    let base64 = matches!(obj.get("isBase64Encoded"), Some(Value::Bool(true)));
    let body = match obj.get("body") {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) if base64 => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("body is not valid base64: {e}"))?,
        Some(Value::String(s)) => s.clone().into_bytes(),
        Some(other) => other.to_string().into_bytes(),
    };
    Ok(HttpResponseParts {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn request<'a>(body: &'a [u8], headers: Vec<(&str, &str)>) -> HttpRequestInfo<'a> {
        HttpRequestInfo {
            method: "GET",
            raw_path: "/r/alice/yt%2042",
            raw_query: "utm_source=x&a=1&a=2&q=hello+world",
            protocol: "HTTP/1.1",
            headers: headers
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            body,
            source_ip: "127.0.0.1".into(),
            port: 9000,
            request_id: "req-1".into(),
            trace_id: "Root=1-00000000-000000000000000000000000".into(),
            now: Utc
                .with_ymd_and_hms(2026, 3, 6, 9, 30, 0)
                .single()
                .expect("valid date"),
        }
    }

    fn matched() -> RouteMatch {
        RouteMatch {
            route_key: "GET /r/{code}/{sub_id}".into(),
            target: 0,
            params: [("code", "alice"), ("sub_id", "yt 42")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn request_becomes_a_v2_event() {
        let req = request(
            b"",
            vec![
                ("Host", "127.0.0.1:9000"),
                ("User-Agent", "curl/8"),
                ("Accept", "text/html"),
                ("accept", "*/*"),
                ("Cookie", "pe_click=abc; other=1"),
            ],
        );
        let ev = to_v2_event(&req, &matched());
        assert_eq!(ev["version"], "2.0");
        assert_eq!(ev["routeKey"], "GET /r/{code}/{sub_id}");
        assert_eq!(ev["rawPath"], "/r/alice/yt%2042");
        assert_eq!(ev["rawQueryString"], "utm_source=x&a=1&a=2&q=hello+world");
        assert_eq!(ev["cookies"], json!(["pe_click=abc", "other=1"]));
        assert_eq!(ev["headers"]["accept"], "text/html,*/*");
        assert_eq!(ev["headers"]["user-agent"], "curl/8");
        assert!(ev["headers"].get("cookie").is_none());
        assert!(ev["headers"].get("Host").is_none());
        assert_eq!(ev["headers"]["x-forwarded-for"], "127.0.0.1");
        assert_eq!(ev["queryStringParameters"]["a"], "1,2");
        assert_eq!(ev["queryStringParameters"]["q"], "hello world");
        assert_eq!(ev["pathParameters"]["code"], "alice");
        assert_eq!(ev["pathParameters"]["sub_id"], "yt 42");
        let rc = &ev["requestContext"];
        assert_eq!(rc["http"]["method"], "GET");
        assert_eq!(rc["http"]["path"], "/r/alice/yt 42");
        assert_eq!(rc["http"]["protocol"], "HTTP/1.1");
        assert_eq!(rc["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(rc["http"]["userAgent"], "curl/8");
        assert_eq!(rc["stage"], "$default");
        assert_eq!(rc["requestId"], "req-1");
        assert_eq!(rc["routeKey"], "GET /r/{code}/{sub_id}");
        assert_eq!(rc["timeEpoch"], 1_772_789_400_000_i64);
        assert_eq!(rc["time"], "06/Mar/2026:09:30:00 +0000");
        assert_eq!(rc["domainName"], "127.0.0.1:9000");
        assert!(ev.get("body").is_none());
        assert_eq!(ev["isBase64Encoded"], false);
    }

    #[test]
    fn event_deserialises_as_lambda_events_would() {
        // The same fields aws_lambda_events' ApiGatewayV2httpRequest reads.
        let req = request(b"{\"a\":1}", vec![("content-type", "application/json")]);
        let ev = to_v2_event(&req, &matched());
        assert_eq!(ev["body"], "{\"a\":1}");
        assert_eq!(ev["isBase64Encoded"], false);
        assert!(ev.get("cookies").is_none());
    }

    #[test]
    fn binary_body_is_base64() {
        let req = request(&[0xff, 0x00, 0x01], vec![("content-type", "image/png")]);
        let ev = to_v2_event(&req, &matched());
        assert_eq!(ev["body"], "/wAB");
        assert_eq!(ev["isBase64Encoded"], true);
    }

    #[test]
    fn structured_response() {
        let r = from_v2_response(
            br#"{"statusCode":302,"headers":{"Location":"https://shop.example/?c=1","Cache-Control":"no-store","x-n":5},
                "cookies":["pe_click=abc; Path=/; HttpOnly","pe_p=alice"],"body":""}"#,
        )
        .expect("valid");
        assert_eq!(r.status, 302);
        assert!(r
            .headers
            .contains(&("location".into(), "https://shop.example/?c=1".into())));
        assert!(r.headers.contains(&("x-n".into(), "5".into())));
        let cookies: Vec<_> = r
            .headers
            .iter()
            .filter(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(
            cookies,
            vec!["pe_click=abc; Path=/; HttpOnly", "pe_p=alice"]
        );
        assert!(r.body.is_empty());
    }

    #[test]
    fn base64_and_multi_value_responses() {
        let r = from_v2_response(
            br#"{"statusCode":"200","multiValueHeaders":{"X-A":["1","2"]},"body":"aGk=","isBase64Encoded":true}"#,
        )
        .expect("valid");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"hi");
        assert_eq!(
            r.headers,
            vec![
                ("x-a".to_string(), "1".to_string()),
                ("x-a".into(), "2".into())
            ]
        );
    }

    #[test]
    fn response_without_status_code_is_json_200() {
        let r = from_v2_response(br#"{"hello":"world"}"#).expect("valid");
        assert_eq!(r.status, 200);
        assert_eq!(r.body, br#"{"hello":"world"}"#);
        assert_eq!(
            r.headers,
            vec![("content-type".to_string(), "application/json".to_string())]
        );
    }

    #[test]
    fn malformed_responses_are_errors() {
        assert!(from_v2_response(b"not json").is_err());
        assert!(from_v2_response(br#"{"statusCode":"abc"}"#).is_err());
        assert!(
            from_v2_response(br#"{"statusCode":200,"body":"%%","isBase64Encoded":true}"#).is_err()
        );
    }
}
