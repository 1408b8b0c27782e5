//! Crash injection for the payout run's fault tests: a shared step counter whose armed step
//! takes effect and then fails, as if the process died right after it, and an engine whose
//! DynamoDB writes count as steps.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use engine::Engine;
use storage::ManualClock;

/// A shared step counter: the `n`-th step (a DynamoDB write or a rail call) takes effect and
/// then fails, as if the process died right after it.
#[derive(Clone, Default)]
pub struct Steps {
    pub count: Arc<AtomicI64>,
    fail_at: Arc<AtomicI64>,
}

impl Steps {
    /// True when this step is the one that fails (after it took effect).
    pub fn step(&self) -> bool {
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        n == self.fail_at.load(Ordering::SeqCst)
    }
    pub fn arm(&self, n: i64) {
        self.count.store(0, Ordering::SeqCst);
        self.fail_at.store(n, Ordering::SeqCst);
    }
    pub fn disarm(&self) {
        self.fail_at.store(0, Ordering::SeqCst);
    }
}

/// Fails a DynamoDB write after DynamoDB performed it (the client sees an error), at the
/// shared step counter's armed step.
#[derive(Debug, Clone)]
pub struct FailAfterWrite(pub Steps);

impl std::fmt::Debug for Steps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Steps")
    }
}

impl aws_smithy_runtime_api::client::interceptors::Intercept for FailAfterWrite {
    fn name(&self) -> &'static str {
        "FailAfterWrite"
    }
    fn modify_before_completion(
        &self,
        _ctx: &mut aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextMut<'_>,
        _rc: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let op = cfg
            .load::<aws_smithy_runtime_api::client::orchestrator::Metadata>()
            .map(|m| m.name().to_string())
            .unwrap_or_default();
        let write = matches!(
            op.as_str(),
            "PutItem" | "UpdateItem" | "DeleteItem" | "TransactWriteItems" | "BatchWriteItem"
        );
        if write && self.0.step() {
            return Err(format!("process died after {op}").into());
        }
        Ok(())
    }
}

impl Steps {
    /// Steps taken since armed.
    pub fn taken(&self) -> i64 {
        self.count.load(Ordering::SeqCst)
    }
}

/// An engine over `engine`'s table whose DynamoDB writes are steps of `steps`, on `clock`.
pub fn faulty_engine(engine: &Engine, steps: &Steps, clock: &ManualClock) -> Engine {
    let client = aws_sdk_dynamodb::Client::from_conf(
        engine
            .table
            .client
            .config()
            .to_builder()
            .interceptor(FailAfterWrite(steps.clone()))
            .build(),
    );
    Engine::new(
        storage::Table::new(client, engine.table.name.clone()).with_clock(Arc::new(clock.clone())),
        engine.keys.clone(),
    )
}

/// The payout queue as a list: what the schedule sent, taken by the test that works it.
#[derive(Default)]
pub struct RecordingQueue(std::sync::Mutex<Vec<engine::payout::ChunkMessage>>);

#[async_trait::async_trait]
impl engine::payout::ChunkQueue for RecordingQueue {
    async fn send(
        &self,
        chunks: &[engine::payout::ChunkMessage],
    ) -> Result<(), engine::EngineError> {
        self.lock().extend_from_slice(chunks);
        Ok(())
    }
}

impl RecordingQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<engine::payout::ChunkMessage>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
    /// Everything sent so far (the queue is empty after).
    pub fn take(&self) -> Vec<engine::payout::ChunkMessage> {
        std::mem::take(&mut *self.lock())
    }
    /// A message whose worker failed goes back (SQS redelivers it).
    pub fn put_back(&self, m: engine::payout::ChunkMessage) {
        self.lock().push(m);
    }
}
