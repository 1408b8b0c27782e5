//! `partnerctl mail`: the mail log (what the notifier sent, skipped or could not send), SES
//! identities, a partner's e-mail standing, and the mail dead-letter queues.

use std::fmt::Write as _;

use storage::mail::{self, DeliveryState, MailDelivery};
use storage::Table;

use crate::show::time;
use crate::{CliError, Format};

/// Which deliveries to list.
#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub partner: Option<String>,
    /// Only claims never confirmed sent (at-most-once mail whose send got no answer, or a
    /// process that died between its claim and its send).
    pub unconfirmed: bool,
}

/// The mail log of the UTC days `days` (technical time of the claim), oldest first.
pub async fn log(
    table: &Table,
    format: Format,
    days: &[String],
    filter: &LogFilter,
) -> Result<String, CliError> {
    let mut all: Vec<MailDelivery> = vec![];
    for d in days {
        all.extend(mail::log_of_day(table, d).await?);
    }
    all.retain(|d| {
        filter
            .partner
            .as_ref()
            .is_none_or(|p| d.partner_id.as_ref() == Some(p))
            && (!filter.unconfirmed || d.state == DeliveryState::Claimed)
    });
    if format == Format::Json {
        let rows: Vec<serde_json::Value> = all
            .iter()
            .map(|d| {
                serde_json::json!({
                    "message_id": d.message_id,
                    "kind": d.kind,
                    "state": d.state.as_str(),
                    "money": d.money,
                    "partner_id": d.partner_id,
                    "program_id": d.program_id,
                    "recipient": d.recipient,
                    "subject": d.subject,
                    "text": d.text,
                    "claimed_ms": d.claimed_ms,
                    "sent_ms": d.sent_ms,
                    "claims": d.claims,
                    "ses_message_id": d.ses_message_id,
                    "note": d.note,
                })
            })
            .collect();
        return serde_json::to_string_pretty(&rows).map_err(|e| CliError::Usage(e.to_string()));
    }
    let mut out = String::new();
    if all.is_empty() {
        let _ = writeln!(out, "no mail on {}", days.join(", "));
    }
    for d in &all {
        let at = d.sent_ms.unwrap_or(d.claimed_ms);
        let _ = writeln!(
            out,
            "{}  {:<8} {:<20} to {}",
            time(at),
            d.state.as_str(),
            d.kind,
            if d.recipient.is_empty() {
                "-"
            } else {
                &d.recipient
            }
        );
        let _ = writeln!(out, "  Subject: {}", d.subject);
        if let Some(n) = &d.note {
            let _ = writeln!(out, "  Note: {n}");
        }
        if d.claims > 1 {
            let _ = writeln!(out, "  Claimed {} times", d.claims);
        }
        if d.state != DeliveryState::Skipped {
            for line in d.text.lines() {
                let _ = writeln!(out, "  | {line}");
            }
        }
        out.push('\n');
    }
    Ok(out)
}

/// Start verifying a sender in SES: a domain (`example.com`: SES answers the TXT record to
/// publish) or one address (SES mails it a link). Local SES (moto) verifies at once.
pub async fn verify(ses: &aws_sdk_ses::Client, identity: &str) -> Result<String, CliError> {
    if identity.contains('@') {
        ses.verify_email_identity()
            .email_address(identity)
            .send()
            .await
            .map_err(|e| CliError::Aws(format!("{e:?}")))?;
        Ok(format!(
            "SES sent a verification link to {identity}; mail from it is accepted once it is followed\n"
        ))
    } else {
        let out = ses
            .verify_domain_identity()
            .domain(identity)
            .send()
            .await
            .map_err(|e| CliError::Aws(format!("{e:?}")))?;
        Ok(format!(
            "publish TXT _amazonses.{identity} = \"{}\"; mail from any address @{identity} is accepted once SES sees it\n",
            out.verification_token()
        ))
    }
}

/// A dead letter of a mail queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MailDeadLetter {
    pub message_id: String,
    /// The outbox message id, or the SES event's type.
    pub what: String,
    pub receives: Option<String>,
}

fn describe(body: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(body) {
        Ok(v) => match (v.get("id"), v.get("type")) {
            (Some(id), Some(t)) => format!(
                "{} {}",
                t.as_str().unwrap_or("?"),
                id.as_str().unwrap_or("?")
            ),
            _ => v
                .get("eventType")
                .or_else(|| v.get("notificationType"))
                .or_else(|| v.get("Type"))
                .and_then(|t| t.as_str())
                .map(|t| format!("SES event {t}"))
                .unwrap_or_else(|| "unreadable JSON".into()),
        },
        Err(_) => "not JSON".into(),
    }
}

/// List a mail dead-letter queue (messages stay), or, with `redrive_to`, move each back to its
/// queue for the notifier to handle again (every handling is idempotent).
pub async fn dead_letters(
    sqs: &aws_sdk_sqs::Client,
    format: Format,
    queue_url: &str,
    redrive_to: Option<&str>,
) -> Result<String, CliError> {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let err = |e: &dyn std::fmt::Debug| CliError::Aws(format!("{e:?}"));
    let mut listed = vec![];
    let mut moved = 0;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(if redrive_to.is_some() { 60 } else { 1 })
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| err(&e))?;
        let msgs = out.messages();
        if msgs.is_empty() {
            break;
        }
        let mut new_in_batch = 0;
        for m in msgs {
            let body = m.body().unwrap_or("");
            let id = m.message_id().unwrap_or("").to_string();
            if listed.iter().any(|l: &MailDeadLetter| l.message_id == id) {
                continue;
            }
            new_in_batch += 1;
            listed.push(MailDeadLetter {
                message_id: id,
                what: describe(body),
                receives: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .cloned(),
            });
            if let Some(to) = redrive_to {
                sqs.send_message()
                    .queue_url(to)
                    .message_body(body)
                    .send()
                    .await
                    .map_err(|e| err(&e))?;
                if let Some(h) = m.receipt_handle() {
                    sqs.delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(h)
                        .send()
                        .await
                        .map_err(|e| err(&e))?;
                }
                moved += 1;
            }
        }
        if new_in_batch == 0 || (redrive_to.is_none() && listed.len() >= 1000) {
            break;
        }
    }
    if format == Format::Json {
        return serde_json::to_string_pretty(&listed).map_err(|e| CliError::Usage(e.to_string()));
    }
    let mut out = String::new();
    for l in &listed {
        let _ = writeln!(
            out,
            "{}  {}  (received {} times)",
            l.message_id,
            l.what,
            l.receives.as_deref().unwrap_or("?")
        );
    }
    match redrive_to {
        Some(to) => {
            let _ = writeln!(out, "{moved} moved back to {to}");
        }
        None => {
            let _ = writeln!(out, "{} dead letter(s)", listed.len());
        }
    }
    Ok(out)
}
