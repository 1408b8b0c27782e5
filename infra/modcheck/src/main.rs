//! `modcheck [--edges] DIR...`: check every crate under the directories for import cycles between
//! its top-level modules. Exit status 0 without cycles, 1 with cycles, 2 when a crate cannot be
//! read. `--edges` also prints every edge of every crate root with the first reference found.

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: modcheck [--edges] DIR...  (every crate under DIR: no import cycle between the top-level modules of its src/lib.rs, src/main.rs or src/bin/*.rs)";

fn main() -> ExitCode {
    let mut show_edges = false;
    let mut dirs: Vec<PathBuf> = vec![];
    for arg in std::env::args_os().skip(1) {
        if arg == "--edges" {
            show_edges = true;
        } else if arg == "-h" || arg == "--help" {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        } else {
            dirs.push(PathBuf::from(arg));
        }
    }
    if dirs.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let mut roots = vec![];
    let mut failed = false;
    for dir in &dirs {
        match modcheck::crates::find(dir) {
            Ok(found) => roots.extend(found),
            Err(e) => {
                eprintln!("modcheck: {e}");
                failed = true;
            }
        }
    }
    let mut cyclic = 0;
    for root in &roots {
        let report = match modcheck::check(&root.root_file) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("modcheck: {e}");
                failed = true;
                continue;
            }
        };
        if show_edges {
            println!(
                "{}: {} edge(s)",
                root.root_file.display(),
                report.edges.len()
            );
            for r in report.edges.values() {
                println!("  {r}");
            }
        }
        if !report.cycles.is_empty() {
            cyclic += 1;
            print!("{report}");
        }
    }
    println!(
        "modcheck: {} crate root(s) checked, {cyclic} with import cycles",
        roots.len()
    );
    if failed {
        ExitCode::from(2)
    } else if cyclic > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
