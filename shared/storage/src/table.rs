//! The table handle and the few generic operations everything else is built on.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{SharedClock, SystemClock};
use crate::error::StoreError;
use crate::keys::{self, Key};

pub type Item = HashMap<String, AttributeValue>;

/// How many times contention (TransactionConflict, throttling) is retried before giving up.
pub const MAX_ATTEMPTS: u32 = 8;

#[derive(Clone)]
pub struct Table {
    pub client: Client,
    pub name: String,
    pub clock: SharedClock,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table").field("name", &self.name).finish()
    }
}

/// Build the AWS SDK configuration once per process. `AWS_ENDPOINT_URL` (moto locally) is honoured
/// by the SDK itself.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

impl Table {
    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Table {
            client,
            name: name.into(),
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: SharedClock) -> Self {
        self.clock = clock;
        self
    }

    /// From the environment: `TABLE_NAME` (required).
    pub fn from_env(config: &aws_config::SdkConfig) -> Result<Self, StoreError> {
        let name = std::env::var("TABLE_NAME")
            .map_err(|_| StoreError::Config("TABLE_NAME is not set".into()))?;
        Ok(Table::new(Client::new(config), name))
    }

    pub fn key_item(key: &Key) -> Item {
        HashMap::from([
            (keys::PK.to_string(), AttributeValue::S(key.pk.clone())),
            (keys::SK.to_string(), AttributeValue::S(key.sk.clone())),
        ])
    }

    pub async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.name)
            .set_key(Some(Self::key_item(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(out.item)
    }

    pub async fn get_as<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<T>, StoreError> {
        match self.get(key).await? {
            None => Ok(None),
            Some(item) => Ok(Some(serde_dynamo::from_item(item)?)),
        }
    }

    /// Unconditional put (an overwrite is intended).
    pub async fn put(&self, item: Item) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .send()
            .await
            .map_err(StoreError::dynamo)?;
        Ok(())
    }

    /// Put only if no item has this key. A duplicate is `Err(AlreadyDone)`.
    pub async fn put_if_absent(&self, item: Item) -> Result<(), StoreError> {
        let r = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::AlreadyDone)
            }
            Err(e) => Err(StoreError::dynamo(e)),
        }
    }

    /// Put if `cond` holds (one standard write, 1 WRU per KB). A failed condition is
    /// `Err(ConditionFailed { label })`.
    pub async fn put_if(
        &self,
        item: Item,
        cond: &str,
        names: &[(&str, &str)],
        values: Vec<(&str, AttributeValue)>,
        label: &str,
    ) -> Result<(), StoreError> {
        let (names, values) = expression_maps(names, values);
        let r = self
            .client
            .put_item()
            .table_name(&self.name)
            .set_item(Some(item))
            .condition_expression(cond)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .send()
            .await;
        r.map(|_| ()).map_err(|e| {
            let failed = e
                .as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception());
            StoreError::conditional(e, label, failed)
        })
    }

    /// Query a partition (table or index) with an optional `begins_with` on the sort key, all pages.
    pub async fn query(&self, q: Query) -> Result<Vec<Item>, StoreError> {
        let mut out = vec![];
        let mut start: Option<Item> = None;
        loop {
            let (pk_attr, sk_attr) = match q.index {
                None => (keys::PK, keys::SK),
                Some(keys::GSI1) => (keys::GSI1PK, keys::GSI1SK),
                Some(_) => (keys::GSI2PK, keys::GSI2SK),
            };
            let mut values = HashMap::from([(":pk".to_string(), AttributeValue::S(q.pk.clone()))]);
            let mut cond = "#pk = :pk".to_string();
            let mut names = HashMap::from([("#pk".to_string(), pk_attr.to_string())]);
            match &q.sk {
                SkCondition::Any => {}
                SkCondition::BeginsWith(p) => {
                    cond.push_str(" AND begins_with(#sk, :sk)");
                    values.insert(":sk".into(), AttributeValue::S(p.clone()));
                    names.insert("#sk".into(), sk_attr.into());
                }
                SkCondition::LessOrEqual(p) => {
                    cond.push_str(" AND #sk <= :sk");
                    values.insert(":sk".into(), AttributeValue::S(p.clone()));
                    names.insert("#sk".into(), sk_attr.into());
                }
                SkCondition::Between(a, b) => {
                    cond.push_str(" AND #sk BETWEEN :a AND :b");
                    values.insert(":a".into(), AttributeValue::S(a.clone()));
                    values.insert(":b".into(), AttributeValue::S(b.clone()));
                    names.insert("#sk".into(), sk_attr.into());
                }
            }
            let mut req = self
                .client
                .query()
                .table_name(&self.name)
                .key_condition_expression(cond)
                .set_expression_attribute_names(Some(names))
                .set_expression_attribute_values(Some(values))
                .scan_index_forward(!q.descending)
                .set_exclusive_start_key(start.take());
            if let Some(i) = q.index {
                req = req.index_name(i);
            } else {
                req = req.consistent_read(true);
            }
            if let Some(l) = q.limit {
                req = req.limit(l.saturating_sub(out.len()).max(1) as i32);
            }
            let page = req.send().await.map_err(StoreError::dynamo)?;
            out.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            let full = q.limit.is_some_and(|l| out.len() >= l);
            if start.is_none() || full {
                break;
            }
        }
        Ok(out)
    }

    pub async fn query_as<T: DeserializeOwned>(&self, q: Query) -> Result<Vec<T>, StoreError> {
        self.query(q)
            .await?
            .into_iter()
            .map(|i| serde_dynamo::from_item(i).map_err(StoreError::from))
            .collect()
    }

    /// Read several items in one `BatchGetItem` (strongly consistent), by key; keys that have no
    /// item are absent from the answer. At most 100 distinct keys per request: larger sets are
    /// split; unprocessed keys are retried with backoff.
    pub async fn batch_get(&self, keys_wanted: &[Key]) -> Result<HashMap<Key, Item>, StoreError> {
        let mut distinct: Vec<&Key> = keys_wanted.iter().collect();
        distinct.sort();
        distinct.dedup();
        let mut out = HashMap::new();
        for chunk in distinct.chunks(100) {
            let pending: Vec<Item> = chunk.iter().map(|k| Self::key_item(k)).collect();
            let found = self
                .until_processed(pending, |keys| async move {
                    let ka = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                        .set_keys(Some(keys))
                        .consistent_read(true)
                        .build()
                        .map_err(StoreError::request_build)?;
                    let page = self
                        .client
                        .batch_get_item()
                        .request_items(&self.name, ka)
                        .send()
                        .await
                        .map_err(StoreError::dynamo)?;
                    let items = page
                        .responses
                        .and_then(|mut r| r.remove(&self.name))
                        .unwrap_or_default();
                    let left = page
                        .unprocessed_keys
                        .and_then(|mut u| u.remove(&self.name))
                        .map(|ka| ka.keys)
                        .unwrap_or_default();
                    Ok((left, items))
                })
                .await?;
            for item in found {
                if let (Some(pk), Some(sk)) = (item.s(keys::PK), item.s(keys::SK)) {
                    out.insert(Key::new(pk, sk), item);
                }
            }
        }
        Ok(out)
    }

    /// [`Table::batch_get`] deserialised: the items found, in no particular order.
    pub async fn batch_get_as<T: DeserializeOwned>(
        &self,
        keys_wanted: &[Key],
    ) -> Result<Vec<T>, StoreError> {
        self.batch_get(keys_wanted)
            .await?
            .into_values()
            .map(|item| serde_dynamo::from_item(item).map_err(StoreError::from))
            .collect()
    }

    /// Put several items, unconditionally, with `BatchWriteItem` (25 per request; unprocessed
    /// items are retried with backoff). For overwrites that need no condition.
    pub async fn batch_put(&self, items: Vec<Item>) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
        let mut requests = vec![];
        for item in items {
            requests.push(
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(item))
                            .build()
                            .map_err(StoreError::request_build)?,
                    )
                    .build(),
            );
        }
        for chunk in requests.chunks(25) {
            self.until_processed(chunk.to_vec(), |batch| async move {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.name, batch)
                    .send()
                    .await
                    .map_err(StoreError::dynamo)?;
                let left = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.name))
                    .unwrap_or_default();
                Ok((left, vec![]))
            })
            .await?;
        }
        Ok(())
    }

    /// Send `pending` with `send` until nothing is left unprocessed (batch requests answer what
    /// they could not do under throttling), with backoff; collects what each answer returned.
    async fn until_processed<T, F, Fut>(
        &self,
        mut pending: Vec<T>,
        send: F,
    ) -> Result<Vec<Item>, StoreError>
    where
        F: Fn(Vec<T>) -> Fut,
        Fut: std::future::Future<Output = Result<(Vec<T>, Vec<Item>), StoreError>>,
    {
        let mut got = vec![];
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            if attempt > MAX_ATTEMPTS {
                return Err(StoreError::Contention { attempts: attempt });
            }
            if attempt > 1 {
                self.backoff(attempt - 1).await;
            }
            let (left, items) = send(std::mem::take(&mut pending)).await?;
            got.extend(items);
            pending = left;
        }
        Ok(got)
    }

    /// Sleep before retry `attempt` (1-based) on the injected clock: [`backoff_delay`] with a
    /// jitter drawn from the operating system's random source, so writers that collided once do
    /// not collide again in step (two processes read the same clock).
    pub(crate) async fn backoff(&self, attempt: u32) {
        let mut b = [0u8; 2];
        // Without randomness (never seen on Lambda) the delay is the cap: still correct, slower.
        let draw = match getrandom::fill(&mut b) {
            Ok(()) => u16::from_le_bytes(b),
            Err(_) => u16::MAX,
        };
        self.clock.sleep(backoff_delay(attempt, draw)).await;
    }
}

/// "Full jitter" backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"): a delay drawn
/// uniformly from `[base/2, base]`, where `base = 10 ms · 2^attempt`, capped at 500 ms. `draw`
/// is a uniform random number; half the base is kept so a retry never comes back at once.
pub fn backoff_delay(attempt: u32, draw: u16) -> Duration {
    let base = (10u64 << attempt.min(6)).min(500);
    let half = base / 2;
    let spread = (half + 1) * u64::from(draw) / (u64::from(u16::MAX) + 1);
    Duration::from_millis(half + spread)
}

#[derive(Debug, Clone)]
pub enum SkCondition {
    Any,
    BeginsWith(String),
    LessOrEqual(String),
    Between(String, String),
}

/// A key-condition query; nothing in this crate scans.
#[derive(Debug, Clone)]
pub struct Query {
    pub index: Option<&'static str>,
    pub pk: String,
    pub sk: SkCondition,
    pub descending: bool,
    pub limit: Option<usize>,
}

impl Query {
    pub fn table(pk: impl Into<String>) -> Self {
        Query {
            index: None,
            pk: pk.into(),
            sk: SkCondition::Any,
            descending: false,
            limit: None,
        }
    }
    pub fn gsi1(pk: impl Into<String>) -> Self {
        Query {
            index: Some(keys::GSI1),
            ..Query::table(pk)
        }
    }
    pub fn gsi2(pk: impl Into<String>) -> Self {
        Query {
            index: Some(keys::GSI2),
            ..Query::table(pk)
        }
    }
    pub fn begins_with(mut self, p: impl Into<String>) -> Self {
        self.sk = SkCondition::BeginsWith(p.into());
        self
    }
    pub fn sk_le(mut self, p: impl Into<String>) -> Self {
        self.sk = SkCondition::LessOrEqual(p.into());
        self
    }
    pub fn between(mut self, a: impl Into<String>, b: impl Into<String>) -> Self {
        self.sk = SkCondition::Between(a.into(), b.into());
        self
    }
    pub fn descending(mut self) -> Self {
        self.descending = true;
        self
    }
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
}

/// Serialise an entity and add its key (and optional index keys).
pub fn to_item<T: Serialize>(entity: &T, key: &Key) -> Result<Item, StoreError> {
    let mut item: Item = serde_dynamo::to_item(entity)?;
    item.insert(keys::PK.into(), AttributeValue::S(key.pk.clone()));
    item.insert(keys::SK.into(), AttributeValue::S(key.sk.clone()));
    Ok(item)
}

pub trait ItemExt {
    fn with_gsi1(self, k: (String, String)) -> Self;
    fn with_gsi2(self, k: (String, String)) -> Self;
    fn with_ttl(self, epoch_seconds: i64) -> Self;
    fn with_s(self, name: &str, v: impl Into<String>) -> Self;
    fn with_n(self, name: &str, v: i64) -> Self;
    fn s(&self, name: &str) -> Option<&str>;
    fn n(&self, name: &str) -> Option<i64>;
}

impl ItemExt for Item {
    fn with_gsi1(mut self, (pk, sk): (String, String)) -> Self {
        self.insert(keys::GSI1PK.into(), AttributeValue::S(pk));
        self.insert(
            keys::GSI1SK.into(),
            AttributeValue::S(if sk.is_empty() { "-".into() } else { sk }),
        );
        self
    }
    fn with_gsi2(mut self, (pk, sk): (String, String)) -> Self {
        self.insert(keys::GSI2PK.into(), AttributeValue::S(pk));
        self.insert(keys::GSI2SK.into(), AttributeValue::S(sk));
        self
    }
    fn with_ttl(mut self, epoch_seconds: i64) -> Self {
        self.insert(
            keys::TTL_ATTR.into(),
            AttributeValue::N(epoch_seconds.to_string()),
        );
        self
    }
    fn with_s(mut self, name: &str, v: impl Into<String>) -> Self {
        self.insert(name.into(), AttributeValue::S(v.into()));
        self
    }
    fn with_n(mut self, name: &str, v: i64) -> Self {
        self.insert(name.into(), AttributeValue::N(v.to_string()));
        self
    }
    fn s(&self, name: &str) -> Option<&str> {
        self.get(name)
            .and_then(|v| v.as_s().ok())
            .map(String::as_str)
    }
    fn n(&self, name: &str) -> Option<i64> {
        self.get(name)
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
    }
}

pub(crate) type NameMap = Option<HashMap<String, String>>;
pub(crate) type ValueMap = Option<HashMap<String, AttributeValue>>;

/// Expression attribute names and values as the SDK wants them (`None` when empty).
pub(crate) fn expression_maps(
    names: &[(&str, &str)],
    values: Vec<(&str, AttributeValue)>,
) -> (NameMap, ValueMap) {
    let names: HashMap<String, String> = names
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let values: HashMap<String, AttributeValue> = values
        .into_iter()
        .map(|(a, b)| (a.to_string(), b))
        .collect();
    (
        (!names.is_empty()).then_some(names),
        (!values.is_empty()).then_some(values),
    )
}

#[cfg(test)]
mod tests {
    use super::backoff_delay;
    use std::time::Duration;

    #[test]
    fn backoff_is_drawn_between_half_the_base_and_the_base_capped_at_500_ms() {
        // (attempt, draw, expected ms): base = 10 ms · 2^attempt, at most 500.
        let cases = [
            (1, 0, 10),
            (1, u16::MAX, 20),
            (3, 0, 40),
            (3, u16::MAX, 80),
            (3, 1 << 15, 60),
            (6, 0, 250),
            (6, u16::MAX, 500),
            (20, u16::MAX, 500),
        ];
        for (attempt, draw, ms) in cases {
            assert_eq!(
                backoff_delay(attempt, draw),
                Duration::from_millis(ms),
                "attempt {attempt}, draw {draw}"
            );
        }
    }
}
