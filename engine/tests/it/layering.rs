//! The engine's floors (docs/architecture.md, "Floors"): each module imports only from its own floor
//! or below. This reads every `crate::…` path in each engine source file (comments left out), maps
//! files to their top-level module and modules to floors, and fails on an import against the
//! direction, or on an import cycle between modules, that is not in the lists of known ones below.
//! Those lists are a ratchet (issue 28): they may only shrink, and the test also fails when one of
//! their entries no longer occurs, so fixing one means deleting its line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Floor of each top-level module, lowest first (0 ground, 1 model, 2 records, 3 work, 4 top).
const FLOORS: &[(&str, u8)] = &[
    ("key", 0),
    ("clock", 0),
    ("error", 0),
    ("hash", 0),
    ("duration", 0),
    ("redact", 0),
    ("events", 0),
    ("sql", 0),
    ("project", 0),
    ("graph", 0),
    ("partitions", 0),
    ("schedule", 0),
    ("sensor", 0),
    ("automation", 0),
    ("selection", 1),
    ("upstream", 1),
    ("kinds", 1),
    ("column_lineage", 1),
    ("session", 1),
    ("encode", 2),
    ("store", 2),
    ("warehouse", 2),
    ("staleness", 3),
    ("loader", 3),
    ("plan", 3),
    ("materialize", 3),
    ("checks", 3),
    ("check", 3),
    ("recovery", 3),
    ("backfill", 3),
    ("daemon", 3),
    ("doctor", 3),
    ("maintenance", 3),
    ("instance", 3),
    ("engine", 4),
    ("query", 4),
    ("facts", 4),
    ("reads", 4),
];

/// Upward imports that exist today (`from -> to`): none. The work modules operate on an `Instance`
/// (floor 3), not on the `Engine` facade above them.
const KNOWN_UPWARD: &[&str] = &[];

/// Modules on an import cycle today, each cycle as its sorted member list: none.
const KNOWN_CYCLES: &[&str] = &[];

/// The module of each name `lib.rs` re-exports at the crate root (`pub use module::{A, B}`), so that
/// `crate::Engine` counts as an import of `engine`.
fn root_exports(root: &Path) -> BTreeMap<String, String> {
    let lib = std::fs::read_to_string(root.join("lib.rs")).unwrap();
    let mut out = BTreeMap::new();
    for item in lib.split(';') {
        let Some(rest) = item.trim().strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        if !FLOORS.iter().any(|(m, _)| *m == module.trim()) {
            continue;
        }
        let names = names.trim_start_matches('{').trim_end_matches('}');
        for name in names.split(',') {
            // `a::B` re-exports B from a's submodule; `B as C` is named C.
            let name = name.trim().rsplit("::").next().unwrap_or_default();
            let name = name.rsplit(" as ").next().unwrap_or_default().trim();
            if !name.is_empty() {
                out.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

/// Every `.rs` file under `root`, at any depth.
fn rust_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let exports = root_exports(&root);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in rust_files(&root) {
        let rel = p.strip_prefix(&root).unwrap().to_string_lossy().to_string();
        let module = rel
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if module == "lib" {
            continue;
        }
        let text: String = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .map(|l| l.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let mut found = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let rest = &text[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a::X, b}`.
                let inner = group.split('}').next().unwrap_or_default();
                for part in inner.split(',') {
                    let name: String = part
                        .trim()
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    found.insert(name);
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                found.insert(name);
            }
        }
        let found: BTreeSet<String> = found
            .into_iter()
            .map(|m| exports.get(&m).cloned().unwrap_or(m))
            .filter(|m| {
                !m.is_empty() && *m != module && m.chars().next().is_some_and(|c| c.is_lowercase())
            })
            .collect();
        out.entry(module).or_default().extend(found);
    }
    out
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        let i = t.index.len();
        t.index.insert(v, i);
        t.low.insert(v, i);
        t.stack.push(v);
        t.on.insert(v);
        if let Some(next) = t.g.get(v) {
            for w in next {
                let w = w.as_str();
                if !t.index.contains_key(w) {
                    visit(t, w);
                    let lw = t.low[w];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if t.on.contains(w) {
                    let iw = t.index[w];
                    let lv = t.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
        }
        if t.low[v] == t.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                scc.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                t.out.push(scc);
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    t.out
}

#[test]
fn engine_modules_import_only_from_their_floor_or_below() {
    let floors: BTreeMap<&str, u8> = FLOORS.iter().copied().collect();
    let graph = imports();
    let unknown: Vec<&String> = graph
        .keys()
        .chain(graph.values().flatten())
        .filter(|m| !floors.contains_key(m.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "modules without a floor: {unknown:?}; give each one in FLOORS and docs/architecture.md"
    );
    let mut upward = BTreeSet::new();
    for (from, tos) in &graph {
        for to in tos {
            if floors[to.as_str()] > floors[from.as_str()] {
                upward.insert(format!("{from} -> {to}"));
            }
        }
    }
    let known: BTreeSet<String> = KNOWN_UPWARD.iter().map(|s| s.to_string()).collect();
    let new: Vec<&String> = upward.difference(&known).collect();
    assert!(
        new.is_empty(),
        "imports against the floors (docs/architecture.md): {new:?}; import from your floor or \
         below (move the shared part down, or the caller up)"
    );
    let gone: Vec<&String> = known.difference(&upward).collect();
    assert!(
        gone.is_empty(),
        "these known upward imports are gone: delete them from KNOWN_UPWARD: {gone:?}"
    );
    let found: BTreeSet<String> = cycles(&graph).into_iter().map(|c| c.join(" ")).collect();
    let known: BTreeSet<String> = KNOWN_CYCLES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        found, known,
        "import cycles between engine modules changed (a new one, or a known one broken: update \
         KNOWN_CYCLES)"
    );
}

/// No engine file outside a kind's folder (`kinds/NAME/`) names that kind's configuration types: the
/// engine asks kinds about their capabilities instead (issue 28, item 3).
#[test]
fn kind_configurations_stay_in_their_kinds_folder() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let files = |dir: &Path| -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    out.push(p);
                }
            }
        }
        out
    };
    let mut checked = 0;
    for kind in std::fs::read_dir(src.join("kinds")).unwrap().flatten() {
        if !kind.path().is_dir() {
            continue;
        }
        let own = files(&kind.path());
        let types: BTreeSet<String> = own
            .iter()
            .flat_map(|f| {
                let text = std::fs::read_to_string(f).unwrap();
                text.lines()
                    .filter_map(|l| l.trim().strip_prefix("pub struct "))
                    .map(|rest| {
                        rest.chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect::<String>()
                    })
                    .filter(|name| name.ends_with("Config"))
                    .collect::<Vec<_>>()
            })
            .collect();
        for f in files(&src) {
            if f.starts_with(kind.path()) {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            for t in &types {
                checked += 1;
                assert!(
                    !text.contains(t.as_str()),
                    "{} names {t}, the configuration of the kind in {}: ask the kind \
                     (AssetKind::reads_in_place and the other capabilities) instead",
                    f.display(),
                    kind.path().display()
                );
            }
        }
    }
    assert!(
        checked > 0,
        "no kind folder with a configuration type was found"
    );
}

#[test]
fn names_re_exported_at_the_crate_root_count_as_imports_of_their_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let exports = root_exports(&root);
    assert_eq!(exports.get("Engine").map(String::as_str), Some("engine"));
    assert_eq!(
        exports.get("Instance").map(String::as_str),
        Some("instance")
    );
    assert_eq!(exports.get("StepKey").map(String::as_str), Some("key"));
    assert_eq!(
        exports.get("ExecuteOptions").map(String::as_str),
        Some("materialize")
    );
    // Outside the crate: not a module of the engine.
    assert!(!exports.contains_key("CancellationToken"));
    // `reads` imports `Engine` through the root (`use crate::Engine`), which is the top floor's own.
    assert!(imports()["reads"].contains("engine"));
}

/// Files of the CLI and the UI that may hold the whole run store: `assets bench --store` measures
/// the store's protocol itself, on stores it opens.
const WHOLE_STORE_ALLOWED: &[&str] = &["assets/src/cmd/bench_store.rs"];

#[test]
fn the_cli_and_the_ui_read_the_run_store_through_its_read_parts() {
    // They read through `Instance::reader` (the `ReadStore` parts) and change state through the
    // engine's methods, never through the store's protocol halves (`Instance::store`, `RunStore`).
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut offenders = Vec::new();
    let mut seen = 0;
    for crate_src in ["assets/src", "tui/src"] {
        for p in rust_files(&workspace.join(crate_src)) {
            let rel = p
                .strip_prefix(&workspace)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if WHOLE_STORE_ALLOWED.contains(&rel.as_str()) {
                continue;
            }
            seen += 1;
            let text = std::fs::read_to_string(&p).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                if code.contains(".store()") || code.contains("RunStore") {
                    offenders.push(format!("{rel}:{}: {}", n + 1, line.trim()));
                }
            }
        }
    }
    assert!(
        seen > 20,
        "found only {seen} source files of the CLI and the UI"
    );
    assert!(
        offenders.is_empty(),
        "the CLI and the UI must read through `engine.reader()` and write through the engine:\n{}",
        offenders.join("\n")
    );
}
