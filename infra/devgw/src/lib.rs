//! devgw: the project's local gateway for `make dev`.
//!
//! It reads the functions from `template.yaml` (and `infra/dev/functions.yaml`), runs each
//! function binary against its own local Lambda Runtime API, and serves on one loopback port:
//!
//! - the Lambda invoke API (`POST /2015-03-31/functions/{name}/invocations`), so the AWS CLI,
//!   boto3 and `cargo lambda invoke` work against it;
//! - the template's `HttpApi` routes, as API Gateway HTTP API payload format 2.0 events;
//! - `GET /dev/functions`, `GET /dev/ready`, `POST /dev/schedule/{name}[?time=...]`.
//!
//! It also polls each function's SQS queues (local endpoint only) and fires its schedules.
//! `devgw bench-init` reuses the Runtime API to time a binary's init.

pub mod apigw;
pub mod bench;
pub mod error;
pub mod gateway;
pub mod http;
pub mod process;
pub mod routes;
pub mod runtime;
pub mod schedule;
pub mod sqs;
pub mod template;

pub use error::DevgwError;

/// The account id local resources report (moto's default account).
pub const ACCOUNT_ID: &str = "123456789012";
/// The local region.
pub const REGION: &str = "us-east-1";

/// Tells long-running tasks that devgw is stopping.
#[derive(Debug, Clone)]
pub struct Shutdown(tokio::sync::watch::Receiver<bool>);

impl Shutdown {
    pub fn new(rx: tokio::sync::watch::Receiver<bool>) -> Self {
        Shutdown(rx)
    }

    /// True once shutdown was asked (or its sender is gone).
    pub fn is_set(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves when shutdown is asked.
    pub async fn wait(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}
