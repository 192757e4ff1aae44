//! `assets init [DIR]`: write a small working project.

use anyhow::Context;
use std::path::PathBuf;

const FILES: &[(&str, &str)] = &[
    (
        "spine.toml",
        include_str!("../../templates/init/spine.toml"),
    ),
    (
        "assets/raw.yaml",
        include_str!("../../templates/init/assets/raw.yaml"),
    ),
    (
        "assets/raw_orders.sql",
        include_str!("../../templates/init/assets/raw_orders.sql"),
    ),
    (
        "assets/customers.py",
        include_str!("../../templates/init/assets/customers.py"),
    ),
    (
        "assets/marts.yaml",
        include_str!("../../templates/init/assets/marts.yaml"),
    ),
    (".gitignore", ".spine/\nwarehouse/\n"),
];

pub fn run(dir: PathBuf) -> anyhow::Result<u8> {
    if dir.join("spine.toml").exists() {
        eprintln!(
            "error: {} already has a spine.toml; choose an empty folder",
            dir.display()
        );
        return Ok(2);
    }
    for (path, text) in FILES {
        let p = dir.join(path);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let text = if *path == "spine.toml" {
            text.replace(
                "name = \"starter\"",
                &format!("name = {:?}", project_name(&dir)),
            )
        } else {
            text.to_string()
        };
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    println!("created a Spine project in {}", dir.display());
    println!(
        "next: cd {} && assets check && assets materialize && assets status",
        dir.display()
    );
    Ok(0)
}

/// The project's name: its folder's (`assets init demo` makes project `demo`), `starter` for `.`
/// and names that are not plain text.
fn project_name(dir: &std::path::Path) -> String {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    dir.file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_alphanumeric() || "-_.".contains(c)))
        .unwrap_or("starter")
        .to_string()
}
