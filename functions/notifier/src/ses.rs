//! Sending through SES's classic API (`SendEmail`), and what its answers mean for a retry.

use aws_sdk_ses::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ses::types::{Body, Content, Destination, Message, MessageTag};

/// One e-mail as SES takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The From header (`"Name" <address>`).
    pub from: String,
    pub to: String,
    pub reply_to: Option<String>,
    pub subject: String,
    pub html: String,
    pub text: String,
    /// Message tags (names and values of `[A-Za-z0-9_-]`): the kind and the program, so the
    /// configuration set's events name them.
    pub tags: Vec<(String, String)>,
}

/// Why a send did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// SES asked to slow down (its sending rate): try again shortly.
    #[error("SES throttled the send: {0}")]
    Throttled(String),
    /// SES answered with a refusal: nothing was sent. `retryable`: a later attempt may succeed
    /// (a fault of SES's own); otherwise the configuration must change first (an unverified
    /// sender, a paused account), and the message reaches the dead-letter queue.
    #[error("SES refused the send ({code}): {message}")]
    Refused {
        code: String,
        message: String,
        retryable: bool,
    },
    /// No answer (a timeout, a broken connection): the mail may or may not have been sent.
    #[error("no answer from SES (the mail may have been sent): {0}")]
    NoAnswer(String),
}

/// What sends the mail (SES in production; tests put faults in front of it).
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// Send; SES's `MessageId` on success.
    async fn send(&self, mail: &Outgoing) -> Result<String, SendError>;
}

#[async_trait::async_trait]
impl<M: Mailer + ?Sized> Mailer for Box<M> {
    async fn send(&self, mail: &Outgoing) -> Result<String, SendError> {
        (**self).send(mail).await
    }
}

/// SES's classic API, with an optional configuration set (bounce and complaint events).
pub struct Ses {
    pub client: aws_sdk_ses::Client,
    pub configuration_set: Option<String>,
}

fn content(s: &str) -> Result<Content, SendError> {
    Content::builder()
        .data(s)
        .charset("UTF-8")
        .build()
        .map_err(|e| SendError::Refused {
            code: "RequestNotBuilt".into(),
            message: e.to_string(),
            retryable: false,
        })
}

/// A tag value SES accepts (`[A-Za-z0-9_-]`, at most 256 characters).
pub fn tag_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(256)
        .collect()
}

#[async_trait::async_trait]
impl Mailer for Ses {
    async fn send(&self, mail: &Outgoing) -> Result<String, SendError> {
        let message = Message::builder()
            .subject(content(&mail.subject)?)
            .body(
                Body::builder()
                    .text(content(&mail.text)?)
                    .html(content(&mail.html)?)
                    .build(),
            )
            .build();
        let mut req = self
            .client
            .send_email()
            .source(&mail.from)
            .destination(Destination::builder().to_addresses(&mail.to).build())
            .message(message)
            .set_configuration_set_name(self.configuration_set.clone());
        if let Some(r) = &mail.reply_to {
            req = req.reply_to_addresses(r);
        }
        for (k, v) in &mail.tags {
            let tag = MessageTag::builder()
                .name(k)
                .value(tag_value(v))
                .build()
                .map_err(|e| SendError::Refused {
                    code: "RequestNotBuilt".into(),
                    message: e.to_string(),
                    retryable: false,
                })?;
            req = req.tags(tag);
        }
        match req.send().await {
            Ok(out) => Ok(out.message_id().to_string()),
            Err(e) => Err(classify(e)),
        }
    }
}

/// SES error codes (SES API reference, "Common Errors" and `SendEmail`'s errors): `Throttling`
/// ("Maximum sending rate exceeded") is worth a retry within seconds; SES's own faults
/// (`InternalFailure`, `ServiceUnavailable`, any 5xx) a retry later; everything else
/// (`MessageRejected`: an unverified address or the sandbox; `MailFromDomainNotVerified`,
/// `ConfigurationSetDoesNotExist`, `ConfigurationSetSendingPausedException`,
/// `AccountSendingPausedException`, validation) needs a change of configuration first.
fn classify<E>(e: SdkError<E, aws_sdk_ses::config::http::HttpResponse>) -> SendError
where
    E: ProvideErrorMetadata + std::error::Error,
{
    match &e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("Unknown").to_string();
            let message = err.message().unwrap_or("").to_string();
            let daily_quota = message.contains("Daily message quota");
            if code == "Throttling" && !daily_quota {
                SendError::Throttled(message)
            } else {
                let retryable = matches!(
                    code.as_str(),
                    "InternalFailure" | "ServiceUnavailable" | "InternalError"
                ) || daily_quota
                    || se.raw().status().as_u16() >= 500;
                SendError::Refused {
                    code,
                    message,
                    retryable,
                }
            }
        }
        SdkError::ConstructionFailure(_) => SendError::Refused {
            code: "RequestNotBuilt".into(),
            message: format!("{e:?}"),
            retryable: false,
        },
        _ => SendError::NoAnswer(format!("{e:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_values_are_cleaned() {
        assert_eq!(tag_value("demo:2026-12-04"), "demo_2026-12-04");
    }
}
