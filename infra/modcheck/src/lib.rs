//! Import cycles between the top-level modules of a crate: the check behind `make lint`.
//!
//! For each crate root, every top-level module is a node and module `b` referring to module `a`
//! (see [`modules`] for what counts) is an edge `b → a`. A crate passes when this graph has no
//! cycle. Modules nested in a top-level module are part of it; tests are left out.

pub mod crates;
pub mod cycles;
pub mod error;
pub mod modules;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use cycles::Graph;
use error::Error;
use modules::Reference;

/// At most this many cycles are listed per crate root.
pub const CYCLE_LIMIT: usize = 200;

/// The check of one crate root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub root_file: PathBuf,
    pub modules: Vec<String>,
    /// The first reference found for each edge `(from, to)`.
    pub edges: BTreeMap<(String, String), Reference>,
    /// Every elementary cycle, e.g. `[a, b, a]`.
    pub cycles: Vec<Vec<String>>,
}

/// Check the crate whose root file is `root_file`.
pub fn check(root_file: &Path) -> Result<Report, Error> {
    let graph = modules::read(root_file)?;
    let mut edges: BTreeMap<(String, String), Reference> = BTreeMap::new();
    for r in graph.references {
        edges.entry((r.from.clone(), r.to.clone())).or_insert(r);
    }
    let mut g = Graph::default();
    for (from, to) in edges.keys() {
        g.add_edge(from, to);
    }
    Ok(Report {
        root_file: root_file.to_path_buf(),
        modules: graph.modules,
        cycles: g.cycles(CYCLE_LIMIT),
        edges,
    })
}

impl fmt::Display for Report {
    /// The cycles, each with one reference per step, e.g.
    /// `attribution -> sales -> attribution` then `attribution -> sales: src/attribution.rs:12 crate::sales::PaidInvoice`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.cycles.len();
        writeln!(
            f,
            "{}: {n}{} import cycle{} between top-level modules",
            self.root_file.display(),
            if n >= CYCLE_LIMIT { "+" } else { "" },
            if n == 1 { "" } else { "s" },
        )?;
        for cycle in &self.cycles {
            writeln!(f, "  {}", cycle.join(" -> "))?;
            for step in cycle.windows(2) {
                if let Some(r) = self.edges.get(&(step[0].clone(), step[1].clone())) {
                    writeln!(f, "      {r}")?;
                }
            }
        }
        Ok(())
    }
}
