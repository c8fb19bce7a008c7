//! The dependency graph: its strongly connected components (Tarjan's algorithm) and the
//! shortest cycle in each, classified as G0, G1c or G2 by the kinds of edge it needs;
//! and, for an acyclic graph, an equivalent serial order (a topological order).
//! Both front ends (list-append, `check`; registers, `register`) build one.

use super::{Anomaly, Dep, Edge};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap, VecDeque};

/// The dependency graph over transactions (by index).
pub(super) struct Graph {
    out: Vec<Vec<(usize, Dep, String)>>,
    /// How many edges were added.
    pub(super) edges: usize,
}

impl Graph {
    pub(super) fn new(nodes: usize) -> Graph {
        Graph {
            out: vec![Vec::new(); nodes],
            edges: 0,
        }
    }

    pub(super) fn add(&mut self, from: usize, to: usize, dep: Dep, key: &str) {
        if from != to {
            self.out[from].push((to, dep, key.to_string()));
            self.edges += 1;
        }
    }

    /// The most severe cycle of each strongly connected component, classified; `names`
    /// names the transactions by index.
    pub(super) fn cycles(&self, names: &[String], committed: &[bool]) -> Vec<Anomaly> {
        let mut anomalies = Vec::new();
        for component in self.components(committed) {
            if component.len() < 2 {
                continue;
            }
            let members: BTreeSet<usize> = component.into_iter().collect();
            let named = |cycle: Vec<(usize, usize, Dep, String)>| -> Vec<Edge> {
                (cycle.into_iter())
                    .map(|(from, to, dep, key)| Edge {
                        from: names[from].clone(),
                        to: names[to].clone(),
                        dep,
                        key,
                    })
                    .collect()
            };
            if let Some(cycle) = self.shortest_cycle(&members, &[Dep::Ww]) {
                anomalies.push(Anomaly::G0 {
                    cycle: named(cycle),
                });
            } else if let Some(cycle) = self.shortest_cycle(&members, &[Dep::Ww, Dep::Wr]) {
                anomalies.push(Anomaly::G1c {
                    cycle: named(cycle),
                });
            } else if let Some(cycle) = self.shortest_cycle(&members, &[Dep::Ww, Dep::Wr, Dep::Rw])
            {
                anomalies.push(Anomaly::G2 {
                    cycle: named(cycle),
                });
            }
        }
        anomalies
    }

    /// A serial order of the committed transactions that keeps every edge, if the graph
    /// has no cycle among them: Kahn's algorithm, taking among the transactions free to
    /// go next the one with the lowest `rank` (then the lowest index), so the order is
    /// the same every run.
    pub(super) fn serial_order(&self, committed: &[bool], rank: &[u64]) -> Option<Vec<usize>> {
        let mut incoming = vec![0usize; self.out.len()];
        for (from, edges) in self.out.iter().enumerate() {
            for (to, _, _) in edges.iter().filter(|_| committed[from]) {
                incoming[*to] += usize::from(committed[*to]);
            }
        }
        let mut ready: BinaryHeap<Reverse<(u64, usize)>> = (0..self.out.len())
            .filter(|v| committed[*v] && incoming[*v] == 0)
            .map(|v| Reverse((rank[v], v)))
            .collect();
        let mut order = Vec::new();
        while let Some(Reverse((_, v))) = ready.pop() {
            order.push(v);
            for (to, _, _) in &self.out[v] {
                if !committed[*to] {
                    continue;
                }
                incoming[*to] -= 1;
                if incoming[*to] == 0 {
                    ready.push(Reverse((rank[*to], *to)));
                }
            }
        }
        let all = committed.iter().filter(|c| **c).count();
        (order.len() == all).then_some(order)
    }

    /// Strongly connected components of the committed transactions (Tarjan, iterative).
    fn components(&self, committed: &[bool]) -> Vec<Vec<usize>> {
        let n = self.out.len();
        let mut index = vec![usize::MAX; n];
        let mut low = vec![0; n];
        let mut on_stack = vec![false; n];
        let mut stack = Vec::new();
        let mut components = Vec::new();
        let mut next = 0;
        for root in (0..n).filter(|v| committed[*v]) {
            if index[root] != usize::MAX {
                continue;
            }
            let mut work: Vec<(usize, usize)> = vec![(root, 0)];
            while let Some(&mut (v, ref mut edge)) = work.last_mut() {
                if *edge == 0 && index[v] == usize::MAX {
                    index[v] = next;
                    low[v] = next;
                    next += 1;
                    stack.push(v);
                    on_stack[v] = true;
                }
                if let Some((w, _, _)) = self.out[v].get(*edge) {
                    let w = *w;
                    *edge += 1;
                    if index[w] == usize::MAX {
                        work.push((w, 0));
                    } else if on_stack[w] {
                        low[v] = low[v].min(index[w]);
                    }
                    continue;
                }
                work.pop();
                if let Some(&(parent, _)) = work.last() {
                    low[parent] = low[parent].min(low[v]);
                }
                if low[v] == index[v] {
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w] = false;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    components.push(component);
                }
            }
        }
        components
    }

    /// The shortest cycle within `members` using only edges of the `allowed` kinds, as
    /// `(from, to, dep, key)` steps.
    fn shortest_cycle(
        &self,
        members: &BTreeSet<usize>,
        allowed: &[Dep],
    ) -> Option<Vec<(usize, usize, Dep, String)>> {
        let mut best: Option<Vec<(usize, usize, Dep, String)>> = None;
        for &start in members {
            // Breadth-first from `start` back to `start`.
            let mut came_from: HashMap<usize, (usize, Dep, String)> = HashMap::new();
            let mut queue = VecDeque::from([start]);
            let mut found = false;
            while let Some(v) = queue.pop_front() {
                for (w, dep, key) in &self.out[v] {
                    if !allowed.contains(dep) || !members.contains(w) {
                        continue;
                    }
                    if *w == start {
                        came_from.insert(start, (v, *dep, key.clone()));
                        found = true;
                        break;
                    }
                    if !came_from.contains_key(w) {
                        came_from.insert(*w, (v, *dep, key.clone()));
                        queue.push_back(*w);
                    }
                }
                if found {
                    break;
                }
            }
            if !found {
                continue;
            }
            let mut cycle = Vec::new();
            let mut at = start;
            loop {
                let (from, dep, key) = came_from[&at].clone();
                cycle.push((from, at, dep, key));
                at = from;
                if at == start {
                    break;
                }
            }
            cycle.reverse();
            if best.as_ref().is_none_or(|b| cycle.len() < b.len()) {
                best = Some(cycle);
            }
        }
        best
    }
}
