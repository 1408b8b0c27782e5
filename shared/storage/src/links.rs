//! Links (a partner's referral code in a program) and clicks.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys;
use crate::table::{to_item, ItemExt, Query, Table};
use crate::tx::{Tx, UpdateSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum LinkStatus {
    #[default]
    Active,
    Disabled,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The public code in `/r/{code}`: `[A-Za-z0-9_-]{1,31}`, unique in the deployment.
    pub code: String,
    pub partner_id: String,
    pub program_id: String,
    #[serde(default)]
    pub status: LinkStatus,
    /// Destination overriding the program's default (must be on the program's allow-list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
}

/// Longest link code: click ids (at most 64 characters, so Stripe keeps them) carry the code
/// verbatim up to this length (`tracking::click_id::INLINE_CODE_MAX_LEN`), so a click id can be
/// resolved even when its click item was never written.
pub const MAX_CODE_LEN: usize = 31;

/// Link codes are URL path segments and click-id parts: `[A-Za-z0-9_-]{1,31}`.
pub fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

pub fn link_item(link: &Link) -> Result<crate::Item, StoreError> {
    Ok(to_item(link, &keys::link(&link.code))?
        .with_gsi1(keys::partner_links_gsi(&link.partner_id, &link.code)))
}

pub async fn get_link(table: &Table, code: &str) -> Result<Option<Link>, StoreError> {
    if !valid_code(code) {
        return Ok(None);
    }
    table.get_as(&keys::link(code)).await
}

/// A partner's links.
pub async fn partner_links(table: &Table, partner_id: &str) -> Result<Vec<Link>, StoreError> {
    let pk = keys::partner_links_pk(partner_id);
    table.query_as(Query::gsi1(pk)).await
}

/// A stored click: one per counted click, expiring after the cookie window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Click {
    pub click_id: String,
    pub link_code: String,
    pub partner_id: String,
    pub program_id: String,
    pub visitor_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<String>,
    /// Business time: the request's `requestContext.timeEpoch`.
    pub at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClickOutcome {
    /// A new click, stored and counted.
    Counted,
    /// A repeat within the de-duplication window: the original click id, counted once.
    Repeat { original_click_id: String },
}

/// Shards of a link's daily click counter, so a viral link's counter is not one hot item.
pub const CLICK_COUNTER_SHARDS: u32 = 4;

/// UTC day of an epoch-ms time, `YYYY-MM-DD`.
pub fn utc_day(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// Record a click in one transaction: the de-duplication guard for (link, visitor key), the
/// click item (TTL = cookie window) and the link's daily counter. A repeat within
/// `dedup_window_ms` of the guarded click writes nothing and returns the original id.
pub async fn record_click(
    table: &Table,
    click: &Click,
    visitor_key: &str,
    dedup_window_ms: i64,
    cookie_days: u32,
) -> Result<ClickOutcome, StoreError> {
    let expires = click.at_ms / 1000 + i64::from(cookie_days) * 86_400;
    let guard_key = keys::click_dedup(&click.link_code, visitor_key);
    let mut tx = Tx::new();
    let guard = Table::key_item(&guard_key)
        .with_s("click_id", &click.click_id)
        .with_n("at_ms", click.at_ms)
        .with_ttl(click.at_ms / 1000 + dedup_window_ms / 1000 + 86_400);
    // New guard, or the previous one is older than the window.
    tx.update(
        &guard_key,
        guard
            .into_iter()
            .filter(|(k, _)| k != keys::PK && k != keys::SK)
            .fold(UpdateSpec::new(), |s, (k, v)| s.set(&k, v))
            .condition(
                "attribute_not_exists(PK) OR #at <= :cutoff",
                &[("#at", "at_ms")],
                vec![(
                    ":cutoff",
                    AttributeValue::N((click.at_ms - dedup_window_ms).to_string()),
                )],
            ),
        "click dedup guard",
    )?;
    let item = to_item(click, &keys::click(&click.click_id))?
        .with_gsi1(keys::visitor_clicks_gsi(
            &click.visitor_id,
            click.at_ms,
            &click.click_id,
        ))
        .with_ttl(expires);
    tx.put(item, "click")?;
    let shard = keys::shard_of(&click.click_id) % CLICK_COUNTER_SHARDS;
    let day = utc_day(click.at_ms);
    tx.update(
        &keys::link_daily_clicks(&click.link_code, &format!("{day}#{shard}")),
        UpdateSpec::new()
            .add_n("clicks", 1)
            .set_s("day", &day)
            .set_s("link_code", &click.link_code),
        "daily click counter",
    )?;
    match tx.commit(table).await {
        Ok(()) => Ok(ClickOutcome::Counted),
        Err(StoreError::ConditionFailed { label }) if label.starts_with("click dedup guard") => {
            let original = table
                .get(&guard_key)
                .await?
                .and_then(|i| i.s("click_id").map(str::to_string))
                .ok_or_else(|| StoreError::Decode("dedup guard without click_id".into()))?;
            Ok(ClickOutcome::Repeat {
                original_click_id: original,
            })
        }
        Err(e) => Err(e),
    }
}

pub async fn get_click(table: &Table, click_id: &str) -> Result<Option<Click>, StoreError> {
    table.get_as(&keys::click(click_id)).await
}

/// The links of `codes` and the partners of `partner_ids` (what decides whether a visitor's
/// clicks still bind), in one `BatchGetItem`; missing ones are absent from the answer.
pub async fn links_and_partners(
    table: &Table,
    codes: &[&str],
    partner_ids: &[&str],
) -> Result<(Vec<Link>, Vec<crate::partners::Partner>), StoreError> {
    let link_keys: Vec<keys::Key> = codes
        .iter()
        .filter(|c| valid_code(c))
        .map(|c| keys::link(c))
        .collect();
    let partner_keys: Vec<keys::Key> = partner_ids
        .iter()
        .filter(|p| keys::safe_id(p))
        .map(|p| keys::partner(p))
        .collect();
    let wanted: Vec<keys::Key> = link_keys.iter().chain(&partner_keys).cloned().collect();
    let mut found = table.batch_get(&wanted).await?;
    let mut links = vec![];
    for k in &link_keys {
        if let Some(item) = found.remove(k) {
            links.push(serde_dynamo::from_item(item)?);
        }
    }
    let mut partners = vec![];
    for k in &partner_keys {
        if let Some(item) = found.remove(k) {
            partners.push(serde_dynamo::from_item(item)?);
        }
    }
    Ok((links, partners))
}

/// A visitor's clicks, oldest first.
pub async fn visitor_clicks(table: &Table, visitor_id: &str) -> Result<Vec<Click>, StoreError> {
    table
        .query_as(Query::gsi1(keys::visitor_clicks_pk(visitor_id)))
        .await
}

/// Counted clicks of a link per UTC day in `[from_day, to_day]` (`YYYY-MM-DD`).
pub async fn daily_clicks(
    table: &Table,
    code: &str,
    from_day: &str,
    to_day: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
    let pk = keys::link(code).pk;
    let rows = table
        .query(Query::table(pk).between(
            format!("{}{from_day}", keys::LINK_DAILY_PREFIX),
            format!("{}{to_day}#~", keys::LINK_DAILY_PREFIX),
        ))
        .await?;
    let mut by_day: std::collections::BTreeMap<String, i64> = Default::default();
    for r in rows {
        if let (Some(d), Some(n)) = (r.s("day"), r.n("clicks")) {
            *by_day.entry(d.to_string()).or_default() += n;
        }
    }
    Ok(by_day.into_iter().collect())
}
