//! Recording a click: the [`ClickRecorder`] port and its DynamoDB adapter, which is
//! `storage::links::record_click` (one `TransactWriteItems` per counted click: de-duplication
//! guard, click item, daily counter).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use storage::links::{self, Click, ClickOutcome};
use storage::Table;

use crate::directory::BackendError;

/// Port: store and count a click unless the same visitor clicked the same link within
/// `dedup_window_ms` (then the original click id is returned). Cloned into a background task, so
/// a slow write can outlive the response.
pub trait ClickRecorder: Clone + Send + Sync + 'static {
    fn record(
        &self,
        click: &Click,
        visitor_key: &str,
        dedup_window_ms: i64,
        cookie_days: u32,
    ) -> impl Future<Output = Result<ClickOutcome, BackendError>> + Send;
}

/// DynamoDB adapter. Counts its transactions.
#[derive(Debug, Clone)]
pub struct TableRecorder {
    table: Table,
    writes: Arc<AtomicU64>,
}

impl TableRecorder {
    pub fn new(table: Table) -> Self {
        TableRecorder {
            table,
            writes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Write transactions attempted so far (one per call of `record`).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }
}

impl ClickRecorder for TableRecorder {
    async fn record(
        &self,
        click: &Click,
        visitor_key: &str,
        dedup_window_ms: i64,
        cookie_days: u32,
    ) -> Result<ClickOutcome, BackendError> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(links::record_click(
            &self.table,
            click,
            visitor_key,
            dedup_window_ms,
            cookie_days,
        )
        .await?)
    }
}
