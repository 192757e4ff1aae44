//! The UI's modules import each other without cycles (issue 28): state shared by several modules
//! lives in `state`, formatting in `style`, both leaves, so `app` (keys) and the modules that draw and
//! handle keys for a view depend on them and not on each other. Reads every `crate::` path.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(&src).unwrap().flatten() {
        let p = e.path();
        let Some(name) = p.file_stem().map(|s| s.to_string_lossy().to_string()) else {
            continue;
        };
        if name == "lib" || p.extension().is_none_or(|x| x != "rs") {
            continue;
        }
        let text: String = std::fs::read_to_string(&p)
            .unwrap()
            .lines()
            .map(|l| l.split("//").next().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let used: BTreeSet<String> = text
            .match_indices("crate::")
            .map(|(i, _)| {
                text[i + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<String>()
            })
            .filter(|m| !m.is_empty() && *m != name)
            .collect();
        out.insert(name, used);
    }
    out
}

/// A cycle through `start`, as the path of modules, if there is one.
fn cycle_from(
    g: &BTreeMap<String, BTreeSet<String>>,
    start: &str,
    at: &str,
    path: &mut Vec<String>,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    for next in g.get(at).into_iter().flatten() {
        if next == start {
            let mut c = path.clone();
            c.push(start.to_string());
            return Some(c);
        }
        if seen.insert(next.clone()) {
            path.push(next.clone());
            if let Some(c) = cycle_from(g, start, next, path, seen) {
                return Some(c);
            }
            path.pop();
        }
    }
    None
}

#[test]
fn the_uis_modules_import_each_other_without_cycles() {
    let g = imports();
    assert!(g.contains_key("app") && g["app"].contains("state"), "{g:?}");
    for m in g.keys() {
        let mut path = vec![m.clone()];
        if let Some(c) = cycle_from(&g, m, m, &mut path, &mut BTreeSet::new()) {
            panic!("import cycle: {}", c.join(" -> "));
        }
    }
    // The leaves stay leaves.
    for leaf in ["style", "model"] {
        assert!(g[leaf].is_empty(), "{leaf} imports {:?}", g[leaf]);
    }
}
