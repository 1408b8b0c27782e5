//! Stripe's side of a webhook delivery: an event of `events/stripe/`, signed as Stripe signs
//! (<https://docs.stripe.com/webhooks#verify-manually>), written here from Stripe's description
//! rather than borrowed from the function, so that the two are checked against each other.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `Stripe-Signature: t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

/// Wait for the next whole second and return it (seconds since the epoch): the `created` of an
/// event that happens after everything done so far. Stripe's times are whole seconds, the other
/// routes' business times milliseconds: an event `created` in the second of a sign-up would come
/// before that sign-up.
pub async fn next_second() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970");
    let next = now.as_secs() + 1;
    tokio::time::sleep(std::time::Duration::from_secs(next) - now).await;
    next as i64
}

/// `events/stripe/{name}.json` with `created` set to `created_s` (the event's business time),
/// as bytes to sign and send.
pub fn event(name: &str, created_s: i64) -> Vec<u8> {
    let path = format!(
        "{}/../events/stripe/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut event: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    event["created"] = created_s.into();
    serde_json::to_vec(&event).expect("JSON")
}
