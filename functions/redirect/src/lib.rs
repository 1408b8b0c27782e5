//! The redirect function: `GET /r/{code}` and `GET /r/{code}/{sub_id}` count a partner link's
//! click and send the visitor to the merchant with a signed click id (see [`handler`]);
//! `GET /t.js?program=` serves the merchant's landing-page script that carries that id into
//! checkout ([`script`]).
//!
//! `main.rs` builds [`Deps`] once per execution environment ([`production_deps`]) and lends it
//! to [`handler::handle`], which only sees the narrow ports [`LinkDirectory`] and
//! [`ClickRecorder`]; tests put counting, failing or slow doubles behind the same ports.

pub mod config;
pub mod directory;
pub mod handler;
pub mod recorder;
pub mod request;
pub mod response;
pub mod script;

pub use config::{Config, ConfigError};
pub use directory::{
    BackendError, CachedDirectory, LinkDirectory, LinkWithProgram, RedirectProgram, TableDirectory,
};
pub use handler::{handle, redirect, Deps, Outcome, DEDUP_WINDOW_MS};
pub use recorder::{ClickRecorder, TableRecorder};
pub use request::{valid_sub_id, ClickRequest, CLICK_COOKIE, VISITOR_COOKIE};

use storage::{SharedClock, StoreError, Table};
use tracking::KeyRing;

/// The production wiring: a cached table directory and the table recorder.
pub type TableDeps = Deps<CachedDirectory<TableDirectory>, TableRecorder>;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl TableDeps {
    /// Wire the table adapters (cache TTLs from `config`, technical time from `clock`).
    pub fn from_table(table: Table, config: Config, keys: KeyRing, clock: SharedClock) -> Self {
        let directory = CachedDirectory::new(
            TableDirectory::new(table.clone()),
            clock.clone(),
            config.cache_ttl,
            config.negative_cache_ttl,
        );
        Deps {
            directory,
            recorder: TableRecorder::new(table),
            keys,
            config,
            clock,
        }
    }
}

/// Everything from the environment (see [`config`]): AWS configuration, table, keys, settings.
pub async fn production_deps() -> Result<TableDeps, InitError> {
    let (config, keys) = Config::from_env()?;
    let aws = storage::table::aws_config().await;
    let table = Table::from_env(&aws)?;
    let clock = table.clock.clone();
    Ok(TableDeps::from_table(table, config, keys, clock))
}
