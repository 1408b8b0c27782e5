//! The redirect answers even when the click write fails or hangs: links come from a real (moto)
//! table, the recorder is a double that errors or sleeps.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redirect::{
    handle, redirect, BackendError, CachedDirectory, ClickRecorder, ClickRequest, Deps, Outcome,
    TableDirectory,
};
use storage::links::{Click, ClickOutcome};
use testkit::redirect::*;

#[derive(Clone, Default)]
struct Failing(Arc<AtomicU32>);

impl ClickRecorder for Failing {
    async fn record(
        &self,
        _: &Click,
        _: &str,
        _: i64,
        _: u32,
    ) -> Result<ClickOutcome, BackendError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(BackendError::Unavailable("DynamoDB is down".into()))
    }
}

#[derive(Clone)]
struct Slow(Duration);

impl ClickRecorder for Slow {
    async fn record(
        &self,
        _: &Click,
        _: &str,
        _: i64,
        _: u32,
    ) -> Result<ClickOutcome, BackendError> {
        tokio::time::sleep(self.0).await;
        Ok(ClickOutcome::Counted)
    }
}

async fn deps_with<R: ClickRecorder>(recorder: R) -> Deps<CachedDirectory<TableDirectory>, R> {
    let t = seeded_table().await;
    let (_, clock) = test_clock();
    let config = config();
    Deps {
        directory: CachedDirectory::new(
            TableDirectory::new(t),
            clock.clone(),
            config.cache_ttl,
            config.negative_cache_ttl,
        ),
        recorder,
        keys: keys(),
        config,
        clock,
    }
}

#[tokio::test]
async fn a_failed_write_still_redirects_with_a_valid_click_id() {
    let failing = Failing::default();
    let deps = deps_with(failing.clone()).await;
    let r = handle(&deps, request(&event("click.json"))).await.unwrap();
    assert_eq!(r.status(), 302);
    let id = click_param(&r).expect("click id despite the failure");
    let claims = keys().verify_click_id(&id).unwrap();
    assert!(claims.is_for_link("alice"));
    assert_eq!(claims.at_ms, T0);
    assert_eq!(cookie_value(&r, "ref_click").as_deref(), Some(id.as_str()));
    assert_eq!(failing.0.load(Ordering::SeqCst), 1);

    let (_, outcome) = redirect(
        &deps,
        &ClickRequest::from_http(&request(&with_ip(event("click.json"), "198.51.100.5"))),
    )
    .await;
    assert!(
        matches!(outcome, Outcome::Unrecorded { ref reason, .. } if reason.contains("DynamoDB is down")),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_slow_write_is_waited_for_only_briefly() {
    let deps = deps_with(Slow(Duration::from_secs(30))).await;
    // Warm the link cache so only the write is timed.
    handle(&deps, request(&event("head.json"))).await.unwrap();

    let started = Instant::now();
    let (r, outcome) = redirect(
        &deps,
        &ClickRequest::from_http(&request(&event("click.json"))),
    )
    .await;
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(250), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    assert_eq!(r.status(), 302);
    let id = click_param(&r).unwrap();
    assert!(keys().verify_click_id(&id).is_ok());
    assert!(matches!(outcome, Outcome::Unrecorded { ref click_id, .. } if *click_id == id));
}

#[tokio::test]
async fn a_fast_double_is_not_cut_short() {
    let deps = deps_with(Slow(Duration::from_millis(20))).await;
    let (_, outcome) = redirect(
        &deps,
        &ClickRequest::from_http(&request(&event("click.json"))),
    )
    .await;
    assert!(matches!(outcome, Outcome::Counted { .. }), "{outcome:?}");
}
