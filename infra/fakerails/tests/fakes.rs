//! The fakes answer as the published APIs do, including their errors (and this test makes
//! `cargo test` build the `fakerails` binary that `make dev` and the system tests run).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use fakerails::paypal::FakePayPal;
use fakerails::stripe::FakeStripeConnect;
use fakerails::Fault;
use rails::http::{form, Http};
use serde_json::{json, Value};

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn http() -> Http {
    Http::new(Duration::from_secs(5), Arc::new(storage::SystemClock)).unwrap()
}

async fn paypal_token(h: &Http, base: &str, secret: &str) -> (u16, Value) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("client:{secret}"));
    let a = h
        .send(
            "POST",
            &format!("{base}/v1/oauth2/token"),
            &[("authorization", format!("Basic {basic}"))],
            Some((
                "application/x-www-form-urlencoded",
                form(&[("grant_type", "client_credentials")]),
            )),
        )
        .await
        .unwrap();
    (a.status, a.json().unwrap_or(Value::Null))
}

#[tokio::test]
async fn paypal_refuses_a_bad_client_replays_a_request_id_and_rejects_a_reused_batch_id() {
    let pp = FakePayPal::start(loopback(), "client", "secret")
        .await
        .unwrap();
    let h = http();
    let (status, body) = paypal_token(&h, &pp.base_url, "wrong").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, body) = paypal_token(&h, &pp.base_url, "secret").await;
    assert_eq!(status, 200);
    let token = body["access_token"].as_str().unwrap().to_string();
    let batch = |value: &str| {
        json!({"sender_batch_header": {"sender_batch_id": "b1"},
               "items": [{"recipient_type": "EMAIL", "receiver": "a@example.com",
                          "amount": {"value": value, "currency": "USD"}, "sender_item_id": "i1"}]})
    };
    let post = |request_id: &'static str, body: Value| {
        let h = h.clone();
        let base = pp.base_url.clone();
        let token = token.clone();
        async move {
            h.send(
                "POST",
                &format!("{base}/v1/payments/payouts"),
                &[
                    ("authorization", format!("Bearer {token}")),
                    ("paypal-request-id", request_id.to_string()),
                ],
                Some(("application/json", body.to_string().into_bytes())),
            )
            .await
            .unwrap()
        }
    };
    let first = post("r1", batch("1.00")).await;
    assert_eq!(first.status, 201);
    let id = first.json::<Value>().unwrap()["batch_header"]["payout_batch_id"].clone();
    // The same request id: PayPal's first answer again, nothing new.
    let again = post("r1", batch("1.00")).await;
    assert_eq!(again.status, 201);
    assert_eq!(
        again.json::<Value>().unwrap()["batch_header"]["payout_batch_id"],
        id
    );
    // Another request id, the same sender_batch_id: rejected, with a link to the original.
    let dup = post("r2", batch("1.00")).await;
    assert_eq!(dup.status, 400);
    let err: Value = dup.json().unwrap();
    assert_eq!(err["name"], "USER_BUSINESS_ERROR");
    assert!(err["links"][0]["href"]
        .as_str()
        .unwrap()
        .ends_with(id.as_str().unwrap()));
    // A JPY value with decimals is a validation error.
    let jpy = json!({"sender_batch_header": {"sender_batch_id": "b2"},
        "items": [{"receiver": "a@example.com", "amount": {"value": "10.5", "currency": "JPY"}}]});
    let bad = post("r3", jpy).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json::<Value>().unwrap()["name"], "VALIDATION_ERROR");
    assert_eq!(pp.batches().len(), 1);
}

#[tokio::test]
async fn stripe_keeps_the_first_answer_to_a_key_a_500_included() {
    let st = FakeStripeConnect::start(loopback(), "sk_test_x")
        .await
        .unwrap();
    let h = http();
    let transfer = |key: &'static str, amount: &'static str| {
        let h = h.clone();
        let base = st.base_url.clone();
        async move {
            h.send(
                "POST",
                &format!("{base}/v1/transfers"),
                &[
                    ("authorization", "Bearer sk_test_x".to_string()),
                    ("idempotency-key", key.to_string()),
                ],
                Some((
                    "application/x-www-form-urlencoded",
                    form(&[
                        ("amount", amount),
                        ("currency", "usd"),
                        ("destination", "acct_1"),
                        ("transfer_group", "g1"),
                        ("metadata[payout_item]", "i1"),
                    ]),
                )),
            )
            .await
            .unwrap()
        }
    };
    st.fault(Fault::ErrorAfterEffect);
    assert_eq!(transfer("k1", "100").await.status, 500);
    // Replayed from the key, though the transfer was made.
    assert_eq!(transfer("k1", "100").await.status, 500);
    assert_eq!(st.transfers().len(), 1);
    // The key with other parameters.
    let other = transfer("k1", "200").await;
    assert_eq!(other.status, 400);
    assert_eq!(
        other.json::<Value>().unwrap()["error"]["type"],
        "idempotency_error"
    );
    // The platform balance.
    st.set_balance("usd", 50);
    let low = transfer("k2", "100").await;
    assert_eq!(
        low.json::<Value>().unwrap()["error"]["code"],
        "balance_insufficient"
    );
    // Listing the group finds the transfer the 500 hid.
    let list = h
        .send(
            "GET",
            &format!("{}/v1/transfers?transfer_group=g1", st.base_url),
            &[("authorization", "Bearer sk_test_x".to_string())],
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        list.json::<Value>().unwrap()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
