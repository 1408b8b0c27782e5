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
