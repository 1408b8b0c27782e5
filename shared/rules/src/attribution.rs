//! Attribution: who referred a customer.
//!
//! * [`normalize_email`] gives the canonical form of an address used for self-referral checks
//!   and de-duplication.
//! * [`choose_click`] picks the click that wins a customer under the program's
//!   [`AttributionModel`] and cookie window.
//! * [`BindingCause`] records why a customer was bound to a partner.
//!
//! Everything here is pure: times are business times handed in by the caller.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// Longest e-mail address accepted (RFC 5321 path limit minus the angle brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// Which click wins when a customer clicked several partners' links inside the cookie window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionModel {
    /// The earliest click in the window wins ("you are the first to have referred", Ontraport).
    #[default]
    FirstClick,
    /// The latest click in the window wins.
    LastClick,
}

/// Why an e-mail address was rejected by [`normalize_email`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    /// Nothing left after trimming.
    #[error("e-mail address is empty")]
    Empty,
    /// Longer than [`MAX_EMAIL_LEN`] characters.
    #[error("e-mail address is longer than {MAX_EMAIL_LEN} characters ({0})")]
    TooLong(usize),
    /// No `@`, or more than one.
    #[error("e-mail address must contain exactly one '@'")]
    AtSign,
    /// Nothing before the `@` (or only a `+tag` / dots).
    #[error("e-mail address has an empty local part")]
    EmptyLocalPart,
    /// Nothing after the `@`.
    #[error("e-mail address has an empty domain")]
    EmptyDomain,
    /// Whitespace or control characters inside the address.
    #[error("e-mail address contains whitespace or control characters")]
    Whitespace,
    /// The domain has no dot, or an empty label (`a..b`, `.com`, `com.`).
    #[error("e-mail domain {0:?} is not a valid domain name")]
    BadDomain(String),
}

/// A canonical e-mail address: trimmed, lower-case, `+tag` removed, Gmail dots removed and
/// `googlemail.com` mapped to `gmail.com`. Only [`normalize_email`] makes one; it serializes as
/// a plain string and deserializing normalizes again.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NormalizedEmail(String);

impl NormalizedEmail {
    /// The canonical address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl fmt::Display for NormalizedEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NormalizedEmail {
    type Error = EmailError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        normalize_email(&s)
    }
}

impl From<NormalizedEmail> for String {
    fn from(e: NormalizedEmail) -> String {
        e.0
    }
}

/// Canonical form of an e-mail address.
///
/// Steps: trim; reject empty, longer than [`MAX_EMAIL_LEN`], inner whitespace or control
/// characters, anything but exactly one `@`, empty local part or domain, and a domain without a
/// dot or with an empty label; lower-case; cut the local part at the first `+` (sub-address
/// tag); for `gmail.com` and `googlemail.com` remove every `.` from the local part and map the
/// domain to `gmail.com`. A local part left empty by these steps is rejected.
///
/// Quoted local parts and IP-literal domains are not supported (they are rejected).
pub fn normalize_email(raw: &str) -> Result<NormalizedEmail, EmailError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(EmailError::Empty);
    }
    let len = s.chars().count();
    if len > MAX_EMAIL_LEN {
        return Err(EmailError::TooLong(len));
    }
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(EmailError::Whitespace);
    }
    let lower = s.to_lowercase();
    let mut parts = lower.split('@');
    let (local, domain) = match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(d), None) => (l, d),
        _ => return Err(EmailError::AtSign),
    };
    if local.is_empty() {
        return Err(EmailError::EmptyLocalPart);
    }
    if domain.is_empty() {
        return Err(EmailError::EmptyDomain);
    }
    if !domain.contains('.') || domain.split('.').any(str::is_empty) {
        return Err(EmailError::BadDomain(domain.to_string()));
    }
    let local = local.split('+').next().unwrap_or("");
    let (local, domain) = match domain {
        "gmail.com" | "googlemail.com" => (local.replace('.', ""), "gmail.com"),
        _ => (local.to_string(), domain),
    };
    if local.is_empty() {
        return Err(EmailError::EmptyLocalPart);
    }
    Ok(NormalizedEmail(format!("{local}@{domain}")))
}

/// True when the customer's and the partner's addresses are the same person's after
/// [`normalize_email`]. If either address does not normalize, the trimmed, lower-cased raw
/// strings are compared instead (two empty strings are never a match).
pub fn is_self_referral(customer_email: &str, partner_email: &str) -> bool {
    match (
        normalize_email(customer_email),
        normalize_email(partner_email),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => {
            let a = customer_email.trim().to_lowercase();
            let b = partner_email.trim().to_lowercase();
            !a.is_empty() && a == b
        }
    }
}

/// A recorded click that may attribute a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickCandidate {
    /// Unique id of the click (the click-id cookie value).
    pub click_id: String,
    /// Partner who owns the link.
    pub partner_id: String,
    /// Code of the link that was clicked.
    pub link_code: String,
    /// Business time of the click.
    pub clicked_at: DateTime<Utc>,
}

/// The click that attributes a customer at business time `at` (sign-up or checkout).
///
/// A click counts only when it lies inside the cookie window `[at − cookie_days, at]` (both
/// ends included, days of exactly 24 hours) and, when the customer already has a first paid
/// sale, not after that sale (`clicked_at <= customer_first_paid_sale_at`): later clicks never
/// steal an existing customer. Among the counting clicks [`AttributionModel::FirstClick`] picks
/// the earliest and [`AttributionModel::LastClick`] the latest; ties on `clicked_at` are broken
/// by `click_id` (smallest for first-click, largest for last-click), so the choice does not
/// depend on the order of `clicks`.
pub fn choose_click(
    model: AttributionModel,
    clicks: &[ClickCandidate],
    cookie_days: u32,
    at: DateTime<Utc>,
    customer_first_paid_sale_at: Option<DateTime<Utc>>,
) -> Option<&ClickCandidate> {
    let window_start = at
        .checked_sub_signed(TimeDelta::days(i64::from(cookie_days)))
        .unwrap_or(DateTime::<Utc>::MIN_UTC);
    let eligible = clicks.iter().filter(|c| {
        c.clicked_at >= window_start
            && c.clicked_at <= at
            && customer_first_paid_sale_at.is_none_or(|s| c.clicked_at <= s)
    });
    let key = |c: &&ClickCandidate| (c.clicked_at, c.click_id.clone());
    match model {
        AttributionModel::FirstClick => eligible.min_by_key(key),
        AttributionModel::LastClick => eligible.max_by_key(key),
    }
}

/// Why a customer is bound to a partner; stored with the binding for audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BindingCause {
    /// A tracked click on a partner link.
    Click {
        /// The winning click.
        click_id: String,
    },
    /// A partner's referral code entered at sign-up.
    Code {
        /// The code as entered (already resolved to the partner).
        code: String,
    },
    /// A partner's promotion code (coupon) used at checkout.
    Coupon {
        /// The payment provider's promotion code.
        promotion_code: String,
    },
    /// The customer accepted an invitation sent by the partner.
    Invite,
    /// An operator bound the customer by hand.
    Manual {
        /// Why (free text, shown in the audit log).
        reason: String,
        /// Who did it.
        operator: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn n(s: &str) -> String {
        normalize_email(s).unwrap().to_string()
    }

    #[test]
    fn normalizes() {
        assert_eq!(n("  Alice@Example.COM "), "alice@example.com");
        assert_eq!(n("alice+promo@example.com"), "alice@example.com");
        assert_eq!(n("a.l.i.c.e@example.com"), "a.l.i.c.e@example.com");
        assert_eq!(n("A.Lice+x+y@GMail.com"), "alice@gmail.com");
        assert_eq!(n("a.lice@googlemail.com"), "alice@gmail.com");
        assert_eq!(n("bob@sub.example.co.uk"), "bob@sub.example.co.uk");
    }

    #[test]
    fn rejects_malformed() {
        use EmailError::*;
        let cases: &[(&str, EmailError)] = &[
            ("", Empty),
            ("   ", Empty),
            ("alice.example.com", AtSign),
            ("a@b@example.com", AtSign),
            ("@example.com", EmptyLocalPart),
            ("+tag@example.com", EmptyLocalPart),
            ("...@gmail.com", EmptyLocalPart),
            ("alice@", EmptyDomain),
            ("al ice@example.com", Whitespace),
            ("alice@exa\0mple.com", Whitespace),
            ("alice@localhost", BadDomain("localhost".into())),
            ("alice@example..com", BadDomain("example..com".into())),
            ("alice@.com", BadDomain(".com".into())),
            ("alice@com.", BadDomain("com.".into())),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_email(raw).unwrap_err(), *want, "{raw:?}");
        }
        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        assert_eq!(normalize_email(&long).unwrap_err(), TooLong(255));
        let ok = format!("{}@example.com", "a".repeat(242));
        assert!(normalize_email(&ok).is_ok());
    }

    #[test]
    fn self_referral() {
        assert!(is_self_referral(
            "J.Doe+aff@googlemail.com",
            "jdoe@gmail.com"
        ));
        assert!(is_self_referral("BOB@x.io", "bob+1@x.io"));
        assert!(!is_self_referral("bob@x.io", "rob@x.io"));
        // dots only matter on Gmail
        assert!(!is_self_referral("b.ob@x.io", "bob@x.io"));
        // malformed fall back to the raw comparison
        assert!(is_self_referral("bob@localhost", " BOB@localhost"));
        assert!(!is_self_referral("", ""));
    }

    #[test]
    fn serde_normalizes() {
        let e: NormalizedEmail = serde_json::from_str("\"A.B+c@Gmail.com\"").unwrap();
        assert_eq!(e.as_str(), "ab@gmail.com");
        assert_eq!(e.domain(), "gmail.com");
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"ab@gmail.com\"");
        assert!(serde_json::from_str::<NormalizedEmail>("\"nope\"").is_err());
    }

    fn t(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, d, h, 0, 0).unwrap()
    }
    fn click(id: &str, p: &str, at: DateTime<Utc>) -> ClickCandidate {
        ClickCandidate {
            click_id: id.into(),
            partner_id: p.into(),
            link_code: format!("{p}-link"),
            clicked_at: at,
        }
    }

    #[test]
    fn chooses_clicks() {
        use AttributionModel::*;
        let clicks = vec![
            click("c3", "carol", t(20, 0)),
            click("c1", "alice", t(1, 0)),
            click("c2", "bob", t(10, 0)),
            click("c4", "dave", t(25, 0)),
        ];
        let at = t(21, 0);
        // 20-day window from Mar 21: Mar 1 00:00 is exactly at the edge and counts.
        assert_eq!(
            choose_click(FirstClick, &clicks, 20, at, None)
                .unwrap()
                .click_id,
            "c1"
        );
        // 19-day window: Mar 1 is out, Mar 10 first.
        assert_eq!(
            choose_click(FirstClick, &clicks, 19, at, None)
                .unwrap()
                .click_id,
            "c2"
        );
        // Last click ignores the click after `at`.
        assert_eq!(
            choose_click(LastClick, &clicks, 60, at, None)
                .unwrap()
                .click_id,
            "c3"
        );
        // Clicks after the customer's first paid sale never count.
        assert_eq!(
            choose_click(LastClick, &clicks, 60, at, Some(t(15, 0)))
                .unwrap()
                .click_id,
            "c2"
        );
        assert!(choose_click(
            FirstClick,
            &clicks,
            60,
            at,
            Some(t(1, 0) - TimeDelta::seconds(1))
        )
        .is_none());
        assert!(choose_click(FirstClick, &[], 60, at, None).is_none());
        // A click exactly at `at` counts; ties are broken by click id, order-independent.
        let tied = vec![click("b", "x", at), click("a", "y", at)];
        assert_eq!(
            choose_click(FirstClick, &tied, 0, at, None)
                .unwrap()
                .click_id,
            "a"
        );
        assert_eq!(
            choose_click(LastClick, &tied, 0, at, None)
                .unwrap()
                .click_id,
            "b"
        );
    }

    #[test]
    fn binding_cause_serde() {
        let c = BindingCause::Manual {
            reason: "support ticket 42".into(),
            operator: "ops@example.com".into(),
        };
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(
            j,
            r#"{"type":"manual","reason":"support ticket 42","operator":"ops@example.com"}"#
        );
        assert_eq!(serde_json::from_str::<BindingCause>(&j).unwrap(), c);
        let i: BindingCause = serde_json::from_str(r#"{"type":"invite"}"#).unwrap();
        assert_eq!(i, BindingCause::Invite);
        let k: BindingCause =
            serde_json::from_str(r#"{"type":"coupon","promotion_code":"SPRING"}"#).unwrap();
        assert_eq!(
            k,
            BindingCause::Coupon {
                promotion_code: "SPRING".into()
            }
        );
    }
}
