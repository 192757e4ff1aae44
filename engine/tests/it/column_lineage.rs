//! Golden tests for column-level lineage: every query of `fixtures/column_lineage.txt` (the constructs
//! of `engine/src/column_lineage` and the queries of `examples/shop`) is planned by DataFusion over
//! empty tables with the declared schemas, and its lineage must equal the expected map exactly.
//! On a mismatch the test prints every case's actual lineage in the fixture's format.

use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use std::sync::Arc;

struct Case {
    name: String,
    sql: String,
    expected: String,
}

fn data_type(t: &str) -> DataType {
    match t {
        "BIGINT" => DataType::Int64,
        "DOUBLE" => DataType::Float64,
        "VARCHAR" => DataType::Utf8,
        "DATE" => DataType::Date32,
        "BOOLEAN" => DataType::Boolean,
        "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, None),
        other => panic!("fixture: unknown type {other}"),
    }
}

/// The tables (`table KEY: col TYPE, …`) and the cases of the fixture.
fn parse(text: &str) -> (Vec<(String, Schema)>, Vec<Case>) {
    let mut tables = Vec::new();
    let mut cases: Vec<Case> = Vec::new();
    let mut in_expected = false;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("== ") {
            cases.push(Case {
                name: name.to_string(),
                sql: String::new(),
                expected: String::new(),
            });
            in_expected = false;
        } else if let Some(def) = line.strip_prefix("table ") {
            let (key, cols) = def.split_once(": ").expect("table KEY: columns");
            let fields: Vec<Field> = cols
                .split(", ")
                .map(|c| {
                    let (n, t) = c.split_once(' ').expect("column TYPE");
                    Field::new(n, data_type(t), true)
                })
                .collect();
            tables.push((key.to_string(), Schema::new(fields)));
        } else if let Some(case) = cases.last_mut() {
            if line == "--" {
                in_expected = true;
            } else if in_expected {
                if !line.trim().is_empty() {
                    case.expected.push_str(line);
                    case.expected.push('\n');
                }
            } else {
                case.sql.push_str(line);
                case.sql.push('\n');
            }
        }
    }
    (tables, cases)
}

#[tokio::test]
async fn column_lineage_matches_the_golden_corpus() {
    let text = include_str!("../fixtures/column_lineage.txt");
    let (tables, cases) = parse(text);
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let ctx = SessionContext::new();
    for (key, schema) in tables {
        let t = MemTable::try_new(Arc::new(schema), vec![vec![]]).unwrap();
        ctx.register_table(key.as_str(), Arc::new(t)).unwrap();
    }
    let mut failures = Vec::new();
    let mut actual_all = String::new();
    for case in &cases {
        let actual = match spine_engine::column_lineage::of_query(&ctx, &case.sql).await {
            Ok(l) => spine_engine::column_lineage::render(&l),
            Err(e) => format!("error: {e}\n"),
        };
        actual_all.push_str(&format!("== {}\n{}--\n{}\n", case.name, case.sql, actual));
        if actual != case.expected {
            failures.push(format!(
                "== {}\nexpected:\n{}actual:\n{}",
                case.name, case.expected, actual
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n\n{}\n\nall actual:\n{actual_all}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
