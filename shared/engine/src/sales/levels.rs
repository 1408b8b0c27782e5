//! Partner levels in business time.
//!
//! Every booked sale with a positive base is recorded as a level sale of its partner
//! (`LEVELSALE#{program}#{paid ts}#{invoice}`), and the partner's level history is derived again
//! from all of them ([`rules::level_history_from_sales`]), whatever order they arrived in. The
//! derived history is stored on the partner's levels item (`LEVELS#{program}`), which every
//! booking that recomputes it writes conditionally on the version it read: two bookings of one
//! partner's customers meet there, and the second one recomputes with the first one's sale.
//!
//! When a booking changes the history (a late sale moved a crossing earlier, or crossed a new
//! one), the same transaction re-prices the booking's own customer and records
//! `reprice_from_ms` (the first business time the two histories price differently). After the
//! commit, [`reprice_after_level_change`] reconciles every customer of the partner with a level
//! sale paid from then on (found from the level sales, which name their customer; no Scan) and
//! then forgets `reprice_from_ms`, unless the levels changed again meanwhile (whoever changed
//! them finishes it). A crash before that leaves `reprice_from_ms` stored, and the next booking
//! of the partner (or a redelivery of the same sale) finishes it.

use std::collections::BTreeSet;

use rules::levels::{
    first_difference, level_history_from_sales, settled_before, LevelHistory, PartnerSale,
};
use rules::plan::InvoiceCommission;
use rules::sale::level_sale_of;
use rules::Program;
use storage::partners::{self, MembershipRow, PartnerLevels};
use storage::Tx;

use super::booking::book_and_deliver;
use crate::{Engine, EngineError};

/// What a new sale does to its partner's levels.
pub(crate) struct LevelEffect {
    partner_id: String,
    sale: PartnerSale,
    /// The levels recomputed with the sale, and the version they were read at; `None` when
    /// the sale cannot change them ([`settled_before`]).
    recomputed: Option<(PartnerLevels, u64)>,
    /// The history changed: it is the one to price with, and it is mirrored on the membership.
    changed: bool,
    mirror_on_membership: bool,
    /// The level the sale lifted the partner to, above the one stored before.
    promoted_to: Option<u32>,
}

impl LevelEffect {
    /// The new history, when the sale changed it (the booking's customer is priced with it).
    pub(crate) fn changed_history(&self) -> Option<&LevelHistory> {
        match &self.recomputed {
            Some((l, _)) if self.changed => Some(&l.level_history),
            _ => None,
        }
    }

    /// The partner whose customers need re-pricing after the commit, if any.
    pub(crate) fn reprice_partner(&self) -> Option<&str> {
        match &self.recomputed {
            Some((l, _)) if l.reprice_from_ms.is_some() => Some(&self.partner_id),
            _ => None,
        }
    }

    /// The writes of the booking transaction: the level sale and, when recomputed, the
    /// partner's levels (conditional on the version read), the membership's mirror and, when
    /// the partner reached a higher level, the message that tells them (once per level: the
    /// stored level it is compared with moves in the same transaction).
    pub(crate) fn write(
        &self,
        tx: &mut Tx,
        program: &Program,
        envelopes: &mut Vec<messages::Envelope>,
    ) -> Result<(), EngineError> {
        let program_id = program.id.as_str();
        partners::put_level_sale(tx, &self.partner_id, program_id, &self.sale)?;
        if let Some(level) = self.promoted_to {
            let (name, rate) = match program.level(level) {
                Ok(Some(l)) => (l.name.clone(), (l.rate * rust_decimal::Decimal::from(100))),
                _ => (format!("level {level}"), rust_decimal::Decimal::ZERO),
            };
            let env = messages::Envelope {
                id: format!("level-promoted:{program_id}:{}:{level}", self.partner_id),
                at_ms: self.sale.paid_at.timestamp_millis(),
                message: messages::Message::LevelPromoted {
                    partner_id: self.partner_id.clone(),
                    program_id: program_id.to_string(),
                    level,
                    level_name: name,
                    rate_percent: rate.normalize().to_string(),
                },
            };
            storage::outbox::enqueue(tx, &env)?;
            envelopes.push(env);
        }
        if let Some((levels, read_version)) = &self.recomputed {
            partners::put_partner_levels(tx, levels, *read_version)?;
            if self.changed && self.mirror_on_membership {
                partners::set_level(
                    tx,
                    &self.partner_id,
                    program_id,
                    &levels.level_history,
                    levels.level,
                )?;
            }
        }
        Ok(())
    }
}

/// The history the fold prices a partner's sales with: the derived one once stored, else the
/// membership's (an operator's placement, or none).
pub(crate) fn history_in_force(
    levels: Option<&PartnerLevels>,
    membership: Option<&MembershipRow>,
) -> LevelHistory {
    match (levels, membership) {
        (Some(l), _) => l.level_history.clone(),
        (None, Some(m)) => m.level_history.clone(),
        (None, None) => LevelHistory::new(),
    }
}

/// The level effect of booking `invoice_id` (a new sale of `partner_id`'s customer
/// `customer_key`), from the fold `current` priced with `history` (the history in force, read
/// as `stored`). Reads the partner's level sales unless the sale cannot change the history.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn effect_of_new_sale(
    engine: &Engine,
    program: &Program,
    customer_key: &str,
    partner_id: &str,
    invoice_id: &str,
    current: &[InvoiceCommission],
    history: &LevelHistory,
    stored: Option<&PartnerLevels>,
    membership: Option<&MembershipRow>,
) -> Result<Option<LevelEffect>, EngineError> {
    let Some(c) = current.iter().find(|c| c.invoice_id == invoice_id) else {
        return Ok(None);
    };
    let Some(sale) = level_sale_of(!program.levels.is_empty(), customer_key, c) else {
        return Ok(None);
    };
    let mut effect = LevelEffect {
        partner_id: partner_id.to_string(),
        sale,
        recomputed: None,
        changed: false,
        mirror_on_membership: membership.is_some(),
        promoted_to: None,
    };
    if settled_before(program, history, effect.sale.paid_at) {
        return Ok(Some(effect));
    }
    let mut sales = partners::level_sales(&engine.table, partner_id, &program.id).await?;
    sales.retain(|s| !(s.invoice_id == invoice_id && s.customer_id == customer_key));
    sales.push(effect.sale.clone());
    // On top of the membership's history: an operator's placement, or what was mirrored there
    // before (derived from fewer sales, so never above what all of them give: nothing moves).
    let initial = membership
        .map(|m| m.level_history.clone())
        .unwrap_or_default();
    let derived = level_history_from_sales(program, initial, &sales)?;
    let change_ms = first_difference(history, &derived).map(|t| t.timestamp_millis().max(0));
    let pending = stored.and_then(|l| l.reprice_from_ms);
    let reprice_from_ms = match (pending, change_ms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let read_version = stored.map_or(0, |l| l.version);
    effect.changed = change_ms.is_some();
    let before = stored.map_or_else(|| history.current_level(), |l| l.level);
    let reached = derived.current_level();
    effect.promoted_to = (effect.changed && reached > before).then_some(reached);
    effect.recomputed = Some((
        PartnerLevels {
            partner_id: partner_id.to_string(),
            program_id: program.id.clone(),
            level: derived.current_level(),
            level_history: derived,
            version: read_version + 1,
            reprice_from_ms,
        },
        read_version,
    ));
    Ok(Some(effect))
}

/// Finish a re-pricing recorded on `partner_id`'s levels: reconcile every customer with a
/// level sale paid at or after `reprice_from_ms` (each re-run of the fold books `adjusted`
/// entries), then forget it unless the levels changed meanwhile. Nothing to do when none is
/// recorded. Returns the commissions touched.
pub async fn reprice_after_level_change(
    engine: &Engine,
    program: &Program,
    partner_id: &str,
) -> Result<Vec<String>, EngineError> {
    let t = &engine.table;
    let Some(levels) = partners::partner_levels(t, partner_id, &program.id).await? else {
        return Ok(vec![]);
    };
    let Some(from_ms) = levels.reprice_from_ms else {
        return Ok(vec![]);
    };
    let customers: BTreeSet<String> =
        partners::level_sales_from(t, partner_id, &program.id, from_ms)
            .await?
            .into_iter()
            .map(|s| s.customer_id)
            .collect();
    let mut touched = vec![];
    for customer in customers {
        touched.extend(
            book_and_deliver(engine, program, &customer, None, None)
                .await?
                .commission_ids,
        );
    }
    partners::clear_level_reprice(t, partner_id, &program.id, levels.version).await?;
    Ok(touched)
}
