//! Helpers for tests against the local moto server (`AWS_ENDPOINT_URL`, set by `make test`).
//! Each test gets its own table, created from `template.yaml`, so tests run in parallel.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::StoreError;
use crate::schema::{self, TEMPLATE};
use crate::table::Table;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique name with this prefix.
pub fn unique_name(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::SeqCst)
    )
}

/// SDK configuration for the local server. Fails clearly when `AWS_ENDPOINT_URL` is not set,
/// so a test can never reach a real AWS account.
pub async fn local_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .expect("AWS_ENDPOINT_URL is not set: run tests with `make test`, which starts moto");
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "static",
        ))
        .load()
        .await
}

/// A new, empty table with the template's definition.
pub async fn fresh_table() -> Result<Table, StoreError> {
    let config = local_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let name = unique_name("test");
    schema::table_definition(TEMPLATE)?
        .create(&client, &name)
        .await?;
    Ok(Table::new(client, name))
}

/// A new (standard) queue and its URL.
pub async fn fresh_queue(sqs: &aws_sdk_sqs::Client) -> Result<String, StoreError> {
    let out = sqs
        .create_queue()
        .queue_name(unique_name("q"))
        .send()
        .await
        .map_err(StoreError::dynamo)?;
    out.queue_url
        .ok_or_else(|| StoreError::Config("no queue url".into()))
}
