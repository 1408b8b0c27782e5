//! The real engine behind the handler, against moto: Stripe's events, signed, in the order a
//! customer's life produces them; the engine's tables say what happened.

use std::sync::Arc;

use lambda_http::http::StatusCode;
use lambda_http::Body;
use rules::ProgramProduct;
use sale_webhook::engine_adapter::EngineSink;
use sale_webhook::policy::EventPolicy;
use sale_webhook::{handle, Deps, SigningSecrets};
use storage::links::{self, Click};
use storage::programs::{self, PromotionCode};
use storage::{testing, ManualClock};
use testkit::catalogue;
use testkit::sale_webhook::*;

const TRACKING_KEY: &str = "sale-webhook-test-tracking-key-0123456789";

async fn engine_deps() -> Deps<EngineSink> {
    let table = testing::fresh_table().await.expect("table");
    let keys = tracking::KeyRing::from_secrets(TRACKING_KEY, None).expect("key");
    let engine = engine::Engine::new(table, keys);
    Deps {
        sink: EngineSink::new(engine),
        secrets: SigningSecrets::from_list(SECRET).expect("secret"),
        clock: Arc::new(ManualClock::at(0)),
        policy: EventPolicy::test_mode(),
        lines: None,
        feed: sale_webhook::FeedSources::none(),
    }
}

/// Program `demo` (25 %, product `prod_demo`), partner alice with link `alice`, and the
/// promotion code `promo_demo` belonging to carol.
async fn seed(deps: &Deps<EngineSink>) {
    let t = &deps.sink.engine.table;
    let p = catalogue::program(serde_json::json!({
        "id": "demo", "name": "Demo",
        "plan": {"reward": {"type": "percentage", "rate": "0.25"}},
        "default_destination": "https://example.com/pricing",
        "allowed_hosts": ["example.com"]
    }));
    catalogue::put_program(t, &p).await;
    t.put(programs::product_item(&ProgramProduct::new("demo", "prod_demo")).expect("item"))
        .await
        .expect("put");
    for id in ["alice", "carol"] {
        catalogue::put_member(t, id, "demo", None, id).await;
    }
    let promo = PromotionCode {
        code: "promo_demo".into(),
        partner_id: "carol".into(),
        program_id: "demo".into(),
    };
    t.put(programs::promotion_code_item(&promo).expect("item"))
        .await
        .expect("put");
}

/// A counted click on alice's link at `at_ms`.
async fn click(deps: &Deps<EngineSink>, at_ms: i64) -> String {
    let e = &deps.sink.engine;
    let id = e
        .keys
        .new_click_id("alice", at_ms, [1, 2, 3, 4, 5, 6])
        .expect("click id");
    let c = Click {
        click_id: id.clone(),
        link_code: "alice".into(),
        partner_id: "alice".into(),
        program_id: "demo".into(),
        visitor_id: "visitor-1".into(),
        sub_id: None,
        at_ms,
    };
    links::record_click(&e.table, &c, "visitor-1", 3_600_000, 60)
        .await
        .expect("click");
    id
}

/// Deliver a request event (its Stripe body optionally edited), signed now.
async fn deliver(
    deps: &Deps<EngineSink>,
    name: &str,
    edit: impl FnOnce(String) -> String,
) -> (StatusCode, serde_json::Value) {
    let ev = event_json(name);
    let body = edit(body_of(&ev));
    let ev = with_body(ev, &body);
    let t = created_s(&ev) + 1;
    // Stripe delivers a second after the event.
    let clock = ManualClock::at(t * 1000);
    let deps = Deps {
        sink: deps.sink.clone(),
        secrets: deps.secrets.clone(),
        clock: Arc::new(clock),
        policy: EventPolicy::test_mode(),
        lines: deps.lines.clone(),
        feed: deps.feed.clone(),
    };
    let resp = handle(&deps, signed(ev, SECRET, t))
        .await
        .expect("response");
    let json = match resp.body() {
        Body::Text(t) => serde_json::from_str(t).expect("json"),
        other => panic!("{other:?}"),
    };
    (resp.status(), json)
}

#[tokio::test]
async fn a_customers_life_through_the_real_engine() {
    let deps = engine_deps().await;
    seed(&deps).await;
    // alice's click, a day before the checkout (2025-03-02).
    let click_id = click(&deps, 1_741_000_000_000 - 86_400_000).await;

    let (s, j) = deliver(&deps, "checkout.session.completed", |b| {
        b.replace("CLICKID_PLACEHOLDER", &click_id)
    })
    .await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("bound")),
        "{j}"
    );
    assert!(
        j["detail"]
            .as_str()
            .is_some_and(|d| d.contains("demo/alice")),
        "{j}"
    );

    // The same customer again, now from customer.created: already bound.
    let (s, j) = deliver(&deps, "customer.created", |b| {
        b.replace("CLICKID_PLACEHOLDER", &click_id)
    })
    .await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("already_bound")),
        "{j}"
    );

    // The sale: 25 % of the 9,900 subscription line only.
    let (s, j) = deliver(&deps, "invoice.paid", |b| b).await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("booked")),
        "{j}"
    );
    let b = storage::ledger::balance(
        &deps.sink.engine.table,
        "alice",
        "demo",
        rules::Currency::USD,
    )
    .await
    .expect("balance");
    assert_eq!(b.pending, 2475);

    // Stripe delivers it again: nothing changes.
    let (s, j) = deliver(&deps, "invoice.paid", |b| b).await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("already_processed")),
        "{j}"
    );
    let b = storage::ledger::balance(
        &deps.sink.engine.table,
        "alice",
        "demo",
        rules::Currency::USD,
    )
    .await
    .expect("balance");
    assert_eq!(b.pending, 2475);

    let (s, j) = deliver(&deps, "invoice.payment_failed", |b| b).await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("in_collections")),
        "{j}"
    );
    let (s, j) = deliver(&deps, "customer.subscription.deleted", |b| b).await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("subscription_ended")),
        "{j}"
    );
}

#[tokio::test]
async fn an_invalid_click_falls_back_to_the_promotion_code() {
    let deps = engine_deps().await;
    seed(&deps).await;
    // The fixture's placeholder is not a signed click id: the engine rejects it, the promotion
    // code (carol's) binds.
    let (s, j) = deliver(&deps, "checkout.session.completed", |b| b).await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("bound")),
        "{j}"
    );
    assert!(
        j["detail"]
            .as_str()
            .is_some_and(|d| d.contains("demo/carol")),
        "{j}"
    );
}

#[tokio::test]
async fn a_rejected_binding_is_200() {
    let deps = engine_deps().await;
    // Nothing seeded: unknown click, unknown promotion code.
    let (s, j) = deliver(&deps, "checkout.session.completed", |b| b).await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("rejected")),
        "{j}"
    );
    // And a sale of a product on no program.
    let (s, j) = deliver(&deps, "invoice.paid", |b| b).await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("not_on_any_program")),
        "{j}"
    );
}

#[tokio::test]
async fn storage_trouble_is_a_500_so_stripe_retries() {
    let mut deps = engine_deps().await;
    // A table that does not exist: every call fails as DynamoDB would on an outage.
    deps.sink.engine.table.name = "no-such-table".into();
    let (s, j) = deliver(&deps, "invoice.paid", |b| b).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{j}");
    assert_eq!(j["status"], 500);
}

/// 149 more lines of `prod_demo` at 1.00 each after the event's first line (`il_demo1_base`).
fn more_lines() -> Vec<serde_json::Value> {
    let ev = stripe_of(&event_json("invoice.paid"));
    let first = ev["data"]["object"]["lines"]["data"][0].clone();
    let mut lines = vec![first.clone()];
    for i in 0..149 {
        let mut l = first.clone();
        l["id"] = format!("il_more_{i:03}").into();
        l["amount"] = 100.into();
        lines.push(l);
    }
    lines
}

#[tokio::test]
async fn an_invoice_with_more_lines_than_the_event_shows_is_read_from_stripe() {
    let mut deps = engine_deps().await;
    seed(&deps).await;
    let fake = testkit::fake_stripe::FakeStripe::start("rk_test_lines").await;
    fake.add_invoice("in_demo1", more_lines());
    let click_id = click(&deps, 1_741_000_000_000 - 86_400_000).await;
    let (_, j) = deliver(&deps, "checkout.session.completed", |b| {
        b.replace("CLICKID_PLACEHOLDER", &click_id)
    })
    .await;
    assert_eq!(j["outcome"], "bound", "{j}");
    let has_more = |b: String| {
        let mut v: serde_json::Value = serde_json::from_str(&b).expect("json");
        v["data"]["object"]["lines"]["has_more"] = true.into();
        v.to_string()
    };
    let pending = |deps: &Deps<EngineSink>| {
        let t = deps.sink.engine.table.clone();
        async move {
            storage::ledger::balance(&t, "alice", "demo", rules::Currency::USD)
                .await
                .expect("balance")
                .pending
        }
    };

    // A key Stripe refuses: parked, nothing booked.
    let wrong = sale_webhook::stripe_api::StripeApi::new(
        &fake.base_url,
        "rk_test_wrong",
        std::time::Duration::from_secs(3),
    )
    .expect("client");
    deps.lines = Some(Arc::new(wrong));
    let (s, j) = deliver(&deps, "invoice.paid", has_more).await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("needs_attention")),
        "{j}"
    );
    assert!(j["detail"].as_str().unwrap().contains("401"), "{j}");
    assert_eq!(pending(&deps).await, 0);
    let rec = storage::attention::get(&deps.sink.engine.table, "stripe:evt_demo_invoice_paid")
        .await
        .expect("read")
        .expect("a needs-attention record");
    let open = storage::attention::open(&deps.sink.engine.table)
        .await
        .expect("open");
    assert_eq!(open, vec![rec.clone()]);
    assert_eq!(rec.reason_code, "lines-has-more");
    assert!(rec
        .payload
        .as_deref()
        .is_some_and(|p| p.contains("in_demo1")));

    // Stripe rate-limits the first read: 500, so that Stripe delivers again; nothing booked.
    let api = sale_webhook::stripe_api::StripeApi::new(
        &fake.base_url,
        "rk_test_lines",
        std::time::Duration::from_secs(3),
    )
    .expect("client");
    deps.lines = Some(Arc::new(api));
    fake.fail_next(429, "rate_limit_error");
    let (s, _) = deliver(&deps, "invoice.paid", has_more).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(pending(&deps).await, 0);

    // The redelivery reads both pages and books 25 % of 99.00 + 149 × 1.00.
    let before = fake.received().len();
    let (s, j) = deliver(&deps, "invoice.paid", has_more).await;
    assert_eq!(
        (s, j["outcome"].as_str()),
        (StatusCode::OK, Some("booked")),
        "{j}"
    );
    assert_eq!(pending(&deps).await, 6200);
    let pages: Vec<_> = fake.received().into_iter().skip(before).collect();
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert_eq!(pages[0].path, "/v1/invoices/in_demo1/lines");
    assert_eq!(pages[0].query, "limit=100");
    assert_eq!(pages[1].query, "limit=100&starting_after=il_more_098");
    for p in &pages {
        assert_eq!(p.authorization.as_deref(), Some("Bearer rk_test_lines"));
        assert_eq!(p.stripe_version.as_deref(), Some("2025-02-24.acacia"));
    }
}
