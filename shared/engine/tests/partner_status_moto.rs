//! Partner status and link status against moto (`rules::partner::can_bind`): a click id of a
//! disabled link, or a click id, code or coupon of a suspended, banned or pending partner, no
//! longer binds; among a visitor's clicks, one that no longer binds cannot win; an operator
//! still assigns.

use engine::attribution::{BindOutcome, BindRejection, BindSource};
use rules::program::Duration;
use rules::{AttributionModel, PartnerStatus};
use storage::customers;
use storage::links::LinkStatus;
use testkit::catalogue;
use testkit::engine::*;

async fn demo(model: AttributionModel) -> World {
    let w = World::new().await;
    let mut p = program("demo", pct("0.25"), Duration::Lifetime, None);
    p.attribution = model;
    w.seed(&p, &["prod_demo"]).await;
    w
}

async fn set_status(w: &World, partner: &str, status: PartnerStatus) {
    let mut p = catalogue::partner(partner);
    p.status = status;
    w.t()
        .put(storage::partners::partner_item(&p).expect("partner item"))
        .await
        .expect("put partner");
}

async fn disable_link(w: &World, code: &str, partner: &str) {
    catalogue::put_link(
        w.t(),
        &catalogue::link(code, partner, "demo", LinkStatus::Disabled),
    )
    .await;
}

fn bound(p: &str) -> BindOutcome {
    BindOutcome::Bound {
        program_id: "demo".into(),
        partner_id: p.into(),
    }
}

fn rejected(r: BindRejection) -> BindOutcome {
    BindOutcome::Rejected(r)
}

async fn unbound(w: &World, customer: &str) -> bool {
    customers::get_binding(w.t(), "demo", customer)
        .await
        .expect("read")
        .is_none()
}

#[tokio::test]
async fn click_code_and_coupon_bind_only_for_an_active_partner() {
    // (partner status, what a click, a code and a coupon of theirs answer)
    let table = [
        (PartnerStatus::Active, None),
        (
            PartnerStatus::Suspended,
            Some(BindRejection::PartnerInactive),
        ),
        (PartnerStatus::Banned, Some(BindRejection::PartnerInactive)),
        (PartnerStatus::Pending, Some(BindRejection::PartnerInactive)),
    ];
    for (status, refusal) in table {
        let w = demo(AttributionModel::FirstClick).await;
        // carol: link `carol`, promotion code `promo_demo`
        set_status(&w, "carol", status).await;
        let click = w.click("carol", "v1", T0).await;
        let sources = [
            ("cus_click", BindSource::ClickId(click)),
            ("cus_code", BindSource::Code("carol".into())),
            ("cus_coupon", BindSource::Coupon("promo_demo".into())),
        ];
        for (customer, source) in sources {
            let got = w.bind(customer, None, source.clone(), T0 + DAY).await;
            match &refusal {
                None => assert_eq!(got, bound("carol"), "{status:?} {source:?}"),
                Some(r) => {
                    assert_eq!(got, rejected(r.clone()), "{status:?} {source:?}");
                    assert!(unbound(&w, customer).await, "{status:?} {source:?}");
                }
            }
        }
    }
}

#[tokio::test]
async fn a_click_of_a_disabled_link_no_longer_binds() {
    let w = demo(AttributionModel::FirstClick).await;
    let click = w.click("carol", "v1", T0).await;
    disable_link(&w, "carol", "carol").await;
    assert_eq!(
        w.bind("cus_1", None, BindSource::ClickId(click), T0 + DAY)
            .await,
        rejected(BindRejection::LinkDisabled)
    );
    assert!(unbound(&w, "cus_1").await);
}

#[tokio::test]
async fn a_click_that_no_longer_binds_cannot_win_under_the_model() {
    // First click: bob's earlier click would win; bob is banned (or his link disabled), so the
    // presented click of carol binds. Last click: carol's later click would win; carol is
    // suspended, so alice's presented click binds.
    for disabled_link in [false, true] {
        let w = demo(AttributionModel::FirstClick).await;
        let _bob = w.click("bob", "v1", T0).await;
        let carol = w.click("carol", "v1", T0 + 1_000).await;
        if disabled_link {
            disable_link(&w, "bob", "bob").await;
        } else {
            set_status(&w, "bob", PartnerStatus::Banned).await;
        }
        assert_eq!(
            w.bind("cus_1", None, BindSource::ClickId(carol), T0 + DAY)
                .await,
            bound("carol"),
            "first click, bob's link disabled: {disabled_link}"
        );
    }
    let w = demo(AttributionModel::LastClick).await;
    let alice = w.click("alice", "v1", T0).await;
    let _carol = w.click("carol", "v1", T0 + 1_000).await;
    set_status(&w, "carol", PartnerStatus::Suspended).await;
    assert_eq!(
        w.bind("cus_1", None, BindSource::ClickId(alice), T0 + DAY)
            .await,
        bound("alice")
    );
    // The presented click's own partner inactive, the other click's too: refused.
    let w = demo(AttributionModel::LastClick).await;
    let alice = w.click("alice", "v1", T0).await;
    let _carol = w.click("carol", "v1", T0 + 1_000).await;
    set_status(&w, "carol", PartnerStatus::Suspended).await;
    set_status(&w, "alice", PartnerStatus::Banned).await;
    assert_eq!(
        w.bind("cus_1", None, BindSource::ClickId(alice), T0 + DAY)
            .await,
        rejected(BindRejection::PartnerInactive)
    );
    assert!(unbound(&w, "cus_1").await);
}

#[tokio::test]
async fn an_operator_still_assigns_to_any_partner() {
    let w = demo(AttributionModel::FirstClick).await;
    set_status(&w, "carol", PartnerStatus::Suspended).await;
    assert_eq!(
        engine::attribution::bind(
            &w.engine,
            engine::attribution::BindRequest {
                program_id: Some("demo".into()),
                customer_key: "cus_1".into(),
                email: None,
                source: BindSource::Manual {
                    partner_id: "carol".into(),
                    reason: "reinstatement pending".into(),
                    operator: "ops@merchant.test".into(),
                },
                at_ms: T0,
                source_event: "operator:test".into(),
            },
        )
        .await
        .expect("bind"),
        bound("carol")
    );
}
