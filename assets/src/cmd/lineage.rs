//! `assets lineage KEY`: upstream and downstream as a tree, Graphviz dot, or JSON.

use crate::LineageFormat;
use spine_engine::graph::AssetGraph;
use spine_engine::project::load_project;
use spine_engine::{AssetKey, DefinitionError, EngineError};
use std::collections::BTreeSet;
use std::path::Path;

fn tree(
    graph: &AssetGraph,
    key: &AssetKey,
    up: bool,
    depth: Option<usize>,
    prefix: &str,
    level: usize,
    out: &mut Vec<String>,
) {
    if depth.is_some_and(|d| level >= d) {
        return;
    }
    let next = if up {
        graph.upstream(key)
    } else {
        graph.downstream(key)
    };
    for (i, k) in next.iter().enumerate() {
        let last = i + 1 == next.len();
        out.push(format!("{prefix}{}{k}", if last { "└── " } else { "├── " }));
        let p = format!("{prefix}{}", if last { "    " } else { "│   " });
        tree(graph, k, up, depth, &p, level + 1, out);
    }
}

pub async fn run(
    root: &Path,
    key: &str,
    upstream: bool,
    downstream: bool,
    depth: Option<usize>,
    format: LineageFormat,
) -> anyhow::Result<u8> {
    let project =
        load_project(root, &spine_jobs::all_kinds().names()).map_err(EngineError::from)?;
    let key = AssetKey::parse(key)
        .map_err(|e| EngineError::from(DefinitionError::new("E0402", e.to_string())))?;
    if !project.graph.contains(&key) {
        let mut e = DefinitionError::new("E0402", format!("no asset '{key}' in this project"));
        if let Some(s) =
            spine_engine::project::closest(key.as_str(), project.assets.keys().map(|k| k.as_str()))
        {
            e = e.hint(format!("did you mean '{s}'?"));
        }
        return Err(EngineError::from(e).into());
    }
    let (show_up, show_down) = match (upstream, downstream) {
        (false, false) => (true, true),
        (u, d) => (u, d),
    };
    let g = &project.graph;
    let mut nodes: BTreeSet<AssetKey> = BTreeSet::from([key.clone()]);
    if show_up {
        nodes.extend(g.ancestors(&key, depth).into_iter().map(|(k, _)| k.clone()));
    }
    if show_down {
        nodes.extend(
            g.descendants(&key, depth)
                .into_iter()
                .map(|(k, _)| k.clone()),
        );
    }
    let edges: Vec<(AssetKey, AssetKey)> = nodes
        .iter()
        .flat_map(|n| {
            g.downstream(n)
                .into_iter()
                .filter(|d| nodes.contains(*d))
                .map(move |d| (n.clone(), d.clone()))
        })
        .collect();
    match format {
        LineageFormat::Tree => {
            if show_up {
                println!("{key} (upstream)");
                let mut out = Vec::new();
                tree(g, &key, true, depth, "", 0, &mut out);
                if out.is_empty() {
                    println!("    (none)");
                }
                out.iter().for_each(|l| println!("{l}"));
            }
            if show_down {
                if show_up {
                    println!();
                }
                println!("{key} (downstream)");
                let mut out = Vec::new();
                tree(g, &key, false, depth, "", 0, &mut out);
                if out.is_empty() {
                    println!("    (none)");
                }
                out.iter().for_each(|l| println!("{l}"));
            }
        }
        LineageFormat::Dot => {
            println!("digraph lineage {{\n  rankdir=LR;\n  node [shape=box];");
            for n in &nodes {
                let a = &project.assets[n];
                let style = if *n == key { ", style=bold" } else { "" };
                println!("  \"{n}\" [label=\"{n}\\n({})\"{style}];", a.kind);
            }
            for (a, b) in &edges {
                println!("  \"{a}\" -> \"{b}\";");
            }
            println!("}}");
        }
        LineageFormat::Json => {
            let nodes: Vec<_> = nodes
                .iter()
                .map(|n| {
                    let a = &project.assets[n];
                    serde_json::json!({"key": n, "kind": a.kind, "group": a.group})
                })
                .collect();
            let edges: Vec<_> = edges
                .iter()
                .map(|(a, b)| serde_json::json!({"from": a, "to": b}))
                .collect();
            crate::output::json(&serde_json::json!({"root": key, "nodes": nodes, "edges": edges}))?;
        }
    }
    Ok(0)
}
