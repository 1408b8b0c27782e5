//! Bindings, the part attribution and sales share: what a resolved cause is, writing it as the
//! customer's binding (optimistic, with history), and flagging a self-referral.
//!
//! Rules (`rules::attribution`): one order decides among causes ([`rules::attribution::
//! choose_cause`]); once a customer has a paid sale only an operator moves them
//! ([`rules::attribution::rebind_decision`]); concurrent binds of one customer meet on the
//! binding's version and decide again.

use rules::attribution::{
    is_self_referral, rebind_decision, BindingCause, CauseCandidate, RebindDecision,
};
use rules::Program;
use storage::customers::{self, BindingHistoryRow, BindingRow, FlagRow, SalesStateRow};
use storage::partners::Partner;
use storage::{StoreError, Tx};

use crate::{utc, Engine, EngineError, OPTIMISTIC_ATTEMPTS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindOutcome {
    /// The customer is now bound to this partner (new binding or a move).
    Bound {
        program_id: String,
        partner_id: String,
    },
    /// Nothing changed: the customer stays with this partner.
    AlreadyBound {
        program_id: String,
        partner_id: String,
    },
    /// Refused: the caller's input is at fault (4xx) or the rules say no (self-referral).
    Rejected(BindRejection),
}

/// Why a binding was refused. Each is the caller's input or a rule, never our fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindRejection {
    #[error("customer key is missing or not a valid id")]
    MissingCustomerKey,
    #[error("e-mail {0:?} is malformed")]
    MalformedEmail(String),
    #[error("click id is not valid (bad signature or format)")]
    InvalidClickId,
    #[error("click id refers to no known link")]
    UnknownClick,
    #[error("the click is older than the program's cookie window")]
    ExpiredClick,
    #[error("no click of this visitor counts (after the customer's first paid sale, or outside the window)")]
    NoEligibleClick,
    #[error("unknown or disabled partner code")]
    UnknownCode,
    #[error("unknown promotion code")]
    UnknownCoupon,
    #[error("no invitation for this e-mail in the program")]
    NoInvitation,
    #[error("program_id is required for this kind of binding")]
    ProgramRequired,
    #[error("unknown program")]
    UnknownProgram,
    #[error("the source belongs to program {actual}, not {requested}")]
    ProgramMismatch { requested: String, actual: String },
    #[error("the program is paused")]
    ProgramPaused,
    #[error("unknown partner")]
    UnknownPartner,
    #[error("the customer's e-mail is the partner's own (self-referral); flagged for review")]
    SelfReferral,
    #[error("the partner is not active (suspended, banned or not yet approved) and binds no one")]
    PartnerInactive,
    #[error("the click's link is disabled")]
    LinkDisabled,
}

impl BindRejection {
    /// Stable machine code (problem+json `type` suffix).
    pub fn code(&self) -> &'static str {
        match self {
            BindRejection::MissingCustomerKey => "missing-customer-key",
            BindRejection::MalformedEmail(_) => "malformed-email",
            BindRejection::InvalidClickId => "invalid-click-id",
            BindRejection::UnknownClick => "unknown-click",
            BindRejection::ExpiredClick => "expired-click",
            BindRejection::NoEligibleClick => "no-eligible-click",
            BindRejection::UnknownCode => "unknown-code",
            BindRejection::UnknownCoupon => "unknown-coupon",
            BindRejection::NoInvitation => "no-invitation",
            BindRejection::ProgramRequired => "program-required",
            BindRejection::UnknownProgram => "unknown-program",
            BindRejection::ProgramMismatch { .. } => "program-mismatch",
            BindRejection::ProgramPaused => "program-paused",
            BindRejection::UnknownPartner => "unknown-partner",
            BindRejection::SelfReferral => "self-referral",
            BindRejection::PartnerInactive => "partner-inactive",
            BindRejection::LinkDisabled => "link-disabled",
        }
    }
}

/// A cause resolved to its program and partner, ready to be written as a binding.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub program: Program,
    pub partner_id: String,
    pub cause: BindingCause,
    pub cause_at_ms: i64,
    /// An operator's assignment (moves even a customer with a paid sale).
    pub manual: bool,
    /// Set when the cause is another customer key's binding found by e-mail (that key).
    pub via_email_of: Option<String>,
}

impl Resolved {
    pub(crate) fn as_cause(&self) -> CauseCandidate {
        CauseCandidate {
            partner_id: self.partner_id.clone(),
            cause: self.cause.clone(),
            at: utc(self.cause_at_ms),
        }
    }
}

fn cause_of(b: &BindingRow) -> CauseCandidate {
    CauseCandidate {
        partner_id: b.partner_id.clone(),
        cause: b.cause.clone(),
        at: utc(b.cause_at_ms),
    }
}

/// Record a flagged self-referral attempt (idempotent per customer and business time).
pub(crate) async fn flag_self_referral(
    engine: &Engine,
    program_id: &str,
    customer_key: &str,
    partner_id: &str,
    email: Option<&str>,
    at_ms: i64,
    source_event: &str,
) -> Result<(), EngineError> {
    let row = FlagRow {
        program_id: program_id.into(),
        customer_key: customer_key.into(),
        partner_id: partner_id.into(),
        customer_email: email.map(str::to_string),
        reason: "self_referral".into(),
        at_ms,
        source_event: source_event.into(),
    };
    Ok(customers::put_flag(&engine.table, &row).await?)
}

/// True (and flagged) when the customer's e-mail is the partner's own.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn refuse_self_referral(
    engine: &Engine,
    program_id: &str,
    customer_key: &str,
    partner: &Partner,
    email: Option<&str>,
    at_ms: i64,
    source_event: &str,
) -> Result<bool, EngineError> {
    let Some(e) = email else { return Ok(false) };
    if !is_self_referral(e, &partner.email) {
        return Ok(false);
    }
    flag_self_referral(
        engine,
        program_id,
        customer_key,
        &partner.partner_id,
        Some(e),
        at_ms,
        source_event,
    )
    .await?;
    Ok(true)
}

/// A binding written or kept, and the binding that stands afterwards (so callers need not read
/// it again).
#[derive(Debug, Clone)]
pub struct Written {
    pub outcome: BindOutcome,
    pub binding: Option<BindingRow>,
    /// The binding moved to another partner (not by an operator) while the customer already had
    /// booked sales: those the new binding covers must be re-attributed to it
    /// (`sales::booking::reattribute_customer`), so that the first commission and the binding
    /// always name the same partner whatever the arrival order.
    pub reattribute: bool,
}

/// Write `r` as the customer's binding unless the rules keep the existing one
/// ([`rebind_decision`]). `first_read` is the binding and sales state the caller has just read
/// (used for the first attempt only). `for_sale_at_ms` is the payment time of the sale the
/// binding is written for (a sale-time fallback): causes after it do not count for that sale.
///
/// The write is conditional on the binding's version and on the customer's sales state (no
/// booking since the decision), so a bind and a booking of the customer meet inside their
/// transactions; whichever commits second reads again and decides again.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn write_binding(
    engine: &Engine,
    customer_key: &str,
    email: Option<&str>,
    r: &Resolved,
    at_ms: i64,
    source_event: &str,
    first_read: Option<(Option<BindingRow>, SalesStateRow)>,
    for_sale_at_ms: Option<i64>,
) -> Result<Written, EngineError> {
    let t = &engine.table;
    let program_id = r.program.id.clone();
    let mut first_read = first_read;
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        let (existing, state) = match first_read.take() {
            Some(read) => read,
            None => customers::binding_and_sales_state(t, &program_id, customer_key).await?,
        };
        let cut = match (state.first_paid_sale_at_ms, for_sale_at_ms) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let (version, action, previous) = match &existing {
            None => (1, "bound", None),
            Some(b) => {
                let decision = rebind_decision(
                    r.program.attribution,
                    &cause_of(b),
                    &r.as_cause(),
                    r.manual,
                    cut.map(utc),
                );
                if decision == RebindDecision::Keep {
                    return Ok(Written {
                        outcome: BindOutcome::AlreadyBound {
                            program_id,
                            partner_id: b.partner_id.clone(),
                        },
                        binding: existing.clone(),
                        reattribute: false,
                    });
                }
                (
                    b.version + 1,
                    if r.manual { "manual" } else { "rebound" },
                    Some(b.partner_id.clone()),
                )
            }
        };
        let email = email
            .map(str::to_string)
            .or_else(|| existing.as_ref().and_then(|b| b.email.clone()));
        let row = BindingRow {
            program_id: program_id.clone(),
            customer_key: customer_key.into(),
            email,
            partner_id: r.partner_id.clone(),
            cause: r.cause.clone(),
            cause_at_ms: r.cause_at_ms,
            bound_at_ms: at_ms,
            version,
            source_event: source_event.into(),
            via_email_of: r.via_email_of.clone(),
        };
        let hist = BindingHistoryRow {
            program_id: program_id.clone(),
            customer_key: customer_key.into(),
            action: action.into(),
            partner_id: r.partner_id.clone(),
            previous_partner_id: previous.clone(),
            cause: r.cause.clone(),
            cause_at_ms: r.cause_at_ms,
            at_ms,
            version,
            source_event: source_event.into(),
        };
        let mut tx = Tx::new();
        customers::write_binding(&mut tx, &row, &hist, state.version)?;
        match tx.commit(t).await {
            Ok(()) => {
                let partner_changed = previous.as_deref().is_some_and(|p| p != r.partner_id);
                // Only the cause moved: the customer stays with the same partner.
                let outcome = if previous.as_deref() == Some(r.partner_id.as_str()) {
                    BindOutcome::AlreadyBound {
                        program_id,
                        partner_id: r.partner_id.clone(),
                    }
                } else {
                    BindOutcome::Bound {
                        program_id,
                        partner_id: r.partner_id.clone(),
                    }
                };
                return Ok(Written {
                    outcome,
                    binding: Some(row),
                    reattribute: partner_changed && !r.manual && state.version > 0,
                });
            }
            // a concurrent bind or booking came first; read again and decide again
            Err(StoreError::ConditionFailed { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Contention {
        attempts: OPTIMISTIC_ATTEMPTS,
    }
    .into())
}
