//! Outbox routing against moto (started by `make test`): each kind goes to its consumer's
//! queue; a kind without a route stays unsent, is sent nowhere, and costs the sweep no read.

use messages::{Consumer, Envelope, Kind, Message};
use storage::metrics::RequestCounter;
use storage::outbox::{self, Routes};
use storage::table::ItemExt;
use storage::{keys, testing, Table, Tx};

fn earned(i: i64) -> Envelope {
    Envelope {
        id: format!("commission-earned:demo:in_{i}:t1"),
        at_ms: 1_000 + i,
        message: Message::CommissionEarned {
            partner_id: "alice".into(),
            program_id: "demo".into(),
            commission_id: format!("demo:in_{i}:t1"),
            tier: 1,
            amount_minor: 100,
            currency: "USD".into(),
            available_at_ms: 2_000,
            product_id: None,
        },
    }
}

fn crm(i: i64) -> Envelope {
    Envelope {
        id: format!("crm:{i}"),
        at_ms: 1_000 + i,
        message: Message::CrmSyncPartner {
            partner_id: format!("p{i}"),
        },
    }
}

async fn enqueue(t: &Table, envs: &[Envelope]) {
    for e in envs {
        let mut tx = Tx::new();
        outbox::enqueue(&mut tx, e).expect("enqueue");
        tx.commit(t).await.expect("commit");
    }
}

/// Every message on the queue now (ids, sorted).
async fn drain(sqs: &aws_sdk_sqs::Client, q: &str) -> Vec<String> {
    let mut got = vec![];
    for _ in 0..4 {
        let r = sqs
            .receive_message()
            .queue_url(q)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("receive");
        for m in r.messages() {
            got.push(
                Envelope::from_json(m.body().unwrap_or_default())
                    .expect("envelope")
                    .id,
            );
        }
    }
    got.sort();
    got
}

#[tokio::test]
async fn a_routed_kind_is_delivered_and_marked_an_unrouted_one_stays_unsent() {
    let t = testing::fresh_table().await.expect("table");
    let sqs = aws_sdk_sqs::Client::new(&testing::local_config().await);
    let email = testing::fresh_queue(&sqs).await.expect("queue");
    let routes = Routes::none().with_consumer(Consumer::Email, &email);
    let envs = [earned(1), crm(1), earned(2)];
    enqueue(&t, &envs).await;

    let rows: Vec<_> = envs.iter().map(outbox::row_of).collect();
    let d = outbox::deliver_routed(&t, &sqs, &routes, &rows)
        .await
        .expect("deliver");
    assert_eq!((d.sent, d.unrouted), (2, 1));

    // The e-mail queue got the two commission messages, and only them.
    assert_eq!(
        drain(&sqs, &email).await,
        vec![
            "commission-earned:demo:in_1:t1".to_string(),
            "commission-earned:demo:in_2:t1".to_string()
        ]
    );
    let sent = t
        .get(&keys::outbox("commission-earned:demo:in_1:t1"))
        .await
        .expect("get")
        .expect("row");
    assert!(sent.n("sent_ms").is_some());
    assert!(sent.s(keys::GSI2PK).is_none());

    // The CRM message stays unsent, in its kind's partition of the unsent index.
    let left = t
        .get(&keys::outbox("crm:1"))
        .await
        .expect("get")
        .expect("row");
    assert!(left.n("sent_ms").is_none());
    assert_eq!(
        left.s(keys::GSI2PK),
        Some(keys::outbox_unsent_pk("crm_sync_partner", keys::shard_of("crm:1")).as_str())
    );
    let unsent = outbox::unsent(&t).await.expect("unsent");
    assert_eq!(
        unsent
            .iter()
            .map(|r| r.message_id.as_str())
            .collect::<Vec<_>>(),
        vec!["crm:1"]
    );
    assert_eq!(
        outbox::unsent_of_kind(&t, Kind::CrmSyncPartner)
            .await
            .expect("unsent")
            .len(),
        1
    );

    // Delivering again sends nothing twice (the rows are read back unsent only).
    let again = outbox::unsent_by_id(&t, &envs.iter().map(|e| e.id.clone()).collect::<Vec<_>>())
        .await
        .expect("by id");
    let d = outbox::deliver_routed(&t, &sqs, &routes, &again)
        .await
        .expect("deliver");
    assert_eq!((d.sent, d.unrouted), (0, 1));
    assert!(drain(&sqs, &email).await.is_empty());
}

#[tokio::test]
async fn the_sweep_delivers_only_routed_kinds_and_reads_nothing_without_routes() {
    let config = testing::local_config().await;
    let counter = RequestCounter::new();
    let (ddb, sqs) = counter.clients(&config);
    let name = testing::unique_name("outbox");
    storage::schema::table_definition(storage::schema::TEMPLATE)
        .expect("template")
        .create(&ddb, &name)
        .await
        .expect("table");
    let t = Table::new(ddb, name);
    let email = testing::fresh_queue(&sqs).await.expect("queue");
    let mut envs: Vec<Envelope> = (0..12).map(earned).collect();
    envs.extend((0..30).map(crm));
    enqueue(&t, &envs).await;

    // No consumer configured: the sweep sends nothing and makes no request at all.
    counter.reset();
    assert!(outbox::sweep(&t, &sqs, &Routes::none())
        .await
        .expect("sweep")
        .is_empty());
    assert_eq!(counter.total(), 0, "{:?}", counter.snapshot());

    // Only e-mails routed: the e-mail kinds' partitions are read (one query per shard each),
    // never the CRM kind's, however many of its messages wait.
    let routes = Routes::none().with_consumer(Consumer::Email, &email);
    counter.reset();
    let report = outbox::sweep(&t, &sqs, &routes).await.expect("sweep");
    assert_eq!(
        report.into_iter().collect::<Vec<_>>(),
        vec![
            (Kind::CommissionEarned, 12),
            (Kind::CommissionReversed, 0),
            (Kind::PartnerInvite, 0),
            (Kind::PayoutWaiting, 0),
            (Kind::ForfeitWarning, 0),
            (Kind::Forfeited, 0),
            (Kind::PayoutSent, 0),
            (Kind::PayoutFailed, 0),
            (Kind::LevelPromoted, 0),
        ]
    );
    let queries = counter
        .snapshot()
        .get("DynamoDB.Query")
        .copied()
        .unwrap_or(0);
    let email_kinds = Consumer::Email.kinds().count() as u64;
    assert_eq!(queries, email_kinds * u64::from(keys::DUE_SHARDS));
    let mut want: Vec<String> = (0..12).map(|i| earned(i).id).collect();
    want.sort();
    assert_eq!(drain(&sqs, &email).await, want);
    assert_eq!(
        outbox::unsent_of_kind(&t, Kind::CrmSyncPartner)
            .await
            .expect("unsent")
            .len(),
        30
    );
    assert!(outbox::unsent_of_kind(&t, Kind::CommissionEarned)
        .await
        .expect("unsent")
        .is_empty());

    // A second sweep finds nothing left to send.
    let report = outbox::sweep(&t, &sqs, &routes).await.expect("sweep");
    assert_eq!(report.get(&Kind::CommissionEarned), Some(&0));
    assert!(drain(&sqs, &email).await.is_empty());
}

#[tokio::test]
async fn a_failed_send_leaves_the_message_unsent_for_the_next_sweep() {
    let t = testing::fresh_table().await.expect("table");
    let sqs = aws_sdk_sqs::Client::new(&testing::local_config().await);
    let email = testing::fresh_queue(&sqs).await.expect("queue");
    let missing = format!("{email}-not-created-yet");
    enqueue(&t, &[earned(1)]).await;

    let broken = Routes::none().with_consumer(Consumer::Email, &missing);
    assert!(outbox::sweep(&t, &sqs, &broken).await.is_err());
    assert_eq!(outbox::unsent(&t).await.expect("unsent").len(), 1);

    let fixed = Routes::none().with_consumer(Consumer::Email, &email);
    let report = outbox::sweep(&t, &sqs, &fixed).await.expect("sweep");
    assert_eq!(report.get(&Kind::CommissionEarned), Some(&1));
    assert_eq!(drain(&sqs, &email).await, vec![earned(1).id]);
    assert!(outbox::unsent(&t).await.expect("unsent").is_empty());
}
