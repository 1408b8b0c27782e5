//! A minimal HTTP/1 server on hyper: accept loop, one task per connection, all of them stopped
//! when the server task is aborted.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::error::DevgwError;

pub type Body = Full<Bytes>;

/// Lambda's synchronous payload limit (request and response).
pub const MAX_PAYLOAD: usize = 6 * 1024 * 1024;

pub async fn bind(addr: &str) -> Result<TcpListener, DevgwError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| DevgwError::Bind {
            addr: addr.to_string(),
            source,
        })
}

/// Serve connections until the returned future is dropped (abort the task that runs it to stop
/// every connection with it).
pub async fn serve<H, F>(listener: TcpListener, handler: H)
where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let h = handler.clone();
        connections.spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let h = h.clone();
                async move { Ok::<_, Infallible>(h(req, peer).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await
            {
                tracing::debug!(error = %e, "connection ended");
            }
        });
    }
}

/// Read a whole body, at most `limit` bytes.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, String> {
    Limited::new(body, limit)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string())
}

/// Build a response; header names or values that are not valid HTTP are left out.
pub fn response(
    status: u16,
    headers: &[(String, String)],
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in headers {
        match (
            hyper::header::HeaderName::from_bytes(k.as_bytes()),
            hyper::header::HeaderValue::from_str(v),
        ) {
            (Ok(k), Ok(v)) => {
                r.headers_mut().append(k, v);
            }
            _ => tracing::warn!(header = %k, "dropping a header that is not valid HTTP"),
        }
    }
    r
}

pub fn json_response(status: u16, value: &serde_json::Value) -> Response<Body> {
    response(
        status,
        &[("content-type".into(), "application/json".into())],
        value.to_string(),
    )
}
