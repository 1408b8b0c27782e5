//! Fixtures of the engine's tests: a fresh table behind an [`Engine`], the standard seed
//! (program, alice, bob recruited by alice, carol), clicks, binds, invoices and balances.

use std::collections::BTreeMap;

use engine::attribution::{BindOutcome, BindRequest, BindSource};
use engine::sales::PaidInvoice;
use engine::Engine;
use rules::plan::{InvoiceFacts, SaleLine};
use rules::program::{CommissionPlan, Duration, Reward};
use rules::{AttributionModel, Currency, Program, ProgramProduct, Tiers};
use rust_decimal::Decimal;
use storage::programs::{self, PromotionCode};
use storage::Table;

use crate::{catalogue, moto};

pub const DAY: i64 = 86_400_000;
/// 2026-01-05T12:00:00Z
pub const T0: i64 = 1_767_614_400_000;
pub const SECRET: &str = "test-tracking-key-0123456789abcdef0123";

pub fn program(id: &str, reward: Reward, duration: Duration, tier2: Option<Reward>) -> Program {
    let mut p = catalogue::program(serde_json::json!({
        "id": id, "name": id,
        "plan": {"reward": {"type": "percentage", "rate": "0.25"}},
        "default_destination": "https://example.com/pricing",
        "allowed_hosts": ["example.com"]
    }));
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
        let table = moto::fresh_table().await.expect("table");
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
        catalogue::put_program(t, p).await;
        for prod in products {
            t.put(programs::product_item(&ProgramProduct::new(&p.id, *prod)).unwrap())
                .await
                .unwrap();
        }
        for (id, recruiter) in [("alice", None), ("bob", Some("alice")), ("carol", None)] {
            let code = format!(
                "{id}{}",
                if p.id == "demo" {
                    String::new()
                } else {
                    format!("-{}", p.id)
                }
            );
            catalogue::put_member(t, id, &p.id, recruiter, &code).await;
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

    /// Customer `cus_{case}`, bound to `partner` by its code at `T0`, pays invoice `in_{case}`
    /// (event `evt_{case}`) of `total` on `prod_demo` at `paid_at_ms`.
    pub async fn customer_of_pays(&self, case: &str, partner: &str, paid_at_ms: i64, total: i64) {
        let customer = format!("cus_{case}");
        self.bind(&customer, None, BindSource::Code(partner.into()), T0)
            .await;
        engine::sales::invoice_paid(
            &self.engine,
            invoice(
                &format!("evt_{case}"),
                &format!("in_{case}"),
                &customer,
                paid_at_ms,
                vec![line("prod_demo", total)],
            ),
        )
        .await
        .expect("sale");
    }

    /// A counted click by `visitor` on link `code` at `at_ms`; returns the click id.
    pub async fn click(&self, code: &str, visitor: &str, at_ms: i64) -> String {
        catalogue::click(self.t(), &self.engine.keys, code, visitor, at_ms, [1, 2, 3]).await
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

pub fn line(product: &str, minor: i64) -> SaleLine {
    SaleLine::new(product, rules::Money::new(minor, Currency::USD))
}

pub fn invoice(
    event: &str,
    invoice: &str,
    customer: &str,
    at_ms: i64,
    lines: Vec<SaleLine>,
) -> PaidInvoice {
    PaidInvoice {
        event_id: event.into(),
        source: "stripe".into(),
        customer_key: customer.into(),
        customer_email: Some(format!("{customer}@customers.test")),
        subscription_id: Some(format!("sub_{customer}")),
        promotion_codes: vec![],
        facts: InvoiceFacts {
            invoice_id: invoice.into(),
            paid_at: chrono::DateTime::from_timestamp_millis(at_ms).expect("business time"),
            lines,
            currency: Currency::USD,
            payment: None,
        },
    }
}

pub fn first_click() -> AttributionModel {
    AttributionModel::FirstClick
}
