//! Local fakes of the payout rails, for `make dev` and tests:
//!
//! - [`paypal::FakePayPal`]: PayPal's OAuth2 token and Payouts batch API;
//! - [`stripe::FakeStripeConnect`]: Stripe's transfers API with idempotency keys.
//!
//! Each serves on a loopback port, records every request it received (readable by tests, and by
//! a person at `GET /_fake/received`), and can be switched, through its control routes
//! (`POST /_fake/...`, documented in README.md) or the Rust handles, to answer 5xx, time out
//! after taking effect, rate-limit, reject a receiver, forget request ids (so a re-sent batch
//! meets PayPal's duplicate `sender_batch_id` error) and move items to UNCLAIMED, RETURNED,
//! FAILED or REVERSED later.

pub mod paypal;
pub mod stripe;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde_json::Value;

/// A request a fake received.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub query: String,
    /// Headers a rail's behaviour depends on (authorization redacted to its scheme).
    pub headers: Vec<(String, String)>,
    /// The body: JSON as JSON, a form as an object of its pairs, anything else as a string.
    pub body: Value,
    /// The status the fake answered.
    pub status: u16,
}

/// A request as the fakes see it.
pub struct Req {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    pub fn query_pairs(&self) -> std::collections::HashMap<String, String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }
    /// The body for the record.
    pub fn body_value(&self) -> Value {
        if self.body.is_empty() {
            return Value::Null;
        }
        if let Ok(v) = serde_json::from_slice::<Value>(&self.body) {
            return v;
        }
        let ct = self.header("content-type").unwrap_or_default();
        if ct.starts_with("application/x-www-form-urlencoded") {
            let mut m = serde_json::Map::new();
            for (k, v) in self.form() {
                m.insert(k, Value::String(v));
            }
            return Value::Object(m);
        }
        Value::String(String::from_utf8_lossy(&self.body).into_owned())
    }
}

/// A fake's answer, and how long to wait before giving it (a time-out fault).
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(&'static str, String)>,
    pub delay_ms: u64,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            body,
            headers: vec![],
            delay_ms: 0,
        }
    }
}

type Handler = Arc<dyn Fn(Req) -> Pin<Box<dyn Future<Output = Reply> + Send>> + Send + Sync>;

/// Serve `handler` on `addr` (port 0: a free one); returns the base URL.
pub async fn serve(addr: SocketAddr, handler: Handler) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let h = handler.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let h = h.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let r = Req {
                            method: parts.method.to_string(),
                            path: parts.uri.path().to_string(),
                            query: parts.uri.query().unwrap_or("").to_string(),
                            headers: parts.headers,
                            body,
                        };
                        let reply = h(r).await;
                        if reply.delay_ms > 0 {
                            tokio::time::sleep(std::time::Duration::from_millis(reply.delay_ms))
                                .await;
                        }
                        let mut resp =
                            Response::new(Full::new(Bytes::from(reply.body.to_string())));
                        *resp.status_mut() = hyper::StatusCode::from_u16(reply.status)
                            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
                        resp.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                        for (k, v) in reply.headers {
                            if let Ok(v) = hyper::header::HeaderValue::from_str(&v) {
                                resp.headers_mut().insert(k, v);
                            }
                        }
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(format!("http://{local}"))
}

/// The record of a request, with the headers worth keeping.
pub fn record(req: &Req, status: u16, keep: &[&str]) -> Received {
    let mut headers = vec![];
    for name in keep {
        if let Some(v) = req.header(name) {
            let v = if *name == "authorization" {
                v.split_whitespace().next().unwrap_or("").to_string() + " …"
            } else {
                v
            };
            headers.push((name.to_string(), v));
        }
    }
    Received {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.query.clone(),
        headers,
        body: req.body_value(),
        status,
    }
}

/// A fault the next matching request meets.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case", tag = "fault")]
pub enum Fault {
    /// Answer this 5xx without doing anything.
    ServerError { status: u16 },
    /// Do the work, then answer 500 (the caller cannot know it took effect).
    ErrorAfterEffect,
    /// Do the work, then wait `delay_ms` before answering (longer than the caller's timeout).
    TimeoutAfterEffect { delay_ms: u64 },
    /// Answer 429 with `Retry-After: 1`.
    RateLimit,
}

/// Sequence numbers for ids.
pub fn seq_id(prefix: &str, n: usize, width: usize) -> String {
    let hex = {
        use sha2::{Digest, Sha256};
        let d = Sha256::digest(format!("{prefix}{n}").as_bytes());
        d.iter().map(|b| format!("{:02X}", b)).collect::<String>()
    };
    let body: String = hex.chars().take(width).collect();
    format!("{prefix}{body}")
}
