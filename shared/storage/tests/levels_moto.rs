//! A partner's level sales and levels against moto: business-time order whatever the write
//! order, a from-time listing, the version every recomputation meets on, and the re-pricing
//! marker cleared only by whoever saw the latest version.

use chrono::DateTime;
use rules::{Currency, LevelChange, LevelHistory, Money, PartnerSale};
use storage::partners::{self, PartnerLevels};
use storage::{testing, StoreError, Tx};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_767_614_400_000;

fn sale(customer: &str, invoice: &str, at_ms: i64) -> PartnerSale {
    PartnerSale {
        customer_id: customer.into(),
        invoice_id: invoice.into(),
        paid_at: DateTime::from_timestamp_millis(at_ms).unwrap(),
        revenue: Money::new(9_900, Currency::USD),
    }
}

fn levels(version: u64, reprice_from_ms: Option<i64>) -> PartnerLevels {
    let history = LevelHistory::from_changes([LevelChange {
        level: 1,
        effective_after: DateTime::from_timestamp_millis(T0 + 2 * DAY).unwrap(),
    }]);
    PartnerLevels {
        partner_id: "alice".into(),
        program_id: "demo".into(),
        level: history.current_level(),
        level_history: history,
        version,
        reprice_from_ms,
    }
}

async fn commit(t: &storage::Table, f: impl FnOnce(&mut Tx)) -> Result<(), StoreError> {
    let mut tx = Tx::new();
    f(&mut tx);
    tx.commit(t).await
}

#[tokio::test]
async fn level_sales_come_back_in_business_time_order() {
    let t = testing::fresh_table().await.unwrap();
    let written = [
        sale("cus_3", "in_3", T0 + 3 * DAY),
        sale("cus_1", "in_1", T0 + DAY),
        sale("cus_2", "in_2", T0 + 2 * DAY),
    ];
    for s in &written {
        commit(&t, |tx| {
            partners::put_level_sale(tx, "alice", "demo", s).unwrap();
        })
        .await
        .unwrap();
    }
    // A repeat writes the same item again; another program's sale is not listed.
    commit(&t, |tx| {
        partners::put_level_sale(tx, "alice", "demo", &written[0]).unwrap();
        partners::put_level_sale(tx, "alice", "demo2", &written[1]).unwrap();
    })
    .await
    .unwrap();
    let all = partners::level_sales(&t, "alice", "demo").await.unwrap();
    let ids: Vec<&str> = all.iter().map(|s| s.invoice_id.as_str()).collect();
    assert_eq!(ids, ["in_1", "in_2", "in_3"]);
    assert_eq!(all[0], written[1]);
    let later = partners::level_sales_from(&t, "alice", "demo", T0 + 2 * DAY)
        .await
        .unwrap();
    let customers: Vec<&str> = later.iter().map(|s| s.customer_id.as_str()).collect();
    assert_eq!(customers, ["cus_2", "cus_3"]);
}

#[tokio::test]
async fn levels_are_written_at_the_version_read_and_the_marker_cleared_at_the_latest() {
    let t = testing::fresh_table().await.unwrap();
    assert_eq!(
        partners::partner_levels(&t, "alice", "demo").await.unwrap(),
        None
    );
    commit(&t, |tx| {
        partners::put_partner_levels(tx, &levels(1, Some(T0)), 0).unwrap();
    })
    .await
    .unwrap();
    // A second writer that read "nothing stored" loses and must read again.
    let lost = commit(&t, |tx| {
        partners::put_partner_levels(tx, &levels(1, None), 0).unwrap();
    })
    .await;
    assert!(
        matches!(lost, Err(StoreError::ConditionFailed { .. })),
        "{lost:?}"
    );
    commit(&t, |tx| {
        partners::put_partner_levels(tx, &levels(2, Some(T0)), 1).unwrap();
    })
    .await
    .unwrap();
    let stale = commit(&t, |tx| {
        partners::put_partner_levels(tx, &levels(2, None), 1).unwrap();
    })
    .await;
    assert!(matches!(stale, Err(StoreError::ConditionFailed { .. })));
    // Whoever saw version 1 leaves the marker to whoever wrote version 2.
    assert!(!partners::clear_level_reprice(&t, "alice", "demo", 1)
        .await
        .unwrap());
    assert!(partners::clear_level_reprice(&t, "alice", "demo", 2)
        .await
        .unwrap());
    let stored = partners::partner_levels(&t, "alice", "demo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, levels(2, None));
}
