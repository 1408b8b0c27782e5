//! Stripe connected accounts partners are paid to, as Stripe's `account.updated` events describe
//! them (`CONNECT_ACCOUNT#{acct}` / `ACCOUNT`).
//!
//! Only what deciding a payout needs is kept: the state of the account's `transfers`
//! capability, as of the event's business time (`created`). Stripe delivers events late and in
//! any order, so the record is written on condition that no newer event was recorded: an older
//! event never overwrites a newer one, and a repeat of the same event (or one of the same
//! second) writes the same facts again.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys::{self, Key};
use crate::table::{to_item, Table};

/// The state of a connected account's `transfers` capability (Stripe's `capabilities.transfers`):
/// only an `active` one receives transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransfersCapability {
    Active,
    Inactive,
    Pending,
}

impl TransfersCapability {
    /// Stripe's value (`active`, `inactive`, `pending`); `None` for any other.
    pub fn parse(value: &str) -> Option<TransfersCapability> {
        match value {
            "active" => Some(TransfersCapability::Active),
            "inactive" => Some(TransfersCapability::Inactive),
            "pending" => Some(TransfersCapability::Pending),
            _ => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            TransfersCapability::Active => "active",
            TransfersCapability::Inactive => "inactive",
            TransfersCapability::Pending => "pending",
        }
    }
}

/// A connected account as last recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectAccount {
    /// `acct_…`.
    pub account_id: String,
    pub transfers: TransfersCapability,
    /// Business time of the event that said so (Stripe's `created`, in ms): the record's order.
    pub as_of_ms: i64,
    /// The event that said so (`evt_…`).
    pub event_id: String,
    /// Technical time of the write.
    pub recorded_at_ms: i64,
}

impl ConnectAccount {
    /// Why a transfer to this account would be refused now, if it would: any capability state
    /// but `active` (Stripe refuses a transfer to an account without an active `transfers`
    /// capability, so the payout waits instead of failing at the rail).
    pub fn transfers_blocked(&self) -> Option<String> {
        (self.transfers != TransfersCapability::Active).then(|| {
            format!(
                "Stripe account {}: transfers capability {}",
                self.account_id,
                self.transfers.as_str()
            )
        })
    }
}

/// Record `account` unless an event newer than its `as_of_ms` was recorded (an event of the
/// same time writes again: a redelivery, or the later-arriving of two events of one second).
/// Returns whether it was written (`false`: it was older than what is recorded).
pub async fn record(table: &Table, account: &ConnectAccount) -> Result<bool, StoreError> {
    if !keys::safe_id(&account.account_id) {
        return Err(StoreError::InvalidTransaction(format!(
            "connected account id {:?} cannot be a key",
            account.account_id
        )));
    }
    let item = to_item(account, &keys::connect_account(&account.account_id))?;
    match table
        .put_if(
            item,
            "attribute_not_exists(PK) OR #as_of <= :as_of",
            &[("#as_of", "as_of_ms")],
            vec![(":as_of", AttributeValue::N(account.as_of_ms.to_string()))],
            "connect account",
        )
        .await
    {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// The recorded account, if any event about it was recorded.
pub async fn get(table: &Table, account_id: &str) -> Result<Option<ConnectAccount>, StoreError> {
    if !keys::safe_id(account_id) {
        return Ok(None);
    }
    table.get_as(&keys::connect_account(account_id)).await
}

/// The recorded accounts among `account_ids` (one `BatchGetItem` per 100 ids), by id. Ids that
/// cannot be keys and accounts never recorded are absent.
pub async fn get_many(
    table: &Table,
    account_ids: &[String],
) -> Result<HashMap<String, ConnectAccount>, StoreError> {
    let wanted: Vec<Key> = account_ids
        .iter()
        .filter(|id| keys::safe_id(id))
        .map(|id| keys::connect_account(id))
        .collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let mut out = HashMap::new();
    for item in table.batch_get(&wanted).await?.into_values() {
        let account: ConnectAccount = serde_dynamo::from_item(item)?;
        out.insert(account.account_id.clone(), account);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_active_capability_receives_transfers() {
        let mut a = ConnectAccount {
            account_id: "acct_x".into(),
            transfers: TransfersCapability::Active,
            as_of_ms: 1,
            event_id: "evt_1".into(),
            recorded_at_ms: 2,
        };
        assert_eq!(a.transfers_blocked(), None);
        for (value, state) in [
            ("inactive", TransfersCapability::Inactive),
            ("pending", TransfersCapability::Pending),
        ] {
            assert_eq!(TransfersCapability::parse(value), Some(state));
            a.transfers = state;
            assert_eq!(
                a.transfers_blocked().as_deref(),
                Some(format!("Stripe account acct_x: transfers capability {value}").as_str())
            );
        }
        assert_eq!(TransfersCapability::parse("restricted"), None);
    }
}
