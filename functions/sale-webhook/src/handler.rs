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

use crate::feed::{self, FeedAction, FeedEvent, FeedSources};
use crate::interpret::{
    self, interpret, reason_code, Action, Envelope, Ignored, Interpretation, Unreadable,
};
use crate::policy::EventPolicy;
use crate::reply::{problem_type, Reply};
use crate::signature::{self, SigningSecrets};
use crate::sink::{
    AccountOutcome, AccountUpdate, BindOutcome, MoneyBackOutcome, NewAttention, PaidInvoice,
    ReversalOutcome, SaleOutcome, SaleSink, SinkError,
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
    /// The sale feed's sources and their signing secrets (`POST /webhooks/sale`); none
    /// configured refuses every feed request.
    pub feed: FeedSources,
}

/// The sale feed's route (the Stripe webhook is every other path of this function).
pub const FEED_PATH: &str = "/webhooks/sale";

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
    let is_feed = req.uri().path().trim_end_matches('/').ends_with(FEED_PATH);
    if req.method() != Method::POST {
        return Reply::problem(
            405,
            problem_type::METHOD_NOT_ALLOWED,
            "Method not allowed",
            if is_feed {
                "sale events are delivered with POST"
            } else {
                "Stripe webhooks are delivered with POST"
            },
        );
    }
    let header = |name: &str| match req.headers().get(name).map(HeaderValue::to_str) {
        None => None,
        Some(Ok(v)) => Some(v),
        // Not visible ASCII: cannot be a signature or a source name.
        Some(Err(_)) => Some("\u{0}"),
    };
    if is_feed {
        return process_feed(
            deps,
            header(feed::SOURCE_HEADER),
            header(feed::SIGNATURE_HEADER),
            req.body().as_ref(),
        )
        .await;
    }
    process(deps, header(SIGNATURE_HEADER), req.body().as_ref()).await
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
    keep(deps, &rec, why).await
}

/// Write the needs-attention record: 200 `needs_attention`, or 500 if it cannot be written.
async fn keep<S: SaleSink>(deps: &Deps<S>, rec: &NewAttention<'_>, why: &Unreadable) -> Reply {
    let event_id = rec.event_id;
    match deps.sink.needs_attention(rec).await {
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
                event_id,
                "needs_attention",
                Some(&format!("{}: {} (record {id})", why.code, why.reason)),
            )
        }
        Err(e) => {
            error!(error = %e, code = why.code, "needs-attention record not written; the sender will retry");
            temporary_failure(event_id.unwrap_or("(no id)"))
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
        Action::MoneyBack(m) => money_back(sink, *m).await,
        Action::AccountUpdated(u) => account_updated(sink, u).await,
        Action::TransferReversed(t) => match sink.transfer_reversed(*t, env.created_ms).await {
            Ok(ReversalOutcome::Unmatched { reason }) => {
                let why = Unreadable {
                    code: reason_code::TRANSFER_UNMATCHED,
                    reason,
                };
                return park(deps, Some(env), &why, body).await;
            }
            Ok(o) => Ok(reversal_receipt(o)),
            Err(e) => Err(e),
        },
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

async fn money_back<S: SaleSink>(
    sink: &S,
    m: crate::sink::MoneyBack,
) -> Result<(&'static str, String), SinkError> {
    let charge = m.charge_key.clone();
    sink.money_back(m).await.map(|o| match o {
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

async fn account_updated<S: SaleSink>(
    sink: &S,
    u: AccountUpdate,
) -> Result<(&'static str, String), SinkError> {
    sink.account_updated(u).await.map(|o| match o {
        AccountOutcome::Recorded(a) => (
            "account_recorded",
            format!("{}: transfers {}", a.account_id, a.transfers.as_str()),
        ),
        AccountOutcome::Stale { recorded } => (
            "account_stale",
            match recorded {
                Some(a) => format!(
                    "{}: a newer event ({}) says transfers {}",
                    a.account_id,
                    a.event_id,
                    a.transfers.as_str()
                ),
                None => "a newer event was recorded".into(),
            },
        ),
    })
}

/// The receipt of a reversal that matched its payout item.
fn reversal_receipt(o: ReversalOutcome) -> (&'static str, String) {
    match o {
        ReversalOutcome::Returned {
            item_id,
            booked_sent,
        } => (
            "payout_returned",
            format!(
                "{item_id}: back in the available balance, the partner's payouts held{}",
                if booked_sent {
                    " (its transfer booked sent first)"
                } else {
                    ""
                }
            ),
        ),
        ReversalOutcome::AlreadyBooked { item_id, state } => (
            "already_processed",
            format!("{item_id} is {}", state.as_str()),
        ),
        ReversalOutcome::Unmatched { reason } => ("transfer_unmatched", reason),
    }
}

/// Verify and act on a sale feed request: `Sale-Source` names the source, whose secrets must
/// verify `Sale-Signature` over the raw body. Nothing is read or written before both pass.
pub async fn process_feed<S: SaleSink>(
    deps: &Deps<S>,
    source: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
) -> Reply {
    let Some(name) = source.map(str::trim).filter(|s| !s.is_empty()) else {
        return Reply::problem_at(
            400,
            problem_type::UNKNOWN_SALE_SOURCE,
            "Unknown sale source",
            "the Sale-Source header is missing: it names the source whose secret signed the event",
            Some("Sale-Source"),
        );
    };
    let Some(secrets) = deps.feed.secrets(name) else {
        warn!(
            source = name.chars().take(40).collect::<String>(),
            "sale feed: unknown source"
        );
        return Reply::problem_at(
            400,
            problem_type::UNKNOWN_SALE_SOURCE,
            "Unknown sale source",
            "Sale-Source names no configured source (one SSM parameter per source under the feed's path)",
            Some("Sale-Source"),
        );
    };
    let now_ms = deps.clock.now_ms();
    if let Err(e) = signature::verify(signature, body, secrets, now_ms) {
        warn!(error = %e, source = name, body_bytes = body.len(), "sale event refused: bad signature");
        return Reply::problem_at(
            400,
            problem_type::SALE_SIGNATURE_INVALID,
            "Invalid sale signature",
            &e.to_string(),
            Some("Sale-Signature"),
        );
    }
    replay_feed(deps, name, body).await
}

/// Process a feed body that was verified when it arrived (a delivery, or an operator's replay
/// of its needs-attention record). A body with a wrong field is answered 400 or 422 naming it,
/// and nothing is written: the sender holds the event and fixes it.
pub async fn replay_feed<S: SaleSink>(deps: &Deps<S>, source: &str, verified_body: &[u8]) -> Reply {
    let event = match feed::read(source, verified_body) {
        Ok(e) => e,
        Err(e) => {
            info!(source, field = %e.field, detail = %e.detail, "sale event refused");
            return if e.malformed {
                Reply::problem_at(
                    400,
                    problem_type::MALFORMED_SALE_EVENT,
                    "Malformed sale event",
                    &format!("the body is not JSON: {}", e.detail),
                    Some(&e.field),
                )
            } else {
                Reply::problem_at(
                    422,
                    problem_type::INVALID_SALE_EVENT,
                    "Invalid sale event",
                    &format!("{}: {}", e.field, e.detail),
                    Some(&e.field),
                )
            };
        }
    };
    let span =
        tracing::info_span!("sale_event", source, event_id = %event.id, event_type = event.kind);
    dispatch_feed(deps, source, &event, verified_body)
        .instrument(span)
        .await
}

async fn dispatch_feed<S: SaleSink>(
    deps: &Deps<S>,
    source: &str,
    event: &FeedEvent,
    body: &[u8],
) -> Reply {
    let sink = &deps.sink;
    let result = match event.action.clone() {
        FeedAction::Sale { bind, invoice } => {
            // The click id binds first (at the sale's own time), so the sale books at once; a
            // rejected click leaves the sale to the customer's other bindings (e-mail, lead).
            let bound = match bind {
                Some(req) => bind_first(sink, vec![req]).await.map(Some),
                None => Ok(None),
            };
            match bound {
                Err(e) => Err(e),
                Ok(bound) => invoice_paid(sink, *invoice).await.map(|(outcome, detail)| {
                    let detail = match bound {
                        Some((b, why)) => format!("{detail}; click id: {b} {why}"),
                        None => detail,
                    };
                    (outcome, detail)
                }),
            }
        }
        FeedAction::MoneyBack(m) => money_back(sink, *m).await,
    };
    match result {
        Ok((outcome, detail)) => {
            info!(outcome, %detail, "sale event processed");
            Reply::received(Some(&event.id), outcome, Some(&detail))
        }
        Err(e) if e.is_retryable() => {
            error!(error = %e, "sale event not processed; the sender should retry");
            temporary_failure(&event.id)
        }
        Err(e) => {
            error!(error = %e, "sale event not processed (permanent failure)");
            let why = Unreadable {
                code: reason_code::PERMANENT_FAILURE,
                reason: e.to_string(),
            };
            let engine_source = feed::engine_source(source);
            let rec = NewAttention {
                source: &engine_source,
                event_id: Some(&event.id),
                event_type: Some(event.kind),
                reason_code: why.code,
                reason: &why.reason,
                business_at_ms: Some(event.at_ms),
                livemode: None,
                api_version: None,
                payload: body,
            };
            keep(deps, &rec, &why).await
        }
    }
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
