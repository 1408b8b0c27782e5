//! Click tracking rules of the partner program engine. Pure: no AWS, no I/O, no clock and no
//! random source: business time and random bytes are handed in by the caller.
//!
//! - [`key`]: the deployment's tracking key(s) (HMAC-SHA256), with rotation.
//! - [`click_id`]: signed, self-describing click ids (`[A-Za-z0-9_-]{1,64}`) that can be verified
//!   and decoded (link + business time) even when their click item was never written.
//! - [`visitor`]: random visitor ids and the keyed hash of (IP, User-Agent).
//! - [`destination`]: the `?to=` deep-link check against a program's allow-list (whose grammar
//!   is `rules::hosts`) and query-parameter appending.
//! - [`bots`]: HEAD, prefetch/prerender and link-preview bot detection.

pub mod bots;
pub mod click_id;
pub mod destination;
pub mod key;
pub mod visitor;

pub use bots::{classify_non_human, is_non_human, NonHuman};
pub use click_id::{
    new_click_id, verify_click_id, ClickIdClaims, ClickIdError, LinkHash, LinkRef, NONCE_LEN,
};
pub use destination::{append_query, check_deep_link, resolve_destination};
pub use key::{KeyError, KeyRing, TrackingKey};
pub use visitor::{new_visitor_id, valid_visitor_id, visitor_key_hash, VISITOR_ID_BYTES};
