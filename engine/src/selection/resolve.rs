//! Resolving a parsed selection against a project (and, for `status:` and `state:`, the [`Facts`]):
//! graph operators, set operators and each method's base set.

use super::{bad, parse, Base, Facts, Selection};
use crate::error::DefinitionError;
use crate::key::{glob_match, AssetKey};
use crate::project::{closest, Project};
use std::collections::BTreeSet;

impl Selection {
    /// The assets of `project` this selection denotes. An exact key that does not exist is an error
    /// (with the closest key as a suggestion); a glob or method that matches nothing selects nothing.
    pub fn resolve(&self, project: &Project) -> Result<BTreeSet<AssetKey>, DefinitionError> {
        self.resolve_in(project, None)
    }

    /// Whether it uses `status:` or `state:` (and so resolves only with [`Facts`]).
    pub fn needs_facts(&self) -> (bool, bool) {
        match self {
            Selection::Union(a, b) | Selection::Intersect(a, b) => {
                let (x, y) = (a.needs_facts(), b.needs_facts());
                (x.0 || y.0, x.1 || y.1)
            }
            Selection::Not(a) => a.needs_facts(),
            Selection::Atom { base, .. } => (
                matches!(base, Base::Status(_)),
                matches!(base, Base::State(_)),
            ),
        }
    }

    /// [`Selection::resolve`] with the facts `status:` and `state:` need.
    pub fn resolve_in(
        &self,
        project: &Project,
        facts: Option<&Facts>,
    ) -> Result<BTreeSet<AssetKey>, DefinitionError> {
        Ok(match self {
            Selection::Union(a, b) => {
                let mut s = a.resolve_in(project, facts)?;
                s.extend(b.resolve_in(project, facts)?);
                s
            }
            Selection::Intersect(a, b) => {
                let b = b.resolve_in(project, facts)?;
                a.resolve_in(project, facts)?
                    .into_iter()
                    .filter(|k| b.contains(k))
                    .collect()
            }
            Selection::Not(a) => {
                let a = a.resolve_in(project, facts)?;
                project
                    .assets
                    .keys()
                    .filter(|k| !a.contains(*k))
                    .cloned()
                    .collect()
            }
            Selection::Atom { up, base, down } => {
                let base_set = resolve_base(base, project, facts)?;
                let mut out = base_set.clone();
                for k in &base_set {
                    if let Some(depth) = up {
                        out.extend(
                            project
                                .graph
                                .ancestors(k, *depth)
                                .into_iter()
                                .map(|(a, _)| a.clone()),
                        );
                    }
                    if let Some(depth) = down {
                        out.extend(
                            project
                                .graph
                                .descendants(k, *depth)
                                .into_iter()
                                .map(|(a, _)| a.clone()),
                        );
                    }
                }
                out
            }
        })
    }
}

fn resolve_base(
    base: &Base,
    project: &Project,
    facts: Option<&Facts>,
) -> Result<BTreeSet<AssetKey>, DefinitionError> {
    let all = project.assets.values();
    Ok(match base {
        Base::Status(v) => {
            let facts = facts.ok_or_else(|| {
                bad(format!("'status:{v}' needs the run store; `assets list`, `status`, `materialize` and `backfill` take it"), v)
            })?;
            all.filter(|a| facts.status.get(&a.key).is_some_and(|s| s.contains(v)))
                .map(|a| a.key.clone())
                .collect()
        }
        Base::State(v) => {
            let Some(state) = facts.and_then(|f| f.state.as_ref()) else {
                return Err(DefinitionError::new(
                    "E0423",
                    format!("'state:{v}' compares with another checkout's manifest, and none was given"),
                )
                .hint("save one there with `assets list --json > manifest.json`, then pass --state manifest.json"));
            };
            all.filter(|a| state.get(&a.key).is_some_and(|s| v == "modified" || s == v))
                .map(|a| a.key.clone())
                .collect()
        }
        Base::Key(k) => {
            let key = AssetKey::parse(k).map_err(|e| bad(e.to_string(), k))?;
            if !project.assets.contains_key(&key) {
                let mut e =
                    DefinitionError::new("E0402", format!("no asset '{k}' in this project"));
                e = match closest(k, project.assets.keys().map(|k| k.as_str())) {
                    Some(s) => e.hint(format!("did you mean '{s}'?")),
                    None => e.hint("run `assets list` to see the keys"),
                };
                return Err(e);
            }
            BTreeSet::from([key])
        }
        Base::Glob(g) => all
            .filter(|a| glob_match(g, a.key.as_str()))
            .map(|a| a.key.clone())
            .collect(),
        Base::Group(g) => all
            .filter(|a| glob_match(g, &a.group))
            .map(|a| a.key.clone())
            .collect(),
        Base::Tag(t) => all
            .filter(|a| a.tags.iter().any(|x| glob_match(t, x)))
            .map(|a| a.key.clone())
            .collect(),
        Base::Kind(t) => all
            .filter(|a| a.kind == *t)
            .map(|a| a.key.clone())
            .collect(),
        Base::Owner(o) => all
            .filter(|a| a.owners.iter().any(|x| glob_match(o, x)))
            .map(|a| a.key.clone())
            .collect(),
    })
}

/// Parses and resolves `expr` against `project`; `None` selects every asset.
pub fn select(
    project: &Project,
    expr: Option<&str>,
) -> Result<BTreeSet<AssetKey>, DefinitionError> {
    match expr {
        None => Ok(project.assets.keys().cloned().collect()),
        Some(e) => parse(e)?.resolve(project),
    }
}

/// One expression from several command-line selections: the union of `include` (everything when it is
/// empty) minus the union of `exclude`, as dbt's `--select a b --exclude c`. `None` selects everything.
pub fn combine(include: &[String], exclude: &[String]) -> Option<String> {
    let union = |parts: &[String]| {
        parts
            .iter()
            .map(|p| format!("({p})"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    match (include.is_empty(), exclude.is_empty()) {
        (true, true) => None,
        (false, true) if include.len() == 1 => Some(include[0].clone()),
        (false, true) => Some(union(include)),
        (true, false) => Some(format!("* and not ({})", union(exclude))),
        (false, false) => Some(format!("({}) and not ({})", union(include), union(exclude))),
    }
}
