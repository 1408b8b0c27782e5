//! A payout run computed and not written: who would be paid what, who would wait and why, what
//! would be forfeited (`partnerctl payouts preview --program P --date D`).
//!
//! The same steps as the run ([`super::run`], [`super::worker`]) on what is stored now: the
//! holds that will have ended by the run's time are released in memory (as the run releases
//! them first), the balances are those of the payable index plus those the releases add, and
//! each is decided by the same function as the worker's ([`super::assess::assess`]). Nothing
//! is written, no message is queued.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use rules::accrual::lot_day;
use rules::{BalanceOutcome, Currency};
use serde::Serialize;
use storage::customers;
use storage::keys::{self, Key};
use storage::ledger::{self, BalanceRow};
use storage::partners::{Partner, PayoutStanding};
use storage::payouts::{self, WaitingBalance};
use storage::{Item, StoreError};

use super::assess::{assess, waiting_of};
use crate::{Engine, EngineError};

/// A payout the run would make.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PreviewItem {
    pub partner_id: String,
    pub currency: Currency,
    pub amount: i64,
    /// Paid under the minimum (a `pay_after_months` limit reached).
    pub under_minimum: bool,
}

/// The run of `program_id` for `date`, as it would go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub program_id: String,
    pub date: String,
    /// The business time the run would have (its schedule's invocation).
    pub business_time_ms: i64,
    /// The run's state when it exists already (its items are then left out here: they are
    /// written).
    pub run_state: Option<String>,
    pub items: Vec<PreviewItem>,
    pub waiting: Vec<WaitingBalance>,
    /// Totals per currency: paid, forfeited.
    pub paid_amounts: BTreeMap<Currency, i64>,
    pub forfeited_amounts: BTreeMap<Currency, i64>,
}

/// The run of `program_id` for `date` at business time `t`, computed without writing.
pub async fn preview(
    engine: &Engine,
    program_id: &str,
    date: NaiveDate,
    t: i64,
) -> Result<Preview, EngineError> {
    let date = date.format("%Y-%m-%d").to_string();
    let program = super::worker::program_at(engine, program_id, t).await?;
    let run_state = payouts::get_run(&engine.table, program_id, &date)
        .await?
        .map(|r| r.state.as_str().to_string());

    // The holds the run would release first, by balance.
    let mut releases: BTreeMap<(String, Currency), Vec<(i64, i64)>> = BTreeMap::new();
    for c in customers::commissions_due_for_release(&engine.table, t).await? {
        if c.program_id != program_id || c.state != customers::CommissionState::Pending {
            continue;
        }
        let moving = c.pending_net();
        if moving > 0 {
            releases
                .entry((c.partner_id.clone(), c.currency))
                .or_default()
                .push((c.available_at_ms, moving));
        }
    }
    let mut balances: BTreeMap<(String, Currency), ()> = BTreeMap::new();
    for b in ledger::payable_balances(&engine.table, program_id).await? {
        balances.insert((b.partner_id.clone(), b.currency), ());
    }
    for k in releases.keys() {
        balances.insert(k.clone(), ());
    }

    let mut wanted: Vec<Key> = vec![];
    for (partner_id, currency) in balances.keys() {
        wanted.push(keys::partner(partner_id));
        wanted.push(keys::payout_standing(partner_id));
        wanted.push(keys::balance(partner_id, program_id, *currency));
        wanted.push(keys::payout_item(program_id, &date, partner_id, *currency));
    }
    wanted.sort();
    wanted.dedup();
    let mut found: HashMap<Key, Item> = HashMap::new();
    for part in wanted.chunks(100) {
        found.extend(engine.table.batch_get(part).await?);
    }
    fn decode<T: serde::de::DeserializeOwned>(
        found: &HashMap<Key, Item>,
        k: &Key,
    ) -> Result<Option<T>, StoreError> {
        found
            .get(k)
            .map(|i| serde_dynamo::from_item(i.clone()).map_err(StoreError::from))
            .transpose()
    }

    let mut out = Preview {
        program_id: program_id.to_string(),
        date: date.clone(),
        business_time_ms: t,
        run_state,
        items: vec![],
        waiting: vec![],
        paid_amounts: BTreeMap::new(),
        forfeited_amounts: BTreeMap::new(),
    };
    for (partner_id, currency) in balances.keys() {
        if found.contains_key(&keys::payout_item(program_id, &date, partner_id, *currency)) {
            continue;
        }
        let mut row: BalanceRow =
            match decode(&found, &keys::balance(partner_id, program_id, *currency))? {
                Some(r) => r,
                None => continue,
            };
        for (at_ms, moving) in releases
            .get(&(partner_id.clone(), *currency))
            .into_iter()
            .flatten()
        {
            row.pending -= moving;
            row.available += moving;
            *row.lots
                .entry(ledger::lot_key(lot_day(*at_ms)))
                .or_default() += moving;
        }
        let Some(partner) = decode::<Partner>(&found, &keys::partner(partner_id))? else {
            out.waiting.push(WaitingBalance {
                partner_id: partner_id.clone(),
                currency: *currency,
                available: row.available,
                reasons: vec!["unknown_partner".into()],
                needed: None,
                forfeited: 0,
                forfeit_ahead: None,
            });
            continue;
        };
        let standing: PayoutStanding =
            decode(&found, &keys::payout_standing(partner_id))?.unwrap_or_default();
        // As the worker decides: a Stripe Connect account's recorded `transfers` capability.
        let account = match &partner.payout_method {
            rules::PayoutMethod::StripeConnect { account_id } => {
                storage::connect_accounts::get(&engine.table, account_id).await?
            }
            _ => None,
        };
        let assessed = assess(
            engine,
            &program,
            &partner,
            &standing,
            account.as_ref(),
            &row,
            t,
        )
        .await?;
        match &assessed.outcome {
            BalanceOutcome::Pay {
                amount,
                under_minimum,
                ..
            } => {
                *out.paid_amounts.entry(*currency).or_default() += amount;
                out.items.push(PreviewItem {
                    partner_id: partner_id.clone(),
                    currency: *currency,
                    amount: *amount,
                    under_minimum: *under_minimum,
                });
            }
            BalanceOutcome::Wait { .. } => {
                let w = waiting_of(&row, &assessed);
                if w.forfeited > 0 {
                    *out.forfeited_amounts.entry(*currency).or_default() += w.forfeited;
                }
                out.waiting.push(w);
            }
        }
    }
    Ok(out)
}

/// The business time of the run for payout `date`: the first daily invocation of the
/// schedule (00:15 UTC, template.yaml's `PayoutSchedule`) at which the program's run date
/// ([`rules::payout_run_date`]) is `date`; `None` when `date` is not a payout date.
pub fn run_time_for(program: &rules::Program, date: NaiveDate) -> Option<i64> {
    (-1..=i64::try_from(rules::PAYOUT_CATCH_UP_DAYS).unwrap_or(3))
        .filter_map(|back| date.checked_add_signed(chrono::TimeDelta::days(back)))
        .filter_map(|d| d.and_hms_opt(0, 15, 0))
        .map(|t| t.and_utc())
        .find(|t| {
            rules::payout_run_date(
                &program.payout_schedule,
                program.time_zone,
                *t,
                rules::PAYOUT_CATCH_UP_DAYS,
            ) == Some(date)
        })
        .map(|t| t.timestamp_millis())
}
