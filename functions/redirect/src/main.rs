//! Lambda bootstrap: build clients and settings once, then serve clicks.

use std::time::Instant;

use lambda_http::{run, service_fn, Error};
use redirect::{handle, production_deps};

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
    let deps = production_deps().await?;
    let built_ms = started.elapsed().as_millis() as u64;
    let mut warm_up_ms = 0;
    if deps.config.warm_up {
        let t = Instant::now();
        // A failure here is not fatal: the first click simply pays for the handshake.
        if let Err(e) = deps.directory.inner().warm_up().await {
            tracing::warn!(error = %e, "warm-up read failed");
        }
        warm_up_ms = t.elapsed().as_millis() as u64;
    }
    tracing::info!(built_ms, warm_up_ms, "redirect initialised");

    let deps = &deps;
    run(service_fn(move |req| handle(deps, req))).await
}
