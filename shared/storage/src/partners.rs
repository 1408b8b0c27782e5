//! Partners and their program memberships.

use rules::levels::LevelHistory;
use rules::{Membership, PartnerStatus, PayoutMethod, TaxInfoState};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::table::{to_item, Item, ItemExt, Query, Table};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partner {
    pub partner_id: String,
    /// Normalised e-mail (see `rules::attribution::normalize_email`).
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: PartnerStatus,
    #[serde(default)]
    pub payout_method: PayoutMethod,
    #[serde(default)]
    pub tax_info: TaxInfoState,
}

pub fn partner_item(p: &Partner) -> Result<Item, StoreError> {
    Ok(to_item(p, &keys::partner(&p.partner_id))?
        .with_gsi1(keys::partner_email_gsi(&p.email, &p.partner_id)))
}

/// The uniqueness item of a partner's e-mail.
pub fn partner_email_unique_item(p: &Partner) -> Item {
    Table::key_item(&keys::partner_email_unique(&p.email)).with_s("partner_id", &p.partner_id)
}

pub async fn get_partner(table: &Table, partner_id: &str) -> Result<Option<Partner>, StoreError> {
    if !keys::safe_id(partner_id) {
        return Ok(None);
    }
    table.get_as(&keys::partner(partner_id)).await
}

/// Partner by normalised e-mail.
pub async fn partner_by_email(
    table: &Table,
    normalized_email: &str,
) -> Result<Option<Partner>, StoreError> {
    let (pk, _) = keys::partner_email_gsi(normalized_email, "");
    Ok(table
        .query_as::<Partner>(Query::gsi1(pk).limit(1))
        .await?
        .into_iter()
        .next())
}

/// How a membership is stored: the rules' `Membership` (configuration) plus its level history
/// (state, written only by the commission path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRow {
    pub membership: Membership,
    #[serde(default)]
    pub level_history: LevelHistory,
}

pub fn membership_item(m: &Membership) -> Result<Item, StoreError> {
    Ok(to_item(
        &MembershipRow {
            membership: m.clone(),
            level_history: LevelHistory::new(),
        },
        &keys::membership(&m.partner_id, &m.program_id),
    )?
    .with_gsi1(keys::program_members_gsi(&m.program_id, &m.partner_id)))
}

pub async fn get_membership(
    table: &Table,
    partner_id: &str,
    program_id: &str,
) -> Result<Option<MembershipRow>, StoreError> {
    table
        .get_as(&keys::membership(partner_id, program_id))
        .await
}

/// A partner's memberships (all programs).
pub async fn partner_memberships(
    table: &Table,
    partner_id: &str,
) -> Result<Vec<MembershipRow>, StoreError> {
    table
        .query_as(Query::table(keys::partner(partner_id).pk).begins_with(keys::MEMBERSHIP_PREFIX))
        .await
}

/// A program's partners.
pub async fn program_members(
    table: &Table,
    program_id: &str,
) -> Result<Vec<MembershipRow>, StoreError> {
    let (pk, _) = keys::program_members_gsi(program_id, "");
    table.query_as(Query::gsi1(pk)).await
}
