//! Worked examples, in cents (and yen), from the seed sources: Ontraport's 25% recurring
//! commission, Rekomi's hybrid and CPS plans, Kartra's trials, holds and levels.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use proptest::prelude::*;
use rules::{
    available_at, commission_base, diff_booked, evaluate_customer, level_history_from_sales,
    program_product_ids, CommissionChange, CommissionPlan, CommissionReason, CommissionTier,
    Currency, Duration, EntryKind, InvoiceCommission, InvoiceFacts, Level, LevelHistory,
    LevelThreshold, Money, PartnerSale, PlanError, Program, ProgramError, ProgramProduct,
    RateContext, RetiredRate, Reward, SaleLine, Tiers,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const SUB: &str = "prod_subscription";
const OVERAGE: &str = "prod_contact_overage";
const SMS: &str = "prod_sms_credits";
const COURSE: &str = "prod_course";

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}
fn jpy(minor: i64) -> Money {
    Money::new(minor, Currency::JPY)
}
fn utc(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}
/// The 15th of month `n` (1-based) counted from January 2025, 12:00 UTC.
fn month(n: u32) -> DateTime<Utc> {
    let m0 = n - 1;
    utc(2025 + (m0 / 12) as i32, m0 % 12 + 1, 15, 12)
}

fn program(reward: Reward, duration: Duration) -> Program {
    let p = Program::new(
        "prog",
        "Partner program",
        CommissionPlan::new(reward, duration),
        "https://example.com/",
    );
    p.validate().unwrap();
    p
}
fn pct(rate: Decimal) -> Reward {
    Reward::Percentage { rate }
}
fn flat_usd(minor: i64) -> BTreeMap<Currency, i64> {
    BTreeMap::from([(Currency::USD, minor)])
}
fn products(ids: &[&str]) -> Vec<ProgramProduct> {
    ids.iter()
        .map(|p| ProgramProduct::new("prog", *p))
        .collect()
}
fn invoice(id: &str, paid_at: DateTime<Utc>, lines: Vec<SaleLine>) -> InvoiceFacts {
    let currency = lines.first().map_or(Currency::USD, |l| l.amount.currency);
    InvoiceFacts {
        invoice_id: id.into(),
        paid_at,
        lines,
        currency,
        payment: None,
    }
}
/// A $`minor` subscription invoice in month `n`.
fn sub_invoice(id: &str, n: u32, minor: i64) -> InvoiceFacts {
    invoice(id, month(n), vec![SaleLine::new(SUB, usd(minor))])
}
fn eval(p: &Program, prods: &[ProgramProduct], invs: &[InvoiceFacts]) -> Vec<InvoiceCommission> {
    evaluate_customer(p, prods, invs, &RateContext::new()).unwrap()
}
fn tier1s(rows: &[InvoiceCommission]) -> Vec<i64> {
    rows.iter().map(|r| r.tier1.minor).collect()
}

/// Ontraport: "We pay 25% of monthly recurring subscription fees", for as long as the client
/// pays: $99.00 → $24.75 every month.
#[test]
fn ontraport_25_percent_of_99_every_month() {
    let p = program(pct(dec!(0.25)), Duration::Lifetime);
    let invs: Vec<_> = (1..=24)
        .map(|n| sub_invoice(&format!("in_{n:02}"), n, 9900))
        .collect();
    let rows = eval(&p, &products(&[SUB]), &invs);
    assert_eq!(rows.len(), 24);
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.base, usd(9900));
        assert_eq!(r.tier1, usd(2475), "month {}", i + 1);
        assert_eq!(r.tier2, usd(0));
        assert_eq!(r.payment_number, i as u32 + 1);
        assert_eq!(r.is_first_sale, i == 0);
        assert_eq!(r.rate_used, Some(dec!(0.25)));
        assert_eq!(r.reason, CommissionReason::Percentage);
    }
}

/// "We do not provide commissions on email overages, contact overages, SMS or print credits":
/// only the $99 subscription line earns.
#[test]
fn overages_and_credits_do_not_earn() {
    let p = program(pct(dec!(0.25)), Duration::Lifetime);
    let prods = products(&[SUB, OVERAGE, SMS]);
    let lines = vec![
        SaleLine::new(SUB, usd(9900)),
        SaleLine {
            metered: true,
            ..SaleLine::new(OVERAGE, usd(2500))
        },
        SaleLine {
            excluded_by_metadata: true,
            ..SaleLine::new(SMS, usd(5000))
        },
        SaleLine::new("prod_not_on_program", usd(3000)),
        SaleLine {
            product_id: None,
            ..SaleLine::new("", usd(1000))
        },
    ];
    let ids = program_product_ids(&p, &prods);
    assert_eq!(
        commission_base(Currency::USD, &lines, &ids).unwrap(),
        usd(9900)
    );
    let rows = eval(&p, &prods, &[invoice("in_1", month(1), lines)]);
    assert_eq!(rows[0].base, usd(9900));
    assert_eq!(rows[0].tier1, usd(2475));

    // An invoice with nothing eligible is a payment but not a sale.
    let only_overage = vec![SaleLine {
        metered: true,
        ..SaleLine::new(OVERAGE, usd(2500))
    }];
    let rows = eval(
        &p,
        &prods,
        &[
            invoice("in_0", month(1), only_overage),
            sub_invoice("in_1", 2, 9900),
        ],
    );
    assert_eq!(rows[0].reason, CommissionReason::NoEligibleLines);
    assert_eq!((rows[0].payment_number, rows[0].is_first_sale), (1, false));
    assert_eq!((rows[1].payment_number, rows[1].is_first_sale), (2, true));
    assert_eq!(rows[1].tier1, usd(2475));

    // No products on the program: nothing earns.
    let rows = eval(&p, &[], &[sub_invoice("in_1", 1, 9900)]);
    assert_eq!(rows[0].reason, CommissionReason::NoEligibleLines);
    assert_eq!(rows[0].tier1, usd(0));
}

/// Two tiers: the recruiter earns 5% of the same $99 base, not 5% of the $24.75.
#[test]
fn two_tier_split_on_the_same_base() {
    let mut p = program(pct(dec!(0.25)), Duration::Lifetime);
    p.tiers = Tiers::Two;
    p.plan.tier2 = Some(pct(dec!(0.05)));
    p.validate().unwrap();
    let rows = eval(
        &p,
        &products(&[SUB]),
        &[sub_invoice("in_1", 1, 9900), sub_invoice("in_2", 2, 9900)],
    );
    for r in &rows {
        assert_eq!((r.tier1, r.tier2), (usd(2475), usd(495)));
    }

    // Tier 2 follows the plan's duration.
    p.plan.duration = Duration::FirstSaleOnly;
    let rows = eval(
        &p,
        &products(&[SUB]),
        &[sub_invoice("in_1", 1, 9900), sub_invoice("in_2", 2, 9900)],
    );
    assert_eq!((rows[0].tier1, rows[0].tier2), (usd(2475), usd(495)));
    assert_eq!((rows[1].tier1, rows[1].tier2), (usd(0), usd(0)));
}

/// Rekomi: "Hybrid: $250 flat per referred coaching-program sale + 5% RevShare on continuation".
/// First sale: only $250; renewals of $500: only 5% = $25.00.
#[test]
fn hybrid_flat_first_sale_then_percentage() {
    let p = program(
        Reward::Hybrid {
            first_sale_flat: flat_usd(25_000),
            rate: dec!(0.05),
        },
        Duration::Lifetime,
    );
    let invs: Vec<_> = (1..=4)
        .map(|n| sub_invoice(&format!("in_{n}"), n, 50_000))
        .collect();
    let rows = eval(&p, &products(&[SUB]), &invs);
    assert_eq!(tier1s(&rows), vec![25_000, 2500, 2500, 2500]);
    assert_eq!(rows[0].reason, CommissionReason::FirstSaleFlat);
    assert_eq!(rows[0].rate_used, None);
    assert_eq!(rows[1].reason, CommissionReason::Percentage);
    assert_eq!(rows[1].rate_used, Some(dec!(0.05)));
}

/// Rekomi: "Flat $20 CPS on first referred sale", nothing after.
#[test]
fn cps_flat_first_sale_only() {
    let p = program(
        Reward::Flat {
            amounts: flat_usd(2000),
        },
        Duration::FirstSaleOnly,
    );
    let rows = eval(
        &p,
        &products(&[SUB]),
        &[
            sub_invoice("in_1", 1, 4900),
            sub_invoice("in_2", 2, 4900),
            sub_invoice("in_3", 3, 100_000),
        ],
    );
    assert_eq!(tier1s(&rows), vec![2000, 0, 0]);
    assert_eq!(rows[0].reason, CommissionReason::FirstSaleFlat);
    assert_eq!(rows[1].reason, CommissionReason::FirstSaleOnlyAlreadyPaid);
    assert_eq!(rows[2].base, usd(100_000), "the base is still reported");

    // Flat on every payment with a lifetime plan.
    let p = program(
        Reward::Flat {
            amounts: flat_usd(2000),
        },
        Duration::Lifetime,
    );
    let rows = eval(
        &p,
        &products(&[SUB]),
        &[sub_invoice("in_1", 1, 4900), sub_invoice("in_2", 2, 4900)],
    );
    assert_eq!(tier1s(&rows), vec![2000, 2000]);
    assert_eq!(rows[1].reason, CommissionReason::Flat);
}

/// Kartra: "if a customer purchases a 30-day trial, this will only be classed as a sale in
/// your account when that 30-day trial rebills for the full price"; Dub skips invoices of $0
/// or less.
#[test]
fn zero_trial_then_full_price_rebill_is_the_first_sale() {
    let p = program(
        Reward::Flat {
            amounts: flat_usd(2000),
        },
        Duration::FirstSaleOnly,
    );
    let credit = invoice("in_credit", month(3), vec![SaleLine::new(SUB, usd(-1000))]);
    let rows = eval(
        &p,
        &products(&[SUB]),
        &[
            sub_invoice("in_trial", 1, 0),
            sub_invoice("in_rebill", 2, 9900),
            credit,
        ],
    );
    assert_eq!(rows[0].reason, CommissionReason::ZeroInvoice);
    assert_eq!((rows[0].payment_number, rows[0].is_first_sale), (0, false));
    assert_eq!(rows[0].tier1, usd(0));
    assert_eq!((rows[1].payment_number, rows[1].is_first_sale), (1, true));
    assert_eq!(rows[1].tier1, usd(2000));
    assert_eq!(rows[2].reason, CommissionReason::ZeroInvoice);
    assert_eq!(rows[2].payment_number, 0);
}

/// Ontraport's 90-day refund period and Kartra's 45-day hold, from the sale's business time.
#[test]
fn holds_give_exact_availability() {
    let mut p = program(pct(dec!(0.25)), Duration::Lifetime);
    let sale = utc(2025, 1, 15, 9) + chrono::TimeDelta::seconds(37);
    assert_eq!(p.hold_days, 90);
    assert_eq!(
        available_at(sale, p.hold_days),
        utc(2025, 4, 15, 9) + chrono::TimeDelta::seconds(37)
    );
    p.hold_days = 45;
    assert_eq!(
        available_at(sale, p.hold_days),
        utc(2025, 3, 1, 9) + chrono::TimeDelta::seconds(37)
    );
}

/// A 12-month cap: months 1..=12 earn, month 13 (same local time as the first sale, the
/// window being half-open) earns nothing.
#[test]
fn twelve_month_cap() {
    let p = program(pct(dec!(0.25)), Duration::Months { months: 12 });
    let invs: Vec<_> = (1..=14)
        .map(|n| sub_invoice(&format!("in_{n:02}"), n, 9900))
        .collect();
    let rows = eval(&p, &products(&[SUB]), &invs);
    let mut want = vec![2475; 12];
    want.extend([0, 0]);
    assert_eq!(tier1s(&rows), want);
    assert_eq!(
        rows[12].reason,
        CommissionReason::OutsideCapWindow {
            window_end: month(13)
        }
    );
    // One second before the window end still earns.
    let just_in = invoice(
        "in_13",
        month(13) - chrono::TimeDelta::seconds(1),
        vec![SaleLine::new(SUB, usd(9900))],
    );
    let rows = eval(
        &p,
        &products(&[SUB]),
        &[sub_invoice("in_01", 1, 9900), just_in],
    );
    assert_eq!(tier1s(&rows), vec![2475, 2475]);
}

/// Jan 31 + 1 month = Feb 28 (chrono's `checked_add_months` clamps to the month's end), in the
/// program's time zone.
#[test]
fn month_window_from_january_31() {
    let mut p = program(pct(dec!(0.25)), Duration::Months { months: 1 });
    let first = invoice(
        "in_1",
        utc(2025, 1, 31, 10),
        vec![SaleLine::new(SUB, usd(9900))],
    );
    let at = |id: &str, t| invoice(id, t, vec![SaleLine::new(SUB, usd(9900))]);
    let rows = eval(
        &p,
        &products(&[SUB]),
        &[
            first.clone(),
            at("in_2", utc(2025, 2, 28, 9)),
            at("in_3", utc(2025, 2, 28, 10)),
        ],
    );
    assert_eq!(tier1s(&rows), vec![2475, 2475, 0]);
    assert_eq!(
        rows[2].reason,
        CommissionReason::OutsideCapWindow {
            window_end: utc(2025, 2, 28, 10)
        }
    );

    // In New York the first sale (Jan 31 03:00 UTC) is Jan 30 22:00 local; + 1 month is
    // Feb 28 22:00 EST = Mar 1 03:00 UTC, so a Feb 28 noon UTC renewal is inside.
    p.time_zone = "America/New_York".parse().unwrap();
    let rows = eval(
        &p,
        &products(&[SUB]),
        &[
            at("in_1", utc(2025, 1, 31, 3)),
            at("in_2", utc(2025, 2, 28, 12)),
            at("in_3", utc(2025, 3, 1, 3)),
        ],
    );
    assert_eq!(tier1s(&rows), vec![2475, 2475, 0]);
    assert_eq!(
        rows[2].reason,
        CommissionReason::OutsideCapWindow {
            window_end: utc(2025, 3, 1, 3)
        }
    );
}

/// A payments cap counts payments with a positive base from the first sale; $0 invoices and
/// invoices with nothing eligible do not use up the cap.
#[test]
fn payments_cap() {
    let p = program(pct(dec!(0.25)), Duration::Payments { count: 3 });
    let overage_only = invoice(
        "in_3",
        month(3),
        vec![SaleLine {
            metered: true,
            ..SaleLine::new(SUB, usd(700))
        }],
    );
    let rows = eval(
        &p,
        &products(&[SUB]),
        &[
            sub_invoice("in_1", 1, 9900),
            sub_invoice("in_2", 2, 0),
            overage_only,
            sub_invoice("in_4", 4, 9900),
            sub_invoice("in_5", 5, 9900),
            sub_invoice("in_6", 6, 9900),
        ],
    );
    assert_eq!(tier1s(&rows), vec![2475, 0, 0, 2475, 2475, 0]);
    assert_eq!(
        rows.iter().map(|r| r.payment_number).collect::<Vec<_>>(),
        vec![1, 0, 2, 3, 4, 5]
    );
    assert_eq!(
        rows[5].reason,
        CommissionReason::PaymentCapReached { cap: 3 }
    );
}

fn leveled_program() -> Program {
    let mut p = program(pct(dec!(0.25)), Duration::Lifetime);
    p.levels = vec![Level {
        name: "Silver".into(),
        threshold: LevelThreshold::ActiveCustomers { count: 3 },
        rate: dec!(0.30),
    }];
    p.validate().unwrap();
    p
}

/// Kartra: "Grow within our program by leveling up to the next affiliate tier", "up to 40%".
/// The sale that brings the third customer crosses the threshold and still earns 25%; every
/// sale after it earns 30%.
#[test]
fn level_promotion_applies_after_the_crossing_sale() {
    let p = leveled_program();
    let prods = products(&[SUB]);
    // Customers A, B, C start in months 1, 2, 3; everyone renews monthly.
    let customer = |c: &str, from: u32| -> Vec<InvoiceFacts> {
        (from..=5)
            .map(|n| sub_invoice(&format!("in_{c}_{n}"), n, 9900))
            .collect()
    };
    let all = [
        ("A", customer("A", 1)),
        ("B", customer("B", 2)),
        ("C", customer("C", 3)),
    ];
    // Level history from every sale of the partner (first pass at base rates).
    let mut sales = Vec::new();
    for (c, invs) in &all {
        for r in eval(&p, &prods, invs) {
            sales.push(PartnerSale::from_commission(*c, &r));
        }
    }
    let history = level_history_from_sales(&p, LevelHistory::new(), &sales).unwrap();
    assert_eq!(history.level_at(month(3)), 0);
    assert_eq!(
        history.level_at(month(3) + chrono::TimeDelta::seconds(1)),
        1
    );
    let ctx = RateContext::with_levels(history);
    let a = evaluate_customer(&p, &prods, &all[0].1, &ctx).unwrap();
    let c = evaluate_customer(&p, &prods, &all[2].1, &ctx).unwrap();
    // A: months 1..3 at 25% (month 3 is paid at the same instant as C's crossing sale: not
    // after it), months 4, 5 at 30% ($29.70).
    assert_eq!(tier1s(&a), vec![2475, 2475, 2475, 2970, 2970]);
    // C: sale N (the crossing one) at the old rate, sale N+1 at the new one.
    assert_eq!(tier1s(&c), vec![2475, 2970, 2970]);
    assert_eq!(c[0].rate_used, Some(dec!(0.25)));
    assert_eq!(c[1].rate_used, Some(dec!(0.30)));

    // A level above 40% is rejected.
    let mut q = leveled_program();
    q.levels[0].rate = dec!(0.45);
    assert!(matches!(
        q.validate(),
        Err(ProgramError::RateOutOfRange { .. })
    ));
    // A history naming a level the program lacks is an error, not a guess.
    let bad = RateContext::with_levels(LevelHistory::starting_at(2));
    assert!(matches!(
        evaluate_customer(&p, &prods, &all[0].1, &bad),
        Err(PlanError::UnknownLevel { level: 2, .. })
    ));
}

/// Rate lock: a customer keeps the rate in force at their first sale, through promotions and
/// through the operator changing the plan's rate.
#[test]
fn rate_lock_at_first_sale() {
    let mut p = leveled_program();
    let prods = products(&[SUB]);
    // Promoted to Silver after month 2.
    let mut h = LevelHistory::new();
    h.promote(1, month(2));
    let ctx = RateContext::with_levels(h);
    let old = (1..=4)
        .map(|n| sub_invoice(&format!("in_old_{n}"), n, 9900))
        .collect::<Vec<_>>();
    let new = (3..=4)
        .map(|n| sub_invoice(&format!("in_new_{n}"), n, 9900))
        .collect::<Vec<_>>();
    // Without the lock the old customer moves to 30% with the partner.
    assert_eq!(
        tier1s(&evaluate_customer(&p, &prods, &old, &ctx).unwrap()),
        vec![2475, 2475, 2970, 2970]
    );
    p.lock_rate_at_first_sale = true;
    let rows = evaluate_customer(&p, &prods, &old, &ctx).unwrap();
    assert_eq!(tier1s(&rows), vec![2475; 4]);
    assert!(rows.iter().all(|r| r.rate_used == Some(dec!(0.25))));
    // A customer whose first sale comes after the promotion locks 30%.
    assert_eq!(
        tier1s(&evaluate_customer(&p, &prods, &new, &ctx).unwrap()),
        vec![2970, 2970]
    );

    // The operator lowers the plan from 25% to 20% at the start of month 3.
    let mut q = program(pct(dec!(0.20)), Duration::Lifetime);
    let ctx = RateContext {
        retired_base_rates: vec![RetiredRate {
            rate: dec!(0.25),
            until: utc(2025, 3, 1, 0),
        }],
        ..RateContext::new()
    };
    assert_eq!(
        tier1s(&evaluate_customer(&q, &prods, &old, &ctx).unwrap()),
        vec![2475, 2475, 1980, 1980]
    );
    q.lock_rate_at_first_sale = true;
    assert_eq!(
        tier1s(&evaluate_customer(&q, &prods, &old, &ctx).unwrap()),
        vec![2475; 4]
    );
    assert_eq!(
        tier1s(&evaluate_customer(&q, &prods, &new, &ctx).unwrap()),
        vec![1980, 1980]
    );
}

/// Yen have no minor unit: amounts are whole yen and rounding is to the yen.
#[test]
fn jpy_amounts() {
    let p = program(pct(dec!(0.25)), Duration::Lifetime);
    let inv = |id: &str, n, yen| invoice(id, month(n), vec![SaleLine::new(SUB, jpy(yen))]);
    let rows = eval(
        &p,
        &products(&[SUB]),
        &[inv("in_1", 1, 9800), inv("in_2", 2, 1234)],
    );
    assert_eq!(rows[0].tier1, jpy(2450));
    assert_eq!(rows[1].tier1, jpy(309), "308.5 rounds half away from zero");

    let mut amounts = flat_usd(2000);
    let p = program(
        Reward::Flat {
            amounts: amounts.clone(),
        },
        Duration::FirstSaleOnly,
    );
    let rows = eval(&p, &products(&[SUB]), &[inv("in_1", 1, 9800)]);
    assert_eq!(rows[0].tier1, jpy(0));
    assert_eq!(
        rows[0].reason,
        CommissionReason::NoFlatAmountForCurrency {
            currency: Currency::JPY
        }
    );
    assert!(rows[0].is_first_sale, "still the first sale");
    amounts.insert(Currency::JPY, 3000);
    let p = program(Reward::Flat { amounts }, Duration::FirstSaleOnly);
    let rows = eval(&p, &products(&[SUB]), &[inv("in_1", 1, 9800)]);
    assert_eq!(rows[0].tier1, jpy(3000));

    // Lines in another currency than their invoice are refused.
    let mut mixed = inv("in_x", 1, 9800);
    mixed.lines.push(SaleLine::new(SUB, usd(100)));
    assert!(matches!(
        evaluate_customer(&p, &products(&[SUB]), &[mixed], &RateContext::new()),
        Err(PlanError::LineCurrency { .. })
    ));
}

/// Per-product overrides form their own reward group; the invoice's commission is the exact
/// sum of the groups, rounded once.
#[test]
fn product_overrides_round_once() {
    let p = program(pct(dec!(0.25)), Duration::Lifetime);
    let mut prods = products(&[SUB]);
    prods.push(ProgramProduct {
        program_id: "prog".into(),
        product_id: COURSE.into(),
        reward_override: Some(pct(dec!(0.25))),
    });
    // 1999 × 25% = 499.75 and 1998 × 25% = 499.5: rounded separately 500 + 500 = 1000, rounded
    // once 999.25 → 999.
    let rows = eval(
        &p,
        &prods,
        &[invoice(
            "in_1",
            month(1),
            vec![
                SaleLine::new(SUB, usd(1999)),
                SaleLine::new(COURSE, usd(1998)),
            ],
        )],
    );
    assert_eq!(rows[0].tier1, usd(999));

    prods[1].reward_override = Some(Reward::Flat {
        amounts: flat_usd(10_000),
    });
    let rows = eval(
        &p,
        &prods,
        &[invoice(
            "in_1",
            month(1),
            vec![
                SaleLine::new(SUB, usd(9900)),
                SaleLine::new(COURSE, usd(50_000)),
            ],
        )],
    );
    assert_eq!(rows[0].base, usd(59_900));
    assert_eq!(rows[0].tier1, usd(2475 + 10_000));
    assert_eq!(rows[0].reason, CommissionReason::Mixed);
    assert_eq!(rows[0].rate_used, Some(dec!(0.25)));
}

/// Stripe does not order events: any order of the same invoices gives the same result.
#[test]
fn shuffled_input_gives_identical_output() {
    let mut p = program(
        Reward::Hybrid {
            first_sale_flat: flat_usd(25_000),
            rate: dec!(0.05),
        },
        Duration::Months { months: 3 },
    );
    p.tiers = Tiers::Two;
    p.plan.tier2 = Some(pct(dec!(0.02)));
    let mut invs = vec![
        sub_invoice("in_trial", 1, 0),
        sub_invoice("in_b", 2, 50_000),
        sub_invoice("in_a", 2, 50_000), // same instant: ordered by id
        sub_invoice("in_c", 3, 50_000),
        sub_invoice("in_d", 5, 50_000),
        sub_invoice("in_e", 6, 50_000),
    ];
    let want = eval(&p, &products(&[SUB]), &invs);
    assert_eq!(
        want.iter()
            .map(|r| r.invoice_id.as_str())
            .collect::<Vec<_>>(),
        vec!["in_trial", "in_a", "in_b", "in_c", "in_d", "in_e"]
    );
    assert_eq!(tier1s(&want), vec![0, 25_000, 2500, 2500, 0, 0]);
    for k in 0..invs.len() {
        invs.rotate_left(1);
        if k % 2 == 0 {
            invs.reverse();
        }
        assert_eq!(eval(&p, &products(&[SUB]), &invs), want);
    }
    let mut dup = invs.clone();
    dup.push(invs[0].clone());
    assert!(matches!(
        evaluate_customer(&p, &products(&[SUB]), &dup, &RateContext::new()),
        Err(PlanError::DuplicateInvoice(_))
    ));
}

/// Feeds invoices one at a time in `arrival` order, folding the set so far and booking the
/// diff each time; returns every batch of changes.
fn arrive(
    p: &Program,
    prods: &[ProgramProduct],
    arrival: &[InvoiceFacts],
) -> Vec<Vec<CommissionChange>> {
    let mut seen = Vec::new();
    let mut booked: Vec<InvoiceCommission> = Vec::new();
    let mut batches = Vec::new();
    for inv in arrival {
        seen.push(inv.clone());
        let now = eval(p, prods, &seen);
        batches.push(diff_booked(&booked, &now).unwrap());
        booked = now;
    }
    batches
}

fn ch(id: &str, kind: EntryKind, minor: i64) -> (String, CommissionTier, EntryKind, i64) {
    (id.to_string(), CommissionTier::Tier1, kind, minor)
}
fn flat(batch: &[CommissionChange]) -> Vec<(String, CommissionTier, EntryKind, i64)> {
    batch
        .iter()
        .map(|c| (c.invoice_id.clone(), c.tier, c.kind, c.amount.minor))
        .collect()
}

/// A renewal webhook that arrives before the first sale's: the renewal is booked as the first
/// sale, then corrected by `adjusted` entries when the real first sale shows up.
#[test]
fn renewal_before_first_sale_hybrid() {
    let p = program(
        Reward::Hybrid {
            first_sale_flat: flat_usd(25_000),
            rate: dec!(0.05),
        },
        Duration::Lifetime,
    );
    let b = arrive(
        &p,
        &products(&[SUB]),
        &[
            sub_invoice("in_2", 2, 50_000),
            sub_invoice("in_1", 1, 50_000),
        ],
    );
    assert_eq!(flat(&b[0]), vec![ch("in_2", EntryKind::Earned, 25_000)]);
    assert_eq!(
        flat(&b[1]),
        vec![
            ch("in_1", EntryKind::Earned, 25_000),
            ch("in_2", EntryKind::Adjusted, -22_500)
        ]
    );
    assert_eq!(b[1][1].paid_at, month(2));
}

#[test]
fn renewal_before_first_sale_cps() {
    let p = program(
        Reward::Flat {
            amounts: flat_usd(2000),
        },
        Duration::FirstSaleOnly,
    );
    let b = arrive(
        &p,
        &products(&[SUB]),
        &[
            sub_invoice("in_2", 2, 4900),
            sub_invoice("in_3", 3, 4900),
            sub_invoice("in_1", 1, 4900),
        ],
    );
    assert_eq!(flat(&b[0]), vec![ch("in_2", EntryKind::Earned, 2000)]);
    assert!(b[1].is_empty());
    assert_eq!(
        flat(&b[2]),
        vec![
            ch("in_1", EntryKind::Earned, 2000),
            ch("in_2", EntryKind::Adjusted, -2000)
        ]
    );
}

#[test]
fn renewal_before_first_sale_capped() {
    // 12-month cap: months 2..=13 arrive first (month 2 taken for the first sale, so all 12
    // earn), then month 1: month 13 falls out of the window.
    let p = program(pct(dec!(0.25)), Duration::Months { months: 12 });
    let mut arrival: Vec<_> = (2..=13)
        .map(|n| sub_invoice(&format!("in_{n:02}"), n, 9900))
        .collect();
    arrival.push(sub_invoice("in_01", 1, 9900));
    let b = arrive(&p, &products(&[SUB]), &arrival);
    for batch in &b[..12] {
        assert_eq!(batch.len(), 1);
        assert_eq!(
            (batch[0].kind, batch[0].amount),
            (EntryKind::Earned, usd(2475))
        );
    }
    assert_eq!(
        flat(&b[12]),
        vec![
            ch("in_01", EntryKind::Earned, 2475),
            ch("in_13", EntryKind::Adjusted, -2475)
        ]
    );

    // Payments cap of 2 with a two-tier plan: both tiers are corrected.
    let mut p = program(pct(dec!(0.25)), Duration::Payments { count: 2 });
    p.tiers = Tiers::Two;
    p.plan.tier2 = Some(pct(dec!(0.05)));
    let b = arrive(
        &p,
        &products(&[SUB]),
        &[
            sub_invoice("in_2", 2, 9900),
            sub_invoice("in_3", 3, 9900),
            sub_invoice("in_1", 1, 9900),
        ],
    );
    assert_eq!(b[1].len(), 2);
    let t2 = |id: &str, kind, m| (id.to_string(), CommissionTier::Tier2, kind, m);
    assert_eq!(
        flat(&b[2]),
        vec![
            ch("in_1", EntryKind::Earned, 2475),
            t2("in_1", EntryKind::Earned, 495),
            ch("in_3", EntryKind::Adjusted, -2475),
            t2("in_3", EntryKind::Adjusted, -495),
        ]
    );
}

/// A booked invoice that disappears from the set is reversed with an adjustment; an unchanged
/// re-run books nothing.
#[test]
fn diff_of_removed_and_unchanged() {
    let p = program(pct(dec!(0.25)), Duration::Lifetime);
    let a = eval(
        &p,
        &products(&[SUB]),
        &[sub_invoice("in_1", 1, 9900), sub_invoice("in_2", 2, 9900)],
    );
    assert!(diff_booked(&a, &a).unwrap().is_empty());
    let b = eval(&p, &products(&[SUB]), &[sub_invoice("in_1", 1, 9900)]);
    assert_eq!(
        flat(&diff_booked(&a, &b).unwrap()),
        vec![ch("in_2", EntryKind::Adjusted, -2475)]
    );
}

fn arb_invoices() -> impl Strategy<Value = Vec<InvoiceFacts>> {
    let line = (
        prop_oneof![
            Just(Some(SUB)),
            Just(Some(COURSE)),
            Just(Some("other")),
            Just(None)
        ],
        -2000i64..60_000,
        any::<bool>(),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(pid, amount, metered, excluded)| SaleLine {
            product_id: pid.map(str::to_string),
            amount: usd(amount),
            metered: metered && amount % 3 == 0,
            excluded_by_metadata: excluded,
        });
    prop::collection::vec((0u32..40, prop::collection::vec(line, 0..4)), 0..12).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (day, lines))| InvoiceFacts {
                invoice_id: format!("in_{i:02}"),
                // Several invoices may share an instant (ties are ordered by id).
                paid_at: utc(2025, 1, 1, 0) + chrono::TimeDelta::days(i64::from(day) * 15),
                lines,
                currency: Currency::USD,
                payment: None,
            })
            .collect()
    })
}

fn arb_program() -> impl Strategy<Value = (Program, Vec<ProgramProduct>)> {
    let reward = prop_oneof![
        (0u32..=100).prop_map(|r| pct(Decimal::new(i64::from(r), 2))),
        (0i64..30_000).prop_map(|m| Reward::Flat {
            amounts: flat_usd(m)
        }),
        (0i64..30_000, 0u32..=100).prop_map(|(m, r)| Reward::Hybrid {
            first_sale_flat: flat_usd(m),
            rate: Decimal::new(i64::from(r), 3),
        }),
    ];
    let duration = prop_oneof![
        Just(Duration::Lifetime),
        Just(Duration::FirstSaleOnly),
        (1u32..14).prop_map(|months| Duration::Months { months }),
        (1u32..6).prop_map(|count| Duration::Payments { count }),
    ];
    (reward, duration, any::<bool>(), any::<bool>()).prop_map(|(reward, duration, two, ov)| {
        let mut p = program(reward, duration);
        if two {
            p.tiers = Tiers::Two;
            p.plan.tier2 = Some(pct(dec!(0.05)));
        }
        let mut prods = products(&[SUB, COURSE]);
        if ov {
            prods[1].reward_override = Some(pct(dec!(0.333)));
        }
        (p, prods)
    })
}

proptest! {
    /// The fold is a function of the set: any permutation gives the same output.
    #[test]
    fn fold_ignores_input_order(
        (p, prods) in arb_program(),
        (invs, shuffled) in arb_invoices().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
    ) {
        let a = eval(&p, &prods, &invs);
        let b = eval(&p, &prods, &shuffled);
        prop_assert_eq!(&a, &b);
        // Invariants of the output.
        let firsts = a.iter().filter(|r| r.is_first_sale).count();
        prop_assert!(firsts <= 1);
        for r in &a {
            prop_assert!(r.tier1.minor >= 0 && r.tier2.minor >= 0);
            prop_assert!(r.base.minor >= 0);
            if r.payment_number == 0 {
                prop_assert_eq!(r.tier1.minor, 0);
                prop_assert!(!r.is_first_sale);
            }
        }
        let mut numbers: Vec<u32> = a.iter().map(|r| r.payment_number).filter(|n| *n > 0).collect();
        let expected: Vec<u32> = (1..=numbers.len() as u32).collect();
        numbers.sort();
        prop_assert_eq!(numbers, expected);
    }

    /// Booking the diff after every arrival, in any arrival order, always sums per invoice and
    /// tier to the fold of the full set; earned entries are positive, adjustments non-zero.
    #[test]
    fn diffs_converge_to_the_final_fold(
        (p, prods) in arb_program(),
        arrival in arb_invoices().prop_shuffle(),
    ) {
        let mut ledger: BTreeMap<(String, CommissionTier), i64> = BTreeMap::new();
        for batch in arrive(&p, &prods, &arrival) {
            for c in batch {
                match c.kind {
                    EntryKind::Earned => prop_assert!(c.amount.minor > 0),
                    EntryKind::Adjusted => prop_assert!(c.amount.minor != 0),
                    other => prop_assert!(false, "unexpected kind {:?}", other),
                }
                let e = ledger.entry((c.invoice_id.clone(), c.tier)).or_insert(0);
                if c.kind == EntryKind::Earned {
                    prop_assert_eq!(*e, 0, "earned only once, on nothing booked");
                }
                *e += c.amount.minor;
            }
        }
        for r in eval(&p, &prods, &arrival) {
            let t1 = ledger.get(&(r.invoice_id.clone(), CommissionTier::Tier1)).copied().unwrap_or(0);
            let t2 = ledger.get(&(r.invoice_id.clone(), CommissionTier::Tier2)).copied().unwrap_or(0);
            prop_assert_eq!((t1, t2), (r.tier1.minor, r.tier2.minor), "{}", r.invoice_id);
        }
    }
}

/// The month helper itself (guards the fixtures above).
#[test]
fn fixture_months() {
    assert_eq!((month(1).year(), month(1).month()), (2025, 1));
    assert_eq!((month(13).year(), month(13).month()), (2026, 1));
}

/// An invoice paid partly from the customer's credit balance earns on the money received:
/// base, tier 1 and tier 2 scaled by `amount_paid ÷ total`, each rounded once.
#[test]
fn an_invoice_paid_partly_from_credit_earns_on_amount_paid_over_total() {
    let mut p = program(pct(dec!(0.25)), Duration::Lifetime);
    p.tiers = Tiers::Two;
    p.plan.tier2 = Some(pct(dec!(0.05)));
    // (amount_paid, total, base, tier 1, tier 2)
    let cases = [
        (9900, 9900, 9900, 2475, 495),
        (4950, 9900, 4950, 1238, 248), // 1237.5 → 1238, 247.5 → 248
        (3300, 9900, 3300, 825, 165),  // a third
        (0, 9900, 0, 0, 0),            // all from credit: nothing received, nothing earned
        (9900, 0, 9900, 2475, 495),    // no total known: paid in full
    ];
    for (paid, total, base, t1, t2) in cases {
        let mut inv = sub_invoice("in_01", 1, 9900);
        inv.payment = Some(rules::plan::InvoicePayment {
            charge_key: Some("ch_1".into()),
            payment_intent: None,
            amount_paid: paid,
            total,
        });
        let rows = eval(&p, &products(&[SUB]), &[inv]);
        assert_eq!(
            (rows[0].base, rows[0].tier1, rows[0].tier2),
            (usd(base), usd(t1), usd(t2)),
            "{paid} of {total}"
        );
    }
}
