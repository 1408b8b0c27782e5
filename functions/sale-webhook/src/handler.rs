//! The thin handler: verify, interpret, hand to the sink, answer.
//!
//! Status codes: 400 only for a missing or bad signature (nothing is read or written); 500 only
//! when the sink reports a retryable failure of ours (storage), so that Stripe delivers the event
//! again; 200 for everything else, including payloads we do not understand and a binding the
//! engine rejected, since a retry would end the same way.

use lambda_http::http::{header::ALLOW, HeaderValue, Method};
use lambda_http::{Body, Request, Response};
use storage::SharedClock;
use tracing::{debug, error, info, warn, Instrument};

use crate::interpret::{interpret, Action, Envelope, Ignored, Interpretation};
use crate::reply::{problem_type, Reply};
use crate::signature::{self, SigningSecrets};
use crate::sink::{BindOutcome, SaleOutcome, SaleSink, SinkError};
use crate::stripe::PINNED_API_VERSION;

/// The header Stripe signs with (HTTP header names are case-insensitive).
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// Everything the handler needs, built once per process by `main`.
pub struct Deps<S> {
    pub sink: S,
    pub secrets: SigningSecrets,
    /// The technical clock (signature tolerance).
    pub clock: SharedClock,
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
    match interpret(body) {
        Interpretation::NotAnEvent { reason } => {
            warn!(%reason, "signed body is not a Stripe event: ignored");
            Reply::received(None, "ignored", Some(&reason))
        }
        Interpretation::Event { envelope, action } => {
            let span = tracing::info_span!(
                "stripe_event",
                event_id = %envelope.id,
                event_type = %envelope.kind,
                livemode = envelope.livemode
            );
            dispatch(&deps.sink, &envelope, action)
                .instrument(span)
                .await
        }
    }
}

async fn dispatch<S: SaleSink>(sink: &S, env: &Envelope, action: Action) -> Reply {
    let id = Some(env.id.as_str());
    if env.api_version_differs() && !matches!(action, Action::Ignore(Ignored::UnhandledType)) {
        warn!(
            api_version = env.api_version.as_deref().unwrap_or("null"),
            pinned = PINNED_API_VERSION,
            "event rendered with another Stripe API version; parsed anyway"
        );
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
        Action::Ignore(Ignored::Unreadable(why)) => {
            // A type we act on that we cannot read: worth a look (an API version change loses
            // commissions silently otherwise), but a retry would not help.
            warn!(%why, "payload of a handled type not understood: ignored");
            return Reply::received(id, "ignored", Some(&why));
        }
        Action::Bind(candidates) => bind_first(sink, candidates).await,
        Action::InvoicePaid(inv) => {
            let invoice = inv.facts.invoice_id.clone();
            debug!(
                invoice = %invoice,
                customer = %inv.customer_key,
                currency = %inv.facts.currency,
                lines = inv.facts.lines.len(),
                "invoice paid"
            );
            sink.invoice_paid(*inv).await.map(|o| match o {
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
    };
    match result {
        Ok((outcome, detail)) => {
            info!(outcome, %detail, "event processed");
            Reply::received(id, outcome, Some(&detail))
        }
        Err(e) if e.is_retryable() => {
            error!(error = %e, "event not processed; Stripe will retry");
            Reply::problem(
                500,
                problem_type::TEMPORARY_FAILURE,
                "Temporary failure",
                &format!(
                    "event {} could not be recorded now; deliver it again later",
                    env.id
                ),
            )
        }
        Err(e) => {
            // Our fault, but a redelivery would fail the same way: the event stays visible in
            // the logs (and in Stripe for 30 days) for an operator to replay after a fix.
            error!(error = %e, "event not processed (permanent failure)");
            Reply::received(
                id,
                "failed",
                Some("permanent failure, logged for operators"),
            )
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
