//! Holds ending: a pending commission whose `available_at` has passed (business time) moves to
//! the available balance, once.

use rules::EntryKind;
use storage::customers::{self, CommissionRow, CommissionState};
use storage::ledger::{self, LedgerEntry};
use storage::{StoreError, Tx};

use crate::{Engine, EngineError, OPTIMISTIC_ATTEMPTS};

/// Release every commission due at `now_ms` (business time of the schedule's event: the
/// hourly `release-holds` job of functions/housekeeping). Returns the released commission ids.
/// Idempotent: a released commission leaves the due index, and the conditional state change
/// makes a concurrent run a no-op.
pub async fn release_due(
    engine: &Engine,
    now_ms: i64,
    source_event: &str,
) -> Result<Vec<String>, EngineError> {
    let due = customers::commissions_due_for_release(&engine.table, now_ms).await?;
    let mut out = vec![];
    for c in due {
        if release_one(engine, &c, source_event).await? {
            out.push(c.commission_id);
        }
    }
    Ok(out)
}

/// Release one commission: the release moves exactly what it read in `pending` (the amount
/// less what refunds and disputes took back in the hold), on condition that the commission is
/// still pending at that amount and reversal. A re-pricing that committed in between
/// fails the condition, and the release reads the commission again (the index row it starts
/// from may be stale); an adjustment racing the other way fails on the state it read
/// (`customers::adjust_commission`) and re-adjusts in the bucket the money is in now. So
/// nothing is left in `pending` and nothing is released twice.
async fn release_one(
    engine: &Engine,
    c: &CommissionRow,
    source_event: &str,
) -> Result<bool, EngineError> {
    let mut read = c.clone();
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        if read.state != CommissionState::Pending {
            return Ok(false);
        }
        let mut tx = Tx::new();
        customers::release_commission(&mut tx, &read)?;
        // What is in `pending` for it: the amount less what refunds took back in the hold.
        let moving = read.pending_net();
        if moving > 0 {
            let entry = LedgerEntry::new(
                format!("released:{}", read.commission_id),
                &read.partner_id,
                &read.program_id,
                read.currency,
                EntryKind::Released,
                moving,
                None,
                read.available_at_ms,
                "hold ended",
                source_event,
            )?
            .for_commission(&read.commission_id);
            ledger::post(&mut tx, &entry)?;
        }
        match tx.commit(&engine.table).await {
            Ok(()) => return Ok(true),
            // Released by a concurrent run, or its amount changed: read it again.
            Err(StoreError::ConditionFailed { .. }) => {
                match customers::get_commission(&engine.table, &c.partner_id, &c.commission_id)
                    .await?
                {
                    Some(fresh) => read = fresh,
                    None => return Ok(false),
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Contention {
        attempts: OPTIMISTIC_ATTEMPTS,
    }
    .into())
}
