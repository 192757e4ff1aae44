//! The pure stages of a step's attempt, each testable alone: the checks a kind reported, the output
//! policy (a declared schema, a readable table, an allowed schema change), the version an attempt
//! writes (row count and data version of a whole, appended or merged table), and the record it
//! commits. The attempt itself (`step.rs`) runs compute → output policy → commit → audit → record.

use super::*;

/// Stage: the checks a kind reported with its output, each recorded as an event; a failed `error`
/// check fails the step before anything is committed.
pub(super) async fn kind_checks(
    events: &crate::kinds::EventSink,
    checks: &[crate::kinds::CheckResult],
) -> Result<(), StepError> {
    for c in checks {
        let msg = format!(
            "check {} {}{}",
            c.name,
            if c.passed { "passed" } else { "failed" },
            c.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
        let event = Event::CheckResult {
            name: c.name.clone(),
            passed: c.passed,
            severity: c.severity,
        };
        events.emit(event, &msg).await;
    }
    match checks
        .iter()
        .find(|c| !c.passed && c.severity == CheckSeverity::Error)
    {
        Some(c) => Err(StepError::permanent(format!(
            "check '{}' failed{}; nothing was committed",
            c.name,
            c.message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ))),
        None => Ok(()),
    }
}

/// Stage (output policy): an asset that declares its schema (`schema:`) must produce exactly it
/// (E0251, permanent, nothing committed).
pub(super) fn declared_schema_holds(
    spec: &crate::project::AssetSpec,
    schema: &arrow::datatypes::Schema,
) -> Result<(), StepError> {
    match spec
        .declared_schema
        .as_ref()
        .and_then(|declared| crate::project::declared_schema::mismatch(declared, schema))
    {
        Some(m) => Err(StepError::permanent(format!(
            "E0251 the output does not match the declared schema: {m}; nothing was \
             committed — fix the {} asset or its `schema:`",
            spec.kind
        ))),
        None => Ok(()),
    }
}

/// Stage (output policy): whether staged output of `schema` may be committed for `spec`, whose
/// previous materialization had the schema `previous` (JSON): a table with columns of distinct names,
/// and a schema change its `on_schema_change` allows. Returns the output's schema as JSON.
pub(super) fn output_policy(
    spec: &crate::project::AssetSpec,
    schema: &arrow::datatypes::Schema,
    previous: Option<&serde_json::Value>,
) -> Result<serde_json::Value, StepError> {
    let key = &spec.key;
    if let Some(refused) = super::audit::unreadable_output(key, schema) {
        return Err(refused);
    }
    let schema_json = schema_json(schema);
    if let Some(previous) = previous {
        let problems =
            super::schema_change::conflicts(previous, &schema_json, spec.on_schema_change);
        if !problems.is_empty() {
            return Err(StepError::permanent(format!(
                "schema change refused (on_schema_change: {}): {}; nothing was committed — set \
                 on_schema_change: evolve (added columns and widened types) or overwrite (any schema; \
                 downstream assets must still read it) on '{key}'",
                spec.on_schema_change.as_str(),
                problems.join("; ")
            )));
        }
    }
    Ok(schema_json)
}

/// Stage (version): the row count and data version of the table version an attempt writes — its
/// own rows, or, appended to or merged into `base`, the table's count and a chained data version —
/// and the counts an appending or merging attempt adds to its metadata.
pub(super) fn version_of(
    spec: &crate::project::AssetSpec,
    base: Option<&Materialization>,
    computed: &mut super::compute::Computed,
) -> (i64, String) {
    let metadata = &mut computed.metadata;
    if let Some((inserted, updated, deleted)) = computed.counts {
        metadata.insert("inserted".into(), inserted.into());
        metadata.insert("updated".into(), updated.into());
        metadata.insert("deleted".into(), deleted.into());
        if let Some(crate::project::Incremental::Merge { unique_key, .. }) = &spec.incremental {
            metadata.insert("merge_key".into(), serde_json::json!(unique_key));
        }
    }
    let staged = &computed.staged;
    match (base, computed.counts) {
        (Some(b), Some(counts)) => super::merge::merged(b, staged, counts),
        (Some(b), None) => {
            metadata.insert("inserted".into(), staged.row_count.into());
            super::incremental::appended(b, staged)
        }
        (None, _) => (staged.row_count, staged.data_version.clone()),
    }
}

/// Stage (record): the materialization an attempt of `step` (`run`, sequence number `seq`) records
/// once committed — its Delta version (-1 here), checks and publication are the commit's and the
/// audit's to fill in — and what the commit writes (the staged files and their scope).
pub(super) fn materialization(
    spec: &crate::project::AssetSpec,
    step: &StepKey,
    (run, seq): (&RunId, i64),
    schema: serde_json::Value,
    computed: super::compute::Computed,
    (rows, data_version): (i64, String),
) -> (NewMaterialization, (Staged, WriteScope)) {
    let m = NewMaterialization {
        asset_key: spec.key.clone(),
        partition_key: step.partition.clone(),
        run_id: run.clone(),
        step_id: step.to_string(),
        seq,
        delta_version: -1,
        row_count: rows,
        schema,
        data_version,
        code_version: spec.code_version.clone(),
        upstream: computed.reads,
        metadata: serde_json::Value::Object(computed.metadata.into_iter().collect()),
        published: false,
        checks: Vec::new(),
        columns: computed.columns,
    };
    (m, (computed.staged, computed.scope))
}

/// What a commit of `m` carries: everything needed to record it, so recovery after a crash between
/// commit and record records it without recomputing.
pub(super) fn commit_info(
    m: &NewMaterialization,
    spec: &crate::project::AssetSpec,
) -> crate::warehouse::CommitInfo {
    crate::warehouse::CommitInfo {
        format: crate::warehouse::COMMIT_INFO_FORMAT,
        run_id: m.run_id.as_str().to_string(),
        step_id: m.step_id.clone(),
        seq: m.seq,
        code_version: m.code_version.clone(),
        upstream: m.upstream.clone(),
        rows: m.row_count,
        data_version: m.data_version.clone(),
        schema: m.schema.clone(),
        metadata: m.metadata.clone(),
        columns: m.columns.clone(),
        description: spec.description.clone(),
        owners: spec.owners.clone(),
    }
}

#[cfg(test)]
mod stage_tests {
    use super::*;
    use arrow::datatypes::{DataType, Field, Schema};

    fn schema(cols: &[(&str, DataType)]) -> Arc<Schema> {
        Arc::new(Schema::new(
            cols.iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    fn computed(
        rows: i64,
        version: &str,
        counts: Option<(i64, i64, i64)>,
    ) -> super::super::compute::Computed {
        super::super::compute::Computed {
            staged: Staged::figures(rows, version, schema(&[("n", DataType::Int64)])),
            reads: Vec::new(),
            metadata: BTreeMap::new(),
            columns: Default::default(),
            scope: WriteScope::Table,
            counts,
        }
    }

    fn published(rows: i64, data_version: &str) -> Materialization {
        let spec = crate::project::AssetSpec::sql("a", "SELECT 1 AS n").unwrap();
        let step = StepKey {
            asset: spec.key.clone(),
            partition: None,
        };
        let (mut m, _) = materialization(
            &spec,
            &step,
            (&RunId::new(), 1),
            serde_json::Value::Null,
            computed(rows, data_version, None),
            (rows, data_version.into()),
        );
        m.delta_version = 0;
        Materialization {
            id: 1,
            created_at: String::new(),
            m,
        }
    }

    #[test]
    fn the_output_policy_refuses_unreadable_tables_and_schema_changes_its_setting_forbids() {
        let mut spec = crate::project::AssetSpec::sql("a", "SELECT 1 AS n").unwrap();
        let dup = schema(&[("n", DataType::Int64), ("N", DataType::Int64)]);
        let e = output_policy(&spec, &dup, None).unwrap_err();
        assert!(e.message.contains("two columns named"), "{}", e.message);
        assert!(output_policy(&spec, &schema(&[]), None)
            .unwrap_err()
            .message
            .contains("no columns"));
        let int32 = schema(&[("n", DataType::Int32), ("m", DataType::Utf8)]);
        let int64 = schema(&[("n", DataType::Int64)]);
        let before = output_policy(&spec, &int32, None).expect("a first schema is anything");
        // A dropped column and a widened type: `fail` refuses (permanently), `evolve` refuses only
        // the drop, `overwrite` takes it.
        let e = output_policy(&spec, &int64, Some(&before)).unwrap_err();
        assert_eq!(e.class, crate::kinds::FailureClass::Permanent);
        assert!(
            e.message
                .contains("schema change refused (on_schema_change: fail)"),
            "{}",
            e.message
        );
        spec.on_schema_change = spine_schemas::definitions::OnSchemaChange::Evolve;
        let e = output_policy(&spec, &int64, Some(&before)).unwrap_err();
        assert!(
            e.message.contains("column 'm' (Utf8) was dropped"),
            "{}",
            e.message
        );
        assert!(
            !e.message.contains("changed type"),
            "evolve widens: {}",
            e.message
        );
        let widened = schema(&[("n", DataType::Int64), ("m", DataType::Utf8)]);
        assert_eq!(
            output_policy(&spec, &widened, Some(&before)).unwrap(),
            schema_json(&widened)
        );
        spec.on_schema_change = spine_schemas::definitions::OnSchemaChange::Overwrite;
        assert!(output_policy(&spec, &int64, Some(&before)).is_ok());
    }

    #[test]
    fn the_version_of_an_appended_or_merged_attempt_is_the_whole_tables() {
        let spec = crate::project::AssetSpec::sql("a", "SELECT 1 AS n").unwrap();
        let mut own = computed(3, "v1", None);
        assert_eq!(version_of(&spec, None, &mut own), (3, "v1".to_string()));
        assert!(own.metadata.is_empty());
        let base = published(10, "v0");
        let mut appended = computed(3, "v1", None);
        let (rows, version) = version_of(&spec, Some(&base), &mut appended);
        assert_eq!(rows, 13);
        assert_ne!(version, "v1", "an appended version chains its base");
        assert_eq!(appended.metadata["inserted"], 3);
        let mut again = computed(3, "v1", None);
        assert_eq!(
            version_of(&spec, Some(&base), &mut again).1,
            version,
            "chaining is deterministic"
        );
        let mut merged = computed(12, "v2", Some((2, 1, 0)));
        let (rows, _) = version_of(&spec, Some(&base), &mut merged);
        assert_eq!(rows, 12);
        assert_eq!(
            (
                merged.metadata["inserted"].as_i64(),
                merged.metadata["updated"].as_i64()
            ),
            (Some(2), Some(1))
        );
    }

    #[test]
    fn what_a_commit_carries_reads_back_as_the_materialization_it_records() {
        let spec = crate::project::AssetSpec::sql("a", "SELECT 1 AS n").unwrap();
        let step = StepKey {
            asset: spec.key.clone(),
            partition: Some(PartitionKey("2026-01-01".into())),
        };
        let mut c = computed(5, "v5", None);
        c.metadata.insert("note".into(), "x".into());
        let (m, (_, scope)) = materialization(
            &spec,
            &step,
            (&RunId::new(), 7),
            schema_json(&schema(&[("n", DataType::Int64)])),
            c,
            (5, "v5".into()),
        );
        assert!(matches!(scope, WriteScope::Table));
        assert_eq!(
            (m.step_id.as_str(), m.seq, m.delta_version, m.published),
            ("a[2026-01-01]", 7, -1, false)
        );
        let info =
            crate::warehouse::CommitInfo::parse(&commit_info(&m, &spec).to_json()).expect("parses");
        assert_eq!(
            (info.run_id.as_str(), info.step_id.as_str(), info.seq),
            (m.run_id.as_str(), "a[2026-01-01]", 7)
        );
        assert_eq!((info.rows, info.data_version.as_str()), (5, "v5"));
        assert_eq!((info.schema, info.metadata), (m.schema, m.metadata));
    }

    #[test]
    fn the_output_policy_holds_an_asset_to_its_declared_schema() {
        let mut spec = crate::project::AssetSpec::sql("a", "SELECT 1 AS n").unwrap();
        let n = Schema::new(vec![Field::new("n", DataType::Int64, true)]);
        let s = Schema::new(vec![Field::new("n", DataType::Utf8, true)]);
        assert!(declared_schema_holds(&spec, &s).is_ok(), "nothing declared");
        spec.declared_schema = Some(Arc::new(n.clone()));
        assert!(declared_schema_holds(&spec, &n).is_ok());
        let e = declared_schema_holds(&spec, &s).unwrap_err();
        assert_eq!(e.class, crate::kinds::FailureClass::Permanent);
        assert!(e.message.contains("E0251"), "{}", e.message);
    }
}
