//! Read-only views for operators: a customer's binding and history, flagged self-referrals, a
//! partner's commissions (with what refunds and disputes took back), ledger and balances, a
//! customer's refunds and disputes (parked or applied), and sales waiting for attribution.

use serde::Serialize;
use storage::charges::{self, ChargeRow};
use storage::customers::{
    self, BindingHistoryRow, BindingRow, CommissionRow, FlagRow, UnattributedRow,
};
use storage::ledger::{self, BalanceRow, LedgerEntry};
use storage::{partners, Table};

use crate::{CliError, Format};

/// Render rows as an aligned text table or as JSON.
pub fn render<T: Serialize>(
    format: Format,
    title: &str,
    headers: &[&str],
    rows: &[T],
    cells: impl Fn(&T) -> Vec<String>,
) -> String {
    match format {
        Format::Json => {
            serde_json::to_string_pretty(rows).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
        }
        Format::Table => {
            let body: Vec<Vec<String>> = rows.iter().map(&cells).collect();
            let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
            for r in &body {
                for (i, c) in r.iter().enumerate() {
                    if let Some(w) = widths.get_mut(i) {
                        *w = (*w).max(c.chars().count());
                    }
                }
            }
            let line = |cols: Vec<String>| {
                cols.iter()
                    .enumerate()
                    .map(|(i, c)| format!("{:<w$}", c, w = widths.get(i).copied().unwrap_or(0)))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            let mut out = format!("{title}\n");
            out.push_str(&line(headers.iter().map(|h| h.to_string()).collect()));
            out.push('\n');
            for r in body {
                out.push_str(&line(r));
                out.push('\n');
            }
            if rows.is_empty() {
                out.push_str("(none)\n");
            }
            out
        }
    }
}

pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}

/// A partner's e-mail standing, as `partnerctl partner` shows it.
pub fn standing_line(st: &storage::mail::MailStanding, address: &str) -> String {
    let mut parts = vec![];
    if st.opt_out {
        parts.push("opted out of optional mail".to_string());
    }
    match st.problem_of(address) {
        Some(p) => parts.push(format!(
            "{} {} on {} ({}): optional mail stopped",
            p.address,
            p.kind.as_str(),
            storage::mail::day_of(p.at_ms),
            p.detail
        )),
        None => {
            if let Some(p) = &st.problem {
                parts.push(format!(
                    "an earlier address {} had a {} (not the current one)",
                    p.address,
                    p.kind.as_str()
                ));
            }
        }
    }
    if parts.is_empty() {
        "mail: every message".into()
    } else {
        format!("mail: {}", parts.join("; "))
    }
}

pub fn money(minor: i64, currency: rules::Currency) -> String {
    rules::Money::new(minor, currency).to_string()
}

#[derive(Serialize)]
pub struct CustomerView {
    pub binding: Option<BindingRow>,
    pub history: Vec<BindingHistoryRow>,
    pub waiting_sales: Vec<UnattributedRow>,
    /// The customer's charges with refunds or disputes (or a sale booked on them), parked
    /// (no sale booked yet) or applied.
    pub money_back: Vec<MoneyBackView>,
}

/// A charge's refunds and disputes as the operator sees them.
#[derive(Serialize)]
pub struct MoneyBackView {
    pub charge: ChargeRow,
    /// `parked` (no sale booked on the charge yet) or `applied`.
    pub state: &'static str,
    /// What they take back from the charge, minor units (when the charge amount is known).
    pub taken_back: Option<i64>,
    pub charge_amount: Option<i64>,
}

impl MoneyBackView {
    pub fn of(charge: ChargeRow) -> Self {
        let charge_amount = charge.charge_amount(None);
        MoneyBackView {
            state: if charge.is_parked() {
                "parked"
            } else {
                "applied"
            },
            taken_back: charge_amount.map(|a| charge.taken_back(a)),
            charge_amount,
            charge,
        }
    }
}

pub async fn customer(
    table: &Table,
    format: Format,
    program: &str,
    customer_key: &str,
) -> Result<String, CliError> {
    let view = CustomerView {
        binding: customers::get_binding(table, program, customer_key).await?,
        history: customers::binding_history(table, program, customer_key).await?,
        waiting_sales: customers::unattributed_of_customer(table, customer_key)
            .await?
            .into_iter()
            .filter(|u| u.program_id == program)
            .collect(),
        money_back: charges::of_customer(table, customer_key)
            .await?
            .into_iter()
            .filter(|c| c.is_parked() || c.bookings.iter().any(|b| b.program_id == program))
            .filter(|c| !c.refunds.is_empty() || !c.disputes.is_empty() || c.view.is_some())
            .map(MoneyBackView::of)
            .collect(),
    };
    if format == Format::Json {
        return serde_json::to_string_pretty(&view).map_err(|e| CliError::Usage(e.to_string()));
    }
    let mut out = match &view.binding {
        None => format!("customer {customer_key} is not bound to a partner in program {program}\n"),
        Some(b) => format!(
            "customer {customer_key} in program {program}: partner {} (attributed by {}{}; cause {}, at {}), bound {} by {}\n",
            b.partner_id,
            b.attributed_by().as_str(),
            b.via_email_of
                .as_deref()
                .map(|k| format!(" of customer {k}"))
                .unwrap_or_default(),
            serde_json::to_string(&b.cause).unwrap_or_default(),
            time(b.cause_at_ms),
            time(b.bound_at_ms),
            b.source_event
        ),
    };
    out.push_str(&render(
        format,
        "\nhistory",
        &["at", "action", "partner", "previous", "cause"],
        &view.history,
        |h| {
            vec![
                time(h.at_ms),
                h.action.clone(),
                h.partner_id.clone(),
                h.previous_partner_id.clone().unwrap_or_default(),
                serde_json::to_string(&h.cause).unwrap_or_default(),
            ]
        },
    ));
    out.push_str(&render(
        format,
        "\nsales waiting for attribution",
        &["paid at", "invoice", "amount"],
        &view.waiting_sales,
        |u| {
            vec![
                time(u.at_ms),
                u.facts.invoice_id.clone(),
                u.facts
                    .amount_paid()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ]
        },
    ));
    out.push_str(&render(
        format,
        "\nrefunds and disputes",
        &[
            "first seen",
            "charge",
            "invoice",
            "state",
            "taken back",
            "refunds",
            "disputes",
        ],
        &view.money_back,
        |m| {
            let c = &m.charge;
            let cur = c.currency.unwrap_or(rules::Currency::USD);
            vec![
                time(c.first_seen_ms),
                c.charge_key.clone(),
                c.invoice_id.clone().unwrap_or_default(),
                m.state.to_string(),
                match (m.taken_back, m.charge_amount) {
                    (Some(t), Some(a)) => format!("{} of {}", money(t, cur), money(a, cur)),
                    _ => "-".into(),
                },
                c.refunds
                    .iter()
                    .map(|r| format!("{} {} {:?}", r.id, money(r.amount, cur), r.status))
                    .chain(
                        c.view.iter().map(|v| {
                            format!("charge says {} refunded", money(v.amount_refunded, cur))
                        }),
                    )
                    .collect::<Vec<_>>()
                    .join("; "),
                c.disputes
                    .iter()
                    .map(|d| format!("{} {} {:?}", d.id, money(d.amount, cur), d.status))
                    .collect::<Vec<_>>()
                    .join("; "),
            ]
        },
    ));
    Ok(out)
}

pub async fn flags(table: &Table, format: Format, program: &str) -> Result<String, CliError> {
    let rows: Vec<FlagRow> = customers::flags(table, program).await?;
    Ok(render(
        format,
        &format!("flagged self-referrals in {program}"),
        &["at", "customer", "partner", "email", "reason", "source"],
        &rows,
        |f| {
            vec![
                time(f.at_ms),
                f.customer_key.clone(),
                f.partner_id.clone(),
                f.customer_email.clone().unwrap_or_default(),
                f.reason.clone(),
                f.source_event.clone(),
            ]
        },
    ))
}

#[derive(Serialize)]
pub struct PartnerView {
    pub balances: Vec<BalanceRow>,
    pub commissions: Vec<CommissionRow>,
    pub entries: Vec<LedgerEntry>,
    /// Their opt-out of optional mail and what SES reported about their address.
    pub mail: storage::mail::MailStanding,
}

pub async fn partner(table: &Table, format: Format, partner_id: &str) -> Result<String, CliError> {
    let balances = ledger::partner_balances(table, partner_id).await?;
    let commissions = customers::partner_commissions(table, partner_id, 0, i64::MAX / 2).await?;
    let mut entries = vec![];
    for b in &balances {
        entries.extend(ledger::entries(table, partner_id, &b.program_id, b.currency).await?);
    }
    let memberships = partners::partner_memberships(table, partner_id).await?;
    let (profile, mail) = storage::mail::partner_with_standing(table, partner_id).await?;
    let view = PartnerView {
        balances,
        commissions,
        entries,
        mail,
    };
    if format == Format::Json {
        return serde_json::to_string_pretty(&view).map_err(|e| CliError::Usage(e.to_string()));
    }
    let mut out = format!(
        "partner {partner_id}: programs {}\n",
        memberships
            .iter()
            .map(|m| format!(
                "{} (level {}{})",
                m.membership.program_id,
                m.level_history.current_level(),
                m.membership
                    .recruiter
                    .as_ref()
                    .map(|r| format!(", recruited by {r}"))
                    .unwrap_or_default()
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let address = profile.as_ref().map(|p| p.email.as_str()).unwrap_or("");
    out.push_str(&format!("{}\n", standing_line(&view.mail, address)));
    out.push_str(&render(
        format,
        "\nbalances",
        &[
            "program",
            "currency",
            "pending",
            "available",
            "in payout",
            "paid",
        ],
        &view.balances,
        |b| {
            vec![
                b.program_id.clone(),
                b.currency.to_string(),
                money(b.pending, b.currency),
                money(b.available, b.currency),
                money(b.in_payout, b.currency),
                money(b.paid, b.currency),
            ]
        },
    ));
    out.push_str(&render(
        format,
        "\ncommissions",
        &[
            "earned at",
            "commission",
            "customer",
            "amount",
            "taken back",
            "net",
            "state",
            "available at",
            "attributed by",
            "reason",
        ],
        &view.commissions,
        |c| {
            vec![
                time(c.earned_at_ms),
                c.commission_id.clone(),
                c.customer_key.clone(),
                money(c.amount, c.currency),
                money(c.reversed_pending + c.reversed_available, c.currency),
                money(c.net(), c.currency),
                format!("{:?}", c.state).to_lowercase(),
                time(c.available_at_ms),
                c.attributed_by.map_or("-", |m| m.as_str()).to_string(),
                c.reason.clone(),
            ]
        },
    ));
    out.push_str(&render(
        format,
        "\nledger",
        &[
            "at",
            "kind",
            "amount",
            "program",
            "commission",
            "reason",
            "source",
        ],
        &view.entries,
        |e| {
            vec![
                time(e.at_ms),
                e.kind.as_str().to_string(),
                money(e.amount, e.currency),
                e.program_id.clone(),
                e.commission_id.clone().unwrap_or_default(),
                e.reason.clone(),
                e.source_event.clone(),
            ]
        },
    ));
    Ok(out)
}

pub async fn unattributed(
    table: &Table,
    format: Format,
    month: Option<&str>,
    customer: Option<&str>,
    email: Option<&str>,
) -> Result<String, CliError> {
    let rows = match (month, customer, email) {
        (_, Some(c), _) => customers::unattributed_of_customer(table, c).await?,
        (_, _, Some(e)) => {
            let e = rules::attribution::normalize_email(e)
                .map_err(|err| CliError::Usage(err.to_string()))?;
            customers::unattributed_of_email(table, e.as_str()).await?
        }
        (Some(m), _, _) => customers::unattributed_in_month(table, m).await?,
        (None, None, None) => {
            return Err(CliError::Usage(
                "give --month YYYY-MM, --customer KEY or --email ADDRESS".into(),
            ))
        }
    };
    Ok(render(
        format,
        "sales waiting for attribution",
        &[
            "paid at", "program", "customer", "email", "invoice", "amount",
        ],
        &rows,
        |u| {
            vec![
                time(u.at_ms),
                u.program_id.clone(),
                u.customer_key.clone(),
                u.email.clone().unwrap_or_default(),
                u.facts.invoice_id.clone(),
                u.facts
                    .amount_paid()
                    .map(|m| m.to_string())
                    .unwrap_or_default(),
            ]
        },
    ))
}
