//! Table maintenance and what the data files carry: `assets optimize` compacts an appended table into
//! one file in a commit that changes no rows, downstream steps and checks read the compacted files (so
//! `assets vacuum` may remove the old ones, which it does only past the retention or with --force);
//! every data file is zstd-compressed Parquet whose Add action carries min/max/null statistics, and the
//! table carries the asset's description, owners and code version as Delta metadata other tools read.

use crate::common::*;

const INC: &str = "key: events
kind: sql
description: Every event, appended as it arrives
owners: [data@example.com, ops@example.com]
code_version: v7
incremental: {strategy: append, watermark: id}
query: SELECT id, amount, name FROM raw.events WHERE {{ watermark }} IS NULL OR id > {{ watermark }}
checks:
  - not_null: [id]
";

fn project() -> Project {
    Project::new(&[
        (
            "assets/raw.yaml",
            "key: raw/events\nkind: source\npath: ../data/*.csv\n",
        ),
        ("assets/events.yaml", INC),
        (
            "assets/total.yaml",
            "key: total\nkind: sql\nquery: SELECT COUNT(*) AS n, SUM(amount) AS amount FROM events\n",
        ),
        ("data/0.csv", "id,amount,name\n1,10,ann\n2,20,bob\n"),
    ])
}

fn total(p: &Project) -> serde_json::Value {
    p.run(&["sql", "--json", "SELECT n, amount FROM total"])
        .ok()
        .json()[0]
        .clone()
}

/// The table's live files, per the Python `deltalake` package: (path, numRecords, min id, max id).
const FILES: &str = r#"
import json, os, sys
import pyarrow as pa
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1])
adds = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
out = sorted([a["path"], a["num_records"], a.get("min.id"), a.get("max.id")] for a in adds)
sys.stdout.write(json.dumps(out))
sys.stdout.flush()
os._exit(0)  # deltalake can abort in interpreter teardown (../shared/DEPS.md)
"#;

#[test]
fn optimize_compacts_and_downstream_reads_the_compacted_files_after_vacuum() {
    let p = project();
    p.run(&["materialize"]).ok();
    for i in 1..4 {
        let (a, b) = (2 * i + 1, 2 * i + 2);
        p.write(
            &format!("data/{i}.csv"),
            &format!("id,amount,name\n{a},{a}0,x{a}\n{b},{b}0,x{b}\n"),
        );
        p.run(&["materialize"]).ok();
    }
    let table = p.path().join("warehouse/events").display().to_string();
    let before = python_json(FILES, std::slice::from_ref(&table));
    assert_eq!(before.as_array().unwrap().len(), 4, "{before}");
    assert_eq!(total(&p), serde_json::json!({"n": 8, "amount": 360}));

    // Bad input: a Z-order column the table lacks; no commit is made.
    let bad = p.run(&["optimize", "events", "--z-order", "nope"]);
    bad.code(2);
    assert!(
        bad.stderr.contains("E0308")
            && bad.stderr.contains("'nope'")
            && bad.stderr.contains("amount"),
        "{}",
        bad.stderr
    );

    let report = p
        .run(&["optimize", "events", "--z-order", "amount", "--json"])
        .ok()
        .json();
    assert_eq!(
        (
            &report["from_version"],
            &report["version"],
            &report["files_removed"],
            &report["files_added"]
        ),
        (&3.into(), &4.into(), &4.into(), &1.into()),
        "{report}"
    );
    let after = python_json(FILES, std::slice::from_ref(&table));
    assert_eq!(after.as_array().unwrap().len(), 1, "{after}");
    assert_eq!(
        (&after[0][1], &after[0][2], &after[0][3]),
        (&8.into(), &1.into(), &8.into())
    );
    // Nothing left to compact: no commit.
    let again = p.run(&["optimize", "events", "--json"]).ok().json();
    assert!(again["version"].is_null(), "{again}");

    // Vacuum keeps the files within the retention window, and a shorter one needs --force.
    let kept = p.run(&["vacuum", "events", "--json"]).ok().json();
    assert_eq!(kept["files"].as_array().unwrap().len(), 0, "{kept}");
    let refused = p.run(&["vacuum", "events", "--retain-hours", "0"]);
    refused.code(2);
    assert!(
        refused.stderr.contains("E0308") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    let dry = p
        .run(&[
            "vacuum",
            "events",
            "--retain-hours",
            "0",
            "--force",
            "--dry-run",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(dry["files"].as_array().unwrap().len(), 4, "{dry}");
    let gone = p
        .run(&[
            "vacuum",
            "events",
            "--retain-hours",
            "0",
            "--force",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(gone["files"], dry["files"]);
    assert_eq!(gone["kept_versions"], serde_json::json!([4]), "{gone}");
    let files = std::fs::read_dir(p.path().join("warehouse/events"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "parquet")
        })
        .count();
    assert_eq!(files, 1, "only the compacted file is left");

    // The published materialization (recorded at version 3) is read at its compaction: a downstream
    // step, the asset's checks and a new append all work although version 3's files are gone.
    p.run(&["materialize", "total", "--force"]).ok();
    assert_eq!(total(&p), serde_json::json!({"n": 8, "amount": 360}));
    p.run(&["checks", "events"]).ok();
    p.write("data/9.csv", "id,amount,name\n9,90,x9\n");
    p.run(&["materialize"]).ok();
    assert_eq!(total(&p), serde_json::json!({"n": 9, "amount": 450}));
    // Time travel to a vacuumed version fails with the table and version named.
    let old = p.run(&["sql", "--at", "events=1", "SELECT SUM(amount) FROM events"]);
    assert_ne!(old.code, 0);
    assert!(old.stderr.contains("events"), "{}", old.stderr);
}

/// Compression, statistics and table metadata, as pyarrow and `deltalake` see them.
const META: &str = r#"
import json, os, sys
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable
dt = DeltaTable(sys.argv[1])
m = dt.metadata()
adds = pa.table(dt.get_add_actions(flatten=True)).to_pylist()
path = os.path.join(sys.argv[1], adds[0]["path"])
codecs = sorted({pq.ParquetFile(path).metadata.row_group(0).column(i).compression
                 for i in range(pq.ParquetFile(path).metadata.num_columns)})
a = adds[0]
history = dt.history(1)[0]
sys.stdout.write(json.dumps({
    "description": m.description, "configuration": m.configuration, "codecs": codecs,
    "stats": [a["num_records"], a["min.id"], a["max.id"], a["min.name"], a["max.name"],
              a["null_count.name"]],
    "commit_owners": json.loads(history["spine"])["owners"] if isinstance(history["spine"], str)
                     else history["spine"]["owners"],
}))
sys.stdout.flush()
os._exit(0)
"#;

#[test]
fn data_files_are_zstd_with_column_statistics_and_the_table_says_what_it_is() {
    let p = project();
    p.write("data/0.csv", "id,amount,name\n1,10,ann\n2,20,\n7,70,zed\n");
    p.run(&["materialize", "events+"]).ok();
    let table = p.path().join("warehouse/events").display().to_string();
    let got = python_json(META, &[table]);
    assert_eq!(got["description"], "Every event, appended as it arrives");
    assert_eq!(
        got["configuration"],
        serde_json::json!({
            "spine.asset": "events",
            "spine.owners": "data@example.com,ops@example.com",
            "spine.codeVersion": "v7",
        })
    );
    assert_eq!(got["codecs"], serde_json::json!(["ZSTD"]));
    assert_eq!(got["stats"], serde_json::json!([3, 1, 7, "ann", "zed", 1]));
    assert_eq!(
        got["commit_owners"],
        serde_json::json!(["data@example.com", "ops@example.com"])
    );
    // A new description is written with the next commit; an unchanged one adds no metadata action.
    p.write("assets/events.yaml", &INC.replace("as it arrives", "once"));
    p.write("data/1.csv", "id,amount,name\n8,80,eve\n");
    p.run(&["materialize", "events"]).ok();
    let got = python_json(
        META,
        &[p.path().join("warehouse/events").display().to_string()],
    );
    assert_eq!(got["description"], "Every event, appended once");
}

/// Vacuum removes only the table's own data files: a file a crashed attempt left and the files of
/// replaced versions go; a notes file, another Delta table copied into the folder and a folder
/// linked from outside stay, with every byte (issue 26, defect 1).
#[test]
fn vacuum_removes_only_the_tables_own_data_files() {
    let p = Project::new(&[
        ("assets/w.yaml", "key: w\nkind: sql\nquery: SELECT 1 AS v\n"),
        (
            "assets/x.yaml",
            "key: x\nkind: sql\nquery: SELECT value AS id FROM generate_series(1, 10)\n",
        ),
    ]);
    p.run(&["materialize"]).ok();
    p.run(&["materialize", "x", "--force"]).ok();
    let wh = p.path().join("warehouse");
    let x = wh.join("x");
    let data_files = |dir: &std::path::Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".parquet"))
            .collect();
        v.sort();
        v
    };
    let replaced = data_files(&x);
    assert_eq!(replaced.len(), 2, "{replaced:?}");

    // What does not belong to x's table: a notes file, a Delta table copied in, a linked folder.
    std::fs::write(x.join("notes.txt"), "keep me").unwrap();
    std::fs::create_dir_all(x.join("z/_delta_log")).unwrap();
    for f in std::fs::read_dir(wh.join("w/_delta_log")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), x.join("z/_delta_log").join(f.file_name())).unwrap();
    }
    for f in data_files(&wh.join("w")) {
        std::fs::copy(wh.join("w").join(&f), x.join("z").join(&f)).unwrap();
    }
    let outside = tempfile::tempdir().unwrap();
    let linked = outside
        .path()
        .join("part-00000-elsewhere-c000.zstd.parquet");
    std::fs::write(&linked, "not x's").unwrap();
    std::os::unix::fs::symlink(outside.path(), x.join("linked")).unwrap();
    // A data file a crashed attempt left behind (never committed) is x's own.
    let leftover = "part-00000-leftover-c000.zstd.parquet";
    std::fs::write(x.join(leftover), "half a file").unwrap();
    let foreign = |p: &std::path::Path| -> Vec<(String, u64)> {
        let mut v = Vec::new();
        for d in [p.join("z"), p.join("z/_delta_log")] {
            for e in std::fs::read_dir(d).unwrap() {
                let e = e.unwrap();
                if e.path().is_file() {
                    v.push((e.path().display().to_string(), e.metadata().unwrap().len()));
                }
            }
        }
        v.sort();
        v
    };
    let nested_before = foreign(&x);
    assert!(nested_before.len() >= 2, "{nested_before:?}");

    let report = p
        .run(&["vacuum", "x", "--retain-hours", "0", "--force", "--json"])
        .ok()
        .json();
    let removed: Vec<String> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap().to_string())
        .collect();
    let live = data_files(&x);
    assert_eq!(live.len(), 1, "{live:?}");
    let mut expected: Vec<String> = replaced
        .iter()
        .filter(|f| **f != live[0])
        .cloned()
        .chain([leftover.to_string()])
        .collect();
    expected.sort();
    assert_eq!(removed, expected, "{report}");
    assert_eq!(
        std::fs::read_to_string(x.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert_eq!(foreign(&x), nested_before, "the nested table lost files");
    assert_eq!(std::fs::read_to_string(&linked).unwrap(), "not x's");
    let rows = p
        .run(&["sql", "--json", "SELECT COUNT(*) AS n FROM x"])
        .ok()
        .json();
    assert_eq!(rows[0]["n"], 10, "{rows}");
}

/// The nested table's rows and the vacuumed table's rows, read by Python `deltalake`.
const TWO_TABLES: &str = r#"
import json, os, sys
from deltalake import DeltaTable
sys.stdout.write(json.dumps([DeltaTable(p).to_pyarrow_table().num_rows for p in sys.argv[1:]]))
sys.stdout.flush()
os._exit(0)
"#;

/// Vacuum killed at random moments (or left to finish), 20 trials, each with other things in the
/// table's folder: what is not the table's own stays byte for byte, and both the table and a Delta
/// table copied into its folder still read whole (issue 26, defect 1).
#[test]
fn vacuum_killed_at_random_moments_never_touches_what_is_not_its_own() {
    let p = Project::new(&[
        (
            "assets/w.yaml",
            "key: w\nkind: sql\nquery: SELECT value AS v FROM generate_series(1, 7)\n",
        ),
        (
            "assets/x.yaml",
            "key: x\nkind: sql\nquery: SELECT value AS id FROM generate_series(1, 10)\n",
        ),
    ]);
    p.run(&["materialize"]).ok();
    let wh = p.path().join("warehouse");
    let x = wh.join("x");
    // A Delta table copied into x's folder, a notes file, a linked folder, a stray subfolder.
    std::fs::create_dir_all(x.join("copy/_delta_log")).unwrap();
    for f in std::fs::read_dir(wh.join("w/_delta_log")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), x.join("copy/_delta_log").join(f.file_name())).unwrap();
    }
    for f in std::fs::read_dir(wh.join("w")).unwrap() {
        let f = f.unwrap();
        if f.path().is_file() {
            std::fs::copy(f.path(), x.join("copy").join(f.file_name())).unwrap();
        }
    }
    std::fs::write(x.join("notes.txt"), "keep").unwrap();
    std::fs::create_dir_all(x.join("stray")).unwrap();
    std::fs::write(
        x.join("stray/part-00000-stray-c000.zstd.parquet"),
        "not x's",
    )
    .unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("part-00000-out-c000.zstd.parquet"),
        "out",
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), x.join("linked")).unwrap();
    let foreign = || -> Vec<(String, Vec<u8>)> {
        let mut v = Vec::new();
        for d in [
            x.join("copy"),
            x.join("copy/_delta_log"),
            x.join("stray"),
            x.join("linked"),
        ] {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap().path();
                if e.is_file() {
                    v.push((e.display().to_string(), std::fs::read(&e).unwrap()));
                }
            }
        }
        v.push(("notes".into(), std::fs::read(x.join("notes.txt")).unwrap()));
        v.sort();
        v
    };
    let before = foreign();
    let mut rng = Rng::seeded("vacuum_killed_at_random_moments_never_touches_what_is_not_its_own");
    let mut killed = 0;
    for trial in 0..20 {
        for _ in 0..(1 + rng.below(3)) {
            p.run(&["materialize", "x", "--force"]).ok();
        }
        std::fs::write(
            x.join(format!("part-00000-leftover{trial}-c000.zstd.parquet")),
            "half",
        )
        .unwrap();
        let mut child = bin()
            .args(["vacuum", "x", "--retain-hours", "0", "--force"])
            .current_dir(p.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let wait = rng.below(120);
        std::thread::sleep(std::time::Duration::from_millis(wait));
        if child.try_wait().unwrap().is_none() {
            let _ = child.kill();
            killed += 1;
        }
        let _ = child.wait();
        assert_eq!(foreign(), before, "trial {trial} (kill at {wait} ms)");
        let rows = python_json(
            TWO_TABLES,
            &[
                x.display().to_string(),
                x.join("copy").display().to_string(),
            ],
        );
        assert_eq!(rows, serde_json::json!([10, 7]), "trial {trial}");
        let n = p
            .run(&["sql", "--json", "SELECT COUNT(*) AS n FROM x"])
            .ok()
            .json();
        assert_eq!(n[0]["n"], 10, "trial {trial}");
    }
    eprintln!("{killed} of 20 vacuums killed before they ended");
}

/// `assets gc` prunes the records of superseded runs and nothing status, staleness or the next
/// materialize read: the project stays fresh and nothing is recomputed. A dry run counts the same and
/// changes nothing; a bad age is bad usage.
#[test]
fn gc_prunes_superseded_runs_and_the_project_stays_fresh() {
    let p = diamond();
    for args in [
        &["materialize"][..],
        &["materialize", "--force"],
        &["materialize", "--force"],
    ] {
        p.run(args).ok();
    }
    std::thread::sleep(std::time::Duration::from_millis(20));
    let runs = |p: &Project| {
        p.run(&["runs", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(runs(&p), 3);
    let dry = p
        .run(&["gc", "--older-than", "0s", "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(runs(&p), 3, "a dry run changes nothing");
    let done = p.run(&["gc", "--older-than", "0s", "--json"]).ok().json();
    assert_eq!(dry["pruned"], done["pruned"]);
    // The two superseded runs and their four materializations each go; the latest run stays.
    assert_eq!(done["pruned"]["runs"], 2, "{done}");
    assert_eq!(done["pruned"]["materializations"], 8, "{done}");
    assert_eq!(runs(&p), 1);
    assert_eq!(
        states(p.path(), &[], &["raw/a", "stg/b", "marts/c", "marts/d"]),
        ["fresh", "fresh", "fresh", "fresh"]
    );
    let again = p.run(&["materialize", "--json"]).ok().json();
    assert!(
        step_statuses(&again).iter().all(|(_, s)| s == "up_to_date"),
        "{again}"
    );
    let text = p.run(&["gc", "--older-than", "1d"]);
    text.ok();
    assert!(text.stdout.contains("pruned 0 event(s)"), "{}", text.stdout);

    let bad = p.run(&["gc", "--older-than", "soon"]);
    bad.code(2);
    assert!(bad.stderr.contains("not a duration"), "{}", bad.stderr);
    p.run(&["gc"]).code(2);
}
