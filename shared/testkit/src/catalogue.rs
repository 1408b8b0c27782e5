//! What tests seed: programs, partners (with memberships and links) and counted clicks, written
//! with storage's own item builders.

use rules::{Membership, PartnerStatus, PayoutMethod, Program, ProgramProduct, TaxInfoState};
use storage::links::{self, Click, Link, LinkStatus};
use storage::partners::{self, Partner};
use storage::{programs, Table};
use tracking::KeyRing;

/// A program from its program-file JSON.
pub fn program(json: serde_json::Value) -> Program {
    serde_json::from_value(json).expect("program json")
}

/// An active partner paid by PayPal, tax info approved, e-mail `{id}@partners.test`.
pub fn partner(id: &str) -> Partner {
    Partner {
        partner_id: id.into(),
        email: format!("{id}@partners.test"),
        name: id.into(),
        status: PartnerStatus::Active,
        payout_method: PayoutMethod::PayPal {
            email: format!("{id}@partners.test"),
        },
        tax_info: TaxInfoState::Approved,
    }
}

/// A link to the program's default destination.
pub fn link(code: &str, partner_id: &str, program_id: &str, status: LinkStatus) -> Link {
    Link {
        code: code.into(),
        partner_id: partner_id.into(),
        program_id: program_id.into(),
        status,
        destination: None,
    }
}

pub async fn put_program(t: &Table, p: &Program) {
    t.put(programs::program_item(p).expect("program item"))
        .await
        .expect("put program");
}

/// Edit a program as `partnerctl apply` does, applied at business time `at_ms` (and effective
/// from it): a new version of its settings and products (`storage::programs::versions_of_edit`),
/// then the program item and its product rows. Returns how many versions were written.
pub async fn edit_program(
    t: &Table,
    p: &Program,
    products: &[ProgramProduct],
    at_ms: i64,
) -> usize {
    let at = chrono::DateTime::from_timestamp_millis(at_ms).expect("business time");
    let versions = programs::versions_of_edit(t, p, products, None, at)
        .await
        .expect("edit");
    for v in &versions {
        programs::put_new_version(t, v).await.expect("put version");
    }
    put_program(t, p).await;
    for prod in products {
        t.put(programs::product_item(prod).expect("product item"))
            .await
            .expect("put product");
    }
    versions.len()
}

pub async fn put_link(t: &Table, l: &Link) {
    t.put(links::link_item(l).expect("link item"))
        .await
        .expect("put link");
}

/// [`partner`] `id`, a member of `program_id` at level 0 (recruited by `recruiter`), with an
/// active link of code `link_code`.
pub async fn put_member(
    t: &Table,
    id: &str,
    program_id: &str,
    recruiter: Option<&str>,
    link_code: &str,
) {
    t.put(partners::partner_item(&partner(id)).expect("partner item"))
        .await
        .expect("put partner");
    let m = Membership {
        partner_id: id.into(),
        program_id: program_id.into(),
        level: 0,
        recruiter: recruiter.map(str::to_string),
    };
    t.put(partners::membership_item(&m).expect("membership item"))
        .await
        .expect("put membership");
    put_link(t, &link(link_code, id, program_id, LinkStatus::Active)).await;
}

/// A counted click by `visitor` on link `code` at `at_ms`, as the redirect records it; returns
/// the click id, signed with `keys`. The id's nonce is made of the click's own values and
/// `salt`, so the same call gives the same id.
pub async fn click(
    t: &Table,
    keys: &KeyRing,
    code: &str,
    visitor: &str,
    at_ms: i64,
    salt: [u8; 3],
) -> String {
    let link = links::get_link(t, code)
        .await
        .expect("get link")
        .expect("link");
    let nonce = [
        (at_ms % 251) as u8,
        visitor.len() as u8,
        code.len() as u8,
        salt[0],
        salt[1],
        salt[2],
    ];
    let id = keys.new_click_id(code, at_ms, nonce).expect("click id");
    let c = Click {
        click_id: id.clone(),
        link_code: code.into(),
        partner_id: link.partner_id,
        program_id: link.program_id,
        visitor_id: visitor.into(),
        sub_id: None,
        at_ms,
    };
    links::record_click(t, &c, visitor, 3_600_000, 60)
        .await
        .expect("record click");
    id
}
