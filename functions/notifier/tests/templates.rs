//! Snapshots of every e-mail template (subject, text and HTML) in USD, JPY and KWD: a change of
//! wording or layout shows up in review as a change of `tests/snapshots/`. Regenerate after an
//! intended change with `INSTA_UPDATE=always cargo test -p notifier --test templates`.

use messages::{Consumer, Envelope, Kind, Message};
use notifier::compose::{compose, Brand};
use notifier::render::Templates;
use rules::Program;
use storage::partners::Partner;

const T0: i64 = 1_796_371_200_000; // 2026-12-04T08:00:00Z

fn program() -> Program {
    let p: Program = serde_json::from_value(serde_json::json!({
        "id": "demo", "name": "Demo partner program",
        "plan": {"reward": {"type": "percentage", "rate": "0.25"}},
        "default_destination": "https://example.com/pricing",
        "levels": [{"name": "Silver", "threshold": {"type": "active_customers", "count": 10}, "rate": "0.30"}],
        "email": {"sender_name": "Demo Partners", "sender_address": "partners@example.com",
                  "reply_to": "help@example.com", "support_contact": "help@example.com",
                  "footer": "Demo Inc., 1 Example Street, Springfield"}
    }))
    .expect("program");
    p
}

fn partner() -> Partner {
    serde_json::from_value(serde_json::json!({
        "partner_id": "alice", "email": "alice@example.com", "name": "Alice <Partner>"
    }))
    .expect("partner")
}

/// One message of `kind` in `currency`: 124.75 in two decimals, 12,475 yen, 12.475 dinars.
fn sample(kind: Kind, currency: &str) -> Message {
    let c = currency.to_string();
    let (p, g) = ("alice".to_string(), "demo".to_string());
    match kind {
        Kind::CommissionEarned => Message::CommissionEarned {
            partner_id: p,
            program_id: g,
            commission_id: "demo:in_1:t1".into(),
            tier: 1,
            amount_minor: 12_475,
            currency: c,
            available_at_ms: T0 + 90 * 86_400_000,
            product_id: Some("prod_demo".into()),
        },
        Kind::CommissionReversed => Message::CommissionReversed {
            partner_id: p,
            program_id: g,
            commission_id: "demo:in_1:t1".into(),
            invoice_id: "in_1".into(),
            tier: 1,
            amount_minor: 4_990,
            net_minor: 7_485,
            currency: c,
            reason: "money back on charge ch_1".into(),
        },
        Kind::PartnerInvite => Message::PartnerInvite {
            partner_id: p,
            program_id: g,
            email: "friend@example.org".into(),
        },
        Kind::PayoutWaiting => Message::PayoutWaiting {
            partner_id: p,
            program_id: g,
            currency: c,
            available_minor: 8_000,
            reasons: vec!["below_minimum".into(), "no_payout_method".into()],
            needed_minor: Some(2_000),
            run_date: "2026-12-04".into(),
        },
        Kind::ForfeitWarning => Message::ForfeitWarning {
            partner_id: p,
            program_id: g,
            currency: c,
            amount_minor: 5_000,
            forfeit_on: "2027-01-01".into(),
            needed_minor: 5_000,
        },
        Kind::Forfeited => Message::Forfeited {
            partner_id: p,
            program_id: g,
            currency: c,
            amount_minor: 5_000,
            reason: "unpaid under the minimum for 6 months".into(),
            run_date: "2027-01-01".into(),
        },
        Kind::PayoutSent => Message::PayoutSent {
            partner_id: p,
            program_id: g,
            item_id: "demo:2026-12-04:alice:X".into(),
            currency: c,
            amount_minor: 12_475,
            rail: "paypal".into(),
            reference: "PO-DEMO-7".into(),
            run_date: "2026-12-04".into(),
        },
        Kind::PayoutFailed => Message::PayoutFailed {
            partner_id: p,
            program_id: g,
            item_id: "demo:2026-12-04:alice:X".into(),
            currency: c,
            amount_minor: 12_475,
            rail: "paypal".into(),
            reason: "RECEIVER_UNREGISTERED".into(),
            returned: false,
            run_date: "2026-12-04".into(),
        },
        Kind::LevelPromoted => Message::LevelPromoted {
            partner_id: p,
            program_id: g,
            level: 1,
            level_name: "Silver".into(),
            rate_percent: "30".into(),
        },
        Kind::CrmSyncPartner => unreachable!("not an e-mail"),
    }
}

#[test]
fn every_template_in_usd_jpy_and_kwd() {
    let templates = Templates::load().expect("templates");
    let program = program();
    let brand = Brand::of(&program, None);
    let partner = partner();
    for kind in Consumer::Email.kinds() {
        for currency in ["USD", "JPY", "KWD"] {
            let env = Envelope {
                id: format!("{kind}:sample"),
                at_ms: T0,
                message: sample(kind, currency),
            };
            let e = compose(&templates, &env, &program, &brand, &partner)
                .unwrap_or_else(|err| panic!("{kind} {currency}: {err}"));
            let snap = format!(
                "To: {}\nSubject: {}\n\n{}\n----- HTML -----\n{}",
                e.to, e.rendered.subject, e.rendered.text, e.rendered.html
            );
            insta::assert_snapshot!(format!("{kind}_{currency}"), snap);
        }
    }
}

#[test]
fn html_escapes_what_partners_and_programs_typed() {
    let templates = Templates::load().expect("templates");
    let program = program();
    let brand = Brand::of(&program, None);
    let env = Envelope {
        id: "x".into(),
        at_ms: T0,
        message: sample(Kind::PayoutSent, "USD"),
    };
    let e = compose(&templates, &env, &program, &brand, &partner()).expect("compose");
    assert!(e.rendered.html.contains("Hi Alice &lt;Partner&gt;,"));
    assert!(e.rendered.text.contains("Hi Alice <Partner>,"));
    // Payout mail is not optional: no opt-out line.
    assert!(!e.rendered.text.contains("opt out"));
    let env = Envelope {
        id: "y".into(),
        at_ms: T0,
        message: sample(Kind::CommissionEarned, "USD"),
    };
    let e = compose(&templates, &env, &program, &brand, &partner()).expect("compose");
    assert!(e.rendered.text.contains("You can opt out"));
}
