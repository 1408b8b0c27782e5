//! System tests: the whole system as `make dev` runs it, driven only through its public
//! interfaces — HTTP routes, the Lambda Invoke API, signed Stripe events and `partnerctl`.
//!
//! # The stack: `make dev`'s own code path
//! [`Stack::start`] runs `infra/dev.sh --inside-moto`, the part of `make dev` that runs inside
//! moto once `cargo build --bins` and `infra/moto.sh run` are done: `partnerctl setup-local`
//! (the table and queues of `template.yaml`), the SSM parameters of
//! `infra/dev/ssm-parameters.txt`, `partnerctl apply infra/dev/demo.yaml`, then `devgw serve`
//! (every function of `template.yaml`, as its built binary). It runs inside the moto server that
//! `make test` started, with make dev's own settings: `PORT` (a free port), `TABLE_NAME` (a
//! table of its own) and `DEV_DIR` (`.dev/system-tests/<table>`), so every test gets a fresh
//! stack, apart from the others and from a `make dev` running beside. As the README's "second
//! shell" does, a test then takes its configuration from `$DEV_DIR/env` (written by dev.sh):
//! [`Stack::shell`], [`Stack::setting`].
//!
//! # Binaries
//! dev.sh runs `target/debug/partnerctl` and `target/debug/devgw`, devgw the functions'
//! binaries in `target/debug`. This crate builds nothing: `cargo test --workspace` (`make test`)
//! builds them, because cargo builds the binaries of every package with integration tests, and
//! each of those packages has some. [`Stack::start`] refuses a binary older than one of its
//! sources (cargo's `target/debug/<name>.d`), so a test never runs stale code. To run only these
//! tests: `infra/moto.sh run -- sh -c 'cargo build --bins && cargo test -p system-tests'`.
//!
//! # Adding a system test
//! A file in `tests/tests/` (one test binary each) whose tests start with
//! `let stack = Stack::start().await;` and talk to it through [`Stack`]'s methods only: its
//! HTTP routes ([`Stack::get`], [`Stack::post`]), the Invoke API ([`Stack::invoke`]), Stripe
//! deliveries ([`stripe`]), sale feed deliveries ([`Stack::deliver_sale`]), a headless browser
//! ([`browser`]) and commands ([`Stack::shell`], [`Stack::partnerctl`]).

pub mod browser;
pub mod dynamo_faults;
pub mod http;
pub mod payouts;
mod stack;
pub mod stripe;

pub use http::Reply;

/// The demo program's tracking key (infra/dev/demo.yaml), which `make dev` seeds.
pub const DEMO_TRACKING_KEY: &str = "local-tracking-key";
pub use stack::Stack;
