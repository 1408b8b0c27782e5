//! Programs, their versions and products as the warm function sees them: read through a
//! short-lived cache (technical time, injected clock), as the redirect caches links. A program
//! edit reaches new events within the TTL; with a TTL of zero (the default of
//! [`crate::Engine::new`]) every read goes to the table.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rules::plan::InvoiceFacts;
use rules::{Program, ProgramVersions};
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

/// The program catalog: programs, their versions (with their products), and which programs a
/// product is on.
#[derive(Debug)]
pub struct Catalog {
    ttl_ms: i64,
    programs: TtlMap<String, Option<Arc<Program>>>,
    versions: TtlMap<String, Option<Arc<ProgramVersions>>>,
    programs_of_product: TtlMap<String, Arc<Vec<String>>>,
}

impl Catalog {
    pub fn new(ttl: Duration) -> Self {
        Catalog {
            ttl_ms: i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX),
            programs: TtlMap::new(),
            versions: TtlMap::new(),
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

    /// A program's versions, each with its products and their overrides (`None`: unknown), in
    /// one Query of the program's partition.
    pub async fn versions(
        &self,
        t: &Table,
        program_id: &str,
    ) -> Result<Option<Arc<ProgramVersions>>, StoreError> {
        read_through(&self.versions, self.ttl_ms, &t.clock, program_id, async {
            Ok(programs::program_versions(t, program_id)
                .await?
                .map(Arc::new))
        })
        .await
    }

    /// The ids of the programs a product was ever on (a removed product stays in the index, so
    /// that its late invoices find the program; the version in force at their paid time says
    /// whether they earn: [`ProgramVersions::earns_on_any_at`]).
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

    /// The programs an invoice may earn in: those its products are on in the version in force
    /// at its paid time. A late invoice of a product removed since finds the program (the
    /// index keeps the product); an invoice paid after the removal does not.
    pub async fn programs_of_invoice(
        &self,
        t: &Table,
        facts: &InvoiceFacts,
    ) -> Result<BTreeSet<String>, StoreError> {
        // One lookup per distinct product (an invoice often has several lines of one product).
        let products: BTreeSet<&str> = facts
            .lines
            .iter()
            .filter_map(|l| l.product_id.as_deref())
            .filter(|p| storage::keys::safe_id(p))
            .collect();
        let mut indexed = BTreeSet::new();
        for p in &products {
            indexed.extend(self.programs_of_product(t, p).await?.iter().cloned());
        }
        let mut out = BTreeSet::new();
        for id in indexed {
            if let Some(v) = self.versions(t, &id).await? {
                if v.earns_on_any_at(products.iter().copied(), facts.paid_at) {
                    out.insert(id);
                }
            }
        }
        Ok(out)
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
