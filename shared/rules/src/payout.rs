//! Whether a partner, and a partner's balance, can be paid now: the partner-side facts
//! ([`PayoutMethod`], [`TaxInfoState`], the partner's [`PartnerStatus`]) and the program's
//! payout minimum per currency ([`Program::payout_minimum_for`]); which payout date a run is
//! for ([`payout_run_date`]); and the life of a payout item ([`PayoutItemState`]).

use chrono::{DateTime, Days, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::program::PayoutSchedule;
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

#[cfg(test)]
mod tests {
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
                minimum: 10_000
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
}
