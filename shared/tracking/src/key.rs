//! The deployment's tracking key: the HMAC-SHA256 key that signs click ids and hashes visitor
//! (IP, User-Agent) pairs. Never logged, never stored in the table.
//!
//! Rotation: a [`KeyRing`] signs with its current key and verifies with the current key and any
//! previous ones, so click ids issued before a rotation stay valid while the previous key is kept
//! in the ring (keep it for the longest cookie window of any program, then drop it). Visitor-key
//! hashes use only the current key: after a rotation the one-hour click de-duplication of visitors
//! without a visitor-id cookie restarts, which at worst counts one extra click per such visitor.

use hmac::{Hmac, Mac};
use sha2::Sha256;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Shortest accepted key, in bytes (256 bits).
pub const MIN_KEY_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("tracking key is {0} bytes; at least {MIN_KEY_LEN} are required")]
    TooShort(usize),
}

/// One HMAC-SHA256 key (the key's bytes are the UTF-8 bytes of the configured secret, e.g. the
/// output of `openssl rand -base64 48`).
#[derive(Clone)]
pub struct TrackingKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for TrackingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TrackingKey(<redacted>)")
    }
}

impl TrackingKey {
    pub fn new(secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < MIN_KEY_LEN {
            return Err(KeyError::TooShort(secret.len()));
        }
        // HMAC accepts keys of any length; the error branch cannot happen.
        let mac = HmacSha256::new_from_slice(secret).map_err(|_| KeyError::TooShort(0))?;
        Ok(TrackingKey { mac })
    }

    /// A MAC keyed with this key, with a domain-separation label already absorbed, so the same
    /// key can serve click ids and visitor hashes without one being usable as the other.
    pub(crate) fn mac(&self, label: &[u8]) -> HmacSha256 {
        let mut m = self.mac.clone();
        m.update(&(label.len() as u32).to_be_bytes());
        m.update(label);
        m
    }
}

/// The current signing key and the previous keys still accepted for verification.
#[derive(Debug, Clone)]
pub struct KeyRing {
    current: TrackingKey,
    previous: Vec<TrackingKey>,
}

impl KeyRing {
    pub fn new(current: TrackingKey, previous: Vec<TrackingKey>) -> Self {
        KeyRing { current, previous }
    }

    /// From configuration strings: the current secret, and optionally previous secrets separated
    /// by commas (base64 secrets never contain commas). Blank entries are ignored.
    pub fn from_secrets(current: &str, previous: Option<&str>) -> Result<Self, KeyError> {
        let current = TrackingKey::new(current.trim().as_bytes())?;
        let previous = previous
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| TrackingKey::new(s.as_bytes()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyRing { current, previous })
    }

    /// The key that signs new click ids and hashes visitors.
    pub fn current(&self) -> &TrackingKey {
        &self.current
    }

    /// Every key accepted for verification, current first.
    pub fn all(&self) -> impl Iterator<Item = &TrackingKey> {
        std::iter::once(&self.current).chain(self.previous.iter())
    }
}

impl From<TrackingKey> for KeyRing {
    fn from(k: TrackingKey) -> Self {
        KeyRing::new(k, vec![])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_are_refused_and_keys_are_not_printed() {
        assert_eq!(
            TrackingKey::new(b"short").unwrap_err(),
            KeyError::TooShort(5)
        );
        let k = TrackingKey::new(&[7u8; 32]).unwrap();
        assert_eq!(format!("{k:?}"), "TrackingKey(<redacted>)");
    }

    #[test]
    fn ring_from_secrets() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let ring = KeyRing::from_secrets(&a, Some(&format!(" {b} , ,"))).unwrap();
        assert_eq!(ring.all().count(), 2);
        assert!(KeyRing::from_secrets(&a, Some("tooshort")).is_err());
        assert_eq!(KeyRing::from_secrets(&a, None).unwrap().all().count(), 1);
    }
}
