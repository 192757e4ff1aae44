//! The docs' shell blocks work as written: every `sh` block of the README's tour and of the getting-started
//! guide's walkthrough runs, in order, in a fresh temporary folder, with `assets` being this build's binary.
//! A command that fails fails the test, naming the block and the line.

use std::path::Path;

/// The `sh` code blocks of `file` between the headings `from` (inclusive) and the next `## ` heading.
fn shell_blocks(file: &str, from: &str) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    let start = text
        .find(from)
        .unwrap_or_else(|| panic!("{file} has no '{from}' section"));
    let section = &text[start..];
    let end = section[from.len()..]
        .find("\n## ")
        .map(|i| i + from.len())
        .unwrap_or(section.len());
    let mut blocks = Vec::new();
    let mut rest = &section[..end];
    while let Some(i) = rest.find("```sh\n") {
        let body = &rest[i + 6..];
        let j = body.find("```").expect("closed code block");
        blocks.push(body[..j].to_string());
        rest = &body[j..][3..];
    }
    assert!(!blocks.is_empty(), "{file}: no sh blocks after '{from}'");
    blocks
}

/// Runs the blocks as one bash script (`set -e`, so the first failing command stops it).
fn run_blocks(name: &str, blocks: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    let mut script = String::from(
        "set -euo pipefail\n\
         assets() { \"$SPINE_BIN\" \"$@\"; }\n\
         latest_run() { assets runs --limit 1 --json | sed -n 's/.*\"run_id\": \"\\([0-9a-f]*\\)\".*/\\1/p' | head -n 1; }\n",
    );
    for (b, block) in blocks.iter().enumerate() {
        for (l, line) in block.lines().enumerate() {
            // The docs' own way of defining `assets` is replaced by the function above.
            if line.trim_start().starts_with("alias assets=") {
                continue;
            }
            let line = line.replace("<id>", "$(latest_run)");
            script.push_str(&format!(
                "echo '>>> {name} block {} line {}' >&2\n{line}\n",
                b + 1,
                l + 1
            ));
        }
    }
    let out = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("SPINE_BIN", env!("CARGO_BIN_EXE_assets"))
        .env(
            "SPINE_EXAMPLES",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"),
        )
        .env_remove("SPINE_STATE_URL")
        .env_remove("SPINE_WAREHOUSE_URL")
        .env_remove("SPINE_PROJECT")
        .output()
        .expect("bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name}: a documented command failed (exit {:?}); the last '>>>' line names it\nstderr:\n{stderr}\nstdout:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn readme_tour_runs_as_written() {
    run_blocks(
        "README tour",
        &shell_blocks("README.md", "## A five-minute tour"),
    );
}

#[test]
fn getting_started_runs_as_written() {
    // The install block builds the binary this test already has; the walkthrough starts after it.
    let mut blocks = shell_blocks("docs/guide/getting-started.md", "## Create a project");
    blocks.extend(shell_blocks(
        "docs/guide/getting-started.md",
        "## Validate, run, inspect",
    ));
    run_blocks("getting started", &blocks);
}

#[test]
fn features_and_evals_guide_runs_as_written() {
    let mut blocks = Vec::new();
    for section in ["## Run the example", "## Evals and gates", "## Rollouts"] {
        blocks.extend(shell_blocks("docs/guide/features-and-evals.md", section));
    }
    run_blocks("features and evals guide", &blocks);
}

#[test]
fn agents_guide_runs_as_written() {
    run_blocks(
        "agents guide",
        &shell_blocks("docs/guide/agents.md", "## Run the example"),
    );
}

/// Every code `E0nnn` the sources emit has a row in the error reference, and every row's code is
/// still emitted somewhere: the reference cannot drift from the code.
#[test]
fn the_error_reference_lists_exactly_the_codes_in_the_sources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    fn codes(text: &str, out: &mut std::collections::BTreeSet<String>) {
        let b = text.as_bytes();
        for i in 0..b.len().saturating_sub(4) {
            if b[i] == b'E'
                && b[i + 1] == b'0'
                && b[i + 2..i + 5].iter().all(u8::is_ascii_digit)
                && b.get(i + 5).is_none_or(|c| !c.is_ascii_digit())
                && (i == 0 || !b[i - 1].is_ascii_alphanumeric())
            {
                out.insert(text[i..i + 5].to_string());
            }
        }
    }
    fn walk(dir: &Path, out: &mut std::collections::BTreeSet<String>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                codes(&std::fs::read_to_string(&p).unwrap(), out);
            }
        }
    }
    let mut emitted = std::collections::BTreeSet::new();
    for krate in [
        "engine/src",
        "assets/src",
        "jobs/src",
        "features/src",
        "evals/src",
    ] {
        walk(&root.join(krate), &mut emitted);
    }
    let reference = std::fs::read_to_string(root.join("docs/reference/errors.md")).unwrap();
    let documented: std::collections::BTreeSet<String> = reference
        .lines()
        .filter_map(|l| l.strip_prefix("| E0"))
        .map(|l| format!("E0{}", &l[..3]))
        .collect();
    let undocumented: Vec<_> = emitted.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&emitted).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "docs/reference/errors.md is missing {undocumented:?} and lists codes no source emits: {stale:?}"
    );
}
