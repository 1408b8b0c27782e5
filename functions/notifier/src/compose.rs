//! From an outbox message to an e-mail: who it goes to, and every value its templates show,
//! formatted in the program's locale.
//!
//! What a partner learns about the referred customer: the amount, the product and the date of
//! the sale, nothing else (no customer name, e-mail, invoice or charge id). A program's sharing
//! settings, when they exist, widen this here and nowhere else.

use chrono::{DateTime, NaiveDate, Utc};
use messages::{Envelope, Kind, Message};
use rules::display::{self, Locale};
use rules::{Currency, Money, Program};
use serde::Serialize;
use serde_json::{json, Value};
use storage::partners::Partner;

use crate::render::{RenderError, Rendered, Templates};

/// Who the program's mail comes from and how it is signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Brand {
    pub program_name: String,
    pub sender_name: String,
    /// The From address: the program's, else the stack's (`MAIL_FROM`).
    #[serde(skip)]
    pub sender_address: Option<String>,
    #[serde(skip)]
    pub reply_to: Option<String>,
    pub footer: Option<String>,
    pub support_contact: Option<String>,
    #[serde(skip)]
    pub locale: Locale,
    /// The HTML `lang` (the locale's language).
    pub lang: String,
}

impl Brand {
    pub fn of(program: &Program, default_sender: Option<&str>) -> Brand {
        let e = &program.email;
        Brand {
            program_name: program.name.clone(),
            sender_name: e
                .sender_name
                .clone()
                .unwrap_or_else(|| format!("{} partners", program.name)),
            sender_address: e
                .sender_address
                .clone()
                .or_else(|| default_sender.map(str::to_string)),
            reply_to: e.reply_to.clone(),
            footer: e.footer.clone(),
            support_contact: e.support_contact.clone(),
            locale: e.locale,
            lang: e.locale.tag().split('-').next().unwrap_or("en").to_string(),
        }
    }
}

/// An e-mail ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub kind: Kind,
    pub to: String,
    pub rendered: Rendered,
}

#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error(transparent)]
    Render(#[from] RenderError),
    /// A message whose values cannot be shown (an unknown currency, a malformed date).
    #[error("message {id}: {reason}")]
    Malformed { id: String, reason: String },
}

/// The partner a message is about (every e-mail kind names one).
pub fn partner_of(m: &Message) -> Option<&str> {
    match m {
        Message::CommissionEarned { partner_id, .. }
        | Message::CommissionReversed { partner_id, .. }
        | Message::PartnerInvite { partner_id, .. }
        | Message::PayoutWaiting { partner_id, .. }
        | Message::ForfeitWarning { partner_id, .. }
        | Message::Forfeited { partner_id, .. }
        | Message::PayoutSent { partner_id, .. }
        | Message::PayoutFailed { partner_id, .. }
        | Message::LevelPromoted { partner_id, .. } => Some(partner_id),
        Message::CrmSyncPartner { .. } => None,
    }
}

/// The program a message is about.
pub fn program_of(m: &Message) -> Option<&str> {
    match m {
        Message::CommissionEarned { program_id, .. }
        | Message::CommissionReversed { program_id, .. }
        | Message::PartnerInvite { program_id, .. }
        | Message::PayoutWaiting { program_id, .. }
        | Message::ForfeitWarning { program_id, .. }
        | Message::Forfeited { program_id, .. }
        | Message::PayoutSent { program_id, .. }
        | Message::PayoutFailed { program_id, .. }
        | Message::LevelPromoted { program_id, .. } => Some(program_id),
        Message::CrmSyncPartner { .. } => None,
    }
}

/// The address a message goes to: the invited friend's for an invitation, else the partner's.
pub fn recipient_of<'a>(m: &'a Message, partner: &'a Partner) -> &'a str {
    match m {
        Message::PartnerInvite { email, .. } => email,
        _ => &partner.email,
    }
}

struct Fmt<'a> {
    env: &'a Envelope,
    program: &'a Program,
    locale: Locale,
}

impl Fmt<'_> {
    fn bad(&self, reason: String) -> ComposeError {
        ComposeError::Malformed {
            id: self.env.id.clone(),
            reason,
        }
    }
    fn money(&self, minor: i64, currency: &str) -> Result<String, ComposeError> {
        let c = Currency::new(currency).map_err(|e| self.bad(e.to_string()))?;
        Ok(display::amount(Money { minor, currency: c }, self.locale))
    }
    /// A business instant as the program's local calendar date.
    fn day(&self, ms: i64) -> Result<String, ComposeError> {
        let t = DateTime::<Utc>::from_timestamp_millis(ms)
            .ok_or_else(|| self.bad(format!("time {ms} out of range")))?;
        Ok(display::date(
            t.with_timezone(&self.program.time_zone).date_naive(),
            self.locale,
        ))
    }
    /// A `YYYY-MM-DD` date.
    fn date(&self, ymd: &str) -> Result<String, ComposeError> {
        let d = NaiveDate::parse_from_str(ymd, "%Y-%m-%d")
            .map_err(|e| self.bad(format!("date {ymd:?}: {e}")))?;
        Ok(display::date(d, self.locale))
    }
}

/// How a payout rail is named to partners.
fn rail_name(rail: &str) -> &str {
    match rail {
        "paypal" => "PayPal",
        "stripe_connect" => "Stripe",
        _ => "your payout method",
    }
}

/// What each reason a balance waits (`rules::PayoutBlocker::code`) means to the partner.
fn reason_sentence(code: &str, needed: Option<&str>, currency: &str) -> String {
    match code {
        "below_minimum" => match needed {
            Some(n) => format!("It is under the payout minimum: {n} more is needed."),
            None => "It is under the payout minimum.".into(),
        },
        "no_payout_method" => {
            "We have no payout method for you yet: please add your payout details.".into()
        }
        "payout_method_unusable" => "Your payout method was refused by the payment provider: please update your payout details.".into(),
        "held_by_operator" => "Your payouts are on hold while the program reviews your account.".into(),
        "currency_not_payable" => format!("Your payout method cannot receive {currency}."),
        "tax_info_not_approved" => "Your tax information is missing or not yet approved.".into(),
        "partner_not_active" => "Your partner account is not active.".into(),
        "nothing_available" => "Nothing is available to pay yet.".into(),
        "no_minimum_for_currency" => {
            format!("The program does not pay out in {currency} yet.")
        }
        other => format!("Reason: {other}."),
    }
}

/// Compose the e-mail of `env` for `partner` in `program` (branded by `brand`).
pub fn compose(
    templates: &Templates,
    env: &Envelope,
    program: &Program,
    brand: &Brand,
    partner: &Partner,
) -> Result<Email, ComposeError> {
    let f = Fmt {
        env,
        program,
        locale: brand.locale,
    };
    let kind = env.message.message_kind();
    let fields: Value = match &env.message {
        Message::CommissionEarned {
            tier,
            amount_minor,
            currency,
            available_at_ms,
            product_id,
            ..
        } => json!({
            "amount": f.money(*amount_minor, currency)?,
            "tier": tier,
            "sale_date": f.day(env.at_ms)?,
            "available_date": f.day(*available_at_ms)?,
            "product": product_id,
        }),
        Message::CommissionReversed {
            amount_minor,
            net_minor,
            currency,
            ..
        } => json!({
            "amount": f.money(amount_minor.abs(), currency)?,
            "given_back": *amount_minor < 0,
            "net": f.money(*net_minor, currency)?,
        }),
        Message::PartnerInvite { .. } => json!({
            "inviter": if partner.name.trim().is_empty() { "A friend" } else { partner.name.as_str() },
            "destination": program.default_destination,
        }),
        Message::PayoutWaiting {
            currency,
            available_minor,
            reasons,
            needed_minor,
            run_date,
            ..
        } => {
            let needed = needed_minor.map(|n| f.money(n, currency)).transpose()?;
            json!({
                "available": f.money(*available_minor, currency)?,
                "reasons": reasons.iter().map(|r| reason_sentence(r, needed.as_deref(), currency)).collect::<Vec<_>>(),
                "needed": needed,
                "run_date": f.date(run_date)?,
            })
        }
        Message::ForfeitWarning {
            currency,
            amount_minor,
            forfeit_on,
            needed_minor,
            ..
        } => json!({
            "amount": f.money(*amount_minor, currency)?,
            "forfeit_on": f.date(forfeit_on)?,
            "needed": f.money(*needed_minor, currency)?,
        }),
        Message::Forfeited {
            currency,
            amount_minor,
            reason,
            run_date,
            ..
        } => json!({
            "amount": f.money(*amount_minor, currency)?,
            "reason": reason,
            "run_date": f.date(run_date)?,
        }),
        Message::PayoutSent {
            currency,
            amount_minor,
            rail,
            reference,
            run_date,
            ..
        } => json!({
            "amount": f.money(*amount_minor, currency)?,
            "rail": rail_name(rail),
            "reference": reference,
            "run_date": f.date(run_date)?,
        }),
        Message::PayoutFailed {
            currency,
            amount_minor,
            rail,
            reason,
            returned,
            run_date,
            ..
        } => json!({
            "amount": f.money(*amount_minor, currency)?,
            "rail": rail_name(rail),
            "reason": reason,
            "returned": returned,
            "run_date": f.date(run_date)?,
        }),
        Message::LevelPromoted {
            level_name,
            rate_percent,
            ..
        } => json!({
            "level_name": level_name,
            "rate_percent": rate_percent,
        }),
        Message::CrmSyncPartner { .. } => {
            return Err(f.bad("a CRM message is not an e-mail".into()));
        }
    };
    let mut ctx = json!({
        "brand": brand,
        "optional": kind.is_optional_mail(),
        "recipient_name": match &env.message {
            Message::PartnerInvite { .. } => None,
            _ => (!partner.name.trim().is_empty()).then(|| partner.name.clone()),
        },
    });
    if let (Some(o), Value::Object(extra)) = (ctx.as_object_mut(), fields) {
        o.extend(extra);
    }
    let rendered = templates.render(kind.as_str(), &ctx)?;
    Ok(Email {
        kind,
        to: recipient_of(&env.message, partner).to_string(),
        rendered,
    })
}

/// The From header: `"Name" <address>`, the name as an RFC 2047 encoded word when it is not
/// plain ASCII (SES requires it), quotes and backslashes dropped.
pub fn from_header(name: &str, address: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !matches!(c, '"' | '\\') && !c.is_control())
        .collect();
    if clean.is_ascii() {
        format!("\"{clean}\" <{address}>")
    } else {
        use base64::Engine as _;
        let b = base64::engine::general_purpose::STANDARD.encode(clean.as_bytes());
        format!("=?UTF-8?B?{b}?= <{address}>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_headers() {
        assert_eq!(
            from_header("Demo \"Partners\"", "p@example.com"),
            "\"Demo Partners\" <p@example.com>"
        );
        assert_eq!(
            from_header("Café", "p@example.com"),
            "=?UTF-8?B?Q2Fmw6k=?= <p@example.com>"
        );
    }

    #[test]
    fn every_reason_of_the_payout_rules_has_a_sentence() {
        let codes = [
            "partner_not_active",
            "no_payout_method",
            "payout_method_unusable",
            "held_by_operator",
            "currency_not_payable",
            "tax_info_not_approved",
            "nothing_available",
            "below_minimum",
            "no_minimum_for_currency",
        ];
        for c in codes {
            assert!(
                !reason_sentence(c, Some("$20.00"), "KWD").starts_with("Reason:"),
                "{c}"
            );
        }
        assert!(reason_sentence("below_minimum", Some("$20.00"), "USD").contains("$20.00"));
    }
}
