//! The HTTP API of the partner program engine (API Gateway HTTP API, payload format 2.0).
//!
//! - [`router`]: the route table (`POST /v1/track/lead` for now; the admin API joins it).
//! - [`handler`]: routing, authentication, and the answer; [`track_lead`]: the lead route.
//! - [`problem`]: RFC 9457 problem details, one kind per `type`, each with a fixed status.
//! - [`ports`]: the narrow trait the handler depends on ([`LeadTracker`]) and its engine
//!   implementation. `main.rs` builds [`Deps`] once ([`production_deps`]) and lends it to
//!   [`handle`]; tests put doubles behind the same trait.
//!
//! The contract is `docs/openapi.yaml`; the tests check that it lists every route with its
//! method and every status each route can answer.

pub mod config;
pub mod handler;
pub mod ports;
pub mod problem;
pub mod request;
pub mod router;
pub mod track_lead;

pub use config::{Config, ConfigError};
pub use handler::{handle, Deps};
pub use ports::{EngineTracker, LeadTracker};
pub use problem::{Problem, ProblemKind};
pub use router::Route;

use storage::{StoreError, Table};

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The engine for this configuration and table (with the outbox routes when configured).
pub fn engine_from(
    config: Config,
    table: Table,
    sqs: impl FnOnce() -> aws_sdk_sqs::Client,
) -> engine::Engine {
    engine::Engine::new(table, config.keys)
        .with_program_cache(engine::PROGRAM_CACHE_TTL)
        .with_outbox(sqs(), config.outbox_routes)
}

/// Everything from the environment (see [`config`]): AWS configuration, table, keys, outbox.
pub async fn production_deps() -> Result<Deps<EngineTracker>, InitError> {
    let config = Config::from_env()?;
    let aws = storage::table::aws_config().await;
    let table = Table::from_env(&aws)?;
    let engine = engine_from(config, table, || aws_sdk_sqs::Client::new(&aws));
    Ok(Deps {
        tracker: EngineTracker::new(engine),
    })
}
