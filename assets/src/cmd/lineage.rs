//! `assets lineage KEY` (upstream and downstream of one asset) and `assets lineage --all` (the whole
//! project), as a tree, Graphviz dot, JSON or Mermaid. In a tree each asset is expanded once; where it is
//! reached again it is printed with `(*)`, as `cargo tree` does, so shared subtrees are not repeated.

use crate::LineageFormat;
use spine_engine::graph::AssetGraph;
use spine_engine::loader::load_project;
use spine_engine::project::Project;
use spine_engine::{AssetKey, DefinitionError, EngineError};
use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// What `lineage KEY` shows.
pub struct View {
    pub upstream: bool,
    pub downstream: bool,
    pub depth: Option<usize>,
    pub format: LineageFormat,
}

struct Tree<'a> {
    graph: &'a AssetGraph,
    up: bool,
    depth: Option<usize>,
    expanded: HashSet<AssetKey>,
    out: Vec<String>,
}

impl Tree<'_> {
    fn children(&self, key: &AssetKey) -> Vec<AssetKey> {
        let next = if self.up {
            self.graph.upstream(key)
        } else {
            self.graph.downstream(key)
        };
        next.into_iter().cloned().collect()
    }

    /// Prints the children of `key` (already printed by the caller) below it.
    fn walk(&mut self, key: &AssetKey, prefix: &str, level: usize) {
        if self.depth.is_some_and(|d| level >= d) {
            return;
        }
        let next = self.children(key);
        for (i, k) in next.iter().enumerate() {
            let last = i + 1 == next.len();
            let branch = if last { "└── " } else { "├── " };
            let seen = !self.children(k).is_empty() && !self.expanded.insert(k.clone());
            let mark = if seen { " (*)" } else { "" };
            self.out.push(format!("{prefix}{branch}{k}{mark}"));
            if !seen {
                let p = format!("{prefix}{}", if last { "    " } else { "│   " });
                self.walk(k, &p, level + 1);
            }
        }
    }
}

fn load(root: &Path) -> Result<Project, EngineError> {
    Ok(load_project(root, &crate::cmd::kinds())?)
}

fn print_tree(graph: &AssetGraph, roots: &[AssetKey], up: bool, depth: Option<usize>) -> bool {
    let mut t = Tree {
        graph,
        up,
        depth,
        expanded: HashSet::new(),
        out: Vec::new(),
    };
    let mut any_shared = false;
    for root in roots {
        if roots.len() > 1 {
            let seen = !t.expanded.insert(root.clone());
            t.out
                .push(format!("{root}{}", if seen { " (*)" } else { "" }));
            if seen {
                continue;
            }
        }
        t.walk(root, "", 0);
    }
    for l in &t.out {
        any_shared |= l.ends_with(" (*)");
        println!("{l}");
    }
    if t.out.is_empty() {
        println!("    (none)");
    }
    any_shared
}

pub async fn run(root: &Path, key: &str, view: View) -> anyhow::Result<u8> {
    let project = load(root)?;
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
    let (show_up, show_down) = match (view.upstream, view.downstream) {
        (false, false) => (true, true),
        (u, d) => (u, d),
    };
    let g = &project.graph;
    let mut nodes: BTreeSet<AssetKey> = BTreeSet::from([key.clone()]);
    if show_up {
        nodes.extend(
            g.ancestors(&key, view.depth)
                .into_iter()
                .map(|(k, _)| k.clone()),
        );
    }
    if show_down {
        nodes.extend(
            g.descendants(&key, view.depth)
                .into_iter()
                .map(|(k, _)| k.clone()),
        );
    }
    if view.format != LineageFormat::Tree {
        return graph_out(&project, &nodes, Some(&key), view.format);
    }
    let mut shared = false;
    if show_up {
        println!("{key} (upstream)");
        shared |= print_tree(g, std::slice::from_ref(&key), true, view.depth);
    }
    if show_down {
        if show_up {
            println!();
        }
        println!("{key} (downstream)");
        shared |= print_tree(g, std::slice::from_ref(&key), false, view.depth);
    }
    if shared {
        println!("\n(*) shown expanded above");
    }
    Ok(0)
}

/// `lineage --all`: every asset once; a tree starts at each asset without upstreams.
pub async fn all(root: &Path, format: LineageFormat) -> anyhow::Result<u8> {
    let project = load(root)?;
    let nodes: BTreeSet<AssetKey> = project.assets.keys().cloned().collect();
    if format != LineageFormat::Tree {
        return graph_out(&project, &nodes, None, format);
    }
    let roots: Vec<AssetKey> = project
        .graph
        .topological_order()
        .unwrap_or_default()
        .into_iter()
        .filter(|k| project.graph.upstream(k).is_empty())
        .cloned()
        .collect();
    if print_tree(&project.graph, &roots, false, None) {
        println!("\n(*) shown expanded above");
    }
    Ok(0)
}

/// The subgraph on `nodes` (each once, with the edges between them) as dot, JSON or Mermaid.
fn graph_out(
    project: &Project,
    nodes: &BTreeSet<AssetKey>,
    focus: Option<&AssetKey>,
    format: LineageFormat,
) -> anyhow::Result<u8> {
    let g = &project.graph;
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
        LineageFormat::Tree => unreachable!("trees are printed by the callers"),
        LineageFormat::Dot => {
            println!("digraph lineage {{\n  rankdir=LR;\n  node [shape=box];");
            for n in nodes {
                let a = &project.assets[n];
                let style = if Some(n) == focus { ", style=bold" } else { "" };
                println!("  \"{n}\" [label=\"{n}\\n({})\"{style}];", a.kind);
            }
            for (a, b) in &edges {
                println!("  \"{a}\" -> \"{b}\";");
            }
            println!("}}");
        }
        LineageFormat::Mermaid => {
            // Mermaid ids cannot hold '/': number the nodes and label them with their keys.
            let ids: std::collections::BTreeMap<&AssetKey, String> = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n, format!("n{i}")))
                .collect();
            println!("flowchart LR");
            for n in nodes {
                let a = &project.assets[n];
                println!("  {}[\"{n}<br/>({})\"]", ids[n], a.kind);
            }
            for (a, b) in &edges {
                println!("  {} --> {}", ids[a], ids[b]);
            }
            if let Some(f) = focus {
                println!("  style {} stroke-width:3px", ids[f]);
            }
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
            crate::output::json(
                &serde_json::json!({"root": focus, "nodes": nodes, "edges": edges}),
            )?;
        }
    }
    Ok(0)
}

/// `assets lineage KEY --partition P`: the partition's recorded lineage, upstream then downstream (or
/// one of them), as a tree or JSON.
pub async fn partition(
    root: &Path,
    key: &str,
    partition: &str,
    (only_up, only_down): (bool, bool),
    depth: Option<usize>,
    json: bool,
) -> anyhow::Result<u8> {
    let engine = super::engine(root, None).await?;
    let up = if only_down {
        None
    } else {
        Some(
            engine
                .partition_lineage(key, partition, true, depth)
                .await?,
        )
    };
    let down = if only_up {
        None
    } else {
        Some(
            engine
                .partition_lineage(key, partition, false, depth)
                .await?,
        )
    };
    engine.close().await;
    if json {
        crate::output::json(&serde_json::json!({"upstream": up, "downstream": down}))?;
        return Ok(0);
    }
    let root_node = up.as_ref().or(down.as_ref()).expect("one side is shown");
    println!("{}", describe(root_node));
    for (label, tree) in [
        ("upstream (what it read)", &up),
        ("downstream (what read it)", &down),
    ] {
        let Some(t) = tree else { continue };
        println!("{label}:");
        if t.children.is_empty() {
            println!("    (none recorded)");
        }
        print_nodes(&t.children, "");
    }
    Ok(0)
}

fn describe(n: &spine_engine::reads::LineageNode) -> String {
    format!(
        "{}  #{} Delta v{} run {}{}",
        n.step,
        n.materialization_id.unwrap_or_default(),
        n.delta_version.unwrap_or_default(),
        n.run_id
            .as_deref()
            .map(|r| &r[..r.len().min(12)])
            .unwrap_or("-"),
        if n.repeated { " (*)" } else { "" }
    )
}

fn print_nodes(nodes: &[spine_engine::reads::LineageNode], prefix: &str) {
    for (i, n) in nodes.iter().enumerate() {
        let last = i + 1 == nodes.len();
        println!(
            "{prefix}{}{}",
            if last { "└── " } else { "├── " },
            describe(n)
        );
        let p = format!("{prefix}{}", if last { "    " } else { "│   " });
        print_nodes(&n.children, &p);
    }
}
