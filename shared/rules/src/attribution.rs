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

/// How long a repeat click of the same visitor on the same link counts as the first one (it
/// gets the first click's id and is not counted again): one hour of business time.
pub const CLICK_DEDUP_WINDOW_MS: i64 = 3_600_000;

/// True when a click at `at_ms` repeats one at `first_at_ms` (same link, same visitor) within
/// [`CLICK_DEDUP_WINDOW_MS`]. A first click stamped later than `at_ms` (clock skew between
/// edge locations) is a repeat too.
pub fn is_repeat_click(first_at_ms: i64, at_ms: i64) -> bool {
    at_ms.saturating_sub(first_at_ms) < CLICK_DEDUP_WINDOW_MS
}

/// A program's cookie window: a click counts for `cookie_days` days of exactly 24 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookieWindow {
    /// The program's cookie duration in days.
    pub cookie_days: u32,
}

impl CookieWindow {
    /// The earliest cause time that still counts at business time `at`.
    pub fn start(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at.checked_sub_signed(TimeDelta::days(i64::from(self.cookie_days)))
            .unwrap_or(DateTime::<Utc>::MIN_UTC)
    }
    /// True when a click at `clicked_at` still counts at `at` (both ends included). A click in
    /// the future of `at` is outside.
    pub fn contains(&self, clicked_at: DateTime<Utc>, at: DateTime<Utc>) -> bool {
        clicked_at >= self.start(at) && clicked_at <= at
    }
    /// True when a click at `clicked_at` has expired by `at` (a click later than `at` has not).
    pub fn expired(&self, clicked_at: DateTime<Utc>, at: DateTime<Utc>) -> bool {
        clicked_at < self.start(at)
    }
}

/// Something that may attribute a customer to a partner: a click, a binding of the same
/// e-mail under another customer key, an invitation, a promotion code on the invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CauseCandidate {
    /// The partner it credits.
    pub partner_id: String,
    /// What it is.
    pub cause: BindingCause,
    /// Business time of the cause.
    pub at: DateTime<Utc>,
}

/// The one order every choice among causes uses: business time, then the cause's own id
/// ([`BindingCause::tie_key`]), then the partner id. First-click picks the smallest, last-click
/// the largest, so a choice never depends on the order candidates were found or arrived in.
fn cause_order(c: &CauseCandidate) -> (DateTime<Utc>, String, &str) {
    (c.at, c.cause.tie_key(), c.partner_id.as_str())
}

/// The cause that wins under the program's model among `candidates` (all of which count).
pub fn choose_cause(
    model: AttributionModel,
    candidates: &[CauseCandidate],
) -> Option<&CauseCandidate> {
    match model {
        AttributionModel::FirstClick => candidates.iter().min_by_key(|c| cause_order(c)),
        AttributionModel::LastClick => candidates.iter().max_by_key(|c| cause_order(c)),
    }
}

/// Does `new` replace `existing` under the model (the same order as [`choose_cause`])?
pub fn new_cause_wins(
    model: AttributionModel,
    existing: &CauseCandidate,
    new: &CauseCandidate,
) -> bool {
    match model {
        AttributionModel::FirstClick => cause_order(new) < cause_order(existing),
        AttributionModel::LastClick => cause_order(new) > cause_order(existing),
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

impl ClickCandidate {
    /// The click as a cause.
    pub fn as_cause(&self) -> CauseCandidate {
        CauseCandidate {
            partner_id: self.partner_id.clone(),
            cause: BindingCause::Click {
                click_id: self.click_id.clone(),
            },
            at: self.clicked_at,
        }
    }
}

/// The click that attributes a customer at business time `at` (sign-up or checkout).
///
/// A click counts only when it lies inside the cookie window `[at − cookie_days, at]` (both
/// ends included, days of exactly 24 hours, [`CookieWindow`]) and, when the customer already
/// has a first paid sale, not after that sale (`clicked_at <= customer_first_paid_sale_at`):
/// later clicks never steal an existing customer. Among the counting clicks the choice is
/// [`choose_cause`]'s: [`AttributionModel::FirstClick`] picks the earliest and
/// [`AttributionModel::LastClick`] the latest; ties on `clicked_at` are broken by `click_id`
/// (smallest for first-click, largest for last-click), so the choice does not depend on the
/// order of `clicks`.
pub fn choose_click(
    model: AttributionModel,
    clicks: &[ClickCandidate],
    cookie_days: u32,
    at: DateTime<Utc>,
    customer_first_paid_sale_at: Option<DateTime<Utc>>,
) -> Option<&ClickCandidate> {
    let window = CookieWindow { cookie_days };
    let eligible: Vec<(usize, CauseCandidate)> = clicks
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            window.contains(c.clicked_at, at)
                && customer_first_paid_sale_at.is_none_or(|s| {
                    binding_covers_sale(c.clicked_at.timestamp_millis(), s.timestamp_millis())
                })
        })
        .map(|(i, c)| (i, c.as_cause()))
        .collect();
    let causes: Vec<CauseCandidate> = eligible.iter().map(|(_, c)| c.clone()).collect();
    let winner = choose_cause(model, &causes)?;
    let pos = causes.iter().position(|c| c == winner)?;
    clicks.get(eligible.get(pos)?.0)
}

/// True when a binding whose cause happened at `cause_at` covers a sale paid at `paid_at`: a
/// binding never earns on money paid before its cause. The payment provider stamps a payment
/// in whole seconds (Stripe's `created`), so a cause counts up to the end of the payment's
/// second: a lead recorded at 12:00:00.400 covers an invoice paid at 12:00:00.
pub fn binding_covers_sale(cause_at_ms: i64, paid_at_ms: i64) -> bool {
    cause_at_ms.div_euclid(1000) <= paid_at_ms.div_euclid(1000)
}

/// True when a binding with `cause` (at `cause_at_ms`) covers a sale paid at `paid_at_ms`: an
/// operator's assignment covers every sale of the customer (it is how an operator reassigns
/// sales that waited, e.g. those of a banned partner); any other cause covers the sales paid
/// from its own time on ([`binding_covers_sale`]).
pub fn binding_covers(cause: &BindingCause, cause_at_ms: i64, paid_at_ms: i64) -> bool {
    matches!(cause, BindingCause::Manual { .. }) || binding_covers_sale(cause_at_ms, paid_at_ms)
}

/// True when a binding found by e-mail (another customer key's binding, written at
/// `lead_recorded_at_ms`) applies to a sale paid at `paid_at_ms`: only to invoices paid after
/// the lead was recorded (same second included, as in [`binding_covers_sale`]), so an e-mail
/// match never claims money paid before anyone referred the customer.
pub fn email_binding_applies(lead_recorded_at_ms: i64, paid_at_ms: i64) -> bool {
    binding_covers_sale(lead_recorded_at_ms, paid_at_ms)
}

/// How a commission was attributed, recorded on the binding's sales and shown to operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionMethod {
    /// A tracked click on a partner link.
    Click,
    /// A partner code entered at sign-up.
    PartnerCode,
    /// A partner's promotion code (at checkout, or on the invoice).
    PromotionCode,
    /// Another customer key's binding with the same e-mail.
    Email,
    /// The partner's invitation of the e-mail.
    Invite,
    /// An operator's assignment.
    Manual,
}

impl AttributionMethod {
    /// The method of a binding with `cause`; `via_email` when the binding was found by e-mail
    /// under another customer key.
    pub fn of(cause: &BindingCause, via_email: bool) -> Self {
        if via_email {
            return AttributionMethod::Email;
        }
        match cause {
            BindingCause::Click { .. } => AttributionMethod::Click,
            BindingCause::Code { .. } => AttributionMethod::PartnerCode,
            BindingCause::Coupon { .. } => AttributionMethod::PromotionCode,
            BindingCause::Invite => AttributionMethod::Invite,
            BindingCause::Manual { .. } => AttributionMethod::Manual,
        }
    }

    /// Stable name (as stored).
    pub fn as_str(self) -> &'static str {
        match self {
            AttributionMethod::Click => "click",
            AttributionMethod::PartnerCode => "partner_code",
            AttributionMethod::PromotionCode => "promotion_code",
            AttributionMethod::Email => "email",
            AttributionMethod::Invite => "invite",
            AttributionMethod::Manual => "manual",
        }
    }
}

/// What a new cause does to an existing binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebindDecision {
    /// The binding stays as it is.
    Keep,
    /// The binding moves to the new cause.
    Move,
}

/// Whether a new cause moves an existing binding, so that the binding that stands never depends
/// on the order causes arrived in:
/// - an operator's assignment moves it unless it is the very same (partner and cause); an
///   operator's binding is moved only by another operator;
/// - otherwise only causes that count decide: before the customer's first paid sale every cause
///   counts, after it only causes at or before that sale ([`binding_covers_sale`]); a cause that
///   counts moves a binding whose cause does not, and between two that count the program's model
///   decides ([`new_cause_wins`], the order of [`choose_cause`]).
///
/// So the binding is always the model's choice among every cause that counts (first-click: the
/// earliest; last-click: the latest before the first paid sale), whatever the arrival order.
/// A move may keep the partner and change only the cause (its time decides what it covers).
pub fn rebind_decision(
    model: AttributionModel,
    existing: &CauseCandidate,
    new: &CauseCandidate,
    manual: bool,
    first_paid_sale_at: Option<DateTime<Utc>>,
) -> RebindDecision {
    let counts = |c: &CauseCandidate| {
        first_paid_sale_at
            .is_none_or(|f| binding_covers_sale(c.at.timestamp_millis(), f.timestamp_millis()))
    };
    let is_manual = |c: &CauseCandidate| matches!(c.cause, BindingCause::Manual { .. });
    let moves = if manual {
        !(existing.partner_id == new.partner_id && existing.cause == new.cause)
    } else if is_manual(existing) || !counts(new) {
        false
    } else {
        !counts(existing) || new_cause_wins(model, existing, new)
    };
    if moves {
        RebindDecision::Move
    } else {
        RebindDecision::Keep
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

impl BindingCause {
    /// A stable id of the cause, the tie-break between causes at the same business time.
    pub fn tie_key(&self) -> String {
        match self {
            BindingCause::Click { click_id } => format!("click:{click_id}"),
            BindingCause::Code { code } => format!("code:{code}"),
            BindingCause::Coupon { promotion_code } => format!("coupon:{promotion_code}"),
            BindingCause::Invite => "invite".to_string(),
            BindingCause::Manual { reason, operator } => format!("manual:{operator}:{reason}"),
        }
    }
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

    fn cause(partner: &str, cause: BindingCause, at: DateTime<Utc>) -> CauseCandidate {
        CauseCandidate {
            partner_id: partner.into(),
            cause,
            at,
        }
    }
    fn code(c: &str) -> BindingCause {
        BindingCause::Code { code: c.into() }
    }

    #[test]
    fn one_order_for_every_choice() {
        use AttributionModel::*;
        let at = t(1, 0);
        // (candidates, first-click winner, last-click winner)
        let cases: Vec<(Vec<CauseCandidate>, &str, &str)> = vec![
            // time decides
            (
                vec![
                    cause("x", code("x"), t(2, 1)),
                    cause("y", code("y"), t(2, 2)),
                ],
                "x",
                "y",
            ),
            // same time: the cause's id decides (code:a < code:b), not the partner id
            (
                vec![cause("z", code("a"), at), cause("a", code("b"), at)],
                "z",
                "a",
            ),
            // same time, same cause id: the partner id decides
            (
                vec![
                    cause("q", BindingCause::Invite, at),
                    cause("p", BindingCause::Invite, at),
                ],
                "p",
                "q",
            ),
        ];
        for (cands, first, last) in cases {
            let mut rev = cands.clone();
            rev.reverse();
            for c in [&cands, &rev] {
                assert_eq!(choose_cause(FirstClick, c).unwrap().partner_id, first);
                assert_eq!(choose_cause(LastClick, c).unwrap().partner_id, last);
            }
            // the binding decision agrees with the choice
            let (a, b) = (&cands[0], &cands[1]);
            let first_is_b = choose_cause(FirstClick, &cands).unwrap() == b;
            assert_eq!(new_cause_wins(FirstClick, a, b), first_is_b);
            assert_eq!(new_cause_wins(LastClick, a, b), !first_is_b);
        }
        assert!(choose_cause(FirstClick, &[]).is_none());
    }

    #[test]
    fn rebinding() {
        use AttributionModel::*;
        use RebindDecision::*;
        let early = cause("x", code("x"), t(2, 1));
        let late = cause("y", code("y"), t(2, 2));
        let same_partner_later = cause("x", code("x2"), t(2, 3));
        let manual = cause(
            "y",
            BindingCause::Manual {
                reason: "r".into(),
                operator: "o".into(),
            },
            t(2, 4),
        );
        let before_late = Some(t(2, 2) + TimeDelta::milliseconds(500));
        let between = Some(t(2, 1) + TimeDelta::milliseconds(1500));
        // (model, existing, new, manual, first paid sale, decision)
        let cases = [
            (FirstClick, &early, &late, false, None, Keep),
            (FirstClick, &late, &early, false, None, Move),
            (LastClick, &early, &late, false, None, Move),
            (LastClick, &late, &early, false, None, Keep),
            // after the first paid sale only causes at or before it count
            (LastClick, &early, &late, false, before_late, Move),
            (LastClick, &early, &late, false, between, Keep),
            (FirstClick, &late, &early, false, before_late, Move),
            // a cause that counts replaces one that does not, whatever the model
            (LastClick, &late, &early, false, between, Move),
            (
                FirstClick,
                &same_partner_later,
                &late,
                false,
                before_late,
                Move,
            ),
            // the same partner with a later cause: the cause moves under last-click
            (LastClick, &early, &same_partner_later, false, None, Move),
            (FirstClick, &early, &same_partner_later, false, None, Keep),
            // operators
            (FirstClick, &early, &manual, true, between, Move),
            (FirstClick, &manual, &manual, true, between, Keep),
            (LastClick, &manual, &late, false, None, Keep),
        ];
        for (model, existing, new, is_manual, paid, want) in cases {
            assert_eq!(
                rebind_decision(model, existing, new, is_manual, paid),
                want,
                "{model:?} {existing:?} -> {new:?} (first paid {paid:?})"
            );
        }
    }

    /// Whatever order causes arrive in, applying `rebind_decision` one by one leaves the
    /// model's choice among the causes that count.
    #[test]
    fn rebinding_does_not_depend_on_arrival_order() {
        use AttributionModel::*;
        let causes = [
            cause("a", code("a"), t(2, 1)),
            cause("b", code("b"), t(2, 3)),
            cause("a", code("a2"), t(2, 5)),
            cause("c", BindingCause::Invite, t(2, 3)),
        ];
        let firsts = [None, Some(t(2, 4)), Some(t(2, 2)), Some(t(2, 6))];
        for model in [FirstClick, LastClick] {
            for first in firsts {
                let counting: Vec<CauseCandidate> = causes
                    .iter()
                    .filter(|c| first.is_none_or(|f| c.at <= f))
                    .cloned()
                    .collect();
                let want = choose_cause(model, &counting).cloned();
                for order in permutations(causes.len()) {
                    let mut standing: Option<CauseCandidate> = None;
                    for i in order {
                        let new = &causes[i];
                        standing = match standing {
                            None => Some(new.clone()),
                            Some(s) => match rebind_decision(model, &s, new, false, first) {
                                RebindDecision::Move => Some(new.clone()),
                                RebindDecision::Keep => Some(s),
                            },
                        };
                    }
                    if let Some(w) = &want {
                        assert_eq!(standing.as_ref(), Some(w), "{model:?} first paid {first:?}");
                    }
                }
            }
        }
    }

    fn permutations(n: usize) -> Vec<Vec<usize>> {
        if n == 0 {
            return vec![vec![]];
        }
        let mut out = vec![];
        for p in permutations(n - 1) {
            for i in 0..=p.len() {
                let mut q = p.clone();
                q.insert(i, n - 1);
                out.push(q);
            }
        }
        out
    }

    #[test]
    fn windows_and_coverage() {
        let w = CookieWindow { cookie_days: 60 };
        let at = t(1, 0) + TimeDelta::days(60);
        assert!(w.contains(t(1, 0), at));
        assert!(!w.contains(t(1, 0) - TimeDelta::seconds(1), at));
        assert!(w.expired(t(1, 0) - TimeDelta::seconds(1), at));
        assert!(!w.contains(at + TimeDelta::seconds(1), at));
        assert!(!w.expired(at + TimeDelta::seconds(1), at));
        // (cause at ms, paid at ms, covered): the payment's second is whole
        for (cause_at, paid_at, covered) in [
            (1_000, 1_000, true),
            (999, 1_000, true),
            (1_001, 1_000, true),
            (1_999, 1_000, true),
            (2_000, 1_000, false),
            (-1, 0, true),
            (0, -1, false),
        ] {
            assert_eq!(
                binding_covers_sale(cause_at, paid_at),
                covered,
                "{cause_at} {paid_at}"
            );
        }
        assert!(email_binding_applies(1_400, 1_000));
        let manual = BindingCause::Manual {
            reason: "r".into(),
            operator: "o".into(),
        };
        assert!(binding_covers(&manual, 5_000, 1_000));
        assert!(!binding_covers(&code("x"), 5_000, 1_000));
        assert!(!email_binding_applies(2_000, 1_000));
        assert_eq!(
            AttributionMethod::of(&BindingCause::Invite, true),
            AttributionMethod::Email
        );
        assert_eq!(
            AttributionMethod::of(&code("x"), false).as_str(),
            "partner_code"
        );
        assert!(is_repeat_click(0, CLICK_DEDUP_WINDOW_MS - 1));
        assert!(!is_repeat_click(0, CLICK_DEDUP_WINDOW_MS));
        assert!(is_repeat_click(10, 9));
    }
}
