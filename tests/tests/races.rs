//! Races through the public interfaces of `make dev`, which runs several instances of each
//! function at once (devgw's `DEVGW_CONCURRENCY`, like Lambda's burst): a lead and the
//! customer's first `invoice.paid` sent at the same moment, fifty times, book every sale
//! exactly once and leave none waiting. And the hourly sweep of waiting sales is deployed.

use serde_json::{json, Value};
use system_tests::{stripe, Stack};

const PAIRS: usize = 50;

#[tokio::test]
async fn leads_and_first_invoices_at_the_same_moment_book_every_sale_once() {
    let stack = Stack::start().await;
    // The payments happen a minute from now (business time), after every lead below.
    let signed_at = stripe::next_second().await;
    let created = signed_at + 60;
    let stack = &stack;
    let mut pairs = vec![];
    for i in 0..PAIRS {
        pairs.push(async move {
            let lead =
                stack.track_lead(json!({"code": "bob", "customer_key": format!("cus_race_{i}")}));
            let body = stripe::invoice_paid_for("race", i, created);
            let sale = async { stack.deliver_stripe(&body, signed_at).await };
            let (lead, sale) = tokio::join!(lead, sale);
            assert_eq!(lead.status, 201, "lead {i}: {}", lead.text());
            assert_eq!(sale.status, 200, "sale {i}: {}", sale.text());
        });
    }
    futures::future::join_all(pairs).await;

    // several instances of each function really served these requests
    let functions = stack.get("/dev/functions").await.json();
    for name in ["api", "sale-webhook"] {
        let f = functions["functions"]
            .as_array()
            .and_then(|fs| fs.iter().find(|f| f["name"] == json!(name)))
            .unwrap_or_else(|| panic!("{name} in {functions:#}"));
        let instances = f["instances"].as_array().map(Vec::len).unwrap_or(0);
        assert!(instances > 1, "{name} ran {instances} instance(s): {f:#}");
    }

    // every sale booked once for bob (25 % of 99.00) and alice (tier 2, 5 %)
    let bob = stack.partnerctl_json(&["partner", "bob"]);
    assert_eq!(
        bob["commissions"].as_array().map(Vec::len),
        Some(PAIRS),
        "{bob:#}"
    );
    assert_eq!(
        bob["balances"][0]["pending"],
        json!(2475 * PAIRS),
        "{bob:#}"
    );
    let alice = stack.partnerctl_json(&["partner", "alice"]);
    assert_eq!(
        alice["balances"][0]["pending"],
        json!(495 * PAIRS),
        "{alice:#}"
    );
    // none left waiting: the sweep finds nothing to look at
    let mut scheduled: Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/../events/housekeeping/scheduled.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let at = chrono::DateTime::from_timestamp(created + 60, 0).unwrap();
    scheduled["time"] = json!(at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    let swept = stack.invoke("housekeeping", &scheduled).await;
    assert_eq!(swept.status, 200, "{}", swept.text());
    let report = swept.json();
    assert_eq!(report["waiting_sales"], json!(0), "{report:#}");
    assert_eq!(report["commissions_booked"], json!([]), "{report:#}");
}

/// The sweep runs as the schedule delivers it and reports what it looked at: a sale whose
/// customer nobody referred keeps waiting.
#[tokio::test]
async fn the_hourly_sweep_reports_the_sales_still_waiting() {
    let stack = Stack::start().await;
    let now = stripe::next_second().await;
    let sale = stack
        .deliver_stripe(&stripe::invoice_paid_for("race", 7, now), now)
        .await;
    assert_eq!(sale.status, 200, "{}", sale.text());
    let at = chrono::DateTime::from_timestamp(now + 3600, 0).unwrap();
    let scheduled = json!({
        "version": "0", "id": "sweep-1", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "region": "us-east-1", "resources": [], "detail": {},
        "time": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    });
    let swept = stack.invoke("housekeeping", &scheduled).await;
    assert_eq!(swept.status, 200, "{}", swept.text());
    let report = swept.json();
    assert_eq!(
        (
            report["waiting_sales"].clone(),
            report["bound_customers"].clone()
        ),
        (json!(1), json!(0)),
        "{report:#}"
    );
}
