//! The crates under a directory and their crate roots.

use std::path::{Path, PathBuf};

use crate::error::Error;

/// One crate root: `src/lib.rs`, `src/main.rs`, `src/bin/x.rs` or `src/bin/x/main.rs`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CrateRoot {
    /// The directory of the crate's Cargo.toml.
    pub crate_dir: PathBuf,
    pub root_file: PathBuf,
}

/// Every crate root of every package (a Cargo.toml with `[package]`) under `dir`, itself
/// included, in path order. `target` and hidden directories are not searched.
pub fn find(dir: &Path) -> Result<Vec<CrateRoot>, Error> {
    let mut out = vec![];
    walk(dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<CrateRoot>) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let manifest = dir.join("Cargo.toml");
    if manifest.is_file() {
        let text = std::fs::read_to_string(&manifest).map_err(|source| Error::Io {
            path: manifest.clone(),
            source,
        })?;
        if text.lines().any(|l| l.trim() == "[package]") {
            out.extend(roots(dir).into_iter().map(|root_file| CrateRoot {
                crate_dir: dir.to_path_buf(),
                root_file,
            }));
        }
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    for sub in entries {
        let skip = sub
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n == "target" || n.starts_with('.'));
        if !skip {
            walk(&sub, out)?;
        }
    }
    Ok(())
}

fn roots(crate_dir: &Path) -> Vec<PathBuf> {
    let src = crate_dir.join("src");
    let mut out: Vec<PathBuf> = ["lib.rs", "main.rs"]
        .iter()
        .map(|f| src.join(f))
        .filter(|p| p.is_file())
        .collect();
    if let Ok(entries) = std::fs::read_dir(src.join("bin")) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "rs") && p.is_file() {
                out.push(p);
            } else if p.join("main.rs").is_file() {
                out.push(p.join("main.rs"));
            }
        }
    }
    out
}
