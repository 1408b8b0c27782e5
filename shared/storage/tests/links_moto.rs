//! Links and clicks against moto.

use storage::links::{self, Click, ClickOutcome, Link, LinkStatus};
use storage::{testing, Table};

const HOUR: i64 = 3_600_000;
const T0: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

fn click(id: &str, visitor: &str, at_ms: i64) -> Click {
    Click {
        click_id: id.into(),
        link_code: "alice".into(),
        partner_id: "alice".into(),
        program_id: "demo".into(),
        visitor_id: visitor.into(),
        sub_id: None,
        at_ms,
    }
}

async fn table_with_link() -> Table {
    let t = testing::fresh_table().await.unwrap();
    let l = Link {
        code: "alice".into(),
        partner_id: "alice".into(),
        program_id: "demo".into(),
        status: LinkStatus::Active,
        destination: None,
    };
    t.put(links::link_item(&l).unwrap()).await.unwrap();
    t
}

#[tokio::test]
async fn link_by_code_and_partner_links() {
    let t = table_with_link().await;
    let l = links::get_link(&t, "alice").await.unwrap().unwrap();
    assert_eq!(l.partner_id, "alice");
    assert!(links::get_link(&t, "nobody").await.unwrap().is_none());
    assert!(links::get_link(&t, "bad#code").await.unwrap().is_none());
    assert_eq!(links::partner_links(&t, "alice").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_repeat_within_the_hour_counts_once_and_returns_the_original() {
    let t = table_with_link().await;
    assert_eq!(
        links::record_click(&t, &click("c1", "v1", T0), "v1", HOUR, 60)
            .await
            .unwrap(),
        ClickOutcome::Counted
    );
    let again = links::record_click(&t, &click("c2", "v1", T0 + HOUR - 1), "v1", HOUR, 60)
        .await
        .unwrap();
    assert_eq!(
        again,
        ClickOutcome::Repeat {
            original_click_id: "c1".into()
        }
    );
    assert!(links::get_click(&t, "c2").await.unwrap().is_none());
    // another visitor counts
    assert_eq!(
        links::record_click(&t, &click("c3", "v2", T0 + 5), "v2", HOUR, 60)
            .await
            .unwrap(),
        ClickOutcome::Counted
    );
    // an hour later the same visitor counts again
    assert_eq!(
        links::record_click(&t, &click("c4", "v1", T0 + HOUR), "v1", HOUR, 60)
            .await
            .unwrap(),
        ClickOutcome::Counted
    );

    let v1: Vec<_> = links::visitor_clicks(&t, "v1")
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.click_id)
        .collect();
    assert_eq!(v1, vec!["c1", "c4"]);
    let got = links::get_click(&t, "c1").await.unwrap().unwrap();
    assert_eq!(got.at_ms, T0);
    assert_eq!(
        links::daily_clicks(&t, "alice", "2026-01-01", "2026-01-01")
            .await
            .unwrap(),
        vec![("2026-01-01".to_string(), 3)]
    );
}

#[tokio::test]
async fn concurrent_repeats_count_once() {
    let t = table_with_link().await;
    let futs = (0..8).map(|i| {
        let t = t.clone();
        async move {
            links::record_click(&t, &click(&format!("k{i}"), "v9", T0 + i), "v9", HOUR, 60).await
        }
    });
    let results: Vec<_> = futures::future::join_all(futs)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        results
            .iter()
            .filter(|r| **r == ClickOutcome::Counted)
            .count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        links::daily_clicks(&t, "alice", "2026-01-01", "2026-01-01")
            .await
            .unwrap()[0]
            .1,
        1
    );
}
