//! Programs, their products and versions, tracking keys and promotion codes.
//!
//! A program's partition `PROGRAM#{program}` holds the program as it is now (`SK=PROGRAM`,
//! read by the redirect, the API and payouts), one row per product that was ever on it
//! (`SK=PRODUCT#{product}`, indexed by product so that a late invoice of a product removed
//! since still finds the program) and its versions (`SK=VERSION#{effective_from ms}`: the
//! settings and products in force from that business time, what the commission fold prices
//! with). [`program_versions`] reads the partition in one Query.

use rules::{Program, ProgramProduct, ProgramVersion, ProgramVersions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::StoreError;
use crate::keys;
use crate::table::{to_item, Item, ItemExt, Query, Table};

/// How a program is stored: the rules' `Program` nested under `program`, so that key attributes
/// never mix with its fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramRow {
    pub program: Program,
}

pub fn program_item(program: &Program) -> Result<Item, StoreError> {
    Ok(to_item(
        &ProgramRow {
            program: program.clone(),
        },
        &keys::program(&program.id),
    )?
    .with_gsi1(keys::programs_gsi(&program.id)))
}

pub async fn get_program(table: &Table, program_id: &str) -> Result<Option<Program>, StoreError> {
    if !keys::safe_id(program_id) {
        return Ok(None);
    }
    Ok(table
        .get_as::<ProgramRow>(&keys::program(program_id))
        .await?
        .map(|r| r.program))
}

/// Every program (a deployment has a handful: one GSI1 partition).
pub async fn list_programs(table: &Table) -> Result<Vec<Program>, StoreError> {
    Ok(table
        .query_as::<ProgramRow>(Query::gsi1(keys::programs_pk()))
        .await?
        .into_iter()
        .map(|r| r.program)
        .collect())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductRow {
    pub product: ProgramProduct,
}

pub fn product_item(p: &ProgramProduct) -> Result<Item, StoreError> {
    Ok(to_item(
        &ProductRow { product: p.clone() },
        &keys::program_product(&p.program_id, &p.product_id),
    )?
    .with_gsi1(keys::product_programs_gsi(&p.product_id, &p.program_id)))
}

/// A program's version item (`SK=VERSION#{effective_from ms}`), with its products.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramVersionRow {
    pub version: ProgramVersion,
}

pub fn version_item(v: &ProgramVersion) -> Result<Item, StoreError> {
    to_item(
        &ProgramVersionRow { version: v.clone() },
        &keys::program_version(&v.program.id, v.effective_from.timestamp_millis()),
    )
}

/// Write a new version; a version from the same millisecond is never overwritten
/// (`Err(AlreadyDone)`: another edit took that instant).
pub async fn put_new_version(table: &Table, v: &ProgramVersion) -> Result<(), StoreError> {
    table.put_if_absent(version_item(v)?).await
}

/// What a program's partition holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProgramPartition {
    /// The program as it is now.
    pub program: Option<Program>,
    /// Every product that was ever on it.
    pub products: Vec<ProgramProduct>,
    /// Its versions, oldest first (none for a program stored before versions).
    pub versions: Vec<ProgramVersion>,
}

impl ProgramPartition {
    /// The program's versions; a program stored before versions is one version in force at all
    /// times (its item and its products). `None`: no such program.
    pub fn history(&self) -> Result<Option<ProgramVersions>, StoreError> {
        if !self.versions.is_empty() {
            return ProgramVersions::new(self.versions.clone())
                .map(Some)
                .map_err(|e| StoreError::Decode(e.to_string()));
        }
        Ok(self
            .program
            .clone()
            .map(|p| ProgramVersions::single(p, self.products.clone())))
    }
}

/// A program's partition, in one Query (`PK=PROGRAM#{program}`).
pub async fn program_partition(
    table: &Table,
    program_id: &str,
) -> Result<ProgramPartition, StoreError> {
    let mut out = ProgramPartition::default();
    if !keys::safe_id(program_id) {
        return Ok(out);
    }
    for item in table
        .query(Query::table(keys::program_pk(program_id)))
        .await?
    {
        let sk = item.s(keys::SK).unwrap_or_default().to_string();
        if sk == keys::program(program_id).sk {
            out.program = Some(serde_dynamo::from_item::<_, ProgramRow>(item)?.program);
        } else if sk.starts_with(keys::PROGRAM_PRODUCT_PREFIX) {
            out.products
                .push(serde_dynamo::from_item::<_, ProductRow>(item)?.product);
        } else if sk.starts_with(keys::PROGRAM_VERSION_PREFIX) {
            out.versions
                .push(serde_dynamo::from_item::<_, ProgramVersionRow>(item)?.version);
        }
    }
    Ok(out)
}

/// A program's versions (see [`ProgramPartition::history`]), in one Query.
pub async fn program_versions(
    table: &Table,
    program_id: &str,
) -> Result<Option<ProgramVersions>, StoreError> {
    program_partition(table, program_id).await?.history()
}

/// Why an edit of a program was not written.
#[derive(Debug, thiserror::Error)]
pub enum EditError {
    /// The edit would re-price what may be booked (see `rules::versions::plan_edit`).
    #[error(transparent)]
    Refused(#[from] rules::VersionError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The versions an edit of a program writes (every editor of a program goes through this):
/// none when `program` and `products` equal its latest version; else the new version
/// (`rules::versions::plan_edit`, effective from `effective_from` or `applied_at`) and, for a
/// program stored before versions existed, first its stored state as the version in force
/// until then. Reads the program's partition; writes nothing ([`put_new_version`] does).
pub async fn versions_of_edit(
    table: &Table,
    program: &Program,
    products: &[ProgramProduct],
    effective_from: Option<chrono::DateTime<chrono::Utc>>,
    applied_at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<ProgramVersion>, EditError> {
    let stored = program_partition(table, &program.id).await?;
    let history = stored.history()?;
    let Some(new) = rules::plan_edit(
        history.as_ref(),
        program,
        products,
        effective_from,
        applied_at,
    )?
    else {
        return Ok(vec![]);
    };
    Ok(match history {
        Some(h) if stored.versions.is_empty() => vec![h.latest().clone(), new],
        _ => vec![new],
    })
}

/// The programs a product is on (ids).
pub async fn programs_of_product(
    table: &Table,
    product_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(table
        .query_as::<ProductRow>(Query::gsi1(keys::product_programs_pk(product_id)))
        .await?
        .into_iter()
        .map(|r| r.product.program_id)
        .collect())
}

/// SHA-256 hex of a secret key; only this is stored.
pub fn key_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn tracking_key_item(program_id: &str, key_sha256_hex: &str) -> Item {
    Table::key_item(&keys::tracking_key(key_sha256_hex)).with_s("program_id", program_id)
}

/// The program a presented tracking key belongs to.
pub async fn program_by_tracking_key(
    table: &Table,
    presented: &str,
) -> Result<Option<String>, StoreError> {
    Ok(table
        .get(&keys::tracking_key(&key_hash(presented)))
        .await?
        .and_then(|i| i.s("program_id").map(str::to_string)))
}

/// A payment-provider promotion code assigned to a partner in a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromotionCode {
    /// Provider id (`promo_...`) or the customer-facing code; both may be registered.
    pub code: String,
    pub partner_id: String,
    pub program_id: String,
}

pub fn promotion_code_item(p: &PromotionCode) -> Result<Item, StoreError> {
    to_item(p, &keys::promotion_code(&p.code))
}

pub async fn get_promotion_code(
    table: &Table,
    code: &str,
) -> Result<Option<PromotionCode>, StoreError> {
    if !keys::safe_id(code) {
        return Ok(None);
    }
    table.get_as(&keys::promotion_code(code)).await
}
