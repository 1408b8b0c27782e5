//! `POST /v1/track/lead`: the merchant's backend reports a sign-up (a lead) with the click id or
//! partner code that brought it, and the customer is bound to that partner.
//!
//! | input | answer |
//! |---|---|
//! | new binding | `201` `{"status":"bound", …}` |
//! | the customer already is this partner's (a repeat, or the model keeps an earlier partner) | `200` `{"status":"already_bound", …}` with the partner who keeps the customer |
//! | both or neither of `click_id` / `code` | `400 exactly-one-source` |
//! | missing, blank or invalid `customer_key` | `400 missing-customer-key` |
//! | malformed `email` | `400 malformed-email` |
//! | a click id this deployment did not sign | `400 invalid-click-id` |
//! | a genuine click id whose link is gone / an unknown or disabled code | `404 unknown-click` / `404 unknown-code` |
//! | `program_id`, click or code of another program than the key's | `403 program-mismatch` |
//! | click older than the cookie window; no counting click; self-referral (flagged); paused program; link's partner gone; partner suspended, banned or not approved; click of a disabled link; key's program not configured | `422` (`expired-click`, `no-eligible-click`, `self-referral`, `program-paused`, `unknown-partner`, `partner-inactive`, `link-disabled`, `unknown-program`) |
//!
//! Strings are trimmed; a blank `click_id`, `code`, `email` or `program_id` counts as absent.
//! Nothing is written for any 4xx except `self-referral`, which records a flag for review.

use engine::attribution::{BindOutcome, BindRejection, BindRequest, BindSource};
use lambda_http::{Body, Response};
use serde::{Deserialize, Serialize};

use crate::ports::LeadTracker;
use crate::problem::{self, Problem, ProblemKind};
use crate::request::{self, RequestInfo};

/// The request body (unknown fields are refused).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrackLeadBody {
    /// The click id the redirect handed to the merchant (`ref_click`).
    #[serde(default)]
    pub click_id: Option<String>,
    /// A partner's link code entered at sign-up.
    #[serde(default)]
    pub code: Option<String>,
    /// The payment provider's customer id (Stripe `cus_…`) when there is one, else the
    /// merchant's own id for the customer.
    #[serde(default)]
    pub customer_key: Option<String>,
    /// The customer's e-mail: matches later sales when the customer key does not.
    #[serde(default)]
    pub email: Option<String>,
    /// The program; when given it must be the tracking key's.
    #[serde(default)]
    pub program_id: Option<String>,
}

/// The success body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrackLeadAnswer {
    pub program_id: String,
    pub partner_id: String,
    pub customer_key: String,
    pub status: LeadStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    /// Newly bound (or moved) to the partner: `201`.
    Bound,
    /// Nothing changed, the customer stays with the partner: `200`.
    AlreadyBound,
}

impl LeadStatus {
    pub fn http_status(self) -> u16 {
        match self {
            LeadStatus::Bound => 201,
            LeadStatus::AlreadyBound => 200,
        }
    }
}

fn present(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// The problem for an engine rejection. Rejections this route cannot cause (coupon, invitation,
/// manual binding) would be our bug: internal error.
pub fn rejection_problem(r: &BindRejection) -> Problem {
    let kind = match r {
        BindRejection::MissingCustomerKey => ProblemKind::MissingCustomerKey,
        BindRejection::MalformedEmail(_) => ProblemKind::MalformedEmail,
        BindRejection::InvalidClickId => ProblemKind::InvalidClickId,
        BindRejection::UnknownClick => ProblemKind::UnknownClick,
        BindRejection::ExpiredClick => ProblemKind::ExpiredClick,
        BindRejection::NoEligibleClick => ProblemKind::NoEligibleClick,
        BindRejection::UnknownCode => ProblemKind::UnknownCode,
        BindRejection::ProgramMismatch { .. } => ProblemKind::ProgramMismatch,
        BindRejection::ProgramPaused => ProblemKind::ProgramPaused,
        BindRejection::UnknownPartner => ProblemKind::UnknownPartner,
        BindRejection::UnknownProgram => ProblemKind::UnknownProgram,
        BindRejection::SelfReferral => ProblemKind::SelfReferral,
        BindRejection::PartnerInactive => ProblemKind::PartnerInactive,
        BindRejection::LinkDisabled => ProblemKind::LinkDisabled,
        BindRejection::UnknownCoupon
        | BindRejection::NoInvitation
        | BindRejection::ProgramRequired => {
            tracing::error!(
                rejection = r.code(),
                "unexpected rejection for a click or code binding"
            );
            return Problem::new(ProblemKind::Internal, "the request could not be processed");
        }
    };
    let detail = match r {
        // Do not name the other program.
        BindRejection::ProgramMismatch { .. } => {
            "the click or code belongs to another program than the tracking key's".to_string()
        }
        BindRejection::UnknownProgram => {
            "the tracking key's program has no configuration".to_string()
        }
        other => other.to_string(),
    };
    Problem::new(kind, detail)
}

/// The answer to a well-formed request authenticated with the tracking key of `key_program`.
pub async fn track<T: LeadTracker + ?Sized>(
    tracker: &T,
    key_program: &str,
    body: TrackLeadBody,
    info: &RequestInfo,
) -> Result<TrackLeadAnswer, Problem> {
    let source = match (present(body.click_id), present(body.code)) {
        (Some(c), None) => BindSource::ClickId(c),
        (None, Some(c)) => BindSource::Code(c),
        (Some(_), Some(_)) => {
            return Err(Problem::new(
                ProblemKind::ExactlyOneSource,
                "send either click_id or code, not both",
            ))
        }
        (None, None) => {
            return Err(Problem::new(
                ProblemKind::ExactlyOneSource,
                "send click_id (the ref_click value) or code (a partner code)",
            ))
        }
    };
    if let Some(p) = present(body.program_id) {
        if p != key_program {
            return Err(Problem::new(
                ProblemKind::ProgramMismatch,
                "program_id is not the tracking key's program",
            ));
        }
    }
    let Some(at_ms) = info.at_ms else {
        tracing::error!("event without requestContext.timeEpoch: no business time");
        return Err(Problem::new(
            ProblemKind::Internal,
            "the request could not be processed",
        ));
    };
    let customer_key = body
        .customer_key
        .map(|k| k.trim().to_string())
        .unwrap_or_default();
    let req = BindRequest {
        program_id: Some(key_program.to_string()),
        customer_key: customer_key.clone(),
        email: present(body.email),
        source,
        at_ms,
        source_event: format!("api:{}", info.request_id.as_deref().unwrap_or("unknown")),
    };
    let outcome = tracker
        .bind(req)
        .await
        .map_err(crate::problem::engine_problem)?;
    let (program_id, partner_id, status) = match outcome {
        BindOutcome::Bound {
            program_id,
            partner_id,
        } => (program_id, partner_id, LeadStatus::Bound),
        BindOutcome::AlreadyBound {
            program_id,
            partner_id,
        } => (program_id, partner_id, LeadStatus::AlreadyBound),
        BindOutcome::Rejected(r) => return Err(rejection_problem(&r)),
    };
    Ok(TrackLeadAnswer {
        program_id,
        partner_id,
        customer_key,
        status,
    })
}

/// The whole route, from an authenticated request to an answer.
pub async fn handle<T: LeadTracker + ?Sized>(
    tracker: &T,
    key_program: &str,
    req: &lambda_http::Request,
    info: &RequestInfo,
) -> Result<Response<Body>, Problem> {
    let body: TrackLeadBody = request::json_body(req)?;
    let answer = track(tracker, key_program, body, info).await?;
    let status = answer.status.http_status();
    tracing::info!(
        program_id = %answer.program_id,
        partner_id = %answer.partner_id,
        outcome = ?answer.status,
        "lead tracked"
    );
    let text = serde_json::to_string(&answer).map_err(|e| {
        tracing::error!(error = %e, "encoding the answer failed");
        Problem::new(ProblemKind::Internal, "the request could not be processed")
    })?;
    Ok(problem::response(status, "application/json", text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every rejection the engine can give, with the kind it maps to.
    pub(crate) fn all_rejections() -> Vec<BindRejection> {
        vec![
            BindRejection::MissingCustomerKey,
            BindRejection::MalformedEmail("x".into()),
            BindRejection::InvalidClickId,
            BindRejection::UnknownClick,
            BindRejection::ExpiredClick,
            BindRejection::NoEligibleClick,
            BindRejection::UnknownCode,
            BindRejection::UnknownCoupon,
            BindRejection::NoInvitation,
            BindRejection::ProgramRequired,
            BindRejection::UnknownProgram,
            BindRejection::ProgramMismatch {
                requested: "a".into(),
                actual: "b".into(),
            },
            BindRejection::ProgramPaused,
            BindRejection::UnknownPartner,
            BindRejection::SelfReferral,
            BindRejection::PartnerInactive,
            BindRejection::LinkDisabled,
        ]
    }

    #[test]
    fn rejections_keep_the_engine_code_and_stay_in_scope() {
        let route = crate::router::Route::TrackLead;
        for r in all_rejections() {
            let p = rejection_problem(&r);
            assert!(route.problems().contains(&p.kind), "{r:?}");
            if p.kind != ProblemKind::Internal {
                assert_eq!(p.kind.slug(), r.code(), "{r:?}");
                assert!((400..500).contains(&p.status()), "{r:?}");
            }
        }
        let p = rejection_problem(&BindRejection::ProgramMismatch {
            requested: "mine".into(),
            actual: "secret".into(),
        });
        assert_eq!(p.status(), 403);
        assert!(!p.detail.contains("secret"));
    }

    #[test]
    fn body_shape() {
        let b: TrackLeadBody =
            serde_json::from_str(r#"{"code":"alice","customer_key":"cus_1","email":null}"#)
                .expect("body");
        assert_eq!(b.code.as_deref(), Some("alice"));
        assert_eq!(b.email, None);
        assert!(serde_json::from_str::<TrackLeadBody>(
            r#"{"code":"alice","customer_key":"cus_1","coupon":"x"}"#
        )
        .is_err());
        assert_eq!(present(Some("  ".into())), None);
        assert_eq!(present(Some(" a ".into())), Some("a".into()));
    }
}
