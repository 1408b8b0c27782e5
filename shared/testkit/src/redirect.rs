//! Fixtures of the redirect function's tests: sample events of `events/redirect/`, a seeded
//! moto table, a technical clock, response readers.

use std::sync::Arc;
use std::time::Duration;

use lambda_http::http::header::{LOCATION, SET_COOKIE};
use lambda_http::{Body, Request, Response};
use redirect::{Config, Deps, TableDeps};
use serde_json::Value;
use storage::links::{self, Link, LinkStatus};
use storage::{Clock, ManualClock, SharedClock, Table};
use tracking::KeyRing;

use crate::{catalogue, events, moto};

pub const KEY: &str = "test-tracking-key-0123456789abcdef-0123";
/// `requestContext.timeEpoch` of the sample events: 2026-01-01T12:00:00Z.
pub const T0: i64 = 1_767_268_800_000;
pub const DAY: &str = "2026-01-01";
pub const MINUTE: i64 = 60_000;
pub const DEFAULT_DEST: &str = "https://shop.example.com/";
pub const FALLBACK: &str = "https://example.com/partners/link-not-found";

/// Technical clock for tests: `now_ms` only moves when told to, `sleep` really waits (so the
/// bounded wait on the click write behaves as in production).
#[derive(Clone)]
pub struct TestClock(pub ManualClock);

#[async_trait::async_trait]
impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.now_ms()
    }
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await
    }
}

pub fn keys() -> KeyRing {
    KeyRing::from_secrets(KEY, None).unwrap()
}

pub fn config() -> Config {
    Config {
        fallback_url: Some(FALLBACK.into()),
        cookie_domain: Some(".example.com".into()),
        ..Config::default()
    }
}

/// A sample event from `events/redirect/`.
pub fn event(name: &str) -> Value {
    events::sample(&format!("redirect/{name}"))
}

/// The request lambda_http builds from an event.
pub fn request(ev: &Value) -> Request {
    events::http_request(ev)
}

pub fn at(mut ev: Value, at_ms: i64) -> Value {
    ev["requestContext"]["timeEpoch"] = at_ms.into();
    ev
}

pub fn with_ip(mut ev: Value, ip: &str) -> Value {
    ev["requestContext"]["http"]["sourceIp"] = ip.into();
    ev["headers"]["x-forwarded-for"] = ip.into();
    ev
}

pub fn with_cookies(mut ev: Value, cookies: &[String]) -> Value {
    ev["cookies"] = cookies.to_vec().into();
    ev
}

/// The event with `rawQueryString` (and the decoded `queryStringParameters` API Gateway adds).
pub fn with_query(mut ev: Value, pairs: &[(&str, &str)]) -> Value {
    let raw = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    ev["rawQueryString"] = raw.into();
    let mut qsp = serde_json::Map::new();
    for (k, v) in pairs {
        qsp.insert(k.to_string(), Value::from(*v));
    }
    ev["queryStringParameters"] = Value::Object(qsp);
    ev
}

/// The event for `/r/{code}`.
pub fn for_code(mut ev: Value, code: &str) -> Value {
    ev["rawPath"] = format!("/r/{code}").into();
    ev["requestContext"]["http"]["path"] = format!("/r/{code}").into();
    ev["pathParameters"] = serde_json::json!({ "code": code });
    ev
}

pub fn program_json(id: &str, status: &str) -> rules::Program {
    catalogue::program(serde_json::json!({
        "id": id,
        "name": "Demo program",
        "plan": {
            "reward": { "type": "percentage", "rate": "0.25" },
            "duration": { "type": "lifetime" }
        },
        "cookie_days": 30,
        "default_destination": DEFAULT_DEST,
        "allowed_hosts": ["docs.example.com"],
        "status": status
    }))
}

pub fn link(code: &str, program: &str, status: LinkStatus) -> Link {
    catalogue::link(code, &format!("partner-{code}"), program, status)
}

/// A fresh table with program `demo` (active), program `paused` (paused), and links `alice`
/// (active), `off` (disabled), `sleepy` (on the paused program), `orphan` (no program).
pub async fn seeded_table() -> Table {
    let t = moto::fresh_table().await.unwrap();
    for p in [
        program_json("demo", "active"),
        program_json("paused", "paused"),
    ] {
        catalogue::put_program(&t, &p).await;
    }
    for l in [
        link("alice", "demo", LinkStatus::Active),
        link("off", "demo", LinkStatus::Disabled),
        link("sleepy", "paused", LinkStatus::Active),
        link("orphan", "nope", LinkStatus::Active),
    ] {
        catalogue::put_link(&t, &l).await;
    }
    t
}

pub fn test_clock() -> (ManualClock, SharedClock) {
    let manual = ManualClock::at(1_000_000);
    (manual.clone(), Arc::new(TestClock(manual)))
}

/// [`config`] with a long wait for the click write. moto on a loaded CI machine can take more
/// than production's 250 ms for a transaction, and a test that reads its click back must not
/// get an unrecorded one; the bounded wait itself is tested with doubles (`write_failures.rs`).
pub fn moto_config() -> Config {
    Config {
        write_timeout: Duration::from_secs(10),
        ..config()
    }
}

/// Production wiring over a seeded table.
pub async fn table_deps() -> (TableDeps, Table, ManualClock) {
    let t = seeded_table().await;
    let (manual, clock) = test_clock();
    (
        Deps::from_table(t.clone(), moto_config(), keys(), clock),
        t,
        manual,
    )
}

pub fn location(r: &Response<Body>) -> String {
    r.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

pub fn set_cookies(r: &Response<Body>) -> Vec<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect()
}

/// `name=value` of each Set-Cookie (what the browser sends back).
pub fn cookie_pairs(r: &Response<Body>) -> Vec<String> {
    set_cookies(r)
        .iter()
        .filter_map(|c| c.split(';').next().map(str::to_string))
        .collect()
}

pub fn cookie_value(r: &Response<Body>, name: &str) -> Option<String> {
    cookie_pairs(r)
        .iter()
        .find_map(|p| p.strip_prefix(&format!("{name}=")).map(str::to_string))
}

/// The `ref_click` query parameter of the Location.
pub fn click_param(r: &Response<Body>) -> Option<String> {
    let loc = location(r);
    let u = url::Url::parse(&loc).ok()?;
    let v: Vec<String> = u
        .query_pairs()
        .filter(|(k, _)| k == "ref_click")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert!(v.len() <= 1, "one ref_click at most: {loc}");
    v.into_iter().next()
}

pub async fn daily(t: &Table, code: &str) -> i64 {
    links::daily_clicks(t, code, DAY, DAY)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, n)| n)
        .sum()
}
