//! The local moto server: SDK configuration, fresh tables and queues, SSM parameters.
//!
//! Tables and queues come from storage's `testing` feature (the table is created from
//! `template.yaml`, so it cannot drift from the deployed one); each test gets its own, uniquely
//! named, so tests run in parallel on one server.

pub use storage::testing::{fresh_queue, fresh_table, local_config, unique_name};

/// Put a SecureString parameter (overwriting), as `make dev` does for the functions' secrets.
pub async fn put_secure_string(config: &aws_config::SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(config)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put_parameter {name}: {e:?}"));
}
