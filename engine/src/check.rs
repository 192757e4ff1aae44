//! Deep validation for `assets check`: plans every `sql` asset with DataFusion against the schemas of its
//! upstreams, without running anything. An upstream's schema is, in order: its planned SQL output; its
//! declared `schema:`; what its kind tells without computing it (a source's file footers, the Postgres
//! query's description); the schema of its existing table. A SQL asset with a declared `schema:` must
//! plan to it (E0251).

use crate::error::DefinitionError;
use crate::key::AssetKey;
use crate::kinds::{KindRegistry, SchemaProbe, UpstreamSchemas};
use crate::project::{AssetBody, Project};
use crate::warehouse::Warehouse;
use arrow::datatypes::SchemaRef;
use datafusion::prelude::SessionContext;
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
    let mut schemas = UpstreamSchemas::default();
    let Some(order) = project.graph.topological_order() else {
        return report;
    };
    let probe = SessionContext::new();
    for key in order {
        let spec = &project.assets[key];
        let schema: Result<SchemaRef, String> = match &spec.body {
            AssetBody::Sql {
                rewritten, file, ..
            } => {
                match schemas.session(&spec.deps) {
                    Err(why) => {
                        report.unplanned.push((key.clone(), why));
                        Err(String::new())
                    }
                    Ok(ctx) => match ctx.sql(&crate::kinds::sql::for_planning(rewritten)).await {
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
                            Ok(with_partition_columns(planned, spec))
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
                            Err(String::new())
                        }
                    },
                }
            }
            _ => match &spec.declared_schema {
                Some(declared) => Ok(declared.clone()),
                None => match kinds.get(&spec.kind) {
                    Some(kind) => match kind.schema(spec, &schemas).await {
                        SchemaProbe::Known(s) => Ok(with_partition_columns(s, spec)),
                        SchemaProbe::Invalid(e) => {
                            report.errors.push(e);
                            Err(String::new())
                        }
                        SchemaProbe::Unknown(why) => {
                            match warehouse.provider(key, None, &probe).await {
                                Ok(Some((p, _))) => Ok(p.schema()),
                                _ => Err(why),
                            }
                        }
                    },
                    None => Err(String::new()),
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
