//! What the endpoint answers: a small JSON receipt on 200, RFC 9457 problem details otherwise.

use lambda_http::http::{header::CONTENT_TYPE, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";
pub const JSON: &str = "application/json";

/// Problem types of this endpoint (RFC 9457 `type`).
pub mod problem_type {
    pub const INVALID_SIGNATURE: &str = "urn:partner-engine:problem:stripe-signature-invalid";
    pub const METHOD_NOT_ALLOWED: &str = "urn:partner-engine:problem:method-not-allowed";
    pub const TEMPORARY_FAILURE: &str = "urn:partner-engine:problem:temporary-failure";
    /// `POST /webhooks/sale`: no `Sale-Source`, or not a configured source.
    pub const UNKNOWN_SALE_SOURCE: &str = "urn:partner-engine:problem:unknown-sale-source";
    /// `POST /webhooks/sale`: `Sale-Signature` missing, malformed, wrong or too old.
    pub const SALE_SIGNATURE_INVALID: &str = "urn:partner-engine:problem:sale-signature-invalid";
    /// `POST /webhooks/sale`: the body is not JSON (400).
    pub const MALFORMED_SALE_EVENT: &str = "urn:partner-engine:problem:malformed-sale-event";
    /// `POST /webhooks/sale`: JSON, but a field is missing or wrong (422; `field` names it).
    pub const INVALID_SALE_EVENT: &str = "urn:partner-engine:problem:invalid-sale-event";
}

/// An answer, independent of the HTTP library (tests and the benchmark read it directly).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    /// The field of the request that is wrong (JSON path, or a header's name).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

#[derive(Serialize)]
struct Receipt<'a> {
    received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

impl Reply {
    pub fn problem(status: u16, kind: &str, title: &str, detail: &str) -> Reply {
        Self::problem_at(status, kind, title, detail, None)
    }

    /// A problem naming the request's `field` that is wrong.
    pub fn problem_at(
        status: u16,
        kind: &str,
        title: &str,
        detail: &str,
        field: Option<&str>,
    ) -> Reply {
        let body = serde_json::to_string(&Problem {
            kind,
            title,
            status,
            detail,
            field,
        })
        .unwrap_or_else(|_| format!("{{\"status\":{status}}}"));
        Reply {
            status,
            content_type: PROBLEM_JSON,
            body,
        }
    }

    /// 200: the event was received; `outcome` says what became of it.
    pub fn received(event_id: Option<&str>, outcome: &str, detail: Option<&str>) -> Reply {
        let body = serde_json::to_string(&Receipt {
            received: true,
            event_id,
            outcome,
            detail,
        })
        .unwrap_or_else(|_| "{\"received\":true}".to_string());
        Reply {
            status: 200,
            content_type: JSON,
            body,
        }
    }

    pub fn into_response(self) -> Response<Body> {
        let mut resp = Response::new(Body::Text(self.body));
        *resp.status_mut() =
            StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        resp.headers_mut().insert(
            CONTENT_TYPE,
            lambda_http::http::HeaderValue::from_static(self.content_type),
        );
        resp
    }
}
