//! Lambda bootstrap: build clients, secrets and the engine once, then serve Stripe's webhooks
//! and the sale feed.

use std::sync::Arc;
use std::time::Instant;

use lambda_http::{run, service_fn, Error};
use sale_webhook::config::{self, SecretSource, TrackingKeySource};
use sale_webhook::engine_adapter::EngineSink;
use sale_webhook::policy::EventPolicy;
use sale_webhook::{handle, Deps};
use storage::keys::Key;
use storage::{SharedClock, SystemClock, Table};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(true)
        .without_time() // CloudWatch stamps every line
        .init();

    let started = Instant::now();
    let aws = storage::table::aws_config().await;
    let clock: SharedClock = Arc::new(SystemClock);
    let table = Table::from_env(&aws)?.with_clock(clock.clone());
    let secret_source = SecretSource::from_env()?;
    let key_source = TrackingKeySource::from_env()?;

    // The two SSM reads and the DynamoDB warm-up (TLS handshake: the first request would pay
    // for it otherwise) run together. A failed warm-up is not fatal.
    let warm_up = async {
        if let Err(e) = table.get(&Key::new("WARMUP", "WARMUP")).await {
            tracing::warn!(error = %e, "warm-up read failed");
        }
    };
    let policy = EventPolicy::from_env()?;
    let (secrets, keys, lines, feed, ()) = tokio::join!(
        config::load_secrets(&secret_source, &aws),
        config::load_tracking_keys(&key_source, &aws),
        config::load_stripe_api(|k| std::env::var(k).ok(), &aws),
        config::load_feed_sources(|k| std::env::var(k).ok(), &aws),
        warm_up
    );
    let (secrets, keys, lines, feed) = (secrets?, keys?, lines?, feed?);

    // Each message kind to its consumer's queue (EMAIL_QUEUE_URL, CRM_SYNC_QUEUE_URL).
    let engine = engine::Engine::new(table, keys)
        .with_program_cache(engine::PROGRAM_CACHE_TTL)
        .with_outbox(
            aws_sdk_sqs::Client::new(&aws),
            storage::outbox::Routes::from_env(),
        );
    let deps = Deps {
        sink: EngineSink::new(engine),
        secrets,
        clock,
        policy,
        lines,
        feed,
    };
    tracing::info!(
        init_ms = started.elapsed().as_millis() as u64,
        signing_secrets = deps.secrets.len(),
        stripe_mode = ?deps.policy.mode,
        stripe_api = deps.lines.is_some(),
        sale_feed_sources = ?deps.feed.names().collect::<Vec<_>>(),
        "sale-webhook initialised"
    );

    let deps = &deps;
    run(service_fn(move |req| handle(deps, req))).await
}
