//! Fixtures of the API function's tests: sample events of `events/api/`, a seeded moto world
//! behind the real engine, answers picked apart.

use api::{Deps, EngineTracker};
use engine::Engine;
use lambda_http::{Body, Request, Response};
use rules::Program;
use serde_json::{json, Value};
use storage::customers::{self, BindingRow};
use storage::links::LinkStatus;
use storage::programs;
use storage::Table;
use tracking::KeyRing;

use crate::{catalogue, events, moto};

/// The deployment's click-id key in tests (the sample events' click id is signed with it).
pub const KEY: &str = "api-test-tracking-key-0123456789abcdef-0123";
/// `requestContext.timeEpoch` of the sample events: 2026-01-01T12:00:00Z.
pub const T0: i64 = 1_767_268_800_000;
pub const DAY: i64 = 86_400_000;
/// The demo program's tracking key (as in infra/dev/demo.yaml).
pub const DEMO_KEY: &str = "local-tracking-key";
/// The tracking key of program `rival`.
pub const OTHER_KEY: &str = "other-program-tracking-key";

pub fn keys() -> KeyRing {
    KeyRing::from_secrets(KEY, None).expect("key")
}

/// A sample event from `events/api/`.
pub fn event(name: &str) -> Value {
    events::sample(&format!("api/{name}"))
}

/// The request lambda_http builds from an event.
pub fn request(ev: &Value) -> Request {
    events::http_request(ev)
}

/// The sample event with this body (serialised) and tracking key (`None`: no credential).
pub fn lead(body: &Value, key: Option<&str>) -> Value {
    lead_raw(&body.to_string(), key)
}

pub fn lead_raw(body: &str, key: Option<&str>) -> Value {
    let mut ev = event("track-lead-click.json");
    ev["body"] = body.into();
    let headers = ev["headers"].as_object_mut().expect("headers");
    headers.remove("authorization");
    headers.insert("content-length".into(), body.len().to_string().into());
    if let Some(k) = key {
        headers.insert("authorization".into(), format!("Bearer {k}").into());
    }
    ev
}

pub fn with_header(mut ev: Value, name: &str, value: Option<&str>) -> Value {
    let headers = ev["headers"].as_object_mut().expect("headers");
    match value {
        Some(v) => headers.insert(name.into(), v.into()),
        None => headers.remove(name),
    };
    ev
}

pub fn with_method_path(mut ev: Value, method: &str, path: &str) -> Value {
    ev["requestContext"]["http"]["method"] = method.into();
    ev["requestContext"]["http"]["path"] = path.into();
    ev["rawPath"] = path.into();
    ev["routeKey"] = "$default".into();
    ev["requestContext"]["routeKey"] = "$default".into();
    ev
}

pub fn at(mut ev: Value, at_ms: i64) -> Value {
    ev["requestContext"]["timeEpoch"] = at_ms.into();
    ev
}

/// An answer, picked apart.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub headers: lambda_http::http::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn from_response(r: Response<Body>) -> Answer {
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let body = serde_json::from_slice(r.body().as_ref()).unwrap_or(Value::Null);
        Answer {
            status: r.status().as_u16(),
            content_type,
            headers: r.headers().clone(),
            body,
        }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem's slug, after checking it is a well-formed problem of this status.
    pub fn problem(&self) -> String {
        assert_eq!(self.content_type, "application/problem+json", "{self:?}");
        assert_eq!(self.body["status"], json!(self.status), "{self:?}");
        assert!(
            self.body["title"].as_str().is_some_and(|t| !t.is_empty()),
            "{self:?}"
        );
        assert!(self.body["detail"].as_str().is_some(), "{self:?}");
        let t = self.body["type"].as_str().expect("type");
        t.strip_prefix(api::problem::TYPE_BASE)
            .unwrap_or_else(|| panic!("type {t}"))
            .to_string()
    }
}

pub async fn call<T: api::LeadTracker>(deps: &Deps<T>, ev: &Value) -> Answer {
    let resp = api::handle(deps, request(ev))
        .await
        .expect("handler never fails");
    Answer::from_response(resp)
}

pub fn program(id: &str) -> Program {
    catalogue::program(json!({
        "id": id, "name": id,
        "plan": {"reward": {"type": "percentage", "rate": "0.25"}},
        "default_destination": "https://example.com/pricing",
        "allowed_hosts": ["example.com"]
    }))
}

/// A moto table with program `demo` (key [`DEMO_KEY`]; partners alice, bob, carol with links of
/// the same code) and program `rival` (key [`OTHER_KEY`]; partner dave, link `dave`).
pub struct World {
    pub deps: Deps<EngineTracker>,
}

impl World {
    pub async fn new() -> World {
        Self::with_programs(program("demo"), program("rival")).await
    }

    pub async fn with_programs(demo: Program, rival: Program) -> World {
        let table = moto::fresh_table().await.expect("table");
        let w = World {
            deps: Deps {
                tracker: EngineTracker::new(Engine::new(table, keys())),
            },
        };
        w.seed(&demo, DEMO_KEY, &["alice", "bob", "carol"]).await;
        w.seed(&rival, OTHER_KEY, &["dave"]).await;
        w
    }

    pub fn t(&self) -> &Table {
        &self.deps.tracker.engine.table
    }

    async fn seed(&self, p: &Program, key: &str, partners: &[&str]) {
        let t = self.t();
        catalogue::put_program(t, p).await;
        t.put(programs::tracking_key_item(&p.id, &programs::key_hash(key)))
            .await
            .expect("put");
        for id in partners {
            catalogue::put_member(t, id, &p.id, None, id).await;
        }
    }

    pub async fn link(&self, code: &str, partner: &str, program: &str, status: LinkStatus) {
        catalogue::put_link(self.t(), &catalogue::link(code, partner, program, status)).await;
    }

    /// A counted click by `visitor` on link `code` at `at_ms`; returns the click id.
    pub async fn click(&self, code: &str, visitor: &str, at_ms: i64) -> String {
        catalogue::click(self.t(), &keys(), code, visitor, at_ms, [7, 8, 9]).await
    }

    pub async fn binding(&self, program: &str, customer: &str) -> Option<BindingRow> {
        customers::get_binding(self.t(), program, customer)
            .await
            .expect("get binding")
    }

    pub async fn history_len(&self, program: &str, customer: &str) -> usize {
        customers::binding_history(self.t(), program, customer)
            .await
            .expect("history")
            .len()
    }

    pub async fn flags(&self, program: &str) -> Vec<customers::FlagRow> {
        customers::flags(self.t(), program).await.expect("flags")
    }

    pub async fn call(&self, ev: &Value) -> Answer {
        call(&self.deps, ev).await
    }
}
