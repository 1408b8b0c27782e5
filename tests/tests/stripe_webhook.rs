//! Stripe's deliveries to `POST /webhooks/stripe` of `make dev`: a bad signature is refused and
//! writes nothing; a delivery Stripe retries books its commissions once.

use serde_json::json;
use system_tests::{stripe, Stack};

fn pending(stack: &Stack, partner: &str) -> serde_json::Value {
    stack.partnerctl_json(&["partner", partner])["balances"].clone()
}

#[tokio::test]
async fn a_bad_signature_writes_nothing_and_a_retried_delivery_books_once() {
    let stack = Stack::start().await;
    // the merchant binds the customer to bob by his code
    let lead = stack
        .track_lead(
            json!({"code": "bob", "customer_key": "cus_demo1", "email": "carol@example.com"}),
        )
        .await;
    assert_eq!(lead.status, 201, "{}", lead.text());

    // the customer pays after signing up
    let now = stripe::next_second().await;
    let invoice = stripe::event("invoice.paid", now);
    let deliver = |signature: String| {
        let invoice = invoice.clone();
        let stack = &stack;
        async move {
            stack
                .post(
                    "/webhooks/stripe",
                    &[
                        ("content-type", "application/json"),
                        ("stripe-signature", signature.as_str()),
                    ],
                    invoice,
                )
                .await
        }
    };

    // signed with another secret: refused, nothing booked
    let forged = deliver(stripe::signature("whsec_not_the_secret", now, &invoice)).await;
    assert_eq!(forged.status, 400, "{}", forged.text());
    assert_eq!(pending(&stack, "bob"), json!([]));

    // signed with the local secret, delivered twice (Stripe retries until it gets a 2xx)
    let secret = stack.setting("STRIPE_SIGNING_SECRET").to_string();
    for delivery in 1..=2 {
        let r = deliver(stripe::signature(&secret, now, &invoice)).await;
        assert_eq!(r.status, 200, "delivery {delivery}: {}", r.text());
    }
    for (partner, amount) in [("bob", 2475), ("alice", 495)] {
        let view = stack.partnerctl_json(&["partner", partner]);
        assert_eq!(view["balances"][0]["pending"], json!(amount), "{view:#}");
        assert_eq!(
            view["commissions"].as_array().map(Vec::len),
            Some(1),
            "{view:#}"
        );
    }
}
