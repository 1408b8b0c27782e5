//! The smallest `lambda_runtime` function: returns its event unchanged.
//!
//! Baseline of `make bench-init` (init time and binary size beside the real functions) and the
//! echo function that devgw's tests run through the local Runtime API.

use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|e: LambdaEvent<serde_json::Value>| async {
        Ok::<_, Error>(e.payload)
    }))
    .await
}
