//! Storage of the partner program engine: one DynamoDB table (single-table design).
//!
//! - [`keys`] owns every key format.
//! - [`tx`] builds transactions that cannot touch an item twice or exceed 100 actions.
//! - [`ledger`] posts entries and their balance moves together.
//! - [`outbox`] writes messages in the same transaction as the fact that causes them.
//!
//! Feature `testing`, turned on by dev-dependencies only (never in a function's build): modules
//! `testing` (moto configuration, fresh tables and queues) and `metrics` (the request counter).

pub mod attention;
pub mod charges;
pub mod clock;
pub mod connect_accounts;
pub mod customers;
pub mod error;
pub mod events;
pub mod keys;
pub mod ledger;
pub mod links;
pub mod mail;
#[cfg(feature = "testing")]
pub mod metrics;
pub mod outbox;
pub mod partners;
pub mod payouts;
pub mod programs;
pub mod rail_batches;
pub mod schema;
pub mod table;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tx;

pub use clock::{Clock, ManualClock, SharedClock, SystemClock};
pub use error::StoreError;
pub use keys::Key;
pub use table::{Item, ItemExt, Query, Table};
pub use tx::{Tx, UpdateSpec};
