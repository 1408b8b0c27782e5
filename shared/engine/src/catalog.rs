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

    fn now(&self, clock: &SharedClock) -> i64 {
        clock.now_ms()
    }

    /// A program (`None`: unknown).
    pub async fn program(&self, t: &Table, id: &str) -> Result<Option<Arc<Program>>, StoreError> {
        let now = self.now(&t.clock);
        if let Some(p) = self.programs.get(&id.to_string(), now, self.ttl_ms) {
            return Ok(p);
        }
        let p = programs::get_program(t, id).await?.map(Arc::new);
        self.programs.put(id.to_string(), p.clone(), now);
        Ok(p)
    }

    /// A program's products (with their overrides).
    pub async fn products(
        &self,
        t: &Table,
        program_id: &str,
    ) -> Result<Arc<Vec<ProgramProduct>>, StoreError> {
        let now = self.now(&t.clock);
        if let Some(p) = self.products.get(&program_id.to_string(), now, self.ttl_ms) {
            return Ok(p);
        }
        let p = Arc::new(programs::program_products(t, program_id).await?);
        self.products.put(program_id.to_string(), p.clone(), now);
        Ok(p)
    }

    /// The ids of the programs a product is on.
    pub async fn programs_of_product(
        &self,
        t: &Table,
        product_id: &str,
    ) -> Result<Arc<Vec<String>>, StoreError> {
        let now = self.now(&t.clock);
        if let Some(p) = self
            .programs_of_product
            .get(&product_id.to_string(), now, self.ttl_ms)
        {
            return Ok(p);
        }
        let p = Arc::new(programs::programs_of_product(t, product_id).await?);
        self.programs_of_product
            .put(product_id.to_string(), p.clone(), now);
        Ok(p)
    }
}
