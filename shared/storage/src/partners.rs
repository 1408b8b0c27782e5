//! Partners and their program memberships.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};
use rules::levels::{LevelHistory, PartnerSale};
use rules::{Currency, Membership, Money, PartnerStatus, PayoutMethod, TaxInfoState};
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

/// What stands in the way of a partner's payouts besides the partner item: an operator's hold
/// and a payout method its rail rejected (usable again once the partner's method differs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayoutStanding {
    pub partner_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<StandingNote>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unusable: Option<UnusableMethod>,
}

/// Who decided what, when (technical time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StandingNote {
    pub reason: String,
    pub by: String,
    pub at_ms: i64,
}

/// A payout method its rail (or an operator) rejected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnusableMethod {
    pub method: PayoutMethod,
    pub reason: String,
    pub at_ms: i64,
}

impl PayoutStanding {
    /// Why `current` (the partner's method now) is unusable: only while it is the rejected one.
    pub fn unusable_reason(&self, current: &PayoutMethod) -> Option<&str> {
        self.unusable
            .as_ref()
            .filter(|u| &u.method == current)
            .map(|u| u.reason.as_str())
    }
    /// The operator's hold reason, if any.
    pub fn hold_reason(&self) -> Option<&str> {
        self.hold.as_ref().map(|h| h.reason.as_str())
    }
}

pub async fn payout_standing(
    table: &Table,
    partner_id: &str,
) -> Result<PayoutStanding, StoreError> {
    Ok(table
        .get_as::<PayoutStanding>(&keys::payout_standing(partner_id))
        .await?
        .unwrap_or_else(|| PayoutStanding {
            partner_id: partner_id.to_string(),
            ..PayoutStanding::default()
        }))
}

/// Hold a partner's payouts (`Some`) or lift the hold (`None`).
pub async fn set_payout_hold(
    table: &Table,
    partner_id: &str,
    hold: Option<StandingNote>,
) -> Result<(), StoreError> {
    let mut tx = Tx::new();
    set_payout_hold_in(&mut tx, partner_id, hold.as_ref())?;
    tx.commit(table).await
}

/// [`set_payout_hold`] inside a transaction (the one that books a transfer the platform
/// reversed: the partner waits for an operator instead of being paid the money again).
pub fn set_payout_hold_in(
    tx: &mut Tx,
    partner_id: &str,
    hold: Option<&StandingNote>,
) -> Result<(), StoreError> {
    let spec = UpdateSpec::new().set_s("partner_id", partner_id);
    let spec = match hold {
        Some(h) => spec.set("hold", to_attribute(h)?),
        None => spec.remove("hold"),
    };
    tx.update(&keys::payout_standing(partner_id), spec, "payout standing")
}

/// Record that the partner's payout method was rejected (by the rail, or an operator).
pub async fn mark_method_unusable(
    table: &Table,
    partner_id: &str,
    unusable: &UnusableMethod,
) -> Result<(), StoreError> {
    let mut tx = Tx::new();
    mark_method_unusable_in(&mut tx, partner_id, unusable)?;
    tx.commit(table).await
}

/// [`mark_method_unusable`] inside a transaction (the one that books what the rail said).
pub fn mark_method_unusable_in(
    tx: &mut Tx,
    partner_id: &str,
    unusable: &UnusableMethod,
) -> Result<(), StoreError> {
    let spec = UpdateSpec::new()
        .set_s("partner_id", partner_id)
        .set("unusable", to_attribute(unusable)?);
    tx.update(&keys::payout_standing(partner_id), spec, "payout standing")
}

fn to_attribute<T: Serialize>(v: &T) -> Result<AttributeValue, StoreError> {
    Ok(serde_dynamo::to_attribute_value(v)?)
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

// ---- levels: the partner's level sales and derived history -------------------------------

/// A partner's sale counted toward their levels, as stored under
/// `PK=PARTNER#{partner} SK=LEVELSALE#{program}#{paid ts}#{invoice}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct LevelSaleRow {
    program_id: String,
    customer_key: String,
    invoice_id: String,
    paid_at_ms: i64,
    revenue_minor: i64,
    currency: Currency,
}

impl LevelSaleRow {
    fn into_sale(self) -> Result<PartnerSale, StoreError> {
        let paid_at = DateTime::<Utc>::from_timestamp_millis(self.paid_at_ms).ok_or_else(|| {
            StoreError::Decode(format!(
                "level sale {} paid at {}",
                self.invoice_id, self.paid_at_ms
            ))
        })?;
        Ok(PartnerSale {
            customer_id: self.customer_key,
            invoice_id: self.invoice_id,
            paid_at,
            revenue: Money::new(self.revenue_minor, self.currency),
        })
    }
}

/// Record a sale toward the partner's levels (an overwrite with the same content when repeated).
pub fn put_level_sale(
    tx: &mut Tx,
    partner_id: &str,
    program_id: &str,
    sale: &PartnerSale,
) -> Result<(), StoreError> {
    let paid_at_ms = sale.paid_at.timestamp_millis();
    let row = LevelSaleRow {
        program_id: program_id.into(),
        customer_key: sale.customer_id.clone(),
        invoice_id: sale.invoice_id.clone(),
        paid_at_ms,
        revenue_minor: sale.revenue.minor,
        currency: sale.revenue.currency,
    };
    let key = keys::level_sale(partner_id, program_id, paid_at_ms, &sale.invoice_id);
    tx.put(to_item(&row, &key)?, "level sale")
}

/// Every sale of the partner counted toward their levels in a program, in business-time order.
pub async fn level_sales(
    table: &Table,
    partner_id: &str,
    program_id: &str,
) -> Result<Vec<PartnerSale>, StoreError> {
    level_sales_from(table, partner_id, program_id, 0).await
}

/// The partner's level sales in a program paid at or after `from_ms`, in business-time order.
pub async fn level_sales_from(
    table: &Table,
    partner_id: &str,
    program_id: &str,
    from_ms: i64,
) -> Result<Vec<PartnerSale>, StoreError> {
    let (a, b) = keys::level_sales_from(program_id, from_ms);
    let q = Query::table(keys::partner_pk(partner_id)).between(a, b);
    table
        .query_as::<LevelSaleRow>(q)
        .await?
        .into_iter()
        .map(LevelSaleRow::into_sale)
        .collect()
}

/// A partner's levels in a program, derived from their level sales, under
/// `PK=PARTNER#{partner} SK=LEVELS#{program}`: the item every booking that may change them
/// meets on (`version`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartnerLevels {
    pub partner_id: String,
    pub program_id: String,
    /// The history derived from every level sale (what the fold prices with).
    #[serde(default)]
    pub level_history: LevelHistory,
    /// Its current level.
    #[serde(default)]
    pub level: u32,
    /// Bumped by every booking that recomputed the history; 0 when nothing is stored.
    #[serde(default)]
    pub version: u64,
    /// A change of the history whose re-pricing is not known to be finished: the customers with
    /// level sales paid at or after this time must be reconciled.
    #[serde(default)]
    pub reprice_from_ms: Option<i64>,
}

/// The partner's levels in a program (`None` before their first recomputation).
pub async fn partner_levels(
    table: &Table,
    partner_id: &str,
    program_id: &str,
) -> Result<Option<PartnerLevels>, StoreError> {
    table
        .get_as(&keys::partner_levels(partner_id, program_id))
        .await
}

/// Write the partner's levels if nobody did since `read_version` was read
/// (`ConditionFailed{"partner levels"}` otherwise); the stored version becomes
/// `levels.version`.
pub fn put_partner_levels(
    tx: &mut Tx,
    levels: &PartnerLevels,
    read_version: u64,
) -> Result<(), StoreError> {
    let item = to_item(
        levels,
        &keys::partner_levels(&levels.partner_id, &levels.program_id),
    )?;
    if read_version == 0 {
        tx.put_if(
            item,
            "attribute_not_exists(PK)",
            &[],
            vec![],
            "partner levels",
        )
    } else {
        tx.put_if(
            item,
            "version = :v",
            &[],
            vec![(":v", AttributeValue::N(read_version.to_string()))],
            "partner levels",
        )
    }
}

/// Forget a finished re-pricing, unless the levels changed since `version` (then whoever
/// changed them finishes it). Returns whether it was cleared.
pub async fn clear_level_reprice(
    table: &Table,
    partner_id: &str,
    program_id: &str,
    version: u64,
) -> Result<bool, StoreError> {
    let mut tx = Tx::new();
    tx.update(
        &keys::partner_levels(partner_id, program_id),
        UpdateSpec::new().remove("reprice_from_ms").condition(
            "version = :v",
            &[],
            vec![(":v", AttributeValue::N(version.to_string()))],
        ),
        "partner levels",
    )?;
    match tx.commit(table).await {
        Ok(()) => Ok(true),
        Err(StoreError::ConditionFailed { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Mirror a partner's new level history and current level on their membership (what
/// `partnerctl` shows and `apply` keeps).
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
/// self-referral check, when `with_partner`), the membership (recruiter) and, when
/// `with_levels`, their levels in the program.
pub async fn sale_context(
    table: &Table,
    partner_id: &str,
    program_id: &str,
    with_partner: bool,
    with_levels: bool,
) -> Result<SaleContext, StoreError> {
    let pk = keys::partner(partner_id);
    let mk = keys::membership(partner_id, program_id);
    let lk = keys::partner_levels(partner_id, program_id);
    let mut wanted = vec![mk.clone()];
    if with_partner {
        wanted.push(pk.clone());
    }
    if with_levels {
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
    let levels = match found.remove(&lk) {
        Some(i) => Some(Some(serde_dynamo::from_item(i)?)),
        None if with_levels => Some(None),
        None => None,
    };
    Ok(SaleContext {
        partner,
        membership,
        levels,
    })
}

/// See [`sale_context`].
#[derive(Debug, Clone, Default)]
pub struct SaleContext {
    pub partner: Option<Partner>,
    pub membership: Option<MembershipRow>,
    /// `None` when not asked for; `Some(None)` when asked for and none are stored.
    pub levels: Option<Option<PartnerLevels>>,
}
