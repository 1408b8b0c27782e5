//! Sales that waited for attribution: once a customer is bound, book the customer's paid
//! invoices in the program whose payment came at or after the binding's cause. Sales found by
//! e-mail under another customer key (paid after the lead was recorded) bind that key to the
//! same partner first. Idempotent: it runs after every bind that leaves the customer bound, and
//! the sweep (`sweep_waiting_sales`) runs it for sales whose binding came some other way.

use rules::attribution::{binding_covers, binding_covers_sale, email_binding_applies};
use rules::partner::{sale_treatment, SaleTreatment};
use rules::Program;
use storage::customers::{self, BindingRow, UnattributedRow};
use storage::partners;

use super::booking::{book_customer, reattribute_customer, NewSale};
use super::intake::binding_moved;
use crate::binding::{write_binding, Resolved};
use crate::{Engine, EngineError};

/// Book the waiting sales of a customer bound in `program` by `binding` (the binding as it
/// stands; idempotent). Returns the commissions booked.
pub async fn book_waiting_sales(
    engine: &Engine,
    program: &Program,
    binding: &BindingRow,
    email: Option<&str>,
) -> Result<Vec<String>, EngineError> {
    let t = &engine.table;
    let customer_key = binding.customer_key.as_str();
    let mut rows = customers::unattributed_of_customer(t, customer_key).await?;
    rows.retain(|r| {
        r.program_id == program.id && binding_covers(&binding.cause, binding.cause_at_ms, r.at_ms)
    });
    let email = email.or(binding.email.as_deref());
    if let Some(e) = email {
        rows.extend(
            customers::unattributed_of_email(t, e)
                .await?
                .into_iter()
                .filter(|r| {
                    r.program_id == program.id
                        && r.customer_key != customer_key
                        && email_binding_applies(binding.bound_at_ms, r.at_ms)
                        && binding_covers_sale(binding.cause_at_ms, r.at_ms)
                }),
        );
    }
    if rows.is_empty() {
        return Ok(vec![]);
    }
    // A banned (or not yet approved) partner's sales keep waiting for an operator.
    match partners::get_partner(t, &binding.partner_id).await? {
        Some(p) if sale_treatment(p.status) == SaleTreatment::WaitUnattributed => {
            return Ok(vec![])
        }
        _ => {}
    }
    rows.sort_by(|a, b| (a.at_ms, &a.facts.invoice_id).cmp(&(b.at_ms, &b.facts.invoice_id)));
    rows.dedup_by(|a, b| {
        a.customer_key == b.customer_key
            && a.facts.invoice_id == b.facts.invoice_id
            && a.program_id == b.program_id
    });
    let mut ids = vec![];
    for row in rows {
        let Some(standing) = binding_for_row(engine, program, binding, &row).await? else {
            continue;
        };
        let new_sale = NewSale {
            facts: row.facts.clone(),
            partner_id: standing.partner_id.clone(),
            source_event: row.source_event.clone(),
            unattributed: Some(row.clone()),
            binding_version: Some(standing.version),
            attributed_by: Some(standing.attributed_by()),
        };
        match book_customer(engine, program, &row.customer_key, Some(new_sale), None).await {
            Ok(booked) => ids.extend(booked.commission_ids),
            // The binding moved meanwhile: its own bind books the sale.
            Err(e) if binding_moved(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(ids)
}

/// The binding a waiting row is booked with: the bound customer's own, or for a row of another
/// customer key found by e-mail, that key bound to the same partner (unless its own binding
/// stands, and covers the sale).
async fn binding_for_row(
    engine: &Engine,
    program: &Program,
    binding: &BindingRow,
    row: &UnattributedRow,
) -> Result<Option<BindingRow>, EngineError> {
    if row.customer_key == binding.customer_key {
        return Ok(Some(binding.clone()));
    }
    let r = Resolved {
        program: program.clone(),
        partner_id: binding.partner_id.clone(),
        cause: binding.cause.clone(),
        cause_at_ms: binding.cause_at_ms,
        manual: false,
        via_email_of: Some(binding.customer_key.clone()),
    };
    let written = write_binding(
        engine,
        &row.customer_key,
        row.email.as_deref(),
        &r,
        row.at_ms,
        &row.source_event,
        None,
        Some(row.at_ms),
    )
    .await?;
    if let Some(b) = written.binding.as_ref().filter(|_| written.reattribute) {
        reattribute_customer(engine, program, b).await?;
    }
    Ok(written
        .binding
        .filter(|b| binding_covers(&b.cause, b.cause_at_ms, row.at_ms)))
}

/// How far back (business time) the sweep looks for waiting sales: a bind that died after
/// writing its binding is retried by its client within minutes; three days cover any such
/// retry policy (and a weekend of an operator's outage) with room to spare, and keeps the sweep's reads proportional to a few days of
/// unattributed sales rather than to every organic sale of the last year.
pub const SWEEP_LOOKBACK_MS: i64 = 3 * 86_400_000;

/// What a sweep of waiting sales did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Waiting sales looked at.
    pub waiting: usize,
    /// Of their customers, those found bound (their waiting sales were booked if covered).
    pub bound_customers: usize,
    /// Commissions booked.
    pub commission_ids: Vec<String>,
}

/// The periodic sweep: every sale still waiting for attribution, paid in the
/// [`SWEEP_LOOKBACK_MS`] before `now_ms` (business time of the schedule), whose customer has
/// since been bound, is booked (`book_waiting_sales`, idempotent). It repairs a bind that died
/// between writing the binding and booking the waiting sales, whatever the client does next.
/// Reads: one Query per month of the window, one `BatchGetItem` per 100 customers.
pub async fn sweep_waiting_sales(engine: &Engine, now_ms: i64) -> Result<SweepReport, EngineError> {
    let t = &engine.table;
    let rows = customers::unattributed_paid_between(t, now_ms - SWEEP_LOOKBACK_MS, now_ms).await?;
    let mut pairs: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.program_id.clone(), r.customer_key.clone()))
        .collect();
    pairs.sort();
    pairs.dedup();
    let mut report = SweepReport {
        waiting: rows.len(),
        ..Default::default()
    };
    for binding in customers::bindings_of(t, &pairs).await? {
        let Some(program) = engine.catalog.program(t, &binding.program_id).await? else {
            continue;
        };
        report.bound_customers += 1;
        let ids = book_waiting_sales(engine, &program, &binding, binding.email.as_deref()).await?;
        report.commission_ids.extend(ids);
    }
    Ok(report)
}
