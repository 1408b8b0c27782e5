//! `POST /webhooks/stripe`: Stripe's signed events in, bindings and sales out; and
//! `POST /webhooks/sale`, the signed sale feed of any other billing system ([`feed`]), through
//! the same engine operations.
//!
//! - [`signature`] verifies `Stripe-Signature` over the raw body (any `v1`, any configured
//!   secret, constant-time, ±300 s on the technical clock).
//! - [`stripe`] holds the serde types of the payloads we read (API `2025-02-24.acacia`).
//! - [`interpret`] maps an event to one [`interpret::Action`], or to "ignored".
//! - [`sink`] is the narrow engine interface the [`handler`] is generic over.
//! - [`config`] loads the signing secrets once (SSM Parameter Store, or an env variable locally).
//! - [`engine_adapter`] implements [`sink::SaleSink`] with `shared/engine`.
//! - [`stripe_api`] reads what an event leaves out from Stripe's API (an invoice's remaining
//!   lines), with a restricted key.
//! - [`policy`] decides which events this deployment accepts (live or test mode, Connect
//!   accounts, untested API versions).

pub mod config;
pub mod engine_adapter;
pub mod feed;
pub mod handler;
pub mod interpret;
pub mod policy;
pub mod reply;
pub mod signature;
pub mod sink;
pub mod stripe;
pub mod stripe_api;

pub use feed::FeedSources;
pub use handler::{
    handle, handle_request, process, process_feed, replay, replay_feed, Deps, FEED_PATH,
    SIGNATURE_HEADER,
};
pub use reply::Reply;
pub use signature::{SignatureError, SigningSecrets};
pub use sink::{
    AccountOutcome, AccountUpdate, BindOutcome, BindRejection, BindRequest, BindSource, ChargeFact,
    MoneyBack, MoneyBackOutcome, PaidInvoice, PaymentFailed, ReversalOutcome, ReversedTransfer,
    SaleOutcome, SaleSink, SinkError, SubscriptionEnded, TransfersCapability,
};
