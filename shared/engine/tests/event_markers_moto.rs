//! The processed-event markers against moto: the per-(invoice, program) marker
//! (`INVOICEDONE#…`) inside each booking transaction is the authority; the per-event marker
//! (`EVENT#stripe#…`) is a shortcut written after every program is booked. A crash between the
//! two (reproduced exactly by deleting the event marker, or by an invoice whose second program
//! was not booked yet) and a redelivery book nothing twice and send no message twice.

use engine::sales::{invoice_paid, PaidInvoice, SaleOutcome, STRIPE_SOURCE};
use engine::Engine;
use rules::program::Duration;
use storage::{events, keys, Table, Tx};
use testkit::engine::*;

struct Stack {
    w: World,
    sqs: aws_sdk_sqs::Client,
    queue: String,
}

/// Programs `demo` (prod_demo) and `pro` (prod_pro, only when `pro_product`), cus_1 bound to
/// alice in both, messages to a fresh queue.
async fn stack(pro_product: bool) -> Stack {
    let w = World::new().await;
    let config = storage::testing::local_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = storage::testing::fresh_queue(&sqs).await.expect("queue");
    let w = World {
        engine: w
            .engine
            .with_outbox(sqs.clone(), email_route(queue.clone())),
    };
    let demo = program("demo", pct("0.25"), Duration::Lifetime, None);
    let pro = program("pro", pct("0.10"), Duration::Lifetime, None);
    w.seed(&demo, &["prod_demo"]).await;
    let pro_products: &[&str] = if pro_product { &["prod_pro"] } else { &[] };
    w.seed(&pro, pro_products).await;
    for code in ["alice", "alice-pro"] {
        w.bind(
            "cus_1",
            None,
            engine::attribution::BindSource::Code(code.into()),
            T0,
        )
        .await;
    }
    Stack { w, sqs, queue }
}

fn sale() -> PaidInvoice {
    invoice(
        "evt_1",
        "in_1",
        "cus_1",
        T0 + DAY,
        vec![line("prod_demo", 9_900), line("prod_pro", 20_000)],
    )
}

/// The crash after the booking transactions and before the event marker.
async fn crash_before_the_event_marker(t: &Table) {
    let mut tx = Tx::new();
    tx.delete(
        &keys::processed_event(STRIPE_SOURCE, "evt_1"),
        "event marker",
    )
    .expect("delete");
    tx.commit(t).await.expect("crash");
}

/// Every message the queue holds (ids), draining it.
async fn received(s: &Stack) -> Vec<String> {
    let mut ids = vec![];
    for _ in 0..3 {
        let r = s
            .sqs
            .receive_message()
            .queue_url(&s.queue)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        for m in r.messages() {
            let env = messages::Envelope::from_json(m.body().unwrap_or_default()).expect("env");
            ids.push(env.id);
        }
    }
    ids.sort();
    ids
}

/// Per program: alice's entries (kind, amount) and balance (pending, available, paid).
type Books = Vec<(String, Vec<(String, i64)>, (i64, i64, i64))>;

async fn books(s: &Stack) -> Books {
    let mut out = vec![];
    for p in ["demo", "pro"] {
        out.push((
            p.to_string(),
            s.w.entries("alice", p).await,
            s.w.balance("alice", p).await,
        ));
    }
    out
}

fn booked_books() -> Books {
    vec![
        ("demo".into(), vec![("earned".into(), 2_475)], (2_475, 0, 0)),
        ("pro".into(), vec![("earned".into(), 2_000)], (2_000, 0, 0)),
    ]
}

/// Each program booked once, each message sent once.
async fn assert_booked_and_sent_once(s: &Stack) {
    assert_eq!(books(s).await, booked_books());
    assert_eq!(received(s).await, both_messages(), "each message sent once");
}

fn both_messages() -> Vec<String> {
    vec![
        "commission-earned:demo:in_1:t1".to_string(),
        "commission-earned:pro:in_1:t1".to_string(),
    ]
}

#[tokio::test]
async fn a_crash_before_the_event_marker_books_nothing_twice() {
    let s = stack(true).await;
    let first = invoice_paid(&s.w.engine, sale()).await.expect("first");
    assert!(
        matches!(&first, SaleOutcome::Booked { program_ids, .. } if program_ids.len() == 2),
        "{first:?}"
    );
    crash_before_the_event_marker(s.w.t()).await;

    let again = invoice_paid(&s.w.engine, sale()).await.expect("redelivery");
    assert!(
        matches!(&again, SaleOutcome::Booked { commission_ids, .. } if commission_ids.is_empty()),
        "the redelivery writes no commission: {again:?}"
    );
    assert_eq!(books(&s).await, booked_books());
    // The redelivery wrote the shortcut, naming the messages of both programs (it may name the
    // tier-2 ids a sale could have enqueued; only those that exist are ever sent).
    let (marker, _) = events::event_and_subscription(s.w.t(), STRIPE_SOURCE, "evt_1", None)
        .await
        .expect("read");
    let named = marker.expect("event marker").outbox_ids;
    for id in both_messages() {
        assert!(named.contains(&id), "{id} in {named:?}");
    }
    assert_eq!(
        invoice_paid(&s.w.engine, sale()).await.expect("third"),
        SaleOutcome::AlreadyProcessed
    );
    assert_booked_and_sent_once(&s).await;
}

#[tokio::test]
async fn a_crash_before_the_messages_were_sent_sends_them_once_on_redelivery() {
    let s = stack(true).await;
    // The process dies after the transactions: its messages wait in the outbox, unsent.
    let no_sender = Engine::new(s.w.t().clone(), s.w.engine.keys.clone());
    invoice_paid(&no_sender, sale()).await.expect("first");
    crash_before_the_event_marker(s.w.t()).await;
    assert_eq!(
        storage::outbox::unsent(s.w.t())
            .await
            .expect("unsent")
            .len(),
        2
    );

    invoice_paid(&s.w.engine, sale()).await.expect("redelivery");
    invoice_paid(&s.w.engine, sale()).await.expect("third");
    assert!(storage::outbox::unsent(s.w.t())
        .await
        .expect("unsent")
        .is_empty());
    assert_booked_and_sent_once(&s).await;
}

#[tokio::test]
async fn a_crash_between_the_two_programs_books_the_second_once() {
    // The first delivery books `demo` only: `pro` does not list prod_pro yet. With its event
    // marker deleted this is exactly the state of a crash after demo's booking transaction and
    // before pro's.
    let s = stack(false).await;
    let first = invoice_paid(&s.w.engine, sale()).await.expect("first");
    assert!(
        matches!(&first, SaleOutcome::Booked { program_ids, .. } if program_ids == &["demo".to_string()]),
        "{first:?}"
    );
    crash_before_the_event_marker(s.w.t()).await;
    s.w.t()
        .put(
            storage::programs::product_item(&rules::ProgramProduct::new("pro", "prod_pro"))
                .expect("product item"),
        )
        .await
        .expect("put product");

    // The retry runs in a new process (a fresh catalog).
    let restarted = Engine::new(s.w.t().clone(), s.w.engine.keys.clone())
        .with_outbox(s.sqs.clone(), email_route(s.queue.clone()));
    let again = invoice_paid(&restarted, sale()).await.expect("redelivery");
    match &again {
        SaleOutcome::Booked {
            program_ids,
            commission_ids,
        } => {
            assert_eq!(program_ids, &["demo".to_string(), "pro".to_string()]);
            assert_eq!(
                commission_ids,
                &["pro:in_1:t1".to_string()],
                "only pro books"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        invoice_paid(&restarted, sale()).await.expect("third"),
        SaleOutcome::AlreadyProcessed
    );
    assert_booked_and_sent_once(&s).await;
}

/// Commission e-mails (and invitations) to this queue, as `EMAIL_QUEUE_URL` does.
fn email_route(queue_url: impl Into<String>) -> storage::outbox::Routes {
    storage::outbox::Routes::none().with_consumer(messages::Consumer::Email, queue_url)
}
