//! Pure business rules of the partner program engine. No AWS, no I/O, no clock: every time is
//! business time handed in by the caller.

pub mod ledger;
pub mod money;

pub use ledger::{entry_delta, Balance, BalanceDelta, Bucket, EntryKind, LedgerError};
pub use money::{Currency, Money, MoneyError, COMMISSION_ROUNDING};
