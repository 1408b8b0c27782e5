//! Partners and their program memberships.

use aws_sdk_dynamodb::types::AttributeValue;
use rules::levels::{LevelHistory, LevelSale, PartnerMetrics};
use rules::{Currency, Membership, PartnerStatus, PayoutMethod, TaxInfoState};
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::table::{to_item, Item, ItemExt, Query, Table};
use crate::tx::{Tx, UpdateSpec};

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
    let pk = keys::partner_email_pk(normalized_email);
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
        .query_as(Query::table(keys::partner_pk(partner_id)).begins_with(keys::MEMBERSHIP_PREFIX))
        .await
}

/// A program's partners.
pub async fn program_members(
    table: &Table,
    program_id: &str,
) -> Result<Vec<MembershipRow>, StoreError> {
    let pk = keys::program_members_pk(program_id);
    table.query_as(Query::gsi1(pk)).await
}

// ---- level metrics and membership writes ---------------------------------------------------

fn metrics_of(item: &Item) -> PartnerMetrics {
    let mut m = PartnerMetrics {
        active_customers: item
            .n("active_customers")
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        ..Default::default()
    };
    for (k, v) in item {
        if let (Some(code), Ok(n)) = (k.strip_prefix("revenue_"), v.as_n()) {
            if let (Ok(c), Ok(n)) = (Currency::new(code), n.parse::<i64>()) {
                m.revenue.insert(c, n);
            }
        }
    }
    m
}

/// A partner's level metrics in a program (zero when none are stored).
pub async fn level_metrics(
    table: &Table,
    partner_id: &str,
    program_id: &str,
) -> Result<PartnerMetrics, StoreError> {
    Ok(table
        .get(&keys::level_metrics(partner_id, program_id))
        .await?
        .map(|i| metrics_of(&i))
        .unwrap_or_default())
}

/// Add a sale to the partner's level metrics (revenue per currency, new customers).
pub fn add_level_sale(
    tx: &mut Tx,
    partner_id: &str,
    program_id: &str,
    sale: &LevelSale,
) -> Result<(), StoreError> {
    let mut spec = UpdateSpec::new().add_n(
        &format!("revenue_{}", sale.revenue.currency),
        sale.revenue.minor,
    );
    if sale.new_customer {
        spec = spec.add_n("active_customers", 1);
    }
    tx.update(
        &keys::level_metrics(partner_id, program_id),
        spec,
        "level metrics",
    )
}

/// Store a membership's new level history and current level (a promotion).
pub fn set_level(
    tx: &mut Tx,
    partner_id: &str,
    program_id: &str,
    history: &LevelHistory,
    level: u32,
) -> Result<(), StoreError> {
    let history = serde_dynamo::to_attribute_value(history).map_err(StoreError::from)?;
    tx.update(
        &keys::membership(partner_id, program_id),
        UpdateSpec::new()
            .set("level_history", history)
            .set("membership.level", AttributeValue::N(level.to_string())),
        "membership level",
    )
}

/// Write a membership whose recruiter is being set, unless a recruiter is already stored
/// (`ConditionFailed{"membership"}` then: the first recruiter keeps the credit).
pub fn set_recruiter_once(tx: &mut Tx, row: &MembershipRow) -> Result<(), StoreError> {
    let m = &row.membership;
    let item = to_item(row, &keys::membership(&m.partner_id, &m.program_id))?
        .with_gsi1(keys::program_members_gsi(&m.program_id, &m.partner_id));
    tx.put_if(
        item,
        "attribute_not_exists(PK) OR attribute_not_exists(membership.recruiter) OR membership.recruiter = :null",
        &[],
        vec![(":null", AttributeValue::Null(true))],
        "membership",
    )
}

/// What booking a partner's sale reads about them, in one `BatchGetItem`: the partner (for the
/// self-referral check, when `with_partner`), the membership (recruiter, level history) and,
/// when `with_metrics`, the level metrics.
pub async fn sale_context(
    table: &Table,
    partner_id: &str,
    program_id: &str,
    with_partner: bool,
    with_metrics: bool,
) -> Result<SaleContext, StoreError> {
    let pk = keys::partner(partner_id);
    let mk = keys::membership(partner_id, program_id);
    let lk = keys::level_metrics(partner_id, program_id);
    let mut wanted = vec![mk.clone()];
    if with_partner {
        wanted.push(pk.clone());
    }
    if with_metrics {
        wanted.push(lk.clone());
    }
    let mut found = table.batch_get(&wanted).await?;
    let partner = match found.remove(&pk) {
        Some(i) => Some(serde_dynamo::from_item(i)?),
        None => None,
    };
    let membership = match found.remove(&mk) {
        Some(i) => Some(serde_dynamo::from_item(i)?),
        None => None,
    };
    let metrics = found.remove(&lk).map(|i| metrics_of(&i));
    Ok(SaleContext {
        partner,
        membership,
        metrics,
    })
}

/// See [`sale_context`].
#[derive(Debug, Clone, Default)]
pub struct SaleContext {
    pub partner: Option<Partner>,
    pub membership: Option<MembershipRow>,
    /// `None` when not asked for; zero metrics when asked for and none are stored.
    pub metrics: Option<PartnerMetrics>,
}
