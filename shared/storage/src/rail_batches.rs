//! Rail batches: which payout items were handed to an automatic rail together, under which id.
//!
//! A batch (`RAILBATCH#{id}`: `BATCH`, the header, and `MEMBERS`) is written in the same transaction that marks its items
//! submitted, before the rail is called: a worker that dies after the call leaves a record that
//! says exactly what was sent and under which id, and whoever picks it up sends the same batch
//! again under the same id (PayPal's `sender_batch_id`, Stripe's idempotency keys) or reads its
//! status; it never forms a new one for the same items.
//!
//! Whoever calls the rail for a batch holds its lease (a conditional update on the technical
//! clock), so a worker and the poller never call the rail for one batch at the same time; each
//! take-over counts an attempt (Stripe's keys carry it). An open batch is on the sparse poll
//! index (GSI2 `RAIL_POLL#{shard}`, sorted by when it is due) until it is closed.

use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue};
use rules::{Currency, PayoutMethod};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::keys::{self, Key};
use crate::table::{to_item, ItemExt, Query, Table};
use crate::tx::{Tx, UpdateSpec};

/// One payout item in a batch, as it was handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchMember {
    pub item_id: String,
    pub reference: String,
    pub partner_id: String,
    pub currency: Currency,
    /// Minor units.
    pub amount: i64,
    /// The receiver as handed over.
    pub method: PayoutMethod,
}

impl BatchMember {
    /// The member's payout item.
    pub fn item_key(&self, batch: &RailBatch) -> Key {
        keys::payout_item(
            &batch.program_id,
            &batch.date,
            &self.partner_id,
            self.currency,
        )
    }
}

/// A hand-over of payout items to one rail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RailBatch {
    /// `pb_` + 24 hex of the SHA-256 of the members' item ids: PayPal's `sender_batch_id`.
    pub batch_id: String,
    /// `paypal` or `stripe_connect`.
    pub rail: String,
    pub program_id: String,
    pub date: String,
    /// Stored apart (`SK=MEMBERS`, written once): the header that every lease and poll updates
    /// stays small (1 WRU a write instead of one per KB of members).
    #[serde(default)]
    pub members: Vec<BatchMember>,
    /// Technical time the batch was written (PayPal keeps a `sender_batch_id` 30 days).
    pub created_at_ms: i64,
    /// 1 for the first hand-over, one more for every take-over.
    pub attempt: u32,
    /// The rail's own id of the batch once known (PayPal's `payout_batch_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rail_ref: Option<String>,
    pub lease_owner: String,
    pub lease_until_ms: i64,
    /// On the poll index until closed.
    pub open: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_ms: Option<i64>,
    /// Status reads so far.
    #[serde(default)]
    pub polls: u32,
    /// What the rail said last about the batch as a whole (an error, a refusal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The batch id of a set of item ids (order does not matter).
pub fn batch_id_of(item_ids: &[&str]) -> String {
    let mut ids: Vec<&str> = item_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha256::new();
    for id in ids {
        h.update(id.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let hex: String = d[..12].iter().map(|b| format!("{b:02x}")).collect();
    format!("pb_{hex}")
}

impl RailBatch {
    /// A new batch of `members`, leased to `owner` until `now_ms + lease_ms`; due on the poll
    /// index when the lease ends (so a worker that dies is taken over by the poller).
    pub fn new(
        rail: &str,
        program_id: &str,
        date: &str,
        members: Vec<BatchMember>,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
    ) -> RailBatch {
        let ids: Vec<&str> = members.iter().map(|m| m.item_id.as_str()).collect();
        RailBatch {
            batch_id: batch_id_of(&ids),
            rail: rail.to_string(),
            program_id: program_id.to_string(),
            date: date.to_string(),
            members,
            created_at_ms: now_ms,
            attempt: 1,
            rail_ref: None,
            lease_owner: owner.to_string(),
            lease_until_ms: now_ms + lease_ms,
            open: true,
            next_poll_ms: Some(now_ms + lease_ms),
            polls: 0,
            note: None,
        }
    }

    pub fn key(&self) -> Key {
        keys::rail_batch(&self.batch_id)
    }
}

/// Write a new batch in `tx` (the transaction that marks its items submitted): its header and
/// its members, two actions; fails with `ConditionFailed{"rail batch"}` when it exists.
pub fn put_new(tx: &mut Tx, batch: &RailBatch) -> Result<(), StoreError> {
    let mut header = to_item(batch, &batch.key())?;
    let members = header
        .remove("members")
        .unwrap_or(AttributeValue::L(vec![]));
    if let Some(at) = batch.next_poll_ms {
        header = header.with_gsi2(keys::rail_poll_gsi(&batch.batch_id, at));
    }
    tx.put_new(header, "rail batch")?;
    let mut members_item = Table::key_item(&keys::rail_batch_members(&batch.batch_id));
    members_item.insert("members".into(), members);
    tx.put_new(members_item, "rail batch members")
}

/// The members of a batch whose header was read alone.
async fn with_members(table: &Table, mut batch: RailBatch) -> Result<RailBatch, StoreError> {
    #[derive(Deserialize)]
    struct Members {
        members: Vec<BatchMember>,
    }
    let m: Option<Members> = table
        .get_as(&keys::rail_batch_members(&batch.batch_id))
        .await?;
    batch.members = m.map(|m| m.members).unwrap_or_default();
    Ok(batch)
}

pub async fn get(table: &Table, batch_id: &str) -> Result<Option<RailBatch>, StoreError> {
    if !keys::safe_id(batch_id) {
        return Ok(None);
    }
    match table
        .get_as::<RailBatch>(&keys::rail_batch(batch_id))
        .await?
    {
        Some(b) => Ok(Some(with_members(table, b).await?)),
        None => Ok(None),
    }
}

/// Take an open batch whose lease ended (technical time `now_ms`) for `owner` until
/// `now_ms + lease_ms`, counting one more attempt: one conditional `UpdateItem` returning the
/// header, then its members. `None` when it is closed or someone holds it.
pub async fn take_over(
    table: &Table,
    batch_id: &str,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Option<RailBatch>, StoreError> {
    let r = table
        .client
        .update_item()
        .table_name(&table.name)
        .set_key(Some(Table::key_item(&keys::rail_batch(batch_id))))
        .update_expression("SET lease_owner = :o, lease_until_ms = :u ADD attempt :one")
        .condition_expression("attribute_exists(PK) AND #open = :t AND lease_until_ms < :now")
        .expression_attribute_names("#open", "open")
        .expression_attribute_values(":o", AttributeValue::S(owner.into()))
        .expression_attribute_values(":u", AttributeValue::N((now_ms + lease_ms).to_string()))
        .expression_attribute_values(":one", AttributeValue::N("1".into()))
        .expression_attribute_values(":t", AttributeValue::Bool(true))
        .expression_attribute_values(":now", AttributeValue::N(now_ms.to_string()))
        .return_values(ReturnValue::AllNew)
        .send()
        .await;
    match r {
        Ok(out) => match out.attributes {
            Some(item) => Ok(Some(
                with_members(table, serde_dynamo::from_item(item)?).await?,
            )),
            None => Ok(None),
        },
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
        {
            Ok(None)
        }
        Err(e) => Err(StoreError::dynamo(e)),
    }
}

/// What the lease holder learned, written as it gives the lease back: the rail's id of the
/// batch, a note, and when it is due again (`None`: closed, off the poll index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress<'a> {
    pub rail_ref: Option<&'a str>,
    pub note: Option<&'a str>,
    pub next_poll_ms: Option<i64>,
    pub polled: bool,
}

/// Give the lease back with `progress`, on condition that `owner` still holds it (a holder
/// whose lease ended and was taken over writes nothing: `Ok(false)`).
pub async fn give_back(
    table: &Table,
    batch: &RailBatch,
    owner: &str,
    progress: &Progress<'_>,
) -> Result<bool, StoreError> {
    let mut spec = UpdateSpec::new().set_n("lease_until_ms", 0);
    if let Some(r) = progress.rail_ref {
        spec = spec.set_s("rail_ref", r);
    }
    spec = match progress.note {
        Some(n) => spec.set_s("note", n),
        None => spec.remove("note"),
    };
    if progress.polled {
        spec = spec.add_n("polls", 1);
    }
    spec = match progress.next_poll_ms {
        Some(at) => {
            let (pk, sk) = keys::rail_poll_gsi(&batch.batch_id, at);
            spec.set_n("next_poll_ms", at)
                .set_s(keys::GSI2PK, pk)
                .set_s(keys::GSI2SK, sk)
        }
        None => spec
            .set("open", AttributeValue::Bool(false))
            .remove("next_poll_ms")
            .remove(keys::GSI2PK)
            .remove(keys::GSI2SK),
    };
    let spec = spec.condition(
        "#owner = :owner",
        &[("#owner", "lease_owner")],
        vec![(":owner", AttributeValue::S(owner.into()))],
    );
    match crate::tx::update_item(table, &batch.key(), spec, "rail batch").await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Ids of open batches due for a status read by technical time `now_ms` (every shard of the
/// poll index; at most `limit` per shard).
pub async fn due(table: &Table, now_ms: i64, limit: usize) -> Result<Vec<String>, StoreError> {
    let mut out = vec![];
    let upto = format!("{}~", keys::ts(now_ms));
    for shard in 0..keys::DUE_SHARDS {
        let items = table
            .query(
                Query::gsi2(keys::rail_poll_pk(shard))
                    .sk_le(upto.clone())
                    .limit(limit),
            )
            .await?;
        out.extend(
            items
                .iter()
                .filter_map(|i| i.s("batch_id").map(str::to_string)),
        );
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_id_names_its_set_of_items_whatever_their_order() {
        let a = batch_id_of(&["demo:2026-04-10:alice:USD", "demo:2026-04-10:bob:USD"]);
        let b = batch_id_of(&["demo:2026-04-10:bob:USD", "demo:2026-04-10:alice:USD"]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 27);
        assert!(a.starts_with("pb_"));
        assert_ne!(a, batch_id_of(&["demo:2026-04-10:alice:USD"]));
        // No concatenation ambiguity: ("ab","c") is not ("a","bc").
        assert_ne!(batch_id_of(&["ab", "c"]), batch_id_of(&["a", "bc"]));
    }
}
