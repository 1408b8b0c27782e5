//! Payout runs, their items and the chunks of their fan-out.
//!
//! A run (`PAYOUTRUN#{program}#{date}` / `RUN`) is taken with a lease (a conditional put, then a
//! conditional take-over once the lease expired); its items (`ITEM#{partner}#{currency}`) are
//! written once, with their `payout_reserved` entry, and then only move forward through
//! conditional state changes ([`rules::PayoutItemState::can_become`]); each chunk a worker
//! finished is recorded (`CHUNK#{generation}#{n}`), so the run knows when it is finished.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use rules::{Currency, PayoutItemState, PayoutMethod};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::keys::{self, Key};
use crate::table::{to_item, Item, ItemExt, Query, Table};
use crate::tx::{Tx, UpdateSpec};

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Releasing the holds that ended by the run's time.
    Releasing,
    /// Reading the payable index and sending chunks to the worker queue.
    FanningOut,
    /// Every chunk is on the queue; workers are on it.
    FannedOut,
    /// Every chunk of the current generation was worked.
    Done,
}

impl RunState {
    pub fn as_str(&self) -> &'static str {
        match self {
            RunState::Releasing => "releasing",
            RunState::FanningOut => "fanning_out",
            RunState::FannedOut => "fanned_out",
            RunState::Done => "done",
        }
    }
}

/// Balances that wait, for one reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingTotal {
    pub balances: u64,
    /// Σ available per currency of the balances that wait (minor units).
    pub amounts: BTreeMap<Currency, i64>,
}

/// What a chunk, or a whole run, did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunSummary {
    /// Balances looked at.
    pub balances: u64,
    /// Payout items (new or found again) and their amounts per currency.
    pub items: u64,
    pub item_amounts: BTreeMap<Currency, i64>,
    /// Items the rail confirmed while the run worked (an automatic rail), per currency.
    pub sent: u64,
    pub sent_amounts: BTreeMap<Currency, i64>,
    /// Items the rail refused or failed.
    pub failed: u64,
    /// Balances that wait, by reason (`rules::PayoutBlocker::reason`; a balance waiting for
    /// several reasons counts under each).
    pub waiting: BTreeMap<String, WaitingTotal>,
    /// Forfeited under the program's accrual policy, per currency.
    #[serde(default)]
    pub forfeited: u64,
    #[serde(default)]
    pub forfeited_amounts: BTreeMap<Currency, i64>,
}

impl RunSummary {
    pub fn add(&mut self, other: &RunSummary) {
        self.balances += other.balances;
        self.items += other.items;
        self.sent += other.sent;
        self.failed += other.failed;
        add_amounts(&mut self.item_amounts, &other.item_amounts);
        add_amounts(&mut self.sent_amounts, &other.sent_amounts);
        self.forfeited += other.forfeited;
        add_amounts(&mut self.forfeited_amounts, &other.forfeited_amounts);
        for (reason, w) in &other.waiting {
            let mine = self.waiting.entry(reason.clone()).or_default();
            mine.balances += w.balances;
            add_amounts(&mut mine.amounts, &w.amounts);
        }
    }
}

fn add_amounts(into: &mut BTreeMap<Currency, i64>, from: &BTreeMap<Currency, i64>) {
    for (c, a) in from {
        *into.entry(*c).or_default() += a;
    }
}

/// A payout run of a program for one payout date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutRun {
    pub program_id: String,
    /// The payout date in the program's time zone (`YYYY-MM-DD`).
    pub date: String,
    /// Business time of the run (the schedule event's `time`): holds ended by then are
    /// released, and items cover what was released up to it.
    pub business_time_ms: i64,
    pub state: RunState,
    /// Incremented each time an expired lease is taken over; chunks of the current
    /// generation decide when the run is done.
    pub generation: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks_total: Option<u32>,
    #[serde(default)]
    pub balances_total: u64,
    /// Lease holder and expiry (technical time).
    pub lease_owner: String,
    pub lease_until_ms: i64,
    /// Technical time of start and finish.
    pub started_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<RunSummary>,
}

impl PayoutRun {
    /// `{program}:{date}`, as `partnerctl payouts show` takes it.
    pub fn run_id(&self) -> String {
        format!("{}:{}", self.program_id, self.date)
    }
    pub fn key(&self) -> Key {
        keys::payout_run(&self.program_id, &self.date)
    }
}

/// What taking a run's lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunLease {
    /// This invocation holds the run (new, or taken over from an expired lease).
    Taken(PayoutRun),
    /// Another invocation holds a live lease, or the run is fanned out and its workers are on
    /// it: join it (nothing to do here).
    Busy(PayoutRun),
    /// Already done.
    Done(PayoutRun),
}

fn run_item(run: &PayoutRun) -> Result<Item, StoreError> {
    Ok(to_item(run, &run.key())?.with_gsi1(keys::payout_runs_gsi(&run.program_id, &run.date)))
}

/// Take the run of (program, date) for `owner` until `now_ms + lease_ms` (technical time):
/// a conditional put of a new run, else a conditional take-over of a run whose lease expired
/// before it fanned out (its generation goes up by one).
pub async fn take_run(
    table: &Table,
    program_id: &str,
    date: &str,
    business_time_ms: i64,
    owner: &str,
    lease_ms: i64,
) -> Result<RunLease, StoreError> {
    let now = table.clock.now_ms();
    let fresh = PayoutRun {
        program_id: program_id.into(),
        date: date.into(),
        business_time_ms,
        state: RunState::Releasing,
        generation: 1,
        chunks_total: None,
        balances_total: 0,
        lease_owner: owner.into(),
        lease_until_ms: now + lease_ms,
        started_at_ms: now,
        finished_at_ms: None,
        summary: None,
    };
    match table.put_if_absent(run_item(&fresh)?).await {
        Ok(()) => return Ok(RunLease::Taken(fresh)),
        Err(StoreError::AlreadyDone) => {}
        Err(e) => return Err(e),
    }
    let Some(found) = get_run(table, program_id, date).await? else {
        return Err(StoreError::Decode(format!(
            "payout run {program_id}:{date} vanished"
        )));
    };
    match found.state {
        RunState::Done => return Ok(RunLease::Done(found)),
        RunState::FannedOut => return Ok(RunLease::Busy(found)),
        RunState::Releasing | RunState::FanningOut if found.lease_until_ms > now => {
            return Ok(RunLease::Busy(found))
        }
        _ => {}
    }
    // The lease expired mid-way: take it over, on condition nobody else did first.
    let mut taken = found.clone();
    taken.lease_owner = owner.into();
    taken.lease_until_ms = now + lease_ms;
    taken.generation = found.generation + 1;
    taken.state = RunState::Releasing;
    let r = table
        .client
        .put_item()
        .table_name(&table.name)
        .set_item(Some(run_item(&taken)?))
        .condition_expression("#g = :g AND #s <> :done")
        .expression_attribute_names("#g", "generation")
        .expression_attribute_names("#s", "state")
        .expression_attribute_values(":g", AttributeValue::N(found.generation.to_string()))
        .expression_attribute_values(":done", AttributeValue::S("done".into()))
        .send()
        .await;
    match r {
        Ok(_) => Ok(RunLease::Taken(taken)),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            let now_run = get_run(table, program_id, date).await?.unwrap_or(found);
            Ok(if now_run.state == RunState::Done {
                RunLease::Done(now_run)
            } else {
                RunLease::Busy(now_run)
            })
        }
        Err(e) => Err(StoreError::dynamo(e)),
    }
}

/// Move a run the lease holder holds to `state` (condition: same generation, not done). With
/// `chunks_total` when it fanned out.
pub async fn advance_run(
    table: &Table,
    run: &PayoutRun,
    state: RunState,
    chunks_total: Option<u32>,
    balances_total: u64,
) -> Result<(), StoreError> {
    let mut spec = UpdateSpec::new()
        .set_s("state", state.as_str())
        .set_n("balances_total", balances_total as i64);
    if let Some(n) = chunks_total {
        spec = spec.set_n("chunks_total", i64::from(n));
    }
    let spec = spec.condition(
        "#gen = :gen AND #st <> :done",
        &[("#gen", "generation"), ("#st", "state")],
        vec![
            (":gen", AttributeValue::N(run.generation.to_string())),
            (":done", AttributeValue::S("done".into())),
        ],
    );
    let mut tx = Tx::new();
    tx.update(&run.key(), spec, "payout run")?;
    tx.commit(table).await
}

/// Give a lease back at once (an invocation that failed, so that its retry takes the run over
/// without waiting for the lease to expire). Only the holder's own lease of this generation.
pub async fn give_back_lease(table: &Table, run: &PayoutRun) -> Result<(), StoreError> {
    let spec = UpdateSpec::new().set_n("lease_until_ms", 0).condition(
        "#gen = :gen AND #owner = :owner",
        &[("#gen", "generation"), ("#owner", "lease_owner")],
        vec![
            (":gen", AttributeValue::N(run.generation.to_string())),
            (":owner", AttributeValue::S(run.lease_owner.clone())),
        ],
    );
    let mut tx = Tx::new();
    tx.update(&run.key(), spec, "payout run")?;
    match tx.commit(table).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Mark a run done with its summary, once (condition: fanned out in this generation). A run
/// already done is `Ok(false)`.
pub async fn finish_run(
    table: &Table,
    program_id: &str,
    date: &str,
    generation: u32,
    summary: &RunSummary,
) -> Result<bool, StoreError> {
    let now = table.clock.now_ms();
    let spec = UpdateSpec::new()
        .set_s("state", "done")
        .set_n("finished_at_ms", now)
        .set("summary", serde_dynamo::to_attribute_value(summary)?)
        .condition(
            "#gen = :gen AND #st = :fanned",
            &[("#gen", "generation"), ("#st", "state")],
            vec![
                (":gen", AttributeValue::N(generation.to_string())),
                (":fanned", AttributeValue::S("fanned_out".into())),
            ],
        );
    let mut tx = Tx::new();
    tx.update(&keys::payout_run(program_id, date), spec, "payout run")?;
    match tx.commit(table).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

pub async fn get_run(
    table: &Table,
    program_id: &str,
    date: &str,
) -> Result<Option<PayoutRun>, StoreError> {
    if !keys::safe_id(program_id) || !keys::safe_id(date) {
        return Ok(None);
    }
    table.get_as(&keys::payout_run(program_id, date)).await
}

/// A program's runs, newest first (at most `limit`).
pub async fn list_runs(
    table: &Table,
    program_id: &str,
    limit: usize,
) -> Result<Vec<PayoutRun>, StoreError> {
    table
        .query_as(
            Query::gsi1(keys::payout_runs_pk(program_id))
                .descending()
                .limit(limit),
        )
        .await
}

/// One payout of one (run, partner, program, currency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutItem {
    /// `{program}:{date}:{partner}:{currency}`; rails' idempotency keys derive from it.
    pub item_id: String,
    /// A short reference for rails and files (`po_` + 16 hex of the id's SHA-256: PayPal's
    /// customer id column takes 30 characters without spaces).
    pub reference: String,
    pub program_id: String,
    pub date: String,
    pub partner_id: String,
    pub currency: Currency,
    /// Fixed when the item is written (minor units, > 0).
    pub amount: i64,
    /// The commissions the item covers are those released up to this business time.
    pub released_through_ms: i64,
    pub state: PayoutItemState,
    /// The payout method at the time of the item.
    pub method: PayoutMethod,
    /// The manual rail's export that carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export_id: Option<String>,
    /// What the rail said last (a failure reason, a rail reference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rail_note: Option<String>,
    /// The automatic rail's hand-over that carries it ([`crate::rail_batches`]), set when it
    /// is marked submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rail_batch: Option<String>,
    /// Technical time of the last state change.
    pub updated_at_ms: i64,
    /// The accrual lots the item took (day → minor units): money it gives back rejoins the
    /// balance with them.
    #[serde(default)]
    pub lots: BTreeMap<String, i64>,
    /// Paid under the minimum (a `pay_after_months` limit reached).
    #[serde(default)]
    pub under_minimum: bool,
}

impl PayoutItem {
    pub fn key(&self) -> Key {
        keys::payout_item(
            &self.program_id,
            &self.date,
            &self.partner_id,
            self.currency,
        )
    }
}

/// The short reference of a payout item id (see [`PayoutItem::reference`]).
pub fn item_reference(item_id: &str) -> String {
    let h = Sha256::digest(item_id.as_bytes());
    let hex: String = h[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("po_{hex}")
}

/// A new payout item, as the run's worker writes it (in the transaction of its
/// `payout_reserved` entry).
pub fn put_new_item(tx: &mut Tx, item: &PayoutItem) -> Result<(), StoreError> {
    let row = to_item(item, &item.key())?.with_gsi1(keys::partner_payouts_gsi(
        &item.partner_id,
        &item.date,
        &item.program_id,
        item.currency,
    ));
    tx.put_new(row, "payout item")
}

/// Move an item from `from` to `to` (a [`rules::PayoutItemState::can_become`] step) in a
/// transaction, with optional extra attributes; fails with `ConditionFailed{"payout item"}`
/// unless the item is still in `from`.
pub fn transition(
    tx: &mut Tx,
    item: &PayoutItem,
    from: PayoutItemState,
    to: PayoutItemState,
    now_ms: i64,
    extra: &[(&str, &str)],
) -> Result<(), StoreError> {
    if !from.can_become(to) {
        return Err(StoreError::InvalidTransaction(format!(
            "payout item {} cannot go from {} to {}",
            item.item_id,
            from.as_str(),
            to.as_str()
        )));
    }
    let mut spec = UpdateSpec::new()
        .set_s("state", to.as_str())
        .set_n("updated_at_ms", now_ms);
    for (k, v) in extra {
        spec = spec.set_s(k, *v);
    }
    spec = approved_index(spec, item, from, to, now_ms);
    let spec = spec.condition(
        "#st = :from",
        &[("#st", "state")],
        vec![(":from", AttributeValue::S(from.as_str().into()))],
    );
    tx.update(&item.key(), spec, "payout item")
}

/// An item entering `approved` goes on the approved index ([`keys::approved_item_gsi`]); one
/// leaving it comes off.
fn approved_index(
    spec: UpdateSpec,
    item: &PayoutItem,
    from: PayoutItemState,
    to: PayoutItemState,
    now_ms: i64,
) -> UpdateSpec {
    if to == PayoutItemState::Approved {
        let (pk, sk) = keys::approved_item_gsi(&item.item_id, now_ms);
        spec.set_s(keys::GSI2PK, pk).set_s(keys::GSI2SK, sk)
    } else if from == PayoutItemState::Approved {
        spec.remove(keys::GSI2PK).remove(keys::GSI2SK)
    } else {
        spec
    }
}

/// Approved items waiting to be handed to a rail, oldest approval first in each shard (at most
/// `limit` per shard).
pub async fn approved_items(table: &Table, limit: usize) -> Result<Vec<PayoutItem>, StoreError> {
    let mut out = vec![];
    for shard in 0..keys::DUE_SHARDS {
        out.extend(
            table
                .query_as::<PayoutItem>(Query::gsi2(keys::approved_items_pk(shard)).limit(limit))
                .await?,
        );
    }
    Ok(out)
}

/// An operator's approval of a reviewed item for `amount` (less than its amount when a
/// clawback shrank it), from `from` (`created` or `held`); fails with
/// `ConditionFailed{"payout item"}` unless it is still in `from` at the amount read.
pub fn approve_for(
    tx: &mut Tx,
    item: &PayoutItem,
    from: PayoutItemState,
    amount: i64,
    now_ms: i64,
    by: &str,
) -> Result<(), StoreError> {
    if !from.can_become(PayoutItemState::Approved) || amount <= 0 || amount > item.amount {
        return Err(StoreError::InvalidTransaction(format!(
            "payout item {} cannot be approved from {} for {amount}",
            item.item_id,
            from.as_str()
        )));
    }
    let spec = UpdateSpec::new()
        .set_s("state", PayoutItemState::Approved.as_str())
        .set_n("updated_at_ms", now_ms)
        .set_n("amount", amount)
        .set_s("approved_by", by);
    let spec = approved_index(spec, item, from, PayoutItemState::Approved, now_ms).condition(
        "#st = :from AND #amount = :amount",
        &[("#st", "state"), ("#amount", "amount")],
        vec![
            (":from", AttributeValue::S(from.as_str().into())),
            (":amount", AttributeValue::N(item.amount.to_string())),
        ],
    );
    tx.update(&item.key(), spec, "payout item")
}

pub async fn get_item(table: &Table, key: &Key) -> Result<Option<PayoutItem>, StoreError> {
    table.get_as(key).await
}

/// A run's items, by partner and currency.
pub async fn run_items(
    table: &Table,
    program_id: &str,
    date: &str,
) -> Result<Vec<PayoutItem>, StoreError> {
    table
        .query_as(
            Query::table(keys::payout_run_pk(program_id, date))
                .begins_with(keys::PAYOUT_ITEM_PREFIX),
        )
        .await
}

/// A partner's payout items, oldest date first.
pub async fn partner_items(table: &Table, partner_id: &str) -> Result<Vec<PayoutItem>, StoreError> {
    table
        .query_as(Query::gsi1(keys::partner_payouts_pk(partner_id)))
        .await
}

/// One balance that waits, with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaitingBalance {
    pub partner_id: String,
    pub currency: Currency,
    pub available: i64,
    pub reasons: Vec<String>,
    /// Still needed to reach the payout minimum, when under it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needed: Option<i64>,
    /// Forfeited by this run (minor units).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub forfeited: i64,
    /// A forfeiture ahead the partner was warned of: its date (`YYYY-MM-DD`) and amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forfeit_ahead: Option<(String, i64)>,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// What one worker did with one chunk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutChunk {
    pub program_id: String,
    pub date: String,
    pub generation: u32,
    pub chunk: u32,
    pub summary: RunSummary,
    /// The balances of the chunk that wait (at most a chunk's size).
    pub waiting: Vec<WaitingBalance>,
}

/// Record a chunk as worked (an overwrite: a redelivered chunk records the same facts).
pub async fn put_chunk(table: &Table, chunk: &PayoutChunk) -> Result<(), StoreError> {
    table
        .put(to_item(
            chunk,
            &keys::payout_chunk(
                &chunk.program_id,
                &chunk.date,
                chunk.generation,
                chunk.chunk,
            ),
        )?)
        .await
}

/// The chunks of one generation of a run that were worked.
pub async fn run_chunks(
    table: &Table,
    program_id: &str,
    date: &str,
    generation: u32,
) -> Result<Vec<PayoutChunk>, StoreError> {
    table
        .query_as(
            Query::table(keys::payout_run_pk(program_id, date))
                .begins_with(keys::payout_chunk_prefix(generation)),
        )
        .await
}

/// Remove a balance from the payable index when it holds nothing to pay (a clawback took it
/// to zero or below): a conditional update, so a release racing it keeps the balance listed.
pub async fn unlist_empty_balance(
    table: &Table,
    partner_id: &str,
    program_id: &str,
    currency: Currency,
) -> Result<(), StoreError> {
    let spec = UpdateSpec::new()
        .remove(keys::GSI2PK)
        .remove(keys::GSI2SK)
        .condition(
            "#av <= :zero",
            &[("#av", "available")],
            vec![(":zero", AttributeValue::N("0".into()))],
        );
    let mut tx = Tx::new();
    tx.update(
        &keys::balance(partner_id, program_id, currency),
        spec,
        "balance",
    )?;
    match tx.commit(table).await {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_fit_paypal_customer_ids() {
        let id = keys::payout_item_id(
            "a-very-long-program-identifier",
            "2026-12-04",
            "partner-with-a-long-name",
            Currency::USD,
        );
        let r = item_reference(&id);
        assert_eq!(r.len(), 19);
        assert!(r.len() <= 30 && !r.contains(' '));
        assert_eq!(r, item_reference(&id), "stable");
        assert_ne!(r, item_reference(&format!("{id}x")));
    }

    #[test]
    fn summaries_add_up() {
        let mut a = RunSummary {
            balances: 2,
            items: 1,
            item_amounts: BTreeMap::from([(Currency::USD, 10_000)]),
            ..Default::default()
        };
        a.waiting.insert(
            "below_minimum".into(),
            WaitingTotal {
                balances: 1,
                amounts: BTreeMap::from([(Currency::USD, 8_000)]),
            },
        );
        let b = a.clone();
        a.add(&b);
        assert_eq!(a.balances, 4);
        assert_eq!(a.item_amounts[&Currency::USD], 20_000);
        assert_eq!(a.waiting["below_minimum"].amounts[&Currency::USD], 16_000);
    }
}
