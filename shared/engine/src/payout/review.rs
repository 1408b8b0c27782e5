//! Manual review of a run's items (programs with `payout_review: manual`, where items wait as
//! `created`): an operator approves, holds or cancels them (`partnerctl payouts approve RUN`,
//! `hold`, `cancel`, optionally per partner).
//!
//! Approval re-checks the balance under the item ([`rules::review_item`]): a clawback since the
//! item was created left the balance negative, and that debt comes out of the item (a
//! `payout_released` entry of the difference) or cancels it. Every step is a conditional state
//! change, so a repeated command changes nothing.

use rules::{review_item, EntryKind, PayoutItemState, ReviewOutcome};
use serde::Serialize;
use storage::keys;
use storage::ledger::{self, BalanceRow, LedgerEntry};
use storage::payouts::{self, PayoutItem};
use storage::{StoreError, Tx};

use super::{move_item, reload};
use crate::{Engine, EngineError, OPTIMISTIC_ATTEMPTS};

/// What an operator does with reviewed items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    /// `created` or `held` → `approved` (shrunk or cancelled after a clawback).
    Approve,
    /// `created` or `approved` → `held`.
    Hold,
    /// `created`, `approved` or `held` → `cancelled`; the money is available again.
    Cancel,
}

impl ReviewAction {
    fn applies_to(self, state: PayoutItemState) -> bool {
        use PayoutItemState::*;
        match self {
            ReviewAction::Approve => matches!(state, Created | Held),
            ReviewAction::Hold => matches!(state, Created | Approved),
            ReviewAction::Cancel => matches!(state, Created | Approved | Held),
        }
    }
}

/// One item an operator's command changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reviewed {
    pub item_id: String,
    pub partner_id: String,
    pub currency: rules::Currency,
    pub from: PayoutItemState,
    pub to: PayoutItemState,
    /// The item's amount before and after (smaller after a clawback).
    pub amount_before: i64,
    pub amount_after: i64,
}

/// Apply `action` to the run's items (of `partners`, or all), as operator `by`, booking any
/// ledger entry at business time `at_ms`. Items in a state the action does not apply to are
/// left alone (so repeating a command changes nothing).
pub async fn review_run(
    engine: &Engine,
    program_id: &str,
    date: &str,
    partners: &[String],
    action: ReviewAction,
    by: &str,
    at_ms: i64,
) -> Result<Vec<Reviewed>, EngineError> {
    let mut out = vec![];
    for item in payouts::run_items(&engine.table, program_id, date).await? {
        if !action.applies_to(item.state)
            || (!partners.is_empty() && !partners.contains(&item.partner_id))
        {
            continue;
        }
        let changed = match action {
            ReviewAction::Approve => approve(engine, item, by, at_ms).await?,
            ReviewAction::Hold => step(engine, &item, PayoutItemState::Held, by, at_ms).await?,
            ReviewAction::Cancel => {
                step(engine, &item, PayoutItemState::Cancelled, by, at_ms).await?
            }
        };
        out.extend(changed);
    }
    Ok(out)
}

/// A plain state change (hold, cancel) of an item read in `item.state`.
async fn step(
    engine: &Engine,
    item: &PayoutItem,
    to: PayoutItemState,
    by: &str,
    at_ms: i64,
) -> Result<Option<Reviewed>, EngineError> {
    let after = move_item(engine, item, item.state, to, at_ms, &[("reviewed_by", by)]).await?;
    Ok(after.map(|a| reviewed(item, &a)))
}

fn reviewed(before: &PayoutItem, after: &PayoutItem) -> Reviewed {
    Reviewed {
        item_id: before.item_id.clone(),
        partner_id: before.partner_id.clone(),
        currency: before.currency,
        from: before.state,
        to: after.state,
        amount_before: before.amount,
        amount_after: after.amount,
    }
}

/// Approve one item after re-checking its balance; on a concurrent change of the balance or
/// the item, read both again.
async fn approve(
    engine: &Engine,
    mut item: PayoutItem,
    by: &str,
    at_ms: i64,
) -> Result<Option<Reviewed>, EngineError> {
    let program =
        super::worker::program_at(engine, &item.program_id, item.released_through_ms).await?;
    let first = item.clone();
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        if !ReviewAction::Approve.applies_to(item.state) {
            return Ok(None);
        }
        let row: BalanceRow = engine
            .table
            .get_as(&keys::balance(
                &item.partner_id,
                &item.program_id,
                item.currency,
            ))
            .await?
            .ok_or_else(|| {
                EngineError::Inconsistent(format!("balance of {} vanished", item.item_id))
            })?;
        let (amount, released) = match review_item(&program, &row.balance(), item.amount) {
            ReviewOutcome::Approve { amount, released } => (amount, released),
            ReviewOutcome::Cancel => {
                return step(engine, &item, PayoutItemState::Cancelled, by, at_ms).await;
            }
        };
        let now = engine.table.clock.now_ms();
        let mut tx = Tx::new();
        payouts::approve_for(&mut tx, &item, item.state, amount, now, by)?;
        if released > 0 {
            // The clawback's debt comes out of the item: in_payout → available.
            let entry = LedgerEntry::new(
                format!(
                    "{}:{}:review",
                    EntryKind::PayoutReleased.as_str(),
                    item.item_id
                ),
                &item.partner_id,
                &item.program_id,
                item.currency,
                EntryKind::PayoutReleased,
                released,
                None,
                at_ms,
                "payout item shrunk at approval: clawed back since it was created",
                format!("operator:{by}"),
            )?;
            ledger::post_from(&mut tx, &entry, row.available)?;
        } else {
            // Approve what was read: a clawback committing meanwhile is seen by the next try.
            tx.move_balance_from(
                &item.partner_id,
                &item.program_id,
                item.currency,
                rules::BalanceDelta::default(),
                row.available,
            )?;
        }
        match tx.commit(&engine.table).await {
            Ok(()) => {
                let after = PayoutItem {
                    state: PayoutItemState::Approved,
                    amount,
                    updated_at_ms: now,
                    ..item.clone()
                };
                return Ok(Some(reviewed(&first, &after)));
            }
            Err(StoreError::ConditionFailed { .. }) => item = reload(engine, &item).await?,
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Contention {
        attempts: OPTIMISTIC_ATTEMPTS,
    }
    .into())
}
