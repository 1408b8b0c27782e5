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
        let body = serde_json::to_string(&Problem {
            kind,
            title,
            status,
            detail,
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
