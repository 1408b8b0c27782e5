//! Binding customers to partners: by click id, partner code, coupon, invitation or by hand.
//!
//! Rules (see `rules::attribution`): the program's model picks among the visitor's clicks within
//! the cookie window (first or last click); once a customer has a paid sale, later causes no longer
//! move them (only an operator does); a customer whose e-mail is the partner's own is not bound
//! and the attempt is flagged; only an active partner binds, and a click only through an active
//! link (`rules::partner::can_bind`: a disabled link's click, or a suspended, banned or pending
//! partner's click, code, coupon or invitation, no longer binds; an operator still may). Every binding records its cause and when, in business time, and
//! keeps a history. Concurrent binds of one customer meet on the binding's version and retry.

use std::collections::{BTreeMap, BTreeSet};

use rules::attribution::{
    choose_click, is_self_referral, normalize_email, BindingCause, ClickCandidate, CookieWindow,
};
use rules::{PartnerStatus, Program, ProgramStatus};
use storage::customers::{self, InviteRow};
use storage::links::{self, LinkStatus};
use storage::{keys, partners, programs, StoreError, Tx};

use crate::binding::{refuse_self_referral, write_binding};
pub use crate::binding::{BindOutcome, BindRejection, Resolved};
use crate::{sales, utc, Engine, EngineError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindSource {
    /// A click id (`ref_click`, Stripe `client_reference_id` or `metadata.ref_click`).
    ClickId(String),
    /// A partner's link code given at sign-up.
    Code(String),
    /// A promotion code assigned to a partner.
    Coupon(String),
    /// The customer's e-mail was invited by a partner (`email` and `program_id` required).
    Invite,
    /// An operator assigns the customer (`program_id` required).
    Manual {
        partner_id: String,
        reason: String,
        operator: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindRequest {
    /// Required for `Invite` and `Manual`; otherwise checked against the source's program.
    pub program_id: Option<String>,
    /// Payment provider customer id (`cus_…`) or the merchant's own id.
    pub customer_key: String,
    pub email: Option<String>,
    pub source: BindSource,
    /// Business time of the request or event.
    pub at_ms: i64,
    /// What delivered it (`api:…`, `stripe:evt_…`, `operator:…`).
    pub source_event: String,
}

type Decided<T> = Result<T, BindRejection>;

/// Bind a customer to a partner. Idempotent: the same request again answers `AlreadyBound`.
/// A successful (new) binding also books the customer's paid invoices that were waiting for
/// attribution and came after the cause.
pub async fn bind(engine: &Engine, req: BindRequest) -> Result<BindOutcome, EngineError> {
    if !keys::safe_id(&req.customer_key) {
        return Ok(BindOutcome::Rejected(BindRejection::MissingCustomerKey));
    }
    let email = match &req.email {
        None => None,
        Some(e) if e.trim().is_empty() => None,
        Some(e) => match normalize_email(e) {
            Ok(n) => Some(n.to_string()),
            Err(_) => {
                return Ok(BindOutcome::Rejected(BindRejection::MalformedEmail(
                    e.clone(),
                )))
            }
        },
    };
    let resolved = match resolve(engine, &req, email.as_deref()).await? {
        Ok(r) => r,
        Err(rej) => return Ok(BindOutcome::Rejected(rej)),
    };
    if resolved.program.status == ProgramStatus::Paused && !resolved.manual {
        return Ok(BindOutcome::Rejected(BindRejection::ProgramPaused));
    }
    bind_resolved(
        engine,
        &req.customer_key,
        email.as_deref(),
        resolved,
        req.at_ms,
        &req.source_event,
    )
    .await
}

/// Bind with an already resolved source: self-referral check, write, then late booking.
pub(crate) async fn bind_resolved(
    engine: &Engine,
    customer_key: &str,
    email: Option<&str>,
    resolved: Resolved,
    at_ms: i64,
    source_event: &str,
) -> Result<BindOutcome, EngineError> {
    let t = &engine.table;
    let Some(partner) = partners::get_partner(t, &resolved.partner_id).await? else {
        return Ok(BindOutcome::Rejected(BindRejection::UnknownPartner));
    };
    // A suspended, banned or pending partner binds no one (an operator still may). The link
    // half of the rule was applied where the link was read (a code or click of a disabled link
    // never resolves here).
    if !resolved.manual && !rules::partner::can_bind(partner.status, true) {
        return Ok(BindOutcome::Rejected(BindRejection::PartnerInactive));
    }
    if refuse_self_referral(
        engine,
        &resolved.program.id,
        customer_key,
        &partner,
        email,
        at_ms,
        source_event,
    )
    .await?
    {
        return Ok(BindOutcome::Rejected(BindRejection::SelfReferral));
    }
    let written = write_binding(
        engine,
        customer_key,
        email,
        &resolved,
        at_ms,
        source_event,
        None,
        None,
    )
    .await?;
    // Whatever the outcome, a customer left bound gets their waiting sales booked: a retry of a
    // bind that died after writing the binding (and answers `already_bound`) still books them.
    if let Some(binding) = &written.binding {
        if written.reattribute {
            sales::booking::reattribute_customer(engine, &resolved.program, binding).await?;
        }
        sales::waiting::book_waiting_sales(engine, &resolved.program, binding, email).await?;
    }
    Ok(written.outcome)
}

async fn program_of(engine: &Engine, id: &str) -> Result<Decided<Program>, EngineError> {
    Ok(engine
        .catalog
        .program(&engine.table, id)
        .await?
        .map(|p| (*p).clone())
        .ok_or(BindRejection::UnknownProgram))
}

fn check_program(req: &BindRequest, actual: &str) -> Decided<()> {
    match &req.program_id {
        Some(p) if p != actual => Err(BindRejection::ProgramMismatch {
            requested: p.clone(),
            actual: actual.to_string(),
        }),
        _ => Ok(()),
    }
}

async fn resolve(
    engine: &Engine,
    req: &BindRequest,
    email: Option<&str>,
) -> Result<Decided<Resolved>, EngineError> {
    let t = &engine.table;
    match &req.source {
        BindSource::ClickId(id) => resolve_click(engine, req, id).await,
        BindSource::Code(code) => {
            let Some(link) = links::get_link(t, code)
                .await?
                .filter(|l| l.status == LinkStatus::Active)
            else {
                return Ok(Err(BindRejection::UnknownCode));
            };
            if let Err(r) = check_program(req, &link.program_id) {
                return Ok(Err(r));
            }
            let program = match program_of(engine, &link.program_id).await? {
                Ok(p) => p,
                Err(r) => return Ok(Err(r)),
            };
            Ok(Ok(Resolved {
                program,
                partner_id: link.partner_id,
                cause: BindingCause::Code { code: code.clone() },
                cause_at_ms: req.at_ms,
                manual: false,
                via_email_of: None,
            }))
        }
        BindSource::Coupon(code) => {
            let Some(promo) = programs::get_promotion_code(t, code).await? else {
                return Ok(Err(BindRejection::UnknownCoupon));
            };
            if let Err(r) = check_program(req, &promo.program_id) {
                return Ok(Err(r));
            }
            let program = match program_of(engine, &promo.program_id).await? {
                Ok(p) => p,
                Err(r) => return Ok(Err(r)),
            };
            Ok(Ok(Resolved {
                program,
                partner_id: promo.partner_id,
                cause: BindingCause::Coupon {
                    promotion_code: code.clone(),
                },
                cause_at_ms: req.at_ms,
                manual: false,
                via_email_of: None,
            }))
        }
        BindSource::Invite => {
            let (Some(pid), Some(e)) = (&req.program_id, email) else {
                return Ok(Err(BindRejection::ProgramRequired));
            };
            let program = match program_of(engine, pid).await? {
                Ok(p) => p,
                Err(r) => return Ok(Err(r)),
            };
            let Some(inv) = customers::get_invite(t, pid, e).await? else {
                return Ok(Err(BindRejection::NoInvitation));
            };
            Ok(Ok(Resolved {
                program,
                partner_id: inv.partner_id,
                cause: BindingCause::Invite,
                cause_at_ms: inv.at_ms,
                manual: false,
                via_email_of: None,
            }))
        }
        BindSource::Manual {
            partner_id,
            reason,
            operator,
        } => {
            let Some(pid) = &req.program_id else {
                return Ok(Err(BindRejection::ProgramRequired));
            };
            let program = match program_of(engine, pid).await? {
                Ok(p) => p,
                Err(r) => return Ok(Err(r)),
            };
            Ok(Ok(Resolved {
                program,
                partner_id: partner_id.clone(),
                cause: BindingCause::Manual {
                    reason: reason.clone(),
                    operator: operator.clone(),
                },
                cause_at_ms: req.at_ms,
                manual: true,
                via_email_of: None,
            }))
        }
    }
}

async fn resolve_click(
    engine: &Engine,
    req: &BindRequest,
    click_id: &str,
) -> Result<Decided<Resolved>, EngineError> {
    let t = &engine.table;
    let Ok(claims) = engine.keys.verify_click_id(click_id) else {
        return Ok(Err(BindRejection::InvalidClickId));
    };
    // The click item may be missing (the redirect answered before its write landed): the id's
    // signature proves the link and the time.
    let click = links::get_click(t, click_id).await?;
    let code = match (&click, claims.link_code()) {
        (Some(c), _) => c.link_code.clone(),
        (None, Some(code)) => code.to_string(),
        (None, None) => return Ok(Err(BindRejection::UnknownClick)),
    };
    if !claims.is_for_link(&code) {
        return Ok(Err(BindRejection::UnknownClick));
    }
    let Some(link) = links::get_link(t, &code).await? else {
        return Ok(Err(BindRejection::UnknownClick));
    };
    if let Err(r) = check_program(req, &link.program_id) {
        return Ok(Err(r));
    }
    let program = match program_of(engine, &link.program_id).await? {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    let window = CookieWindow {
        cookie_days: program.cookie_days,
    };
    if window.expired(utc(claims.at_ms), utc(req.at_ms)) {
        return Ok(Err(BindRejection::ExpiredClick));
    }
    // Every click of this visitor in this program is a candidate; the presented one always is.
    let presented = ClickCandidate {
        click_id: click_id.to_string(),
        partner_id: link.partner_id.clone(),
        link_code: code,
        clicked_at: utc(claims.at_ms),
    };
    let mut candidates = vec![presented];
    if let Some(c) = &click {
        for other in links::visitor_clicks(t, &c.visitor_id).await? {
            if other.program_id == program.id && other.click_id != click_id {
                candidates.push(ClickCandidate {
                    click_id: other.click_id,
                    partner_id: other.partner_id,
                    link_code: other.link_code,
                    clicked_at: utc(other.at_ms),
                });
            }
        }
    }
    let candidates = match bindable_clicks(t, candidates, link.status == LinkStatus::Active).await?
    {
        Ok(c) => c,
        Err(r) => return Ok(Err(r)),
    };
    let state = customers::sales_state(t, &program.id, &req.customer_key).await?;
    // A click in the future of the request (clock skew between the edge and the merchant) counts
    // at the request's time.
    let at = utc(req.at_ms.max(claims.at_ms));
    let winner = match choose_click(
        program.attribution,
        &candidates,
        program.cookie_days,
        at,
        state.first_paid_sale_at_ms.map(utc),
    ) {
        Some(w) => w.clone(),
        // Only clicks after the customer's first paid sale: they cannot move the customer, and
        // the binding decision below keeps whoever has the credit.
        None if state.first_paid_sale_at_ms.is_some() => candidates[0].clone(),
        None => return Ok(Err(BindRejection::NoEligibleClick)),
    };
    Ok(Ok(Resolved {
        partner_id: winner.partner_id,
        cause: BindingCause::Click {
            click_id: winner.click_id,
        },
        cause_at_ms: winner.clicked_at.timestamp_millis(),
        program,
        manual: false,
        via_email_of: None,
    }))
}

/// The candidates that still bind (`rules::partner::can_bind`): clicks of an active link of a
/// partner who can bind; the presented click (first) has its link's status read already. With
/// only the presented click, its partner is checked when the binding is written
/// ([`bind_resolved`], which reads the partner anyway); with others, the links and partners of
/// all are read in one request, so a click that no longer binds cannot win under the model.
async fn bindable_clicks(
    t: &storage::Table,
    candidates: Vec<ClickCandidate>,
    presented_link_active: bool,
) -> Result<Decided<Vec<ClickCandidate>>, EngineError> {
    let refusal = if presented_link_active {
        BindRejection::PartnerInactive
    } else {
        BindRejection::LinkDisabled
    };
    if candidates.len() <= 1 {
        return Ok(if presented_link_active {
            Ok(candidates)
        } else {
            Err(refusal)
        });
    }
    let codes: BTreeSet<&str> = candidates[1..]
        .iter()
        .map(|c| c.link_code.as_str())
        .collect();
    let partner_ids: BTreeSet<&str> = candidates.iter().map(|c| c.partner_id.as_str()).collect();
    let (found_links, found_partners) = links::links_and_partners(
        t,
        &codes.into_iter().collect::<Vec<_>>(),
        &partner_ids.into_iter().collect::<Vec<_>>(),
    )
    .await?;
    let status: BTreeMap<&str, PartnerStatus> = found_partners
        .iter()
        .map(|p| (p.partner_id.as_str(), p.status))
        .collect();
    let active_links: BTreeSet<&str> = found_links
        .iter()
        .filter(|l| l.status == LinkStatus::Active)
        .map(|l| l.code.as_str())
        .collect();
    let kept: Vec<ClickCandidate> = candidates
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            let link_active = if *i == 0 {
                presented_link_active
            } else {
                active_links.contains(c.link_code.as_str())
            };
            status
                .get(c.partner_id.as_str())
                .is_some_and(|s| rules::partner::can_bind(*s, link_active))
        })
        .map(|(_, c)| c.clone())
        .collect();
    Ok(if kept.is_empty() {
        Err(refusal)
    } else {
        Ok(kept)
    })
}

/// A partner invites a friend by e-mail: the e-mail is pre-attributed to the partner in the
/// program, and the invitation goes out through the outbox. Idempotent per (program, e-mail):
/// the first invitation keeps the credit.
pub async fn invite(
    engine: &Engine,
    program_id: &str,
    partner_id: &str,
    email: &str,
    at_ms: i64,
) -> Result<Result<(), BindRejection>, EngineError> {
    let Ok(email) = normalize_email(email) else {
        return Ok(Err(BindRejection::MalformedEmail(email.to_string())));
    };
    let email = email.to_string();
    let Some(partner) = partners::get_partner(&engine.table, partner_id).await? else {
        return Ok(Err(BindRejection::UnknownPartner));
    };
    if engine
        .catalog
        .program(&engine.table, program_id)
        .await?
        .is_none()
    {
        return Ok(Err(BindRejection::UnknownProgram));
    }
    if is_self_referral(&email, &partner.email) {
        return Ok(Err(BindRejection::SelfReferral));
    }
    let row = InviteRow {
        program_id: program_id.into(),
        email: email.clone(),
        partner_id: partner_id.into(),
        at_ms,
    };
    let env = messages::Envelope {
        id: format!("partner-invite:{program_id}:{email}"),
        at_ms,
        message: messages::Message::PartnerInvite {
            partner_id: partner_id.into(),
            program_id: program_id.into(),
            email: email.clone(),
        },
    };
    let mut tx = Tx::new();
    customers::invite_once(&mut tx, &row)?;
    storage::outbox::enqueue(&mut tx, &env)?;
    match tx.commit(&engine.table).await {
        Ok(()) | Err(StoreError::AlreadyDone) => {}
        Err(e) => return Err(e.into()),
    }
    engine.deliver_outbox(&[env.id]).await;
    Ok(Ok(()))
}

/// Record that `partner_id` joined `program_id` through `recruiter_code` (a link code or a
/// partner id of the recruiter): the recruiter earns tier 2 on the new partner's sales.
/// Refuses self-recruitment and a recruiter from another program. Idempotent.
pub async fn record_recruitment(
    engine: &Engine,
    program_id: &str,
    partner_id: &str,
    recruiter_code: &str,
) -> Result<Result<String, BindRejection>, EngineError> {
    let t = &engine.table;
    let recruiter = match links::get_link(t, recruiter_code).await? {
        Some(l) if l.program_id == program_id && l.status == LinkStatus::Active => l.partner_id,
        Some(_) => return Ok(Err(BindRejection::UnknownCode)),
        None => match partners::get_membership(t, recruiter_code, program_id).await? {
            Some(m) => m.membership.partner_id,
            None => return Ok(Err(BindRejection::UnknownCode)),
        },
    };
    if recruiter == partner_id {
        return Ok(Err(BindRejection::SelfReferral));
    }
    if partners::get_partner(t, partner_id).await?.is_none() {
        return Ok(Err(BindRejection::UnknownPartner));
    }
    let existing = partners::get_membership(t, partner_id, program_id).await?;
    let mut row = existing.unwrap_or(partners::MembershipRow {
        membership: rules::Membership {
            partner_id: partner_id.into(),
            program_id: program_id.into(),
            level: 0,
            recruiter: None,
        },
        level_history: Default::default(),
    });
    match &row.membership.recruiter {
        Some(r) if r == &recruiter => return Ok(Ok(recruiter)),
        Some(r) => return Ok(Ok(r.clone())), // the first recruiter keeps the credit
        None => row.membership.recruiter = Some(recruiter.clone()),
    }
    let mut tx = Tx::new();
    partners::set_recruiter_once(&mut tx, &row)?;
    match tx.commit(t).await {
        Ok(()) => Ok(Ok(recruiter)),
        Err(StoreError::ConditionFailed { .. }) => {
            let m = partners::get_membership(t, partner_id, program_id).await?;
            Ok(Ok(m
                .and_then(|m| m.membership.recruiter)
                .unwrap_or(recruiter)))
        }
        Err(e) => Err(e.into()),
    }
}
