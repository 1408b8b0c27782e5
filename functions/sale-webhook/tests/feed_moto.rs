//! The sale feed through the handler and the real engine, against moto: a sale, a partial
//! refund and a chargeback (then won) sent through `POST /webhooks/sale` leave the same ledger
//! as the equivalent Stripe events; every arrival order, repeats and simultaneous deliveries
//! converge on it.

use std::sync::Arc;

use engine::attribution::BindSource;
use rules::program::Duration;
use sale_webhook::engine_adapter::EngineSink;
use sale_webhook::policy::EventPolicy;
use sale_webhook::signature::sign_header;
use sale_webhook::{process, process_feed, Deps, Reply, SigningSecrets};
use serde_json::Value;
use storage::ManualClock;
use testkit::engine::{pct, program, World};
use testkit::sale_webhook::{feed_body, feed_sources, FEED_SECRET, FEED_SOURCE, SECRET};

/// Technical time of every delivery (signatures are checked against it).
const NOW_S: i64 = 1_800_000_000;
/// The click on bob's link (bob was recruited by alice: tier 2), before the sale.
const CLICK_MS: i64 = 1_741_000_000_000;

async fn world() -> (World, Deps<EngineSink>) {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, Some(pct("0.05"))),
        &["prod_demo"],
    )
    .await;
    let deps = Deps {
        sink: EngineSink::new(w.engine.clone()),
        secrets: SigningSecrets::from_list(SECRET).expect("secret"),
        clock: Arc::new(ManualClock::at(NOW_S * 1000)),
        policy: EventPolicy::test_mode(),
        lines: None,
        feed: feed_sources(),
    };
    (w, deps)
}

fn ok(r: &Reply) -> Value {
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).expect("json")
}

async fn feed(deps: &Deps<EngineSink>, body: &Value) -> Value {
    let text = body.to_string();
    let sig = sign_header(FEED_SECRET, NOW_S, text.as_bytes());
    ok(&process_feed(deps, Some(FEED_SOURCE), Some(&sig), text.as_bytes()).await)
}

async fn stripe(deps: &Deps<EngineSink>, body: &Value) -> Value {
    let text = body.to_string();
    let sig = sign_header(SECRET, NOW_S, text.as_bytes());
    ok(&process(deps, Some(&sig), text.as_bytes()).await)
}

fn stripe_event(name: &str) -> Value {
    testkit::events::sample(&format!("stripe/{name}.json"))
}

/// The Stripe events of the same customer's life: the checkout with the click id, the invoice
/// (99.00 licensed, 15.00 metered, 20.00 excluded; 134.00 charged), 50.00 refunded, a dispute
/// of the remaining 84.00, won.
fn stripe_life(click: &str) -> Vec<Value> {
    let mut checkout = stripe_event("checkout.session.completed");
    checkout["created"] = 1_741_000_090.into();
    checkout["data"]["object"]["client_reference_id"] = click.into();
    let invoice = stripe_event("invoice.paid");
    let refunded = stripe_event("charge.refunded");
    let dispute = |name: &str, status: &str| {
        let mut d = stripe_event(name);
        let o = &mut d["data"]["object"];
        o["charge"] = "ch_demo1".into();
        o["payment_intent"] = "pi_demo1".into();
        o["amount"] = 8400.into();
        o["status"] = status.into();
        d
    };
    vec![
        checkout,
        invoice,
        refunded,
        dispute("charge.dispute.created", "needs_response"),
        dispute("charge.dispute.closed", "won"),
    ]
}

/// The feed's events of that life (`events/sale-feed/`), the sale carrying the click id.
fn feed_life(click: &str) -> Vec<Value> {
    let mut sale = feed_body("sale");
    sale["click_id"] = click.into();
    vec![
        sale,
        feed_body("refund"),
        feed_body("chargeback"),
        feed_body("chargeback_won"),
    ]
}

/// What the partners have: balances (pending, available, paid) of bob and alice.
async fn balances(w: &World) -> Vec<(i64, i64, i64)> {
    vec![
        w.balance("bob", "demo").await,
        w.balance("alice", "demo").await,
    ]
}

/// Every ledger entry of bob and alice: (kind, amount), in order.
async fn entries(w: &World) -> Vec<Vec<(String, i64)>> {
    vec![
        w.entries("bob", "demo").await,
        w.entries("alice", "demo").await,
    ]
}

#[tokio::test]
async fn the_feed_leaves_the_same_ledger_as_the_stripe_events() {
    let (sw, sd) = world().await;
    let (fw, fd) = world().await;
    let click = sw.click("bob", "visitor-1", CLICK_MS).await;
    let feed_click = fw.click("bob", "visitor-1", CLICK_MS).await;
    let s = stripe_life(&click);
    let f = feed_life(&feed_click);

    // The sale: 99.00 at 25 % = 24.75 to bob, 5 % = 4.95 to alice.
    assert_eq!(stripe(&sd, &s[0]).await["outcome"], "bound");
    assert_eq!(stripe(&sd, &s[1]).await["outcome"], "booked");
    let r = feed(&fd, &f[0]).await;
    assert_eq!(r["outcome"], "booked", "{r}");
    assert_eq!(balances(&fw).await, balances(&sw).await);
    assert_eq!(balances(&fw).await, vec![(2475, 0, 0), (495, 0, 0)]);

    // 50.00 of 134.00 refunded: round(2475 × 5000 ÷ 13400) = 9.24 and round(495 × …) = 1.85.
    assert_eq!(stripe(&sd, &s[2]).await["outcome"], "money_back_applied");
    assert_eq!(feed(&fd, &f[1]).await["outcome"], "money_back_applied");
    assert_eq!(
        balances(&fw).await,
        vec![(2475 - 924, 0, 0), (495 - 185, 0, 0)]
    );
    assert_eq!(balances(&fw).await, balances(&sw).await);

    // The chargeback of the other 84.00 takes the rest; winning it gives it back.
    assert_eq!(stripe(&sd, &s[3]).await["outcome"], "money_back_applied");
    assert_eq!(feed(&fd, &f[2]).await["outcome"], "money_back_applied");
    assert_eq!(balances(&fw).await, vec![(0, 0, 0), (0, 0, 0)]);
    assert_eq!(balances(&fw).await, balances(&sw).await);
    assert_eq!(stripe(&sd, &s[4]).await["outcome"], "money_back_applied");
    assert_eq!(feed(&fd, &f[3]).await["outcome"], "money_back_applied");
    assert_eq!(
        balances(&fw).await,
        vec![(2475 - 924, 0, 0), (495 - 185, 0, 0)]
    );

    // Entry for entry, the same ledger.
    assert_eq!(entries(&fw).await, entries(&sw).await);
    let labels: Vec<String> = storage::ledger::entries(fw.t(), "bob", "demo", rules::Currency::USD)
        .await
        .expect("entries")
        .into_iter()
        .map(|e| e.source_event)
        .collect();
    assert!(
        labels
            .iter()
            .all(|l| l.starts_with("feed:billing:evt_feed_1001_")),
        "{labels:?}"
    );

    // Repeats change nothing.
    for e in &f {
        let r = feed(&fd, e).await;
        assert_eq!(r["outcome"], "already_processed", "{r}");
    }
    assert_eq!(entries(&fw).await, entries(&sw).await);
}

#[tokio::test]
async fn every_arrival_order_with_repeats_converges() {
    // In order: 24.75 − 9.24 − 15.51 = 0 for bob (the refund and the chargeback take it all).
    let expected = vec![(0, 0, 0), (0, 0, 0)];
    for order in testkit::permutations(3) {
        let (w, d) = world().await;
        let click = w.click("bob", "visitor-1", CLICK_MS).await;
        let life = feed_life(&click);
        for &i in &order {
            feed(&d, &life[i]).await;
        }
        // Every event again, in the same order.
        for &i in &order {
            let r = feed(&d, &life[i]).await;
            assert_eq!(r["outcome"], "already_processed", "{order:?}: {r}");
        }
        assert_eq!(balances(&w).await, expected, "{order:?}");
        // The win comes last in business time whatever the order: 15.51 and 3.10 back.
        feed(&d, &life[3]).await;
        assert_eq!(
            balances(&w).await,
            vec![(2475 - 924, 0, 0), (495 - 185, 0, 0)],
            "{order:?}"
        );
    }
}

#[tokio::test]
async fn simultaneous_deliveries_converge() {
    let (w, d) = world().await;
    let click = w.click("bob", "visitor-1", CLICK_MS).await;
    let life = feed_life(&click);
    // Each event twice, all six at the same moment.
    let replies = tokio::join!(
        feed(&d, &life[0]),
        feed(&d, &life[1]),
        feed(&d, &life[2]),
        feed(&d, &life[0]),
        feed(&d, &life[1]),
        feed(&d, &life[2]),
    );
    // A sale's two copies: one books; the other finds it booked (or booked with nothing left).
    for r in [&replies.0, &replies.3] {
        assert!(
            ["booked", "already_processed"].contains(&r["outcome"].as_str().unwrap_or_default()),
            "{r}"
        );
    }
    assert_eq!(balances(&w).await, vec![(0, 0, 0), (0, 0, 0)]);
}

#[tokio::test]
async fn a_refund_of_an_unknown_order_waits_on_its_charge() {
    let (w, d) = world().await;
    let r = feed(&d, &feed_body("refund")).await;
    assert_eq!(r["outcome"], "money_back_parked", "{r}");
    let charge = storage::charges::get(w.t(), "billing:1001")
        .await
        .expect("read")
        .expect("kept");
    assert_eq!(charge.source(), "feed:billing");
    assert!(charge.is_parked());
}

#[tokio::test]
async fn a_sale_without_a_click_id_books_by_customer_key_or_by_email() {
    let (w, d) = world().await;
    // The lead of the sign-up form: cus_demo1 bound to bob by his code.
    w.bind("cus_demo1", None, BindSource::Code("bob".into()), CLICK_MS)
        .await;
    let r = feed(&d, &feed_body("sale")).await;
    assert_eq!(r["outcome"], "booked", "{r}");
    assert_eq!(balances(&w).await, vec![(2475, 0, 0), (495, 0, 0)]);

    // Another order, by a customer key the lead never saw, with the e-mail of a lead bound to
    // carol: the e-mail binding covers it.
    w.bind(
        "lead_erin",
        Some("erin@example.com"),
        BindSource::Code("carol".into()),
        CLICK_MS,
    )
    .await;
    let mut sale = feed_body("sale");
    sale["id"] = "evt_feed_1002_sale".into();
    sale["order_id"] = "1002".into();
    sale["customer"] = serde_json::json!({"key": "cust_erin", "email": "erin@example.com"});
    let r = feed(&d, &sale).await;
    assert_eq!(r["outcome"], "booked", "{r}");
    assert_eq!(w.balance("carol", "demo").await, (2475, 0, 0));
}
