//! The layout's two rules, checked against the source itself: the modules under `src/` import
//! only downward through the layers below, and no file reaches itself through the files it
//! imports (no import loop, even inside one folder).
//!
//! An import is any `crate::`, `super::` or `self::` path outside comments and the trailing
//! `#[cfg(test)] mod tests` (tests may reach anything), `use` groups included. A parent module
//! naming its own children by their bare names (`mod x; use x::Y;`) is a facade, not an import.

#![allow(clippy::unwrap_used)] // an unreadable source tree is a failing test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first. A module may import modules of lower layers only; a new top-level
/// module must be placed here.
const LAYERS: &[&[&str]] = &[
    // Pure leaves, and the transport, which knows HTTP but none of the APIs served over it.
    &[
        "clock",
        "rid",
        "ids",
        "token",
        "engine",
        "transport",
        "vision",
    ],
    // Decision math of the limits; the validated configuration, one settings type per section;
    // each app's verdicts and refusals over time.
    &["limits", "config", "usage"],
    // Backend traits and their implementations: keys, counters and bytes; and the platform
    // itself, behind the gateway in pass-through mode.
    &["state", "upstream"],
    // Domains over the state: the review queue, the user risk model, media analysis.
    &["review", "risk", "media"],
    // The apps, with each app's documents in force.
    &["tenants"],
    // What a verdict sets off.
    &["effects"],
    // Media check jobs.
    &["jobs"],
    // The metric registry over every component's metrics.
    &["metrics"],
    // Stored documents and the one way they change.
    &["catalog"],
    // The running gateway's shared parts.
    &["gateway"],
    // The two HTTP APIs.
    &["api", "admin"],
    // Building, serving and draining; and the fuzz targets' entry points.
    &["app", "fuzzing"],
];

/// A module path (`["jobs", "dispatch"]`; the crate root is empty) and its file.
struct Module {
    path: Vec<String>,
    file: PathBuf,
    /// `mod.rs` or `lib.rs`: `self::` and `super::` count from the folder itself.
    is_folder: bool,
}

fn modules(src: &Path) -> Vec<Module> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(src, &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|f| f.strip_prefix(src).unwrap() != Path::new("main.rs"))
        .map(|file| {
            let rel = file.strip_prefix(src).unwrap().with_extension("");
            let mut path: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            let is_folder = matches!(path.last().map(String::as_str), Some("mod" | "lib"));
            if is_folder {
                path.pop();
            }
            Module {
                path,
                file,
                is_folder,
            }
        })
        .collect()
}

/// The source without comments and without a trailing `#[cfg(test)] mod tests { .. }`.
fn code_of(text: &str) -> String {
    let tests_at = text.match_indices("#[cfg(test)]").find_map(|(at, attr)| {
        let after = text[at + attr.len()..].trim_start();
        let after = ["pub(crate) ", "pub "]
            .iter()
            .find_map(|v| after.strip_prefix(v))
            .unwrap_or(after);
        after.starts_with("mod tests").then_some(at)
    });
    let text = &text[..tests_at.unwrap_or(text.len())];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("//") {
            rest = after.find('\n').map_or("", |end| &after[end..]);
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |end| &after[end + 2..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Reads `ident` at the start of `s` (after spaces).
fn ident(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    let end = s.find(|c: char| !is_ident(c)).unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Parses the path after its first segment: `::a::b`, `::{x, y::{z}}`, `::*`. Every full path
/// it names is pushed onto `out`, prefixed by `prefix`.
fn path_tail(mut s: &str, mut prefix: Vec<String>, out: &mut Vec<Vec<String>>) -> usize {
    let start = s.len();
    loop {
        let t = s.trim_start();
        let Some(after) = t.strip_prefix("::") else {
            out.push(prefix);
            return start - s.len();
        };
        let after = after.trim_start();
        if let Some(group) = after.strip_prefix('{') {
            let mut g = group;
            loop {
                let g2 = g.trim_start();
                if let Some(end) = g2.strip_prefix('}') {
                    s = end;
                    return start - s.len();
                }
                let g2 = g2.strip_prefix(',').unwrap_or(g2).trim_start();
                if let Some(end) = g2.strip_prefix('}') {
                    s = end;
                    return start - s.len();
                }
                let (name, rest) = ident(g2);
                if name.is_empty() {
                    // `*` or something unreadable: the group's own path is what it names.
                    out.push(prefix.clone());
                    g = g2.get(1..).unwrap_or("");
                    continue;
                }
                let mut item = prefix.clone();
                if name != "self" {
                    item.push(name.to_owned());
                }
                let used = path_tail(rest, item, out);
                g = &rest[used..];
                let g3 = g.trim_start();
                if let Some(alias) = g3.strip_prefix("as ") {
                    g = ident(alias).1;
                }
            }
        }
        let (name, rest) = ident(after);
        if name.is_empty() {
            // `::*`: a glob names the module it reads from.
            out.push(prefix);
            s = after.strip_prefix('*').unwrap_or(after);
            return start - s.len();
        }
        prefix.push(name.to_owned());
        s = rest;
    }
}

/// Every module path a file's code names through `crate::`, `super::` or `self::`.
fn imports(m: &Module, code: &str) -> Vec<Vec<String>> {
    let here: Vec<String> = if m.is_folder {
        m.path.clone()
    } else {
        m.path[..m.path.len().saturating_sub(1)].to_vec()
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let before_ok = code[..i].chars().next_back().is_none_or(|c| !is_ident(c));
        let keyword = ["crate", "super", "self"]
            .into_iter()
            .find(|k| rest.starts_with(k) && rest[k.len()..].trim_start().starts_with("::"));
        match keyword {
            Some(k) if before_ok => {
                let base = match k {
                    "crate" => Vec::new(),
                    "self" => m.path.clone(),
                    // `super` of `a/b.rs` is `a`; of `a/mod.rs`, the crate root.
                    _ if m.is_folder => here[..here.len().saturating_sub(1)].to_vec(),
                    _ => here.clone(),
                };
                let mut named = Vec::new();
                let used = path_tail(&rest[k.len()..], base, &mut named);
                for mut path in named {
                    // `super::super::x`: each further `super` climbs one more.
                    while let Some(at) = path.iter().position(|s| s == "super") {
                        path.remove(at);
                        if at > 0 {
                            path.remove(at - 1);
                        }
                    }
                    out.push(path);
                }
                i += k.len() + used.max(1);
            }
            _ => i += rest.chars().next().map_or(1, char::len_utf8),
        }
    }
    out
}

/// The file-level import graph: module index -> module indexes.
fn graph(mods: &[Module]) -> Vec<BTreeSet<usize>> {
    let index: BTreeMap<&[String], usize> = mods
        .iter()
        .enumerate()
        .map(|(i, m)| (m.path.as_slice(), i))
        .collect();
    mods.iter()
        .enumerate()
        .map(|(me, m)| {
            let code = code_of(&std::fs::read_to_string(&m.file).unwrap());
            imports(m, &code)
                .into_iter()
                .filter_map(|path| {
                    (0..=path.len())
                        .rev()
                        .find_map(|n| index.get(&path[..n]).copied())
                })
                .filter(|&target| target != me)
                .collect()
        })
        .collect()
}

/// Strongly connected components of more than one file (Tarjan).
fn loops(edges: &[BTreeSet<usize>]) -> Vec<Vec<usize>> {
    struct Tarjan<'a> {
        edges: &'a [BTreeSet<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        stack: Vec<usize>,
        on: Vec<bool>,
        next: usize,
        found: Vec<Vec<usize>>,
    }
    impl Tarjan<'_> {
        fn visit(&mut self, v: usize) {
            self.index[v] = Some(self.next);
            self.low[v] = self.next;
            self.next += 1;
            self.stack.push(v);
            self.on[v] = true;
            for &w in self.edges[v].iter() {
                match self.index[w] {
                    None => {
                        self.visit(w);
                        self.low[v] = self.low[v].min(self.low[w]);
                    }
                    Some(iw) if self.on[w] => self.low[v] = self.low[v].min(iw),
                    Some(_) => {}
                }
            }
            if Some(self.low[v]) == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on[w] = false;
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.found.push(component);
                }
            }
        }
    }
    let n = edges.len();
    let mut t = Tarjan {
        edges,
        index: vec![None; n],
        low: vec![0; n],
        stack: Vec::new(),
        on: vec![false; n],
        next: 0,
        found: Vec::new(),
    };
    for v in 0..n {
        if t.index[v].is_none() {
            t.visit(v);
        }
    }
    t.found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn name(m: &Module) -> String {
    m.file
        .strip_prefix(src())
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn no_file_reaches_itself_through_its_imports() {
    let mods = modules(&src());
    assert!(mods.len() > 50, "the source tree was not found");
    let edges = graph(&mods);
    let mut report = String::new();
    for component in loops(&edges) {
        let members: BTreeSet<usize> = component.iter().copied().collect();
        report.push_str("loop:\n");
        for &a in &members {
            for &b in edges[a].intersection(&members) {
                report.push_str(&format!("    {} -> {}\n", name(&mods[a]), name(&mods[b])));
            }
        }
    }
    assert!(report.is_empty(), "import loops between files:\n{report}");
}

#[test]
fn modules_import_only_the_layers_below_them() {
    let layer_of = |top: &str| LAYERS.iter().position(|layer| layer.contains(&top));
    let mods = modules(&src());
    let edges = graph(&mods);
    let mut unplaced = BTreeSet::new();
    let mut upward = Vec::new();
    for (a, targets) in edges.iter().enumerate() {
        let Some(from) = mods[a].path.first() else {
            continue; // lib.rs: declares the modules and re-exports the entry points
        };
        let Some(from_layer) = layer_of(from) else {
            unplaced.insert(from.clone());
            continue;
        };
        for &b in targets {
            let Some(to) = mods[b].path.first() else {
                upward.push(format!("{} -> lib.rs", name(&mods[a])));
                continue;
            };
            if to == from {
                continue;
            }
            match layer_of(to) {
                Some(to_layer) if to_layer < from_layer => {}
                Some(_) => upward.push(format!("{} -> {}", name(&mods[a]), name(&mods[b]))),
                None => {
                    unplaced.insert(to.clone());
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules missing from LAYERS: {unplaced:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that do not go to a lower layer:\n    {}",
        upward.join("\n    ")
    );
}

/// The checker itself: it sees plain paths, nested groups, aliases, `self` in a group and
/// `super` from a file and from a folder's `mod.rs`, and ignores comments and tests.
#[test]
fn the_checker_reads_paths_as_rustc_does() {
    let file = |path: &[&str], is_folder| Module {
        path: path.iter().map(|s| (*s).to_owned()).collect(),
        file: PathBuf::new(),
        is_folder,
    };
    let code = code_of(
        "use crate::a::{b, c::{d as e, self}, f::*};\n\
         // use crate::hidden;\n\
         fn x() { super::sibling::f(); self::inner::g(); my_crate::no(); }\n\
         /* crate::also_hidden */\n\
         #[cfg(test)]\nmod tests {\n use crate::in_tests;\n}\n",
    );
    let found: BTreeSet<String> = imports(&file(&["p", "q"], false), &code)
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    let want: BTreeSet<String> = [
        "a::b",
        "a::c::d",
        "a::c",
        "a::f",
        "p::sibling::f",
        "p::q::inner::g",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(found, want);
    let from_folder: Vec<String> = imports(&file(&["p"], true), "super::top::x; self::child::y")
        .into_iter()
        .map(|p| p.join("::"))
        .collect();
    assert_eq!(from_folder, ["top::x", "p::child::y"]);
    let edges = vec![
        BTreeSet::from([1]),
        BTreeSet::from([2]),
        BTreeSet::from([0]),
        BTreeSet::new(),
    ];
    let mut found = loops(&edges);
    found[0].sort_unstable();
    assert_eq!(found, vec![vec![0, 1, 2]]);
}
