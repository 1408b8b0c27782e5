//! The top-level modules of one crate root (`lib.rs`, `main.rs`, `bin/*.rs`) and the references
//! between them.
//!
//! In a top-level module `b` (and every module nested in it), these count as `b → a`:
//! - `crate::a::…` anywhere: `use` trees (also inside groups, `use crate::{a, b::C}`), paths in
//!   types and expressions, paths in macro arguments, `"crate::a::…"` strings in attributes (such
//!   as `#[serde(with = "…")]`);
//! - `super::a::…` whose `super`s climb to the crate root (`super::` in a top-level module,
//!   `super::super::` one level down);
//! - `crate::X` where the crate root re-exports `X` from `a` (`pub use a::X;`, `pub use a::*;`);
//! - `a::…` in a module that glob-imports the crate root (`use super::*;` at the top level).
//!
//! Items and modules under a `#[cfg(...)]` that holds only with `test` are skipped, and so are
//! doc comments and `pub(in …)` visibilities.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{Spacing, Span, TokenStream, TokenTree};
use syn::punctuated::Punctuated;
use syn::visit::{self, Visit};
use syn::{Attribute, ImplItem, Item, ItemMod, Meta, TraitItem, UseTree};

use crate::error::Error;

/// One reference from a top-level module to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub from: String,
    pub to: String,
    pub file: PathBuf,
    pub line: usize,
    /// The path as written, e.g. `crate::sales::PaidInvoice`.
    pub path: String,
}

impl std::fmt::Display for Reference {
    /// `sales -> attribution: src/sales.rs:29 crate::attribution::flag_self_referral`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} -> {}: {}:{} {}",
            self.from,
            self.to,
            self.file.display(),
            self.line,
            self.path
        )
    }
}

/// The top-level modules of a crate root and every reference between two of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModuleGraph {
    /// In declaration order.
    pub modules: Vec<String>,
    /// In the order found.
    pub references: Vec<Reference>,
}

/// Read the crate whose root file is `root_file`.
pub fn read(root_file: &Path) -> Result<ModuleGraph, Error> {
    let root = parse(root_file)?;
    let src_dir = root_file.parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut tops: Vec<Source> = vec![];
    for item in &root.items {
        if let Item::Mod(m) = item {
            if !test_only(&m.attrs) {
                tops.push(module_source(m, &src_dir, root_file)?);
            }
        }
    }
    let names: BTreeSet<String> = tops.iter().map(|t| t.name.clone()).collect();
    let exports = root_exports(&root.items, &names, &tops);
    let crate_ctx = CrateContext { names, exports };
    let mut graph = ModuleGraph {
        modules: tops.iter().map(|t| t.name.clone()).collect(),
        references: vec![],
    };
    for top in &tops {
        let mut c = Collector {
            ctx: &crate_ctx,
            top: &top.name,
            scope: vec![top.name.clone()],
            dirs: vec![top.child_dir.clone()],
            root_glob: vec![glob_imports_root(&top.items, 1)],
            file: top.file.clone(),
            references: vec![],
            error: None,
        };
        for item in &top.items {
            c.visit_item(item);
        }
        if let Some(e) = c.error {
            return Err(e);
        }
        graph.references.extend(c.references);
    }
    Ok(graph)
}

fn parse(path: &Path) -> Result<syn::File, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    syn::parse_file(&text).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        line: e.span().start().line,
        message: e.to_string(),
    })
}

/// A module's items, the file they are in, and the directory of its own `mod x;` files.
struct Source {
    name: String,
    items: Vec<Item>,
    file: PathBuf,
    child_dir: PathBuf,
}

/// `dir` is where the files of the current module's `mod x;` children live.
fn module_source(m: &ItemMod, dir: &Path, current_file: &Path) -> Result<Source, Error> {
    let name = m.ident.to_string();
    if let Some((_, items)) = &m.content {
        return Ok(Source {
            items: items.clone(),
            file: current_file.to_path_buf(),
            child_dir: dir.join(&name),
            name,
        });
    }
    let candidates = match path_attribute(&m.attrs) {
        // Relative to the directory of the file that declares the module.
        Some(p) => vec![current_file.parent().unwrap_or(Path::new(".")).join(p)],
        None => vec![
            dir.join(format!("{name}.rs")),
            dir.join(&name).join("mod.rs"),
        ],
    };
    let Some(file) = candidates.iter().find(|c| c.is_file()) else {
        return Err(Error::MissingModule {
            path: current_file.to_path_buf(),
            module: name,
            looked_for: candidates
                .iter()
                .map(|c| c.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        });
    };
    let child_dir =
        if file.file_name().is_some_and(|f| f == "mod.rs") || path_attribute(&m.attrs).is_some() {
            file.parent().unwrap_or(Path::new(".")).to_path_buf()
        } else {
            dir.join(&name)
        };
    Ok(Source {
        items: parse(file)?.items,
        file: file.clone(),
        child_dir,
        name,
    })
}

fn path_attribute(attrs: &[Attribute]) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        Meta::NameValue(nv) if nv.path.is_ident("path") => match &nv.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// Whether these attributes hold a `#[cfg(...)]` that can only be true in a test build.
fn test_only(attrs: &[Attribute]) -> bool {
    attrs
        .iter()
        .any(|a| a.path().is_ident("cfg") && a.parse_args::<Meta>().is_ok_and(|m| needs_test(&m)))
}

fn needs_test(cfg: &Meta) -> bool {
    match cfg {
        Meta::Path(p) => p.is_ident("test"),
        Meta::List(list) => {
            let nested = list
                .parse_args_with(Punctuated::<Meta, syn::Token![,]>::parse_terminated)
                .unwrap_or_default();
            if list.path.is_ident("all") {
                nested.iter().any(needs_test)
            } else if list.path.is_ident("any") {
                !nested.is_empty() && nested.iter().all(needs_test)
            } else {
                false
            }
        }
        Meta::NameValue(_) => false,
    }
}

fn item_attrs(item: &Item) -> &[Attribute] {
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::ExternCrate(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::ForeignMod(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::TraitAlias(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Union(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

/// The name an item declares, if any.
fn item_name(item: &Item) -> Option<String> {
    let ident = match item {
        Item::Const(i) => &i.ident,
        Item::Enum(i) => &i.ident,
        Item::Fn(i) => &i.sig.ident,
        Item::Macro(i) => i.ident.as_ref()?,
        Item::Mod(i) => &i.ident,
        Item::Static(i) => &i.ident,
        Item::Struct(i) => &i.ident,
        Item::Trait(i) => &i.ident,
        Item::TraitAlias(i) => &i.ident,
        Item::Type(i) => &i.ident,
        Item::Union(i) => &i.ident,
        _ => return None,
    };
    Some(ident.to_string())
}

/// What one leaf of a `use` tree brings in.
enum Leaf {
    Name(String),
    Rename(String),
    Glob,
}

/// A `use` tree as its leaves: the full path of each, what it brings in, and where it starts.
fn use_leaves(tree: &UseTree) -> Vec<(Vec<String>, Leaf, Span)> {
    fn walk(
        tree: &UseTree,
        prefix: &mut Vec<(String, Span)>,
        out: &mut Vec<(Vec<String>, Leaf, Span)>,
    ) {
        let mut leaf = |prefix: &[(String, Span)], last: Option<(String, Span)>, kind: Leaf| {
            let mut path: Vec<String> = prefix.iter().map(|(s, _)| s.clone()).collect();
            let mut span = prefix.first().map(|(_, s)| *s);
            if let Some((name, s)) = last {
                span = span.or(Some(s));
                path.push(name);
            }
            out.push((path, kind, span.unwrap_or_else(Span::call_site)));
        };
        match tree {
            UseTree::Path(p) => {
                prefix.push((p.ident.to_string(), p.ident.span()));
                walk(&p.tree, prefix, out);
                prefix.pop();
            }
            UseTree::Name(n) => {
                let name = n.ident.to_string();
                leaf(
                    prefix,
                    Some((name.clone(), n.ident.span())),
                    Leaf::Name(name),
                );
            }
            UseTree::Rename(r) => leaf(
                prefix,
                Some((r.ident.to_string(), r.ident.span())),
                Leaf::Rename(r.rename.to_string()),
            ),
            UseTree::Glob(_) => leaf(prefix, None, Leaf::Glob),
            UseTree::Group(g) => {
                for t in &g.items {
                    walk(t, prefix, out);
                }
            }
        }
    }
    let mut out = vec![];
    walk(tree, &mut vec![], &mut out);
    out
}

/// The names the crate root re-exports from a top-level module: `use a::X;`, `use a::Y as Z;`,
/// and the items of `a` for `use a::*;`.
fn root_exports(
    items: &[Item],
    names: &BTreeSet<String>,
    tops: &[Source],
) -> BTreeMap<String, String> {
    let mut exports = BTreeMap::new();
    let mut globs = vec![];
    for item in items {
        let Item::Use(u) = item else { continue };
        if test_only(&u.attrs) || u.leading_colon.is_some() {
            continue;
        }
        for (path, leaf, _) in use_leaves(&u.tree) {
            let path: Vec<&str> = path
                .iter()
                .map(String::as_str)
                .skip_while(|s| *s == "crate" || *s == "self")
                .collect();
            let Some(module) = path.first().filter(|m| names.contains(**m)) else {
                continue;
            };
            match leaf {
                Leaf::Name(n) if path.len() > 1 => {
                    exports.insert(n, module.to_string());
                }
                Leaf::Rename(n) => {
                    exports.insert(n, module.to_string());
                }
                Leaf::Glob if path.len() == 1 => globs.push(module.to_string()),
                _ => {}
            }
        }
    }
    for module in globs {
        let Some(top) = tops.iter().find(|t| t.name == module) else {
            continue;
        };
        for item in &top.items {
            if test_only(item_attrs(item)) {
                continue;
            }
            let declared = match item {
                Item::Use(u) => use_leaves(&u.tree)
                    .into_iter()
                    .filter_map(|(path, leaf, _)| match leaf {
                        Leaf::Name(n) | Leaf::Rename(n) if n != "self" => Some(n),
                        Leaf::Name(_) => path.iter().rev().nth(1).cloned(),
                        _ => None,
                    })
                    .collect(),
                other => item_name(other).into_iter().collect::<Vec<_>>(),
            };
            for name in declared {
                exports.entry(name).or_insert_with(|| module.clone());
            }
        }
    }
    exports
}

/// Whether these items (of a module `depth` levels below the root) glob-import the crate root.
fn glob_imports_root(items: &[Item], depth: usize) -> bool {
    items.iter().any(|item| match item {
        Item::Use(u) if !test_only(&u.attrs) => {
            use_leaves(&u.tree).iter().any(|(path, leaf, _)| {
                matches!(leaf, Leaf::Glob)
                    && (path == &["crate"]
                        || (path.len() == depth && path.iter().all(|s| s == "super")))
            })
        }
        _ => false,
    })
}

struct CrateContext {
    /// The top-level modules.
    names: BTreeSet<String>,
    /// Names re-exported by the crate root, with the top-level module they come from.
    exports: BTreeMap<String, String>,
}

struct Collector<'a> {
    ctx: &'a CrateContext,
    top: &'a str,
    /// The module being read, from its top-level module down.
    scope: Vec<String>,
    /// For each level of `scope`, the directory of its `mod x;` files.
    dirs: Vec<PathBuf>,
    /// For each level of `scope`, whether it glob-imports the crate root.
    root_glob: Vec<bool>,
    file: PathBuf,
    references: Vec<Reference>,
    error: Option<Error>,
}

impl Collector<'_> {
    /// The top-level module a path written in the current module refers into, if another one.
    fn target(&self, path: &[String]) -> Option<String> {
        let first = path.first()?;
        let rest = match first.as_str() {
            "crate" => &path[1..],
            "super" => {
                let ups = path.iter().take_while(|s| *s == "super").count();
                if ups != self.scope.len() {
                    // Inside this top-level module (or not valid Rust).
                    return None;
                }
                &path[ups..]
            }
            _ if self.root_glob.last().copied().unwrap_or(false) => path,
            _ => return None,
        };
        let name = rest.first()?;
        let module = if self.ctx.names.contains(name) {
            name.clone()
        } else {
            self.ctx.exports.get(name)?.clone()
        };
        (module != self.top).then_some(module)
    }

    fn record(&mut self, path: &[String], span: Span) {
        if let Some(to) = self.target(path) {
            self.references.push(Reference {
                from: self.top.to_string(),
                to,
                file: self.file.clone(),
                line: span.start().line,
                path: path.join("::"),
            });
        }
    }

    /// Paths in a token stream that syn leaves unparsed (macro arguments, attribute arguments):
    /// `crate::a::…` and `super::a::…`, and with `strings`, string literals holding one.
    fn scan_tokens(&mut self, tokens: TokenStream, strings: bool) {
        let tokens: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < tokens.len() {
            match &tokens[i] {
                TokenTree::Group(g) => self.scan_tokens(g.stream(), strings),
                TokenTree::Ident(id)
                    if (id == "crate" || id == "super") && !after_path_sep(&tokens, i) =>
                {
                    let mut path = vec![id.to_string()];
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (tokens.get(i + 1), tokens.get(i + 2), tokens.get(i + 3))
                    {
                        if a.as_char() != ':' || a.spacing() != Spacing::Joint || b.as_char() != ':'
                        {
                            break;
                        }
                        path.push(next.to_string());
                        i += 3;
                    }
                    self.record(&path, id.span());
                }
                TokenTree::Literal(lit) if strings => {
                    let text = lit.to_string();
                    if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                        self.record_string(inner, lit.span());
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }

    /// A path given as a string, as in `#[serde(with = "crate::money::minor")]`.
    fn record_string(&mut self, text: &str, span: Span) {
        let text = text.trim();
        if text.starts_with("crate::") || text.starts_with("super::") {
            let path: Vec<String> = text.split("::").map(str::to_string).collect();
            self.record(&path, span);
        }
    }

    fn enter(&mut self, m: &ItemMod) {
        let dir = self.dirs.last().cloned().unwrap_or_default();
        let source = match module_source(m, &dir, &self.file) {
            Ok(s) => s,
            Err(e) => {
                self.error.get_or_insert(e);
                return;
            }
        };
        let outer_file = std::mem::replace(&mut self.file, source.file);
        self.scope.push(source.name);
        self.dirs.push(source.child_dir);
        self.root_glob
            .push(glob_imports_root(&source.items, self.scope.len()));
        for item in &source.items {
            self.visit_item(item);
        }
        self.root_glob.pop();
        self.dirs.pop();
        self.scope.pop();
        self.file = outer_file;
    }
}

/// Whether the token at `i` follows `::` (so it does not start a path).
fn after_path_sep(tokens: &[TokenTree], i: usize) -> bool {
    let colon = |j: usize, spacing: Spacing| matches!(tokens.get(j), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == spacing);
    i >= 2 && colon(i - 2, Spacing::Joint) && colon(i - 1, Spacing::Alone)
}

impl<'ast> Visit<'ast> for Collector<'_> {
    fn visit_item(&mut self, item: &'ast Item) {
        if !test_only(item_attrs(item)) {
            visit::visit_item(self, item);
        }
    }

    fn visit_impl_item(&mut self, item: &'ast ImplItem) {
        let attrs: &[Attribute] = match item {
            ImplItem::Const(i) => &i.attrs,
            ImplItem::Fn(i) => &i.attrs,
            ImplItem::Type(i) => &i.attrs,
            ImplItem::Macro(i) => &i.attrs,
            _ => &[],
        };
        if !test_only(attrs) {
            visit::visit_impl_item(self, item);
        }
    }

    fn visit_trait_item(&mut self, item: &'ast TraitItem) {
        let attrs: &[Attribute] = match item {
            TraitItem::Const(i) => &i.attrs,
            TraitItem::Fn(i) => &i.attrs,
            TraitItem::Type(i) => &i.attrs,
            TraitItem::Macro(i) => &i.attrs,
            _ => &[],
        };
        if !test_only(attrs) {
            visit::visit_trait_item(self, item);
        }
    }

    fn visit_item_mod(&mut self, m: &'ast ItemMod) {
        for attr in &m.attrs {
            self.visit_attribute(attr);
        }
        self.enter(m);
    }

    fn visit_item_use(&mut self, u: &'ast syn::ItemUse) {
        for attr in &u.attrs {
            self.visit_attribute(attr);
        }
        if u.leading_colon.is_some() {
            return;
        }
        for (path, _, span) in use_leaves(&u.tree) {
            self.record(&path, span);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if p.leading_colon.is_none() {
            let path: Vec<String> = p.segments.iter().map(|s| s.ident.to_string()).collect();
            let span = p
                .segments
                .first()
                .map(|s| s.ident.span())
                .unwrap_or_else(Span::call_site);
            self.record(&path, span);
        }
        visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        visit::visit_macro(self, m);
        self.scan_tokens(m.tokens.clone(), false);
    }

    fn visit_attribute(&mut self, attr: &'ast Attribute) {
        if attr.path().is_ident("doc") || attr.path().is_ident("path") {
            return;
        }
        match &attr.meta {
            Meta::List(list) => self.scan_tokens(list.tokens.clone(), true),
            Meta::NameValue(nv) => match &nv.value {
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Str(s),
                    ..
                }) => self.record_string(&s.value(), s.span()),
                other => self.visit_expr(other),
            },
            Meta::Path(p) => self.visit_path(p),
        }
    }

    fn visit_vis_restricted(&mut self, _: &'ast syn::VisRestricted) {}
}
