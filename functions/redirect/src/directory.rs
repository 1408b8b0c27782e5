//! Finding a link and the program settings a redirect needs: the [`LinkDirectory`] port, its
//! DynamoDB adapter ([`TableDirectory`], two GetItems on a miss) and an in-memory cache in front
//! of any directory ([`CachedDirectory`]), so a warm function that saw the link recently makes no
//! DynamoDB read at all.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use storage::links::{self, Link, LinkStatus};
use storage::{SharedClock, StoreError, Table};

/// Why a lookup or a write could not be done.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Unavailable(String),
}

/// What a redirect needs to know about a link's program (a narrow view of `rules::Program`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectProgram {
    pub program_id: String,
    /// Takes clicks (`rules::ProgramStatus::Active`).
    pub active: bool,
    pub default_destination: String,
    /// Hosts a deep link may go to: the default destination's host plus the program's
    /// `allowed_hosts` (`rules::Program::deep_link_hosts`).
    pub deep_link_hosts: rules::DeepLinkHosts,
    /// Cookie window in days: click item TTL and cookie `Max-Age`.
    pub cookie_days: u32,
}

impl From<&rules::Program> for RedirectProgram {
    fn from(p: &rules::Program) -> Self {
        RedirectProgram {
            program_id: p.id.clone(),
            active: p.status == rules::ProgramStatus::Active,
            default_destination: p.default_destination.clone(),
            deep_link_hosts: p.deep_link_hosts(),
            cookie_days: p.cookie_days,
        }
    }
}

/// A link with its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkWithProgram {
    pub link: Link,
    pub program: RedirectProgram,
}

impl LinkWithProgram {
    /// Counting clicks: the link is active and its program is not paused.
    pub fn is_live(&self) -> bool {
        self.link.status == LinkStatus::Active && self.program.active
    }

    /// Where the link goes without a deep link: the link's own destination when it is on the
    /// program's allow-list, otherwise the program's default.
    pub fn default_destination(&self) -> String {
        tracking::resolve_destination(
            &self.program.default_destination,
            self.link.destination.as_deref(),
            &self.program.deep_link_hosts,
        )
    }
}

/// Port: the link behind a code, with its program. `Ok(None)` for unknown codes and links whose
/// program does not exist.
pub trait LinkDirectory: Send + Sync {
    fn link(
        &self,
        code: &str,
    ) -> impl Future<Output = Result<Option<Arc<LinkWithProgram>>, BackendError>> + Send;

    /// A program's redirect settings by id (`GET /t.js?program=`). Directories that only know
    /// links find none.
    fn program(
        &self,
        _program_id: &str,
    ) -> impl Future<Output = Result<Option<Arc<RedirectProgram>>, BackendError>> + Send {
        async { Ok(None) }
    }
}

/// DynamoDB adapter: `GetItem` of the link, then `GetItem` of its program. Counts its reads.
#[derive(Debug)]
pub struct TableDirectory {
    table: Table,
    reads: AtomicU64,
}

impl TableDirectory {
    pub fn new(table: Table) -> Self {
        TableDirectory {
            table,
            reads: AtomicU64::new(0),
        }
    }

    /// DynamoDB reads made so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
    }

    /// One cheap read (of a key that never exists) so the TLS connection and credentials are
    /// ready before the first click.
    pub async fn warm_up(&self) -> Result<(), BackendError> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.table
            .get(&storage::keys::link("-warm-up-"))
            .await
            .map(|_| ())
            .map_err(BackendError::from)
    }
}

impl LinkDirectory for TableDirectory {
    async fn link(&self, code: &str) -> Result<Option<Arc<LinkWithProgram>>, BackendError> {
        if !links::valid_code(code) {
            return Ok(None);
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        let Some(link) = links::get_link(&self.table, code).await? else {
            return Ok(None);
        };
        self.reads.fetch_add(1, Ordering::Relaxed);
        let Some(program) = storage::programs::get_program(&self.table, &link.program_id).await?
        else {
            tracing::warn!(code, program_id = %link.program_id, "link of a missing program");
            return Ok(None);
        };
        Ok(Some(Arc::new(LinkWithProgram {
            program: RedirectProgram::from(&program),
            link,
        })))
    }

    async fn program(
        &self,
        program_id: &str,
    ) -> Result<Option<Arc<RedirectProgram>>, BackendError> {
        if !storage::keys::safe_id(program_id) || program_id.len() > 64 {
            return Ok(None);
        }
        self.reads.fetch_add(1, Ordering::Relaxed);
        Ok(storage::programs::get_program(&self.table, program_id)
            .await?
            .map(|p| Arc::new(RedirectProgram::from(&p))))
    }
}

/// Most entries kept; when full, expired entries are dropped, then everything.
pub const CACHE_MAX_ENTRIES: usize = 10_000;

type Entry = (i64, Option<Arc<LinkWithProgram>>);
type ProgramEntry = (i64, Option<Arc<RedirectProgram>>);

/// In-memory cache in front of a directory, on the injected technical clock. Found links live
/// `ttl`, unknown codes `negative_ttl`; errors are never cached. A Lambda execution environment
/// handles one request at a time, so there is no stampede to guard against.
pub struct CachedDirectory<D> {
    inner: D,
    clock: SharedClock,
    ttl_ms: i64,
    negative_ttl_ms: i64,
    entries: Mutex<HashMap<String, Entry>>,
    /// Programs by id, for `GET /t.js` (same TTLs).
    programs: Mutex<HashMap<String, ProgramEntry>>,
}

impl<D> CachedDirectory<D> {
    pub fn new(inner: D, clock: SharedClock, ttl: Duration, negative_ttl: Duration) -> Self {
        CachedDirectory {
            inner,
            clock,
            ttl_ms: ttl.as_millis() as i64,
            negative_ttl_ms: negative_ttl.as_millis() as i64,
            entries: Mutex::new(HashMap::new()),
            programs: Mutex::new(HashMap::new()),
        }
    }

    pub fn inner(&self) -> &D {
        &self.inner
    }

    fn cached(&self, code: &str, now: i64) -> Option<Option<Arc<LinkWithProgram>>> {
        let entries = self.entries.lock().ok()?;
        match entries.get(code) {
            Some((expires, v)) if now < *expires => Some(v.clone()),
            _ => None,
        }
    }

    fn store(&self, code: &str, now: i64, v: Option<Arc<LinkWithProgram>>) {
        let ttl = if v.is_some() {
            self.ttl_ms
        } else {
            self.negative_ttl_ms
        };
        if ttl <= 0 {
            return;
        }
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CACHE_MAX_ENTRIES {
                entries.retain(|_, (expires, _)| now < *expires);
                if entries.len() >= CACHE_MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(code.to_string(), (now + ttl, v));
        }
    }
}

impl<D: LinkDirectory> LinkDirectory for CachedDirectory<D> {
    async fn link(&self, code: &str) -> Result<Option<Arc<LinkWithProgram>>, BackendError> {
        let now = self.clock.now_ms();
        if let Some(hit) = self.cached(code, now) {
            return Ok(hit);
        }
        let found = self.inner.link(code).await?;
        self.store(code, self.clock.now_ms(), found.clone());
        Ok(found)
    }

    async fn program(
        &self,
        program_id: &str,
    ) -> Result<Option<Arc<RedirectProgram>>, BackendError> {
        let now = self.clock.now_ms();
        if let Ok(programs) = self.programs.lock() {
            if let Some((expires, v)) = programs.get(program_id) {
                if now < *expires {
                    return Ok(v.clone());
                }
            }
        }
        let found = self.inner.program(program_id).await?;
        let ttl = if found.is_some() {
            self.ttl_ms
        } else {
            self.negative_ttl_ms
        };
        if ttl > 0 {
            if let Ok(mut programs) = self.programs.lock() {
                if programs.len() >= CACHE_MAX_ENTRIES {
                    programs.clear();
                }
                programs.insert(
                    program_id.to_string(),
                    (self.clock.now_ms() + ttl, found.clone()),
                );
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rules::{CommissionPlan, Currency, Duration, Program, Reward};
    use std::collections::BTreeMap;

    const DEFAULT: &str = "https://example.com/pricing";

    fn entry(allowed_hosts: &[&str], destination: Option<&str>) -> LinkWithProgram {
        let plan = CommissionPlan::new(
            Reward::Flat {
                amounts: BTreeMap::from([(Currency::USD, 1_000)]),
            },
            Duration::Lifetime,
        );
        let mut p = Program::new("demo", "Demo", plan, DEFAULT);
        p.allowed_hosts = allowed_hosts.iter().map(|h| h.to_string()).collect();
        p.validate().expect("partnerctl apply accepts this program");
        LinkWithProgram {
            link: Link {
                code: "alice".into(),
                partner_id: "alice".into(),
                program_id: "demo".into(),
                status: LinkStatus::Active,
                destination: destination.map(str::to_string),
            },
            program: RedirectProgram::from(&p),
        }
    }

    /// A wildcard entry is honoured for a link's own destination and for `?to=` alike (the
    /// handler resolves `?to=` against the same hosts), and look-alikes fall back.
    #[test]
    fn wildcard_allow_list() {
        let cases: &[(&str, bool)] = &[
            ("https://a.partner-shop.com/x", true),
            ("https://a.b.partner-shop.com/x", true),
            ("https://example.com/blog", true),
            ("https://partner-shop.com/", false),
            ("https://partner-shop.com.evil.com/", false),
            ("https://a.partner-shop.com@evil.com/", false),
            ("//evil.com", false),
            ("https:/\\evil.com", false),
        ];
        for (to, honoured) in cases {
            let want = if *honoured { *to } else { DEFAULT };
            let e = entry(&["*.partner-shop.com"], Some(to));
            assert_eq!(e.default_destination(), want, "link destination {to}");
            let e = entry(&["*.partner-shop.com"], None);
            let got = tracking::resolve_destination(
                &e.default_destination(),
                Some(to),
                &e.program.deep_link_hosts,
            );
            assert_eq!(got, want, "?to={to}");
        }
    }
}
