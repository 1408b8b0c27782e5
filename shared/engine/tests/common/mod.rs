//! Fixtures for engine tests against moto.
#![allow(dead_code)]

use std::collections::BTreeMap;

use engine::attribution::{BindOutcome, BindRequest, BindSource};
use engine::sales::{InvoiceLine, PaidInvoice};
use engine::Engine;
use rules::plan::{CommissionPlan, Duration, Reward};
use rules::{
    AttributionModel, Currency, Membership, PartnerStatus, PayoutMethod, Program, ProgramProduct,
    TaxInfoState, Tiers,
};
use rust_decimal::Decimal;
use storage::links::{self, Click, Link, LinkStatus};
use storage::partners::{self, Partner};
use storage::programs::{self, PromotionCode};
use storage::{testing, Table};

pub const DAY: i64 = 86_400_000;
/// 2026-01-05T12:00:00Z
pub const T0: i64 = 1_767_614_400_000;
pub const SECRET: &str = "test-tracking-key-0123456789abcdef0123";

pub fn program(id: &str, reward: Reward, duration: Duration, tier2: Option<Reward>) -> Program {
    let mut p: Program = serde_json::from_value(serde_json::json!({
        "id": id, "name": id,
        "plan": {"reward": {"type": "percentage", "rate": "0.25"}},
        "default_destination": "https://example.com/pricing",
        "allowed_hosts": ["example.com"]
    }))
    .expect("program json");
    p.plan = CommissionPlan {
        reward,
        duration,
        tier2: tier2.clone(),
    };
    p.tiers = if tier2.is_some() {
        Tiers::Two
    } else {
        Tiers::One
    };
    p
}

pub fn pct(r: &str) -> Reward {
    Reward::Percentage {
        rate: r.parse::<Decimal>().expect("rate"),
    }
}
pub fn usd(minor: i64) -> BTreeMap<Currency, i64> {
    BTreeMap::from([(Currency::USD, minor)])
}

pub struct World {
    pub engine: Engine,
}

impl World {
    pub async fn new() -> World {
        let table = testing::fresh_table().await.expect("table");
        let keys = tracking::KeyRing::from_secrets(SECRET, None).expect("key");
        World {
            engine: Engine::new(table, keys),
        }
    }
    pub fn t(&self) -> &Table {
        &self.engine.table
    }
    /// A program with products, and partners alice (code alice), bob (recruited by alice, code bob),
    /// carol (code carol).
    pub async fn seed(&self, p: &Program, products: &[&str]) {
        let t = self.t();
        t.put(programs::program_item(p).unwrap()).await.unwrap();
        for prod in products {
            t.put(programs::product_item(&ProgramProduct::new(&p.id, *prod)).unwrap())
                .await
                .unwrap();
        }
        for (id, recruiter) in [("alice", None), ("bob", Some("alice")), ("carol", None)] {
            let partner = Partner {
                partner_id: id.into(),
                email: format!("{id}@partners.test"),
                name: id.into(),
                status: PartnerStatus::Active,
                payout_method: PayoutMethod::PayPal {
                    email: format!("{id}@partners.test"),
                },
                tax_info: TaxInfoState::Approved,
            };
            t.put(partners::partner_item(&partner).unwrap())
                .await
                .unwrap();
            let m = Membership {
                partner_id: id.into(),
                program_id: p.id.clone(),
                level: 0,
                recruiter: recruiter.map(str::to_string),
            };
            t.put(partners::membership_item(&m).unwrap()).await.unwrap();
            let code = format!(
                "{id}{}",
                if p.id == "demo" {
                    String::new()
                } else {
                    format!("-{}", p.id)
                }
            );
            let link = Link {
                code,
                partner_id: id.into(),
                program_id: p.id.clone(),
                status: LinkStatus::Active,
                destination: None,
            };
            t.put(links::link_item(&link).unwrap()).await.unwrap();
        }
        let promo = PromotionCode {
            code: format!("promo_{}", p.id),
            partner_id: "carol".into(),
            program_id: p.id.clone(),
        };
        t.put(programs::promotion_code_item(&promo).unwrap())
            .await
            .unwrap();
    }

    /// A counted click by `visitor` on link `code` at `at_ms`; returns the click id.
    pub async fn click(&self, code: &str, visitor: &str, at_ms: i64) -> String {
        let link = links::get_link(self.t(), code)
            .await
            .unwrap()
            .expect("link");
        let nonce = [
            (at_ms % 251) as u8,
            visitor.len() as u8,
            code.len() as u8,
            1,
            2,
            3,
        ];
        let id = self
            .engine
            .keys
            .new_click_id(code, at_ms, nonce)
            .expect("click id");
        let c = Click {
            click_id: id.clone(),
            link_code: code.into(),
            partner_id: link.partner_id,
            program_id: link.program_id,
            visitor_id: visitor.into(),
            sub_id: None,
            at_ms,
        };
        links::record_click(self.t(), &c, visitor, 3_600_000, 60)
            .await
            .unwrap();
        id
    }

    pub async fn bind(
        &self,
        customer: &str,
        email: Option<&str>,
        source: BindSource,
        at_ms: i64,
    ) -> BindOutcome {
        engine::attribution::bind(
            &self.engine,
            BindRequest {
                program_id: None,
                customer_key: customer.into(),
                email: email.map(str::to_string),
                source,
                at_ms,
                source_event: "test".into(),
            },
        )
        .await
        .unwrap()
    }

    pub async fn balance(&self, partner: &str, program: &str) -> (i64, i64, i64) {
        let b = storage::ledger::balance(self.t(), partner, program, Currency::USD)
            .await
            .unwrap();
        (b.pending, b.available, b.paid)
    }

    /// Every ledger entry of a partner in a program: (kind, amount) in order.
    pub async fn entries(&self, partner: &str, program: &str) -> Vec<(String, i64)> {
        storage::ledger::entries(self.t(), partner, program, Currency::USD)
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.kind.as_str().to_string(), e.amount))
            .collect()
    }
}

pub fn line(product: &str, minor: i64) -> InvoiceLine {
    InvoiceLine {
        product_id: Some(product.into()),
        amount_minor: minor,
        metered: false,
        excluded: false,
    }
}

pub fn invoice(
    event: &str,
    invoice: &str,
    customer: &str,
    at_ms: i64,
    lines: Vec<InvoiceLine>,
) -> PaidInvoice {
    PaidInvoice {
        event_id: event.into(),
        invoice_id: invoice.into(),
        customer_key: customer.into(),
        customer_email: Some(format!("{customer}@customers.test")),
        currency: Currency::USD,
        lines,
        paid_at_ms: at_ms,
        subscription_id: Some(format!("sub_{customer}")),
        promotion_codes: vec![],
    }
}

pub fn first_click() -> AttributionModel {
    AttributionModel::FirstClick
}
