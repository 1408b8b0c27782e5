//! Programs, their products, tracking keys and promotion codes.

use rules::{Program, ProgramProduct};
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

/// A program's products.
pub async fn program_products(
    table: &Table,
    program_id: &str,
) -> Result<Vec<ProgramProduct>, StoreError> {
    Ok(table
        .query_as::<ProductRow>(
            Query::table(keys::program_pk(program_id)).begins_with(keys::PROGRAM_PRODUCT_PREFIX),
        )
        .await?
        .into_iter()
        .map(|r| r.product)
        .collect())
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
