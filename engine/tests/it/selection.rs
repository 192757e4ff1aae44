//! Golden tests for the selection syntax: `fixtures/selection.txt` holds a graph and expressions with
//! their expected results.

use spine_engine::project::{AssetSpec, Project, ProjectConfig};
use spine_engine::selection::select;

fn build(lines: &[&str]) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let mut b = Project::builder(ProjectConfig::in_dir(dir.path()).unwrap());
    for line in lines {
        let (head, deps) = line.split_once("<-").unwrap_or((line, ""));
        let mut parts = head.split_whitespace().skip(1);
        let key = parts.next().unwrap();
        let kind = parts.next().unwrap();
        let group = parts.next().unwrap();
        let deps: Vec<&str> = deps.split_whitespace().collect();
        let mut spec = AssetSpec::rust(key, &deps, "v1", |_| async { Ok(vec![]) })
            .unwrap()
            .with_group(group);
        spec.kind = kind.to_string();
        for p in parts {
            match p.split_once('=') {
                Some(("tags", v)) => spec.tags = v.split(',').map(str::to_string).collect(),
                Some(("owners", v)) => spec.owners = v.split(',').map(str::to_string).collect(),
                _ => panic!("bad fixture field {p}"),
            }
        }
        b = b.asset(spec);
    }
    b.build().unwrap()
}

#[test]
fn selection_golden_fixtures() {
    let text = include_str!("../fixtures/selection.txt");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    let project = build(
        &lines
            .iter()
            .copied()
            .filter(|l| l.starts_with("asset "))
            .collect::<Vec<_>>(),
    );
    let mut checked = 0;
    for line in lines.iter().filter(|l| !l.starts_with("asset ")) {
        let (expr, expected) = line
            .split_once("=>")
            .unwrap_or_else(|| panic!("bad case line: {line}"));
        let (expr, expected) = (expr.trim(), expected.trim());
        let got = select(&project, Some(expr));
        if expected.starts_with('E') && expected.len() == 5 {
            let err = got.expect_err(expr);
            assert_eq!(err.code, expected, "{expr}: {err}");
        } else {
            let got: Vec<String> = got
                .unwrap_or_else(|e| panic!("{expr}: {e}"))
                .iter()
                .map(|k| k.to_string())
                .collect();
            let mut want: Vec<String> = expected.split_whitespace().map(str::to_string).collect();
            want.sort();
            assert_eq!(got, want, "selection {expr:?}");
        }
        checked += 1;
    }
    assert!(checked > 30, "only {checked} cases ran");
}
