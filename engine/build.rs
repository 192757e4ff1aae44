//! Embeds the run store's migrations: `$OUT_DIR/migrations_{sqlite,postgres}.rs` lists every file of
//! `migrations/{sqlite,postgres}` (`NNNN_description.sql`) as `(version, description, include_str!(…))`, in
//! version order, for `store::sqlite::migrations` to hand to sqlx's migrator. (sqlx's `migrate!` macro
//! would do the same, at the price of compiling sqlx's macros and a second SQLite for them.)

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=migrations");
    for backend in ["sqlite", "postgres"] {
        embed(backend);
    }
}

/// Writes `$OUT_DIR/migrations_{backend}.rs` for `migrations/{backend}`.
fn embed(backend: &str) {
    // The crate's folder as cargo says at run time: `env!` would freeze the folder this script was
    // compiled in, and a build folder shared by several checkouts reuses the compiled script.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&manifest).join("migrations").join(backend);
    let mut files: Vec<(i64, String, String)> = Vec::new(); // (version, description, file name)
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a migration file").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        let Some(stem) = name.strip_suffix(".sql") else {
            continue;
        };
        let (version, description) = stem
            .split_once('_')
            .unwrap_or_else(|| panic!("migration {name}: name it NNNN_description.sql"));
        let version: i64 = version
            .parse()
            .unwrap_or_else(|_| panic!("migration {name}: name it NNNN_description.sql"));
        files.push((version, description.replace('_', " "), name.clone()));
    }
    files.sort();
    let mut out = String::from("&[\n");
    for (version, description, name) in &files {
        // Relative to the crate being compiled, not to where this script ran: a build folder shared
        // by several checkouts (CI's cache) reuses this output for each of them.
        writeln!(
            out,
            "    ({version}, {description:?}, include_str!(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/migrations/{backend}/{name}\"))),"
        )
        .unwrap();
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR"))
        .join(format!("migrations_{backend}.rs"));
    std::fs::write(dest, out).expect("writing the migration list");
}
