//! `POST /v1/track/lead` against moto: the sample events, every bad input, authentication,
//! self-referral and concurrent calls.

use serde_json::{json, Value};
use storage::links::LinkStatus;
use testkit::api::*;

const CLICK_EVENT_CUSTOMER: &str = "cus_QdT5Gm2kLx9aBc";
const CODE_EVENT_CUSTOMER: &str = "cus_QdT6Hn3mMy0bCd";

#[tokio::test]
async fn the_click_event_binds_and_a_repeat_is_idempotent() {
    let w = World::new().await;
    let ev = event("track-lead-click.json");
    let a = w.call(&ev).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(a.content_type, "application/json");
    assert_eq!(
        a.body,
        json!({"program_id": "demo", "partner_id": "alice", "customer_key": CLICK_EVENT_CUSTOMER, "status": "bound"})
    );
    let b = w
        .binding("demo", CLICK_EVENT_CUSTOMER)
        .await
        .expect("bound");
    assert_eq!(b.partner_id, "alice");
    assert_eq!(b.email.as_deref(), Some("dana@customer.example"));
    assert_eq!(
        b.bound_at_ms, T0,
        "business time is requestContext.timeEpoch"
    );
    assert_eq!(b.source_event, "api:YkR8sj2PIAMEb3Q=");

    let again = w.call(&ev).await;
    assert_eq!(again.status, 200, "{again:?}");
    assert_eq!(again.body["status"], "already_bound");
    assert_eq!(again.body["partner_id"], "alice");
    assert_eq!(w.history_len("demo", CLICK_EVENT_CUSTOMER).await, 1);
}

#[tokio::test]
async fn a_recorded_click_binds_by_its_id() {
    let w = World::new().await;
    let c = w.click("bob", "v1", T0 - DAY).await;
    let a = w
        .call(&lead(
            &json!({"click_id": c, "customer_key": "cus_1"}),
            Some(DEMO_KEY),
        ))
        .await;
    assert_eq!(
        (a.status, a.body["partner_id"].clone()),
        (201, json!("bob")),
        "{a:?}"
    );
    assert_eq!(
        w.binding("demo", "cus_1").await.expect("bound").partner_id,
        "bob"
    );
}

#[tokio::test]
async fn the_code_event_binds_and_a_repeat_is_idempotent() {
    let w = World::new().await;
    let ev = event("track-lead-code.json");
    let a = w.call(&ev).await;
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(
        a.body,
        json!({"program_id": "demo", "partner_id": "alice", "customer_key": CODE_EVENT_CUSTOMER, "status": "bound"})
    );
    let again = w.call(&ev).await;
    assert_eq!(
        (again.status, again.body["status"].clone()),
        (200, json!("already_bound"))
    );
    assert_eq!(w.history_len("demo", CODE_EVENT_CUSTOMER).await, 1);
}

#[tokio::test]
async fn the_bad_email_event_is_refused_and_writes_nothing() {
    let w = World::new().await;
    let a = w.call(&event("track-lead-bad-email.json")).await;
    assert_eq!(
        (a.status, a.problem()),
        (400, "malformed-email".to_string()),
        "{a:?}"
    );
    assert!(w.binding("demo", "cus_QdT7Jo4nNz1cDe").await.is_none());
}

#[tokio::test]
async fn bad_input_gets_the_right_problem_and_writes_nothing() {
    let w = World::new().await;
    w.link("retired", "alice", "demo", LinkStatus::Disabled)
        .await;
    let good_click = w.click("alice", "v1", T0 - DAY).await;
    let old_click = w.click("carol", "v2", T0 - 61 * DAY).await;
    let other_click = w.click("dave", "v3", T0 - DAY).await;
    let forged = format!("{}x", &good_click[..good_click.len() - 1]);
    // a genuine id of a link that does not exist (and no click item)
    let ghost = keys()
        .new_click_id("ghost", T0 - DAY, [1, 2, 3, 4, 5, 6])
        .expect("id");
    let big = json!({"code": "alice", "customer_key": "cus_1", "email": format!("{}@example.com", "a".repeat(17_000))});

    let json_ct = Some("application/json");
    #[rustfmt::skip]
    let cases: Vec<(&str, Value, Option<&str>, u16, &str)> = vec![
        ("not json", lead_raw(r#"{"code": "alice", "#, Some(DEMO_KEY)), json_ct, 400, "malformed-json"),
        ("empty body", lead_raw("", Some(DEMO_KEY)), json_ct, 400, "malformed-json"),
        ("not an object", lead(&json!(["alice"]), Some(DEMO_KEY)), json_ct, 400, "invalid-request"),
        ("unknown field", lead(&json!({"code": "alice", "customer_key": "cus_1", "coupon": "x"}), Some(DEMO_KEY)), json_ct, 400, "invalid-request"),
        ("wrong type", lead(&json!({"code": "alice", "customer_key": 17}), Some(DEMO_KEY)), json_ct, 400, "invalid-request"),
        ("both sources", lead(&json!({"code": "alice", "click_id": good_click, "customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 400, "exactly-one-source"),
        ("no source", lead(&json!({"customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 400, "exactly-one-source"),
        ("blank sources", lead(&json!({"code": " ", "click_id": "", "customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 400, "exactly-one-source"),
        ("no customer key", lead(&json!({"code": "alice"}), Some(DEMO_KEY)), json_ct, 400, "missing-customer-key"),
        ("blank customer key", lead(&json!({"code": "alice", "customer_key": "  "}), Some(DEMO_KEY)), json_ct, 400, "missing-customer-key"),
        ("customer key with #", lead(&json!({"code": "alice", "customer_key": "cus#1"}), Some(DEMO_KEY)), json_ct, 400, "missing-customer-key"),
        ("malformed email", lead(&json!({"code": "alice", "customer_key": "cus_1", "email": "nope"}), Some(DEMO_KEY)), json_ct, 400, "malformed-email"),
        ("forged click id", lead(&json!({"click_id": forged, "customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 400, "invalid-click-id"),
        ("garbage click id", lead(&json!({"click_id": "abc", "customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 400, "invalid-click-id"),
        ("click of no link", lead(&json!({"click_id": ghost, "customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 404, "unknown-click"),
        ("unknown code", lead(&json!({"code": "nobody", "customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 404, "unknown-code"),
        ("disabled code", lead(&json!({"code": "retired", "customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 404, "unknown-code"),
        ("expired click", lead(&json!({"click_id": old_click, "customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 422, "expired-click"),
        ("other program_id", lead(&json!({"code": "alice", "customer_key": "cus_1", "program_id": "rival"}), Some(DEMO_KEY)), json_ct, 403, "program-mismatch"),
        ("code of another program", lead(&json!({"code": "dave", "customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 403, "program-mismatch"),
        ("click of another program", lead(&json!({"click_id": other_click, "customer_key": "cus_1"}), Some(DEMO_KEY)), json_ct, 403, "program-mismatch"),
        ("key of another program", lead(&json!({"code": "alice", "customer_key": "cus_1"}), Some(OTHER_KEY)), json_ct, 403, "program-mismatch"),
        ("form body", lead_raw("code=alice&customer_key=cus_1", Some(DEMO_KEY)), Some("application/x-www-form-urlencoded"), 415, "unsupported-media-type"),
        ("no content type", lead(&json!({"code": "alice", "customer_key": "cus_1"}), Some(DEMO_KEY)), None, 415, "unsupported-media-type"),
        ("too large", lead(&big, Some(DEMO_KEY)), json_ct, 413, "payload-too-large"),
        ("no key", lead(&json!({"code": "alice", "customer_key": "cus_1"}), None), json_ct, 401, "missing-tracking-key"),
        ("wrong key", lead(&json!({"code": "alice", "customer_key": "cus_1"}), Some("not-the-key")), json_ct, 401, "unknown-tracking-key"),
        ("bad input and no key", lead_raw("{", None), json_ct, 401, "missing-tracking-key"),
    ];
    for (name, ev, ct, status, slug) in cases {
        let ev = with_header(ev, "content-type", ct);
        let a = w.call(&ev).await;
        assert_eq!(
            (a.status, a.problem()),
            (status, slug.to_string()),
            "{name}: {a:?}"
        );
        if status == 401 {
            let challenge = a.header("www-authenticate").unwrap_or_default();
            assert!(challenge.starts_with("Bearer "), "{name}: {challenge}");
        }
    }
    for customer in ["cus_1", "  ", "cus#1"] {
        for program in ["demo", "rival"] {
            assert!(
                w.binding(program, customer).await.is_none(),
                "{customer} in {program}"
            );
        }
    }
    assert!(w.flags("demo").await.is_empty());
    assert!(w.flags("rival").await.is_empty());
}

#[tokio::test]
async fn the_key_is_accepted_in_either_header_and_only_for_its_program() {
    let w = World::new().await;
    let body = json!({"code": "dave", "customer_key": "cus_o"});
    let via_header = with_header(lead(&body, None), "x-tracking-key", Some(OTHER_KEY));
    let a = w.call(&via_header).await;
    assert_eq!(
        (a.status, a.body["program_id"].clone()),
        (201, json!("rival")),
        "{a:?}"
    );
    let basic = with_header(
        lead(&body, None),
        "authorization",
        Some("Basic b3RoZXI6eA=="),
    );
    assert_eq!(w.call(&basic).await.status, 401);
    // the demo key cannot bind into the other program
    let a = w
        .call(&lead(
            &json!({"code": "dave", "customer_key": "cus_d"}),
            Some(DEMO_KEY),
        ))
        .await;
    assert_eq!(
        (a.status, a.problem()),
        (403, "program-mismatch".to_string())
    );
    assert!(
        !a.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("rival"),
        "the other program is not named"
    );
    assert!(w.binding("rival", "cus_d").await.is_none());
}

#[tokio::test]
async fn wrong_method_and_unknown_route() {
    let w = World::new().await;
    let base = lead(
        &json!({"code": "alice", "customer_key": "cus_1"}),
        Some(DEMO_KEY),
    );
    let a = w
        .call(&with_method_path(base.clone(), "GET", "/v1/track/lead"))
        .await;
    assert_eq!(
        (a.status, a.problem()),
        (405, "method-not-allowed".to_string())
    );
    assert_eq!(a.header("allow"), Some("POST"));
    let a = w
        .call(&with_method_path(base.clone(), "POST", "/v1/track/leads"))
        .await;
    assert_eq!(
        (a.status, a.problem()),
        (404, "route-not-found".to_string())
    );
    assert!(w.binding("demo", "cus_1").await.is_none());
    // a named stage's prefix is not part of the route
    let mut staged = with_method_path(base, "POST", "/prod/v1/track/lead");
    staged["requestContext"]["stage"] = "prod".into();
    assert_eq!(w.call(&staged).await.status, 201);
}

#[tokio::test]
async fn self_referral_is_refused_and_flagged() {
    let w = World::new().await;
    let ev = lead(
        &json!({"code": "alice", "customer_key": "cus_self", "email": "Alice+shop@Partners.Test"}),
        Some(DEMO_KEY),
    );
    let a = w.call(&ev).await;
    assert_eq!(
        (a.status, a.problem()),
        (422, "self-referral".to_string()),
        "{a:?}"
    );
    assert!(w.binding("demo", "cus_self").await.is_none());
    let flags = w.flags("demo").await;
    assert_eq!(flags.len(), 1);
    assert_eq!(
        (flags[0].partner_id.as_str(), flags[0].customer_key.as_str()),
        ("alice", "cus_self")
    );
    assert_eq!(flags[0].at_ms, T0);
    // a repeat is refused again and flags nothing new
    assert_eq!(w.call(&ev).await.status, 422);
    assert_eq!(w.flags("demo").await.len(), 1);
}

#[tokio::test]
async fn a_paused_program_binds_no_one() {
    let mut demo = program("demo");
    demo.status = rules::ProgramStatus::Paused;
    let w = World::with_programs(demo, program("rival")).await;
    let a = w
        .call(&lead(
            &json!({"code": "alice", "customer_key": "cus_1"}),
            Some(DEMO_KEY),
        ))
        .await;
    assert_eq!((a.status, a.problem()), (422, "program-paused".to_string()));
    assert!(w.binding("demo", "cus_1").await.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_lead_sent_twice_at_once_binds_once() {
    let w = World::new().await;
    let c = w.click("alice", "v1", T0 - DAY).await;
    let ev = lead(
        &json!({"click_id": c, "customer_key": "cus_twice"}),
        Some(DEMO_KEY),
    );
    let (w, a, b) = at_once(w, ev.clone(), ev).await;
    let mut statuses = [a.status, b.status];
    statuses.sort();
    assert_eq!(statuses, [200, 201], "{a:?} {b:?}");
    assert_eq!(a.body["partner_id"], "alice");
    assert_eq!(b.body["partner_id"], "alice");
    let binding = w.binding("demo", "cus_twice").await.expect("bound");
    assert_eq!((binding.partner_id.as_str(), binding.version), ("alice", 1));
    assert_eq!(w.history_len("demo", "cus_twice").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_partners_at_once_leave_one_consistent_binding() {
    let w = World::new().await;
    // first click wins (the program's default model), whatever order the calls land in
    let early = w.click("alice", "va", T0 - 2 * DAY).await;
    let late = w.click("carol", "vc", T0 - DAY).await;
    let ea = lead(
        &json!({"click_id": early, "customer_key": "cus_race"}),
        Some(DEMO_KEY),
    );
    let ec = lead(
        &json!({"click_id": late, "customer_key": "cus_race"}),
        Some(DEMO_KEY),
    );
    let (w, a, c) = at_once(w, ea, ec).await;
    assert!(
        [200, 201].contains(&a.status) && [200, 201].contains(&c.status),
        "{a:?} {c:?}"
    );
    assert_eq!(
        a.body["partner_id"], "alice",
        "alice's call always ends with alice"
    );
    let binding = w.binding("demo", "cus_race").await.expect("bound");
    assert_eq!(binding.partner_id, "alice");
    let history = storage::customers::binding_history(w.t(), "demo", "cus_race")
        .await
        .expect("history");
    assert_eq!(
        history.len() as u64,
        binding.version,
        "one history row per version"
    );
    assert_eq!(history.last().map(|h| h.partner_id.as_str()), Some("alice"));
}

/// Both calls on their own tasks (really in parallel on the multi-threaded runtime).
async fn at_once(w: World, one: Value, two: Value) -> (World, Answer, Answer) {
    let w = std::sync::Arc::new(w);
    let (w1, w2) = (w.clone(), w.clone());
    let a = tokio::spawn(async move { w1.call(&one).await });
    let b = tokio::spawn(async move { w2.call(&two).await });
    let (a, b) = (a.await.expect("task"), b.await.expect("task"));
    let w = std::sync::Arc::try_unwrap(w).unwrap_or_else(|_| panic!("tasks are done"));
    (w, a, b)
}
