//! Deep validation for `assets check`: plans every `sql` asset with DataFusion against the schemas of its
//! upstreams, without running anything. An upstream's schema is, in order: its planned SQL output; its
//! declared `schema:`; what its kind tells without computing it (a source's file footers, the Postgres
//! query's description); the schema of its existing table. A SQL asset with a declared `schema:` must
//! plan to it (E0251).

use crate::error::DefinitionError;
use crate::key::AssetKey;
use crate::kinds::{KindRegistry, SchemaProbe};
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
pub async fn check_sql(
    project: &Project,
    warehouse: &Warehouse,
    kinds: &KindRegistry,
) -> CheckReport {
    let mut report = CheckReport::default();
    let mut schemas: HashMap<AssetKey, Option<SchemaRef>> = HashMap::new();
    // Why an upstream's schema is not known, when its kind said.
    let mut unknown: HashMap<AssetKey, String> = HashMap::new();
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
                    let why = match unknown.get(&dep) {
                        Some(why) => format!("upstream '{dep}' has no known schema yet: {why}"),
                        None => format!("upstream '{dep}' has no known schema yet (declare its `schema:`, or materialize it first)"),
                    };
                    report.unplanned.push((key.clone(), why));
                    None
                } else {
                    match ctx.sql(&crate::kinds::sql::for_planning(rewritten)).await {
                        Ok(df) => {
                            report.planned += 1;
                            let planned: SchemaRef = Arc::new(df.schema().as_arrow().clone());
                            if let Some(declared) = &spec.declared_schema {
                                if let Some(m) =
                                    crate::project::declared_schema::mismatch(declared, &planned)
                                {
                                    report.errors.push(
                                        DefinitionError::new("E0251", format!("the query does not produce its declared schema: {m}"))
                                            .asset(key.as_str())
                                            .at_opt(spec.source.clone())
                                            .hint("change the query (a CAST) or its `schema:`"),
                                    );
                                }
                            }
                            Some(with_partition_columns(planned, spec))
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
            _ => match &spec.declared_schema {
                Some(declared) => Some(declared.clone()),
                None => match kinds.get(&spec.kind) {
                    Some(kind) => match kind.schema(spec).await {
                        SchemaProbe::Known(s) => Some(s),
                        SchemaProbe::Invalid(e) => {
                            report.errors.push(e);
                            None
                        }
                        SchemaProbe::Unknown(why) => {
                            match warehouse.provider(key, None, &probe).await {
                                Ok(Some((p, _))) => Some(p.schema()),
                                _ => {
                                    if !why.is_empty() {
                                        unknown.insert(key.clone(), why);
                                    }
                                    None
                                }
                            }
                        }
                    },
                    None => None,
                },
            },
        };
        schemas.insert(key.clone(), schema);
    }
    report
}

/// The table's schema from a query's planned output: a partitioned asset's table also has its
/// partition columns (strings), which Spine sets when the query leaves them out.
fn with_partition_columns(planned: SchemaRef, spec: &crate::project::AssetSpec) -> SchemaRef {
    let Some(def) = &spec.partitions else {
        return planned;
    };
    let mut fields: Vec<arrow::datatypes::FieldRef> = planned.fields().iter().cloned().collect();
    for c in def.columns() {
        if planned.field_with_name(&c).is_err() {
            fields.push(Arc::new(arrow::datatypes::Field::new(
                c,
                arrow::datatypes::DataType::Utf8,
                true,
            )));
        }
    }
    Arc::new(arrow::datatypes::Schema::new(fields))
}
