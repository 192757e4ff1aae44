//! Merge incremental assets (`incremental: {strategy: merge, unique_key: …}`): a run's rows replace
//! the table's rows with the same key, new keys are inserted, and rows matching `delete` remove their
//! key (Delta MERGE: update matched, insert not matched, delete matched when the predicate holds).
//!
//! Copy-on-write, as delta-rs and Spark do: the live files that hold a matched key are rewritten
//! without those rows, next to the run's rows, in one commit that removes them; every other file
//! stays. The run's rows are checked first — a key that is NULL or not unique among them fails the
//! step (E0214) before anything is written.

use super::*;
use arrow::array::AsArray;
use std::collections::BTreeSet;

/// The extra column naming each base row's data file.
const FILE_COLUMN: &str = "__spine_file";
/// The extra column saying whether a new row deletes its key.
const DELETE_COLUMN: &str = "__spine_delete";

/// What a merge writes: the rows to stage, the files they replace, and what happened to the keys.
pub(super) struct Merge {
    /// Rows to stage: the run's rows that are not deletes, plus the kept rows of rewritten files.
    pub stream: SendableRecordBatchStream,
    /// Live files rewritten (empty: the run's rows are only appended). None: the table is rebuilt
    /// (the first run, a full refresh).
    pub remove: Option<Vec<String>>,
    /// Keys inserted, updated, deleted.
    pub counts: (i64, i64, i64),
}

/// `"c"` for SQL.
fn ident(c: &str) -> String {
    format!("\"{}\"", c.replace('"', "\"\""))
}

fn df(what: &str) -> impl Fn(datafusion::error::DataFusionError) -> StepError + '_ {
    move |e| StepError::datafusion(what, &e)
}

impl Executor {
    /// Merges the rows of `stream` into `base` (the published version; None rebuilds the table from
    /// them) on `unique_key`.
    pub(super) async fn merge(
        &self,
        key: &AssetKey,
        (unique_key, delete): (&[String], Option<&str>),
        base: Option<&Materialization>,
        stream: SendableRecordBatchStream,
    ) -> Result<Merge, StepError> {
        let schema = stream.schema();
        let batches = datafusion::physical_plan::common::collect(stream)
            .await
            .map_err(df("computing the data"))?;
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        if let Some(k) = unique_key.iter().find(|k| !columns.contains(k)) {
            return Err(StepError::permanent(format!(
                "E0214 the merge key column '{k}' is not in the rows of {key} (its columns: {}); \
                 nothing was committed — name columns of the query in `unique_key`",
                columns.join(", ")
            )));
        }
        let ctx = crate::session::bounded(&self.project.config, Default::default());
        let new = MemTable::try_new(schema.clone(), vec![batches]).map_err(df("merging"))?;
        ctx.register_table("new", Arc::new(new))
            .map_err(df("merging"))?;
        let keys: Vec<String> = unique_key.iter().map(|k| ident(k)).collect();
        let run = |sql: String| {
            let ctx = ctx.clone();
            async move {
                ctx.sql(&sql)
                    .await
                    .map_err(df("merging"))?
                    .collect()
                    .await
                    .map_err(df("merging"))
            }
        };
        self.check_merge_keys(key, unique_key, &keys, &run).await?;
        let deletes = match delete {
            Some(p) => format!("COALESCE(({p}), false)"),
            None => "false".to_string(),
        };
        let select_new = format!(
            "SELECT {} FROM new WHERE NOT {deletes}",
            columns
                .iter()
                .map(|c| ident(c))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let kept = crate::session::first_i64(
            &run(format!("SELECT count(*) FROM ({select_new}) AS kept")).await?,
            0,
        );
        let Some(base) = base else {
            let stream = ctx
                .sql(&select_new)
                .await
                .map_err(df("merging"))?
                .execute_stream()
                .await
                .map_err(df("merging"))?;
            return Ok(Merge {
                stream,
                remove: None,
                counts: (kept, 0, 0),
            });
        };
        let version = self.read_version(key, base.m.delta_version).await;
        let provider = self
            .warehouse
            .provider_with_files(key, version, &ctx, FILE_COLUMN)
            .await
            .map_err(StepError::retryable)?
            .ok_or_else(|| StepError::permanent(format!("the table of {key} is missing")))?;
        let base_columns: Vec<String> = provider
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        ctx.register_table("base", provider)
            .map_err(df("merging"))?;
        let on = keys
            .iter()
            .map(|k| format!("n.{k} = b.{k}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        // The matched keys: which files hold them, and whether the new row updates or deletes.
        let matched = run(format!(
            "SELECT b.{file} AS f, n.{del} AS d, count(*) AS c \
             FROM (SELECT {k}, {deletes} AS {del} FROM new) AS n JOIN base AS b ON {on} GROUP BY 1, 2",
            file = ident(FILE_COLUMN),
            del = ident(DELETE_COLUMN),
            k = keys.join(", "),
        ))
        .await?;
        let (mut files, mut updated, mut deleted) = (BTreeSet::new(), 0i64, 0i64);
        for b in &matched {
            let f = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)
                .map_err(|e| StepError::permanent(format!("merging: {e}")))?;
            let (f, d, c) = (
                f.as_string::<i32>(),
                arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Boolean)
                    .map_err(|e| StepError::permanent(format!("merging: {e}")))?,
                arrow::compute::cast(b.column(2), &arrow::datatypes::DataType::Int64)
                    .map_err(|e| StepError::permanent(format!("merging: {e}")))?,
            );
            let (c, d) = (
                c.as_primitive::<arrow::datatypes::Int64Type>(),
                d.as_boolean(),
            );
            for i in 0..b.num_rows() {
                files.insert(f.value(i).to_string());
                if d.value(i) {
                    deleted += c.value(i);
                } else {
                    updated += c.value(i);
                }
            }
        }
        let sql = if files.is_empty() {
            select_new
        } else {
            // The kept rows of the rewritten files, with the run's columns (NULL where the table
            // lacks one); the schema-change policy judges the result as for any asset.
            let projection: Vec<String> = columns
                .iter()
                .map(|c| match base_columns.contains(c) {
                    true => format!("b.{} AS {}", ident(c), ident(c)),
                    false => format!("NULL AS {}", ident(c)),
                })
                .collect();
            let list: Vec<String> = files
                .iter()
                .map(|f| format!("'{}'", f.replace('\'', "''")))
                .collect();
            format!(
                "SELECT {} FROM base AS b WHERE b.{} IN ({}) AND NOT EXISTS \
                 (SELECT 1 FROM new AS n WHERE {on}) UNION ALL {select_new}",
                projection.join(", "),
                ident(FILE_COLUMN),
                list.join(", ")
            )
        };
        let stream = ctx
            .sql(&sql)
            .await
            .map_err(df("merging"))?
            .execute_stream()
            .await
            .map_err(df("merging"))?;
        Ok(Merge {
            stream,
            remove: Some(files.into_iter().collect()),
            counts: (kept - updated, updated, deleted),
        })
    }

    /// Fails (E0214) when a key of the run's rows is NULL or appears more than once.
    async fn check_merge_keys<F, Fut>(
        &self,
        key: &AssetKey,
        unique_key: &[String],
        keys: &[String],
        run: &F,
    ) -> Result<(), StepError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<arrow::record_batch::RecordBatch>, StepError>>,
    {
        let nulls = keys
            .iter()
            .map(|k| format!("{k} IS NULL"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let n = crate::session::first_i64(
            &run(format!("SELECT count(*) FROM new WHERE {nulls}")).await?,
            0,
        );
        if n > 0 {
            return Err(StepError::permanent(format!(
                "E0214 the merge key ({}) of {key} is NULL in {n} new row(s); nothing was committed — \
                 filter them out in the query or choose a key that is always set",
                unique_key.join(", ")
            )));
        }
        let shown = keys
            .iter()
            .map(|k| format!("CAST({k} AS VARCHAR)"))
            .collect::<Vec<_>>()
            .join(" || ', ' || ");
        let dupes = run(format!(
            "SELECT {shown} AS k, count(*) AS n FROM new GROUP BY {} HAVING count(*) > 1 \
             ORDER BY n DESC, k LIMIT 3",
            keys.join(", ")
        ))
        .await?;
        let mut examples = Vec::new();
        for b in &dupes {
            let k = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8)
                .map_err(|e| StepError::permanent(format!("merging: {e}")))?;
            let k = k.as_string::<i32>();
            let c = arrow::compute::cast(b.column(1), &arrow::datatypes::DataType::Int64)
                .map_err(|e| StepError::permanent(format!("merging: {e}")))?;
            let c = c.as_primitive::<arrow::datatypes::Int64Type>();
            for i in 0..b.num_rows() {
                examples.push(format!("({}) × {}", k.value(i), c.value(i)));
            }
        }
        if !examples.is_empty() {
            return Err(StepError::permanent(format!(
                "E0214 the merge key ({}) is not unique in the new rows of {key}: {}; nothing was \
                 committed — deduplicate in the query (e.g. keep the latest row per key) or widen \
                 `unique_key`",
                unique_key.join(", "),
                examples.join(", ")
            )));
        }
        Ok(())
    }
}

/// The row count and data version of `base` after a merge that staged `staged`: the version chains
/// the base's with the staged rows' (the new rows and the rows carried forward from rewritten files,
/// which the base and the new rows determine) and what happened to the keys.
pub(super) fn merged(
    base: &Materialization,
    staged: &Staged,
    (inserted, updated, deleted): (i64, i64, i64),
) -> (i64, String) {
    let chained = format!(
        "{}~{inserted}/{updated}/{deleted}+{}",
        base.m.data_version, staged.data_version
    );
    (
        base.m.row_count + inserted - deleted,
        short_hash(chained.as_bytes()),
    )
}
