//! Property: the project loader never panics, whatever the asset files and spine.toml hold; it answers a
//! project or definition errors with codes. Inputs are random sequences of the format's own pieces (and
//! junk), so they reach the loader's and the kinds' validation. `SPINE_FUZZ_CASES` raises the count.

use spine_engine::kinds::KindRegistry;
use spine_engine::loader::load_project;

fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

const YAML: [&str; 28] = [
    "key: a\n",
    "key: b/c\n",
    "kind: sql\n",
    "kind: rust\n",
    "kind: nope\n",
    "query: SELECT 1 AS v\n",
    "query: SELECT * FROM a\n",
    "sql: x.sql\n",
    "assets:\n",
    "  - ",
    "  ",
    "- ",
    "deps: [a]\n",
    "deps: [b/c, a]\n",
    "retries: -1\n",
    "retries: 3\n",
    "timeout: 5x\n",
    "timeout: 1s\n",
    "{",
    "}",
    "[",
    "]",
    ":",
    "\u{feff}",
    "tags: [x]\n",
    "on_schema_change: evolve\n",
    "key: _delta_log\n",
    "query: ${var:v}\n",
];

const TOML: [&str; 10] = [
    "[project]\nname = \"f\"\n",
    "[defaults]\nretries = 2\n",
    "[defaults]\ntimeout = \"zz\"\n",
    "[limits]\nmemory = \"1KiB\"\n",
    "[vars]\nv = \"SELECT 2 AS v\"\n",
    "[warehouse]\nurl = \"s3://b\"\n",
    "[[",
    "x = ",
    "\u{feff}",
    "[project]\nname = 3\n",
];

#[test]
fn random_definitions_never_panic_the_loader() {
    let cases: usize = std::env::var("SPINE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_500);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("assets")).unwrap();
    let kinds = KindRegistry::builtin();
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    let (mut ok, mut rejected) = (0, 0);
    for _ in 0..cases {
        let toml: String = (0..(next(&mut seed) % 4))
            .map(|_| TOML[(next(&mut seed) % TOML.len() as u64) as usize])
            .collect();
        let toml = format!("[project]\nname = \"f\"\n{toml}");
        std::fs::write(dir.path().join("spine.toml"), &toml).unwrap();
        let yaml: String = (0..(next(&mut seed) % 14))
            .map(|_| YAML[(next(&mut seed) % YAML.len() as u64) as usize])
            .collect();
        std::fs::write(dir.path().join("assets/a.yaml"), &yaml).unwrap();
        match load_project(dir.path(), &kinds) {
            Ok(_) => ok += 1,
            Err(errors) => {
                rejected += 1;
                for e in &errors.0 {
                    assert!(
                        e.code.starts_with("E0"),
                        "an error without a code for\n{toml}\n---\n{yaml}\n: {e}"
                    );
                }
            }
        }
    }
    assert!(
        ok > 0 && rejected > 0,
        "the inputs reach both outcomes: {ok} / {rejected}"
    );
}
