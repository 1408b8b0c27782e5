//! Holds ending: a pending commission whose `available_at` has passed (business time) moves to
//! the available balance, once.

use rules::EntryKind;
use storage::customers::{self, CommissionRow};
use storage::ledger::{self, LedgerEntry};
use storage::{StoreError, Tx};

use crate::{Engine, EngineError};

/// Release every commission due at `now_ms` (business time of the schedule's event). No deployed
/// function calls it yet: the "nothing fails silently" issue (10) schedules it. Returns the
/// released commission ids. Idempotent: a released commission leaves the due index, and the
/// conditional state change makes a concurrent run a no-op.
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

async fn release_one(
    engine: &Engine,
    c: &CommissionRow,
    source_event: &str,
) -> Result<bool, EngineError> {
    let mut tx = Tx::new();
    customers::release_commission(&mut tx, &c.partner_id, &c.commission_id)?;
    // The amount may have been adjusted since it was earned: release what it is now.
    let fresh = customers::get_commission(&engine.table, &c.partner_id, &c.commission_id).await?;
    let amount = fresh.map(|f| f.amount).unwrap_or(c.amount);
    if amount > 0 {
        let entry = LedgerEntry::new(
            format!("released:{}", c.commission_id),
            &c.partner_id,
            &c.program_id,
            c.currency,
            EntryKind::Released,
            amount,
            None,
            c.available_at_ms,
            "hold ended",
            source_event,
        )?
        .for_commission(&c.commission_id);
        ledger::post(&mut tx, &entry)?;
    }
    match tx.commit(&engine.table).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
