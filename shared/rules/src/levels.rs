//! Partner levels over time: promotion by metrics, never demotion, and the level in force at a
//! given business time.
//!
//! A partner starts at level 0 (the base plan). When a sale makes the partner's metrics reach
//! the threshold of a higher [`Level`](crate::Level), the partner is promoted **after**
//! that sale: the sale that crosses the threshold still earns the old rate, and the new level
//! applies to sales paid strictly later. Levels are never taken away.
//!
//! The history is a pure function of the **set** of the partner's sales in the program,
//! [`level_history_from_sales`]: the sales are taken in business-time order, whatever order
//! they arrived in, a customer counts as active from their first paid sale (a renewal that
//! arrives before its customer's first invoice does not count the customer twice), revenue
//! accumulates in time order, and a promotion takes effect after the paid time of the sale that
//! crossed the threshold. A late sale can only move a crossing earlier (metrics only grow); the
//! sales it re-prices are those paid after [`first_difference`] of the old and the new history.
//! [`settled_before`] tells when a new sale cannot change the history at all (the partner
//! already reached the top level before it).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::PlanError;
use crate::money::{Currency, Money};
use crate::program::{LevelThreshold, Program};

/// A promotion to `level`, in force for sales paid strictly after `effective_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LevelChange {
    /// Level reached (1-based index into `program.levels`; 0 = base plan).
    pub level: u32,
    /// Business time after which the level applies (the crossing sale's `paid_at`, or the time
    /// an operator promoted the partner).
    pub effective_after: DateTime<Utc>,
}

/// A partner's levels over time in one program. Serializes as its list of changes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LevelHistory {
    changes: Vec<LevelChange>,
}

impl LevelHistory {
    /// Level 0 at all times.
    pub fn new() -> Self {
        LevelHistory::default()
    }

    /// `level` from the beginning of time (an operator placed the partner there at enrollment).
    pub fn starting_at(level: u32) -> Self {
        let mut h = LevelHistory::new();
        h.promote(level, DateTime::<Utc>::MIN_UTC);
        h
    }

    /// A history from stored changes (any order).
    pub fn from_changes(changes: impl IntoIterator<Item = LevelChange>) -> Self {
        let mut h = LevelHistory::new();
        for c in changes {
            h.promote(c.level, c.effective_after);
        }
        h
    }

    /// The changes, ordered by `(effective_after, level)`.
    pub fn changes(&self) -> &[LevelChange] {
        &self.changes
    }

    /// Records a promotion to `level` for sales after `effective_after`. Returns false (and
    /// records nothing) when the partner already has that level or a higher one at that time:
    /// there is no demotion.
    pub fn promote(&mut self, level: u32, effective_after: DateTime<Utc>) -> bool {
        let in_force = self
            .changes
            .iter()
            .filter(|c| c.effective_after <= effective_after)
            .map(|c| c.level)
            .max()
            .unwrap_or(0);
        if level <= in_force {
            return false;
        }
        let change = LevelChange {
            level,
            effective_after,
        };
        let pos = self.changes.partition_point(|c| *c <= change);
        self.changes.insert(pos, change);
        // Keep the history canonical: drop later entries that no longer raise the level.
        let mut highest = 0;
        self.changes.retain(|c| {
            let keep = c.level > highest;
            highest = highest.max(c.level);
            keep
        });
        true
    }

    /// The level in force for a sale paid at `t`: the highest level promoted strictly before
    /// `t` (0 if none).
    pub fn level_at(&self, t: DateTime<Utc>) -> u32 {
        self.changes
            .iter()
            .filter(|c| c.effective_after < t)
            .map(|c| c.level)
            .max()
            .unwrap_or(0)
    }

    /// The highest level ever reached (the partner's current level).
    pub fn current_level(&self) -> u32 {
        self.changes.iter().map(|c| c.level).max().unwrap_or(0)
    }
}

/// Counters that level thresholds are measured against, for one partner in one program.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerMetrics {
    /// Distinct customers with a paid sale (positive commission base).
    pub active_customers: u32,
    /// Attributed revenue (sum of commission bases) per currency, in minor units.
    pub revenue: BTreeMap<Currency, i64>,
}

/// One sale as level metrics see it (built by [`level_history_from_sales`] in business-time
/// order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelSale {
    /// Business time of the payment.
    pub paid_at: DateTime<Utc>,
    /// Commission base of the invoice ([`InvoiceCommission::base`](crate::InvoiceCommission)).
    pub revenue: Money,
    /// True for the customer's first sale with positive revenue for this partner, in business
    /// time (not the fold's `is_first_sale` of the moment the sale arrived).
    pub new_customer: bool,
}

impl PartnerMetrics {
    /// Adds a sale. Sales with a revenue of zero or less change nothing.
    pub fn record(&mut self, sale: &LevelSale) -> Result<(), PlanError> {
        if sale.revenue.minor <= 0 {
            return Ok(());
        }
        if sale.new_customer {
            self.active_customers = self
                .active_customers
                .checked_add(1)
                .ok_or(PlanError::Overflow)?;
        }
        let r = self.revenue.entry(sale.revenue.currency).or_insert(0);
        *r = r
            .checked_add(sale.revenue.minor)
            .ok_or(PlanError::Overflow)?;
        Ok(())
    }

    /// True when these metrics reach `threshold`.
    pub fn meets(&self, threshold: &LevelThreshold) -> bool {
        match threshold {
            LevelThreshold::ActiveCustomers { count } => self.active_customers >= *count,
            LevelThreshold::Revenue { currency, minor } => {
                self.revenue.get(currency).copied().unwrap_or(0) >= *minor
            }
        }
    }
}

/// The highest level (1-based; 0 = none) whose threshold `metrics` reach. With thresholds of
/// different kinds, a higher level counts even if a lower one's threshold is not met.
pub fn highest_level_met(program: &Program, metrics: &PartnerMetrics) -> u32 {
    program
        .levels
        .iter()
        .enumerate()
        .filter(|(_, l)| metrics.meets(&l.threshold))
        .map(|(i, _)| u32::try_from(i + 1).unwrap_or(u32::MAX))
        .max()
        .unwrap_or(0)
}

/// A partner's sale in a program, for [`level_history_from_sales`] (from a fold result:
/// [`PartnerSale::from_commission`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerSale {
    /// The referred customer.
    pub customer_id: String,
    /// The invoice.
    pub invoice_id: String,
    /// Business time of the payment.
    pub paid_at: DateTime<Utc>,
    /// Commission base of the invoice.
    pub revenue: Money,
}

/// The level history implied by all of a partner's `sales` in `program`, on top of `initial`
/// (manual promotions; [`LevelHistory::new`] if none). Sales are taken in `(paid_at,
/// invoice_id)` order, so the result depends only on the set. A customer counts as new at their
/// first sale with positive revenue.
pub fn level_history_from_sales(
    program: &Program,
    initial: LevelHistory,
    sales: &[PartnerSale],
) -> Result<LevelHistory, PlanError> {
    let mut sorted: Vec<&PartnerSale> = sales.iter().collect();
    sorted.sort_by(|a, b| (a.paid_at, &a.invoice_id).cmp(&(b.paid_at, &b.invoice_id)));
    let mut history = initial;
    let mut metrics = PartnerMetrics::default();
    let mut customers: BTreeSet<&str> = BTreeSet::new();
    for s in sorted {
        if s.revenue.minor <= 0 {
            continue;
        }
        let sale = LevelSale {
            paid_at: s.paid_at,
            revenue: s.revenue,
            new_customer: customers.insert(s.customer_id.as_str()),
        };
        metrics.record(&sale)?;
        let reached = highest_level_met(program, &metrics);
        history.promote(reached, s.paid_at);
    }
    Ok(history)
}

/// The earliest business time from which `old` and `new` may price a sale differently: sales
/// paid at or before it get the same level under both; `None` when the histories are equal.
pub fn first_difference(old: &LevelHistory, new: &LevelHistory) -> Option<DateTime<Utc>> {
    let (a, b) = (old.changes(), new.changes());
    let i = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    match (a.get(i), b.get(i)) {
        (None, None) => None,
        (Some(x), None) => Some(x.effective_after),
        (None, Some(y)) => Some(y.effective_after),
        (Some(x), Some(y)) => Some(x.effective_after.min(y.effective_after)),
    }
}

/// True when a sale paid at `paid_at` cannot change `history` (derived from sales): the partner
/// already reached the program's top level by then. Metrics only change from the new sale's
/// time on, and crossings before it stay where they are.
pub fn settled_before(program: &Program, history: &LevelHistory, paid_at: DateTime<Utc>) -> bool {
    let top = u32::try_from(program.levels.len()).unwrap_or(u32::MAX);
    top == 0
        || history
            .changes()
            .iter()
            .any(|c| c.level >= top && c.effective_after <= paid_at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::{CommissionPlan, Duration, Level, Reward};
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    fn t(d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 5, d, 12, 0, 0).unwrap()
    }

    fn program() -> Program {
        let mut p = Program::new(
            "p",
            "P",
            CommissionPlan::new(Reward::Percentage { rate: dec!(0.20) }, Duration::Lifetime),
            "https://example.com/",
        );
        p.levels = vec![
            Level {
                name: "Silver".into(),
                threshold: LevelThreshold::ActiveCustomers { count: 3 },
                rate: dec!(0.30),
            },
            Level {
                name: "Gold".into(),
                threshold: LevelThreshold::Revenue {
                    currency: Currency::USD,
                    minor: 100_000,
                },
                rate: dec!(0.40),
            },
        ];
        p.validate().unwrap();
        p
    }

    #[test]
    fn history_never_demotes() {
        let mut h = LevelHistory::new();
        assert_eq!(h.level_at(t(1)), 0);
        assert!(h.promote(1, t(5)));
        assert!(!h.promote(1, t(6)));
        assert!(h.promote(2, t(10)));
        assert!(!h.promote(1, t(12)));
        assert_eq!(h.level_at(t(5)), 0, "strictly after the crossing sale");
        assert_eq!(h.level_at(t(6)), 1);
        assert_eq!(h.level_at(t(11)), 2);
        assert_eq!(h.current_level(), 2);
        // An earlier promotion discovered later counts from its time; the later entry for
        // the same level becomes redundant and is dropped.
        assert!(h.promote(1, t(2)));
        assert_eq!(h.level_at(t(3)), 1);
        assert_eq!(h.changes().len(), 2);
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<LevelHistory>(&j).unwrap(), h);
        assert_eq!(LevelHistory::from_changes(h.changes().to_vec()), h);
        assert_eq!(LevelHistory::starting_at(2).level_at(t(1)), 2);
    }

    #[test]
    fn promotion_by_customers_then_revenue() {
        let p = program();
        let sale = |c: &str, i: &str, d, m| PartnerSale {
            customer_id: c.into(),
            invoice_id: i.into(),
            paid_at: t(d),
            revenue: Money::new(m, Currency::USD),
        };
        let sales = [
            sale("c1", "i1", 1, 20_000),
            sale("c2", "i2", 2, 20_000),
            sale("c1", "i3", 3, 20_000),
            sale("c3", "i4", 4, 20_000), // third customer → Silver after this sale
            sale("c2", "i5", 5, 19_999),
            sale("c3", "i6", 6, 1), // revenue 100_000 → Gold after this sale
        ];
        let h = level_history_from_sales(&p, LevelHistory::new(), &sales).unwrap();
        assert_eq!(
            h.changes(),
            &[
                LevelChange {
                    level: 1,
                    effective_after: t(4)
                },
                LevelChange {
                    level: 2,
                    effective_after: t(6)
                }
            ]
        );
        assert!(!settled_before(&p, &h, t(5)));
        assert!(settled_before(&p, &h, t(6)));
        assert!(settled_before(&p, &LevelHistory::new(), t(1)) == p.levels.is_empty());
        // Other currencies do not count toward a USD threshold.
        let mut e = PartnerMetrics::default();
        e.record(&LevelSale {
            paid_at: t(1),
            revenue: Money::new(1_000_000, Currency::EUR),
            new_customer: false,
        })
        .unwrap();
        assert_eq!(highest_level_met(&p, &e), 0);
    }

    #[test]
    fn first_difference_of_two_histories() {
        let h = |cs: &[(u32, u32)]| {
            LevelHistory::from_changes(cs.iter().map(|&(level, d)| LevelChange {
                level,
                effective_after: t(d),
            }))
        };
        // (old, new, first difference)
        type Changes<'a> = &'a [(u32, u32)];
        let cases: &[(Changes, Changes, Option<u32>)] = &[
            (&[], &[], None),
            (&[(1, 4)], &[(1, 4)], None),
            (&[], &[(1, 4)], Some(4)),
            (&[(1, 4)], &[(1, 2)], Some(2)),
            (&[(1, 2), (2, 9)], &[(1, 2), (2, 7)], Some(7)),
            (&[(1, 2), (2, 9)], &[(1, 2)], Some(9)),
        ];
        for (old, new, want) in cases {
            assert_eq!(
                first_difference(&h(old), &h(new)),
                want.map(t),
                "{old:?} → {new:?}"
            );
            assert_eq!(first_difference(&h(new), &h(old)), want.map(t));
        }
    }

    #[test]
    fn history_from_sales_is_order_independent() {
        let p = program();
        let sale = |c: &str, i: &str, d, m| PartnerSale {
            customer_id: c.into(),
            invoice_id: i.into(),
            paid_at: t(d),
            revenue: Money::new(m, Currency::USD),
        };
        let mut sales = vec![
            sale("c1", "i1", 1, 10_000),
            sale("c1", "i2", 2, 10_000),
            sale("c2", "i3", 3, 10_000),
            sale("c4", "i0", 3, 0), // a $0 sale is not a customer
            sale("c3", "i4", 4, 10_000),
            sale("c3", "i5", 5, 60_000),
        ];
        let h = level_history_from_sales(&p, LevelHistory::new(), &sales).unwrap();
        assert_eq!(
            h.changes(),
            &[
                LevelChange {
                    level: 1,
                    effective_after: t(4)
                },
                LevelChange {
                    level: 2,
                    effective_after: t(5)
                }
            ]
        );
        sales.reverse();
        assert_eq!(
            level_history_from_sales(&p, LevelHistory::new(), &sales).unwrap(),
            h
        );
    }
}
