//! The service dependency graph: who must start before whom, and how long to wait for it.
//!
//! Edges point from a service to what it needs: `depends_on` (with its condition, `restart` and `required`),
//! `links`, `volumes_from`, and `service:NAME` in `network_mode`, `ipc` and `pid`. Start order is a list of
//! parallel waves (every service of a wave only needs services of earlier waves); stop order is the reverse.
//! A cycle is an error that names every service on it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use crate::compose::model::{DependencyCondition as Condition, Project};

/// Why one service needs another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EdgeKind {
    DependsOn,
    Link,
    VolumesFrom,
    NetworkMode,
    Ipc,
    Pid,
    Uts,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub service: String,
    pub kind: EdgeKind,
    pub condition: Condition,
    /// `restart: true`: recreate/restart the dependent when this dependency is recreated.
    pub restart: bool,
    /// `required: false`: the dependent starts even when this dependency is missing or fails.
    pub required: bool,
}

impl Dependency {
    fn plain(service: &str, kind: EdgeKind) -> Self {
        Dependency {
            service: service.to_string(),
            kind,
            condition: Condition::ServiceStarted,
            restart: false,
            required: true,
        }
    }
}

/// A dependency cycle, in order, the first service repeated at the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle between services: {}", .0.join(" -> "))]
pub struct CycleError(pub Vec<String>);

impl CycleError {
    pub fn services(&self) -> &[String] {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct ServiceGraph {
    graph: DiGraph<String, Dependency>,
    index: BTreeMap<String, NodeIndex>,
}

impl ServiceGraph {
    /// The graph of a project's services. References to services that are not in the project (left out by
    /// profiles or selection, optional ones) are not edges.
    pub fn new(project: &Project) -> Result<Self, CycleError> {
        Self::from_edges(project.services.iter().map(|(name, svc)| {
            let mut deps: Vec<Dependency> = svc
                .depends_on
                .iter()
                .map(|(dep, d)| Dependency {
                    service: dep.clone(),
                    kind: EdgeKind::DependsOn,
                    condition: d.condition,
                    restart: d.restart,
                    required: d.required,
                })
                .collect();
            // The loader already writes these into depends_on; a Project built otherwise still gets the edges.
            let mut implicit = |target: &str, kind: EdgeKind| {
                if !svc.depends_on.contains_key(target) {
                    deps.push(Dependency::plain(target, kind));
                }
            };
            for link in &svc.links {
                implicit(link.split(':').next().unwrap_or(link), EdgeKind::Link);
            }
            for from in svc.volumes_from.iter().filter(|f| !f.starts_with("container:")) {
                implicit(from.split(':').next().unwrap_or(from), EdgeKind::VolumesFrom);
            }
            for (mode, kind) in [
                (&svc.network_mode, EdgeKind::NetworkMode),
                (&svc.ipc, EdgeKind::Ipc),
                (&svc.pid, EdgeKind::Pid),
                (&svc.uts, EdgeKind::Uts),
            ] {
                if let Some(target) = mode.as_deref().and_then(|m| m.strip_prefix("service:")) {
                    implicit(target, kind);
                }
            }
            (name.clone(), deps)
        }))
    }

    /// Build from (service, dependencies) pairs.
    pub fn from_edges(services: impl IntoIterator<Item = (String, Vec<Dependency>)>) -> Result<Self, CycleError> {
        let services: Vec<(String, Vec<Dependency>)> = services.into_iter().collect();
        let mut graph = DiGraph::new();
        let mut index = BTreeMap::new();
        for (name, _) in &services {
            index.insert(name.clone(), graph.add_node(name.clone()));
        }
        for (name, deps) in services {
            for dep in deps {
                if let (Some(&from), Some(&to)) = (index.get(&name), index.get(&dep.service)) {
                    graph.add_edge(from, to, dep);
                }
            }
        }
        let g = ServiceGraph { graph, index };
        g.check_cycles()?;
        Ok(g)
    }

    fn check_cycles(&self) -> Result<(), CycleError> {
        for scc in tarjan_scc(&self.graph) {
            let self_loop = scc.len() == 1 && self.graph.contains_edge(scc[0], scc[0]);
            if scc.len() > 1 || self_loop {
                return Err(CycleError(self.cycle_through(&scc)));
            }
        }
        Ok(())
    }

    /// One cycle inside a strongly connected component, starting at its alphabetically first service.
    fn cycle_through(&self, scc: &[NodeIndex]) -> Vec<String> {
        let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
        let Some(&start) = scc.iter().min_by_key(|n| &self.graph[**n]) else {
            return Vec::new();
        };
        let mut path = vec![start];
        let mut seen = BTreeSet::from([start]);
        let mut current = start;
        // Walk inside the component; each step has a successor in it, and it is finite, so we return to a seen node.
        for _ in 0..=members.len() {
            let mut next: Vec<NodeIndex> = self.graph.neighbors(current).filter(|n| members.contains(n)).collect();
            next.sort_by_key(|n| &self.graph[*n]);
            let Some(&n) = next.iter().find(|n| **n == start).or_else(|| next.first()) else {
                break;
            };
            if seen.contains(&n) {
                let from = path.iter().position(|p| *p == n).unwrap_or(0);
                let mut cycle: Vec<String> = path[from..].iter().map(|i| self.graph[*i].clone()).collect();
                cycle.push(self.graph[n].clone());
                return cycle;
            }
            seen.insert(n);
            path.push(n);
            current = n;
        }
        path.iter().map(|i| self.graph[*i].clone()).collect()
    }

    /// Services in start order: each wave only needs services of earlier waves; names sorted within a wave.
    pub fn start_waves(&self) -> Vec<Vec<String>> {
        let mut remaining: BTreeMap<NodeIndex, usize> =
            self.graph.node_indices().map(|n| (n, self.graph.neighbors(n).filter(|d| *d != n).count())).collect();
        let mut waves = Vec::new();
        while !remaining.is_empty() {
            let mut wave: Vec<NodeIndex> = remaining.iter().filter(|(_, c)| **c == 0).map(|(n, _)| *n).collect();
            if wave.is_empty() {
                break; // unreachable: cycles were rejected when the graph was built
            }
            for n in &wave {
                remaining.remove(n);
            }
            for n in &wave {
                for e in self.graph.edges_directed(*n, petgraph::Direction::Incoming) {
                    if let Some(c) = remaining.get_mut(&e.source()) {
                        *c = c.saturating_sub(1);
                    }
                }
            }
            wave.sort_by_key(|n| &self.graph[*n]);
            waves.push(wave.into_iter().map(|n| self.graph[n].clone()).collect());
        }
        waves
    }

    /// Services in stop order: dependents before what they depend on.
    pub fn stop_waves(&self) -> Vec<Vec<String>> {
        let mut waves = self.start_waves();
        waves.reverse();
        waves
    }

    /// What `service` needs, with the edge details.
    pub fn dependencies(&self, service: &str) -> Vec<&Dependency> {
        self.index.get(service).map(|n| self.graph.edges(*n).map(|e| e.weight()).collect()).unwrap_or_default()
    }

    /// The services that need `service` directly.
    pub fn dependents(&self, service: &str) -> Vec<&str> {
        let Some(n) = self.index.get(service) else {
            return Vec::new();
        };
        let mut out: Vec<&str> = self
            .graph
            .edges_directed(*n, petgraph::Direction::Incoming)
            .map(|e| self.graph[e.source()].as_str())
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

impl fmt::Display for ServiceGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, wave) in self.start_waves().iter().enumerate() {
            writeln!(f, "wave {i}: {}", wave.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(s: &str) -> Dependency {
        Dependency::plain(s, EdgeKind::DependsOn)
    }

    fn graph(edges: &[(&str, &[&str])]) -> Result<ServiceGraph, CycleError> {
        ServiceGraph::from_edges(edges.iter().map(|(s, deps)| (s.to_string(), deps.iter().map(|d| dep(d)).collect())))
    }

    #[test]
    fn waves_in_order_and_reverse() -> Result<(), CycleError> {
        let g =
            graph(&[("web", &["api", "cache"]), ("api", &["db"]), ("db", &[]), ("cache", &[]), ("worker", &["db"])])?;
        assert_eq!(g.start_waves(), vec![vec!["cache", "db"], vec!["api", "worker"], vec!["web"]]);
        assert_eq!(g.stop_waves()[0], vec!["web"]);
        assert_eq!(g.dependents("db"), vec!["api", "worker"]);
        assert_eq!(g.dependencies("web").len(), 2);
        Ok(())
    }

    #[test]
    fn cycles_are_named() {
        let e = graph(&[("service1", &["service2"]), ("service2", &["service3"]), ("service3", &["service1"])]).err();
        assert_eq!(
            e.map(|e| e.to_string()).as_deref(),
            Some("dependency cycle between services: service1 -> service2 -> service3 -> service1")
        );
        let e = graph(&[("a", &["a"])]).err();
        assert_eq!(e.map(|e| e.0), Some(vec!["a".to_string(), "a".to_string()]));
    }

    #[test]
    fn unknown_targets_are_not_edges() -> Result<(), CycleError> {
        let g = graph(&[("a", &["missing"])])?;
        assert_eq!(g.start_waves(), vec![vec!["a"]]);
        Ok(())
    }
}
