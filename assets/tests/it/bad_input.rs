//! Every class of bad input: a clear error (code, file, line, asset, hint), exit code 2, and nothing that
//! was already stored changes.

use crate::common::*;

/// Materializes the diamond, applies `breakage`, runs `args`, and checks exit 2, the error text, and
/// that state and warehouse are byte-for-byte unchanged.
fn assert_rejected(breakage: &dyn Fn(&Project), args: &[&str], expect: &[&str]) {
    let p = diamond();
    p.run(&["materialize"]).ok();
    let before = p.snapshot();
    assert!(!before.is_empty());
    breakage(&p);
    let r = p.run(args);
    r.code(2);
    for e in expect {
        assert!(
            r.stderr.contains(e),
            "stderr should contain {e:?}:\n{}",
            r.stderr
        );
    }
    assert_eq!(
        before,
        p.snapshot(),
        "stored state changed after a rejected command"
    );
}

#[test]
fn cycle_is_named() {
    assert_rejected(
        &|p| {
            p.write(
                "assets/a.yaml",
                "key: raw/a\nkind: sql\nquery: SELECT * FROM marts.c\n",
            )
        },
        &["materialize"],
        &[
            "E0204",
            "dependency cycle: marts/c → raw/a → stg/b → marts/c",
        ],
    );
}

#[test]
fn unknown_upstream_suggests_closest() {
    assert_rejected(
        &|p| p.write("assets/b.sql", "SELECT id, x FROM raw.aa\n"),
        &["check"],
        &[
            "E0203",
            "unknown upstream 'raw/aa'",
            "asset 'stg/b'",
            "did you mean 'raw/a'?",
        ],
    );
    assert_rejected(
        &|p| {
            p.write(
                "assets/x.yaml",
                "key: x\nkind: sql\nquery: SELECT 1 AS one\ndeps: [stg/bb]\n",
            )
        },
        &["materialize"],
        &[
            "E0203",
            "unknown upstream 'stg/bb'",
            "assets/x.yaml:1",
            "did you mean 'stg/b'?",
        ],
    );
}

#[test]
fn duplicate_keys_name_both_places() {
    assert_rejected(
        &|p| {
            p.write(
                "assets/dup.yaml",
                "# dup\nkey: raw/a\nkind: sql\nquery: SELECT 1 AS v\n",
            )
        },
        &["materialize"],
        &[
            "E0202",
            "duplicate asset key 'raw/a'",
            "assets/dup.yaml:2",
            "already defined at assets/a.yaml:1",
        ],
    );
}

/// A key inside another's folder would put its table inside the other's (where `vacuum` of the outer
/// one reached it), and keys equal up to case share a folder on some disks and a name in SQL.
#[test]
fn keys_nested_in_another_or_equal_up_to_case_are_refused() {
    assert_rejected(
        &|p| {
            p.write(
                "assets/nested.yaml",
                "key: raw/a/more\nkind: sql\nquery: SELECT 1 AS v\n",
            )
        },
        &["materialize"],
        &[
            "E0207",
            "asset key 'raw/a/more' would keep its table inside the table folder of 'raw/a'",
            "assets/nested.yaml:1",
            "'raw/a' is defined at assets/a.yaml:1",
        ],
    );
    assert_rejected(
        &|p| {
            p.write(
                "assets/case.yaml",
                "key: Raw/A\nkind: sql\nquery: SELECT 1 AS v\n",
            )
        },
        &["check"],
        &[
            "E0207",
            "asset keys 'Raw/A' and 'raw/a' differ only in case",
        ],
    );
}

/// A tab in YAML indentation is named as such; brackets nested 100,000 deep are refused at once
/// before the parser sees them (it took 21 s on them), naming the line.
#[test]
fn tabs_and_deep_nesting_in_yaml_get_clear_errors() {
    assert_rejected(
        &|p| p.write("assets/t.yaml", "key: t\n\tkind: sql\n"),
        &["check"],
        &[
            "E0107",
            "tabs are not allowed in YAML",
            "use spaces",
            "assets/t.yaml:2",
        ],
    );
    assert_rejected(
        &|p| {
            p.write(
                "assets/deep.yaml",
                &format!("key: t\nx: {}", "[".repeat(100_000)),
            )
        },
        &["check"],
        &["E0107", "nested more than 128 deep", "assets/deep.yaml:2"],
    );
}

/// `assets sql` naming a table that does not exist: a code, the closest key, exit 2 (issue 27).
#[test]
fn sql_on_an_unknown_table_names_the_closest_asset() {
    assert_rejected(
        &|_| {},
        &["sql", "SELECT * FROM stg.bb"],
        &[
            "E0310",
            "no asset or spine.* table named 'stg.bb'",
            "did you mean 'stg/b'?",
        ],
    );
}

/// `[project] confine = true`: sources outside the project (by `..`, an absolute path or a symbolic
/// link) and an assets folder outside it are refused; without it they are the user's business.
#[test]
fn a_confined_project_reads_nothing_outside_itself() {
    let confined = "[project]\nname = \"t\"\nconfine = true\n";
    for (path, shown) in [
        ("/etc/passwd", "/etc/passwd"),
        ("../../outside.csv", "outside.csv"),
    ] {
        assert_rejected(
            &|p| {
                p.write("spine.toml", confined);
                p.write(
                    "assets/s.yaml",
                    &format!("key: s\nkind: source\npath: {path}\nformat: csv\n"),
                );
            },
            &["check"],
            &["E0240", shown, "confine = true"],
        );
    }
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("x.csv"), "a\n1\n").unwrap();
    let target = outside.path().to_path_buf();
    assert_rejected(
        &|p| {
            p.write("spine.toml", confined);
            std::os::unix::fs::symlink(&target, p.path().join("assets/linked")).unwrap();
            p.write(
                "assets/s.yaml",
                "key: s\nkind: source\npath: linked/x.csv\n",
            );
        },
        &["check"],
        &["E0240", "confine = true"],
    );
    assert_rejected(
        &|p| {
            p.write(
                "spine.toml",
                "[project]\nname = \"t\"\nconfine = true\nassets = \"../x\"\n",
            )
        },
        &["check"],
        &["E0110", "outside the project"],
    );
}

#[test]
fn malformed_yaml_has_file_and_line() {
    assert_rejected(
        &|p| {
            p.write(
                "assets/more.yaml",
                "assets:\n  - key: marts/c\n    kind: sql\n   query: [oops\n",
            )
        },
        &["list"],
        &["E0107", "assets/more.yaml:4"],
    );
    assert_rejected(
        &|p| {
            p.write(
                "assets/typo.yaml",
                "key: t\nkind: sql\nquery: SELECT 1 AS v\nretires: 3\n",
            )
        },
        &["check"],
        &["E0107", "unknown field `retires`", "assets/typo.yaml"],
    );
}

#[test]
fn malformed_toml_has_line() {
    assert_rejected(
        &|p| {
            p.write(
                "spine.toml",
                "[project]\nname = \"t\"\n[defaults]\nretries = \"many\"\n",
            )
        },
        &["materialize"],
        &["E0102", "spine.toml:4"],
    );
    assert_rejected(
        &|p| {
            p.write(
                "spine.toml",
                "[project]\nname = \"t\"\n[defaults]\ntimeout = \"soon\"\n",
            )
        },
        &["materialize"],
        &["E0104", "defaults.timeout"],
    );
}

#[test]
fn sql_that_does_not_parse_names_asset_and_file() {
    assert_rejected(
        &|p| p.write("assets/b.sql", "SELEC id FROM raw.a\n"),
        &["materialize"],
        &[
            "E0301",
            "SQL does not parse",
            "asset 'stg/b'",
            "assets/b.sql",
        ],
    );
}

#[test]
fn sql_that_does_not_plan_is_caught_by_check() {
    assert_rejected(
        &|p| p.write("assets/b.sql", "SELECT id, no_such_column FROM raw.a\n"),
        &["check"],
        &[
            "E0302",
            "SQL does not plan",
            "no_such_column",
            "asset 'stg/b'",
            "assets/b.sql",
        ],
    );
}

#[test]
fn unknown_kind_suggests() {
    assert_rejected(
        &|p| {
            p.write(
                "assets/k.yaml",
                "key: k\nkind: sqll\nquery: SELECT 1 AS v\n",
            )
        },
        &["check"],
        &["E0205", "unknown kind 'sqll'", "did you mean 'sql'?"],
    );
}

#[test]
fn bad_keys_and_missing_fields() {
    assert_rejected(
        &|p| {
            p.write(
                "assets/k.yaml",
                "key: Bad-Key\nkind: sql\nquery: SELECT 1 AS v\n",
            )
        },
        &["check"],
        &["E0201"],
    );
    assert_rejected(
        &|p| p.write("assets/k.yaml", "key: k\nkind: sql\n"),
        &["check"],
        &["E0206", "needs `sql:"],
    );
    assert_rejected(
        &|p| p.write("assets/k.yaml", "key: k\nkind: command\n"),
        &["check"],
        &["E0206", "command"],
    );
    assert_rejected(
        &|p| p.write("assets/k.yaml", "key: k\nkind: sql\nsql: missing.sql\n"),
        &["check"],
        &["E0206", "missing.sql"],
    );
}

#[test]
fn bad_selection_expressions() {
    assert_rejected(
        &|_| {},
        &["materialize", "raw/a+b+"],
        &["E0401", "bad selection"],
    );
    assert_rejected(
        &|_| {},
        &["materialize", "(raw/a"],
        &["E0401", "missing ')'"],
    );
    assert_rejected(
        &|_| {},
        &["list", "flavour:x"],
        &["E0401", "unknown method"],
    );
    assert_rejected(
        &|_| {},
        &["materialize", "raw/aa"],
        &["E0402", "did you mean 'raw/a'?"],
    );
    assert_rejected(
        &|_| {},
        &["lineage", "stg/bb"],
        &["E0402", "did you mean 'stg/b'?"],
    );
}

#[test]
fn bad_usage_exits_2() {
    let p = diamond();
    p.run(&["materialize", "--no-such-flag"]).code(2);
    p.run(&["frobnicate"]).code(2);
    let empty = tempfile::tempdir().unwrap();
    let r = run_in(empty.path(), &["materialize"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0101") && r.stderr.contains("assets init"),
        "{}",
        r.stderr
    );
}

#[test]
fn multiple_errors_are_reported_together() {
    let p = diamond();
    p.write("assets/x.yaml", "assets:\n  - key: x\n    kind: sqll\n    query: SELECT 1\n  - key: y\n    kind: sql\n    query: SELECT * FROM nope\n");
    let r = p.run(&["check"]);
    r.code(2);
    assert!(
        r.stderr.contains("E0205") && r.stderr.contains("E0203"),
        "{}",
        r.stderr
    );
}

#[test]
fn check_notes_declared_but_unread_upstreams() {
    let p = diamond();
    p.write("assets/more.yaml", "assets:\n  - key: marts/c\n    kind: sql\n    query: SELECT SUM(x) AS total FROM stg.b\n    deps: [raw/a]\n");
    let r = p.run(&["check"]);
    r.ok();
    assert!(
        r.stdout
            .contains("marts/c declares upstream 'raw/a' that its query does not read"),
        "{}",
        r.stdout
    );
}
