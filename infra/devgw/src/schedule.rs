//! Schedules: `rate(...)`, `cron(...)` (EventBridge's six fields) and `at(...)` expressions, the
//! "Scheduled Event" they deliver, and the task that fires them.
//!
//! Cron support covers `*`, `?`, lists, ranges, steps, month and weekday names and `L` (last day
//! of the month) in the day-of-month field; `W`, `#` and `L` in the day-of-week field are not
//! supported (such a schedule is refused at start and can only be fired with
//! `POST /dev/schedule/{name}`).

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use bytes::Bytes;
use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, SecondsFormat, TimeZone, Timelike, Utc,
};
use chrono_tz::Tz;
use serde_json::json;

use crate::error::DevgwError;
use crate::runtime::{FunctionChannel, Outcome};
use crate::template::{ScheduleKind, ScheduleSpec};
use crate::{Shutdown, ACCOUNT_ID, REGION};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Rate(Duration),
    Cron(Box<Cron>),
    /// One time (ScheduleV2), in the schedule's time zone.
    At(NaiveDateTime),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum DaySpec {
    Any,
    Set(Vec<bool>),
    Last,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    day_of_month: DaySpec,
    months: Vec<bool>,
    /// Index 1 = Sunday ... 7 = Saturday.
    day_of_week: DaySpec,
    years: Vec<bool>,
}

const MIN_YEAR: u32 = 1970;
const MAX_YEAR: u32 = 2199;
const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

fn err(expression: &str, message: impl Into<String>) -> DevgwError {
    DevgwError::Schedule {
        expression: expression.to_string(),
        message: message.into(),
    }
}

/// Parse `rate(5 minutes)`, `cron(0 9 ? * FRI *)` or `at(2026-01-01T00:00:00)`.
pub fn parse(expression: &str) -> Result<Expr, DevgwError> {
    let e = expression.trim();
    let inner = |prefix: &str| {
        e.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(')'))
            .map(str::trim)
    };
    if let Some(r) = inner("rate(") {
        let (n, unit) = r
            .split_once(char::is_whitespace)
            .ok_or_else(|| err(e, "expected rate(N unit)"))?;
        let n: u64 = n
            .parse()
            .map_err(|_| err(e, "the rate is not a positive integer"))?;
        if n == 0 {
            return Err(err(e, "the rate must be positive"));
        }
        let unit_secs = match unit.trim() {
            "minute" | "minutes" => 60,
            "hour" | "hours" => 3600,
            "day" | "days" => 86_400,
            other => return Err(err(e, format!("unknown unit {other:?}"))),
        };
        return Ok(Expr::Rate(Duration::from_secs(n * unit_secs)));
    }
    if let Some(r) = inner("cron(") {
        return Ok(Expr::Cron(Box::new(parse_cron(e, r)?)));
    }
    if let Some(r) = inner("at(") {
        let t = NaiveDateTime::parse_from_str(r, "%Y-%m-%dT%H:%M:%S")
            .map_err(|x| err(e, format!("at(): {x}")))?;
        return Ok(Expr::At(t));
    }
    Err(err(e, "expected rate(...), cron(...) or at(...)"))
}

fn parse_cron(e: &str, body: &str) -> Result<Cron, DevgwError> {
    let fields: Vec<&str> = body.split_whitespace().collect();
    let [min, hour, dom, month, dow, year] = fields.as_slice() else {
        return Err(err(
            e,
            "cron needs six fields: minutes hours day-of-month month day-of-week year",
        ));
    };
    let day_field = |f: &str, lo: u32, hi: u32, names: &[&str], allow_last: bool| match f {
        "?" | "*" => Ok(DaySpec::Any),
        "L" if allow_last => Ok(DaySpec::Last),
        _ => field(e, f, lo, hi, names).map(DaySpec::Set),
    };
    let c = Cron {
        minutes: field(e, min, 0, 59, &[])?,
        hours: field(e, hour, 0, 23, &[])?,
        day_of_month: day_field(dom, 1, 31, &[], true)?,
        months: field(e, month, 1, 12, &MONTHS)?,
        day_of_week: day_field(dow, 1, 7, &WEEKDAYS, false)?,
        years: field(e, year, MIN_YEAR, MAX_YEAR, &[])?,
    };
    Ok(c)
}

/// A field as a membership vector indexed by value (`lo..=hi`).
fn field(e: &str, f: &str, lo: u32, hi: u32, names: &[&str]) -> Result<Vec<bool>, DevgwError> {
    let mut set = vec![false; hi as usize + 1];
    let value = |s: &str| -> Result<u32, DevgwError> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            // names start at lo (JAN = 1, SUN = 1)
            return Ok(lo + u32::try_from(i).unwrap_or(0));
        }
        let v: u32 = s.parse().map_err(|_| {
            err(
                e,
                format!("{s:?} is not supported here (supported: numbers, names, * ? , - / and L in day-of-month)"),
            )
        })?;
        if v < lo || v > hi {
            return Err(err(e, format!("{v} is out of range {lo}-{hi}")));
        }
        Ok(v)
    };
    for part in f.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| err(e, format!("bad step in {part:?}")))?,
            ),
            None => (part, 1),
        };
        let (a, b) = match range {
            "*" | "?" => (lo, hi),
            r => match r.split_once('-') {
                Some((a, b)) => (value(a)?, value(b)?),
                // `5/10` means from 5 to the end in steps of 10.
                None if step > 1 => (value(r)?, hi),
                None => {
                    let v = value(r)?;
                    (v, v)
                }
            },
        };
        if a > b {
            return Err(err(e, format!("empty range {part:?}")));
        }
        let mut v = a;
        while v <= b {
            set[v as usize] = true;
            v += step;
        }
    }
    Ok(set)
}

fn is_set(v: &[bool], i: u32) -> bool {
    v.get(i as usize).copied().unwrap_or(false)
}

impl Cron {
    fn day_matches(&self, d: NaiveDate) -> bool {
        let dom_ok = |s: &DaySpec| match s {
            DaySpec::Any => true,
            DaySpec::Set(v) => is_set(v, d.day()),
            DaySpec::Last => d
                .checked_add_days(Days::new(1))
                .is_none_or(|n| n.month() != d.month()),
        };
        let dow_ok = |s: &DaySpec| match s {
            DaySpec::Set(v) => is_set(v, d.weekday().num_days_from_sunday() + 1),
            _ => true,
        };
        dom_ok(&self.day_of_month) && dow_ok(&self.day_of_week)
    }

    /// The first time strictly after `after` that matches, in time zone `tz`.
    pub fn next_after(&self, after: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        let start = after.with_timezone(&tz).date_naive();
        for offset in 0..(366 * 5) {
            let date = start.checked_add_days(Days::new(offset))?;
            let year_ok = u32::try_from(date.year()).is_ok_and(|y| is_set(&self.years, y));
            if !year_ok || !is_set(&self.months, date.month()) || !self.day_matches(date) {
                continue;
            }
            for h in 0..24 {
                if !is_set(&self.hours, h) {
                    continue;
                }
                for m in 0..60 {
                    if !is_set(&self.minutes, m) {
                        continue;
                    }
                    let Some(naive) = date.and_hms_opt(h, m, 0) else {
                        continue;
                    };
                    // A local time skipped by a DST change does not fire.
                    let Some(local) = tz.from_local_datetime(&naive).earliest() else {
                        continue;
                    };
                    let utc = local.with_timezone(&Utc);
                    if utc > after {
                        return Some(utc);
                    }
                }
            }
        }
        None
    }
}

pub fn parse_timezone(spec: &ScheduleSpec) -> Result<Tz, DevgwError> {
    match &spec.timezone {
        None => Ok(Tz::UTC),
        Some(name) => name
            .parse::<Tz>()
            .map_err(|_| err(&spec.expression, format!("unknown time zone {name:?}"))),
    }
}

/// The ARN of the rule or schedule that fires this event.
pub fn resource_arn(spec: &ScheduleSpec, function_logical_id: &str) -> String {
    let name = spec
        .rule_name
        .clone()
        .unwrap_or_else(|| format!("{function_logical_id}{}", spec.event));
    match spec.kind {
        ScheduleKind::Rule => format!("arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{name}"),
        ScheduleKind::Scheduler => {
            format!("arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/default/{name}")
        }
    }
}

/// The payload delivered at `time`: the schedule's `Input` if it has one, else EventBridge's
/// "Scheduled Event".
pub fn scheduled_event(
    spec: &ScheduleSpec,
    function_logical_id: &str,
    time: DateTime<Utc>,
) -> Result<Bytes, DevgwError> {
    if let Some(input) = &spec.input {
        return Ok(Bytes::from(input.clone()));
    }
    let source = match spec.kind {
        ScheduleKind::Rule => "aws.events",
        ScheduleKind::Scheduler => "aws.scheduler",
    };
    let event = EventBridgeEvent {
        version: Some("0".into()),
        id: Some(uuid::Uuid::new_v4().to_string()),
        detail_type: "Scheduled Event".into(),
        source: source.into(),
        account: Some(ACCOUNT_ID.into()),
        // Whole seconds, as EventBridge sends it.
        time: Some(time.with_nanosecond(0).unwrap_or(time)),
        region: Some(REGION.into()),
        resources: Some(vec![resource_arn(spec, function_logical_id)]),
        detail: json!({}),
    };
    serde_json::to_vec(&event)
        .map(Bytes::from)
        .map_err(|e| err(&spec.expression, format!("scheduled event: {e}")))
}

/// Parse a `time` override: RFC 3339, `YYYY-MM-DDTHH:MM:SS` (UTC) or `YYYY-MM-DD` (midnight UTC).
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, DevgwError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Ok(t.and_utc());
    }
    if let Some(t) = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc());
    }
    Err(DevgwError::Usage(format!(
        "time {s:?}: expected RFC 3339 (2026-03-06T09:00:00Z) or a date (2026-03-06)"
    )))
}

/// Fire one schedule now (or as of `time`) and wait for the function.
pub async fn fire(
    chan: &FunctionChannel,
    spec: &ScheduleSpec,
    function_logical_id: &str,
    time: DateTime<Utc>,
) -> Result<Outcome, DevgwError> {
    let payload = scheduled_event(spec, function_logical_id, time)?;
    let outcome = chan.invoke(payload).await?;
    match &outcome {
        Outcome::Response(_) => tracing::info!(
            function = %chan.name, schedule = %spec.event, time = %time.to_rfc3339_opts(SecondsFormat::Secs, true),
            "scheduled event delivered"
        ),
        Outcome::Error { error_type, .. } => tracing::warn!(
            function = %chan.name, schedule = %spec.event, error_type = %error_type,
            "scheduled invocation failed (not retried locally)"
        ),
    }
    Ok(outcome)
}

async fn sleep_until(t: DateTime<Utc>, shutdown: &mut Shutdown) -> bool {
    let wait = (t - Utc::now()).to_std().unwrap_or(Duration::ZERO);
    tokio::select! {
        _ = tokio::time::sleep(wait) => true,
        _ = shutdown.wait() => false,
    }
}

/// Fire the schedule by its expression until shutdown.
pub async fn run(
    chan: Arc<FunctionChannel>,
    spec: ScheduleSpec,
    function_logical_id: String,
    mut shutdown: Shutdown,
) -> Result<(), DevgwError> {
    let expr = parse(&spec.expression)?;
    let tz = parse_timezone(&spec)?;
    match expr {
        Expr::Rate(every) => {
            let every = chrono::Duration::from_std(every)
                .map_err(|e| err(&spec.expression, e.to_string()))?;
            let mut next = Utc::now() + every;
            while sleep_until(next, &mut shutdown).await {
                let _ = fire(
                    &chan,
                    &spec,
                    &function_logical_id,
                    next.with_nanosecond(0).unwrap_or(next),
                )
                .await;
                next += every;
                let now = Utc::now();
                if next < now {
                    // The function took longer than the rate: skip the missed ticks.
                    next = now + every;
                }
            }
        }
        Expr::Cron(cron) => loop {
            let Some(next) = cron.next_after(Utc::now(), tz) else {
                tracing::info!(function = %chan.name, schedule = %spec.event, "no future time matches; not firing");
                break;
            };
            tracing::debug!(function = %chan.name, schedule = %spec.event, next = %next, "next scheduled run");
            if !sleep_until(next, &mut shutdown).await {
                break;
            }
            let _ = fire(&chan, &spec, &function_logical_id, next).await;
        },
        Expr::At(local) => {
            let Some(t) = tz.from_local_datetime(&local).earliest() else {
                return Ok(());
            };
            let t = t.with_timezone(&Utc);
            if t > Utc::now() && sleep_until(t, &mut shutdown).await {
                let _ = fire(&chan, &spec, &function_logical_id, t).await;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        parse_time(s).expect("valid time")
    }

    fn cron(body: &str) -> Cron {
        match parse(&format!("cron({body})")).expect("valid cron") {
            Expr::Cron(c) => *c,
            other => panic!("not a cron: {other:?}"),
        }
    }

    #[test]
    fn rates() {
        assert_eq!(
            parse("rate(1 minute)").ok(),
            Some(Expr::Rate(Duration::from_secs(60)))
        );
        assert_eq!(
            parse("rate(5 minutes)").ok(),
            Some(Expr::Rate(Duration::from_secs(300)))
        );
        assert_eq!(
            parse("rate(2 hours)").ok(),
            Some(Expr::Rate(Duration::from_secs(7200)))
        );
        assert_eq!(
            parse("rate(1 day)").ok(),
            Some(Expr::Rate(Duration::from_secs(86_400)))
        );
        assert!(parse("rate(0 minutes)").is_err());
        assert!(parse("rate(5 weeks)").is_err());
        assert!(parse("every 5 minutes").is_err());
    }

    #[test]
    fn weekly_cron_on_friday() {
        // 09:00 UTC every Friday
        let c = cron("0 9 ? * FRI *");
        // 2026-03-04 is a Wednesday
        assert_eq!(
            c.next_after(utc("2026-03-04T12:00:00Z"), Tz::UTC),
            Some(utc("2026-03-06T09:00:00Z"))
        );
        assert_eq!(
            c.next_after(utc("2026-03-06T09:00:00Z"), Tz::UTC),
            Some(utc("2026-03-13T09:00:00Z"))
        );
        // numeric weekday: 6 = Friday
        assert_eq!(cron("0 9 ? * 6 *"), c);
    }

    #[test]
    fn cron_lists_ranges_steps_and_last_day() {
        let c = cron("0/15 8-10 ? * MON-FRI *");
        assert_eq!(
            c.next_after(utc("2026-03-06T10:50:00Z"), Tz::UTC),
            Some(utc("2026-03-09T08:00:00Z"))
        );
        assert_eq!(
            c.next_after(utc("2026-03-06T08:01:00Z"), Tz::UTC),
            Some(utc("2026-03-06T08:15:00Z"))
        );
        let last = cron("0 0 L * ? *");
        assert_eq!(
            last.next_after(utc("2026-02-10T00:00:00Z"), Tz::UTC),
            Some(utc("2026-02-28T00:00:00Z"))
        );
        let monthly = cron("30 6 1,15 JAN,JUL ? 2027");
        assert_eq!(
            monthly.next_after(utc("2026-03-06T00:00:00Z"), Tz::UTC),
            Some(utc("2027-01-01T06:30:00Z"))
        );
    }

    #[test]
    fn cron_in_a_time_zone() {
        let c = cron("0 9 ? * FRI *");
        let paris: Tz = "Europe/Paris".parse().expect("tz");
        // 09:00 in Paris (UTC+1 in March before DST) is 08:00 UTC
        assert_eq!(
            c.next_after(utc("2026-03-04T00:00:00Z"), paris),
            Some(utc("2026-03-06T08:00:00Z"))
        );
    }

    #[test]
    fn unsupported_cron_is_refused() {
        assert!(parse("cron(0 9 ? * 6#3 *)").is_err());
        assert!(parse("cron(0 9 15W * ? *)").is_err());
        assert!(parse("cron(0 9 * *)").is_err());
        assert!(parse("cron(61 9 ? * * *)").is_err());
    }

    #[test]
    fn scheduled_event_shape() {
        let spec = ScheduleSpec {
            event: "Weekly".into(),
            kind: ScheduleKind::Rule,
            expression: "cron(0 9 ? * FRI *)".into(),
            timezone: None,
            input: None,
            enabled: true,
            rule_name: None,
        };
        let ev: serde_json::Value = serde_json::from_slice(
            &scheduled_event(&spec, "PayoutFunction", utc("2026-03-06T09:00:00Z")).expect("event"),
        )
        .expect("json");
        assert_eq!(ev["version"], "0");
        assert_eq!(ev["detail-type"], "Scheduled Event");
        assert_eq!(ev["source"], "aws.events");
        assert_eq!(ev["account"], ACCOUNT_ID);
        assert_eq!(ev["region"], REGION);
        assert_eq!(ev["time"], "2026-03-06T09:00:00Z");
        assert_eq!(
            ev["resources"][0],
            "arn:aws:events:us-east-1:123456789012:rule/PayoutFunctionWeekly"
        );
        assert_eq!(ev["detail"], json!({}));
        assert!(ev["id"].as_str().is_some_and(|s| s.len() == 36));

        let with_input = ScheduleSpec {
            input: Some("{\"job\":\"payouts\"}".into()),
            ..spec
        };
        assert_eq!(
            scheduled_event(&with_input, "PayoutFunction", Utc::now()).expect("event"),
            Bytes::from("{\"job\":\"payouts\"}")
        );
    }

    #[test]
    fn scheduled_event_reads_back_with_whole_seconds() {
        let spec = ScheduleSpec {
            event: "Nightly".into(),
            kind: ScheduleKind::Scheduler,
            expression: "rate(1 day)".into(),
            timezone: None,
            input: None,
            enabled: true,
            rule_name: Some("nightly".into()),
        };
        let time = utc("2026-03-06T09:00:00Z") + chrono::Duration::milliseconds(750);
        let payload = scheduled_event(&spec, "SweepFunction", time).expect("event");
        let ev: EventBridgeEvent = serde_json::from_slice(&payload).expect("an EventBridge event");
        assert_eq!(ev.detail_type, "Scheduled Event");
        assert_eq!(ev.source, "aws.scheduler");
        assert_eq!(ev.time, Some(utc("2026-03-06T09:00:00Z")));
        assert_eq!(
            ev.resources,
            Some(vec![
                "arn:aws:scheduler:us-east-1:123456789012:schedule/default/nightly".to_string()
            ])
        );
        let raw: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        assert_eq!(raw["time"], "2026-03-06T09:00:00Z");
    }

    #[test]
    fn time_overrides() {
        assert_eq!(utc("2026-03-06"), utc("2026-03-06T00:00:00Z"));
        assert_eq!(utc("2026-03-06T09:00:00"), utc("2026-03-06T09:00:00Z"));
        assert_eq!(
            utc("2026-03-06T10:00:00+01:00"),
            utc("2026-03-06T09:00:00Z")
        );
        assert!(parse_time("friday").is_err());
    }
}
