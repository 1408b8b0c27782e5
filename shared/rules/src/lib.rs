//! Pure business rules of the partner program engine. No AWS, no I/O, no clock: every time is
//! business time handed in by the caller.
//!
//! * [`money`]: integer minor units per currency and the one rounding rule.
//! * [`display`]: amounts and dates as a locale writes them (e-mails).
//! * [`ledger`]: entry kinds and the balance move of each.
//! * [`hosts`]: the deep-link allow-list grammar (`shop.example.com`, `*.example.com`).
//! * [`program`]: configuration as operators declare it: the program with its plan (rewards,
//!   durations), levels, payout settings and allow-list; products; a partner's status and
//!   enrollment. Types and validation only.
//! * [`levels`]: partner levels over time (promotion, never demotion).
//! * [`plan`]: the commission base and the commission fold ([`evaluate_customer`],
//!   [`evaluate_customer_versions`], [`diff_booked`]).
//! * [`schedule`]: holds (from the sale or the account's first sale), payout days.
//! * [`accrual`]: one accrual clock per commission (lots), oldest paid first, forfeiture and
//!   pay-anyway limits, the warning before a forfeiture.
//! * [`partner`]: what a partner's status allows: earning on new sales, binding, being paid,
//!   a frozen balance.
//! * [`payout`]: whether a partner and a balance can be paid now.
//! * [`attribution`]: e-mail normalization, self-referral, the choice among causes (clicks,
//!   bindings of the same e-mail, invitations, coupons) and the cookie window, binding causes,
//!   when a binding covers a sale or moves, the click de-duplication window.
//! * [`sale`]: the commission base of an invoice line, ended subscriptions, level sales.
//! * [`refund`]: what refunds and disputes take back from a charge's commissions (pro rata,
//!   latest status by business time, which entry moves the money), and sales paid from credit.
//! * [`versions`]: a program's versions over business time (which one prices an invoice, what
//!   an edit writes).
//!
//! Modules depend only downwards, never in a cycle (module → what it uses):
//!
//! * `money`, `attribution`, `hosts` → nothing; `display` → `money`;
//! * `ledger` → `money`; `error` (private, home of [`PlanError`]) → `money`;
//! * `program` → `money`, `attribution`, `hosts`;
//! * `versions` → `program`;
//! * `schedule` → `program`; `accrual` → `program`;
//! * `levels` → `program`, `money`, `error`;
//! * `plan` → `program`, `versions`, `levels`, `ledger`, `money`, `error`;
//! * `partner` → `program`;
//! * `payout` → `program`, `partner`, `ledger`, `money`, `attribution`, `accrual`, `schedule`;
//! * `sale` → `levels`, `plan`;
//! * `refund` → `ledger`, `money`.
#![warn(missing_docs)]

pub mod accrual;
pub mod attribution;
pub mod display;
mod error;
pub mod hosts;
pub mod ledger;
pub mod levels;
pub mod money;
pub mod partner;
pub mod payout;
pub mod plan;
pub mod program;
pub mod refund;
pub mod sale;
pub mod schedule;
pub mod versions;

pub use attribution::{
    choose_click, is_self_referral, normalize_email, AttributionMethod, AttributionModel,
    BindingCause, ClickCandidate, EmailError, NormalizedEmail,
};
pub use display::Locale;
pub use hosts::{url_host, DeepLinkHosts, HostPattern};
pub use ledger::{entry_delta, Balance, BalanceDelta, Bucket, EntryKind, LedgerError};
pub use levels::{
    first_difference, highest_level_met, level_history_from_sales, settled_before, LevelChange,
    LevelHistory, LevelSale, PartnerMetrics, PartnerSale,
};
pub use money::{Currency, Money, MoneyError, COMMISSION_ROUNDING};
pub use partner::{balance_frozen, can_bind, payable, sale_treatment, SaleTreatment};
pub use payout::{
    balance_payout_blockers, decide_balance, payout_amount, payout_blockers, payout_decision,
    payout_run_date, paypal_value, review_item, BalanceOutcome, Forfeiture, PartnerFacts,
    PayoutBlocker, PayoutItemState, PayoutMethod, ReviewOutcome, TaxInfoState,
    PAYOUT_CATCH_UP_DAYS, PAYPAL_CURRENCIES, PAYPAL_NO_DECIMALS,
};
pub use plan::{
    commission_base, commission_for_invoice, diff_booked, evaluate_customer,
    evaluate_customer_versions, months_window_end, program_product_ids, CommissionChange,
    CommissionReason, CommissionTier, InvoiceCommission, InvoiceFacts, InvoiceReward, PlanError,
    RateContext, RetiredRate, SaleLine,
};
pub use program::{
    validate_products, AccrualPolicy, CommissionPlan, Duration, EmailSettings, HoldAnchor, Level,
    LevelThreshold, Membership, PartnerStatus, PayoutReview, PayoutSchedule, Program, ProgramError,
    ProgramProduct, ProgramStatus, Reward, Tiers, MAX_LEVEL_RATE,
};
pub use schedule::{available_at, hold_ends_at, is_payout_date, next_payout_date, payout_date_for};
pub use versions::{plan_edit, ProgramVersion, ProgramVersions, VersionError};
