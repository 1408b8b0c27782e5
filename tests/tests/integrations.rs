//! Merchant integrations through `make dev` (docs/integration.md): a visitor comes from alice's
//! link to the merchant's landing page, which loads the deployment's `t.js`; headless Chromium
//! shows the Payment Link carrying `client_reference_id`, the lead form's hidden field filled,
//! the first-party cookie kept for the program's cookie days and still there on a second page
//! view, and a visitor without a click id left alone. The merchant's own billing then reports
//! the sale, a partial refund and a chargeback through the signed sale feed, with that click id.

use serde_json::{json, Value};
use system_tests::browser::{Browser, Site};
use system_tests::Stack;

/// The merchant's landing page: a Payment Link, a lead form with the hidden field, and the
/// script tag of the integration guide.
fn landing(stack_url: &str) -> String {
    format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>Pricing</title></head><body>
<a id="buy" href="https://buy.stripe.com/test_28o5kq0Yd2Pqf7i000">Buy Pro</a>
<a id="docs" href="/docs.html">Docs</a>
<form id="lead" action="/signup" method="post"><input type="email" name="email">
<input type="hidden" name="ref_click"></form>
<script src="{stack_url}/t.js?program=demo" async></script>
</body></html>"#
    )
}

/// What the page shows after `t.js` ran (waits for the async script).
async fn page_state(b: &Browser) -> Value {
    for _ in 0..100 {
        let v = b
            .eval(
                r#"if (!window.partnerEngine) return null;
                return {
                  click: window.partnerEngine.clickId(),
                  buy: document.getElementById('buy').getAttribute('href'),
                  docs: document.getElementById('docs').getAttribute('href'),
                  field: document.querySelector('input[name=ref_click]').value,
                  cookie: document.cookie
                };"#,
            )
            .await;
        if !v.is_null() {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("t.js did not run on the page");
}

fn feed_body(name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let path = format!(
        "{}/../events/sale-feed/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut v: Value = serde_json::from_slice(&std::fs::read(path).expect("sample")).expect("json");
    edit(&mut v);
    serde_json::to_vec(&v).expect("json")
}

fn now_rfc3339(offset_s: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::seconds(offset_s))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test]
async fn the_click_id_reaches_checkout_and_the_sale_feed_books_it() {
    let stack = Stack::start().await;

    // The script itself: JavaScript, cacheable, the demo program's 60 cookie days inside.
    let js = stack.get("/t.js?program=demo").await;
    assert_eq!(js.status, 200, "{}", js.text());
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("cache-control"), Some("public, max-age=300"));
    assert!(js.text().contains("var DAYS = 60;"), "{}", js.text());
    assert!(js.text().len() < 5 * 1024);
    assert_eq!(stack.get("/t.js?program=nope").await.status, 404);

    // A visitor clicks alice's link; the redirect sends them on with ?ref_click=<id>.
    let ua = [(
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0 Safari/537.36",
    )];
    let click = stack.request("GET", "/r/alice", &ua, vec![]).await;
    assert_eq!(click.status, 302, "{click:?}");
    let location = url::Url::parse(click.header("location").expect("location")).expect("URL");
    let click_id = location
        .query_pairs()
        .find(|(k, _)| k == "ref_click")
        .map(|(_, v)| v.into_owned())
        .expect("ref_click");

    let stack_url = stack.base_url();
    let site = Site::start(move |path| match path {
        "/pricing" | "/docs.html" => Some(landing(&stack_url)),
        _ => None,
    })
    .await;
    let browser = Browser::start().await;

    // Landing with the click id: the Payment Link and the hidden field carry it, other links
    // are left alone, and the first-party cookie holds it for 60 days.
    browser
        .goto(&format!("{}/pricing?ref_click={click_id}", site.base))
        .await;
    let s = page_state(&browser).await;
    assert_eq!(s["click"], click_id.as_str(), "{s}");
    assert_eq!(
        s["buy"],
        format!("https://buy.stripe.com/test_28o5kq0Yd2Pqf7i000?client_reference_id={click_id}"),
        "{s}"
    );
    assert_eq!(s["docs"], "/docs.html");
    assert_eq!(s["field"], click_id.as_str());
    let cookies = browser.cookies().await;
    let kept = cookies
        .iter()
        .find(|c| c["name"] == "pe_ref_click")
        .unwrap_or_else(|| panic!("{cookies:?}"));
    assert_eq!(kept["value"], click_id.as_str());
    let days_left =
        (kept["expiry"].as_i64().expect("expiry") - chrono::Utc::now().timestamp()) / 86_400;
    assert!((59..=60).contains(&days_left), "{kept}");

    // A second page view, without the parameter: the cookie still carries the id.
    browser.goto(&format!("{}/docs.html", site.base)).await;
    let s = page_state(&browser).await;
    assert_eq!(s["click"], click_id.as_str(), "{s}");
    assert!(s["buy"]
        .as_str()
        .unwrap_or_default()
        .ends_with(&format!("?client_reference_id={click_id}")));

    // A visitor without a click id: nothing set, nothing changed.
    browser.delete_cookies().await;
    browser.goto(&format!("{}/pricing", site.base)).await;
    let s = page_state(&browser).await;
    assert_eq!(s["click"], Value::Null, "{s}");
    assert_eq!(s["buy"], "https://buy.stripe.com/test_28o5kq0Yd2Pqf7i000");
    assert_eq!(s["field"], "");
    assert_eq!(s["cookie"], "");
    assert!(browser.cookies().await.is_empty());
    browser.quit().await;

    // The merchant's own billing reports the sale with the id it got from checkout: 99.00 of
    // eligible lines at 25 % = 24.75 for alice.
    let sold = now_rfc3339(0);
    let sale = feed_body("sale", |v| {
        v["occurred_at"] = sold.clone().into();
        v["click_id"] = click_id.clone().into();
        v["customer"] = json!({"key": "cust_feed_1", "email": "erin@example.com"});
    });
    let r = stack.deliver_sale(&sale).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["outcome"], "booked", "{}", r.text());
    let again = stack.deliver_sale(&sale).await;
    assert_eq!(
        again.json()["outcome"],
        "already_processed",
        "{}",
        again.text()
    );

    // 50.00 of 134.00 refunded, then a chargeback of the other 84.00.
    let refund = feed_body("refund", |v| v["occurred_at"] = now_rfc3339(60).into());
    assert_eq!(
        stack.deliver_sale(&refund).await.json()["outcome"],
        "money_back_applied"
    );
    let alice = stack.partnerctl_json(&["partner", "alice"]);
    assert_eq!(
        alice["balances"][0]["pending"],
        json!(2475 - 924),
        "{alice}"
    );
    //    (the chargeback sent as the integration guide's local sender sends it)
    let sent = stack
        .shell("infra/dev/sale-event.sh")
        .arg("events/sale-feed/chargeback.json")
        .output()
        .expect("run infra/dev/sale-event.sh");
    let printed = String::from_utf8_lossy(&sent.stdout);
    assert!(
        sent.status.success() && printed.contains(r#""outcome":"money_back_applied""#),
        "{}: {printed}{}",
        sent.status,
        String::from_utf8_lossy(&sent.stderr)
    );
    let alice = stack.partnerctl_json(&["partner", "alice"]);
    assert_eq!(alice["balances"][0]["pending"], json!(0), "{alice}");
    let text = stack.partnerctl(&["partner", "alice"]);
    assert!(text.contains("billing:1001"), "{text}");

    // What the sender gets wrong is named, and changes nothing.
    let bad = feed_body("sale", |v| {
        v["id"] = "evt_feed_bad".into();
        v["lines"][0]["amount"] = "99.00".into();
    });
    let r = stack.deliver_sale(&bad).await;
    assert_eq!(r.status, 422, "{}", r.text());
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    assert_eq!(r.json()["field"], "lines[0].amount");
    let r = stack
        .post(
            "/webhooks/sale",
            &[("sale-source", "shopify"), ("sale-signature", "t=1,v1=00")],
            sale.clone(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert_eq!(r.json()["field"], "Sale-Source");
}
