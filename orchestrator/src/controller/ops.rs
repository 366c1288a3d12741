//! The compose commands that act on a project's existing containers: `stop`, `start`, `restart`, `kill`, `rm`,
//! `pause`, `unpause`. Services go in dependency order (start, unpause, restart) or its reverse (stop, kill, pause,
//! rm), the containers of one wave in parallel.

use std::sync::Arc;

use berth_engine::client::Client;
use berth_engine::client::containers::RemoveContainerOptions;
use futures_util::future::join_all;
use tokio::sync::Semaphore;

use super::ControllerError;
use super::observe::ObservedContainer;
use super::progress::{Event, Reporter};
use crate::graph::ServiceGraph;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Stop { timeout: Option<i64> },
    Start,
    Restart { timeout: Option<i64> },
    Kill { signal: Option<String> },
    Remove { volumes: bool },
    Pause,
    Unpause,
}

impl Op {
    /// Whether services go in dependency order (else dependents first).
    fn forward(&self) -> bool {
        matches!(self, Op::Start | Op::Unpause | Op::Restart { .. })
    }

    /// Progress words: while, after.
    fn words(&self) -> (&'static str, &'static str) {
        match self {
            Op::Stop { .. } => ("Stopping", "Stopped"),
            Op::Start => ("Starting", "Started"),
            Op::Restart { .. } => ("Restarting", "Restarted"),
            Op::Kill { .. } => ("Killing", "Killed"),
            Op::Remove { .. } => ("Removing", "Removed"),
            Op::Pause => ("Pausing", "Paused"),
            Op::Unpause => ("Unpausing", "Unpaused"),
        }
    }

    /// Whether the op applies to a container in this state (stopping a stopped one is a no-op, as in Compose).
    pub fn applies_to(&self, c: &ObservedContainer) -> bool {
        let state = c.state.as_str();
        match self {
            Op::Stop { .. } | Op::Kill { .. } => matches!(state, "running" | "paused" | "restarting"),
            Op::Start => !matches!(state, "running" | "paused" | "restarting"),
            Op::Pause => state == "running",
            Op::Unpause => state == "paused",
            Op::Restart { .. } | Op::Remove { .. } => true,
        }
    }
}

/// Containers grouped in waves of services: dependencies first, or dependents first when `forward` is false.
/// Services the graph does not know (orphans) come in a last wave.
pub fn waves(graph: &ServiceGraph, containers: &[ObservedContainer], forward: bool) -> Vec<Vec<ObservedContainer>> {
    let order = if forward { graph.start_waves() } else { graph.stop_waves() };
    let mut out: Vec<Vec<ObservedContainer>> =
        order.iter().map(|wave| containers.iter().filter(|c| wave.contains(&c.service)).cloned().collect()).collect();
    let known: Vec<&String> = order.iter().flatten().collect();
    out.push(containers.iter().filter(|c| !known.contains(&&c.service)).cloned().collect());
    out.retain(|w: &Vec<ObservedContainer>| !w.is_empty());
    out
}

/// Apply `op` to `containers`; every failure is returned (the others still happen).
pub async fn run(
    client: &Client,
    graph: &ServiceGraph,
    containers: &[ObservedContainer],
    op: &Op,
    parallel: usize,
    reporter: &Reporter,
) -> Vec<ControllerError> {
    let limit = Arc::new(Semaphore::new(parallel.max(1)));
    let chosen: Vec<ObservedContainer> = containers.iter().filter(|c| op.applies_to(c)).cloned().collect();
    let mut errors = Vec::new();
    for wave in waves(graph, &chosen, op.forward()) {
        let calls = wave.iter().map(|c| {
            let limit = Arc::clone(&limit);
            async move {
                let _permit = limit.acquire().await;
                apply(client, c, op, reporter).await
            }
        });
        errors.extend(join_all(calls).await.into_iter().filter_map(Result::err));
    }
    errors
}

async fn apply(client: &Client, c: &ObservedContainer, op: &Op, reporter: &Reporter) -> Result<(), ControllerError> {
    let (doing, done) = op.words();
    reporter(&Event::container(&c.name, doing));
    let id = c.id.as_str();
    let result = match op {
        Op::Stop { timeout } => client.stop_container(id, *timeout).await,
        Op::Start => client.start_container(id).await,
        Op::Restart { timeout } => client.restart_container(id, *timeout).await,
        Op::Kill { signal } => client.kill_container(id, signal.as_deref()).await,
        Op::Remove { volumes } => {
            client.remove_container(id, Some(RemoveContainerOptions { force: true, v: *volumes })).await
        }
        Op::Pause => client.pause_container(id).await,
        Op::Unpause => client.unpause_container(id).await,
    };
    match result {
        Ok(()) => {
            reporter(&Event::container(&c.name, done));
            Ok(())
        }
        Err(source) => {
            reporter(&Event::container(&c.name, "Error"));
            let logs = if *op == Op::Start { super::execute::last_log_lines(client, id).await } else { Vec::new() };
            Err(ControllerError::Service {
                service: c.service.clone(),
                message: format!("container {}: cannot {}: {source}", c.name, doing.to_lowercase()),
                logs,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::DependencyCondition;
    use crate::graph::{Dependency, EdgeKind};

    fn c(service: &str, state: &str) -> ObservedContainer {
        ObservedContainer {
            service: service.into(),
            name: format!("p-{service}-1"),
            state: state.into(),
            ..Default::default()
        }
    }

    #[test]
    fn waves_follow_dependencies_and_orphans_come_last() {
        let dep = Dependency {
            service: "db".into(),
            kind: EdgeKind::DependsOn,
            condition: DependencyCondition::ServiceStarted,
            restart: false,
            required: true,
        };
        let graph = ServiceGraph::from_edges([("web".to_string(), vec![dep]), ("db".to_string(), Vec::new())])
            .unwrap_or_else(|e| panic!("{e}"));
        let all = [c("web", "running"), c("db", "running"), c("gone", "running")];
        let names = |w: Vec<Vec<ObservedContainer>>| -> Vec<Vec<String>> {
            w.into_iter().map(|w| w.into_iter().map(|c| c.service).collect()).collect()
        };
        assert_eq!(names(waves(&graph, &all, true)), [["db"], ["web"], ["gone"]]);
        assert_eq!(names(waves(&graph, &all, false)), [["web"], ["db"], ["gone"]]);
    }

    #[test]
    fn ops_skip_containers_already_in_their_state() {
        assert!(!Op::Stop { timeout: None }.applies_to(&c("a", "exited")));
        assert!(Op::Start.applies_to(&c("a", "exited")));
        assert!(!Op::Start.applies_to(&c("a", "running")));
        assert!(Op::Pause.applies_to(&c("a", "running")));
        assert!(!Op::Unpause.applies_to(&c("a", "running")));
        assert!(Op::Remove { volumes: false }.applies_to(&c("a", "running")));
    }
}
