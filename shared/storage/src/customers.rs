//! Customers of a program: bindings to partners (with history), invitations, flags, invoices
//! (the commission fold's input), commissions and sales that wait for attribution.

use chrono::Datelike;
use rules::attribution::{AttributionMethod, BindingCause};
use rules::plan::{InvoiceCommission, InvoiceFacts};
use rules::refund::ReversedSoFar;
use rules::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use aws_sdk_dynamodb::types::AttributeValue;

use crate::error::StoreError;
use crate::keys;
use crate::table::{to_item, ItemExt, Query, Table};
use crate::tx::{Tx, UpdateSpec};

/// A customer's referral: who gets the credit, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRow {
    pub program_id: String,
    pub customer_key: String,
    #[serde(default)]
    pub email: Option<String>,
    pub partner_id: String,
    pub cause: BindingCause,
    /// Business time of the cause (the click's time, the invitation's, the request's).
    pub cause_at_ms: i64,
    /// Business time the binding was written.
    pub bound_at_ms: i64,
    /// Optimistic-lock version, 1 for the first binding.
    pub version: u64,
    /// What delivered it (`api:track_lead`, `stripe:evt_…`, `operator:…`).
    pub source_event: String,
    /// Set when the binding was found by e-mail: the customer key whose binding it copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_email_of: Option<String>,
}

impl BindingRow {
    /// How this binding attributes the customer's sales.
    pub fn attributed_by(&self) -> AttributionMethod {
        AttributionMethod::of(&self.cause, self.via_email_of.is_some())
    }
}

/// One line of a binding's history (append-only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingHistoryRow {
    pub program_id: String,
    pub customer_key: String,
    /// `bound`, `rebound` or `manual`.
    pub action: String,
    pub partner_id: String,
    #[serde(default)]
    pub previous_partner_id: Option<String>,
    pub cause: BindingCause,
    pub cause_at_ms: i64,
    pub at_ms: i64,
    pub version: u64,
    pub source_event: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InviteRow {
    pub program_id: String,
    pub email: String,
    pub partner_id: String,
    pub at_ms: i64,
}

/// A flagged self-referral (or another rejected binding an operator should see).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagRow {
    pub program_id: String,
    pub customer_key: String,
    pub partner_id: String,
    #[serde(default)]
    pub customer_email: Option<String>,
    pub reason: String,
    pub at_ms: i64,
    pub source_event: String,
}

/// A customer's sales state in a program.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SalesStateRow {
    #[serde(default)]
    pub version: u64,
    /// Business time of the customer's first paid sale (clicks after it never move the customer).
    #[serde(default)]
    pub first_paid_sale_at_ms: Option<i64>,
}

/// A customer's invoice in a program, with the fold's result as booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerInvoiceRow {
    pub program_id: String,
    pub customer_key: String,
    pub partner_id: String,
    #[serde(default)]
    pub recruiter_id: Option<String>,
    pub facts: InvoiceFacts,
    /// What is booked for it (the fold's output at the last booking).
    pub booked: InvoiceCommission,
    pub source_event: String,
    /// How the invoice's partner was found (absent on rows written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributed_by: Option<AttributionMethod>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommissionState {
    /// In the hold.
    Pending,
    /// Released to the available balance.
    Available,
}

impl CommissionState {
    /// The stored (snake_case) name.
    pub fn as_str(&self) -> &'static str {
        match self {
            CommissionState::Pending => "pending",
            CommissionState::Available => "available",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionRow {
    pub commission_id: String,
    pub partner_id: String,
    pub program_id: String,
    pub invoice_id: String,
    pub customer_key: String,
    /// 1: the referring partner; 2: the recruiter.
    pub tier: u8,
    /// Current amount in minor units (earned plus adjustments).
    pub amount: i64,
    pub currency: Currency,
    pub base: i64,
    #[serde(default)]
    pub rate: Option<Decimal>,
    pub state: CommissionState,
    pub earned_at_ms: i64,
    pub available_at_ms: i64,
    pub reason: String,
    pub source_event: String,
    /// How the sale was attributed to the partner (click, partner code, promotion code, e-mail,
    /// invite, manual), for an operator's review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attributed_by: Option<AttributionMethod>,
    /// Taken back by refunds and disputes of the sale's charge, out of `pending` (net of what
    /// was given back), minor units.
    #[serde(default)]
    pub reversed_pending: i64,
    /// Taken back out of `available` (clawed back), net of what was given back.
    #[serde(default)]
    pub reversed_available: i64,
}

impl CommissionRow {
    /// What has been taken back so far, by bucket.
    pub fn reversed(&self) -> ReversedSoFar {
        ReversedSoFar {
            from_pending: self.reversed_pending,
            from_available: self.reversed_available,
        }
    }

    /// The commission net of what refunds and disputes took back.
    pub fn net(&self) -> i64 {
        self.amount - self.reversed_pending - self.reversed_available
    }

    /// What the commission holds in `pending` while it is in the hold (what a release moves).
    pub fn pending_net(&self) -> i64 {
        self.amount - self.reversed_pending
    }
}

/// A paid invoice that no binding covered yet, per program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnattributedRow {
    pub program_id: String,
    pub customer_key: String,
    #[serde(default)]
    pub email: Option<String>,
    pub facts: InvoiceFacts,
    #[serde(default)]
    pub subscription_id: Option<String>,
    pub source_event: String,
    pub at_ms: i64,
}

pub async fn get_binding(
    table: &Table,
    program_id: &str,
    customer_key: &str,
) -> Result<Option<BindingRow>, StoreError> {
    table.get_as(&keys::binding(program_id, customer_key)).await
}

pub async fn binding_history(
    table: &Table,
    program_id: &str,
    customer_key: &str,
) -> Result<Vec<BindingHistoryRow>, StoreError> {
    table
        .query_as(
            Query::table(keys::customer_pk(program_id, customer_key))
                .begins_with(keys::BINDING_HISTORY_PREFIX),
        )
        .await
}

/// Bindings in a program whose customer has this normalised e-mail.
pub async fn bindings_by_email(
    table: &Table,
    program_id: &str,
    email: &str,
) -> Result<Vec<BindingRow>, StoreError> {
    let pk = keys::binding_email_pk(program_id, email);
    table.query_as(Query::gsi1(pk)).await
}

pub async fn get_invite(
    table: &Table,
    program_id: &str,
    email: &str,
) -> Result<Option<InviteRow>, StoreError> {
    table.get_as(&keys::email_invite(program_id, email)).await
}

/// A program's flagged self-referrals, oldest first.
pub async fn flags(table: &Table, program_id: &str) -> Result<Vec<FlagRow>, StoreError> {
    let pk = keys::flags_pk(program_id);
    table.query_as(Query::gsi1(pk)).await
}

pub async fn sales_state(
    table: &Table,
    program_id: &str,
    customer_key: &str,
) -> Result<SalesStateRow, StoreError> {
    Ok(table
        .get_as(&keys::sales_state(program_id, customer_key))
        .await?
        .unwrap_or_default())
}

/// One invoice row of a customer.
pub async fn get_invoice_row(
    table: &Table,
    program_id: &str,
    customer_key: &str,
    invoice_id: &str,
) -> Result<Option<CustomerInvoiceRow>, StoreError> {
    table
        .get_as(&keys::customer_invoice(
            program_id,
            customer_key,
            invoice_id,
        ))
        .await
}

/// Several invoice rows, `(program, customer, invoice)` each, in one `BatchGetItem`; those
/// not found are absent.
pub async fn invoice_rows(
    table: &Table,
    wanted: &[(String, String, String)],
) -> Result<Vec<CustomerInvoiceRow>, StoreError> {
    let keys_wanted: Vec<_> = wanted
        .iter()
        .map(|(p, c, i)| keys::customer_invoice(p, c, i))
        .collect();
    table.batch_get_as(&keys_wanted).await
}

/// Several commissions, `(partner, commission id)` each, in one `BatchGetItem`; those not
/// found are absent.
pub async fn commissions(
    table: &Table,
    wanted: &[(String, String)],
) -> Result<Vec<CommissionRow>, StoreError> {
    let keys_wanted: Vec<_> = wanted.iter().map(|(p, c)| keys::commission(p, c)).collect();
    table.batch_get_as(&keys_wanted).await
}

pub async fn customer_invoices(
    table: &Table,
    program_id: &str,
    customer_key: &str,
) -> Result<Vec<CustomerInvoiceRow>, StoreError> {
    table
        .query_as(
            Query::table(keys::customer_pk(program_id, customer_key))
                .begins_with(keys::CUSTOMER_INVOICE_PREFIX),
        )
        .await
}

pub async fn get_commission(
    table: &Table,
    partner_id: &str,
    commission_id: &str,
) -> Result<Option<CommissionRow>, StoreError> {
    table
        .get_as(&keys::commission(partner_id, commission_id))
        .await
}

/// A partner's commissions by business date (`from_ms..=to_ms`).
pub async fn partner_commissions(
    table: &Table,
    partner_id: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<CommissionRow>, StoreError> {
    let pk = keys::partner_commissions_pk(partner_id);
    table
        .query_as(Query::gsi1(pk).between(keys::ts(from_ms), format!("{}#~", keys::ts(to_ms))))
        .await
}

/// Commissions whose hold ends at or before `now_ms`, from every shard of the sparse index.
pub async fn commissions_due_for_release(
    table: &Table,
    now_ms: i64,
) -> Result<Vec<CommissionRow>, StoreError> {
    let mut out = vec![];
    for shard in 0..keys::DUE_SHARDS {
        out.extend(
            table
                .query_as::<CommissionRow>(
                    Query::gsi2(keys::release_due_pk(shard))
                        .sk_le(format!("{}#~", keys::ts(now_ms))),
                )
                .await?,
        );
    }
    out.sort_by(|a, b| {
        (a.available_at_ms, &a.commission_id).cmp(&(b.available_at_ms, &b.commission_id))
    });
    Ok(out)
}

/// Sales waiting for attribution, of one customer key.
pub async fn unattributed_of_customer(
    table: &Table,
    customer_key: &str,
) -> Result<Vec<UnattributedRow>, StoreError> {
    table
        .query_as(Query::table(keys::unattributed_pk(customer_key)))
        .await
}

/// Sales waiting for attribution, by normalised e-mail.
pub async fn unattributed_of_email(
    table: &Table,
    email: &str,
) -> Result<Vec<UnattributedRow>, StoreError> {
    let pk = keys::unattributed_email_pk(email);
    table.query_as(Query::gsi1(pk)).await
}

/// Sales waiting for attribution, paid in a month (`YYYY-MM`).
pub async fn unattributed_in_month(
    table: &Table,
    month: &str,
) -> Result<Vec<UnattributedRow>, StoreError> {
    let pk = keys::unattributed_month_pk(month);
    table.query_as(Query::gsi2(pk)).await
}

/// Sales waiting for attribution paid between `from_ms` and `to_ms` (business time, both
/// included): one Query per month the range touches, on the sparse month index.
pub async fn unattributed_paid_between(
    table: &Table,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<UnattributedRow>, StoreError> {
    let mut out = vec![];
    let Some(mut month) = chrono::DateTime::from_timestamp_millis(from_ms).map(|d| d.date_naive())
    else {
        return Ok(out);
    };
    let last = chrono::DateTime::from_timestamp_millis(to_ms)
        .map(|d| d.date_naive())
        .unwrap_or(month);
    let mut months = vec![];
    while month <= last {
        months.push(month.format("%Y-%m").to_string());
        let Some(next) = month
            .with_day(1)
            .and_then(|d| d.checked_add_months(chrono::Months::new(1)))
        else {
            break;
        };
        month = next;
    }
    for m in months {
        let q = Query::gsi2(keys::unattributed_month_pk(&m))
            .between(keys::ts(from_ms), format!("{}#~", keys::ts(to_ms)));
        out.extend(table.query_as::<UnattributedRow>(q).await?);
    }
    Ok(out)
}

/// The bindings of several (program, customer) pairs (`BatchGetItem`s of 100 keys); pairs
/// without a binding are left out.
pub async fn bindings_of(
    table: &Table,
    customers: &[(String, String)],
) -> Result<Vec<BindingRow>, StoreError> {
    let wanted: Vec<_> = customers.iter().map(|(p, c)| keys::binding(p, c)).collect();
    let mut out = vec![];
    for (_, item) in table.batch_get(&wanted).await? {
        out.push(serde_dynamo::from_item(item)?);
    }
    Ok(out)
}

// ---- writes: every item of a customer is built here --------------------------------------

/// Unattributed sales are kept this long for a late binding (a manual assignment months later).
pub const UNATTRIBUTED_TTL_DAYS: i64 = 400;

/// The binding and the sales state of a customer in a program, in one `BatchGetItem`.
pub async fn binding_and_sales_state(
    table: &Table,
    program_id: &str,
    customer_key: &str,
) -> Result<(Option<BindingRow>, SalesStateRow), StoreError> {
    let bk = keys::binding(program_id, customer_key);
    let sk = keys::sales_state(program_id, customer_key);
    let mut found = table.batch_get(&[bk.clone(), sk.clone()]).await?;
    let binding = match found.remove(&bk) {
        Some(i) => Some(serde_dynamo::from_item(i)?),
        None => None,
    };
    let state = match found.remove(&sk) {
        Some(i) => serde_dynamo::from_item(i)?,
        None => SalesStateRow::default(),
    };
    Ok((binding, state))
}

/// What a sale reads of its customer in a program, in one `BatchGetItem`: the binding, the
/// sales state, and the sale-time causes that are items (the invitation of the invoice's
/// e-mail, the promotion codes on the invoice).
#[derive(Debug, Clone, Default)]
pub struct SaleRead {
    pub binding: Option<BindingRow>,
    pub state: SalesStateRow,
    pub invite: Option<InviteRow>,
    pub promotion_codes: Vec<crate::programs::PromotionCode>,
}

/// [`SaleRead`] of a customer (one request; promotion codes that are not valid ids are skipped).
pub async fn sale_read(
    table: &Table,
    program_id: &str,
    customer_key: &str,
    email: Option<&str>,
    promotion_codes: &[String],
) -> Result<SaleRead, StoreError> {
    let bk = keys::binding(program_id, customer_key);
    let sk = keys::sales_state(program_id, customer_key);
    let ik = email.map(|e| keys::email_invite(program_id, e));
    let pks: Vec<_> = promotion_codes
        .iter()
        .filter(|c| keys::safe_id(c))
        .map(|c| keys::promotion_code(c))
        .collect();
    let mut wanted = vec![bk.clone(), sk.clone()];
    wanted.extend(ik.clone());
    wanted.extend(pks.iter().cloned());
    let mut found = table.batch_get(&wanted).await?;
    let mut read = SaleRead::default();
    if let Some(i) = found.remove(&bk) {
        read.binding = Some(serde_dynamo::from_item(i)?);
    }
    if let Some(i) = found.remove(&sk) {
        read.state = serde_dynamo::from_item(i)?;
    }
    if let Some(i) = ik.and_then(|k| found.remove(&k)) {
        read.invite = Some(serde_dynamo::from_item(i)?);
    }
    for k in &pks {
        if let Some(i) = found.remove(k) {
            read.promotion_codes.push(serde_dynamo::from_item(i)?);
        }
    }
    Ok(read)
}

/// Write `row` as the customer's binding if the stored binding is still at `row.version − 1`
/// (absent for version 1), with its history line, and only if the customer's sales state is
/// still at `sales_state_version` (no sale booked since the decision was made: the binding
/// and the bookings of the customer meet on these two items). `ConditionFailed{"binding"}` or
/// `ConditionFailed{"sales state"}` when a concurrent bind or booking came first.
pub fn write_binding(
    tx: &mut Tx,
    row: &BindingRow,
    history: &BindingHistoryRow,
    sales_state_version: u64,
) -> Result<(), StoreError> {
    let mut item = to_item(row, &keys::binding(&row.program_id, &row.customer_key))?;
    if let Some(e) = &row.email {
        item = item.with_gsi1(keys::binding_email_gsi(&row.program_id, e));
    }
    tx.put_if(
        item,
        "attribute_not_exists(PK) OR #v = :v",
        &[("#v", "version")],
        vec![(
            ":v",
            AttributeValue::N(row.version.saturating_sub(1).to_string()),
        )],
        "binding",
    )?;
    check_sales_state(tx, &row.program_id, &row.customer_key, sales_state_version)?;
    tx.put_new(
        to_item(
            history,
            &keys::binding_history(
                &history.program_id,
                &history.customer_key,
                history.at_ms,
                &format!("{:06}", history.version),
            ),
        )?,
        "binding history",
    )
}

/// Condition a transaction on the customer's sales state still being at `version` (0: none).
pub fn check_sales_state(
    tx: &mut Tx,
    program_id: &str,
    customer_key: &str,
    version: u64,
) -> Result<(), StoreError> {
    tx.check(
        &keys::sales_state(program_id, customer_key),
        "attribute_not_exists(PK) OR #ver = :ver",
        &[("#ver", "version")],
        vec![(":ver", AttributeValue::N(version.to_string()))],
        "sales state",
    )
}

/// Condition a transaction on the customer's binding being the one read: at `version`, or
/// absent for `None`. `ConditionFailed{"binding"}` when it moved (or appeared) since.
pub fn check_binding(
    tx: &mut Tx,
    program_id: &str,
    customer_key: &str,
    version: Option<u64>,
) -> Result<(), StoreError> {
    let key = keys::binding(program_id, customer_key);
    match version {
        None => tx.check(&key, "attribute_not_exists(PK)", &[], vec![], "binding"),
        Some(v) => tx.check(
            &key,
            "#v = :v",
            &[("#v", "version")],
            vec![(":v", AttributeValue::N(v.to_string()))],
            "binding",
        ),
    }
}

/// Record a flagged self-referral (idempotent per customer and business time).
pub async fn put_flag(table: &Table, row: &FlagRow) -> Result<(), StoreError> {
    let item = to_item(
        row,
        &keys::self_referral_flag(&row.program_id, &row.customer_key, row.at_ms),
    )?
    .with_gsi1(keys::flags_gsi(
        &row.program_id,
        row.at_ms,
        &row.customer_key,
    ));
    match table.put_if_absent(item).await {
        Ok(()) | Err(StoreError::AlreadyDone) => Ok(()),
        Err(e) => Err(e),
    }
}

/// The invitation of an e-mail, written once (the first invitation keeps the credit:
/// `AlreadyDone` on commit otherwise).
pub fn invite_once(tx: &mut Tx, row: &InviteRow) -> Result<(), StoreError> {
    tx.marker(to_item(
        row,
        &keys::email_invite(&row.program_id, &row.email),
    )?)
}

/// Keep a sale that no binding covers yet (idempotent), listed by customer key, by e-mail and
/// in its month, for [`UNATTRIBUTED_TTL_DAYS`] — only if the customer's binding is still the
/// one read (`binding_version`, `None` for none). A bind commits either before (this write
/// then fails with `ConditionFailed{"binding"}` and the sale is decided again) or after it
/// (and its strongly consistent read of the customer's waiting sales finds this one): the two
/// writers meet on the binding item.
pub fn keep_unattributed(
    tx: &mut Tx,
    row: &UnattributedRow,
    binding_version: Option<u64>,
) -> Result<(), StoreError> {
    let invoice_id = &row.facts.invoice_id;
    let month = chrono::DateTime::from_timestamp_millis(row.at_ms)
        .unwrap_or_default()
        .format("%Y-%m")
        .to_string();
    let mut item = to_item(
        row,
        &keys::unattributed_sale(&row.customer_key, invoice_id, &row.program_id),
    )?
    .with_gsi2(keys::unattributed_month_gsi(&month, row.at_ms, invoice_id))
    .with_ttl(row.at_ms / 1000 + UNATTRIBUTED_TTL_DAYS * 86_400);
    if let Some(e) = &row.email {
        item = item.with_gsi1(keys::unattributed_email_gsi(e, invoice_id));
    }
    // Writing the same waiting sale again changes nothing.
    tx.put(item, "unattributed sale")?;
    check_binding(tx, &row.program_id, &row.customer_key, binding_version)
}

/// Remove a waiting sale, in the transaction that books it.
pub fn delete_unattributed(tx: &mut Tx, row: &UnattributedRow) -> Result<(), StoreError> {
    tx.delete(
        &keys::unattributed_sale(&row.customer_key, &row.facts.invoice_id, &row.program_id),
        "unattributed sale",
    )
}

/// The once-only marker "this invoice is booked in this program".
pub fn invoice_booked_once(
    tx: &mut Tx,
    program_id: &str,
    invoice_id: &str,
    source_event: &str,
) -> Result<(), StoreError> {
    tx.marker(
        Table::key_item(&keys::processed_invoice(program_id, invoice_id))
            .with_s("source_event", source_event),
    )
}

/// Move the customer's sales state from `expected_version` to the next (the optimistic lock of
/// every booking of this customer), recording the first paid sale.
pub fn advance_sales_state(
    tx: &mut Tx,
    program_id: &str,
    customer_key: &str,
    expected_version: u64,
    first_paid_sale_at_ms: Option<i64>,
) -> Result<(), StoreError> {
    let mut spec = UpdateSpec::new().set_n(
        "version",
        i64::try_from(expected_version + 1).unwrap_or(i64::MAX),
    );
    if let Some(first) = first_paid_sale_at_ms {
        spec = spec.set_n("first_paid_sale_at_ms", first);
    }
    let spec = spec.condition(
        "attribute_not_exists(PK) OR #ver = :ver",
        &[("#ver", "version")],
        vec![(":ver", AttributeValue::N(expected_version.to_string()))],
    );
    tx.update(
        &keys::sales_state(program_id, customer_key),
        spec,
        "sales state",
    )
}

/// (Re)write a customer's invoice row with its booked result.
pub fn put_invoice_row(tx: &mut Tx, row: &CustomerInvoiceRow) -> Result<(), StoreError> {
    tx.put(
        to_item(
            row,
            &keys::customer_invoice(&row.program_id, &row.customer_key, &row.facts.invoice_id),
        )?,
        "invoice row",
    )
}

/// A new commission, listed under its partner by business date and due for release at
/// `available_at_ms`.
pub fn put_new_commission(tx: &mut Tx, c: &CommissionRow) -> Result<(), StoreError> {
    let item = to_item(c, &keys::commission(&c.partner_id, &c.commission_id))?
        .with_gsi1(keys::partner_commissions_gsi(
            &c.partner_id,
            c.earned_at_ms,
            &c.commission_id,
        ))
        .with_gsi2(keys::release_due_gsi(&c.commission_id, c.available_at_ms));
    tx.put_new(item, "commission")
}

/// Change a commission's amount by `delta` (a re-pricing), with its new reason, if it is still
/// in `read_state`, the state whose bucket the adjustment's `adjusted` entry moves; fails the
/// transaction (`ConditionFailed{"commission adjustment"}`) if a release moved it since it was
/// read, so the caller reads again and adjusts the bucket the money is in now. `reversal`:
/// what refunds and disputes have taken back after this change (the re-pricing moves the
/// reversal target with the amount), conditional on what was read.
pub fn adjust_commission(
    tx: &mut Tx,
    read: &CommissionRow,
    delta: i64,
    reason: &str,
    reversal: Option<ReversedSoFar>,
) -> Result<(), StoreError> {
    let mut spec = UpdateSpec::new()
        .add_n("amount", delta)
        .set_s("reason", reason);
    if let Some(r) = reversal {
        spec = spec
            .set_n("reversed_pending", r.from_pending)
            .set_n("reversed_available", r.from_available);
    }
    let (expr, names, values) = read_condition(read, false);
    tx.update(
        &keys::commission(&read.partner_id, &read.commission_id),
        spec.condition(&expr, &names, values),
        "commission adjustment",
    )
}

/// Set the amount of a commission (a re-attributed sale's commission of its previous partner
/// goes to 0) and what is taken back, conditional on the state, amount and reversal read.
pub fn set_commission(
    tx: &mut Tx,
    read: &CommissionRow,
    amount: i64,
    reason: &str,
    reversal: ReversedSoFar,
) -> Result<(), StoreError> {
    let (expr, names, values) = read_condition(read, true);
    tx.update(
        &keys::commission(&read.partner_id, &read.commission_id),
        UpdateSpec::new()
            .set_n("amount", amount)
            .set_s("reason", reason)
            .set_n("reversed_pending", reversal.from_pending)
            .set_n("reversed_available", reversal.from_available)
            .condition(&expr, &names, values),
        "commission adjustment",
    )
}

/// Record what refunds and disputes have taken back from a commission (its `reversed`,
/// `clawed_back` and `adjusted` entries are in the same transaction), conditional on the state,
/// amount and reversal read: a release, re-pricing or another reversal in between fails the
/// transaction (`ConditionFailed{"commission reversal"}`), and the caller computes again.
pub fn set_commission_reversal(
    tx: &mut Tx,
    read: &CommissionRow,
    reversal: ReversedSoFar,
) -> Result<(), StoreError> {
    let (expr, names, values) = read_condition(read, true);
    tx.update(
        &keys::commission(&read.partner_id, &read.commission_id),
        UpdateSpec::new()
            .set_n("reversed_pending", reversal.from_pending)
            .set_n("reversed_available", reversal.from_available)
            .condition(&expr, &names, values),
        "commission reversal",
    )
}

/// A condition expression with its attribute names and values.
type Condition = (
    String,
    Vec<(&'static str, &'static str)>,
    Vec<(&'static str, AttributeValue)>,
);

/// The condition "the commission is as read": its state, and with `amount_too` its amount;
/// always its reversal (absent on rows written before reversals were kept counts as 0).
fn read_condition(read: &CommissionRow, amount_too: bool) -> Condition {
    let mut expr = vec!["#state = :read_state".to_string()];
    let mut names = vec![("#state", "state")];
    let mut values = vec![(":read_state", AttributeValue::S(read.state.as_str().into()))];
    if amount_too {
        expr.push("#amount = :read_amount".into());
        names.push(("#amount", "amount"));
        values.push((":read_amount", AttributeValue::N(read.amount.to_string())));
    }
    for (name, attr, placeholder, v) in [
        ("#rp", "reversed_pending", ":read_rp", read.reversed_pending),
        (
            "#ra",
            "reversed_available",
            ":read_ra",
            read.reversed_available,
        ),
    ] {
        names.push((name, attr));
        values.push((placeholder, AttributeValue::N(v.to_string())));
        expr.push(if v == 0 {
            format!("(attribute_not_exists({name}) OR {name} = {placeholder})")
        } else {
            format!("{name} = {placeholder}")
        });
    }
    (expr.join(" AND "), names, values)
}

/// Release a pending commission as read (its `released` entry moves [`CommissionRow::pending_net`]):
/// state `available`, out of the release index; fails the transaction (`ConditionFailed`) if it
/// is no longer pending, or an adjustment or reversal changed it since it was read.
pub fn release_commission(tx: &mut Tx, read: &CommissionRow) -> Result<(), StoreError> {
    let mut pending = read.clone();
    pending.state = CommissionState::Pending;
    let (expr, names, values) = read_condition(&pending, true);
    tx.update(
        &keys::commission(&read.partner_id, &read.commission_id),
        UpdateSpec::new()
            .set_s("state", CommissionState::Available.as_str())
            .remove(keys::GSI2PK)
            .remove(keys::GSI2SK)
            .condition(&expr, &names, values),
        "commission state",
    )
}
