//! The manual rail: export approved items as PayPal Payouts Web files, and settle them as the
//! operator reports.
//!
//! File format (PayPal, "Send payouts from Payouts Web" / "Use Web UI", developer.paypal.com
//! and docs.paypal.ai): a `.csv` without a header, one payout per row: recipient (the PayPal
//! e-mail), amount in the currency's format (`100.50`; a currency without decimals has none),
//! the three-letter currency code, a customer id (at most 30 characters, no spaces: the item's
//! reference), a note to the recipient (at most 400 characters), and the wallet `PAYPAL`. One
//! currency per file and at most 5,000 rows per file.

use rules::{Money, PayoutItemState, PayoutMethod};
use storage::payouts::{self, PayoutItem};

use super::{move_and_read, move_item};
use crate::{Engine, EngineError};

/// PayPal's limit of rows per Payouts Web file.
pub const MAX_ROWS_PER_FILE: usize = 5_000;
/// PayPal's limit on the note to the recipient.
pub const MAX_NOTE_CHARS: usize = 400;

/// One file of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFile {
    /// `{export}-{currency}-{part}.csv`
    pub file_name: String,
    pub rows: usize,
    pub contents: String,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The Payouts Web files of these items (PayPal items only), by currency, then split at
/// [`MAX_ROWS_PER_FILE`].
pub fn paypal_payouts_files(export_id: &str, items: &[PayoutItem], note: &str) -> Vec<ExportFile> {
    let note: String = note.chars().take(MAX_NOTE_CHARS).collect();
    let mut by_currency: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for item in items {
        let PayoutMethod::PayPal { email } = &item.method else {
            continue;
        };
        let amount = Money::new(item.amount, item.currency).major_string();
        by_currency
            .entry(item.currency.code().to_string())
            .or_default()
            .push(format!(
                "{},{},{},{},{},PAYPAL",
                csv_field(email),
                csv_field(&amount),
                item.currency.code(),
                item.reference,
                csv_field(&note)
            ));
    }
    let mut out = vec![];
    for (currency, rows) in by_currency {
        for (part, chunk) in rows.chunks(MAX_ROWS_PER_FILE).enumerate() {
            let mut contents = chunk.join("\n");
            contents.push('\n');
            out.push(ExportFile {
                file_name: format!("{export_id}-{currency}-{}.csv", part + 1),
                rows: chunk.len(),
                contents,
            });
        }
    }
    out
}

/// Mark the run's approved PayPal items submitted under `export_id` (each a conditional change
/// from approved, written before any file exists), and return every item of that export. A
/// second export finds none of them approved any more, so it never repeats an item; the same
/// `export_id` again returns the same items (a lost file is written again).
pub async fn export_run(
    engine: &Engine,
    program_id: &str,
    date: &str,
    export_id: &str,
) -> Result<Vec<PayoutItem>, EngineError> {
    let items = payouts::run_items(&engine.table, program_id, date).await?;
    let mut out = vec![];
    for item in items {
        let item = if item.state == PayoutItemState::Approved
            && matches!(item.method, PayoutMethod::PayPal { .. })
        {
            move_and_read(
                engine,
                &item,
                PayoutItemState::Approved,
                PayoutItemState::Submitted,
                item.released_through_ms,
                &[("export_id", export_id), ("rail", "manual")],
            )
            .await?
            .1
        } else {
            item
        };
        if item.export_id.as_deref() == Some(export_id) {
            out.push(item);
        }
    }
    Ok(out)
}

/// What an operator reports about exported items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// PayPal paid them.
    Sent,
    /// PayPal refused or failed them: the money is available again.
    Failed { reason: String },
    /// Sent, then the money came back.
    Returned { reason: String },
}

/// Settle the run's items as the operator reports, for every partner or only `partners`, at
/// business time `at_ms`: submitted items become sent (`paid`) or failed (`payout_released`),
/// sent items returned (`payout_returned`). Returns the items that moved.
pub async fn mark(
    engine: &Engine,
    program_id: &str,
    date: &str,
    mark: &Mark,
    partners: &[String],
    at_ms: i64,
) -> Result<Vec<PayoutItem>, EngineError> {
    let (from, to, note) = match mark {
        Mark::Sent => (
            PayoutItemState::Submitted,
            PayoutItemState::Sent,
            "marked sent",
        ),
        Mark::Failed { reason } => (
            PayoutItemState::Submitted,
            PayoutItemState::Failed,
            reason.as_str(),
        ),
        Mark::Returned { reason } => (
            PayoutItemState::Sent,
            PayoutItemState::Returned,
            reason.as_str(),
        ),
    };
    let mut moved = vec![];
    for item in payouts::run_items(&engine.table, program_id, date).await? {
        if item.state != from || (!partners.is_empty() && !partners.contains(&item.partner_id)) {
            continue;
        }
        if let Some(after) =
            move_item(engine, &item, from, to, at_ms, &[("rail_note", note)]).await?
        {
            moved.push(after);
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::Currency;

    fn item(partner: &str, currency: Currency, amount: i64, email: Option<&str>) -> PayoutItem {
        let id = storage::keys::payout_item_id("demo", "2026-12-04", partner, currency);
        PayoutItem {
            reference: payouts::item_reference(&id),
            item_id: id,
            program_id: "demo".into(),
            date: "2026-12-04".into(),
            partner_id: partner.into(),
            currency,
            amount,
            released_through_ms: 0,
            state: PayoutItemState::Submitted,
            method: match email {
                Some(e) => PayoutMethod::PayPal { email: e.into() },
                None => PayoutMethod::StripeConnect {
                    account_id: "acct_1".into(),
                },
            },
            export_id: Some("x1".into()),
            rail_note: None,
            rail_batch: None,
            updated_at_ms: 0,
            lots: Default::default(),
            under_minimum: false,
        }
    }

    #[test]
    fn files_follow_paypal_payouts_web() {
        let items = vec![
            item("alice", Currency::USD, 10_050, Some("alice@example.com")),
            item("bob", Currency::JPY, 12_000, Some("bob@example.com")),
            item("carol", Currency::USD, 999_999, Some("carol@example.com")),
            item("dave", Currency::USD, 20_000, None),
        ];
        let files = paypal_payouts_files("x1", &items, "Your commission, thank you");
        let names: Vec<_> = files.iter().map(|f| f.file_name.as_str()).collect();
        assert_eq!(names, vec!["x1-JPY-1.csv", "x1-USD-1.csv"]);
        assert_eq!(
            files[1].contents,
            format!(
                "alice@example.com,100.50,USD,{},Your commission, thank you,PAYPAL\n",
                items[0].reference
            )
            .replace(
                "Your commission, thank you",
                "\"Your commission, thank you\""
            ) + &format!(
                "carol@example.com,9999.99,USD,{},\"Your commission, thank you\",PAYPAL\n",
                items[2].reference
            )
        );
        // JPY has no decimals; the Stripe Connect item is not a PayPal row.
        assert!(files[0]
            .contents
            .starts_with("bob@example.com,12000,JPY,po_"));
        for f in &files {
            for row in f.contents.lines() {
                let id = row.split(',').nth(3).unwrap_or("");
                assert!(id.len() <= 30 && !id.contains(' '), "{row}");
            }
        }
    }

    #[test]
    fn large_exports_split_at_5000_rows() {
        let items: Vec<_> = (0..12_001)
            .map(|n| {
                item(
                    &format!("p{n}"),
                    Currency::USD,
                    10_000,
                    Some("p@example.com"),
                )
            })
            .collect();
        let files = paypal_payouts_files("x2", &items, "");
        let rows: Vec<_> = files.iter().map(|f| f.rows).collect();
        assert_eq!(rows, vec![5_000, 5_000, 2_001]);
        assert_eq!(files[2].file_name, "x2-USD-3.csv");
        assert_eq!(files[2].contents.lines().count(), 2_001);
    }
}
