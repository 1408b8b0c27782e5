//! Helpers of the payout system tests: firing the daily payout rule at a chosen business time,
//! waiting for a run's workers, reading a partner's four buckets.

use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, TimeZone, Utc, Weekday};
use serde_json::Value;

use crate::Stack;

/// The first Friday, 00:15 UTC (the schedule's time), at least `days` days after `from_s`
/// (seconds since the epoch).
pub fn friday_after(from_s: i64, days: i64) -> DateTime<Utc> {
    let mut d = Utc
        .timestamp_opt(from_s + days * 86_400, 0)
        .single()
        .expect("time")
        .date_naive()
        .succ_opt()
        .expect("date");
    while d.weekday() != Weekday::Fri {
        d = d.succ_opt().expect("date");
    }
    Utc.from_utc_datetime(&d.and_hms_opt(0, 15, 0).expect("time"))
}

/// RFC 3339 in whole seconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `PROGRAM:DATE` of the demo program's run at `t`.
pub fn demo_run(t: DateTime<Utc>) -> String {
    format!("demo:{}", t.format("%Y-%m-%d"))
}

/// Fire the daily payout rule at business time `at` (`POST /dev/schedule/payout?time=`) and
/// wait until the demo program's run of that date has finished; the run as listed.
pub async fn fire(stack: &Stack, at: DateTime<Utc>) -> Value {
    let fired = stack
        .post(
            &format!("/dev/schedule/payout?time={}", rfc3339(at)),
            &[],
            vec![],
        )
        .await;
    assert_eq!(fired.status, 200, "{}", fired.text());
    assert_eq!(
        fired.header("x-amz-function-error"),
        None,
        "{}",
        fired.text()
    );
    until_finished(stack, &demo_run(at)).await
}

/// `partnerctl payouts --program demo` until the run `run` has finished (the worker took its
/// chunks from the payout queue).
pub async fn until_finished(stack: &Stack, run: &str) -> Value {
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let runs = stack.partnerctl_json(&["payouts", "--program", "demo"]);
        let found = runs
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["run"] == run).cloned());
        if let Some(r) = found.filter(|r| r["finished"] == true) {
            return r;
        }
        assert!(Instant::now() < until, "{run} never finished: {runs:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A partner's (pending, available, in_payout, paid) in the demo program (`partnerctl partner`).
pub fn buckets(stack: &Stack, partner: &str) -> (i64, i64, i64, i64) {
    let view = stack.partnerctl_json(&["partner", partner]);
    let b = &view["balances"][0];
    let n = |k: &str| b[k].as_i64().unwrap_or(0);
    (n("pending"), n("available"), n("in_payout"), n("paid"))
}
