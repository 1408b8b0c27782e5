//! Rail calls and DynamoDB requests of a payout run paid through each automatic rail, against
//! moto and the local fakes (what the rails received is counted by the fakes, DynamoDB
//! requests by an SDK interceptor): the schedule and its workers handing every item over, the
//! poller's first status read booking them sent, and one daily watch read.
//!
//! Run: `make bench-rails` (starts moto; `RAILS_BENCH_PARTNERS`, default 1000, each with one
//! payable balance; 20 under `cargo test`). Counts are per chunk of 100 balances or per item
//! and scale linearly, so the figures for 10,000 partners are the measured ones × 10,000 / N.
//! Prints the markdown of docs/performance.md ("Payout rails").

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{NaiveDate, TimeZone, Utc};
use engine::payout::handover::{self, POLL_PENDING_MS, POLL_WATCH_MS};
use engine::payout::rail::Rails;
use engine::payout::{run, worker};
use engine::Engine;
use fakerails::paypal::FakePayPal;
use fakerails::stripe::FakeStripeConnect;
use rails::http::Http;
use rails::paypal::{Credentials, PayPal};
use rails::stripe_connect::StripeConnect;
use rules::program::{Duration, Reward};
use rules::{PayoutItemState, PayoutMethod};
use storage::metrics::RequestCounter;
use storage::{partners, payouts, testing, ManualClock, Table};
use testkit::engine::*;
use testkit::faults::RecordingQueue;

fn friday() -> (NaiveDate, i64) {
    let d = NaiveDate::from_ymd_opt(2026, 4, 10).expect("date");
    let t = Utc
        .from_utc_datetime(&d.and_hms_opt(0, 15, 0).expect("time"))
        .timestamp_millis();
    (d, t)
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Rail calls by endpoint (`METHOD /path`, ids folded).
fn calls(received: &[fakerails::Received]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in received {
        let path = if r.path.starts_with("/v1/payments/payouts/") {
            "/v1/payments/payouts/{id}"
        } else {
            r.path.as_str()
        };
        *out.entry(format!("{} {path}", r.method)).or_default() += 1;
    }
    out
}

struct Phase {
    label: &'static str,
    dynamo: BTreeMap<String, u64>,
    rail: BTreeMap<String, usize>,
}

async fn measure(rail: &str, partners_n: usize, config: &aws_config::SdkConfig) -> Vec<Phase> {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None::<Reward>),
        &["prod_demo"],
    )
    .await;
    let started = std::time::Instant::now();
    for p in 0..partners_n {
        let id = format!("bp{p:05}");
        let mut partner = testkit::catalogue::partner(&id);
        if rail == "stripe_connect" {
            partner.payout_method = PayoutMethod::StripeConnect {
                account_id: format!("acct_{id}"),
            };
        }
        testkit::catalogue::put_member(w.t(), &id, "demo", None, &id).await;
        w.t()
            .put(partners::partner_item(&partner).expect("partner"))
            .await
            .expect("put partner");
        w.customer_of_pays(&id, &id, T0 + DAY, 49_900).await;
    }
    eprintln!(
        "{rail}: seeded {partners_n} partners in {:.0?}",
        started.elapsed()
    );
    let paypal = FakePayPal::start(loopback(), "bench", "secret")
        .await
        .expect("fake PayPal");
    let stripe = FakeStripeConnect::start(loopback(), "sk_test_bench")
        .await
        .expect("fake Stripe");
    let clock = ManualClock::at(T0);
    let http = Http::new(StdDuration::from_secs(20), Arc::new(clock.clone())).expect("http");
    let rails = Rails::new(vec![
        Arc::new(PayPal::new(
            http.clone(),
            &paypal.base_url,
            Credentials {
                client_id: "bench".into(),
                secret: "secret".into(),
            },
        )),
        Arc::new(StripeConnect::new(http, &stripe.base_url, "sk_test_bench")),
    ]);
    let counter = RequestCounter::new();
    let (ddb, _) = counter.clients(config);
    let engine = Engine::new(
        Table::new(ddb, w.t().name.clone()).with_clock(Arc::new(clock.clone())),
        w.engine.keys.clone(),
    )
    .with_program_cache(engine::PROGRAM_CACHE_TTL);
    let received = || match rail {
        "paypal" => paypal.received(),
        _ => stripe.received(),
    };
    let mut phases = vec![];
    let mut seen = 0;
    let mut mark = |label: &'static str, phases: &mut Vec<Phase>| {
        let r = received();
        phases.push(Phase {
            label,
            dynamo: counter.snapshot(),
            rail: calls(&r[seen..]),
        });
        seen = r.len();
        counter.reset();
    };
    counter.reset();
    let (date, at) = friday();
    let q = RecordingQueue::default();
    let started = std::time::Instant::now();
    run::run_program(&engine, &q, "demo", date, at, "bench")
        .await
        .expect("schedule");
    for c in q.take() {
        worker::work_chunk(&engine, &rails, &c)
            .await
            .expect("chunk");
    }
    mark("schedule and workers (items, hand-over)", &mut phases);
    clock.advance(StdDuration::from_millis(POLL_PENDING_MS as u64 + 1));
    handover::poll_due(&engine, &rails, "bench", 1_000)
        .await
        .expect("poll");
    mark("poller, first read (books sent)", &mut phases);
    clock.advance(StdDuration::from_millis(POLL_WATCH_MS as u64));
    handover::poll_due(&engine, &rails, "bench", 1_000)
        .await
        .expect("poll");
    mark("poller, one daily watch read", &mut phases);
    eprintln!("{rail}: run and polls in {:.0?} (moto)", started.elapsed());
    let items = payouts::run_items(w.t(), "demo", "2026-04-10")
        .await
        .expect("items");
    assert_eq!(items.len(), partners_n, "{rail}: one item per partner");
    assert!(
        items.iter().all(|i| i.state == PayoutItemState::Sent),
        "{rail}: every item sent"
    );
    let paid = match rail {
        "paypal" => paypal.items_by_sender_item_id(),
        _ => stripe.transfers_by_item(),
    };
    assert_eq!(paid.len(), partners_n, "{rail}: every partner paid");
    assert!(paid.values().all(|n| *n == 1), "{rail}: paid once");
    phases
}

#[tokio::main]
async fn main() {
    let benching = std::env::args().any(|a| a == "--bench");
    let n: usize = std::env::var("RAILS_BENCH_PARTNERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 1_000 } else { 20 });
    let config = testing::local_config().await;
    println!(
        "Measured with {n} payable partners (× {} for 10,000):",
        10_000 / n.max(1)
    );
    println!();
    println!("| rail | phase | DynamoDB requests | by kind | rail calls | by endpoint | per 10,000 partners (DynamoDB / rail) |");
    println!("|---|---|---:|---|---:|---|---:|");
    for rail in ["paypal", "stripe_connect"] {
        let phases = measure(rail, n, &config).await;
        let (mut d_all, mut r_all) = (0u64, 0usize);
        for p in &phases {
            let d: u64 = p.dynamo.values().sum();
            let r: usize = p.rail.values().sum();
            d_all += d;
            r_all += r;
            let kinds = p
                .dynamo
                .iter()
                .map(|(k, v)| format!("{} {v}", k.rsplit('.').next().unwrap_or(k)))
                .collect::<Vec<_>>()
                .join(", ");
            let eps = p
                .rail
                .iter()
                .map(|(k, v)| format!("{k} {v}"))
                .collect::<Vec<_>>()
                .join(", ");
            println!(
                "| {rail} | {} | {d} | {kinds} | {r} | {eps} | {} / {} |",
                p.label,
                d * 10_000 / n as u64,
                r * 10_000 / n
            );
        }
        println!(
            "| {rail} | **total** | **{d_all}** | {:.2} per partner | **{r_all}** | {:.3} per partner | **{} / {}** |",
            d_all as f64 / n as f64,
            r_all as f64 / n as f64,
            d_all * 10_000 / n as u64,
            r_all * 10_000 / n
        );
    }
}
