//! Lambda bootstrap: read the job (`JOB`), build the engine (and the schedule's queue client)
//! once, then serve the schedule's EventBridge events or the worker's SQS batches.

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
    let deps = payout::production().await?;
    tracing::info!(job = deps.job.as_str(), rails = ?deps.rails, "payout initialised");
    let deps = &deps;
    match (deps.job, &deps.queue) {
        (payout::Job::Schedule, Some(queue)) => {
            run(service_fn(
                move |ev: LambdaEvent<
                    aws_lambda_events::eventbridge::EventBridgeEvent<serde_json::Value>,
                >| async move {
                    payout::schedule(&deps.engine, queue, &ev.payload, &ev.context.request_id)
                        .await
                        .map_err(Error::from)
                },
            ))
            .await
        }
        (payout::Job::Schedule, None) => Err("the schedule has no payout queue".into()),
        (payout::Job::Worker, _) => {
            // Items whose method no configured rail carries wait approved for the manual
            // export (`partnerctl payouts export`).
            let rails = &deps.rails;
            run(service_fn(
                move |ev: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| async move {
                    Ok::<_, Error>(payout::work(&deps.engine, rails, ev.payload).await)
                },
            ))
            .await
        }
        (payout::Job::Poll, _) => {
            let rails = &deps.rails;
            run(service_fn(
                move |ev: LambdaEvent<serde_json::Value>| async move {
                    payout::poll(&deps.engine, rails, &ev.payload, &ev.context.request_id)
                        .await
                        .map_err(Error::from)
                },
            ))
            .await
        }
    }
}
