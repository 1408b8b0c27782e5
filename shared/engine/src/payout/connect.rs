//! What Stripe Connect says about the money we transfer, from its webhook events:
//!
//! * [`account_updated`]: a connected account's `transfers` capability, kept per account as of
//!   the event's time ([`storage::connect_accounts`]); the payout worker lets a balance paid to
//!   an account whose capability is not `active` wait ([`super::assess`]) instead of handing it
//!   to Stripe, which would refuse it.
//! * [`transfer_reversed`]: the platform reversed one of our transfers (`POST
//!   /v1/transfers/{id}/reversals`; only the platform can). The money is back in the
//!   platform's balance, so it is booked back to the partner's available balance
//!   (`payout_returned`) once, and in the same transaction the partner's payouts are held for
//!   an operator: a reversal is a decision someone made, and the next run must not simply pay
//!   the money again. The transfer's metadata names its payout item (the rail writes
//!   `payout_item` and the item's key: `program`, `date`, `partner`, `currency`).

use std::collections::HashMap;

use rules::{Currency, PayoutItemState, PayoutMethod};
use serde::Serialize;
use storage::connect_accounts::{self, ConnectAccount, TransfersCapability};
use storage::partners::StandingNote;
use storage::payouts::{self, PayoutItem};
use storage::{keys, StoreError};

use super::handover;
use super::rail::RailOutcome;
use super::{move_item_changing, reload, StandingChange};
use crate::{Engine, EngineError, OPTIMISTIC_ATTEMPTS};

/// The transfer metadata key of the payout item (`{program}:{date}:{partner}:{currency}`): a
/// transfer without it is not one of our payouts.
pub const PAYOUT_ITEM_KEY: &str = "payout_item";
/// The transfer metadata keys of the item's key, as the rail writes them.
pub const PROGRAM_KEY: &str = "program";
pub const DATE_KEY: &str = "date";
pub const PARTNER_KEY: &str = "partner";
pub const CURRENCY_KEY: &str = "currency";

/// An `account.updated` event, as far as payouts need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUpdate {
    /// `evt_…`.
    pub event_id: String,
    /// `acct_…`.
    pub account_id: String,
    pub transfers: TransfersCapability,
    /// Business time: the event's `created` (ms).
    pub at_ms: i64,
}

/// What recording an account update did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountOutcome {
    /// Recorded: the account's capability as of the event.
    Recorded(ConnectAccount),
    /// A newer event about the account was recorded first (events arrive late and out of
    /// order): nothing written. `recorded` is what stands.
    Stale { recorded: Option<ConnectAccount> },
}

/// Keep the account's `transfers` capability as of the event, unless a newer event's is kept.
pub async fn account_updated(
    engine: &Engine,
    update: &AccountUpdate,
) -> Result<AccountOutcome, EngineError> {
    if !update.account_id.starts_with("acct_") || !keys::safe_id(&update.account_id) {
        return Err(EngineError::Invalid(format!(
            "{:?} is not a Stripe account id",
            update.account_id
        )));
    }
    let account = ConnectAccount {
        account_id: update.account_id.clone(),
        transfers: update.transfers,
        as_of_ms: update.at_ms,
        event_id: update.event_id.clone(),
        recorded_at_ms: engine.table.clock.now_ms(),
    };
    if connect_accounts::record(&engine.table, &account).await? {
        Ok(AccountOutcome::Recorded(account))
    } else {
        Ok(AccountOutcome::Stale {
            recorded: connect_accounts::get(&engine.table, &update.account_id).await?,
        })
    }
}

/// A `transfer.reversed` event's Transfer, as far as booking it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReversedTransfer {
    /// `evt_…`.
    pub event_id: String,
    /// `tr_…`.
    pub transfer_id: String,
    /// Minor units transferred.
    pub amount: i64,
    /// Minor units reversed so far.
    pub amount_reversed: i64,
    /// Stripe's code (lower case).
    pub currency: String,
    /// Stripe's `reversed`: the whole amount came back.
    pub reversed: bool,
    /// When the transfer was made (business time, ms): the `paid` booking of an item whose
    /// transfer was not booked yet when the reversal arrived.
    pub created_ms: i64,
    pub metadata: HashMap<String, String>,
}

impl ReversedTransfer {
    /// Whether the transfer is one of our payouts (the rail sets `metadata[payout_item]`).
    pub fn is_payout(&self) -> bool {
        self.metadata.contains_key(PAYOUT_ITEM_KEY)
    }
}

/// What a reversal did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ReversalOutcome {
    /// `payout_returned` booked now, the partner's payouts held for an operator.
    /// `booked_sent`: the item was still submitted (the reversal overtook the rail's answer),
    /// so its transfer was booked sent (`paid`) first.
    Returned { item_id: String, booked_sent: bool },
    /// Nothing booked: the money is already back in the balance (a redelivery; or the rail
    /// found the transfer reversed first and released the item, `failed`).
    AlreadyBooked {
        item_id: String,
        state: PayoutItemState,
    },
    /// The transfer cannot be matched to an item that can take the money back (metadata
    /// missing or inconsistent, no such item, another transfer, a partial reversal): nothing
    /// booked, an operator must look.
    Unmatched { reason: String },
}

/// Book a reversal of one of our transfers (business time `at_ms`, the event's `created`):
/// `sent → returned` with its `payout_returned` entry and the partner's hold in one
/// transaction; an item still `submitted` is booked sent first (reference: the transfer id).
/// Idempotent: a repeat finds the item returned and books nothing.
pub async fn transfer_reversed(
    engine: &Engine,
    transfer: &ReversedTransfer,
    at_ms: i64,
) -> Result<ReversalOutcome, EngineError> {
    let (key, item_id) = match item_key(transfer) {
        Ok(found) => found,
        Err(reason) => return Ok(ReversalOutcome::Unmatched { reason }),
    };
    let Some(mut item) = payouts::get_item(&engine.table, &key).await? else {
        return Ok(unmatched(transfer, format!("no payout item {item_id}")));
    };
    if let Some(reason) = mismatch(&item, transfer) {
        return Ok(unmatched(transfer, reason));
    }
    let mut booked_sent = false;
    for _ in 0..OPTIMISTIC_ATTEMPTS {
        match item.state {
            PayoutItemState::Submitted => {
                let sent = RailOutcome::Sent {
                    at_ms: transfer.created_ms,
                    reference: transfer.transfer_id.clone(),
                };
                item = handover::book(engine, &item, &sent).await?;
                booked_sent = true;
            }
            PayoutItemState::Sent => {
                if let Some(other) = item
                    .rail_note
                    .as_deref()
                    .filter(|n| n.starts_with("tr_") && *n != transfer.transfer_id)
                {
                    return Ok(unmatched(
                        transfer,
                        format!(
                            "payout item {} was paid by transfer {other}, not this one",
                            item.item_id
                        ),
                    ));
                }
                match return_and_hold(engine, &item, transfer, at_ms).await? {
                    Some(after) => {
                        return Ok(ReversalOutcome::Returned {
                            item_id: after.item_id,
                            booked_sent,
                        })
                    }
                    // Moved meanwhile (a concurrent delivery): see where it is now.
                    None => item = reload(engine, &item).await?,
                }
            }
            PayoutItemState::Returned | PayoutItemState::Failed => {
                return Ok(ReversalOutcome::AlreadyBooked {
                    item_id: item.item_id,
                    state: item.state,
                })
            }
            state @ (PayoutItemState::Created
            | PayoutItemState::Approved
            | PayoutItemState::Held
            | PayoutItemState::Cancelled) => {
                return Ok(unmatched(
                    transfer,
                    format!(
                        "payout item {} is {}: it was never handed to Stripe",
                        item.item_id,
                        state.as_str()
                    ),
                ))
            }
        }
    }
    Err(StoreError::Contention {
        attempts: OPTIMISTIC_ATTEMPTS,
    }
    .into())
}

fn unmatched(transfer: &ReversedTransfer, why: String) -> ReversalOutcome {
    ReversalOutcome::Unmatched {
        reason: format!("reversed transfer {}: {why}", transfer.transfer_id),
    }
}

/// The payout item the transfer's metadata names (its key and id), or why it names none.
fn item_key(t: &ReversedTransfer) -> Result<(keys::Key, String), String> {
    let field = |name: &str| {
        t.metadata
            .get(name)
            .map(String::as_str)
            .filter(|v| keys::safe_id(v))
            .ok_or_else(|| {
                format!(
                    "reversed transfer {}: metadata[{name}] is missing or not an id",
                    t.transfer_id
                )
            })
    };
    let item_id = field(PAYOUT_ITEM_KEY)?;
    let (program, date, partner) = (field(PROGRAM_KEY)?, field(DATE_KEY)?, field(PARTNER_KEY)?);
    let currency = Currency::new(field(CURRENCY_KEY)?).map_err(|e| {
        format!(
            "reversed transfer {}: metadata[currency]: {e}",
            t.transfer_id
        )
    })?;
    if keys::payout_item_id(program, date, partner, currency) != item_id {
        return Err(format!(
            "reversed transfer {}: metadata[payout_item] {item_id} disagrees with its program, date, partner and currency",
            t.transfer_id
        ));
    }
    Ok((
        keys::payout_item(program, date, partner, currency),
        item_id.to_string(),
    ))
}

/// Why the transfer is not the item's whole payout, if it is not.
fn mismatch(item: &PayoutItem, t: &ReversedTransfer) -> Option<String> {
    if !matches!(item.method, PayoutMethod::StripeConnect { .. }) {
        return Some(format!(
            "payout item {} is paid by {}, not Stripe Connect",
            item.item_id,
            item.method.rail()
        ));
    }
    if Currency::new(&t.currency).ok() != Some(item.currency) || t.amount != item.amount {
        return Some(format!(
            "the transfer is {} {}, payout item {} is {} {}",
            t.amount,
            t.currency,
            item.item_id,
            item.amount,
            item.currency.code()
        ));
    }
    if !t.reversed || t.amount_reversed != t.amount {
        return Some(format!(
            "a partial reversal ({} of {} {}): payout item {} stays as it is until an operator decides",
            t.amount_reversed, t.amount, t.currency, item.item_id
        ));
    }
    None
}

/// Move a sent item to `returned` (technical time now), booking `payout_returned` at business
/// time `at_ms` with the accrual lots the item took, holding the partner's payouts and telling
/// the partner, in one transaction conditional on the item still being sent. `None` when it
/// was not (someone moved it first). A sibling of [`super::move_item_marking`], with a hold in
/// place of an unusable method: the receiver did nothing wrong, the platform took the money
/// back.
async fn return_and_hold(
    engine: &Engine,
    item: &PayoutItem,
    t: &ReversedTransfer,
    at_ms: i64,
) -> Result<Option<PayoutItem>, EngineError> {
    let (from, to) = (PayoutItemState::Sent, PayoutItemState::Returned);
    let now = engine.table.clock.now_ms();
    let note = format!("Stripe transfer {} reversed by the platform", t.transfer_id);
    let extra = [("rail_note", note.as_str())];
    let hold = StandingNote {
        reason: format!(
            "Stripe transfer {} of payout item {} was reversed by the platform: the money is back in the available balance and is paid again only once an operator lifts this hold",
            t.transfer_id, item.item_id
        ),
        by: format!("stripe:{}", t.event_id),
        at_ms: now,
    };
    move_item_changing(
        engine,
        item,
        from,
        to,
        at_ms,
        &extra,
        Some(StandingChange::Hold(&hold)),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer(metadata: &[(&str, &str)]) -> ReversedTransfer {
        ReversedTransfer {
            event_id: "evt_1".into(),
            transfer_id: "tr_1".into(),
            amount: 100,
            amount_reversed: 100,
            currency: "usd".into(),
            reversed: true,
            created_ms: 0,
            metadata: metadata
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    const KEY: [(&str, &str); 5] = [
        ("payout_item", "demo:2026-04-10:alice:USD"),
        ("program", "demo"),
        ("date", "2026-04-10"),
        ("partner", "alice"),
        ("currency", "USD"),
    ];

    #[test]
    fn the_metadata_names_the_item_by_its_key() {
        assert_eq!(
            item_key(&transfer(&KEY)),
            Ok((
                keys::payout_item("demo", "2026-04-10", "alice", Currency::USD),
                "demo:2026-04-10:alice:USD".to_string()
            ))
        );
        let missing = item_key(&transfer(&KEY[..4])).unwrap_err();
        assert!(missing.contains("metadata[currency]"), "{missing}");
        let mut other = KEY;
        other[3] = ("partner", "bob");
        let disagrees = item_key(&transfer(&other)).unwrap_err();
        assert!(disagrees.contains("disagrees"), "{disagrees}");
        assert!(!transfer(&[("order", "1")]).is_payout());
        assert!(transfer(&KEY).is_payout());
    }
}
