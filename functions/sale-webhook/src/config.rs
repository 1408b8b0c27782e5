//! Secrets and settings, read once at init. Secrets never come from the repository.
//!
//! | variable | meaning |
//! |---|---|
//! | `STRIPE_SIGNING_SECRET_PARAM` | SSM parameter (SecureString) holding the webhook signing secret(s), comma-separated while rotating (AWS) |
//! | `STRIPE_SIGNING_SECRET` | the same list, directly (local development, tests); ignored when the parameter is set |
//! | `TRACKING_KEY_PARAM` | SSM parameter (SecureString) holding the tracking key, optionally followed by previous keys, comma-separated (AWS); the engine verifies click ids with it |
//! | `TRACKING_KEY`, `TRACKING_KEYS_PREVIOUS` | the same directly, as the redirect function reads them (local) |
//! | `EMAIL_QUEUE_URL`, `CRM_SYNC_QUEUE_URL` | optional, one per message consumer (`storage::outbox::Routes::from_env`): deliver its kinds' outbox messages right after a booking (a kind without one stays unsent in the outbox; a failed send waits for the outbox sweep) |
//! | `SALE_FEED_SECRETS_PATH` | SSM path (`/partner-engine/sale-feed/`) of the sale feed's sources: each SecureString under it is one source, named by its last segment, holding its signing secret(s), comma-separated while rotating (AWS) |
//! | `SALE_FEED_SECRETS` | the same directly, `name=secret[,secret…];name=…` (local development, tests); ignored when the path is set. Neither: the feed refuses every request |
//! | `TABLE_NAME` | the table (read by `storage::Table::from_env`) |
//!
//! SSM parameters are read at init, with decryption: Lambda environment variables cannot hold
//! `{{resolve:ssm-secure:…}}` references, so a template-resolved variable is not an option.

use thiserror::Error;

use tracking::KeyRing;

use crate::feed::{FeedSources, SourcesError};
use crate::signature::SigningSecrets;

pub const SECRET_ENV: &str = "STRIPE_SIGNING_SECRET";
pub const SECRET_PARAM_ENV: &str = "STRIPE_SIGNING_SECRET_PARAM";
pub const TRACKING_KEY_ENV: &str = "TRACKING_KEY";
pub const TRACKING_KEYS_PREVIOUS_ENV: &str = "TRACKING_KEYS_PREVIOUS";
pub const TRACKING_KEY_PARAM_ENV: &str = "TRACKING_KEY_PARAM";
pub const FEED_SECRETS_PATH_ENV: &str = "SALE_FEED_SECRETS_PATH";
pub const FEED_SECRETS_ENV: &str = "SALE_FEED_SECRETS";

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("no signing secret: set {SECRET_PARAM_ENV} (SSM parameter name) or {SECRET_ENV}")]
    NotConfigured,
    #[error(
        "no tracking key: set {TRACKING_KEY_PARAM_ENV} (SSM parameter name) or {TRACKING_KEY_ENV}"
    )]
    NoTrackingKey,
    #[error("tracking key from {origin}: {reason}")]
    BadTrackingKey { origin: String, reason: String },
    #[error("Stripe API client: {0}")]
    StripeApi(String),
    #[error("the signing secret from {0} is empty")]
    Empty(String),
    #[error("sale feed sources from {origin}: {reason}")]
    BadFeedSources { origin: String, reason: String },
    #[error("reading SSM parameter {name} failed: {source}")]
    Ssm {
        name: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Where the secrets are to be read from, decided from the environment alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Ssm(String),
    Env(String),
}

impl SecretSource {
    /// From environment variables (`lookup` stands for `std::env::var`).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(name) = set(SECRET_PARAM_ENV) {
            return Ok(SecretSource::Ssm(name.trim().to_string()));
        }
        if let Some(list) = set(SECRET_ENV) {
            return Ok(SecretSource::Env(list));
        }
        Err(ConfigError::NotConfigured)
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// Load the secrets once (one SSM call when configured so).
pub async fn load_secrets(
    source: &SecretSource,
    aws: &aws_config::SdkConfig,
) -> Result<SigningSecrets, ConfigError> {
    match source {
        SecretSource::Env(list) => {
            SigningSecrets::from_list(list).ok_or_else(|| ConfigError::Empty(SECRET_ENV.into()))
        }
        SecretSource::Ssm(name) => {
            let value = read_parameter(aws, name).await?;
            SigningSecrets::from_list(&value).ok_or_else(|| ConfigError::Empty(name.clone()))
        }
    }
}

/// One SSM parameter's value, decrypted.
pub async fn read_parameter(
    aws: &aws_config::SdkConfig,
    name: &str,
) -> Result<String, ConfigError> {
    let out = aws_sdk_ssm::Client::new(aws)
        .get_parameter()
        .name(name)
        .with_decryption(true)
        .send()
        .await
        .map_err(|e| ConfigError::Ssm {
            name: name.to_string(),
            source: Box::new(e),
        })?;
    out.parameter
        .and_then(|p| p.value)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ConfigError::Empty(name.to_string()))
}

/// Where the tracking key ring comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum TrackingKeySource {
    /// SSM parameter whose value is `current[,previous…]`.
    Ssm(String),
    Env {
        current: String,
        previous: Option<String>,
    },
}

impl std::fmt::Debug for TrackingKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TrackingKeySource::Ssm(name) => write!(f, "Ssm({name:?})"),
            TrackingKeySource::Env { .. } => f.write_str("Env(<redacted>)"),
        }
    }
}

impl TrackingKeySource {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        if let Some(name) = set(TRACKING_KEY_PARAM_ENV) {
            return Ok(TrackingKeySource::Ssm(name.trim().to_string()));
        }
        match set(TRACKING_KEY_ENV) {
            Some(current) => Ok(TrackingKeySource::Env {
                current,
                previous: set(TRACKING_KEYS_PREVIOUS_ENV),
            }),
            None => Err(ConfigError::NoTrackingKey),
        }
    }

    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// A key ring from `current[,previous…]`.
pub fn key_ring_from_list(list: &str, origin: &str) -> Result<KeyRing, ConfigError> {
    let bad = |reason: String| ConfigError::BadTrackingKey {
        origin: origin.to_string(),
        reason,
    };
    let (current, previous) = match list.split_once(',') {
        Some((c, p)) => (c, Some(p)),
        None => (list, None),
    };
    if current.trim().is_empty() {
        return Err(bad("the first entry (the current key) is empty".into()));
    }
    KeyRing::from_secrets(current, previous).map_err(|e| bad(e.to_string()))
}

pub async fn load_tracking_keys(
    source: &TrackingKeySource,
    aws: &aws_config::SdkConfig,
) -> Result<KeyRing, ConfigError> {
    match source {
        TrackingKeySource::Env { current, previous } => {
            KeyRing::from_secrets(current, previous.as_deref()).map_err(|e| {
                ConfigError::BadTrackingKey {
                    origin: TRACKING_KEY_ENV.into(),
                    reason: e.to_string(),
                }
            })
        }
        TrackingKeySource::Ssm(name) => {
            let value = read_parameter(aws, name).await?;
            key_ring_from_list(&value, name)
        }
    }
}

/// The sale feed's sources: every SecureString under `SALE_FEED_SECRETS_PATH` (one
/// `GetParametersByPath` walk, with decryption), else `SALE_FEED_SECRETS`, else none.
pub async fn load_feed_sources(
    lookup: impl Fn(&str) -> Option<String>,
    aws: &aws_config::SdkConfig,
) -> Result<FeedSources, ConfigError> {
    let set = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let bad = |origin: &str, e: SourcesError| ConfigError::BadFeedSources {
        origin: origin.to_string(),
        reason: e.to_string(),
    };
    if let Some(path) = set(FEED_SECRETS_PATH_ENV) {
        let path = if path.ends_with('/') {
            path
        } else {
            format!("{path}/")
        };
        let client = aws_sdk_ssm::Client::new(aws);
        let mut sources = FeedSources::none();
        let mut pages = client
            .get_parameters_by_path()
            .path(path.trim_end_matches('/'))
            .recursive(false)
            .with_decryption(true)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| ConfigError::Ssm {
                name: path.clone(),
                source: Box::new(e),
            })?;
            for p in page.parameters.unwrap_or_default() {
                let (Some(name), Some(value)) = (p.name, p.value) else {
                    continue;
                };
                let source = name.rsplit('/').next().unwrap_or_default();
                sources.add(source, &value).map_err(|e| bad(&name, e))?;
            }
        }
        return Ok(sources);
    }
    match set(FEED_SECRETS_ENV) {
        Some(spec) => FeedSources::from_spec(&spec).map_err(|e| bad(FEED_SECRETS_ENV, e)),
        None => Ok(FeedSources::none()),
    }
}

pub const STRIPE_API_KEY_ENV: &str = "STRIPE_API_KEY";
pub const STRIPE_API_KEY_PARAM_ENV: &str = "STRIPE_API_KEY_PARAM";
pub const STRIPE_API_BASE_ENV: &str = "STRIPE_API_BASE";
pub const DEFAULT_STRIPE_API_BASE: &str = "https://api.stripe.com";
/// Longest wait for one page of Stripe's API (the function's timeout is 10 s).
pub const STRIPE_API_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// Stripe's API with a restricted read key, when one is configured: `STRIPE_API_KEY_PARAM`
/// (SSM parameter name, SecureString) or `STRIPE_API_KEY` (locally); `STRIPE_API_BASE`
/// (default `https://api.stripe.com`). `None`: events that need the API are parked.
pub async fn load_stripe_api(
    lookup: impl Fn(&str) -> Option<String>,
    aws: &aws_config::SdkConfig,
) -> Result<Option<std::sync::Arc<dyn crate::stripe_api::InvoiceLines>>, ConfigError> {
    let set = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let key = match (set(STRIPE_API_KEY_PARAM_ENV), set(STRIPE_API_KEY_ENV)) {
        (Some(name), _) => read_parameter(aws, &name).await?,
        (None, Some(key)) => key,
        (None, None) => return Ok(None),
    };
    let base = set(STRIPE_API_BASE_ENV).unwrap_or_else(|| DEFAULT_STRIPE_API_BASE.to_string());
    let api = crate::stripe_api::StripeApi::new(&base, key.trim(), STRIPE_API_TIMEOUT)
        .map_err(|e| ConfigError::StripeApi(e.to_string()))?;
    Ok(Some(std::sync::Arc::new(api)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn parameter_wins_over_plain_secret() {
        assert_eq!(
            SecretSource::from_lookup(env(&[
                (SECRET_PARAM_ENV, "/p/stripe"),
                (SECRET_ENV, "whsec_x")
            ]))
            .ok(),
            Some(SecretSource::Ssm("/p/stripe".into()))
        );
        assert_eq!(
            SecretSource::from_lookup(env(&[(SECRET_PARAM_ENV, " "), (SECRET_ENV, "whsec_x")]))
                .ok(),
            Some(SecretSource::Env("whsec_x".into()))
        );
        assert!(matches!(
            SecretSource::from_lookup(env(&[])),
            Err(ConfigError::NotConfigured)
        ));
    }

    #[test]
    fn tracking_key_sources() {
        const K: &str = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            TrackingKeySource::from_lookup(env(&[
                (TRACKING_KEY_PARAM_ENV, "/p/tracking"),
                (TRACKING_KEY_ENV, K)
            ]))
            .ok(),
            Some(TrackingKeySource::Ssm("/p/tracking".into()))
        );
        let src = TrackingKeySource::from_lookup(env(&[(TRACKING_KEY_ENV, K)])).expect("env");
        assert_eq!(format!("{src:?}"), "Env(<redacted>)");
        assert!(matches!(
            TrackingKeySource::from_lookup(env(&[])),
            Err(ConfigError::NoTrackingKey)
        ));
        assert!(key_ring_from_list(K, "p").is_ok());
        assert!(key_ring_from_list(&format!("{K},{K}x"), "p").is_ok());
        assert!(matches!(
            key_ring_from_list("short", "p"),
            Err(ConfigError::BadTrackingKey { .. })
        ));
        assert!(matches!(
            key_ring_from_list(&format!(",{K}"), "p"),
            Err(ConfigError::BadTrackingKey { .. })
        ));
    }

    #[tokio::test]
    async fn env_list_is_split() {
        let aws = aws_config::SdkConfig::builder().build();
        let s = load_secrets(&SecretSource::Env("whsec_a, whsec_b".into()), &aws)
            .await
            .expect("secrets");
        assert_eq!(s.len(), 2);
        assert!(matches!(
            load_secrets(&SecretSource::Env(",".into()), &aws).await,
            Err(ConfigError::Empty(_))
        ));
    }
}
