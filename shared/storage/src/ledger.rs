//! Posting ledger entries with their balance moves, and reading balances and entries.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rules::accrual::{lot_day, Lots};
use rules::{entry_delta, Balance, BalanceDelta, Bucket, Currency, EntryKind};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::table::{to_item, Query, Table};
use crate::tx::Tx;

/// One append-only ledger entry of (partner, program, currency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// Deterministic id from the fact (e.g. `earned:demo:in_1:t1`), unique per ledger.
    pub entry_id: String,
    pub partner_id: String,
    pub program_id: String,
    pub currency: Currency,
    pub kind: EntryKind,
    /// Positive, except for `adjusted` where the sign is the direction.
    pub amount: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<Bucket>,
    pub delta: BalanceDelta,
    /// Business time of the fact, epoch ms.
    pub at_ms: i64,
    pub reason: String,
    /// What caused it: `stripe:evt_...`, `schedule:2026-11-27`, `operator:...`.
    pub source_event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commission_id: Option<String>,
}

impl LedgerEntry {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        entry_id: impl Into<String>,
        partner_id: &str,
        program_id: &str,
        currency: Currency,
        kind: EntryKind,
        amount: i64,
        bucket: Option<Bucket>,
        at_ms: i64,
        reason: impl Into<String>,
        source_event: impl Into<String>,
    ) -> Result<Self, StoreError> {
        let delta = entry_delta(kind, amount, bucket)
            .map_err(|e| StoreError::InvalidTransaction(e.to_string()))?;
        Ok(LedgerEntry {
            entry_id: entry_id.into(),
            partner_id: partner_id.into(),
            program_id: program_id.into(),
            currency,
            kind,
            amount,
            bucket,
            delta,
            at_ms,
            reason: reason.into(),
            source_event: source_event.into(),
            commission_id: None,
        })
    }

    pub fn for_commission(mut self, commission_id: impl Into<String>) -> Self {
        self.commission_id = Some(commission_id.into());
        self
    }

    pub fn key(&self) -> keys::Key {
        keys::ledger_entry(
            &self.partner_id,
            &self.program_id,
            self.currency,
            self.at_ms,
            &self.entry_id,
        )
    }
}

/// Add an entry and its balance move to a transaction. The entry is written only if new; the
/// balance move is summed with the transaction's other moves of the same balance.
pub fn post(tx: &mut Tx, entry: &LedgerEntry) -> Result<(), StoreError> {
    tx.put_new(to_item(entry, &entry.key())?, "ledger entry")?;
    tx.move_balance(
        &entry.partner_id,
        &entry.program_id,
        entry.currency,
        entry.delta,
    )?;
    add_own_lot(tx, entry)
}

/// Money that becomes available by a release or a positive adjustment starts its accrual clock
/// on the entry's day (`rules::accrual`). Money a payout gives back rejoins with the lots it
/// took ([`post_returning`]).
fn add_own_lot(tx: &mut Tx, entry: &LedgerEntry) -> Result<(), StoreError> {
    if matches!(entry.kind, EntryKind::Released | EntryKind::Adjusted) && entry.delta.available > 0
    {
        let lots = BTreeMap::from([(lot_key(lot_day(entry.at_ms)), entry.delta.available)]);
        tx.add_lots(&entry.partner_id, &entry.program_id, entry.currency, &lots)?;
    }
    Ok(())
}

/// [`post`] of money a payout gives back (`payout_released`, `payout_returned`): it rejoins the
/// balance's queue with the `lots` it was paid from, so its clocks do not restart.
pub fn post_returning(
    tx: &mut Tx,
    entry: &LedgerEntry,
    lots: &BTreeMap<String, i64>,
) -> Result<(), StoreError> {
    post(tx, entry)?;
    tx.add_lots(&entry.partner_id, &entry.program_id, entry.currency, lots)
}

/// The `lots` map key of a day.
pub fn lot_key(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

/// Lots as stored (`YYYY-MM-DD` keys) → the rules' lots; unreadable keys are dropped (their
/// money counts from the reading day: `rules::accrual::queue`).
pub fn lots_of(stored: &BTreeMap<String, i64>) -> Lots {
    stored
        .iter()
        .filter_map(|(k, v)| {
            NaiveDate::parse_from_str(k, "%Y-%m-%d")
                .ok()
                .map(|d| (d, *v))
        })
        .collect()
}

/// The rules' lots → as stored.
pub fn stored_lots(lots: &Lots) -> BTreeMap<String, i64> {
    lots.iter().map(|(d, v)| (lot_key(*d), *v)).collect()
}

/// [`post`], on condition that the balance still holds `read_available` (the amount the writer
/// read and decided on); a balance left with nothing available leaves the payable index.
pub fn post_from(tx: &mut Tx, entry: &LedgerEntry, read_available: i64) -> Result<(), StoreError> {
    tx.put_new(to_item(entry, &entry.key())?, "ledger entry")?;
    tx.move_balance_from(
        &entry.partner_id,
        &entry.program_id,
        entry.currency,
        entry.delta,
        read_available,
    )?;
    add_own_lot(tx, entry)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceRow {
    pub partner_id: String,
    pub program_id: String,
    pub currency: Currency,
    #[serde(default)]
    pub pending: i64,
    #[serde(default)]
    pub available: i64,
    /// Reserved by payout items not yet settled.
    #[serde(default)]
    pub in_payout: i64,
    #[serde(default)]
    pub paid: i64,
    /// Accrual lots: day (`YYYY-MM-DD`) → minor units (`rules::accrual`).
    #[serde(default)]
    pub lots: BTreeMap<String, i64>,
    /// The waiting reasons the partner was last told of (empty since the last payout).
    #[serde(default)]
    pub told: Vec<String>,
}

impl BalanceRow {
    pub fn balance(&self) -> Balance {
        Balance {
            currency: self.currency,
            pending: self.pending,
            available: self.available,
            in_payout: self.in_payout,
            paid: self.paid,
        }
    }
}

/// One balance.
pub async fn balance(
    table: &Table,
    partner_id: &str,
    program_id: &str,
    currency: Currency,
) -> Result<Balance, StoreError> {
    Ok(table
        .get_as::<BalanceRow>(&keys::balance(partner_id, program_id, currency))
        .await?
        .map(|r| r.balance())
        .unwrap_or(Balance::zero(currency)))
}

/// Every balance of a partner (all programs and currencies).
pub async fn partner_balances(
    table: &Table,
    partner_id: &str,
) -> Result<Vec<BalanceRow>, StoreError> {
    table
        .query_as(Query::table(keys::partner_pk(partner_id)).begins_with(keys::BALANCE_PREFIX))
        .await
}

/// Entries of one ledger in business-time order.
pub async fn entries(
    table: &Table,
    partner_id: &str,
    program_id: &str,
    currency: Currency,
) -> Result<Vec<LedgerEntry>, StoreError> {
    table
        .query_as(
            Query::table(keys::ledger_pk(partner_id, program_id, currency))
                .begins_with(keys::LEDGER_ENTRY_PREFIX),
        )
        .await
}

/// Entries of one ledger with a business time after `after_ms`, in order (what came after a
/// payout run's time: holds that ended later).
pub async fn entries_after(
    table: &Table,
    partner_id: &str,
    program_id: &str,
    currency: Currency,
    after_ms: i64,
) -> Result<Vec<LedgerEntry>, StoreError> {
    table
        .query_as(
            Query::table(keys::ledger_pk(partner_id, program_id, currency)).between(
                format!("{}{}", keys::LEDGER_ENTRY_PREFIX, keys::ts(after_ms + 1)),
                format!("{}~", keys::LEDGER_ENTRY_PREFIX),
            ),
        )
        .await
}

/// Balances of a program with money available, from the sparse sharded payable index.
pub async fn payable_balances(
    table: &Table,
    program_id: &str,
) -> Result<Vec<BalanceRow>, StoreError> {
    let mut out = vec![];
    for shard in 0..keys::DUE_SHARDS {
        out.extend(
            table
                .query_as::<BalanceRow>(Query::gsi2(keys::payable_pk(program_id, shard)))
                .await?,
        );
    }
    out.sort_by(|a, b| (&a.partner_id, a.currency).cmp(&(&b.partner_id, b.currency)));
    Ok(out)
}
