//! Tiny crates written to a temporary directory: one with a cycle must fail, a DAG must pass, and
//! each way of referring to another module counts.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh crate directory with these files (paths relative to the crate).
fn fixture(tag: &str, files: &[(&str, &str)]) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("modcheck-{tag}-{}-{nanos}", std::process::id()));
    let mut all = vec![(
        "Cargo.toml",
        "[package]\nname = \"fixture\"\nversion = \"0.1.0\"\n",
    )];
    all.extend_from_slice(files);
    for (path, text) in all {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("create dir");
        std::fs::write(&p, text).expect("write fixture");
    }
    dir
}

/// The cycles of the fixture's `src/lib.rs`, as `a -> b -> a`.
fn cycles(dir: &Path) -> Vec<String> {
    modcheck::check(&dir.join("src/lib.rs"))
        .expect("the fixture parses")
        .cycles
        .into_iter()
        .map(|c| c.join(" -> "))
        .collect()
}

/// The edges of the fixture's `src/lib.rs`, as `b -> a`.
fn edges(dir: &Path) -> Vec<String> {
    modcheck::check(&dir.join("src/lib.rs"))
        .expect("the fixture parses")
        .edges
        .keys()
        .map(|(from, to)| format!("{from} -> {to}"))
        .collect()
}

fn run(dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modcheck"))
        .arg(dir)
        .output()
        .expect("run modcheck");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn a_cycle_fails_and_is_listed_with_where_it_is() {
    let dir = fixture(
        "cycle",
        &[
            ("src/lib.rs", "mod money;\npub mod program;\npub mod plan;\n"),
            ("src/money.rs", "pub struct Cents(pub i64);\n"),
            (
                "src/program.rs",
                "use crate::money::Cents;\n\npub struct Program { pub plan: crate::plan::Plan, pub fee: Cents }\n",
            ),
            (
                "src/plan.rs",
                "use crate::{money, program::Program};\n\npub struct Plan;\npub fn of(p: &Program) -> money::Cents { money::Cents(0) }\n",
            ),
        ],
    );
    assert_eq!(cycles(&dir), vec!["plan -> program -> plan"]);
    let (code, out) = run(&dir);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("1 import cycle between top-level modules"),
        "{out}"
    );
    assert!(out.contains("  plan -> program -> plan"), "{out}");
    assert!(out.contains("plan -> program: "), "{out}");
    assert!(
        out.contains("src/plan.rs:1 crate::program::Program"),
        "{out}"
    );
    assert!(out.contains("src/program.rs:3 crate::plan::Plan"), "{out}");
    assert!(out.contains("1 with import cycles"), "{out}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dag_passes() {
    let dir = fixture(
        "dag",
        &[
            (
                "src/lib.rs",
                "mod money;\nmod program;\nmod plan;\npub use plan::Plan;\n",
            ),
            ("src/money.rs", "pub struct Cents(pub i64);\n"),
            (
                "src/program.rs",
                "use crate::money::Cents;\npub struct Program(pub Cents);\n",
            ),
            (
                "src/plan.rs",
                "use crate::{money::Cents, program::Program};\npub struct Plan(Program, Cents);\n",
            ),
            ("src/main.rs", "fn main() {}\n"),
        ],
    );
    assert!(cycles(&dir).is_empty());
    assert_eq!(
        edges(&dir),
        vec!["plan -> money", "plan -> program", "program -> money"]
    );
    let (code, out) = run(&dir);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("2 crate root(s) checked, 0 with import cycles"),
        "{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn super_from_nested_modules_and_mod_rs_files() {
    let dir = fixture(
        "super",
        &[
            ("src/lib.rs", "mod a;\nmod b;\n"),
            // a/mod.rs with a nested file module: super::super reaches the root
            ("src/a/mod.rs", "mod inner;\nmod local { pub fn f() {} }\n"),
            (
                "src/a/inner.rs",
                "use super::local;\npub fn g() { local::f(); super::super::b::h(); }\n",
            ),
            // b.rs with an inline module; super:: at the top level reaches the root
            (
                "src/b.rs",
                "pub fn h() {}\nmod deep { pub fn k() { super::h(); } }\nfn uses() { super::a::x(); }\n",
            ),
        ],
    );
    assert_eq!(cycles(&dir), vec!["a -> b -> a"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn test_modules_and_test_items_are_left_out() {
    let dir = fixture(
        "tests",
        &[
            ("src/lib.rs", "mod a;\nmod b;\n#[cfg(test)]\nmod testing;\n"),
            ("src/a.rs", "pub fn f() { crate::b::g() }\n"),
            (
                "src/b.rs",
                "pub fn g() {}\n#[cfg(test)]\nmod tests { use crate::a::f; }\n#[cfg(all(test, feature = \"x\"))]\nfn helper() { crate::a::f() }\n#[cfg(any(test, feature = \"testing\"))]\npub fn with_feature() { crate::a::f() }\n",
            ),
            // not even read: a test-only module may use anything
            ("src/testing.rs", "this is not Rust"),
        ],
    );
    // cfg(any(test, feature)) is compiled with the feature, so it counts
    assert_eq!(cycles(&dir), vec!["a -> b -> a"]);
    let dir2 = fixture(
        "tests2",
        &[
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "pub fn f() { crate::b::g() }\n"),
            (
                "src/b.rs",
                "pub fn g() {}\n#[cfg(test)]\nmod tests { use crate::a::f; }\nimpl S { #[cfg(test)] fn t() { crate::a::f() } }\npub struct S;\n",
            ),
        ],
    );
    assert!(cycles(&dir2).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&dir2);
}

#[test]
fn macros_attributes_reexports_and_globs_count() {
    let dir = fixture(
        "forms",
        &[
            (
                "src/lib.rs",
                "mod money;\nmod sales;\nmod attribution;\nmod events;\nmod util;\npub use money::Cents;\npub use events::*;\n",
            ),
            // a re-export at the root: crate::Cents is money's
            ("src/money.rs", "pub struct Cents;\nfn f() -> crate::Cents { crate::sales::total() }\n"),
            // macro arguments
            (
                "src/sales.rs",
                "pub fn total() -> super::Cents { tracing::info!(\"{}\", crate::attribution::name()); todo!() }\n",
            ),
            // a string path in an attribute
            (
                "src/attribution.rs",
                "pub fn name() -> &'static str { \"\" }\n#[derive(serde::Serialize)]\nstruct S { #[serde(with = \"crate::util::hex\")] x: u8 }\n",
            ),
            // a glob re-export at the root, and a glob import of the root
            ("src/util.rs", "pub mod hex {}\nfn g() -> crate::Paid { todo!() }\n"),
            ("src/events.rs", "use super::*;\npub struct Paid;\nfn h() { sales::total(); }\n/// [`crate::money::Cents`] in a doc comment does not count\npub(in crate::events) fn k() {}\n"),
        ],
    );
    assert_eq!(
        edges(&dir),
        vec![
            "attribution -> util",
            "events -> sales",
            "money -> sales",
            "sales -> attribution",
            "sales -> money",
            "util -> events",
        ]
    );
    assert_eq!(
        cycles(&dir),
        vec![
            "attribution -> util -> events -> sales -> attribution",
            "money -> sales -> money",
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_crate_that_cannot_be_read_is_an_error() {
    let dir = fixture("broken", &[("src/lib.rs", "mod missing;\n")]);
    assert!(modcheck::check(&dir.join("src/lib.rs")).is_err());
    let (code, _) = run(&dir);
    assert_eq!(code, 2);
    let _ = std::fs::remove_dir_all(&dir);
}
