//! Counting AWS requests per operation (for the cost benchmarks: every request is billed).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// An SDK interceptor that counts requests sent, by `Service.Operation` (retries included),
/// and what they carried ([`Carried`]) for the cost models.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter(
    Arc<Mutex<BTreeMap<String, u64>>>,
    Arc<Mutex<BTreeMap<String, Carried>>>,
);

/// What the requests of one operation carried: the items they named (a transaction's actions,
/// a batch's keys or puts, else 1) and the bytes of their answers (a `Query`'s read units
/// follow its size: 4 KB per read unit).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Carried {
    pub items: u64,
    pub response_bytes: u64,
}

/// Items a DynamoDB request names: `TransactItems`, the keys or writes of `RequestItems`.
fn items_named(body: &[u8]) -> u64 {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 1;
    };
    if let Some(t) = v.get("TransactItems").and_then(|t| t.as_array()) {
        return t.len() as u64;
    }
    if let Some(r) = v.get("RequestItems").and_then(|r| r.as_object()) {
        return r
            .values()
            .map(|t| match t {
                serde_json::Value::Array(writes) => writes.len() as u64,
                other => other
                    .get("Keys")
                    .and_then(|k| k.as_array())
                    .map_or(0, |k| k.len() as u64),
            })
            .sum();
    }
    1
}

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| format!("{}.{}", m.service(), m.name()))
        .unwrap_or_else(|| "unknown".into())
}

impl RequestCounter {
    pub fn new() -> Self {
        Self::default()
    }
    /// Counts so far.
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
    pub fn total(&self) -> u64 {
        self.snapshot().values().sum()
    }
    pub fn reset(&self) {
        if let Ok(mut m) = self.0.lock() {
            m.clear();
        }
        if let Ok(mut m) = self.1.lock() {
            m.clear();
        }
    }
    /// What the requests so far carried, by operation.
    pub fn carried(&self) -> BTreeMap<String, Carried> {
        self.1.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// DynamoDB and SQS clients of `config` whose requests this counter counts.
    pub fn clients(
        &self,
        config: &aws_config::SdkConfig,
    ) -> (aws_sdk_dynamodb::Client, aws_sdk_sqs::Client) {
        let ddb = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::config::Builder::from(config)
                .interceptor(self.clone())
                .build(),
        );
        let sqs = aws_sdk_sqs::Client::from_conf(
            aws_sdk_sqs::config::Builder::from(config)
                .interceptor(self.clone())
                .build(),
        );
        (ddb, sqs)
    }
}

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let name = operation(cfg);
        let items = context.request().body().bytes().map_or(1, items_named);
        if let Ok(mut m) = self.1.lock() {
            m.entry(name.clone()).or_default().items += items;
        }
        if let Ok(mut m) = self.0.lock() {
            *m.entry(name).or_default() += 1;
        }
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let bytes = context
            .response()
            .body()
            .bytes()
            .map_or(0, |b| b.len() as u64);
        if let Ok(mut m) = self.1.lock() {
            m.entry(operation(cfg)).or_default().response_bytes += bytes;
        }
        Ok(())
    }
}
