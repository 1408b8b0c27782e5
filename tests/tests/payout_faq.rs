//! The payout FAQ through `make dev`'s public interfaces, in worked cents: signed Stripe events
//! whose `created` (the business time) spans months, the daily payout rule fired at chosen
//! Fridays (`POST /dev/schedule/payout?time=`), and `partnerctl` (payouts, preview, review,
//! outbox, apply). The demo program (infra/dev/demo.yaml) pays on Fridays over $100 after a
//! 90-day hold and lets commissions accrue for six months.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use system_tests::payouts::{buckets, demo_run, fire, friday_after, rfc3339};
use system_tests::{stripe, Stack};

const DAY_S: i64 = 86_400;

/// The stacks of one test binary share moto's payout queue (`partner-engine-local-PayoutQueue`:
/// `make dev`'s queue names), so a worker of one stack could take another stack's chunk: the
/// tests of this file run one at a time.
static ONE_STACK_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A paid invoice `invoice` of `customer` for one `prod_demo` line of `amount` cents, charged
/// as `ch_{invoice}`, created at `created_s`.
fn paid(invoice: &str, customer: &str, amount: i64, created_s: i64) -> Vec<u8> {
    let mut e: Value =
        serde_json::from_slice(&stripe::event("invoice.paid", created_s)).expect("JSON");
    e["id"] = format!("evt_{invoice}").into();
    let o = &mut e["data"]["object"];
    o["id"] = invoice.into();
    o["customer"] = customer.into();
    o["customer_email"] = format!("{customer}@customers.test").into();
    o["subscription"] = format!("sub_{customer}").into();
    o["charge"] = format!("ch_{invoice}").into();
    o["payment_intent"] = format!("pi_{invoice}").into();
    for k in ["amount_due", "amount_paid", "subtotal", "total"] {
        o[k] = amount.into();
    }
    let mut line = o["lines"]["data"][0].clone();
    line["amount"] = amount.into();
    line["invoice"] = invoice.into();
    line["price"]["unit_amount"] = amount.into();
    line["price"]["unit_amount_decimal"] = amount.to_string().into();
    o["lines"]["data"] = json!([line]);
    serde_json::to_vec(&e).expect("JSON")
}

/// `customer`, referred by the partner of `code`, pays `amount` at `created_s`.
async fn sale(
    stack: &Stack,
    code: &str,
    customer: &str,
    invoice: &str,
    amount: i64,
    created_s: i64,
) {
    let lead = stack
        .track_lead(json!({"code": code, "customer_key": customer}))
        .await;
    assert!(lead.status == 201 || lead.status == 200, "{}", lead.text());
    let t = stripe::next_second().await;
    let r = stack
        .deliver_stripe(&paid(invoice, customer, amount, created_s), t)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["outcome"], "booked", "{}", r.text());
}

/// A stack whose e-mail consumer is switched off (`EMAIL_QUEUE_URL` blank): what the payout
/// rules tell partners stays in the outbox, where these tests read it (tests/tests/mail.rs
/// follows messages on to SES).
async fn faq_stack() -> Stack {
    Stack::start_with(&[("EMAIL_QUEUE_URL", "")]).await
}

fn outbox(stack: &Stack, kind: &str) -> Vec<Value> {
    stack.partnerctl_json(&["outbox", "--kind", kind])["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|m| serde_json::from_str(m["body"].as_str().unwrap_or("{}")).unwrap_or(m))
        .collect()
}

fn show(stack: &Stack, at: DateTime<Utc>) -> Value {
    stack.partnerctl_json(&["payouts", "show", &demo_run(at)])
}

fn preview(stack: &Stack, at: DateTime<Utc>) -> Value {
    let date = at.format("%Y-%m-%d").to_string();
    stack.partnerctl_json(&["payouts", "preview", "--program", "demo", "--date", &date])
}

/// "What if I only have $80 in commission?" It waits (alice is told once, $20 short), and goes
/// out with the next $40 as $120; the preview of that Friday is the run that follows it.
#[tokio::test]
async fn eighty_dollars_carried_then_paid_with_the_next_forty() {
    let _one = ONE_STACK_AT_A_TIME.lock().await;
    let stack = faq_stack().await;
    let t1 = stripe::next_second().await;
    sale(&stack, "alice", "cus_faq_a", "in_faq_a1", 32_000, t1).await; // $80
    let f1 = friday_after(t1, 90);
    let p = preview(&stack, f1);
    assert_eq!(p["items"], json!([]), "{p:#}");
    assert_eq!(p["waiting"][0]["partner_id"], "alice");
    assert_eq!(p["waiting"][0]["reasons"], json!(["below_minimum"]));
    assert_eq!(p["waiting"][0]["needed"], 2_000);
    let listed = fire(&stack, f1).await;
    assert_eq!(
        listed["summary"]["waiting"]["below_minimum"]["balances"], 1,
        "{listed:#}"
    );
    assert_eq!(show(&stack, f1)["waiting"][0]["needed"], 2_000);
    let text = stack.partnerctl(&["payouts", "show", &demo_run(f1)]);
    assert!(text.contains("below_minimum (20.00 USD needed)"), "{text}");
    // The next Friday changes nothing and tells nothing new.
    fire(&stack, friday_after(f1.timestamp(), 1)).await;
    let told = outbox(&stack, "payout_waiting");
    assert_eq!(told.len(), 1, "told once: {told:#?}");
    assert_eq!(told[0]["needed_minor"], 2_000);

    // $40 more, sold 40 days later (its hold ends 40 days after the first's).
    sale(
        &stack,
        "alice",
        "cus_faq_b",
        "in_faq_b1",
        16_000,
        t1 + 40 * DAY_S,
    )
    .await;
    let f2 = friday_after(t1 + 40 * DAY_S, 90);
    let p = preview(&stack, f2);
    let csv_path = std::env::temp_dir().join(format!("preview-{}.csv", std::process::id()));
    let csv_s = csv_path.display().to_string();
    let date = f2.format("%Y-%m-%d").to_string();
    stack.partnerctl(&[
        "payouts",
        "preview",
        "--program",
        "demo",
        "--date",
        &date,
        "--csv",
        &csv_s,
    ]);
    let csv = std::fs::read_to_string(&csv_path).expect("csv");
    assert_eq!(
        csv,
        "partner_id,currency,amount,outcome,forfeited,why\nalice,USD,120.00,paid,0.00,\"\"\n"
    );
    let _ = std::fs::remove_file(&csv_path);
    let listed = fire(&stack, f2).await;
    assert_eq!(
        listed["summary"]["item_amounts"]["USD"], 12_000,
        "{listed:#}"
    );
    let run = show(&stack, f2);
    let paid: Vec<(Value, Value)> = run["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| (i["partner_id"].clone(), i["amount"].clone()))
        .collect();
    let previewed: Vec<(Value, Value)> = p["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| (i["partner_id"].clone(), i["amount"].clone()))
        .collect();
    assert_eq!(paid, previewed, "the preview is the run");
    assert_eq!(paid, vec![(json!("alice"), json!(12_000))]);
    assert_eq!(buckets(&stack, "alice"), (0, 0, 12_000, 0));
}

/// Six months, per commission: bob's $50 (and alice's $10 on it, tier 2) become available on
/// day 90; the run from 30 days before their limit warns them; the first run on or after it
/// forfeits them. Alice's own $100, sold later, is paid: a balance that reaches the minimum is
/// paid, never forfeited.
#[tokio::test]
async fn six_months_then_forfeited_with_a_warning_thirty_days_before() {
    let _one = ONE_STACK_AT_A_TIME.lock().await;
    let stack = faq_stack().await;
    let t1 = stripe::next_second().await;
    sale(&stack, "bob", "cus_faq_f", "in_faq_f1", 20_000, t1).await; // bob $50, alice $10
    let available = chrono::DateTime::from_timestamp(t1 + 90 * DAY_S, 0).expect("time");
    let limit = available
        .date_naive()
        .checked_add_months(chrono::Months::new(6))
        .expect("date");
    let limit_s = limit
        .and_hms_opt(0, 0, 0)
        .expect("time")
        .and_utc()
        .timestamp();
    fire(&stack, friday_after(t1, 90)).await;
    // 33 to 39 days before: not yet.
    fire(&stack, friday_after(limit_s - 40 * DAY_S, 0)).await;
    assert!(outbox(&stack, "forfeit_warning").is_empty());
    // Within 30 days: warned once, with the date and what is still needed.
    let warn_at = friday_after(limit_s - 30 * DAY_S, 0);
    let listed = fire(&stack, warn_at).await;
    assert_eq!(listed["summary"]["waiting"]["below_minimum"]["balances"], 2);
    fire(&stack, friday_after(warn_at.timestamp(), 1)).await;
    let mut warned = outbox(&stack, "forfeit_warning");
    warned.sort_by_key(|m| m["partner_id"].as_str().unwrap_or("").to_string());
    assert_eq!(warned.len(), 2, "{warned:#?}");
    assert_eq!(
        (
            &warned[1]["partner_id"],
            &warned[1]["amount_minor"],
            &warned[1]["needed_minor"]
        ),
        (&json!("bob"), &json!(5_000), &json!(5_000))
    );
    assert_eq!(
        warned[1]["forfeit_on"],
        limit.format("%Y-%m-%d").to_string()
    );

    // Alice's own customer buys before the limit: with the $10 she reaches $110 and is paid.
    sale(
        &stack,
        "alice",
        "cus_faq_g",
        "in_faq_g1",
        40_000,
        limit_s - 100 * DAY_S,
    )
    .await;
    let forfeit_at = friday_after(limit_s - DAY_S, 0);
    let listed = fire(&stack, forfeit_at).await;
    assert_eq!(
        listed["summary"]["forfeited_amounts"]["USD"], 5_000,
        "{listed:#}"
    );
    assert_eq!(
        listed["summary"]["item_amounts"]["USD"], 11_000,
        "{listed:#}"
    );
    assert_eq!(buckets(&stack, "bob"), (0, 0, 0, 0));
    assert_eq!(buckets(&stack, "alice"), (0, 0, 11_000, 0));
    let bob = stack.partnerctl_json(&["partner", "bob"]);
    let forfeited: Vec<&Value> = bob["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["kind"] == "forfeited")
        .collect();
    assert_eq!(forfeited.len(), 1, "{bob:#}");
    assert_eq!(forfeited[0]["amount"], 5_000);
    assert_eq!(
        forfeited[0]["reason"],
        "unpaid under the payout minimum for 6 months"
    );
    let gone = outbox(&stack, "forfeited");
    assert_eq!(gone.len(), 1, "{gone:#?}");
    assert_eq!(gone[0]["partner_id"], "bob");
    let text = stack.partnerctl(&["payouts", "show", &demo_run(forfeit_at)]);
    assert!(
        text.contains("FORFEITED") && text.contains("50.00 USD"),
        "{text}"
    );
}

/// A program under manual review whose hold counts from the account's first sale, where bob
/// has no payout method: alice's renewal 30 days after the first sale is available with it;
/// her item waits for review, is held, $40.00 of the renewal is refunded ($10.00 clawed back),
/// and a week later the approval pays $10.00 less; bob waits until a payout method is on file
/// and is paid at the next run.
#[tokio::test]
async fn reviewed_items_the_account_anchor_and_a_payout_method_added() {
    let _one = ONE_STACK_AT_A_TIME.lock().await;
    let stack = faq_stack().await;
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../infra/dev/demo.yaml"
    ))
    .expect("demo.yaml");
    let edit = |file: &str, bob_method: &str| {
        let f = file
            .replace(
                "    hold_days: 90\n",
                "    hold_days: 90\n    hold_anchor: account\n    payout_review: manual\n",
            )
            .replace(
                "    payout_method: { type: paypal, email: bob@example.com }\n",
                &format!("    payout_method: {bob_method}\n"),
            );
        let path = std::env::temp_dir().join(format!(
            "demo-review-{}-{}.yaml",
            std::process::id(),
            bob_method.len()
        ));
        std::fs::write(&path, f).expect("file");
        path
    };
    let file = edit(&demo, "{ type: none }");
    stack.partnerctl(&["apply", &file.display().to_string()]);

    let t1 = stripe::next_second().await;
    sale(&stack, "alice", "cus_faq_r", "in_faq_r1", 40_000, t1).await; // $100
    sale(
        &stack,
        "alice",
        "cus_faq_r",
        "in_faq_r2",
        40_000,
        t1 + 30 * DAY_S,
    )
    .await; // $100
    sale(
        &stack,
        "bob",
        "cus_faq_s",
        "in_faq_s1",
        40_000,
        t1 + 30 * DAY_S,
    )
    .await; // bob $100, alice $20
    let alice = stack.partnerctl_json(&["partner", "alice"]);
    let avail: Vec<&Value> = alice["commissions"]
        .as_array()
        .expect("commissions")
        .iter()
        .filter(|c| c["invoice_id"] == "in_faq_r1" || c["invoice_id"] == "in_faq_r2")
        .map(|c| &c["available_at_ms"])
        .collect();
    assert_eq!(
        avail,
        vec![&json!((t1 + 90 * DAY_S) * 1000); 2],
        "{alice:#}"
    );

    // Day 91+: the first sale's account is past its 90 days, so both of its sales are paid
    // (bob's own customer's sale of day 30 is not: it waits until day 120).
    let f1 = friday_after(t1, 90);
    let run = demo_run(f1);
    let listed = fire(&stack, f1).await;
    assert_eq!(
        listed["summary"]["item_amounts"]["USD"], 20_000,
        "{listed:#}"
    );
    let items = show(&stack, f1)["items"].clone();
    assert_eq!(items[0]["state"], "created", "waits for review: {items:#}");
    let held = stack.partnerctl_json(&["payouts", "hold", &run, "--partner", "alice"]);
    assert_eq!(held[0]["to"], "held", "{held:#}");
    let none = stack.partnerctl_json(&["payouts", "export", &run, "--out", "/tmp"]);
    assert_eq!(none["items"], 0, "nothing under review is exported");

    // $40.00 of the renewal's charge is refunded the day after the run.
    let refund_s = f1.timestamp() + DAY_S;
    let mut refund: Value =
        serde_json::from_slice(&stripe::event("charge.refunded", refund_s)).expect("JSON");
    refund["id"] = "evt_faq_refund".into();
    let o = &mut refund["data"]["object"];
    o["id"] = "ch_in_faq_r2".into();
    o["invoice"] = "in_faq_r2".into();
    o["payment_intent"] = "pi_in_faq_r2".into();
    o["customer"] = "cus_faq_r".into();
    o["amount"] = 40_000.into();
    o["amount_captured"] = 40_000.into();
    o["amount_refunded"] = 4_000.into();
    let t = stripe::next_second().await;
    let r = stack
        .deliver_stripe(&serde_json::to_vec(&refund).expect("JSON"), t)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(buckets(&stack, "alice"), (2_000, -1_000, 20_000, 0));

    // A week later the operator approves: the clawback comes out of the item.
    let week = rfc3339(f1 + chrono::TimeDelta::days(7));
    let approved = stack.partnerctl_json(&["payouts", "approve", &run, "--at", &week]);
    assert_eq!(
        (
            &approved[0]["amount_before"],
            &approved[0]["amount_after"],
            &approved[0]["to"]
        ),
        (&json!(20_000), &json!(19_000), &json!("approved")),
        "{approved:#}"
    );
    assert_eq!(buckets(&stack, "alice"), (2_000, 0, 19_000, 0));
    assert_eq!(
        stack.partnerctl_json(&["payouts", "approve", &run]),
        json!([]),
        "once"
    );
    let out = std::env::temp_dir().join(format!("faq-export-{}", std::process::id()));
    let exported = stack.partnerctl_json(&[
        "payouts",
        "export",
        &run,
        "--out",
        &out.display().to_string(),
    ]);
    assert_eq!(exported["items"], 1);
    let csv = std::fs::read_to_string(exported["files"][0].as_str().expect("file")).expect("csv");
    assert!(csv.starts_with("alice@example.com,190.00,USD,"), "{csv}");
    let _ = std::fs::remove_dir_all(&out);

    // Bob: no payout method at day 120's run; told why; a method on file; paid next Friday.
    let f2 = friday_after(t1 + 30 * DAY_S, 90);
    let listed = fire(&stack, f2).await;
    assert_eq!(
        listed["summary"]["waiting"]["no_payout_method"]["balances"], 1,
        "{listed:#}"
    );
    let told = outbox(&stack, "payout_waiting");
    assert!(
        told.iter()
            .any(|m| m["partner_id"] == "bob" && m["reasons"] == json!(["no_payout_method"])),
        "{told:#?}"
    );
    let file = edit(&demo, "{ type: paypal, email: bob@example.com }");
    stack.partnerctl(&["apply", &file.display().to_string()]);
    let f3 = friday_after(f2.timestamp(), 1);
    let listed = fire(&stack, f3).await;
    assert_eq!(
        listed["summary"]["items"], 1,
        "bob (alice's $20 of tier 2 waits): {listed:#}"
    );
    let approved =
        stack.partnerctl_json(&["payouts", "approve", &demo_run(f3), "--partner", "bob"]);
    assert_eq!(approved[0]["amount_after"], 10_000, "{approved:#}");
}
