//! Programs as files: `partnerctl apply FILE` declares programs, their products, partners (with
//! recruiter), links and promotion codes, and applies them idempotently. Re-applying an unchanged
//! file writes nothing. A changed program (settings or products) is a new program version,
//! effective from the program's `effective_from` or the time of applying
//! (`rules::versions::plan_edit`), so an edit never re-prices what was earned before it.
//! Schema: docs/program-file.md.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use rules::attribution::normalize_email;
use rules::{
    Membership, PartnerStatus, PayoutMethod, Program, ProgramProduct, Reward, TaxInfoState,
};
use serde::Deserialize;
use serde_yaml::Value;
use storage::links::{self, Link, LinkStatus};
use storage::partners::{self, Partner};
use storage::programs::{self, PromotionCode};
use storage::{keys, Item, Table};

use crate::CliError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramFile {
    #[serde(default)]
    pub programs: Vec<Value>,
    #[serde(default)]
    pub partners: Vec<PartnerDecl>,
}

/// A program entry: every field of `rules::Program`, plus these.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramExtras {
    #[serde(default)]
    pub products: Vec<ProductDecl>,
    /// Server-side tracking key in clear (local demos); stored hashed.
    #[serde(default)]
    pub tracking_key: Option<String>,
    /// SHA-256 hex of the tracking key (production files keep only this).
    #[serde(default)]
    pub tracking_key_sha256: Option<String>,
    /// Business time from which a change of this program prices invoices (default: the time
    /// of applying). Ignored when nothing changed.
    #[serde(default)]
    pub effective_from: Option<DateTime<Utc>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductDecl {
    pub product_id: String,
    #[serde(default)]
    pub reward_override: Option<Reward>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerDecl {
    pub id: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub status: PartnerStatus,
    #[serde(default)]
    pub payout_method: PayoutMethod,
    #[serde(default)]
    pub tax_info: TaxInfoState,
    #[serde(default)]
    pub programs: Vec<EnrollmentDecl>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnrollmentDecl {
    pub program: String,
    /// Partner who recruited this one (tier 2).
    #[serde(default)]
    pub recruiter: Option<String>,
    #[serde(default)]
    pub links: Vec<LinkDecl>,
    /// Promotion codes (provider ids like `promo_…` and/or customer-facing codes).
    #[serde(default)]
    pub promotion_codes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum LinkDecl {
    Code(String),
    Full {
        code: String,
        #[serde(default)]
        destination: Option<String>,
        #[serde(default)]
        disabled: bool,
    },
}

const EXTRA_KEYS: [&str; 4] = [
    "products",
    "tracking_key",
    "tracking_key_sha256",
    "effective_from",
];

/// A validated file, ready to apply.
#[derive(Debug)]
pub struct Plan {
    pub items: Vec<(String, Item)>,
    /// Each program with its products, compared with its latest version when applied.
    pub programs: Vec<ProgramDecl>,
}

/// A program of the file as a candidate version.
#[derive(Debug, Clone)]
pub struct ProgramDecl {
    pub program: Program,
    pub products: Vec<ProgramProduct>,
    pub effective_from: Option<DateTime<Utc>>,
}

fn bad(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// Parse and validate (YAML or JSON: JSON is YAML).
pub fn parse(text: &str) -> Result<Plan, CliError> {
    let file: ProgramFile =
        serde_yaml::from_str(text).map_err(|e| bad(format!("program file: {e}")))?;
    let mut items: Vec<(String, Item)> = vec![];
    let mut decls: Vec<ProgramDecl> = vec![];
    let mut program_ids = BTreeSet::new();
    let mut programs_by_id = std::collections::BTreeMap::new();
    for raw in file.programs {
        let mut map = raw
            .as_mapping()
            .cloned()
            .ok_or_else(|| bad("each program must be a mapping"))?;
        let mut extras_map = serde_yaml::Mapping::new();
        for k in EXTRA_KEYS {
            if let Some(v) = map.remove(k) {
                extras_map.insert(Value::from(k), v);
            }
        }
        let program: Program = serde_yaml::from_value(Value::Mapping(map))
            .map_err(|e| bad(format!("program: {e}")))?;
        let extras: ProgramExtras = serde_yaml::from_value(Value::Mapping(extras_map))
            .map_err(|e| bad(format!("program {}: {e}", program.id)))?;
        if !keys::safe_id(&program.id) {
            return Err(bad(format!(
                "program id {:?} is not a valid id",
                program.id
            )));
        }
        program
            .validate()
            .map_err(|e| bad(format!("program {}: {e}", program.id)))?;
        if !program_ids.insert(program.id.clone()) {
            return Err(bad(format!("program {} declared twice", program.id)));
        }
        let products: Vec<ProgramProduct> = extras
            .products
            .into_iter()
            .map(|p| ProgramProduct {
                program_id: program.id.clone(),
                product_id: p.product_id,
                reward_override: p.reward_override,
            })
            .collect();
        rules::program::validate_products(&program, &products)
            .map_err(|e| bad(format!("program {}: {e}", program.id)))?;
        items.push((
            format!("program {}", program.id),
            programs::program_item(&program)?,
        ));
        for p in &products {
            items.push((
                format!("product {} on {}", p.product_id, p.program_id),
                programs::product_item(p)?,
            ));
        }
        let hash = match (extras.tracking_key, extras.tracking_key_sha256) {
            (Some(k), None) => Some(programs::key_hash(&k)),
            (None, Some(h)) if h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Some(h.to_ascii_lowercase())
            }
            (None, Some(_)) => {
                return Err(bad(format!(
                    "program {}: tracking_key_sha256 must be 64 hex digits",
                    program.id
                )))
            }
            (Some(_), Some(_)) => {
                return Err(bad(format!(
                    "program {}: give tracking_key or tracking_key_sha256, not both",
                    program.id
                )))
            }
            (None, None) => None,
        };
        if let Some(h) = hash {
            items.push((
                format!("tracking key of {}", program.id),
                programs::tracking_key_item(&program.id, &h),
            ));
        }
        decls.push(ProgramDecl {
            program: program.clone(),
            products,
            effective_from: extras.effective_from,
        });
        programs_by_id.insert(program.id.clone(), program);
    }
    let partner_ids: BTreeSet<&str> = file.partners.iter().map(|p| p.id.as_str()).collect();
    let mut emails = BTreeSet::new();
    let mut codes = BTreeSet::new();
    for d in &file.partners {
        if !keys::safe_id(&d.id) {
            return Err(bad(format!("partner id {:?} is not a valid id", d.id)));
        }
        let email = normalize_email(&d.email).map_err(|e| bad(format!("partner {}: {e}", d.id)))?;
        if !emails.insert(email.to_string()) {
            return Err(bad(format!(
                "partner {}: e-mail {email} is used by another partner",
                d.id
            )));
        }
        let partner = Partner {
            partner_id: d.id.clone(),
            email: email.to_string(),
            name: d.name.clone(),
            status: d.status,
            payout_method: d.payout_method.clone(),
            tax_info: d.tax_info,
        };
        items.push((
            format!("partner {}", d.id),
            partners::partner_item(&partner)?,
        ));
        items.push((
            format!("e-mail of {}", d.id),
            partners::partner_email_unique_item(&partner),
        ));
        for en in &d.programs {
            let program = programs_by_id.get(&en.program).ok_or_else(|| {
                bad(format!(
                    "partner {}: program {} is not declared in this file",
                    d.id, en.program
                ))
            })?;
            if let Some(r) = &en.recruiter {
                if !partner_ids.contains(r.as_str()) || r == &d.id {
                    return Err(bad(format!(
                        "partner {}: recruiter {r} must be another partner of this file",
                        d.id
                    )));
                }
            }
            let m = Membership {
                partner_id: d.id.clone(),
                program_id: en.program.clone(),
                level: 0,
                recruiter: en.recruiter.clone(),
            };
            items.push((
                format!("membership of {} in {}", d.id, en.program),
                partners::membership_item(&m)?,
            ));
            for l in &en.links {
                let (code, destination, disabled) = match l {
                    LinkDecl::Code(c) => (c.clone(), None, false),
                    LinkDecl::Full {
                        code,
                        destination,
                        disabled,
                    } => (code.clone(), destination.clone(), *disabled),
                };
                if !links::valid_code(&code) {
                    return Err(bad(format!(
                        "link code {code:?}: use 1-31 of A-Z a-z 0-9 _ -"
                    )));
                }
                if !codes.insert(code.clone()) {
                    return Err(bad(format!("link code {code} declared twice")));
                }
                if let Some(dest) = &destination {
                    // The redirect's own check, so what is accepted here is what it honours.
                    if tracking::check_deep_link(&program.deep_link_hosts(), dest).is_none() {
                        return Err(bad(format!(
                            "link {code}: destination {dest} is not on program {}'s allow-list",
                            program.id
                        )));
                    }
                }
                let link = Link {
                    code: code.clone(),
                    partner_id: d.id.clone(),
                    program_id: en.program.clone(),
                    status: if disabled {
                        LinkStatus::Disabled
                    } else {
                        LinkStatus::Active
                    },
                    destination,
                };
                items.push((format!("link {code}"), links::link_item(&link)?));
            }
            for code in &en.promotion_codes {
                if !keys::safe_id(code) {
                    return Err(bad(format!("promotion code {code:?} is not a valid id")));
                }
                let p = PromotionCode {
                    code: code.clone(),
                    partner_id: d.id.clone(),
                    program_id: en.program.clone(),
                };
                items.push((
                    format!("promotion code {code}"),
                    programs::promotion_code_item(&p)?,
                ));
            }
        }
    }
    Ok(Plan {
        items,
        programs: decls,
    })
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: usize,
}

/// Apply: write only what differs. State the engine keeps on these items (a membership's level
/// and level history) is preserved. A partner e-mail or link code owned by another partner is
/// refused. A changed program gets a new version first (`storage::programs::versions_of_edit`); an
/// edit that would re-price booked invoices is refused before anything is written.
pub async fn apply(table: &Table, plan: Plan) -> Result<Applied, CliError> {
    let mut out = Applied::default();
    let now_ms = table.clock.now_ms();
    let applied_at = DateTime::from_timestamp_millis(now_ms)
        .ok_or_else(|| bad(format!("the clock's time {now_ms} ms is out of range")))?;
    let mut versions = vec![];
    for decl in &plan.programs {
        let edit = programs::versions_of_edit(
            table,
            &decl.program,
            &decl.products,
            decl.effective_from,
            applied_at,
        )
        .await;
        versions.extend(match edit {
            Ok(v) if v.is_empty() => {
                out.unchanged += 1;
                v
            }
            Ok(v) => v,
            Err(programs::EditError::Refused(e)) => return Err(bad(e.to_string())),
            Err(programs::EditError::Store(e)) => return Err(e.into()),
        });
    }
    for v in versions {
        let what = format!(
            "version of {} from {}",
            v.program.id,
            v.effective_from.to_rfc3339()
        );
        match programs::put_new_version(table, &v).await {
            Ok(()) => out.created.push(what),
            Err(storage::StoreError::AlreadyDone) => {
                return Err(bad(format!(
                    "{what}: another version is effective from the same millisecond"
                )))
            }
            Err(e) => return Err(e.into()),
        }
    }
    for (what, mut item) in plan.items {
        let key = key_of(&item)?;
        let existing = table.get(&key).await?;
        if let Some(old) = &existing {
            for owned in ["partner_id"] {
                // uniqueness items and links belong to one partner
                if (key.sk == "UNIQUE" || key.sk == "LINK" || key.sk == "PROMO")
                    && old.get(owned) != item.get(owned)
                {
                    return Err(bad(format!("{what} already belongs to another partner")));
                }
            }
            if key.sk.starts_with(keys::MEMBERSHIP_PREFIX) {
                keep_membership_state(old, &mut item);
            }
            if old == &item {
                out.unchanged += 1;
                continue;
            }
            table.put(item).await?;
            out.updated.push(what);
        } else {
            table.put(item).await?;
            out.created.push(what);
        }
    }
    Ok(out)
}

fn keep_membership_state(old: &Item, new: &mut Item) {
    use aws_sdk_dynamodb::types::AttributeValue;
    if let Some(h) = old.get("level_history") {
        new.insert("level_history".into(), h.clone());
    }
    let old_level = old
        .get("membership")
        .and_then(|m| m.as_m().ok())
        .and_then(|m| m.get("level"))
        .cloned();
    if let (Some(level), Some(AttributeValue::M(m))) = (old_level, new.get_mut("membership")) {
        m.insert("level".into(), level);
    }
}

fn key_of(item: &Item) -> Result<storage::Key, CliError> {
    let s = |a: &str| {
        item.get(a)
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| bad("item without key"))
    };
    Ok(storage::Key::new(s(keys::PK)?, s(keys::SK)?))
}
