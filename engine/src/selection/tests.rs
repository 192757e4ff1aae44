//! Unit tests of the selection parser and command-line combination (graph-level behaviour is in
//! `engine/tests/it/selection.rs` with its fixture).

use super::*;

#[test]
fn deep_or_long_selections_are_refused_not_overflowed() {
    let deep = format!("{}a{}", "(".repeat(500), ")".repeat(500));
    assert_eq!(parse(&deep).unwrap_err().code, "E0405");
    let nots = format!("{}a", "not ".repeat(500));
    assert_eq!(parse(&nots).unwrap_err().code, "E0405");
    let long = vec!["a"; 5000].join(" ");
    assert_eq!(parse(&long).unwrap_err().code, "E0405");
    let fine = format!("{}a{}", "(".repeat(60), ")".repeat(60));
    assert!(parse(&fine).is_ok());
    assert!(parse(&vec!["a"; 400].join(" or ")).is_ok());
}

#[test]
fn combines_command_line_selections() {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(combine(&[], &[]), None);
    assert_eq!(combine(&s(&["a+"]), &[]).as_deref(), Some("a+"));
    assert_eq!(
        combine(&s(&["a", "b c"]), &[]).as_deref(),
        Some("(a) (b c)")
    );
    assert_eq!(
        combine(&[], &s(&["tag:x"])).as_deref(),
        Some("* and not ((tag:x))")
    );
    assert_eq!(
        combine(&s(&["a+"]), &s(&["b", "c"])).as_deref(),
        Some("((a+)) and not ((b) (c))")
    );
    for (inc, exc) in [(s(&["a", "b"]), s(&["c"])), (vec![], s(&["c"]))] {
        let e = combine(&inc, &exc).unwrap();
        assert!(parse(&e).is_ok(), "{e} parses");
    }
}

#[test]
fn parses_operators() {
    assert_eq!(
        parse("2+a/b+1").unwrap(),
        Selection::Atom {
            up: Some(Some(2)),
            base: Base::Key("a/b".into()),
            down: Some(Some(1))
        }
    );
    assert!(matches!(parse("a b").unwrap(), Selection::Union(..)));
    assert!(matches!(parse("a,b").unwrap(), Selection::Intersect(..)));
    assert!(matches!(
        parse("a and (b or c)").unwrap(),
        Selection::Intersect(..)
    ));
    assert!(matches!(parse("not tag:x").unwrap(), Selection::Not(..)));
}

#[test]
fn rejects_bad_expressions() {
    for e in [
        "", "(a", "a)", ",a", "a,", "foo:bar", "2key", "a+b+c", "+", "tag:", "and a", "a/",
    ] {
        let err = parse(e).expect_err(e);
        assert_eq!(err.code, "E0401", "{e}");
    }
}

#[test]
fn globs() {
    assert!(glob_match("raw/*", "raw/orders"));
    assert!(glob_match("*orders", "stg/orders"));
    assert!(!glob_match("raw/*", "stg/orders"));
    assert!(glob_match("r?w/*", "raw/x"));
}

/// A tiny deterministic generator (xorshift64*), so random-input tests need no extra crate and replay
/// exactly.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

/// Property: no input makes the parser panic or overflow its stack; it answers Ok or E04xx. The cases
/// are random sequences of the grammar's own tokens (plus junk), so they reach deep into the parser.
/// `SPINE_FUZZ_CASES` raises the count for a long run.
#[test]
fn random_token_soup_never_panics() {
    const TOKENS: [&str; 24] = [
        "a",
        "raw/*",
        "+",
        "(",
        ")",
        ",",
        " ",
        "and",
        "or",
        "not",
        "tag:x",
        "2+",
        "+1",
        "group:",
        ":",
        "*",
        "key:a/b",
        "\"",
        "kind:sql",
        "+a+",
        "owner:",
        "9999999999999999999+",
        "é",
        "\t",
    ];
    let cases: usize = std::env::var("SPINE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..cases {
        let n = (next(&mut seed) % 60) as usize;
        let s: String = (0..n)
            .map(|_| TOKENS[(next(&mut seed) % TOKENS.len() as u64) as usize])
            .collect();
        match parse(&s) {
            Ok(_) => {}
            Err(e) => assert!(e.code.starts_with("E04"), "{s:?}: {e}"),
        }
    }
}
