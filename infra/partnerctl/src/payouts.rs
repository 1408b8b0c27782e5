//! `partnerctl payouts`: the payout runs (state, progress, summary, whether a fanned-out run
//! has finished), one run's items and waiting balances, the manual rail's export (PayPal Payouts
//! Web files) and settlement, the automatic rails' batches, and the payout run's dead letters
//! with their replay.
//!
//! A run is named `PROGRAM:DATE` (the program's local payout date, `YYYY-MM-DD`).

use std::fmt::Write as _;
use std::path::Path;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_sdk_sqs::types::Message;
use engine::payout::export::{self, Mark};
use engine::payout::preview::{self, run_time_for, Preview};
use engine::payout::rail::Rails;
use engine::payout::review::{review_run, ReviewAction, Reviewed};
use engine::payout::{ChunkMessage, SqsChunkQueue};
use rules::Currency;
use serde::Serialize;
use storage::partners::{self, PayoutStanding, StandingNote, UnusableMethod};
use storage::payouts::{self, PayoutChunk, PayoutItem, PayoutRun, RunState, WaitingBalance};
use storage::{programs, Table};

use crate::dead_letters::{delete, receive, show_again};
use crate::show::money;
use crate::{CliError, Format};

/// Runs listed per program (newest first).
const RUNS_LISTED: usize = 20;

/// `PROGRAM:DATE` → (program, date).
pub fn parse_run(run: &str) -> Result<(String, String), CliError> {
    let (program, date) = run.rsplit_once(':').ok_or_else(|| {
        CliError::Usage(format!(
            "{run:?}: a run is PROGRAM:DATE, e.g. demo:2026-04-10"
        ))
    })?;
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| CliError::Usage(format!("{run:?}: the date is YYYY-MM-DD")))?;
    if program.is_empty() {
        return Err(CliError::Usage(format!("{run:?}: no program")));
    }
    Ok((program.to_string(), date.to_string()))
}

fn json<T: Serialize>(v: &T) -> Result<String, CliError> {
    serde_json::to_string(v)
        .map(|s| s + "\n")
        .map_err(|e| CliError::Usage(e.to_string()))
}

fn state_name<T: Serialize>(s: &T) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn amounts(m: &std::collections::BTreeMap<Currency, i64>) -> String {
    if m.is_empty() {
        return "-".into();
    }
    m.iter()
        .map(|(c, a)| money(*a, *c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn waiting_line(run: &PayoutRun) -> String {
    match &run.summary {
        Some(s) if !s.waiting.is_empty() => s
            .waiting
            .iter()
            .map(|(r, w)| format!("{r}: {}", w.balances))
            .collect::<Vec<_>>()
            .join(", "),
        Some(_) => "-".into(),
        None => "?".into(),
    }
}

/// A run as listed.
#[derive(Debug, Serialize)]
pub struct RunView {
    pub run: String,
    #[serde(flatten)]
    pub record: PayoutRun,
    /// The run is done: every chunk of its fan-out was worked and the summary written.
    pub finished: bool,
    /// Chunks of the current generation worked so far (of `chunks_total`).
    pub chunks_done: u32,
}

async fn run_view(table: &Table, run: PayoutRun) -> Result<RunView, CliError> {
    let chunks = payouts::run_chunks(table, &run.program_id, &run.date, run.generation).await?;
    let mut distinct: Vec<u32> = chunks.iter().map(|c| c.chunk).collect();
    distinct.dedup();
    Ok(RunView {
        run: format!("{}:{}", run.program_id, run.date),
        finished: run.state == RunState::Done,
        chunks_done: distinct.len() as u32,
        record: run,
    })
}

/// The runs of `program` (every program when `None`), newest first.
pub async fn list(
    table: &Table,
    format: Format,
    program: Option<&str>,
) -> Result<String, CliError> {
    let ids: Vec<String> = match program {
        Some(p) => vec![p.to_string()],
        None => programs::list_programs(table)
            .await?
            .into_iter()
            .map(|p| p.id)
            .collect(),
    };
    let mut views = vec![];
    for id in ids {
        for run in payouts::list_runs(table, &id, RUNS_LISTED).await? {
            views.push(run_view(table, run).await?);
        }
    }
    if format == Format::Json {
        return json(&views);
    }
    let mut out = String::new();
    if views.is_empty() {
        let _ = writeln!(out, "no payout runs");
        return Ok(out);
    }
    let _ = writeln!(
        out,
        "{:<24} {:<12} {:>7} {:>9} {:>6} {:<22} {:<9} WAITING",
        "RUN", "STATE", "CHUNKS", "BALANCES", "ITEMS", "AMOUNT", "FINISHED"
    );
    for v in &views {
        let r = &v.record;
        let total = r
            .chunks_total
            .map(|t| t.to_string())
            .unwrap_or_else(|| "?".into());
        let (items, amount) = match &r.summary {
            Some(s) => (s.items.to_string(), amounts(&s.item_amounts)),
            None => ("?".into(), "?".into()),
        };
        let _ = writeln!(
            out,
            "{:<24} {:<12} {:>7} {:>9} {:>6} {:<22} {:<9} {}",
            v.run,
            state_name(&r.state),
            format!("{}/{total}", v.chunks_done),
            r.balances_total,
            items,
            amount,
            if v.finished { "yes" } else { "no" },
            waiting_line(r)
        );
    }
    Ok(out)
}

/// One run: the record, its items and the balances that wait with their reasons.
#[derive(Debug, Serialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub view: RunView,
    pub items: Vec<PayoutItem>,
    pub waiting: Vec<WaitingBalance>,
}

pub async fn detail(table: &Table, run: &str) -> Result<RunDetail, CliError> {
    let (program, date) = parse_run(run)?;
    let record = payouts::get_run(table, &program, &date)
        .await?
        .ok_or_else(|| CliError::Usage(format!("no payout run {program}:{date}")))?;
    let chunks: Vec<PayoutChunk> =
        payouts::run_chunks(table, &program, &date, record.generation).await?;
    let mut waiting: Vec<WaitingBalance> = chunks.into_iter().flat_map(|c| c.waiting).collect();
    waiting.sort_by(|a, b| (&a.partner_id, a.currency).cmp(&(&b.partner_id, b.currency)));
    waiting.dedup_by(|a, b| a.partner_id == b.partner_id && a.currency == b.currency);
    Ok(RunDetail {
        view: run_view(table, record).await?,
        items: payouts::run_items(table, &program, &date).await?,
        waiting,
    })
}

pub async fn show(table: &Table, format: Format, run: &str) -> Result<String, CliError> {
    let d = detail(table, run).await?;
    if format == Format::Json {
        return json(&d);
    }
    let r = &d.view.record;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "run {}  state {}  generation {}  chunks {}/{}  balances {}  finished {}",
        d.view.run,
        state_name(&r.state),
        r.generation,
        d.view.chunks_done,
        r.chunks_total
            .map(|t| t.to_string())
            .unwrap_or_else(|| "?".into()),
        r.balances_total,
        if d.view.finished { "yes" } else { "no" }
    );
    if let Some(s) = &r.summary {
        let _ = writeln!(
            out,
            "items {} ({})  sent {} ({})  failed {}",
            s.items,
            amounts(&s.item_amounts),
            s.sent,
            amounts(&s.sent_amounts),
            s.failed
        );
        for (reason, w) in &s.waiting {
            let _ = writeln!(
                out,
                "waiting {reason}: {} ({})",
                w.balances,
                amounts(&w.amounts)
            );
        }
    }
    let _ = writeln!(out);
    if d.items.is_empty() {
        let _ = writeln!(out, "no payout items");
    } else {
        let _ = writeln!(
            out,
            "{:<16} {:<20} {:>14} {:<10} {:<18} {:<20} NOTE",
            "PARTNER", "REFERENCE", "AMOUNT", "STATE", "EXPORT", "ITEM"
        );
        for i in &d.items {
            let _ = writeln!(
                out,
                "{:<16} {:<20} {:>14} {:<10} {:<18} {:<20} {}",
                i.partner_id,
                i.reference,
                money(i.amount, i.currency),
                state_name(&i.state),
                i.export_id.as_deref().unwrap_or("-"),
                i.item_id,
                i.rail_note.as_deref().unwrap_or("")
            );
        }
    }
    if !d.waiting.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<16} {:>14} {:>14}  WAITS BECAUSE",
            "PARTNER", "AVAILABLE", "FORFEITED"
        );
        for w in &d.waiting {
            let _ = writeln!(
                out,
                "{:<16} {:>14} {:>14}  {}",
                w.partner_id,
                money(w.available, w.currency),
                if w.forfeited > 0 {
                    money(w.forfeited, w.currency)
                } else {
                    "-".into()
                },
                waiting_why(w)
            );
        }
    }
    Ok(out)
}

/// What an export wrote.
#[derive(Debug, Serialize)]
pub struct Exported {
    pub export_id: String,
    pub items: usize,
    pub files: Vec<String>,
}

/// Export the run's approved PayPal items to PayPal Payouts Web files in `out_dir` (marking them
/// submitted first), or write the files of an earlier export `again` once more. `now_ms`
/// (technical time) names a new export.
pub async fn export(
    engine: &engine::Engine,
    run: &str,
    out_dir: &Path,
    again: Option<&str>,
    now_ms: i64,
) -> Result<Exported, CliError> {
    let (program, date) = parse_run(run)?;
    if payouts::get_run(&engine.table, &program, &date)
        .await?
        .is_none()
    {
        return Err(CliError::Usage(format!("no payout run {program}:{date}")));
    }
    let export_id = match again {
        Some(id) => id.to_string(),
        None => {
            let at = chrono::DateTime::from_timestamp_millis(now_ms).unwrap_or_default();
            format!("exp-{}", at.format("%Y%m%dT%H%M%S%3f"))
        }
    };
    let items = export::export_run(engine, &program, &date, &export_id)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let note = format!("Partner commissions, {program}, {date}");
    std::fs::create_dir_all(out_dir).map_err(|source| CliError::Io {
        path: out_dir.display().to_string(),
        source,
    })?;
    let mut files = vec![];
    for f in export::paypal_payouts_files(&export_id, &items, &note) {
        let path = out_dir.join(&f.file_name);
        std::fs::write(&path, &f.contents).map_err(|source| CliError::Io {
            path: path.display().to_string(),
            source,
        })?;
        files.push(path.display().to_string());
    }
    Ok(Exported {
        export_id,
        items: items.len(),
        files,
    })
}

/// Settle the run's items as reported (`partners` empty: all of them) at business time
/// `at_ms`; the items that moved.
pub async fn mark(
    engine: &engine::Engine,
    run: &str,
    mark: &Mark,
    partners: &[String],
    at_ms: i64,
) -> Result<Vec<PayoutItem>, CliError> {
    let (program, date) = parse_run(run)?;
    if payouts::get_run(&engine.table, &program, &date)
        .await?
        .is_none()
    {
        return Err(CliError::Usage(format!("no payout run {program}:{date}")));
    }
    export::mark(engine, &program, &date, mark, partners, at_ms)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// Approve, hold or cancel a run's items (manual review), of `partners` or all.
pub async fn review(
    engine: &engine::Engine,
    run: &str,
    action: ReviewAction,
    partners: &[String],
    by: &str,
    at_ms: i64,
) -> Result<Vec<Reviewed>, CliError> {
    let (program, date) = parse_run(run)?;
    if payouts::get_run(&engine.table, &program, &date)
        .await?
        .is_none()
    {
        return Err(CliError::Usage(format!("no payout run {program}:{date}")));
    }
    review_run(engine, &program, &date, partners, action, by, at_ms)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// The lines `review` prints for a person.
pub fn review_lines(run: &str, done: &[Reviewed]) -> String {
    let mut out = String::new();
    for r in done {
        let shrunk = if r.amount_after != r.amount_before {
            format!(
                " (was {}: clawed back since)",
                money(r.amount_before, r.currency)
            )
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{} {} {} -> {}{shrunk}",
            r.partner_id,
            money(r.amount_after, r.currency),
            state_name(&r.from),
            state_name(&r.to)
        );
    }
    let _ = writeln!(out, "{run}: {} items changed", done.len());
    out
}

/// The run of `program` for `date`, computed and not written, at the business time `at_ms`
/// (default: the schedule's invocation for that date).
pub async fn preview(
    engine: &engine::Engine,
    program: &str,
    date: &str,
    at_ms: Option<i64>,
) -> Result<Preview, CliError> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map_err(|_| CliError::Usage(format!("--date {date:?}: YYYY-MM-DD")))?;
    let p = programs::get_program(&engine.table, program)
        .await?
        .ok_or_else(|| CliError::Usage(format!("no program {program}")))?;
    let t = match at_ms {
        Some(t) => t,
        None => run_time_for(&p, day).ok_or_else(|| {
            CliError::Usage(format!(
                "{date} is not a payout date of {program} (pass --at to preview any time)"
            ))
        })?,
    };
    preview::preview(engine, program, day, t)
        .await
        .map_err(|e| CliError::Usage(e.to_string()))
}

/// The preview as a table.
pub fn preview_table(p: &Preview) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "preview {}:{}  at {}  paid {}  forfeited {}{}",
        p.program_id,
        p.date,
        crate::show::time(p.business_time_ms),
        amounts(&p.paid_amounts),
        amounts(&p.forfeited_amounts),
        p.run_state
            .as_ref()
            .map(|s| format!("  (the run exists: {s}; its items are not repeated here)"))
            .unwrap_or_default()
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<16} {:>14} {:<14} {:>14}  WHY",
        "PARTNER", "AMOUNT", "OUTCOME", "FORFEITED"
    );
    for c in preview_rows(p) {
        let _ = writeln!(
            out,
            "{:<16} {:>14} {:<14} {:>14}  {}",
            c.partner_id, c.amount, c.outcome, c.forfeited, c.why
        );
    }
    out
}

/// The preview as CSV (`partner_id,currency,amount,outcome,forfeited,why`, amounts in major
/// units of the currency).
pub fn preview_csv(p: &Preview) -> String {
    let mut out = String::from(
        "partner_id,currency,amount,outcome,forfeited,why
",
    );
    for c in preview_rows(p) {
        let _ = writeln!(
            out,
            "{},{},{},{},{},\"{}\"",
            c.partner_id, c.currency, c.amount_major, c.outcome, c.forfeited_major, c.why
        );
    }
    out
}

struct PreviewRow {
    partner_id: String,
    currency: String,
    amount: String,
    amount_major: String,
    outcome: &'static str,
    forfeited: String,
    forfeited_major: String,
    why: String,
}

fn preview_rows(p: &Preview) -> Vec<PreviewRow> {
    let major = |a: i64, c: Currency| rules::Money::new(a, c).major_string();
    let mut rows: Vec<PreviewRow> = p
        .items
        .iter()
        .map(|i| PreviewRow {
            partner_id: i.partner_id.clone(),
            currency: i.currency.code().to_string(),
            amount: money(i.amount, i.currency),
            amount_major: major(i.amount, i.currency),
            outcome: "paid",
            forfeited: "-".into(),
            forfeited_major: major(0, i.currency),
            why: if i.under_minimum {
                "under the minimum: the accrual limit was reached".into()
            } else {
                String::new()
            },
        })
        .collect();
    rows.extend(p.waiting.iter().map(|w| PreviewRow {
        partner_id: w.partner_id.clone(),
        currency: w.currency.code().to_string(),
        amount: money(w.available, w.currency),
        amount_major: major(w.available, w.currency),
        outcome: "waits",
        forfeited: if w.forfeited > 0 {
            money(w.forfeited, w.currency)
        } else {
            "-".into()
        },
        forfeited_major: major(w.forfeited, w.currency),
        why: waiting_why(w),
    }));
    rows
}

/// A waiting balance's reasons for a person: the amount still needed under the minimum, a
/// forfeiture ahead.
pub fn waiting_why(w: &WaitingBalance) -> String {
    let mut parts: Vec<String> = w
        .reasons
        .iter()
        .map(|r| match (r.as_str(), w.needed) {
            ("below_minimum", Some(n)) => {
                format!("below_minimum ({} needed)", money(n, w.currency))
            }
            _ => r.clone(),
        })
        .collect();
    if let Some((on, a)) = &w.forfeit_ahead {
        parts.push(format!(
            "{} forfeited on {on} unless paid",
            money(*a, w.currency)
        ));
    }
    parts.join(", ")
}

/// Hold a partner's payouts, lift the hold, or mark their payout method unusable.
pub async fn standing(
    table: &Table,
    partner: &str,
    change: StandingChange,
    by: &str,
    now_ms: i64,
) -> Result<PayoutStanding, CliError> {
    let p = partners::get_partner(table, partner)
        .await?
        .ok_or_else(|| CliError::Usage(format!("no partner {partner}")))?;
    match change {
        StandingChange::Hold(reason) => {
            partners::set_payout_hold(
                table,
                partner,
                Some(StandingNote {
                    reason,
                    by: by.to_string(),
                    at_ms: now_ms,
                }),
            )
            .await?
        }
        StandingChange::Release => partners::set_payout_hold(table, partner, None).await?,
        StandingChange::MethodUnusable(reason) => {
            partners::mark_method_unusable(
                table,
                partner,
                &UnusableMethod {
                    method: p.payout_method.clone(),
                    reason,
                    at_ms: now_ms,
                },
            )
            .await?
        }
    }
    Ok(partners::payout_standing(table, partner).await?)
}

/// What `partnerctl payouts partner` changes.
pub enum StandingChange {
    Hold(String),
    Release,
    MethodUnusable(String),
}

/// A message of `PayoutDeadLetterQueue`: a chunk that failed five receives, or the schedule's
/// event after Lambda's asynchronous retries.
enum Letter {
    Chunk(ChunkMessage),
    Schedule(EventBridgeEvent<serde_json::Value>),
    Unreadable,
}

fn letter(m: &Message) -> Letter {
    let body = m.body().unwrap_or("");
    if let Ok(c) = serde_json::from_str::<ChunkMessage>(body) {
        return Letter::Chunk(c);
    }
    match serde_json::from_str::<EventBridgeEvent<serde_json::Value>>(body) {
        Ok(e) if e.time.is_some() => Letter::Schedule(e),
        _ => Letter::Unreadable,
    }
}

/// A payout dead letter, as listed.
#[derive(Debug, Serialize)]
pub struct PayoutDeadLetter {
    pub message_id: String,
    /// `chunk`, `schedule` or `unreadable`.
    pub kind: &'static str,
    /// `PROGRAM:DATE #chunk` or the event's time.
    pub what: String,
    pub error: Option<String>,
}

fn describe(m: &Message) -> PayoutDeadLetter {
    let (kind, what) = match letter(m) {
        Letter::Chunk(c) => (
            "chunk",
            format!(
                "{}:{} #{} (generation {})",
                c.program_id, c.date, c.chunk, c.generation
            ),
        ),
        Letter::Schedule(e) => (
            "schedule",
            e.time.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ),
        Letter::Unreadable => (
            "unreadable",
            m.body().unwrap_or("").chars().take(60).collect(),
        ),
    };
    PayoutDeadLetter {
        message_id: m.message_id().unwrap_or_default().to_string(),
        kind,
        what,
        error: m
            .message_attributes()
            .and_then(|a| a.get("ErrorMessage"))
            .and_then(|v| v.string_value())
            .map(str::to_string),
    }
}

pub async fn dead_letters(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    format: Format,
) -> Result<String, CliError> {
    let letters: Vec<PayoutDeadLetter> = receive(sqs, queue_url, 0, 100)
        .await?
        .iter()
        .map(describe)
        .collect();
    if format == Format::Json {
        return json(&letters);
    }
    let mut out = String::new();
    if letters.is_empty() {
        let _ = writeln!(out, "no payout dead letters");
        return Ok(out);
    }
    let _ = writeln!(out, "{:<38} {:<10} {:<40} ERROR", "MESSAGE", "KIND", "WHAT");
    for l in &letters {
        let _ = writeln!(
            out,
            "{:<38} {:<10} {:<40} {}",
            l.message_id,
            l.kind,
            l.what,
            l.error.as_deref().unwrap_or("")
        );
    }
    Ok(out)
}

/// Replay the payout dead letters (after a fix): a chunk is worked again (its items are found
/// and go on from where they are), a schedule event starts its due runs again at its own time
/// (sending chunks to `queue`). Each one that succeeds leaves the dead-letter queue; the
/// lines say what happened.
pub async fn replay_dead_letters(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    engine: &engine::Engine,
    queue: Option<&SqsChunkQueue>,
) -> Result<(Vec<String>, bool), CliError> {
    let mut lines = vec![];
    let mut failed = false;
    for m in receive(sqs, queue_url, 120, 100).await? {
        let id = m.message_id().unwrap_or_default().to_string();
        let outcome: Result<String, String> = match letter(&m) {
            Letter::Chunk(c) => engine::payout::worker::work_chunk(engine, &Rails::manual(), &c)
                .await
                .map(|done| {
                    format!(
                        "chunk {}:{} #{} worked ({} items)",
                        c.program_id, c.date, done.chunk, done.summary.items
                    )
                })
                .map_err(|e| e.to_string()),
            Letter::Schedule(e) => match queue {
                None => Err("replaying a schedule event needs PAYOUT_QUEUE_URL".into()),
                Some(q) => payout::schedule(engine, q, &e, "partnerctl-replay")
                    .await
                    .map(|r| format!("schedule {}", json(&r).unwrap_or_default().trim()))
                    .map_err(|e| e.to_string()),
            },
            Letter::Unreadable => Err("neither a payout chunk nor a scheduled event".into()),
        };
        match outcome {
            Ok(line) => {
                delete(sqs, queue_url, &m).await?;
                lines.push(format!("{id}: {line}"));
            }
            Err(why) => {
                show_again(sqs, queue_url, &m).await;
                failed = true;
                lines.push(format!("{id}: failed again, kept: {why}"));
            }
        }
    }
    if lines.is_empty() {
        lines.push("no payout dead letters to replay".into());
    }
    Ok((lines, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_named_program_and_date() {
        assert_eq!(
            parse_run("demo:2026-04-10").unwrap(),
            ("demo".to_string(), "2026-04-10".to_string())
        );
        for bad in ["demo", "demo:2026-13-01", ":2026-04-10", "demo:friday"] {
            assert!(parse_run(bad).is_err(), "{bad}");
        }
    }
}

/// An open rail batch, as `partnerctl payouts batches` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct BatchView {
    pub batch: storage::rail_batches::RailBatch,
    /// Each member's item state now.
    pub states: Vec<(String, String)>,
}

/// Open rail batches (on the poll index, due now or later), or one batch by id: what was
/// handed to which rail under which id, when it is read again, what the rail said last.
pub async fn batches(
    table: &Table,
    format: Format,
    only: Option<&str>,
    now_ms: i64,
) -> Result<String, CliError> {
    let ids = match only {
        Some(id) => vec![id.to_string()],
        None => {
            // Everything open: due at any time up to a year from now.
            let horizon = now_ms + 366 * 86_400_000;
            storage::rail_batches::due(table, horizon, 1_000).await?
        }
    };
    let mut views = vec![];
    for id in ids {
        let Some(batch) = storage::rail_batches::get(table, &id).await? else {
            return Err(CliError::Usage(format!("no rail batch {id}")));
        };
        let keys: Vec<_> = batch.members.iter().map(|m| m.item_key(&batch)).collect();
        let found = table.batch_get_as::<PayoutItem>(&keys).await?;
        let states = batch
            .members
            .iter()
            .map(|m| {
                let state = found
                    .iter()
                    .find(|i| i.item_id == m.item_id)
                    .map(|i| i.state.as_str().to_string())
                    .unwrap_or_else(|| "missing".into());
                (m.item_id.clone(), state)
            })
            .collect();
        views.push(BatchView { batch, states });
    }
    if format == Format::Json {
        return json(&views);
    }
    let mut out = String::new();
    if views.is_empty() {
        out.push_str("no open rail batches\n");
    }
    for v in &views {
        let b = &v.batch;
        let _ = writeln!(
            out,
            "{}  {}  {}:{}  items {}  attempt {}  rail id {}  {}  next read {}  written {}",
            b.batch_id,
            b.rail,
            b.program_id,
            b.date,
            b.members.len(),
            b.attempt,
            b.rail_ref.as_deref().unwrap_or("-"),
            if b.open { "open" } else { "closed" },
            b.next_poll_ms
                .map(crate::show::time)
                .unwrap_or_else(|| "-".into()),
            crate::show::time(b.created_at_ms),
        );
        if let Some(n) = &b.note {
            let _ = writeln!(out, "  note: {n}");
        }
        if only.is_some() {
            for (m, (_, state)) in b.members.iter().zip(&v.states) {
                let _ = writeln!(
                    out,
                    "  {}  {}  {}  {}",
                    m.item_id,
                    money(m.amount, m.currency),
                    m.method.rail(),
                    state
                );
            }
        }
    }
    Ok(out)
}
