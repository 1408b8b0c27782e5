//! Time rules: the hold before a commission becomes available (from its sale or its account's
//! first sale: [`HoldAnchor`]) and payout days of a [`PayoutSchedule`] (both declared on the
//! program: [`crate::program`]). Accrual clocks and forfeiture: [`crate::accrual`].
//!
//! All inputs are business times (`DateTime<Utc>`); calendar questions ("is it Friday?", "the
//! 15th") are answered in the program's time zone.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::program::{HoldAnchor, PayoutSchedule};

/// When a commission earned at `sale_at` leaves the hold: exactly `hold_days` × 24 hours later
/// (no calendar or time-zone arithmetic, so DST never shortens a hold). Saturates at the end
/// of representable time.
pub fn available_at(sale_at: DateTime<Utc>, hold_days: u32) -> DateTime<Utc> {
    sale_at
        .checked_add_signed(TimeDelta::days(i64::from(hold_days)))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The local date of `t` in `tz`.
pub fn local_date(tz: Tz, t: DateTime<Utc>) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// Monthly days outside 1..=28 (an unvalidated schedule) are clamped into that range.
fn clamp_day(day: u32) -> u32 {
    day.clamp(1, 28)
}

/// True when `date` is a payout day of `schedule`.
pub fn is_payout_date(schedule: &PayoutSchedule, date: NaiveDate) -> bool {
    match *schedule {
        PayoutSchedule::Weekly { weekday } => date.weekday() == weekday,
        PayoutSchedule::Monthly { day } => date.day() == clamp_day(day),
    }
}

/// If `now_business` falls on a payout day in the program's time zone, that local date (use it
/// as the payout run's key: one run per program and date); otherwise `None`.
pub fn payout_date_for(
    schedule: &PayoutSchedule,
    tz: Tz,
    now_business: DateTime<Utc>,
) -> Option<NaiveDate> {
    let today = local_date(tz, now_business);
    is_payout_date(schedule, today).then_some(today)
}

/// The first payout date strictly after the local date of `after` in `tz` (so on a payout day
/// it returns the next one; ask [`payout_date_for`] about today). Saturates at
/// `NaiveDate::MAX`.
pub fn next_payout_date(schedule: &PayoutSchedule, tz: Tz, after: DateTime<Utc>) -> NaiveDate {
    let today = local_date(tz, after);
    let next = match *schedule {
        PayoutSchedule::Weekly { weekday } => {
            let ahead =
                (7 + weekday.num_days_from_monday() - today.weekday().num_days_from_monday()) % 7;
            let ahead = if ahead == 0 { 7 } else { ahead };
            today.checked_add_days(Days::new(u64::from(ahead)))
        }
        PayoutSchedule::Monthly { day } => {
            let day = clamp_day(day);
            let this_month = today.with_day(day);
            match this_month {
                Some(d) if d > today => Some(d),
                _ => today
                    .with_day(1)
                    .and_then(|first| first.checked_add_months(Months::new(1)))
                    .and_then(|first| first.with_day(day)),
            }
        }
    };
    next.unwrap_or(NaiveDate::MAX)
}

/// When a commission of a sale at `sale_at` leaves the hold under `anchor`: `hold_days` after
/// the sale itself ([`HoldAnchor::Sale`]), or, for [`HoldAnchor::Account`], `hold_days` after
/// the account's first paid sale (`first_paid_sale_at`, the sale itself when unknown) and never
/// before the sale: once the account has passed its refund period, its later commissions are
/// available at once.
pub fn hold_ends_at(
    anchor: HoldAnchor,
    hold_days: u32,
    sale_at: DateTime<Utc>,
    first_paid_sale_at: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    match anchor {
        HoldAnchor::Sale => available_at(sale_at, hold_days),
        HoldAnchor::Account => {
            let first = first_paid_sale_at.map_or(sale_at, |f| f.min(sale_at));
            available_at(first, hold_days).max(sale_at)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(y: i32, m: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, mi, 0).unwrap()
    }
    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    /// Ontraport's 90-day refund period and Kartra's 45-day hold, to the second, across a DST
    /// change (days are 24 h of business time).
    #[test]
    fn holds_are_exact() {
        let sale = utc(2025, 1, 15, 13, 45);
        assert_eq!(available_at(sale, 90), utc(2025, 4, 15, 13, 45));
        assert_eq!(available_at(sale, 45), utc(2025, 3, 1, 13, 45));
        assert_eq!(available_at(sale, 0), sale);
        let leap = utc(2024, 2, 1, 0, 0);
        assert_eq!(available_at(leap, 45), utc(2024, 3, 17, 0, 0));
        assert_eq!(
            available_at(DateTime::<Utc>::MAX_UTC, 1),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn payout_days_in_program_zone() {
        let fri = PayoutSchedule::default();
        let tz: Tz = "America/Los_Angeles".parse().unwrap();
        // Sat 2025-03-08 02:00 UTC is still Friday evening in Los Angeles.
        let t = utc(2025, 3, 8, 2, 0);
        assert_eq!(payout_date_for(&fri, tz, t), Some(date(2025, 3, 7)));
        assert_eq!(payout_date_for(&fri, Tz::UTC, t), None);
        assert_eq!(next_payout_date(&fri, tz, t), date(2025, 3, 14));
        assert_eq!(next_payout_date(&fri, Tz::UTC, t), date(2025, 3, 14));
        // Thursday → the next day.
        assert_eq!(
            next_payout_date(&fri, Tz::UTC, utc(2025, 3, 6, 12, 0)),
            date(2025, 3, 7)
        );

        let m15 = PayoutSchedule::Monthly { day: 15 };
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        // 2025-03-14 16:00 UTC is 2025-03-15 01:00 in Tokyo.
        let t = utc(2025, 3, 14, 16, 0);
        assert_eq!(payout_date_for(&m15, tokyo, t), Some(date(2025, 3, 15)));
        assert_eq!(payout_date_for(&m15, Tz::UTC, t), None);
        assert_eq!(next_payout_date(&m15, Tz::UTC, t), date(2025, 3, 15));
        assert_eq!(next_payout_date(&m15, tokyo, t), date(2025, 4, 15));
        assert_eq!(
            next_payout_date(&m15, Tz::UTC, utc(2025, 12, 20, 0, 0)),
            date(2026, 1, 15)
        );
        let m28 = PayoutSchedule::Monthly { day: 28 };
        assert_eq!(
            next_payout_date(&m28, Tz::UTC, utc(2025, 1, 31, 0, 0)),
            date(2025, 2, 28)
        );
    }

    /// Ontraport's 90 days "after the account has passed the 90 day refund period": the
    /// account's first sale on Jan 15, a renewal on Feb 15 and one on May 15, in worked times.
    #[test]
    fn the_hold_from_the_sale_or_from_the_account() {
        let first = utc(2026, 1, 15, 10, 0);
        let renewal = utc(2026, 2, 15, 10, 0);
        let late = utc(2026, 5, 15, 10, 0);
        use HoldAnchor::*;
        // Each sale's own 90 days (the default).
        assert_eq!(
            hold_ends_at(Sale, 90, first, Some(first)),
            utc(2026, 4, 15, 10, 0)
        );
        assert_eq!(
            hold_ends_at(Sale, 90, renewal, Some(first)),
            utc(2026, 5, 16, 10, 0)
        );
        assert_eq!(
            hold_ends_at(Sale, 90, late, Some(first)),
            utc(2026, 8, 13, 10, 0)
        );
        // The account's: the renewal is available with the first sale, the later one at once.
        assert_eq!(
            hold_ends_at(Account, 90, first, Some(first)),
            utc(2026, 4, 15, 10, 0)
        );
        assert_eq!(
            hold_ends_at(Account, 90, renewal, Some(first)),
            utc(2026, 4, 15, 10, 0)
        );
        assert_eq!(hold_ends_at(Account, 90, late, Some(first)), late);
        // Without a known first sale, the sale is the account's first.
        assert_eq!(
            hold_ends_at(Account, 90, renewal, None),
            utc(2026, 5, 16, 10, 0)
        );
        // A "first sale" later than this one (an out-of-order delivery) does not delay it.
        assert_eq!(
            hold_ends_at(Account, 90, first, Some(renewal)),
            utc(2026, 4, 15, 10, 0)
        );
    }

    #[test]
    fn serde_forms() {
        let s: PayoutSchedule =
            serde_json::from_str(r#"{"type":"weekly","weekday":"friday"}"#).unwrap();
        assert_eq!(s, PayoutSchedule::default());
        let s: PayoutSchedule = serde_json::from_str(r#"{"type":"monthly","day":15}"#).unwrap();
        assert_eq!(s, PayoutSchedule::Monthly { day: 15 });
        use crate::program::AccrualPolicy;
        let a: AccrualPolicy =
            serde_json::from_str(r#"{"type":"forfeit_after_months","months":6}"#).unwrap();
        assert_eq!(a, AccrualPolicy::ForfeitAfterMonths { months: 6 });
        let a: AccrualPolicy =
            serde_json::from_str(r#"{"type":"pay_after_months","months":6}"#).unwrap();
        assert_eq!(a, AccrualPolicy::PayAfterMonths { months: 6 });
        let h: HoldAnchor = serde_json::from_str(r#""account""#).unwrap();
        assert_eq!(h, HoldAnchor::Account);
        assert!(serde_json::from_str::<PayoutSchedule>(r#"{"type":"monthly","dya":15}"#).is_err());
    }
}
