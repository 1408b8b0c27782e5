//! Every elementary cycle of a small directed graph.

use std::collections::{BTreeMap, BTreeSet};

/// Directed edges between named nodes; an edge from a node to itself is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Graph {
    edges: BTreeMap<String, BTreeSet<String>>,
}

impl Graph {
    pub fn add_edge(&mut self, from: &str, to: &str) {
        if from != to {
            self.edges
                .entry(from.to_string())
                .or_default()
                .insert(to.to_string());
            self.edges.entry(to.to_string()).or_default();
        }
    }

    fn successors(&self, node: &str) -> impl Iterator<Item = &String> {
        self.edges.get(node).into_iter().flatten()
    }

    /// The strongly connected components of two nodes or more, each sorted, in name order.
    pub fn tangles(&self) -> Vec<Vec<String>> {
        let mut tarjan = Tarjan {
            graph: self,
            index: BTreeMap::new(),
            low: BTreeMap::new(),
            stack: vec![],
            on_stack: BTreeSet::new(),
            components: vec![],
        };
        for node in self.edges.keys() {
            if !tarjan.index.contains_key(node.as_str()) {
                tarjan.visit(node);
            }
        }
        let mut out: Vec<Vec<String>> = tarjan
            .components
            .into_iter()
            .filter(|c| c.len() > 1)
            .map(|mut c| {
                c.sort();
                c
            })
            .collect();
        out.sort();
        out
    }

    /// Every elementary cycle (at most `limit`), each starting at its first node in name order,
    /// e.g. `[a, b, a]` for `a → b → a`.
    pub fn cycles(&self, limit: usize) -> Vec<Vec<String>> {
        let mut out = vec![];
        for component in self.tangles() {
            let members: BTreeSet<&str> = component.iter().map(String::as_str).collect();
            for (i, start) in component.iter().enumerate() {
                // Cycles through an earlier node have been found from that node.
                let allowed: BTreeSet<&str> = component[i..].iter().map(String::as_str).collect();
                let mut path = vec![start.as_str()];
                self.walk(start, &allowed, &members, &mut path, &mut out, limit);
            }
        }
        out
    }

    fn walk<'a>(
        &'a self,
        start: &str,
        allowed: &BTreeSet<&str>,
        members: &BTreeSet<&str>,
        path: &mut Vec<&'a str>,
        out: &mut Vec<Vec<String>>,
        limit: usize,
    ) {
        let Some(&here) = path.last() else {
            return;
        };
        for next in self.successors(here) {
            if out.len() >= limit {
                return;
            }
            let next = next.as_str();
            if next == start {
                let mut cycle: Vec<String> = path.iter().map(|s| s.to_string()).collect();
                cycle.push(start.to_string());
                out.push(cycle);
            } else if members.contains(next) && allowed.contains(next) && !path.contains(&next) {
                path.push(next);
                self.walk(start, allowed, members, path, out, limit);
                path.pop();
            }
        }
    }
}

struct Tarjan<'a> {
    graph: &'a Graph,
    index: BTreeMap<&'a str, usize>,
    low: BTreeMap<&'a str, usize>,
    stack: Vec<&'a str>,
    on_stack: BTreeSet<&'a str>,
    components: Vec<Vec<String>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, node: &'a str) {
        let i = self.index.len();
        self.index.insert(node, i);
        self.low.insert(node, i);
        self.stack.push(node);
        self.on_stack.insert(node);
        for next in self.graph.successors(node) {
            let next = next.as_str();
            if !self.index.contains_key(next) {
                self.visit(next);
                let low = self.low_of(node).min(self.low_of(next));
                self.low.insert(node, low);
            } else if self.on_stack.contains(next) {
                let low = self.low_of(node).min(self.index[next]);
                self.low.insert(node, low);
            }
        }
        if self.low_of(node) == self.index[node] {
            let mut component = vec![];
            while let Some(member) = self.stack.pop() {
                self.on_stack.remove(member);
                component.push(member.to_string());
                if member == node {
                    break;
                }
            }
            self.components.push(component);
        }
    }

    fn low_of(&self, node: &str) -> usize {
        self.low.get(node).copied().unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> Graph {
        let mut g = Graph::default();
        for (a, b) in edges {
            g.add_edge(a, b);
        }
        g
    }

    fn cycles(edges: &[(&str, &str)]) -> Vec<String> {
        graph(edges)
            .cycles(100)
            .into_iter()
            .map(|c| c.join(" -> "))
            .collect()
    }

    #[test]
    fn a_dag_has_no_cycle() {
        let edges = [("a", "b"), ("b", "c"), ("a", "c"), ("d", "a")];
        assert!(graph(&edges).tangles().is_empty());
        assert!(cycles(&edges).is_empty());
    }

    #[test]
    fn self_edges_are_ignored() {
        assert!(cycles(&[("a", "a")]).is_empty());
    }

    #[test]
    fn every_elementary_cycle_is_listed_once() {
        let edges = [
            ("program", "plan"),
            ("plan", "levels"),
            ("levels", "program"),
            ("plan", "program"),
            ("attribution", "sales"),
            ("sales", "attribution"),
            ("sales", "money"),
        ];
        assert_eq!(
            cycles(&edges),
            vec![
                "attribution -> sales -> attribution",
                "levels -> program -> plan -> levels",
                "plan -> program -> plan",
            ]
        );
        assert_eq!(
            graph(&edges).tangles(),
            vec![
                vec!["attribution".to_string(), "sales".to_string()],
                vec!["levels".into(), "plan".into(), "program".into()],
            ]
        );
    }

    #[test]
    fn the_limit_bounds_the_listing() {
        // a complete graph on 6 nodes has hundreds of cycles
        let names = ["a", "b", "c", "d", "e", "f"];
        let mut g = Graph::default();
        for x in names {
            for y in names {
                g.add_edge(x, y);
            }
        }
        assert_eq!(g.cycles(10).len(), 10);
    }
}
