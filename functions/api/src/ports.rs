//! The narrow ports the handler sees, and their implementation over the engine. Tests put
//! failing or counting doubles behind the same traits.

use engine::attribution::{self, BindOutcome, BindRequest};
use engine::{Engine, EngineError};

/// What `POST /v1/track/lead` needs from the rest of the system.
#[async_trait::async_trait]
pub trait LeadTracker: Send + Sync {
    /// The program whose server-side tracking key this is (`None`: no program's).
    async fn program_for_key(&self, presented: &str) -> Result<Option<String>, EngineError>;
    /// Bind a customer (see `engine::attribution::bind`).
    async fn bind(&self, req: BindRequest) -> Result<BindOutcome, EngineError>;
}

/// The engine (and its table) as the API's backend.
#[derive(Debug, Clone)]
pub struct EngineTracker {
    pub engine: Engine,
}

impl EngineTracker {
    pub fn new(engine: Engine) -> Self {
        EngineTracker { engine }
    }
}

#[async_trait::async_trait]
impl LeadTracker for EngineTracker {
    async fn program_for_key(&self, presented: &str) -> Result<Option<String>, EngineError> {
        // Only the key's SHA-256 is stored and looked up.
        Ok(storage::programs::program_by_tracking_key(&self.engine.table, presented).await?)
    }

    async fn bind(&self, req: BindRequest) -> Result<BindOutcome, EngineError> {
        attribution::bind(&self.engine, req).await
    }
}
