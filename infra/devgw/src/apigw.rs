//! API Gateway HTTP API (payload format 2.0): an HTTP request turned into the Lambda event, and
//! the function's response turned back into an HTTP response.

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderName, HeaderValue, Method};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

use crate::routes::RouteMatch;
use crate::ACCOUNT_ID;

/// What the gateway knows of one incoming request.
#[derive(Debug, Clone)]
pub struct HttpRequestInfo<'a> {
    pub method: Method,
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

/// Headers as API Gateway passes them: names in lower case, repeated headers joined with `,`,
/// `Cookie` moved to `cookies`, and the `x-forwarded-*` and trace headers it adds.
fn v2_headers(req: &HttpRequestInfo<'_>) -> (HeaderMap, Vec<String>) {
    let mut joined: BTreeMap<String, String> = BTreeMap::new();
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
        joined
            .entry(name)
            .and_modify(|v| {
                v.push(',');
                v.push_str(value);
            })
            .or_insert_with(|| value.clone());
    }
    let added = [
        ("x-forwarded-for", req.source_ip.clone()),
        ("x-forwarded-proto", "http".to_string()),
        ("x-forwarded-port", req.port.to_string()),
        ("x-amzn-trace-id", req.trace_id.clone()),
    ];
    for (name, value) in added {
        joined.entry(name.to_string()).or_insert(value);
    }
    let mut headers = HeaderMap::with_capacity(joined.len());
    for (name, value) in joined {
        // The names and values come from a parsed HTTP request, so they are valid; one that is
        // not could not be passed on by API Gateway either.
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            (Ok(n), Ok(v)) => {
                headers.insert(n, v);
            }
            _ => tracing::warn!(header = %name, "dropping a request header that is not valid HTTP"),
        }
    }
    (headers, cookies)
}

/// Query parameters as API Gateway passes them: decoded, repeated names joined with `,` (which
/// is also how `lambda_http` splits them again).
fn v2_query(raw_query: &str) -> QueryMap {
    let mut query: HashMap<String, String> = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw_query.as_bytes()) {
        query
            .entry(k.into_owned())
            .and_modify(|e| {
                e.push(',');
                e.push_str(&v);
            })
            .or_insert_with(|| v.into_owned());
    }
    QueryMap::from(query)
}

/// The payload format 2.0 event for a matched request.
pub fn to_v2_event(req: &HttpRequestInfo<'_>, m: &RouteMatch) -> ApiGatewayV2httpRequest {
    let (headers, cookies) = v2_headers(req);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let domain = header("host")
        .map(str::to_string)
        .unwrap_or_else(|| format!("127.0.0.1:{}", req.port));
    let domain_prefix = domain.split('.').next().unwrap_or("").to_string();
    let user_agent = header("user-agent").unwrap_or_default().to_string();
    let (body, is_base64_encoded) = if req.body.is_empty() {
        (None, false)
    } else {
        match is_text(header("content-type"))
            .then(|| std::str::from_utf8(req.body).ok())
            .flatten()
        {
            Some(text) => (Some(text.to_string()), false),
            None => (
                Some(base64::engine::general_purpose::STANDARD.encode(req.body)),
                true,
            ),
        }
    };
    ApiGatewayV2httpRequest {
        version: Some("2.0".into()),
        route_key: Some(m.route_key.clone()),
        http_method: req.method.clone(),
        raw_path: Some(req.raw_path.to_string()),
        raw_query_string: Some(req.raw_query.to_string()),
        cookies: (!cookies.is_empty()).then_some(cookies),
        query_string_parameters: v2_query(req.raw_query),
        path_parameters: m.params.clone().into_iter().collect(),
        request_context: ApiGatewayV2httpRequestContext {
            route_key: Some(m.route_key.clone()),
            account_id: Some(ACCOUNT_ID.into()),
            stage: Some("$default".into()),
            request_id: Some(req.request_id.clone()),
            apiid: Some("devgw".into()),
            domain_name: Some(domain),
            domain_prefix: Some(domain_prefix),
            time: Some(req.now.format("%d/%b/%Y:%H:%M:%S %z").to_string()),
            time_epoch: req.now.timestamp_millis(),
            http: ApiGatewayV2httpRequestContextHttpDescription {
                method: req.method.clone(),
                path: Some(crate::routes::percent_decode(req.raw_path)),
                protocol: Some(req.protocol.to_string()),
                source_ip: Some(req.source_ip.clone()),
                user_agent: Some(user_agent),
            },
            ..Default::default()
        },
        headers,
        body,
        is_base64_encoded,
        ..Default::default()
    }
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

fn as_text(v: &Value) -> Value {
    match v {
        Value::String(_) => v.clone(),
        other => Value::String(other.to_string()),
    }
}

/// API Gateway takes more than `ApiGatewayV2httpResponse` reads: a `statusCode` given as a string,
/// header values and a body that are not strings (as their JSON text), no `cookies`. Bring such
/// a response to the type's form; a header that is not valid HTTP is dropped.
fn to_typed_form(mut obj: Map<String, Value>) -> Result<Map<String, Value>, String> {
    let status = match obj.get("statusCode") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|s| (100..=599).contains(s))
    .ok_or_else(|| "statusCode is not a valid HTTP status".to_string())?;
    obj.insert("statusCode".into(), json!(status));
    let valid = |name: &str, value: &Value| {
        let ok = HeaderName::from_bytes(name.as_bytes()).is_ok()
            && value
                .as_str()
                .is_some_and(|v| HeaderValue::from_str(v).is_ok());
        if !ok {
            tracing::warn!(header = %name, "dropping a header that is not valid HTTP");
        }
        ok
    };
    let mut multi_names: Vec<String> = vec![];
    if let Some(Value::Object(h)) = obj.get_mut("multiValueHeaders") {
        for (name, values) in std::mem::take(h) {
            let Value::Array(values) = values else {
                continue;
            };
            let values: Vec<Value> = values
                .iter()
                .map(as_text)
                .filter(|v| valid(&name, v))
                .collect();
            multi_names.push(name.to_ascii_lowercase());
            h.insert(name, Value::Array(values));
        }
    } else {
        obj.remove("multiValueHeaders");
    }
    if let Some(Value::Object(h)) = obj.get_mut("headers") {
        for (name, value) in std::mem::take(h) {
            // multiValueHeaders replace a header of the same name.
            if multi_names.contains(&name.to_ascii_lowercase()) {
                continue;
            }
            let value = as_text(&value);
            if valid(&name, &value) {
                h.insert(name, value);
            }
        }
    } else {
        obj.remove("headers");
    }
    let cookies = match obj.get("cookies") {
        Some(Value::Array(c)) => c.iter().map(as_text).collect(),
        _ => vec![],
    };
    obj.insert("cookies".into(), Value::Array(cookies));
    let base64 = matches!(obj.get("isBase64Encoded"), Some(Value::Bool(true)));
    obj.insert("isBase64Encoded".into(), json!(base64));
    if let Some(body) = obj.get_mut("body") {
        if !body.is_null() {
            *body = as_text(body);
        }
    }
    Ok(obj)
}

fn header_text(v: &HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

/// Interpret a function's response as payload format 2.0 does. `Err` is a malformed response
/// (API Gateway answers 502).
pub fn from_v2_response(payload: &[u8]) -> Result<HttpResponseParts, String> {
    let value: Value =
        serde_json::from_slice(payload).map_err(|e| format!("response is not JSON: {e}"))?;
    let obj = match value {
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
    let response: ApiGatewayV2httpResponse =
        serde_json::from_value(Value::Object(to_typed_form(obj)?))
            .map_err(|e| format!("not an HTTP API response: {e}"))?;
    let status = u16::try_from(response.status_code)
        .map_err(|_| "statusCode is not a valid HTTP status".to_string())?;
    let mut headers: Vec<(String, String)> = vec![];
    for (name, value) in response.headers.iter().chain(&response.multi_value_headers) {
        headers.push((name.as_str().to_string(), header_text(value)));
    }
    for c in response.cookies {
        headers.push(("set-cookie".into(), c));
    }
    let body = match response.body {
        None | Some(Body::Empty) => vec![],
        Some(Body::Text(s)) if response.is_base64_encoded => {
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map_err(|e| format!("body is not valid base64: {e}"))?
        }
        Some(Body::Text(s)) => s.into_bytes(),
        Some(Body::Binary(b)) => b,
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
            method: Method::GET,
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

    /// The event as it goes over the wire to the function.
    fn event_json(req: &HttpRequestInfo<'_>) -> Value {
        serde_json::to_value(to_v2_event(req, &matched())).expect("the event serialises")
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
        let ev = event_json(&req);
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
        let ev = event_json(&req);
        assert_eq!(ev["body"], "{\"a\":1}");
        assert_eq!(ev["isBase64Encoded"], false);
        assert!(ev.get("cookies").is_none());
    }

    #[test]
    fn lambda_http_reads_the_event() {
        use lambda_http::RequestExt;
        let req = request(
            b"{\"a\":1}",
            vec![
                ("Host", "127.0.0.1:9000"),
                ("content-type", "application/json"),
                ("Accept", "text/html"),
                ("accept", "*/*"),
                ("Cookie", "pe_click=abc; other=1"),
            ],
        );
        let wire = serde_json::to_string(&to_v2_event(&req, &matched())).expect("serialises");
        let r = lambda_http::request::from_str(&wire).expect("lambda_http parses the event");
        assert_eq!(r.method(), "GET");
        assert_eq!(r.uri().path(), "/r/alice/yt%2042");
        assert_eq!(r.uri().host(), Some("127.0.0.1"));
        let query = r.query_string_parameters();
        assert_eq!(query.all("a"), Some(vec!["1", "2"]));
        assert_eq!(query.first("q"), Some("hello world"));
        assert_eq!(r.path_parameters().first("sub_id"), Some("yt 42"));
        let header = |name: &str| r.headers().get(name).and_then(|v| v.to_str().ok());
        assert_eq!(header("accept"), Some("text/html,*/*"));
        assert_eq!(header("cookie"), Some("pe_click=abc;other=1"));
        assert_eq!(header("x-forwarded-for"), Some("127.0.0.1"));
        assert_eq!(r.body().as_ref(), b"{\"a\":1}");
        // (serialised, so as not to depend on which request kinds lambda_http is built with)
        let context = serde_json::to_value(r.request_context()).expect("context serialises");
        assert_eq!(context["http"]["sourceIp"], "127.0.0.1");
        assert_eq!(context["routeKey"], "GET /r/{code}/{sub_id}");
        assert_eq!(context["timeEpoch"], 1_772_789_400_000_i64);
    }

    #[test]
    fn binary_body_is_base64() {
        let req = request(&[0xff, 0x00, 0x01], vec![("content-type", "image/png")]);
        let ev = event_json(&req);
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
    fn lambda_http_response_is_read() {
        // What lambda_http sends back for an HTTP API request.
        let mut sent = ApiGatewayV2httpResponse {
            status_code: 302,
            cookies: vec!["pe_click=abc; Path=/".into()],
            body: Some(Body::Text("moved".into())),
            ..Default::default()
        };
        sent.headers.insert(
            "location",
            HeaderValue::from_static("https://shop.example/"),
        );
        sent.multi_value_headers
            .append("vary", HeaderValue::from_static("accept"));
        sent.multi_value_headers
            .append("vary", HeaderValue::from_static("cookie"));
        let wire = serde_json::to_vec(&sent).expect("serialises");
        let r = from_v2_response(&wire).expect("valid");
        assert_eq!(r.status, 302);
        assert_eq!(
            r.headers,
            vec![
                ("location".to_string(), "https://shop.example/".to_string()),
                ("vary".into(), "accept".into()),
                ("vary".into(), "cookie".into()),
                ("set-cookie".into(), "pe_click=abc; Path=/".into()),
            ]
        );
        assert_eq!(r.body, b"moved");
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
