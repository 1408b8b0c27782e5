//! What refunds and disputes of a charge take back from one commission, and the entries that
//! book it: shared by the money-back events ([`super::money_back`]) and by the booking of a
//! sale paid by a charge with money going back already ([`super::booking`]), so both compute
//! the same thing from the same charge item.

use rules::refund::{after_moves, reversal_moves, reversal_target, MoveBucket, ReversedSoFar};
use rules::{Bucket, EntryKind, Money, Program};
use storage::charges::{ChargeBooking, ChargeRow};
use storage::customers::{CommissionRow, CommissionState};
use storage::ledger::{self, LedgerEntry};
use storage::Tx;

use crate::EngineError;

/// The outbox id of the "commission reversed" message of a commission at a charge version.
pub(crate) fn reversed_message_id(commission_id: &str, charge_version: u64) -> String {
    format!("commission-reversed:{commission_id}:c{charge_version}")
}

/// One commission brought to its reversal target.
#[derive(Debug, Clone)]
pub(crate) struct Reversal {
    pub moves: Vec<rules::refund::ReversalMove>,
    /// What is taken back after the moves.
    pub after: ReversedSoFar,
    pub taken_back: i64,
    pub charge_amount: i64,
    /// The commission's amount the target was computed on.
    pub amount: i64,
}

/// The moves that bring `c` (with `amount`, its amount after any change in the same
/// transaction) to what `charge` takes back.
pub(crate) fn reversal_for(
    charge: &ChargeRow,
    booking: Option<&ChargeBooking>,
    c: &CommissionRow,
    amount: i64,
) -> Reversal {
    let charge_amount = charge.charge_amount(booking).unwrap_or(0);
    let taken_back = charge.taken_back(charge_amount);
    let target = reversal_target(amount, taken_back, charge_amount);
    let already = c.reversed();
    let moves = reversal_moves(target, already, c.state == CommissionState::Pending);
    let after = after_moves(already, &moves);
    Reversal {
        moves,
        after,
        taken_back,
        charge_amount,
        amount,
    }
}

/// Post the entries of `r` for commission `c` (and, when the program notifies partners of
/// commissions, a "commission reversed" message). `charge_version`: the charge item's version
/// this transaction writes (the entries' ids and the message's id are unique by it).
pub(crate) fn post_reversal(
    tx: &mut Tx,
    program: &Program,
    charge: &ChargeRow,
    charge_version: u64,
    c: &CommissionRow,
    r: &Reversal,
    envelopes: &mut Vec<messages::Envelope>,
) -> Result<(), EngineError> {
    if r.moves.is_empty() {
        return Ok(());
    }
    let at_ms = charge.latest_fact_ms().max(c.earned_at_ms);
    let source = charge
        .events
        .last()
        .map(|e| format!("{}:{e}", charge.source()))
        .unwrap_or_else(|| c.source_event.clone());
    let reason = format!(
        "money back on charge {}: {} of {} refunded or disputed",
        charge.charge_key,
        Money::new(r.taken_back, c.currency),
        Money::new(r.charge_amount, c.currency),
    );
    let mut net_change = 0i64;
    for (i, m) in r.moves.iter().enumerate() {
        let bucket = match m.bucket {
            MoveBucket::Pending => Bucket::Pending,
            MoveBucket::Available => Bucket::Available,
        };
        let (amount, bucket) = match m.kind {
            EntryKind::Adjusted => {
                net_change -= m.amount;
                (m.amount, Some(bucket))
            }
            _ => {
                net_change += m.amount;
                (m.amount, None)
            }
        };
        let entry = LedgerEntry::new(
            format!(
                "{}:{}:c{charge_version}:{i}",
                m.kind.as_str(),
                c.commission_id
            ),
            &c.partner_id,
            &c.program_id,
            c.currency,
            m.kind,
            amount,
            bucket,
            at_ms,
            reason.clone(),
            source.clone(),
        )?
        .for_commission(&c.commission_id);
        ledger::post(tx, &entry)?;
    }
    if program.notify_on_commission && net_change != 0 {
        let env = messages::Envelope {
            id: reversed_message_id(&c.commission_id, charge_version),
            at_ms,
            message: messages::Message::CommissionReversed {
                partner_id: c.partner_id.clone(),
                program_id: c.program_id.clone(),
                commission_id: c.commission_id.clone(),
                invoice_id: c.invoice_id.clone(),
                tier: c.tier,
                amount_minor: net_change,
                net_minor: r.amount - r.after.total(),
                currency: c.currency.code().to_string(),
                reason,
            },
        };
        storage::outbox::enqueue(tx, &env)?;
        envelopes.push(env);
    }
    Ok(())
}
