//! `assets lineage KEY --column C`: one column's recorded lineage across assets — upstream (the
//! columns it comes from) then downstream (the columns computed from it), each edge with how — as a
//! tree, JSON (nodes and edges), Graphviz dot or Mermaid.

use crate::LineageFormat;
use spine_engine::column_lineage::ColumnNode;
use std::path::Path;

fn label(n: &ColumnNode) -> String {
    format!("{}.{}", n.asset, n.column)
}

fn print_tree(nodes: &[ColumnNode], prefix: &str) {
    for (i, n) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        let how = n.how.map(|h| h.as_str()).unwrap_or_default();
        let mark = if n.repeated { " (*)" } else { "" };
        println!(
            "{prefix}{}{}  {how}{mark}",
            if last { "└── " } else { "├── " },
            label(n)
        );
        let p = format!("{prefix}{}", if last { "    " } else { "│   " });
        print_tree(&n.children, &p);
    }
}

/// Every edge of a walk as (from, to, how), from the upstream column to the downstream one.
fn edges(n: &ColumnNode, up: bool, out: &mut Vec<(String, String, &'static str)>) {
    for c in &n.children {
        let how = c.how.map(|h| h.as_str()).unwrap_or_default();
        let edge = if up {
            (label(c), label(n), how)
        } else {
            (label(n), label(c), how)
        };
        if !out.contains(&edge) {
            out.push(edge);
        }
        edges(c, up, out);
    }
}

pub async fn run(
    root: &Path,
    key: &str,
    column: &str,
    (only_up, only_down): (bool, bool),
    depth: Option<usize>,
    format: LineageFormat,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let up = match only_down {
        true => None,
        false => Some(engine.column_lineage(key, column, true, depth).await?),
    };
    let down = match only_up {
        true => None,
        false => Some(engine.column_lineage(key, column, false, depth).await?),
    };
    engine.close().await;
    let focus = format!("{key}.{column}");
    let mut all = Vec::new();
    for (tree, is_up) in [(&up, true), (&down, false)] {
        if let Some(t) = tree {
            edges(t, is_up, &mut all);
        }
    }
    match format {
        LineageFormat::Tree => {
            println!("{focus}");
            for (title, tree) in [
                ("upstream (what it comes from):", &up),
                ("downstream (what is computed from it):", &down),
            ] {
                let Some(t) = tree else { continue };
                println!("{title}");
                if t.children.is_empty() {
                    println!("    (none recorded)");
                }
                print_tree(&t.children, "");
            }
        }
        LineageFormat::Json => {
            let mut nodes: Vec<&str> = vec![focus.as_str()];
            for (a, b, _) in &all {
                for n in [a.as_str(), b.as_str()] {
                    if !nodes.contains(&n) {
                        nodes.push(n);
                    }
                }
            }
            let edges: Vec<serde_json::Value> = all
                .iter()
                .map(|(a, b, h)| serde_json::json!({"from": a, "to": b, "how": h}))
                .collect();
            crate::output::json(&serde_json::json!({
                "root": focus, "nodes": nodes, "edges": edges,
                "upstream": up, "downstream": down,
            }))?;
        }
        LineageFormat::Dot => {
            println!("digraph column_lineage {{");
            println!("  rankdir=LR;");
            println!("  \"{focus}\" [style=bold];");
            for (a, b, h) in &all {
                let style = if *h == "filter" { ", style=dashed" } else { "" };
                println!("  \"{a}\" -> \"{b}\" [label=\"{h}\"{style}];");
            }
            println!("}}");
        }
        LineageFormat::Mermaid => {
            println!("flowchart LR");
            let id = |s: &str| s.replace(['/', '.'], "_");
            println!("  {}[\"{focus}\"]", id(&focus));
            for (a, b, h) in &all {
                let arrow = if *h == "filter" { "-.->" } else { "-->" };
                println!("  {}[\"{a}\"] {arrow}|{h}| {}[\"{b}\"]", id(a), id(b));
            }
        }
    }
    Ok(0)
}
