//! Settings read once at cold start. Every value is validated here, so a bad deployment fails at
//! init (visible in the logs) instead of on a visitor's click.
//!
//! | variable                  | default     | meaning |
//! |---------------------------|-------------|---------|
//! | `TABLE_NAME`              | (required)  | the single table (read by `storage::Table::from_env`) |
//! | `TRACKING_KEY`            | (required)  | HMAC key signing click ids and hashing visitors, at least 32 bytes |
//! | `TRACKING_KEYS_PREVIOUS`  | none        | comma-separated previous keys, still accepted when verifying click ids |
//! | `FALLBACK_URL`            | none        | where unknown/disabled links go; unset: a small 404 page |
//! | `COOKIE_DOMAIN`           | none        | `Domain` of the tracking cookies (e.g. `.example.com`); unset: host-only |
//! | `CLICK_PARAM`             | `ref_click` | query parameter carrying the click id to the merchant |
//! | `CLICK_WRITE_TIMEOUT_MS`  | `250`       | longest wait for the click write before answering anyway (1..=5000) |
//! | `LINK_CACHE_TTL_SECONDS`  | `60`        | link + program cache lifetime (0..=60; 0 disables the cache) |
//! | `LINK_NEGATIVE_TTL_SECONDS` | `10`      | lifetime of cached "no such link" answers (0..=60) |
//! | `WARM_UP`                 | `true`      | one GetItem during init so the first click skips the TLS handshake |
//!
//! `TRACKING_KEY` comes from the environment for now; in AWS the template fills it from the SSM
//! parameter named by `TrackingKeySecretParameter` (see template.yaml).

use std::time::Duration;

use tracking::KeyRing;

pub const DEFAULT_CLICK_PARAM: &str = "ref_click";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("{name}: {reason}")]
    Invalid { name: &'static str, reason: String },
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

/// Everything the handler needs to know besides its collaborators.
#[derive(Debug, Clone)]
pub struct Config {
    pub fallback_url: Option<String>,
    pub cookie_domain: Option<String>,
    pub click_param: String,
    pub write_timeout: Duration,
    pub cache_ttl: Duration,
    pub negative_cache_ttl: Duration,
    pub warm_up: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fallback_url: None,
            cookie_domain: None,
            click_param: DEFAULT_CLICK_PARAM.into(),
            write_timeout: Duration::from_millis(250),
            cache_ttl: Duration::from_secs(60),
            negative_cache_ttl: Duration::from_secs(10),
            warm_up: true,
        }
    }
}

/// The longest a cached link may be served: disabling a link takes effect within this.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(60);

impl Config {
    /// From the process environment.
    pub fn from_env() -> Result<(Config, KeyRing), ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// From any name → value lookup (tests pass a map). Blank values count as unset.
    pub fn from_lookup(
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<(Config, KeyRing), ConfigError> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let key = get("TRACKING_KEY").ok_or(ConfigError::Missing("TRACKING_KEY"))?;
        let keys = KeyRing::from_secrets(&key, get("TRACKING_KEYS_PREVIOUS").as_deref())
            .map_err(|e| invalid("TRACKING_KEY", e.to_string()))?;
        let d = Config::default();
        let fallback_url = get("FALLBACK_URL").map(|u| u.trim().to_string());
        if let Some(u) = &fallback_url {
            let ok = url::Url::parse(u)
                .is_ok_and(|p| matches!(p.scheme(), "http" | "https") && p.host().is_some());
            if !ok {
                return Err(invalid("FALLBACK_URL", "must be an absolute http(s) URL"));
            }
        }
        let cookie_domain = get("COOKIE_DOMAIN").map(|c| c.trim().to_ascii_lowercase());
        if let Some(c) = &cookie_domain {
            let host = c.strip_prefix('.').unwrap_or(c);
            let ok = !host.is_empty()
                && host.split('.').all(|l| {
                    !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                });
            if !ok {
                return Err(invalid(
                    "COOKIE_DOMAIN",
                    "must be a host name like .example.com",
                ));
            }
        }
        let click_param = get("CLICK_PARAM").unwrap_or(d.click_param);
        if click_param.is_empty()
            || click_param.len() > 64
            || !click_param
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(invalid("CLICK_PARAM", "must be 1 to 64 of [A-Za-z0-9_-]"));
        }
        let num =
            |name: &'static str, default: u64, max: u64, min: u64| -> Result<u64, ConfigError> {
                match get(name) {
                    None => Ok(default),
                    Some(v) => match v.trim().parse::<u64>() {
                        Ok(n) if (min..=max).contains(&n) => Ok(n),
                        _ => Err(invalid(
                            name,
                            format!("must be a whole number in {min}..={max}"),
                        )),
                    },
                }
            };
        let write_timeout = Duration::from_millis(num(
            "CLICK_WRITE_TIMEOUT_MS",
            d.write_timeout.as_millis() as u64,
            5_000,
            1,
        )?);
        let max_ttl = MAX_CACHE_TTL.as_secs();
        let cache_ttl = Duration::from_secs(num(
            "LINK_CACHE_TTL_SECONDS",
            d.cache_ttl.as_secs(),
            max_ttl,
            0,
        )?);
        let negative_cache_ttl = Duration::from_secs(num(
            "LINK_NEGATIVE_TTL_SECONDS",
            d.negative_cache_ttl.as_secs(),
            max_ttl,
            0,
        )?);
        let warm_up = match get("WARM_UP").map(|v| v.trim().to_ascii_lowercase()) {
            None => d.warm_up,
            Some(v) if v == "true" || v == "1" => true,
            Some(v) if v == "false" || v == "0" => false,
            Some(_) => return Err(invalid("WARM_UP", "must be true or false")),
        };
        Ok((
            Config {
                fallback_url,
                cookie_domain,
                click_param,
                write_timeout,
                cache_ttl,
                negative_cache_ttl,
                warm_up,
            },
            keys,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load(pairs: &[(&str, &str)]) -> Result<(Config, KeyRing), ConfigError> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|n| m.get(n).cloned())
    }

    const KEY: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn defaults() {
        let (c, keys) = load(&[("TRACKING_KEY", KEY)]).unwrap();
        assert_eq!(c.click_param, "ref_click");
        assert_eq!(c.write_timeout, Duration::from_millis(250));
        assert_eq!(c.cache_ttl, Duration::from_secs(60));
        assert_eq!(c.fallback_url, None);
        assert_eq!(keys.all().count(), 1);
    }

    #[test]
    fn validation() {
        assert_eq!(load(&[]).unwrap_err(), ConfigError::Missing("TRACKING_KEY"));
        assert!(load(&[("TRACKING_KEY", "short")]).is_err());
        let bad = [
            ("FALLBACK_URL", "javascript:alert(1)"),
            ("FALLBACK_URL", "/relative"),
            ("COOKIE_DOMAIN", "exa mple.com"),
            ("COOKIE_DOMAIN", "."),
            ("CLICK_PARAM", "a b"),
            ("CLICK_WRITE_TIMEOUT_MS", "0"),
            ("CLICK_WRITE_TIMEOUT_MS", "x"),
            ("LINK_CACHE_TTL_SECONDS", "61"),
            ("WARM_UP", "maybe"),
        ];
        for (k, v) in bad {
            assert!(load(&[("TRACKING_KEY", KEY), (k, v)]).is_err(), "{k}={v}");
        }
        let (c, keys) = load(&[
            ("TRACKING_KEY", KEY),
            ("TRACKING_KEYS_PREVIOUS", &KEY.replace('0', "1")),
            ("FALLBACK_URL", "https://example.com/"),
            ("COOKIE_DOMAIN", ".Example.com"),
            ("CLICK_PARAM", "via"),
            ("CLICK_WRITE_TIMEOUT_MS", "100"),
            ("LINK_CACHE_TTL_SECONDS", "0"),
            ("WARM_UP", "false"),
        ])
        .unwrap();
        assert_eq!(c.cookie_domain.as_deref(), Some(".example.com"));
        assert_eq!(c.click_param, "via");
        assert_eq!(c.cache_ttl, Duration::ZERO);
        assert!(!c.warm_up);
        assert_eq!(keys.all().count(), 2);
    }
}
