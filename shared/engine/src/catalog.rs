//! Programs and their products as the warm function sees them: read through a short-lived cache
//! (technical time, injected clock), as the redirect caches links. A program edit reaches new
//! events within the TTL; with a TTL of zero (the default of [`crate::Engine::new`]) every read
//! goes to the table.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rules::{Program, ProgramProduct};
use storage::{programs, SharedClock, StoreError, Table};

/// Entries older than the TTL are read again.
#[derive(Debug)]
struct TtlMap<K, V> {
    entries: Mutex<HashMap<K, (i64, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlMap<K, V> {
    fn new() -> Self {
        TtlMap {
            entries: Mutex::new(HashMap::new()),
        }
    }
    fn get(&self, k: &K, now_ms: i64, ttl_ms: i64) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        match entries.get(k) {
            Some((at, v)) if now_ms - at < ttl_ms => Some(v.clone()),
            _ => None,
        }
    }
    fn put(&self, k: K, v: V, now_ms: i64) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.insert(k, (now_ms, v));
        }
    }
}

/// The program catalog: programs, their products, and which programs a product is on.
#[derive(Debug)]
pub struct Catalog {
    ttl_ms: i64,
    programs: TtlMap<String, Option<Arc<Program>>>,
    products: TtlMap<String, Arc<Vec<ProgramProduct>>>,
    programs_of_product: TtlMap<String, Arc<Vec<String>>>,
}

impl Catalog {
    pub fn new(ttl: Duration) -> Self {
        Catalog {
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            programs: TtlMap::new(),
            products: TtlMap::new(),
            programs_of_product: TtlMap::new(),
        }
    }

    /// A program (`None`: unknown, remembered as unknown for the TTL too).
    pub async fn program(&self, t: &Table, id: &str) -> Result<Option<Arc<Program>>, StoreError> {
        read_through(&self.programs, self.ttl_ms, &t.clock, id, async {
            Ok(programs::get_program(t, id).await?.map(Arc::new))
        })
        .await
    }

    /// A program's products (with their overrides).
    pub async fn products(
        &self,
        t: &Table,
        program_id: &str,
    ) -> Result<Arc<Vec<ProgramProduct>>, StoreError> {
        read_through(&self.products, self.ttl_ms, &t.clock, program_id, async {
            Ok(Arc::new(programs::program_products(t, program_id).await?))
        })
        .await
    }

    /// The ids of the programs a product is on.
    pub async fn programs_of_product(
        &self,
        t: &Table,
        product_id: &str,
    ) -> Result<Arc<Vec<String>>, StoreError> {
        read_through(
            &self.programs_of_product,
            self.ttl_ms,
            &t.clock,
            product_id,
            async {
                Ok(Arc::new(
                    programs::programs_of_product(t, product_id).await?,
                ))
            },
        )
        .await
    }
}

/// The cached value of `key` if younger than the TTL, else `load`'s (then cached).
async fn read_through<V: Clone>(
    map: &TtlMap<String, V>,
    ttl_ms: i64,
    clock: &SharedClock,
    key: &str,
    load: impl std::future::Future<Output = Result<V, StoreError>>,
) -> Result<V, StoreError> {
    let now = clock.now_ms();
    if let Some(v) = map.get(&key.to_string(), now, ttl_ms) {
        return Ok(v);
    }
    let v = load.await?;
    map.put(key.to_string(), v.clone(), now);
    Ok(v)
}
