//! Paying partners: the scheduled payout run.
//!
//! * [`run`]: the daily schedule decides which programs are due on their local date, takes each
//!   run with a lease, releases the holds that ended by the run's time, reads the payable index
//!   and fans the balances out in chunks through the payout queue.
//! * [`worker`]: one chunk at a time, decides (rules) who is paid what, writes each payout
//!   item with its `payout_reserved` entry in one transaction, moves items forward, and
//!   records the chunk so the run knows when it is finished.
//! * [`rail`]: how money leaves ([`rail::Rail`]: PayPal Payouts, Stripe Connect, or the manual
//!   export when a method has no automatic rail).
//! * [`handover`]: items handed to a rail in recorded batches, their status read back by the
//!   poller until final, money that came back returned to the balance.
//! * [`export`]: the manual rail's PayPal Payouts Web file and the operator's settlement.
//!
//! Exactly once, by construction: an item is keyed by (run, partner, program, currency) and
//! written once, with its reservation, on condition that the balance still holds what was
//! read; every later step is a conditional state change ([`rules::PayoutItemState`]) in the
//! transaction of its ledger entry; `submitted` is written before any rail call, and an item
//! found submitted asks the rail before anything else.

pub mod assess;
pub mod connect;
pub mod export;
pub mod handover;
pub mod preview;
pub mod rail;
pub mod review;
pub mod run;
pub mod worker;

use rules::{Currency, EntryKind, PayoutItemState};
use serde::{Deserialize, Serialize};
use storage::ledger::{self, LedgerEntry};
use storage::payouts::{self, PayoutItem};
use storage::{StoreError, Tx};

use crate::{Engine, EngineError};

/// Balances per chunk of a run's fan-out (one SQS message; a worker reads their partners,
/// standings, balances and items in four `BatchGetItem` requests). 97, so that a chunk's items
/// of one rail form one rail batch: a batch is recorded in one transaction with its items'
/// state changes (97 + its header and members: 99 actions, under DynamoDB's 100).
pub const CHUNK_SIZE: usize = 97;

/// One chunk of a run's fan-out: the message the payout queue carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkMessage {
    pub program_id: String,
    pub date: String,
    pub generation: u32,
    pub chunk: u32,
    /// The run's business time.
    pub business_time_ms: i64,
    pub balances: Vec<BalanceRef>,
}

/// A (partner, currency) balance of the run's program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceRef {
    pub partner_id: String,
    pub currency: Currency,
}

/// Where chunks go: the payout queue (SQS) in production, a recorder in tests.
#[async_trait::async_trait]
pub trait ChunkQueue: Send + Sync {
    async fn send(&self, chunks: &[ChunkMessage]) -> Result<(), EngineError>;
}

/// The payout queue: `SendMessageBatch`, ten messages per request.
#[derive(Debug, Clone)]
pub struct SqsChunkQueue {
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

#[async_trait::async_trait]
impl ChunkQueue for SqsChunkQueue {
    async fn send(&self, chunks: &[ChunkMessage]) -> Result<(), EngineError> {
        use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
        for group in chunks.chunks(10) {
            let mut entries = vec![];
            for c in group {
                let body = serde_json::to_string(c)
                    .map_err(|e| EngineError::Inconsistent(format!("chunk message: {e}")))?;
                entries.push(
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("c{}", c.chunk))
                        .message_body(body)
                        .build()
                        .map_err(|e| EngineError::Inconsistent(format!("chunk message: {e}")))?,
                );
            }
            let out = self
                .sqs
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| {
                    EngineError::Queue(aws_sdk_sqs::error::DisplayErrorContext(e).to_string())
                })?;
            if !out.failed.is_empty() {
                return Err(EngineError::Queue(format!(
                    "{} chunk messages were not accepted: {:?}",
                    out.failed.len(),
                    out.failed
                        .iter()
                        .map(|f| f.code.clone())
                        .collect::<Vec<_>>()
                )));
            }
        }
        Ok(())
    }
}

/// The id of the ledger entry a move of `item` into `state` books.
fn entry_id(kind: EntryKind, item: &PayoutItem) -> String {
    format!("{}:{}", kind.as_str(), item.item_id)
}

/// Move `item` from `from` to `to` (technical time `now_ms`), booking the state's ledger entry
/// ([`PayoutItemState::entry_kind`]) at business time `at_ms` in the same transaction; money
/// given back rejoins the balance with the accrual lots the item took. Returns the item as
/// written, or `None` when someone else already moved it (the caller reads it again when it
/// needs to know where it is).
pub async fn move_item(
    engine: &Engine,
    item: &PayoutItem,
    from: PayoutItemState,
    to: PayoutItemState,
    at_ms: i64,
    extra: &[(&str, &str)],
) -> Result<Option<PayoutItem>, EngineError> {
    move_item_marking(engine, item, from, to, at_ms, extra, None).await
}

/// What a move of an item also changes in the partner's payout standing, in its transaction.
#[derive(Debug, Clone, Copy)]
pub enum StandingChange<'a> {
    /// A rail rejected the receiver: the next run waits until the partner changes it.
    MethodUnusable(&'a storage::partners::UnusableMethod),
    /// Payouts wait for an operator (a reversal the platform made).
    Hold(&'a storage::partners::StandingNote),
}

/// [`move_item`], marking the item's payout method unusable in the same transaction (a rail
/// rejected the receiver: the next run waits until the partner changes it).
pub async fn move_item_marking(
    engine: &Engine,
    item: &PayoutItem,
    from: PayoutItemState,
    to: PayoutItemState,
    at_ms: i64,
    extra: &[(&str, &str)],
    unusable: Option<&storage::partners::UnusableMethod>,
) -> Result<Option<PayoutItem>, EngineError> {
    let change = unusable.map(StandingChange::MethodUnusable);
    move_item_changing(engine, item, from, to, at_ms, extra, change).await
}

/// [`move_item`] with a change of the partner's payout standing in the same transaction.
pub async fn move_item_changing(
    engine: &Engine,
    item: &PayoutItem,
    from: PayoutItemState,
    to: PayoutItemState,
    at_ms: i64,
    extra: &[(&str, &str)],
    standing: Option<StandingChange<'_>>,
) -> Result<Option<PayoutItem>, EngineError> {
    let now = engine.table.clock.now_ms();
    let mut tx = Tx::new();
    payouts::transition(&mut tx, item, from, to, now, extra)?;
    match standing {
        Some(StandingChange::MethodUnusable(u)) => {
            storage::partners::mark_method_unusable_in(&mut tx, &item.partner_id, u)?
        }
        Some(StandingChange::Hold(h)) => {
            storage::partners::set_payout_hold_in(&mut tx, &item.partner_id, Some(h))?
        }
        None => {}
    }
    if let Some(kind) = to.entry_kind() {
        let entry = LedgerEntry::new(
            entry_id(kind, item),
            &item.partner_id,
            &item.program_id,
            item.currency,
            kind,
            item.amount,
            None,
            at_ms,
            format!("payout {}", to.as_str()),
            format!("payout:{}", item.item_id),
        )?;
        if entry.delta.available > 0 {
            ledger::post_returning(&mut tx, &entry, &item.lots)?;
        } else {
            ledger::post(&mut tx, &entry)?;
        }
    }
    let after = moved(item, to, now, extra);
    let told = payout_message(&after, at_ms);
    if let Some(env) = &told {
        storage::outbox::enqueue(&mut tx, env)?;
    }
    match tx.commit(&engine.table).await {
        Ok(()) => {
            if let Some(env) = told {
                engine.deliver_new(&[env]).await;
            }
            Ok(Some(after))
        }
        Err(StoreError::ConditionFailed { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The partner's e-mail about an item that reached `sent`, `failed` or `returned` (written in
/// the transaction of the move, which happens once: the item's state is its condition).
fn payout_message(item: &PayoutItem, at_ms: i64) -> Option<messages::Envelope> {
    let reason = || {
        item.rail_note
            .clone()
            .unwrap_or_else(|| "no reason given".into())
    };
    let message = match item.state {
        PayoutItemState::Sent => messages::Message::PayoutSent {
            partner_id: item.partner_id.clone(),
            program_id: item.program_id.clone(),
            item_id: item.item_id.clone(),
            currency: item.currency.code().to_string(),
            amount_minor: item.amount,
            rail: item.method.rail().to_string(),
            reference: item.reference.clone(),
            run_date: item.date.clone(),
        },
        PayoutItemState::Failed | PayoutItemState::Returned => messages::Message::PayoutFailed {
            partner_id: item.partner_id.clone(),
            program_id: item.program_id.clone(),
            item_id: item.item_id.clone(),
            currency: item.currency.code().to_string(),
            amount_minor: item.amount,
            rail: item.method.rail().to_string(),
            reason: reason(),
            returned: item.state == PayoutItemState::Returned,
            run_date: item.date.clone(),
        },
        _ => return None,
    };
    Some(messages::Envelope {
        id: format!("payout-{}:{}", item.state.as_str(), item.item_id),
        at_ms,
        message,
    })
}

/// The item as [`payouts::transition`] leaves it.
fn moved(
    item: &PayoutItem,
    to: PayoutItemState,
    now_ms: i64,
    extra: &[(&str, &str)],
) -> PayoutItem {
    let mut after = PayoutItem {
        state: to,
        updated_at_ms: now_ms,
        ..item.clone()
    };
    for (k, v) in extra {
        match *k {
            "rail_note" => after.rail_note = Some((*v).to_string()),
            "export_id" => after.export_id = Some((*v).to_string()),
            "rail_batch" => after.rail_batch = Some((*v).to_string()),
            _ => {}
        }
    }
    after
}

/// An item as it is now.
pub async fn reload(engine: &Engine, item: &PayoutItem) -> Result<PayoutItem, EngineError> {
    payouts::get_item(&engine.table, &item.key())
        .await?
        .ok_or_else(|| EngineError::Inconsistent(format!("payout item {} vanished", item.item_id)))
}

/// [`move_item`], and the item as it is after, whoever moved it.
pub async fn move_and_read(
    engine: &Engine,
    item: &PayoutItem,
    from: PayoutItemState,
    to: PayoutItemState,
    at_ms: i64,
    extra: &[(&str, &str)],
) -> Result<(bool, PayoutItem), EngineError> {
    match move_item(engine, item, from, to, at_ms, extra).await? {
        Some(after) => Ok((true, after)),
        None => Ok((false, reload(engine, item).await?)),
    }
}
