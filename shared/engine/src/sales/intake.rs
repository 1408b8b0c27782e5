//! Intake of a paid invoice: de-duplication, the programs its products are on, the binding that
//! covers it in each (or keep it waiting as unattributed), then booking.

use std::collections::BTreeSet;

use rules::attribution::{
    binding_covers_sale, choose_cause, normalize_email, BindingCause, CauseCandidate,
};
use rules::plan::InvoiceFacts;
use rules::sale::subscription_end_stops_payment;
use rules::Program;
use storage::customers::{self, BindingRow, SalesStateRow, UnattributedRow};
use storage::events::{self, ProcessedEvent};
use storage::{keys, partners, programs};

use super::booking::{book_customer, NewSale, Preloaded};
use super::STRIPE_SOURCE;
use crate::binding::{refuse_self_referral, write_binding, Resolved};
use crate::{utc, Engine, EngineError};

/// A paid invoice: the sale, as the payment provider reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidInvoice {
    /// The provider's event id (`evt_…`): processed once.
    pub event_id: String,
    pub customer_key: String,
    pub customer_email: Option<String>,
    pub subscription_id: Option<String>,
    /// Promotion code ids on the invoice (`promo_…`), de-duplicated, in order.
    pub promotion_codes: Vec<String>,
    /// Invoice id, business time of the payment (the event's `created`), currency, and every
    /// line with its commission base (`rules::sale::line_commission_base`).
    pub facts: InvoiceFacts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaleOutcome {
    /// Booked in these programs (commission ids written or corrected).
    Booked {
        program_ids: Vec<String>,
        commission_ids: Vec<String>,
    },
    /// Kept as unattributed sales in these programs, waiting for a binding.
    Unattributed { program_ids: Vec<String> },
    /// A repeat delivery: nothing changed.
    AlreadyProcessed,
    /// No line's product is on any program.
    NotOnAnyProgram,
    /// Processed, nothing earned (self-referral, ended subscription, …).
    NotCommissionable { reason: String },
}

/// `invoice.paid`.
pub async fn invoice_paid(engine: &Engine, inv: PaidInvoice) -> Result<SaleOutcome, EngineError> {
    let t = &engine.table;
    if !keys::safe_id(&inv.facts.invoice_id)
        || !keys::safe_id(&inv.customer_key)
        || !keys::safe_id(&inv.event_id)
    {
        return Ok(SaleOutcome::NotCommissionable {
            reason: "invoice, customer or event id is not a valid id".into(),
        });
    }
    let paid_at_ms = inv.facts.paid_at.timestamp_millis();
    let subscription = inv.subscription_id.as_deref().filter(|s| keys::safe_id(s));
    // One read decides a repeat (and its unsent messages) and an ended subscription.
    let (marker, ended) =
        events::event_and_subscription(t, STRIPE_SOURCE, &inv.event_id, subscription).await?;
    if let Some(m) = marker {
        engine.deliver_outbox(&m.outbox_ids).await;
        return Ok(SaleOutcome::AlreadyProcessed);
    }
    let mut processed = ProcessedEvent {
        source: STRIPE_SOURCE.into(),
        event_id: inv.event_id.clone(),
        at_ms: paid_at_ms,
        outbox_ids: vec![],
    };
    // One lookup per distinct product (an invoice often has several lines of one product).
    let products: BTreeSet<&str> = inv
        .facts
        .lines
        .iter()
        .filter_map(|l| l.product_id.as_deref())
        .filter(|p| keys::safe_id(p))
        .collect();
    let mut program_ids = BTreeSet::new();
    for p in products {
        program_ids.extend(
            engine
                .catalog
                .programs_of_product(t, p)
                .await?
                .iter()
                .cloned(),
        );
    }
    if program_ids.is_empty() {
        events::mark_processed(t, &processed).await?;
        return Ok(SaleOutcome::NotOnAnyProgram);
    }
    if let Some(end) = ended.filter(|e| subscription_end_stops_payment(e.ended_at_ms, paid_at_ms)) {
        events::mark_processed(t, &processed).await?;
        return Ok(SaleOutcome::NotCommissionable {
            reason: format!(
                "subscription {} ended before this payment",
                end.subscription_id
            ),
        });
    }
    let email = inv
        .customer_email
        .as_deref()
        .and_then(|e| normalize_email(e).ok())
        .map(|e| e.to_string());
    let source_event = format!("{STRIPE_SOURCE}:{}", inv.event_id);
    let mut booked = vec![];
    let mut commission_ids = vec![];
    let mut unattributed = vec![];
    let mut not_commissionable = vec![];
    for pid in &program_ids {
        let Some(program) = engine.catalog.program(t, pid).await? else {
            continue;
        };
        let (binding, state) =
            customers::binding_and_sales_state(t, &program.id, &inv.customer_key).await?;
        let binding = match binding {
            Some(b) => Some(b),
            None => {
                fallback_binding(
                    engine,
                    &program,
                    &inv,
                    email.as_deref(),
                    &source_event,
                    state.clone(),
                )
                .await?
            }
        };
        let binding = match binding {
            Some(b) if binding_covers_sale(b.cause_at_ms, paid_at_ms) => b,
            _ => {
                keep_unattributed(t, &program, &inv, email.as_deref(), &source_event).await?;
                unattributed.push(pid.clone());
                continue;
            }
        };
        let ctx = partners::sale_context(
            t,
            &binding.partner_id,
            &program.id,
            email.is_some(),
            !program.levels.is_empty(),
        )
        .await?;
        // Self-referral, checked again with the invoice's e-mail.
        if let Some(partner) = &ctx.partner {
            if refuse_self_referral(
                engine,
                pid,
                &inv.customer_key,
                partner,
                email.as_deref(),
                paid_at_ms,
                &source_event,
            )
            .await?
            {
                not_commissionable.push(format!("self-referral in {pid}"));
                continue;
            }
        }
        let new_sale = NewSale {
            facts: inv.facts.clone(),
            partner_id: binding.partner_id.clone(),
            source_event: source_event.clone(),
            unattributed: None,
        };
        let preloaded = Preloaded {
            state,
            membership: ctx.membership,
            levels: ctx.levels,
        };
        let out = book_customer(
            engine,
            &program,
            &inv.customer_key,
            Some(new_sale),
            Some(preloaded),
        )
        .await?;
        commission_ids.extend(out.commission_ids);
        processed.outbox_ids.extend(out.outbox_ids);
        booked.push(pid.clone());
    }
    events::mark_processed(t, &processed).await?;
    Ok(if !booked.is_empty() {
        SaleOutcome::Booked {
            program_ids: booked,
            commission_ids,
        }
    } else if !unattributed.is_empty() {
        SaleOutcome::Unattributed {
            program_ids: unattributed,
        }
    } else {
        SaleOutcome::NotCommissionable {
            reason: not_commissionable.join(", "),
        }
    })
}

/// A customer without a binding of their own: another customer key's binding with the same
/// e-mail, an invitation of the e-mail, or a partner's promotion code on the invoice, chosen by
/// the program's model as clicks are (`rules::attribution::choose_cause`), and bound.
async fn fallback_binding(
    engine: &Engine,
    program: &Program,
    inv: &PaidInvoice,
    email: Option<&str>,
    source_event: &str,
    state: SalesStateRow,
) -> Result<Option<BindingRow>, EngineError> {
    let t = &engine.table;
    let mut candidates: Vec<CauseCandidate> = vec![];
    if let Some(e) = email {
        for b in customers::bindings_by_email(t, &program.id, e).await? {
            candidates.push(CauseCandidate {
                partner_id: b.partner_id,
                cause: b.cause,
                at: utc(b.cause_at_ms),
            });
        }
        if let Some(invite) = customers::get_invite(t, &program.id, e).await? {
            candidates.push(CauseCandidate {
                partner_id: invite.partner_id,
                cause: BindingCause::Invite,
                at: utc(invite.at_ms),
            });
        }
    }
    for code in &inv.promotion_codes {
        if let Some(p) = programs::get_promotion_code(t, code)
            .await?
            .filter(|p| p.program_id == program.id)
        {
            candidates.push(CauseCandidate {
                partner_id: p.partner_id,
                cause: BindingCause::Coupon {
                    promotion_code: code.clone(),
                },
                at: inv.facts.paid_at,
            });
        }
    }
    let Some(pick) = choose_cause(program.attribution, &candidates) else {
        return Ok(None);
    };
    let r = Resolved {
        program: program.clone(),
        partner_id: pick.partner_id.clone(),
        cause: pick.cause.clone(),
        cause_at_ms: pick.at.timestamp_millis(),
        manual: false,
    };
    // Bind without booking waiting sales here: this sale is booked by the caller.
    let written = write_binding(
        engine,
        &inv.customer_key,
        email,
        &r,
        inv.facts.paid_at.timestamp_millis(),
        source_event,
        Some((None, state)),
    )
    .await?;
    Ok(written.binding)
}

async fn keep_unattributed(
    t: &storage::Table,
    program: &Program,
    inv: &PaidInvoice,
    email: Option<&str>,
    source_event: &str,
) -> Result<(), EngineError> {
    let row = UnattributedRow {
        program_id: program.id.clone(),
        customer_key: inv.customer_key.clone(),
        email: email.map(str::to_string),
        facts: inv.facts.clone(),
        subscription_id: inv.subscription_id.clone(),
        source_event: source_event.to_string(),
        at_ms: inv.facts.paid_at.timestamp_millis(),
    };
    Ok(customers::put_unattributed(t, &row).await?)
}
