//! Lambda bootstrap: read the job (`JOB`) and build the engine once, then run each scheduled
//! event.

use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_current_span(false)
        .without_time() // CloudWatch stamps every line
        .init();
    let (job, engine) = housekeeping::production().await?;
    tracing::info!(job = job.as_str(), "housekeeping initialised");
    let engine = &engine;
    run(service_fn(
        move |ev: LambdaEvent<
            aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value>,
        >| async move {
            housekeeping::handle(engine, job, ev.payload)
                .await
                .map_err(Error::from)
        },
    ))
    .await
}
