//! Column-level lineage of a SQL query, derived from DataFusion's logical plan: for every output
//! column, the upstream (asset, column) pairs it comes from and how.
//!
//! - `identity`: the value is the upstream column's, unchanged (through aliases, CTEs, subqueries,
//!   joins, unions, `SELECT *`).
//! - `transformed`: computed from it row by row (arithmetic, functions, casts, `CASE`, window
//!   functions that are not aggregates).
//! - `aggregated`: computed from it across rows (aggregate functions, aggregate window functions).
//! - `filter`: the column decides which rows there are or how they group — `WHERE`, `HAVING`, join
//!   keys and conditions, `GROUP BY` keys, window partitions and orders, `EXISTS`/`IN` subqueries, the
//!   order under a `LIMIT` — without flowing into the value. It applies to every output column of
//!   the query (listed once per column, after its direct sources).
//!
//! The strongest relation wins when a column reaches an output more than one way (aggregated >
//! transformed > identity > filter). Plan nodes the walk does not know (extensions, `UNNEST`) are
//! conservative: each of their output columns is `transformed` from every column of their inputs.
//!
//! The invariant, proven by the golden corpus in `engine/tests/it/column_lineage.rs`: every upstream
//! column a query reads is reported for the outputs it reaches, with the relation above.

mod expr;
pub(crate) mod walk;

pub use walk::ColumnNode;

use crate::key::AssetKey;
use datafusion::logical_expr::{Distinct, LogicalPlan, Projection as P2};

use std::collections::{BTreeMap, BTreeSet};

pub use crate::project::columns::{ColumnLineage, ColumnSource, How, OutputColumn, Source};

/// What a plan node's output depends on: per output column its direct sources, and the sources that
/// decided its rows.
#[derive(Debug, Clone, Default)]
struct Lineage {
    columns: Vec<BTreeMap<Source, How>>,
    filters: BTreeSet<Source>,
}

impl Lineage {
    fn absorb_filters(&mut self, other: &Lineage) {
        self.filters.extend(other.filters.iter().cloned());
    }

    /// Every source of every column (and the filters) of `self`, as `how` at least.
    fn everything(&self, how: How) -> BTreeMap<Source, How> {
        let mut out = BTreeMap::new();
        for c in &self.columns {
            for (s, h) in c {
                merge(&mut out, s.clone(), (*h).max(how));
            }
        }
        out
    }
}

/// Adds `source` as `how` to `map`, keeping the strongest relation.
fn merge(map: &mut BTreeMap<Source, How>, source: Source, how: How) {
    let e = map.entry(source).or_insert(how);
    *e = (*e).max(how);
}

/// The column lineage of `plan`. `asset` names the asset a scanned table is (None: not an asset,
/// such as a table function).
pub fn of_plan(plan: &LogicalPlan, asset: &dyn Fn(&str) -> Option<AssetKey>) -> ColumnLineage {
    let l = walk(plan, asset);
    let names = plan.schema().fields().iter().map(|f| f.name().clone());
    names
        .zip(l.columns.iter().map(Some).chain(std::iter::repeat(None)))
        .map(|(column, direct)| {
            let direct = direct.cloned().unwrap_or_default();
            let mut sources: Vec<ColumnSource> = direct
                .iter()
                .map(|(s, h)| ColumnSource {
                    asset: s.asset.clone(),
                    column: s.column.clone(),
                    how: *h,
                })
                .collect();
            sources.extend(
                l.filters
                    .iter()
                    .filter(|s| !direct.contains_key(*s))
                    .map(|s| ColumnSource {
                        asset: s.asset.clone(),
                        column: s.column.clone(),
                        how: How::Filter,
                    }),
            );
            OutputColumn { column, sources }
        })
        .collect()
}

/// The column lineage of a query over tables registered in `ctx` (named by asset key, as steps
/// register their upstreams). `asset` names the asset a scanned table is.
pub async fn of_sql(
    ctx: &datafusion::prelude::SessionContext,
    sql: &str,
    asset: &dyn Fn(&str) -> Option<AssetKey>,
) -> datafusion::error::Result<ColumnLineage> {
    let plan = ctx.state().create_logical_plan(sql).await?;
    Ok(of_plan(&plan, asset))
}

/// The column lineage of an asset's SQL `query` (table names as an asset writes them: `raw.orders`,
/// `"raw/orders"`), planned against the tables registered in `ctx` under their asset keys.
pub async fn of_query(
    ctx: &datafusion::prelude::SessionContext,
    query: &str,
) -> Result<ColumnLineage, String> {
    let analyzed = crate::sql::analyze(query).map_err(|e| e.to_string())?;
    let tables = analyzed.tables;
    let asset = |name: &str| AssetKey::parse(name).ok().filter(|k| tables.contains(k));
    of_sql(ctx, &analyzed.rewritten, &asset)
        .await
        .map_err(|e| e.to_string())
}

/// Renders `lineage` one output column per line (`column: asset.column how; …`, `-` for none), as
/// the golden files and `assets lineage --column` in text show it.
pub fn render(lineage: &ColumnLineage) -> String {
    let mut out = String::new();
    for c in lineage {
        let sources: Vec<String> = c
            .sources
            .iter()
            .map(|s| format!("{}.{} {}", s.asset, s.column, s.how.as_str()))
            .collect();
        let sources = if sources.is_empty() {
            "-".to_string()
        } else {
            sources.join("; ")
        };
        out.push_str(&format!("{}: {sources}\n", c.column));
    }
    out
}

fn walk(plan: &LogicalPlan, asset: &dyn Fn(&str) -> Option<AssetKey>) -> Lineage {
    use LogicalPlan as P;
    let sub = |p: &LogicalPlan| walk(p, asset);
    match plan {
        P::TableScan(scan) => {
            let name = scan.table_name.to_string();
            let key = asset(scan.table_name.table()).or_else(|| asset(&name));
            let mut l = Lineage {
                columns: scan
                    .projected_schema
                    .fields()
                    .iter()
                    .map(|f| match &key {
                        Some(k) => BTreeMap::from([(
                            Source {
                                asset: k.clone(),
                                column: f.name().clone(),
                            },
                            How::Identity,
                        )]),
                        None => BTreeMap::new(),
                    })
                    .collect(),
                filters: BTreeSet::new(),
            };
            if let Some(k) = &key {
                // Filters pushed into the scan name the table's own columns.
                for f in &scan.filters {
                    for c in f.column_refs() {
                        l.filters.insert(Source {
                            asset: k.clone(),
                            column: c.name.clone(),
                        });
                    }
                }
            }
            l
        }
        P::Projection(p) => {
            let input = sub(&p.input);
            let scope = expr::Scope::one(p.input.schema(), &input);
            let mut out = Lineage::default();
            out.absorb_filters(&input);
            for e in &p.expr {
                let (direct, filters) = scope.direct(e, asset);
                out.columns.push(direct);
                out.filters.extend(filters);
            }
            out
        }
        P::Filter(f) => {
            let mut input = sub(&f.input);
            let filters = expr::Scope::one(f.input.schema(), &input).filters(&f.predicate, asset);
            input.filters.extend(filters);
            input
        }
        P::Aggregate(a) => {
            let input = sub(&a.input);
            let scope = expr::Scope::one(a.input.schema(), &input);
            let mut out = Lineage::default();
            out.absorb_filters(&input);
            let groups: Vec<&datafusion::logical_expr::Expr> = a
                .group_expr
                .iter()
                .flat_map(|g| match g {
                    datafusion::logical_expr::Expr::GroupingSet(s) => s.distinct_expr(),
                    other => vec![other],
                })
                .collect();
            for g in &groups {
                let (direct, filters) = scope.direct(g, asset);
                out.filters.extend(direct.keys().cloned());
                out.filters.extend(filters);
                out.columns.push(direct);
            }
            // A grouping set adds an internal grouping id after the keys.
            let width = a.schema.fields().len();
            while out.columns.len() + a.aggr_expr.len() < width {
                out.columns.push(BTreeMap::new());
            }
            for e in &a.aggr_expr {
                let (direct, filters) = scope.direct(e, asset);
                out.columns.push(direct);
                out.filters.extend(filters);
            }
            out
        }
        P::Window(w) => {
            let mut out = sub(&w.input);
            let scope_input = out.clone();
            let scope = expr::Scope::one(w.input.schema(), &scope_input);
            for e in &w.window_expr {
                let (direct, filters) = scope.direct(e, asset);
                out.columns.push(direct);
                out.filters.extend(filters);
            }
            out
        }
        P::Join(j) => {
            let (left, right) = (sub(&j.left), sub(&j.right));
            let mut filters = BTreeSet::new();
            let (ls, rs) = (
                expr::Scope::one(j.left.schema(), &left),
                expr::Scope::one(j.right.schema(), &right),
            );
            for (l, r) in &j.on {
                filters.extend(ls.filters(l, asset));
                filters.extend(rs.filters(r, asset));
            }
            if let Some(f) = &j.filter {
                let both = expr::Scope {
                    inputs: vec![(j.left.schema(), &left), (j.right.schema(), &right)],
                };
                filters.extend(both.filters(f, asset));
            }
            let (nl, nr, width) = (
                left.columns.len(),
                right.columns.len(),
                j.schema.fields().len(),
            );
            let mut columns = if width == nl + nr {
                [left.columns.clone(), right.columns.clone()].concat()
            } else if width == nr && width != nl {
                right.columns.clone()
            } else {
                left.columns.clone()
            };
            // A mark join's extra boolean depends on the other side only through the condition.
            columns.resize(width, BTreeMap::new());
            let mut out = Lineage {
                columns,
                filters: left.filters.union(&right.filters).cloned().collect(),
            };
            out.filters.extend(filters);
            out
        }
        P::Union(u) => {
            let mut out = Lineage::default();
            for i in &u.inputs {
                let l = sub(i);
                if out.columns.len() < l.columns.len() {
                    out.columns.resize(l.columns.len(), BTreeMap::new());
                }
                for (o, c) in out.columns.iter_mut().zip(&l.columns) {
                    for (s, h) in c {
                        merge(o, s.clone(), *h);
                    }
                }
                out.absorb_filters(&l);
            }
            out
        }
        P::Sort(s) => {
            let mut input = sub(&s.input);
            if s.fetch.is_some() {
                let scope_input = input.clone();
                let scope = expr::Scope::one(s.input.schema(), &scope_input);
                for e in &s.expr {
                    input.filters.extend(scope.filters(&e.expr, asset));
                }
            }
            input
        }
        P::Limit(l) => {
            // The order under a LIMIT decides which rows remain (the planner may project the sort
            // keys away between the two).
            let mut input = sub(&l.input);
            let mut below = l.input.as_ref();
            while let P::Projection(P2 { input: i, .. }) = below {
                below = i.as_ref();
            }
            if let P::Sort(s) = below {
                let sorted = sub(&s.input);
                let scope = expr::Scope::one(s.input.schema(), &sorted);
                for e in &s.expr {
                    input.filters.extend(scope.filters(&e.expr, asset));
                }
            }
            input
        }
        P::SubqueryAlias(a) => {
            let inner = sub(&a.input);
            match asset(a.alias.table()) {
                // A view registered under an asset key (an upstream's published partitions) is
                // inlined into the plan under its key's alias: its columns are the asset's.
                Some(k) if inner.columns.iter().all(|c| c.is_empty()) => Lineage {
                    columns: a
                        .schema
                        .fields()
                        .iter()
                        .map(|f| {
                            BTreeMap::from([(
                                Source {
                                    asset: k.clone(),
                                    column: f.name().clone(),
                                },
                                How::Identity,
                            )])
                        })
                        .collect(),
                    filters: BTreeSet::new(),
                },
                _ => inner,
            }
        }
        P::Subquery(s) => sub(&s.subquery),
        P::Repartition(r) => sub(&r.input),
        P::Distinct(Distinct::All(input)) => sub(input),
        P::Distinct(Distinct::On(d)) => {
            let input = sub(&d.input);
            let scope = expr::Scope::one(d.input.schema(), &input);
            let mut out = Lineage::default();
            out.absorb_filters(&input);
            for e in d
                .on_expr
                .iter()
                .chain(d.sort_expr.iter().flatten().map(|s| &s.expr))
            {
                out.filters.extend(scope.filters(e, asset));
            }
            for e in &d.select_expr {
                let (direct, filters) = scope.direct(e, asset);
                out.columns.push(direct);
                out.filters.extend(filters);
            }
            out
        }
        P::RecursiveQuery(r) => {
            let mut out = sub(&r.static_term);
            let rec = sub(&r.recursive_term);
            for (o, c) in out.columns.iter_mut().zip(&rec.columns) {
                for (s, h) in c {
                    merge(o, s.clone(), *h);
                }
            }
            out.absorb_filters(&rec);
            out
        }
        P::Values(_) | P::EmptyRelation(_) => Lineage {
            columns: vec![BTreeMap::new(); plan.schema().fields().len()],
            filters: BTreeSet::new(),
        },
        other => {
            // Conservative: every output is transformed from everything the inputs carry.
            let mut all = BTreeMap::new();
            let mut filters = BTreeSet::new();
            for i in other.inputs() {
                let l = sub(i);
                for (s, h) in l.everything(How::Transformed) {
                    merge(&mut all, s, h);
                }
                filters.extend(l.filters);
            }
            Lineage {
                columns: vec![all; other.schema().fields().len()],
                filters,
            }
        }
    }
}
