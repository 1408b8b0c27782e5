//! Messages that functions send each other over SQS (the outbox queue).
//!
//! Every message has an id derived from the business fact that caused it (e.g.
//! `commission-earned:demo:in_123:t1`), so a retried write produces the same id and consumers
//! de-duplicate on it.

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
    },
    /// A partner invited a friend by email: send the invitation.
    PartnerInvite {
        partner_id: String,
        program_id: String,
        email: String,
    },
    /// A partner's contact should be upserted in the merchant's CRM.
    CrmSyncPartner { partner_id: String },
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::CommissionEarned { .. } => "commission_earned",
            Message::PartnerInvite { .. } => "partner_invite",
            Message::CrmSyncPartner { .. } => "crm_sync_partner",
        }
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
            },
        };
        let j = e.to_json();
        assert!(j.contains("\"type\":\"commission_earned\""), "{j}");
        assert_eq!(Envelope::from_json(&j).unwrap(), e);
    }
}
