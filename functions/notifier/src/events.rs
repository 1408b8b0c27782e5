//! What SES reports about sent mail: the configuration set's event destination publishes to an
//! SNS topic, which delivers to the mail-events queue this function reads.
//!
//! Shapes: "Contents of event data that Amazon SES publishes to Amazon SNS" (SES Developer
//! Guide, event publishing): a JSON object with `eventType` (`Bounce`, `Complaint`, `Delivery`,
//! `Send`, …; `notificationType` for identity feedback notifications) and `mail`, `bounce`
//! (`bounceType` `Permanent` | `Transient` | `Undetermined`, `bounceSubType`,
//! `bouncedRecipients[].emailAddress`, `diagnosticCode`, `timestamp`, `feedbackId`) or
//! `complaint` (`complainedRecipients[].emailAddress`, `complaintFeedbackType`, `timestamp`,
//! `feedbackId`). SNS wraps it in its notification (`Type: Notification`, `Message`: the event as
//! a string) unless the subscription delivers raw messages; both are read.

use serde::Deserialize;
use storage::mail::{AddressProblem, ProblemKind};

#[derive(Debug, Deserialize)]
struct SnsNotification {
    #[serde(rename = "Type")]
    kind: String,
    #[serde(rename = "Message")]
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SesEvent {
    event_type: Option<String>,
    notification_type: Option<String>,
    #[serde(default)]
    bounce: Option<Bounce>,
    #[serde(default)]
    complaint: Option<Complaint>,
    #[serde(default)]
    mail: Option<Mail>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    #[serde(default)]
    message_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
    #[serde(default)]
    diagnostic_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    #[serde(default)]
    bounce_sub_type: Option<String>,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    timestamp: String,
    #[serde(default)]
    feedback_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    #[serde(default)]
    complaint_feedback_type: Option<String>,
    timestamp: String,
    #[serde(default)]
    feedback_id: Option<String>,
}

/// What one mail event says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailEvent {
    /// Hard bounces or complaints: each address's problem, and the event's type.
    Problems {
        event_type: String,
        problems: Vec<AddressProblem>,
    },
    /// Nothing to record (a delivery, a transient bounce, …): its type.
    Ignored(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an SES event: {0}")]
pub struct NotAnEvent(pub String);

fn millis(ts: &str) -> Result<i64, NotAnEvent> {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| t.timestamp_millis())
        .map_err(|e| NotAnEvent(format!("timestamp {ts:?}: {e}")))
}

/// Read a queue body: an SNS notification carrying an SES event, or the event itself.
pub fn parse(body: &str) -> Result<MailEvent, NotAnEvent> {
    let inner;
    let raw = match serde_json::from_str::<SnsNotification>(body) {
        Ok(n) if n.kind == "Notification" => {
            inner = n.message;
            inner.as_str()
        }
        _ => body,
    };
    let ev: SesEvent = serde_json::from_str(raw).map_err(|e| NotAnEvent(e.to_string()))?;
    let event_type = ev
        .event_type
        .or(ev.notification_type)
        .ok_or_else(|| NotAnEvent("neither eventType nor notificationType".into()))?;
    let mail_id = ev.mail.and_then(|m| m.message_id).unwrap_or_default();
    match (event_type.as_str(), ev.bounce, ev.complaint) {
        ("Bounce", Some(b), _) if b.bounce_type == "Permanent" => {
            let at_ms = millis(&b.timestamp)?;
            let id = b.feedback_id.unwrap_or_else(|| mail_id.clone());
            let sub = b.bounce_sub_type.unwrap_or_else(|| "General".into());
            let problems = b
                .bounced_recipients
                .into_iter()
                .map(|r| AddressProblem {
                    address: storage::mail::mailbox(&r.email_address),
                    kind: ProblemKind::HardBounce,
                    detail: match r.diagnostic_code {
                        Some(d) => format!("{sub}: {d}"),
                        None => sub.clone(),
                    },
                    at_ms,
                    event_id: id.clone(),
                })
                .collect();
            Ok(MailEvent::Problems {
                event_type,
                problems,
            })
        }
        ("Complaint", _, Some(c)) => {
            let at_ms = millis(&c.timestamp)?;
            let id = c.feedback_id.unwrap_or_else(|| mail_id.clone());
            let detail = c
                .complaint_feedback_type
                .unwrap_or_else(|| "complaint".into());
            let problems = c
                .complained_recipients
                .into_iter()
                .map(|r| AddressProblem {
                    address: storage::mail::mailbox(&r.email_address),
                    kind: ProblemKind::Complaint,
                    detail: detail.clone(),
                    at_ms,
                    event_id: id.clone(),
                })
                .collect();
            Ok(MailEvent::Problems {
                event_type,
                problems,
            })
        }
        ("Bounce", Some(b), _) => Ok(MailEvent::Ignored(format!("Bounce/{}", b.bounce_type))),
        (t, _, _) => Ok(MailEvent::Ignored(t.to_string())),
    }
}

/// An SES bounce event as the SES Developer Guide's example shows it (tests and
/// `events/notifier/`).
pub fn sample_bounce(address: &str, feedback_id: &str) -> String {
    serde_json::json!({
        "eventType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [{
                "emailAddress": address,
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown"
            }],
            "timestamp": "2026-12-04T10:41:02.669Z",
            "feedbackId": feedback_id,
            "reportingMTA": "dsn; mta.example.com"
        },
        "mail": {
            "timestamp": "2026-12-04T10:40:02.012Z",
            "source": "Demo partners <partners@example.com>",
            "messageId": "EXAMPLE7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000",
            "destination": [address],
            "tags": {"kind": ["payout_sent"]}
        }
    })
    .to_string()
}

/// [`sample_bounce`] as SNS delivers it to SQS (not raw).
pub fn in_sns_notification(event: &str) -> String {
    serde_json::json!({
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:mail-events",
        "Message": event,
        "Timestamp": "2026-12-04T10:41:03.000Z",
        "SignatureVersion": "1"
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_bounces_and_complaints_are_problems_the_rest_is_ignored() {
        let b = sample_bounce("Alice@Example.com", "fb-1");
        for body in [b.clone(), in_sns_notification(&b)] {
            match parse(&body).unwrap() {
                MailEvent::Problems {
                    event_type,
                    problems,
                } => {
                    assert_eq!(event_type, "Bounce");
                    assert_eq!(problems.len(), 1);
                    assert_eq!(problems[0].address, "alice@example.com");
                    assert_eq!(problems[0].kind, ProblemKind::HardBounce);
                    assert_eq!(problems[0].event_id, "fb-1");
                    assert!(problems[0].detail.contains("550"));
                }
                other => panic!("{other:?}"),
            }
        }
        let soft = b.replace("Permanent", "Transient");
        assert_eq!(
            parse(&soft).unwrap(),
            MailEvent::Ignored("Bounce/Transient".into())
        );
        let c = serde_json::json!({
            "notificationType": "Complaint",
            "complaint": {"complainedRecipients": [{"emailAddress": "bob@example.com"}],
                          "timestamp": "2026-12-04T10:41:02Z", "feedbackId": "fb-2",
                          "complaintFeedbackType": "abuse"},
            "mail": {"messageId": "m-1"}
        })
        .to_string();
        match parse(&c).unwrap() {
            MailEvent::Problems { problems, .. } => {
                assert_eq!(problems[0].kind, ProblemKind::Complaint);
                assert_eq!(problems[0].detail, "abuse");
            }
            other => panic!("{other:?}"),
        }
        let d = r#"{"eventType":"Delivery","mail":{"messageId":"m"},"delivery":{}}"#;
        assert_eq!(parse(d).unwrap(), MailEvent::Ignored("Delivery".into()));
        assert!(parse("{}").is_err());
        assert!(parse("not json").is_err());
    }
}
