//! Reading from Stripe's API, for what an event leaves out: the remaining lines of an invoice
//! whose event shows only the first page (`lines.has_more`).
//!
//! `GET {base}/v1/invoices/{id}/lines?limit=100[&starting_after=…]` with a restricted key that
//! may only read invoices (`Authorization: Bearer rk_…`) and `Stripe-Version` pinned to the
//! version our types read. Source: Stripe API reference, "Retrieve an invoice's line items"
//! (a list object: `data`, `has_more`, `url`) and "Errors" (`{"error": {"type", "code",
//! "message"}}`; 400/401/402/403/404 are the request's fault, 429 and 5xx are worth a retry).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;

use crate::stripe::{self, PINNED_API_VERSION};

/// Most pages read for one invoice (100 lines each): an invoice with more is parked.
pub const MAX_PAGES: usize = 50;

#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum LinesError {
    /// Stripe or the network failed in a way a later attempt can fix (429, 5xx, timeout).
    #[error("Stripe API unavailable: {0}")]
    Transient(String),
    /// Stripe refused the request (bad key, unknown invoice, …): a retry fails the same way.
    #[error("Stripe API refused: {0}")]
    Refused(String),
}

/// Port: every line of an invoice, in Stripe's order.
#[async_trait::async_trait]
pub trait InvoiceLines: Send + Sync {
    async fn all_lines(&self, invoice_id: &str) -> Result<Vec<stripe::InvoiceLine>, LinesError>;
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Deserialize)]
struct ErrorDetail {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// The HTTP adapter.
#[derive(Clone)]
pub struct StripeApi {
    base: String,
    key: Arc<str>,
    timeout: Duration,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>,
}

impl std::fmt::Debug for StripeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeApi")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl StripeApi {
    /// `base`: `https://api.stripe.com` in production, a local fake in tests.
    pub fn new(base: &str, key: &str, timeout: Duration) -> Result<Self, LinesError> {
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_native_roots(provider)
            .map_err(|e| LinesError::Refused(format!("TLS roots: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        Ok(StripeApi {
            base: base.trim_end_matches('/').to_string(),
            key: key.into(),
            timeout,
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    async fn page(
        &self,
        invoice_id: &str,
        starting_after: Option<&str>,
    ) -> Result<stripe::LineList, LinesError> {
        let mut uri = format!(
            "{}/v1/invoices/{}/lines?limit=100",
            self.base,
            url_escape(invoice_id)
        );
        if let Some(after) = starting_after {
            uri.push_str("&starting_after=");
            uri.push_str(&url_escape(after));
        }
        let req = hyper::Request::get(&uri)
            .header("authorization", format!("Bearer {}", self.key))
            .header("stripe-version", PINNED_API_VERSION)
            .body(Empty::<Bytes>::new())
            .map_err(|e| LinesError::Refused(format!("request: {e}")))?;
        let answer = tokio::time::timeout(self.timeout, async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| LinesError::Transient(format!("GET {uri}: {e}")))?;
            let status = resp.status().as_u16();
            let body = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| LinesError::Transient(format!("GET {uri}: body: {e}")))?
                .to_bytes();
            Ok::<_, LinesError>((status, body))
        })
        .await
        .map_err(|_| {
            LinesError::Transient(format!("GET {uri}: no answer in {:?}", self.timeout))
        })??;
        let (status, body) = answer;
        if status == 200 {
            return serde_json::from_slice(&body)
                .map_err(|e| LinesError::Refused(format!("list of lines not understood: {e}")));
        }
        let detail = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(b) => format!(
                "HTTP {status} {} {}: {}",
                b.error.kind.unwrap_or_default(),
                b.error.code.unwrap_or_default(),
                b.error.message.unwrap_or_default()
            ),
            Err(_) => format!("HTTP {status}"),
        };
        if status == 429 || status >= 500 {
            Err(LinesError::Transient(detail))
        } else {
            Err(LinesError::Refused(detail))
        }
    }
}

#[async_trait::async_trait]
impl InvoiceLines for StripeApi {
    async fn all_lines(&self, invoice_id: &str) -> Result<Vec<stripe::InvoiceLine>, LinesError> {
        let mut out: Vec<stripe::InvoiceLine> = vec![];
        for _ in 0..MAX_PAGES {
            let after = out.last().and_then(|l| l.id.clone());
            let page = self.page(invoice_id, after.as_deref()).await?;
            let more = page.has_more;
            if more && page.data.last().and_then(|l| l.id.as_ref()).is_none() {
                return Err(LinesError::Refused(
                    "a page of lines without ids cannot be continued".into(),
                ));
            }
            out.extend(page.data);
            if !more {
                return Ok(out);
            }
        }
        Err(LinesError::Refused(format!(
            "more than {} lines",
            MAX_PAGES * 100
        )))
    }
}

/// Percent-encode everything but unreserved characters (ids are `[A-Za-z0-9_]`; this keeps a
/// hostile id from changing the path).
fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_cannot_change_the_path() {
        assert_eq!(super::url_escape("in_1Abc"), "in_1Abc");
        assert_eq!(super::url_escape("../x?y"), "..%2Fx%3Fy");
    }
}
