//! Settings read once at cold start; a bad deployment fails at init, not on a request.
//!
//! | variable | meaning |
//! |---|---|
//! | `TABLE_NAME` | the table (read by `storage::Table::from_env`) |
//! | `TRACKING_KEY` | (required) the deployment's HMAC key that signs click ids, at least 32 bytes; the same value as the redirect function's |
//! | `TRACKING_KEYS_PREVIOUS` | comma-separated previous keys, still accepted when verifying click ids |
//! | `EMAIL_QUEUE_URL`, `CRM_SYNC_QUEUE_URL` | optional, one per message consumer (`storage::outbox::Routes`): deliver its kinds' outbox messages right after a write (a kind without one stays unsent in the outbox; a failed send waits for the outbox sweep) |
//!
//! `TRACKING_KEY` is not the programs' tracking keys that authenticate API calls: those are
//! stored hashed in the table (`partnerctl apply`, `tracking_key` / `tracking_key_sha256`).

use tracking::KeyRing;

pub const TRACKING_KEY_ENV: &str = "TRACKING_KEY";
pub const TRACKING_KEYS_PREVIOUS_ENV: &str = "TRACKING_KEYS_PREVIOUS";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// What the API reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub keys: KeyRing,
    /// Each message kind's consumer queue (none configured: every message stays in the outbox).
    pub outbox_routes: storage::outbox::Routes,
}

impl Config {
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// From any name → value lookup (tests pass a map). Blank values count as unset.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let key = get(TRACKING_KEY_ENV).ok_or(ConfigError::Missing(TRACKING_KEY_ENV))?;
        let keys = KeyRing::from_secrets(&key, get(TRACKING_KEYS_PREVIOUS_ENV).as_deref())
            .map_err(|e| ConfigError::Invalid {
                name: TRACKING_KEY_ENV,
                reason: e.to_string(),
            })?;
        let outbox_routes = storage::outbox::Routes::from_lookup(get);
        Ok(Config {
            keys,
            outbox_routes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const K: &str = "0123456789abcdef0123456789abcdef";

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|n| m.get(n).cloned())
    }

    #[test]
    fn settings() {
        assert_eq!(
            load(&[]).unwrap_err(),
            ConfigError::Missing(TRACKING_KEY_ENV)
        );
        assert!(matches!(
            load(&[(TRACKING_KEY_ENV, "short")]),
            Err(ConfigError::Invalid { .. })
        ));
        let c = load(&[(TRACKING_KEY_ENV, K)]).expect("config");
        assert_eq!(c.keys.all().count(), 1);
        assert!(c.outbox_routes.is_empty());
        let c = load(&[
            (TRACKING_KEY_ENV, K),
            (TRACKING_KEYS_PREVIOUS_ENV, &format!("{K}1,{K}2")),
            ("EMAIL_QUEUE_URL", " http://q "),
        ])
        .expect("config");
        assert_eq!(c.keys.all().count(), 3);
        // Every kind the e-mail consumer takes.
        let email_kinds = messages::Kind::ALL
            .iter()
            .filter(|k| k.consumer() == messages::Consumer::Email)
            .count();
        assert_eq!(c.outbox_routes.routed_kinds().len(), email_kinds);
        assert!(load(&[(TRACKING_KEY_ENV, K), ("EMAIL_QUEUE_URL", " ")])
            .expect("config")
            .outbox_routes
            .is_empty());
    }
}
