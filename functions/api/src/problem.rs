//! Every error answer of the API: RFC 9457 problem details (`application/problem+json`).
//!
//! Each kind of problem has one fixed status, a stable slug (the last segment of its `type`
//! URI) and a title, declared once in the table below. Every kind also names its [`Scope`]: the
//! part of the API that can raise it. A route declares the scopes it uses
//! ([`crate::router::Route::scopes`]), which is how the statuses a route can answer are known
//! (and checked against `docs/openapi.yaml` by the tests) without listing them twice.

use engine::EngineError;
use lambda_http::http::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER,
};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;

pub const PROBLEM_JSON: &str = "application/problem+json";
/// Prefix of every problem `type` (the slug follows).
pub const TYPE_BASE: &str = "https://docs.partner-engine.dev/problems/";

/// Who can raise a problem kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The router itself: no route matches (any path).
    Router,
    /// Routes authenticated with a program's tracking key.
    TrackingKeyAuth,
    /// Routes reading a JSON body.
    JsonBody,
    /// Every route: our own failures.
    Server,
    /// `POST /v1/track/lead`: the binding's own outcomes.
    TrackLead,
}

macro_rules! problem_kinds {
    ($( $(#[$doc:meta])* $variant:ident = ($status:literal, $slug:literal, $title:literal, $scope:ident), )*) => {
        /// What went wrong, one variant per problem `type`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ProblemKind {
            $( $(#[$doc])* $variant, )*
        }

        impl ProblemKind {
            /// Every kind (generated with the enum, so it cannot miss one).
            pub const ALL: &'static [ProblemKind] = &[$(ProblemKind::$variant),*];

            /// The HTTP status this kind is always answered with.
            pub fn status(self) -> u16 {
                match self { $(ProblemKind::$variant => $status,)* }
            }

            /// Stable machine code: the last segment of the `type` URI.
            pub fn slug(self) -> &'static str {
                match self { $(ProblemKind::$variant => $slug,)* }
            }

            /// Short, human-readable summary (the same for every occurrence).
            pub fn title(self) -> &'static str {
                match self { $(ProblemKind::$variant => $title,)* }
            }

            pub fn scope(self) -> Scope {
                match self { $(ProblemKind::$variant => Scope::$scope,)* }
            }
        }
    };
}

problem_kinds! {
    /// No route has this path.
    RouteNotFound = (404, "route-not-found", "No such route", Router),
    /// The path exists, not with this method (`Allow` lists the methods).
    MethodNotAllowed = (405, "method-not-allowed", "Method not allowed", Router),
    /// Neither `Authorization: Bearer …` nor `X-Tracking-Key` was sent.
    MissingTrackingKey = (401, "missing-tracking-key", "Tracking key required", TrackingKeyAuth),
    /// The presented key is no program's tracking key.
    UnknownTrackingKey = (401, "unknown-tracking-key", "Unknown tracking key", TrackingKeyAuth),
    /// The body is larger than [`crate::request::MAX_BODY_BYTES`].
    PayloadTooLarge = (413, "payload-too-large", "Request body too large", JsonBody),
    /// `Content-Type` is not `application/json`.
    UnsupportedMediaType = (415, "unsupported-media-type", "Unsupported media type", JsonBody),
    /// The body is not JSON (syntax, encoding, empty).
    MalformedJson = (400, "malformed-json", "Malformed JSON", JsonBody),
    /// JSON, but not the expected object: unknown fields, wrong types.
    InvalidRequest = (400, "invalid-request", "Invalid request body", JsonBody),
    /// A failure of ours that is not worth retrying.
    Internal = (500, "internal-error", "Internal error", Server),
    /// A temporary failure of ours (storage, contention): retry after `Retry-After` seconds.
    Unavailable = (503, "temporarily-unavailable", "Temporarily unavailable", Server),
    /// Both or neither of `click_id` and `code`.
    ExactlyOneSource = (400, "exactly-one-source", "Exactly one of click_id and code is required", TrackLead),
    MissingCustomerKey = (400, "missing-customer-key", "Missing or invalid customer key", TrackLead),
    MalformedEmail = (400, "malformed-email", "Malformed e-mail address", TrackLead),
    /// Not a click id of this deployment (format or signature).
    InvalidClickId = (400, "invalid-click-id", "Invalid click id", TrackLead),
    /// A genuine click id whose link is gone.
    UnknownClick = (404, "unknown-click", "Unknown click", TrackLead),
    /// No active link has this code.
    UnknownCode = (404, "unknown-code", "Unknown partner code", TrackLead),
    /// The click, code or `program_id` is of another program than the tracking key's.
    ProgramMismatch = (403, "program-mismatch", "Not a source of this program", TrackLead),
    ExpiredClick = (422, "expired-click", "Click outside the cookie window", TrackLead),
    NoEligibleClick = (422, "no-eligible-click", "No eligible click", TrackLead),
    /// The customer's e-mail is the partner's own; the attempt is flagged for review.
    SelfReferral = (422, "self-referral", "Self-referral", TrackLead),
    ProgramPaused = (422, "program-paused", "Program paused", TrackLead),
    /// The link's partner no longer exists.
    UnknownPartner = (422, "unknown-partner", "Unknown partner", TrackLead),
    /// The partner is suspended, banned or not yet approved: they bind no new customer.
    PartnerInactive = (422, "partner-inactive", "Partner not active", TrackLead),
    /// The click's link is disabled.
    LinkDisabled = (422, "link-disabled", "Link disabled", TrackLead),
    /// The tracking key's program has no configuration (run `partnerctl apply`).
    UnknownProgram = (422, "unknown-program", "Program not configured", TrackLead),
}

impl ProblemKind {
    /// The RFC 9457 `type` URI.
    pub fn type_uri(self) -> String {
        format!("{TYPE_BASE}{}", self.slug())
    }
}

/// One problem answer: its kind, a detail for this occurrence, and extra headers
/// (`WWW-Authenticate`, `Retry-After`, `Allow`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub detail: String,
    pub headers: Vec<(HeaderName, String)>,
}

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_id: Option<&'a str>,
}

impl Problem {
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            kind,
            detail: detail.into(),
            headers: vec![],
        }
    }

    pub fn with_header(mut self, name: HeaderName, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The HTTP answer; `request_id` (API Gateway's) helps support find the logs.
    pub fn into_response(self, request_id: Option<&str>) -> Response<Body> {
        let status = self.kind.status();
        let body = ProblemBody {
            kind: self.kind.type_uri(),
            title: self.kind.title(),
            status,
            detail: &self.detail,
            request_id,
        };
        // Serialising plain strings and numbers cannot fail; keep a valid problem anyway.
        let text = serde_json::to_string(&body).unwrap_or_else(|_| {
            format!(
                "{{\"type\":\"{}\",\"title\":\"{}\",\"status\":{status}}}",
                self.kind.type_uri(),
                self.kind.title()
            )
        });
        let mut resp = response(status, PROBLEM_JSON, text);
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                resp.headers_mut().append(name, v);
            }
        }
        resp
    }
}

/// A response with a body of this content type; never cached (answers depend on the caller).
pub fn response(status: u16, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Seconds a client should wait before retrying a `503`.
pub const RETRY_AFTER_SECS: u32 = 1;

/// The problem for an engine (or storage) failure: ours, so a 5xx, never with internals.
pub fn engine_problem(e: EngineError) -> Problem {
    if e.is_retryable() {
        tracing::warn!(error = %e, "temporary failure");
        Problem::new(
            ProblemKind::Unavailable,
            "a temporary failure; retry the same request (it is idempotent)",
        )
        .with_header(RETRY_AFTER, RETRY_AFTER_SECS.to_string())
    } else {
        tracing::error!(error = %e, "request failed");
        Problem::new(ProblemKind::Internal, "the request could not be processed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn kinds_are_consistent() {
        let slugs: HashSet<_> = ProblemKind::ALL.iter().map(|k| k.slug()).collect();
        assert_eq!(slugs.len(), ProblemKind::ALL.len(), "slugs are unique");
        for k in ProblemKind::ALL {
            assert!((400..600).contains(&k.status()), "{k:?}");
            assert!(k
                .slug()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'-'));
            assert!(!k.title().is_empty());
        }
    }

    #[test]
    fn problem_body_and_headers() {
        let r = Problem::new(ProblemKind::Unavailable, "try again")
            .with_header(lambda_http::http::header::RETRY_AFTER, "1")
            .into_response(Some("req-1"));
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()[CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(r.headers()["retry-after"], "1");
        let v: serde_json::Value = serde_json::from_slice(r.body().as_ref()).expect("json");
        assert_eq!(
            v,
            serde_json::json!({
                "type": "https://docs.partner-engine.dev/problems/temporarily-unavailable",
                "title": "Temporarily unavailable",
                "status": 503,
                "detail": "try again",
                "request_id": "req-1"
            })
        );
    }
}
