//! Test fixtures shared by every crate's tests (a dev-dependency only), against the moto server
//! that `make test` starts (`infra/moto.sh run`, which sets `AWS_ENDPOINT_URL`).
//!
//! - `moto` (feature `moto`, which every crate's feature includes): SDK configuration for the
//!   local server, a fresh table (from `template.yaml`) and queue per test — storage's `testing`
//!   feature, which it turns on — and SSM parameters.
//! - [`catalogue`]: the programs, partners, memberships, links and clicks tests seed.
//! - [`events`]: the sample events of `events/`, read as `aws_lambda_events` types and turned
//!   into the requests `lambda_http` hands a function.
//! - One module per crate under test for what only its tests use: `engine`, `api`, `redirect`,
//!   `sale_webhook`, each behind the feature of the crate's name, which that crate's
//!   dev-dependency turns on. A test file starts with `use testkit::<crate>::*;`.
//!
//! The system tests (top-level `tests/`) drive the whole stack of `make dev` instead and need
//! none of this.

#[cfg(feature = "api")]
pub mod api;
pub mod catalogue;
#[cfg(feature = "engine")]
pub mod engine;
pub mod events;
pub mod fake_stripe;
#[cfg(feature = "engine")]
pub mod faults;
#[cfg(feature = "moto")]
pub mod moto;
#[cfg(feature = "redirect")]
pub mod redirect;
#[cfg(feature = "sale-webhook")]
pub mod sale_webhook;

/// Every order of `0..n` (n! of them): for tests that deliver the same events in every order.
pub fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = vec![];
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}
