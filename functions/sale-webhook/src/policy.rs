//! Which events this deployment accepts, before anything is read from them:
//!
//! - `STRIPE_MODE` (`live`, the default, or `test`): an event whose `livemode` differs is never
//!   booked (a test-mode event in a live deployment would pay real commissions on fake sales);
//! - `STRIPE_CONNECT_ACCOUNTS`: events of connected accounts (`account` set) are refused unless
//!   the account is listed (comma-separated `acct_…` ids, or `*` for every account); empty or
//!   unset refuses them all. Not `account.updated`: partners' payout accounts send it about
//!   themselves, it books no money (it only keeps the account's `transfers` capability), and
//!   every partner paid by Stripe Connect needs it;
//! - `METRIC_NAMESPACE`: where the `NeedsAttention` metric goes (CloudWatch embedded metric
//!   format on standard output); unset, no metric line is written (tests, local runs).
//!
//! A refused event becomes a needs-attention record (answered 200): visible, never booked.

use crate::interpret::{reason_code, Envelope, Unreadable};

pub const STRIPE_MODE_ENV: &str = "STRIPE_MODE";
pub const CONNECT_ACCOUNTS_ENV: &str = "STRIPE_CONNECT_ACCOUNTS";
pub const METRIC_NAMESPACE_ENV: &str = "METRIC_NAMESPACE";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeMode {
    Live,
    Test,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectAccounts {
    Refuse,
    Any,
    Only(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventPolicy {
    pub mode: StripeMode,
    pub connect: ConnectAccounts,
    pub metric_namespace: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {name}: {reason}")]
pub struct PolicyError {
    pub name: &'static str,
    pub reason: String,
}

impl EventPolicy {
    /// A test deployment that accepts no Connect events and writes no metric (tests, `make dev`).
    pub fn test_mode() -> Self {
        EventPolicy {
            mode: StripeMode::Test,
            connect: ConnectAccounts::Refuse,
            metric_namespace: None,
        }
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, PolicyError> {
        let set = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mode = match set(STRIPE_MODE_ENV).as_deref() {
            None | Some("live") => StripeMode::Live,
            Some("test") => StripeMode::Test,
            Some(other) => {
                return Err(PolicyError {
                    name: STRIPE_MODE_ENV,
                    reason: format!("{other:?}: expected live or test"),
                })
            }
        };
        let connect = match set(CONNECT_ACCOUNTS_ENV).as_deref() {
            None => ConnectAccounts::Refuse,
            Some("*") => ConnectAccounts::Any,
            Some(list) => {
                let ids: Vec<String> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if let Some(bad) = ids.iter().find(|id| !id.starts_with("acct_")) {
                    return Err(PolicyError {
                        name: CONNECT_ACCOUNTS_ENV,
                        reason: format!("{bad:?} is not an account id (acct_…) or *"),
                    });
                }
                ConnectAccounts::Only(ids)
            }
        };
        Ok(EventPolicy {
            mode,
            connect,
            metric_namespace: set(METRIC_NAMESPACE_ENV),
        })
    }

    pub fn from_env() -> Result<Self, PolicyError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Why this deployment refuses the event, if it does.
    pub fn refusal(&self, env: &Envelope) -> Option<Unreadable> {
        let live = self.mode == StripeMode::Live;
        if env.livemode != live {
            return Some(Unreadable {
                code: reason_code::LIVEMODE_MISMATCH,
                reason: format!(
                    "a {} event in a {} deployment (STRIPE_MODE={}): never booked",
                    if env.livemode {
                        "live-mode"
                    } else {
                        "test-mode"
                    },
                    if live { "live" } else { "test" },
                    if live { "live" } else { "test" },
                ),
            });
        }
        if let Some(account) = env
            .account
            .as_ref()
            .filter(|_| env.kind != "account.updated")
        {
            let accepted = match &self.connect {
                ConnectAccounts::Refuse => false,
                ConnectAccounts::Any => true,
                ConnectAccounts::Only(ids) => ids.iter().any(|a| a == account),
            };
            if !accepted {
                return Some(Unreadable {
                    code: reason_code::CONNECT_ACCOUNT,
                    reason: format!(
                        "an event of connected account {account}, which {CONNECT_ACCOUNTS_ENV} does not list"
                    ),
                });
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(livemode: bool, account: Option<&str>) -> Envelope {
        Envelope {
            id: "evt_1".into(),
            kind: "invoice.paid".into(),
            created_ms: 0,
            api_version: None,
            livemode,
            account: account.map(str::to_string),
        }
    }

    fn policy(vars: &[(&str, &str)]) -> Result<EventPolicy, PolicyError> {
        EventPolicy::from_lookup(|k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn live_by_default_and_mode_mismatches_are_refused_both_ways() {
        let live = policy(&[]).unwrap();
        assert_eq!(live.mode, StripeMode::Live);
        assert!(live.refusal(&env(true, None)).is_none());
        let r = live.refusal(&env(false, None)).unwrap();
        assert_eq!(r.code, reason_code::LIVEMODE_MISMATCH);
        assert!(r.reason.contains("test-mode event in a live deployment"));
        let test = policy(&[(STRIPE_MODE_ENV, "test")]).unwrap();
        assert!(test.refusal(&env(false, None)).is_none());
        assert!(test.refusal(&env(true, None)).is_some());
        assert!(policy(&[(STRIPE_MODE_ENV, "prod")]).is_err());
    }

    #[test]
    fn connect_events_only_of_listed_accounts() {
        // (setting, account, accepted)
        let cases = [
            (None, "acct_1", false),
            (Some(""), "acct_1", false),
            (Some("*"), "acct_1", true),
            (Some("acct_1, acct_2"), "acct_2", true),
            (Some("acct_1"), "acct_3", false),
        ];
        for (setting, account, accepted) in cases {
            let mut vars = vec![(STRIPE_MODE_ENV, "test")];
            if let Some(s) = setting {
                vars.push((CONNECT_ACCOUNTS_ENV, s));
            }
            let p = policy(&vars).unwrap();
            let r = p.refusal(&env(false, Some(account)));
            assert_eq!(r.is_none(), accepted, "{setting:?} {account}");
            if let Some(r) = r {
                assert_eq!(r.code, reason_code::CONNECT_ACCOUNT);
            }
            // Events of the platform itself are never refused for Connect, nor a connected
            // account's own account.updated (a partner's payout account).
            assert!(p.refusal(&env(false, None)).is_none());
            let mut own = env(false, Some(account));
            own.kind = "account.updated".into();
            assert!(p.refusal(&own).is_none());
        }
        assert!(policy(&[(CONNECT_ACCOUNTS_ENV, "cus_1")]).is_err());
    }
}
