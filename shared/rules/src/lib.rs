//! Pure business rules of the partner program engine. No AWS, no I/O, no clock: every time is
//! business time handed in by the caller.
//!
//! * [`money`]: integer minor units per currency and the one rounding rule.
//! * [`ledger`]: entry kinds and the balance move of each.
//! * [`program`]: program configuration, products, partner payout eligibility.
//! * [`plan`]: rewards, durations, the commission base and the commission fold
//!   ([`evaluate_customer`], [`diff_booked`]).
//! * [`levels`]: partner levels over time (promotion, never demotion).
//! * [`schedule`]: holds, payout days, accrual / forfeiture.
//! * [`attribution`]: e-mail normalization, self-referral, click choice, binding causes.
#![warn(missing_docs)]

pub mod attribution;
pub mod ledger;
pub mod levels;
pub mod money;
pub mod plan;
pub mod program;
pub mod schedule;

pub use attribution::{
    choose_click, is_self_referral, normalize_email, AttributionModel, BindingCause,
    ClickCandidate, EmailError, NormalizedEmail,
};
pub use ledger::{entry_delta, Balance, BalanceDelta, Bucket, EntryKind, LedgerError};
pub use levels::{
    highest_level_met, level_history_from_sales, promotion_after_sale, LevelChange, LevelHistory,
    LevelSale, PartnerMetrics, PartnerSale, Promotion,
};
pub use money::{Currency, Money, MoneyError, COMMISSION_ROUNDING};
pub use plan::{
    commission_base, commission_for_invoice, diff_booked, evaluate_customer, months_window_end,
    program_product_ids, CommissionChange, CommissionPlan, CommissionReason, CommissionTier,
    Duration, InvoiceCommission, InvoiceFacts, InvoiceReward, PlanError, RateContext, RetiredRate,
    Reward, SaleLine,
};
pub use program::{
    balance_payout_blockers, payout_amount, payout_blockers, validate_products, Level,
    LevelThreshold, Membership, PartnerStatus, PayoutBlocker, PayoutMethod, Program, ProgramError,
    ProgramProduct, ProgramStatus, TaxInfoState, Tiers, MAX_LEVEL_RATE,
};
pub use schedule::{
    available_at, forfeit_at, forfeits, is_payout_date, next_payout_date, payout_date_for,
    AccrualPolicy, PayoutSchedule,
};
