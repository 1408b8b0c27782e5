//! Attribution against moto: every binding path and the rules.

use engine::attribution::{BindOutcome, BindRejection, BindSource};
use rules::program::Duration;
use rules::AttributionModel;
use storage::customers;
use testkit::engine::*;

fn bound(p: &str) -> BindOutcome {
    BindOutcome::Bound {
        program_id: "demo".into(),
        partner_id: p.into(),
    }
}
fn already(p: &str) -> BindOutcome {
    BindOutcome::AlreadyBound {
        program_id: "demo".into(),
        partner_id: p.into(),
    }
}

async fn demo(model: AttributionModel) -> World {
    let w = World::new().await;
    let mut p = program("demo", pct("0.25"), Duration::Lifetime, None);
    p.attribution = model;
    w.seed(&p, &["prod_demo"]).await;
    w
}

#[tokio::test]
async fn click_binds_and_a_repeat_is_idempotent() {
    let w = demo(AttributionModel::FirstClick).await;
    let c = w.click("alice", "v1", T0).await;
    assert_eq!(
        w.bind(
            "cus_1",
            Some("Dave@Example.com"),
            BindSource::ClickId(c.clone()),
            T0 + DAY
        )
        .await,
        bound("alice")
    );
    assert_eq!(
        w.bind(
            "cus_1",
            Some("dave@example.com"),
            BindSource::ClickId(c.clone()),
            T0 + DAY
        )
        .await,
        already("alice")
    );
    let b = customers::get_binding(w.t(), "demo", "cus_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        b.cause,
        rules::attribution::BindingCause::Click { click_id: c }
    );
    assert_eq!(b.cause_at_ms, T0);
    assert_eq!(b.email.as_deref(), Some("dave@example.com"));
    assert_eq!(
        customers::binding_history(w.t(), "demo", "cus_1")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn first_click_and_last_click_choose_among_several_partners() {
    for (model, want) in [
        (AttributionModel::FirstClick, "bob"),
        (AttributionModel::LastClick, "carol"),
    ] {
        let w = demo(model).await;
        let _b = w.click("bob", "v1", T0).await;
        let a = w.click("alice", "v1", T0 + DAY).await;
        let _c = w.click("carol", "v1", T0 + 2 * DAY).await;
        // the merchant presents alice's click id; the visitor's clicks decide
        assert_eq!(
            w.bind("cus_1", None, BindSource::ClickId(a), T0 + 3 * DAY)
                .await,
            bound(want),
            "{model:?}"
        );
    }
}

#[tokio::test]
async fn the_model_decides_between_two_bindings_whatever_their_order() {
    for model in [AttributionModel::FirstClick, AttributionModel::LastClick] {
        let w = demo(model).await;
        let early = w.click("alice", "va", T0).await;
        let late = w.click("carol", "vc", T0 + DAY).await;
        // the later click arrives first
        w.bind("cus_1", None, BindSource::ClickId(late), T0 + 2 * DAY)
            .await;
        w.bind("cus_1", None, BindSource::ClickId(early), T0 + 2 * DAY)
            .await;
        let b = customers::get_binding(w.t(), "demo", "cus_1")
            .await
            .unwrap()
            .unwrap();
        let want = if model == AttributionModel::FirstClick {
            "alice"
        } else {
            "carol"
        };
        assert_eq!(b.partner_id, want, "{model:?}");
    }
}

#[tokio::test]
async fn a_click_outside_the_cookie_window_does_not_bind() {
    let w = demo(AttributionModel::FirstClick).await;
    let c = w.click("alice", "v1", T0).await;
    assert_eq!(
        w.bind("cus_1", None, BindSource::ClickId(c.clone()), T0 + 61 * DAY)
            .await,
        BindOutcome::Rejected(BindRejection::ExpiredClick)
    );
    assert!(customers::get_binding(w.t(), "demo", "cus_1")
        .await
        .unwrap()
        .is_none());
    // exactly at the window's end it still counts
    assert_eq!(
        w.bind("cus_1", None, BindSource::ClickId(c), T0 + 60 * DAY)
            .await,
        bound("alice")
    );
}

#[tokio::test]
async fn a_click_after_the_first_paid_sale_does_not_move_the_customer() {
    let w = demo(AttributionModel::LastClick).await;
    let a = w.click("alice", "v1", T0).await;
    w.bind("cus_1", None, BindSource::ClickId(a), T0 + 1000)
        .await;
    engine::sales::invoice_paid(
        &w.engine,
        invoice(
            "evt_1",
            "in_1",
            "cus_1",
            T0 + DAY,
            vec![line("prod_demo", 9900)],
        ),
    )
    .await
    .unwrap();
    let c = w.click("carol", "v2", T0 + 2 * DAY).await;
    assert_eq!(
        w.bind("cus_1", None, BindSource::ClickId(c), T0 + 2 * DAY + 5)
            .await,
        already("alice")
    );
    // an operator still can
    let manual = BindSource::Manual {
        partner_id: "carol".into(),
        reason: "support ticket 42".into(),
        operator: "ops@merchant".into(),
    };
    let r = engine::attribution::bind(
        &w.engine,
        engine::attribution::BindRequest {
            program_id: Some("demo".into()),
            customer_key: "cus_1".into(),
            email: None,
            source: manual,
            at_ms: T0 + 3 * DAY,
            source_event: "operator".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(r, bound("carol"));
    let hist = customers::binding_history(w.t(), "demo", "cus_1")
        .await
        .unwrap();
    assert_eq!(
        hist.iter()
            .map(|h| (h.action.as_str(), h.partner_id.as_str()))
            .collect::<Vec<_>>(),
        vec![("bound", "alice"), ("manual", "carol")]
    );
}

#[tokio::test]
async fn self_referral_is_refused_and_flagged() {
    let w = demo(AttributionModel::FirstClick).await;
    let c = w.click("alice", "v1", T0).await;
    for email in [
        "alice@partners.test",
        "ALICE+shop@Partners.Test",
        " alice@partners.test ",
    ] {
        assert_eq!(
            w.bind(
                "cus_self",
                Some(email),
                BindSource::ClickId(c.clone()),
                T0 + 10
            )
            .await,
            BindOutcome::Rejected(BindRejection::SelfReferral),
            "{email}"
        );
    }
    assert!(customers::get_binding(w.t(), "demo", "cus_self")
        .await
        .unwrap()
        .is_none());
    let flags = customers::flags(w.t(), "demo").await.unwrap();
    assert_eq!(flags.len(), 1, "same customer and time flags once");
    assert_eq!(flags[0].partner_id, "alice");
    // gmail dots
    let w2 = World::new().await;
    w2.seed(
        &program("demo", pct("0.25"), Duration::Lifetime, None),
        &["prod_demo"],
    )
    .await;
    let p = storage::partners::Partner {
        partner_id: "gina".into(),
        email: "ginasmith@gmail.com".into(),
        name: "Gina".into(),
        status: rules::PartnerStatus::Active,
        payout_method: rules::PayoutMethod::None,
        tax_info: rules::TaxInfoState::Missing,
    };
    w2.t()
        .put(storage::partners::partner_item(&p).unwrap())
        .await
        .unwrap();
    let l = storage::links::Link {
        code: "gina".into(),
        partner_id: "gina".into(),
        program_id: "demo".into(),
        status: storage::links::LinkStatus::Active,
        destination: None,
    };
    w2.t()
        .put(storage::links::link_item(&l).unwrap())
        .await
        .unwrap();
    assert_eq!(
        w2.bind(
            "cus_g",
            Some("Gina.Smith+x@googlemail.com"),
            BindSource::Code("gina".into()),
            T0
        )
        .await,
        BindOutcome::Rejected(BindRejection::SelfReferral)
    );
}

#[tokio::test]
async fn bad_input_is_rejected_and_writes_nothing() {
    let w = demo(AttributionModel::FirstClick).await;
    let c = w.click("alice", "v1", T0).await;
    let cases = vec![
        (
            "cus_1",
            None,
            BindSource::ClickId("not-a-click-id".into()),
            BindRejection::InvalidClickId,
        ),
        (
            "cus_1",
            None,
            BindSource::ClickId(format!("{c}x")),
            BindRejection::InvalidClickId,
        ),
        (
            "cus_1",
            None,
            BindSource::Code("nobody".into()),
            BindRejection::UnknownCode,
        ),
        (
            "cus_1",
            None,
            BindSource::Coupon("promo_nope".into()),
            BindRejection::UnknownCoupon,
        ),
        (
            "cus_1",
            Some("not-an-email"),
            BindSource::Code("alice".into()),
            BindRejection::MalformedEmail("not-an-email".into()),
        ),
        (
            "",
            None,
            BindSource::Code("alice".into()),
            BindRejection::MissingCustomerKey,
        ),
        (
            "cus#1",
            None,
            BindSource::Code("alice".into()),
            BindRejection::MissingCustomerKey,
        ),
    ];
    for (cust, email, src, want) in cases {
        assert_eq!(
            w.bind(cust, email, src, T0 + 10).await,
            BindOutcome::Rejected(want)
        );
    }
    assert!(customers::get_binding(w.t(), "demo", "cus_1")
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_valid_click_id_binds_even_without_its_click_item() {
    let w = demo(AttributionModel::FirstClick).await;
    let id = w.engine.keys.new_click_id("alice", T0, [9; 6]).unwrap();
    assert_eq!(
        w.bind("cus_1", None, BindSource::ClickId(id), T0 + 5).await,
        bound("alice")
    );
}

#[tokio::test]
async fn code_coupon_and_invite_bind() {
    let w = demo(AttributionModel::FirstClick).await;
    assert_eq!(
        w.bind("cus_code", None, BindSource::Code("bob".into()), T0)
            .await,
        bound("bob")
    );
    assert_eq!(
        w.bind(
            "cus_coupon",
            None,
            BindSource::Coupon("promo_demo".into()),
            T0
        )
        .await,
        bound("carol")
    );
    engine::attribution::invite(&w.engine, "demo", "alice", "Friend@Example.com", T0)
        .await
        .unwrap()
        .unwrap();
    let r = engine::attribution::bind(
        &w.engine,
        engine::attribution::BindRequest {
            program_id: Some("demo".into()),
            customer_key: "cus_friend".into(),
            email: Some("friend@example.com".into()),
            source: BindSource::Invite,
            at_ms: T0 + DAY,
            source_event: "t".into(),
        },
    )
    .await
    .unwrap();
    assert_eq!(r, bound("alice"));
    // the invitation went to the outbox
    assert_eq!(storage::outbox::unsent(w.t()).await.unwrap().len(), 1);
    // inviting oneself is refused
    assert_eq!(
        engine::attribution::invite(&w.engine, "demo", "alice", "alice@partners.test", T0)
            .await
            .unwrap(),
        Err(BindRejection::SelfReferral)
    );
}

#[tokio::test]
async fn recruitment_records_the_first_recruiter() {
    let w = demo(AttributionModel::FirstClick).await;
    assert_eq!(
        engine::attribution::record_recruitment(&w.engine, "demo", "carol", "bob")
            .await
            .unwrap(),
        Ok("bob".into())
    );
    assert_eq!(
        engine::attribution::record_recruitment(&w.engine, "demo", "carol", "alice")
            .await
            .unwrap(),
        Ok("bob".into())
    );
    assert_eq!(
        engine::attribution::record_recruitment(&w.engine, "demo", "carol", "carol")
            .await
            .unwrap(),
        Err(BindRejection::SelfReferral)
    );
    let m = storage::partners::get_membership(w.t(), "carol", "demo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m.membership.recruiter.as_deref(), Some("bob"));
}

#[tokio::test]
async fn concurrent_binds_leave_one_consistent_binding() {
    let w = demo(AttributionModel::FirstClick).await;
    let a = w.click("alice", "va", T0).await;
    let c = w.click("carol", "vc", T0 + 1000).await;
    let b = w.click("bob", "vb", T0 + 2000).await;
    let futs = [a, c, b].into_iter().cycle().take(9).map(|id| {
        let w = &w;
        async move {
            w.bind("cus_1", None, BindSource::ClickId(id), T0 + DAY)
                .await
        }
    });
    futures::future::join_all(futs).await;
    let bnd = customers::get_binding(w.t(), "demo", "cus_1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        bnd.partner_id, "alice",
        "first click wins whatever the interleaving"
    );
    let hist = customers::binding_history(w.t(), "demo", "cus_1")
        .await
        .unwrap();
    assert_eq!(hist.last().unwrap().partner_id, "alice");
    assert_eq!(hist.len() as u64, bnd.version);
}
