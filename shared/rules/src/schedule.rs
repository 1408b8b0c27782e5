//! Time rules: the hold before a commission becomes available, payout days of a
//! [`PayoutSchedule`], and forfeiture under an [`AccrualPolicy`] for balances that stay under
//! the payout minimum (both declared on the program: [`crate::program`]).
//!
//! All inputs are business times (`DateTime<Utc>`); calendar questions ("is it Friday?", "the
//! 15th") are answered in the program's time zone.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;

use crate::program::{AccrualPolicy, PayoutSchedule};

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

/// The instant from which a balance available (and unpaid) since `oldest_unpaid_available_since`
/// is forfeited under `accrual`: `since + months` calendar months (UTC calendar; Jan 31 + 1
/// month = the last day of February), or `None` for [`AccrualPolicy::Indefinite`].
pub fn forfeit_at(
    accrual: &AccrualPolicy,
    oldest_unpaid_available_since: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match *accrual {
        AccrualPolicy::Indefinite => None,
        AccrualPolicy::ForfeitAfterMonths { months } => Some(
            oldest_unpaid_available_since
                .checked_add_months(Months::new(months))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        ),
    }
}

/// True when, at `now`, a balance that has been available but unpaid since
/// `oldest_unpaid_available_since` must be forfeited (`now >= forfeit_at(..)`).
///
/// The caller applies this only to a positive available balance that is **under a configured
/// payout minimum** (a balance that could be paid is paid, not forfeited), and books the
/// forfeiture as a `Forfeited` entry from the `available` bucket.
pub fn forfeits(
    accrual: &AccrualPolicy,
    oldest_unpaid_available_since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    forfeit_at(accrual, oldest_unpaid_available_since).is_some_and(|at| now >= at)
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

    #[test]
    fn forfeiture_after_six_months() {
        let six = AccrualPolicy::ForfeitAfterMonths { months: 6 };
        let since = utc(2025, 1, 10, 0, 0);
        assert!(!forfeits(&six, since, utc(2025, 7, 9, 23, 59)));
        assert!(forfeits(&six, since, utc(2025, 7, 10, 0, 0)));
        assert!(!forfeits(
            &AccrualPolicy::Indefinite,
            since,
            utc(2099, 1, 1, 0, 0)
        ));
        // Aug 31 + 6 months = end of February.
        assert_eq!(
            forfeit_at(&six, utc(2025, 8, 31, 12, 0)),
            Some(utc(2026, 2, 28, 12, 0))
        );
    }

    #[test]
    fn serde_forms() {
        let s: PayoutSchedule =
            serde_json::from_str(r#"{"type":"weekly","weekday":"friday"}"#).unwrap();
        assert_eq!(s, PayoutSchedule::default());
        let s: PayoutSchedule = serde_json::from_str(r#"{"type":"monthly","day":15}"#).unwrap();
        assert_eq!(s, PayoutSchedule::Monthly { day: 15 });
        let a: AccrualPolicy =
            serde_json::from_str(r#"{"type":"forfeit_after_months","months":6}"#).unwrap();
        assert_eq!(a, AccrualPolicy::ForfeitAfterMonths { months: 6 });
        assert!(serde_json::from_str::<PayoutSchedule>(r#"{"type":"monthly","dya":15}"#).is_err());
    }
}
