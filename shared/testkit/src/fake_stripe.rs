//! A local fake of the part of Stripe's API the engine reads: `GET /v1/invoices/{id}/lines`.
//!
//! Built from Stripe's API reference ("Retrieve an invoice's line items": a list object with
//! `object: "list"`, `data`, `has_more`, `url`; `limit` 1..=100, default 10; `starting_after` an
//! object id) and "Errors" (HTTP 401 `invalid_request_error` for a bad key, 404
//! `resource_missing` for an unknown invoice, 400 for a bad parameter, 429 `rate_limit_error`,
//! 500 `api_error`; body `{"error": {"type", "code", "message", "param"}}`). It serves on a free
//! loopback port and records every request, so tests assert what Stripe would have received.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};

/// A request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub path: String,
    pub query: String,
    pub authorization: Option<String>,
    pub stripe_version: Option<String>,
}

#[derive(Default)]
struct State {
    invoices: HashMap<String, Vec<Value>>,
    /// Answers to give instead of the real one, in order: (status, error type).
    faults: VecDeque<(u16, &'static str)>,
    received: Vec<Received>,
}

#[derive(Clone)]
pub struct FakeStripe {
    pub base_url: String,
    pub key: String,
    state: Arc<Mutex<State>>,
}

impl FakeStripe {
    /// Start on a free loopback port; requests must carry `Authorization: Bearer {key}`.
    pub async fn start(key: &str) -> FakeStripe {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("address");
        let fake = FakeStripe {
            base_url: format!("http://{addr}"),
            key: key.to_string(),
            state: Arc::default(),
        };
        let served = fake.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let f = served.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let f = f.clone();
                        async move { Ok::<_, Infallible>(f.answer(req)) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        fake
    }

    /// An invoice with these line objects (each needs an `id`).
    pub fn add_invoice(&self, invoice_id: &str, lines: Vec<Value>) {
        self.lock().invoices.insert(invoice_id.to_string(), lines);
    }

    /// The next answer is this error instead (429 `rate_limit_error`, 500 `api_error`, …).
    pub fn fail_next(&self, status: u16, error_type: &'static str) {
        self.lock().faults.push_back((status, error_type));
    }

    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn answer(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let header = |n: &str| {
            req.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let mut st = self.lock();
        st.received.push(Received {
            path: path.clone(),
            query: query.clone(),
            authorization: header("authorization"),
            stripe_version: header("stripe-version"),
        });
        if let Some((status, kind)) = st.faults.pop_front() {
            return error(status, kind, None, "injected failure", None);
        }
        if header("authorization").as_deref() != Some(&format!("Bearer {}", self.key)) {
            return error(
                401,
                "invalid_request_error",
                None,
                "Invalid API Key provided: rk_test_***",
                None,
            );
        }
        let Some(invoice) = path
            .strip_prefix("/v1/invoices/")
            .and_then(|r| r.strip_suffix("/lines"))
        else {
            return error(
                404,
                "invalid_request_error",
                None,
                &format!("Unrecognized request URL (GET: {path})."),
                None,
            );
        };
        let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let limit = match params.get("limit").map(|l| l.parse::<usize>()) {
            None => 10,
            Some(Ok(n)) if (1..=100).contains(&n) => n,
            Some(_) => {
                return error(
                    400,
                    "invalid_request_error",
                    Some("parameter_invalid_integer"),
                    "Invalid integer: limit must be between 1 and 100",
                    Some("limit"),
                )
            }
        };
        let Some(lines) = st.invoices.get(invoice) else {
            return error(
                404,
                "invalid_request_error",
                Some("resource_missing"),
                &format!("No such invoice: '{invoice}'"),
                Some("invoice"),
            );
        };
        let start = match params.get("starting_after") {
            None => 0,
            Some(after) => match lines.iter().position(|l| l["id"] == after.as_str()) {
                Some(i) => i + 1,
                None => {
                    return error(
                        400,
                        "invalid_request_error",
                        Some("resource_missing"),
                        &format!("No such invoiceitem: '{after}'"),
                        Some("starting_after"),
                    )
                }
            },
        };
        let page: Vec<Value> = lines.iter().skip(start).take(limit).cloned().collect();
        let has_more = start + page.len() < lines.len();
        respond(
            200,
            json!({
                "object": "list",
                "url": format!("/v1/invoices/{invoice}/lines"),
                "has_more": has_more,
                "data": page,
            }),
        )
    }
}

fn error(
    status: u16,
    kind: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> Response<Full<Bytes>> {
    let mut e = json!({ "type": kind, "message": message });
    if let Some(c) = code {
        e["code"] = c.into();
        e["doc_url"] = format!(
            "https://stripe.com/docs/error-codes/{}",
            c.replace('_', "-")
        )
        .into();
    }
    if let Some(p) = param {
        e["param"] = p.into();
    }
    respond(status, json!({ "error": e }))
}

fn respond(status: u16, body: Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}
