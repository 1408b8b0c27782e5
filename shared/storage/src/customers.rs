//! Customers of a program: bindings to partners (with history), invitations, flags, invoices
//! (the commission fold's input), commissions and sales that wait for attribution.

use rules::attribution::BindingCause;
use rules::plan::{InvoiceCommission, InvoiceFacts};
use rules::Currency;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::table::{Query, Table};

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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommissionState {
    /// In the hold.
    Pending,
    /// Released to the available balance.
    Available,
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
    let (pk, _) = keys::binding_email_gsi(program_id, email);
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
    let (pk, _) = keys::flags_gsi(program_id, 0, "");
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
    let (pk, _) = keys::partner_commissions_gsi(partner_id, 0, "");
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
    let (pk, _) = keys::unattributed_email_gsi(email, "");
    table.query_as(Query::gsi1(pk)).await
}

/// Sales waiting for attribution, paid in a month (`YYYY-MM`).
pub async fn unattributed_in_month(
    table: &Table,
    month: &str,
) -> Result<Vec<UnattributedRow>, StoreError> {
    let (pk, _) = keys::unattributed_month_gsi(month, 0, "");
    table.query_as(Query::gsi2(pk)).await
}
