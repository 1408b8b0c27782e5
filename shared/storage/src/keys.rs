//! Every key format of the single table, in one place.
//!
//! Attribute names: `PK`/`SK` (table), `GSI1PK`/`GSI1SK` (overloaded secondary lookups),
//! `GSI2PK`/`GSI2SK` (sparse, sharded "what is due"), `expires_at` (TTL, epoch seconds).
//! Each entity's keys and example item are in `docs/data-model.md`; a key format lives only here.
//!
//! Ids that come from outside (Stripe ids, link codes, emails) never contain `#` after
//! validation (see [`safe_id`]), so the `#` separator is unambiguous.

use rules::Currency;
use sha2::{Digest, Sha256};

pub const PK: &str = "PK";
pub const SK: &str = "SK";
pub const GSI1PK: &str = "GSI1PK";
pub const GSI1SK: &str = "GSI1SK";
pub const GSI2PK: &str = "GSI2PK";
pub const GSI2SK: &str = "GSI2SK";
pub const GSI1: &str = "GSI1";
pub const GSI2: &str = "GSI2";
pub const TTL_ATTR: &str = "expires_at";

/// Shards of each "what is due" partition of GSI2, so no partition gets hot. Readers query
/// every shard (16 small queries); writers pick the shard by a stable hash of the item's id.
pub const DUE_SHARDS: u32 = 16;

/// A table key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn new(pk: impl Into<String>, sk: impl Into<String>) -> Self {
        Key {
            pk: pk.into(),
            sk: sk.into(),
        }
    }
}

/// An id is safe in a key when it is non-empty, at most 200 bytes, and has no `#` or control
/// characters.
pub fn safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 200 && !id.chars().any(|c| c == '#' || c.is_control())
}

/// Stable shard of an id in `0..DUE_SHARDS`.
pub fn shard_of(id: &str) -> u32 {
    let h = Sha256::digest(id.as_bytes());
    u32::from_be_bytes([h[0], h[1], h[2], h[3]]) % DUE_SHARDS
}

/// Fixed-width UTC timestamp for sort keys: milliseconds since the epoch, 13 digits, so that
/// lexical order is time order until the year 2286.
pub fn ts(epoch_ms: i64) -> String {
    format!("{:013}", epoch_ms.max(0))
}

// ---- programs and products -------------------------------------------------------------

pub fn program(program_id: &str) -> Key {
    Key::new(program_pk(program_id), "PROGRAM")
}
/// GSI1 partition of every program (a deployment has a handful).
pub fn programs_pk() -> String {
    "PROGRAMS".into()
}
/// GSI1 of a program: its place in the list of programs.
pub fn programs_gsi(program_id: &str) -> (String, String) {
    (programs_pk(), format!("PROGRAM#{program_id}"))
}
pub fn program_product(program_id: &str, product_id: &str) -> Key {
    Key::new(program_pk(program_id), format!("PRODUCT#{product_id}"))
}
pub const PROGRAM_PRODUCT_PREFIX: &str = "PRODUCT#";
/// A version of a program (its settings and products), in force from `effective_from_ms`
/// (business time); the partition's versions sort in time order.
pub fn program_version(program_id: &str, effective_from_ms: i64) -> Key {
    Key::new(
        program_pk(program_id),
        format!("{PROGRAM_VERSION_PREFIX}{}", ts(effective_from_ms)),
    )
}
pub const PROGRAM_VERSION_PREFIX: &str = "VERSION#";
/// GSI1 of a program product: the programs a product is on.
pub fn product_programs_gsi(product_id: &str, program_id: &str) -> (String, String) {
    (
        product_programs_pk(product_id),
        format!("PROGRAM#{program_id}"),
    )
}
pub fn product_programs_pk(product_id: &str) -> String {
    format!("PRODUCT#{product_id}")
}
/// The partition of a program and its products.
pub fn program_pk(program_id: &str) -> String {
    format!("PROGRAM#{program_id}")
}
/// Program's tracking key, found by the SHA-256 of the presented key (the key itself is never stored).
pub fn tracking_key(key_sha256_hex: &str) -> Key {
    Key::new(format!("TRACKKEY#{key_sha256_hex}"), "TRACKKEY")
}

// ---- partners --------------------------------------------------------------------------

/// The partition of a partner: profile, memberships, metrics, commissions, balances.
pub fn partner_pk(partner_id: &str) -> String {
    format!("PARTNER#{partner_id}")
}
pub fn partner(partner_id: &str) -> Key {
    Key::new(partner_pk(partner_id), "PARTNER")
}
/// An operator's and the rails' standing on a partner's payouts (a hold, a rejected method):
/// kept apart from the partner item, which `partnerctl apply` rewrites from the program file.
pub fn payout_standing(partner_id: &str) -> Key {
    Key::new(partner_pk(partner_id), "PAYOUT_STANDING")
}
/// GSI1 of a partner: partner by normalised email.
pub fn partner_email_gsi(normalized_email: &str, partner_id: &str) -> (String, String) {
    (
        partner_email_pk(normalized_email),
        format!("PARTNER#{partner_id}"),
    )
}
pub fn partner_email_pk(normalized_email: &str) -> String {
    format!("PARTNER_EMAIL#{normalized_email}")
}
/// Uniqueness item: one partner per normalised email.
pub fn partner_email_unique(normalized_email: &str) -> Key {
    Key::new(partner_email_pk(normalized_email), "UNIQUE")
}
/// A partner's membership of a program: level, recruiter, level history.
pub fn membership(partner_id: &str, program_id: &str) -> Key {
    Key::new(partner_pk(partner_id), format!("MEMBER#{program_id}"))
}
pub const MEMBERSHIP_PREFIX: &str = "MEMBER#";
/// GSI1 of a membership: a program's partners.
pub fn program_members_gsi(program_id: &str, partner_id: &str) -> (String, String) {
    (
        program_members_pk(program_id),
        format!("PARTNER#{partner_id}"),
    )
}
pub fn program_members_pk(program_id: &str) -> String {
    format!("PROGRAM#{program_id}#MEMBERS")
}
/// A partner's levels in a program (history derived from their level sales, version).
pub fn partner_levels(partner_id: &str, program_id: &str) -> Key {
    Key::new(partner_pk(partner_id), format!("LEVELS#{program_id}"))
}
/// One sale of a partner counted toward their levels in a program, in business-time order
/// (the level history is derived from these items).
pub fn level_sale(partner_id: &str, program_id: &str, paid_at_ms: i64, invoice_id: &str) -> Key {
    Key::new(
        partner_pk(partner_id),
        format!(
            "{}{}#{invoice_id}",
            level_sales_prefix(program_id),
            ts(paid_at_ms)
        ),
    )
}
/// The sort-key prefix of a partner's level sales in a program (in the partner's partition).
pub fn level_sales_prefix(program_id: &str) -> String {
    format!("LEVELSALE#{program_id}#")
}
/// Sort-key bounds of a partner's level sales in a program paid at or after `from_ms`.
pub fn level_sales_from(program_id: &str, from_ms: i64) -> (String, String) {
    let prefix = level_sales_prefix(program_id);
    (format!("{prefix}{}", ts(from_ms)), format!("{prefix}~"))
}

// ---- links and clicks ------------------------------------------------------------------

pub fn link(code: &str) -> Key {
    Key::new(format!("LINK#{code}"), "LINK")
}
/// GSI1 of a link: a partner's links.
pub fn partner_links_gsi(partner_id: &str, code: &str) -> (String, String) {
    (partner_links_pk(partner_id), format!("LINK#{code}"))
}
pub fn partner_links_pk(partner_id: &str) -> String {
    format!("PARTNER#{partner_id}#LINKS")
}
/// Daily click counter of a link (outlives the click items, which expire).
pub fn link_daily_clicks(code: &str, day: &str) -> Key {
    Key::new(format!("LINK#{code}"), format!("CLICKS#{day}"))
}
pub const LINK_DAILY_PREFIX: &str = "CLICKS#";
pub fn click(click_id: &str) -> Key {
    Key::new(format!("CLICK#{click_id}"), "CLICK")
}
/// GSI1 of a click: a visitor's clicks in time order.
pub fn visitor_clicks_gsi(visitor_id: &str, at_ms: i64, click_id: &str) -> (String, String) {
    (
        visitor_clicks_pk(visitor_id),
        format!("CLICK#{}#{click_id}", ts(at_ms)),
    )
}
pub fn visitor_clicks_pk(visitor_id: &str) -> String {
    format!("VISITOR#{visitor_id}")
}
/// De-duplication guard: one counted click per (link, visitor key) per hour.
pub fn click_dedup(code: &str, visitor_key: &str) -> Key {
    Key::new(format!("CLICKDEDUP#{code}#{visitor_key}"), "DEDUP")
}

// ---- customers and attribution ---------------------------------------------------------

/// A customer of a program (customer key = Stripe `cus_...` or the merchant's own id).
pub fn customer_pk(program_id: &str, customer_key: &str) -> String {
    format!("CUST#{program_id}#{customer_key}")
}
/// The customer's current binding to a partner.
pub fn binding(program_id: &str, customer_key: &str) -> Key {
    Key::new(customer_pk(program_id, customer_key), "BINDING")
}
/// History of a customer's binding (append-only).
pub fn binding_history(program_id: &str, customer_key: &str, at_ms: i64, seq: &str) -> Key {
    Key::new(
        customer_pk(program_id, customer_key),
        format!("HIST#{}#{seq}", ts(at_ms)),
    )
}
pub const BINDING_HISTORY_PREFIX: &str = "HIST#";
/// GSI1 of a binding: bindings by normalised email in a program.
pub fn binding_email_gsi(program_id: &str, normalized_email: &str) -> (String, String) {
    (
        binding_email_pk(program_id, normalized_email),
        "BINDING".into(),
    )
}
pub fn binding_email_pk(program_id: &str, normalized_email: &str) -> String {
    format!("BINDEMAIL#{program_id}#{normalized_email}")
}
/// Pre-attribution of an email (partner invite), per program.
pub fn email_invite(program_id: &str, normalized_email: &str) -> Key {
    Key::new(format!("INVITE#{program_id}#{normalized_email}"), "INVITE")
}
/// A customer's invoice in a program: the facts the commission fold runs over, and what was booked.
pub fn customer_invoice(program_id: &str, customer_key: &str, invoice_id: &str) -> Key {
    Key::new(
        customer_pk(program_id, customer_key),
        format!("INVOICE#{invoice_id}"),
    )
}
pub const CUSTOMER_INVOICE_PREFIX: &str = "INVOICE#";
/// A customer's sales state in a program: version (optimistic lock of every booking) and the
/// first paid sale.
pub fn sales_state(program_id: &str, customer_key: &str) -> Key {
    Key::new(customer_pk(program_id, customer_key), "SALESTATE")
}
/// A subscription that ended: later invoices of it earn nothing.
pub fn subscription_ended(subscription_id: &str) -> Key {
    Key::new(format!("SUBENDED#{subscription_id}"), "SUBENDED")
}
/// An invoice whose payment failed ("in collections"), for operators.
pub fn invoice_in_collections(customer_key: &str, invoice_id: &str) -> Key {
    Key::new(
        format!("COLLECTIONS#{customer_key}"),
        format!("INVOICE#{invoice_id}"),
    )
}
/// A flagged self-referral attempt.
pub fn self_referral_flag(program_id: &str, customer_key: &str, at_ms: i64) -> Key {
    Key::new(
        customer_pk(program_id, customer_key),
        format!("FLAG#{}", ts(at_ms)),
    )
}
/// GSI1 of a flag: a program's flagged self-referrals in time order.
pub fn flags_gsi(program_id: &str, at_ms: i64, customer_key: &str) -> (String, String) {
    (
        flags_pk(program_id),
        format!("{}#{customer_key}", ts(at_ms)),
    )
}
pub fn flags_pk(program_id: &str) -> String {
    format!("FLAGS#{program_id}")
}
/// Stripe promotion code assigned to a partner.
pub fn promotion_code(code: &str) -> Key {
    Key::new(format!("PROMO#{code}"), "PROMO")
}
/// An invoice paid before its customer was bound in `program_id`, kept by customer key.
pub fn unattributed_sale(customer_key: &str, invoice_id: &str, program_id: &str) -> Key {
    Key::new(
        unattributed_pk(customer_key),
        format!("INVOICE#{invoice_id}#{program_id}"),
    )
}
pub fn unattributed_pk(customer_key: &str) -> String {
    format!("UNATTR#{customer_key}")
}
/// GSI1 of an unattributed sale: by normalised email.
pub fn unattributed_email_gsi(normalized_email: &str, invoice_id: &str) -> (String, String) {
    (
        unattributed_email_pk(normalized_email),
        format!("INVOICE#{invoice_id}"),
    )
}
pub fn unattributed_email_pk(normalized_email: &str) -> String {
    format!("UNATTR_EMAIL#{normalized_email}")
}
/// GSI2 of an unattributed sale: the operator's list, one partition per month.
pub fn unattributed_month_gsi(month: &str, at_ms: i64, invoice_id: &str) -> (String, String) {
    (
        unattributed_month_pk(month),
        format!("{}#{invoice_id}", ts(at_ms)),
    )
}
/// `month` is `YYYY-MM`.
pub fn unattributed_month_pk(month: &str) -> String {
    format!("UNATTRIBUTED#{month}")
}

// ---- events ----------------------------------------------------------------------------

/// Marker that an external event was processed (exactly once).
pub fn processed_event(source: &str, event_id: &str) -> Key {
    Key::new(format!("EVENT#{source}#{event_id}"), "EVENT")
}
/// Marker that an invoice was booked in a program.
pub fn processed_invoice(program_id: &str, invoice_id: &str) -> Key {
    Key::new(format!("INVOICEDONE#{program_id}#{invoice_id}"), "DONE")
}

// ---- commissions, ledger, balances -----------------------------------------------------

/// A commission of a partner: one per (program, invoice, tier).
pub fn commission(partner_id: &str, commission_id: &str) -> Key {
    Key::new(
        partner_pk(partner_id),
        format!("COMMISSION#{commission_id}"),
    )
}
pub const COMMISSION_PREFIX: &str = "COMMISSION#";
/// Deterministic commission id.
pub fn commission_id(program_id: &str, invoice_id: &str, tier: u8) -> String {
    format!("{program_id}:{invoice_id}:t{tier}")
}
/// GSI1 of a commission: a partner's commissions by business date.
pub fn partner_commissions_gsi(
    partner_id: &str,
    at_ms: i64,
    commission_id: &str,
) -> (String, String) {
    (
        partner_commissions_pk(partner_id),
        format!("{}#{commission_id}", ts(at_ms)),
    )
}
pub fn partner_commissions_pk(partner_id: &str) -> String {
    format!("PARTNER#{partner_id}#COMMISSIONS")
}
/// GSI2 of a pending commission: due for release at `available_at` (sparse: removed on release).
pub fn release_due_gsi(commission_id: &str, available_at_ms: i64) -> (String, String) {
    (
        release_due_pk(shard_of(commission_id)),
        format!("{}#{commission_id}", ts(available_at_ms)),
    )
}
pub fn release_due_pk(shard: u32) -> String {
    format!("RELEASE_DUE#{shard}")
}

/// The ledger of (partner, program, currency): append-only entries.
pub fn ledger_pk(partner_id: &str, program_id: &str, currency: Currency) -> String {
    format!("LEDGER#{partner_id}#{program_id}#{currency}")
}
pub fn ledger_entry(
    partner_id: &str,
    program_id: &str,
    currency: Currency,
    at_ms: i64,
    entry_id: &str,
) -> Key {
    Key::new(
        ledger_pk(partner_id, program_id, currency),
        format!("ENTRY#{}#{entry_id}", ts(at_ms)),
    )
}
pub const LEDGER_ENTRY_PREFIX: &str = "ENTRY#";
/// Balance of (partner, program, currency).
pub fn balance(partner_id: &str, program_id: &str, currency: Currency) -> Key {
    Key::new(
        partner_pk(partner_id),
        format!("BALANCE#{program_id}#{currency}"),
    )
}
pub const BALANCE_PREFIX: &str = "BALANCE#";
/// The balance's map of accrual lots (`rules::accrual`): day `YYYY-MM-DD` → minor units.
pub const LOTS: &str = "lots";
/// GSI2 of a balance with money available: payable candidates of a program (sparse, sharded).
pub fn payable_gsi(program_id: &str, partner_id: &str, currency: Currency) -> (String, String) {
    (
        payable_pk(program_id, shard_of(partner_id)),
        format!("{currency}#{partner_id}"),
    )
}
pub fn payable_pk(program_id: &str, shard: u32) -> String {
    format!("PAYABLE#{program_id}#{shard}")
}

// ---- money going back: refunds and disputes of a charge -------------------------------

/// A charge's refunds and disputes, and the invoices booked on it (the join of money going back
/// to commissions). `charge_key` is the charge id (`ch_…`), or the payment intent (`pi_…`) of a
/// payment without a charge.
pub fn charge(charge_key: &str) -> Key {
    Key::new(format!("CHARGE#{charge_key}"), "CHARGE")
}
/// GSI1 of a charge whose customer is known: a customer's charges with money going back.
pub fn customer_charges_gsi(customer_key: &str, at_ms: i64, charge_key: &str) -> (String, String) {
    (
        customer_charges_pk(customer_key),
        format!("{}#{charge_key}", ts(at_ms)),
    )
}
pub fn customer_charges_pk(customer_key: &str) -> String {
    format!("CUSTCHARGES#{customer_key}")
}
/// GSI2 of a charge with refunds or disputes but no booked sale yet (sparse: removed once a
/// sale is booked on it), by the month (`YYYY-MM`, business time) it was first seen.
pub fn parked_charge_gsi(month: &str, at_ms: i64, charge_key: &str) -> (String, String) {
    (
        parked_charges_pk(month),
        format!("{}#{charge_key}", ts(at_ms)),
    )
}
pub fn parked_charges_pk(month: &str) -> String {
    format!("CHARGES_PARKED#{month}")
}

// ---- payouts ---------------------------------------------------------------------------

/// A payout run of a program on a payout date.
pub fn payout_run_pk(program_id: &str, date: &str) -> String {
    format!("PAYOUTRUN#{program_id}#{date}")
}
pub fn payout_run(program_id: &str, date: &str) -> Key {
    Key::new(payout_run_pk(program_id, date), "RUN")
}
pub fn payout_item(program_id: &str, date: &str, partner_id: &str, currency: Currency) -> Key {
    Key::new(
        payout_run_pk(program_id, date),
        format!("ITEM#{partner_id}#{currency}"),
    )
}
pub const PAYOUT_ITEM_PREFIX: &str = "ITEM#";
/// The id of a payout item: the rail's idempotency key derives from it (never from a batch).
pub fn payout_item_id(
    program_id: &str,
    date: &str,
    partner_id: &str,
    currency: Currency,
) -> String {
    format!("{program_id}:{date}:{partner_id}:{currency}")
}
/// GSI1 of a payout run: a program's runs by date.
pub fn payout_runs_gsi(program_id: &str, date: &str) -> (String, String) {
    (payout_runs_pk(program_id), date.to_string())
}
pub fn payout_runs_pk(program_id: &str) -> String {
    format!("PAYOUTRUNS#{program_id}")
}
/// GSI1 of a payout item: a partner's payout items, newest date last.
pub fn partner_payouts_gsi(
    partner_id: &str,
    date: &str,
    program_id: &str,
    currency: Currency,
) -> (String, String) {
    (
        partner_payouts_pk(partner_id),
        format!("{date}#{program_id}#{currency}"),
    )
}
pub fn partner_payouts_pk(partner_id: &str) -> String {
    format!("PARTNERPAYOUTS#{partner_id}")
}
/// What one worker did with one chunk of a run's fan-out (generation `generation`).
pub fn payout_chunk(program_id: &str, date: &str, generation: u32, chunk: u32) -> Key {
    Key::new(
        payout_run_pk(program_id, date),
        format!("{}{chunk:05}", payout_chunk_prefix(generation)),
    )
}
pub fn payout_chunk_prefix(generation: u32) -> String {
    format!("CHUNK#{generation:04}#")
}

/// GSI2 of an approved payout item: waiting to be handed to its rail (sparse: removed when it
/// is submitted, held or cancelled). The poller hands over what an operator approved.
pub fn approved_item_gsi(item_id: &str, approved_ms: i64) -> (String, String) {
    (
        approved_items_pk(shard_of(item_id)),
        format!("{}#{item_id}", ts(approved_ms)),
    )
}
pub fn approved_items_pk(shard: u32) -> String {
    format!("PAYOUT_APPROVED#{shard}")
}
/// A hand-over of payout items to an automatic rail (a PayPal batch, a group of Stripe
/// transfers), written before the rail is called.
pub fn rail_batch(batch_id: &str) -> Key {
    Key::new(format!("RAILBATCH#{batch_id}"), "BATCH")
}
/// The members of a rail batch (written once, with the header).
pub fn rail_batch_members(batch_id: &str) -> Key {
    Key::new(format!("RAILBATCH#{batch_id}"), "MEMBERS")
}
/// GSI2 of an open rail batch: due for its next status read at `next_poll_ms` (sparse: removed
/// once the batch is closed).
pub fn rail_poll_gsi(batch_id: &str, next_poll_ms: i64) -> (String, String) {
    (
        rail_poll_pk(shard_of(batch_id)),
        format!("{}#{batch_id}", ts(next_poll_ms)),
    )
}
pub fn rail_poll_pk(shard: u32) -> String {
    format!("RAIL_POLL#{shard}")
}

// ---- outbox ----------------------------------------------------------------------------

/// An outbox message (the transactional outbox).
pub fn outbox(message_id: &str) -> Key {
    Key::new(format!("OUTBOX#{message_id}"), "OUTBOX")
}
/// GSI2 of an unsent outbox message (sparse: removed once sent), partitioned by the message's
/// kind, so the sweep reads only the kinds it has a queue for: a kind without a consumer may
/// pile up without costing the sweep a read.
pub fn outbox_unsent_gsi(kind: &str, message_id: &str, created_ms: i64) -> (String, String) {
    (
        outbox_unsent_pk(kind, shard_of(message_id)),
        format!("{}#{message_id}", ts(created_ms)),
    )
}
pub fn outbox_unsent_pk(kind: &str, shard: u32) -> String {
    format!("OUTBOX_UNSENT#{kind}#{shard}")
}

/// A needs-attention record: an external event (or body) that could not be processed and will
/// not be by a retry. `id` is `{source}:{event id}`.
pub fn attention(id: &str) -> Key {
    Key::new(format!("ATTENTION#{id}"), "ATTENTION")
}
/// Sparse index of the open needs-attention records, oldest first. Records are rare (a
/// misconfiguration or an unknown payload), so one partition is never hot.
pub fn attention_open_gsi(id: &str, first_seen_ms: i64) -> (String, String) {
    (
        ATTENTION_OPEN_PK.to_string(),
        format!("{}#{id}", ts(first_seen_ms)),
    )
}
pub const ATTENTION_OPEN_PK: &str = "ATTENTION_OPEN";
/// Every needs-attention record by the month it was first seen (`YYYY-MM`, technical time).
pub fn attention_month_gsi(month: &str, id: &str, first_seen_ms: i64) -> (String, String) {
    (
        attention_month_pk(month),
        format!("{}#{id}", ts(first_seen_ms)),
    )
}
pub fn attention_month_pk(month: &str) -> String {
    format!("ATTENTION_MONTH#{month}")
}

// ---- mail ------------------------------------------------------------------------------

/// The delivery record of one outbox message sent as e-mail (its claim, then what was sent).
pub fn mail_delivery(message_id: &str) -> Key {
    Key::new(format!("MAIL#{message_id}"), "DELIVERY")
}
/// GSI1 of a delivery: the mail log by UTC day of the claim (technical time), sharded so a
/// payout run's thousands of e-mails in a minute spread over [`DUE_SHARDS`] partitions.
pub fn mail_log_gsi(day: &str, message_id: &str, claimed_ms: i64) -> (String, String) {
    (
        mail_log_pk(day, shard_of(message_id)),
        format!("{}#{message_id}", ts(claimed_ms)),
    )
}
pub fn mail_log_pk(day: &str, shard: u32) -> String {
    format!("MAILLOG#{day}#{shard}")
}
/// A partner's e-mail standing: their opt-out of optional mail and what SES reported about
/// their address (kept apart from the partner item, which `partnerctl apply` rewrites).
pub fn mail_standing(partner_id: &str) -> Key {
    Key::new(partner_pk(partner_id), "MAIL_STANDING")
}
/// What SES reported about an address (a hard bounce, a complaint), whoever it belongs to
/// (partners, invited friends).
pub fn address_problem(normalized_email: &str) -> Key {
    Key::new(format!("MAIL_ADDRESS#{normalized_email}"), "PROBLEM")
}

// ---- Stripe Connect accounts -----------------------------------------------------------

/// A Stripe connected account (`acct_…`) as its `account.updated` events describe it: the
/// state of its `transfers` capability as of the newest event read (the payout worker reads it
/// before handing a partner's payout to Stripe).
pub fn connect_account(account_id: &str) -> Key {
    Key::new(format!("CONNECT_ACCOUNT#{account_id}"), "ACCOUNT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsent_outbox_messages_are_partitioned_by_kind_and_shard() {
        let (pk, sk) = outbox_unsent_gsi("commission_earned", "m1", 1_767_229_200_000);
        assert_eq!(
            pk,
            format!("OUTBOX_UNSENT#commission_earned#{}", shard_of("m1"))
        );
        assert_eq!(sk, "1767229200000#m1");
        assert_ne!(
            outbox_unsent_pk("commission_earned", 3),
            outbox_unsent_pk("crm_sync_partner", 3)
        );
    }

    #[test]
    fn timestamps_sort_lexically() {
        assert!(ts(999) < ts(1000));
        assert_eq!(ts(1_700_000_000_000).len(), 13);
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        assert_eq!(shard_of("abc"), shard_of("abc"));
        assert!((0..1000).all(|i| shard_of(&i.to_string()) < DUE_SHARDS));
        let used: std::collections::HashSet<_> =
            (0..1000).map(|i| shard_of(&i.to_string())).collect();
        assert_eq!(used.len() as u32, DUE_SHARDS);
    }

    #[test]
    fn level_sales_sort_by_business_time_within_a_program() {
        let a = level_sale("alice", "demo", 1_000, "in_b");
        let b = level_sale("alice", "demo", 2_000, "in_a");
        assert!(a.sk < b.sk);
        assert!(a.sk.starts_with(&level_sales_prefix("demo")));
        let (from, to) = level_sales_from("demo", 2_000);
        assert!(a.sk < from && from <= b.sk && b.sk < to);
        assert!(!level_sale("alice", "demo2", 0, "in_a")
            .sk
            .starts_with(&level_sales_prefix("demo")));
    }

    #[test]
    fn ids_with_separator_are_unsafe() {
        assert!(safe_id("cus_123"));
        assert!(!safe_id("a#b"));
        assert!(!safe_id(""));
        assert!(!safe_id("a\nb"));
    }
}
