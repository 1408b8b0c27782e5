//! The notifier (SQS-triggered): e-mail to partners through SES.
//!
//! Two queues feed it. The **e-mail queue** carries the outbox's e-mail messages
//! (`messages::Consumer::Email`): each is composed from its templates with the program's
//! branding ([`compose`]), claimed in the table ([`storage::mail`]) and sent with one SES call.
//! The **mail-events queue** carries what SES reports through the configuration set's event
//! destination (SNS → SQS): hard bounces and complaints mark the address ([`events`]) and open a
//! needs-attention record.
//!
//! Delivery guarantees:
//! * money mail (payout sent, failed or returned, forfeit warning, forfeited) at least once: the
//!   claim is a lease of [`DEFAULT_LEASE`]; a redelivery after the lease ran out without a
//!   recorded send sends again. Lambda's timeout (30 s) is shorter than the lease, and the
//!   queue's visibility timeout (180 s) longer, so a redelivery finds the lease over.
//! * other mail at most once: claimed for good before the send.
//! * SES has no idempotency key. What remains: a process that dies after SES accepted the mail
//!   and before the send is recorded sends money mail twice, and loses nothing else; one that
//!   dies between the claim and the send loses that (non-money) mail, whose record stays
//!   `claimed` with no SES id (`partnerctl mail --unconfirmed` lists them).
//!
//! Not sent, on purpose, and recorded `skipped` with the reason: optional mail (commission
//! earned, promotions) to a partner who opted out or whose address bounced or complained;
//! an invitation to an address that did; mail without an address.
//!
//! Every failure is a batch item failure (`ReportBatchItemFailures`): one bad message never
//! fails its batch; after five receives a message goes to the queue's own dead-letter queue.

pub mod compose;
pub mod events;
pub mod render;
pub mod ses;

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use messages::{Consumer, Envelope, Kind};
use storage::attention::{self, NewAttention};
use storage::mail::{self, Claimed, Lease, MailDelivery};
use storage::{StoreError, Table};

use crate::compose::{compose, from_header, program_of, recipient_of, Brand, ComposeError};
use crate::events::MailEvent;
use crate::render::Templates;
use crate::ses::{Mailer, Outgoing, SendError};

pub const MAIL_FROM_ENV: &str = "MAIL_FROM";
pub const MAIL_CONFIGURATION_SET_ENV: &str = "MAIL_CONFIGURATION_SET";
pub const MAIL_LEASE_SECONDS_ENV: &str = "MAIL_LEASE_SECONDS";

/// How long a claim of money mail holds before a redelivery may send it again.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// Sends tried when SES throttles, within one delivery (then the queue brings it back).
pub const THROTTLE_ATTEMPTS: u32 = 4;

/// What the notifier needs, built once per process.
pub struct Notifier<M> {
    pub table: Table,
    pub catalog: Arc<engine::catalog::Catalog>,
    pub templates: Templates,
    pub mailer: M,
    /// The stack's sender (`MAIL_FROM`), for programs without their own.
    pub default_sender: Option<String>,
    pub lease: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Not a message this function can read (a poison message: it reaches the dead-letter
    /// queue after its retries).
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error("configuration: {0}")]
    Config(String),
    /// Another delivery holds the claim of this money mail: try again after it.
    #[error("claimed by another delivery until {until_ms}")]
    Leased { until_ms: i64 },
    #[error(transparent)]
    Send(#[from] SendError),
}

impl NotifyError {
    /// A later attempt may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        match self {
            NotifyError::Store(e) => e.is_retryable(),
            NotifyError::Leased { .. } => true,
            NotifyError::Send(SendError::Throttled(_) | SendError::NoAnswer(_)) => true,
            NotifyError::Send(SendError::Refused { retryable, .. }) => *retryable,
            NotifyError::Malformed(_) | NotifyError::Compose(_) | NotifyError::Config(_) => false,
        }
    }
}

/// What became of one queue message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// SES accepted it (its message id).
    Sent(String),
    /// Sent or skipped before: nothing done (a duplicate delivery).
    Duplicate,
    /// Not sent, on purpose (recorded with the reason).
    Skipped(String),
    /// At-most-once mail whose send got no answer: not sent again.
    Unconfirmed,
    /// A bounce or complaint recorded: the addresses and the partners marked.
    ProblemsRecorded { addresses: usize, partners: usize },
    /// A mail event with nothing to record (a delivery, a transient bounce).
    EventIgnored(String),
}

impl<M: Mailer> Notifier<M> {
    /// Deliver one outbox message (the e-mail queue's body).
    pub async fn deliver(&self, body: &str) -> Result<Outcome, NotifyError> {
        let env = Envelope::from_json(body).map_err(|e| NotifyError::Malformed(e.to_string()))?;
        self.deliver_envelope(env).await
    }

    async fn deliver_envelope(&self, env: Envelope) -> Result<Outcome, NotifyError> {
        let kind = env.message.message_kind();
        if kind.consumer() != Consumer::Email {
            return Err(NotifyError::Malformed(format!("{kind} is not an e-mail")));
        }
        let (Some(partner_id), Some(program_id)) =
            (compose::partner_of(&env.message), program_of(&env.message))
        else {
            return Err(NotifyError::Malformed(format!("{kind} names no partner")));
        };
        let base = MailDelivery {
            message_id: env.id.clone(),
            kind: kind.as_str().to_string(),
            state: mail::DeliveryState::Claimed,
            money: kind.is_money_mail(),
            partner_id: Some(partner_id.to_string()),
            program_id: Some(program_id.to_string()),
            recipient: String::new(),
            subject: String::new(),
            text: String::new(),
            claimed_ms: 0,
            lease_until_ms: None,
            claims: 0,
            sent_ms: None,
            ses_message_id: None,
            note: None,
        };
        let (partner, standing) = mail::partner_with_standing(&self.table, partner_id).await?;
        let Some(partner) = partner else {
            return self
                .skip(base, format!("partner {partner_id} does not exist"))
                .await;
        };
        let Some(program) = self.catalog.program(&self.table, program_id).await? else {
            return self
                .skip(base, format!("program {program_id} does not exist"))
                .await;
        };
        let brand = Brand::of(&program, self.default_sender.as_deref());
        let email = compose(&self.templates, &env, &program, &brand, &partner)?;
        let d = MailDelivery {
            recipient: email.to.clone(),
            subject: email.rendered.subject.clone(),
            text: email.rendered.text.clone(),
            ..base
        };
        if let Some(why) = self.why_not(kind, &env, &partner, &standing).await? {
            return self.skip(d, why).await;
        }
        let Some(sender) = brand.sender_address.clone() else {
            return Err(NotifyError::Config(format!(
                "no sender address for program {program_id}: set its email.sender_address or the stack's MailFrom"
            )));
        };
        let now = self.table.clock.now_ms();
        let lease = if d.money {
            Lease::Until(now + i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX / 2))
        } else {
            Lease::Never
        };
        match mail::claim(&self.table, &d, lease).await? {
            Claimed::Yours => {}
            Claimed::Done(_) => return Ok(Outcome::Duplicate),
            Claimed::ClaimedForGood(_) => return Ok(Outcome::Duplicate),
            Claimed::Leased { until_ms } => return Err(NotifyError::Leased { until_ms }),
        }
        let out = Outgoing {
            from: from_header(&brand.sender_name, &sender),
            to: email.to.clone(),
            reply_to: brand.reply_to.clone(),
            subject: email.rendered.subject,
            html: email.rendered.html,
            text: email.rendered.text,
            tags: vec![
                ("kind".into(), kind.as_str().into()),
                ("program".into(), program_id.into()),
            ],
        };
        match self.send_with_backoff(&out).await {
            Ok(ses_id) => {
                mail::mark_sent(&self.table, &d.message_id, &ses_id).await?;
                Ok(Outcome::Sent(ses_id))
            }
            Err(e @ (SendError::Throttled(_) | SendError::Refused { .. })) => {
                mail::mark_refused(&self.table, &d.message_id, &e.to_string()).await?;
                Err(e.into())
            }
            Err(e @ SendError::NoAnswer(_)) if d.money => {
                // The lease runs out and a redelivery sends it again (at least once).
                Err(e.into())
            }
            Err(SendError::NoAnswer(detail)) => {
                tracing::warn!(message_id = %d.message_id, %detail, "no answer from SES; at-most-once mail is not sent again");
                Ok(Outcome::Unconfirmed)
            }
        }
    }

    /// Why this message is not sent, if it is not.
    async fn why_not(
        &self,
        kind: Kind,
        env: &Envelope,
        partner: &storage::partners::Partner,
        standing: &mail::MailStanding,
    ) -> Result<Option<String>, NotifyError> {
        let to = recipient_of(&env.message, partner);
        if to.trim().is_empty() {
            return Ok(Some("no e-mail address".into()));
        }
        if kind.is_optional_mail() {
            if standing.opt_out {
                return Ok(Some("the partner opted out of optional mail".into()));
            }
            if let Some(p) = standing.problem_of(to) {
                return Ok(Some(problem_note(p)));
            }
        }
        if kind == Kind::PartnerInvite {
            if let Some(p) = mail::address_problem(&self.table, to).await? {
                return Ok(Some(problem_note(&p)));
            }
        }
        Ok(None)
    }

    async fn skip(&self, d: MailDelivery, why: String) -> Result<Outcome, NotifyError> {
        tracing::info!(message_id = %d.message_id, kind = %d.kind, reason = %why, "mail skipped");
        mail::record_skipped(
            &self.table,
            &MailDelivery {
                note: Some(why.clone()),
                ..d
            },
        )
        .await?;
        Ok(Outcome::Skipped(why))
    }

    /// One send, tried again after a backoff (on the injected clock) while SES throttles.
    async fn send_with_backoff(&self, out: &Outgoing) -> Result<String, SendError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.mailer.send(out).await {
                Err(SendError::Throttled(m)) if attempt < THROTTLE_ATTEMPTS => {
                    tracing::info!(attempt, message = %m, "SES throttled; backing off");
                    let draw = std::collections::hash_map::RandomState::new()
                        .build_hasher()
                        .finish() as u16;
                    self.table
                        .clock
                        .sleep(storage::table::backoff_delay(attempt + 3, draw))
                        .await;
                }
                r => return r,
            }
        }
    }

    /// Record one SES event (the mail-events queue's body).
    pub async fn record_event(&self, body: &str) -> Result<Outcome, NotifyError> {
        let ev = events::parse(body).map_err(|e| NotifyError::Malformed(e.to_string()))?;
        let (event_type, problems) = match ev {
            MailEvent::Ignored(t) => return Ok(Outcome::EventIgnored(t)),
            MailEvent::Problems {
                event_type,
                problems,
            } => (event_type, problems),
        };
        let mut partners = 0;
        for p in &problems {
            let marked = mail::record_problem(&self.table, p).await?;
            partners += marked.len();
            let reason = format!(
                "{} {} ({}): optional mail to it stops{}",
                p.address,
                match p.kind {
                    mail::ProblemKind::HardBounce => "hard-bounced",
                    mail::ProblemKind::Complaint => "complained",
                },
                p.detail,
                if marked.is_empty() {
                    String::new()
                } else {
                    format!("; partner {}", marked.join(", "))
                }
            );
            let event_id = format!("{}:{}", p.event_id, p.address);
            attention::record(
                &self.table,
                &NewAttention {
                    source: "ses",
                    event_id: Some(&event_id),
                    event_type: Some(&event_type),
                    reason_code: match p.kind {
                        mail::ProblemKind::HardBounce => "email-hard-bounce",
                        mail::ProblemKind::Complaint => "email-complaint",
                    },
                    reason: &reason,
                    business_at_ms: Some(p.at_ms),
                    livemode: None,
                    api_version: None,
                    payload: body.as_bytes(),
                },
            )
            .await?;
        }
        Ok(Outcome::ProblemsRecorded {
            addresses: problems.len(),
            partners,
        })
    }

    /// One queue message of either queue, told apart by its shape: an outbox envelope has a
    /// `type` tag; an SES event (raw or in an SNS notification) does not.
    pub async fn handle(&self, body: &str) -> Result<Outcome, NotifyError> {
        let v: serde_json::Value =
            serde_json::from_str(body).map_err(|e| NotifyError::Malformed(e.to_string()))?;
        if v.get("type").is_some() && v.get("id").is_some() {
            let env: Envelope =
                serde_json::from_value(v).map_err(|e| NotifyError::Malformed(e.to_string()))?;
            self.deliver_envelope(env).await
        } else {
            self.record_event(body).await
        }
    }

    /// An SQS batch: every record handled, the failed ones reported (partial batch response).
    pub async fn batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            match self.handle(record.body.as_deref().unwrap_or("")).await {
                Ok(outcome) => tracing::info!(message_id = %id, ?outcome, "mail message handled"),
                Err(e) => {
                    if e.is_retryable() {
                        tracing::warn!(message_id = %id, error = %e, "mail message failed; retried");
                    } else {
                        tracing::error!(message_id = %id, error = %e, "mail message failed; it reaches the dead-letter queue after its retries");
                    }
                    response.batch_item_failures.push(BatchItemFailure {
                        item_identifier: id,
                    });
                }
            }
        }
        response
    }
}

fn problem_note(p: &mail::AddressProblem) -> String {
    let day = mail::day_of(p.at_ms);
    format!(
        "{} reported {} on {day} ({})",
        p.address,
        p.kind.as_str(),
        p.detail
    )
}

/// The production notifier: SES and the table from the Lambda environment.
pub async fn production() -> Result<Notifier<ses::Ses>, NotifyError> {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let aws = storage::table::aws_config().await;
    let table = Table::from_env(&aws)?;
    let lease = match get(MAIL_LEASE_SECONDS_ENV) {
        None => DEFAULT_LEASE,
        Some(s) => Duration::from_secs(s.trim().parse().map_err(|_| {
            NotifyError::Config(format!("{MAIL_LEASE_SECONDS_ENV}={s:?} is not seconds"))
        })?),
    };
    let templates = Templates::load().map_err(|e| NotifyError::Config(e.to_string()))?;
    Ok(Notifier {
        table,
        catalog: Arc::new(engine::catalog::Catalog::new(engine::PROGRAM_CACHE_TTL)),
        templates,
        mailer: ses::Ses {
            client: aws_sdk_ses::Client::new(&aws),
            configuration_set: get(MAIL_CONFIGURATION_SET_ENV),
        },
        default_sender: get(MAIL_FROM_ENV),
        lease,
    })
}
