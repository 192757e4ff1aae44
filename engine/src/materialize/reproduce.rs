//! `assets reproduce KEY [--run ID | --version N]`: recomputes a past materialization with every
//! upstream read at the exact Delta version it read then (time travel), into a scratch table under
//! `.spine/reproduce/`, and compares data versions. Identical means the number can be regenerated;
//! different comes with a summary (row counts, columns added, dropped or retyped, and per column how
//! many values differ), evidence that the code is not deterministic or that the code changed.
//!
//! Limits: the current definition computes (the recorded code version is compared and reported, not
//! restored); an upstream version that vacuum removed cannot be read; a source read in place is read
//! as its files are now; a command asset that reads the outside world reads it as it is now;
//! incremental assets (whose versions chain earlier runs) are refused.

use super::*;
use crate::error::DefinitionError;
use crate::warehouse::Warehouse;
use datafusion::prelude::SessionContext;

/// Which materialization to reproduce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The latest published one.
    Latest,
    /// The one a run wrote.
    Run(String),
    /// The one that wrote this Delta version.
    Version(i64),
}

/// What `assets reproduce` found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Reproduction {
    /// The asset.
    pub key: AssetKey,
    /// The partition, for a partitioned asset.
    pub partition: Option<PartitionKey>,
    /// The materialization reproduced.
    pub materialization_id: i64,
    /// Its run.
    pub run_id: RunId,
    /// The Delta version it wrote.
    pub delta_version: i64,
    /// The upstream versions read, as recorded (and read again).
    pub upstream: Vec<crate::store::UpstreamRead>,
    /// Whether the recomputed rows are exactly the recorded ones (same data version).
    pub identical: bool,
    /// The recorded data version.
    pub recorded_data_version: String,
    /// The recomputed one.
    pub data_version: String,
    /// Rows then and now.
    pub recorded_rows: i64,
    /// Rows recomputed.
    pub rows: i64,
    /// The code version then and now (a change explains a difference).
    pub recorded_code_version: String,
    /// The current code version.
    pub code_version: String,
    /// Where the recomputed table is (a local Delta table).
    pub scratch_table: String,
    /// What differs, when something does.
    pub diff: Option<Diff>,
}

/// How a reproduction differs from the recorded rows.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Diff {
    /// Columns only the reproduction has.
    pub columns_added: Vec<String>,
    /// Columns only the recorded rows have.
    pub columns_removed: Vec<String>,
    /// Columns whose type changed: (column, recorded type, recomputed type).
    pub columns_retyped: Vec<(String, String, String)>,
    /// Recorded rows the reproduction lacks (counted as a multiset, over the common columns).
    pub rows_only_recorded: i64,
    /// Recomputed rows the recorded ones lack.
    pub rows_only_reproduced: i64,
    /// Per common column, how many of its recorded values the reproduction lacks (as a multiset).
    pub values_differing: Vec<(String, i64)>,
}

fn bad(message: String, hint: &str) -> EngineError {
    DefinitionError::new("E0309", message).hint(hint).into()
}

impl Instance {
    /// Recomputes a materialization of `key` (`partition`) with its upstreams pinned at the versions
    /// it read, and compares. See the module docs.
    pub async fn reproduce(
        &self,
        key: &AssetKey,
        partition: Option<&PartitionKey>,
        target: &Target,
    ) -> Result<Reproduction, EngineError> {
        let spec = self.known_asset(key)?.clone();
        if spec.read_in_place() {
            return Err(bad(
                format!("source '{key}' is observed, not computed: there is nothing to reproduce"),
                "reproduce the assets that read it",
            ));
        }
        if spec.incremental.is_some() {
            return Err(bad(
                format!("{key} is incremental: each version chains the runs before it"),
                "reproduce its downstream assets, or rebuild it with --full-refresh",
            ));
        }
        let m = self.reproduced(key, partition, target).await?;
        if m.m.delta_version < 0 {
            return Err(bad(
                format!("materialization {} of {key} wrote no table", m.id),
                "reproduce a materialization that wrote a Delta version",
            ));
        }
        let step = m.m.step_key();
        // The run state of a reproduction: what the materialization read, and nothing newer.
        let mut latest = HashMap::new();
        for r in &m.m.upstream {
            let Some(id) = r.materialization_id else {
                continue;
            };
            if let Some(up) = self.store.materialization(id).await? {
                latest.insert(up.m.step_key(), up);
            }
        }
        let run_id = RunId::new();
        let state = RunState {
            run_id: run_id.clone(),
            force: true,
            full_refresh: false,
            cancel: CancellationToken::new(),
            observer: None,
            latest: Mutex::new(latest),
            registered: Mutex::new(HashMap::new()),
            session: crate::session::bounded(&self.project.config, Default::default()),
            owner: format!("reproduce:{run_id}"),
            no_wait: true,
            signals: HashMap::new(),
            budget: Default::default(),
            claims: Arc::default(),
            shared: false,
            max_steps: None,
            store_failed: Default::default(),
            slots: Arc::new(tokio::sync::Semaphore::new(1)),
        };
        let dir = self
            .project
            .config
            .root
            .join(".spine")
            .join("reproduce")
            .join(format!("{}-{}", key.as_str().replace('/', "__"), m.id));
        let scratch = Executor::detached(self, state)
            .recompute(&spec, &step, &dir)
            .await;
        let _ = std::fs::remove_dir_all(self.run_scratch(&run_id));
        let (staged_version, rows, warehouse) = scratch?;
        let identical = staged_version == m.m.data_version;
        let diff = if identical {
            None
        } else {
            Some(self.diff(&m, &warehouse).await?)
        };
        Ok(Reproduction {
            key: key.clone(),
            partition: m.m.partition_key.clone(),
            materialization_id: m.id,
            run_id: m.m.run_id.clone(),
            delta_version: m.m.delta_version,
            upstream: m.m.upstream.clone(),
            identical,
            recorded_data_version: m.m.data_version.clone(),
            data_version: staged_version,
            recorded_rows: m.m.row_count,
            rows,
            recorded_code_version: m.m.code_version.clone(),
            code_version: spec.code_version.clone(),
            scratch_table: warehouse.table_url(key)?.to_string(),
            diff,
        })
    }

    /// The materialization `target` names.
    async fn reproduced(
        &self,
        key: &AssetKey,
        partition: Option<&PartitionKey>,
        target: &Target,
    ) -> Result<Materialization, EngineError> {
        let part = partition.map(|p| p.as_str());
        let found = match target {
            Target::Version(v) => self.store.materialization_at(key, part, *v).await?,
            Target::Latest => {
                let step = StepKey {
                    asset: key.clone(),
                    partition: partition.cloned(),
                };
                self.store.latest_materializations().await?.remove(&step)
            }
            Target::Run(run) => {
                // A unique prefix names the run (an ambiguous one lists the candidates).
                let run = self.store.get_run(run).await?.run_id;
                self.store
                    .materializations(key, i64::MAX)
                    .await?
                    .into_iter()
                    .find(|m| {
                        m.m.run_id == run && m.m.partition_key.as_ref().map(|p| p.as_str()) == part
                    })
            }
        };
        found.ok_or_else(|| {
            let what = match target {
                Target::Latest => "no published materialization".to_string(),
                Target::Run(r) => format!("no materialization by run {r}"),
                Target::Version(v) => format!("no materialization that wrote version {v}"),
            };
            let of = partition.map(|p| format!("[{p}]")).unwrap_or_default();
            bad(
                format!("{key}{of} has {what}"),
                "`assets history KEY` lists its versions and runs",
            )
        })
    }

    /// Compares the recorded rows of `m` with the reproduction in `scratch`.
    async fn diff(&self, m: &Materialization, scratch: &Warehouse) -> Result<Diff, EngineError> {
        let key = &m.m.asset_key;
        let ctx = SessionContext::new();
        let version = self.read_version(key, m.m.delta_version).await;
        let recorded = self
            .warehouse
            .provider(key, Some(version), &ctx)
            .await?
            .ok_or_else(|| {
                bad(
                    format!("the table of {key} is missing"),
                    "run `assets doctor`",
                )
            })?
            .0;
        let again = scratch
            .provider(key, None, &ctx)
            .await?
            .ok_or_else(|| EngineError::Internal("the scratch table is missing".into()))?
            .0;
        ctx.register_table("recorded", recorded)?;
        ctx.register_table("again", again)?;
        // One partition's rows of the recorded table.
        let filter = match (&self.project.assets[key].partitions, &m.m.partition_key) {
            (Some(def), Some(p)) => def
                .values(p)
                .iter()
                .map(|(c, v)| format!("\"{c}\" = '{}'", v.replace('\'', "''")))
                .collect::<Vec<_>>()
                .join(" AND "),
            _ => "TRUE".to_string(),
        };
        let schema = |t: &str| {
            let ctx = &ctx;
            let t = t.to_string();
            async move {
                ctx.table(t.as_str())
                    .await
                    .map(|d| d.schema().as_arrow().clone())
            }
        };
        let (a, b) = (schema("recorded").await?, schema("again").await?);
        let mut diff = Diff::default();
        let mut common = Vec::new();
        for f in a.fields() {
            match b.field_with_name(f.name()) {
                Err(_) => diff.columns_removed.push(f.name().clone()),
                Ok(g) if g.data_type() != f.data_type() => diff.columns_retyped.push((
                    f.name().clone(),
                    f.data_type().to_string(),
                    g.data_type().to_string(),
                )),
                Ok(_) => common.push(format!("\"{}\"", f.name().replace('"', "\"\""))),
            }
        }
        for f in b.fields() {
            if a.field_with_name(f.name()).is_err() {
                diff.columns_added.push(f.name().clone());
            }
        }
        let count = |sql: String| {
            let ctx = &ctx;
            async move {
                let batches = ctx.sql(&sql).await?.collect().await?;
                Ok::<i64, datafusion::error::DataFusionError>(crate::session::first_i64(
                    &batches, 0,
                ))
            }
        };
        if !common.is_empty() {
            let cols = common.join(", ");
            let left = format!("SELECT {cols} FROM recorded WHERE {filter}");
            let right = format!("SELECT {cols} FROM again");
            diff.rows_only_recorded = count(format!(
                "SELECT COUNT(*) FROM ({left} EXCEPT ALL {right}) AS d"
            ))
            .await?;
            diff.rows_only_reproduced = count(format!(
                "SELECT COUNT(*) FROM ({right} EXCEPT ALL {left}) AS d"
            ))
            .await?;
            for c in &common {
                let n = count(format!(
                    "SELECT COUNT(*) FROM (SELECT {c} FROM recorded WHERE {filter} \
                     EXCEPT ALL SELECT {c} FROM again) AS d"
                ))
                .await?;
                if n > 0 {
                    diff.values_differing
                        .push((c.trim_matches('"').replace("\"\"", "\""), n));
                }
            }
        }
        Ok(diff)
    }
}

impl Executor {
    /// Runs `spec`'s computation for `step` in this executor's run and writes it as a table of a local scratch
    /// warehouse at `dir`: (data version, rows, that warehouse).
    async fn recompute(
        &self,
        spec: &crate::project::AssetSpec,
        step: &StepKey,
        dir: &std::path::Path,
    ) -> Result<(String, i64, Warehouse), EngineError> {
        let failed =
            |e: StepError| EngineError::Internal(format!("reproducing failed: {}", e.message));
        let kind = self.kinds.get(&spec.kind).cloned().ok_or_else(|| {
            EngineError::Internal(format!("no executor for kind '{}'", spec.kind))
        })?;
        let (session, upstream, _) = match self.register_upstreams(spec, step).await {
            Ok(r) => r,
            Err(InputError::Step(e)) => return Err(failed(e)),
            Err(InputError::Store(e)) => return Err(e.into()),
        };
        let step_id = step.to_string();
        let ctx = StepContext {
            run_id: self.run.run_id.clone(),
            step: step.clone(),
            attempt: 1,
            spec: spec.clone(),
            project_root: self.project.config.root.clone(),
            session,
            upstream,
            scratch: self.run_scratch(&self.run.run_id).join("reproduce"),
            events: crate::kinds::EventSink::new(
                Arc::new(crate::store::StoreEvents(self.store.clone())),
                self.run.run_id.clone(),
                step,
            ),
            signal: None,
            watermark: None,
            warehouse: Arc::new(self.warehouse.clone()),
            checkpoints: Arc::new(crate::store::StoreCheckpoints(self.store.clone())),
            run_budget: self.run.budget,
        };
        let output = kind.execute(&ctx).await;
        ctx.events.finish().await;
        let output = output.map_err(failed)?;
        if let StepData::Waiting { reason } = output.data {
            return Err(EngineError::Internal(format!(
                "the step parks instead of computing ({reason}); it cannot be reproduced"
            )));
        }
        let stream = self.to_stream(output.data).await.map_err(failed)?;
        if dir.exists() {
            let _ = std::fs::remove_dir_all(dir);
        }
        std::fs::create_dir_all(dir).map_err(|source| EngineError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let url = url::Url::from_directory_path(dir)
            .map_err(|_| EngineError::Internal(format!("bad scratch folder {}", dir.display())))?;
        let warehouse = Warehouse::new(url, HashMap::new())?;
        let scope = match (&spec.partitions, &step.partition) {
            (Some(def), Some(p)) => WriteScope::Partition {
                key: p.clone(),
                values: def.values(p),
            },
            _ => WriteScope::Table,
        };
        let staged = warehouse.stage(&spec.key, stream, &scope).await?;
        let (data_version, rows) = (staged.data_version.clone(), staged.row_count);
        let meta = CommitMeta {
            app_id: step_id,
            seq: 1,
            info: serde_json::json!({"reproduces": self.run.run_id.as_str()}),
            scope,
            table: TableMeta::default(),
        };
        warehouse.commit(&spec.key, staged, meta).await?;
        Ok((data_version, rows, warehouse))
    }
}
