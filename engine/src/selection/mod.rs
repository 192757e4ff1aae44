//! Selection syntax (dbt/Dagster style), parsed by a small recursive-descent parser.
//!
//! ```text
//! selection := union
//! union     := inter (("or" | whitespace) inter)*
//! inter     := unary (("and" | ",") unary)*
//! unary     := "not" unary | "(" union ")" | atom
//! atom      := [N] ["+"] base ["+" [N]]          no spaces inside an atom
//! base      := KEY | GLOB | "*" | METHOD ":" VALUE
//! METHOD    := key | group | tag | kind | owner | status | state
//! ```
//! `status:` (fresh, stale, missing, failed, upstream_stale) and `state:` (modified, new: against a
//! saved `assets list --json` of another checkout) depend on more than the project: they resolve
//! only with [`Facts`] ([`Selection::resolve_in`]).
//! `+key` selects the key and all its ancestors, `2+key` ancestors up to two hops, `key+` all descendants,
//! `key+1` direct children. Globs use `*` (any characters, including `/`) and `?`. Whitespace is union,
//! comma is intersection (as in dbt); `or`, `and`, `not` and parentheses are there for longer expressions.

use crate::error::DefinitionError;
use crate::key::AssetKey;
use crate::project::closest;
use std::collections::BTreeSet;

/// A parsed selection expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Either side.
    Union(Box<Selection>, Box<Selection>),
    /// Both sides.
    Intersect(Box<Selection>, Box<Selection>),
    /// Everything except.
    Not(Box<Selection>),
    /// One atom with optional graph operators.
    Atom {
        /// Ancestors to add: `None` = none, `Some(None)` = all, `Some(Some(n))` = up to n hops.
        up: Option<Option<usize>>,
        /// The base set.
        base: Base,
        /// Descendants to add, as for `up`.
        down: Option<Option<usize>>,
    },
}

/// The base of an atom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Base {
    /// An exact key.
    Key(String),
    /// A glob over keys.
    Glob(String),
    /// `group:x`.
    Group(String),
    /// `tag:x`.
    Tag(String),
    /// `kind:x`.
    Kind(String),
    /// `owner:x`.
    Owner(String),
    /// `status:fresh|stale|missing|failed|upstream_stale`.
    Status(String),
    /// `state:modified|new`.
    State(String),
}

/// What `status:` and `state:` selectors need beyond the project.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Each asset's states (`fresh`, `stale`, `missing`, `upstream_stale`, and `failed` when its
    /// latest step, or a partition's, failed).
    pub status: std::collections::HashMap<AssetKey, BTreeSet<String>>,
    /// Against a manifest: `modified` (a different code version) or `new` (not in it); `None`
    /// without one.
    pub state: Option<std::collections::HashMap<AssetKey, &'static str>>,
}

/// The `status:` values.
pub const STATUSES: [&str; 5] = ["fresh", "stale", "missing", "failed", "upstream_stale"];

fn bad(msg: impl Into<String>, expr: &str) -> DefinitionError {
    DefinitionError::new("E0401", format!("bad selection '{expr}': {}", msg.into()))
        .hint("see docs/reference/selection.md; e.g. '+marts/revenue', 'group:staging,tag:daily', 'raw/*'")
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    LParen,
    RParen,
    Comma,
    Word(String),
}

fn lex(s: &str) -> Vec<(Tok, bool)> {
    // Each token carries whether whitespace preceded it (whitespace is the union operator).
    let mut out = Vec::new();
    let mut space = false;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<(Tok, bool)>, space: &mut bool| {
        if !word.is_empty() {
            out.push((Tok::Word(std::mem::take(word)), *space));
            *space = false;
        }
    };
    for c in s.chars() {
        match c {
            '(' | ')' | ',' => {
                flush(&mut word, &mut out, &mut space);
                let t = match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    _ => Tok::Comma,
                };
                out.push((t, space));
                space = false;
            }
            c if c.is_whitespace() => {
                flush(&mut word, &mut out, &mut space);
                space = true;
            }
            c => word.push(c),
        }
    }
    flush(&mut word, &mut out, &mut space);
    out
}

/// Parses a selection expression.
pub fn parse(expr: &str) -> Result<Selection, DefinitionError> {
    let toks = lex(expr);
    if toks.is_empty() {
        return Err(bad("it is empty", expr));
    }
    if toks.len() > MAX_TOKENS {
        return Err(too_big(
            format!(
                "it has {} terms and operators (at most {MAX_TOKENS})",
                toks.len()
            ),
            expr,
        ));
    }
    let mut p = Parser {
        toks,
        pos: 0,
        expr,
        depth: 0,
    };
    let s = p.union()?;
    if p.pos < p.toks.len() {
        return Err(bad(format!("unexpected '{}'", p.show(p.pos)), expr));
    }
    Ok(s)
}

/// Parentheses and `not`s nested deeper than this are refused (the parser and the resolver recurse).
const MAX_NESTING: usize = 64;
/// Longer expressions are refused (a chain of unions resolves recursively too).
const MAX_TOKENS: usize = 1000;

fn too_big(msg: impl Into<String>, expr: &str) -> DefinitionError {
    let shown: String = expr.chars().take(60).collect();
    DefinitionError::new(
        "E0405",
        format!("selection too large: {} ('{shown}…')", msg.into()),
    )
    .hint("split it into several selections, or select by group:, tag: or a glob")
}

struct Parser<'a> {
    toks: Vec<(Tok, bool)>,
    pos: usize,
    expr: &'a str,
    depth: usize,
}

impl Parser<'_> {
    fn show(&self, i: usize) -> String {
        match &self.toks[i].0 {
            Tok::LParen => "(".into(),
            Tok::RParen => ")".into(),
            Tok::Comma => ",".into(),
            Tok::Word(w) => w.clone(),
        }
    }

    fn peek_word(&self, w: &str) -> bool {
        matches!(self.toks.get(self.pos), Some((Tok::Word(x), _)) if x == w)
    }

    fn starts_primary(&self) -> bool {
        match self.toks.get(self.pos) {
            Some((Tok::LParen, _)) => true,
            Some((Tok::Word(w), _)) => w != "and" && w != "or",
            _ => false,
        }
    }

    fn union(&mut self) -> Result<Selection, DefinitionError> {
        let mut left = self.inter()?;
        loop {
            if self.peek_word("or") {
                self.pos += 1;
            } else if !(self.starts_primary() && self.toks[self.pos].1) {
                break;
            }
            let right = self.inter()?;
            left = Selection::Union(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn inter(&mut self) -> Result<Selection, DefinitionError> {
        let mut left = self.unary()?;
        loop {
            match self.toks.get(self.pos) {
                Some((Tok::Comma, _)) => self.pos += 1,
                Some((Tok::Word(w), _)) if w == "and" => self.pos += 1,
                _ => break,
            }
            let right = self.unary()?;
            left = Selection::Intersect(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Selection, DefinitionError> {
        let Some((tok, _)) = self.toks.get(self.pos).cloned() else {
            return Err(bad(
                "it ends where an asset, method or '(' was expected",
                self.expr,
            ));
        };
        self.pos += 1;
        let nests = matches!(&tok, Tok::LParen) || matches!(&tok, Tok::Word(w) if w == "not");
        if nests {
            self.depth += 1;
            if self.depth > MAX_NESTING {
                return Err(too_big(
                    format!("parentheses and 'not' nest deeper than {MAX_NESTING}"),
                    self.expr,
                ));
            }
        }
        let result = self.unary_body(tok);
        if nests {
            self.depth -= 1;
        }
        result
    }

    fn unary_body(&mut self, tok: Tok) -> Result<Selection, DefinitionError> {
        match tok {
            Tok::Word(w) if w == "not" => Ok(Selection::Not(Box::new(self.unary()?))),
            Tok::LParen => {
                let inner = self.union()?;
                match self.toks.get(self.pos) {
                    Some((Tok::RParen, _)) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err(bad("missing ')'", self.expr)),
                }
            }
            Tok::Word(w) if w == "and" || w == "or" => Err(bad(
                format!("'{w}' needs an expression on its left"),
                self.expr,
            )),
            Tok::Word(w) => parse_atom(&w, self.expr),
            Tok::RParen => Err(bad("unexpected ')'", self.expr)),
            Tok::Comma => Err(bad("unexpected ','", self.expr)),
        }
    }
}

fn parse_atom(w: &str, expr: &str) -> Result<Selection, DefinitionError> {
    let mut rest = w;
    // Leading "[N]+".
    let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
    let up = if rest[digits..].starts_with('+') {
        let n = if digits > 0 {
            Some(
                rest[..digits]
                    .parse()
                    .map_err(|_| bad("depth too large", expr))?,
            )
        } else {
            None
        };
        rest = &rest[digits + 1..];
        Some(n)
    } else if digits > 0 {
        return Err(bad(
            format!("'{w}': a number must be followed by '+' (e.g. 2+key)"),
            expr,
        ));
    } else {
        None
    };
    // Trailing "+[N]".
    let down = match rest.rfind('+') {
        Some(i) => {
            let tail = &rest[i + 1..];
            if !tail.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad(
                    format!("'{w}': '+' must come first or last (2+key, key+1)"),
                    expr,
                ));
            }
            let n = if tail.is_empty() {
                None
            } else {
                Some(tail.parse().map_err(|_| bad("depth too large", expr))?)
            };
            rest = &rest[..i];
            Some(n)
        }
        None => None,
    };
    if rest.is_empty() {
        return Err(bad(format!("'{w}' has operators but no asset"), expr));
    }
    let base = match rest.split_once(':') {
        Some((m, "")) => return Err(bad(format!("'{m}:' needs a value"), expr)),
        Some(("key", v)) => key_or_glob(v, expr)?,
        Some(("group", v)) => Base::Group(v.into()),
        Some(("tag", v)) => Base::Tag(v.into()),
        Some(("kind", v)) => Base::Kind(v.into()),
        Some(("owner", v)) => Base::Owner(v.into()),
        Some(("status", v)) if STATUSES.contains(&v) => Base::Status(v.into()),
        Some(("status", v)) => {
            return Err(bad(
                format!("'status:{v}': use one of {}", STATUSES.join(", ")),
                expr,
            ))
        }
        Some(("state", v)) if v == "modified" || v == "new" => Base::State(v.into()),
        Some(("state", v)) => {
            return Err(bad(
                format!("'state:{v}': use state:modified (changed or new) or state:new"),
                expr,
            ))
        }
        Some((m, _)) => {
            let methods = ["key", "group", "tag", "kind", "owner", "status", "state"];
            let hint = closest(m, methods.into_iter())
                .map(|s| format!(" (did you mean '{s}:'?)"))
                .unwrap_or_default();
            return Err(bad(
                format!("unknown method '{m}:'{hint}; use key:, group:, tag:, kind:, owner:, status: or state:"),
                expr,
            ));
        }
        None => key_or_glob(rest, expr)?,
    };
    Ok(Selection::Atom { up, base, down })
}

fn key_or_glob(v: &str, expr: &str) -> Result<Base, DefinitionError> {
    if v.contains(['*', '?']) {
        return Ok(Base::Glob(v.into()));
    }
    AssetKey::parse(v).map_err(|e| bad(e.to_string(), expr))?;
    Ok(Base::Key(v.into()))
}

pub use crate::key::glob_match;

mod resolve;
pub use resolve::{combine, select};

#[cfg(test)]
mod tests;
