//! Levels in business time, in worked cents: a promotion takes effect after the paid time of the
//! sale that crossed the threshold, whatever order the invoices arrive in, and a late invoice
//! that moves a crossing re-prices the sales it affects, across customers.
//!
//! `arrive` models what the engine does per delivered invoice (fold the customer with the
//! stored history, derive the history again from every level sale, re-fold the customer, book
//! the difference, then re-price the other customers with sales after the first difference of
//! the two histories) so that every delivery order can be checked exhaustively.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use rules::{
    diff_booked, evaluate_customer, first_difference, level_history_from_sales, CommissionPlan,
    Currency, Duration, InvoiceCommission, InvoiceFacts, Level, LevelHistory, LevelThreshold,
    Money, PartnerSale, Program, ProgramProduct, RateContext, Reward, SaleLine,
};
use rust_decimal_macros::dec;

const SUB: &str = "prod_subscription";

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, d, 12, 0, 0).unwrap()
}

/// 25 %, and 40 % from two active customers on.
fn program(lock_rate_at_first_sale: bool) -> Program {
    let mut p = Program::new(
        "prog",
        "Partner program",
        CommissionPlan::new(Reward::Percentage { rate: dec!(0.25) }, Duration::Lifetime),
        "https://example.com/",
    );
    p.levels = vec![Level {
        name: "Partner+".into(),
        threshold: LevelThreshold::ActiveCustomers { count: 2 },
        rate: dec!(0.40),
    }];
    p.lock_rate_at_first_sale = lock_rate_at_first_sale;
    p.validate().unwrap();
    p
}

fn products() -> Vec<ProgramProduct> {
    vec![ProgramProduct::new("prog", SUB)]
}

/// A $99.00 invoice of the subscription.
fn inv(id: &str, d: u32) -> InvoiceFacts {
    InvoiceFacts {
        invoice_id: id.into(),
        paid_at: day(d),
        lines: vec![SaleLine::new(SUB, Money::new(9_900, Currency::USD))],
        currency: Currency::USD,
        payment: None,
    }
}

type Arrival = (&'static str, InvoiceFacts);

/// What the partner's books hold: per customer, the invoices and their booked fold; the level
/// sales; the stored history; and the ledger (sum of entries per invoice).
#[derive(Default)]
struct Books {
    invoices: BTreeMap<&'static str, Vec<InvoiceFacts>>,
    booked: BTreeMap<&'static str, Vec<InvoiceCommission>>,
    level_sales: Vec<PartnerSale>,
    history: LevelHistory,
    ledger: BTreeMap<String, i64>,
}

impl Books {
    fn rebook(&mut self, p: &Program, customer: &'static str) {
        let ctx = RateContext::with_levels(self.history.clone());
        let invoices = self.invoices.get(customer).cloned().unwrap_or_default();
        let current = evaluate_customer(p, &products(), &invoices, &ctx).unwrap();
        let previous = self.booked.get(customer).cloned().unwrap_or_default();
        for ch in diff_booked(&previous, &current).unwrap() {
            *self.ledger.entry(ch.invoice_id.clone()).or_default() += ch.amount.minor;
        }
        self.booked.insert(customer, current);
    }

    /// One delivered invoice, as the engine books it.
    fn arrive(&mut self, p: &Program, (customer, facts): &Arrival) {
        self.invoices
            .entry(customer)
            .or_default()
            .push(facts.clone());
        let ctx = RateContext::with_levels(self.history.clone());
        let folded = evaluate_customer(p, &products(), &self.invoices[customer], &ctx).unwrap();
        let new = folded
            .iter()
            .find(|c| c.invoice_id == facts.invoice_id)
            .unwrap();
        if let Some(sale) = rules::sale::level_sale_of(true, customer, new) {
            self.level_sales.push(sale);
        }
        let old = self.history.clone();
        self.history = level_history_from_sales(p, LevelHistory::new(), &self.level_sales).unwrap();
        self.rebook(p, customer);
        if let Some(from) = first_difference(&old, &self.history) {
            // The customers named by the level sales paid from the first difference on.
            let named: BTreeSet<&str> = self
                .level_sales
                .iter()
                .filter(|s| s.paid_at >= from)
                .map(|s| s.customer_id.as_str())
                .collect();
            let affected: Vec<&'static str> = self
                .invoices
                .keys()
                .copied()
                .filter(|c| c != customer && named.contains(c))
                .collect();
            for c in affected {
                self.rebook(p, c);
            }
        }
    }
}

/// The ledger after delivering `arrivals` in this order.
fn ledger(p: &Program, arrivals: &[Arrival]) -> BTreeMap<String, i64> {
    let mut books = Books::default();
    for a in arrivals {
        books.arrive(p, a);
    }
    books.ledger.retain(|_, v| *v != 0);
    books.ledger
}

fn cents(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    if items.len() <= 1 {
        return vec![items.to_vec()];
    }
    let mut out = vec![];
    for i in 0..items.len() {
        let mut rest = items.to_vec();
        let first = rest.remove(i);
        for mut tail in permutations(&rest) {
            tail.insert(0, first.clone());
            out.push(tail);
        }
    }
    out
}

/// Issue 9: customer 3's $99 invoice earned 24.75 instead of 39.60 when customer 2's first
/// invoice arrived after it. Customer 2's invoice (day 2) is the crossing sale: it earns 25 %,
/// and customer 3's (day 3) earns 40 %, delivered in either order.
#[test]
fn a_late_crossing_sale_re_prices_a_later_customer() {
    let p = program(false);
    let c1 = ("cus_1", inv("in_1", 1));
    let c2 = ("cus_2", inv("in_2", 2));
    let c3 = ("cus_3", inv("in_3", 3));
    let want = cents(&[("in_1", 2_475), ("in_2", 2_475), ("in_3", 3_960)]);
    assert_eq!(ledger(&p, &[c1.clone(), c2.clone(), c3.clone()]), want);
    assert_eq!(ledger(&p, &[c1.clone(), c3.clone(), c2.clone()]), want);
    // The re-pricing is an adjustment of customer 3's commission: 24.75, then +14.85.
    let mut books = Books::default();
    books.arrive(&p, &c1);
    books.arrive(&p, &c3);
    assert_eq!(books.ledger["in_3"], 2_475);
    books.arrive(&p, &c2);
    assert_eq!(books.ledger["in_3"], 2_475 + 1_485);
    assert_eq!(books.history.level_at(day(2)), 0);
    assert_eq!(
        books
            .history
            .level_at(day(2) + chrono::TimeDelta::milliseconds(1)),
        1
    );
}

/// Issue 9: a renewal arriving before its customer's first invoice counted that customer twice
/// and promoted the partner a customer early. Customer 1 (days 1 and 3) is one customer; the
/// promotion comes after customer 2's first sale (day 4), so customer 2 earns 24.75 and
/// customer 3 (day 5) 39.60.
#[test]
fn a_renewal_before_its_first_invoice_counts_its_customer_once() {
    let p = program(false);
    let renewal = ("cus_1", inv("in_1b", 3));
    let first = ("cus_1", inv("in_1a", 1));
    let c2 = ("cus_2", inv("in_2", 4));
    let c3 = ("cus_3", inv("in_3", 5));
    let want = cents(&[
        ("in_1a", 2_475),
        ("in_1b", 2_475),
        ("in_2", 2_475),
        ("in_3", 3_960),
    ]);
    assert_eq!(
        ledger(
            &p,
            &[first.clone(), renewal.clone(), c2.clone(), c3.clone()]
        ),
        want
    );
    assert_eq!(ledger(&p, &[renewal, first, c2, c3]), want);
}

/// Three customers, two of them renewing: every one of the 120 delivery orders gives the ledger
/// of the business-time order, with and without the rate lock.
#[test]
fn every_delivery_order_gives_the_same_ledger() {
    let arrivals: Vec<Arrival> = vec![
        ("cus_1", inv("in_1a", 1)),
        ("cus_2", inv("in_2", 2)), // the crossing sale
        ("cus_3", inv("in_3a", 3)),
        ("cus_1", inv("in_1b", 4)),
        ("cus_3", inv("in_3b", 5)),
    ];
    let cases = [
        (
            false,
            cents(&[
                ("in_1a", 2_475),
                ("in_2", 2_475),
                ("in_3a", 3_960),
                ("in_1b", 3_960),
                ("in_3b", 3_960),
            ]),
        ),
        // Locked at each customer's first sale: customer 1 keeps 25 %, customer 3 keeps 40 %.
        (
            true,
            cents(&[
                ("in_1a", 2_475),
                ("in_2", 2_475),
                ("in_3a", 3_960),
                ("in_1b", 2_475),
                ("in_3b", 3_960),
            ]),
        ),
    ];
    for (lock, want) in cases {
        let p = program(lock);
        let orders = permutations(&arrivals);
        assert_eq!(orders.len(), 120);
        for order in orders {
            let ids: Vec<&str> = order.iter().map(|(_, f)| f.invoice_id.as_str()).collect();
            assert_eq!(ledger(&p, &order), want, "lock {lock}, order {ids:?}");
        }
    }
}

const CUSTOMERS: [&str; 4] = ["cus_a", "cus_b", "cus_c", "cus_d"];

/// 20 %; 30 % from two active customers; 40 % from $300.00 of revenue.
fn two_levels(lock_rate_at_first_sale: bool) -> Program {
    let mut p = program(lock_rate_at_first_sale);
    p.plan.reward = Reward::Percentage { rate: dec!(0.20) };
    p.levels = vec![
        Level {
            name: "Silver".into(),
            threshold: LevelThreshold::ActiveCustomers { count: 2 },
            rate: dec!(0.30),
        },
        Level {
            name: "Gold".into(),
            threshold: LevelThreshold::Revenue {
                currency: Currency::USD,
                minor: 30_000,
            },
            rate: dec!(0.40),
        },
    ];
    p.validate().unwrap();
    p
}

/// Invoices of up to four customers (a $0 trial among them), on days 1..=12 (ties included).
fn arb_arrivals() -> impl Strategy<Value = Vec<Arrival>> {
    prop::collection::vec(
        (
            0..CUSTOMERS.len(),
            1..=12u32,
            prop::sample::select(vec![0, 4_900, 9_900, 19_900]),
        ),
        1..=8,
    )
    .prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (c, d, minor))| {
                let mut f = inv(&format!("in_{i}"), d);
                f.lines[0].amount = Money::new(minor, Currency::USD);
                (CUSTOMERS[c], f)
            })
            .collect()
    })
}

/// What every invoice earns with the history derived from all of the partner's sales: the
/// answer that no delivery order may change.
fn in_business_time(p: &Program, arrivals: &[Arrival]) -> BTreeMap<String, i64> {
    let mut by_customer: BTreeMap<&str, Vec<InvoiceFacts>> = BTreeMap::new();
    for (c, f) in arrivals {
        by_customer.entry(c).or_default().push(f.clone());
    }
    let mut sales = vec![];
    for (c, invs) in &by_customer {
        let base = evaluate_customer(p, &products(), invs, &RateContext::new()).unwrap();
        sales.extend(
            base.iter()
                .filter_map(|r| rules::sale::level_sale_of(true, c, r)),
        );
    }
    let history = level_history_from_sales(p, LevelHistory::new(), &sales).unwrap();
    let ctx = RateContext::with_levels(history);
    let mut out = BTreeMap::new();
    for invs in by_customer.values() {
        for r in evaluate_customer(p, &products(), invs, &ctx).unwrap() {
            if r.tier1.minor != 0 {
                out.insert(r.invoice_id.clone(), r.tier1.minor);
            }
        }
    }
    out
}

proptest! {
    /// Any invoices of up to four customers, delivered in any order, with and without the rate
    /// lock: the ledger is the business-time answer.
    #[test]
    fn any_delivery_order_books_the_business_time_answer(
        (arrivals, shuffled) in arb_arrivals().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        lock in any::<bool>(),
    ) {
        let p = two_levels(lock);
        let want = in_business_time(&p, &arrivals);
        prop_assert_eq!(ledger(&p, &shuffled), want);
    }
}
