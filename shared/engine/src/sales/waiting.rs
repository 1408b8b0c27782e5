//! Sales that waited for attribution: after a new binding, book the customer's paid invoices in
//! the program whose payment came at or after the binding's cause. Sales found by e-mail under
//! another customer key bind that key to the same partner first.

use rules::attribution::binding_covers_sale;
use rules::Program;
use storage::customers::{self, BindingRow};

use super::booking::{book_customer, NewSale};
use crate::binding::{write_binding, Resolved};
use crate::{Engine, EngineError};

/// Book the waiting sales of a customer just bound in `program` by `binding` (the binding as
/// written; idempotent). Returns the commissions booked.
pub(crate) async fn book_waiting_sales(
    engine: &Engine,
    program: &Program,
    binding: &BindingRow,
    email: Option<&str>,
) -> Result<Vec<String>, EngineError> {
    let t = &engine.table;
    let customer_key = binding.customer_key.as_str();
    let cause_at_ms = binding.cause_at_ms;
    let mut rows = customers::unattributed_of_customer(t, customer_key).await?;
    if let Some(e) = email {
        rows.extend(customers::unattributed_of_email(t, e).await?);
    }
    rows.retain(|r| r.program_id == program.id && binding_covers_sale(cause_at_ms, r.at_ms));
    if rows.is_empty() {
        return Ok(vec![]);
    }
    rows.sort_by(|a, b| (a.at_ms, &a.facts.invoice_id).cmp(&(b.at_ms, &b.facts.invoice_id)));
    rows.dedup_by(|a, b| {
        a.customer_key == b.customer_key
            && a.facts.invoice_id == b.facts.invoice_id
            && a.program_id == b.program_id
    });
    let mut ids = vec![];
    for row in rows {
        // The bound customer's rows go to its binding's partner; another key takes the same
        // partner unless it has kept its own.
        let partner_id = if row.customer_key == customer_key {
            binding.partner_id.clone()
        } else {
            let r = Resolved {
                program: program.clone(),
                partner_id: binding.partner_id.clone(),
                cause: binding.cause.clone(),
                cause_at_ms: binding.cause_at_ms,
                manual: false,
            };
            let written = write_binding(
                engine,
                &row.customer_key,
                row.email.as_deref(),
                &r,
                row.at_ms,
                &row.source_event,
                None,
            )
            .await?;
            match written.binding {
                Some(b) => b.partner_id,
                None => continue,
            }
        };
        let new_sale = NewSale {
            facts: row.facts.clone(),
            partner_id,
            source_event: row.source_event.clone(),
            unattributed: Some(row.clone()),
        };
        let booked =
            book_customer(engine, program, &row.customer_key, Some(new_sale), None).await?;
        ids.extend(booked.commission_ids);
    }
    Ok(ids)
}
