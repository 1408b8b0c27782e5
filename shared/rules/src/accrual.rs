//! Accrual clocks: one per commission, from the day its money became available.
//!
//! A balance's available money is a queue of **lots** ([`Lots`]): the UTC day the money became
//! available (a commission's hold ended, a payout gave money back) and how much. New earnings
//! add lots and never reset older ones; a payout or a forfeiture takes the **oldest** lots
//! first ([`take_oldest`]). Money that leaves `available` without naming lots (a refund after
//! release, a negative adjustment) is taken from the oldest lots too when the queue is read
//! ([`queue`]), and money available without a lot (written before clocks were kept) counts as
//! available from the day of the reading: so the queue always holds exactly the available
//! amount.
//!
//! What the program's [`AccrualPolicy`] does with the queue ([`limit_date`]):
//!
//! * `indefinite`: nothing; money waits as long as it takes.
//! * `forfeit_after_months`: a lot still in the queue of a balance under the minimum on its
//!   limit date (`day + months`, calendar months: Jan 31 + 1 month = the last day of February)
//!   is forfeited at the first payout run on or after that date ([`expired`]); the partner is
//!   warned at the first run from [`FORFEIT_WARNING_DAYS`] days before ([`upcoming`]).
//! * `pay_after_months`: once the oldest lot reaches its limit date, the balance is paid even
//!   under the minimum (when nothing else blocks the payout).
//!
//! Days are UTC calendar days, and a run compares them with the UTC date of its business time.

use std::collections::BTreeMap;

use chrono::{DateTime, Days, Months, NaiveDate, Utc};

use crate::program::AccrualPolicy;

/// The lots of a balance: the UTC day money became available → minor units (positive).
pub type Lots = BTreeMap<NaiveDate, i64>;

/// Days before a forfeiture the partner is warned (the first run from then on warns).
pub const FORFEIT_WARNING_DAYS: u64 = 30;

/// The UTC day of business time `at_ms` (a lot's day).
pub fn lot_day(at_ms: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(at_ms)
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
        .date_naive()
}

/// The available money of a balance as a queue of lots, oldest first: the recorded `lots`
/// (non-positive entries ignored) less what left `available` without naming lots, taken from
/// the oldest; or plus the money without a lot, as a lot of `today`. Sums to `available`
/// (empty when nothing is available).
pub fn queue(lots: &Lots, available: i64, today: NaiveDate) -> Lots {
    if available <= 0 {
        return Lots::new();
    }
    let recorded: Lots = lots
        .iter()
        .filter(|(_, a)| **a > 0)
        .map(|(d, a)| (*d, *a))
        .collect();
    let total: i64 = recorded.values().sum();
    if total >= available {
        return take_oldest(&recorded, total - available).1;
    }
    let mut out = recorded;
    *out.entry(today).or_default() += available - total;
    out
}

/// Split `queue` into the oldest `amount` units (taken) and the rest (left). Taking more than
/// the queue holds takes all of it.
pub fn take_oldest(queue: &Lots, amount: i64) -> (Lots, Lots) {
    let mut need = amount.max(0);
    let mut taken = Lots::new();
    let mut left = Lots::new();
    for (day, a) in queue {
        if *a <= 0 {
            continue;
        }
        let t = need.min(*a);
        if t > 0 {
            taken.insert(*day, t);
            need -= t;
        }
        if *a > t {
            left.insert(*day, *a - t);
        }
    }
    (taken, left)
}

/// The limit date of a lot of `day` under `policy`: `day + months` calendar months, or `None`
/// for [`AccrualPolicy::Indefinite`]. Saturates at `NaiveDate::MAX`.
pub fn limit_date(policy: &AccrualPolicy, day: NaiveDate) -> Option<NaiveDate> {
    policy.months().map(|m| {
        day.checked_add_months(Months::new(m))
            .unwrap_or(NaiveDate::MAX)
    })
}

/// The lots of `queue` whose limit date is on or before `today` (taken), and the rest.
pub fn expired(policy: &AccrualPolicy, queue: &Lots, today: NaiveDate) -> (Lots, Lots) {
    let mut taken = Lots::new();
    let mut left = Lots::new();
    for (day, a) in queue {
        match limit_date(policy, *day) {
            Some(limit) if limit <= today => taken.insert(*day, *a),
            _ => left.insert(*day, *a),
        };
    }
    (taken, left)
}

/// The forfeiture a partner should be warned of at `today`: the earliest limit date after
/// `today` that is at most [`FORFEIT_WARNING_DAYS`] away, and the amount whose limit is on or
/// before it. `None` when nothing reaches its limit in the window.
pub fn upcoming(
    policy: &AccrualPolicy,
    queue: &Lots,
    today: NaiveDate,
) -> Option<(NaiveDate, i64)> {
    let horizon = today.checked_add_days(Days::new(FORFEIT_WARNING_DAYS))?;
    let limits: Vec<(NaiveDate, i64)> = queue
        .iter()
        .filter_map(|(day, a)| limit_date(policy, *day).map(|l| (l, *a)))
        .filter(|(l, _)| *l > today && *l <= horizon)
        .collect();
    let first = limits.iter().map(|(l, _)| *l).min()?;
    // Everything that will be gone by the first forfeiture's date.
    let amount = limits
        .iter()
        .filter(|(l, _)| *l <= first)
        .map(|(_, a)| a)
        .sum();
    Some((first, amount))
}

/// The day of the oldest lot, if any.
pub fn oldest(queue: &Lots) -> Option<NaiveDate> {
    queue.keys().next().copied()
}

/// Sum of two lot maps (money given back rejoins the queue with its own days).
pub fn merge(a: &Lots, b: &Lots) -> Lots {
    let mut out = a.clone();
    for (d, v) in b {
        *out.entry(*d).or_default() += v;
    }
    out.retain(|_, v| *v > 0);
    out
}

/// The total of a lot map.
pub fn total(lots: &Lots) -> i64 {
    lots.values().filter(|a| **a > 0).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, day).unwrap()
    }
    fn lots(v: &[(NaiveDate, i64)]) -> Lots {
        v.iter().copied().collect()
    }

    /// Worked cents: $50 on Jan 10, $30 on Feb 2, $40 on Mar 5.
    #[test]
    fn the_queue_holds_exactly_the_available_amount() {
        let l = lots(&[(d(1, 10), 5_000), (d(2, 2), 3_000), (d(3, 5), 4_000)]);
        let today = d(3, 20);
        assert_eq!(queue(&l, 12_000, today), l);
        // A $20 refund after release took money without naming lots: the oldest goes first.
        assert_eq!(
            queue(&l, 10_000, today),
            lots(&[(d(1, 10), 3_000), (d(2, 2), 3_000), (d(3, 5), 4_000)])
        );
        // $10 available without a lot: it counts from today.
        assert_eq!(
            queue(&l, 13_000, today),
            lots(&[
                (d(1, 10), 5_000),
                (d(2, 2), 3_000),
                (d(3, 5), 4_000),
                (today, 1_000)
            ])
        );
        assert!(queue(&l, 0, today).is_empty());
        assert!(queue(&l, -2_500, today).is_empty());
    }

    #[test]
    fn a_payout_takes_the_oldest_first() {
        let l = lots(&[(d(1, 10), 5_000), (d(2, 2), 3_000), (d(3, 5), 4_000)]);
        let (taken, left) = take_oldest(&l, 6_000);
        assert_eq!(taken, lots(&[(d(1, 10), 5_000), (d(2, 2), 1_000)]));
        assert_eq!(left, lots(&[(d(2, 2), 2_000), (d(3, 5), 4_000)]));
        assert_eq!(total(&taken) + total(&left), 12_000);
        let (all, none) = take_oldest(&l, 99_999);
        assert_eq!((all, none), (l.clone(), Lots::new()));
        assert_eq!(merge(&left, &taken), l);
    }

    /// Ontraport's six months: the Jan 10 lot is forfeited from Jul 10, the Feb 2 lot is not.
    #[test]
    fn six_months_per_commission() {
        let six = AccrualPolicy::ForfeitAfterMonths { months: 6 };
        let l = lots(&[(d(1, 10), 5_000), (d(2, 2), 3_000)]);
        assert_eq!(limit_date(&six, d(1, 10)), Some(d(7, 10)));
        assert_eq!(limit_date(&AccrualPolicy::Indefinite, d(1, 10)), None);
        // Aug 31 + 6 months = the last day of February.
        assert_eq!(
            limit_date(&six, d(8, 31)),
            NaiveDate::from_ymd_opt(2027, 2, 28)
        );
        assert_eq!(expired(&six, &l, d(7, 9)).0, Lots::new());
        assert_eq!(
            expired(&six, &l, d(7, 10)),
            (lots(&[(d(1, 10), 5_000)]), lots(&[(d(2, 2), 3_000)]))
        );
        assert_eq!(
            expired(&AccrualPolicy::Indefinite, &l, d(12, 31)).0,
            Lots::new()
        );
        // Warned from 30 days before: the run of Jun 10 is the first that warns of Jul 10.
        assert_eq!(upcoming(&six, &l, d(6, 9)), None);
        assert_eq!(upcoming(&six, &l, d(6, 10)), Some((d(7, 10), 5_000)));
        // After the first forfeiture, the next one: Aug 2.
        assert_eq!(
            upcoming(&six, &lots(&[(d(2, 2), 3_000)]), d(7, 10)),
            Some((d(8, 2), 3_000))
        );
        assert_eq!(upcoming(&AccrualPolicy::Indefinite, &l, d(7, 1)), None);
    }

    #[test]
    fn lot_days_are_utc() {
        // 2026-03-01 23:30 UTC.
        assert_eq!(lot_day(1_772_407_800_000), d(3, 1));
    }
}
