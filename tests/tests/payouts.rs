//! The payout run of `make dev`, through its public interface: the Invoke API takes the sample
//! Scheduled Event of `events/payout/`; `POST /dev/schedule/payout?time=…` fires the daily rule
//! on a chosen Friday past the hold; the worker picks the chunk from the payout queue; then the
//! operator reads the run (`partnerctl payouts`), exports the manual rail's PayPal file and marks
//! it sent. A second firing finds the run done, a second export repeats nothing, and the ledger
//! ends with bob paid once and alice waiting below the minimum.

use serde_json::{json, Value};
use system_tests::payouts::{buckets, friday_after, until_finished};
use system_tests::{stripe, Stack};

/// The demo program's hold (infra/dev/demo.yaml: 90 days).
const HOLD_DAYS: i64 = 90;

#[tokio::test]
async fn a_friday_payout_run_pays_bob_once_through_the_manual_rail() {
    let stack = Stack::start().await;

    // The Invoke API with the sample event (Friday 2026-04-10): the demo program is due, and
    // with nothing payable its run finishes at once.
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../events/payout/scheduled.json"
        ))
        .expect("sample event"),
    )
    .expect("JSON");
    let r = stack.invoke("payout", &sample).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-amz-function-error"), None, "{}", r.text());
    let report = r.json();
    assert_eq!(report["runs"][0]["date"], "2026-04-10", "{report:#}");
    assert_eq!(report["runs"][0]["balances"], 0, "{report:#}");
    until_finished(&stack, "demo:2026-04-10").await;

    // Five customers of bob pay: bob earns 5 × 24.75 = 123.75, alice (tier 2) 5 × 4.95 = 24.75.
    let mut last = 0;
    for i in 0..5 {
        let lead = stack
            .track_lead(json!({"code": "bob", "customer_key": format!("cus_pay_{i}")}))
            .await;
        assert_eq!(lead.status, 201, "{}", lead.text());
        last = stripe::next_second().await;
        let paid = stack
            .deliver_stripe(&stripe::invoice_paid_for("pay", i, last), last)
            .await;
        assert_eq!(paid.status, 200, "{}", paid.text());
    }
    assert_eq!(buckets(&stack, "bob"), (12_375, 0, 0, 0));

    // The Friday after the hold, as the daily rule would fire it.
    let friday = friday_after(last, HOLD_DAYS);
    let date = friday.format("%Y-%m-%d").to_string();
    let run = format!("demo:{date}");
    let time = friday.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let fired = stack
        .post(&format!("/dev/schedule/payout?time={time}"), &[], vec![])
        .await;
    assert_eq!(fired.status, 200, "{}", fired.text());
    assert_eq!(
        fired.header("x-amz-function-error"),
        None,
        "{}",
        fired.text()
    );
    let report = fired.json();
    let started = &report["runs"][0];
    assert_eq!(
        (
            started["date"].as_str(),
            started["outcome"].as_str(),
            started["balances"].as_i64()
        ),
        (Some(date.as_str()), Some("taken"), Some(2)),
        "{report:#}"
    );

    let listed = until_finished(&stack, &run).await;
    assert_eq!(listed["summary"]["items"], 1, "{listed:#}");
    assert_eq!(listed["summary"]["item_amounts"]["USD"], 12_375);
    assert_eq!(listed["summary"]["waiting"]["below_minimum"]["balances"], 1);
    let table = stack.partnerctl(&["payouts"]);
    assert!(
        table.contains(&run) && table.contains("below_minimum: 1"),
        "{table}"
    );

    // A second firing of the same day (a late duplicate of the rule) finds the run done.
    let again = stack
        .post(&format!("/dev/schedule/payout?time={time}"), &[], vec![])
        .await
        .json();
    assert_eq!(again["runs"][0]["outcome"], "done", "{again:#}");

    let detail = stack.partnerctl_json(&["payouts", "show", &run]);
    let items = detail["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{detail:#}");
    assert_eq!(
        (
            items[0]["partner_id"].as_str(),
            items[0]["amount"].as_i64(),
            items[0]["state"].as_str()
        ),
        (Some("bob"), Some(12_375), Some("approved"))
    );
    assert_eq!(detail["waiting"][0]["partner_id"], "alice");
    assert_eq!(detail["waiting"][0]["reasons"][0], "below_minimum");
    assert_eq!(buckets(&stack, "bob"), (0, 0, 12_375, 0), "reserved");
    assert_eq!(buckets(&stack, "alice"), (0, 2_475, 0, 0), "waits");

    // The manual rail: the PayPal Payouts Web file, then the report that PayPal paid it.
    let out = std::env::temp_dir().join(format!("payout-export-{}", std::process::id()));
    let out_s = out.display().to_string();
    let exported = stack.partnerctl_json(&["payouts", "export", &run, "--out", &out_s]);
    assert_eq!(exported["items"], 1, "{exported:#}");
    let file = exported["files"][0].as_str().expect("a file");
    let csv = std::fs::read_to_string(file).expect("export file");
    let reference = items[0]["reference"].as_str().expect("reference");
    assert!(
        csv.starts_with(&format!("bob@example.com,123.75,USD,{reference},")),
        "{csv}"
    );
    assert!(csv.trim_end().ends_with(",PAYPAL"), "{csv}");
    let second = stack.partnerctl_json(&["payouts", "export", &run, "--out", &out_s]);
    assert_eq!(
        second["items"], 0,
        "a second export repeats nothing: {second:#}"
    );

    let marked = stack.partnerctl_json(&["payouts", "mark", &run, "--sent", "--at", &time]);
    assert_eq!(marked.as_array().map(Vec::len), Some(1), "{marked:#}");
    let marked_again = stack.partnerctl_json(&["payouts", "mark", &run, "--sent"]);
    assert_eq!(marked_again.as_array().map(Vec::len), Some(0));
    assert_eq!(buckets(&stack, "bob"), (0, 0, 0, 12_375), "paid once");
    // And told so by e-mail, once (the notifier through local SES; `partnerctl mail`).
    let mut told = vec![];
    for _ in 0..600 {
        told = stack
            .partnerctl_json(&["mail", "--partner", "bob"])
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m["kind"] == "payout_sent")
            .collect::<Vec<_>>();
        if told.iter().any(|m| m["state"] == "sent") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0]["state"], "sent", "{told:#?}");
    assert_eq!(told[0]["recipient"], "bob@example.com");
    assert_eq!(told[0]["subject"], "We sent you $123.75");
    assert!(
        told[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains(reference),
        "{told:#?}"
    );
    let mut kinds: Vec<String> = stack.partnerctl_json(&["partner", "bob"])["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["kind"].as_str().map(str::to_string))
        .filter(|k| k.starts_with("payout") || k == "paid")
        .collect();
    kinds.sort();
    assert_eq!(kinds, ["paid", "payout_reserved"]);

    // Nothing failed on the way: the payout dead-letter queue is empty.
    let dead = stack.partnerctl_json(&["payouts", "dead-letters"]);
    assert_eq!(dead, json!([]));
    let _ = std::fs::remove_dir_all(&out);
}
