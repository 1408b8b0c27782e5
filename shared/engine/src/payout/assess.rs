//! One balance as a payout run sees it: what was read, handed to the rules
//! ([`rules::decide_balance`]). The run's worker acts on the answer; the preview prints it.

use rules::accrual::{self, lot_day};
use rules::{
    decide_balance, Balance, BalanceOutcome, EntryKind, PartnerFacts, PayoutBlocker, PayoutMethod,
    Program,
};
use storage::connect_accounts::ConnectAccount;
use storage::ledger::{self, BalanceRow};
use storage::partners::{Partner, PayoutStanding};
use storage::payouts::WaitingBalance;

use crate::{Engine, EngineError};

/// What the run decided about one balance, with the balance as of the run's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessed {
    pub outcome: BalanceOutcome,
    /// The balance as of the run's business time (holds that ended later are not counted).
    pub as_of: Balance,
}

/// Decide `row` at the run's business time `t`; `account` is the recorded Stripe connected
/// account of a partner paid by Stripe Connect, if one is recorded (a method is unusable while
/// its account cannot receive transfers: [`method_unusable`]). Released money whose hold ended
/// after `t` (released by a later job) is read from the ledger only when the balance would be
/// paid: it waits for the next run.
pub async fn assess(
    engine: &Engine,
    program: &Program,
    partner: &Partner,
    standing: &PayoutStanding,
    account: Option<&ConnectAccount>,
    row: &BalanceRow,
    t: i64,
) -> Result<Assessed, EngineError> {
    let first = decide(program, partner, standing, account, row, 0, t);
    if !matches!(first.outcome, BalanceOutcome::Pay { .. }) {
        return Ok(first);
    }
    let later: i64 = ledger::entries_after(
        &engine.table,
        &row.partner_id,
        &row.program_id,
        row.currency,
        t,
    )
    .await?
    .iter()
    .filter(|e| e.kind == EntryKind::Released)
    .map(|e| e.amount)
    .sum();
    if later == 0 {
        return Ok(first);
    }
    Ok(decide(program, partner, standing, account, row, later, t))
}

/// Why the partner's payout method cannot be used now, if it cannot: its rail rejected it
/// (the standing's mark, while it is the method on file), and/or it is a Stripe Connect
/// account whose recorded `transfers` capability is not active (no record: usable; Stripe
/// refuses such a transfer and the rail marks the method then). Both reasons when both hold.
pub fn method_unusable(
    partner: &Partner,
    standing: &PayoutStanding,
    account: Option<&ConnectAccount>,
) -> Option<String> {
    let rejected = standing.unusable_reason(&partner.payout_method);
    let blocked = account
        .filter(|a| {
            matches!(&partner.payout_method,
                PayoutMethod::StripeConnect { account_id } if *account_id == a.account_id)
        })
        .and_then(ConnectAccount::transfers_blocked);
    match (rejected, blocked) {
        (Some(r), Some(b)) => Some(format!("{r}; {b}")),
        (r, b) => r.map(str::to_string).or(b),
    }
}

/// The rules' decision on `row`, of which `later` was released after `t`.
pub fn decide(
    program: &Program,
    partner: &Partner,
    standing: &PayoutStanding,
    account: Option<&ConnectAccount>,
    row: &BalanceRow,
    later: i64,
    t: i64,
) -> Assessed {
    let bal = row.balance();
    let as_of = Balance {
        available: bal.available - later,
        ..bal
    };
    let today = lot_day(t);
    let queue = accrual::queue(&ledger::lots_of(&row.lots), bal.available, today);
    let unusable = method_unusable(partner, standing, account);
    let facts = PartnerFacts {
        status: partner.status,
        method: &partner.payout_method,
        method_unusable: unusable.as_deref(),
        tax_info: partner.tax_info,
        held: standing.hold_reason(),
    };
    Assessed {
        outcome: decide_balance(program, &facts, &as_of, &queue, today),
        as_of,
    }
}

/// A waiting balance as the run reports it.
pub fn waiting_of(row: &BalanceRow, assessed: &Assessed) -> WaitingBalance {
    let (blockers, forfeited, ahead) = match &assessed.outcome {
        BalanceOutcome::Wait {
            blockers,
            forfeit,
            warning,
        } => (
            blockers.as_slice(),
            forfeit.as_ref().map_or(0, |f| f.amount),
            warning.map(|(d, a)| (d.format("%Y-%m-%d").to_string(), a)),
        ),
        BalanceOutcome::Pay { .. } => (&[][..], 0, None),
    };
    WaitingBalance {
        partner_id: row.partner_id.clone(),
        currency: row.currency,
        available: assessed.as_of.available - forfeited,
        reasons: blockers.iter().map(|b| b.reason().to_string()).collect(),
        needed: blockers.iter().find_map(|b| match b {
            PayoutBlocker::BelowMinimum { needed, .. } => Some(*needed),
            _ => None,
        }),
        forfeited,
        forfeit_ahead: ahead,
    }
}
