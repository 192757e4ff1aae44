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
