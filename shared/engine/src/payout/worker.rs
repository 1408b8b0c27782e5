//! The worker side of a payout run: one chunk of balances at a time.

use std::collections::{BTreeMap, HashMap};

use messages::{Envelope, Message};
use rules::{
    BalanceDelta, BalanceOutcome, Bucket, EntryKind, PayoutItemState, PayoutMethod, PayoutReview,
    Program,
};
use storage::connect_accounts::{self, ConnectAccount};
use storage::keys;
use storage::ledger::{self, BalanceRow, LedgerEntry};
use storage::outbox;
use storage::partners::{Partner, PayoutStanding};
use storage::payouts::{self, PayoutChunk, PayoutItem, RunState, RunSummary, WaitingBalance};
use storage::{StoreError, Tx};

use super::assess::{assess, waiting_of, Assessed};
use super::handover;
use super::rail::Rails;
use super::{move_and_read, reload, ChunkMessage};
use crate::{utc, Engine, EngineError, OPTIMISTIC_ATTEMPTS};

/// How long a batch just handed to a rail belongs to the worker that wrote it
/// ([`handover::BATCH_LEASE_MS`]).
pub const SUBMIT_LEASE_MS: i64 = handover::BATCH_LEASE_MS;

/// The program as it stood at the run's business time (its minimum, its tax rule).
pub(crate) async fn program_at(
    engine: &Engine,
    program_id: &str,
    at_ms: i64,
) -> Result<Program, EngineError> {
    match engine.catalog.versions(&engine.table, program_id).await? {
        Some(v) => Ok(v.in_force_at(utc(at_ms)).program.clone()),
        None => Err(EngineError::Invalid(format!(
            "unknown program {program_id}"
        ))),
    }
}

/// Work one chunk: for each balance, find or write its payout item (with its reservation),
/// move the items forward as far as the rail allows, record the chunk, and finish the run
/// when it was the last one. Safe to repeat: a redelivered chunk finds its items and goes on
/// from where they are.
///
/// Reads: the chunk's partners, standings, balances and items in one `BatchGetItem`, and,
/// only when balances without an item belong to partners paid by Stripe Connect, their
/// connected accounts' records in one more ([`connect_accounts::get_many`]).
pub async fn work_chunk(
    engine: &Engine,
    rails: &Rails,
    msg: &ChunkMessage,
) -> Result<PayoutChunk, EngineError> {
    let t = msg.business_time_ms;
    let program = program_at(engine, &msg.program_id, t).await?;
    let mut wanted = vec![];
    for b in &msg.balances {
        wanted.push(keys::partner(&b.partner_id));
        wanted.push(keys::payout_standing(&b.partner_id));
        wanted.push(keys::balance(&b.partner_id, &msg.program_id, b.currency));
        wanted.push(keys::payout_item(
            &msg.program_id,
            &msg.date,
            &b.partner_id,
            b.currency,
        ));
    }
    let found = engine.table.batch_get(&wanted).await?;
    fn decode<T: serde::de::DeserializeOwned>(
        found: &std::collections::HashMap<keys::Key, storage::Item>,
        k: &keys::Key,
    ) -> Result<Option<T>, StoreError> {
        found
            .get(k)
            .map(|i| serde_dynamo::from_item(i.clone()).map_err(StoreError::from))
            .transpose()
    }
    // The connected accounts of the partners paid by Stripe Connect whose balances are decided
    // now (no item yet): a method is unusable while its account cannot receive transfers.
    let mut account_ids = vec![];
    for b in &msg.balances {
        let decided_now =
            !found.contains_key(&keys::payout_item(
                &msg.program_id,
                &msg.date,
                &b.partner_id,
                b.currency,
            )) && found.contains_key(&keys::balance(&b.partner_id, &msg.program_id, b.currency));
        if !decided_now {
            continue;
        }
        if let Some(Partner {
            payout_method: PayoutMethod::StripeConnect { account_id },
            ..
        }) = decode::<Partner>(&found, &keys::partner(&b.partner_id))?
        {
            account_ids.push(account_id);
        }
    }
    let accounts: HashMap<String, ConnectAccount> = if account_ids.is_empty() {
        HashMap::new()
    } else {
        connect_accounts::get_many(&engine.table, &account_ids).await?
    };
    let mut summary = RunSummary {
        balances: msg.balances.len() as u64,
        ..RunSummary::default()
    };
    let mut waiting = vec![];
    let mut items = vec![];
    for b in &msg.balances {
        let item_key = keys::payout_item(&msg.program_id, &msg.date, &b.partner_id, b.currency);
        if let Some(item) = decode::<PayoutItem>(&found, &item_key)? {
            items.push(item);
            continue;
        }
        let Some(row) = decode::<BalanceRow>(
            &found,
            &keys::balance(&b.partner_id, &msg.program_id, b.currency),
        )?
        else {
            continue;
        };
        let partner: Option<Partner> = decode(&found, &keys::partner(&b.partner_id))?;
        let standing: PayoutStanding =
            decode(&found, &keys::payout_standing(&b.partner_id))?.unwrap_or_default();
        let account = partner.as_ref().and_then(|p| match &p.payout_method {
            PayoutMethod::StripeConnect { account_id } => accounts.get(account_id),
            _ => None,
        });
        match reserve(
            engine,
            &program,
            msg,
            partner.as_ref(),
            &standing,
            account,
            row,
        )
        .await?
        {
            Reserved::Item(item) => items.push(item),
            Reserved::Waiting(w) => {
                for reason in &w.reasons {
                    let total = summary.waiting.entry(reason.clone()).or_default();
                    total.balances += 1;
                    *total.amounts.entry(w.currency).or_default() += w.available;
                }
                if w.forfeited > 0 {
                    summary.forfeited += 1;
                    *summary.forfeited_amounts.entry(w.currency).or_default() += w.forfeited;
                }
                waiting.push(w);
            }
        }
    }
    let owner = format!(
        "worker:{}:{}:{}:{}:{}",
        msg.program_id,
        msg.date,
        msg.generation,
        msg.chunk,
        engine.table.clock.now_ms()
    );
    let items = drive(
        engine,
        rails,
        items,
        program.payout_review == PayoutReview::Automatic,
        &owner,
    )
    .await?;
    for item in &items {
        summary.items += 1;
        *summary.item_amounts.entry(item.currency).or_default() += item.amount;
        match item.state {
            PayoutItemState::Sent => {
                summary.sent += 1;
                *summary.sent_amounts.entry(item.currency).or_default() += item.amount;
            }
            PayoutItemState::Failed => summary.failed += 1,
            _ => {}
        }
    }
    let chunk = PayoutChunk {
        program_id: msg.program_id.clone(),
        date: msg.date.clone(),
        generation: msg.generation,
        chunk: msg.chunk,
        summary,
        waiting,
    };
    payouts::put_chunk(&engine.table, &chunk).await?;
    maybe_finish(engine, &msg.program_id, &msg.date).await?;
    Ok(chunk)
}

enum Reserved {
    Item(PayoutItem),
    Waiting(WaitingBalance),
}

/// Decide one balance ([`assess`]) and act on it, on condition that the balance
/// still holds what was read (a refund or release committed in between is read again and
/// decided again):
///
/// * paid: its item and `payout_reserved` entry in one transaction, the oldest accrual lots
///   moving with the item;
/// * waiting: a forfeiture the accrual policy makes (a `forfeited` entry and its message), and
///   the partner told why once ([`write_waiting`]).
async fn reserve(
    engine: &Engine,
    program: &Program,
    msg: &ChunkMessage,
    partner: Option<&Partner>,
    standing: &PayoutStanding,
    account: Option<&ConnectAccount>,
    mut row: BalanceRow,
) -> Result<Reserved, EngineError> {
    let t = msg.business_time_ms;
    let Some(partner) = partner else {
        return Ok(Reserved::Waiting(WaitingBalance {
            partner_id: row.partner_id.clone(),
            currency: row.currency,
            available: row.available,
            reasons: vec!["unknown_partner".into()],
            needed: None,
            forfeited: 0,
            forfeit_ahead: None,
        }));
    };
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        let assessed = assess(engine, program, partner, standing, account, &row, t).await?;
        let committed = match &assessed.outcome {
            BalanceOutcome::Pay {
                amount,
                taken,
                left,
                under_minimum,
            } => {
                let item_id =
                    keys::payout_item_id(&msg.program_id, &msg.date, &row.partner_id, row.currency);
                let item = PayoutItem {
                    reference: payouts::item_reference(&item_id),
                    item_id,
                    program_id: msg.program_id.clone(),
                    date: msg.date.clone(),
                    partner_id: row.partner_id.clone(),
                    currency: row.currency,
                    amount: *amount,
                    released_through_ms: t,
                    state: PayoutItemState::Created,
                    method: partner.payout_method.clone(),
                    export_id: None,
                    rail_note: None,
                    rail_batch: None,
                    updated_at_ms: engine.table.clock.now_ms(),
                    lots: ledger::stored_lots(taken),
                    under_minimum: *under_minimum,
                };
                let mut tx = Tx::new();
                payouts::put_new_item(&mut tx, &item)?;
                let entry = LedgerEntry::new(
                    format!("{}:{}", EntryKind::PayoutReserved.as_str(), item.item_id),
                    &item.partner_id,
                    &item.program_id,
                    item.currency,
                    EntryKind::PayoutReserved,
                    *amount,
                    None,
                    t,
                    "payout item created",
                    format!("payout:{}:{}", msg.program_id, msg.date),
                )?;
                ledger::post_from(&mut tx, &entry, row.available)?;
                tx.set_lots(
                    &row.partner_id,
                    &row.program_id,
                    row.currency,
                    ledger::stored_lots(left),
                )?;
                if !row.told.is_empty() {
                    // Paid: whatever it waits for next time is news again.
                    tx.set_told(&row.partner_id, &row.program_id, row.currency, vec![])?;
                }
                match tx.commit(&engine.table).await {
                    Ok(()) => return Ok(Reserved::Item(item)),
                    Err(e) if e.is_condition_failed_on("payout item") => {
                        // Another worker wrote it (an overlapping delivery of the chunk).
                        return Ok(Reserved::Item(reload(engine, &item).await?));
                    }
                    Err(StoreError::ConditionFailed { .. }) => false,
                    Err(e) => return Err(e.into()),
                }
            }
            BalanceOutcome::Wait { .. } => {
                let waiting = waiting_of(&row, &assessed);
                if row.available <= 0 {
                    // Nothing to pay (a clawback took it): the balance leaves the payable index
                    // until money is released again.
                    payouts::unlist_empty_balance(
                        &engine.table,
                        &row.partner_id,
                        &row.program_id,
                        row.currency,
                    )
                    .await?;
                    return Ok(Reserved::Waiting(waiting));
                }
                if write_waiting(engine, program, msg, &row, &assessed, &waiting).await? {
                    return Ok(Reserved::Waiting(waiting));
                }
                false
            }
        };
        if !committed {
            // The balance moved since it was read: read it again and decide again.
            row = engine
                .table
                .get_as::<BalanceRow>(&keys::balance(
                    &row.partner_id,
                    &row.program_id,
                    row.currency,
                ))
                .await?
                .ok_or_else(|| {
                    EngineError::Inconsistent(format!(
                        "balance of {} in {} vanished",
                        row.partner_id, row.program_id
                    ))
                })?;
        }
    }
    Err(StoreError::Contention {
        attempts: OPTIMISTIC_ATTEMPTS,
    }
    .into())
}

/// What the partner has been told about a waiting balance: its reasons (those worth a message:
/// not an empty balance) and the forfeiture ahead they were warned of (`forfeit_on:DATE`).
fn told_marks(w: &WaitingBalance) -> Vec<String> {
    let mut marks: Vec<String> = w
        .reasons
        .iter()
        .filter(|r| r.as_str() != "nothing_available")
        .cloned()
        .collect();
    if let Some((on, _)) = &w.forfeit_ahead {
        marks.push(format!("forfeit_on:{on}"));
    }
    marks
}

/// Book a waiting balance's forfeiture and tell the partner what is new, in one transaction on
/// condition of the balance read: the reasons it waits when they differ from what the partner
/// was last told (`payout_waiting`, once per change, not every run), a forfeiture ahead within
/// the warning window (`forfeit_warning`, once per date), a forfeiture (`forfeited`). Returns
/// false when the balance moved since it was read (decide again).
async fn write_waiting(
    engine: &Engine,
    program: &Program,
    msg: &ChunkMessage,
    row: &BalanceRow,
    assessed: &Assessed,
    waiting: &WaitingBalance,
) -> Result<bool, EngineError> {
    let BalanceOutcome::Wait { forfeit, .. } = &assessed.outcome else {
        return Ok(true);
    };
    let t = msg.business_time_ms;
    let balance_id = format!("{}:{}:{}", row.program_id, row.partner_id, row.currency);
    let mut tx = Tx::new();
    let mut envelopes = vec![];
    if let Some(f) = forfeit {
        let months = program.accrual.months().unwrap_or(0);
        let reason = format!("unpaid under the payout minimum for {months} months");
        let entry = LedgerEntry::new(
            format!(
                "forfeited:{}:{}:{}:{}",
                msg.program_id, msg.date, row.partner_id, row.currency
            ),
            &row.partner_id,
            &row.program_id,
            row.currency,
            EntryKind::Forfeited,
            f.amount,
            Some(Bucket::Available),
            t,
            reason.clone(),
            format!("payout:{}:{}", msg.program_id, msg.date),
        )?;
        ledger::post_from(&mut tx, &entry, row.available)?;
        tx.set_lots(
            &row.partner_id,
            &row.program_id,
            row.currency,
            ledger::stored_lots(&f.left),
        )?;
        envelopes.push(Envelope {
            id: entry.entry_id.clone(),
            at_ms: t,
            message: Message::Forfeited {
                partner_id: row.partner_id.clone(),
                program_id: row.program_id.clone(),
                currency: row.currency.code().to_string(),
                amount_minor: f.amount,
                reason,
                run_date: msg.date.clone(),
            },
        });
    }
    let marks = told_marks(waiting);
    if marks != row.told {
        if forfeit.is_none() {
            tx.move_balance_from(
                &row.partner_id,
                &row.program_id,
                row.currency,
                BalanceDelta::default(),
                row.available,
            )?;
        }
        tx.set_told(
            &row.partner_id,
            &row.program_id,
            row.currency,
            marks.clone(),
        )?;
        let reasons_now: Vec<&String> = marks
            .iter()
            .filter(|m| !m.starts_with("forfeit_on:"))
            .collect();
        let reasons_told: Vec<&String> = row
            .told
            .iter()
            .filter(|m| !m.starts_with("forfeit_on:"))
            .collect();
        if reasons_now != reasons_told && !reasons_now.is_empty() {
            envelopes.push(Envelope {
                id: format!("payout-waiting:{balance_id}:{}", msg.date),
                at_ms: t,
                message: Message::PayoutWaiting {
                    partner_id: row.partner_id.clone(),
                    program_id: row.program_id.clone(),
                    currency: row.currency.code().to_string(),
                    available_minor: waiting.available,
                    reasons: waiting.reasons.clone(),
                    needed_minor: waiting.needed,
                    run_date: msg.date.clone(),
                },
            });
        }
        if let Some((on, amount)) = &waiting.forfeit_ahead {
            if !row.told.contains(&format!("forfeit_on:{on}")) {
                envelopes.push(Envelope {
                    id: format!("forfeit-warning:{balance_id}:{on}"),
                    at_ms: t,
                    message: Message::ForfeitWarning {
                        partner_id: row.partner_id.clone(),
                        program_id: row.program_id.clone(),
                        currency: row.currency.code().to_string(),
                        amount_minor: *amount,
                        forfeit_on: on.clone(),
                        needed_minor: waiting.needed.unwrap_or(0),
                    },
                });
            }
        }
    }
    if tx.is_empty() {
        return Ok(true);
    }
    for env in &envelopes {
        outbox::enqueue(&mut tx, env)?;
    }
    match tx.commit(&engine.table).await {
        Ok(()) => {
            engine.deliver_new(&envelopes).await;
            Ok(true)
        }
        // A concurrent delivery of the chunk booked and told it first.
        Err(e)
            if e.is_condition_failed_on("outbox message")
                || e.is_condition_failed_on("ledger entry") =>
        {
            Ok(true)
        }
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Move items as far as they go now: created items are approved when `approve` (programs
/// without manual review; under review they wait for an operator: [`super::review`]); approved
/// items whose method an automatic rail carries are handed over in recorded batches
/// ([`handover::hand_over`]); submitted items of a batch whose lease ended (its worker died) are
/// taken over ([`handover::resume`]): sent again under the same ids or read. Items no rail
/// carries wait approved for the manual export. Returns the items as they are after.
pub async fn drive(
    engine: &Engine,
    rails: &Rails,
    items: Vec<PayoutItem>,
    approve: bool,
    owner: &str,
) -> Result<Vec<PayoutItem>, EngineError> {
    let mut done = vec![];
    let mut to_hand_over: BTreeMap<&'static str, Vec<PayoutItem>> = BTreeMap::new();
    let mut to_resume = vec![];
    for mut item in items {
        if item.state == PayoutItemState::Created && approve {
            item = move_and_read(
                engine,
                &item,
                PayoutItemState::Created,
                PayoutItemState::Approved,
                item.released_through_ms,
                &[],
            )
            .await?
            .1;
        }
        match (item.state, rails.for_method(&item.method)) {
            (PayoutItemState::Approved, Some(rail)) => {
                to_hand_over.entry(rail.name()).or_default().push(item);
            }
            (PayoutItemState::Submitted, _) if item.rail_batch.is_some() => {
                to_resume.push(item);
            }
            _ => done.push(item),
        }
    }
    for (name, items) in to_hand_over {
        let rail = rails
            .by_name(name)
            .ok_or_else(|| EngineError::Inconsistent(format!("rail {name} vanished")))?;
        done.extend(handover::hand_over(engine, rail, items, owner).await?);
    }
    if !to_resume.is_empty() {
        for batch_id in handover::batches_of(&to_resume) {
            // Busy while its worker may still be calling the rail; free once that lease ended.
            handover::resume(engine, rails, &batch_id, owner).await?;
        }
        for item in &to_resume {
            done.push(reload(engine, item).await?);
        }
    }
    done.sort_by(|a, b| a.item_id.cmp(&b.item_id));
    Ok(done)
}

/// Finish the run if every chunk of its generation was worked: the summary is the sum of the
/// chunks'. Called by each worker after recording its chunk and by the schedule after it
/// fanned out, so whichever comes last finishes it (the finish itself is conditional).
pub async fn maybe_finish(
    engine: &Engine,
    program_id: &str,
    date: &str,
) -> Result<bool, EngineError> {
    let Some(run) = payouts::get_run(&engine.table, program_id, date).await? else {
        return Ok(false);
    };
    let Some(total) = run.chunks_total else {
        return Ok(false);
    };
    if run.state != RunState::FannedOut {
        return Ok(false);
    }
    let chunks = payouts::run_chunks(&engine.table, program_id, date, run.generation).await?;
    let distinct: BTreeMap<u32, &PayoutChunk> = chunks.iter().map(|c| (c.chunk, c)).collect();
    if (distinct.len() as u32) < total {
        return Ok(false);
    }
    let mut summary = RunSummary::default();
    for c in distinct.values() {
        summary.add(&c.summary);
    }
    Ok(payouts::finish_run(&engine.table, program_id, date, run.generation, &summary).await?)
}
