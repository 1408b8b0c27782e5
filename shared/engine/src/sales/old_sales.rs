//! Paid invoices to commissions, exactly once and in business time.
//!
//! For each program an invoice's products are on, the customer's binding decides the partner. The
//! customer's invoices in the program are folded in business-time order (`rules::plan::
//! evaluate_customer`), and the difference from what is booked becomes `earned` and `adjusted`
//! entries — so an earlier invoice arriving late corrects later ones, and a replay books nothing.
//! One transaction per booking writes the processed marker, the customer's sales state (the
//! optimistic lock of every booking of that customer), the invoice rows, commissions, entries,
//! balance moves, level metrics and the outbox messages.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_dynamodb::types::AttributeValue;
use rules::attribution::{is_self_referral, normalize_email};
use rules::levels::{promotion_after_sale, LevelSale, PartnerMetrics};
use rules::plan::{
    diff_booked, evaluate_customer, CommissionTier, InvoiceCommission, InvoiceFacts, RateContext,
    SaleLine,
};
use rules::schedule::available_at;
use rules::{Bucket, Currency, EntryKind, Money, Program, Tiers};
use storage::customers::{
    self, CommissionRow, CommissionState, CustomerInvoiceRow, UnattributedRow,
};
use storage::ledger::{self, LedgerEntry};
use storage::table::{to_item, ItemExt};
use storage::{keys, partners, programs, Key, StoreError, Table, Tx, UpdateSpec};

use crate::attribution::{flag_self_referral, BindOutcome, Resolved};
use crate::{utc, Engine, EngineError, OPTIMISTIC_ATTEMPTS};

/// Unattributed sales are kept this long for a late binding (a manual assignment months later).
const UNATTRIBUTED_TTL_DAYS: i64 = 400;
/// Processed-event markers outlive Stripe's 30-day event history.
const EVENT_MARKER_TTL_DAYS: i64 = 45;
/// Actions one booking may use by default ([`Engine::tx_budget`]); the rest of a large
/// correction goes in the next transaction.
pub const TX_BUDGET: usize = 90;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceLine {
    pub product_id: Option<String>,
    /// Amount after discounts, excluding tax, in minor units.
    pub amount_minor: i64,
    /// Metered usage (overages): never earns.
    pub metered: bool,
    /// Excluded by price metadata (`commission: exclude`): never earns.
    pub excluded: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidInvoice {
    pub event_id: String,
    pub invoice_id: String,
    pub customer_key: String,
    pub customer_email: Option<String>,
    pub currency: Currency,
    pub lines: Vec<InvoiceLine>,
    /// Business time: the event's `created`.
    pub paid_at_ms: i64,
    pub subscription_id: Option<String>,
    pub promotion_codes: Vec<String>,
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

fn event_marker(source_event: &str, at_ms: i64) -> storage::Item {
    Table::key_item(&keys::processed_event("stripe", source_event))
        .with_n("at_ms", at_ms)
        .with_ttl(at_ms / 1000 + EVENT_MARKER_TTL_DAYS * 86_400)
}

async fn put_event_marker(t: &Table, event_id: &str, at_ms: i64) -> Result<(), EngineError> {
    match t.put_if_absent(event_marker(event_id, at_ms)).await {
        Ok(()) | Err(StoreError::AlreadyDone) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn facts_of(inv: &PaidInvoice) -> InvoiceFacts {
    InvoiceFacts {
        invoice_id: inv.invoice_id.clone(),
        paid_at: utc(inv.paid_at_ms),
        currency: inv.currency,
        lines: inv
            .lines
            .iter()
            .map(|l| SaleLine {
                product_id: l.product_id.clone(),
                amount: Money::new(l.amount_minor, inv.currency),
                metered: l.metered,
                excluded_by_metadata: l.excluded,
            })
            .collect(),
    }
}

fn earned_message_id(commission_id: &str) -> String {
    format!("commission-earned:{commission_id}")
}

/// `invoice.paid`.
pub async fn invoice_paid(engine: &Engine, inv: PaidInvoice) -> Result<SaleOutcome, EngineError> {
    let t = &engine.table;
    if !keys::safe_id(&inv.invoice_id)
        || !keys::safe_id(&inv.customer_key)
        || !keys::safe_id(&inv.event_id)
    {
        return Ok(SaleOutcome::NotCommissionable {
            reason: "invoice, customer or event id is not a valid id".into(),
        });
    }
    // One lookup per distinct product (an invoice often has several lines of one product).
    let products: BTreeSet<&str> = inv
        .lines
        .iter()
        .filter_map(|l| l.product_id.as_deref())
        .filter(|p| keys::safe_id(p))
        .collect();
    let mut program_ids = BTreeSet::new();
    for p in products {
        program_ids.extend(programs::programs_of_product(t, p).await?);
    }
    if t.get(&keys::processed_event("stripe", &inv.event_id))
        .await?
        .is_some()
    {
        // A repeat: re-send anything the first delivery left unsent.
        let ids: Vec<String> = program_ids
            .iter()
            .flat_map(|p| {
                [1u8, 2]
                    .map(|tier| earned_message_id(&keys::commission_id(p, &inv.invoice_id, tier)))
            })
            .collect();
        engine.deliver_outbox(&ids).await;
        return Ok(SaleOutcome::AlreadyProcessed);
    }
    if program_ids.is_empty() {
        put_event_marker(t, &inv.event_id, inv.paid_at_ms).await?;
        return Ok(SaleOutcome::NotOnAnyProgram);
    }
    if let Some(sub) = inv.subscription_id.as_deref().filter(|s| keys::safe_id(s)) {
        if let Some(ended) = t.get(&keys::subscription_ended(sub)).await? {
            if ended.n("ended_at_ms").is_some_and(|e| e < inv.paid_at_ms) {
                put_event_marker(t, &inv.event_id, inv.paid_at_ms).await?;
                return Ok(SaleOutcome::NotCommissionable {
                    reason: format!("subscription {sub} ended before this payment"),
                });
            }
        }
    }
    let email = inv
        .customer_email
        .as_deref()
        .and_then(|e| normalize_email(e).ok())
        .map(|e| e.to_string());
    let facts = facts_of(&inv);
    let mut booked = vec![];
    let mut commission_ids = vec![];
    let mut unattributed = vec![];
    let mut not_commissionable = vec![];
    for pid in &program_ids {
        let Some(program) = programs::get_program(t, pid).await? else {
            continue;
        };
        let binding = binding_for_sale(engine, &program, &inv, email.as_deref()).await?;
        let binding = match binding {
            Some(b) if b.cause_at_ms <= inv.paid_at_ms => b,
            _ => {
                keep_unattributed(t, &program, &inv, email.as_deref(), &facts).await?;
                unattributed.push(pid.clone());
                continue;
            }
        };
        // Self-referral, checked again with the invoice's e-mail.
        if let (Some(e), Some(partner)) =
            (&email, partners::get_partner(t, &binding.partner_id).await?)
        {
            if is_self_referral(e, &partner.email) {
                flag_self_referral(
                    engine,
                    pid,
                    &inv.customer_key,
                    &partner.partner_id,
                    Some(e),
                    inv.paid_at_ms,
                    &format!("stripe:{}", inv.event_id),
                )
                .await?;
                not_commissionable.push(format!("self-referral in {pid}"));
                continue;
            }
        }
        let new_sale = NewSale {
            facts: facts.clone(),
            partner_id: binding.partner_id.clone(),
            source_event: format!("stripe:{}", inv.event_id),
            unattributed_key: None,
        };
        let ids = book_customer(engine, &program, &inv.customer_key, Some(new_sale)).await?;
        commission_ids.extend(ids);
        booked.push(pid.clone());
    }
    put_event_marker(t, &inv.event_id, inv.paid_at_ms).await?;
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

/// The binding that covers this sale: the customer's own; else another customer key's with the
/// same e-mail; else an invitation of the e-mail; else a partner's promotion code on the invoice.
async fn binding_for_sale(
    engine: &Engine,
    program: &Program,
    inv: &PaidInvoice,
    email: Option<&str>,
) -> Result<Option<customers::BindingRow>, EngineError> {
    let t = &engine.table;
    if let Some(b) = customers::get_binding(t, &program.id, &inv.customer_key).await? {
        return Ok(Some(b));
    }
    let source_event = format!("stripe:{}", inv.event_id);
    let mut candidates: Vec<Resolved> = vec![];
    if let Some(e) = email {
        for b in customers::bindings_by_email(t, &program.id, e).await? {
            candidates.push(Resolved {
                program: program.clone(),
                partner_id: b.partner_id,
                cause: b.cause,
                cause_at_ms: b.cause_at_ms,
                manual: false,
            });
        }
        if let Some(invite) = customers::get_invite(t, &program.id, e).await? {
            candidates.push(Resolved {
                program: program.clone(),
                partner_id: invite.partner_id,
                cause: rules::attribution::BindingCause::Invite,
                cause_at_ms: invite.at_ms,
                manual: false,
            });
        }
    }
    for code in &inv.promotion_codes {
        if let Some(p) = programs::get_promotion_code(t, code)
            .await?
            .filter(|p| p.program_id == program.id)
        {
            candidates.push(Resolved {
                program: program.clone(),
                partner_id: p.partner_id,
                cause: rules::attribution::BindingCause::Coupon {
                    promotion_code: code.clone(),
                },
                cause_at_ms: inv.paid_at_ms,
                manual: false,
            });
        }
    }
    // The program's model picks among them, as it does among clicks.
    candidates.sort_by(|a, b| (a.cause_at_ms, &a.partner_id).cmp(&(b.cause_at_ms, &b.partner_id)));
    let pick = match program.attribution {
        rules::AttributionModel::FirstClick => candidates.into_iter().next(),
        rules::AttributionModel::LastClick => candidates.into_iter().next_back(),
    };
    let Some(r) = pick else { return Ok(None) };
    // Bind without booking waiting sales here: this sale is booked by the caller.
    match crate::attribution::write_binding_only(
        engine,
        &inv.customer_key,
        email,
        &r,
        inv.paid_at_ms,
        &source_event,
    )
    .await?
    {
        BindOutcome::Bound { .. } | BindOutcome::AlreadyBound { .. } => {
            Ok(customers::get_binding(t, &program.id, &inv.customer_key).await?)
        }
        BindOutcome::Rejected(_) => Ok(None),
    }
}

async fn keep_unattributed(
    t: &Table,
    program: &Program,
    inv: &PaidInvoice,
    email: Option<&str>,
    facts: &InvoiceFacts,
) -> Result<(), EngineError> {
    let row = UnattributedRow {
        program_id: program.id.clone(),
        customer_key: inv.customer_key.clone(),
        email: email.map(str::to_string),
        facts: facts.clone(),
        subscription_id: inv.subscription_id.clone(),
        source_event: format!("stripe:{}", inv.event_id),
        at_ms: inv.paid_at_ms,
    };
    let month = crate::utc(inv.paid_at_ms).format("%Y-%m").to_string();
    let mut item = to_item(
        &row,
        &keys::unattributed_sale(&inv.customer_key, &inv.invoice_id, &program.id),
    )?
    .with_gsi2(keys::unattributed_month_gsi(
        &month,
        inv.paid_at_ms,
        &inv.invoice_id,
    ))
    .with_ttl(inv.paid_at_ms / 1000 + UNATTRIBUTED_TTL_DAYS * 86_400);
    if let Some(e) = email {
        item = item.with_gsi1(keys::unattributed_email_gsi(e, &inv.invoice_id));
    }
    match t.put_if_absent(item).await {
        Ok(()) | Err(StoreError::AlreadyDone) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// After a new binding: book the customer's waiting sales in the program whose payment came at
/// or after the binding's cause. Sales found by e-mail under another customer key bind that key
/// to the same partner first.
pub(crate) async fn book_waiting_sales(
    engine: &Engine,
    program: &Program,
    customer_key: &str,
    email: Option<&str>,
    cause_at_ms: i64,
) -> Result<Vec<String>, EngineError> {
    let t = &engine.table;
    let mut rows = customers::unattributed_of_customer(t, customer_key).await?;
    if let Some(e) = email {
        rows.extend(customers::unattributed_of_email(t, e).await?);
    }
    rows.sort_by(|a, b| (a.at_ms, &a.facts.invoice_id).cmp(&(b.at_ms, &b.facts.invoice_id)));
    rows.dedup_by(|a, b| {
        a.customer_key == b.customer_key
            && a.facts.invoice_id == b.facts.invoice_id
            && a.program_id == b.program_id
    });
    let binding = customers::get_binding(t, &program.id, customer_key).await?;
    let Some(binding) = binding else {
        return Ok(vec![]);
    };
    let mut ids = vec![];
    for row in rows
        .into_iter()
        .filter(|r| r.program_id == program.id && r.at_ms >= cause_at_ms)
    {
        if row.customer_key != customer_key {
            let r = Resolved {
                program: program.clone(),
                partner_id: binding.partner_id.clone(),
                cause: binding.cause.clone(),
                cause_at_ms: binding.cause_at_ms,
                manual: false,
            };
            crate::attribution::write_binding_only(
                engine,
                &row.customer_key,
                row.email.as_deref(),
                &r,
                row.at_ms,
                &row.source_event,
            )
            .await?;
        }
        // The bound customer's binding was read above; another key's may have kept its own.
        let partner_id = if row.customer_key == customer_key {
            binding.partner_id.clone()
        } else {
            match customers::get_binding(t, &program.id, &row.customer_key).await? {
                Some(b) => b.partner_id,
                None => continue,
            }
        };
        let new_sale = NewSale {
            facts: row.facts.clone(),
            partner_id,
            source_event: row.source_event.clone(),
            unattributed_key: Some(keys::unattributed_sale(
                &row.customer_key,
                &row.facts.invoice_id,
                &program.id,
            )),
        };
        ids.extend(book_customer(engine, program, &row.customer_key, Some(new_sale)).await?);
    }
    Ok(ids)
}

/// A sale to add to a customer's books.
#[derive(Debug, Clone)]
pub(crate) struct NewSale {
    pub facts: InvoiceFacts,
    pub partner_id: String,
    pub source_event: String,
    /// The unattributed item this sale came from, deleted in the same transaction.
    pub unattributed_key: Option<Key>,
}

/// Add `new` (if any) to the customer's invoices and book the differences. Returns the ids of
/// commissions earned or adjusted. Safe to repeat; concurrent bookings of one customer retry.
pub(crate) async fn book_customer(
    engine: &Engine,
    program: &Program,
    customer_key: &str,
    new: Option<NewSale>,
) -> Result<Vec<String>, EngineError> {
    let (ids, envelopes) = book_customer_inner(engine, program, customer_key, new).await?;
    engine.deliver_new(&envelopes).await;
    Ok(ids)
}

async fn book_customer_inner(
    engine: &Engine,
    program: &Program,
    customer_key: &str,
    new: Option<NewSale>,
) -> Result<(Vec<String>, Vec<messages::Envelope>), EngineError> {
    let t = &engine.table;
    let products = programs::program_products(t, &program.id).await?;
    let mut touched = vec![];
    let mut sent: Vec<messages::Envelope> = vec![];
    let mut new = new;
    let mut attempts = 0;
    loop {
        attempts += 1;
        if attempts > OPTIMISTIC_ATTEMPTS * 3 {
            return Err(StoreError::Contention { attempts }.into());
        }
        let state = customers::sales_state(t, &program.id, customer_key).await?;
        let rows = customers::customer_invoices(t, &program.id, customer_key).await?;
        if let Some(n) = &new {
            if rows
                .iter()
                .any(|r| r.facts.invoice_id == n.facts.invoice_id)
            {
                new = None; // already booked by an earlier delivery
                continue;
            }
        }
        let plan = match plan_booking(
            engine,
            program,
            &products,
            customer_key,
            &rows,
            new.as_ref(),
        )
        .await?
        {
            Some(p) => p,
            None => return Ok((touched, sent)),
        };
        let mut tx = Tx::new();
        if let Some(n) = &new {
            tx.marker(
                Table::key_item(&keys::processed_invoice(&program.id, &n.facts.invoice_id))
                    .with_s("source_event", &n.source_event),
            )?;
            if let Some(k) = &n.unattributed_key {
                tx.delete(k, "unattributed sale")?;
            }
        }
        let mut spec = UpdateSpec::new().set_n(
            "version",
            i64::try_from(state.version + 1).unwrap_or(i64::MAX),
        );
        if let Some(first) = plan.first_paid_sale_at_ms {
            spec = spec.set_n("first_paid_sale_at_ms", first);
        }
        let spec = spec.condition(
            "attribute_not_exists(PK) OR #ver = :ver",
            &[("#ver", "version")],
            vec![(":ver", AttributeValue::N(state.version.to_string()))],
        );
        tx.update(
            &keys::sales_state(&program.id, customer_key),
            spec,
            "sales state",
        )?;
        let mut envelopes = vec![];
        let (ids, complete) = plan
            .write(
                engine,
                program,
                customer_key,
                state.version + 1,
                &mut tx,
                &mut envelopes,
            )
            .await?;
        match tx.commit(t).await {
            Ok(()) => {
                touched.extend(ids);
                sent.extend(envelopes);
                new = None;
                if complete {
                    return Ok((touched, sent));
                }
                // a large correction continues in the next transaction
            }
            Err(StoreError::AlreadyDone) => {
                new = None;
            }
            // Another booking of this customer committed first: read again and decide again.
            Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// What one booking transaction writes.
struct BookingPlan {
    /// Invoice rows to (re)write with their new booked result.
    rows: Vec<CustomerInvoiceRow>,
    /// Changes per invoice, grouped, in order.
    changes: Vec<(String, Vec<rules::plan::CommissionChange>)>,
    /// The sale's level effect, if it is new.
    level: Option<LevelEffect>,
    first_paid_sale_at_ms: Option<i64>,
    /// The invoice this booking adds, if any.
    new_invoice: Option<String>,
    at_ms: i64,
}

struct LevelEffect {
    partner_id: String,
    sale: LevelSale,
    promotion: Option<rules::levels::Promotion>,
}

async fn plan_booking(
    engine: &Engine,
    program: &Program,
    products: &[rules::ProgramProduct],
    customer_key: &str,
    rows: &[CustomerInvoiceRow],
    new: Option<&NewSale>,
) -> Result<Option<BookingPlan>, EngineError> {
    let t = &engine.table;
    // Partner, recruiter and rate context per invoice: a row keeps the partner it was booked for.
    let mut partner_of: BTreeMap<String, (String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.facts.invoice_id.clone(),
                (r.partner_id.clone(), r.recruiter_id.clone()),
            )
        })
        .collect();
    let mut facts: Vec<InvoiceFacts> = rows.iter().map(|r| r.facts.clone()).collect();
    let current_partner = match new {
        Some(n) => n.partner_id.clone(),
        None => match rows
            .iter()
            .max_by_key(|r| (r.facts.paid_at, r.facts.invoice_id.clone()))
        {
            Some(r) => r.partner_id.clone(),
            None => return Ok(None),
        },
    };
    let membership = partners::get_membership(t, &current_partner, &program.id).await?;
    let recruiter = if program.tiers == Tiers::Two {
        membership
            .as_ref()
            .and_then(|m| m.membership.recruiter.clone())
    } else {
        None
    };
    if let Some(n) = new {
        partner_of.insert(
            n.facts.invoice_id.clone(),
            (n.partner_id.clone(), recruiter.clone()),
        );
        facts.push(n.facts.clone());
    }
    let history = membership
        .as_ref()
        .map(|m| m.level_history.clone())
        .unwrap_or_default();
    let ctx = RateContext::with_levels(history.clone());
    let mut current = evaluate_customer(program, products, &facts, &ctx)?;
    // Tier 2 is booked only where the invoice's partner has a recruiter.
    for c in &mut current {
        if partner_of
            .get(&c.invoice_id)
            .and_then(|(_, r)| r.as_ref())
            .is_none()
        {
            c.tier2 = Money::zero(c.tier2.currency);
        }
    }
    let previous: Vec<InvoiceCommission> = rows.iter().map(|r| r.booked.clone()).collect();
    let diff = diff_booked(&previous, &current)?;
    let mut grouped: Vec<(String, Vec<rules::plan::CommissionChange>)> = vec![];
    for ch in diff {
        match grouped.last_mut() {
            Some((id, v)) if *id == ch.invoice_id => v.push(ch),
            _ => grouped.push((ch.invoice_id.clone(), vec![ch])),
        }
    }
    // Rows to write: the new invoice always; others when their booked result changed.
    let by_id: BTreeMap<&str, &CustomerInvoiceRow> = rows
        .iter()
        .map(|r| (r.facts.invoice_id.as_str(), r))
        .collect();
    let mut out_rows = vec![];
    for c in &current {
        let changed = by_id
            .get(c.invoice_id.as_str())
            .map(|r| r.booked != *c)
            .unwrap_or(true);
        if !changed {
            continue;
        }
        let (partner_id, recruiter_id) = partner_of
            .get(&c.invoice_id)
            .cloned()
            .unwrap_or((current_partner.clone(), None));
        let (f, source_event) = match by_id.get(c.invoice_id.as_str()) {
            Some(r) => (r.facts.clone(), r.source_event.clone()),
            None => match new {
                Some(n) => (n.facts.clone(), n.source_event.clone()),
                None => continue,
            },
        };
        out_rows.push(CustomerInvoiceRow {
            program_id: program.id.clone(),
            customer_key: customer_key.into(),
            partner_id,
            recruiter_id,
            facts: f,
            booked: c.clone(),
            source_event,
        });
    }
    if out_rows.is_empty() && grouped.is_empty() && new.is_none() {
        return Ok(None);
    }
    let first_paid_sale_at_ms = current
        .iter()
        .find(|c| c.is_first_sale)
        .map(|c| c.paid_at.timestamp_millis());
    let level = match new.and_then(|n| {
        current
            .iter()
            .find(|c| c.invoice_id == n.facts.invoice_id)
            .map(|c| (n, c))
    }) {
        Some((n, c)) if !program.levels.is_empty() && c.base.minor > 0 => {
            let metrics = load_metrics(t, &n.partner_id, &program.id).await?;
            let sale = LevelSale {
                paid_at: c.paid_at,
                revenue: c.base,
                new_customer: c.is_first_sale,
            };
            let promotion =
                promotion_after_sale(program, history.current_level(), &metrics, &sale)?;
            Some(LevelEffect {
                partner_id: n.partner_id.clone(),
                sale,
                promotion,
            })
        }
        _ => None,
    };
    let at_ms = new
        .map(|n| n.facts.paid_at.timestamp_millis())
        .unwrap_or_else(|| {
            current
                .iter()
                .map(|c| c.paid_at.timestamp_millis())
                .max()
                .unwrap_or(0)
        });
    Ok(Some(BookingPlan {
        rows: out_rows,
        changes: grouped,
        level,
        first_paid_sale_at_ms,
        new_invoice: new.map(|n| n.facts.invoice_id.clone()),
        at_ms,
    }))
}

async fn load_metrics(
    t: &Table,
    partner_id: &str,
    program_id: &str,
) -> Result<PartnerMetrics, EngineError> {
    let Some(item) = t.get(&keys::level_metrics(partner_id, program_id)).await? else {
        return Ok(PartnerMetrics::default());
    };
    let mut m = PartnerMetrics {
        active_customers: item
            .n("active_customers")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        ..Default::default()
    };
    for (k, v) in &item {
        if let (Some(code), Ok(n)) = (k.strip_prefix("revenue_"), v.as_n()) {
            if let (Ok(c), Ok(n)) = (Currency::new(code), n.parse::<i64>()) {
                m.revenue.insert(c, n);
            }
        }
    }
    Ok(m)
}

impl BookingPlan {
    /// Add this plan's writes to `tx`; returns the commission ids touched.
    async fn write(
        &self,
        engine: &Engine,
        program: &Program,
        customer_key: &str,
        version: u64,
        tx: &mut Tx,
        envelopes: &mut Vec<messages::Envelope>,
    ) -> Result<(Vec<String>, bool), EngineError> {
        let t = &engine.table;
        let budget = engine.tx_budget.min(crate::MAX_TX_ACTIONS_FOR_BOOKING);
        let mut complete = true;
        let mut ids = vec![];
        let rows: BTreeMap<&str, &CustomerInvoiceRow> = self
            .rows
            .iter()
            .map(|r| (r.facts.invoice_id.as_str(), r))
            .collect();
        let mut written_rows = BTreeSet::new();
        // The new invoice first: it must be in the transaction that holds its marker.
        let mut groups: Vec<&(String, Vec<rules::plan::CommissionChange>)> =
            self.changes.iter().collect();
        groups.sort_by_key(|(id, _)| Some(id) != self.new_invoice.as_ref());
        for (invoice_id, changes) in groups {
            // An invoice needs its row and, per tier, a commission, an entry and an outbox
            // message, plus up to two balance items not yet in the transaction.
            let cost = 1 + changes.len() * 3 + 2;
            if !written_rows.is_empty() && tx.len() + cost > budget {
                complete = false;
                break;
            }
            let Some(row) = rows.get(invoice_id.as_str()) else {
                return Err(EngineError::Inconsistent(format!(
                    "change for {invoice_id} without its row"
                )));
            };
            for ch in changes {
                let (partner_id, tier) = match ch.tier {
                    CommissionTier::Tier1 => (row.partner_id.clone(), 1u8),
                    CommissionTier::Tier2 => match &row.recruiter_id {
                        Some(r) => (r.clone(), 2u8),
                        None => continue,
                    },
                };
                let cid = keys::commission_id(&program.id, invoice_id, tier);
                // A brand-new invoice has no commission yet: read only for invoices booked before.
                let existing = if self.new_invoice.as_deref() == Some(invoice_id.as_str()) {
                    None
                } else {
                    customers::get_commission(t, &partner_id, &cid).await?
                };
                let source = row.source_event.clone();
                match (ch.kind, existing) {
                    (EntryKind::Earned, None) | (EntryKind::Adjusted, None)
                        if ch.amount.minor > 0 =>
                    {
                        let paid_ms = ch.paid_at.timestamp_millis();
                        let avail = available_at(ch.paid_at, program.hold_days).timestamp_millis();
                        let c = CommissionRow {
                            commission_id: cid.clone(),
                            partner_id: partner_id.clone(),
                            program_id: program.id.clone(),
                            invoice_id: invoice_id.clone(),
                            customer_key: customer_key.into(),
                            tier,
                            amount: ch.amount.minor,
                            currency: ch.amount.currency,
                            base: row.booked.base.minor,
                            rate: row.booked.rate_used,
                            state: CommissionState::Pending,
                            earned_at_ms: paid_ms,
                            available_at_ms: avail,
                            reason: reason_text(&row.booked, tier),
                            source_event: source.clone(),
                        };
                        let item = to_item(&c, &keys::commission(&partner_id, &cid))?
                            .with_gsi1(keys::partner_commissions_gsi(&partner_id, paid_ms, &cid))
                            .with_gsi2(keys::release_due_gsi(&cid, avail));
                        tx.put_new(item, "commission")?;
                        let entry = LedgerEntry::new(
                            format!("earned:{cid}"),
                            &partner_id,
                            &program.id,
                            ch.amount.currency,
                            EntryKind::Earned,
                            ch.amount.minor,
                            None,
                            paid_ms,
                            c.reason.clone(),
                            source,
                        )?
                        .for_commission(&cid);
                        ledger::post(tx, &entry)?;
                        if program.notify_on_commission {
                            let env = messages::Envelope {
                                id: earned_message_id(&cid),
                                at_ms: paid_ms,
                                message: messages::Message::CommissionEarned {
                                    partner_id: partner_id.clone(),
                                    program_id: program.id.clone(),
                                    commission_id: cid.clone(),
                                    tier,
                                    amount_minor: ch.amount.minor,
                                    currency: ch.amount.currency.code().to_string(),
                                    available_at_ms: avail,
                                },
                            };
                            storage::outbox::enqueue(tx, &env)?;
                            envelopes.push(env);
                        }
                    }
                    (_, None) => {
                        return Err(EngineError::Inconsistent(format!(
                            "negative change for {cid} without a commission"
                        )));
                    }
                    (_, Some(c)) => {
                        let bucket = match c.state {
                            CommissionState::Pending => Bucket::Pending,
                            CommissionState::Available => Bucket::Available,
                        };
                        let entry = LedgerEntry::new(
                            format!("adjusted:{cid}:v{version}"),
                            &partner_id,
                            &program.id,
                            ch.amount.currency,
                            EntryKind::Adjusted,
                            ch.amount.minor,
                            Some(bucket),
                            self.at_ms,
                            format!(
                                "re-priced in business-time order: {}",
                                reason_text(&row.booked, tier)
                            ),
                            source,
                        )?
                        .for_commission(&cid);
                        ledger::post(tx, &entry)?;
                        tx.update(
                            &keys::commission(&partner_id, &cid),
                            UpdateSpec::new()
                                .add_n("amount", ch.amount.minor)
                                .set_s("reason", reason_text(&row.booked, tier)),
                            "commission adjustment",
                        )?;
                    }
                }
                ids.push(cid);
            }
            tx.put(
                to_item(
                    *row,
                    &keys::customer_invoice(&program.id, customer_key, invoice_id),
                )?,
                "invoice row",
            )?;
            written_rows.insert(invoice_id.clone());
        }
        for row in &self.rows {
            if !written_rows.contains(&row.facts.invoice_id) {
                let is_new = self.new_invoice.as_ref() == Some(&row.facts.invoice_id);
                if !is_new && (!complete || tx.len() + 1 > budget) {
                    complete = false;
                    continue;
                }
                tx.put(
                    to_item(
                        row,
                        &keys::customer_invoice(&program.id, customer_key, &row.facts.invoice_id),
                    )?,
                    "invoice row",
                )?;
            }
        }
        if let Some(l) = &self.level {
            let mut spec = UpdateSpec::new().add_n(
                &format!("revenue_{}", l.sale.revenue.currency),
                l.sale.revenue.minor,
            );
            if l.sale.new_customer {
                spec = spec.add_n("active_customers", 1);
            }
            tx.update(
                &keys::level_metrics(&l.partner_id, &program.id),
                spec,
                "level metrics",
            )?;
            if let Some(p) = &l.promotion {
                if let Some(mut m) = partners::get_membership(t, &l.partner_id, &program.id).await?
                {
                    m.level_history.promote(p.to_level, p.effective_after);
                    let history = serde_dynamo::to_attribute_value(&m.level_history)
                        .map_err(StoreError::from)?;
                    tx.update(
                        &keys::membership(&l.partner_id, &program.id),
                        UpdateSpec::new().set("level_history", history).set(
                            "membership.level",
                            AttributeValue::N(p.to_level.to_string()),
                        ),
                        "membership level",
                    )?;
                }
            }
        }
        Ok((ids, complete))
    }
}

fn reason_text(c: &InvoiceCommission, tier: u8) -> String {
    let amount = if tier == 1 { c.tier1 } else { c.tier2 };
    match c.rate_used {
        Some(r) if tier == 1 => format!(
            "{}: {} at {}% of {}",
            tier_name(tier),
            amount,
            (r * rust_decimal::Decimal::ONE_HUNDRED).normalize(),
            c.base
        ),
        _ => format!(
            "{}: {} on {} ({:?})",
            tier_name(tier),
            amount,
            c.base,
            c.reason
        ),
    }
}

fn tier_name(tier: u8) -> &'static str {
    if tier == 1 {
        "tier 1"
    } else {
        "tier 2"
    }
}

/// `invoice.payment_failed`: nothing is earned; the invoice is recorded as in collections so an
/// operator can answer "I don't see this month's commission". A later `invoice.paid` earns once.
pub async fn invoice_payment_failed(
    engine: &Engine,
    event_id: &str,
    invoice_id: &str,
    customer_key: &str,
    at_ms: i64,
) -> Result<(), EngineError> {
    let t = &engine.table;
    if !keys::safe_id(invoice_id) || !keys::safe_id(customer_key) || !keys::safe_id(event_id) {
        return Ok(());
    }
    let item = Table::key_item(&keys::invoice_in_collections(customer_key, invoice_id))
        .with_s("invoice_id", invoice_id)
        .with_s("customer_key", customer_key)
        .with_n("at_ms", at_ms)
        .with_s("source_event", format!("stripe:{event_id}"));
    match t.put_if_absent(item).await {
        Ok(()) | Err(StoreError::AlreadyDone) => {}
        Err(e) => return Err(e.into()),
    }
    put_event_marker(t, event_id, at_ms).await
}

/// `customer.subscription.deleted`: payments of the subscription after `at_ms` earn nothing.
/// The earliest end wins when events repeat.
pub async fn subscription_ended(
    engine: &Engine,
    event_id: &str,
    subscription_id: &str,
    customer_key: &str,
    at_ms: i64,
) -> Result<(), EngineError> {
    let t = &engine.table;
    if !keys::safe_id(subscription_id) || !keys::safe_id(event_id) {
        return Ok(());
    }
    let mut tx = Tx::new();
    let item = Table::key_item(&keys::subscription_ended(subscription_id))
        .with_s("subscription_id", subscription_id)
        .with_s("customer_key", customer_key)
        .with_n("ended_at_ms", at_ms)
        .with_s("source_event", format!("stripe:{event_id}"));
    tx.put_if(
        item,
        "attribute_not_exists(PK) OR ended_at_ms > :at",
        &[],
        vec![(":at", AttributeValue::N(at_ms.to_string()))],
        "subscription end",
    )?;
    match tx.commit(t).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    put_event_marker(t, event_id, at_ms).await
}

/// Re-run the fold for a customer and book any difference (after a crash mid-correction, or an
/// operator's request). Books nothing when everything is in order.
pub async fn reconcile_customer(
    engine: &Engine,
    program: &Program,
    customer_key: &str,
) -> Result<Vec<String>, EngineError> {
    book_customer(engine, program, customer_key, None).await
}
