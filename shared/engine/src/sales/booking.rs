//! Booking: fold a customer's invoices, plan the difference from what is booked, write it in
//! one transaction (or, for a large correction, in several complete ones).

use std::collections::{BTreeMap, BTreeSet};

use rules::attribution::{binding_covers_sale, AttributionMethod};
use rules::plan::{
    diff_booked, evaluate_customer_versions, CommissionChange, CommissionTier, InvoiceCommission,
    InvoiceFacts, RateContext,
};
use rules::schedule::hold_ends_at;
use rules::{Bucket, EntryKind, Money, Program, ProgramVersions};
use storage::charges::{self, ChargeBooking, ChargeRow};
use storage::customers::{
    self, BindingRow, CommissionRow, CommissionState, CustomerInvoiceRow, SalesStateRow,
    UnattributedRow,
};
use storage::ledger::{self, LedgerEntry};
use storage::partners::{self, MembershipRow, PartnerLevels};
use storage::{keys, StoreError, Tx};

use super::earned_message_id;
use super::levels::{self, LevelEffect};
use super::reversals::{post_reversal, reversal_for};
use crate::{utc, Engine, EngineError, OPTIMISTIC_ATTEMPTS};

/// Actions one booking may use by default ([`Engine::tx_budget`]); the rest of a large
/// correction goes in the next transaction.
pub const TX_BUDGET: usize = 90;

/// A sale to add to a customer's books.
#[derive(Debug, Clone)]
pub(crate) struct NewSale {
    pub facts: InvoiceFacts,
    pub partner_id: String,
    pub source_event: String,
    /// The waiting (unattributed) sale this comes from, deleted in the same transaction.
    pub unattributed: Option<UnattributedRow>,
    /// The version of the customer's binding this sale was attributed with: the booking is
    /// conditional on it (`ConditionFailed{"binding"}` when the binding moved meanwhile).
    pub binding_version: Option<u64>,
    /// How the partner was found.
    pub attributed_by: Option<AttributionMethod>,
}

/// What the caller has just read for this booking, so the first attempt reads nothing again.
#[derive(Debug, Clone)]
pub(crate) struct Preloaded {
    pub state: SalesStateRow,
    /// The new sale's partner's membership (recruiter).
    pub membership: Option<MembershipRow>,
    /// Their levels in the program (`Some` only when read: in programs with levels).
    pub levels: Option<Option<PartnerLevels>>,
}

/// What a booking wrote.
#[derive(Debug, Clone, Default)]
pub(crate) struct Booked {
    /// Commissions earned or adjusted.
    pub commission_ids: Vec<String>,
    /// Outbox messages of the sale (written now, or by an earlier delivery of it).
    pub outbox_ids: Vec<String>,
    /// Partners whose level history this booking changed: their customers are re-priced.
    pub level_changes: Vec<String>,
}

/// Add `new` (if any) to the customer's invoices and book the differences. Safe to repeat;
/// concurrent bookings of one customer retry. Messages are delivered after the commit. When
/// the booking changed the partner's level history (or finds a re-pricing left unfinished), the
/// partner's affected customers are re-priced afterwards ([`levels::reprice_after_level_change`]).
pub(crate) async fn book_customer(
    engine: &Engine,
    program: &Program,
    customer_key: &str,
    new: Option<NewSale>,
    preloaded: Option<Preloaded>,
) -> Result<Booked, EngineError> {
    let unfinished = preloaded
        .as_ref()
        .and_then(|p| p.levels.as_ref())
        .and_then(Option::as_ref)
        .filter(|l| l.reprice_from_ms.is_some())
        .map(|l| l.partner_id.clone());
    let mut booked = book_and_deliver(engine, program, customer_key, new, preloaded).await?;
    let mut partners: BTreeSet<String> = booked.level_changes.iter().cloned().collect();
    partners.extend(unfinished);
    for partner_id in partners {
        let touched = levels::reprice_after_level_change(engine, program, &partner_id).await?;
        booked.commission_ids.extend(touched);
    }
    Ok(booked)
}

/// The program's versions (each invoice is priced with the one in force at its paid time).
async fn versions_of(
    engine: &Engine,
    program: &Program,
) -> Result<std::sync::Arc<ProgramVersions>, EngineError> {
    engine
        .catalog
        .versions(&engine.table, &program.id)
        .await?
        .ok_or_else(|| EngineError::Inconsistent(format!("program {} vanished", program.id)))
}

/// [`book_customer`] without the re-pricing of other customers after a level change.
pub(crate) async fn book_and_deliver(
    engine: &Engine,
    program: &Program,
    customer_key: &str,
    new: Option<NewSale>,
    preloaded: Option<Preloaded>,
) -> Result<Booked, EngineError> {
    // Each invoice is priced with the program version in force at its paid time.
    let versions = versions_of(engine, program).await?;
    let (mut booked, envelopes, mut repeated) = book_customer_inner(
        engine,
        program,
        &versions,
        customer_key,
        new,
        preloaded,
        None,
    )
    .await?;
    repeated.sort();
    repeated.dedup();
    booked.outbox_ids.extend(repeated.iter().cloned());
    engine.deliver_new(&envelopes).await;
    // A repeat of a sale booked earlier (its delivery may have died before sending).
    engine.deliver_outbox(&repeated).await;
    Ok(booked)
}

/// The messages a sale's booking enqueues (none when the program does not notify).
fn sale_message_ids(program: &Program, invoice_id: &str) -> Vec<String> {
    if !program.notify_on_commission {
        return vec![];
    }
    [1u8, 2]
        .map(|tier| earned_message_id(&keys::commission_id(&program.id, invoice_id, tier)))
        .to_vec()
}

async fn book_customer_inner(
    engine: &Engine,
    program: &Program,
    versions: &ProgramVersions,
    customer_key: &str,
    new: Option<NewSale>,
    preloaded: Option<Preloaded>,
    reattribute: Option<&BindingRow>,
) -> Result<(Booked, Vec<messages::Envelope>, Vec<String>), EngineError> {
    let t = &engine.table;
    let mut booked = Booked::default();
    let mut sent: Vec<messages::Envelope> = vec![];
    let mut repeated: Vec<String> = vec![];
    let mut new = new;
    let mut preloaded = preloaded;
    // The new sale's charge is assumed to have no refunds yet (no read); a charge item that
    // exists fails the write, and the next attempt reads it.
    let mut read_new_charge = false;
    let mut attempts = 0;
    loop {
        attempts += 1;
        if attempts > OPTIMISTIC_ATTEMPTS * 3 {
            return Err(StoreError::Contention { attempts }.into());
        }
        let pre = preloaded.take();
        let state = match &pre {
            Some(p) => p.state.clone(),
            None => customers::sales_state(t, &program.id, customer_key).await?,
        };
        // Invoice rows are only ever written with a sales state: none before the first booking.
        let rows = if state.version == 0 {
            vec![]
        } else {
            customers::customer_invoices(t, &program.id, customer_key).await?
        };
        if let Some(n) = &new {
            if rows
                .iter()
                .any(|r| r.facts.invoice_id == n.facts.invoice_id)
            {
                // already booked by an earlier delivery
                repeated.extend(sale_message_ids(program, &n.facts.invoice_id));
                new = None;
                continue;
            }
        }
        let plan = match plan_booking(
            engine,
            program,
            versions,
            customer_key,
            &rows,
            new.as_ref(),
            pre,
            reattribute,
        )
        .await?
        {
            Some(p) => p,
            None => return Ok((booked, sent, repeated)),
        };
        let mut tx = Tx::new();
        if let Some(n) = &new {
            customers::invoice_booked_once(
                &mut tx,
                &program.id,
                &n.facts.invoice_id,
                &n.source_event,
            )?;
            if let Some(u) = &n.unattributed {
                customers::delete_unattributed(&mut tx, u)?;
            }
            if let Some(v) = n.binding_version {
                customers::check_binding(&mut tx, &program.id, customer_key, Some(v))?;
            }
        } else if let Some(b) = reattribute {
            customers::check_binding(&mut tx, &program.id, customer_key, Some(b.version))?;
        }
        customers::advance_sales_state(
            &mut tx,
            &program.id,
            customer_key,
            state.version,
            plan.first_paid_sale_at_ms,
        )?;
        let mut envelopes = vec![];
        let (ids, complete) = plan
            .write(
                engine,
                program,
                customer_key,
                state.version + 1,
                read_new_charge,
                &mut tx,
                &mut envelopes,
            )
            .await?;
        match tx.commit(t).await {
            Ok(()) => {
                booked.commission_ids.extend(ids);
                if let Some(p) = plan.level.as_ref().and_then(LevelEffect::reprice_partner) {
                    booked.level_changes.push(p.to_string());
                }
                booked
                    .outbox_ids
                    .extend(envelopes.iter().map(|e| e.id.clone()));
                sent.extend(envelopes);
                new = None;
                if complete {
                    return Ok((booked, sent, repeated));
                }
                // a large correction continues in the next transaction
            }
            Err(StoreError::AlreadyDone) => {
                if let Some(n) = &new {
                    repeated.extend(sale_message_ids(program, &n.facts.invoice_id));
                }
                new = None;
            }
            // The binding the sale was attributed with moved: the caller decides again.
            Err(e) if e.is_condition_failed_on("binding") => return Err(e.into()),
            // The sale's charge has refunds or disputes already (or another writer of it
            // committed): read it and apply them.
            Err(e) if e.is_condition_failed_on("charge") => read_new_charge = true,
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
    changes: Vec<(String, Vec<CommissionChange>)>,
    /// The new sale's level effect.
    level: Option<LevelEffect>,
    first_paid_sale_at_ms: Option<i64>,
    /// The invoice this booking adds, if any.
    new_invoice: Option<String>,
    /// Invoices re-attributed to another partner: what the previous partner and recruiter had
    /// booked for them, reversed in the transaction that books them for the new partner.
    moved: BTreeMap<String, MovedFrom>,
    at_ms: i64,
}

/// What a re-attributed invoice had booked for its previous partner (and recruiter).
struct MovedFrom {
    partner_id: String,
    recruiter_id: Option<String>,
    booked: InvoiceCommission,
}

#[allow(clippy::too_many_arguments)]
async fn plan_booking(
    engine: &Engine,
    program: &Program,
    versions: &ProgramVersions,
    customer_key: &str,
    rows: &[CustomerInvoiceRow],
    new: Option<&NewSale>,
    pre: Option<Preloaded>,
    reattribute: Option<&BindingRow>,
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
    let current_partner = match (new, reattribute) {
        (Some(n), _) => n.partner_id.clone(),
        (None, Some(b)) => b.partner_id.clone(),
        (None, None) => match rows
            .iter()
            .max_by_key(|r| (r.facts.paid_at, r.facts.invoice_id.clone()))
        {
            Some(r) => r.partner_id.clone(),
            None => return Ok(None),
        },
    };
    // The preloaded membership and levels are the new sale's partner's.
    let (membership, stored_levels) = match pre {
        Some(p) if new.is_some() => (p.membership, p.levels),
        _ => (
            partners::get_membership(t, &current_partner, &program.id).await?,
            None,
        ),
    };
    let stored_levels = match stored_levels {
        Some(l) => l,
        None if !program.levels.is_empty() => {
            partners::partner_levels(t, &current_partner, &program.id).await?
        }
        None => None,
    };
    let recruiter = if versions.any_two_tiers() {
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
    // Invoices the binding now covers but another partner was credited with move to it.
    let mut moved: BTreeMap<String, MovedFrom> = BTreeMap::new();
    if let Some(b) = reattribute {
        for r in rows {
            if r.partner_id != b.partner_id
                && binding_covers_sale(b.cause_at_ms, r.facts.paid_at.timestamp_millis())
            {
                moved.insert(
                    r.facts.invoice_id.clone(),
                    MovedFrom {
                        partner_id: r.partner_id.clone(),
                        recruiter_id: r.recruiter_id.clone(),
                        booked: r.booked.clone(),
                    },
                );
                partner_of.insert(
                    r.facts.invoice_id.clone(),
                    (b.partner_id.clone(), recruiter.clone()),
                );
            }
        }
    }
    let history = levels::history_in_force(stored_levels.as_ref(), membership.as_ref());
    let ctx = RateContext::with_levels(history.clone());
    let mut current = evaluate_customer_versions(versions, &facts, &ctx)?;
    let level = match new {
        Some(n) => {
            levels::effect_of_new_sale(
                engine,
                program,
                customer_key,
                &n.partner_id,
                &n.facts.invoice_id,
                &current,
                &history,
                stored_levels.as_ref(),
                membership.as_ref(),
            )
            .await?
        }
        None => None,
    };
    // A sale that moved a level crossing: the customer's invoices are priced with the new history.
    if let Some(h) = level.as_ref().and_then(LevelEffect::changed_history) {
        current =
            evaluate_customer_versions(versions, &facts, &RateContext::with_levels(h.clone()))?;
    }
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
    // A moved invoice starts from nothing for its new partner (the old one's is reversed).
    let previous: Vec<InvoiceCommission> = rows
        .iter()
        .map(|r| {
            let mut b = r.booked.clone();
            if moved.contains_key(&r.facts.invoice_id) {
                b.tier1 = Money::zero(b.tier1.currency);
                b.tier2 = Money::zero(b.tier2.currency);
            }
            b
        })
        .collect();
    let diff = diff_booked(&previous, &current)?;
    let mut grouped: Vec<(String, Vec<CommissionChange>)> = vec![];
    for ch in diff {
        match grouped.last_mut() {
            Some((id, v)) if *id == ch.invoice_id => v.push(ch),
            _ => grouped.push((ch.invoice_id.clone(), vec![ch])),
        }
    }
    for id in moved.keys() {
        if !grouped.iter().any(|(g, _)| g == id) {
            grouped.push((id.clone(), vec![]));
        }
    }
    // Rows to write: the new invoice always; others when their booked result changed.
    let by_id: BTreeMap<&str, &CustomerInvoiceRow> = rows
        .iter()
        .map(|r| (r.facts.invoice_id.as_str(), r))
        .collect();
    let mut out_rows = vec![];
    for c in &current {
        let changed = moved.contains_key(&c.invoice_id)
            || by_id
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
        let (f, source_event, attributed_by) = match by_id.get(c.invoice_id.as_str()) {
            Some(r) => {
                let by = match reattribute.filter(|_| moved.contains_key(&c.invoice_id)) {
                    Some(b) => Some(b.attributed_by()),
                    None => r.attributed_by,
                };
                (r.facts.clone(), r.source_event.clone(), by)
            }
            None => match new {
                Some(n) => (n.facts.clone(), n.source_event.clone(), n.attributed_by),
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
            attributed_by,
        });
    }
    if out_rows.is_empty() && grouped.is_empty() && new.is_none() {
        return Ok(None);
    }
    let first_paid_sale_at_ms = current
        .iter()
        .find(|c| c.is_first_sale)
        .map(|c| c.paid_at.timestamp_millis());
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
        moved,
        at_ms,
    }))
}

impl BookingPlan {
    /// The charge items of the invoices this plan changes (refunds and disputes on them move
    /// with their commissions), with the version read, and the invoice's booking on each. The
    /// new invoice's charge is not read unless `read_new_charge`: it is assumed new.
    async fn charges(
        &self,
        engine: &Engine,
        program: &Program,
        customer_key: &str,
        read_new_charge: bool,
    ) -> Result<BTreeMap<String, (ChargeRow, u64)>, EngineError> {
        let rows: BTreeMap<&str, &CustomerInvoiceRow> = self
            .rows
            .iter()
            .map(|r| (r.facts.invoice_id.as_str(), r))
            .collect();
        let mut wanted: Vec<(&CustomerInvoiceRow, String)> = vec![];
        for (invoice_id, _) in &self.changes {
            if let Some(row) = rows.get(invoice_id.as_str()) {
                if let Some(k) = row.facts.charge_key().filter(|k| keys::safe_id(k)) {
                    wanted.push((row, k.to_string()));
                }
            }
        }
        if let Some(new_id) = &self.new_invoice {
            if let Some(row) = rows.get(new_id.as_str()) {
                if let Some(k) = row.facts.charge_key().filter(|k| keys::safe_id(k)) {
                    if !wanted.iter().any(|(_, w)| w == k) {
                        wanted.push((row, k.to_string()));
                    }
                }
            }
        }
        if wanted.is_empty() {
            return Ok(BTreeMap::new());
        }
        let to_read: Vec<String> = wanted
            .iter()
            .filter(|(row, _)| {
                read_new_charge
                    || self.new_invoice.as_deref() != Some(row.facts.invoice_id.as_str())
            })
            .map(|(_, k)| k.clone())
            .collect();
        let mut found: BTreeMap<String, (ChargeRow, u64)> = if to_read.is_empty() {
            BTreeMap::new()
        } else {
            charges::get_many(&engine.table, &to_read)
                .await?
                .into_iter()
                .map(|c| (c.charge_key.clone(), (c.clone(), c.version)))
                .collect()
        };
        for (row, k) in wanted {
            let (charge, _) = found
                .entry(k.clone())
                .or_insert_with(|| (ChargeRow::new(&k, row.facts.paid_at.timestamp_millis()), 0));
            let payment = row.facts.payment.as_ref();
            charge.add_booking(ChargeBooking {
                program_id: program.id.clone(),
                customer_key: customer_key.to_string(),
                invoice_id: row.facts.invoice_id.clone(),
                amount_paid: payment.map_or(0, |p| p.amount_paid),
            });
            if charge.customer_key.is_none() && keys::safe_id(customer_key) {
                charge.customer_key = Some(customer_key.to_string());
            }
            if charge.invoice_id.is_none() {
                charge.invoice_id = Some(row.facts.invoice_id.clone());
            }
            if charge.payment_intent.is_none() {
                charge.payment_intent = payment.and_then(|p| p.payment_intent.clone());
            }
            if charge.currency.is_none() {
                charge.currency = Some(row.facts.currency);
            }
        }
        Ok(found)
    }

    /// Add this plan's writes to `tx`; returns the commission ids touched and whether the plan
    /// fitted in this transaction.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        engine: &Engine,
        program: &Program,
        customer_key: &str,
        version: u64,
        read_new_charge: bool,
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
        let charges = self
            .charges(engine, program, customer_key, read_new_charge)
            .await?;
        let mut charges_written: BTreeSet<String> = BTreeSet::new();
        let mut written_rows = BTreeSet::new();
        // The new invoice first: it must be in the transaction that holds its marker.
        let mut groups: Vec<&(String, Vec<CommissionChange>)> = self.changes.iter().collect();
        groups.sort_by_key(|(id, _)| Some(id) != self.new_invoice.as_ref());
        for (invoice_id, changes) in groups {
            let Some(row) = rows.get(invoice_id.as_str()) else {
                return Err(EngineError::Inconsistent(format!(
                    "change for {invoice_id} without its row"
                )));
            };
            let charge = row
                .facts
                .charge_key()
                .and_then(|k| charges.get(k))
                .map(|(c, v)| (c, *v));
            // An invoice needs its row and, per tier, a commission, an entry and an outbox
            // message, plus up to two balance items not yet in the transaction; with a charge,
            // the charge item and per tier up to two reversal entries and a message.
            let reversal = self.moved.get(invoice_id.as_str());
            let cost = 1
                + changes.len() * 3
                + 2
                + reversal.map_or(0, |_| 2 * 2 + 2)
                + charge.map_or(0, |_| 1 + changes.len() * 3);
            if !written_rows.is_empty() && tx.len() + cost > budget {
                complete = false;
                break;
            }
            if let Some(m) = reversal {
                reverse_moved(engine, program, invoice_id, m, version, self.at_ms, tx).await?;
            }
            let booking = charge.and_then(|(c, _)| {
                c.bookings
                    .iter()
                    .find(|b| b.program_id == program.id && b.invoice_id == *invoice_id)
            });
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
                        let avail = hold_ends_at(
                            program.hold_anchor,
                            program.hold_days,
                            ch.paid_at,
                            self.first_paid_sale_at_ms.map(utc),
                        )
                        .timestamp_millis();
                        let mut c = CommissionRow {
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
                            attributed_by: row.attributed_by,
                            reversed_pending: 0,
                            reversed_available: 0,
                        };
                        // Refunds or disputes of its charge that came first are applied now.
                        let taken =
                            charge.map(|(cr, _)| (cr, reversal_for(cr, booking, &c, c.amount)));
                        if let Some((_, r)) = &taken {
                            c.reversed_pending = r.after.from_pending;
                            c.reversed_available = r.after.from_available;
                        }
                        customers::put_new_commission(tx, &c)?;
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
                            // A re-attributed commission's message is the new partner's own.
                            let id = if reversal.is_some() {
                                format!("{}:{partner_id}", earned_message_id(&cid))
                            } else {
                                earned_message_id(&cid)
                            };
                            let env = messages::Envelope {
                                id,
                                at_ms: paid_ms,
                                message: messages::Message::CommissionEarned {
                                    partner_id: partner_id.clone(),
                                    program_id: program.id.clone(),
                                    commission_id: cid.clone(),
                                    tier,
                                    amount_minor: ch.amount.minor,
                                    currency: ch.amount.currency.code().to_string(),
                                    available_at_ms: avail,
                                    product_id: row
                                        .facts
                                        .lines
                                        .iter()
                                        .find(|l| l.amount.minor > 0 && !l.metered)
                                        .and_then(|l| l.product_id.clone()),
                                },
                            };
                            storage::outbox::enqueue(tx, &env)?;
                            envelopes.push(env);
                        }
                        if let (Some((cr, r)), Some((_, v))) = (&taken, charge) {
                            let before = CommissionRow {
                                reversed_pending: 0,
                                reversed_available: 0,
                                ..c.clone()
                            };
                            post_reversal(tx, program, cr, v + 1, &before, r, envelopes)?;
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
                        let reason = reason_text(&row.booked, tier);
                        let entry = LedgerEntry::new(
                            format!("adjusted:{cid}:v{version}"),
                            &partner_id,
                            &program.id,
                            ch.amount.currency,
                            EntryKind::Adjusted,
                            ch.amount.minor,
                            Some(bucket),
                            self.at_ms,
                            format!("re-priced in business-time order: {reason}"),
                            source,
                        )?
                        .for_commission(&cid);
                        ledger::post(tx, &entry)?;
                        // The reversal target moves with the amount.
                        let taken = charge.map(|(cr, v)| {
                            (
                                cr,
                                v,
                                reversal_for(cr, booking, &c, c.amount + ch.amount.minor),
                            )
                        });
                        // Conditional on the state read: a release in between retries the booking.
                        customers::adjust_commission(
                            tx,
                            &c,
                            ch.amount.minor,
                            &reason,
                            taken.as_ref().map(|(_, _, r)| r.after),
                        )?;
                        if let Some((cr, v, r)) = &taken {
                            post_reversal(tx, program, cr, v + 1, &c, r, envelopes)?;
                        }
                    }
                }
                ids.push(cid);
            }
            if let Some(k) = row.facts.charge_key() {
                charges_written.insert(k.to_string());
            }
            customers::put_invoice_row(tx, row)?;
            written_rows.insert(invoice_id.clone());
        }
        for row in &self.rows {
            if !written_rows.contains(&row.facts.invoice_id) {
                let is_new = self.new_invoice.as_ref() == Some(&row.facts.invoice_id);
                if !is_new && (!complete || tx.len() + 1 > budget) {
                    complete = false;
                    continue;
                }
                if is_new {
                    if let Some(k) = row.facts.charge_key() {
                        charges_written.insert(k.to_string());
                    }
                }
                customers::put_invoice_row(tx, row)?;
            }
        }
        // Each charge whose commissions this transaction moved (or whose sale it books): the
        // item a refund of that charge writes too, so the two see each other.
        for k in &charges_written {
            if let Some((c, v)) = charges.get(k) {
                charges::put(tx, c, *v)?;
            }
        }
        if let Some(l) = &self.level {
            l.write(tx, program, envelopes)?;
        }
        Ok((ids, complete))
    }
}

/// Reverse what a re-attributed invoice earned its previous partner (and recruiter): an
/// `adjusted` entry per tier in the bucket where the commission sits, and the commission's
/// amount down to zero.
#[allow(clippy::too_many_arguments)]
async fn reverse_moved(
    engine: &Engine,
    program: &Program,
    invoice_id: &str,
    m: &MovedFrom,
    version: u64,
    at_ms: i64,
    tx: &mut Tx,
) -> Result<(), EngineError> {
    let tiers = [
        (1u8, Some(&m.partner_id), m.booked.tier1),
        (2u8, m.recruiter_id.as_ref(), m.booked.tier2),
    ];
    for (tier, partner, amount) in tiers {
        let Some(partner_id) = partner else { continue };
        if amount.minor == 0 {
            continue;
        }
        let cid = keys::commission_id(&program.id, invoice_id, tier);
        let Some(c) = customers::get_commission(&engine.table, partner_id, &cid).await? else {
            return Err(EngineError::Inconsistent(format!(
                "re-attributed {cid} has no commission of {partner_id}"
            )));
        };
        let bucket = match c.state {
            CommissionState::Pending => Bucket::Pending,
            CommissionState::Available => Bucket::Available,
        };
        let reason = format!(
            "re-attributed: the customer's referral is another partner's ({} of {})",
            amount,
            tier_name(tier)
        );
        // What the commission holds net of refunds goes; what they took back stays taken.
        if c.net() != 0 {
            let entry = LedgerEntry::new(
                format!("reattributed:{cid}:v{version}"),
                partner_id,
                &program.id,
                amount.currency,
                EntryKind::Adjusted,
                -c.net(),
                Some(bucket),
                at_ms,
                reason.clone(),
                c.source_event.clone(),
            )?
            .for_commission(&cid);
            ledger::post(tx, &entry)?;
        }
        customers::set_commission(tx, &c, 0, &reason, Default::default())?;
    }
    Ok(())
}

/// After a binding moved to another partner (a cause that counts arrived after the customer's
/// first sale was booked: e.g. the checkout's click binding delivered after `invoice.paid`
/// booked a promotion code's partner), move the customer's booked invoices the binding covers
/// to its partner: the previous partner's commissions are reversed with `adjusted` entries and
/// the new partner's are earned, in the same transaction per invoice. Conditional on the
/// binding's version; idempotent (nothing moves when everything names the binding's partner).
pub(crate) async fn reattribute_customer(
    engine: &Engine,
    program: &Program,
    binding: &BindingRow,
) -> Result<Vec<String>, EngineError> {
    let versions = versions_of(engine, program).await?;
    match book_customer_inner(
        engine,
        program,
        &versions,
        &binding.customer_key,
        None,
        None,
        Some(binding),
    )
    .await
    {
        Ok((booked, envelopes, _)) => {
            engine.deliver_new(&envelopes).await;
            Ok(booked.commission_ids)
        }
        // Moved again meanwhile: the bind that moved it re-attributes.
        Err(e) if super::intake::binding_moved(&e) => Ok(vec![]),
        Err(e) => Err(e),
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

/// Re-run the fold for a customer and book any difference (after a crash mid-correction, or at
/// an operator's request). Books nothing when everything is in order. Returns the commissions
/// touched. No deployed operation calls it yet: the replay of a needs-attention record goes
/// through the webhook's own processing, whose markers make it idempotent.
pub async fn reconcile_customer(
    engine: &Engine,
    program: &Program,
    customer_key: &str,
) -> Result<Vec<String>, EngineError> {
    Ok(book_customer(engine, program, customer_key, None, None)
        .await?
        .commission_ids)
}
