//! The error of the rule algorithms, shared by `levels` and `plan` (re-exported as
//! `rules::plan::PlanError` and `rules::PlanError`).

use crate::money::{Currency, MoneyError};

/// Why the commission fold ([`crate::evaluate_customer`]) or a level computation could not
/// run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The same invoice id twice in one fold.
    #[error("invoice {0} appears more than once")]
    DuplicateInvoice(String),
    /// A line in another currency than its invoice.
    #[error("invoice {invoice_id}: a line is in {line} but the invoice is in {invoice}")]
    LineCurrency {
        /// The invoice.
        invoice_id: String,
        /// The line's currency.
        line: Currency,
        /// The invoice's currency.
        invoice: Currency,
    },
    /// A level in the history that the program does not define.
    #[error("level {level} is not defined (the program has {defined} levels)")]
    UnknownLevel {
        /// The level.
        level: u32,
        /// Levels defined.
        defined: usize,
    },
    /// A date computation left chrono's range.
    #[error("date computation out of range")]
    TimeOutOfRange,
    /// Integer overflow in counters.
    #[error("overflow")]
    Overflow,
    /// Money arithmetic failed (overflow, mixed currencies).
    #[error(transparent)]
    Money(#[from] MoneyError),
}
