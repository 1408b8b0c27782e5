//! One DynamoDB transaction, built so it cannot break the rules by accident:
//! no item is touched twice (balance moves are summed per balance item first), at most
//! [`MAX_ACTIONS`] actions, one optional once-only marker whose failed condition means
//! "already done", and `TransactionConflict` retried with backoff.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem, Update};
use rules::{BalanceDelta, Currency};

use crate::error::StoreError;
use crate::keys::{self, Key};
use crate::table::{expression_maps, Item, Table, MAX_ATTEMPTS};

/// DynamoDB's limit on actions in one `TransactWriteItems`.
pub const MAX_ACTIONS: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnConditionFail {
    /// The once-only marker exists: the whole write was already done.
    AlreadyDone,
    /// A business condition failed.
    Fail,
}

struct Action {
    key: Key,
    label: String,
    item: TransactWriteItem,
    on_fail: OnConditionFail,
}

/// A move of one balance item, summed over every entry of the transaction.
#[derive(Debug, Clone)]
struct BalanceMove {
    partner_id: String,
    program_id: String,
    currency: Currency,
    delta: BalanceDelta,
    /// The `available` amount the writer read (optimistic check), when its decision depends on
    /// it (a payout reserves exactly what it read).
    read_available: Option<i64>,
    /// Lots (accrual clocks, `rules::accrual`) this transaction adds to the balance's `lots`
    /// map: day (`YYYY-MM-DD`) → minor units.
    lot_adds: BTreeMap<String, i64>,
    /// The balance's whole `lots` map as this transaction leaves it (a payout or forfeiture
    /// took lots; needs `read_available`, so the map read is the map replaced).
    lots_set: Option<BTreeMap<String, i64>>,
    /// The waiting reasons the partner was told of, as this transaction leaves them.
    told_set: Option<Vec<String>>,
}

/// Update expression, condition, attribute names and values of an [`UpdateSpec`].
pub(crate) type UpdateParts = (
    String,
    Option<String>,
    HashMap<String, String>,
    Option<HashMap<String, AttributeValue>>,
);

/// An update of one item: `SET`/`ADD`/`REMOVE` clauses with their values.
#[derive(Debug, Default, Clone)]
pub struct UpdateSpec {
    set: Vec<String>,
    add: Vec<String>,
    remove: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    condition: Option<String>,
    next: usize,
}

impl UpdateSpec {
    pub fn new() -> Self {
        Self::default()
    }
    fn placeholder(&mut self, attr: &str) -> (String, String) {
        let n = self.next;
        self.next += 1;
        let name = format!("#a{n}");
        let value = format!(":v{n}");
        self.names.insert(name.clone(), attr.to_string());
        (name, value)
    }
    pub fn set(mut self, attr: &str, v: AttributeValue) -> Self {
        let (n, val) = self.placeholder(attr);
        self.set.push(format!("{n} = {val}"));
        self.values.insert(val, v);
        self
    }
    pub fn set_s(self, attr: &str, v: impl Into<String>) -> Self {
        self.set(attr, AttributeValue::S(v.into()))
    }
    pub fn set_n(self, attr: &str, v: i64) -> Self {
        self.set(attr, AttributeValue::N(v.to_string()))
    }
    pub fn add_n(mut self, attr: &str, v: i64) -> Self {
        let (n, val) = self.placeholder(attr);
        self.add.push(format!("{n} {val}"));
        self.values.insert(val, AttributeValue::N(v.to_string()));
        self
    }
    /// `SET map.key = if_not_exists(map.key, 0) + v` (the map must exist).
    pub fn add_in_map(mut self, map: &str, key: &str, v: i64) -> Self {
        let (m, _) = self.placeholder(map);
        let (k, val) = self.placeholder(key);
        let zero = format!("{val}z");
        self.set
            .push(format!("{m}.{k} = if_not_exists({m}.{k}, {zero}) + {val}"));
        self.values.insert(val, AttributeValue::N(v.to_string()));
        self.values.insert(zero, AttributeValue::N("0".into()));
        self
    }
    /// `SET attr = if_not_exists(attr, v)`.
    pub fn set_if_absent(mut self, attr: &str, v: AttributeValue) -> Self {
        let (n, val) = self.placeholder(attr);
        self.set.push(format!("{n} = if_not_exists({n}, {val})"));
        self.values.insert(val, v);
        self
    }
    pub fn remove(mut self, attr: &str) -> Self {
        let (n, _) = self.placeholder(attr);
        self.remove.push(n);
        self
    }
    /// A condition written with attribute names as `#name` placeholders and values as `:value`
    /// placeholders supplied here.
    pub fn condition(
        mut self,
        expr: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
    ) -> Self {
        for (k, v) in names {
            self.names.insert((*k).to_string(), (*v).to_string());
        }
        for (k, v) in values {
            self.values.insert(k.to_string(), v);
        }
        self.condition = Some(expr.to_string());
        self
    }
    pub fn expression(&self) -> String {
        let mut parts = vec![];
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        parts.join(" ")
    }
    pub(crate) fn into_parts(self) -> UpdateParts {
        let expr = self.expression();
        let values = (!self.values.is_empty()).then_some(self.values);
        (expr, self.condition, self.names, values)
    }
}

/// One standard `UpdateItem` (outside any transaction). A failed condition of `spec` is
/// `Err(ConditionFailed { label })`.
pub async fn update_item(
    table: &Table,
    key: &Key,
    spec: UpdateSpec,
    label: &str,
) -> Result<(), StoreError> {
    let (expr, cond, names, values) = spec.into_parts();
    let r = table
        .client
        .update_item()
        .table_name(&table.name)
        .set_key(Some(Table::key_item(key)))
        .update_expression(expr)
        .set_condition_expression(cond)
        .set_expression_attribute_names((!names.is_empty()).then_some(names))
        .set_expression_attribute_values(values)
        .send()
        .await;
    r.map(|_| ()).map_err(|e| {
        let failed = e
            .as_service_error()
            .is_some_and(|s| s.is_conditional_check_failed_exception());
        StoreError::conditional(e, label, failed)
    })
}

#[derive(Default)]
pub struct Tx {
    actions: Vec<Action>,
    keys: HashSet<Key>,
    balances: BTreeMap<Key, BalanceMove>,
}

/// A map of numbers (`lots`).
fn number_map(m: &BTreeMap<String, i64>) -> AttributeValue {
    AttributeValue::M(
        m.iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| (k.clone(), AttributeValue::N(v.to_string())))
            .collect(),
    )
}

fn key_of(item: &Item) -> Result<Key, StoreError> {
    let s = |a: &str| {
        item.get(a)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| StoreError::InvalidTransaction(format!("item without {a}")))
    };
    Ok(Key::new(s(keys::PK)?, s(keys::SK)?))
}

impl Tx {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.actions.len() + self.balances.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(
        &mut self,
        key: Key,
        label: &str,
        item: TransactWriteItem,
        on_fail: OnConditionFail,
    ) -> Result<(), StoreError> {
        if !self.keys.insert(key.clone()) || self.balances.contains_key(&key) {
            return Err(StoreError::InvalidTransaction(format!(
                "{label}: item {key:?} touched twice"
            )));
        }
        self.actions.push(Action {
            key,
            label: label.to_string(),
            item,
            on_fail,
        });
        Ok(())
    }

    /// The once-only marker of this write (e.g. "event evt_1 processed"). If it already exists
    /// the commit returns `Err(AlreadyDone)` and nothing is written.
    pub fn marker(&mut self, item: Item) -> Result<(), StoreError> {
        self.put_cond(
            item,
            "attribute_not_exists(PK)",
            "marker",
            OnConditionFail::AlreadyDone,
        )
    }

    /// Put a new item; fails the transaction with `ConditionFailed{label}` if it exists.
    pub fn put_new(&mut self, item: Item, label: &str) -> Result<(), StoreError> {
        self.put_cond(
            item,
            "attribute_not_exists(PK)",
            label,
            OnConditionFail::Fail,
        )
    }

    /// Put (overwrite) an item.
    pub fn put(&mut self, item: Item, label: &str) -> Result<(), StoreError> {
        let key = key_of(&item)?;
        let put = Put::builder()
            .set_item(Some(item))
            .table_name("")
            .build()
            .map_err(StoreError::request_build)?;
        self.push(
            key,
            label,
            TransactWriteItem::builder().put(put).build(),
            OnConditionFail::Fail,
        )
    }

    fn put_cond(
        &mut self,
        item: Item,
        cond: &str,
        label: &str,
        on_fail: OnConditionFail,
    ) -> Result<(), StoreError> {
        let key = key_of(&item)?;
        let put = Put::builder()
            .set_item(Some(item))
            .table_name("")
            .condition_expression(cond)
            .build()
            .map_err(StoreError::request_build)?;
        self.push(
            key,
            label,
            TransactWriteItem::builder().put(put).build(),
            on_fail,
        )
    }

    /// Put an item if `expr` holds (optimistic locking: `attribute_not_exists(PK) OR version = :v`).
    pub fn put_if(
        &mut self,
        item: Item,
        expr: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
        label: &str,
    ) -> Result<(), StoreError> {
        let key = key_of(&item)?;
        let (names, values) = expression_maps(names, values);
        let put = Put::builder()
            .set_item(Some(item))
            .table_name("")
            .condition_expression(expr)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .map_err(StoreError::request_build)?;
        self.push(
            key,
            label,
            TransactWriteItem::builder().put(put).build(),
            OnConditionFail::Fail,
        )
    }

    /// Delete an item (no condition: deleting what is gone is fine).
    pub fn delete(&mut self, key: &Key, label: &str) -> Result<(), StoreError> {
        let d = aws_sdk_dynamodb::types::Delete::builder()
            .set_key(Some(Table::key_item(key)))
            .table_name("")
            .build()
            .map_err(StoreError::request_build)?;
        self.push(
            key.clone(),
            label,
            TransactWriteItem::builder().delete(d).build(),
            OnConditionFail::Fail,
        )
    }

    /// Update an item.
    pub fn update(&mut self, key: &Key, spec: UpdateSpec, label: &str) -> Result<(), StoreError> {
        let (expr, cond, names, values) = spec.into_parts();
        let up = Update::builder()
            .set_key(Some(Table::key_item(key)))
            .table_name("")
            .update_expression(expr)
            .set_condition_expression(cond)
            .set_expression_attribute_names((!names.is_empty()).then_some(names))
            .set_expression_attribute_values(values)
            .build()
            .map_err(StoreError::request_build)?;
        self.push(
            key.clone(),
            label,
            TransactWriteItem::builder().update(up).build(),
            OnConditionFail::Fail,
        )
    }

    /// Check a condition on an item without writing it.
    pub fn check(
        &mut self,
        key: &Key,
        expr: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
        label: &str,
    ) -> Result<(), StoreError> {
        let (names, values) = expression_maps(names, values);
        let c = ConditionCheck::builder()
            .set_key(Some(Table::key_item(key)))
            .table_name("")
            .condition_expression(expr)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .map_err(StoreError::request_build)?;
        self.push(
            key.clone(),
            label,
            TransactWriteItem::builder().condition_check(c).build(),
            OnConditionFail::Fail,
        )
    }

    /// Move a balance of (partner, program, currency). Moves of the same balance are summed, so
    /// the balance item is written once however many entries the transaction holds.
    pub fn move_balance(
        &mut self,
        partner_id: &str,
        program_id: &str,
        currency: Currency,
        delta: BalanceDelta,
    ) -> Result<(), StoreError> {
        let key = keys::balance(partner_id, program_id, currency);
        if self.keys.contains(&key) {
            return Err(StoreError::InvalidTransaction(format!(
                "balance {key:?} also written directly"
            )));
        }
        let m = self.balances.entry(key).or_insert_with(|| BalanceMove {
            partner_id: partner_id.to_string(),
            program_id: program_id.to_string(),
            currency,
            delta: BalanceDelta::default(),
            read_available: None,
            lot_adds: BTreeMap::new(),
            lots_set: None,
            told_set: None,
        });
        m.delta = m
            .delta
            .checked_add(&delta)
            .map_err(|e| StoreError::InvalidTransaction(e.to_string()))?;
        Ok(())
    }

    /// Like [`Tx::move_balance`], and the commit fails with `ConditionFailed{"balance"}` unless
    /// the balance's `available` is still `read_available` (what the writer read and decided
    /// on). When the move leaves nothing available (zero or less), the balance leaves the
    /// sparse payable index.
    pub fn move_balance_from(
        &mut self,
        partner_id: &str,
        program_id: &str,
        currency: Currency,
        delta: BalanceDelta,
        read_available: i64,
    ) -> Result<(), StoreError> {
        self.move_balance(partner_id, program_id, currency, delta)?;
        let key = keys::balance(partner_id, program_id, currency);
        if let Some(m) = self.balances.get_mut(&key) {
            m.read_available = Some(read_available);
        }
        Ok(())
    }

    fn balance_move(
        &mut self,
        partner_id: &str,
        program_id: &str,
        currency: Currency,
    ) -> Result<&mut BalanceMove, StoreError> {
        self.move_balance(partner_id, program_id, currency, BalanceDelta::default())?;
        let key = keys::balance(partner_id, program_id, currency);
        self.balances
            .get_mut(&key)
            .ok_or_else(|| StoreError::InvalidTransaction(format!("balance {key:?} not moved")))
    }

    /// Add lots (day `YYYY-MM-DD` → minor units) to the balance's accrual clocks.
    pub fn add_lots(
        &mut self,
        partner_id: &str,
        program_id: &str,
        currency: Currency,
        lots: &BTreeMap<String, i64>,
    ) -> Result<(), StoreError> {
        let m = self.balance_move(partner_id, program_id, currency)?;
        for (day, a) in lots.iter().filter(|(_, a)| **a > 0) {
            *m.lot_adds.entry(day.clone()).or_default() += a;
        }
        Ok(())
    }

    /// Replace the balance's lots with `lots` (after a payout or forfeiture took some). Only
    /// with [`Tx::move_balance_from`]: the condition on what was read makes the map read the
    /// map replaced (every lot added also moves `available`).
    pub fn set_lots(
        &mut self,
        partner_id: &str,
        program_id: &str,
        currency: Currency,
        lots: BTreeMap<String, i64>,
    ) -> Result<(), StoreError> {
        let m = self.balance_move(partner_id, program_id, currency)?;
        if m.read_available.is_none() {
            return Err(StoreError::InvalidTransaction(
                "lots are replaced only on condition of the balance read".into(),
            ));
        }
        m.lots_set = Some(lots);
        Ok(())
    }

    /// Record the waiting reasons the partner was told of (empty: none, the balance was paid).
    pub fn set_told(
        &mut self,
        partner_id: &str,
        program_id: &str,
        currency: Currency,
        reasons: Vec<String>,
    ) -> Result<(), StoreError> {
        self.balance_move(partner_id, program_id, currency)?
            .told_set = Some(reasons);
        Ok(())
    }

    fn materialise(mut self, table: &Table) -> Result<Vec<Action>, StoreError> {
        for (key, m) in std::mem::take(&mut self.balances) {
            if m.delta.is_zero()
                && m.read_available.is_none()
                && m.lot_adds.is_empty()
                && m.told_set.is_none()
            {
                continue;
            }
            let mut spec = UpdateSpec::new()
                .set_s("partner_id", &m.partner_id)
                .set_s("program_id", &m.program_id)
                .set_s("currency", m.currency.code())
                .add_n("pending", m.delta.pending)
                .add_n("available", m.delta.available)
                .add_n("in_payout", m.delta.in_payout)
                .add_n("paid", m.delta.paid);
            spec = match (&m.lots_set, m.lot_adds.is_empty()) {
                (Some(lots), _) => {
                    let mut all = lots.clone();
                    for (d, a) in &m.lot_adds {
                        *all.entry(d.clone()).or_default() += a;
                    }
                    spec.set(keys::LOTS, number_map(&all))
                }
                (None, false) => m
                    .lot_adds
                    .iter()
                    .fold(spec, |s, (day, a)| s.add_in_map(keys::LOTS, day, *a)),
                // Every balance has the map from its first write, so adding a lot is one
                // nested SET (a missing map would fail it).
                (None, true) => spec.set_if_absent(keys::LOTS, AttributeValue::M(HashMap::new())),
            };
            if let Some(told) = &m.told_set {
                spec = spec.set(
                    "told",
                    AttributeValue::L(told.iter().map(|r| AttributeValue::S(r.clone())).collect()),
                );
            }
            if m.delta.available > 0 {
                // Money became available: the balance joins the sparse "payable" index.
                let (pk, sk) = keys::payable_gsi(&m.program_id, &m.partner_id, m.currency);
                spec = spec.set_s(keys::GSI2PK, pk).set_s(keys::GSI2SK, sk);
            }
            if let Some(read) = m.read_available {
                if m.delta.available < 0 && read + m.delta.available <= 0 {
                    // Nothing left available: the balance leaves the payable index (the
                    // condition below makes `read` the amount it really held).
                    spec = spec.remove(keys::GSI2PK).remove(keys::GSI2SK);
                }
                spec = spec.condition(
                    "#read_available = :read_available",
                    &[("#read_available", "available")],
                    vec![(":read_available", AttributeValue::N(read.to_string()))],
                );
            }
            self.update(&key, spec, "balance")?;
        }
        if self.actions.len() > MAX_ACTIONS {
            return Err(StoreError::InvalidTransaction(format!(
                "{} actions exceed the limit of {MAX_ACTIONS}",
                self.actions.len()
            )));
        }
        // Fill in the table name last, so builders above need not know it.
        let name = table.name.clone();
        let mut out = self.actions;
        for a in &mut out {
            a.item = with_table(a.item.clone(), &name)?;
        }
        Ok(out)
    }

    /// Commit. `Ok(())`, `Err(AlreadyDone)` when the marker exists, `Err(ConditionFailed)` when
    /// another condition fails; contention is retried.
    pub async fn commit(self, table: &Table) -> Result<(), StoreError> {
        let actions = self.materialise(table)?;
        if actions.is_empty() {
            return Ok(());
        }
        commit_actions(table, actions).await
    }
}

fn with_table(item: TransactWriteItem, name: &str) -> Result<TransactWriteItem, StoreError> {
    let mut b = TransactWriteItem::builder();
    if let Some(p) = item.put {
        let mut p = p;
        p.table_name = name.to_string();
        b = b.put(p);
    }
    if let Some(mut u) = item.update {
        u.table_name = name.to_string();
        b = b.update(u);
    }
    if let Some(mut c) = item.condition_check {
        c.table_name = name.to_string();
        b = b.condition_check(c);
    }
    if let Some(mut d) = item.delete {
        d.table_name = name.to_string();
        b = b.delete(d);
    }
    Ok(b.build())
}

async fn commit_actions(table: &Table, actions: Vec<Action>) -> Result<(), StoreError> {
    let items: Vec<TransactWriteItem> = actions.iter().map(|a| a.item.clone()).collect();
    let mut attempt = 0;
    loop {
        attempt += 1;
        let r = table
            .client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .send()
            .await;
        let err = match r {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let retry = match err.as_service_error() {
            Some(s) if s.is_transaction_canceled_exception() => {
                let reasons = match s {
                    aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(t) => {
                        t.cancellation_reasons().to_vec()
                    }
                    _ => vec![],
                };
                let mut conflict = false;
                let mut failed_business: Option<String> = None;
                for (i, r) in reasons.iter().enumerate() {
                    match r.code() {
                        Some("ConditionalCheckFailed") => {
                            let a = &actions[i.min(actions.len() - 1)];
                            if a.on_fail == OnConditionFail::AlreadyDone {
                                return Err(StoreError::AlreadyDone);
                            }
                            failed_business
                                .get_or_insert_with(|| format!("{} {:?}", a.label, a.key));
                        }
                        Some("TransactionConflict")
                        | Some("ThrottlingError")
                        | Some("ProvisionedThroughputExceeded") => conflict = true,
                        _ => {}
                    }
                }
                if let Some(label) = failed_business {
                    return Err(StoreError::ConditionFailed { label });
                }
                if !conflict && !reasons.is_empty() {
                    return Err(StoreError::dynamo(err));
                }
                true
            }
            // Throttling, 5xx, timeouts and network failures were already retried by the SDK
            // (its standard retry strategy, with backoff): retrying them again here would
            // multiply the wait past the function's timeout. They are returned as transient
            // (`StoreError::Dynamo`) for the caller's own redelivery. Only the cancellation
            // reasons the SDK does not retry are retried here.
            Some(s) => s.is_transaction_in_progress_exception(),
            None => false,
        };
        if !retry {
            return Err(StoreError::dynamo(err));
        }
        if attempt >= MAX_ATTEMPTS {
            return Err(StoreError::Contention { attempts: attempt });
        }
        tracing::debug!(attempt, "transaction contention, retrying");
        table.backoff(attempt).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ItemExt;

    fn item(pk: &str, sk: &str) -> Item {
        Table::key_item(&Key::new(pk, sk)).with_s("x", "y")
    }

    #[test]
    fn same_item_twice_is_refused() {
        let mut tx = Tx::new();
        tx.put_new(item("A", "1"), "a").unwrap();
        assert!(matches!(
            tx.put(item("A", "1"), "b"),
            Err(StoreError::InvalidTransaction(_))
        ));
    }

    #[test]
    fn balance_moves_are_summed_into_one_action() {
        let mut tx = Tx::new();
        let d = BalanceDelta {
            pending: 100,
            ..BalanceDelta::default()
        };
        tx.move_balance("p", "prog", Currency::USD, d).unwrap();
        tx.move_balance("p", "prog", Currency::USD, d).unwrap();
        tx.move_balance("p", "prog", Currency::EUR, d).unwrap();
        assert_eq!(tx.len(), 2);
        // writing the balance item directly as well would touch it twice
        let b = keys::balance("p", "prog", Currency::USD);
        assert!(tx.put(Table::key_item(&b), "direct").is_err());
    }

    #[test]
    fn update_expression_is_well_formed() {
        let s = UpdateSpec::new()
            .set_s("a", "1")
            .add_n("n", 2)
            .remove("GSI2PK");
        assert_eq!(s.expression(), "SET #a0 = :v0 ADD #a1 :v1 REMOVE #a2");
    }
}
