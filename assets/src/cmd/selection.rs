//! Selections that depend on more than the project: `status:…` (the run store) and `state:…` (a
//! manifest of another checkout, `--state FILE`) are resolved here, once, into the keys they select,
//! so every command downstream sees a plain selection.

use crate::SelectArgs;
use spine_engine::EngineError;
use std::path::Path;

/// A command's selection after `status:` and `state:` are resolved.
pub enum Selected {
    /// An expression (`None`: everything).
    Expr(Option<String>),
    /// `status:`/`state:` selected nothing now (`expr` as given).
    Nothing(String),
}

impl Selected {
    /// The expression, with nothing selected as an expression that selects nothing.
    pub fn expression(self) -> Option<String> {
        match self {
            Selected::Expr(e) => e,
            Selected::Nothing(_) => Some("not *".into()),
        }
    }
}

/// Resolves `select`'s `status:`/`state:` atoms (opening the store only when it has some).
pub async fn expand(root: &Path, select: &SelectArgs) -> anyhow::Result<Selected> {
    let expr = select.expression();
    let Some(text) = expr.clone() else {
        if select.state.is_some() {
            return Err(EngineError::from(
                spine_engine::DefinitionError::new(
                    "E0423",
                    "--state is given but no selection uses state:",
                )
                .hint("select what changed: -s state:modified+ --state manifest.json"),
            )
            .into());
        }
        return Ok(Selected::Expr(None));
    };
    let parsed = spine_engine::selection::parse(&text).map_err(EngineError::from)?;
    let (status, state) = parsed.needs_facts();
    if !status && !state {
        return Ok(Selected::Expr(expr));
    }
    let engine = super::engine(root, None).await?;
    let keys = engine
        .select_with_facts(&text, select.state.as_deref())
        .await;
    engine.close().await;
    let keys = keys?;
    if keys.is_empty() {
        return Ok(Selected::Nothing(text));
    }
    Ok(Selected::Expr(Some(
        keys.iter()
            .map(|k| format!("key:{k}"))
            .collect::<Vec<_>>()
            .join(" "),
    )))
}
