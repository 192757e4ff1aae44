//! Backfills in the engine: chunking from golden fixtures (`fixtures/backfill.txt`), and a backfill's
//! durable record, progress, cancel and resume against the real SQLite store and Delta tables.

use spine_engine::kinds::KindRegistry;
use spine_engine::partitions::PartitionSelection;
use spine_engine::{BackfillRequest, BackfillState, Engine};
use std::collections::BTreeMap;
use std::path::Path;

async fn engine(dir: &Path, files: &[(String, String)]) -> Engine {
    std::fs::write(dir.join("spine.toml"), "[project]\nname = \"t\"\n").unwrap();
    std::fs::create_dir_all(dir.join("assets")).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join("assets").join(name), text).unwrap();
    }
    Engine::load(dir, KindRegistry::builtin()).await.unwrap()
}

/// The fixture's files and its cases: (selection, partitions, per_run, expected lines).
type Case = (String, String, String, Vec<String>);

fn parse_fixture(text: &str) -> (Vec<(String, String)>, Vec<Case>) {
    let mut files = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some(name) = line.strip_prefix("file ") {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "end").collect();
            files.push((name.trim().to_string(), body.join("\n") + "\n"));
        } else if let Some(case) = line.strip_prefix("case ") {
            let parts: Vec<&str> = case.split(" | ").map(str::trim).collect();
            assert_eq!(parts.len(), 3, "bad case line: {line}");
            cases.push((
                parts[0].into(),
                parts[1].into(),
                parts[2].into(),
                Vec::new(),
            ));
        } else if line.starts_with("chunk ") || line.starts_with("error ") {
            cases
                .last_mut()
                .expect("a chunk line follows a case")
                .3
                .push(line.to_string());
        } else {
            assert!(
                line.trim().is_empty() || line.starts_with('#'),
                "bad fixture line: {line}"
            );
        }
    }
    (files, cases)
}

#[tokio::test]
async fn backfill_chunks_golden_fixtures() {
    let (files, cases) = parse_fixture(include_str!("../fixtures/backfill.txt"));
    assert!(cases.len() >= 10, "fixture parsed: {} cases", cases.len());
    for (selection, partitions, per_run, expected) in cases {
        // A fresh store per case: each case's plan depends only on the project.
        let dir = tempfile::tempdir().unwrap();
        let e = engine(dir.path(), &files).await;
        let parts = if partitions == "all" {
            vec![]
        } else {
            vec![partitions.clone()]
        };
        let req = BackfillRequest {
            selection: Some(selection.clone()),
            partitions: PartitionSelection::parse(&parts).unwrap(),
            per_run: (per_run != "-").then(|| per_run.parse().unwrap()),
            ..Default::default()
        };
        let case = format!("case {selection} | {partitions} | {per_run}");
        let got: Vec<String> = match e.create_backfill(&req).await {
            Err(err) => vec![format!(
                "error {}",
                match &err {
                    spine_engine::EngineError::Definition(d) => d.0[0].code.to_string(),
                    other => format!("{other}"),
                }
            )],
            Ok(None) => vec!["nothing".into()],
            Ok(Some(id)) => {
                let mut chunks: BTreeMap<i64, Vec<String>> = BTreeMap::new();
                for s in e.store().backfill_steps(&id).await.unwrap() {
                    chunks.entry(s.chunk).or_default().push(s.step.to_string());
                }
                let status = e.backfill_status(id.as_str()).await.unwrap();
                assert_eq!(status.state, BackfillState::Queued, "{case}");
                assert_eq!(status.remaining as i64, status.record.steps, "{case}");
                chunks
                    .into_values()
                    .map(|c| format!("chunk {}", c.join(" ")))
                    .collect()
            }
        };
        assert_eq!(got, expected, "{case}");
    }
}
