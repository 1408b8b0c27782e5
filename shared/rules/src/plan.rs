//! The commission fold: what a program's plan ([`Reward`], [`Duration`], declared in
//! [`crate::program`]) pays on each of a customer's invoices.
//!
//! # What earns
//!
//! An invoice's **commission base** is the sum of its lines (amounts after discounts, excluding
//! tax) whose product is on the program and that are neither metered usage nor excluded by
//! metadata (Ontraport pays nothing on email / contact overages, SMS or print credits). Lines
//! without a product id never earn. A program with no products earns nothing.
//!
//! Lines of a product with a [`ProgramProduct::reward_override`] form their own reward group and
//! earn that reward; all other eligible lines earn the plan's reward. The tier-1 commission of
//! an invoice is the exact sum over its groups, rounded **once** ([`Money::round_minor`], the
//! rule [`crate::COMMISSION_ROUNDING`]). A group whose base is zero or negative (credit lines)
//! earns nothing and does not count in the invoice's base.
//!
//! Tier 2 (two-tier programs): the recruiter earns the plan's `tier2` reward on the **same base**
//! as the sale (the whole invoice base, not a share of the tier-1 commission), under the same
//! duration. Levels, the rate lock and product overrides do not change tier 2.
//!
//! # The fold
//!
//! [`evaluate_customer`] is a pure function of the **set** of one customer's paid invoices in
//! one program: it sorts them by `(paid_at, invoice_id)` and walks them in that order:
//!
//! * an invoice whose amount paid (sum of all lines) is zero or less earns nothing and is never
//!   a first sale ([`CommissionReason::ZeroInvoice`]; "trial at $0, then the full-price rebill":
//!   the rebill is the first sale);
//! * otherwise it gets the next `payment_number`; if its commission base is zero it earns
//!   nothing ([`CommissionReason::NoEligibleLines`]);
//! * the first invoice with a positive base is the customer's **first sale**; the plan's
//!   [`Duration`] counts from it;
//! * [`Reward::Hybrid`] pays only the flat amount on the first sale and only the percentage on
//!   later payments.
//!
//! A program edited over time is folded with [`evaluate_customer_versions`]: each invoice is
//! priced with the program version in force at its `paid_at` ([`crate::versions`]), the fold's
//! state carrying across versions, so an edit never re-prices an invoice paid before it.
//!
//! Storage re-runs the fold whenever an invoice arrives (Stripe does not order events) and books
//! [`diff_booked`] between the previous and the new result. Refunds and disputes are ledger
//! entries (`reversed` / `clawed_back`), not fold inputs: a refunded first sale stays the first
//! sale.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, LocalResult, Months, NaiveDateTime, Offset, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ledger::EntryKind;
use crate::levels::{LevelHistory, PartnerSale};
use crate::money::{Currency, Money, MoneyError};
use crate::program::{Duration, Program, ProgramProduct, Reward, Tiers};
use crate::versions::ProgramVersions;

pub use crate::error::PlanError;

/// One line of a paid invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SaleLine {
    /// The payment provider's product id; `None` for one-off items without a product.
    #[serde(default)]
    pub product_id: Option<String>,
    /// Amount after discounts, excluding tax, in the invoice currency.
    pub amount: Money,
    /// A metered (usage) price: overages never earn.
    #[serde(default)]
    pub metered: bool,
    /// Excluded by product / price metadata (credits packs and the like).
    #[serde(default)]
    pub excluded_by_metadata: bool,
}

impl SaleLine {
    /// A regular (licensed, not excluded) line of `product_id`.
    pub fn new(product_id: impl Into<String>, amount: Money) -> Self {
        SaleLine {
            product_id: Some(product_id.into()),
            amount,
            metered: false,
            excluded_by_metadata: false,
        }
    }

    /// True when the line counts toward the commission base: its product is one of
    /// `program_product_ids` and it is neither metered nor excluded.
    pub fn is_eligible(&self, program_product_ids: &BTreeSet<String>) -> bool {
        !self.metered
            && !self.excluded_by_metadata
            && self
                .product_id
                .as_ref()
                .is_some_and(|p| program_product_ids.contains(p))
    }
}

/// A paid invoice of one customer, as the fold sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceFacts {
    /// The payment provider's invoice id (unique per customer).
    pub invoice_id: String,
    /// Business time of the payment.
    pub paid_at: DateTime<Utc>,
    /// Every line, including ineligible ones; all in `currency`.
    pub lines: Vec<SaleLine>,
    /// The invoice currency.
    pub currency: Currency,
    /// How it was paid: the charge (refunds and disputes join through it) and what came from
    /// the customer's credit balance. `None` on facts recorded before it was kept: paid in
    /// full, no charge known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<InvoicePayment>,
}

/// How an invoice was paid (Stripe, pinned version: `invoice.charge`, `invoice.payment_intent`,
/// `invoice.amount_paid`, `invoice.total`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePayment {
    /// The charge that paid it (`ch_…`), or the payment intent (`pi_…`) when no charge is
    /// named: the key refunds and disputes of the payment are kept under.
    #[serde(default)]
    pub charge_key: Option<String>,
    /// `pi_…`, when known.
    #[serde(default)]
    pub payment_intent: Option<String>,
    /// Minor units received with money (the rest of `total` came from the customer's credit).
    pub amount_paid: i64,
    /// Minor units, the invoice total.
    pub total: i64,
}

impl InvoiceFacts {
    /// The share of the commission base paid with money ([`crate::refund::paid_share`]): 1
    /// when nothing came from the customer's credit balance, or when it is not known.
    pub fn paid_share(&self) -> Decimal {
        match &self.payment {
            Some(p) if p.total > 0 && p.amount_paid < p.total => {
                crate::refund::paid_share(p.amount_paid, p.total)
            }
            _ => Decimal::ONE,
        }
    }

    /// The charge key refunds and disputes of this invoice's payment are kept under.
    pub fn charge_key(&self) -> Option<&str> {
        self.payment.as_ref().and_then(|p| p.charge_key.as_deref())
    }

    /// Amount paid: the sum of all lines (excluding tax).
    pub fn amount_paid(&self) -> Result<Money, PlanError> {
        self.check_currency()?;
        sum_lines(self.currency, self.lines.iter())
    }

    fn check_currency(&self) -> Result<(), PlanError> {
        match self
            .lines
            .iter()
            .find(|l| l.amount.currency != self.currency)
        {
            Some(l) => Err(PlanError::LineCurrency {
                invoice_id: self.invoice_id.clone(),
                line: l.amount.currency,
                invoice: self.currency,
            }),
            None => Ok(()),
        }
    }
}

fn sum_lines<'a>(
    currency: Currency,
    mut lines: impl Iterator<Item = &'a SaleLine>,
) -> Result<Money, PlanError> {
    lines.try_fold(Money::zero(currency), |acc, l| {
        acc.checked_add(l.amount).map_err(PlanError::from)
    })
}

/// The ids of the products on `program` among `products` (rows of other programs ignored).
pub fn program_product_ids(program: &Program, products: &[ProgramProduct]) -> BTreeSet<String> {
    products
        .iter()
        .filter(|p| p.program_id == program.id)
        .map(|p| p.product_id.clone())
        .collect()
}

/// The commission base of `lines` in `currency`: the sum of eligible lines
/// ([`SaleLine::is_eligible`]), ignoring reward overrides. Not clamped (credit lines may make
/// it negative); the fold treats a base of zero or less as nothing to earn on.
pub fn commission_base(
    currency: Currency,
    lines: &[SaleLine],
    program_product_ids: &BTreeSet<String>,
) -> Result<Money, PlanError> {
    if let Some(l) = lines.iter().find(|l| l.amount.currency != currency) {
        return Err(MoneyError::CurrencyMismatch(currency, l.amount.currency).into());
    }
    sum_lines(
        currency,
        lines.iter().filter(|l| l.is_eligible(program_product_ids)),
    )
}

/// A base rate the operator replaced: it applied to sales paid before `until`.
///
/// Storage keeps edits as program versions ([`crate::versions`], folded by
/// [`evaluate_customer_versions`]), which cover every setting and the products, and passes no
/// retired rates; this rate-only history stays for callers of the fold that hold one program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetiredRate {
    /// The old rate.
    pub rate: Decimal,
    /// It applied to sales paid strictly before this time.
    pub until: DateTime<Utc>,
}

/// What the fold needs to know about the partner to price a payment: which percentage rate
/// was in force at a given business time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateContext {
    /// The partner's levels over time in this program.
    #[serde(default)]
    pub level_history: LevelHistory,
    /// Past values of the plan's percentage rate (empty: the current rate always applied).
    #[serde(default)]
    pub retired_base_rates: Vec<RetiredRate>,
}

impl RateContext {
    /// Base plan at all times, no rate history.
    pub fn new() -> Self {
        RateContext::default()
    }

    /// A context with the partner's level history.
    pub fn with_levels(level_history: LevelHistory) -> Self {
        RateContext {
            level_history,
            retired_base_rates: Vec::new(),
        }
    }

    /// The plan's own percentage rate for a sale paid at `t` (ignoring levels): the retired
    /// rate with the earliest `until` after `t`, else the program's current rate; `None` for a
    /// flat plan.
    pub fn base_rate_at(&self, program: &Program, t: DateTime<Utc>) -> Option<Decimal> {
        let current = program.plan.reward.percentage_rate()?;
        Some(
            self.retired_base_rates
                .iter()
                .filter(|r| t < r.until)
                .min_by_key(|r| r.until)
                .map_or(current, |r| r.rate),
        )
    }

    /// The percentage rate in force for this partner for a sale paid at `t`: the rate of the
    /// partner's level at `t` if above 0 (a level's rate replaces the plan's rate), else
    /// [`RateContext::base_rate_at`].
    pub fn percentage_rate_at(
        &self,
        program: &Program,
        t: DateTime<Utc>,
    ) -> Result<Option<Decimal>, PlanError> {
        let level = self.level_history.level_at(t);
        match program.level(level) {
            Ok(Some(l)) => Ok(Some(l.rate)),
            Ok(None) => Ok(self.base_rate_at(program, t)),
            Err(_) => Err(PlanError::UnknownLevel {
                level,
                defined: program.levels.len(),
            }),
        }
    }
}

/// Why an invoice earned what it earned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommissionReason {
    /// Amount paid zero or less (a $0 trial invoice): never a sale.
    ZeroInvoice,
    /// Paid, but no line is eligible (products not on the program, metered, excluded).
    NoEligibleLines,
    /// A percentage of the base.
    Percentage,
    /// A flat amount on the first sale (flat reward, or the flat part of a hybrid).
    FirstSaleFlat,
    /// A flat amount on a later payment (flat reward with a duration beyond the first sale).
    Flat,
    /// Reward groups of different kinds (product overrides) on one invoice.
    Mixed,
    /// The plan pays only the first sale, and this is a later payment.
    FirstSaleOnlyAlreadyPaid,
    /// Paid at or after the end of the plan's months window.
    OutsideCapWindow {
        /// End of the window (exclusive).
        window_end: DateTime<Utc>,
    },
    /// Beyond the plan's number of payments.
    PaymentCapReached {
        /// The plan's number of payments.
        cap: u32,
    },
    /// A flat reward without an amount for the invoice currency.
    NoFlatAmountForCurrency {
        /// The invoice currency.
        currency: Currency,
    },
}

/// The fold's result for one invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceCommission {
    /// The invoice.
    pub invoice_id: String,
    /// Its business time (the hold runs from here: [`crate::available_at`]).
    pub paid_at: DateTime<Utc>,
    /// Commission base (0 for a zero invoice or when nothing is eligible).
    pub base: Money,
    /// The customer's first sale in the program.
    pub is_first_sale: bool,
    /// 1-based number among the customer's invoices with a positive amount paid; 0 for
    /// invoices of zero or less.
    pub payment_number: u32,
    /// Commission of the referring partner.
    pub tier1: Money,
    /// Commission of the recruiter (two-tier programs; the caller books it only if the partner
    /// has a recruiter).
    pub tier2: Money,
    /// Percentage rate applied to the lines under the plan's own reward, after levels, rate
    /// history and rate lock; `None` when they earned a flat amount or nothing.
    pub rate_used: Option<Decimal>,
    /// Why.
    pub reason: CommissionReason,
}

impl PartnerSale {
    /// The sale of a fold result ([`evaluate_customer`]) for `customer_id`, for
    /// [`crate::level_history_from_sales`].
    pub fn from_commission(customer_id: impl Into<String>, c: &InvoiceCommission) -> Self {
        PartnerSale {
            customer_id: customer_id.into(),
            invoice_id: c.invoice_id.clone(),
            paid_at: c.paid_at,
            revenue: c.base,
        }
    }
}

/// What one invoice earns under the plan's rewards, before the duration is considered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceReward {
    /// Commission base (sum of the positive reward-group bases; 0 if nothing eligible).
    pub base: Money,
    /// Tier-1 commission.
    pub tier1: Money,
    /// Tier-2 commission (0 on one-tier programs).
    pub tier2: Money,
    /// See [`InvoiceCommission::rate_used`].
    pub rate_used: Option<Decimal>,
    /// Why.
    pub reason: CommissionReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Applied {
    Percentage(Decimal),
    FirstSaleFlat(i64),
    Flat(i64),
    NoFlat,
}

impl Applied {
    fn exact(&self, base_minor: i64) -> Result<Decimal, PlanError> {
        match *self {
            Applied::Percentage(rate) => Decimal::from(base_minor)
                .checked_mul(rate)
                .ok_or(PlanError::Money(MoneyError::Overflow)),
            Applied::FirstSaleFlat(a) | Applied::Flat(a) => Ok(Decimal::from(a)),
            Applied::NoFlat => Ok(Decimal::ZERO),
        }
    }
    fn reason(&self, currency: Currency) -> CommissionReason {
        match self {
            Applied::Percentage(_) => CommissionReason::Percentage,
            Applied::FirstSaleFlat(_) => CommissionReason::FirstSaleFlat,
            Applied::Flat(_) => CommissionReason::Flat,
            Applied::NoFlat => CommissionReason::NoFlatAmountForCurrency { currency },
        }
    }
}

/// How `reward` applies to one payment. `rate` replaces the reward's percentage rate when given
/// (levels / lock / history for the plan's own reward).
fn apply_reward(
    reward: &Reward,
    is_first_sale: bool,
    rate: Option<Decimal>,
    currency: Currency,
) -> Applied {
    let flat = |amounts: &BTreeMap<Currency, i64>, first: bool| match amounts.get(&currency) {
        Some(a) if first => Applied::FirstSaleFlat(*a),
        Some(a) => Applied::Flat(*a),
        None => Applied::NoFlat,
    };
    match reward {
        Reward::Percentage { rate: r } => Applied::Percentage(rate.unwrap_or(*r)),
        Reward::Flat { amounts } => flat(amounts, is_first_sale),
        Reward::Hybrid {
            first_sale_flat,
            rate: r,
        } => {
            if is_first_sale {
                flat(first_sale_flat, true)
            } else {
                Applied::Percentage(rate.unwrap_or(*r))
            }
        }
    }
}

/// What `invoice` earns under the plan's rewards and the products' overrides, ignoring the
/// plan's duration (the fold applies it).
///
/// `plan_rate` replaces the percentage rate of the plan's own reward (pass
/// [`RateContext::percentage_rate_at`]; `None` keeps the plan's rate). Lines of a product with
/// an override earn the override; all other eligible lines earn the plan's reward. A flat
/// reward pays its amount once per reward group present on the invoice. Tier 2 applies the
/// plan's `tier2` reward to the whole base. An invoice with an amount paid of zero or less
/// earns nothing ([`CommissionReason::ZeroInvoice`]).
pub fn commission_for_invoice(
    program: &Program,
    products: &[ProgramProduct],
    invoice: &InvoiceFacts,
    is_first_sale: bool,
    plan_rate: Option<Decimal>,
) -> Result<InvoiceReward, PlanError> {
    let currency = invoice.currency;
    let zero = Money::zero(currency);
    let nothing = |reason| InvoiceReward {
        base: zero,
        tier1: zero,
        tier2: zero,
        rate_used: None,
        reason,
    };
    if invoice.amount_paid()?.minor <= 0 {
        return Ok(nothing(CommissionReason::ZeroInvoice));
    }

    // Product → override (None = the plan's reward). First row wins.
    let mut on_program: BTreeMap<&str, Option<&Reward>> = BTreeMap::new();
    for p in products.iter().filter(|p| p.program_id == program.id) {
        on_program
            .entry(p.product_id.as_str())
            .or_insert(p.reward_override.as_ref());
    }

    // Reward groups: None = the plan's reward, Some(product) = that product's override.
    let mut groups: BTreeMap<Option<&str>, i64> = BTreeMap::new();
    for line in &invoice.lines {
        if line.metered || line.excluded_by_metadata {
            continue;
        }
        let Some(pid) = line.product_id.as_deref() else {
            continue;
        };
        let Some(ov) = on_program.get(pid) else {
            continue;
        };
        let key = ov.map(|_| pid);
        let sum = groups.entry(key).or_insert(0);
        *sum = sum
            .checked_add(line.amount.minor)
            .ok_or(PlanError::Money(MoneyError::Overflow))?;
    }
    groups.retain(|_, b| *b > 0);
    if groups.is_empty() {
        return Ok(nothing(CommissionReason::NoEligibleLines));
    }

    let mut base_minor: i64 = 0;
    let mut exact = Decimal::ZERO;
    let mut applied_kinds: Vec<Applied> = Vec::new();
    let mut rate_used = None;
    for (key, group_base) in &groups {
        base_minor = base_minor
            .checked_add(*group_base)
            .ok_or(PlanError::Money(MoneyError::Overflow))?;
        let applied = match key {
            None => {
                let a = apply_reward(&program.plan.reward, is_first_sale, plan_rate, currency);
                if let Applied::Percentage(r) = a {
                    rate_used = Some(r);
                }
                a
            }
            Some(pid) => match on_program.get(pid) {
                Some(Some(r)) => apply_reward(r, is_first_sale, None, currency),
                // Unreachable: override groups are keyed by products with an override.
                _ => Applied::NoFlat,
            },
        };
        exact = exact
            .checked_add(applied.exact(*group_base)?)
            .ok_or(PlanError::Money(MoneyError::Overflow))?;
        applied_kinds.push(applied);
    }
    // Paid partly from the customer's credit balance: the commission follows the money
    // received (base, tier 1 and tier 2 scaled by amount_paid ÷ total, each rounded once).
    let share = invoice.paid_share();
    let scaled = |d: Decimal| {
        if share == Decimal::ONE {
            Ok(d)
        } else {
            d.checked_mul(share)
                .ok_or(PlanError::Money(MoneyError::Overflow))
        }
    };
    let base = Money::round_minor(scaled(Decimal::from(base_minor))?, currency)?;
    let tier1 = Money::round_minor(scaled(exact)?, currency)?;

    let tier2 = match (&program.plan.tier2, program.tiers) {
        (Some(r2), Tiers::Two) => {
            let a = apply_reward(r2, is_first_sale, None, currency);
            Money::round_minor(scaled(a.exact(base_minor)?)?, currency)?
        }
        _ => zero,
    };

    let mut earning: Vec<CommissionReason> = Vec::new();
    for a in applied_kinds.iter().filter(|a| **a != Applied::NoFlat) {
        let r = a.reason(currency);
        if !earning.contains(&r) {
            earning.push(r);
        }
    }
    let reason = match earning.as_slice() {
        [] => CommissionReason::NoFlatAmountForCurrency { currency },
        [one] => *one,
        _ => CommissionReason::Mixed,
    };

    Ok(InvoiceReward {
        base,
        tier1,
        tier2,
        rate_used,
        reason,
    })
}

/// End (exclusive) of a `months` window opened at `start`, in `tz` (see [`Duration::Months`]).
pub fn months_window_end(
    start: DateTime<Utc>,
    months: u32,
    tz: Tz,
) -> Result<DateTime<Utc>, PlanError> {
    let local = start.with_timezone(&tz).naive_local();
    let end = local
        .checked_add_months(Months::new(months))
        .ok_or(PlanError::TimeOutOfRange)?;
    local_to_utc(tz, end)
}

/// The instant of a local date-time in `tz`: the earlier one in a repeated hour; in a DST gap,
/// the local time read with the offset in force before the gap (so it moves forward by the
/// gap's length, as java.time does).
fn local_to_utc(tz: Tz, local: NaiveDateTime) -> Result<DateTime<Utc>, PlanError> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.with_timezone(&Utc)),
        LocalResult::None => {
            let before = local
                .checked_sub_signed(TimeDelta::days(1))
                .ok_or(PlanError::TimeOutOfRange)?;
            let offset = tz.offset_from_utc_datetime(&before).fix();
            let utc = local
                .checked_sub_signed(TimeDelta::seconds(i64::from(offset.local_minus_utc())))
                .ok_or(PlanError::TimeOutOfRange)?;
            Ok(Utc.from_utc_datetime(&utc))
        }
    }
}

/// THE commission fold: what each of one customer's invoices earns in one program that was
/// never edited (one version: `program` with `products`). See [`evaluate_customer_versions`].
pub fn evaluate_customer(
    program: &Program,
    products: &[ProgramProduct],
    invoices: &[InvoiceFacts],
    rate_context: &RateContext,
) -> Result<Vec<InvoiceCommission>, PlanError> {
    fold(invoices, rate_context, |_| (program, products))
}

/// THE commission fold: what each of one customer's invoices earns in one program, each invoice
/// priced with the program version in force at its `paid_at` ([`ProgramVersions::in_force_at`]).
///
/// A pure, deterministic function of the **set** `invoices` (their order does not matter; they
/// are sorted by `(paid_at, invoice_id)`), the program's versions and the partner's
/// [`RateContext`]. The result is in that sorted order, one entry per invoice. See the module
/// documentation for the rules; in short, per invoice, with `v` the version in force at its
/// `paid_at`:
///
/// 1. amount paid ≤ 0 → nothing, `payment_number` 0 ([`CommissionReason::ZeroInvoice`]);
/// 2. otherwise the next `payment_number`; base ≤ 0 under `v`'s products → nothing
///    ([`CommissionReason::NoEligibleLines`]);
/// 3. the first invoice with a positive base is the first sale; `v`'s [`Duration`] is
///    checked against it (`FirstSaleOnlyAlreadyPaid`, `OutsideCapWindow` — the window opened
///    at the first sale, `v`'s months in `v`'s time zone —, `PaymentCapReached` — the sales
///    counted across versions —: nothing earned, the base is still reported);
/// 4. the percentage rate is [`RateContext::percentage_rate_at`] the invoice's `paid_at` in
///    `v` (the partner's level rate in `v`, else `v`'s plan rate); when `v` locks rates at the
///    first sale, the same at the first sale's `paid_at` in the version in force then;
/// 5. [`commission_for_invoice`] prices it with `v`'s rewards, overrides and tier 2.
///
/// The fold's state (payment numbers, the first sale, the sales counted, the rate lock)
/// carries across versions: an edit changes how later invoices are priced, never what an
/// earlier one earned.
///
/// Errors: the same invoice id twice, a line in another currency than its invoice, a level in
/// the history that the version does not define (an edit never removes levels:
/// [`crate::versions::plan_edit`]), arithmetic overflow.
pub fn evaluate_customer_versions(
    versions: &ProgramVersions,
    invoices: &[InvoiceFacts],
    rate_context: &RateContext,
) -> Result<Vec<InvoiceCommission>, PlanError> {
    fold(invoices, rate_context, |t| {
        let v = versions.in_force_at(t);
        (&v.program, v.products.as_slice())
    })
}

/// The fold over `invoices`, `version_at(t)` giving the program and products in force at `t`.
fn fold<'a>(
    invoices: &[InvoiceFacts],
    rate_context: &RateContext,
    version_at: impl Fn(DateTime<Utc>) -> (&'a Program, &'a [ProgramProduct]),
) -> Result<Vec<InvoiceCommission>, PlanError> {
    let mut sorted: Vec<&InvoiceFacts> = invoices.iter().collect();
    sorted.sort_by(|a, b| (a.paid_at, &a.invoice_id).cmp(&(b.paid_at, &b.invoice_id)));
    let mut ids = BTreeSet::new();
    for inv in &sorted {
        if !ids.insert(inv.invoice_id.as_str()) {
            return Err(PlanError::DuplicateInvoice(inv.invoice_id.clone()));
        }
    }

    let mut out = Vec::with_capacity(sorted.len());
    let mut payment_number: u32 = 0;
    let mut first_sale_at: Option<DateTime<Utc>> = None;
    let mut sales: u32 = 0;

    for inv in sorted {
        let (program, products) = version_at(inv.paid_at);
        let zero = Money::zero(inv.currency);
        let mut row = InvoiceCommission {
            invoice_id: inv.invoice_id.clone(),
            paid_at: inv.paid_at,
            base: zero,
            is_first_sale: false,
            payment_number: 0,
            tier1: zero,
            tier2: zero,
            rate_used: None,
            reason: CommissionReason::ZeroInvoice,
        };
        if inv.amount_paid()?.minor <= 0 {
            out.push(row);
            continue;
        }
        payment_number = payment_number.checked_add(1).ok_or(PlanError::Overflow)?;
        row.payment_number = payment_number;

        // Price it as a first sale if there has been none yet; the base does not depend on it.
        let is_first_sale = first_sale_at.is_none();
        let plan_rate = match (program.lock_rate_at_first_sale, first_sale_at) {
            (true, Some(first)) => rate_context.percentage_rate_at(version_at(first).0, first)?,
            _ => rate_context.percentage_rate_at(program, inv.paid_at)?,
        };
        let priced = commission_for_invoice(program, products, inv, is_first_sale, plan_rate)?;
        if priced.base.minor <= 0 {
            row.reason = CommissionReason::NoEligibleLines;
            out.push(row);
            continue;
        }
        row.base = priced.base;
        row.is_first_sale = is_first_sale;
        sales = sales.checked_add(1).ok_or(PlanError::Overflow)?;
        let first = *first_sale_at.get_or_insert(inv.paid_at);

        let blocked = match program.plan.duration {
            Duration::Lifetime => None,
            Duration::FirstSaleOnly => {
                (!is_first_sale).then_some(CommissionReason::FirstSaleOnlyAlreadyPaid)
            }
            Duration::Months { months } => {
                let end = months_window_end(first, months, program.time_zone)?;
                (inv.paid_at >= end)
                    .then_some(CommissionReason::OutsideCapWindow { window_end: end })
            }
            Duration::Payments { count } => {
                (sales > count).then_some(CommissionReason::PaymentCapReached { cap: count })
            }
        };
        match blocked {
            Some(reason) => row.reason = reason,
            None => {
                row.tier1 = priced.tier1;
                row.tier2 = priced.tier2;
                row.rate_used = priced.rate_used;
                row.reason = priced.reason;
            }
        }
        out.push(row);
    }
    Ok(out)
}

/// Which partner a commission goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommissionTier {
    /// The referring partner.
    Tier1,
    /// The referring partner's recruiter.
    Tier2,
}

/// One ledger entry to book after a re-run of the fold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommissionChange {
    /// The invoice.
    pub invoice_id: String,
    /// The invoice's business time (the hold of an `Earned` entry runs from it).
    pub paid_at: DateTime<Utc>,
    /// Whose commission.
    pub tier: CommissionTier,
    /// [`EntryKind::Earned`] (amount > 0) or [`EntryKind::Adjusted`] (signed, non-zero).
    pub kind: EntryKind,
    /// The amount to book.
    pub amount: Money,
}

/// The entries to book to go from the fold result `previous` (what is booked) to `current`.
///
/// Per invoice and tier, with `p` the previous and `c` the current amount (an invoice missing
/// from a list counts as 0):
/// * `p == c` → nothing;
/// * `p == 0`, `c > 0` → `Earned(c)` (a new commission; its hold runs from `paid_at`);
/// * otherwise → `Adjusted(c − p)` (e.g. a renewal that arrived before the first sale and was
///   booked as the first sale is corrected down). Book an adjustment in the bucket where that
///   invoice's commission sits (`pending` during the hold, `available` after release).
///
/// Changes come in `current`'s order (tier 1 before tier 2), then invoices only in `previous`.
/// Summing the entries of successive diffs per invoice always gives the latest fold result.
pub fn diff_booked(
    previous: &[InvoiceCommission],
    current: &[InvoiceCommission],
) -> Result<Vec<CommissionChange>, PlanError> {
    let prev: BTreeMap<&str, &InvoiceCommission> = previous
        .iter()
        .map(|c| (c.invoice_id.as_str(), c))
        .collect();
    let cur_ids: BTreeSet<&str> = current.iter().map(|c| c.invoice_id.as_str()).collect();
    let mut out = Vec::new();
    let mut push = |id: &str,
                    paid_at: DateTime<Utc>,
                    tier: CommissionTier,
                    p: Option<Money>,
                    c: Option<Money>|
     -> Result<(), PlanError> {
        let p = p.filter(|m| m.minor != 0);
        let c = c.filter(|m| m.minor != 0);
        let change = match (p, c) {
            (None, None) => None,
            (None, Some(c)) if c.minor > 0 => Some((EntryKind::Earned, c)),
            (None, Some(c)) => Some((EntryKind::Adjusted, c)),
            (Some(p), None) => Some((EntryKind::Adjusted, Money::zero(p.currency).checked_sub(p)?)),
            (Some(p), Some(c)) => {
                let d = c.checked_sub(p)?;
                (d.minor != 0).then_some((EntryKind::Adjusted, d))
            }
        };
        if let Some((kind, amount)) = change {
            out.push(CommissionChange {
                invoice_id: id.to_string(),
                paid_at,
                tier,
                kind,
                amount,
            });
        }
        Ok(())
    };
    for c in current {
        let p = prev.get(c.invoice_id.as_str());
        push(
            &c.invoice_id,
            c.paid_at,
            CommissionTier::Tier1,
            p.map(|p| p.tier1),
            Some(c.tier1),
        )?;
        push(
            &c.invoice_id,
            c.paid_at,
            CommissionTier::Tier2,
            p.map(|p| p.tier2),
            Some(c.tier2),
        )?;
    }
    for p in previous
        .iter()
        .filter(|p| !cur_ids.contains(p.invoice_id.as_str()))
    {
        push(
            &p.invoice_id,
            p.paid_at,
            CommissionTier::Tier1,
            Some(p.tier1),
            None,
        )?;
        push(
            &p.invoice_id,
            p.paid_at,
            CommissionTier::Tier2,
            Some(p.tier2),
            None,
        )?;
    }
    Ok(out)
}
