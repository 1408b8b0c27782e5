//! The README's walkthrough ("Try it: `make dev`"), step by step, as a second shell of
//! `make dev` runs it: bob's link is clicked, the merchant reports the sign-up with the click id,
//! Stripe reports the paid invoice, and bob and his recruiter alice have earned.

use serde_json::json;
use system_tests::Stack;

/// The demo program's tracking key (infra/dev/demo.yaml), as the README's step 2 sends it.
const DEMO_TRACKING_KEY: &str = "local-tracking-key";

#[tokio::test]
async fn click_lead_paid_invoice_and_balances_as_in_the_readme() {
    let stack = Stack::start().await;

    // 1. a visitor clicks bob's link: 302 to example.com with ?ref_click=<click id>, and cookies
    //    (`curl -si`: a visitor's request has a user agent; one without is taken for a bot)
    let curl = [("user-agent", "curl/8.5.0"), ("accept", "*/*")];
    let click = stack.request("GET", "/r/bob", &curl, vec![]).await;
    assert_eq!(click.status, 302, "{click:?}");
    let location = url::Url::parse(click.header("location").expect("location")).expect("URL");
    assert_eq!(
        (location.host_str(), location.path()),
        (Some("example.com"), "/pricing")
    );
    let click_id = location
        .query_pairs()
        .find(|(k, _)| k == "ref_click")
        .map(|(_, v)| v.into_owned())
        .expect("ref_click in the location");
    let cookies = click.all("set-cookie");
    assert!(
        cookies.iter().any(|c| c.starts_with("ref_vid=")),
        "{cookies:?}"
    );
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with(&format!("ref_click={click_id};"))),
        "{cookies:?}"
    );

    // 2. the merchant's backend reports the sign-up, with the click id from step 1
    let auth = format!("Bearer {DEMO_TRACKING_KEY}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let lead =
        json!({"click_id": click_id, "customer_key": "cus_demo1", "email": "carol@example.com"})
            .to_string();
    let bound = stack.post("/v1/track/lead", &headers, lead.clone()).await;
    assert_eq!(
        (bound.status, bound.json()),
        (
            201,
            json!({"program_id": "demo", "partner_id": "bob", "customer_key": "cus_demo1", "status": "bound"})
        )
    );
    //    (the same call again → 200 "already_bound")
    let again = stack.post("/v1/track/lead", &headers, lead).await;
    assert_eq!(
        (again.status, again.json()["status"].clone()),
        (200, json!("already_bound"))
    );

    // 3. Stripe reports the paid invoice, signed with the local secret as Stripe signs it
    //    (a second later at least, as a reader of the README takes: the script sets the event's
    //    `created`, whole seconds, to now)
    system_tests::stripe::next_second().await;
    let sent = stack
        .shell("infra/dev/stripe-event.sh")
        .arg("events/stripe/invoice.paid.json")
        .output()
        .expect("run infra/dev/stripe-event.sh");
    let printed = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success() && printed.starts_with("200"),
        "{}: {printed}{}",
        sent.status,
        String::from_utf8_lossy(&sent.stderr)
    );

    // 4. bob earned 25 % of the $99 line (24.75), alice 5 % as his recruiter (4.95): pending
    for (partner, pending) in [("bob", 2475), ("alice", 495)] {
        let view = stack.partnerctl_json(&["partner", partner]);
        assert_eq!(
            view["balances"],
            json!([{
                "partner_id": partner, "program_id": "demo", "currency": "USD",
                "pending": pending, "available": 0, "in_payout": 0, "paid": 0, "lots": {}, "told": []
            }]),
            "{view:#}"
        );
        // a pending commission, available after the 90-day hold
        let commissions = view["commissions"].as_array().expect("commissions");
        assert_eq!(commissions.len(), 1, "{view:#}");
        assert_eq!(commissions[0]["amount"], json!(pending), "{view:#}");
        assert_eq!(
            commissions[0]["available_at_ms"]
                .as_i64()
                .expect("available_at_ms")
                - commissions[0]["earned_at_ms"]
                    .as_i64()
                    .expect("earned_at_ms"),
            90 * 86_400_000,
            "{view:#}"
        );
    }

    // 5. the sale feed: the README's lines, run as written in the second shell, with $click
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README");
    let start = readme
        .find("# 5. a merchant")
        .expect("step 5 in the README");
    let end = start + readme[start..].find("# 6.").expect("step 6 in the README");
    let sent = stack
        .shell("/bin/bash")
        .arg("-c")
        .arg(&readme[start..end])
        .env("click", &click_id)
        .output()
        .expect("run step 5");
    let printed = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success() && printed.contains(r#""outcome":"booked""#),
        "{}: {printed}{}",
        sent.status,
        String::from_utf8_lossy(&sent.stderr)
    );
    let bob = stack.partnerctl_json(&["partner", "bob"]);
    assert_eq!(bob["balances"][0]["pending"], json!(2475 + 2475), "{bob:#}");

    // 6. the landing-page script
    let js = stack.get("/t.js?program=demo").await;
    assert_eq!(js.status, 200, "{}", js.text());
    assert!(js.text().contains("partnerEngine"));
}
