//! Program files against moto: the demo seed applies, re-applying changes nothing, bad files are
//! refused before anything is written, and the views answer.

use partnerctl::{apply, show, Format};
use storage::testing;

const DEMO: &str = include_str!("../../dev/demo.yaml");

#[tokio::test]
async fn demo_applies_once_and_reapplying_changes_nothing() {
    let t = testing::fresh_table().await.unwrap();
    let first = apply::apply(&t, apply::parse(DEMO).unwrap()).await.unwrap();
    assert!(first.created.len() >= 10, "{first:?}");
    assert!(first.updated.is_empty());
    let again = apply::apply(&t, apply::parse(DEMO).unwrap()).await.unwrap();
    assert!(
        again.created.is_empty() && again.updated.is_empty(),
        "{again:?}"
    );
    assert_eq!(again.unchanged, first.created.len());

    let p = storage::programs::get_program(&t, "demo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.cookie_days, p.hold_days), (60, 90));
    assert_eq!(p.tiers, rules::Tiers::Two);
    assert_eq!(
        storage::programs::programs_of_product(&t, "prod_demo")
            .await
            .unwrap(),
        vec!["demo".to_string()]
    );
    assert_eq!(
        storage::programs::program_by_tracking_key(&t, "local-tracking-key")
            .await
            .unwrap()
            .as_deref(),
        Some("demo")
    );
    let bob = storage::partners::get_membership(&t, "bob", "demo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob.membership.recruiter.as_deref(), Some("alice"));
    assert_eq!(
        storage::links::get_link(&t, "bob")
            .await
            .unwrap()
            .unwrap()
            .partner_id,
        "bob"
    );
    assert_eq!(
        storage::partners::partner_by_email(&t, "alice@example.com")
            .await
            .unwrap()
            .unwrap()
            .partner_id,
        "alice"
    );

    // a change is an update, and only of what changed
    let changed = DEMO.replace("cookie_days: 60", "cookie_days: 30");
    let r = apply::apply(&t, apply::parse(&changed).unwrap())
        .await
        .unwrap();
    assert_eq!(r.updated, vec!["program demo".to_string()]);
}

#[test]
fn bad_files_are_refused_with_a_reason() {
    let cases = [
        (DEMO.replace("rate: \"0.25\"", "rate: \"1.5\""), "rate"),
        (
            DEMO.replace("cookie_days: 60", "cookie_dayz: 60"),
            "cookie_dayz",
        ),
        (
            DEMO.replace("recruiter: alice", "recruiter: nobody"),
            "recruiter",
        ),
        (
            DEMO.replace("links: [bob]", "links: [alice]"),
            "declared twice",
        ),
        (
            DEMO.replace("email: bob@example.com", "email: alice@example.com"),
            "used by another partner",
        ),
        (
            DEMO.replace("links: [bob]", "links: [\"b#b\"]"),
            "link code",
        ),
    ];
    for (text, want) in cases {
        let err = apply::parse(&text).unwrap_err().to_string();
        assert!(err.contains(want), "{want}: {err}");
    }
}

#[tokio::test]
async fn views_answer_in_table_and_json() {
    let t = testing::fresh_table().await.unwrap();
    apply::apply(&t, apply::parse(DEMO).unwrap()).await.unwrap();
    let out = show::partner(&t, Format::Table, "bob").await.unwrap();
    assert!(out.contains("recruited by alice"), "{out}");
    let json = show::partner(&t, Format::Json, "bob").await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v["balances"].as_array().unwrap().is_empty());
    let out = show::customer(&t, Format::Table, "demo", "cus_nobody")
        .await
        .unwrap();
    assert!(out.contains("not bound"), "{out}");
    assert!(show::flags(&t, Format::Json, "demo").await.unwrap().trim() == "[]");
    assert!(show::unattributed(&t, Format::Table, None, None, None)
        .await
        .is_err());
}

/// A program's versions as stored: (effective_from ms, tier-1 rate, products).
async fn versions(t: &storage::Table) -> Vec<(i64, String, Vec<String>)> {
    let h = storage::programs::program_versions(t, "demo")
        .await
        .unwrap()
        .unwrap();
    h.all()
        .iter()
        .map(|v| {
            (
                v.effective_from.timestamp_millis(),
                v.program
                    .plan
                    .reward
                    .percentage_rate()
                    .map(|r| r.to_string())
                    .unwrap_or_default(),
                v.products.iter().map(|p| p.product_id.clone()).collect(),
            )
        })
        .collect()
}

/// A re-apply with a new rate writes a new version, effective from the time of applying; an
/// identical re-apply writes nothing; an edit effective before the time of applying (it could
/// re-price booked invoices) is refused before anything is written.
#[tokio::test]
async fn a_changed_program_is_a_new_version_and_an_identical_one_writes_nothing() {
    let clock = storage::ManualClock::at(1_767_614_400_000);
    let t = testing::fresh_table()
        .await
        .unwrap()
        .with_clock(std::sync::Arc::new(clock.clone()));
    let first = apply::apply(&t, apply::parse(DEMO).unwrap()).await.unwrap();
    assert!(
        first
            .created
            .contains(&"version of demo from 2026-01-05T12:00:00+00:00".to_string()),
        "{first:?}"
    );
    let v1 = vec![(
        1_767_614_400_000,
        "0.25".to_string(),
        vec!["prod_demo".to_string()],
    )];
    assert_eq!(versions(&t).await, v1);

    // Identical: nothing written, the version unchanged, later too.
    clock.advance(std::time::Duration::from_secs(3600));
    let again = apply::apply(&t, apply::parse(DEMO).unwrap()).await.unwrap();
    assert!(
        again.created.is_empty() && again.updated.is_empty(),
        "{again:?}"
    );
    assert_eq!(versions(&t).await, v1);

    // A new rate: a new version from the time of applying, and the program item updated.
    let raised = DEMO.replace("rate: \"0.25\"", "rate: \"0.30\"");
    let r = apply::apply(&t, apply::parse(&raised).unwrap())
        .await
        .unwrap();
    assert_eq!(
        r.created,
        vec!["version of demo from 2026-01-05T13:00:00+00:00".to_string()]
    );
    assert_eq!(r.updated, vec!["program demo".to_string()]);
    let mut v2 = v1.clone();
    v2.push((
        1_767_618_000_000,
        "0.30".to_string(),
        vec!["prod_demo".to_string()],
    ));
    assert_eq!(versions(&t).await, v2);
    let again = apply::apply(&t, apply::parse(&raised).unwrap())
        .await
        .unwrap();
    assert!(
        again.created.is_empty() && again.updated.is_empty(),
        "{again:?}"
    );

    // effective_from before the time of applying: refused, nothing written.
    let past = raised.replace("rate: \"0.30\"", "rate: \"0.35\"").replace(
        "    products:\n",
        "    effective_from: 2026-01-01T00:00:00Z\n    products:\n",
    );
    let err = apply::apply(&t, apply::parse(&past).unwrap())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("before the time of applying"), "{err}");
    assert_eq!(versions(&t).await, v2);
    let p = storage::programs::get_program(&t, "demo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        p.plan.reward.percentage_rate().map(|r| r.to_string()),
        Some("0.30".into())
    );

    // A later effective_from is a scheduled edit.
    let scheduled = past.replace("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z");
    let r = apply::apply(&t, apply::parse(&scheduled).unwrap())
        .await
        .unwrap();
    assert!(
        r.created
            .contains(&"version of demo from 2026-02-01T00:00:00+00:00".to_string()),
        "{r:?}"
    );
    assert_eq!(versions(&t).await.len(), 3);
}

/// A program stored before versions existed keeps its stored state as the version in force
/// until the first edit, so the edit does not re-price its past.
#[tokio::test]
async fn the_first_edit_of_a_program_without_versions_keeps_its_past() {
    let t = testing::fresh_table().await.unwrap();
    let plan = apply::parse(DEMO).unwrap();
    for (_, item) in plan.items {
        t.put(item).await.unwrap();
    }
    let before = versions(&t).await;
    assert_eq!(
        before,
        vec![(0, "0.25".to_string(), vec!["prod_demo".to_string()])]
    );
    let raised = DEMO.replace("rate: \"0.25\"", "rate: \"0.30\"");
    let r = apply::apply(&t, apply::parse(&raised).unwrap())
        .await
        .unwrap();
    assert_eq!(r.created.len(), 2, "{r:?}");
    let after = versions(&t).await;
    assert_eq!(after[0], before[0]);
    assert_eq!(after[1].1, "0.30");
}
