//! Lambda bootstrap: build the configuration, clients and engine once, then serve requests.

use std::time::Instant;

use lambda_http::{run, service_fn, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line
        .init();

    let started = Instant::now();
    let deps = api::production_deps().await?;
    tracing::info!(
        init_ms = started.elapsed().as_millis() as u64,
        outbox = deps.tracker.engine.outbox.is_some(),
        "api initialised"
    );

    let deps = &deps;
    run(service_fn(move |req| api::handle(deps, req))).await
}
