//! Lambda bootstrap: build the notifier (table, SES client, templates) once, then serve the
//! e-mail queue's and the mail-events queue's SQS batches.

#![recursion_limit = "256"]
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
    let notifier = notifier::production().await?;
    tracing::info!("notifier initialised");
    let notifier = &notifier;
    run(service_fn(
        move |ev: LambdaEvent<aws_lambda_events::sqs::SqsEvent>| async move {
            Ok::<_, Error>(notifier.batch(ev.payload).await)
        },
    ))
    .await
}
