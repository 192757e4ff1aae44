//! Deep validation for `assets check`: plans every `sql` asset with DataFusion against the schemas of its
//! upstreams (planned SQL output schemas, or the schema of an existing table), without running anything.

use crate::error::DefinitionError;
use crate::key::AssetKey;
use crate::project::{AssetBody, Project};
use crate::warehouse::Warehouse;
use arrow::datatypes::SchemaRef;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::prelude::SessionContext;
use std::collections::HashMap;
use std::sync::Arc;

/// What deep validation found.
#[derive(Debug, Default)]
pub struct CheckReport {
    /// SQL assets that planned.
    pub planned: usize,
    /// Errors (exit code 2).
    pub errors: Vec<DefinitionError>,
    /// Assets that could not be planned because an upstream's schema is not known yet.
    pub unplanned: Vec<(AssetKey, String)>,
}

/// Plans every SQL asset in dependency order.
pub async fn check_sql(project: &Project, warehouse: &Warehouse) -> CheckReport {
    let mut report = CheckReport::default();
    let mut schemas: HashMap<AssetKey, Option<SchemaRef>> = HashMap::new();
    let Some(order) = project.graph.topological_order() else {
        return report;
    };
    let probe = SessionContext::new();
    for key in order {
        let spec = &project.assets[key];
        let schema = match &spec.body {
            AssetBody::Sql {
                rewritten, file, ..
            } => {
                let ctx = SessionContext::new();
                let mut missing = None;
                for dep in &spec.deps {
                    match schemas.get(dep).cloned().flatten() {
                        Some(s) => {
                            let table = MemTable::try_new(s, vec![vec![]])
                                .expect("empty table of a valid schema");
                            let _ = ctx.register_table(
                                TableReference::bare(dep.as_str()),
                                Arc::new(table),
                            );
                        }
                        None => {
                            missing = Some(dep.clone());
                            break;
                        }
                    }
                }
                if let Some(dep) = missing {
                    report.unplanned.push((
                        key.clone(),
                        format!("upstream '{dep}' has no known schema yet (materialize it first)"),
                    ));
                    None
                } else {
                    match ctx.sql(rewritten).await {
                        Ok(df) => {
                            report.planned += 1;
                            Some(Arc::new(df.schema().as_arrow().clone()))
                        }
                        Err(e) => {
                            let loc = file.clone().map(|f| {
                                f.strip_prefix(&project.config.root)
                                    .map(|p| p.to_path_buf())
                                    .unwrap_or(f)
                            });
                            let mut err = DefinitionError::new("E0302", format!("SQL does not plan: {}", e.strip_backtrace()))
                                .asset(key.as_str())
                                .hint("fix the query; column and table names must exist in the upstream assets");
                            err = match loc {
                                Some(f) => err.at(f, None),
                                None => err.at_opt(spec.source.clone()),
                            };
                            report.errors.push(err);
                            None
                        }
                    }
                }
            }
            _ => match warehouse.provider(key, None, &probe).await {
                Ok(Some((p, _))) => Some(p.schema()),
                _ => None,
            },
        };
        schemas.insert(key.clone(), schema);
    }
    report
}
