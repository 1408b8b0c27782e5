//! The warm function's program cache: reads within the TTL come from memory, an edit of the
//! program is seen once the TTL has passed on the technical clock, never before.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use engine::Engine;
use rules::program::{Duration, Reward};
use storage::ManualClock;
use testkit::catalogue;
use testkit::engine::*;

#[tokio::test]
async fn programs_are_cached_for_the_ttl_of_the_technical_clock() {
    let w = World::new().await;
    let p = program("demo", pct("0.25"), Duration::Lifetime, None);
    w.seed(&p, &["prod_demo"]).await;
    let clock = ManualClock::at(T0);
    let table = w.engine.table.clone().with_clock(Arc::new(clock.clone()));
    let cached = Engine::new(table.clone(), w.engine.keys.clone())
        .with_program_cache(StdDuration::from_secs(60));
    let uncached = Engine::new(table.clone(), w.engine.keys.clone());

    let first = cached
        .catalog
        .program(&table, "demo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.cookie_days, p.cookie_days);
    assert_eq!(
        *cached
            .catalog
            .programs_of_product(&table, "prod_demo")
            .await
            .unwrap(),
        vec!["demo".to_string()]
    );

    // The merchant edits the program.
    let mut edited = p.clone();
    edited.cookie_days = p.cookie_days + 30;
    edited.plan.reward = Reward::Percentage {
        rate: "0.30".parse().unwrap(),
    };
    catalogue::put_program(&table, &edited).await;

    // Within the TTL the warm function still sees the program it read; a fresh read sees the edit.
    clock.advance(StdDuration::from_secs(59));
    let still = cached
        .catalog
        .program(&table, "demo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(still.cookie_days, p.cookie_days);
    let fresh = uncached
        .catalog
        .program(&table, "demo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fresh.cookie_days, edited.cookie_days);

    // After the TTL the cache reads again.
    clock.advance(StdDuration::from_secs(1));
    let after = cached
        .catalog
        .program(&table, "demo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.cookie_days, edited.cookie_days);
    assert_eq!(after.plan.reward, edited.plan.reward);

    // An unknown program is remembered as unknown for the TTL too, then looked up again.
    assert!(cached
        .catalog
        .program(&table, "later")
        .await
        .unwrap()
        .is_none());
    catalogue::put_program(
        &table,
        &program("later", pct("0.1"), Duration::Lifetime, None),
    )
    .await;
    assert!(cached
        .catalog
        .program(&table, "later")
        .await
        .unwrap()
        .is_none());
    clock.advance(StdDuration::from_secs(60));
    assert!(cached
        .catalog
        .program(&table, "later")
        .await
        .unwrap()
        .is_some());
}
