//! The contract and the code agree: docs/openapi.yaml documents every route the router serves,
//! with its method and exactly the statuses it can answer (each problem type under its status),
//! nothing the router does not serve; template.yaml routes the same operations to the function.

use std::collections::{BTreeMap, BTreeSet};

use api::problem::{ProblemKind, Scope, PROBLEM_JSON};
use api::Route;
use serde_yaml::Value;

fn load(rel: &str) -> Value {
    let path = format!("{}/../../{rel}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Follow a local `$ref` (`#/components/...`).
fn deref<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let mut cur = doc;
            for part in r.trim_start_matches("#/").split('/') {
                cur = cur.get(part).unwrap_or_else(|| panic!("dangling $ref {r}"));
            }
            deref(doc, cur)
        }
        None => v,
    }
}

/// The problem `type`s a response documents as examples.
fn problem_types(doc: &Value, response: &Value) -> BTreeSet<String> {
    let response = deref(doc, response);
    let Some(media) = response.get("content").and_then(|c| c.get(PROBLEM_JSON)) else {
        return BTreeSet::new();
    };
    let schema = media
        .get("schema")
        .and_then(|s| s.get("$ref"))
        .and_then(Value::as_str);
    assert_eq!(
        schema,
        Some("#/components/schemas/Problem"),
        "problem responses use the Problem schema"
    );
    media
        .get("examples")
        .and_then(Value::as_mapping)
        .map(|m| {
            m.values()
                .filter_map(|ex| ex.get("value")?.get("type")?.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_route_is_documented_with_its_method_and_statuses() {
    let doc = load("docs/openapi.yaml");
    assert!(doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1")));
    let paths = doc["paths"].as_mapping().expect("paths");
    for route in Route::ALL {
        let method = route.method().as_str().to_ascii_lowercase();
        let op = paths
            .get(route.path())
            .and_then(|p| p.get(method.as_str()))
            .unwrap_or_else(|| panic!("{} is not documented", route.route_key()));
        let responses = op["responses"].as_mapping().expect("responses");
        let documented: BTreeSet<u16> = responses
            .keys()
            .map(|k| {
                k.as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("status key {k:?}"))
            })
            .collect();
        assert_eq!(
            documented,
            route.statuses(),
            "{}: documented statuses",
            route.route_key()
        );

        for ok in route.success_statuses() {
            let r = deref(&doc, &responses[ok.to_string().as_str()]);
            assert!(
                r["content"]["application/json"]["schema"]
                    .get("$ref")
                    .is_some(),
                "{} {ok}: JSON schema",
                route.route_key()
            );
        }
        // each problem kind is an example under its status
        let mut by_status: BTreeMap<u16, BTreeSet<String>> = BTreeMap::new();
        for k in route.problems() {
            by_status
                .entry(k.status())
                .or_default()
                .insert(k.type_uri());
        }
        for (status, want) in by_status {
            let have = problem_types(&doc, &responses[status.to_string().as_str()]);
            assert_eq!(have, want, "{} {status}: problem types", route.route_key());
        }
        if route.scopes().contains(&Scope::TrackingKeyAuth) {
            let schemes: BTreeSet<&str> = op["security"]
                .as_sequence()
                .expect("security")
                .iter()
                .filter_map(|s| s.as_mapping()?.keys().next()?.as_str())
                .collect();
            assert_eq!(
                schemes,
                BTreeSet::from(["trackingKeyBearer", "trackingKeyHeader"])
            );
            let r401 = deref(&doc, &responses["401"]);
            assert!(r401["headers"].get("WWW-Authenticate").is_some());
        }
        if route.scopes().contains(&Scope::Server) {
            assert!(deref(&doc, &responses["503"])["headers"]
                .get("Retry-After")
                .is_some());
        }
        if route.scopes().contains(&Scope::JsonBody) {
            assert!(op["requestBody"]["content"]
                .get("application/json")
                .is_some());
        }
    }
    // nothing documented that the router does not serve
    let served: BTreeSet<(String, String)> = Route::ALL
        .iter()
        .map(|r| {
            (
                r.path().to_string(),
                r.method().as_str().to_ascii_lowercase(),
            )
        })
        .collect();
    let template = load("template.yaml");
    for (path, item) in paths {
        for (method, op) in item.as_mapping().expect("path item") {
            let key = (
                path.as_str().unwrap_or_default().to_string(),
                method.as_str().unwrap_or_default().to_string(),
            );
            // Served by another function of the template: routed there.
            if let Some(function) = op.get("x-function").and_then(Value::as_str) {
                let events = template["Resources"][function]["Properties"]["Events"]
                    .as_mapping()
                    .unwrap_or_else(|| panic!("{function} has no events in template.yaml"));
                let routed = events.values().any(|e| {
                    e["Type"].as_str() == Some("HttpApi")
                        && e["Properties"]["Path"].as_str() == Some(key.0.as_str())
                        && e["Properties"]["Method"]
                            .as_str()
                            .is_some_and(|m| m.eq_ignore_ascii_case(&key.1))
                });
                assert!(routed, "{key:?}: {function} has no such HttpApi event");
                continue;
            }
            if [
                "get", "put", "post", "delete", "options", "head", "patch", "trace",
            ]
            .contains(&key.1.as_str())
            {
                assert!(
                    served.contains(&key),
                    "{key:?} is documented but not served"
                );
            }
        }
    }
}

#[test]
fn router_problems_and_problem_types_are_documented() {
    let doc = load("docs/openapi.yaml");
    let responses = &doc["components"]["responses"];
    for (name, kind) in [
        ("RouteNotFound", ProblemKind::RouteNotFound),
        ("MethodNotAllowed", ProblemKind::MethodNotAllowed),
    ] {
        assert_eq!(
            problem_types(&doc, &responses[name]),
            BTreeSet::from([kind.type_uri()]),
            "{name}"
        );
    }
    assert!(responses["MethodNotAllowed"]["headers"]
        .get("Allow")
        .is_some());
    let listed: BTreeSet<String> = doc["components"]["schemas"]["ProblemType"]["enum"]
        .as_sequence()
        .expect("ProblemType enum")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let all: BTreeSet<String> = ProblemKind::ALL.iter().map(|k| k.type_uri()).collect();
    assert_eq!(listed, all, "ProblemType lists every problem type");
    // the examples show each kind's real status and title
    let text = serde_yaml::to_string(&doc).expect("yaml");
    for k in ProblemKind::ALL {
        assert!(text.contains(&k.type_uri()), "{k:?}");
    }
    fn walk(v: &Value, out: &mut Vec<(String, u64, String)>) {
        match v {
            Value::Mapping(m) => {
                if let (Some(t), Some(s), Some(title)) = (
                    m.get("type").and_then(Value::as_str),
                    m.get("status").and_then(Value::as_u64),
                    m.get("title").and_then(Value::as_str),
                ) {
                    out.push((t.to_string(), s, title.to_string()));
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Sequence(s) => s.iter().for_each(|v| walk(v, out)),
            Value::Tagged(t) => walk(&t.value, out),
            _ => {}
        }
    }
    let mut examples = vec![];
    walk(&doc, &mut examples);
    for (t, status, title) in examples {
        let kind = ProblemKind::ALL
            .iter()
            .find(|k| k.type_uri() == t)
            .unwrap_or_else(|| panic!("unknown type {t}"));
        assert_eq!(
            (status, title.as_str()),
            (u64::from(kind.status()), kind.title()),
            "{t}"
        );
    }
}

#[test]
fn the_template_routes_every_operation_to_the_function() {
    let doc = load("template.yaml");
    let f = &doc["Resources"]["ApiFunction"];
    assert_eq!(f["Type"].as_str(), Some("AWS::Serverless::Function"));
    assert_eq!(
        f["Metadata"]["BuildProperties"]["Binary"].as_str(),
        Some("api")
    );
    let events: BTreeSet<(String, String)> = f["Properties"]["Events"]
        .as_mapping()
        .expect("events")
        .values()
        .filter(|e| e["Type"].as_str() == Some("HttpApi"))
        .map(|e| {
            (
                e["Properties"]["Method"]
                    .as_str()
                    .unwrap_or_default()
                    .to_ascii_uppercase(),
                e["Properties"]["Path"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let routes: BTreeSet<(String, String)> = Route::ALL
        .iter()
        .map(|r| (r.method().to_string(), r.path().to_string()))
        .collect();
    assert_eq!(events, routes);
}
