//! A fault-injecting proxy in front of moto's DynamoDB, for the system tests of error
//! classification: a stack started with `AWS_ENDPOINT_URL_DYNAMODB` pointing here (the AWS SDK's
//! service-specific endpoint variable) sends every DynamoDB call through it. Passing through by
//! default; when armed, it answers one operation (`X-Amz-Target`, e.g.
//! `DynamoDB_20120810.TransactWriteItems`) with the error DynamoDB documents for it: HTTP 500
//! `InternalServerError` (transient) or HTTP 400 `AccessDeniedException` (permanent), in the
//! JSON protocol's `{"__type", "message"}` shape (DynamoDB API reference, "Common Errors").

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// HTTP 500 `InternalServerError`: a retry may succeed.
    Transient,
    /// HTTP 400 `AccessDeniedException`: no retry helps.
    Permanent,
}

#[derive(Default)]
struct Armed {
    target: Option<(String, Fault)>,
    refused: u32,
}

#[derive(Clone)]
pub struct DynamoFaults {
    pub url: String,
    upstream: String,
    armed: Arc<Mutex<Armed>>,
}

impl DynamoFaults {
    /// Start on a free loopback port, forwarding to `upstream` (moto's endpoint).
    pub async fn start(upstream: &str) -> DynamoFaults {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("address");
        let proxy = DynamoFaults {
            url: format!("http://{addr}"),
            upstream: upstream.trim_end_matches('/').to_string(),
            armed: Arc::default(),
        };
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let served = proxy.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (p, c) = (served.clone(), client.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let (p, c) = (p.clone(), c.clone());
                        async move { Ok::<_, Infallible>(p.answer(req, &c).await) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        proxy
    }

    /// Answer every call of `operation` (e.g. `TransactWriteItems`) with `fault`.
    pub fn arm(&self, operation: &str, fault: Fault) {
        let mut a = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        a.target = Some((format!("DynamoDB_20120810.{operation}"), fault));
    }

    /// Pass everything through again; returns how many calls were refused while armed.
    pub fn disarm(&self) -> u32 {
        let mut a = self.armed.lock().unwrap_or_else(|p| p.into_inner());
        a.target = None;
        std::mem::take(&mut a.refused)
    }

    async fn answer(
        &self,
        req: Request<Incoming>,
        client: &Client<HttpConnector, Full<Bytes>>,
    ) -> Response<Full<Bytes>> {
        let target = req
            .headers()
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let fault = {
            let mut a = self.armed.lock().unwrap_or_else(|p| p.into_inner());
            match &a.target {
                Some((t, f)) if *t == target => {
                    let f = *f;
                    a.refused += 1;
                    Some(f)
                }
                _ => None,
            }
        };
        if let Some(f) = fault {
            let (status, kind, message) = match f {
                Fault::Transient => (
                    500,
                    "com.amazonaws.dynamodb.v20120810#InternalServerError",
                    "injected: internal server error",
                ),
                Fault::Permanent => (
                    400,
                    "com.amazon.coral.service#AccessDeniedException",
                    "injected: not authorized to perform dynamodb:TransactWriteItems",
                ),
            };
            let body = serde_json::json!({"__type": kind, "message": message}).to_string();
            return reply(status, Bytes::from(body));
        }
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return reply(502, Bytes::from(format!("proxy: {e}"))),
        };
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let mut up = Request::builder()
            .method(parts.method)
            .uri(format!("{}{path}", self.upstream));
        for (k, v) in &parts.headers {
            if k != hyper::header::HOST {
                up = up.header(k, v);
            }
        }
        let Ok(up) = up.body(Full::new(body)) else {
            return reply(502, Bytes::from_static(b"proxy: request"));
        };
        match client.request(up).await {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                parts.headers.remove(hyper::header::TRANSFER_ENCODING);
                let bytes = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                Response::from_parts(parts, Full::new(bytes))
            }
            Err(e) => reply(502, Bytes::from(format!("proxy: {e}"))),
        }
    }
}

fn reply(status: u16, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    r
}
