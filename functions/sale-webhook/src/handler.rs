//! The thin handler: verify, interpret, hand to the sink, answer.
//!
//! Status codes: 400 only for a missing or bad signature (nothing is read or written); 500 only
//! for a transient failure (storage throttled or unreachable, Stripe's API unavailable), so that
//! Stripe delivers the event again; 200 for everything else. What cannot be processed and would
//! not be by a retry (a payload we cannot fully read, an event this deployment refuses, a
//! permanent failure of ours) is kept as a needs-attention record first (`outcome:
//! needs_attention`), for an operator to fix and replay (`partnerctl attention`). If that record
//! cannot be written, the answer is 500: nothing is lost.

use std::sync::Arc;

use lambda_http::http::{header::ALLOW, HeaderValue, Method};
use lambda_http::{Body, Request, Response};
use storage::SharedClock;
use tracing::{debug, error, info, warn, Instrument};

use crate::interpret::{
    self, interpret, reason_code, Action, Envelope, Ignored, Interpretation, Unreadable,
};
use crate::policy::EventPolicy;
use crate::reply::{problem_type, Reply};
use crate::signature::{self, SigningSecrets};
use crate::sink::{
    BindOutcome, MoneyBackOutcome, NewAttention, PaidInvoice, SaleOutcome, SaleSink, SinkError,
};
use crate::stripe_api::{InvoiceLines, LinesError};

/// The header Stripe signs with (HTTP header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// Everything the handler needs, built once per process by `main`.
pub struct Deps<S> {
    pub sink: S,
    pub secrets: SigningSecrets,
    /// The technical clock (signature tolerance).
    pub clock: SharedClock,
    /// Which events this deployment accepts.
    pub policy: EventPolicy,
    /// Stripe's API for the lines an event leaves out; `None` without a configured key (such
    /// invoices are parked).
    pub lines: Option<Arc<dyn InvoiceLines>>,
}

/// The Lambda entry point. Never returns `Err`: every outcome is an HTTP answer.
pub async fn handle<S: SaleSink>(
    deps: &Deps<S>,
    req: Request,
) -> Result<Response<Body>, lambda_http::Error> {
    let reply = handle_request(deps, &req).await;
    let method_not_allowed = reply.status == 405;
    let mut resp = reply.into_response();
    if method_not_allowed {
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
    }
    Ok(resp)
}

/// [`handle`] without the conversion to a response.
pub async fn handle_request<S: SaleSink>(deps: &Deps<S>, req: &Request) -> Reply {
    if req.method() != Method::POST {
        return Reply::problem(
            405,
            problem_type::METHOD_NOT_ALLOWED,
            "Method not allowed",
            "Stripe webhooks are delivered with POST",
        );
    }
    let header = match req.headers().get(SIGNATURE_HEADER).map(HeaderValue::to_str) {
        None => None,
        Some(Ok(v)) => Some(v),
        // Not visible ASCII: cannot be a Stripe signature.
        Some(Err(_)) => Some("\u{0}"),
    };
    process(deps, header, req.body().as_ref()).await
}

/// Verify and act on a raw body with its `Stripe-Signature` value.
pub async fn process<S: SaleSink>(deps: &Deps<S>, signature: Option<&str>, body: &[u8]) -> Reply {
    let now_ms = deps.clock.now_ms();
    if let Err(e) = signature::verify(signature, body, &deps.secrets, now_ms) {
        warn!(error = %e, body_bytes = body.len(), "webhook refused: bad signature");
        return Reply::problem(
            400,
            problem_type::INVALID_SIGNATURE,
            "Invalid Stripe signature",
            &e.to_string(),
        );
    }
    replay(deps, body).await
}

/// Process a body that was verified when it arrived: an operator's replay of a needs-attention
/// record (`partnerctl attention replay`), whose payload is the body exactly as Stripe signed it.
/// Everything after the signature check is the same as for a delivery, so a replay of an
/// event already processed books nothing twice, and one that still cannot be processed updates
/// its record.
pub async fn replay<S: SaleSink>(deps: &Deps<S>, verified_body: &[u8]) -> Reply {
    match interpret(verified_body) {
        Interpretation::NotAnEvent { reason } => {
            let why = Unreadable {
                code: reason_code::NOT_AN_EVENT,
                reason,
            };
            park(deps, None, &why, verified_body).await
        }
        Interpretation::Event { envelope, action } => {
            let span = tracing::info_span!(
                "stripe_event",
                event_id = %envelope.id,
                event_type = %envelope.kind,
                livemode = envelope.livemode
            );
            dispatch(deps, &envelope, action, verified_body)
                .instrument(span)
                .await
        }
    }
}

/// Keep the trigger as a needs-attention record and answer 200, or 500 if it cannot be kept.
async fn park<S: SaleSink>(
    deps: &Deps<S>,
    env: Option<&Envelope>,
    why: &Unreadable,
    body: &[u8],
) -> Reply {
    let rec = NewAttention {
        source: engine::sales::STRIPE_SOURCE,
        event_id: env.map(|e| e.id.as_str()),
        event_type: env.map(|e| e.kind.as_str()),
        reason_code: why.code,
        reason: &why.reason,
        business_at_ms: env.map(|e| e.created_ms),
        livemode: env.map(|e| e.livemode),
        api_version: env.and_then(|e| e.api_version.as_deref()),
        payload: body,
    };
    match deps.sink.needs_attention(&rec).await {
        Ok(id) => {
            warn!(attention = %id, code = why.code, reason = %why.reason, "needs attention");
            if let Some(ns) = &deps.policy.metric_namespace {
                // CloudWatch embedded metric format: one JSON line on standard output.
                println!(
                    "{}",
                    storage::attention::metric_line(ns, why.code, deps.clock.now_ms())
                );
            }
            Reply::received(
                env.map(|e| e.id.as_str()),
                "needs_attention",
                Some(&format!("{}: {} (record {id})", why.code, why.reason)),
            )
        }
        Err(e) => {
            error!(error = %e, code = why.code, "needs-attention record not written; Stripe will retry");
            temporary_failure(env.map(|e| e.id.as_str()).unwrap_or("(no id)"))
        }
    }
}

fn temporary_failure(event_id: &str) -> Reply {
    Reply::problem(
        500,
        problem_type::TEMPORARY_FAILURE,
        "Temporary failure",
        &format!("event {event_id} could not be recorded now; deliver it again later"),
    )
}

/// The attention id of an event (what `partnerctl attention` names it).
pub fn attention_id(env: &Envelope) -> String {
    format!("{}:{}", engine::sales::STRIPE_SOURCE, env.id)
}

async fn dispatch<S: SaleSink>(
    deps: &Deps<S>,
    env: &Envelope,
    action: Action,
    body: &[u8],
) -> Reply {
    let id = Some(env.id.as_str());
    let sink = &deps.sink;
    let handled = !matches!(action, Action::Ignore(Ignored::UnhandledType));
    if let Some(why) = deps.policy.refusal(env).filter(|_| handled) {
        return park(deps, Some(env), &why, body).await;
    }
    if handled && env.api_version_untested() {
        match sink.api_version_accepted(&attention_id(env)).await {
            Ok(true) => info!(
                api_version = env.api_version.as_deref().unwrap_or("null"),
                "untested API version accepted by an operator"
            ),
            Ok(false) => {
                let why = Unreadable {
                    code: reason_code::API_VERSION_UNTESTED,
                    reason: format!(
                        "rendered with API version {}, not one this release is tested with ({})",
                        env.api_version.as_deref().unwrap_or("(none)"),
                        crate::stripe::TESTED_API_VERSIONS.join(", ")
                    ),
                };
                return park(deps, Some(env), &why, body).await;
            }
            Err(e) => return failure(deps, env, e, body).await,
        }
    }
    let result: Result<(&str, String), SinkError> = match action {
        Action::Ignore(Ignored::UnhandledType) => {
            debug!("event type not handled: ignored");
            return Reply::received(id, "ignored", Some("event type not handled"));
        }
        Action::Ignore(Ignored::NothingToDo(why)) => {
            debug!(why, "nothing to do: ignored");
            return Reply::received(id, "ignored", Some(why));
        }
        Action::NeedsAttention(why) => return park(deps, Some(env), &why, body).await,
        Action::Bind(candidates) => bind_first(sink, candidates).await,
        Action::InvoicePaid {
            invoice,
            more_lines,
        } => {
            let mut inv = *invoice;
            if more_lines {
                match complete(deps, &mut inv).await {
                    Ok(()) => {}
                    Err(Completion::Park(why)) => return park(deps, Some(env), &why, body).await,
                    Err(Completion::Retry(why)) => {
                        warn!(%why, "invoice lines not fetched; Stripe will retry");
                        return temporary_failure(&env.id);
                    }
                }
            }
            invoice_paid(sink, inv).await
        }
        Action::PaymentFailed(f) => {
            let invoice = f.invoice_id.clone();
            sink.invoice_payment_failed(f)
                .await
                .map(|()| ("in_collections", invoice))
        }
        Action::SubscriptionEnded(e) => {
            let sub = e.subscription_id.clone();
            sink.subscription_ended(e)
                .await
                .map(|()| ("subscription_ended", sub))
        }
        Action::MoneyBack(m) => {
            let charge = m.charge_key.clone();
            sink.money_back(*m).await.map(|o| match o {
                MoneyBackOutcome::Applied { commission_ids } => (
                    "money_back_applied",
                    format!("{charge}: {} commission(s) moved", commission_ids.len()),
                ),
                MoneyBackOutcome::Parked => (
                    "money_back_parked",
                    format!("{charge}: no sale booked on it yet; applied when one is"),
                ),
                MoneyBackOutcome::AlreadyApplied => ("already_processed", charge),
            })
        }
    };
    match result {
        Ok((outcome, detail)) => {
            info!(outcome, %detail, "event processed");
            Reply::received(id, outcome, Some(&detail))
        }
        Err(e) => failure(deps, env, e, body).await,
    }
}

/// A failure of ours: transient → 500 (Stripe retries), permanent → needs attention.
async fn failure<S: SaleSink>(deps: &Deps<S>, env: &Envelope, e: SinkError, body: &[u8]) -> Reply {
    if e.is_retryable() {
        error!(error = %e, "event not processed; Stripe will retry");
        return temporary_failure(&env.id);
    }
    error!(error = %e, "event not processed (permanent failure)");
    let why = Unreadable {
        code: reason_code::PERMANENT_FAILURE,
        reason: e.to_string(),
    };
    park(deps, Some(env), &why, body).await
}

enum Completion {
    Park(Unreadable),
    Retry(String),
}

/// Fetch every line of an invoice whose event shows only the first page.
async fn complete<S>(deps: &Deps<S>, inv: &mut PaidInvoice) -> Result<(), Completion> {
    let Some(api) = &deps.lines else {
        return Err(Completion::Park(Unreadable {
            code: reason_code::LINES_HAS_MORE,
            reason: format!(
                "invoice {} has more lines than the event shows (lines.has_more) and no Stripe API key is configured to read them",
                inv.facts.invoice_id
            ),
        }));
    };
    match api.all_lines(&inv.facts.invoice_id).await {
        Ok(lines) => {
            debug!(lines = lines.len(), "all invoice lines read from Stripe");
            interpret::complete_lines(inv, &lines).map_err(Completion::Park)
        }
        Err(LinesError::Transient(why)) => Err(Completion::Retry(why)),
        Err(LinesError::Refused(why)) => Err(Completion::Park(Unreadable {
            code: reason_code::LINES_HAS_MORE,
            reason: format!(
                "invoice {} has more lines than the event shows; reading them failed: {why}",
                inv.facts.invoice_id
            ),
        })),
    }
}

async fn invoice_paid<S: SaleSink>(
    sink: &S,
    inv: PaidInvoice,
) -> Result<(&'static str, String), SinkError> {
    let invoice = inv.facts.invoice_id.clone();
    debug!(
        invoice = %invoice,
        customer = %inv.customer_key,
        currency = %inv.facts.currency,
        lines = inv.facts.lines.len(),
        "invoice paid"
    );
    sink.invoice_paid(inv).await.map(|o| match o {
        SaleOutcome::Booked {
            program_ids,
            commission_ids,
        } => (
            "booked",
            format!(
                "{invoice}: programs [{}], commissions [{}]",
                program_ids.join(", "),
                commission_ids.join(", ")
            ),
        ),
        SaleOutcome::Unattributed { .. } => ("unattributed", invoice),
        SaleOutcome::AlreadyProcessed => ("already_processed", invoice),
        SaleOutcome::NotOnAnyProgram => ("not_on_any_program", invoice),
        SaleOutcome::NotCommissionable { reason } => {
            ("not_commissionable", format!("{invoice}: {reason}"))
        }
    })
}

/// Try the bindings in order; stop at the first that binds or finds the customer bound.
async fn bind_first<S: SaleSink>(
    sink: &S,
    candidates: Vec<crate::sink::BindRequest>,
) -> Result<(&'static str, String), SinkError> {
    let mut last_rejection = String::from("no binding source");
    for req in candidates {
        let source = format!("{:?}", req.source);
        match sink.bind(req).await? {
            BindOutcome::Bound {
                program_id,
                partner_id,
            } => return Ok(("bound", format!("{program_id}/{partner_id} by {source}"))),
            BindOutcome::AlreadyBound {
                program_id,
                partner_id,
            } => return Ok(("already_bound", format!("{program_id}/{partner_id}"))),
            BindOutcome::Rejected(r) => {
                let reason = format!("{}: {r}", r.code());
                info!(%source, %reason, "binding rejected");
                last_rejection = format!("{source}: {reason}");
            }
        }
    }
    Ok(("rejected", last_rejection))
}
