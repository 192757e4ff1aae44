//! Rules a project's set of keys must follow together, beyond each key's own syntax
//! ([`AssetKey::parse`]).
//!
//! A key's components are the folders of its table in the warehouse (`x/y` lives in `warehouse/x/y/`),
//! so two rules keep every table in a folder of its own:
//! - no key is a folder prefix of another (`x/y` and `x/y/z` would put `x/y/z`'s table inside `x/y`'s,
//!   where maintenance of `x/y` can reach it, E0207);
//! - no two keys are equal up to case (`Sales/orders` and `sales/orders` are one folder on a
//!   case-insensitive disk, and an unquoted SQL name is folded to lower case, so `Sales.orders` would
//!   read the other one, E0207).

use crate::error::DefinitionError;
use crate::key::AssetKey;
use crate::project::AssetSpec;
use std::collections::BTreeMap;

/// The E0207 errors of `assets` (sorted by key): keys nested in another's folder or equal up to case.
pub(super) fn layout_errors(assets: &BTreeMap<AssetKey, AssetSpec>) -> Vec<DefinitionError> {
    let mut errors = Vec::new();
    let mut by_lower: BTreeMap<String, &AssetSpec> = BTreeMap::new();
    for spec in assets.values() {
        let lower = spec.key.as_str().to_ascii_lowercase();
        if let Some(first) = by_lower.get(&lower) {
            errors.push(
                DefinitionError::new(
                    "E0207",
                    format!(
                        "asset keys '{}' and '{}' differ only in case",
                        first.key, spec.key
                    ),
                )
                .asset(spec.key.as_str())
                .at_opt(spec.source.clone())
                .hint(format!(
                    "{}; they would share a table folder on a case-insensitive disk, and SQL folds \
                     unquoted names to lower case: rename one",
                    defined_at(first)
                )),
            );
        } else {
            by_lower.insert(lower, spec);
        }
    }
    // In sorted order a key's folder prefixes come before it; the lower-cased map also catches a
    // prefix that differs in case.
    for spec in assets.values() {
        let components: Vec<&str> = spec.key.components().collect();
        for n in 1..components.len() {
            let prefix = components[..n].join("/").to_ascii_lowercase();
            let Some(outer) = by_lower.get(&prefix) else {
                continue;
            };
            errors.push(
                DefinitionError::new(
                    "E0207",
                    format!(
                        "asset key '{}' would keep its table inside the table folder of '{}'",
                        spec.key, outer.key
                    ),
                )
                .asset(spec.key.as_str())
                .at_opt(spec.source.clone())
                .hint(format!(
                    "{}; a key's components are its table's folders, so no key may be a prefix of \
                     another: rename one (e.g. '{}/all' or '{}_{}')",
                    defined_at(outer),
                    outer.key,
                    outer.key,
                    components[n..].join("_")
                )),
            );
            break;
        }
    }
    errors
}

fn defined_at(spec: &AssetSpec) -> String {
    match &spec.source {
        Some(l) => format!("'{}' is defined at {l}", spec.key),
        None => format!("'{}' is defined in code", spec.key),
    }
}
