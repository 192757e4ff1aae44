//! SQL analysis for `sql` assets: parse with DataFusion's SQL parser, find the tables a query reads, and
//! rewrite each reference to a single quoted identifier equal to the asset key, so keys of any depth
//! (`sales.orders`, `"sales/orders"`, `a.b.c.d`) resolve to one registered table name.

use crate::key::AssetKey;
use datafusion::sql::sqlparser::ast::{
    Ident, ObjectName, ObjectNamePart, Query, Statement, TableFactor, Visit, VisitMut, Visitor,
    VisitorMut,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;

/// A parsed `sql` asset query.
#[derive(Debug, Clone)]
pub struct AnalyzedSql {
    /// Every table the query reads, as the asset key it names.
    pub tables: BTreeSet<AssetKey>,
    /// Names that are not valid asset keys (reported as unknown tables).
    pub invalid_names: Vec<String>,
    /// The query with every table reference rewritten to `"<asset key>"`.
    pub rewritten: String,
}

/// Why a query could not be analyzed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SqlError {
    /// The text is not valid SQL.
    #[error("{0}")]
    Parse(String),
    /// Not exactly one query.
    #[error("{0}")]
    Shape(String),
}

/// Parses `sql`, collects its table references and rewrites them.
pub fn analyze(sql: &str) -> Result<AnalyzedSql, SqlError> {
    let mut statements =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| SqlError::Parse(e.to_string()))?;
    if statements.len() != 1 {
        return Err(SqlError::Shape(format!(
            "expected exactly one SELECT query, found {} statements",
            statements.len()
        )));
    }
    let mut stmt = statements.remove(0);
    if !matches!(stmt, Statement::Query(_)) {
        return Err(SqlError::Shape(
            "an asset's SQL must be a single query (SELECT, WITH … SELECT, VALUES); the engine writes the result"
                .to_string(),
        ));
    }
    let mut rw = Rewriter::for_statement(&stmt);
    let _ = VisitMut::visit(&mut stmt, &mut rw);
    Ok(AnalyzedSql {
        tables: rw.tables,
        invalid_names: rw.invalid,
        rewritten: stmt.to_string(),
    })
}

/// Rewrites table references in an ad-hoc query (`assets sql`): names that are asset keys in `known`
/// become `"<key>"`; anything else is left alone. Returns the rewritten SQL and the keys referenced.
pub fn rewrite_known(
    sql: &str,
    known: &dyn Fn(&AssetKey) -> bool,
) -> Result<(String, Vec<AssetKey>), SqlError> {
    let statements =
        Parser::parse_sql(&GenericDialect {}, sql).map_err(|e| SqlError::Parse(e.to_string()))?;
    let mut out = Vec::new();
    let mut keys = Vec::new();
    for mut stmt in statements {
        let mut rw = Rewriter::for_statement(&stmt);
        let _ = VisitMut::visit(
            &mut stmt,
            &mut KnownOnly {
                inner: &mut rw,
                known,
            },
        );
        keys.extend(rw.tables);
        out.push(stmt.to_string());
    }
    Ok((out.join(";\n"), keys))
}

#[derive(Default)]
struct CteNames(HashSet<String>);

impl Visitor for CteNames {
    type Break = ();
    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.0.insert(normalize(&cte.alias.name));
            }
        }
        ControlFlow::Continue(())
    }
}

fn normalize(id: &Ident) -> String {
    if id.quote_style.is_some() {
        id.value.clone()
    } else {
        id.value.to_ascii_lowercase()
    }
}

/// The asset key a table name denotes, if any: dotted parts joined by `/`.
fn name_to_key(name: &ObjectName) -> Result<AssetKey, String> {
    let mut parts = Vec::with_capacity(name.0.len());
    for p in &name.0 {
        match p {
            ObjectNamePart::Identifier(id) => parts.push(normalize(id)),
            ObjectNamePart::Function(_) => return Err(name.to_string()),
        }
    }
    let joined = parts.join("/");
    AssetKey::parse(&joined).map_err(|_| name.to_string())
}

struct Rewriter {
    ctes: HashSet<String>,
    tables: BTreeSet<AssetKey>,
    invalid: Vec<String>,
}

impl Rewriter {
    /// A rewriter for `stmt`, knowing its CTE names (which are not tables).
    fn for_statement(stmt: &Statement) -> Self {
        let mut ctes = CteNames::default();
        let _ = stmt.visit(&mut ctes);
        Rewriter {
            ctes: ctes.0,
            tables: BTreeSet::new(),
            invalid: Vec::new(),
        }
    }

    fn rewrite(&mut self, tf: &mut TableFactor, known: Option<&dyn Fn(&AssetKey) -> bool>) {
        let TableFactor::Table {
            name, args: None, ..
        } = tf
        else {
            return;
        };
        if name.0.len() == 1 {
            if let ObjectNamePart::Identifier(id) = &name.0[0] {
                if self.ctes.contains(&normalize(id)) {
                    return;
                }
            }
        }
        match name_to_key(name) {
            Ok(key) => {
                if let Some(k) = known {
                    if !k(&key) {
                        return;
                    }
                }
                *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote(
                    '"',
                    key.as_str(),
                ))]);
                self.tables.insert(key);
            }
            Err(raw) => {
                if known.is_none() {
                    self.invalid.push(raw)
                }
            }
        }
    }
}

impl VisitorMut for Rewriter {
    type Break = ();
    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
        self.rewrite(tf, None);
        ControlFlow::Continue(())
    }
}

struct KnownOnly<'a, 'b> {
    inner: &'a mut Rewriter,
    known: &'b dyn Fn(&AssetKey) -> bool,
}

impl VisitorMut for KnownOnly<'_, '_> {
    type Break = ();
    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
        self.inner.rewrite(tf, Some(self.known));
        ControlFlow::Continue(())
    }
}

/// Substitutes `${var:NAME}` from `vars`. Unknown names are returned as errors.
pub fn render_vars(text: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("${var:") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 6..];
        let Some(end) = after.find('}') else {
            return Err("unterminated '${var:' (expected '}')".to_string());
        };
        let name = &after[..end];
        match vars(name) {
            Some(v) => out.push_str(&v),
            None => return Err(format!("unknown variable '{name}': define it under [vars] in spine.toml or set SPINE_VAR_{}", name.to_ascii_uppercase())),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(sql: &str) -> Vec<String> {
        analyze(sql)
            .unwrap()
            .tables
            .iter()
            .map(|k| k.to_string())
            .collect()
    }

    #[test]
    fn finds_tables_in_joins_subqueries_and_ctes() {
        assert_eq!(
            keys("select * from sales.orders o join customers c on o.c = c.id"),
            ["customers", "sales/orders"]
        );
        assert_eq!(
            keys("with x as (select * from raw.orders) select * from x where id in (select id from \"a/b/c\")"),
            ["a/b/c", "raw/orders"]
        );
        assert_eq!(
            keys("select * from generate_series(1, 10)"),
            Vec::<String>::new()
        );
        assert_eq!(keys("select 1"), Vec::<String>::new());
    }

    #[test]
    fn rewrites_to_quoted_keys() {
        let a = analyze("select * from sales.orders").unwrap();
        assert!(a.rewritten.contains("\"sales/orders\""), "{}", a.rewritten);
    }

    #[test]
    fn rejects_non_queries_and_bad_sql() {
        assert!(matches!(analyze("selec 1"), Err(SqlError::Parse(_))));
        assert!(matches!(analyze("drop table x"), Err(SqlError::Shape(_))));
        assert!(matches!(
            analyze("select 1; select 2"),
            Err(SqlError::Shape(_))
        ));
    }

    #[test]
    fn renders_vars() {
        let v = |n: &str| (n == "n").then(|| "10".to_string());
        assert_eq!(render_vars("limit ${var:n}", &v).unwrap(), "limit 10");
        assert!(render_vars("${var:m}", &v).is_err());
    }

    /// Property: upstream analysis never panics on any SQL-shaped input (random sequences of SQL tokens
    /// and junk); it answers Ok or an error. `SPINE_FUZZ_CASES` raises the count for a long run.
    #[test]
    fn random_sql_never_panics() {
        const TOKENS: [&str; 30] = [
            "SELECT ",
            "* ",
            "FROM ",
            "a.b ",
            "\"x/y\" ",
            "JOIN ",
            "ON ",
            "= ",
            "WITH ",
            "t AS ",
            "( ",
            ") ",
            ", ",
            "UNION ALL ",
            "WHERE ",
            "1 ",
            "'s' ",
            "GROUP BY ",
            "x ",
            "; ",
            "-- c\n",
            "/* ",
            "*/ ",
            "${var:",
            "} ",
            "LATERAL ",
            "VALUES ",
            "IN ",
            "EXISTS ",
            "é ",
        ];
        let cases: usize = std::env::var("SPINE_FUZZ_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5_000);
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = || {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            state.wrapping_mul(0x2545_F491_4F6C_DD1D)
        };
        for _ in 0..cases {
            let n = (next() % 40) as usize;
            let sql: String = (0..n)
                .map(|_| TOKENS[(next() % TOKENS.len() as u64) as usize])
                .collect();
            let _ = analyze(&sql);
        }
    }
}
