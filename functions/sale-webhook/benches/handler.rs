//! Handler latency in-process, signature verification included, against a no-op sink.
//!
//! `cargo bench -p sale-webhook --bench handler` runs criterion (mean and spread) and then a
//! plain loop that prints p50 / p99 from sorted samples. Under `cargo test` (no `--bench`) every
//! benchmark runs once, as a smoke test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BatchSize, Criterion};
use lambda_http::http::Method;
use lambda_http::{Body, Request};
use sale_webhook::policy::EventPolicy;
use sale_webhook::signature::{sign_header, verify};
use sale_webhook::sink::NewAttention;
use sale_webhook::{
    handle, BindOutcome, BindRequest, Deps, PaidInvoice, PaymentFailed, SaleOutcome, SaleSink,
    SigningSecrets, SinkError, SubscriptionEnded,
};
use storage::ManualClock;

const SECRET: &str = "whsec_bench_current";
const OLD_SECRET: &str = "whsec_bench_previous";

/// Answers like a successful engine, instantly.
struct NoopSink;

#[async_trait::async_trait]
impl SaleSink for NoopSink {
    async fn bind(&self, _req: BindRequest) -> Result<BindOutcome, SinkError> {
        Ok(BindOutcome::Bound {
            program_id: "demo".into(),
            partner_id: "alice".into(),
        })
    }
    async fn invoice_paid(&self, _inv: PaidInvoice) -> Result<SaleOutcome, SinkError> {
        Ok(SaleOutcome::Booked {
            program_ids: vec!["demo".into()],
            commission_ids: vec!["demo:in_demo1:t1".into()],
        })
    }
    async fn invoice_payment_failed(&self, _f: PaymentFailed) -> Result<(), SinkError> {
        Ok(())
    }
    async fn subscription_ended(&self, _e: SubscriptionEnded) -> Result<(), SinkError> {
        Ok(())
    }
    async fn money_back(
        &self,
        _m: sale_webhook::MoneyBack,
    ) -> Result<sale_webhook::MoneyBackOutcome, SinkError> {
        Ok(sale_webhook::MoneyBackOutcome::Parked)
    }
    async fn needs_attention(&self, rec: &NewAttention<'_>) -> Result<String, SinkError> {
        Ok(rec.id())
    }
    async fn api_version_accepted(&self, _id: &str) -> Result<bool, SinkError> {
        Ok(false)
    }
}

/// A Stripe payload from `events/stripe/`, its signature time, and its signature header.
struct Fixture {
    body: String,
    header: String,
    t: i64,
}

fn fixture(name: &str) -> Fixture {
    let path = format!(
        "{}/../../events/stripe/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let created = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["created"].as_i64())
        .expect("created");
    let t = created + 1;
    // The old secret signs too, as during a rotation: two v1 values, the second one ours.
    let header = format!(
        "{},v1={}",
        sign_header(OLD_SECRET, t, body.as_bytes()),
        sale_webhook::signature::sign_hex(SECRET, t, body.as_bytes())
    );
    Fixture { body, header, t }
}

fn request(f: &Fixture, header: &str) -> Request {
    let mut req = Request::new(Body::Text(f.body.clone()));
    *req.method_mut() = Method::POST;
    if let Ok(v) = header.parse() {
        req.headers_mut().insert("stripe-signature", v);
    }
    req
}

fn deps(t: i64) -> Deps<NoopSink> {
    Deps {
        sink: NoopSink,
        secrets: SigningSecrets::from_list(SECRET).expect("secret"),
        clock: Arc::new(ManualClock::at(t * 1000)),
        policy: EventPolicy::test_mode(),
        lines: None,
        feed: sale_webhook::FeedSources::none(),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
}

fn bench_handler(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("handle");
    for name in [
        "invoice.paid",
        "checkout.session.completed",
        "charge.refunded",
    ] {
        let f = fixture(name);
        let deps = deps(f.t);
        g.bench_function(name, |b| {
            b.iter_batched(
                || request(&f, &f.header),
                |req| {
                    let resp = rt.block_on(handle(&deps, req)).expect("response");
                    assert_eq!(resp.status(), 200);
                    resp
                },
                BatchSize::SmallInput,
            )
        });
    }
    let f = fixture("invoice.paid");
    let deps = deps(f.t);
    let forged = format!("t={},v1={}", f.t, "0".repeat(64));
    g.bench_function("bad signature", |b| {
        b.iter_batched(
            || request(&f, &forged),
            |req| {
                let resp = rt.block_on(handle(&deps, req)).expect("response");
                assert_eq!(resp.status(), 400);
                resp
            },
            BatchSize::SmallInput,
        )
    });
    // The sale feed: a sale with its click id (bind, then book) and a refund, verified and read.
    for name in ["sale", "refund"] {
        let path = format!(
            "{}/../../events/sale-feed/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let body = if name == "sale" {
            body.replacen(
                "\"order_id\"",
                "\"click_id\": \"AAZVbr8IAFAkDAQIDk3ZLqz1pYLritR9alice\",\n  \"order_id\"",
                1,
            )
        } else {
            body
        };
        let t = 1_800_000_000;
        let header = sign_header(SECRET, t, body.as_bytes());
        let mut feed_deps = self::deps(t);
        feed_deps.feed =
            sale_webhook::FeedSources::from_spec(&format!("billing={SECRET}")).expect("feed");
        g.bench_function(format!("feed {name}"), |b| {
            b.iter_batched(
                || {
                    let mut req = Request::new(Body::Text(body.clone()));
                    *req.method_mut() = Method::POST;
                    *req.uri_mut() = "/webhooks/sale".parse().expect("uri");
                    req.headers_mut()
                        .insert("sale-source", "billing".parse().expect("h"));
                    req.headers_mut()
                        .insert("sale-signature", header.parse().expect("h"));
                    req
                },
                |req| {
                    let resp = rt.block_on(handle(&feed_deps, req)).expect("response");
                    assert_eq!(resp.status(), 200);
                    resp
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();

    let secrets = SigningSecrets::from_list(SECRET).expect("secret");
    c.bench_function("signature/verify invoice.paid", |b| {
        b.iter(|| verify(Some(&f.header), f.body.as_bytes(), &secrets, f.t * 1000))
    });
}

/// p50 / p99 of `handle` from sorted samples (criterion reports means).
fn percentiles(samples: usize) {
    let rt = runtime();
    for name in ["invoice.paid", "checkout.session.completed"] {
        let f = fixture(name);
        let deps = deps(f.t);
        // Warm-up: allocator, caches.
        for _ in 0..samples.min(1_000) {
            let _ = rt.block_on(handle(&deps, request(&f, &f.header)));
        }
        let mut ns: Vec<u128> = Vec::with_capacity(samples);
        for _ in 0..samples {
            let req = request(&f, &f.header);
            let start = Instant::now();
            let resp = rt.block_on(handle(&deps, req)).expect("response");
            ns.push(start.elapsed().as_nanos());
            assert_eq!(resp.status(), 200);
        }
        ns.sort_unstable();
        let at = |q: usize| ns[(ns.len() * q / 100).min(ns.len() - 1)];
        let us = |n: u128| Duration::from_nanos(n as u64).as_secs_f64() * 1e6;
        println!(
            "percentiles handle/{name}: n={} p50={:.1} µs p90={:.1} µs p99={:.1} µs max={:.1} µs (body {} bytes)",
            ns.len(),
            us(at(50)),
            us(at(90)),
            us(at(99)),
            us(ns[ns.len() - 1]),
            f.body.len()
        );
    }
}

criterion_group!(benches, bench_handler);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benchmarking = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    benches();
    Criterion::default().configure_from_args().final_summary();
    percentiles(if benchmarking { 20_000 } else { 10 });
}
