//! `up` and `down` end to end: observe, desire, diff, plan, execute. Nothing is touched before every service
//! has a valid container spec and every image a container must be made from is in the store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use berth_engine::client::Client;
use futures_util::future::join_all;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::conditions;
use super::desired::{Desired, Origin, container_body, desired};
use super::diff::{Action, Changes, DiffOptions, diff};
use super::execute::{Context, Report, execute};
use super::observe::{self, ObservedContainer};
use super::plan::Plan;
use super::progress::{Event, Reporter};
use super::{ControllerError, SpecError};
use crate::compose::model::{DependencyCondition, Project};

#[derive(Debug, Clone)]
pub struct UpOptions {
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    /// `--no-deps`: act only on these services.
    pub only: Option<BTreeSet<String>>,
    /// `--scale svc=n`.
    pub scale: BTreeMap<String, u32>,
    /// `--parallel`: engine operations at a time.
    pub parallel: usize,
    /// `-t`.
    pub stop_timeout: Option<i64>,
    /// How long a dependent waits for a dependency's condition.
    pub dependency_timeout: Duration,
    /// `--wait` with `--wait-timeout`: wait until every container runs (and is healthy, when it has a check).
    pub wait: Option<Duration>,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            force_recreate: false,
            no_recreate: false,
            remove_orphans: false,
            only: None,
            scale: BTreeMap::new(),
            parallel: 16,
            stop_timeout: None,
            dependency_timeout: Duration::from_secs(120),
            wait: None,
        }
    }
}

#[derive(Debug, Default)]
pub struct UpSummary {
    /// Whether anything was done.
    pub changed: bool,
    /// Orphan containers found and left (no `--remove-orphans`).
    pub orphans: Vec<String>,
    pub report: Report,
}

/// The project's images as the engine resolves them now (reference → image id); a missing one is left out.
pub async fn resolve_images(client: &Client, desired: &Desired) -> BTreeMap<String, String> {
    let refs: BTreeSet<&str> = desired.services.iter().map(|s| s.image.as_str()).collect();
    let lookups = refs.into_iter().map(|r| async move {
        let found: Option<serde_json::Value> = client.get_json(&format!("/images/{r}/json")).await.ok();
        let id = found.and_then(|v| v.get("Id").and_then(|i| i.as_str()).map(str::to_owned));
        id.map(|id| (r.to_string(), id))
    });
    join_all(lookups).await.into_iter().flatten().collect()
}

/// Every container spec can be built: bad values fail here, before anything is touched.
pub fn check_specs(project: &Project, origin: &Origin, desired: &Desired) -> Result<(), SpecError> {
    for svc in &desired.services {
        container_body(project, origin, svc, 1, "")?;
    }
    Ok(())
}

/// Images that containers must be made from but that the store does not have.
fn missing_image(
    desired: &Desired,
    changes: &Changes,
    image_ids: &BTreeMap<String, String>,
) -> Option<ControllerError> {
    changes.services.iter().find_map(|s| {
        let needs = s.actions.iter().any(|a| matches!(a, Action::Create { .. } | Action::Recreate { .. }));
        let svc = desired.service(&s.service)?;
        (needs && !image_ids.contains_key(&svc.image))
            .then(|| ControllerError::MissingImage { service: svc.name.clone(), image: svc.image.clone() })
    })
}

/// Converge the project once.
pub async fn up(
    client: &Client,
    project: Arc<Project>,
    origin: Origin,
    disabled: &[String],
    opts: &UpOptions,
    reporter: Reporter,
) -> Result<UpSummary, ControllerError> {
    let desired = desired(&project, &opts.scale)?;
    check_specs(&project, &origin, &desired)?;
    let (observed, image_ids) =
        tokio::join!(observe::observe(client, &desired.project), resolve_images(client, &desired));
    let observed = observed?;
    let diff_opts = DiffOptions {
        force_recreate: opts.force_recreate,
        no_recreate: opts.no_recreate,
        remove_orphans: opts.remove_orphans,
        only: opts.only.clone(),
        image_ids: image_ids.clone(),
        disabled: disabled.iter().cloned().collect(),
    };
    let changes = diff(&desired, &observed, &diff_opts);
    if let Some(e) = missing_image(&desired, &changes, &image_ids) {
        return Err(e);
    }
    let orphans: Vec<String> =
        if changes.remove_orphans { Vec::new() } else { changes.orphans.iter().map(|c| c.name.clone()).collect() };
    if changes.is_noop() {
        for s in &changes.services {
            for a in &s.actions {
                if let Action::Keep(c) = a {
                    reporter(&Event::container(&c.name, "Running"));
                }
            }
        }
        let mut summary = UpSummary { changed: false, orphans, report: Report::default() };
        if let Some(timeout) = opts.wait {
            wait_running(client, &project, &desired.project, timeout, &mut summary.report).await?;
        }
        return Ok(summary);
    }
    let plan = Plan::up(&desired, &changes);
    let ctx = Arc::new(Context {
        client: client.clone(),
        project: Arc::clone(&project),
        origin,
        desired: desired.clone(),
        image_ids,
        limit: Semaphore::new(opts.parallel.max(1)),
        reporter,
        stop_timeout: opts.stop_timeout,
        dependency_timeout: opts.dependency_timeout,
        remove_anonymous_volumes: false,
    });
    let mut report = execute(ctx, plan).await;
    if let Some(timeout) = opts.wait
        && report.ok()
    {
        wait_running(client, &project, &desired.project, timeout, &mut report).await?;
    }
    Ok(UpSummary { changed: true, orphans, report })
}

/// `--wait`: every container of the project runs, and is healthy when it has a healthcheck.
async fn wait_running(
    client: &Client,
    project: &Project,
    name: &str,
    timeout: Duration,
    report: &mut Report,
) -> Result<(), ControllerError> {
    let deadline = Instant::now() + timeout;
    let containers = observe::containers(client, name).await?;
    for c in containers.iter().filter(|c| !c.oneoff) {
        let checked = project
            .services
            .get(&c.service)
            .and_then(|s| s.healthcheck.as_ref())
            .is_some_and(|h| !h.disable && h.test.as_ref().is_none_or(|t| t.first().is_none_or(|w| w != "NONE")));
        let left = deadline.saturating_duration_since(Instant::now());
        let result = if checked {
            let pair = [(c.id.clone(), c.name.clone())];
            conditions::wait_for(client, &c.service, &pair, DependencyCondition::ServiceHealthy, left).await
        } else {
            wait_state_running(client, c, deadline).await
        };
        if let Err(message) = result {
            let logs = super::execute::last_log_lines(client, &c.id).await;
            report.failures.push(ControllerError::Service { service: c.service.clone(), message, logs });
        }
    }
    Ok(())
}

async fn wait_state_running(client: &Client, c: &ObservedContainer, deadline: Instant) -> Result<(), String> {
    loop {
        let inspect = client.inspect_container(&c.id).await.map_err(|e| e.to_string())?;
        if inspect.state.running {
            return Ok(());
        }
        if !inspect.state.restarting || Instant::now() >= deadline {
            return Err(format!(
                "container {} is {} (exit code {})",
                c.name, inspect.state.status, inspect.state.exit_code
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    /// `-v`: the project's named volumes and the containers' anonymous ones.
    pub remove_volumes: bool,
    pub remove_orphans: bool,
    pub stop_timeout: Option<i64>,
    pub parallel: usize,
}

#[derive(Debug, Default)]
pub struct DownSummary {
    pub orphans: Vec<String>,
    pub report: Report,
}

/// Stop and remove the project's containers (dependents first), then its volumes with `-v`.
pub async fn down(
    client: &Client,
    project: Arc<Project>,
    opts: &DownOptions,
    reporter: Reporter,
) -> Result<DownSummary, ControllerError> {
    let desired = desired(&project, &BTreeMap::new())?;
    let observed = observe::observe(client, &desired.project).await?;
    let ours = |c: &&ObservedContainer| opts.remove_orphans || desired.service(&c.service).is_some();
    let containers: Vec<ObservedContainer> = observed.containers.iter().filter(ours).cloned().collect();
    let orphans = observed.containers.iter().filter(|c| !ours(c)).map(|c| c.name.clone()).collect();
    let volumes: Vec<String> = if opts.remove_volumes {
        let labelled: BTreeSet<&str> = observed.volumes.iter().map(|v| v.name.as_str()).collect();
        desired
            .volumes
            .iter()
            .filter(|v| !v.external && labelled.contains(v.name.as_str()))
            .map(|v| v.name.clone())
            .collect()
    } else {
        Vec::new()
    };
    // Networks always go (Docker Compose's down removes them); external ones are never touched.
    let labelled: BTreeSet<&str> = observed.networks.iter().map(String::as_str).collect();
    let networks: Vec<String> = desired
        .networks
        .iter()
        .filter(|n| !n.external && labelled.contains(n.name.as_str()))
        .map(|n| n.name.clone())
        .collect();
    let plan = Plan::down(&desired, &containers, &volumes, &networks);
    let ctx = Arc::new(Context {
        client: client.clone(),
        project: Arc::clone(&project),
        origin: Origin::default(),
        desired,
        image_ids: BTreeMap::new(),
        limit: Semaphore::new(opts.parallel.max(1)),
        reporter,
        stop_timeout: opts.stop_timeout,
        dependency_timeout: Duration::ZERO,
        remove_anonymous_volumes: opts.remove_volumes,
    });
    Ok(DownSummary { orphans, report: execute(ctx, plan).await })
}
