//! DynamoDB requests of a payout run over many partners, counted by an SDK interceptor against
//! moto, then the same run over a table whose already-paid history is twice as long: the counts
//! must stay flat (the run reads no history).
//!
//! Seeding: one template partner is built by the engine itself on a scratch table (sales,
//! hold releases, earlier weekly payout runs exported and marked sent, and this week's
//! commissions), and its items are cloned for every partner (`bp00000` → `bp01234` in every
//! string) and written with `BatchWriteItem`, so the formats are the engine's own.
//!
//! Run: `make bench-payout` (starts moto; `PAYOUT_BENCH_PARTNERS`, default 10000; 20 under
//! `cargo test`). Prints the markdown of docs/performance.md ("Payout run").

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use chrono::{NaiveDate, TimeZone, Utc};
use engine::attribution::BindSource;
use engine::payout::export::{self, Mark};
use engine::payout::rail::Rails;
use engine::payout::{run, worker, ChunkMessage, ChunkQueue};
use engine::sales::invoice_paid;
use engine::{Engine, EngineError};
use rules::program::{Duration, Reward};
use storage::metrics::{Carried, RequestCounter};
use storage::{payouts, schema, testing, Table};
use testkit::engine::*;

/// The template partner's id, replaced in every string of its items.
const TAG: &str = "bp00000";
const DAY_MS: i64 = 86_400_000;
/// Commissions of the current week per partner (four released earlier, one by the run).
const CURRENT: usize = 5;

#[derive(Default)]
struct Chunks(Mutex<Vec<ChunkMessage>>);

#[async_trait::async_trait]
impl ChunkQueue for Chunks {
    async fn send(&self, chunks: &[ChunkMessage]) -> Result<(), EngineError> {
        self.0.lock().expect("lock").extend_from_slice(chunks);
        Ok(())
    }
}

/// This run's Friday (2026-12-04) and its schedule time, 00:15 UTC.
fn friday() -> (NaiveDate, i64) {
    let d = NaiveDate::from_ymd_opt(2026, 12, 4).expect("date");
    let t = Utc
        .from_utc_datetime(&d.and_hms_opt(0, 15, 0).expect("time"))
        .timestamp_millis();
    (d, t)
}

async fn sale(w: &World, name: &str, at_ms: i64, total: i64) {
    let customer = format!("cus_{TAG}_{name}");
    w.bind(
        &customer,
        None,
        BindSource::Code(TAG.into()),
        at_ms - DAY_MS,
    )
    .await;
    invoice_paid(
        &w.engine,
        invoice(
            &format!("evt_{TAG}_{name}"),
            &format!("in_{TAG}_{name}"),
            &customer,
            at_ms,
            vec![line("prod_demo", total)],
        ),
    )
    .await
    .expect("sale");
}

/// What one weekly run did.
struct Ran {
    balances: usize,
    chunks: usize,
    exported: usize,
}

/// One full weekly run of `date` at `at_ms` (schedule, workers, the operator's export and
/// mark sent), each phase counted into `phases`.
async fn weekly_run(engine: &Engine, date: NaiveDate, at_ms: i64, phases: &mut Phases) -> Ran {
    let q = Chunks::default();
    let report = run::run_program(engine, &q, "demo", date, at_ms, "bench")
        .await
        .expect("schedule");
    let chunks = std::mem::take(&mut *q.0.lock().expect("lock"));
    phases.mark("schedule (lease, release, payable index, fan-out)");
    for c in &chunks {
        worker::work_chunk(engine, &Rails::manual(), c)
            .await
            .expect("chunk");
    }
    phases.mark("workers (items with their reservations, approval, chunk records, finish)");
    let ds = date.format("%Y-%m-%d").to_string();
    let exported = export::export_run(engine, "demo", &ds, &format!("exp-{ds}"))
        .await
        .expect("export");
    phases.mark("partnerctl payouts export");
    export::mark(engine, "demo", &ds, &Mark::Sent, &[], at_ms + DAY_MS)
        .await
        .expect("mark");
    phases.mark("partnerctl payouts mark --sent");
    Ran {
        balances: report.balances,
        chunks: chunks.len(),
        exported: exported.len(),
    }
}

/// The template partner on a scratch table: `history` earlier weekly runs, each paying one
/// commission of 124.75, then this week's five commissions of 24.75 (123.75, above the
/// minimum); its items, and the scratch world.
async fn template(history: usize) -> Vec<HashMap<String, AttributeValue>> {
    let w = World::new().await;
    w.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None::<Reward>),
        &["prod_demo"],
    )
    .await;
    testkit::catalogue::put_member(w.t(), TAG, "demo", None, TAG).await;
    let (date, at) = friday();
    for k in (1..=history).rev() {
        let run_date = date - chrono::Days::new(7 * k as u64);
        let run_at = at - 7 * k as i64 * DAY_MS;
        sale(&w, &format!("h{k}"), run_at - 91 * DAY_MS, 49_900).await;
        weekly_run(&w.engine, run_date, run_at, &mut Phases::default()).await;
    }
    for k in 0..CURRENT - 1 {
        sale(&w, &format!("c{k}"), at - 96 * DAY_MS, 9_900).await;
    }
    // The hourly job releases those four two days before the run; the fifth's hold ends
    // half a day before the run: the run releases it.
    engine::release::release_due(&w.engine, at - 2 * DAY_MS, "bench")
        .await
        .expect("release");
    sale(&w, "c4", at - 90 * DAY_MS - DAY_MS / 2, 9_900).await;
    let client = &w.t().client;
    let mut items = vec![];
    let mut start = None;
    loop {
        // A bench's scratch table of one partner: read whole, once (never in the product).
        let out = client
            .scan()
            .table_name(&w.t().name)
            .set_exclusive_start_key(start)
            .send()
            .await
            .expect("scan");
        items.extend(out.items.unwrap_or_default());
        start = out.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    items.into_iter().filter(|i| mentions(i, TAG)).collect()
}

fn mentions(item: &HashMap<String, AttributeValue>, tag: &str) -> bool {
    fn value(v: &AttributeValue, tag: &str) -> bool {
        match v {
            AttributeValue::S(s) => s.contains(tag),
            AttributeValue::M(m) => m.values().any(|v| value(v, tag)),
            AttributeValue::L(l) => l.iter().any(|v| value(v, tag)),
            _ => false,
        }
    }
    item.values().any(|v| value(v, tag)) || item.keys().any(|k| k.contains(tag))
}

fn retag(v: &AttributeValue, to: &str) -> AttributeValue {
    match v {
        AttributeValue::S(s) => AttributeValue::S(s.replace(TAG, to)),
        AttributeValue::M(m) => AttributeValue::M(
            m.iter()
                .map(|(k, v)| (k.replace(TAG, to), retag(v, to)))
                .collect(),
        ),
        AttributeValue::L(l) => AttributeValue::L(l.iter().map(|v| retag(v, to)).collect()),
        other => other.clone(),
    }
}

/// A bench table: the template's items for `partners` partners, plus the program.
async fn seeded_table(
    ddb: &aws_sdk_dynamodb::Client,
    template: &[HashMap<String, AttributeValue>],
    partners: usize,
) -> Table {
    let name = testing::unique_name("payoutbench");
    schema::table_definition(schema::TEMPLATE)
        .expect("template")
        .create(ddb, &name)
        .await
        .expect("table");
    let table = Table::new(ddb.clone(), name.clone());
    testkit::catalogue::put_program(
        &table,
        &program("demo", pct("0.25"), Duration::Lifetime, None::<Reward>),
    )
    .await;
    let mut batch: Vec<WriteRequest> = vec![];
    for p in 0..partners {
        let to = format!("bp{p:05}");
        for item in template {
            let cloned: HashMap<String, AttributeValue> = item
                .iter()
                .map(|(k, v)| (k.clone(), retag(v, &to)))
                .collect();
            batch.push(
                WriteRequest::builder()
                    .put_request(
                        PutRequest::builder()
                            .set_item(Some(cloned))
                            .build()
                            .expect("put"),
                    )
                    .build(),
            );
            if batch.len() == 25 {
                write(ddb, &name, std::mem::take(&mut batch)).await;
            }
        }
    }
    if !batch.is_empty() {
        write(ddb, &name, batch).await;
    }
    table
}

async fn write(ddb: &aws_sdk_dynamodb::Client, table: &str, mut requests: Vec<WriteRequest>) {
    while !requests.is_empty() {
        let out = ddb
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .expect("batch write");
        requests = out
            .unprocessed_items
            .and_then(|mut u| u.remove(table))
            .unwrap_or_default();
    }
}

/// One phase's label, requests by kind and what they carried.
type PhaseRow = (String, BTreeMap<String, u64>, BTreeMap<String, Carried>);

/// Counts per phase of a run.
#[derive(Default)]
struct Phases {
    counter: Option<RequestCounter>,
    rows: Vec<PhaseRow>,
}

impl Phases {
    fn mark(&mut self, label: &str) {
        if let Some(c) = &self.counter {
            self.rows
                .push((label.to_string(), c.snapshot(), c.carried()));
            c.reset();
        }
    }
}

/// Write and read units of one phase, modelled from what its requests carried (items ≤ 1 KB:
/// a transactional write 2 WRU per item, another write 1; a strongly consistent read 1 RRU per
/// item; a `Query` 1 RRU per 4 KB of its answer).
fn units(carried: &BTreeMap<String, Carried>) -> (u64, u64) {
    let (mut wru, mut rru) = (0, 0);
    for (op, c) in carried {
        match op.rsplit('.').next().unwrap_or("") {
            "TransactWriteItems" => wru += 2 * c.items,
            "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" => wru += c.items,
            "GetItem" | "BatchGetItem" => rru += c.items,
            "Query" => rru += c.response_bytes.div_ceil(4096).max(c.items),
            "TransactGetItems" => rru += 2 * c.items,
            _ => {}
        }
    }
    (wru, rru)
}

async fn measure(
    label: &str,
    config: &aws_config::SdkConfig,
    template: &[HashMap<String, AttributeValue>],
    partners: usize,
) -> (u64, Vec<String>) {
    let counter = RequestCounter::new();
    let (ddb, _) = counter.clients(config);
    let started = std::time::Instant::now();
    let table = seeded_table(&ddb, template, partners).await;
    eprintln!(
        "{label}: seeded {} items in {:.0?}",
        template.len() * partners,
        started.elapsed()
    );
    let engine = Engine::new(
        table.clone(),
        tracking::KeyRing::from_secrets(SECRET, None).expect("key"),
    )
    .with_program_cache(engine::PROGRAM_CACHE_TTL);
    counter.reset();
    let started = std::time::Instant::now();
    let (date, at) = friday();
    let mut phases = Phases {
        counter: Some(counter.clone()),
        ..Default::default()
    };
    let ran = weekly_run(&engine, date, at, &mut phases).await;
    eprintln!("{label}: run worked in {:.0?} (moto)", started.elapsed());
    let ds = date.format("%Y-%m-%d").to_string();
    let items = payouts::run_items(&table, "demo", &ds)
        .await
        .expect("items");
    assert_eq!(ran.balances, partners, "{label}: every partner is payable");
    assert_eq!(ran.exported, partners, "{label}: one item per partner");
    assert!(
        items.iter().all(|i| i.amount == 12_375),
        "{label}: each item is this week's 123.75"
    );
    let mut lines = vec![];
    let mut total = 0;
    let (mut wru_all, mut rru_all) = (0, 0);
    for (phase, counts, carried) in &phases.rows {
        let n: u64 = counts.values().sum();
        total += n;
        let (wru, rru) = units(carried);
        wru_all += wru;
        rru_all += rru;
        let detail = counts
            .iter()
            .map(|(k, v)| format!("{} {v}", k.rsplit('.').next().unwrap_or(k)))
            .collect::<Vec<_>>()
            .join(", ");
        lines.push(format!(
            "| {label} | {phase} | {n} | {detail} | {wru} | {rru} |"
        ));
    }
    let cost = wru_all as f64 * 0.625e-6 + rru_all as f64 * 0.125e-6;
    lines.push(format!(
        "| {label} | **run total** ({} chunks, {} items) | **{total}** | | {wru_all} | {rru_all} |",
        ran.chunks, ran.exported
    ));
    lines.push(format!(
        "| {label} | DynamoDB cost at on-demand prices | | | ${cost:.4} | |"
    ));
    (total, lines)
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` (make test) runs this target
    // without it, as a smoke test over a few partners.
    let benching = std::env::args().any(|a| a == "--bench");
    let partners: usize = std::env::var("PAYOUT_BENCH_PARTNERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if benching { 10_000 } else { 20 });
    let config = testing::local_config().await;
    let base = template(5).await;
    let doubled = template(10).await;
    eprintln!(
        "template partner: {} items (5 paid weeks), {} items (10 paid weeks)",
        base.len(),
        doubled.len()
    );
    let commissions = partners * (5 + CURRENT);
    let (n1, mut lines) = measure(
        &format!("{partners} partners, {commissions} commissions"),
        &config,
        &base,
        partners,
    )
    .await;
    let (n2, lines2) = measure(
        &format!(
            "paid history doubled ({} commissions)",
            partners * (10 + CURRENT)
        ),
        &config,
        &doubled,
        partners,
    )
    .await;
    lines.extend(lines2);
    println!("| table | phase | DynamoDB requests | by kind | WRU (model) | RRU (model) |");
    println!("|---|---|---:|---|---:|---:|");
    for l in lines {
        println!("{l}");
    }
    let change = (n2 as f64 - n1 as f64) / n1 as f64 * 100.0;
    println!();
    println!(
        "Requests with the paid history doubled: {n2} against {n1} ({change:+.2} %); template items per partner {} → {}.",
        base.len(),
        doubled.len()
    );
    assert!(change.abs() <= 5.0, "the run reads the paid history");
}
