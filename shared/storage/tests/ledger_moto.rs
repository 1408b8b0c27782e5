//! Ledger, transactions and outbox against moto (started by `make test`).

use messages::{Consumer, Envelope, Kind, Message};
use rules::{Bucket, Currency, EntryKind};
use storage::ledger::{self, LedgerEntry};
use storage::table::ItemExt;
use storage::{keys, outbox, testing, StoreError, Table, Tx};

fn earned(id: &str, amount: i64, at_ms: i64) -> LedgerEntry {
    LedgerEntry::new(
        id,
        "alice",
        "demo",
        Currency::USD,
        EntryKind::Earned,
        amount,
        None,
        at_ms,
        "sale",
        "test",
    )
    .unwrap()
}

fn marker(id: &str) -> storage::Item {
    Table::key_item(&keys::processed_event("test", id))
}

#[tokio::test]
async fn entry_and_balance_move_commit_together_once() {
    let t = testing::fresh_table().await.unwrap();
    let mut tx = Tx::new();
    tx.marker(marker("evt_1")).unwrap();
    ledger::post(&mut tx, &earned("e1", 2475, 1_000)).unwrap();
    ledger::post(&mut tx, &earned("e2", 495, 1_000)).unwrap();
    tx.commit(&t).await.unwrap();

    let b = ledger::balance(&t, "alice", "demo", Currency::USD)
        .await
        .unwrap();
    assert_eq!((b.pending, b.available, b.paid), (2970, 0, 0));

    // The same fact again: already done, and nothing moves.
    let mut tx = Tx::new();
    tx.marker(marker("evt_1")).unwrap();
    ledger::post(&mut tx, &earned("e3", 2475, 2_000)).unwrap();
    assert!(matches!(tx.commit(&t).await, Err(StoreError::AlreadyDone)));
    let b = ledger::balance(&t, "alice", "demo", Currency::USD)
        .await
        .unwrap();
    assert_eq!(b.pending, 2970);
    let entries = ledger::entries(&t, "alice", "demo", Currency::USD)
        .await
        .unwrap();
    assert_eq!(
        entries
            .iter()
            .map(|e| e.entry_id.as_str())
            .collect::<Vec<_>>(),
        vec!["e1", "e2"]
    );
}

#[tokio::test]
async fn a_failed_transaction_leaves_nothing_behind() {
    let t = testing::fresh_table().await.unwrap();
    let mut tx = Tx::new();
    ledger::post(&mut tx, &earned("e1", 100, 1)).unwrap();
    tx.commit(&t).await.unwrap();

    // A second transaction: a new entry, an outbox message, and a duplicate of e1 (fails).
    let mut tx = Tx::new();
    ledger::post(&mut tx, &earned("e2", 200, 2)).unwrap();
    let env = Envelope {
        id: "m1".into(),
        at_ms: 2,
        message: Message::CrmSyncPartner {
            partner_id: "alice".into(),
        },
    };
    outbox::enqueue(&mut tx, &env).unwrap();
    tx.put_new(Table::key_item(&earned("e1", 100, 1).key()), "dup")
        .unwrap();
    let err = tx.commit(&t).await.unwrap_err();
    assert!(
        matches!(err, StoreError::ConditionFailed { ref label } if label.starts_with("dup")),
        "{err:?}"
    );

    assert_eq!(
        ledger::balance(&t, "alice", "demo", Currency::USD)
            .await
            .unwrap()
            .pending,
        100
    );
    assert!(t.get(&earned("e2", 200, 2).key()).await.unwrap().is_none());
    assert!(t.get(&keys::outbox("m1")).await.unwrap().is_none());
}

#[tokio::test]
async fn concurrent_moves_of_one_balance_all_land() {
    let t = testing::fresh_table().await.unwrap();
    let futs = (0..12).map(|i| {
        let t = t.clone();
        async move {
            let mut tx = Tx::new();
            ledger::post(&mut tx, &earned(&format!("c{i}"), 100 + i, i)).unwrap();
            tx.commit(&t).await
        }
    });
    for r in futures::future::join_all(futs).await {
        r.unwrap();
    }
    let want: i64 = (0..12).map(|i| 100 + i).sum();
    assert_eq!(
        ledger::balance(&t, "alice", "demo", Currency::USD)
            .await
            .unwrap()
            .pending,
        want
    );
}

#[tokio::test]
async fn release_and_payable_index() {
    let t = testing::fresh_table().await.unwrap();
    let mut tx = Tx::new();
    ledger::post(&mut tx, &earned("e1", 12_000, 1)).unwrap();
    tx.commit(&t).await.unwrap();
    assert!(ledger::payable_balances(&t, "demo")
        .await
        .unwrap()
        .is_empty());

    let mut tx = Tx::new();
    let rel = LedgerEntry::new(
        "r1",
        "alice",
        "demo",
        Currency::USD,
        EntryKind::Released,
        12_000,
        None,
        5,
        "hold ended",
        "test",
    )
    .unwrap();
    ledger::post(&mut tx, &rel).unwrap();
    tx.commit(&t).await.unwrap();
    let payable = ledger::payable_balances(&t, "demo").await.unwrap();
    assert_eq!(payable.len(), 1);
    assert_eq!((payable[0].pending, payable[0].available), (0, 12_000));

    // forfeiting from pending is refused by the entry rules when the bucket is wrong
    assert!(LedgerEntry::new(
        "f",
        "alice",
        "demo",
        Currency::USD,
        EntryKind::Forfeited,
        1,
        Some(Bucket::Paid),
        6,
        "x",
        "t"
    )
    .is_err());
}

#[tokio::test]
async fn more_than_100_actions_is_refused_before_sending() {
    let t = testing::fresh_table().await.unwrap();
    let mut tx = Tx::new();
    for i in 0..101 {
        tx.put_new(
            Table::key_item(&storage::Key::new(format!("X#{i}"), "X")),
            "x",
        )
        .unwrap();
    }
    assert!(matches!(
        tx.commit(&t).await,
        Err(StoreError::InvalidTransaction(_))
    ));
    assert!(t
        .get(&storage::Key::new("X#0", "X"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn outbox_is_delivered_once_marked_and_swept() {
    let t = testing::fresh_table().await.unwrap();
    let config = testing::local_config().await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let q = testing::fresh_queue(&sqs).await.unwrap();

    for i in 0..13 {
        let mut tx = Tx::new();
        let env = Envelope {
            id: format!("crm:{i}"),
            at_ms: i,
            message: Message::CrmSyncPartner {
                partner_id: format!("p{i}"),
            },
        };
        outbox::enqueue(&mut tx, &env).unwrap();
        tx.commit(&t).await.unwrap();
    }
    // writing the same message id again is refused: the id is the fact's
    let mut tx = Tx::new();
    outbox::enqueue(
        &mut tx,
        &Envelope {
            id: "crm:0".into(),
            at_ms: 0,
            message: Message::CrmSyncPartner {
                partner_id: "p0".into(),
            },
        },
    )
    .unwrap();
    assert!(tx.commit(&t).await.is_err());

    assert_eq!(outbox::unsent(&t).await.unwrap().len(), 13);
    let routes = outbox::Routes::none().with_consumer(Consumer::CrmSync, &q);
    let swept = |r: outbox::SweepReport| r.get(&Kind::CrmSyncPartner).copied();
    assert_eq!(
        swept(outbox::sweep(&t, &sqs, &routes).await.unwrap()),
        Some(13)
    );
    assert!(outbox::unsent(&t).await.unwrap().is_empty());
    assert_eq!(
        swept(outbox::sweep(&t, &sqs, &routes).await.unwrap()),
        Some(0)
    );

    let mut got = vec![];
    for _ in 0..5 {
        let r = sqs
            .receive_message()
            .queue_url(&q)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in r.messages() {
            got.push(Envelope::from_json(m.body().unwrap()).unwrap().id);
        }
    }
    got.sort();
    let mut want: Vec<String> = (0..13).map(|i| format!("crm:{i}")).collect();
    want.sort();
    assert_eq!(got, want);
    let row = t.get(&keys::outbox("crm:3")).await.unwrap().unwrap();
    assert!(row.n("sent_ms").is_some());
    assert!(row.s(keys::GSI2PK).is_none());
}
