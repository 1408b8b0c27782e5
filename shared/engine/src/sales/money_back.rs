//! Money going back: a refund or dispute event of a charge brings every commission of the
//! sales booked on that charge (tier 1 and tier 2, in every program) to its reversal target
//! (`rules::refund`), exactly once, whatever order the events come in.
//!
//! One transaction per event: the charge item (its refunds and disputes, conditional on the
//! version read), and per commission that moves, its reversal (conditional on the state,
//! amount and reversal read), its entries and balance moves, and the partner's message. A
//! booking of a sale on the same charge writes the same charge item ([`super::booking`]), so
//! the two never miss each other; a hold release writes the same commission item, so a refund
//! racing the release never strands money. Whichever commits second reads again and books only
//! the difference. A refund whose sale is not booked yet stays on the charge item (parked) and
//! the booking applies it.

use std::collections::BTreeMap;

use storage::charges::{self, ChargeBooking, ChargeFact, ChargeRow};
use storage::customers::{self, CommissionRow};
use storage::{keys, StoreError, Tx};

use super::reversals::{post_reversal, reversal_for, Reversal};
use crate::{Engine, EngineError, OPTIMISTIC_ATTEMPTS};

/// A refund or dispute event, as the payment provider reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoneyBack {
    /// `evt_…`: applied once.
    pub event_id: String,
    /// What delivered it: [`super::STRIPE_SOURCE`] or `feed:{name}` (the ledger's labels).
    pub source: String,
    /// Business time: the event's `created`.
    pub at_ms: i64,
    /// The charge (`ch_…`), or the payment intent (`pi_…`) when the object names no charge.
    pub charge_key: String,
    pub payment_intent: Option<String>,
    /// `charge.invoice` (pinned version), when the event carries a charge.
    pub invoice_id: Option<String>,
    pub customer_key: Option<String>,
    pub currency: Option<rules::Currency>,
    pub fact: ChargeFact,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MoneyBackOutcome {
    /// Applied: these commissions moved (none when the target was already met).
    Applied { commission_ids: Vec<String> },
    /// No sale is booked on the charge yet: kept on the charge, applied when one is.
    Parked,
    /// A repeat delivery: nothing changed.
    AlreadyApplied,
}

/// One commission of a sale on the charge, as read, and what brings it to its target.
struct Planned {
    booking: ChargeBooking,
    commission: CommissionRow,
    reversal: Reversal,
}

/// `charge.refunded`, `refund.*`, `charge.refund.updated`, `charge.dispute.*`.
pub async fn money_back(engine: &Engine, mb: MoneyBack) -> Result<MoneyBackOutcome, EngineError> {
    if !keys::safe_id(&mb.charge_key) || !keys::safe_id(&mb.event_id) {
        return Err(EngineError::Invalid(format!(
            "charge {:?} or event {:?} is not a valid id",
            mb.charge_key, mb.event_id
        )));
    }
    let t = &engine.table;
    for _ in 0..OPTIMISTIC_ATTEMPTS * 3 {
        let read = charges::get(t, &mb.charge_key).await?;
        let read_version = read.as_ref().map_or(0, |r| r.version);
        let mut row = read.unwrap_or_else(|| ChargeRow::new(&mb.charge_key, mb.at_ms));
        let changed = row.apply(&mb.event_id, mb.at_ms, mb.fact.clone());
        fill_in(&mut row, &mb);
        let planned = plan(engine, &row).await?;
        if !changed && planned.iter().all(|p| p.reversal.moves.is_empty()) {
            return Ok(MoneyBackOutcome::AlreadyApplied);
        }
        let (ids, envelopes, tx) = write(engine, &row, read_version, &planned).await?;
        match tx.commit(t).await {
            Ok(()) => {
                engine.deliver_new(&envelopes).await;
                return Ok(if row.is_parked() {
                    MoneyBackOutcome::Parked
                } else {
                    MoneyBackOutcome::Applied {
                        commission_ids: ids,
                    }
                });
            }
            // Another event of this charge, a booking on it, or a release or re-pricing of one
            // of its commissions committed since the read: read again.
            Err(StoreError::ConditionFailed { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Contention {
        attempts: OPTIMISTIC_ATTEMPTS * 3,
    }
    .into())
}

/// What the event says about the charge that the item does not know yet.
fn fill_in(row: &mut ChargeRow, mb: &MoneyBack) {
    if row.payment_intent.is_none() {
        row.payment_intent = mb.payment_intent.clone();
    }
    if row.invoice_id.is_none() {
        row.invoice_id = mb.invoice_id.clone();
    }
    if row.customer_key.is_none() {
        row.customer_key = mb.customer_key.clone().filter(|c| keys::safe_id(c));
    }
    if row.currency.is_none() {
        row.currency = mb.currency;
    }
    if row.source.is_none() {
        row.source = Some(mb.source.clone());
    }
}

/// Every commission of the sales booked on the charge, read (two `BatchGetItem`s: the invoice
/// rows, then their commissions), with the moves that bring each to its target.
async fn plan(engine: &Engine, row: &ChargeRow) -> Result<Vec<Planned>, EngineError> {
    if row.bookings.is_empty() {
        return Ok(vec![]);
    }
    let t = &engine.table;
    let wanted: Vec<(String, String, String)> = row
        .bookings
        .iter()
        .map(|b| {
            (
                b.program_id.clone(),
                b.customer_key.clone(),
                b.invoice_id.clone(),
            )
        })
        .collect();
    let invoices = customers::invoice_rows(t, &wanted).await?;
    let mut booking_of: BTreeMap<(String, String), ChargeBooking> = BTreeMap::new();
    for inv in &invoices {
        let Some(b) = row
            .bookings
            .iter()
            .find(|b| b.program_id == inv.program_id && b.invoice_id == inv.facts.invoice_id)
        else {
            continue;
        };
        let tiers = [
            (1u8, Some(&inv.partner_id)),
            (2u8, inv.recruiter_id.as_ref()),
        ];
        for (tier, partner) in tiers {
            let Some(partner) = partner else { continue };
            let cid = keys::commission_id(&b.program_id, &b.invoice_id, tier);
            booking_of.insert((partner.clone(), cid), b.clone());
        }
    }
    let keys_wanted: Vec<_> = booking_of.keys().cloned().collect();
    let mut out = vec![];
    for commission in customers::commissions(t, &keys_wanted).await? {
        let k = (
            commission.partner_id.clone(),
            commission.commission_id.clone(),
        );
        let Some(booking) = booking_of.get(&k) else {
            continue;
        };
        let reversal = reversal_for(row, Some(booking), &commission, commission.amount);
        out.push(Planned {
            booking: booking.clone(),
            commission,
            reversal,
        });
    }
    out.sort_by(|a, b| a.commission.commission_id.cmp(&b.commission.commission_id));
    Ok(out)
}

async fn write(
    engine: &Engine,
    row: &ChargeRow,
    read_version: u64,
    planned: &[Planned],
) -> Result<(Vec<String>, Vec<messages::Envelope>, Tx), EngineError> {
    let mut tx = Tx::new();
    charges::put(&mut tx, row, read_version)?;
    let mut ids = vec![];
    let mut envelopes = vec![];
    for p in planned.iter().filter(|p| !p.reversal.moves.is_empty()) {
        let program = engine
            .catalog
            .program(&engine.table, &p.booking.program_id)
            .await?
            .ok_or_else(|| {
                EngineError::Inconsistent(format!("program {} vanished", p.booking.program_id))
            })?;
        customers::set_commission_reversal(&mut tx, &p.commission, p.reversal.after)?;
        post_reversal(
            &mut tx,
            &program,
            row,
            read_version + 1,
            &p.commission,
            &p.reversal,
            &mut envelopes,
        )?;
        ids.push(p.commission.commission_id.clone());
    }
    Ok((ids, envelopes, tx))
}
