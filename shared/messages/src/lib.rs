//! Messages that functions send each other over SQS (through the transactional outbox).
//!
//! Every message has an id derived from the business fact that caused it (e.g.
//! `commission-earned:demo:in_123:t1`), so a retried write produces the same id and consumers
//! de-duplicate on it.
//!
//! Each message [`Kind`] has one [`Consumer`], and each consumer its own queue, configured by an
//! environment variable ([`Consumer::queue_url_env`]). [`Kind::ALL`] and [`Consumer::ALL`] list
//! every kind and consumer, so the outbox sender's routes and `partnerctl outbox` miss none.

use serde::{Deserialize, Serialize};

/// Envelope: what travels as the SQS message body (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Deterministic id of the fact (see crate docs).
    pub id: String,
    /// Business time of the fact, epoch milliseconds.
    pub at_ms: i64,
    #[serde(flatten)]
    pub message: Message,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// A partner earned a commission (email "you earned ...", when the program's notify setting is on).
    CommissionEarned {
        partner_id: String,
        program_id: String,
        commission_id: String,
        tier: u8,
        amount_minor: i64,
        currency: String,
        available_at_ms: i64,
        /// The sale's product (what the program shares with partners by default: amount,
        /// product and date).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        product_id: Option<String>,
    },
    /// Refunds or disputes of the sale's charge took back part of a commission (or gave back
    /// what they had taken: `amount_minor` negative).
    CommissionReversed {
        partner_id: String,
        program_id: String,
        commission_id: String,
        /// The sale the commission belongs to.
        invoice_id: String,
        tier: u8,
        /// Taken back by this change (negative: given back), minor units.
        amount_minor: i64,
        /// The commission net of everything taken back, after this change.
        net_minor: i64,
        currency: String,
        reason: String,
    },
    /// A partner invited a friend by email: send the invitation.
    PartnerInvite {
        partner_id: String,
        program_id: String,
        email: String,
    },
    /// A partner's contact should be upserted in the merchant's CRM.
    CrmSyncPartner { partner_id: String },
    /// A payout run found a balance that waits, for reasons the partner was not told of yet
    /// (told once per set of reasons, again only when they change).
    PayoutWaiting {
        partner_id: String,
        program_id: String,
        currency: String,
        /// Available minor units.
        available_minor: i64,
        /// The reasons (`below_minimum`, `no_payout_method`, …: `rules::PayoutBlocker`).
        reasons: Vec<String>,
        /// Still needed to reach the payout minimum, when under it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        needed_minor: Option<i64>,
        /// The payout date of the run.
        run_date: String,
    },
    /// Money under the minimum will be forfeited on `forfeit_on` unless the balance reaches
    /// the minimum first (sent from 30 days before).
    ForfeitWarning {
        partner_id: String,
        program_id: String,
        currency: String,
        amount_minor: i64,
        /// The date (`YYYY-MM-DD`) of the first payout run that would forfeit it.
        forfeit_on: String,
        /// Still needed to reach the payout minimum.
        needed_minor: i64,
    },
    /// Money was forfeited under the program's accrual policy.
    Forfeited {
        partner_id: String,
        program_id: String,
        currency: String,
        amount_minor: i64,
        reason: String,
        run_date: String,
    },
    /// A payout item left: the rail (or the operator, for the manual rail) reported it paid.
    PayoutSent {
        partner_id: String,
        program_id: String,
        /// The payout item's id.
        item_id: String,
        currency: String,
        amount_minor: i64,
        /// How it was paid (`paypal`, `stripe_connect`).
        rail: String,
        /// The partner's reference for it (shown on their statement).
        reference: String,
        run_date: String,
    },
    /// A payout item did not reach the partner (`returned`: it was sent and came back); the
    /// money is available again.
    PayoutFailed {
        partner_id: String,
        program_id: String,
        item_id: String,
        currency: String,
        amount_minor: i64,
        rail: String,
        reason: String,
        returned: bool,
        run_date: String,
    },
    /// A partner reached a higher level of the program.
    LevelPromoted {
        partner_id: String,
        program_id: String,
        /// The level reached (1 = the first level above the base plan).
        level: u32,
        level_name: String,
        /// Its percentage rate (`"25"` = 25 %).
        rate_percent: String,
    },
}

impl Message {
    /// The kind's name, as stored in the outbox (`commission_earned`, ...).
    pub fn kind(&self) -> &'static str {
        self.message_kind().as_str()
    }

    pub fn message_kind(&self) -> Kind {
        match self {
            Message::CommissionEarned { .. } => Kind::CommissionEarned,
            Message::CommissionReversed { .. } => Kind::CommissionReversed,
            Message::PartnerInvite { .. } => Kind::PartnerInvite,
            Message::CrmSyncPartner { .. } => Kind::CrmSyncPartner,
            Message::PayoutWaiting { .. } => Kind::PayoutWaiting,
            Message::ForfeitWarning { .. } => Kind::ForfeitWarning,
            Message::Forfeited { .. } => Kind::Forfeited,
            Message::PayoutSent { .. } => Kind::PayoutSent,
            Message::PayoutFailed { .. } => Kind::PayoutFailed,
            Message::LevelPromoted { .. } => Kind::LevelPromoted,
        }
    }
}

/// A message kind: the `type` tag of [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    CommissionEarned,
    CommissionReversed,
    PartnerInvite,
    CrmSyncPartner,
    PayoutWaiting,
    ForfeitWarning,
    Forfeited,
    PayoutSent,
    PayoutFailed,
    LevelPromoted,
}

impl Kind {
    /// Every kind (a test checks that none is missing).
    pub const ALL: [Kind; 10] = [
        Kind::CommissionEarned,
        Kind::CommissionReversed,
        Kind::PartnerInvite,
        Kind::CrmSyncPartner,
        Kind::PayoutWaiting,
        Kind::ForfeitWarning,
        Kind::Forfeited,
        Kind::PayoutSent,
        Kind::PayoutFailed,
        Kind::LevelPromoted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::CommissionEarned => "commission_earned",
            Kind::CommissionReversed => "commission_reversed",
            Kind::PartnerInvite => "partner_invite",
            Kind::CrmSyncPartner => "crm_sync_partner",
            Kind::PayoutWaiting => "payout_waiting",
            Kind::ForfeitWarning => "forfeit_warning",
            Kind::Forfeited => "forfeited",
            Kind::PayoutSent => "payout_sent",
            Kind::PayoutFailed => "payout_failed",
            Kind::LevelPromoted => "level_promoted",
        }
    }

    /// The kind named `s` (as [`Kind::as_str`] writes it).
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Who handles messages of this kind.
    pub fn consumer(self) -> Consumer {
        match self {
            Kind::CommissionEarned
            | Kind::CommissionReversed
            | Kind::PartnerInvite
            | Kind::PayoutWaiting
            | Kind::ForfeitWarning
            | Kind::Forfeited
            | Kind::PayoutSent
            | Kind::PayoutFailed
            | Kind::LevelPromoted => Consumer::Email,
            Kind::CrmSyncPartner => Consumer::CrmSync,
        }
    }
}

impl Kind {
    /// Money mail: what a partner must learn about their money (a payout sent, failed or
    /// returned, a forfeit coming or done). Delivered at least once, and never withheld by an
    /// opt-out or a bounce mark.
    pub fn is_money_mail(self) -> bool {
        matches!(
            self,
            Kind::PayoutSent | Kind::PayoutFailed | Kind::ForfeitWarning | Kind::Forfeited
        )
    }

    /// Mail a partner may opt out of, and that stops once their address bounced or complained
    /// (commission earned, level promotions).
    pub fn is_optional_mail(self) -> bool {
        matches!(self, Kind::CommissionEarned | Kind::LevelPromoted)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The function that will read a kind's messages from its own queue (and that queue's own
/// dead-letter queue). Merchant webhooks and payout work join when their messages exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consumer {
    /// E-mails to partners (commission earned, invitations, why a payout waits, forfeitures).
    Email,
    /// Contact upserts in the merchant's CRM.
    CrmSync,
}

impl Consumer {
    /// Every consumer.
    pub const ALL: [Consumer; 2] = [Consumer::Email, Consumer::CrmSync];

    pub fn as_str(self) -> &'static str {
        match self {
            Consumer::Email => "email",
            Consumer::CrmSync => "crm_sync",
        }
    }

    /// The environment variable that carries this consumer's queue URL to the senders. Unset:
    /// the consumer does not exist (yet), and its kinds stay unsent in the outbox.
    pub fn queue_url_env(self) -> &'static str {
        match self {
            Consumer::Email => "EMAIL_QUEUE_URL",
            Consumer::CrmSync => "CRM_SYNC_QUEUE_URL",
        }
    }

    /// The kinds this consumer handles.
    pub fn kinds(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |k| k.consumer() == self)
    }
}

impl Envelope {
    pub fn to_json(&self) -> String {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_with_a_type_tag() {
        let e = Envelope {
            id: "commission-earned:demo:in_1:t1".into(),
            at_ms: 1,
            message: Message::CommissionEarned {
                partner_id: "alice".into(),
                program_id: "demo".into(),
                commission_id: "demo:in_1:t1".into(),
                tier: 1,
                amount_minor: 2475,
                currency: "USD".into(),
                available_at_ms: 2,
                product_id: Some("prod_1".into()),
            },
        };
        let j = e.to_json();
        assert!(j.contains("\"type\":\"commission_earned\""), "{j}");
        assert_eq!(Envelope::from_json(&j).unwrap(), e);
    }

    /// One message of each kind. The match has no wildcard: a new kind fails to compile here
    /// until it has a sample, and the test below then checks it is in `Kind::ALL`.
    fn sample(k: Kind) -> Message {
        match k {
            Kind::CommissionEarned => Message::CommissionEarned {
                partner_id: "alice".into(),
                program_id: "demo".into(),
                commission_id: "demo:in_1:t1".into(),
                tier: 1,
                amount_minor: 1,
                currency: "USD".into(),
                available_at_ms: 2,
                product_id: None,
            },
            Kind::CommissionReversed => Message::CommissionReversed {
                partner_id: "alice".into(),
                program_id: "demo".into(),
                commission_id: "demo:in_1:t1".into(),
                invoice_id: "in_1".into(),
                tier: 1,
                amount_minor: 1238,
                net_minor: 1237,
                currency: "USD".into(),
                reason: "money back on charge ch_1".into(),
            },
            Kind::PartnerInvite => Message::PartnerInvite {
                partner_id: "alice".into(),
                program_id: "demo".into(),
                email: "a@example.com".into(),
            },
            Kind::CrmSyncPartner => Message::CrmSyncPartner {
                partner_id: "alice".into(),
            },
            Kind::PayoutWaiting => Message::PayoutWaiting {
                partner_id: "alice".into(),
                program_id: "demo".into(),
                currency: "USD".into(),
                available_minor: 8_000,
                reasons: vec!["below_minimum".into()],
                needed_minor: Some(2_000),
                run_date: "2026-04-10".into(),
            },
            Kind::ForfeitWarning => Message::ForfeitWarning {
                partner_id: "alice".into(),
                program_id: "demo".into(),
                currency: "USD".into(),
                amount_minor: 5_000,
                forfeit_on: "2026-07-10".into(),
                needed_minor: 2_000,
            },
            Kind::Forfeited => Message::Forfeited {
                partner_id: "alice".into(),
                program_id: "demo".into(),
                currency: "USD".into(),
                amount_minor: 5_000,
                reason: "unpaid under the minimum for 6 months".into(),
                run_date: "2026-07-10".into(),
            },
            Kind::PayoutSent => Message::PayoutSent {
                partner_id: "alice".into(),
                program_id: "demo".into(),
                item_id: "demo:2026-12-04:alice:USD".into(),
                currency: "USD".into(),
                amount_minor: 12_475,
                rail: "paypal".into(),
                reference: "PO-1".into(),
                run_date: "2026-12-04".into(),
            },
            Kind::PayoutFailed => Message::PayoutFailed {
                partner_id: "alice".into(),
                program_id: "demo".into(),
                item_id: "demo:2026-12-04:alice:USD".into(),
                currency: "USD".into(),
                amount_minor: 12_475,
                rail: "paypal".into(),
                reason: "receiver unregistered".into(),
                returned: false,
                run_date: "2026-12-04".into(),
            },
            Kind::LevelPromoted => Message::LevelPromoted {
                partner_id: "alice".into(),
                program_id: "demo".into(),
                level: 1,
                level_name: "Silver".into(),
                rate_percent: "25".into(),
            },
        }
    }

    /// Position of a kind in `Kind::ALL`, by an exhaustive match (a new variant must be added).
    fn position(k: Kind) -> usize {
        match k {
            Kind::CommissionEarned => 0,
            Kind::CommissionReversed => 1,
            Kind::PartnerInvite => 2,
            Kind::CrmSyncPartner => 3,
            Kind::PayoutWaiting => 4,
            Kind::ForfeitWarning => 5,
            Kind::Forfeited => 6,
            Kind::PayoutSent => 7,
            Kind::PayoutFailed => 8,
            Kind::LevelPromoted => 9,
        }
    }

    #[test]
    fn all_kinds_lists_every_kind_once_with_its_type_tag() {
        let mut seen = std::collections::BTreeSet::new();
        for (i, k) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(position(k), i, "{k} out of place in Kind::ALL");
            assert!(seen.insert(k.as_str()), "{k} twice");
            let m = sample(k);
            assert_eq!(m.message_kind(), k);
            assert_eq!(m.kind(), k.as_str());
            assert_eq!(Kind::parse(k.as_str()), Some(k));
            // The stored kind is the message's `type` tag.
            let j = serde_json::to_value(&m).unwrap();
            assert_eq!(j["type"], k.as_str());
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str());
        }
        assert_eq!(Kind::parse("nope"), None);
    }

    #[test]
    fn money_mail_is_never_optional() {
        for k in Kind::ALL {
            assert!(!(k.is_money_mail() && k.is_optional_mail()), "{k}");
        }
        assert!(Kind::PayoutSent.is_money_mail());
        assert!(Kind::CommissionEarned.is_optional_mail());
        assert!(!Kind::CommissionReversed.is_optional_mail());
    }

    #[test]
    fn every_kind_has_a_listed_consumer_with_its_own_variable() {
        // Exhaustive, as `position`: a new consumer must be placed in `Consumer::ALL`.
        for (i, c) in Consumer::ALL.into_iter().enumerate() {
            let at = match c {
                Consumer::Email => 0,
                Consumer::CrmSync => 1,
            };
            assert_eq!(at, i, "{c:?} out of place in Consumer::ALL");
        }
        for k in Kind::ALL {
            assert!(Consumer::ALL.contains(&k.consumer()), "{k}");
            assert!(k.consumer().kinds().any(|x| x == k));
        }
        let vars: std::collections::BTreeSet<_> =
            Consumer::ALL.iter().map(|c| c.queue_url_env()).collect();
        assert_eq!(vars.len(), Consumer::ALL.len());
        assert_eq!(Consumer::Email.queue_url_env(), "EMAIL_QUEUE_URL");
        assert_eq!(Consumer::CrmSync.queue_url_env(), "CRM_SYNC_QUEUE_URL");
        // Every consumer has at least one kind.
        assert!(Consumer::ALL.iter().all(|c| c.kinds().count() > 0));
    }
}
