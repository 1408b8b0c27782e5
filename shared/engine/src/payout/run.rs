//! The schedule side of a payout run: which programs are due, the lease, the holds, the
//! fan-out.

use chrono::NaiveDate;
use rules::{payout_run_date, PAYOUT_CATCH_UP_DAYS};
use serde::Serialize;
use storage::ledger;
use storage::payouts::{self, PayoutRun, RunLease, RunState};
use storage::programs;

use super::{BalanceRef, ChunkMessage, ChunkQueue, CHUNK_SIZE};
use crate::{utc, Engine, EngineError};

/// How long a run's lease lasts (technical time): longer than the function's timeout
/// (template.yaml: 300 s), so a live invocation is never overtaken; an invocation that fails
/// gives its lease back at once, so Lambda's retry takes it over.
pub const RUN_LEASE_MS: i64 = 330_000;

/// What one invocation did with one program's run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunStarted {
    pub program_id: String,
    pub date: String,
    /// `taken` (this invocation fanned it out), `busy` (another holds it or its workers are on
    /// it), `done` (already finished).
    pub outcome: &'static str,
    pub generation: u32,
    pub released: usize,
    pub balances: usize,
    pub chunks: u32,
}

/// The daily schedule at business time `now_ms`: every program whose payout date (in its own
/// time zone, catching up a missed day: [`payout_run_date`]) is due gets its run.
pub async fn start_due_runs(
    engine: &Engine,
    queue: &dyn ChunkQueue,
    now_ms: i64,
    owner: &str,
) -> Result<Vec<RunStarted>, EngineError> {
    let mut out = vec![];
    for program in programs::list_programs(&engine.table).await? {
        let Some(date) = payout_run_date(
            &program.payout_schedule,
            program.time_zone,
            utc(now_ms),
            PAYOUT_CATCH_UP_DAYS,
        ) else {
            continue;
        };
        out.push(run_program(engine, queue, &program.id, date, now_ms, owner).await?);
    }
    Ok(out)
}

/// The run of `program_id` for payout date `date`, at business time `now_ms` (kept from the
/// first invocation that took the run).
pub async fn run_program(
    engine: &Engine,
    queue: &dyn ChunkQueue,
    program_id: &str,
    date: NaiveDate,
    now_ms: i64,
    owner: &str,
) -> Result<RunStarted, EngineError> {
    let date = date.format("%Y-%m-%d").to_string();
    let lease = payouts::take_run(
        &engine.table,
        program_id,
        &date,
        now_ms,
        owner,
        RUN_LEASE_MS,
    )
    .await?;
    let run = match lease {
        RunLease::Taken(run) => run,
        RunLease::Busy(run) => return Ok(report(&run, "busy", 0, 0, 0)),
        RunLease::Done(run) => return Ok(report(&run, "done", 0, 0, 0)),
    };
    match fan_out(engine, queue, &run).await {
        Ok(r) => Ok(r),
        Err(e) => {
            // Give the lease back so that the retry of this invocation takes the run over.
            if let Err(e2) = payouts::give_back_lease(&engine.table, &run).await {
                tracing::warn!(error = %e2, "payout run lease not given back; it expires");
            }
            Err(e)
        }
    }
}

fn report(
    run: &PayoutRun,
    outcome: &'static str,
    released: usize,
    balances: usize,
    chunks: u32,
) -> RunStarted {
    RunStarted {
        program_id: run.program_id.clone(),
        date: run.date.clone(),
        outcome,
        generation: run.generation,
        released,
        balances,
        chunks,
    }
}

async fn fan_out(
    engine: &Engine,
    queue: &dyn ChunkQueue,
    run: &PayoutRun,
) -> Result<RunStarted, EngineError> {
    let t = run.business_time_ms;
    // Every hold that ended by the run's time first (all programs: the same conditional
    // release as the hourly job, so nothing is released twice).
    let released =
        crate::release::release_due(engine, t, &format!("payout:{}", run.run_id())).await?;
    payouts::advance_run(&engine.table, run, RunState::FanningOut, None, 0).await?;
    let balances = ledger::payable_balances(&engine.table, &run.program_id).await?;
    let refs: Vec<BalanceRef> = balances
        .iter()
        .map(|b| BalanceRef {
            partner_id: b.partner_id.clone(),
            currency: b.currency,
        })
        .collect();
    let messages: Vec<ChunkMessage> = refs
        .chunks(CHUNK_SIZE)
        .enumerate()
        .map(|(n, part)| ChunkMessage {
            program_id: run.program_id.clone(),
            date: run.date.clone(),
            generation: run.generation,
            chunk: n as u32,
            business_time_ms: t,
            balances: part.to_vec(),
        })
        .collect();
    queue.send(&messages).await?;
    let chunks = messages.len() as u32;
    payouts::advance_run(
        &engine.table,
        run,
        RunState::FannedOut,
        Some(chunks),
        refs.len() as u64,
    )
    .await?;
    // Workers that finished before the run was marked fanned out could not finish it.
    super::worker::maybe_finish(engine, &run.program_id, &run.date).await?;
    tracing::info!(
        run = %run.run_id(),
        generation = run.generation,
        released = released.len(),
        balances = refs.len(),
        chunks,
        "payout run fanned out"
    );
    Ok(report(run, "taken", released.len(), refs.len(), chunks))
}
