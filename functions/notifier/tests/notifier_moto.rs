//! The notifier against moto's SES, SQS and DynamoDB (issue 15): what SES received (read back
//! through moto's API), once per message; opt-outs and bounces; the claim's lease after a lost
//! send; throttling; a poison message on its way to the dead-letter queue while its batch
//! succeeds.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use messages::{Envelope, Message};
use notifier::ses::{Mailer, Outgoing, SendError, Ses};
use notifier::{Notifier, NotifyError, Outcome};
use rules::Program;
use storage::mail::{self, DeliveryState, Lease, MailDelivery};
use storage::partners::{self, Partner};
use storage::{ManualClock, Table};
use testkit::catalogue;
use testkit::moto::{self, sent_emails_to};

const T0: i64 = 1_796_371_200_000; // 2026-12-04T08:00:00Z

struct World {
    n: Notifier<Box<dyn Mailer>>,
    clock: ManualClock,
    email: String,
}

fn demo_program() -> Program {
    let mut p = catalogue::program(serde_json::json!({
        "id": "demo", "name": "Demo",
        "plan": {"reward": {"type": "percentage", "rate": "0.25"}},
        "default_destination": "https://example.com/pricing",
        "email": {"sender_name": "Demo Partners", "sender_address": "partners@example.com",
                  "reply_to": "help@example.com", "support_contact": "help@example.com",
                  "footer": "Demo Inc."}
    }));
    p.validate().unwrap();
    p.email.locale = rules::Locale::EnUs;
    p
}

async fn ses_client() -> aws_sdk_ses::Client {
    let ses = aws_sdk_ses::Client::new(&moto::local_config().await);
    ses.verify_domain_identity()
        .domain("example.com")
        .send()
        .await
        .unwrap();
    ses
}

impl World {
    async fn with_mailer(wrap: impl FnOnce(Ses) -> Box<dyn Mailer>) -> World {
        let clock = ManualClock::at(T0);
        let table: Table = moto::fresh_table()
            .await
            .unwrap()
            .with_clock(Arc::new(clock.clone()));
        catalogue::put_program(&table, &demo_program()).await;
        // One recipient per test: moto keeps every test's mail together.
        let email = format!("{}@partners.test", moto::unique_name("alice"));
        let partner = Partner {
            email: email.clone(),
            name: "Alice".into(),
            ..catalogue::partner("alice")
        };
        table
            .put(partners::partner_item(&partner).unwrap())
            .await
            .unwrap();
        let mailer = wrap(Ses {
            client: ses_client().await,
            configuration_set: None,
        });
        World {
            n: Notifier {
                table,
                catalog: Arc::new(engine::catalog::Catalog::new(Duration::ZERO)),
                templates: notifier::render::Templates::load().unwrap(),
                mailer,
                default_sender: None,
                lease: notifier::DEFAULT_LEASE,
            },
            clock,
            email,
        }
    }
    async fn new() -> World {
        Self::with_mailer(|s| Box::new(s) as Box<dyn Mailer>).await
    }
    fn t(&self) -> &Table {
        &self.n.table
    }
}

fn payout_sent(id: &str, amount: i64, currency: &str) -> String {
    Envelope {
        id: format!("payout-sent:{id}"),
        at_ms: T0,
        message: Message::PayoutSent {
            partner_id: "alice".into(),
            program_id: "demo".into(),
            item_id: id.into(),
            currency: currency.into(),
            amount_minor: amount,
            rail: "paypal".into(),
            reference: "PO-7".into(),
            run_date: "2026-12-04".into(),
        },
    }
    .to_json()
}

fn earned(id: &str, amount: i64, currency: &str) -> String {
    Envelope {
        id: format!("commission-earned:{id}"),
        at_ms: T0,
        message: Message::CommissionEarned {
            partner_id: "alice".into(),
            program_id: "demo".into(),
            commission_id: id.into(),
            tier: 1,
            amount_minor: amount,
            currency: currency.into(),
            available_at_ms: T0 + 90 * 86_400_000,
            product_id: Some("prod_demo".into()),
        },
    }
    .to_json()
}

#[tokio::test]
async fn payout_mail_reaches_ses_once_with_its_amount_and_is_logged() {
    let w = World::new().await;
    let body = payout_sent("demo:2026-12-04:alice:USD", 12_475, "USD");
    let first = w.n.deliver(&body).await.unwrap();
    assert!(matches!(first, Outcome::Sent(_)), "{first:?}");
    // The same message again (SQS delivers at least once; the outbox may send twice).
    assert_eq!(w.n.deliver(&body).await.unwrap(), Outcome::Duplicate);

    let sent = sent_emails_to(&w.email);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].subject, "We sent you $124.75");
    assert_eq!(sent[0].source, "\"Demo Partners\" <partners@example.com>");
    assert!(
        sent[0].body.contains("<strong>$124.75</strong>"),
        "{}",
        sent[0].body
    );
    assert!(sent[0].body.contains("PO-7"));
    assert!(sent[0].body.contains("Dec 4, 2026"));

    let d = mail::get(w.t(), "payout-sent:demo:2026-12-04:alice:USD")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.state, DeliveryState::Sent);
    assert!(d.money);
    assert_eq!(d.claims, 1);
    assert_eq!(d.ses_message_id.as_deref(), Some(sent[0].id.as_str()));
    assert!(d
        .text
        .contains("Your payout of $124.75 was sent through PayPal."));
    assert!(d.text.contains("Questions? Contact help@example.com."));
    let log = mail::log_of_day(w.t(), "2026-12-04").await.unwrap();
    assert_eq!(log.len(), 1);
}

#[tokio::test]
async fn amounts_keep_their_currency_s_decimals() {
    let w = World::new().await;
    w.n.deliver(&earned("demo:in_jpy:t1", 1_200, "JPY"))
        .await
        .unwrap();
    w.n.deliver(&earned("demo:in_kwd:t1", 1_250, "KWD"))
        .await
        .unwrap();
    let subjects: Vec<String> = sent_emails_to(&w.email)
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert_eq!(
        subjects,
        vec!["You earned ¥1,200", "You earned KWD\u{a0}1.250"]
    );
}

#[tokio::test]
async fn an_opted_out_partner_gets_payout_mail_but_not_commission_mail() {
    let w = World::new().await;
    mail::set_opt_out(w.t(), "alice", true).await.unwrap();
    let skipped =
        w.n.deliver(&earned("demo:in_1:t1", 2_475, "USD"))
            .await
            .unwrap();
    assert_eq!(
        skipped,
        Outcome::Skipped("the partner opted out of optional mail".into())
    );
    let paid =
        w.n.deliver(&payout_sent("demo:2026-12-04:alice:USD", 12_475, "USD"))
            .await
            .unwrap();
    assert!(matches!(paid, Outcome::Sent(_)));
    let sent = sent_emails_to(&w.email);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].subject, "We sent you $124.75");
    // The skipped one is recorded with its reason (listed by `partnerctl mail`).
    let d = mail::get(w.t(), "commission-earned:demo:in_1:t1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.state, DeliveryState::Skipped);
    assert_eq!(
        d.note.as_deref(),
        Some("the partner opted out of optional mail")
    );
    // Opted in again: commission mail flows.
    mail::set_opt_out(w.t(), "alice", false).await.unwrap();
    let again =
        w.n.deliver(&earned("demo:in_2:t1", 2_475, "USD"))
            .await
            .unwrap();
    assert!(matches!(again, Outcome::Sent(_)));
}

#[tokio::test]
async fn a_bounce_marks_the_address_and_stops_commission_mail_only() {
    let w = World::new().await;
    let bounce = notifier::events::in_sns_notification(&notifier::events::sample_bounce(
        &w.email.to_uppercase(),
        &moto::unique_name("fb"),
    ));
    let r = w.n.handle(&bounce).await.unwrap();
    assert_eq!(
        r,
        Outcome::ProblemsRecorded {
            addresses: 1,
            partners: 1
        }
    );
    // Twice (SNS and SQS deliver at least once): the same marks.
    w.n.handle(&bounce).await.unwrap();
    let st = mail::standing(w.t(), "alice").await.unwrap();
    let p = st.problem_of(&w.email).expect("marked");
    assert_eq!(p.kind, mail::ProblemKind::HardBounce);
    // The operator sees it.
    let open = storage::attention::open(w.t()).await.unwrap();
    let rec = open
        .iter()
        .find(|r| r.reason.contains(&w.email))
        .expect("needs-attention record");
    assert_eq!(rec.reason_code, "email-hard-bounce");
    assert_eq!(rec.deliveries, 2);

    let skipped =
        w.n.deliver(&earned("demo:in_1:t1", 2_475, "USD"))
            .await
            .unwrap();
    assert!(
        matches!(&skipped, Outcome::Skipped(why) if why.contains("hard_bounce")),
        "{skipped:?}"
    );
    let paid =
        w.n.deliver(&payout_sent("demo:2026-12-04:alice:USD", 12_475, "USD"))
            .await
            .unwrap();
    assert!(matches!(paid, Outcome::Sent(_)));
    assert_eq!(sent_emails_to(&w.email).len(), 1);

    // The operator clears it once the mailbox works again.
    mail::clear_problem(w.t(), "alice").await.unwrap();
    let again =
        w.n.deliver(&earned("demo:in_2:t1", 2_475, "USD"))
            .await
            .unwrap();
    assert!(matches!(again, Outcome::Sent(_)));
}

/// A claim left by a process that died before its send: money mail waits out the lease and is
/// sent; other mail is never sent again and stays listed as unconfirmed.
#[tokio::test]
async fn a_lost_claim_resends_money_mail_after_its_lease_and_nothing_else() {
    let w = World::new().await;
    let claim = |id: &str, kind: &str, money: bool| MailDelivery {
        message_id: id.into(),
        kind: kind.into(),
        state: DeliveryState::Claimed,
        money,
        partner_id: Some("alice".into()),
        program_id: Some("demo".into()),
        recipient: w.email.clone(),
        subject: String::new(),
        text: String::new(),
        claimed_ms: 0,
        lease_until_ms: None,
        claims: 0,
        sent_ms: None,
        ses_message_id: None,
        note: None,
    };
    let money_id = "payout-sent:demo:2026-12-04:alice:USD";
    let lease_end = T0 + 120_000;
    assert_eq!(
        mail::claim(
            w.t(),
            &claim(money_id, "payout_sent", true),
            Lease::Until(lease_end)
        )
        .await
        .unwrap(),
        mail::Claimed::Yours
    );
    // The redelivery comes while the lease holds: retried later, nothing sent.
    let body = payout_sent("demo:2026-12-04:alice:USD", 12_475, "USD");
    let err = w.n.deliver(&body).await.unwrap_err();
    assert!(matches!(err, NotifyError::Leased { until_ms } if until_ms == lease_end));
    assert!(err.is_retryable());
    assert!(sent_emails_to(&w.email).is_empty());
    // After the lease: sent, once.
    w.clock.set(lease_end + 1);
    assert!(matches!(
        w.n.deliver(&body).await.unwrap(),
        Outcome::Sent(_)
    ));
    assert_eq!(w.n.deliver(&body).await.unwrap(), Outcome::Duplicate);
    assert_eq!(sent_emails_to(&w.email).len(), 1);
    let d = mail::get(w.t(), money_id).await.unwrap().unwrap();
    assert_eq!(
        d.claims,
        1 + 1,
        "claimed twice: the lost claim and the send"
    );

    // At-most-once mail: the lost claim is final.
    let other = "commission-earned:demo:in_1:t1";
    mail::claim(
        w.t(),
        &claim(other, "commission_earned", false),
        Lease::Never,
    )
    .await
    .unwrap();
    w.clock.set(lease_end + 10 * 60_000);
    assert_eq!(
        w.n.deliver(&earned("demo:in_1:t1", 2_475, "USD"))
            .await
            .unwrap(),
        Outcome::Duplicate
    );
    assert_eq!(sent_emails_to(&w.email).len(), 1);
    let d = mail::get(w.t(), other).await.unwrap().unwrap();
    assert_eq!(d.state, DeliveryState::Claimed, "listed as unconfirmed");
}

/// SES throttles twice, then accepts: sent after two backoffs on the injected clock.
struct Throttling {
    inner: Ses,
    left: AtomicU32,
}

#[async_trait::async_trait]
impl Mailer for Throttling {
    async fn send(&self, mail: &Outgoing) -> Result<String, SendError> {
        if self
            .left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(SendError::Throttled(
                "Maximum sending rate exceeded.".into(),
            ));
        }
        self.inner.send(mail).await
    }
}

#[tokio::test]
async fn throttling_is_retried_with_backoff_and_then_given_back_to_the_queue() {
    let w = World::with_mailer(|s| {
        Box::new(Throttling {
            inner: s,
            left: AtomicU32::new(2),
        }) as Box<dyn Mailer>
    })
    .await;
    let r =
        w.n.deliver(&payout_sent("demo:2026-12-04:alice:USD", 100, "USD"))
            .await
            .unwrap();
    assert!(matches!(r, Outcome::Sent(_)));
    assert!(w.clock_moved());
    assert_eq!(sent_emails_to(&w.email).len(), 1);

    // Throttled on every attempt: the claim is given back, the queue retries it later.
    let w = World::with_mailer(|s| {
        Box::new(Throttling {
            inner: s,
            left: AtomicU32::new(100),
        }) as Box<dyn Mailer>
    })
    .await;
    let body = payout_sent("demo:2026-12-04:alice:USD", 100, "USD");
    let err = w.n.deliver(&body).await.unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let d = mail::get(w.t(), "payout-sent:demo:2026-12-04:alice:USD")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.state, DeliveryState::Failed);
}

impl World {
    fn clock_moved(&self) -> bool {
        use storage::Clock;
        self.clock.now_ms() > T0
    }
}

/// The queue as Lambda's event source drives it: receive, invoke, delete what did not fail;
/// failed messages come back (visibility 0 here) until the redrive policy moves them.
#[tokio::test]
async fn a_poison_message_reaches_the_dead_letter_queue_while_its_batch_succeeds() {
    let w = World::new().await;
    let sqs = aws_sdk_sqs::Client::new(&moto::local_config().await);
    let dlq = moto::fresh_queue(&sqs).await.unwrap();
    let dlq_arn = sqs
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn]
        .clone();
    let queue = sqs
        .create_queue()
        .queue_name(moto::unique_name("email"))
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            "0",
        )
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::RedrivePolicy,
            serde_json::json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let bodies = [
        payout_sent("demo:2026-12-04:alice:USD", 100, "USD"),
        "{\"type\":\"payout_sent\",\"id\":\"x\",\"at_ms\":\"not a number\"}".to_string(),
        earned("demo:in_1:t1", 2_475, "USD"),
    ];
    for b in &bodies {
        sqs.send_message()
            .queue_url(&queue)
            .message_body(b)
            .send()
            .await
            .unwrap();
    }
    let mut failures_seen = 0;
    for _ in 0..10 {
        let got = sqs
            .receive_message()
            .queue_url(&queue)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        if got.messages().is_empty() {
            break;
        }
        let event = SqsEvent {
            records: got
                .messages()
                .iter()
                .map(|m| SqsMessage {
                    message_id: m.message_id().map(str::to_string),
                    receipt_handle: m.receipt_handle().map(str::to_string),
                    body: m.body().map(str::to_string),
                    ..SqsMessage::default()
                })
                .collect(),
        };
        let response = w.n.batch(event).await;
        failures_seen += response.batch_item_failures.len();
        for m in got.messages() {
            let id = m.message_id().unwrap_or("");
            if !response
                .batch_item_failures
                .iter()
                .any(|f| f.item_identifier == id)
            {
                sqs.delete_message()
                    .queue_url(&queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    assert!(failures_seen >= 1);
    // The two good messages were sent once each; the poison one sits in the dead-letter queue.
    let subjects: Vec<String> = sent_emails_to(&w.email)
        .into_iter()
        .map(|m| m.subject)
        .collect();
    assert_eq!(subjects.len(), 2, "{subjects:?}");
    let dead = sqs
        .receive_message()
        .queue_url(&dlq)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let dead: Vec<&str> = dead.messages().iter().filter_map(|m| m.body()).collect();
    assert_eq!(dead, vec![bodies[1].as_str()]);
}
