//! The payout rails' HTTP adapters, behind [`engine::payout::rail::Rail`]:
//!
//! - [`paypal`]: PayPal Payouts (batches, `sender_batch_id`, status by `payout_batch_id`);
//! - [`stripe_connect`]: Stripe Connect transfers (one per item, idempotency key per attempt);
//! - [`http`]: the HTTPS client both use (timeouts, HTTP 429 backoff on the injected clock).
//!
//! Base URLs are configuration: live, sandbox, or the local fakes (`infra/fakerails`).

pub mod http;
pub mod paypal;
pub mod stripe_connect;

use std::sync::Arc;
use std::time::Duration;

use engine::payout::rail::{Rail, Rails};
use storage::SharedClock;

/// Time allowed for one request to a rail.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What a deployment has configured; a rail without credentials is absent (its items wait
/// for the manual export).
#[derive(Debug, Clone, Default)]
pub struct RailsConfig {
    pub paypal: Option<(String, paypal::Credentials)>,
    /// (base URL, API key)
    pub stripe: Option<(String, String)>,
}

impl RailsConfig {
    pub fn build(&self, clock: SharedClock) -> Result<Rails, http::HttpError> {
        let http = http::Http::new(REQUEST_TIMEOUT, clock)?;
        let mut rails: Vec<Arc<dyn Rail>> = vec![];
        if let Some((base, creds)) = &self.paypal {
            rails.push(Arc::new(paypal::PayPal::new(
                http.clone(),
                base,
                creds.clone(),
            )));
        }
        if let Some((base, key)) = &self.stripe {
            rails.push(Arc::new(stripe_connect::StripeConnect::new(
                http, base, key,
            )));
        }
        Ok(Rails::new(rails))
    }
}
