//! Click ids: signed, self-describing tokens of at most 64 characters of `[A-Za-z0-9_-]` (what
//! Stripe keeps in `client_reference_id`), so that a click id coming back from a checkout can be
//! verified and decoded (link + business time) even if its click item was never written.
//!
//! # Format (version 1)
//!
//! ```text
//! inline form, link codes of 1..=31 characters:   "A" BODY CODE      34..=64 characters
//! hashed form, link codes of 32..=64 characters:  "B" BODY CODEHASH  53 characters
//!
//! BODY     = base64url (no padding) of 24 bytes = 32 characters:
//!              at_ms  6 bytes, big-endian, unsigned: business time, epoch ms (< 2^48: year 10889)
//!              nonce  6 bytes of the caller's randomness (clicks in the same millisecond differ)
//!              tag   12 bytes: HMAC-SHA256(key, label | kind | at_ms | nonce | link ref), first
//!                    96 bits (NIST SP 800-107 allows truncation; forging needs ~2^96 tries)
//! CODE     = the link code itself (already `[A-Za-z0-9_-]`)
//! CODEHASH = base64url of the first 15 bytes (120 bits) of SHA-256(code) = 20 characters
//! ```
//!
//! A 64-character code cannot fit next to a time and a signature in 64 characters (every
//! character carries 6 bits either way), so long codes are carried as an unkeyed hash: verification
//! still proves the id was issued by this deployment and yields the time, and
//! [`ClickIdClaims::is_for_link`] tells whether it belongs to a given code. Turning a bare hash
//! back into a code needs the click item (which stores `link_code`) or an index of links by
//! [`LinkHash`]; deployments that want every id to decode on its own keep codes to 31 characters.
//!
//! All parts have fixed lengths except the trailing code, so parsing is unambiguous, and the kind
//! character is signed too, so one form cannot be passed off as the other.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::Mac;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::key::{KeyRing, TrackingKey};

/// Longest click id (Stripe's `client_reference_id` keeps up to 200; 64 keeps URLs short).
pub const CLICK_ID_MAX_LEN: usize = 64;
/// Bytes of randomness in a click id.
pub const NONCE_LEN: usize = 6;
/// Longest link code carried verbatim; longer codes are carried as a [`LinkHash`].
pub const INLINE_CODE_MAX_LEN: usize = CLICK_ID_MAX_LEN - 1 - BODY_CHARS;
/// Latest representable business time (epoch ms, 2^48 - 1).
pub const MAX_AT_MS: i64 = (1 << 48) - 1;
/// Longest link code (as `storage::links::valid_code`).
pub const LINK_CODE_MAX_LEN: usize = 64;

const LABEL: &[u8] = b"partner-engine/click-id/v1";
const KIND_INLINE: u8 = b'A';
const KIND_HASHED: u8 = b'B';
const TIME_LEN: usize = 6;
const TAG_LEN: usize = 12;
const BODY_BYTES: usize = TIME_LEN + NONCE_LEN + TAG_LEN;
const BODY_CHARS: usize = BODY_BYTES / 3 * 4;
const HASH_LEN: usize = 15;
const HASH_CHARS: usize = HASH_LEN / 3 * 4;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClickIdError {
    #[error("click id is empty or longer than {CLICK_ID_MAX_LEN} characters")]
    BadLength,
    #[error("click id has characters outside [A-Za-z0-9_-]")]
    BadCharacters,
    #[error("click id is not in a known format")]
    BadFormat,
    #[error("click id signature does not match any tracking key")]
    BadSignature,
    #[error("link code must be 1 to 64 characters of [A-Za-z0-9_-]")]
    BadLinkCode,
    #[error("business time {0} is outside 0..=2^48-1 ms")]
    TimeOutOfRange(i64),
}

/// The first 120 bits of SHA-256 of a link code, as carried by ids of long codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LinkHash([u8; HASH_LEN]);

impl LinkHash {
    pub fn of(code: &str) -> Self {
        let d = Sha256::digest(code.as_bytes());
        let mut h = [0u8; HASH_LEN];
        h.copy_from_slice(&d[..HASH_LEN]);
        LinkHash(h)
    }
    pub fn as_bytes(&self) -> &[u8; HASH_LEN] {
        &self.0
    }
}

impl std::fmt::Display for LinkHash {
    /// base64url, 20 characters (the form in the click id).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

/// Which link a click id belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkRef {
    /// The link code itself (codes of up to [`INLINE_CODE_MAX_LEN`] characters).
    Code(String),
    /// A hash of a longer code.
    Hash(LinkHash),
}

/// What a verified click id proves: it was issued by this deployment, for this link, at this
/// business time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickIdClaims {
    pub link: LinkRef,
    /// Business time of the click (the request's `requestContext.timeEpoch`), epoch ms.
    pub at_ms: i64,
}

impl ClickIdClaims {
    /// The link code when the id carries it verbatim.
    pub fn link_code(&self) -> Option<&str> {
        match &self.link {
            LinkRef::Code(c) => Some(c),
            LinkRef::Hash(_) => None,
        }
    }
    /// Whether the id was issued for link `code` (works for both forms).
    pub fn is_for_link(&self, code: &str) -> bool {
        match &self.link {
            LinkRef::Code(c) => c == code,
            LinkRef::Hash(h) => valid_link_code(code) && *h == LinkHash::of(code),
        }
    }
}

/// Same rule as `storage::links::valid_code` (this crate does not depend on storage).
pub fn valid_link_code(code: &str) -> bool {
    !code.is_empty() && code.len() <= LINK_CODE_MAX_LEN && code.bytes().all(id_byte)
}

fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

fn tag(
    key: &TrackingKey,
    kind: u8,
    at: &[u8],
    nonce: &[u8],
    link_ref: &[u8],
) -> hmac::Hmac<Sha256> {
    let mut m = key.mac(LABEL);
    m.update(&[kind]);
    m.update(at);
    m.update(nonce);
    m.update(link_ref);
    m
}

/// A new click id for `link_code` at business time `at_ms`, signed with `key`. `nonce` must be
/// fresh random bytes (two clicks on the same link in the same millisecond must differ).
pub fn new_click_id(
    key: &TrackingKey,
    link_code: &str,
    at_ms: i64,
    nonce: [u8; NONCE_LEN],
) -> Result<String, ClickIdError> {
    if !valid_link_code(link_code) {
        return Err(ClickIdError::BadLinkCode);
    }
    if !(0..=MAX_AT_MS).contains(&at_ms) {
        return Err(ClickIdError::TimeOutOfRange(at_ms));
    }
    let at = at_ms.to_be_bytes();
    let at = &at[8 - TIME_LEN..];
    let hash;
    let (kind, link_ref): (u8, &[u8]) = if link_code.len() <= INLINE_CODE_MAX_LEN {
        (KIND_INLINE, link_code.as_bytes())
    } else {
        hash = LinkHash::of(link_code);
        (KIND_HASHED, hash.as_bytes())
    };
    let t = tag(key, kind, at, &nonce, link_ref).finalize().into_bytes();
    let mut body = [0u8; BODY_BYTES];
    body[..TIME_LEN].copy_from_slice(at);
    body[TIME_LEN..TIME_LEN + NONCE_LEN].copy_from_slice(&nonce);
    body[TIME_LEN + NONCE_LEN..].copy_from_slice(&t[..TAG_LEN]);
    let mut id = String::with_capacity(CLICK_ID_MAX_LEN);
    id.push(kind as char);
    URL_SAFE_NO_PAD.encode_string(body, &mut id);
    if kind == KIND_INLINE {
        id.push_str(link_code);
    } else {
        URL_SAFE_NO_PAD.encode_string(link_ref, &mut id);
    }
    Ok(id)
}

/// Verify a click id with one key (comparison in constant time).
pub fn verify_click_id(key: &TrackingKey, id: &str) -> Result<ClickIdClaims, ClickIdError> {
    verify_with(std::iter::once(key), id)
}

impl KeyRing {
    /// A new click id signed with the current key.
    pub fn new_click_id(
        &self,
        link_code: &str,
        at_ms: i64,
        nonce: [u8; NONCE_LEN],
    ) -> Result<String, ClickIdError> {
        new_click_id(self.current(), link_code, at_ms, nonce)
    }
    /// Verify a click id against the current and the previous keys.
    pub fn verify_click_id(&self, id: &str) -> Result<ClickIdClaims, ClickIdError> {
        verify_with(self.all(), id)
    }
}

fn verify_with<'a>(
    keys: impl IntoIterator<Item = &'a TrackingKey>,
    id: &str,
) -> Result<ClickIdClaims, ClickIdError> {
    if id.is_empty() || id.len() > CLICK_ID_MAX_LEN {
        return Err(ClickIdError::BadLength);
    }
    if !id.bytes().all(id_byte) {
        return Err(ClickIdError::BadCharacters);
    }
    // ASCII only from here on, so byte slicing is on character boundaries.
    let kind = id.as_bytes()[0];
    let body_str = id.get(1..1 + BODY_CHARS).ok_or(ClickIdError::BadFormat)?;
    let rest = &id[1 + BODY_CHARS..];
    let decoded_hash;
    let (link, link_ref): (LinkRef, &[u8]) = match kind {
        KIND_INLINE if !rest.is_empty() && rest.len() <= INLINE_CODE_MAX_LEN => {
            (LinkRef::Code(rest.to_string()), rest.as_bytes())
        }
        KIND_HASHED if rest.len() == HASH_CHARS => {
            let bytes = URL_SAFE_NO_PAD
                .decode(rest)
                .map_err(|_| ClickIdError::BadFormat)?;
            let arr: [u8; HASH_LEN] = bytes.try_into().map_err(|_| ClickIdError::BadFormat)?;
            decoded_hash = LinkHash(arr);
            (LinkRef::Hash(decoded_hash), decoded_hash.as_bytes())
        }
        _ => return Err(ClickIdError::BadFormat),
    };
    let body = URL_SAFE_NO_PAD
        .decode(body_str)
        .map_err(|_| ClickIdError::BadFormat)?;
    if body.len() != BODY_BYTES {
        return Err(ClickIdError::BadFormat);
    }
    let at = &body[..TIME_LEN];
    let nonce = &body[TIME_LEN..TIME_LEN + NONCE_LEN];
    let sig = &body[TIME_LEN + NONCE_LEN..];
    let ok = keys.into_iter().any(|k| {
        tag(k, kind, at, nonce, link_ref)
            .verify_truncated_left(sig)
            .is_ok()
    });
    if !ok {
        return Err(ClickIdError::BadSignature);
    }
    let mut t = [0u8; 8];
    t[8 - TIME_LEN..].copy_from_slice(at);
    Ok(ClickIdClaims {
        link,
        at_ms: i64::from_be_bytes(t),
    })
}

/// Serialisable view of claims, for logs and APIs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickIdInfo {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link_hash: Option<String>,
    pub at_ms: i64,
}

impl From<&ClickIdClaims> for ClickIdInfo {
    fn from(c: &ClickIdClaims) -> Self {
        match &c.link {
            LinkRef::Code(code) => ClickIdInfo {
                link_code: Some(code.clone()),
                link_hash: None,
                at_ms: c.at_ms,
            },
            LinkRef::Hash(h) => ClickIdInfo {
                link_code: None,
                link_hash: Some(h.to_string()),
                at_ms: c.at_ms,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const T0: i64 = 1_767_225_600_000;

    fn key(b: u8) -> TrackingKey {
        TrackingKey::new(&[b; 32]).unwrap()
    }

    #[test]
    fn round_trip_inline() {
        let id = new_click_id(&key(1), "alice", T0, [1, 2, 3, 4, 5, 6]).unwrap();
        assert!(id.len() <= 64 && id.starts_with('A') && id.ends_with("alice"));
        assert_eq!(id.len(), 1 + 32 + 5);
        let c = verify_click_id(&key(1), &id).unwrap();
        assert_eq!(c.link_code(), Some("alice"));
        assert_eq!(c.at_ms, T0);
        assert!(c.is_for_link("alice") && !c.is_for_link("bob"));
    }

    #[test]
    fn long_codes_use_the_hashed_form() {
        let code31 = "x".repeat(31);
        let id = new_click_id(&key(1), &code31, T0, [0; 6]).unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(
            verify_click_id(&key(1), &id).unwrap().link_code(),
            Some(code31.as_str())
        );
        let code = "y".repeat(64);
        let id = new_click_id(&key(1), &code, T0, [0; 6]).unwrap();
        assert_eq!(id.len(), 53);
        assert!(id.starts_with('B'));
        let c = verify_click_id(&key(1), &id).unwrap();
        assert_eq!(c.link, LinkRef::Hash(LinkHash::of(&code)));
        assert!(c.is_for_link(&code) && !c.is_for_link(&"y".repeat(63)));
        assert_eq!(c.link_code(), None);
    }

    #[test]
    fn wrong_key_tampering_and_garbage_are_refused() {
        let id = new_click_id(&key(1), "alice", T0, [9; 6]).unwrap();
        assert_eq!(
            verify_click_id(&key(2), &id),
            Err(ClickIdError::BadSignature)
        );
        // another link code with the same body
        let forged = format!("{}bob", &id[..33]);
        assert_eq!(
            verify_click_id(&key(1), &forged),
            Err(ClickIdError::BadSignature)
        );
        // flip the kind: hashed form has a fixed length, so this is a format error
        let flipped = format!("B{}", &id[1..]);
        assert!(verify_click_id(&key(1), &flipped).is_err());
        assert_eq!(verify_click_id(&key(1), ""), Err(ClickIdError::BadLength));
        assert_eq!(
            verify_click_id(&key(1), "A#"),
            Err(ClickIdError::BadCharacters)
        );
        assert_eq!(
            verify_click_id(&key(1), "Aabc"),
            Err(ClickIdError::BadFormat)
        );
        assert_eq!(
            verify_click_id(&key(1), &"A".repeat(65)),
            Err(ClickIdError::BadLength)
        );
        // body without a code
        assert_eq!(
            verify_click_id(&key(1), &id[..33]),
            Err(ClickIdError::BadFormat)
        );
    }

    #[test]
    fn bad_inputs_to_new() {
        assert_eq!(
            new_click_id(&key(1), "a#b", T0, [0; 6]),
            Err(ClickIdError::BadLinkCode)
        );
        assert_eq!(
            new_click_id(&key(1), &"a".repeat(65), T0, [0; 6]),
            Err(ClickIdError::BadLinkCode)
        );
        assert_eq!(
            new_click_id(&key(1), "a", -1, [0; 6]),
            Err(ClickIdError::TimeOutOfRange(-1))
        );
        assert!(new_click_id(&key(1), "a", MAX_AT_MS, [0; 6]).is_ok());
        assert!(new_click_id(&key(1), "a", MAX_AT_MS + 1, [0; 6]).is_err());
    }

    #[test]
    fn rotation_verifies_with_previous_keys() {
        let old = KeyRing::from(key(1));
        let id = old.new_click_id("alice", T0, [3; 6]).unwrap();
        let rotated = KeyRing::new(key(2), vec![key(1)]);
        assert_eq!(rotated.verify_click_id(&id).unwrap().at_ms, T0);
        let new_id = rotated.new_click_id("alice", T0, [3; 6]).unwrap();
        assert_ne!(new_id, id);
        assert!(old.verify_click_id(&new_id).is_err());
        let dropped = KeyRing::from(key(2));
        assert_eq!(
            dropped.verify_click_id(&id),
            Err(ClickIdError::BadSignature)
        );
    }

    #[test]
    fn nonces_separate_same_millisecond_clicks() {
        let a = new_click_id(&key(1), "alice", T0, [1; 6]).unwrap();
        let b = new_click_id(&key(1), "alice", T0, [2; 6]).unwrap();
        assert_ne!(a, b);
    }

    proptest! {
        #[test]
        fn any_valid_code_and_time_round_trips(
            code in "[A-Za-z0-9_-]{1,64}",
            at in 0i64..=MAX_AT_MS,
            nonce in any::<[u8; 6]>(),
        ) {
            let id = new_click_id(&key(5), &code, at, nonce).unwrap();
            prop_assert!(id.len() <= CLICK_ID_MAX_LEN);
            prop_assert!(id.bytes().all(id_byte));
            let c = verify_click_id(&key(5), &id).unwrap();
            prop_assert_eq!(c.at_ms, at);
            prop_assert!(c.is_for_link(&code));
            if code.len() <= INLINE_CODE_MAX_LEN {
                prop_assert_eq!(c.link_code(), Some(code.as_str()));
            }
        }

        #[test]
        fn arbitrary_strings_never_verify_or_panic(s in "\\PC{0,80}") {
            prop_assert!(verify_click_id(&key(5), &s).is_err());
        }

        #[test]
        fn single_character_changes_are_detected(
            code in "[A-Za-z0-9_-]{1,64}",
            pos in any::<prop::sample::Index>(),
            replacement in "[A-Za-z0-9_-]",
        ) {
            let id = new_click_id(&key(5), &code, T0, [4; 6]).unwrap();
            let i = pos.index(id.len());
            let mut changed = id.clone().into_bytes();
            changed[i] = replacement.as_bytes()[0];
            let changed = String::from_utf8(changed).unwrap();
            if changed != id {
                prop_assert!(verify_click_id(&key(5), &changed).is_err());
            }
        }
    }
}
