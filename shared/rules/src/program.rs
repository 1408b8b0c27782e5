//! Program configuration, as operators declare it in YAML/JSON: the program with its commission
//! plan ([`Reward`], [`Duration`]), levels, payout settings ([`PayoutSchedule`],
//! [`AccrualPolicy`]) and deep-link allow-list, its products, and a partner's status and
//! enrollment. Types and their validation only: the algorithms over them live in `levels`,
//! `plan`, `schedule` and `payout`, above this module.
//!
//! A [`Program`] deserializes with serde (snake_case field names, unknown fields rejected so a
//! typo is an error rather than a silently ignored setting) and must pass
//! [`Program::validate`] before use. Omitted settings take the documented defaults:
//!
//! ```yaml
//! id: prog_main
//! name: Main partner program
//! default_destination: https://example.com/
//! plan:
//!   reward: { type: percentage, rate: "0.25" }   # 25% of each paid invoice
//!   duration: { type: lifetime }
//! # tiers: one, time_zone: UTC, hold_days: 90, cookie_days: 60, attribution: first_click,
//! # payout_minimum: { USD: 10000 }, accrual: { type: indefinite },
//! # payout_schedule: { type: weekly, weekday: Fri }, notify_on_commission: true, levels: [],
//! # lock_rate_at_first_sale: false, allowed_hosts: [], status: active
//! ```

use std::collections::{BTreeMap, BTreeSet};

use chrono::Weekday;
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::attribution::AttributionModel;
use crate::hosts::{url_host, DeepLinkHosts, HostPattern};
use crate::money::Currency;

/// Highest rate a partner level may pay (Kartra: "up to 40% recurring commissions").
pub const MAX_LEVEL_RATE: Decimal = Decimal::from_parts(40, 0, 0, false, 2);
/// Longest hold a program may declare, in days.
pub const MAX_HOLD_DAYS: u32 = 365;
/// Longest cookie window a program may declare, in days.
pub const MAX_COOKIE_DAYS: u32 = 3650;
/// Default hold: Ontraport's 90-day refund period.
pub const DEFAULT_HOLD_DAYS: u32 = 90;
/// Default cookie window in days.
pub const DEFAULT_COOKIE_DAYS: u32 = 60;
/// Default payout minimum: USD 100.00 (Ontraport).
pub const DEFAULT_PAYOUT_MINIMUM_USD: i64 = 10_000;

/// One-tier or two-tier program.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tiers {
    /// Only the referring partner earns.
    #[default]
    One,
    /// The partner who recruited the referring partner also earns the plan's `tier2` reward.
    Two,
}

/// Whether the program takes new clicks, enrollments and commissions.
///
/// The commission fold ([`crate::evaluate_customer`]) does not look at it: the caller
/// decides what a paused program still books. Payouts of money already earned are not blocked.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramStatus {
    /// Running.
    #[default]
    Active,
    /// Paused by the operator.
    Paused,
}

/// What a commission pays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Reward {
    /// `rate` × commission base (rate in 0..=1; `0.25` = 25%).
    Percentage {
        /// The rate.
        rate: Decimal,
    },
    /// A fixed amount per commissionable invoice, per currency in minor units. An invoice in a
    /// currency without an amount earns 0
    /// ([`CommissionReason::NoFlatAmountForCurrency`](crate::CommissionReason)).
    Flat {
        /// Amount per currency.
        amounts: BTreeMap<Currency, i64>,
    },
    /// The first sale earns only `first_sale_flat`, later payments only `rate` × base (Rekomi:
    /// "$250 flat per referred coaching-program sale + 5% RevShare on continuation").
    Hybrid {
        /// Flat amount of the first sale, per currency.
        first_sale_flat: BTreeMap<Currency, i64>,
        /// Rate on later payments.
        rate: Decimal,
    },
}

impl Reward {
    /// The percentage rate of `Percentage` and `Hybrid` rewards; `None` for `Flat`.
    pub fn percentage_rate(&self) -> Option<Decimal> {
        match self {
            Reward::Percentage { rate } | Reward::Hybrid { rate, .. } => Some(*rate),
            Reward::Flat { .. } => None,
        }
    }
}

/// For how long a customer's payments earn, counted from the customer's first sale.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Duration {
    /// Only the first sale earns (cost per sale).
    FirstSaleOnly,
    /// Every payment earns, for as long as the customer pays.
    #[default]
    Lifetime,
    /// Payments inside the half-open window `[first sale, first sale + months)`, the end
    /// computed on the local date-time in the program's time zone with calendar months
    /// (`checked_add_months`): Jan 31 + 1 month = the last day of February, and a month-12
    /// renewal at the same local time as the first sale is the first one *outside* a 12-month
    /// window. A window end in a DST gap moves forward by the gap's length; in a repeated hour
    /// it is the earlier instant.
    Months {
        /// Window length in calendar months (at least 1).
        months: u32,
    },
    /// The first `count` payments with a positive commission base, the first sale being #1.
    Payments {
        /// Number of payments (at least 1).
        count: u32,
    },
}

/// A program's commission plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommissionPlan {
    /// Tier-1 reward (the referring partner).
    pub reward: Reward,
    /// For how long payments earn (default lifetime).
    #[serde(default)]
    pub duration: Duration,
    /// Tier-2 reward (the recruiter), on the same base; required iff the program has two tiers.
    #[serde(default)]
    pub tier2: Option<Reward>,
}

impl CommissionPlan {
    /// A one-tier plan.
    pub fn new(reward: Reward, duration: Duration) -> Self {
        CommissionPlan {
            reward,
            duration,
            tier2: None,
        }
    }
}

/// When payouts run, in the program's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PayoutSchedule {
    /// Every week on `weekday` (Ontraport: each Friday). Written `Fri`, `friday`, ….
    Weekly {
        /// Day of the week payouts run.
        weekday: Weekday,
    },
    /// Every month on `day`, which must be 1..=28 so that every month has it.
    Monthly {
        /// Day of the month payouts run (1..=28).
        day: u32,
    },
}

impl Default for PayoutSchedule {
    /// Weekly on Friday.
    fn default() -> Self {
        PayoutSchedule::Weekly {
            weekday: Weekday::Fri,
        }
    }
}

/// What happens to an available balance that stays under the payout minimum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AccrualPolicy {
    /// It waits for as long as it takes (Dub's behaviour).
    #[default]
    Indefinite,
    /// Each commission may accrue for `months` calendar months from the day it became
    /// available; a commission still unpaid under the minimum after that is forfeited
    /// (Ontraport: "we allow the commission to accrue for up to six months until you have the
    /// $100 minimum").
    ForfeitAfterMonths {
        /// Months a commission may wait (at least 1).
        months: u32,
    },
    /// Once the oldest unpaid commission has waited `months` calendar months, the balance is
    /// paid even under the minimum (when nothing else blocks the payout; otherwise it waits).
    PayAfterMonths {
        /// Months the oldest commission may wait (at least 1).
        months: u32,
    },
}

impl AccrualPolicy {
    /// The months of a limited policy, `None` for [`AccrualPolicy::Indefinite`].
    pub fn months(&self) -> Option<u32> {
        match *self {
            AccrualPolicy::Indefinite => None,
            AccrualPolicy::ForfeitAfterMonths { months }
            | AccrualPolicy::PayAfterMonths { months } => Some(months),
        }
    }
}

/// What a commission's hold counts from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldAnchor {
    /// Each commission waits `hold_days` from its own sale (the default).
    #[default]
    Sale,
    /// The hold counts from the referred account's first paid sale (Ontraport: "Sales are
    /// eligible for payment after the account has passed the 90 day refund period. After that
    /// date, you will receive accrued commission for that account."): the account's commissions
    /// become available together once that sale's hold ends, and later ones at once.
    Account,
}

/// Whether payout items wait for an operator.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutReview {
    /// Items are approved when the run creates them (the default).
    #[default]
    Automatic,
    /// Items wait as `created` until an operator approves, holds or cancels them (Kartra: "All
    /// of our Affiliates are reviewed manually").
    Manual,
}

/// What a partner must reach to be promoted to a [`Level`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LevelThreshold {
    /// At least `count` distinct customers with a paid sale (positive commission base) in the
    /// program.
    ActiveCustomers {
        /// Number of customers.
        count: u32,
    },
    /// At least `minor` minor units of attributed revenue (sum of commission bases) in
    /// `currency`; other currencies do not count (no conversion anywhere).
    Revenue {
        /// Currency of the threshold.
        currency: Currency,
        /// Threshold in minor units.
        minor: i64,
    },
}

/// A partner level ("tier" in PartnerStack / Kartra wording). Level `n` (1-based) of a partner
/// is `program.levels[n - 1]`; level 0 is the base plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Level {
    /// Display name ("Silver").
    pub name: String,
    /// What promotes a partner to this level.
    pub threshold: LevelThreshold,
    /// Percentage rate that replaces the plan's percentage rate (for `Percentage` rewards and
    /// the percentage part of `Hybrid`) at this level. At most [`MAX_LEVEL_RATE`].
    pub rate: Decimal,
}

/// The branding of a program's e-mails to its partners. Every field is optional: the sender
/// falls back to the stack's (`MailFrom`), the name to the program's name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailSettings {
    /// Display name of the sender ("Demo Partners"); default the program's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    /// The From address (an address or domain verified in SES).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_address: Option<String>,
    /// Where replies go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// A line at the end of every e-mail (the merchant's postal address, a legal line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// Who partners contact with questions (an address or a URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support_contact: Option<String>,
    /// How numbers and dates are written (default en-US).
    #[serde(default)]
    pub locale: crate::display::Locale,
}

/// Longest footer (characters): a line or two, not a newsletter.
pub const MAX_EMAIL_FOOTER_CHARS: usize = 500;

impl EmailSettings {
    /// True when nothing is set.
    pub fn is_default(&self) -> bool {
        self == &EmailSettings::default()
    }

    /// Addresses look like addresses, and nothing can break out of a mail header (no control
    /// characters in any header field).
    pub fn validate(&self) -> Result<(), ProgramError> {
        for (what, v) in [
            ("email.sender_address", &self.sender_address),
            ("email.reply_to", &self.reply_to),
        ] {
            if let Some(a) = v {
                if !plausible_address(a) {
                    return Err(ProgramError::BadEmailSetting(what, a.clone()));
                }
            }
        }
        for (what, v) in [
            ("email.sender_name", &self.sender_name),
            ("email.support_contact", &self.support_contact),
        ] {
            if let Some(t) = v {
                if t.trim().is_empty() || t.chars().any(char::is_control) || t.len() > 200 {
                    return Err(ProgramError::BadEmailSetting(what, t.clone()));
                }
            }
        }
        if let Some(f) = &self.footer {
            if f.chars().count() > MAX_EMAIL_FOOTER_CHARS {
                return Err(ProgramError::BadEmailSetting("email.footer", f.clone()));
            }
        }
        Ok(())
    }
}

/// `local@domain.tld`, no spaces, quotes, angle brackets or control characters.
fn plausible_address(a: &str) -> bool {
    let Some((local, domain)) = a.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && a.len() <= 254
        && !a
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>\",;:()[]".contains(c))
}

/// A partner program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Program {
    /// Stable id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// One or two tiers (default one).
    #[serde(default)]
    pub tiers: Tiers,
    /// IANA time zone for calendar rules (cap windows, payout days); default UTC.
    #[serde(default = "default_time_zone", with = "tz_serde")]
    pub time_zone: Tz,
    /// What partners earn.
    pub plan: CommissionPlan,
    /// Days a commission stays pending before it becomes available (default 90, at most 365).
    #[serde(default = "default_hold_days")]
    pub hold_days: u32,
    /// What the hold counts from: each sale (default) or the account's first paid sale.
    #[serde(default)]
    pub hold_anchor: HoldAnchor,
    /// Cookie window in days (default 60).
    #[serde(default = "default_cookie_days")]
    pub cookie_days: u32,
    /// First- or last-click attribution (default first click).
    #[serde(default)]
    pub attribution: AttributionModel,
    /// Payout minimum per currency in minor units (default `{USD: 10000}`); see
    /// [`Program::payout_minimum_for`].
    #[serde(default = "default_payout_minimum")]
    pub payout_minimum: BTreeMap<Currency, i64>,
    /// What happens to balances that stay under the minimum (default: they wait indefinitely).
    #[serde(default)]
    pub accrual: AccrualPolicy,
    /// When payouts run (default weekly on Friday).
    #[serde(default)]
    pub payout_schedule: PayoutSchedule,
    /// Pay only partners whose tax information is approved (default true).
    #[serde(default = "default_true")]
    pub require_tax_info: bool,
    /// Whether payout items wait for an operator's approval (default automatic).
    #[serde(default)]
    pub payout_review: PayoutReview,
    /// Send the partner an e-mail for each commission (default true).
    #[serde(default = "default_true")]
    pub notify_on_commission: bool,
    /// Who the program's e-mails come from and how they are signed (default: the stack's
    /// sender, en-US).
    #[serde(default, skip_serializing_if = "EmailSettings::is_default")]
    pub email: EmailSettings,
    /// Partner levels, lowest first (default none).
    #[serde(default)]
    pub levels: Vec<Level>,
    /// Keep, per customer, the percentage rate in force at that customer's first sale
    /// (default false).
    #[serde(default)]
    pub lock_rate_at_first_sale: bool,
    /// Where a partner link without a deep link sends the visitor (http or https URL).
    pub default_destination: String,
    /// Hosts a deep link may point to, besides the default destination's host: exact host
    /// names (`shop.example.com`) or subdomain wildcards (`*.example.com`, which does not admit
    /// `example.com` itself); grammar in [`crate::hosts`].
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Active or paused (default active).
    #[serde(default)]
    pub status: ProgramStatus,
}

fn default_time_zone() -> Tz {
    Tz::UTC
}
fn default_hold_days() -> u32 {
    DEFAULT_HOLD_DAYS
}
fn default_cookie_days() -> u32 {
    DEFAULT_COOKIE_DAYS
}
fn default_true() -> bool {
    true
}
fn default_payout_minimum() -> BTreeMap<Currency, i64> {
    BTreeMap::from([(Currency::USD, DEFAULT_PAYOUT_MINIMUM_USD)])
}

/// Serde for [`Tz`] as its IANA name ("Europe/Paris").
pub mod tz_serde {
    use chrono_tz::Tz;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    /// Writes the IANA name.
    pub fn serialize<S: Serializer>(tz: &Tz, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(tz.name())
    }

    /// Reads an IANA name; unknown names are an error.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Tz, D::Error> {
        let name = String::deserialize(d)?;
        name.parse::<Tz>()
            .map_err(|_| D::Error::custom(format!("unknown IANA time zone {name:?}")))
    }
}

/// Why a program (or its products) is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    /// A required text field is empty.
    #[error("{0} must not be empty")]
    Empty(&'static str),
    /// A rate outside its allowed range.
    #[error("{what}: rate {rate} is outside 0..={max}")]
    RateOutOfRange {
        /// Which rate.
        what: String,
        /// The rate given.
        rate: Decimal,
        /// The highest allowed.
        max: Decimal,
    },
    /// A negative flat amount or payout minimum.
    #[error("{what}: amount {minor} in {currency} is negative")]
    NegativeAmount {
        /// Which amount.
        what: String,
        /// Its currency.
        currency: Currency,
        /// The amount given.
        minor: i64,
    },
    /// A flat reward without any amount: it would never pay.
    #[error("{0}: a flat reward needs at least one currency amount")]
    FlatWithoutAmounts(String),
    /// `Tiers::Two` without a tier-2 reward.
    #[error("a two-tier program needs plan.tier2")]
    Tier2Missing,
    /// A tier-2 reward on a one-tier program.
    #[error("plan.tier2 is set but the program has one tier")]
    Tier2OnOneTier,
    /// `Months{0}` or `Payments{0}`.
    #[error("the plan's duration must be at least one month / payment")]
    ZeroDuration,
    /// Hold longer than [`MAX_HOLD_DAYS`].
    #[error("hold_days {0} is more than {MAX_HOLD_DAYS}")]
    HoldTooLong(u32),
    /// Cookie window of 0 or more than [`MAX_COOKIE_DAYS`].
    #[error("cookie_days {0} must be 1..={MAX_COOKIE_DAYS}")]
    CookieDays(u32),
    /// Monthly payout day outside 1..=28.
    #[error("monthly payout day {0} must be 1..=28")]
    MonthlyDay(u32),
    /// `ForfeitAfterMonths{0}`.
    #[error("accrual months must be at least 1")]
    ZeroAccrualMonths,
    /// Levels declared on a plan without a percentage rate to replace.
    #[error("levels replace the plan's percentage rate, but the plan's reward is flat")]
    LevelsWithoutPercentage,
    /// Two levels with the same kind of threshold not strictly increasing in list order.
    #[error("level {0} ({1:?}) must have a higher threshold than the level below it")]
    LevelThresholdNotIncreasing(usize, String),
    /// A membership level that the program does not define.
    #[error("level {level} does not exist (the program has {defined} levels)")]
    UnknownLevel {
        /// The level asked for.
        level: u32,
        /// Number of levels defined.
        defined: usize,
    },
    /// The default destination is not an absolute http(s) URL with a plain host.
    #[error("default_destination {0:?} is not an http(s) URL with a valid host")]
    BadDestination(String),
    /// An allow-list entry that is not a [`HostPattern`].
    #[error(
        "allowed host {0:?} is neither a host name (shop.example.com) nor a subdomain wildcard \
         (*.example.com)"
    )]
    BadAllowedHost(String),
    /// A product row belonging to another program.
    #[error("product {product_id} belongs to program {program_id}, not {expected}")]
    ProductOfOtherProgram {
        /// The product.
        product_id: String,
        /// The row's program.
        program_id: String,
        /// The program being validated.
        expected: String,
    },
    /// The same product listed twice on a program.
    #[error("product {0} is listed twice")]
    DuplicateProduct(String),
    /// An e-mail setting that is not usable in a mail header.
    #[error("{0} {1:?} is not usable (an address like partners@example.com; no line breaks)")]
    BadEmailSetting(&'static str, String),
}

impl Program {
    /// A program with every optional setting at its default.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        plan: CommissionPlan,
        default_destination: impl Into<String>,
    ) -> Self {
        Program {
            id: id.into(),
            name: name.into(),
            tiers: Tiers::One,
            time_zone: Tz::UTC,
            plan,
            hold_days: DEFAULT_HOLD_DAYS,
            hold_anchor: HoldAnchor::Sale,
            cookie_days: DEFAULT_COOKIE_DAYS,
            attribution: AttributionModel::FirstClick,
            payout_minimum: default_payout_minimum(),
            accrual: AccrualPolicy::Indefinite,
            payout_schedule: PayoutSchedule::default(),
            require_tax_info: true,
            payout_review: PayoutReview::Automatic,
            notify_on_commission: true,
            email: EmailSettings::default(),
            levels: Vec::new(),
            lock_rate_at_first_sale: false,
            default_destination: default_destination.into(),
            allowed_hosts: Vec::new(),
            status: ProgramStatus::Active,
        }
    }

    /// Checks every rule a program must satisfy: non-empty id and name; plan rates in 0..=1;
    /// flat amounts non-negative and at least one per flat reward; a tier-2 reward if and only
    /// if the program has two tiers; durations of at least one month / payment; hold ≤ 365
    /// days; cookie window 1..=3650 days; monthly payout day 1..=28; accrual months ≥ 1;
    /// non-negative payout minimums; levels named, with rates in 0..=0.40, only on plans with
    /// a percentage rate, and thresholds of the same kind strictly increasing; an http(s)
    /// default destination and [`HostPattern`]s in the allow-list.
    pub fn validate(&self) -> Result<(), ProgramError> {
        if self.id.trim().is_empty() {
            return Err(ProgramError::Empty("id"));
        }
        if self.name.trim().is_empty() {
            return Err(ProgramError::Empty("name"));
        }
        self.email.validate()?;
        self.plan.reward.validate("plan.reward")?;
        match (&self.plan.tier2, self.tiers) {
            (Some(r), Tiers::Two) => r.validate("plan.tier2")?,
            (None, Tiers::Two) => return Err(ProgramError::Tier2Missing),
            (Some(_), Tiers::One) => return Err(ProgramError::Tier2OnOneTier),
            (None, Tiers::One) => {}
        }
        match self.plan.duration {
            Duration::Months { months: 0 } | Duration::Payments { count: 0 } => {
                return Err(ProgramError::ZeroDuration)
            }
            _ => {}
        }
        if self.hold_days > MAX_HOLD_DAYS {
            return Err(ProgramError::HoldTooLong(self.hold_days));
        }
        if self.cookie_days == 0 || self.cookie_days > MAX_COOKIE_DAYS {
            return Err(ProgramError::CookieDays(self.cookie_days));
        }
        if let PayoutSchedule::Monthly { day } = self.payout_schedule {
            if !(1..=28).contains(&day) {
                return Err(ProgramError::MonthlyDay(day));
            }
        }
        if self.accrual.months() == Some(0) {
            return Err(ProgramError::ZeroAccrualMonths);
        }
        for (currency, minor) in &self.payout_minimum {
            if *minor < 0 {
                return Err(ProgramError::NegativeAmount {
                    what: "payout_minimum".into(),
                    currency: *currency,
                    minor: *minor,
                });
            }
        }
        self.validate_levels()?;
        if url_host(&self.default_destination).is_none() {
            return Err(ProgramError::BadDestination(
                self.default_destination.clone(),
            ));
        }
        for h in &self.allowed_hosts {
            if HostPattern::parse(h).is_none() {
                return Err(ProgramError::BadAllowedHost(h.clone()));
            }
        }
        Ok(())
    }

    fn validate_levels(&self) -> Result<(), ProgramError> {
        if self.levels.is_empty() {
            return Ok(());
        }
        if self.plan.reward.percentage_rate().is_none() {
            return Err(ProgramError::LevelsWithoutPercentage);
        }
        let mut last_customers: Option<u32> = None;
        let mut last_revenue: BTreeMap<Currency, i64> = BTreeMap::new();
        for (i, level) in self.levels.iter().enumerate() {
            let number = i + 1;
            if level.name.trim().is_empty() {
                return Err(ProgramError::Empty("level name"));
            }
            check_rate(&format!("level {number}"), level.rate, MAX_LEVEL_RATE)?;
            let increasing = match &level.threshold {
                LevelThreshold::ActiveCustomers { count } => {
                    let ok = last_customers.is_none_or(|c| *count > c);
                    last_customers = Some(*count);
                    ok
                }
                LevelThreshold::Revenue { currency, minor } => {
                    if *minor < 0 {
                        return Err(ProgramError::NegativeAmount {
                            what: format!("level {number} threshold"),
                            currency: *currency,
                            minor: *minor,
                        });
                    }
                    let ok = last_revenue.get(currency).is_none_or(|m| *minor > *m);
                    last_revenue.insert(*currency, *minor);
                    ok
                }
            };
            if !increasing {
                return Err(ProgramError::LevelThresholdNotIncreasing(
                    number,
                    level.name.clone(),
                ));
            }
        }
        Ok(())
    }

    /// The payout minimum, in minor units, for a balance in `currency`:
    ///
    /// * the amount configured for that currency, if any;
    /// * `0` (no minimum) if the map is empty: the operator switched minimums off;
    /// * otherwise `i64::MAX`, i.e. **not payable**: there is no conversion between currencies,
    ///   so a program with `{USD: 10000}` cannot tell what its minimum in EUR is, and paying
    ///   out arbitrarily small amounts is not a safe guess.
    ///   [`balance_payout_blockers`](crate::balance_payout_blockers) reports this as
    ///   [`PayoutBlocker::NoMinimumForCurrency`](crate::PayoutBlocker) so the operator can add
    ///   one.
    pub fn payout_minimum_for(&self, currency: Currency) -> i64 {
        match self.payout_minimum.get(&currency) {
            Some(m) => *m,
            None if self.payout_minimum.is_empty() => 0,
            None => i64::MAX,
        }
    }

    /// The configured minimum for `currency`, or `None` when there is no entry for it (see
    /// [`Program::payout_minimum_for`] for what that means).
    pub fn payout_minimum_configured(&self, currency: Currency) -> Option<i64> {
        if self.payout_minimum.is_empty() {
            return Some(0);
        }
        self.payout_minimum.get(&currency).copied()
    }

    /// The level definition for a partner at `level` (0 = base plan → `None`).
    pub fn level(&self, level: u32) -> Result<Option<&Level>, ProgramError> {
        if level == 0 {
            return Ok(None);
        }
        let idx = usize::try_from(level - 1).unwrap_or(usize::MAX);
        self.levels
            .get(idx)
            .map(Some)
            .ok_or(ProgramError::UnknownLevel {
                level,
                defined: self.levels.len(),
            })
    }

    /// The hosts a deep link (a link's own destination, or `?to=`) may point to: the default
    /// destination's host and every `allowed_hosts` entry (grammar: [`crate::hosts`]). A
    /// program that passed [`Program::validate`] has no invalid entry; one read without
    /// validation has its invalid entries ignored (they admit nothing).
    pub fn deep_link_hosts(&self) -> DeepLinkHosts {
        let default_host = url_host(&self.default_destination)
            .as_deref()
            .and_then(HostPattern::parse);
        DeepLinkHosts::new(
            default_host.into_iter().chain(
                self.allowed_hosts
                    .iter()
                    .filter_map(|h| HostPattern::parse(h)),
            ),
        )
    }
}

fn check_rate(what: &str, rate: Decimal, max: Decimal) -> Result<(), ProgramError> {
    if rate < Decimal::ZERO || rate > max {
        return Err(ProgramError::RateOutOfRange {
            what: what.to_string(),
            rate,
            max,
        });
    }
    Ok(())
}

fn check_amounts(what: &str, amounts: &BTreeMap<Currency, i64>) -> Result<(), ProgramError> {
    for (currency, minor) in amounts {
        if *minor < 0 {
            return Err(ProgramError::NegativeAmount {
                what: what.to_string(),
                currency: *currency,
                minor: *minor,
            });
        }
    }
    Ok(())
}

impl Reward {
    /// Checks a reward: rates in 0..=1, flat amounts non-negative, at least one amount on a
    /// flat reward. `what` names the reward in the error ("plan.reward").
    pub fn validate(&self, what: &str) -> Result<(), ProgramError> {
        match self {
            Reward::Percentage { rate } => check_rate(what, *rate, Decimal::ONE),
            Reward::Flat { amounts } => {
                if amounts.is_empty() {
                    return Err(ProgramError::FlatWithoutAmounts(what.to_string()));
                }
                check_amounts(what, amounts)
            }
            Reward::Hybrid {
                first_sale_flat,
                rate,
            } => {
                check_rate(what, *rate, Decimal::ONE)?;
                if first_sale_flat.is_empty() {
                    return Err(ProgramError::FlatWithoutAmounts(what.to_string()));
                }
                check_amounts(what, first_sale_flat)
            }
        }
    }
}

/// A product on a program, with an optional per-product reward. Commissions are paid only on
/// products listed on the program (Ontraport).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramProduct {
    /// The program.
    pub program_id: String,
    /// The payment provider's product id.
    pub product_id: String,
    /// Reward for this product's lines instead of the plan's reward (tier 1 only; levels and
    /// the rate lock do not change an override).
    #[serde(default)]
    pub reward_override: Option<Reward>,
}

impl ProgramProduct {
    /// A product without an override.
    pub fn new(program_id: impl Into<String>, product_id: impl Into<String>) -> Self {
        ProgramProduct {
            program_id: program_id.into(),
            product_id: product_id.into(),
            reward_override: None,
        }
    }
}

/// Checks a program's product rows: each belongs to `program`, none is listed twice, product
/// ids are not empty and overrides are valid rewards.
pub fn validate_products(
    program: &Program,
    products: &[ProgramProduct],
) -> Result<(), ProgramError> {
    let mut seen = BTreeSet::new();
    for p in products {
        if p.program_id != program.id {
            return Err(ProgramError::ProductOfOtherProgram {
                product_id: p.product_id.clone(),
                program_id: p.program_id.clone(),
                expected: program.id.clone(),
            });
        }
        if p.product_id.trim().is_empty() {
            return Err(ProgramError::Empty("product_id"));
        }
        if !seen.insert(p.product_id.as_str()) {
            return Err(ProgramError::DuplicateProduct(p.product_id.clone()));
        }
        if let Some(r) = &p.reward_override {
            r.validate(&format!("product {} reward_override", p.product_id))?;
        }
    }
    Ok(())
}

/// A partner's account status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartnerStatus {
    /// Applied, not yet approved.
    #[default]
    Pending,
    /// Approved and in good standing.
    Active,
    /// Temporarily blocked by an operator.
    Suspended,
    /// Permanently excluded (fraud).
    Banned,
}

/// A partner's enrollment in a program. Per-customer locked rates are not kept here: the fold
/// recomputes them (see [`crate::RateContext`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    /// The partner.
    pub partner_id: String,
    /// The program.
    pub program_id: String,
    /// Current level: 0 = base plan, `n` = `program.levels[n - 1]`.
    #[serde(default)]
    pub level: u32,
    /// Partner who recruited this one (earns tier 2 on a two-tier program).
    #[serde(default)]
    pub recruiter: Option<String>,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    /// A 25 % lifetime program with every default (also used by `payout`'s tests).
    pub(crate) fn base() -> Program {
        Program::new(
            "p1",
            "Main",
            CommissionPlan::new(Reward::Percentage { rate: dec!(0.25) }, Duration::Lifetime),
            "https://example.com/pricing",
        )
    }

    #[test]
    fn yaml_like_json_with_defaults() {
        let j = r#"{
            "id": "p1", "name": "Main",
            "default_destination": "https://example.com/pricing",
            "plan": {"reward": {"type": "percentage", "rate": 0.25}}
        }"#;
        let p: Program = serde_json::from_str(j).unwrap();
        assert_eq!(p.tiers, Tiers::One);
        assert_eq!(p.time_zone, Tz::UTC);
        assert_eq!(p.hold_days, 90);
        assert_eq!(p.cookie_days, 60);
        assert_eq!(p.attribution, AttributionModel::FirstClick);
        assert_eq!(p.payout_minimum_for(Currency::USD), 10_000);
        assert_eq!(p.accrual, AccrualPolicy::Indefinite);
        assert_eq!(p.payout_schedule, PayoutSchedule::default());
        assert!(p.notify_on_commission);
        assert!(p.levels.is_empty());
        assert!(!p.lock_rate_at_first_sale);
        assert_eq!(p.status, ProgramStatus::Active);
        assert_eq!(p.plan.duration, Duration::Lifetime);
        assert_eq!(p.plan.reward, Reward::Percentage { rate: dec!(0.25) });
        p.validate().unwrap();
        assert_eq!(p, base());

        // Round trip keeps everything, the zone as its IANA name.
        let mut q = base();
        q.time_zone = "Europe/Paris".parse().unwrap();
        q.tiers = Tiers::Two;
        q.plan.tier2 = Some(Reward::Percentage { rate: dec!(0.05) });
        q.payout_minimum.insert(Currency::JPY, 5_000);
        let s = serde_json::to_string(&q).unwrap();
        assert!(s.contains(r#""time_zone":"Europe/Paris""#), "{s}");
        assert!(s.contains(r#""tiers":"two""#), "{s}");
        assert!(
            s.contains(r#""payout_minimum":{"JPY":5000,"USD":10000}"#),
            "{s}"
        );
        assert_eq!(serde_json::from_str::<Program>(&s).unwrap(), q);

        // Typos and unknown zones are errors.
        let typo = j.replace("\"plan\"", "\"hold_day\": 3, \"plan\"");
        assert!(serde_json::from_str::<Program>(&typo).is_err());
        let badtz = j.replace("\"plan\"", "\"time_zone\": \"Mars/Olympus\", \"plan\"");
        assert!(serde_json::from_str::<Program>(&badtz).is_err());
    }

    #[test]
    fn email_settings_are_optional_and_header_safe() {
        let j = r#"{
            "id": "p1", "name": "Main",
            "default_destination": "https://example.com/pricing",
            "plan": {"reward": {"type": "percentage", "rate": 0.25}},
            "email": {"sender_name": "Main Partners", "sender_address": "partners@example.com",
                      "reply_to": "help@example.com", "footer": "Example Inc., 1 Main St",
                      "support_contact": "help@example.com", "locale": "de-DE"}
        }"#;
        let p: Program = serde_json::from_str(j).unwrap();
        p.validate().unwrap();
        assert_eq!(p.email.locale, crate::display::Locale::DeDe);
        assert!(base().email.is_default());
        // Not written when unset: older program files and versions stay byte-identical.
        assert!(!serde_json::to_string(&base()).unwrap().contains("email"));
        let bad = [
            ("sender_address", "not-an-address"),
            ("sender_address", "a@b.com\r\nBcc: x@evil.test"),
            ("reply_to", "Help <help@example.com>"),
            ("sender_name", "Main\r\nBcc: x@evil.test"),
        ];
        for (field, value) in bad {
            let mut q = base();
            let v = value.to_string();
            match field {
                "sender_address" => q.email.sender_address = Some(v),
                "reply_to" => q.email.reply_to = Some(v),
                _ => q.email.sender_name = Some(v),
            }
            assert!(
                matches!(q.validate(), Err(ProgramError::BadEmailSetting(..))),
                "{field} {value}"
            );
        }
        let typo = j.replace("\"footer\"", "\"fotter\"");
        assert!(serde_json::from_str::<Program>(&typo).is_err());
    }

    #[test]
    fn validation_rules() {
        let ok = base();
        ok.validate().unwrap();
        let check = |f: &dyn Fn(&mut Program), want: ProgramError| {
            let mut p = base();
            f(&mut p);
            assert_eq!(p.validate().unwrap_err(), want);
        };
        check(&|p| p.id = " ".into(), ProgramError::Empty("id"));
        check(
            &|p| p.plan.reward = Reward::Percentage { rate: dec!(1.01) },
            ProgramError::RateOutOfRange {
                what: "plan.reward".into(),
                rate: dec!(1.01),
                max: Decimal::ONE,
            },
        );
        check(
            &|p| p.plan.reward = Reward::Percentage { rate: dec!(-0.1) },
            ProgramError::RateOutOfRange {
                what: "plan.reward".into(),
                rate: dec!(-0.1),
                max: Decimal::ONE,
            },
        );
        check(
            &|p| {
                p.plan.reward = Reward::Flat {
                    amounts: BTreeMap::new(),
                }
            },
            ProgramError::FlatWithoutAmounts("plan.reward".into()),
        );
        check(&|p| p.tiers = Tiers::Two, ProgramError::Tier2Missing);
        check(
            &|p| p.plan.tier2 = Some(Reward::Percentage { rate: dec!(0.05) }),
            ProgramError::Tier2OnOneTier,
        );
        check(
            &|p| p.plan.duration = Duration::Months { months: 0 },
            ProgramError::ZeroDuration,
        );
        check(&|p| p.hold_days = 366, ProgramError::HoldTooLong(366));
        check(&|p| p.cookie_days = 0, ProgramError::CookieDays(0));
        check(
            &|p| p.payout_schedule = PayoutSchedule::Monthly { day: 29 },
            ProgramError::MonthlyDay(29),
        );
        check(
            &|p| p.payout_schedule = PayoutSchedule::Monthly { day: 0 },
            ProgramError::MonthlyDay(0),
        );
        check(
            &|p| p.accrual = AccrualPolicy::ForfeitAfterMonths { months: 0 },
            ProgramError::ZeroAccrualMonths,
        );
        check(
            &|p| {
                p.payout_minimum.insert(Currency::EUR, -1);
            },
            ProgramError::NegativeAmount {
                what: "payout_minimum".into(),
                currency: Currency::EUR,
                minor: -1,
            },
        );
        check(
            &|p| p.default_destination = "example.com".into(),
            ProgramError::BadDestination("example.com".into()),
        );
        check(
            &|p| p.allowed_hosts = vec!["https://x.com".into()],
            ProgramError::BadAllowedHost("https://x.com".into()),
        );
        let mut p = base();
        p.hold_days = 365;
        p.payout_schedule = PayoutSchedule::Monthly { day: 28 };
        p.accrual = AccrualPolicy::ForfeitAfterMonths { months: 6 };
        p.tiers = Tiers::Two;
        p.plan.tier2 = Some(Reward::Percentage { rate: dec!(0.05) });
        p.validate().unwrap();
    }

    fn level(name: &str, count: u32, rate: Decimal) -> Level {
        Level {
            name: name.into(),
            threshold: LevelThreshold::ActiveCustomers { count },
            rate,
        }
    }

    #[test]
    fn level_rules() {
        let mut p = base();
        p.levels = vec![
            level("Silver", 10, dec!(0.30)),
            level("Gold", 25, dec!(0.40)),
        ];
        p.validate().unwrap();
        assert_eq!(p.level(0).unwrap(), None);
        assert_eq!(p.level(2).unwrap().unwrap().name, "Gold");
        assert_eq!(
            p.level(3).unwrap_err(),
            ProgramError::UnknownLevel {
                level: 3,
                defined: 2
            }
        );
        // Above 40% is rejected.
        p.levels[1].rate = dec!(0.41);
        assert_eq!(
            p.validate().unwrap_err(),
            ProgramError::RateOutOfRange {
                what: "level 2".into(),
                rate: dec!(0.41),
                max: dec!(0.40),
            }
        );
        // Thresholds of a kind must increase; other kinds interleave freely.
        p.levels = vec![
            level("Silver", 10, dec!(0.30)),
            Level {
                name: "Revenue".into(),
                threshold: LevelThreshold::Revenue {
                    currency: Currency::USD,
                    minor: 1_000_000,
                },
                rate: dec!(0.32),
            },
            level("Gold", 10, dec!(0.35)),
        ];
        assert_eq!(
            p.validate().unwrap_err(),
            ProgramError::LevelThresholdNotIncreasing(3, "Gold".into())
        );
        p.levels[2] = level("Gold", 11, dec!(0.35));
        p.validate().unwrap();
        // Levels on a flat plan are meaningless.
        p.plan.reward = Reward::Flat {
            amounts: BTreeMap::from([(Currency::USD, 2000)]),
        };
        assert_eq!(
            p.validate().unwrap_err(),
            ProgramError::LevelsWithoutPercentage
        );
    }

    #[test]
    fn products() {
        let p = base();
        let mut rows = vec![
            ProgramProduct::new("p1", "prod_a"),
            ProgramProduct {
                program_id: "p1".into(),
                product_id: "prod_b".into(),
                reward_override: Some(Reward::Percentage { rate: dec!(0.5) }),
            },
        ];
        validate_products(&p, &rows).unwrap();
        rows.push(ProgramProduct::new("p1", "prod_a"));
        assert_eq!(
            validate_products(&p, &rows).unwrap_err(),
            ProgramError::DuplicateProduct("prod_a".into())
        );
        rows.pop();
        rows.push(ProgramProduct::new("p2", "prod_c"));
        assert!(matches!(
            validate_products(&p, &rows).unwrap_err(),
            ProgramError::ProductOfOtherProgram { .. }
        ));
        rows.pop();
        rows[1].reward_override = Some(Reward::Percentage { rate: dec!(2) });
        assert!(matches!(
            validate_products(&p, &rows).unwrap_err(),
            ProgramError::RateOutOfRange { .. }
        ));
    }

    #[test]
    fn membership_defaults() {
        let m: Membership =
            serde_json::from_str(r#"{"partner_id":"a","program_id":"p1"}"#).unwrap();
        assert_eq!(m.level, 0);
        assert_eq!(m.recruiter, None);
    }

    #[test]
    fn allow_list_entries() {
        let mut p = base();
        // Host names are case-insensitive; a wildcard admits subdomains, not the bare domain.
        p.allowed_hosts = vec![
            "Docs.Example.com".into(),
            "trusted.com".into(),
            "*.cdn-trusted.net".into(),
        ];
        p.validate().unwrap();
        let hosts = p.deep_link_hosts();
        for ok in [
            "example.com",
            "docs.example.com",
            "trusted.com",
            "a.cdn-trusted.net",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for bad in [
            "www.example.com",
            "www.trusted.com",
            "cdn-trusted.net",
            "trusted.com.evil.com",
        ] {
            assert!(!hosts.allows(bad), "{bad}");
        }
        for entry in ["*.", "*.com", "*", "https://x.com", "10.0.0.1", "a.com/x"] {
            p.allowed_hosts = vec![entry.into()];
            assert_eq!(
                p.validate().unwrap_err(),
                ProgramError::BadAllowedHost(entry.into())
            );
            // Stored without validation, an invalid entry admits nothing.
            assert_eq!(
                p.deep_link_hosts(),
                DeepLinkHosts::new(HostPattern::parse("example.com"))
            );
        }
    }
}
