//! Visitors: a random, URL-safe visitor id (kept in a first-party cookie), and the keyed hash of
//! (IP, User-Agent) that stands in for it when the visitor has no cookie. The raw IP is never
//! returned, stored or logged: only this hash, which cannot be reversed or recomputed without the
//! tracking key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;

use crate::key::TrackingKey;

/// Random bytes in a visitor id (128 bits).
pub const VISITOR_ID_BYTES: usize = 16;
/// Length of a visitor id: base64url of 16 bytes.
pub const VISITOR_ID_LEN: usize = 22;
/// Length of a visitor-key hash: base64url of the first 16 bytes of the HMAC.
pub const VISITOR_HASH_LEN: usize = 22;

const LABEL: &[u8] = b"partner-engine/visitor-key/v1";

/// A visitor id from fresh random bytes: 22 characters of `[A-Za-z0-9_-]`.
pub fn new_visitor_id(random: [u8; VISITOR_ID_BYTES]) -> String {
    URL_SAFE_NO_PAD.encode(random)
}

/// Whether a cookie value is a visitor id this engine could have issued (22 characters of
/// base64url in canonical form). Anything else is ignored and replaced.
pub fn valid_visitor_id(s: &str) -> bool {
    s.len() == VISITOR_ID_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && URL_SAFE_NO_PAD
            .decode(s)
            .is_ok_and(|b| b.len() == VISITOR_ID_BYTES)
}

/// Keyed hash of a visitor's (IP, User-Agent): base64url, 22 characters (128 bits of
/// HMAC-SHA256). Both inputs are length-prefixed, so no two pairs share an input.
pub fn visitor_key_hash(key: &TrackingKey, ip: &str, user_agent: &str) -> String {
    let mut m = key.mac(LABEL);
    m.update(&(ip.len() as u64).to_be_bytes());
    m.update(ip.as_bytes());
    m.update(&(user_agent.len() as u64).to_be_bytes());
    m.update(user_agent.as_bytes());
    let out = m.finalize().into_bytes();
    URL_SAFE_NO_PAD.encode(&out[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> TrackingKey {
        TrackingKey::new(&[b; 32]).unwrap()
    }

    #[test]
    fn visitor_ids() {
        let v = new_visitor_id([0xAB; 16]);
        assert_eq!(v.len(), VISITOR_ID_LEN);
        assert!(valid_visitor_id(&v));
        assert!(!valid_visitor_id("short"));
        assert!(!valid_visitor_id(&format!("{}#", &v[..21])));
        assert!(!valid_visitor_id(&"a".repeat(23)));
        // non-canonical last character (trailing bits set)
        let mut bad = v[..21].to_string();
        bad.push('B');
        assert!(!valid_visitor_id(&bad));
    }

    #[test]
    fn visitor_hash_is_keyed_and_hides_the_ip() {
        let h = visitor_key_hash(&key(1), "203.0.113.7", "Mozilla/5.0");
        assert_eq!(h.len(), VISITOR_HASH_LEN);
        assert!(!h.contains("203"));
        assert_eq!(h, visitor_key_hash(&key(1), "203.0.113.7", "Mozilla/5.0"));
        assert_ne!(h, visitor_key_hash(&key(2), "203.0.113.7", "Mozilla/5.0"));
        assert_ne!(h, visitor_key_hash(&key(1), "203.0.113.8", "Mozilla/5.0"));
        assert_ne!(h, visitor_key_hash(&key(1), "203.0.113.7", "Mozilla/5.1"));
        // no ambiguity between the two fields
        assert_ne!(
            visitor_key_hash(&key(1), "ab", "c"),
            visitor_key_hash(&key(1), "a", "bc")
        );
    }
}
