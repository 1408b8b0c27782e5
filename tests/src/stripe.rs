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

/// `invoice.paid` for a customer of its own: event `evt_{tag}_{i}`, invoice `in_{tag}_{i}`,
/// customer `cus_{tag}_{i}` (e-mail `{tag}{i}@customers.test`), subscription `sub_{tag}_{i}`,
/// created at `created_s`.
pub fn invoice_paid_for(tag: &str, i: usize, created_s: i64) -> Vec<u8> {
    let mut e: serde_json::Value =
        serde_json::from_slice(&event("invoice.paid", created_s)).expect("JSON");
    e["id"] = format!("evt_{tag}_{i}").into();
    let o = &mut e["data"]["object"];
    o["id"] = format!("in_{tag}_{i}").into();
    o["customer"] = format!("cus_{tag}_{i}").into();
    o["customer_email"] = format!("{tag}{i}@customers.test").into();
    o["subscription"] = format!("sub_{tag}_{i}").into();
    if let Some(lines) = o["lines"]["data"].as_array_mut() {
        for l in lines {
            l["invoice"] = format!("in_{tag}_{i}").into();
        }
    }
    serde_json::to_vec(&e).expect("JSON")
}
