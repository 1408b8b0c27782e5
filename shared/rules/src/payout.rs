//! Whether a partner, and a partner's balance, can be paid now: the partner-side facts
//! ([`PayoutMethod`], [`TaxInfoState`], the partner's [`PartnerStatus`]) and the program's
//! payout minimum per currency ([`Program::payout_minimum_for`]); which payout date a run is
//! for ([`payout_run_date`]); and the life of a payout item ([`PayoutItemState`]).

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::accrual::{self, Lots};
use crate::program::{AccrualPolicy, PayoutSchedule};
use crate::schedule::{is_payout_date, local_date};

use crate::attribution::normalize_email;
use crate::ledger::Balance;
use crate::money::Currency;
use crate::program::{PartnerStatus, Program};

/// Where a partner's payouts go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PayoutMethod {
    /// PayPal Payouts to an e-mail address.
    #[serde(rename = "paypal")]
    PayPal {
        /// Receiver e-mail.
        email: String,
    },
    /// Stripe Connect transfer to a connected account.
    StripeConnect {
        /// `acct_…` id.
        account_id: String,
    },
    /// Nothing on file.
    #[default]
    None,
}

/// Currencies PayPal Payouts pays (developer.paypal.com, "Currency codes": the currencies
/// supported for payouts). A balance in another currency waits with
/// [`PayoutBlocker::CurrencyNotPayable`] instead of failing at the rail.
pub const PAYPAL_CURRENCIES: [&str; 24] = [
    "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "ILS", "JPY",
    "MXN", "MYR", "NOK", "NZD", "PHP", "PLN", "SEK", "SGD", "THB", "TWD", "USD",
];

impl PayoutMethod {
    /// True when the method can receive money: a PayPal e-mail that is a well-formed address,
    /// or a non-empty Stripe account id.
    pub fn is_usable(&self) -> bool {
        match self {
            PayoutMethod::PayPal { email } => normalize_email(email).is_ok(),
            PayoutMethod::StripeConnect { account_id } => !account_id.trim().is_empty(),
            PayoutMethod::None => false,
        }
    }

    /// The rail's name (`paypal`, `stripe_connect`, `none`).
    pub fn rail(&self) -> &'static str {
        match self {
            PayoutMethod::PayPal { .. } => "paypal",
            PayoutMethod::StripeConnect { .. } => "stripe_connect",
            PayoutMethod::None => "none",
        }
    }

    /// Whether this method's rail can pay `currency`: PayPal only its [`PAYPAL_CURRENCIES`];
    /// a Stripe Connect transfer any currency (the platform's balance converts).
    pub fn pays(&self, currency: Currency) -> bool {
        match self {
            PayoutMethod::PayPal { .. } => PAYPAL_CURRENCIES.contains(&currency.code()),
            PayoutMethod::StripeConnect { .. } => true,
            PayoutMethod::None => false,
        }
    }
}

/// Currencies PayPal takes without decimals although ISO 4217 gives them some or none
/// (developer.paypal.com, "Currency codes": HUF, JPY and TWD do not support decimals).
pub const PAYPAL_NO_DECIMALS: [&str; 3] = ["HUF", "JPY", "TWD"];

impl PayoutMethod {
    /// The part of `amount` (minor units of `currency`) the method's rail can carry: for
    /// PayPal in a currency it takes without decimals while ISO has them (HUF, TWD), whole
    /// units only, rounded down; the fraction stays in the balance for a later payout.
    pub fn payable_part(&self, currency: Currency, amount: i64) -> i64 {
        match self {
            PayoutMethod::PayPal { .. } if PAYPAL_NO_DECIMALS.contains(&currency.code()) => {
                let unit = 10_i64.pow(currency.exponent());
                amount - amount.rem_euclid(unit)
            }
            _ => amount,
        }
    }
}

/// PayPal's `amount.value` for `amount` minor units of `currency`: a decimal string with the
/// currency's decimals, none for [`PAYPAL_NO_DECIMALS`]. `None` when PayPal cannot carry the
/// amount exactly (a fraction of a forint) or does not pay the currency at all.
pub fn paypal_value(currency: Currency, amount: i64) -> Option<String> {
    if !PAYPAL_CURRENCIES.contains(&currency.code()) || amount < 0 {
        return None;
    }
    let exp = currency.exponent();
    let unit = 10_i64.pow(exp);
    if PAYPAL_NO_DECIMALS.contains(&currency.code()) {
        if amount % unit != 0 {
            return None;
        }
        return Some((amount / unit).to_string());
    }
    if exp == 0 {
        return Some(amount.to_string());
    }
    Some(format!(
        "{}.{:0width$}",
        amount / unit,
        amount % unit,
        width = exp as usize
    ))
}

/// State of the partner's tax form (W-9 or the "international" questions).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaxInfoState {
    /// Nothing submitted.
    #[default]
    Missing,
    /// Submitted, waiting for review.
    Submitted,
    /// Reviewed and approved.
    Approved,
}

/// Why a payout cannot be made now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PayoutBlocker {
    /// The partner is not `Active`.
    PartnerNotActive {
        /// Current status.
        status: PartnerStatus,
    },
    /// No usable payout method on file.
    NoPayoutMethod,
    /// The method on file was rejected by its rail (until the partner changes it).
    PayoutMethodUnusable {
        /// What the rail or operator said.
        reason: String,
    },
    /// An operator holds the partner's payouts.
    HeldByOperator {
        /// The operator's reason.
        reason: String,
    },
    /// The payout method's rail cannot pay the balance's currency.
    CurrencyNotPayable {
        /// The balance's currency.
        currency: Currency,
        /// The rail (`paypal`).
        rail: String,
    },
    /// Tax information not approved.
    TaxInfoNotApproved {
        /// Current state.
        state: TaxInfoState,
    },
    /// Nothing available (zero or a carried negative balance after a clawback).
    NothingAvailable {
        /// Available minor units (≤ 0).
        available: i64,
    },
    /// Available balance under the program's payout minimum.
    BelowMinimum {
        /// Available minor units.
        available: i64,
        /// Minimum in minor units.
        minimum: i64,
        /// Still needed to reach it (`minimum - available`).
        needed: i64,
    },
    /// The program has payout minimums but none for this currency.
    NoMinimumForCurrency {
        /// The balance's currency.
        currency: Currency,
    },
}

impl PayoutBlocker {
    /// The snake_case name of the reason (how a run counts the balances that wait).
    pub fn reason(&self) -> &'static str {
        match self {
            PayoutBlocker::PartnerNotActive { .. } => "partner_not_active",
            PayoutBlocker::NoPayoutMethod => "no_payout_method",
            PayoutBlocker::PayoutMethodUnusable { .. } => "payout_method_unusable",
            PayoutBlocker::HeldByOperator { .. } => "held_by_operator",
            PayoutBlocker::CurrencyNotPayable { .. } => "currency_not_payable",
            PayoutBlocker::TaxInfoNotApproved { .. } => "tax_info_not_approved",
            PayoutBlocker::NothingAvailable { .. } => "nothing_available",
            PayoutBlocker::BelowMinimum { .. } => "below_minimum",
            PayoutBlocker::NoMinimumForCurrency { .. } => "no_minimum_for_currency",
        }
    }
}

/// Partner-level reasons a partner cannot be paid: they must be `Active`, have a usable
/// payout method and, when `tax_info_required` (the program's `require_tax_info`, default
/// true), approved tax information. Empty when payable.
pub fn payout_blockers(
    status: PartnerStatus,
    method: &PayoutMethod,
    tax_info: TaxInfoState,
    tax_info_required: bool,
) -> Vec<PayoutBlocker> {
    let mut out = Vec::new();
    // Only an active partner is paid (`partner`: a suspended one keeps earning, a banned one's
    // balance is frozen).
    if !crate::partner::payable(status) {
        out.push(PayoutBlocker::PartnerNotActive { status });
    }
    if !method.is_usable() {
        out.push(PayoutBlocker::NoPayoutMethod);
    }
    if tax_info_required && tax_info != TaxInfoState::Approved {
        out.push(PayoutBlocker::TaxInfoNotApproved { state: tax_info });
    }
    out
}

/// What a payout run decides about one (partner, program, currency) balance: pay `amount`
/// (the available balance as of the run, [`payout_amount`]), or wait for every reason in the
/// list (partner reasons first, then the balance's).
pub fn payout_decision(
    program: &Program,
    status: PartnerStatus,
    method: &PayoutMethod,
    tax_info: TaxInfoState,
    balance: &Balance,
) -> Result<i64, Vec<PayoutBlocker>> {
    let mut blockers = payout_blockers(status, method, tax_info, program.require_tax_info);
    blockers.extend(balance_payout_blockers(program, balance));
    match payout_amount(program, balance) {
        Some(amount) if blockers.is_empty() => Ok(amount),
        _ => Err(blockers),
    }
}

/// Days back a payout run looks for a payout date its schedule missed: the daily invocation
/// that finds no run for the latest payout date in this window runs it (once: the run is keyed
/// by that date). Longer outages are for an operator (`POST /dev/schedule/payout?time=` locally,
/// or invoking the function with an event of that date).
pub const PAYOUT_CATCH_UP_DAYS: u64 = 3;

/// The payout date a run at `now` (business time) is for: the latest payout date of `schedule`
/// in the program's time zone from `catch_up_days` days before today up to today, or `None`.
pub fn payout_run_date(
    schedule: &PayoutSchedule,
    tz: Tz,
    now: DateTime<Utc>,
    catch_up_days: u64,
) -> Option<NaiveDate> {
    let today = local_date(tz, now);
    (0..=catch_up_days)
        .filter_map(|back| today.checked_sub_days(Days::new(back)))
        .find(|d| is_payout_date(schedule, *d))
}

/// The life of a payout item:
///
/// `created → approved → submitted → sent | failed`, with `held` (manual review) between
/// created/approved and approved, `cancelled` from created, approved or held (before any money
/// left), and `returned` after `sent` when the money came back. `submitted` is written before
/// any rail call; an item found submitted asks the rail what happened before anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PayoutItemState {
    /// Written with its `payout_reserved` entry; the money is in `in_payout`.
    Created,
    /// May be sent.
    Approved,
    /// Kept for review; neither sent nor released.
    Held,
    /// Handed to the rail (or exported for the manual rail); its outcome is the rail's.
    Submitted,
    /// The rail confirmed it: `paid`.
    Sent,
    /// The rail refused or failed it before money left: `payout_released`.
    Failed,
    /// Cancelled before submission: `payout_released`.
    Cancelled,
    /// Sent, then the money came back: `payout_returned`.
    Returned,
}

impl PayoutItemState {
    /// The snake_case name, as serialized.
    pub fn as_str(&self) -> &'static str {
        match self {
            PayoutItemState::Created => "created",
            PayoutItemState::Approved => "approved",
            PayoutItemState::Held => "held",
            PayoutItemState::Submitted => "submitted",
            PayoutItemState::Sent => "sent",
            PayoutItemState::Failed => "failed",
            PayoutItemState::Cancelled => "cancelled",
            PayoutItemState::Returned => "returned",
        }
    }

    /// Whether an item in this state may move to `next`.
    pub fn can_become(self, next: PayoutItemState) -> bool {
        use PayoutItemState::*;
        matches!(
            (self, next),
            (Created, Approved | Held | Cancelled)
                | (Held, Approved | Cancelled)
                | (Approved, Submitted | Held | Cancelled)
                | (Submitted, Sent | Failed)
                | (Sent, Returned)
        )
    }

    /// The ledger entry a move into this state books, if any: `sent` → `paid`, `failed` and
    /// `cancelled` → `payout_released`, `returned` → `payout_returned`.
    pub fn entry_kind(self) -> Option<crate::ledger::EntryKind> {
        use crate::ledger::EntryKind;
        match self {
            PayoutItemState::Sent => Some(EntryKind::Paid),
            PayoutItemState::Failed | PayoutItemState::Cancelled => Some(EntryKind::PayoutReleased),
            PayoutItemState::Returned => Some(EntryKind::PayoutReturned),
            _ => None,
        }
    }

    /// True when the item's money is still reserved (in `in_payout`).
    pub fn in_flight(self) -> bool {
        use PayoutItemState::*;
        matches!(self, Created | Approved | Held | Submitted)
    }
}

/// Balance-level reasons a (partner, program, currency) balance cannot be paid now: nothing
/// (or a negative amount) available, no minimum configured for the currency, or under the
/// minimum. Empty when [`Balance::payable`] with [`Program::payout_minimum_for`] would pay.
pub fn balance_payout_blockers(program: &Program, balance: &Balance) -> Vec<PayoutBlocker> {
    if balance.available <= 0 {
        return vec![PayoutBlocker::NothingAvailable {
            available: balance.available,
        }];
    }
    match program.payout_minimum_configured(balance.currency) {
        None => vec![PayoutBlocker::NoMinimumForCurrency {
            currency: balance.currency,
        }],
        Some(minimum) if balance.available < minimum => vec![PayoutBlocker::BelowMinimum {
            available: balance.available,
            minimum,
            needed: minimum - balance.available,
        }],
        Some(_) => Vec::new(),
    }
}

/// The amount to pay out of `balance` now, or `None`: the whole available balance when it is
/// positive and reaches the program's minimum for its currency
/// ([`Program::payout_minimum_for`]). Never more than available, never zero or negative.
pub fn payout_amount(program: &Program, balance: &Balance) -> Option<i64> {
    balance.payable(program.payout_minimum_for(balance.currency))
}

/// What a payout run knows about the partner of a balance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerFacts<'a> {
    /// The partner's status.
    pub status: PartnerStatus,
    /// The payout method on file.
    pub method: &'a PayoutMethod,
    /// Why the method on file is unusable (its rail rejected it), if it is.
    pub method_unusable: Option<&'a str>,
    /// The tax information's state.
    pub tax_info: TaxInfoState,
    /// Why an operator holds the partner's payouts, if they do.
    pub held: Option<&'a str>,
}

/// Money the accrual policy takes: lots past their limit date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forfeiture {
    /// Minor units forfeited.
    pub amount: i64,
    /// The lots forfeited.
    pub taken: Lots,
    /// The queue after.
    pub left: Lots,
}

/// What a payout run does with one (partner, program, currency) balance
/// ([`decide_balance`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BalanceOutcome {
    /// Pay `amount`, taking the oldest lots.
    Pay {
        /// Minor units.
        amount: i64,
        /// The lots paid.
        taken: Lots,
        /// The queue after.
        left: Lots,
        /// True when paid under the minimum because the oldest commission reached the limit
        /// of a `pay_after_months` policy.
        under_minimum: bool,
    },
    /// Wait, for every reason in `blockers` (partner reasons first, then the balance's, as
    /// they stand after `forfeit`).
    Wait {
        /// Why.
        blockers: Vec<PayoutBlocker>,
        /// Forfeited now under a `forfeit_after_months` policy.
        forfeit: Option<Forfeiture>,
        /// A forfeiture ahead (its date and amount) to warn the partner of now.
        warning: Option<(NaiveDate, i64)>,
    },
}

impl BalanceOutcome {
    /// The snake_case reasons of a waiting balance (empty when paid).
    pub fn reasons(&self) -> Vec<&'static str> {
        match self {
            BalanceOutcome::Pay { .. } => vec![],
            BalanceOutcome::Wait { blockers, .. } => blockers.iter().map(|b| b.reason()).collect(),
        }
    }
}

/// Partner-level reasons from everything a run knows about the partner: [`payout_blockers`],
/// then a rejected method and an operator's hold.
fn partner_blockers(program: &Program, p: &PartnerFacts<'_>) -> Vec<PayoutBlocker> {
    let mut out = payout_blockers(p.status, p.method, p.tax_info, program.require_tax_info);
    if let Some(reason) = p.method_unusable.filter(|_| p.method.is_usable()) {
        out.insert(
            out.iter()
                .position(|b| matches!(b, PayoutBlocker::TaxInfoNotApproved { .. }))
                .unwrap_or(out.len()),
            PayoutBlocker::PayoutMethodUnusable {
                reason: reason.to_string(),
            },
        );
    }
    if let Some(reason) = p.held {
        out.push(PayoutBlocker::HeldByOperator {
            reason: reason.to_string(),
        });
    }
    out
}

/// Balance-level reasons, with the rail's currency: [`balance_payout_blockers`], and a
/// currency the method's rail cannot pay.
fn balance_blockers(program: &Program, p: &PartnerFacts<'_>, b: &Balance) -> Vec<PayoutBlocker> {
    let mut out = balance_payout_blockers(program, b);
    if b.available > 0 && p.method.is_usable() && !p.method.pays(b.currency) {
        out.insert(
            0,
            PayoutBlocker::CurrencyNotPayable {
                currency: b.currency,
                rail: p.method.rail().to_string(),
            },
        );
    }
    out
}

/// The payout run's decision for one balance at its run date `today` (UTC date of the run's
/// business time), the FAQ's rules in one place:
///
/// * `as_of` is the balance as of the run's time (holds that ended later are not paid), and
///   `queue` its available money as lots ([`accrual::queue`]).
/// * Paid, the oldest lots first, when nothing blocks it ([`payout_decision`]'s rules plus a
///   rejected method, an operator's hold and the rail's currencies); under the minimum too
///   when a `pay_after_months` limit is reached and the minimum is the only reason to wait.
/// * Otherwise it waits, and under `forfeit_after_months` a balance under the minimum loses
///   the lots past their limit (never a frozen balance, never one an operator holds), and the
///   partner is warned of the next forfeiture from [`accrual::FORFEIT_WARNING_DAYS`] before.
pub fn decide_balance(
    program: &Program,
    partner: &PartnerFacts<'_>,
    as_of: &Balance,
    queue: &Lots,
    today: NaiveDate,
) -> BalanceOutcome {
    let mut blockers = partner_blockers(program, partner);
    let balance_reasons = balance_blockers(program, partner, as_of);
    let below = balance_reasons
        .iter()
        .any(|b| matches!(b, PayoutBlocker::BelowMinimum { .. }));
    let pay = |amount: i64, under_minimum: bool| {
        // What the method's rail can carry; the rest (a fraction PayPal cannot express) waits.
        let amount = partner.method.payable_part(as_of.currency, amount);
        let (taken, left) = accrual::take_oldest(queue, amount);
        BalanceOutcome::Pay {
            amount,
            taken,
            left,
            under_minimum,
        }
    };
    if blockers.is_empty() && balance_reasons.is_empty() {
        return pay(as_of.available, false);
    }
    let limit_reached = accrual::oldest(queue)
        .and_then(|d| accrual::limit_date(&program.accrual, d))
        .is_some_and(|l| l <= today);
    if matches!(program.accrual, AccrualPolicy::PayAfterMonths { .. })
        && limit_reached
        && blockers.is_empty()
        && below
        && balance_reasons.len() == 1
    {
        return pay(as_of.available, true);
    }
    let mut forfeit = None;
    let mut warning = None;
    let mut after = *as_of;
    let may_forfeit = below
        && matches!(program.accrual, AccrualPolicy::ForfeitAfterMonths { .. })
        && !crate::partner::balance_frozen(partner.status)
        && partner.held.is_none();
    let mut waiting_queue = queue.clone();
    if may_forfeit {
        let (taken, left) = accrual::expired(&program.accrual, queue, today);
        let amount = accrual::total(&taken).min(as_of.available);
        if amount > 0 {
            after.available -= amount;
            waiting_queue = left.clone();
            forfeit = Some(Forfeiture {
                amount,
                taken,
                left,
            });
        }
        warning = accrual::upcoming(&program.accrual, &waiting_queue, today);
    }
    blockers.extend(balance_blockers(program, partner, &after));
    BalanceOutcome::Wait {
        blockers,
        forfeit,
        warning,
    }
}

/// What an operator's approval of a reviewed item does once the balance moved under it: the
/// item keeps its money unless a clawback since left the balance negative, in which case the
/// debt comes out of the item (`Approve { amount, released }`, `released` going back to
/// `available`); an item left with nothing, or shrunk under the program's minimum, is
/// cancelled (all of it back to `available`, where it waits).
pub fn review_item(program: &Program, balance_now: &Balance, item_amount: i64) -> ReviewOutcome {
    let debt = (-balance_now.available).max(0);
    let amount = item_amount - debt;
    if amount <= 0 || (debt > 0 && amount < program.payout_minimum_for(balance_now.currency)) {
        return ReviewOutcome::Cancel;
    }
    ReviewOutcome::Approve {
        amount,
        released: item_amount - amount,
    }
}

/// [`review_item`]'s answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewOutcome {
    /// Approve for `amount`, giving `released` back to available.
    Approve {
        /// What the item pays.
        amount: i64,
        /// What goes back to available (0 when nothing was clawed back).
        released: i64,
    },
    /// Cancel: everything back to available.
    Cancel,
}

#[cfg(test)]
mod tests {
    use super::{paypal_value, PayoutMethod as PM};

    /// PayPal's amount strings, in worked minor units (developer.paypal.com "Currency codes").
    #[test]
    fn paypal_amount_values_table() {
        let c = |code: &str| Currency::new(code).unwrap();
        let cases: &[(&str, i64, Option<&str>)] = &[
            ("USD", 12_475, Some("124.75")),
            ("USD", 5, Some("0.05")),
            ("USD", 10_000, Some("100.00")),
            ("EUR", 99, Some("0.99")),
            ("JPY", 1_250, Some("1250")), // no decimals in ISO or PayPal
            ("HUF", 1_234_500, Some("12345")), // ISO 2 decimals, PayPal none
            ("HUF", 1_234_550, None),     // half a forint: PayPal cannot carry it
            ("TWD", 99_900, Some("999")),
            ("KWD", 12_345, None), // PayPal does not pay KWD (a reason to wait, decided earlier)
            ("USD", -1, None),
        ];
        for (code, minor, want) in cases {
            assert_eq!(
                paypal_value(c(code), *minor).as_deref(),
                *want,
                "{code} {minor}"
            );
        }
    }

    #[test]
    fn paypal_pays_whole_forints_and_the_fraction_waits() {
        let pp = PM::PayPal {
            email: "a@example.com".into(),
        };
        let huf = Currency::new("HUF").unwrap();
        assert_eq!(pp.payable_part(huf, 1_234_550), 1_234_500);
        assert_eq!(pp.payable_part(Currency::USD, 1_234_550), 1_234_550);
        assert_eq!(pp.payable_part(Currency::JPY, 1_234), 1_234);
        let stripe = PM::StripeConnect {
            account_id: "acct_1".into(),
        };
        assert_eq!(stripe.payable_part(huf, 1_234_550), 1_234_550);
    }

    use super::*;
    use crate::program::tests::base;

    #[test]
    fn payout_minimum_per_currency() {
        let mut p = base();
        assert_eq!(p.payout_minimum_for(Currency::USD), 10_000);
        // No entry for EUR while others are configured: not payable, explained.
        assert_eq!(p.payout_minimum_for(Currency::EUR), i64::MAX);
        assert_eq!(p.payout_minimum_configured(Currency::EUR), None);
        let mut b = Balance::zero(Currency::EUR);
        b.available = 1_000_000;
        assert_eq!(payout_amount(&p, &b), None);
        assert_eq!(
            balance_payout_blockers(&p, &b),
            vec![PayoutBlocker::NoMinimumForCurrency {
                currency: Currency::EUR
            }]
        );
        p.payout_minimum.insert(Currency::EUR, 5_000);
        assert_eq!(payout_amount(&p, &b), Some(1_000_000));
        assert!(balance_payout_blockers(&p, &b).is_empty());
        // An empty map switches minimums off, but zero / negative still never pays.
        p.payout_minimum.clear();
        assert_eq!(p.payout_minimum_for(Currency::JPY), 0);
        let mut y = Balance::zero(Currency::JPY);
        y.available = 1;
        assert_eq!(payout_amount(&p, &y), Some(1));
        y.available = -300;
        assert_eq!(payout_amount(&p, &y), None);
        assert_eq!(
            balance_payout_blockers(&p, &y),
            vec![PayoutBlocker::NothingAvailable { available: -300 }]
        );
        // $80 under Ontraport's $100.
        let q = base();
        let mut u = Balance::zero(Currency::USD);
        u.available = 8_000;
        assert_eq!(
            balance_payout_blockers(&q, &u),
            vec![PayoutBlocker::BelowMinimum {
                available: 8_000,
                minimum: 10_000,
                needed: 2_000,
            }]
        );
        u.available = 10_000;
        assert_eq!(payout_amount(&q, &u), Some(10_000));
    }

    #[test]
    fn partner_blockers() {
        let paypal = PayoutMethod::PayPal {
            email: "p@example.com".into(),
        };
        assert!(
            payout_blockers(PartnerStatus::Active, &paypal, TaxInfoState::Approved, true)
                .is_empty()
        );
        // A program that does not require tax information pays without it.
        assert!(
            payout_blockers(PartnerStatus::Active, &paypal, TaxInfoState::Missing, false)
                .is_empty()
        );
        assert_eq!(
            payout_blockers(
                PartnerStatus::Suspended,
                &PayoutMethod::None,
                TaxInfoState::Submitted,
                true
            ),
            vec![
                PayoutBlocker::PartnerNotActive {
                    status: PartnerStatus::Suspended
                },
                PayoutBlocker::NoPayoutMethod,
                PayoutBlocker::TaxInfoNotApproved {
                    state: TaxInfoState::Submitted
                },
            ]
        );
        let bad = PayoutMethod::PayPal {
            email: "not an email".into(),
        };
        assert_eq!(
            payout_blockers(PartnerStatus::Active, &bad, TaxInfoState::Approved, true),
            vec![PayoutBlocker::NoPayoutMethod]
        );
        let j = serde_json::to_string(&paypal).unwrap();
        assert_eq!(j, r#"{"type":"paypal","email":"p@example.com"}"#);
        let s: PayoutMethod =
            serde_json::from_str(r#"{"type":"stripe_connect","account_id":"acct_1"}"#).unwrap();
        assert!(s.is_usable());
    }

    /// Ontraport: Fridays, $100, a valid PayPal address, tax information (required by default).
    #[test]
    fn run_decisions_in_worked_cents() {
        let p = base();
        let paypal = PayoutMethod::PayPal {
            email: "p@example.com".into(),
        };
        let bal = |available: i64| Balance {
            available,
            ..Balance::zero(Currency::USD)
        };
        use PartnerStatus::*;
        use TaxInfoState::*;
        type Case = (
            PartnerStatus,
            bool,
            TaxInfoState,
            i64,
            Result<i64, Vec<&'static str>>,
        );
        let cases: Vec<Case> = vec![
            (Active, true, Approved, 10_000, Ok(10_000)),
            (Active, true, Approved, 12_345, Ok(12_345)),
            (Active, true, Approved, 9_999, Err(vec!["below_minimum"])),
            (Active, true, Approved, 0, Err(vec!["nothing_available"])),
            (
                Active,
                true,
                Approved,
                -2_500,
                Err(vec!["nothing_available"]),
            ),
            (
                Active,
                false,
                Approved,
                50_000,
                Err(vec!["no_payout_method"]),
            ),
            (
                Active,
                true,
                Submitted,
                50_000,
                Err(vec!["tax_info_not_approved"]),
            ),
            (
                Suspended,
                true,
                Approved,
                50_000,
                Err(vec!["partner_not_active"]),
            ),
            (
                Banned,
                true,
                Approved,
                50_000,
                Err(vec!["partner_not_active"]),
            ),
            (
                Pending,
                false,
                Missing,
                5_000,
                Err(vec![
                    "partner_not_active",
                    "no_payout_method",
                    "tax_info_not_approved",
                    "below_minimum",
                ]),
            ),
        ];
        for (status, has_method, tax, available, want) in cases {
            let method = if has_method {
                paypal.clone()
            } else {
                PayoutMethod::None
            };
            let got = payout_decision(&p, status, &method, tax, &bal(available))
                .map_err(|bs| bs.iter().map(|b| b.reason()).collect::<Vec<_>>());
            assert_eq!(got, want, "{status:?} {has_method} {tax:?} {available}");
        }
        let mut no_tax = base();
        no_tax.require_tax_info = false;
        assert_eq!(
            payout_decision(&no_tax, Active, &paypal, Missing, &bal(10_000)),
            Ok(10_000)
        );
    }

    #[test]
    fn run_dates_catch_up_a_missed_day_once() {
        use chrono::TimeZone;
        let fri = PayoutSchedule::default();
        let at = |d: u32, h: u32| Utc.with_ymd_and_hms(2026, 12, d, h, 0, 0).unwrap();
        let date = |d: u32| NaiveDate::from_ymd_opt(2026, 12, d).unwrap();
        // Fri 2026-12-04 itself, and the Saturday to Monday after (the missed Friday), not Tuesday.
        assert_eq!(payout_run_date(&fri, Tz::UTC, at(4, 0), 3), Some(date(4)));
        assert_eq!(payout_run_date(&fri, Tz::UTC, at(5, 0), 3), Some(date(4)));
        assert_eq!(payout_run_date(&fri, Tz::UTC, at(7, 23), 3), Some(date(4)));
        assert_eq!(payout_run_date(&fri, Tz::UTC, at(8, 0), 3), None);
        assert_eq!(payout_run_date(&fri, Tz::UTC, at(3, 23), 3), None);
        // The program's own zone: Sat 02:00 UTC is Friday evening in Los Angeles.
        let la: Tz = "America/Los_Angeles".parse().unwrap();
        assert_eq!(payout_run_date(&fri, la, at(5, 2), 0), Some(date(4)));
        assert_eq!(payout_run_date(&fri, la, at(4, 2), 0), None);
        // Kartra-style monthly on the 15th.
        let m15 = PayoutSchedule::Monthly { day: 15 };
        assert_eq!(payout_run_date(&m15, Tz::UTC, at(16, 9), 3), Some(date(15)));
        assert_eq!(payout_run_date(&m15, Tz::UTC, at(19, 9), 3), None);
    }

    #[test]
    fn item_states_move_only_forward() {
        use PayoutItemState::*;
        let all = [
            Created, Approved, Held, Submitted, Sent, Failed, Cancelled, Returned,
        ];
        let allowed: Vec<(PayoutItemState, PayoutItemState)> = all
            .iter()
            .flat_map(|a| all.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a.can_become(*b))
            .collect();
        assert_eq!(
            allowed,
            vec![
                (Created, Approved),
                (Created, Held),
                (Created, Cancelled),
                (Approved, Held),
                (Approved, Submitted),
                (Approved, Cancelled),
                (Held, Approved),
                (Held, Cancelled),
                (Submitted, Sent),
                (Submitted, Failed),
                (Sent, Returned),
            ]
        );
        // Money leaves `in_payout` exactly once: by sent, failed or cancelled.
        for s in all {
            let leaves = matches!(s, Sent | Failed | Cancelled);
            let want = match s {
                Sent => Some(crate::ledger::EntryKind::Paid),
                Failed | Cancelled => Some(crate::ledger::EntryKind::PayoutReleased),
                Returned => Some(crate::ledger::EntryKind::PayoutReturned),
                _ => None,
            };
            assert_eq!(s.entry_kind(), want, "{s:?}");
            assert_eq!(!s.in_flight() && s != Returned, leaves, "{s:?}");
        }
    }

    fn day(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    /// The payout FAQ in worked cents, one balance per row: what the run on `today` does.
    #[test]
    fn the_faq_decides_in_worked_cents() {
        let paypal = PayoutMethod::PayPal {
            email: "p@example.com".into(),
        };
        let none = PayoutMethod::None;
        let facts = |method: &'static PayoutMethod| PartnerFacts {
            status: PartnerStatus::Active,
            method,
            method_unusable: None,
            tax_info: TaxInfoState::Approved,
            held: None,
        };
        let paypal: &'static PayoutMethod = Box::leak(Box::new(paypal));
        let none: &'static PayoutMethod = Box::leak(Box::new(none));
        let usd = |available: i64| Balance {
            available,
            ..Balance::zero(Currency::USD)
        };
        let lots = |v: &[(NaiveDate, i64)]| -> Lots { v.iter().copied().collect() };
        let six_forfeit = AccrualPolicy::ForfeitAfterMonths { months: 6 };
        let six_pay = AccrualPolicy::PayAfterMonths { months: 6 };

        let mut p = base();
        // $80 waits under the $100 minimum ($20 needed)…
        let q = lots(&[(day(1, 10), 8_000)]);
        let out = decide_balance(&p, &facts(paypal), &usd(8_000), &q, day(2, 6));
        assert_eq!(out.reasons(), vec!["below_minimum"]);
        let BalanceOutcome::Wait { blockers, .. } = &out else {
            panic!()
        };
        assert_eq!(
            blockers[0],
            PayoutBlocker::BelowMinimum {
                available: 8_000,
                minimum: 10_000,
                needed: 2_000
            }
        );
        // …and is paid with the next $40, oldest first: $120.
        let q2 = lots(&[(day(1, 10), 8_000), (day(2, 10), 4_000)]);
        assert_eq!(
            decide_balance(&p, &facts(paypal), &usd(12_000), &q2, day(2, 13)),
            BalanceOutcome::Pay {
                amount: 12_000,
                taken: q2.clone(),
                left: Lots::new(),
                under_minimum: false
            }
        );
        // Indefinite: still waiting a year on, nothing forfeited, no warning.
        assert_eq!(
            decide_balance(&p, &facts(paypal), &usd(8_000), &q, day(12, 31)),
            BalanceOutcome::Wait {
                blockers: vec![PayoutBlocker::BelowMinimum {
                    available: 8_000,
                    minimum: 10_000,
                    needed: 2_000
                }],
                forfeit: None,
                warning: None,
            }
        );

        // Six months, forfeited: $50 from Jan 10 and $30 from Feb 20.
        p.accrual = six_forfeit;
        let q3 = lots(&[(day(1, 10), 5_000), (day(2, 20), 3_000)]);
        // Jun 5: the Jan 10 lot is forfeited on Jul 10, 35 days away: no warning yet.
        let w = decide_balance(&p, &facts(paypal), &usd(8_000), &q3, day(6, 5));
        assert_eq!(
            w,
            BalanceOutcome::Wait {
                blockers: vec![PayoutBlocker::BelowMinimum {
                    available: 8_000,
                    minimum: 10_000,
                    needed: 2_000
                }],
                forfeit: None,
                warning: None,
            }
        );
        // Jun 12: within 30 days: warned of $50 on Jul 10.
        let BalanceOutcome::Wait {
            warning, forfeit, ..
        } = decide_balance(&p, &facts(paypal), &usd(8_000), &q3, day(6, 12))
        else {
            panic!()
        };
        assert_eq!((warning, forfeit), (Some((day(7, 10), 5_000)), None));
        // Jul 10: $50 forfeited, $30 left waits ($70 needed); Aug 20 is more than 30 days away.
        assert_eq!(
            decide_balance(&p, &facts(paypal), &usd(8_000), &q3, day(7, 10)),
            BalanceOutcome::Wait {
                blockers: vec![PayoutBlocker::BelowMinimum {
                    available: 3_000,
                    minimum: 10_000,
                    needed: 7_000
                }],
                forfeit: Some(Forfeiture {
                    amount: 5_000,
                    taken: lots(&[(day(1, 10), 5_000)]),
                    left: lots(&[(day(2, 20), 3_000)]),
                }),
                warning: None,
            }
        );
        // Jul 24: warned of the $30 going on Aug 20.
        let BalanceOutcome::Wait { warning, .. } = decide_balance(
            &p,
            &facts(paypal),
            &usd(3_000),
            &lots(&[(day(2, 20), 3_000)]),
            day(7, 24),
        ) else {
            panic!()
        };
        assert_eq!(warning, Some((day(8, 20), 3_000)));
        // A balance over the minimum is paid, never forfeited, however old.
        assert!(matches!(
            decide_balance(
                &p,
                &facts(paypal),
                &usd(10_000),
                &lots(&[(day(1, 10), 10_000)]),
                day(9, 1)
            ),
            BalanceOutcome::Pay { amount: 10_000, .. }
        ));
        // Held by an operator or frozen (banned): nothing is forfeited.
        let mut held = facts(paypal);
        held.held = Some("fraud review");
        let BalanceOutcome::Wait {
            blockers, forfeit, ..
        } = decide_balance(&p, &held, &usd(8_000), &q3, day(7, 10))
        else {
            panic!()
        };
        assert_eq!((blockers.len(), forfeit), (2, None));
        let mut banned = facts(paypal);
        banned.status = PartnerStatus::Banned;
        let BalanceOutcome::Wait { forfeit, .. } =
            decide_balance(&p, &banned, &usd(8_000), &q3, day(7, 10))
        else {
            panic!()
        };
        assert_eq!(forfeit, None);

        // Six months, paid anyway: under the minimum on Jul 10 with a PayPal address on file…
        p.accrual = six_pay;
        assert_eq!(
            decide_balance(&p, &facts(paypal), &usd(8_000), &q3, day(7, 10)),
            BalanceOutcome::Pay {
                amount: 8_000,
                taken: q3.clone(),
                left: Lots::new(),
                under_minimum: true
            }
        );
        // …not a day before, and not without a payout method (it waits).
        assert_eq!(
            decide_balance(&p, &facts(paypal), &usd(8_000), &q3, day(7, 9)).reasons(),
            vec!["below_minimum"]
        );
        assert_eq!(
            decide_balance(&p, &facts(none), &usd(8_000), &q3, day(7, 10)).reasons(),
            vec!["no_payout_method", "below_minimum"]
        );
    }

    #[test]
    fn every_reason_to_wait() {
        let p = base();
        let paypal = PayoutMethod::PayPal {
            email: "p@example.com".into(),
        };
        let usd = Balance {
            available: 20_000,
            ..Balance::zero(Currency::USD)
        };
        let kwd = Balance {
            available: 20_000,
            ..Balance::zero(Currency::KWD)
        };
        let q = Lots::new();
        let mut f = PartnerFacts {
            status: PartnerStatus::Active,
            method: &paypal,
            method_unusable: Some("RECEIVER_UNREGISTERED"),
            tax_info: TaxInfoState::Approved,
            held: None,
        };
        assert_eq!(
            decide_balance(&p, &f, &usd, &q, day(3, 6)).reasons(),
            vec!["payout_method_unusable"]
        );
        f.method_unusable = None;
        f.held = Some("operator");
        assert_eq!(
            decide_balance(&p, &f, &usd, &q, day(3, 6)).reasons(),
            vec!["held_by_operator"]
        );
        f.held = None;
        let mut kwd_program = base();
        kwd_program.payout_minimum.insert(Currency::KWD, 30_000);
        // PayPal cannot pay Kuwaiti dinars: said first, with the minimum.
        assert_eq!(
            decide_balance(&kwd_program, &f, &kwd, &q, day(3, 6)).reasons(),
            vec!["currency_not_payable", "below_minimum"]
        );
        let stripe = PayoutMethod::StripeConnect {
            account_id: "acct_1".into(),
        };
        f.method = &stripe;
        assert_eq!(
            decide_balance(&kwd_program, &f, &kwd, &q, day(3, 6)).reasons(),
            vec!["below_minimum"]
        );
        f.status = PartnerStatus::Suspended;
        f.tax_info = TaxInfoState::Missing;
        assert_eq!(
            decide_balance(&p, &f, &usd, &q, day(3, 6)).reasons(),
            vec!["partner_not_active", "tax_info_not_approved"]
        );
    }

    /// A held item approved after a $30 clawback of a $120 item: it pays $90; after a $150
    /// clawback it is cancelled; a shrink under the minimum cancels it too.
    #[test]
    fn approval_after_a_clawback() {
        let p = base();
        let now = |available: i64| Balance {
            available,
            ..Balance::zero(Currency::USD)
        };
        assert_eq!(
            review_item(&p, &now(0), 12_000),
            ReviewOutcome::Approve {
                amount: 12_000,
                released: 0
            }
        );
        assert_eq!(
            review_item(&p, &now(2_500), 12_000),
            ReviewOutcome::Approve {
                amount: 12_000,
                released: 0
            }
        );
        assert_eq!(
            review_item(&p, &now(-1_500), 12_000),
            ReviewOutcome::Approve {
                amount: 10_500,
                released: 1_500
            }
        );
        assert_eq!(review_item(&p, &now(-3_000), 12_000), ReviewOutcome::Cancel);
        assert_eq!(
            review_item(&p, &now(-15_000), 12_000),
            ReviewOutcome::Cancel
        );
    }
}
