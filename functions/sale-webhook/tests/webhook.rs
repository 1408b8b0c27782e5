//! The handler end to end with a recording sink: request events from `events/sale-webhook/`
//! through lambda_http's request types, signed by the test helper.

use base64::Engine as _;
use lambda_http::http::StatusCode;
use lambda_http::Body;
use rules::plan::{InvoiceFacts, InvoicePayment, SaleLine};
use rules::refund::{ChargeView, DisputeStatus, RefundStatus};
use rules::{Currency, Money};
use sale_webhook::signature::{sign_header, sign_hex};
use sale_webhook::{
    handle, BindOutcome, BindRejection, BindRequest, BindSource, ChargeFact, MoneyBack,
    PaidInvoice, PaymentFailed, SaleOutcome, SinkError, SubscriptionEnded,
};
use testkit::sale_webhook::*;

const ALL_EVENTS: &[&str] = &[
    "account.updated",
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.refunded",
    "checkout.session.completed",
    "customer.created",
    "customer.subscription.deleted",
    "customer.updated",
    "invoice.paid.discounted",
    "invoice.paid",
    "invoice.paid.renewal",
    "invoice.paid.trial",
    "invoice.payment_failed",
    "transfer.reversed",
];

struct Answer {
    status: StatusCode,
    content_type: String,
    json: serde_json::Value,
    allow: Option<String>,
}

async fn send(deps: &sale_webhook::Deps<RecordingSink>, req: lambda_http::Request) -> Answer {
    let resp = handle(deps, req).await.expect("never Err");
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(String::from)
    };
    let text = match resp.body() {
        Body::Text(t) => t.clone(),
        other => panic!("text body expected, got {other:?}"),
    };
    Answer {
        status: resp.status(),
        content_type: header("content-type").unwrap_or_default(),
        allow: header("allow"),
        json: serde_json::from_str(&text).expect("JSON answer"),
    }
}

/// Send a fixture signed with SECRET, 2 s after its creation, to a fresh recording sink.
async fn deliver(name: &str) -> (Answer, Vec<Call>) {
    let (req, t) = signed_request(name);
    let (deps, sink, _clock) = deps(SECRET, t);
    let a = send(&deps, req).await;
    (a, sink.calls())
}

fn assert_problem(a: &Answer, status: u16, detail_has: &str) {
    assert_eq!(a.status.as_u16(), status);
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(a.json["status"], status);
    assert!(a.json["type"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(a.json["title"].as_str().is_some_and(|t| !t.is_empty()));
    let detail = a.json["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(detail_has),
        "{detail:?} lacks {detail_has:?}"
    );
}

fn assert_received(a: &Answer, outcome: &str) {
    assert_eq!(a.status, StatusCode::OK, "{}", a.json);
    assert_eq!(a.content_type, "application/json");
    assert_eq!(a.json["received"], true);
    assert_eq!(a.json["outcome"], outcome, "{}", a.json);
}

// ---- the fixtures themselves ---------------------------------------------------------------

#[test]
fn request_events_wrap_the_stripe_fixtures_byte_for_byte() {
    for name in ALL_EVENTS {
        let ev = event_json(name);
        let stripe = std::fs::read_to_string(repo_path(&format!("events/stripe/{name}.json")))
            .expect("stripe fixture");
        assert_eq!(
            body_of(&ev),
            stripe,
            "{name}: body drifted from events/stripe"
        );
        let req = to_request(ev, Some("t=1,v1=00".into()));
        assert_eq!(req.method(), "POST");
        assert_eq!(req.uri().path(), "/webhooks/stripe");
        assert_eq!(req.body().as_ref(), stripe.as_bytes());
    }
}

// ---- routing: exactly what the engine receives ---------------------------------------------

fn line(product: &str, amount: i64, metered: bool, excluded: bool) -> SaleLine {
    SaleLine {
        product_id: Some(product.into()),
        amount: Money::new(amount, Currency::USD),
        metered,
        excluded_by_metadata: excluded,
    }
}

fn paid_at_ms(inv: &PaidInvoice) -> i64 {
    inv.facts.paid_at.timestamp_millis()
}

fn amount_paid_minor(inv: &PaidInvoice) -> i64 {
    inv.facts.amount_paid().expect("one currency").minor
}

#[tokio::test]
async fn invoice_paid_flags_overage_and_excluded_lines() {
    let (a, calls) = deliver("invoice.paid").await;
    assert_received(&a, "booked");
    assert_eq!(a.json["event_id"], "evt_demo_invoice_paid");
    assert_eq!(
        calls,
        vec![Call::InvoicePaid(PaidInvoice {
            event_id: "evt_demo_invoice_paid".into(),
            source: "stripe".into(),
            customer_key: "cus_demo1".into(),
            customer_email: Some("carol@example.com".into()),
            subscription_id: Some("sub_demo1".into()),
            promotion_codes: vec![],
            facts: InvoiceFacts {
                invoice_id: "in_demo1".into(),
                paid_at: chrono::DateTime::from_timestamp_millis(1_741_000_093_000).expect("time"),
                lines: vec![
                    line("prod_demo", 9900, false, false),
                    line("prod_overage", 1500, true, false),
                    line("prod_sms", 2000, false, true),
                ],
                currency: Currency::USD,
                payment: Some(InvoicePayment {
                    charge_key: Some("ch_demo1".into()),
                    payment_intent: Some("pi_demo1".into()),
                    amount_paid: 13_400,
                    total: 13_400,
                }),
            },
        })]
    );
    let Call::InvoicePaid(inv) = &calls[0] else {
        unreachable!()
    };
    assert_eq!(amount_paid_minor(inv), 13400);
    // Only the subscription line is eligible.
    let Call::InvoicePaid(inv) = &calls[0] else {
        unreachable!()
    };
    let eligible: i64 = inv
        .facts
        .lines
        .iter()
        .filter(|l| !l.metered && !l.excluded_by_metadata)
        .map(|l| l.amount.minor)
        .sum();
    assert_eq!(eligible, 9900);
}

#[tokio::test]
async fn discounted_invoice_applies_the_discount_and_reports_the_code() {
    let (a, calls) = deliver("invoice.paid.discounted").await;
    assert_received(&a, "booked");
    let [Call::InvoicePaid(inv)] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(inv.facts.invoice_id, "in_demo1_promo");
    assert_eq!(inv.facts.lines, vec![line("prod_demo", 7920, false, false)]);
    assert_eq!(inv.promotion_codes, vec!["promo_demo".to_string()]);
    assert_eq!(amount_paid_minor(inv), 7920);
}

#[tokio::test]
async fn trial_invoice_is_zero() {
    let (a, calls) = deliver("invoice.paid.trial").await;
    assert_received(&a, "booked");
    let [Call::InvoicePaid(inv)] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(inv.facts.lines, vec![line("prod_demo", 0, false, false)]);
    assert_eq!(amount_paid_minor(inv), 0);
    assert_eq!(paid_at_ms(inv), 1_741_000_091_000);
}

#[tokio::test]
async fn renewal_invoice() {
    let (a, calls) = deliver("invoice.paid.renewal").await;
    assert_received(&a, "booked");
    let [Call::InvoicePaid(inv)] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(inv.facts.invoice_id, "in_demo2");
    assert_eq!(inv.facts.lines, vec![line("prod_demo", 9900, false, false)]);
    // billing_reason (`subscription_cycle`) is logged, not passed on: commissions use the lines.
    assert_eq!(inv.subscription_id.as_deref(), Some("sub_demo1"));
}

#[tokio::test]
async fn sale_outcomes_are_reported() {
    for (answer, outcome) in [
        (
            SaleOutcome::Unattributed {
                program_ids: vec!["demo".into()],
            },
            "unattributed",
        ),
        (SaleOutcome::AlreadyProcessed, "already_processed"),
        (SaleOutcome::NotOnAnyProgram, "not_on_any_program"),
    ] {
        let (req, t) = signed_request("invoice.paid");
        let (deps, sink, _c) = deps(SECRET, t);
        *sink.sale_answer.lock().expect("lock") = Some(answer);
        assert_received(&send(&deps, req).await, outcome);
    }
}

fn checkout_bind(source: BindSource) -> Call {
    Call::Bind(BindRequest {
        program_id: None,
        customer_key: "cus_demo1".into(),
        email: Some("carol@example.com".into()),
        source,
        at_ms: 1_741_000_095_000,
        source_event: "stripe:evt_demo_checkout_session_completed".into(),
    })
}

#[tokio::test]
async fn checkout_binds_by_click_id_first() {
    let (a, calls) = deliver("checkout.session.completed").await;
    assert_received(&a, "bound");
    assert_eq!(
        calls,
        vec![checkout_bind(BindSource::ClickId(
            "CLICKID_PLACEHOLDER".into()
        ))]
    );
}

#[tokio::test]
async fn checkout_falls_back_to_the_promotion_code_when_the_click_is_rejected() {
    let (req, t) = signed_request("checkout.session.completed");
    let (deps, sink, _c) = deps(SECRET, t);
    sink.answer_binds(vec![BindOutcome::Rejected(BindRejection::UnknownClick)]);
    let a = send(&deps, req).await;
    assert_received(&a, "bound");
    assert_eq!(
        sink.calls(),
        vec![
            checkout_bind(BindSource::ClickId("CLICKID_PLACEHOLDER".into())),
            checkout_bind(BindSource::Coupon("promo_demo".into())),
        ]
    );
}

#[tokio::test]
async fn a_rejected_binding_answers_200() {
    let (req, t) = signed_request("checkout.session.completed");
    let (deps, sink, _c) = deps(SECRET, t);
    sink.answer_binds(vec![
        BindOutcome::Rejected(BindRejection::SelfReferral),
        BindOutcome::Rejected(BindRejection::SelfReferral),
    ]);
    let a = send(&deps, req).await;
    assert_received(&a, "rejected");
    assert!(a.json["detail"]
        .as_str()
        .is_some_and(|d| d.contains("self-referral")));
    assert_eq!(sink.calls().len(), 2);
}

#[tokio::test]
async fn already_bound_stops_the_search() {
    let (req, t) = signed_request("checkout.session.completed");
    let (deps, sink, _c) = deps(SECRET, t);
    sink.answer_binds(vec![BindOutcome::AlreadyBound {
        program_id: "demo".into(),
        partner_id: "bob".into(),
    }]);
    assert_received(&send(&deps, req).await, "already_bound");
    assert_eq!(sink.calls().len(), 1);
}

#[tokio::test]
async fn customer_created_binds_by_ref_click() {
    let (a, calls) = deliver("customer.created").await;
    assert_received(&a, "bound");
    assert_eq!(
        calls,
        vec![Call::Bind(BindRequest {
            program_id: None,
            customer_key: "cus_demo1".into(),
            email: Some("carol@example.com".into()),
            source: BindSource::ClickId("CLICKID_PLACEHOLDER".into()),
            at_ms: 1_741_000_000_000,
            source_event: "stripe:evt_demo_customer_created".into(),
        })]
    );
}

#[tokio::test]
async fn customer_updated_binds_when_ref_click_was_set() {
    let (a, calls) = deliver("customer.updated").await;
    assert_received(&a, "bound");
    assert_eq!(
        calls,
        vec![Call::Bind(BindRequest {
            program_id: None,
            customer_key: "cus_demo1".into(),
            email: Some("carol@example.com".into()),
            source: BindSource::ClickId("CLICKID_PLACEHOLDER".into()),
            at_ms: 1_741_000_390_000,
            source_event: "stripe:evt_demo_customer_updated".into(),
        })]
    );
}

#[tokio::test]
async fn customer_updated_without_a_ref_click_change_does_nothing() {
    let ev = event_json("customer.updated");
    let mut stripe = stripe_of(&ev);
    stripe["data"]["previous_attributes"] = serde_json::json!({"email": "old@example.com"});
    let ev = with_body(ev, &stripe.to_string());
    let t = created_s(&ev) + 1;
    let (deps, sink, _c) = deps(SECRET, t);
    let a = send(&deps, signed(ev, SECRET, t)).await;
    assert_received(&a, "ignored");
    assert!(sink.calls().is_empty());
}

#[tokio::test]
async fn payment_failed_reaches_the_engine() {
    let (a, calls) = deliver("invoice.payment_failed").await;
    assert_received(&a, "in_collections");
    assert_eq!(
        calls,
        vec![Call::PaymentFailed(PaymentFailed {
            event_id: "evt_demo_invoice_payment_failed".into(),
            invoice_id: "in_demo3".into(),
            customer_key: "cus_demo1".into(),
            at_ms: 1_746_274_092_000,
        })]
    );
}

#[tokio::test]
async fn subscription_deleted_reaches_the_engine() {
    let (a, calls) = deliver("customer.subscription.deleted").await;
    assert_received(&a, "subscription_ended");
    assert_eq!(
        calls,
        vec![Call::SubscriptionEnded(SubscriptionEnded {
            event_id: "evt_demo_subscription_deleted".into(),
            subscription_id: "sub_demo1".into(),
            customer_key: "cus_demo1".into(),
            at_ms: 1_748_736_000_000,
        })]
    );
}

#[tokio::test]
async fn refunds_and_disputes_reach_the_engine_keyed_by_charge() {
    let (a, calls) = deliver("charge.refunded").await;
    assert_received(&a, "money_back_applied");
    assert_eq!(
        calls,
        vec![Call::MoneyBack(MoneyBack {
            event_id: "evt_demo_charge_refunded".into(),
            source: "stripe".into(),
            at_ms: 1_741_564_800_000,
            charge_key: "ch_demo1".into(),
            payment_intent: Some("pi_demo1".into()),
            invoice_id: Some("in_demo1".into()),
            customer_key: Some("cus_demo1".into()),
            currency: Some(rules::Currency::USD),
            fact: ChargeFact::Charge {
                amount: 13_400,
                view: ChargeView {
                    amount_refunded: 5_000,
                    at_ms: 1_741_564_800_000,
                    event_id: "evt_demo_charge_refunded".into(),
                },
            },
        })]
    );
    for (name, status) in [
        ("charge.dispute.created", DisputeStatus::NeedsResponse),
        ("charge.dispute.closed", DisputeStatus::Lost),
    ] {
        let (a, calls) = deliver(name).await;
        assert_received(&a, "money_back_applied");
        let [Call::MoneyBack(m)] = calls.as_slice() else {
            panic!("{name}: {calls:?}");
        };
        assert_eq!(m.charge_key, "ch_demo2", "{name}");
        let ChargeFact::Dispute(d) = &m.fact else {
            panic!("{name}: {m:?}");
        };
        assert_eq!(
            (d.id.as_str(), d.amount, d.status),
            ("dp_demo1", 9_900, status)
        );
    }
    // A refund object: its charge, its status; an unknown status is not guessed.
    let ev = event_json("charge.dispute.created");
    let mut stripe = stripe_of(&ev);
    stripe["type"] = "refund.updated".into();
    stripe["data"]["object"] = serde_json::json!({
        "id": "re_1", "object": "refund", "amount": 3300, "currency": "usd",
        "status": "failed", "charge": "ch_demo1", "payment_intent": "pi_demo1"
    });
    let (a, calls) = deliver_body(&stripe.to_string()).await;
    assert_received(&a, "money_back_applied");
    let [Call::MoneyBack(m)] = calls.as_slice() else {
        panic!("{calls:?}");
    };
    assert_eq!(m.charge_key, "ch_demo1");
    assert!(
        matches!(&m.fact, ChargeFact::Refund(r) if r.status == RefundStatus::Failed && r.amount == 3300)
    );
    stripe["data"]["object"]["status"] = "reversed_by_magic".into();
    let (a, calls) = deliver_body(&stripe.to_string()).await;
    assert_received(&a, "needs_attention");
    assert_eq!(parked(&calls)[0].1, "unreadable");
    // An inquiry changes nothing.
    let ev = event_json("charge.dispute.created");
    let mut stripe = stripe_of(&ev);
    stripe["data"]["object"]["status"] = "warning_needs_response".into();
    let (a, calls) = deliver_body(&stripe.to_string()).await;
    assert_received(&a, "ignored");
    assert!(calls.is_empty());
}

#[tokio::test]
async fn unhandled_types_are_acknowledged_and_never_reach_the_engine() {
    // A type Stripe may invent tomorrow.
    let ev = event_json("invoice.paid");
    let mut stripe = stripe_of(&ev);
    stripe["type"] = "invoice.overpaid_in_the_future".into();
    let ev = with_body(ev, &stripe.to_string());
    let t = created_s(&ev);
    let (deps, sink, _c) = deps(SECRET, t);
    assert_received(&send(&deps, signed(ev, SECRET, t)).await, "ignored");
    assert!(sink.calls().is_empty());
}

fn parked(calls: &[Call]) -> Vec<(String, String)> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::NeedsAttention { id, reason_code } => Some((id.clone(), reason_code.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn an_untested_api_version_needs_attention_until_an_operator_accepts_it() {
    for version in [
        serde_json::json!("2025-03-31.basil"),
        serde_json::Value::Null,
    ] {
        let ev = event_json("invoice.paid");
        let mut stripe = stripe_of(&ev);
        stripe["api_version"] = version.clone();
        let id = format!("stripe:{}", stripe["id"].as_str().unwrap());
        let ev = with_body(ev, &stripe.to_string());
        let t = created_s(&ev);
        let (deps, sink, _c) = deps(SECRET, t);
        let a = send(&deps, signed(ev.clone(), SECRET, t)).await;
        assert_received(&a, "needs_attention");
        assert!(a.json["detail"]
            .as_str()
            .unwrap()
            .contains("api-version-untested"));
        assert_eq!(
            parked(&sink.calls()),
            vec![(id.clone(), "api-version-untested".to_string())],
            "{version}: parked, not booked"
        );
        assert_eq!(sink.calls().len(), 1);

        sink.accepted_versions.lock().unwrap().push(id);
        assert_received(&send(&deps, signed(ev, SECRET, t)).await, "booked");
        assert!(matches!(sink.calls().last(), Some(Call::InvoicePaid(_))));
    }
    // A type we do not handle is ignored whatever its version.
    let ev = event_json("invoice.paid");
    let mut stripe = stripe_of(&ev);
    stripe["api_version"] = "2019-01-01".into();
    stripe["type"] = "payout.created".into();
    let (a, calls) = deliver_body(&stripe.to_string()).await;
    assert_received(&a, "ignored");
    assert!(calls.is_empty());
}

#[tokio::test]
async fn test_mode_events_never_book_in_a_live_deployment_and_connect_events_are_refused() {
    let ev = event_json("invoice.paid");
    let t = created_s(&ev);
    let (mut deps, sink, _c) = deps(SECRET, t);
    deps.policy = sale_webhook::policy::EventPolicy::from_lookup(|_| None).unwrap();
    assert_received(
        &send(&deps, signed(ev.clone(), SECRET, t)).await,
        "needs_attention",
    );
    assert_eq!(parked(&sink.calls())[0].1, "livemode-mismatch");
    assert_eq!(sink.calls().len(), 1, "nothing booked");

    let (deps, sink, _c) = testkit::sale_webhook::deps(SECRET, t);
    let mut stripe = stripe_of(&ev);
    stripe["account"] = "acct_connected".into();
    let ev = with_body(ev, &stripe.to_string());
    assert_received(&send(&deps, signed(ev, SECRET, t)).await, "needs_attention");
    assert_eq!(parked(&sink.calls())[0].1, "connect-account");
    assert_eq!(sink.calls().len(), 1, "nothing booked");
}

#[tokio::test]
async fn a_price_that_is_only_an_id_needs_attention() {
    let ev = event_json("invoice.paid");
    let mut stripe = stripe_of(&ev);
    stripe["data"]["object"]["lines"]["data"][0]["price"] = "price_1AbC".into();
    let (a, calls) = deliver_body(&stripe.to_string()).await;
    assert_received(&a, "needs_attention");
    assert_eq!(parked(&calls)[0].1, "price-not-expanded");
    assert_eq!(calls.len(), 1);
}

#[tokio::test]
async fn more_lines_than_the_event_shows_and_no_api_key_needs_attention() {
    let ev = event_json("invoice.paid");
    let mut stripe = stripe_of(&ev);
    stripe["data"]["object"]["lines"]["has_more"] = true.into();
    let (a, calls) = deliver_body(&stripe.to_string()).await;
    assert_received(&a, "needs_attention");
    assert_eq!(parked(&calls)[0].1, "lines-has-more");
    assert_eq!(calls.len(), 1, "the visible lines are not booked alone");
}

#[tokio::test]
async fn a_record_that_cannot_be_written_is_a_500() {
    let ev = event_json("invoice.paid");
    let mut stripe = stripe_of(&ev);
    stripe["data"]["object"]["lines"]["has_more"] = true.into();
    let ev = with_body(ev, &stripe.to_string());
    let t = created_s(&ev);
    let (deps, sink, _c) = deps(SECRET, t);
    sink.fail(SinkError::Retryable("DynamoDB unreachable".into()));
    assert_problem(
        &send(&deps, signed(ev, SECRET, t)).await,
        500,
        "deliver it again",
    );
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let ev = event_json("invoice.paid");
    let mut stripe = stripe_of(&ev);
    stripe["brand_new_field"] = serde_json::json!({"nested": [1, 2, 3]});
    stripe["data"]["object"]["lines"]["data"][0]["pricing"] = serde_json::json!({"type": "x"});
    let ev = with_body(ev, &stripe.to_string());
    let t = created_s(&ev);
    let (deps, sink, _c) = deps(SECRET, t);
    assert_received(&send(&deps, signed(ev, SECRET, t)).await, "booked");
    assert_eq!(sink.calls().len(), 1);
}

// ---- bodies we cannot understand: kept for an operator, 200, never 500 ---------------------

async fn deliver_body(body: &str) -> (Answer, Vec<Call>) {
    let ev = with_body(event_json("invoice.paid"), body);
    let t = 1_741_000_100;
    let (deps, sink, _c) = deps(SECRET, t);
    let a = send(&deps, signed(ev, SECRET, t)).await;
    (a, sink.calls())
}

#[tokio::test]
async fn garbage_with_a_valid_signature_is_acknowledged() {
    for body in [
        "this is not json",
        "{\"id\": \"evt_1\", \"type\": \"invoice.paid\"",
        "",
    ] {
        let (a, calls) = deliver_body(body).await;
        assert_received(&a, "needs_attention");
        assert_eq!(parked(&calls).len(), 1);
        assert_eq!(parked(&calls)[0].1, "not-an-event");
        assert!(parked(&calls)[0].0.starts_with("stripe:body-"));
    }
}

#[tokio::test]
async fn json_that_is_not_an_event_is_acknowledged() {
    for body in [
        "[]",
        "42",
        "{\"hello\":\"world\"}",
        "{\"id\":\"evt_1\",\"type\":\"invoice.paid\",\"created\":\"yesterday\",\"data\":{\"object\":{}}}",
    ] {
        let (a, calls) = deliver_body(body).await;
        assert_received(&a, "needs_attention");
        assert!(
            a.json["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{}",
            a.json
        );
        assert_eq!(parked(&calls).len(), 1);
    }
}

#[tokio::test]
async fn a_handled_type_we_cannot_read_is_acknowledged() {
    let ev = event_json("invoice.paid");
    let mut stripe = stripe_of(&ev);
    stripe["data"]["object"]["lines"] = "not a list".into();
    let (a, calls) = deliver_body(&stripe.to_string()).await;
    assert_received(&a, "needs_attention");
    assert_eq!(parked(&calls)[0].1, "unreadable");
    assert_eq!(calls.len(), 1);
    let mut stripe = stripe_of(&ev);
    stripe["data"]["object"]["currency"] = "us dollars".into();
    let (a, calls) = deliver_body(&stripe.to_string()).await;
    assert_received(&a, "needs_attention");
    assert_eq!(parked(&calls)[0].1, "unreadable");
}

// ---- engine failures -----------------------------------------------------------------------

#[tokio::test]
async fn a_retryable_engine_failure_is_a_500_problem() {
    for name in [
        "invoice.paid",
        "checkout.session.completed",
        "invoice.payment_failed",
        "customer.subscription.deleted",
    ] {
        let (req, t) = signed_request(name);
        let (deps, sink, _c) = deps(SECRET, t);
        sink.fail(SinkError::Retryable("DynamoDB throttled".into()));
        let a = send(&deps, req).await;
        assert_problem(&a, 500, "deliver it again");
        assert!(
            !a.json["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("DynamoDB"),
            "internal error text must not leak"
        );
    }
}

#[tokio::test]
async fn a_permanent_engine_failure_needs_attention_not_a_retry() {
    let (req, t) = signed_request("invoice.paid");
    let (deps, sink, _c) = deps(SECRET, t);
    sink.fail(SinkError::Permanent("stored item is malformed".into()));
    let a = send(&deps, req).await;
    assert_received(&a, "needs_attention");
    assert!(a.json["detail"]
        .as_str()
        .unwrap()
        .contains("permanent-failure"));
    assert!(matches!(sink.calls()[0], Call::InvoicePaid(_)));
    assert_eq!(parked(&sink.calls())[0].1, "permanent-failure");
}

// ---- signatures through the whole handler --------------------------------------------------

/// Run `req` against a sink that must not be called; expect a 400 problem naming `detail_has`.
async fn refused(req: lambda_http::Request, now_s: i64, secrets: &str, detail_has: &str) {
    let (deps, sink, _c) = deps(secrets, now_s);
    let a = send(&deps, req).await;
    assert_problem(&a, 400, detail_has);
    assert_eq!(
        a.json["type"],
        "urn:partner-engine:problem:stripe-signature-invalid"
    );
    assert!(sink.calls().is_empty(), "nothing may be written");
}

#[tokio::test]
async fn tampered_body_is_refused() {
    let ev = event_json("invoice.paid");
    let t = created_s(&ev);
    let sig = sign_header(SECRET, t, body_of(&ev).as_bytes());
    let tampered = body_of(&ev).replace("\"amount_paid\": 13400", "\"amount_paid\": 99999");
    assert_ne!(tampered, body_of(&ev));
    let req = to_request(with_body(ev, &tampered), Some(sig));
    refused(req, t, SECRET, "no v1 signature matches").await;
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused() {
    let ev = event_json("invoice.paid");
    let t = created_s(&ev);
    // Signed 301 s before now, and 301 s after now.
    refused(signed(ev.clone(), SECRET, t - 301), t, SECRET, "301 s away").await;
    refused(signed(ev.clone(), SECRET, t + 301), t, SECRET, "301 s away").await;
    // Exactly at the edge is fine.
    let (deps, _sink, clock) = deps(SECRET, t);
    clock.set((t + 300) * 1000);
    assert_received(&send(&deps, signed(ev, SECRET, t)).await, "booked");
}

#[tokio::test]
async fn the_clock_moves_the_verdict() {
    let ev = event_json("invoice.paid");
    let t = created_s(&ev);
    let (deps, sink, clock) = deps(SECRET, t);
    assert_received(&send(&deps, signed(ev.clone(), SECRET, t)).await, "booked");
    clock.advance(std::time::Duration::from_secs(301));
    let a = send(&deps, signed(ev, SECRET, t)).await;
    assert_problem(&a, 400, "tolerated 300 s");
    assert_eq!(sink.calls().len(), 1);
}

#[tokio::test]
async fn wrong_secret_is_refused() {
    let ev = event_json("invoice.paid");
    let t = created_s(&ev);
    refused(
        signed(ev, "whsec_not_ours", t),
        t,
        SECRET,
        "no v1 signature matches",
    )
    .await;
}

#[tokio::test]
async fn one_valid_v1_among_two_is_enough() {
    let ev = event_json("invoice.paid");
    let t = created_s(&ev);
    let body = body_of(&ev);
    let good = sign_hex(SECRET, t, body.as_bytes());
    let other = sign_hex("whsec_rolled_by_stripe", t, body.as_bytes());
    for header in [
        format!("t={t},v1={other},v1={good}"),
        format!("t={t},v1={good},v1={other}"),
    ] {
        let (deps, sink, _c) = deps(SECRET, t);
        let a = send(&deps, to_request(ev.clone(), Some(header))).await;
        assert_received(&a, "booked");
        assert_eq!(sink.calls().len(), 1);
    }
    let header = format!("t={t},v1={other},v1={other}");
    refused(
        to_request(ev, Some(header)),
        t,
        SECRET,
        "no v1 signature matches",
    )
    .await;
}

#[tokio::test]
async fn rotated_secrets_are_accepted() {
    let both = format!("{SECRET},{OLD_SECRET}");
    let ev = event_json("invoice.paid");
    let t = created_s(&ev);
    for secret in [SECRET, OLD_SECRET] {
        let (deps, sink, _c) = deps(&both, t);
        assert_received(&send(&deps, signed(ev.clone(), secret, t)).await, "booked");
        assert_eq!(sink.calls().len(), 1);
    }
    // Once the old secret is dropped, its signatures fail.
    refused(
        signed(ev, OLD_SECRET, t),
        t,
        SECRET,
        "no v1 signature matches",
    )
    .await;
}

#[tokio::test]
async fn missing_header_is_refused() {
    let ev = event_json("invoice.paid");
    let t = created_s(&ev);
    refused(to_request(ev, None), t, SECRET, "missing").await;
}

#[tokio::test]
async fn malformed_headers_are_refused() {
    let ev = event_json("invoice.paid");
    let t = created_s(&ev);
    for (header, detail) in [
        (
            "t=0,v1=PLACEHOLDER_RECOMPUTED_BY_TESTS",
            "no v1 signature matches",
        ),
        ("nonsense", "malformed"),
        ("t=yesterday,v1=abcd", "malformed"),
        ("v1=abcd", "malformed"),
        (&*format!("t={t}"), "no v1"),
        ("", "malformed"),
    ] {
        refused(
            to_request(ev.clone(), Some(header.into())),
            t,
            SECRET,
            detail,
        )
        .await;
    }
}

#[tokio::test]
async fn header_name_is_case_insensitive_and_base64_bodies_verify() {
    let mut ev = event_json("invoice.paid");
    let body = body_of(&ev);
    let t = created_s(&ev);
    let sig = sign_header(SECRET, t, body.as_bytes());
    let headers = ev["headers"].as_object_mut().expect("headers");
    headers.remove("stripe-signature");
    headers.insert("Stripe-Signature".into(), sig.into());
    ev["body"] = base64::engine::general_purpose::STANDARD
        .encode(body.as_bytes())
        .into();
    ev["isBase64Encoded"] = true.into();
    let req = lambda_http::request::from_str(&ev.to_string()).expect("request");
    let (deps, sink, _c) = deps(SECRET, t);
    assert_received(&send(&deps, req).await, "booked");
    assert_eq!(sink.calls().len(), 1);
}

#[tokio::test]
async fn other_methods_are_405() {
    let mut ev = event_json("invoice.paid");
    ev["requestContext"]["http"]["method"] = "GET".into();
    let t = created_s(&ev);
    let (deps, sink, _c) = deps(SECRET, t);
    let a = send(&deps, signed(ev, SECRET, t)).await;
    assert_problem(&a, 405, "POST");
    assert_eq!(a.allow.as_deref(), Some("POST"));
    assert!(sink.calls().is_empty());
}
