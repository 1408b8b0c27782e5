//! Money going back, through `make dev`'s webhook: a `charge.refunded` that arrives before its
//! `invoice.paid` is parked on the charge (`partnerctl customer` shows it), applied when the
//! sale is booked, and a repeat changes nothing; a refund after the sale takes back from the
//! commission pro rata; `partnerctl partner` shows the reversal beside its commission.

use serde_json::{json, Value};
use system_tests::{stripe, Stack};

async fn deliver(stack: &Stack, body: &[u8], t: i64) -> Value {
    let r = stack.deliver_stripe(body, t).await;
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn commission(stack: &Stack, partner: &str, id: &str) -> Value {
    let view = stack.partnerctl_json(&["partner", partner]);
    view["commissions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["commission_id"] == id).cloned())
        .unwrap_or_else(|| panic!("{id} of {partner}: {view}"))
}

/// `events/stripe/{name}.json` at `t` with `edit` applied to the event.
fn edited(name: &str, t: i64, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut e: Value = serde_json::from_slice(&stripe::event(name, t)).expect("json");
    edit(&mut e);
    serde_json::to_vec(&e).expect("json")
}

#[tokio::test]
async fn a_refund_before_its_sale_is_parked_then_applied_and_a_later_one_takes_back_pro_rata() {
    let stack = Stack::start().await;
    let lead = stack
        .track_lead(
            json!({"code": "bob", "customer_key": "cus_demo1", "email": "carol@example.com"}),
        )
        .await;
    assert_eq!(lead.status, 201, "{}", lead.text());

    // charge.refunded (50.00 of the 134.00 charge) before the invoice it refunds: parked.
    let t = stripe::next_second().await;
    let refunded = stripe::event("charge.refunded", t);
    let reply = deliver(&stack, &refunded, t).await;
    assert_eq!(reply["outcome"], "money_back_parked", "{reply}");
    let customer = stack.partnerctl_json(&["customer", "--program", "demo", "cus_demo1"]);
    assert_eq!(customer["money_back"][0]["state"], "parked", "{customer}");
    assert_eq!(
        customer["money_back"][0]["charge"]["charge_key"],
        "ch_demo1"
    );
    let text = stack.partnerctl(&["customer", "--program", "demo", "cus_demo1"]);
    assert!(text.contains("refunds and disputes"), "{text}");
    assert!(text.contains("charge says 50.00 USD refunded"), "{text}");

    // The sale: 99.00 eligible at 25 % = 24.75, less round(2475 × 5000 ÷ 13400) = 9.24.
    let t = stripe::next_second().await;
    let reply = deliver(&stack, &stripe::event("invoice.paid", t), t).await;
    assert_eq!(reply["outcome"], "booked", "{reply}");
    let c = commission(&stack, "bob", "demo:in_demo1:t1");
    assert_eq!(
        (&c["amount"], &c["reversed_pending"]),
        (&json!(2475), &json!(924)),
        "{c}"
    );
    let bob = stack.partnerctl_json(&["partner", "bob"]);
    assert_eq!(bob["balances"][0]["pending"], json!(2475 - 924), "{bob}");
    let customer = stack.partnerctl_json(&["customer", "--program", "demo", "cus_demo1"]);
    assert_eq!(customer["money_back"][0]["state"], "applied", "{customer}");
    assert_eq!(customer["money_back"][0]["taken_back"], json!(5000));

    // Stripe delivers the refund again: nothing changes.
    let reply = deliver(&stack, &refunded, t).await;
    assert_eq!(reply["outcome"], "already_processed", "{reply}");

    // A second refund (cumulative 134.00: everything) takes the rest.
    let t = stripe::next_second().await;
    let full = edited("charge.refunded", t, |e| {
        e["id"] = "evt_demo_charge_refunded_full".into();
        e["data"]["object"]["amount_refunded"] = 13_400.into();
        e["data"]["object"]["refunded"] = true.into();
    });
    let reply = deliver(&stack, &full, t).await;
    assert_eq!(reply["outcome"], "money_back_applied", "{reply}");
    let bob = stack.partnerctl_json(&["partner", "bob"]);
    assert_eq!(bob["balances"][0]["pending"], json!(0), "{bob}");
    let kinds: Vec<&str> = bob["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["commission_id"] == "demo:in_demo1:t1")
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert_eq!(kinds, vec!["earned", "reversed", "reversed"], "{bob}");
    let text = stack.partnerctl(&["partner", "bob"]);
    assert!(text.contains("taken back"), "{text}");
    assert!(text.contains("money back on charge ch_demo1"), "{text}");

    // A dispute of another charge, whose sale this stack never saw: parked, answered 200.
    let t = stripe::next_second().await;
    let reply = deliver(&stack, &stripe::event("charge.dispute.created", t), t).await;
    assert_eq!(reply["outcome"], "money_back_parked", "{reply}");
}
