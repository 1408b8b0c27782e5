//! Partner levels over time: promotion by metrics, never demotion, and the level in force at a
//! given business time.
//!
//! A partner starts at level 0 (the base plan). When a sale makes the partner's metrics reach
//! the threshold of a higher [`Level`](crate::Level), the partner is promoted **after**
//! that sale: the sale that crosses the threshold still earns the old rate, and the new level
//! applies to sales paid strictly later. Levels are never taken away.
//!
//! Two ways to keep a [`LevelHistory`]:
//! * incrementally, with [`PartnerMetrics`] counters and [`promotion_after_sale`] as each sale is
//!   booked;
//! * from scratch, with [`level_history_from_sales`] over all of the partner's sales in the
//!   program (a pure function of the set, so late or out-of-order sales are handled by
//!   recomputing).

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

/// One sale as level metrics see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LevelSale {
    /// Business time of the payment.
    pub paid_at: DateTime<Utc>,
    /// Commission base of the invoice ([`InvoiceCommission::base`](crate::InvoiceCommission)).
    pub revenue: Money,
    /// True for the customer's first paid sale
    /// ([`InvoiceCommission::is_first_sale`](crate::InvoiceCommission)).
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

/// A promotion decided by a sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    /// Level before.
    pub from_level: u32,
    /// Level after.
    pub to_level: u32,
    /// The crossing sale's `paid_at`: the new level applies to sales paid strictly later.
    pub effective_after: DateTime<Utc>,
}

impl Promotion {
    /// The history entry for this promotion.
    pub fn change(&self) -> LevelChange {
        LevelChange {
            level: self.to_level,
            effective_after: self.effective_after,
        }
    }
}

/// The promotion, if any, caused by `sale` for a partner at `level_before` whose metrics
/// before the sale are `metrics_before`. Never a demotion. The caller then records the sale in
/// its counters ([`PartnerMetrics::record`]) and the promotion in the history
/// ([`LevelHistory::promote`]).
pub fn promotion_after_sale(
    program: &Program,
    level_before: u32,
    metrics_before: &PartnerMetrics,
    sale: &LevelSale,
) -> Result<Option<Promotion>, PlanError> {
    let mut after = metrics_before.clone();
    after.record(sale)?;
    let reached = highest_level_met(program, &after);
    Ok((reached > level_before).then_some(Promotion {
        from_level: level_before,
        to_level: reached,
        effective_after: sale.paid_at,
    }))
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
        let usd = |m| Money::new(m, Currency::USD);
        let mut m = PartnerMetrics::default();
        let mut level = 0;
        let sales = [
            (t(1), 20_000, true),
            (t(2), 20_000, true),
            (t(3), 20_000, false),
            (t(4), 20_000, true), // third customer → Silver after this sale
            (t(5), 19_999, false),
            (t(6), 1, false), // revenue 100_000 → Gold after this sale
        ];
        let mut promos = vec![];
        for (at, rev, new) in sales {
            let s = LevelSale {
                paid_at: at,
                revenue: usd(rev),
                new_customer: new,
            };
            if let Some(pr) = promotion_after_sale(&p, level, &m, &s).unwrap() {
                level = pr.to_level;
                promos.push(pr);
            }
            m.record(&s).unwrap();
        }
        assert_eq!(
            promos,
            vec![
                Promotion {
                    from_level: 0,
                    to_level: 1,
                    effective_after: t(4)
                },
                Promotion {
                    from_level: 1,
                    to_level: 2,
                    effective_after: t(6)
                },
            ]
        );
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
