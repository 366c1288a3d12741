//! Running a plan: every step starts as soon as the steps it waits for are done, bounded by `--parallel` engine
//! operations at a time. A step whose required dependency failed does not run; a failed optional one
//! (`required: false`) is only reported. A recreate is done as Docker Compose does it: create the replacement
//! under a temporary name, stop and remove the old container, rename the new one, start it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use berth_engine::client::containers::{CreateContainerOptions, LogsOptions, RemoveContainerOptions};
use berth_engine::client::volumes::CreateVolumeOptions;
use berth_engine::client::{Client, ClientError};
use futures_util::future::join_all;
use petgraph::graph::NodeIndex;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::desired::{Desired, DesiredService, Origin, container_body};
use super::diff::{Action, ServiceChanges};
use super::observe::ObservedContainer;
use super::plan::{Edge, Plan, Step};
use super::progress::{Event, Reporter};
use super::{ControllerError, conditions, names};
use crate::compose::model::{DependencyCondition, Project};

/// Log lines shown with a container that failed to start.
const FAILURE_LOG_LINES: &str = "10";

/// Everything a step needs; shared by all steps of a run.
pub struct Context {
    pub client: Client,
    pub project: Arc<Project>,
    pub origin: Origin,
    pub desired: Desired,
    /// Image reference → image id, as resolved before the run.
    pub image_ids: BTreeMap<String, String>,
    pub limit: Semaphore,
    pub reporter: Reporter,
    /// `-t`: seconds between the stop signal and SIGKILL; `None` is each container's own.
    pub stop_timeout: Option<i64>,
    /// How long a dependent waits for `service_healthy` / `service_completed_successfully`.
    pub dependency_timeout: Duration,
    /// `down -v`: remove containers' anonymous volumes with them.
    pub remove_anonymous_volumes: bool,
}

/// The containers of a service after its step, `(id, name)`, for the conditions of its dependents.
pub type Outcome = Vec<(String, String)>;

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    pub steps: usize,
    /// The errors of failed steps (steps skipped because a dependency failed are counted in `skipped`).
    pub failures: Vec<ControllerError>,
    pub skipped: Vec<String>,
    /// `required: false` dependencies that failed and were passed over.
    pub warnings: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failures.is_empty() && self.skipped.is_empty()
    }
}

/// Run `plan` to the end (every step runs, fails or is skipped).
pub async fn execute(ctx: Arc<Context>, plan: Plan) -> Report {
    let plan = Arc::new(plan);
    let mut report = Report { steps: plan.graph.node_count(), ..Default::default() };
    let mut waiting: HashMap<NodeIndex, usize> = plan.graph.node_indices().map(|n| (n, plan.before(n).len())).collect();
    let mut results: HashMap<NodeIndex, Result<Outcome, ()>> = HashMap::new();
    let mut ready: Vec<NodeIndex> = waiting.iter().filter(|(_, c)| **c == 0).map(|(n, _)| *n).collect();
    ready.sort();
    let mut running: JoinSet<(NodeIndex, Result<Outcome, ControllerError>, Vec<String>)> = JoinSet::new();
    // Bounded: each node is scheduled once and each completes once.
    for _ in 0..=2 * plan.graph.node_count() {
        while let Some(node) = ready.pop() {
            let mut gates = Vec::new();
            let mut blocked: Option<String> = None;
            for (before, edge) in plan.before(node) {
                let dep_name = plan.graph[before].service().unwrap_or("a volume").to_string();
                match (results.get(&before), edge) {
                    (Some(Ok(containers)), Edge::DependsOn { condition, required }) => {
                        gates.push((dep_name, containers.clone(), condition, required));
                    }
                    (Some(Ok(_)), Edge::After) => {}
                    (_, Edge::DependsOn { required: false, .. }) => {
                        report.warnings.push(format!("optional dependency {dep_name:?} failed; going on without it"));
                    }
                    _ => blocked = Some(dep_name),
                }
            }
            // A service that starts nothing does not wait for its dependencies: it is left as it is.
            let starts = match &plan.graph[node] {
                Step::Converge(changes) => changes.actions.iter().any(Action::starts),
                _ => true,
            };
            if let Some(dep) = blocked.filter(|_| starts) {
                let what = plan.graph[node].service().map(str::to_string).unwrap_or_else(|| format!("{node:?}"));
                report.skipped.push(format!("{what} (its dependency {dep:?} failed)"));
                results.insert(node, Err(()));
                release(&plan, node, &mut waiting, &mut ready);
                continue;
            }
            let ctx = Arc::clone(&ctx);
            let step = plan.graph[node].clone();
            running.spawn(async move {
                let mut warnings = Vec::new();
                let result = run_step(&ctx, &step, &gates, &mut warnings).await;
                (node, result, warnings)
            });
        }
        let Some(joined) = running.join_next().await else { break };
        let Ok((node, result, warnings)) = joined else {
            // A panicked step: count it as failed, nothing else can be known about it.
            report.failures.push(ControllerError::Failed { failed: 1, total: report.steps });
            continue;
        };
        report.warnings.extend(warnings);
        match result {
            Ok(outcome) => {
                results.insert(node, Ok(outcome));
            }
            Err(e) => {
                report.failures.push(e);
                results.insert(node, Err(()));
            }
        }
        release(&plan, node, &mut waiting, &mut ready);
    }
    report
}

fn release(plan: &Plan, node: NodeIndex, waiting: &mut HashMap<NodeIndex, usize>, ready: &mut Vec<NodeIndex>) {
    for next in plan.after(node) {
        let count = plan.graph.edges_connecting(node, next).count();
        if let Some(c) = waiting.get_mut(&next) {
            *c = c.saturating_sub(count);
            if *c == 0 {
                ready.push(next);
            }
        }
    }
}

type Gate = (String, Outcome, DependencyCondition, bool);

async fn run_step(
    ctx: &Arc<Context>,
    step: &Step,
    gates: &[Gate],
    warnings: &mut Vec<String>,
) -> Result<Outcome, ControllerError> {
    match step {
        Step::CreateVolume(v) => {
            let _permit = ctx.limit.acquire().await;
            (ctx.reporter)(&Event::volume(&v.name, "Creating"));
            let options = CreateVolumeOptions {
                name: v.name.clone(),
                driver: v.driver.clone(),
                driver_opts: v.driver_opts.clone(),
                labels: v.labels.clone(),
            };
            ctx.client
                .create_volume(&options)
                .await
                .map_err(ControllerError::engine(format!("create volume {}", v.name)))?;
            (ctx.reporter)(&Event::volume(&v.name, "Created"));
            Ok(Vec::new())
        }
        Step::CreateNetwork(n) => {
            let _permit = ctx.limit.acquire().await;
            (ctx.reporter)(&Event::network(&n.name, "Creating"));
            match ctx.client.create_network(&n.create).await {
                Ok(_) => {}
                // Made meanwhile (or outside berth under this name): use it, as Docker Compose does.
                Err(e) if e.status() == Some(409) => {}
                Err(e) => {
                    return Err(ControllerError::Engine { action: format!("create network {}", n.name), source: e });
                }
            }
            (ctx.reporter)(&Event::network(&n.name, "Created"));
            Ok(Vec::new())
        }
        Step::RemoveNetwork(name) => {
            let _permit = ctx.limit.acquire().await;
            (ctx.reporter)(&Event::network(name, "Removing"));
            match ctx.client.remove_network(name).await {
                Ok(()) => (ctx.reporter)(&Event::network(name, "Removed")),
                Err(e) if e.status() == Some(404) => (ctx.reporter)(&Event::network(name, "Removed")),
                // Containers berth was told to leave (orphans) still use it: say so, as Docker Compose does.
                Err(e) if e.status() == Some(409) => (ctx.reporter)(&Event::network(name, "Resource is still in use")),
                Err(e) => return Err(ControllerError::Engine { action: format!("remove network {name}"), source: e }),
            }
            Ok(Vec::new())
        }
        Step::RemoveVolume(name) => {
            let _permit = ctx.limit.acquire().await;
            (ctx.reporter)(&Event::volume(name, "Removing"));
            match ctx.client.remove_volume(name, false).await {
                Ok(()) => (ctx.reporter)(&Event::volume(name, "Removed")),
                Err(e) if e.status() == Some(404) => (ctx.reporter)(&Event::volume(name, "Removed")),
                Err(e) => return Err(ControllerError::Engine { action: format!("remove volume {name}"), source: e }),
            }
            Ok(Vec::new())
        }
        Step::RemoveContainers { service, containers } => {
            let mut set = JoinSet::new();
            for c in containers {
                let (ctx, c) = (Arc::clone(ctx), c.clone());
                set.spawn(async move {
                    let _permit = ctx.limit.acquire().await;
                    remove_container(&ctx.client, &ctx.reporter, &c, ctx.stop_timeout, ctx.remove_anonymous_volumes)
                        .await
                });
            }
            collect(set, service).await.map(|_| Vec::new())
        }
        Step::Converge(changes) => {
            let starts = changes.actions.iter().any(Action::starts);
            if starts {
                for (dep, containers, condition, required) in gates {
                    let waited =
                        conditions::wait_for(&ctx.client, dep, containers, *condition, ctx.dependency_timeout).await;
                    match waited {
                        Ok(()) => {}
                        Err(why) if !*required => warnings.push(format!("{why} (optional dependency, going on)")),
                        Err(why) => {
                            return Err(ControllerError::Service {
                                service: changes.service.clone(),
                                message: why,
                                logs: Vec::new(),
                            });
                        }
                    }
                }
            }
            converge(ctx, changes).await
        }
    }
}

/// Bring one service to its desired state: removals first, then every other action in parallel.
async fn converge(ctx: &Context, changes: &ServiceChanges) -> Result<Outcome, ControllerError> {
    let service = ctx.desired.service(&changes.service).cloned().ok_or_else(|| ControllerError::Service {
        service: changes.service.clone(),
        message: "is not in the project".into(),
        logs: Vec::new(),
    })?;
    let removals = changes.actions.iter().filter_map(|a| match a {
        Action::Remove(c) => Some(async move {
            let _permit = ctx.limit.acquire().await;
            remove_container(&ctx.client, &ctx.reporter, c, ctx.stop_timeout, false).await
        }),
        _ => None,
    });
    for result in join_all(removals).await {
        result.map_err(|e| service_error(&changes.service, e))?;
    }
    let mut outcome: Outcome = Vec::new();
    let mut tasks = Vec::new();
    for action in &changes.actions {
        match action {
            Action::Remove(_) => {}
            Action::Keep(c) => {
                (ctx.reporter)(&Event::container(&c.name, "Running"));
                outcome.push((c.id.clone(), c.name.clone()));
            }
            other => tasks.push(apply(ctx, &service, other)),
        }
    }
    // The service's containers change together; engine calls are bounded by the semaphore inside `apply`.
    let results = join_all(tasks).await;
    let mut first_error = None;
    for r in results {
        match r {
            Ok(done) => outcome.push(done),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(outcome),
    }
}

fn service_error(service: &str, e: ControllerError) -> ControllerError {
    match e {
        ControllerError::Engine { action, source } => ControllerError::Service {
            service: service.to_string(),
            message: format!("cannot {action}: {source}"),
            logs: Vec::new(),
        },
        other => other,
    }
}

/// One create / recreate / start / restart; the container's `(id, name)` afterwards.
async fn apply(ctx: &Context, service: &DesiredService, action: &Action) -> Result<(String, String), ControllerError> {
    let client = &ctx.client;
    let report = |name: &str, status: &str| (ctx.reporter)(&Event::container(name, status));
    let fail = |name: &str, action: &str, e: ClientError| ControllerError::Service {
        service: service.name.clone(),
        message: format!("container {name}: cannot {action}: {e}"),
        logs: Vec::new(),
    };
    let image_id = || {
        ctx.image_ids.get(&service.image).cloned().ok_or_else(|| ControllerError::MissingImage {
            service: service.name.clone(),
            image: service.image.clone(),
        })
    };
    let _permit = ctx.limit.acquire().await;
    let id = match action {
        Action::Create { number, name } => {
            let body = container_body(&ctx.project, &ctx.origin, service, *number, &image_id()?)?;
            report(name, "Creating");
            let options = CreateContainerOptions { name: Some(name.clone()) };
            let created = client.create_container(Some(options), &body).await.map_err(|e| fail(name, "create", e))?;
            report(name, "Created");
            start(ctx, service, &created.id, name).await?;
            created.id
        }
        Action::Recreate { number, name, old } => {
            let mut body = container_body(&ctx.project, &ctx.origin, service, *number, &image_id()?)?;
            super::mounts::reuse_anonymous(&mut body, &old.volumes);
            report(name, "Recreate");
            let temporary = names::temporary_name(&old.id, name);
            let options = CreateContainerOptions { name: Some(temporary.clone()) };
            let created = client.create_container(Some(options), &body).await.map_err(|e| fail(name, "create", e))?;
            stop_and_remove(client, old, ctx.stop_timeout, false).await.map_err(|e| fail(&old.name, "replace", e))?;
            client.rename_container(&created.id, name).await.map_err(|e| fail(name, "rename", e))?;
            report(name, "Recreated");
            start(ctx, service, &created.id, name).await?;
            created.id
        }
        Action::Start(c) => {
            start(ctx, service, &c.id, &c.name).await?;
            c.id.clone()
        }
        Action::Restart(c) => {
            report(&c.name, "Restarting");
            client.restart_container(&c.id, ctx.stop_timeout).await.map_err(|e| fail(&c.name, "restart", e))?;
            report(&c.name, "Restarted");
            c.id.clone()
        }
        Action::Remove(c) | Action::Keep(c) => c.id.clone(),
    };
    let name = match action {
        Action::Create { name, .. } | Action::Recreate { name, .. } => name.clone(),
        Action::Start(c) | Action::Restart(c) | Action::Remove(c) | Action::Keep(c) => c.name.clone(),
    };
    Ok((id, name))
}

/// Start a container; when that fails, the error carries the engine's message and the container's last log lines.
async fn start(ctx: &Context, service: &DesiredService, id: &str, name: &str) -> Result<(), ControllerError> {
    (ctx.reporter)(&Event::container(name, "Starting"));
    match ctx.client.start_container(id).await {
        Ok(()) => {
            (ctx.reporter)(&Event::container(name, "Started"));
            Ok(())
        }
        Err(e) => {
            (ctx.reporter)(&Event::container(name, "Error"));
            Err(ControllerError::Service {
                service: service.name.clone(),
                message: format!("container {name} did not start: {e}"),
                logs: last_log_lines(&ctx.client, id).await,
            })
        }
    }
}

/// The last lines a container wrote (empty when there is no log).
pub async fn last_log_lines(client: &Client, id: &str) -> Vec<String> {
    let options =
        LogsOptions { stdout: true, stderr: true, tail: Some(FAILURE_LOG_LINES.into()), ..Default::default() };
    let Ok(chunks) = client.logs(id, &options).await else { return Vec::new() };
    let text: Vec<u8> = chunks.iter().flat_map(|c| c.bytes().to_vec()).collect();
    String::from_utf8_lossy(&text).lines().map(str::to_string).collect()
}

async fn stop(client: &Client, c: &ObservedContainer, timeout: Option<i64>) -> Result<(), ClientError> {
    if !matches!(c.state.as_str(), "running" | "paused" | "restarting") {
        return Ok(());
    }
    match client.stop_container(&c.id, timeout).await {
        // Gone or already stopped: removal settles it.
        Err(e) if matches!(e.status(), Some(404 | 304 | 409)) => Ok(()),
        other => other,
    }
}

async fn remove(client: &Client, c: &ObservedContainer, volumes: bool) -> Result<(), ClientError> {
    match client.remove_container(&c.id, Some(RemoveContainerOptions { force: true, v: volumes })).await {
        Err(e) if e.status() == Some(404) => Ok(()),
        other => other,
    }
}

async fn stop_and_remove(
    client: &Client,
    c: &ObservedContainer,
    timeout: Option<i64>,
    volumes: bool,
) -> Result<(), ClientError> {
    stop(client, c, timeout).await?;
    remove(client, c, volumes).await
}

/// Stop and remove one container, reporting as Docker Compose does.
pub async fn remove_container(
    client: &Client,
    reporter: &Reporter,
    c: &ObservedContainer,
    timeout: Option<i64>,
    volumes: bool,
) -> Result<(), ControllerError> {
    let failed = |what: &str| ControllerError::engine(format!("{what} container {}", c.name));
    if c.is_running() || c.state == "paused" {
        reporter(&Event::container(&c.name, "Stopping"));
        stop(client, c, timeout).await.map_err(failed("stop"))?;
        reporter(&Event::container(&c.name, "Stopped"));
    }
    reporter(&Event::container(&c.name, "Removing"));
    remove(client, c, volumes).await.map_err(failed("remove"))?;
    reporter(&Event::container(&c.name, "Removed"));
    Ok(())
}

/// Wait for spawned container tasks; the first error names the service.
async fn collect(mut set: JoinSet<Result<(), ControllerError>>, service: &str) -> Result<(), ControllerError> {
    let mut first = None;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first.get_or_insert(service_error(service, e));
            }
            Err(e) => {
                first.get_or_insert(ControllerError::Service {
                    service: service.to_string(),
                    message: format!("a task failed: {e}"),
                    logs: Vec::new(),
                });
            }
        }
    }
    first.map_or(Ok(()), Err)
}
