//! `make bench-notify`: AWS requests per notification, counted against moto (every request is
//! billed). A warm notifier (programs cached, as a Lambda sandbox keeps them for 60 s) delivers
//! 100 messages of each kind's family: money mail, optional mail, an invitation; then the same
//! messages again (duplicates), a skipped one (opted out), and a bounce event. Prints a table for
//! docs/performance.md.

use std::sync::Arc;

use messages::{Envelope, Message};
use notifier::ses::Ses;
use notifier::{Notifier, Outcome};
use storage::metrics::RequestCounter;
use storage::partners::{self, Partner};
use storage::Table;

const N: usize = 100;
const T0: i64 = 1_796_371_200_000;

fn payout_sent(i: usize) -> String {
    Envelope {
        id: format!("payout-sent:demo:2026-12-04:p{i}:USD"),
        at_ms: T0,
        message: Message::PayoutSent {
            partner_id: format!("p{i}"),
            program_id: "demo".into(),
            item_id: format!("demo:2026-12-04:p{i}:USD"),
            currency: "USD".into(),
            amount_minor: 12_475,
            rail: "paypal".into(),
            reference: format!("PO-{i}"),
            run_date: "2026-12-04".into(),
        },
    }
    .to_json()
}

fn earned(i: usize) -> String {
    earned_by(i, i)
}

/// Commission `in_{sale}` of partner `p{partner}`.
fn earned_by(sale: usize, partner: usize) -> String {
    let i = sale;
    Envelope {
        id: format!("commission-earned:demo:in_{i}:t1"),
        at_ms: T0,
        message: Message::CommissionEarned {
            partner_id: format!("p{partner}"),
            program_id: "demo".into(),
            commission_id: format!("demo:in_{i}:t1"),
            tier: 1,
            amount_minor: 2_475,
            currency: "USD".into(),
            available_at_ms: T0,
            product_id: Some("prod_demo".into()),
        },
    }
    .to_json()
}

fn invite(i: usize) -> String {
    Envelope {
        id: format!("partner-invite:demo:p{i}:friend{i}"),
        at_ms: T0,
        message: Message::PartnerInvite {
            partner_id: format!("p{i}"),
            program_id: "demo".into(),
            email: format!("friend{i}@example.org"),
        },
    }
    .to_json()
}

fn row(counter: &RequestCounter, what: &str, n: usize) -> String {
    let snap = counter.snapshot();
    let ses: u64 = snap
        .iter()
        .filter(|(k, _)| k.starts_with("SES.") || k.starts_with("ses."))
        .map(|(_, v)| v)
        .sum();
    let ddb: u64 = snap
        .iter()
        .filter(|(k, _)| k.starts_with("DynamoDB."))
        .map(|(_, v)| v)
        .sum();
    let kinds: Vec<String> = snap
        .iter()
        .map(|(k, v)| format!("{} {}", k.split('.').nth(1).unwrap_or(k), v))
        .collect();
    counter.reset();
    format!(
        "| {what} | {n} | {:.2} | {:.2} | {} |",
        ses as f64 / n as f64,
        ddb as f64 / n as f64,
        kinds.join(", ")
    )
}

#[tokio::main]
async fn main() {
    let config = storage::testing::local_config().await;
    let counter = RequestCounter::new();
    let (ddb, _) = counter.clients(&config);
    let plain = storage::testing::fresh_table().await.expect("table");
    let table = Table::new(ddb, plain.name.clone());
    let ses_client = aws_sdk_ses::Client::from_conf(
        aws_sdk_ses::config::Builder::from(&config)
            .interceptor(counter.clone())
            .build(),
    );
    ses_client
        .verify_domain_identity()
        .domain("example.com")
        .send()
        .await
        .expect("verify");
    let program: rules::Program = serde_json::from_value(serde_json::json!({
        "id": "demo", "name": "Demo",
        "plan": {"reward": {"type": "percentage", "rate": "0.25"}},
        "default_destination": "https://example.com/pricing",
        "email": {"sender_address": "partners@example.com"}
    }))
    .expect("program");
    plain
        .put(storage::programs::program_item(&program).expect("item"))
        .await
        .expect("program");
    let mut items = vec![];
    for i in 0..N {
        let p: Partner = serde_json::from_value(serde_json::json!({
            "partner_id": format!("p{i}"), "email": format!("p{i}@partners.test"), "name": format!("P {i}")
        }))
        .expect("partner");
        items.push(partners::partner_item(&p).expect("item"));
    }
    plain.batch_put(items).await.expect("partners");
    let n = Notifier {
        table,
        catalog: Arc::new(engine::catalog::Catalog::new(engine::PROGRAM_CACHE_TTL)),
        templates: notifier::render::Templates::load().expect("templates"),
        mailer: Ses {
            client: ses_client,
            configuration_set: None,
        },
        default_sender: None,
        lease: notifier::DEFAULT_LEASE,
    };
    // Warm the program cache (a sandbox's first message reads the program once).
    n.deliver(&payout_sent(N)).await.ok();
    counter.reset();

    let mut lines = vec![
        "| messages | count | SES calls / message | DynamoDB requests / message | by operation |"
            .to_string(),
        "|---|---:|---:|---:|---|".to_string(),
    ];
    for (what, make) in [
        (
            "payout sent (money mail, leased claim)",
            payout_sent as fn(usize) -> String,
        ),
        ("commission earned (optional mail)", earned),
        ("invitation to a friend (address checked)", invite),
    ] {
        for i in 0..N {
            let o = n.deliver(&make(i)).await.expect("deliver");
            assert!(matches!(o, Outcome::Sent(_)), "{o:?}");
        }
        lines.push(row(&counter, what, N));
        for i in 0..N {
            assert_eq!(
                n.deliver(&make(i)).await.expect("again"),
                Outcome::Duplicate
            );
        }
        lines.push(row(&counter, &format!("{what}, delivered again"), N));
    }
    for i in 0..N {
        storage::mail::set_opt_out(&plain, &format!("p{i}"), true)
            .await
            .expect("opt out");
    }
    counter.reset();
    for i in 0..N {
        let o = n.deliver(&earned_by(N + 1 + i, i)).await.expect("skip");
        assert!(matches!(o, Outcome::Skipped(_)), "{o:?}");
    }
    lines.push(row(
        &counter,
        "commission earned to an opted-out partner (skipped)",
        N,
    ));
    for i in 0..N {
        let body =
            notifier::events::sample_bounce(&format!("p{i}@partners.test"), &format!("fb-{i}"));
        n.handle(&body).await.expect("bounce");
    }
    lines.push(row(
        &counter,
        "hard bounce reported (partner found by e-mail)",
        N,
    ));
    println!("{}", lines.join("\n"));
}
