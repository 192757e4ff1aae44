//! The lineage of one expression over a plan node's inputs.

use super::{merge, walk, How, Lineage, Source};
use crate::key::AssetKey;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, DFSchemaRef};
use datafusion::logical_expr::expr::WindowFunctionDefinition;
use datafusion::logical_expr::Expr;
use std::collections::{BTreeMap, BTreeSet};

/// The inputs an expression's columns resolve against, in order (a join's condition sees both sides).
pub(super) struct Scope<'a> {
    pub inputs: Vec<(&'a DFSchemaRef, &'a Lineage)>,
}

type Asset<'a> = &'a dyn Fn(&str) -> Option<AssetKey>;

impl<'a> Scope<'a> {
    /// One input.
    pub fn one(schema: &'a DFSchemaRef, lineage: &'a Lineage) -> Self {
        Scope {
            inputs: vec![(schema, lineage)],
        }
    }

    /// The sources `e` computes its value from, and those its subqueries filter on.
    pub fn direct(&self, e: &Expr, asset: Asset) -> (BTreeMap<Source, How>, BTreeSet<Source>) {
        let (mut out, mut filters) = (BTreeMap::new(), BTreeSet::new());
        self.visit(e, How::Identity, asset, &mut out, &mut filters);
        (out, filters)
    }

    /// Every source `e` reads, for an expression that decides rows (a predicate, a key).
    pub fn filters(&self, e: &Expr, asset: Asset) -> BTreeSet<Source> {
        let (direct, mut filters) = self.direct(e, asset);
        filters.extend(direct.into_keys());
        filters
    }

    fn lookup(&self, c: &Column) -> Option<&BTreeMap<Source, How>> {
        self.inputs.iter().find_map(|(schema, l)| {
            let i = schema.index_of_column(c).ok()?;
            l.columns.get(i)
        })
    }

    fn visit(
        &self,
        e: &Expr,
        level: How,
        asset: Asset,
        out: &mut BTreeMap<Source, How>,
        filters: &mut BTreeSet<Source>,
    ) {
        match e {
            Expr::Alias(a) => self.visit(&a.expr, level, asset, out, filters),
            Expr::Column(c) => {
                if let Some(sources) = self.lookup(c) {
                    for (s, h) in sources {
                        merge(out, s.clone(), (*h).max(level));
                    }
                }
            }
            // Resolved in the outer query, which reads the column itself.
            Expr::OuterReferenceColumn(..) => {}
            Expr::AggregateFunction(f) => {
                for a in &f.params.args {
                    self.visit(a, level.max(How::Aggregated), asset, out, filters);
                }
                let decide = f.params.filter.iter().map(|b| b.as_ref());
                for d in decide.chain(f.params.order_by.iter().map(|s| &s.expr)) {
                    filters.extend(self.filters(d, asset));
                }
            }
            Expr::WindowFunction(w) => {
                let how = match &w.fun {
                    WindowFunctionDefinition::AggregateUDF(_) => How::Aggregated,
                    WindowFunctionDefinition::WindowUDF(_) => How::Transformed,
                };
                for a in &w.params.args {
                    self.visit(a, level.max(how), asset, out, filters);
                }
                let p = &w.params;
                let decide = p
                    .partition_by
                    .iter()
                    .chain(p.order_by.iter().map(|s| &s.expr));
                for d in decide.chain(p.filter.iter().map(|b| b.as_ref())) {
                    filters.extend(self.filters(d, asset));
                }
            }
            Expr::ScalarSubquery(s) => {
                let l = walk(&s.subquery, asset);
                for c in &l.columns {
                    for (src, h) in c {
                        merge(out, src.clone(), (*h).max(level));
                    }
                }
                filters.extend(l.filters);
            }
            Expr::Exists(x) => Self::decides(&walk(&x.subquery.subquery, asset), filters),
            Expr::InSubquery(i) => {
                self.visit(&i.expr, level.max(How::Transformed), asset, out, filters);
                Self::decides(&walk(&i.subquery.subquery, asset), filters);
            }
            Expr::SetComparison(s) => {
                self.visit(&s.expr, level.max(How::Transformed), asset, out, filters);
                Self::decides(&walk(&s.subquery.subquery, asset), filters);
            }
            other => {
                let _ = other.apply_children(|c| {
                    self.visit(c, level.max(How::Transformed), asset, out, filters);
                    Ok(TreeNodeRecursion::Continue)
                });
            }
        }
    }

    /// A subquery that decides rows (`EXISTS`, `IN`): everything it reads.
    fn decides(l: &Lineage, filters: &mut BTreeSet<Source>) {
        filters.extend(l.everything(How::Filter).into_keys());
        filters.extend(l.filters.iter().cloned());
    }
}
