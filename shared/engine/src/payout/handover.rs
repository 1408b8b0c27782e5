//! Handing items to an automatic rail, exactly once, and booking what it says.
//!
//! 1. [`hand_over`]: approved items of one rail are grouped (at most the rail's batch limit);
//!    each group's [`RailBatch`] is written, leased to the caller, in the same transaction that
//!    moves its items `approved → submitted` with the batch id on them. Only then is the rail
//!    called. Which items form the batch and its id are fixed before any money can move.
//! 2. The rail's answer is booked item by item ([`book`]): `sent` (`paid`), `failed`
//!    (`payout_released`), `returned` (`payout_returned`), each a conditional state change in
//!    the transaction of its ledger entry, so an answer read twice books once.
//! 3. The batch gives its lease back with when it is due again: while an item waits for the
//!    rail, every 15 minutes for a day and every 6 hours after; once all are final, daily for
//!    the rail's watch period (PayPal: 31 days, for UNCLAIMED items that return and reversals),
//!    then it is closed.
//! 4. [`poll_due`] (the scheduled poller) and a redelivered chunk take over a batch whose lease
//!    ended ([`resume`]): it is sent again under the same ids when the rail never acknowledged
//!    it, otherwise its status is read. A PayPal batch not acknowledged within 29 days is never
//!    sent again (PayPal forgets a `sender_batch_id` after 30): it goes to needs-attention.

use std::collections::HashMap;

use rules::PayoutItemState;
use serde::Serialize;
use storage::attention::{self, NewAttention};
use storage::partners::UnusableMethod;
use storage::payouts::{self, PayoutItem};
use storage::rail_batches::{self, BatchMember, Progress, RailBatch};
use storage::{StoreError, Tx};

use super::rail::{Rail, RailError, RailOutcome, Rails};
use super::{move_item_marking, reload};
use crate::{Engine, EngineError};

/// The source of the rails' needs-attention records (`payout_rail:{batch id}`).
pub const ATTENTION_SOURCE: &str = "payout_rail";

/// Most items per rail batch: the batch's header and members and its items' state changes are
/// one transaction (97 + 2 actions, under DynamoDB's 100).
pub const MAX_BATCH_ITEMS: usize = 97;

/// How long the caller of a rail owns a batch (technical time): longer than the worker's and
/// the poller's function timeouts (template.yaml: 120 s), shorter than the payout queue's
/// visibility timeout (720 s), so a redelivered chunk finds a dead worker's batch free.
pub const BATCH_LEASE_MS: i64 = 180_000;
/// Status reads while an item waits for the rail: every 15 minutes during the first day…
pub const POLL_PENDING_MS: i64 = 15 * 60_000;
/// …then every 6 hours.
pub const POLL_PENDING_LATER_MS: i64 = 6 * 3_600_000;
/// Once every item is final, one read a day during the rail's watch period.
pub const POLL_WATCH_MS: i64 = 24 * 3_600_000;
const DAY_MS: i64 = 24 * 3_600_000;

/// Where the poller's or a worker's take-over of a batch ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BatchReport {
    pub batch_id: String,
    pub rail: String,
    /// `worked`, `busy` (someone holds it or it is closed), `no_rail` (no credentials for it
    /// here), `unacknowledged` (past the resend window: needs attention).
    pub outcome: &'static str,
    pub sent: usize,
    pub failed: usize,
    pub returned: usize,
    pub waiting: usize,
}

/// Hand approved `items` (all carried by `rail`) over in recorded batches, as `owner`.
/// Returns the items as they are after.
pub async fn hand_over(
    engine: &Engine,
    rail: &dyn Rail,
    items: Vec<PayoutItem>,
    owner: &str,
) -> Result<Vec<PayoutItem>, EngineError> {
    let mut out = vec![];
    let limit = rail.batch_limit().clamp(1, MAX_BATCH_ITEMS);
    for group in items.chunks(limit) {
        out.extend(hand_over_group(engine, rail, group.to_vec(), owner).await?);
    }
    Ok(out)
}

async fn hand_over_group(
    engine: &Engine,
    rail: &dyn Rail,
    mut group: Vec<PayoutItem>,
    owner: &str,
) -> Result<Vec<PayoutItem>, EngineError> {
    let mut settled = vec![];
    for _ in 0..crate::OPTIMISTIC_ATTEMPTS {
        let (approved, other): (Vec<_>, Vec<_>) = group
            .into_iter()
            .partition(|i| i.state == PayoutItemState::Approved);
        settled.extend(other);
        if approved.is_empty() {
            return Ok(settled);
        }
        let first = &approved[0];
        let now = engine.table.clock.now_ms();
        let members = approved.iter().map(member_of).collect();
        let batch = RailBatch::new(
            rail.name(),
            &first.program_id,
            &first.date,
            members,
            owner,
            now,
            BATCH_LEASE_MS,
        );
        let mut tx = Tx::new();
        rail_batches::put_new(&mut tx, &batch)?;
        for item in &approved {
            payouts::transition(
                &mut tx,
                item,
                PayoutItemState::Approved,
                PayoutItemState::Submitted,
                now,
                &[("rail", rail.name()), ("rail_batch", &batch.batch_id)],
            )?;
        }
        match tx.commit(&engine.table).await {
            Ok(()) => {
                settled.extend(work_batch(engine, rail, &batch, owner).await?.items);
                return Ok(settled);
            }
            Err(e) if e.is_condition_failed_on("rail batch") => {
                // A concurrent delivery of the chunk formed this very batch and holds it.
                for item in &approved {
                    settled.push(reload(engine, item).await?);
                }
                return Ok(settled);
            }
            Err(StoreError::ConditionFailed { .. }) => {
                // An item moved (a concurrent delivery, an operator): read them and regroup.
                group = vec![];
                for item in &approved {
                    group.push(reload(engine, item).await?);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(StoreError::Contention {
        attempts: crate::OPTIMISTIC_ATTEMPTS,
    }
    .into())
}

fn member_of(item: &PayoutItem) -> BatchMember {
    BatchMember {
        item_id: item.item_id.clone(),
        reference: item.reference.clone(),
        partner_id: item.partner_id.clone(),
        currency: item.currency,
        amount: item.amount,
        method: item.method.clone(),
    }
}

/// Take over the batch `batch_id` once its lease ended and work it (send it again under the
/// same ids, or read its status). A batch someone holds, or one that is closed, is left alone.
pub async fn resume(
    engine: &Engine,
    rails: &Rails,
    batch_id: &str,
    owner: &str,
) -> Result<BatchReport, EngineError> {
    let now = engine.table.clock.now_ms();
    let Some(batch) =
        rail_batches::take_over(&engine.table, batch_id, owner, now, BATCH_LEASE_MS).await?
    else {
        return Ok(BatchReport::of(batch_id, "", "busy"));
    };
    let Some(rail) = rails.by_name(&batch.rail) else {
        let note = format!("no {} rail is configured here", batch.rail);
        rail_batches::give_back(
            &engine.table,
            &batch,
            owner,
            &Progress {
                rail_ref: None,
                note: Some(&note),
                next_poll_ms: Some(now + POLL_PENDING_LATER_MS),
                polled: false,
            },
        )
        .await?;
        return Ok(BatchReport::of(batch_id, &batch.rail, "no_rail"));
    };
    Ok(work_batch(engine, rail, &batch, owner).await?.report)
}

/// Take over and work every open batch due by now (technical time): the scheduled poller.
pub async fn poll_due(
    engine: &Engine,
    rails: &Rails,
    owner: &str,
    limit: usize,
) -> Result<Vec<BatchReport>, EngineError> {
    let now = engine.table.clock.now_ms();
    poll_due_by(engine, rails, owner, limit, now).await
}

/// [`poll_due`] for every open batch due by `due_by_ms` (an operator's "read them now": a
/// batch someone holds is still left alone).
pub async fn poll_due_by(
    engine: &Engine,
    rails: &Rails,
    owner: &str,
    limit: usize,
    due_by_ms: i64,
) -> Result<Vec<BatchReport>, EngineError> {
    let mut out = vec![];
    for id in rail_batches::due(&engine.table, due_by_ms, limit).await? {
        out.push(resume(engine, rails, &id, owner).await?);
    }
    Ok(out)
}

/// Hand over the approved items an automatic rail carries that no worker handed over (an
/// operator approved them after review, or a worker died between the approval and the
/// hand-over), grouped by rail and run.
pub async fn hand_over_approved(
    engine: &Engine,
    rails: &Rails,
    owner: &str,
    limit: usize,
) -> Result<Vec<PayoutItem>, EngineError> {
    if rails.names().is_empty() {
        return Ok(vec![]);
    }
    let mut groups: std::collections::BTreeMap<(&'static str, String, String), Vec<PayoutItem>> =
        Default::default();
    for item in payouts::approved_items(&engine.table, limit).await? {
        if item.state != PayoutItemState::Approved {
            continue;
        }
        if let Some(rail) = rails.for_method(&item.method) {
            groups
                .entry((rail.name(), item.program_id.clone(), item.date.clone()))
                .or_default()
                .push(item);
        }
    }
    let mut out = vec![];
    for ((name, _, _), items) in groups {
        if let Some(rail) = rails.by_name(name) {
            out.extend(hand_over(engine, rail, items, owner).await?);
        }
    }
    Ok(out)
}

impl BatchReport {
    fn of(batch_id: &str, rail: &str, outcome: &'static str) -> BatchReport {
        BatchReport {
            batch_id: batch_id.to_string(),
            rail: rail.to_string(),
            outcome,
            sent: 0,
            failed: 0,
            returned: 0,
            waiting: 0,
        }
    }
}

struct Worked {
    items: Vec<PayoutItem>,
    report: BatchReport,
}

/// Call the rail for a batch the caller holds, book its answer, give the lease back.
async fn work_batch(
    engine: &Engine,
    rail: &dyn Rail,
    batch: &RailBatch,
    owner: &str,
) -> Result<Worked, EngineError> {
    let keys: Vec<_> = batch.members.iter().map(|m| m.item_key(batch)).collect();
    let found = engine.table.batch_get(&keys).await?;
    let mut items = vec![];
    for k in &keys {
        let item = found
            .get(k)
            .map(|i| serde_dynamo::from_item::<_, PayoutItem>(i.clone()))
            .transpose()
            .map_err(StoreError::from)?
            .ok_or_else(|| {
                EngineError::Inconsistent(format!(
                    "rail batch {} names a missing payout item {}",
                    batch.batch_id, k.sk
                ))
            })?;
        items.push(item);
    }
    let open: Vec<bool> = items
        .iter()
        .map(|i| {
            i.state == PayoutItemState::Submitted
                && i.rail_batch.as_deref() == Some(batch.batch_id.as_str())
        })
        .collect();
    let now = engine.table.clock.now_ms();
    let mut report = BatchReport::of(&batch.batch_id, &batch.rail, "worked");
    let give_back = |note: Option<String>, next: Option<i64>, rail_ref: Option<String>| async move {
        rail_batches::give_back(
            &engine.table,
            batch,
            owner,
            &Progress {
                rail_ref: rail_ref.as_deref(),
                note: note.as_deref(),
                next_poll_ms: next,
                polled: batch.rail_ref.is_some(),
            },
        )
        .await
    };
    let unacknowledged = batch.rail_ref.is_none()
        && rail
            .resend_window_ms()
            .is_some_and(|w| now - batch.created_at_ms > w);
    if unacknowledged {
        let reason = format!(
            "{} batch {} was written {} days ago and the rail never acknowledged it; it is \
             not sent again (the rail may have forgotten its id). Check the rail's records \
             for it, then settle its items with `partnerctl payouts mark`.",
            batch.rail,
            batch.batch_id,
            (now - batch.created_at_ms) / DAY_MS
        );
        needs_attention(engine, batch, "rail_batch_unacknowledged", &reason).await?;
        give_back(Some(reason), None, None).await?;
        report.outcome = "unacknowledged";
        report.waiting = open.iter().filter(|o| **o).count();
        return Ok(Worked { items, report });
    }
    let answer = if batch.rail_ref.is_some() {
        rail.status(batch).await
    } else {
        rail.hand_over(batch, &open).await
    };
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            let note = e.to_string();
            if let RailError::Refused(_) = e {
                needs_attention(engine, batch, "rail_refused", &note).await?;
            }
            tracing::warn!(batch = %batch.batch_id, rail = batch.rail, error = %note, "rail call failed; the batch is tried again");
            give_back(Some(note), Some(now + POLL_PENDING_MS), None).await?;
            report.waiting = open.iter().filter(|o| **o).count();
            return Ok(Worked { items, report });
        }
    };
    if answer.outcomes.len() != batch.members.len() {
        return Err(EngineError::Inconsistent(format!(
            "rail {} answered {} of {} items of batch {}",
            rail.name(),
            answer.outcomes.len(),
            batch.members.len(),
            batch.batch_id
        )));
    }
    let mut deferred = vec![];
    let mut after = vec![];
    for (item, outcome) in items.into_iter().zip(&answer.outcomes) {
        if let RailOutcome::Deferred { reason } = outcome {
            deferred.push(format!("{}: {reason}", item.item_id));
        }
        let item = book(engine, &item, outcome).await?;
        match item.state {
            PayoutItemState::Sent => report.sent += 1,
            PayoutItemState::Failed => report.failed += 1,
            PayoutItemState::Returned => report.returned += 1,
            _ => report.waiting += 1,
        }
        after.push(item);
    }
    if !deferred.is_empty() {
        let reason = format!(
            "{} of {} items not sent this time (tried again at the next poll): {}",
            deferred.len(),
            batch.members.len(),
            deferred.join("; ")
        );
        needs_attention(engine, batch, "rail_deferred", &reason).await?;
    }
    let waiting = after.iter().any(|i| i.state == PayoutItemState::Submitted);
    let next = if waiting {
        let age = now - batch.created_at_ms;
        Some(
            now + if age < DAY_MS {
                POLL_PENDING_MS
            } else {
                POLL_PENDING_LATER_MS
            },
        )
    } else if rail.watch_ms() > 0
        && now < batch.created_at_ms + rail.watch_ms()
        && after.iter().any(|i| i.state == PayoutItemState::Sent)
    {
        Some(now + POLL_WATCH_MS)
    } else {
        None
    };
    let note = (!deferred.is_empty()).then(|| deferred.join("; "));
    give_back(note, next, answer.rail_ref.clone()).await?;
    Ok(Worked {
        items: after,
        report,
    })
}

/// Book what the rail said about one item; returns the item as it is after. Answers that do
/// not move the item (pending, deferred, one already booked) change nothing.
pub async fn book(
    engine: &Engine,
    item: &PayoutItem,
    outcome: &RailOutcome,
) -> Result<PayoutItem, EngineError> {
    use PayoutItemState::{Returned, Sent, Submitted};
    let unusable = |reason: &str, at_ms: i64| UnusableMethod {
        method: item.method.clone(),
        reason: reason.to_string(),
        at_ms,
    };
    let (from, to, at_ms, note, mark) = match (outcome, item.state) {
        (RailOutcome::Sent { at_ms, reference }, Submitted) => {
            (Submitted, Sent, *at_ms, reference.clone(), None)
        }
        (
            RailOutcome::Failed { at_ms, reason } | RailOutcome::Returned { at_ms, reason },
            Submitted,
        ) => (
            Submitted,
            PayoutItemState::Failed,
            *at_ms,
            reason.clone(),
            Some(unusable(reason, *at_ms)),
        ),
        (RailOutcome::Returned { at_ms, reason } | RailOutcome::Failed { at_ms, reason }, Sent) => {
            (
                Sent,
                Returned,
                *at_ms,
                reason.clone(),
                Some(unusable(reason, *at_ms)),
            )
        }
        _ => return Ok(item.clone()),
    };
    match move_item_marking(
        engine,
        item,
        from,
        to,
        at_ms,
        &[("rail_note", &note)],
        mark.as_ref(),
    )
    .await?
    {
        Some(after) => Ok(after),
        None => reload(engine, item).await,
    }
}

/// Open (or count again on) the batch's needs-attention record.
async fn needs_attention(
    engine: &Engine,
    batch: &RailBatch,
    reason_code: &str,
    reason: &str,
) -> Result<(), EngineError> {
    let payload = serde_json::to_vec(batch)
        .map_err(|e| EngineError::Inconsistent(format!("rail batch: {e}")))?;
    attention::record(
        &engine.table,
        &NewAttention {
            source: ATTENTION_SOURCE,
            event_id: Some(&batch.batch_id),
            event_type: Some(&batch.rail),
            reason_code,
            reason,
            business_at_ms: None,
            livemode: None,
            api_version: None,
            payload: &payload,
        },
    )
    .await?;
    Ok(())
}

/// Group submitted items by the batch that carries them (for a redelivered chunk's take-over).
pub fn batches_of(items: &[PayoutItem]) -> Vec<String> {
    let mut seen: HashMap<&str, ()> = HashMap::new();
    let mut out = vec![];
    for i in items {
        if let Some(b) = i.rail_batch.as_deref() {
            if i.state == PayoutItemState::Submitted && seen.insert(b, ()).is_none() {
                out.push(b.to_string());
            }
        }
    }
    out
}
