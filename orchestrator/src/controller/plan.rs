//! The plan: a DAG of steps (petgraph). `up`: volumes first, then one converge step per service, each after the
//! services it depends on, the edge carrying the `depends_on` condition the dependent waits for. `down`: each
//! service's containers go before those of what it depends on; volumes last.

use petgraph::Direction;
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;

use super::desired::{Desired, DesiredNetwork, DesiredVolume};
use super::diff::{Changes, ServiceChanges};
use super::observe::ObservedContainer;
use crate::compose::model::DependencyCondition;

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    CreateVolume(DesiredVolume),
    CreateNetwork(DesiredNetwork),
    /// Bring one service's containers to the desired state.
    Converge(ServiceChanges),
    /// Stop and remove containers (one service's, or orphans).
    RemoveContainers {
        service: String,
        containers: Vec<ObservedContainer>,
    },
    RemoveVolume(String),
    RemoveNetwork(String),
}

impl Step {
    /// The service a step is about, if any.
    pub fn service(&self) -> Option<&str> {
        match self {
            Step::Converge(c) => Some(&c.service),
            Step::RemoveContainers { service, .. } => Some(service),
            _ => None,
        }
    }
}

/// Why a step waits for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// Only order.
    After,
    /// A `depends_on`: the dependent waits until the dependency's containers meet `condition`.
    DependsOn { condition: DependencyCondition, required: bool },
}

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub graph: DiGraph<Step, Edge>,
}

impl Plan {
    /// The plan of `up` for these changes.
    pub fn up(desired: &Desired, changes: &Changes) -> Plan {
        let mut graph = DiGraph::new();
        let mut volumes: Vec<NodeIndex> =
            changes.create_volumes.iter().map(|v| graph.add_node(Step::CreateVolume(v.clone()))).collect();
        // Networks, like volumes, exist before any container.
        volumes.extend(changes.create_networks.iter().map(|n| graph.add_node(Step::CreateNetwork(n.clone()))));
        let services: Vec<(String, NodeIndex)> =
            changes.services.iter().map(|s| (s.service.clone(), graph.add_node(Step::Converge(s.clone())))).collect();
        let index = |name: &str| services.iter().find(|(n, _)| n == name).map(|(_, i)| *i);
        for (name, node) in &services {
            for v in &volumes {
                graph.add_edge(*v, *node, Edge::After);
            }
            let Some(svc) = desired.service(name) else { continue };
            for dep in &svc.depends_on {
                if let Some(from) = index(&dep.service) {
                    graph.add_edge(from, *node, Edge::DependsOn { condition: dep.condition, required: dep.required });
                }
            }
        }
        if changes.remove_orphans && !changes.orphans.is_empty() {
            graph.add_node(Step::RemoveContainers { service: String::new(), containers: changes.orphans.clone() });
        }
        Plan { graph }
    }

    /// The plan of `down`: `containers` per service (orphans under their own service names), dependents first,
    /// then `volumes` and `networks`.
    pub fn down(desired: &Desired, containers: &[ObservedContainer], volumes: &[String], networks: &[String]) -> Plan {
        let mut graph = DiGraph::new();
        let mut services: Vec<(String, NodeIndex)> = Vec::new();
        for c in containers {
            match services.iter().find(|(s, _)| *s == c.service) {
                Some((_, node)) => {
                    if let Some(Step::RemoveContainers { containers, .. }) = graph.node_weight_mut(*node) {
                        containers.push(c.clone());
                    }
                }
                None => {
                    let node = graph
                        .add_node(Step::RemoveContainers { service: c.service.clone(), containers: vec![c.clone()] });
                    services.push((c.service.clone(), node));
                }
            }
        }
        let index = |name: &str| services.iter().find(|(n, _)| n == name).map(|(_, i)| *i);
        for (name, node) in &services {
            let Some(svc) = desired.service(name) else { continue };
            for dep in &svc.depends_on {
                if let Some(dependency) = index(&dep.service) {
                    // The dependent goes first.
                    graph.add_edge(*node, dependency, Edge::After);
                }
            }
        }
        let last = volumes
            .iter()
            .map(|v| Step::RemoveVolume(v.clone()))
            .chain(networks.iter().map(|n| Step::RemoveNetwork(n.clone())));
        for step in last {
            let node = graph.add_node(step);
            for (_, s) in &services {
                graph.add_edge(*s, node, Edge::After);
            }
        }
        Plan { graph }
    }

    /// Steps in an order that respects every edge (for display and tests).
    pub fn order(&self) -> Vec<&Step> {
        petgraph::algo::toposort(&self.graph, None)
            .map(|nodes| nodes.into_iter().map(|n| &self.graph[n]).collect())
            .unwrap_or_default()
    }

    /// The steps `node` waits for, with the edge.
    pub fn before(&self, node: NodeIndex) -> Vec<(NodeIndex, Edge)> {
        self.graph.edges_directed(node, Direction::Incoming).map(|e| (e.source(), *e.weight())).collect()
    }

    pub fn after(&self, node: NodeIndex) -> Vec<NodeIndex> {
        let mut out: Vec<NodeIndex> = self.graph.neighbors_directed(node, Direction::Outgoing).collect();
        out.sort();
        out.dedup();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::desired::{DesiredDependency, DesiredService};
    use crate::controller::diff::Action;
    use std::collections::BTreeMap;

    fn svc(name: &str, deps: &[(&str, DependencyCondition)]) -> DesiredService {
        DesiredService {
            name: name.into(),
            replicas: 1,
            config_hash: String::new(),
            image: "bb".into(),
            container_name: None,
            depends_on: deps
                .iter()
                .map(|(s, c)| DesiredDependency {
                    service: s.to_string(),
                    condition: *c,
                    restart: false,
                    required: true,
                })
                .collect(),
        }
    }

    fn stack() -> Desired {
        Desired {
            project: "p".into(),
            services: vec![
                svc("web", &[("api", DependencyCondition::ServiceHealthy)]),
                svc(
                    "api",
                    &[
                        ("db", DependencyCondition::ServiceStarted),
                        ("migrate", DependencyCondition::ServiceCompletedSuccessfully),
                    ],
                ),
                svc("db", &[]),
                svc("migrate", &[("db", DependencyCondition::ServiceStarted)]),
            ],
            networks: Vec::new(),
            volumes: vec![DesiredVolume {
                key: "data".into(),
                name: "p_data".into(),
                external: false,
                driver: String::new(),
                driver_opts: BTreeMap::new(),
                labels: BTreeMap::new(),
            }],
        }
    }

    fn position(order: &[&Step], what: &str) -> usize {
        order
            .iter()
            .position(|s| match s {
                Step::CreateVolume(v) => v.name == what,
                Step::RemoveVolume(v) | Step::RemoveNetwork(v) => v == what,
                Step::CreateNetwork(n) => n.name == what,
                other => other.service() == Some(what),
            })
            .unwrap_or_else(|| panic!("{what} not in plan"))
    }

    #[test]
    fn up_creates_volumes_first_and_follows_depends_on() {
        let d = stack();
        let changes = Changes {
            services: d
                .services
                .iter()
                .map(|s| ServiceChanges {
                    service: s.name.clone(),
                    actions: vec![Action::Create { number: 1, name: format!("p-{}-1", s.name) }],
                })
                .collect(),
            orphans: Vec::new(),
            remove_orphans: false,
            create_volumes: d.volumes.clone(),
            create_networks: vec![DesiredNetwork {
                key: "default".into(),
                name: "p_default".into(),
                external: false,
                create: Default::default(),
            }],
        };
        let plan = Plan::up(&d, &changes);
        let order = plan.order();
        assert_eq!(order.len(), 6);
        assert!(position(&order, "p_data") < 2 && position(&order, "p_default") < 2);
        assert!(position(&order, "db") < position(&order, "migrate"));
        assert!(position(&order, "migrate") < position(&order, "api"));
        assert!(position(&order, "api") < position(&order, "web"));
        let api = plan.graph.node_indices().find(|n| plan.graph[*n].service() == Some("api"));
        let gates: Vec<Edge> = api.map(|n| plan.before(n).into_iter().map(|(_, e)| e).collect()).unwrap_or_default();
        assert!(gates.contains(&Edge::DependsOn {
            condition: DependencyCondition::ServiceCompletedSuccessfully,
            required: true
        }));
        assert!(gates.contains(&Edge::After), "the volume comes first");
    }

    #[test]
    fn down_removes_dependents_first_and_volumes_last() {
        let d = stack();
        let c = |s: &str| ObservedContainer { service: s.into(), name: format!("p-{s}-1"), ..Default::default() };
        let all = [c("db"), c("web"), c("api"), c("migrate"), c("gone")];
        let plan = Plan::down(&d, &all, &["p_data".into()], &["p_default".into()]);
        let order = plan.order();
        assert!(position(&order, "web") < position(&order, "api"));
        assert!(position(&order, "api") < position(&order, "db"));
        assert!(position(&order, "migrate") < position(&order, "db"));
        assert!(position(&order, "p_data") >= order.len() - 2);
        assert!(position(&order, "p_default") >= order.len() - 2);
        assert_eq!(order.len(), 7, "the orphan's service has a step too");
    }
}
