//! Requests per `invoice.paid`, per refund or dispute event and per run of each scheduled job
//! (DynamoDB and SQS), counted by an SDK interceptor against moto.
//! Run: `make bench-requests` (starts moto). Prints a markdown table for docs/performance.md.

use engine::attribution::{BindRequest, BindSource};
use engine::sales::{invoice_paid, money_back, MoneyBack, PaidInvoice};
use engine::Engine;
use rules::plan::InvoicePayment;
use rules::plan::{InvoiceFacts, SaleLine};
use rules::refund::{Observation, RefundStatus};
use rules::{
    Currency, Membership, PartnerStatus, PayoutMethod, Program, ProgramProduct, TaxInfoState,
};
use storage::charges::ChargeFact;
use storage::links::{Link, LinkStatus};
use storage::metrics::RequestCounter;
use storage::partners::Partner;
use storage::{links, partners, programs, schema, testing, Table};

const T0: i64 = 1_767_614_400_000;
const DAY: i64 = 86_400_000;

fn invoice(event: &str, id: &str, customer: &str, at: i64) -> PaidInvoice {
    PaidInvoice {
        event_id: event.into(),
        source: "stripe".into(),
        customer_key: customer.into(),
        customer_email: Some(format!("{customer}@customers.test")),
        subscription_id: Some("sub_1".into()),
        promotion_codes: vec![],
        facts: InvoiceFacts {
            invoice_id: id.into(),
            paid_at: chrono::DateTime::from_timestamp_millis(at).expect("time"),
            lines: vec![
                SaleLine::new("prod_demo", rules::Money::new(9900, Currency::USD)),
                SaleLine {
                    metered: true,
                    ..SaleLine::new("prod_demo", rules::Money::new(1500, Currency::USD))
                },
            ],
            currency: Currency::USD,
            payment: Some(InvoicePayment {
                charge_key: Some(format!("ch_{id}")),
                payment_intent: Some(format!("pi_{id}")),
                amount_paid: 11_400,
                total: 11_400,
            }),
        },
    }
}

/// A `refund.*` event of the charge of invoice `invoice`.
fn refund(event: &str, refund_id: &str, invoice: &str, amount: i64, at: i64) -> MoneyBack {
    MoneyBack {
        event_id: event.into(),
        source: "stripe".into(),
        at_ms: at,
        charge_key: format!("ch_{invoice}"),
        payment_intent: Some(format!("pi_{invoice}")),
        invoice_id: None,
        customer_key: None,
        currency: Some(Currency::USD),
        fact: ChargeFact::Refund(Observation {
            id: refund_id.into(),
            amount,
            status: RefundStatus::Succeeded,
            at_ms: at,
            event_id: event.into(),
        }),
    }
}

#[tokio::main]
async fn main() {
    let config = testing::local_config().await;
    let counter = RequestCounter::new();
    let (ddb, sqs) = counter.clients(&config);
    let name = testing::unique_name("bench");
    schema::table_definition(schema::TEMPLATE)
        .expect("template")
        .create(&ddb, &name)
        .await
        .expect("table");
    let queue = testing::fresh_queue(&sqs).await.expect("queue");
    let table = Table::new(ddb, name);
    let keys = tracking::KeyRing::from_secrets("bench-tracking-key-0123456789", None).expect("key");
    // As the functions build it: programs cached for the warm process.
    let engine = Engine::new(table.clone(), keys)
        .with_outbox(sqs.clone(), email_route(queue.clone()))
        .with_program_cache(engine::PROGRAM_CACHE_TTL);

    let program: Program = serde_json::from_value(serde_json::json!({
        "id": "demo", "name": "demo", "tiers": "two",
        "plan": {"reward": {"type": "percentage", "rate": "0.25"}, "tier2": {"type": "percentage", "rate": "0.05"}},
        "default_destination": "https://example.com/pricing"
    }))
    .expect("program");
    table
        .put(programs::program_item(&program).expect("item"))
        .await
        .expect("put");
    table
        .put(programs::product_item(&ProgramProduct::new("demo", "prod_demo")).expect("item"))
        .await
        .expect("put");
    for (id, recruiter) in [("alice", None), ("bob", Some("alice"))] {
        let p = Partner {
            partner_id: id.into(),
            email: format!("{id}@p.test"),
            name: id.into(),
            status: PartnerStatus::Active,
            payout_method: PayoutMethod::None,
            tax_info: TaxInfoState::Approved,
        };
        table
            .put(partners::partner_item(&p).expect("item"))
            .await
            .expect("put");
        let m = Membership {
            partner_id: id.into(),
            program_id: "demo".into(),
            level: 0,
            recruiter: recruiter.map(str::to_string),
        };
        table
            .put(partners::membership_item(&m).expect("item"))
            .await
            .expect("put");
        let l = Link {
            code: id.into(),
            partner_id: id.into(),
            program_id: "demo".into(),
            status: LinkStatus::Active,
            destination: None,
        };
        table
            .put(links::link_item(&l).expect("item"))
            .await
            .expect("put");
    }
    let bind = |c: &str| BindRequest {
        program_id: None,
        customer_key: c.into(),
        email: None,
        source: BindSource::Code("bob".into()),
        at_ms: T0,
        source_event: "bench".into(),
    };
    for c in ["cus_1", "cus_2"] {
        engine::attribution::bind(&engine, bind(c))
            .await
            .expect("bind");
    }

    let mut rows = vec![];
    let mut measure = |label: &str, c: &RequestCounter| {
        let snap = c.snapshot();
        let ddb: u64 = snap
            .iter()
            .filter(|(k, _)| k.to_lowercase().starts_with("dynamodb"))
            .map(|(_, v)| v)
            .sum();
        let sqs: u64 = snap
            .iter()
            .filter(|(k, _)| k.to_lowercase().starts_with("sqs"))
            .map(|(_, v)| v)
            .sum();
        let detail = snap
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(format!("| {label} | {ddb} | {sqs} | {detail} |"));
        c.reset();
    };
    counter.reset();
    invoice_paid(&engine, invoice("evt_1", "in_1", "cus_1", T0 + DAY))
        .await
        .expect("paid");
    measure(
        "first sale, 2-tier, notify on (2 commissions, 2 outbox messages), programs not cached yet",
        &counter,
    );
    invoice_paid(&engine, invoice("evt_w", "in_w", "cus_2", T0 + DAY))
        .await
        .expect("paid");
    measure(
        "first sale of another customer, warm function (programs cached)",
        &counter,
    );
    invoice_paid(&engine, invoice("evt_1", "in_1", "cus_1", T0 + DAY))
        .await
        .expect("paid");
    measure("duplicate delivery of the same event", &counter);
    invoice_paid(&engine, invoice("evt_1b", "in_1", "cus_1", T0 + DAY))
        .await
        .expect("paid");
    measure("same invoice in a new event", &counter);
    invoice_paid(&engine, invoice("evt_2", "in_2", "cus_1", T0 + 31 * DAY))
        .await
        .expect("paid");
    measure("renewal (second invoice of the customer)", &counter);
    invoice_paid(&engine, invoice("evt_3", "in_3", "cus_unbound", T0 + DAY))
        .await
        .expect("paid");
    measure("customer not bound (kept as unattributed)", &counter);
    // The sale feed's sale with a click id: the binding (at the sale's time), then the booking.
    let click = engine
        .keys
        .new_click_id("bob", T0, [9, 9, 9, 9, 9, 9])
        .expect("click id");
    engine::attribution::bind(
        &engine,
        BindRequest {
            source: BindSource::ClickId(click),
            at_ms: T0 + DAY,
            ..bind("cus_feed")
        },
    )
    .await
    .expect("bind");
    invoice_paid(
        &engine,
        invoice("evt_f", "billing:1001", "cus_feed", T0 + DAY),
    )
    .await
    .expect("paid");
    measure(
        "sale feed: a first sale carrying its click id (bind, then book; warm)",
        &counter,
    );

    // Money going back (refund.created / charge.refunded / charge.dispute.*: one path).
    money_back(
        &engine,
        refund("evt_r1", "re_1", "in_1", 5_000, T0 + 3 * DAY),
    )
    .await
    .expect("refund");
    measure(
        "refund of a 2-tier sale (2 commissions reversed, 2 outbox messages)",
        &counter,
    );
    money_back(
        &engine,
        refund("evt_r1", "re_1", "in_1", 5_000, T0 + 3 * DAY),
    )
    .await
    .expect("refund");
    measure("duplicate delivery of the same refund event", &counter);
    money_back(
        &engine,
        refund("evt_r2", "re_2", "in_1", 1_000, T0 + 4 * DAY),
    )
    .await
    .expect("refund");
    measure("a second refund of the same charge", &counter);
    money_back(
        &engine,
        refund("evt_r4", "re_4", "in_4", 2_000, T0 + 2 * DAY),
    )
    .await
    .expect("refund");
    measure("refund before its sale (parked on the charge)", &counter);
    invoice_paid(&engine, invoice("evt_4", "in_4", "cus_2", T0 + 40 * DAY))
        .await
        .expect("paid");
    measure(
        "renewal whose charge was refunded first (booked, refund applied)",
        &counter,
    );

    // The scheduled jobs (functions/housekeeping), as each run calls them.
    engine::release::release_due(&engine, T0 + 2 * DAY, "bench")
        .await
        .expect("release");
    measure("release-holds, nothing due", &counter);
    let released = engine::release::release_due(&engine, T0 + 200 * DAY, "bench")
        .await
        .expect("release");
    measure(
        &format!("release-holds, {} commissions due", released.len()),
        &counter,
    );
    storage::outbox::sweep(&table, &sqs, &storage::outbox::Routes::none())
        .await
        .expect("sweep");
    measure("outbox-sweep, no consumer queue configured", &counter);
    storage::outbox::sweep(&table, &sqs, &email_route(queue))
        .await
        .expect("sweep");
    measure(
        "outbox-sweep, e-mail kinds routed, nothing unsent",
        &counter,
    );
    engine::sales::sweep_waiting_sales(&engine, T0 + DAY)
        .await
        .expect("sweep");
    measure("housekeeping (waiting sales), 1 sale waiting", &counter);

    println!("| operation | DynamoDB requests | SQS requests | by operation |");
    println!("|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
}

/// Commission e-mails (and invitations) to this queue, as `EMAIL_QUEUE_URL` does.
fn email_route(queue_url: impl Into<String>) -> storage::outbox::Routes {
    storage::outbox::Routes::none().with_consumer(messages::Consumer::Email, queue_url)
}
