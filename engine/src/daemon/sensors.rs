//! Evaluating sensors: list each sensor's prefix, find the objects modified after its cursor, and
//! record one tick with its queued run for them (see the module notes).

use crate::error::EngineError;
use crate::instance::Instance;
use crate::key::PartitionKey;
use crate::partitions::PartitionSelection;
use crate::sensor::SensorDef;
use crate::store::TickRecord;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::StreamExt;

/// An object under a sensor's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensedObject {
    /// Its path under the store's root.
    pub path: String,
    /// Its file name.
    pub name: String,
    /// Last modified, truncated to milliseconds (the cursor's precision).
    pub modified: DateTime<Utc>,
}

fn stamp_ms(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn to_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

impl Instance {
    /// The objects under `s`'s prefix whose names match, oldest first.
    pub async fn sensed_objects(&self, s: &SensorDef) -> Result<Vec<SensedObject>, EngineError> {
        let options: Vec<(String, String)> = if s.objects.scheme() == "file" {
            Vec::new()
        } else {
            self.project
                .config
                .warehouse_options
                .clone()
                .into_iter()
                .collect()
        };
        let listing_error = |e: String| {
            EngineError::Definition(crate::error::DefinitionErrors(vec![
                crate::error::DefinitionError::new(
                    "E0221",
                    format!("sensor '{}': cannot list {}: {e}", s.name, s.objects),
                )
                .hint("check that the folder or bucket exists and is readable"),
            ]))
        };
        if let Ok(dir) = s.objects.to_file_path() {
            if !dir.is_dir() {
                return Err(listing_error("no such folder".into()));
            }
        }
        let (store, prefix) = object_store::parse_url_opts(&s.objects, options)
            .map_err(|e| listing_error(e.to_string()))?;
        let mut listing = store.list(Some(&prefix));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| listing_error(e.to_string()))?;
            let Some(name) = meta.location.filename().map(str::to_string) else {
                continue;
            };
            if s.matches(&name) {
                out.push(SensedObject {
                    path: meta.location.to_string(),
                    name,
                    modified: to_ms(meta.last_modified),
                });
            }
        }
        out.sort_by(|a, b| (a.modified, &a.path).cmp(&(b.modified, &b.path)));
        Ok(out)
    }

    /// Evaluates every sensor: the objects modified after its cursor become one queued run, recorded
    /// as a tick at the newest one's modification time in one transaction with the run. A sensor whose
    /// prefix cannot be listed is logged and passed over (the next pass tries again).
    pub async fn evaluate_sensors(&self) -> Result<Vec<TickRecord>, EngineError> {
        let mut out = Vec::new();
        for s in &self.project.sensors {
            match self.evaluate_sensor(s).await {
                Ok(Some(tick)) => out.push(tick),
                Ok(None) => {}
                Err(EngineError::Definition(e)) => tracing::warn!("{e}"),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn evaluate_sensor(&self, s: &SensorDef) -> Result<Option<TickRecord>, EngineError> {
        let cursor = match self.store.last_tick(&s.name).await? {
            Some(t) => Some(
                DateTime::parse_from_rfc3339(&t)
                    .map_err(|e| EngineError::Internal(format!("bad tick time '{t}': {e}")))?
                    .with_timezone(&Utc),
            ),
            None => None,
        };
        let new: Vec<SensedObject> = self
            .sensed_objects(s)
            .await?
            .into_iter()
            .filter(|o| cursor.is_none_or(|c| o.modified > c))
            .collect();
        let Some(newest) = new.last().map(|o| o.modified) else {
            return Ok(None);
        };
        let mut names: Vec<String> = new.iter().take(5).map(|o| o.name.clone()).collect();
        if new.len() > 5 {
            names.push(format!("… {} more", new.len() - 5));
        }
        let mut tick = TickRecord {
            schedule: s.name.clone(),
            tick_at: stamp_ms(newest),
            status: "launched".into(),
            run_id: None,
            reason: Some(format!("{} new object(s): {}", new.len(), names.join(", "))),
            created_at: String::new(),
        };
        // New objects' names become keys of the dynamic set first (idempotent: a crash before the
        // tick is recorded adds nothing twice), then the run is planned over them.
        let (engine, partitions) = match &s.add_partitions {
            Some(set) => {
                let mut keys: Vec<String> =
                    new.iter().map(|o| crate::sensor::key_of(&o.name)).collect();
                keys.dedup();
                self.add_dynamic_partitions(set, &keys).await?;
                let keys = keys.into_iter().map(PartitionKey).collect();
                (self.refreshed().await?, PartitionSelection::Keys(keys))
            }
            None => (self.clone(), PartitionSelection::All),
        };
        let selected = crate::plan::select_some(&engine.project, s.selection.as_deref())?;
        let now = self.clock.now();
        let planned =
            match crate::plan::steps_in_order(&engine.project, &selected, &partitions, now) {
                // Forced: what changed is outside the warehouse, where staleness cannot see it.
                Ok(steps) => Some(engine.planned_run_by(
                    s.selection.as_deref(),
                    true,
                    &steps,
                    &format!("sensor:{}", s.name),
                )),
                // The cursor moves on: the same objects would fail the same way on every pass.
                Err(EngineError::Definition(e)) if e.0.iter().any(|d| d.code == "E0411") => {
                    tick.status = "skipped".into();
                    tick.reason = Some(format!("{}: {e}", tick.reason.unwrap_or_default()));
                    None
                }
                Err(e) => return Err(e),
            };
        tick.run_id = planned.as_ref().map(|p| p.run.run_id.clone());
        let recorded = self.store.record_tick(&tick, planned.as_ref()).await?;
        Ok(recorded.then_some(tick))
    }

    /// This engine with its dynamic partition sets read again from the store (keys added since it
    /// opened, by `assets partitions add` or a sensor). The project is copied only when they changed.
    pub async fn refreshed(&self) -> Result<Instance, EngineError> {
        if !crate::instance::uses_dynamic(&self.project) {
            return Ok(self.clone());
        }
        let sets = self.store.dynamic_partitions().await?;
        let unchanged = self.project.assets.values().all(|a| {
            let Some(def) = &a.partitions else {
                return true;
            };
            let mut filled = def.clone();
            filled.fill_dynamic(&sets);
            &filled == def
        });
        if unchanged {
            return Ok(self.clone());
        }
        let mut project = (*self.project).clone();
        crate::instance::fill_dynamic(&mut project, &sets);
        Ok(Instance {
            project: std::sync::Arc::new(project),
            ..self.clone()
        })
    }
}
