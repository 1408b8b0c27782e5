//! Intake of a paid invoice: de-duplication, the programs its products are on, the binding that
//! covers it in each (or keep it waiting as unattributed), then booking.

use rules::attribution::{
    binding_covers, binding_covers_sale, choose_cause, email_binding_applies, normalize_email,
    AttributionModel, BindingCause, CauseCandidate,
};
use rules::partner::{sale_treatment, SaleTreatment};
use rules::plan::InvoiceFacts;
use rules::sale::subscription_end_stops_payment;
use rules::Program;
use storage::customers::{self, BindingRow, SaleRead, UnattributedRow};
use storage::events::{self, ProcessedEvent};
use storage::{keys, partners, StoreError, Tx};

use super::booking::{book_customer, Booked, NewSale, Preloaded};
use crate::binding::{refuse_self_referral, write_binding, Resolved};
use crate::{utc, Engine, EngineError, OPTIMISTIC_ATTEMPTS};

/// A paid invoice: the sale, as the payment provider reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidInvoice {
    /// The provider's event id (`evt_…`): processed once per source.
    pub event_id: String,
    /// What delivered it: [`super::STRIPE_SOURCE`], or `feed:{name}` for the sale feed. Its processed
    /// marker and the ledger's labels (`{source}:{event_id}`) are kept under it.
    pub source: String,
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
        || !keys::safe_id(&inv.source)
    {
        return Ok(SaleOutcome::NotCommissionable {
            reason: "invoice, customer or event id is not a valid id".into(),
        });
    }
    let paid_at_ms = inv.facts.paid_at.timestamp_millis();
    let subscription = inv.subscription_id.as_deref().filter(|s| keys::safe_id(s));
    // One read decides a repeat (and its unsent messages) and an ended subscription.
    let (marker, ended) =
        events::event_and_subscription(t, &inv.source, &inv.event_id, subscription).await?;
    if let Some(m) = marker {
        engine.deliver_outbox(&m.outbox_ids).await;
        return Ok(SaleOutcome::AlreadyProcessed);
    }
    let mut processed = ProcessedEvent {
        source: inv.source.clone(),
        event_id: inv.event_id.clone(),
        at_ms: paid_at_ms,
        outbox_ids: vec![],
    };
    let program_ids = engine.catalog.programs_of_invoice(t, &inv.facts).await?;
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
    let source_event = format!("{}:{}", inv.source, inv.event_id);
    let mut booked = vec![];
    let mut commission_ids = vec![];
    let mut unattributed = vec![];
    let mut not_commissionable = vec![];
    for pid in &program_ids {
        let Some(program) = engine.catalog.program(t, pid).await? else {
            continue;
        };
        match sale_in_program(engine, &program, &inv, email.as_deref(), &source_event).await? {
            InProgram::Booked(out) => {
                commission_ids.extend(out.commission_ids);
                processed.outbox_ids.extend(out.outbox_ids);
                booked.push(pid.clone());
            }
            InProgram::Waiting => unattributed.push(pid.clone()),
            InProgram::NotCommissionable(reason) => not_commissionable.push(reason),
        }
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

/// What became of a paid invoice in one program.
enum InProgram {
    Booked(Booked),
    /// Kept as an unattributed sale, waiting for a binding (or an operator).
    Waiting,
    NotCommissionable(String),
}

/// Decide and write the sale in one program. The decision is made on what was read (binding,
/// sales state) and every write is conditional on it: the booking on the binding's version,
/// a waiting sale on the binding still being the one read. A bind that commits in between makes
/// the write fail, and the sale is decided again, so a sale and a bind processed at the same
/// moment always meet: whichever commits second sees the other.
async fn sale_in_program(
    engine: &Engine,
    program: &Program,
    inv: &PaidInvoice,
    email: Option<&str>,
    source_event: &str,
) -> Result<InProgram, EngineError> {
    let t = &engine.table;
    let paid_at_ms = inv.facts.paid_at.timestamp_millis();
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        let read = customers::sale_read(
            t,
            &program.id,
            &inv.customer_key,
            email,
            &inv.promotion_codes,
        )
        .await?;
        let state = read.state.clone();
        let binding = attributing_binding(engine, program, inv, email, source_event, read).await?;
        let covering = binding
            .as_ref()
            .filter(|b| binding_covers(&b.cause, b.cause_at_ms, paid_at_ms));
        let Some(b) = covering else {
            match keep_unattributed(t, program, inv, email, source_event, binding.as_ref()).await {
                Ok(()) => return Ok(InProgram::Waiting),
                Err(e) if binding_moved(&e) => continue,
                Err(e) => return Err(e),
            }
        };
        let ctx = partners::sale_context(
            t,
            &b.partner_id,
            &program.id,
            true,
            !program.levels.is_empty(),
        )
        .await?;
        if let Some(partner) = &ctx.partner {
            // Self-referral, checked again with the invoice's e-mail.
            if refuse_self_referral(
                engine,
                &program.id,
                &inv.customer_key,
                partner,
                email,
                paid_at_ms,
                source_event,
            )
            .await?
            {
                return Ok(InProgram::NotCommissionable(format!(
                    "self-referral in {}",
                    program.id
                )));
            }
            // A banned (or not yet approved) partner earns nothing: the sale waits for an
            // operator to reassign it (`rules::partner::sale_treatment`).
            if sale_treatment(partner.status) == SaleTreatment::WaitUnattributed {
                match keep_unattributed(t, program, inv, email, source_event, Some(b)).await {
                    Ok(()) => return Ok(InProgram::Waiting),
                    Err(e) if binding_moved(&e) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
        let new_sale = NewSale {
            facts: inv.facts.clone(),
            partner_id: b.partner_id.clone(),
            source_event: source_event.to_string(),
            unattributed: None,
            binding_version: Some(b.version),
            attributed_by: Some(b.attributed_by()),
        };
        let preloaded = Preloaded {
            state,
            membership: ctx.membership,
            levels: ctx.levels,
        };
        match book_customer(
            engine,
            program,
            &inv.customer_key,
            Some(new_sale),
            Some(preloaded),
        )
        .await
        {
            Ok(out) => return Ok(InProgram::Booked(out)),
            Err(e) if binding_moved(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Contention {
        attempts: OPTIMISTIC_ATTEMPTS,
    }
    .into())
}

/// The write failed because the customer's binding changed since it was read.
pub(crate) fn binding_moved(e: &EngineError) -> bool {
    matches!(e, EngineError::Store(s) if s.is_condition_failed_on("binding"))
}

/// The binding that attributes this sale. A customer with booked sales keeps theirs (only a
/// bind moves it, by the rules of `rules::attribution::rebind_decision`). For a customer's
/// first sale every cause that counts at its payment time is a candidate, whatever order they
/// arrived in: the customer's binding (and, under last-click, the earlier causes in its
/// history when the binding's cause is later than the payment), another customer key's binding
/// of the same e-mail (only for invoices paid after that lead was recorded), an invitation of
/// the e-mail, a partner's promotion code on the invoice. The program's model chooses
/// (`rules::attribution::choose_cause`) and the choice is written as the binding.
async fn attributing_binding(
    engine: &Engine,
    program: &Program,
    inv: &PaidInvoice,
    email: Option<&str>,
    source_event: &str,
    read: SaleRead,
) -> Result<Option<BindingRow>, EngineError> {
    let t = &engine.table;
    let SaleRead {
        binding,
        state,
        invite,
        promotion_codes,
    } = read;
    if state.first_paid_sale_at_ms.is_some() {
        return Ok(binding);
    }
    let paid_at_ms = inv.facts.paid_at.timestamp_millis();
    let counts = |at_ms: i64| binding_covers_sale(at_ms, paid_at_ms);
    // (candidate, the customer key it was found under by e-mail)
    let mut candidates: Vec<(CauseCandidate, Option<String>)> = vec![];
    if let Some(b) = &binding {
        if counts(b.cause_at_ms) {
            candidates.push((cause_of_binding(b), b.via_email_of.clone()));
        } else if program.attribution == AttributionModel::LastClick && b.version > 1 {
            for h in customers::binding_history(t, &program.id, &inv.customer_key).await? {
                if counts(h.cause_at_ms) && !matches!(h.cause, BindingCause::Manual { .. }) {
                    candidates.push((
                        CauseCandidate {
                            partner_id: h.partner_id,
                            cause: h.cause,
                            at: utc(h.cause_at_ms),
                        },
                        None,
                    ));
                }
            }
        }
        // An operator's assignment is not second-guessed by sale-time fallbacks.
        if matches!(b.cause, BindingCause::Manual { .. }) {
            return Ok(Some(b.clone()));
        }
    }
    if let Some(e) = email {
        for other in customers::bindings_by_email(t, &program.id, e).await? {
            if other.customer_key == inv.customer_key
                || !email_binding_applies(other.bound_at_ms, paid_at_ms)
                || !counts(other.cause_at_ms)
            {
                continue;
            }
            candidates.push((cause_of_binding(&other), Some(other.customer_key)));
        }
        if let Some(invite) = invite.filter(|i| i.email == e) {
            if counts(invite.at_ms) {
                candidates.push((
                    CauseCandidate {
                        partner_id: invite.partner_id,
                        cause: BindingCause::Invite,
                        at: utc(invite.at_ms),
                    },
                    None,
                ));
            }
        }
    }
    for p in promotion_codes
        .into_iter()
        .filter(|p| p.program_id == program.id)
    {
        candidates.push((
            CauseCandidate {
                partner_id: p.partner_id,
                cause: BindingCause::Coupon {
                    promotion_code: p.code,
                },
                at: inv.facts.paid_at,
            },
            None,
        ));
    }
    let causes: Vec<CauseCandidate> = candidates.iter().map(|(c, _)| c.clone()).collect();
    let Some(pick) = choose_cause(program.attribution, &causes) else {
        return Ok(binding);
    };
    if let Some(b) = &binding {
        if cause_of_binding(b) == *pick {
            return Ok(binding);
        }
    }
    let via_email_of = candidates
        .iter()
        .find(|(c, _)| c == pick)
        .and_then(|(_, k)| k.clone());
    let r = Resolved {
        program: program.clone(),
        partner_id: pick.partner_id.clone(),
        cause: pick.cause.clone(),
        cause_at_ms: pick.at.timestamp_millis(),
        manual: false,
        via_email_of,
    };
    // This sale is booked by the caller; other waiting sales of the customer by the sweep or
    // the next bind.
    let written = write_binding(
        engine,
        &inv.customer_key,
        email,
        &r,
        paid_at_ms,
        source_event,
        Some((binding, state)),
        Some(paid_at_ms),
    )
    .await?;
    if let Some(b) = written.binding.as_ref().filter(|_| written.reattribute) {
        super::booking::reattribute_customer(engine, program, b).await?;
    }
    Ok(written.binding)
}

fn cause_of_binding(b: &BindingRow) -> CauseCandidate {
    CauseCandidate {
        partner_id: b.partner_id.clone(),
        cause: b.cause.clone(),
        at: utc(b.cause_at_ms),
    }
}

/// Keep the sale waiting for attribution, if the customer's binding is still `binding` (the
/// one the decision read): `ConditionFailed{"binding"}` otherwise.
async fn keep_unattributed(
    t: &storage::Table,
    program: &Program,
    inv: &PaidInvoice,
    email: Option<&str>,
    source_event: &str,
    binding: Option<&BindingRow>,
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
    let mut tx = Tx::new();
    customers::keep_unattributed(&mut tx, &row, binding.map(|b| b.version))?;
    Ok(tx.commit(t).await?)
}
