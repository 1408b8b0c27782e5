//! The one HTTPS client both rails use: rustls (the AWS SDK's TLS stack, so nothing new is
//! compiled), HTTP/1.1, a timeout per request, and retries of HTTP 429 with backoff on the
//! injected clock (the `Retry-After` header when the API sends one).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use storage::SharedClock;

/// Most answers of HTTP 429 waited out per request before giving up for this attempt.
pub const RATE_LIMIT_RETRIES: u32 = 4;

/// A request's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, String> {
        serde_json::from_slice(&self.body).map_err(|e| {
            format!(
                "HTTP {} body not understood: {e}: {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }
}

/// Why no answer came.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    /// The network or the server's time limit: the request may or may not have taken effect.
    #[error("no answer: {0}")]
    NoAnswer(String),
    /// Still HTTP 429 after the retries.
    #[error("rate limited after {RATE_LIMIT_RETRIES} retries")]
    RateLimited,
    #[error("request not built: {0}")]
    Build(String),
}

#[derive(Clone)]
pub struct Http {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
    clock: SharedClock,
}

impl std::fmt::Debug for Http {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Http")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Http {
    pub fn new(timeout: Duration, clock: SharedClock) -> Result<Http, HttpError> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| HttpError::Build(format!("TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Http {
            client: Client::builder(TokioExecutor::new()).build(https),
            timeout,
            clock,
        })
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Send `method uri` with `headers` and `body`, waiting out HTTP 429 answers.
    pub async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, String)],
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Answer, HttpError> {
        for attempt in 0..=RATE_LIMIT_RETRIES {
            let mut req = hyper::Request::builder().method(method).uri(uri);
            for (k, v) in headers {
                req = req.header(*k, v.as_str());
            }
            let payload = match &body {
                Some((content_type, bytes)) => {
                    req = req.header("content-type", *content_type);
                    Bytes::from(bytes.clone())
                }
                None => Bytes::new(),
            };
            let req = req
                .body(Full::new(payload))
                .map_err(|e| HttpError::Build(e.to_string()))?;
            let answer = tokio::time::timeout(self.timeout, async {
                let resp = self
                    .client
                    .request(req)
                    .await
                    .map_err(|e| HttpError::NoAnswer(format!("{method} {uri}: {e}")))?;
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok());
                let body = resp
                    .into_body()
                    .collect()
                    .await
                    .map_err(|e| HttpError::NoAnswer(format!("{method} {uri}: body: {e}")))?
                    .to_bytes();
                Ok::<_, HttpError>((Answer { status, body }, retry_after))
            })
            .await
            .map_err(|_| {
                HttpError::NoAnswer(format!("{method} {uri}: no answer in {:?}", self.timeout))
            })??;
            let (answer, retry_after) = answer;
            if answer.status != 429 {
                return Ok(answer);
            }
            if attempt == RATE_LIMIT_RETRIES {
                break;
            }
            let wait = retry_after
                .map(|s| Duration::from_secs(s.min(60)))
                .unwrap_or_else(|| Duration::from_millis(500 << attempt));
            tracing::info!(uri, ?wait, "rate limited; waiting");
            self.clock.sleep(wait).await;
        }
        Err(HttpError::RateLimited)
    }
}

/// `application/x-www-form-urlencoded` of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
        .into_bytes()
}

/// A path segment or query value, escaped.
pub fn escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
