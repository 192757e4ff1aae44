//! The asset graph: nodes are assets, edges point from an upstream to its downstream. Built once per load
//! on petgraph; traversals (ancestors/descendants with depth, topological order) work on node indexes.

use crate::key::AssetKey;
use petgraph::algo::{kosaraju_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use std::collections::{HashMap, VecDeque};

/// The dependency graph of a project's assets.
#[derive(Debug, Clone, Default)]
pub struct AssetGraph {
    graph: DiGraph<AssetKey, ()>,
    index: HashMap<AssetKey, NodeIndex>,
}

impl AssetGraph {
    /// Builds the graph from `(key, upstream keys)`; upstreams not in the list are ignored (the loader
    /// reports them as unknown before building).
    pub fn build<'a>(assets: impl IntoIterator<Item = (&'a AssetKey, &'a [AssetKey])>) -> Self {
        let assets: Vec<_> = assets.into_iter().collect();
        let mut graph = DiGraph::with_capacity(assets.len(), assets.len());
        let mut index = HashMap::with_capacity(assets.len());
        for (k, _) in &assets {
            index.insert((*k).clone(), graph.add_node((*k).clone()));
        }
        for (k, deps) in &assets {
            let to = index[*k];
            for d in deps.iter() {
                if let Some(&from) = index.get(d) {
                    graph.add_edge(from, to, ());
                }
            }
        }
        AssetGraph { graph, index }
    }

    /// Number of assets.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// True when there are no assets.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// Whether `key` is in the graph.
    pub fn contains(&self, key: &AssetKey) -> bool {
        self.index.contains_key(key)
    }

    /// All keys, in insertion order.
    pub fn keys(&self) -> impl Iterator<Item = &AssetKey> {
        self.graph.node_weights()
    }

    /// Direct upstreams of `key`.
    pub fn upstream(&self, key: &AssetKey) -> Vec<&AssetKey> {
        self.neighbors(key, Direction::Incoming)
    }

    /// Direct downstreams of `key`.
    pub fn downstream(&self, key: &AssetKey) -> Vec<&AssetKey> {
        self.neighbors(key, Direction::Outgoing)
    }

    fn neighbors(&self, key: &AssetKey, dir: Direction) -> Vec<&AssetKey> {
        let Some(&n) = self.index.get(key) else {
            return Vec::new();
        };
        let mut v: Vec<&AssetKey> = self
            .graph
            .neighbors_directed(n, dir)
            .map(|i| &self.graph[i])
            .collect();
        v.sort();
        v
    }

    /// Ancestors of `key` up to `depth` hops (`None` = all), without `key` itself, with their distance.
    pub fn ancestors(&self, key: &AssetKey, depth: Option<usize>) -> Vec<(&AssetKey, usize)> {
        self.walk(key, depth, Direction::Incoming)
    }

    /// Descendants of `key` up to `depth` hops (`None` = all), without `key` itself, with their distance.
    pub fn descendants(&self, key: &AssetKey, depth: Option<usize>) -> Vec<(&AssetKey, usize)> {
        self.walk(key, depth, Direction::Outgoing)
    }

    fn walk(
        &self,
        key: &AssetKey,
        depth: Option<usize>,
        dir: Direction,
    ) -> Vec<(&AssetKey, usize)> {
        let Some(&start) = self.index.get(key) else {
            return Vec::new();
        };
        let mut seen = vec![false; self.graph.node_count()];
        seen[start.index()] = true;
        let mut queue = VecDeque::from([(start, 0usize)]);
        let mut out = Vec::new();
        while let Some((n, d)) = queue.pop_front() {
            if depth.is_some_and(|max| d >= max) {
                continue;
            }
            for m in self.graph.neighbors_directed(n, dir) {
                if !seen[m.index()] {
                    seen[m.index()] = true;
                    out.push((&self.graph[m], d + 1));
                    queue.push_back((m, d + 1));
                }
            }
        }
        out
    }

    /// Every cycle (strongly connected component of more than one asset, or a self-loop), each as a path
    /// that starts and ends at the same asset, e.g. `a → b → c → a`.
    pub fn cycles(&self) -> Vec<Vec<AssetKey>> {
        let mut out = Vec::new();
        if toposort(&self.graph, None).is_ok() {
            return out;
        }
        // Kosaraju's algorithm is iterative: deep graphs (a 100,000-asset chain) cannot overflow the stack.
        for scc in kosaraju_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            out.push(self.cycle_path(&scc));
        }
        out.sort();
        out
    }

    /// A concrete cycle through the members of one strongly connected component.
    fn cycle_path(&self, scc: &[NodeIndex]) -> Vec<AssetKey> {
        let members: std::collections::HashSet<_> = scc.iter().copied().collect();
        let start = *scc
            .iter()
            .min_by_key(|n| &self.graph[**n])
            .expect("scc is not empty");
        // Breadth-first search from start back to start inside the component.
        let mut prev: HashMap<NodeIndex, NodeIndex> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            for m in self.graph.neighbors_directed(n, Direction::Outgoing) {
                if !members.contains(&m) {
                    continue;
                }
                if m == start {
                    // Walk back from n to start, then read forward and close the loop.
                    let mut back = vec![n];
                    let mut cur = n;
                    while cur != start {
                        cur = prev[&cur];
                        back.push(cur);
                    }
                    let mut path: Vec<AssetKey> =
                        back.iter().rev().map(|i| self.graph[*i].clone()).collect();
                    path.push(self.graph[start].clone());
                    return path;
                }
                if let std::collections::hash_map::Entry::Vacant(e) = prev.entry(m) {
                    e.insert(n);
                    queue.push_back(m);
                }
            }
        }
        vec![self.graph[start].clone()]
    }

    /// Keys in dependency order (upstreams first); `None` when the graph has a cycle.
    pub fn topological_order(&self) -> Option<Vec<&AssetKey>> {
        toposort(&self.graph, None)
            .ok()
            .map(|v| v.into_iter().map(|n| &self.graph[n]).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> AssetKey {
        AssetKey::parse(s).unwrap()
    }

    fn graph(edges: &[(&str, &[&str])]) -> AssetGraph {
        let owned: Vec<(AssetKey, Vec<AssetKey>)> = edges
            .iter()
            .map(|(a, ds)| (k(a), ds.iter().map(|d| k(d)).collect()))
            .collect();
        AssetGraph::build(owned.iter().map(|(a, d)| (a, d.as_slice())))
    }

    #[test]
    fn ancestors_and_descendants_with_depth() {
        let g = graph(&[("a", &[]), ("b", &["a"]), ("c", &["b"]), ("d", &["c"])]);
        let names = |v: Vec<(&AssetKey, usize)>| {
            v.into_iter()
                .map(|(k, _)| k.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(g.ancestors(&k("d"), None)), ["c", "b", "a"]);
        assert_eq!(names(g.ancestors(&k("d"), Some(1))), ["c"]);
        assert_eq!(names(g.descendants(&k("a"), Some(2))), ["b", "c"]);
    }

    #[test]
    fn names_the_cycle_in_order() {
        let g = graph(&[("a", &["c"]), ("b", &["a"]), ("c", &["b"]), ("x", &[])]);
        let cycles = g.cycles();
        assert_eq!(cycles.len(), 1);
        let names: Vec<_> = cycles[0].iter().map(|k| k.to_string()).collect();
        assert_eq!(names, ["a", "b", "c", "a"]);
        assert!(g.topological_order().is_none());
    }
}
