//! E-mail: one delivery record per outbox message sent as mail, and what is known about the
//! addresses mail goes to.
//!
//! **Deliveries** (`MAIL#{message id}`): the notifier claims a message before it calls SES, with
//! one conditional `PutItem`, then records what SES answered.
//!
//! * Money mail (payout sent, failed or returned, forfeit warning, forfeited) is claimed with a
//!   lease ([`Lease::Until`]): a claim whose lease ran out without a recorded send is claimed
//!   again and the mail is sent again. At least once: a process that died after SES accepted
//!   the mail and before [`mark_sent`] causes a second copy.
//! * Other mail is claimed for good ([`Lease::Never`]): a claim is never taken again, so a
//!   process that died between the claim and the send loses that mail. At most once. The claim
//!   stays `claimed` without a send, which `partnerctl mail --unconfirmed` lists.
//! * A send SES refused (nothing was sent) is recorded `failed` and may be claimed again by a
//!   redelivery, whatever the kind.
//!
//! Every record is in the mail log (GSI1, by UTC day of the claim, [`keys::mail_log_gsi`]), with
//! its recipient, subject and text body, so an operator (and `make dev`'s user) reads what went
//! out without asking SES.
//!
//! **Standings** (`PARTNER#{id}` / `MAIL_STANDING`): a partner's opt-out of optional mail and the
//! last problem SES reported with their address. **Address problems** (`MAIL_ADDRESS#{email}`):
//! the same problem by address, for recipients who are not partners (invited friends).

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};

use crate::error::StoreError;
use crate::keys::{self, Key};
use crate::partners::{self, Partner};
use crate::table::{to_item, ItemExt, Query, Table};
use crate::tx::UpdateSpec;

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Claimed before the send; no send recorded yet.
    Claimed,
    /// SES accepted it.
    Sent,
    /// Not sent, on purpose (opted out, a bounced address, no address): `note` says why.
    Skipped,
    /// SES refused it (nothing was sent): `note` has SES's answer. A redelivery may claim it.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Claimed => "claimed",
            DeliveryState::Sent => "sent",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Failed => "failed",
        }
    }
}

/// A delivery record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailDelivery {
    pub message_id: String,
    /// The message kind (`payout_sent`, …).
    pub kind: String,
    pub state: DeliveryState,
    /// Claimed with a lease (money mail) or for good.
    pub money: bool,
    #[serde(default)]
    pub partner_id: Option<String>,
    #[serde(default)]
    pub program_id: Option<String>,
    /// The To address (empty when there was none to send to).
    pub recipient: String,
    pub subject: String,
    /// The plain-text body as rendered.
    pub text: String,
    /// Technical time of the (latest) claim.
    pub claimed_ms: i64,
    /// Money mail: the claim is someone's until then (technical time).
    #[serde(default)]
    pub lease_until_ms: Option<i64>,
    /// How many times it was claimed (more than one: a lease ran out, or a refused send was
    /// tried again).
    #[serde(default)]
    pub claims: u32,
    #[serde(default)]
    pub sent_ms: Option<i64>,
    /// SES's `MessageId`, the handle of bounce and complaint events.
    #[serde(default)]
    pub ses_message_id: Option<String>,
    /// Why it was skipped, or what SES answered when it refused.
    #[serde(default)]
    pub note: Option<String>,
}

/// How long a claim holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    /// Until this technical time; then anyone may claim it again (money mail).
    Until(i64),
    /// For good (at-most-once mail).
    Never,
}

/// What [`claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The caller holds the claim: send, then [`mark_sent`] or [`mark_refused`].
    Yours,
    /// Already sent or skipped: nothing to do (a duplicate delivery).
    Done(MailDelivery),
    /// Someone else holds a live lease: try again after it (`until_ms`).
    Leased { until_ms: i64 },
    /// At-most-once mail claimed earlier and never confirmed sent: never sent again.
    ClaimedForGood(MailDelivery),
}

/// Claim `d` (its state is set to `Claimed`; its key is its message id) before sending: one
/// conditional `UpdateItem` (creating the record, or taking it over and counting the claim)
/// that succeeds when no record exists, when the record is `failed`, or, for
/// [`Lease::Until`], when it is `claimed` with a lease that ended before now. Otherwise the
/// record is read (one `GetItem`) and reported.
pub async fn claim(table: &Table, d: &MailDelivery, lease: Lease) -> Result<Claimed, StoreError> {
    let now = table.clock.now_ms();
    let rec = MailDelivery {
        state: DeliveryState::Claimed,
        claimed_ms: now,
        lease_until_ms: match lease {
            Lease::Until(t) => Some(t),
            Lease::Never => None,
        },
        claims: 0,
        sent_ms: None,
        ses_message_id: None,
        note: None,
        ..d.clone()
    };
    let key = keys::mail_delivery(&d.message_id);
    let item = to_item(&rec, &key)?.with_gsi1(keys::mail_log_gsi(&day_of(now), &d.message_id, now));
    let mut spec = UpdateSpec::new();
    let mut attrs: Vec<_> = item.into_iter().collect();
    attrs.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, value) in attrs {
        if name == keys::PK || name == keys::SK || name == "claims" {
            continue;
        }
        spec = match value {
            AttributeValue::Null(_) => spec.remove(&name),
            v => spec.set(&name, v),
        };
    }
    let mut cond = "attribute_not_exists(PK) OR #st = :failed".to_string();
    let mut values = vec![(":failed", s(DeliveryState::Failed.as_str()))];
    if let Lease::Until(_) = lease {
        cond.push_str(" OR (#st = :claimed AND lease_until_ms < :now)");
        values.push((":claimed", s(DeliveryState::Claimed.as_str())));
        values.push((":now", AttributeValue::N(now.to_string())));
    }
    let spec = spec
        .add_n("claims", 1)
        .condition(&cond, &[("#st", "state")], values);
    match crate::tx::update_item(table, &key, spec, "mail claim").await {
        Ok(()) => return Ok(Claimed::Yours),
        Err(StoreError::ConditionFailed { .. }) => {}
        Err(e) => return Err(e),
    }
    let Some(found) = get(table, &d.message_id).await? else {
        // Deleted between the two requests (only an operator does that): not ours to send.
        return Ok(Claimed::Leased { until_ms: now });
    };
    Ok(match found.state {
        DeliveryState::Sent | DeliveryState::Skipped => Claimed::Done(found),
        DeliveryState::Claimed => match found.lease_until_ms {
            Some(until_ms) => Claimed::Leased { until_ms },
            None => Claimed::ClaimedForGood(found),
        },
        // Refused between our write and our read, by another delivery: the queue brings it back.
        DeliveryState::Failed => Claimed::Leased { until_ms: now },
    })
}

/// SES accepted the mail: record its message id (one `UpdateItem`).
pub async fn mark_sent(
    table: &Table,
    message_id: &str,
    ses_message_id: &str,
) -> Result<(), StoreError> {
    let now = table.clock.now_ms();
    let spec = UpdateSpec::new()
        .set_s("state", DeliveryState::Sent.as_str())
        .set_s("ses_message_id", ses_message_id)
        .set_n("sent_ms", now)
        .remove("lease_until_ms")
        .condition("attribute_exists(PK)", &[], vec![]);
    crate::tx::update_item(table, &keys::mail_delivery(message_id), spec, "mail sent").await
}

/// SES refused the mail (nothing was sent): record its answer; a redelivery may claim it again.
pub async fn mark_refused(table: &Table, message_id: &str, answer: &str) -> Result<(), StoreError> {
    let spec = UpdateSpec::new()
        .set_s("state", DeliveryState::Failed.as_str())
        .set_s("note", answer)
        .remove("lease_until_ms")
        .condition(
            "#st = :claimed",
            &[("#st", "state")],
            vec![(":claimed", s(DeliveryState::Claimed.as_str()))],
        );
    match crate::tx::update_item(
        table,
        &keys::mail_delivery(message_id),
        spec,
        "mail refused",
    )
    .await
    {
        Ok(()) | Err(StoreError::ConditionFailed { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Record a message that is not sent on purpose (`d.note` says why): one conditional
/// `PutItem`, a no-op when the message already has a record.
pub async fn record_skipped(table: &Table, d: &MailDelivery) -> Result<(), StoreError> {
    let now = table.clock.now_ms();
    let rec = MailDelivery {
        state: DeliveryState::Skipped,
        claimed_ms: now,
        lease_until_ms: None,
        ..d.clone()
    };
    let item = to_item(&rec, &keys::mail_delivery(&d.message_id))?.with_gsi1(keys::mail_log_gsi(
        &day_of(now),
        &d.message_id,
        now,
    ));
    match table.put_if_absent(item).await {
        Ok(()) | Err(StoreError::AlreadyDone) => Ok(()),
        Err(e) => Err(e),
    }
}

pub async fn get(table: &Table, message_id: &str) -> Result<Option<MailDelivery>, StoreError> {
    table.get_as(&keys::mail_delivery(message_id)).await
}

/// The mail log of one UTC day (`YYYY-MM-DD`), oldest first: one query per shard.
pub async fn log_of_day(table: &Table, day: &str) -> Result<Vec<MailDelivery>, StoreError> {
    let mut out = vec![];
    for shard in 0..keys::DUE_SHARDS {
        out.extend(
            table
                .query_as::<MailDelivery>(Query::gsi1(keys::mail_log_pk(day, shard)))
                .await?,
        );
    }
    out.sort_by(|a, b| (a.claimed_ms, &a.message_id).cmp(&(b.claimed_ms, &b.message_id)));
    Ok(out)
}

/// UTC day of a technical time.
pub fn day_of(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "1970-01-01".into())
}

/// The form addresses are compared in here: trimmed and lower-case.
pub fn mailbox(address: &str) -> String {
    address.trim().to_lowercase()
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

// ---- addresses and standings ------------------------------------------------------------

/// What SES reported about an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// A permanent (hard) bounce: the address does not exist or refuses mail for good.
    HardBounce,
    /// The recipient marked a mail as spam.
    Complaint,
}

impl ProblemKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::HardBounce => "hard_bounce",
            ProblemKind::Complaint => "complaint",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressProblem {
    /// The mailbox ([`mailbox`]: trimmed, lower-case; sub-address tags are kept, since a
    /// bounce is about that exact mailbox).
    pub address: String,
    pub kind: ProblemKind,
    /// SES's words (bounce subtype and diagnostic, or the complaint's feedback type).
    pub detail: String,
    /// When it happened (the event's own timestamp).
    pub at_ms: i64,
    /// SES's feedback id (or message id) of the event.
    pub event_id: String,
}

/// A partner's e-mail standing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailStanding {
    pub partner_id: String,
    /// The partner opted out of optional mail (commission earned, promotions).
    #[serde(default)]
    pub opt_out: bool,
    #[serde(default)]
    pub opt_out_changed_ms: Option<i64>,
    /// The last problem SES reported with an address of the partner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<AddressProblem>,
}

impl MailStanding {
    /// The problem of `address` (the partner's address now): a problem of an address they no
    /// longer use does not count.
    pub fn problem_of(&self, address: &str) -> Option<&AddressProblem> {
        let a = mailbox(address);
        self.problem.as_ref().filter(|p| p.address == a)
    }
}

/// A partner and their mail standing, in one `BatchGetItem`.
pub async fn partner_with_standing(
    table: &Table,
    partner_id: &str,
) -> Result<(Option<Partner>, MailStanding), StoreError> {
    let pk = keys::partner(partner_id);
    let sk = keys::mail_standing(partner_id);
    let mut found = table.batch_get(&[pk.clone(), sk.clone()]).await?;
    let partner = match found.remove(&pk) {
        Some(i) => Some(serde_dynamo::from_item(i)?),
        None => None,
    };
    let standing = match found.remove(&sk) {
        Some(i) => serde_dynamo::from_item(i)?,
        None => MailStanding {
            partner_id: partner_id.to_string(),
            ..MailStanding::default()
        },
    };
    Ok((partner, standing))
}

pub async fn standing(table: &Table, partner_id: &str) -> Result<MailStanding, StoreError> {
    Ok(table
        .get_as(&keys::mail_standing(partner_id))
        .await?
        .unwrap_or(MailStanding {
            partner_id: partner_id.to_string(),
            ..MailStanding::default()
        }))
}

/// Opt a partner out of optional mail, or back in (one `UpdateItem`, creating the standing).
pub async fn set_opt_out(table: &Table, partner_id: &str, opt_out: bool) -> Result<(), StoreError> {
    let spec = UpdateSpec::new()
        .set_s("partner_id", partner_id)
        .set("opt_out", AttributeValue::Bool(opt_out))
        .set_n("opt_out_changed_ms", table.clock.now_ms());
    crate::tx::update_item(
        table,
        &keys::mail_standing(partner_id),
        spec,
        "mail opt-out",
    )
    .await
}

/// Record what SES reported about an address: on the address, and on the standing of every
/// partner whose address it is (found by the partner e-mail index, no Scan). Repeating it
/// writes the same again. Returns the partners marked.
pub async fn record_problem(
    table: &Table,
    problem: &AddressProblem,
) -> Result<Vec<String>, StoreError> {
    let item = to_item(problem, &keys::address_problem(&problem.address))?;
    table.put(item).await?;
    let mut marked = vec![];
    let Ok(normalized) = rules::normalize_email(&problem.address) else {
        return Ok(marked);
    };
    if let Some(p) = partners::partner_by_email(table, normalized.as_str()).await? {
        let av = serde_dynamo::to_attribute_value(problem)?;
        let spec = UpdateSpec::new()
            .set_s("partner_id", &p.partner_id)
            .set("problem", av);
        crate::tx::update_item(
            table,
            &keys::mail_standing(&p.partner_id),
            spec,
            "mail problem",
        )
        .await?;
        marked.push(p.partner_id);
    }
    Ok(marked)
}

/// The problem SES reported about an address, if any (one `GetItem`).
pub async fn address_problem(
    table: &Table,
    address: &str,
) -> Result<Option<AddressProblem>, StoreError> {
    table
        .get_as(&keys::address_problem(&mailbox(address)))
        .await
}

/// An operator cleared a partner's address problem (the mailbox works again): removes it from
/// the standing and the address.
pub async fn clear_problem(table: &Table, partner_id: &str) -> Result<(), StoreError> {
    let st = standing(table, partner_id).await?;
    if let Some(p) = &st.problem {
        let k: Key = keys::address_problem(&p.address);
        let mut tx = crate::Tx::new();
        tx.delete(&k, "address problem")?;
        tx.update(
            &keys::mail_standing(partner_id),
            UpdateSpec::new().remove("problem"),
            "mail standing",
        )?;
        tx.commit(table).await?;
    }
    Ok(())
}
