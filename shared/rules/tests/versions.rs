//! Program edits take effect from their business time, in worked cents: each invoice is priced
//! with the version in force at its paid time (products, rewards, overrides, tier 2, duration,
//! levels, rate lock), so booking the next invoice after an edit never re-prices earlier ones.

use chrono::{DateTime, TimeZone, Utc};
use rules::{
    diff_booked, evaluate_customer, evaluate_customer_versions, CommissionChange, CommissionPlan,
    CommissionReason, Currency, Duration, EntryKind, InvoiceCommission, InvoiceFacts, Level,
    LevelHistory, LevelThreshold, Money, Program, ProgramProduct, ProgramVersion, ProgramVersions,
    RateContext, Reward, SaleLine, Tiers,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

const SUB: &str = "prod_subscription";
const COURSE: &str = "prod_course";

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::USD)
}
/// The 15th of month `n` (1-based) counted from January 2025, 12:00 UTC.
fn month(n: u32) -> DateTime<Utc> {
    let m0 = n - 1;
    Utc.with_ymd_and_hms(2025 + (m0 / 12) as i32, m0 % 12 + 1, 15, 12, 0, 0)
        .unwrap()
}
/// The 1st of month `n`, 00:00 UTC: when the edits of these examples take effect.
fn start_of(n: u32) -> DateTime<Utc> {
    let m0 = n - 1;
    Utc.with_ymd_and_hms(2025 + (m0 / 12) as i32, m0 % 12 + 1, 1, 0, 0, 0)
        .unwrap()
}
fn pct(rate: Decimal) -> Reward {
    Reward::Percentage { rate }
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
fn products(ids: &[&str]) -> Vec<ProgramProduct> {
    ids.iter()
        .map(|p| ProgramProduct::new("prog", *p))
        .collect()
}
fn version(from: DateTime<Utc>, program: Program, products: Vec<ProgramProduct>) -> ProgramVersion {
    ProgramVersion {
        effective_from: from,
        program,
        products,
    }
}
/// A $99 subscription invoice in month `n`.
fn sub(n: u32) -> InvoiceFacts {
    InvoiceFacts {
        invoice_id: format!("in_{n:02}"),
        paid_at: month(n),
        lines: vec![SaleLine::new(SUB, usd(9900))],
        currency: Currency::USD,
        payment: None,
    }
}
/// A $99 subscription and a $200 course on one invoice in month `n`.
fn sub_and_course(n: u32) -> InvoiceFacts {
    let mut f = sub(n);
    f.lines.push(SaleLine::new(COURSE, usd(20000)));
    f
}
fn tier1s(rows: &[InvoiceCommission]) -> Vec<i64> {
    rows.iter().map(|r| r.tier1.minor).collect()
}
fn tier2s(rows: &[InvoiceCommission]) -> Vec<i64> {
    rows.iter().map(|r| r.tier2.minor).collect()
}
fn two_tier(tier2: Decimal) -> Program {
    let mut p = program(pct(dec!(0.25)), Duration::Lifetime);
    p.tiers = Tiers::Two;
    p.plan.tier2 = Some(pct(tier2));
    p.validate().unwrap();
    p
}
fn silver(rate: Decimal) -> Program {
    let mut p = program(pct(dec!(0.25)), Duration::Lifetime);
    p.levels = vec![Level {
        name: "Silver".into(),
        threshold: LevelThreshold::ActiveCustomers { count: 3 },
        rate,
    }];
    p.validate().unwrap();
    p
}

/// The base program of the table: 25 % lifetime on the subscription.
fn base() -> Program {
    program(pct(dec!(0.25)), Duration::Lifetime)
}

struct Case {
    name: &'static str,
    /// The versions: `first` from month 1, `edit` from the start of `edit_month`.
    first: (Program, Vec<ProgramProduct>),
    edit: (Program, Vec<ProgramProduct>),
    edit_month: u32,
    invoices: Vec<InvoiceFacts>,
    rate_context: RateContext,
    tier1: Vec<i64>,
    tier2: Vec<i64>,
}

/// A case over months 1..=4, edited at the start of month 3, base levels, no tier 2.
fn case(
    name: &'static str,
    first: (Program, Vec<ProgramProduct>),
    edit: (Program, Vec<ProgramProduct>),
    tier1: [i64; 4],
) -> Case {
    Case {
        name,
        first,
        edit,
        edit_month: 3,
        invoices: (1..=4).map(sub).collect(),
        rate_context: RateContext::new(),
        tier1: tier1.to_vec(),
        tier2: vec![0; 4],
    }
}

fn history_of(case: &Case) -> ProgramVersions {
    ProgramVersions::new(vec![
        version(start_of(1), case.first.0.clone(), case.first.1.clone()),
        version(
            start_of(case.edit_month),
            case.edit.0.clone(),
            case.edit.1.clone(),
        ),
    ])
    .unwrap()
}

/// Months 1..=4 of one customer, the program edited at the start of month 3 (or 4): every
/// invoice before the edit earns what it earned under the first version.
#[test]
fn each_invoice_is_priced_with_the_version_in_force_at_its_paid_time() {
    let mut promoted = LevelHistory::new();
    promoted.promote(1, month(1));
    let sub_only = || products(&[SUB]);
    let cases =
        vec![
        case(
            "rate raised 25 % → 30 %: $24.75, $24.75, then $29.70",
            (base(), sub_only()),
            (program(pct(dec!(0.30)), Duration::Lifetime), sub_only()),
            [2475, 2475, 2970, 2970],
        ),
        case(
            "rate lowered to 20 %: $19.80 from month 3",
            (base(), sub_only()),
            (program(pct(dec!(0.20)), Duration::Lifetime), sub_only()),
            [2475, 2475, 1980, 1980],
        ),
        Case {
            invoices: (1..=4).map(sub_and_course).collect(),
            ..case(
                "course removed: 25 % of $299 = $74.75, then 25 % of $99 only",
                (base(), products(&[SUB, COURSE])),
                (base(), sub_only()),
                [7475, 7475, 2475, 2475],
            )
        },
        case(
            "10 % override on the subscription from month 3: $9.90",
            (base(), sub_only()),
            (
                base(),
                vec![ProgramProduct {
                    reward_override: Some(pct(dec!(0.10))),
                    ..ProgramProduct::new("prog", SUB)
                }],
            ),
            [2475, 2475, 990, 990],
        ),
        case(
            "duration cut to the first 2 payments: the 3rd and 4th earn nothing",
            (base(), sub_only()),
            (
                program(pct(dec!(0.25)), Duration::Payments { count: 2 }),
                sub_only(),
            ),
            [2475, 2475, 0, 0],
        ),
        Case {
            edit_month: 4,
            ..case(
                "lifetime → 2 months from month 4: the window opened at the first sale has ended",
                (base(), sub_only()),
                (
                    program(pct(dec!(0.25)), Duration::Months { months: 2 }),
                    sub_only(),
                ),
                [2475, 2475, 2475, 0],
            )
        },
        case(
            "first-sale-only from month 3: later payments stop",
            (base(), sub_only()),
            (program(pct(dec!(0.25)), Duration::FirstSaleOnly), sub_only()),
            [2475, 2475, 0, 0],
        ),
        Case {
            tier2: vec![495, 495, 990, 990],
            ..case(
                "tier 2 raised 5 % → 10 %: the recruiter's $4.95 becomes $9.90",
                (two_tier(dec!(0.05)), sub_only()),
                (two_tier(dec!(0.10)), sub_only()),
                [2475; 4],
            )
        },
        Case {
            rate_context: RateContext::with_levels(promoted),
            ..case(
                "Silver re-priced 30 % → 35 %, for a partner promoted by month 1's sale (after it)",
                (silver(dec!(0.30)), sub_only()),
                (silver(dec!(0.35)), sub_only()),
                [2475, 2970, 3465, 3465],
            )
        },
    ];
    for case in &cases {
        let rows =
            evaluate_customer_versions(&history_of(case), &case.invoices, &case.rate_context)
                .unwrap();
        assert_eq!(tier1s(&rows), case.tier1, "{}", case.name);
        assert_eq!(tier2s(&rows), case.tier2, "{}", case.name);
    }
}

/// The fold's state carries across versions: the rate lock keeps the rate of the version in
/// force at the customer's first sale, and the first sale stays where it was.
#[test]
fn the_rate_lock_keeps_the_rate_of_the_first_sales_version() {
    let mut locked = base();
    locked.lock_rate_at_first_sale = true;
    let mut raised = program(pct(dec!(0.30)), Duration::Lifetime);
    raised.lock_rate_at_first_sale = true;
    let h = ProgramVersions::new(vec![
        version(start_of(1), locked, products(&[SUB])),
        version(start_of(3), raised, products(&[SUB])),
    ])
    .unwrap();
    // First sale in month 1 at 25 %: locked through the raise.
    let old = evaluate_customer_versions(
        &h,
        &(1..=4).map(sub).collect::<Vec<_>>(),
        &RateContext::new(),
    )
    .unwrap();
    assert_eq!(tier1s(&old), vec![2475; 4]);
    assert!(old[0].is_first_sale && !old[2].is_first_sale);
    // First sale in month 3 at 30 %.
    let new = evaluate_customer_versions(
        &h,
        &(3..=4).map(sub).collect::<Vec<_>>(),
        &RateContext::new(),
    )
    .unwrap();
    assert_eq!(tier1s(&new), vec![2970, 2970]);
}

/// What booking does after an edit: the fold of the booked invoices plus the new one, diffed
/// against what is booked. Only the new invoice gets an entry.
fn book(
    h: &ProgramVersions,
    booked: &[InvoiceFacts],
    new: InvoiceFacts,
) -> (Vec<InvoiceCommission>, Vec<CommissionChange>) {
    let ctx = RateContext::new();
    // What was booked before the edit, priced with the version of its time.
    let previous = evaluate_customer_versions(h, booked, &ctx).unwrap();
    let mut all = booked.to_vec();
    all.push(new);
    let current = evaluate_customer_versions(h, &all, &ctx).unwrap();
    let diff = diff_booked(&previous, &current).unwrap();
    (current, diff)
}

fn earned(invoice: &str, minor: i64) -> (String, EntryKind, i64) {
    (invoice.into(), EntryKind::Earned, minor)
}
fn entries(diff: &[CommissionChange]) -> Vec<(String, EntryKind, i64)> {
    diff.iter()
        .map(|c| (c.invoice_id.clone(), c.kind, c.amount.minor))
        .collect()
}

/// The three cases as bookings: raise the rate then book a renewal; remove a product;
/// a late-arriving old invoice. No `adjusted` entry anywhere.
#[test]
fn an_edit_never_books_adjustments_on_what_was_earned() {
    let raised = ProgramVersions::new(vec![
        version(start_of(1), base(), products(&[SUB])),
        version(
            start_of(3),
            program(pct(dec!(0.30)), Duration::Lifetime),
            products(&[SUB]),
        ),
    ])
    .unwrap();
    // Raise the rate, book a renewal: months 1 and 2 stay $24.75, the renewal earns $29.70.
    let (rows, diff) = book(&raised, &[sub(1), sub(2)], sub(3));
    assert_eq!(tier1s(&rows), vec![2475, 2475, 2970]);
    assert_eq!(entries(&diff), vec![earned("in_03", 2970)]);
    // The same history with the old fold (the program as it is now for every invoice) would
    // have booked +$4.95 on each earlier invoice:
    let now_only = evaluate_customer(
        &raised.latest().program,
        &raised.latest().products,
        &[sub(1), sub(2), sub(3)],
        &RateContext::new(),
    )
    .unwrap();
    assert_eq!(tier1s(&now_only), vec![2970, 2970, 2970]);

    // Remove the course: the month-1 $74.75 does not move; month 3 earns on the subscription.
    let removed = ProgramVersions::new(vec![
        version(start_of(1), base(), products(&[SUB, COURSE])),
        version(start_of(3), base(), products(&[SUB])),
    ])
    .unwrap();
    let (rows, diff) = book(&removed, &[sub_and_course(1)], sub_and_course(3));
    assert_eq!(tier1s(&rows), vec![7475, 2475]);
    assert_eq!(entries(&diff), vec![earned("in_03", 2475)]);
    // An invoice of the removed product alone, paid after the removal, earns nothing.
    let course_only = InvoiceFacts {
        invoice_id: "in_course".into(),
        paid_at: month(4),
        lines: vec![SaleLine::new(COURSE, usd(20000))],
        currency: Currency::USD,
        payment: None,
    };
    let (rows, diff) = book(&removed, &[sub_and_course(1)], course_only);
    assert_eq!(rows[1].reason, CommissionReason::NoEligibleLines);
    assert!(diff.is_empty(), "{diff:?}");

    // A late-arriving old invoice: months 3 and 4 (at 30 %) are booked, then month 2 arrives.
    // It is priced with its own version (25 %); the later ones keep their 30 %.
    let (rows, diff) = book(&raised, &[sub(3), sub(4)], sub(2));
    assert_eq!(tier1s(&rows), vec![2475, 2970, 2970]);
    assert!(rows[0].is_first_sale && !rows[1].is_first_sale);
    assert_eq!(entries(&diff), vec![earned("in_02", 2475)]);
}

/// One version in force at all times is the fold of a program that was never edited.
#[test]
fn a_single_version_is_the_unversioned_fold() {
    let mut p = two_tier(dec!(0.05));
    p.plan.duration = Duration::Payments { count: 3 };
    let invoices: Vec<InvoiceFacts> = (1..=5).map(sub_and_course).collect();
    let prods = products(&[SUB]);
    let one = ProgramVersions::single(p.clone(), prods.clone());
    assert_eq!(
        evaluate_customer_versions(&one, &invoices, &RateContext::new()).unwrap(),
        evaluate_customer(&p, &prods, &invoices, &RateContext::new()).unwrap()
    );
}
