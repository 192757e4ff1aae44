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
        std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?;
    }
    println!("created a Spine project in {}", dir.display());
    println!(
        "next: cd {} && assets check && assets materialize && assets status",
        dir.display()
    );
    Ok(0)
}
