//! Desired against observed: what to do to each container, as a pure function (no engine calls), so every rule
//! is unit-tested: create what is missing; recreate when the config hash or the image id differs, and only then
//! (or when forced); start what is stopped; scale by container number (the highest numbers go first); restart
//! `restart: true` dependents of what was recreated; orphans only with `--remove-orphans`.

use std::collections::{BTreeMap, BTreeSet};

use super::desired::{Desired, DesiredNetwork, DesiredService, DesiredVolume};
use super::names;
use super::observe::{Observed, ObservedContainer};

#[derive(Debug, Clone, Default)]
pub struct DiffOptions {
    pub force_recreate: bool,
    pub no_recreate: bool,
    pub remove_orphans: bool,
    /// Act only on these services (`--no-deps` with services named); `None` acts on all.
    pub only: Option<BTreeSet<String>>,
    /// What each image reference resolves to now (`sha256:…`); a reference missing here is not compared.
    pub image_ids: BTreeMap<String, String>,
    /// Services of the project that are not desired now (left out by profiles): their containers are not orphans.
    pub disabled: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create {
        number: u32,
        name: String,
    },
    /// Replace `old` with a new container of the same number and name.
    Recreate {
        number: u32,
        name: String,
        old: ObservedContainer,
    },
    Start(ObservedContainer),
    /// A `restart: true` dependent of a recreated service.
    Restart(ObservedContainer),
    /// Scale down, or a duplicate of a number (left by an interrupted recreate).
    Remove(ObservedContainer),
    /// Up to date and running.
    Keep(ObservedContainer),
}

impl Action {
    pub fn is_keep(&self) -> bool {
        matches!(self, Action::Keep(_))
    }

    /// Whether this action leaves a container freshly started (dependents must wait for its condition).
    pub fn starts(&self) -> bool {
        matches!(self, Action::Create { .. } | Action::Recreate { .. } | Action::Start(_) | Action::Restart(_))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceChanges {
    pub service: String,
    pub actions: Vec<Action>,
}

impl ServiceChanges {
    pub fn is_noop(&self) -> bool {
        self.actions.iter().all(Action::is_keep)
    }

    pub fn recreates(&self) -> bool {
        self.actions.iter().any(|a| matches!(a, Action::Recreate { .. }))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Changes {
    /// In the project's order.
    pub services: Vec<ServiceChanges>,
    /// Containers of services the project no longer has.
    pub orphans: Vec<ObservedContainer>,
    /// Whether the orphans are to be removed (`--remove-orphans`) or only reported.
    pub remove_orphans: bool,
    pub create_volumes: Vec<DesiredVolume>,
    pub create_networks: Vec<DesiredNetwork>,
}

impl Changes {
    /// Nothing to do: every container is up to date and running, nothing to remove or create.
    pub fn is_noop(&self) -> bool {
        self.services.iter().all(ServiceChanges::is_noop)
            && (self.orphans.is_empty() || !self.remove_orphans)
            && self.create_volumes.is_empty()
            && self.create_networks.is_empty()
    }

    pub fn service(&self, name: &str) -> Option<&ServiceChanges> {
        self.services.iter().find(|s| s.service == name)
    }
}

pub fn diff(desired: &Desired, observed: &Observed, opts: &DiffOptions) -> Changes {
    let mut services: Vec<ServiceChanges> = desired
        .services
        .iter()
        .map(|svc| {
            let containers: Vec<&ObservedContainer> = observed.of_service(&svc.name).collect();
            let acting = opts.only.as_ref().is_none_or(|only| only.contains(&svc.name));
            let actions = if acting {
                service_actions(&desired.project, svc, &containers, opts)
            } else {
                containers.into_iter().map(|c| Action::Keep(c.clone())).collect()
            };
            ServiceChanges { service: svc.name.clone(), actions }
        })
        .collect();
    restart_dependents(desired, &mut services);
    let wanted: BTreeSet<&str> = desired.services.iter().map(|s| s.name.as_str()).collect();
    let orphans = observed
        .containers
        .iter()
        .filter(|c| !c.oneoff && !wanted.contains(c.service.as_str()) && !opts.disabled.contains(&c.service))
        .cloned()
        .collect();
    let existing: BTreeSet<&str> = observed.volumes.iter().map(|v| v.name.as_str()).collect();
    let create_volumes =
        desired.volumes.iter().filter(|v| !v.external && !existing.contains(v.name.as_str())).cloned().collect();
    let networks: BTreeSet<&str> = observed.networks.iter().map(String::as_str).collect();
    let create_networks =
        desired.networks.iter().filter(|n| !n.external && !networks.contains(n.name.as_str())).cloned().collect();
    Changes { services, orphans, remove_orphans: opts.remove_orphans, create_volumes, create_networks }
}

fn service_actions(
    project: &str,
    svc: &DesiredService,
    containers: &[&ObservedContainer],
    opts: &DiffOptions,
) -> Vec<Action> {
    let name_of = |n: u32| names::container_name(project, &svc.name, n, svc.container_name.as_deref());
    let mut actions = Vec::new();
    // One container per number: the one already carrying the right name wins; other holders of that number
    // (a replacement left by an interrupted recreate, a copy) go.
    let mut by_number: BTreeMap<u32, &ObservedContainer> = BTreeMap::new();
    for c in containers {
        if c.number == 0 {
            actions.push(Action::Remove((*c).clone()));
            continue;
        }
        match by_number.get(&c.number) {
            Some(held) if held.name == name_of(c.number) => actions.push(Action::Remove((*c).clone())),
            Some(held) => {
                actions.push(Action::Remove((*held).clone()));
                by_number.insert(c.number, c);
            }
            None => {
                by_number.insert(c.number, c);
            }
        }
    }
    let keep_count = svc.replicas as usize;
    let kept: Vec<&ObservedContainer> = by_number.values().copied().collect();
    // Scale down: the highest numbers go first.
    for c in kept.iter().skip(keep_count).rev() {
        actions.push(Action::Remove((*c).clone()));
    }
    let image_id = opts.image_ids.get(&svc.image);
    for c in kept.iter().take(keep_count) {
        let outdated = c.config_hash != svc.config_hash
            || image_id.is_some_and(|id| *id != c.image_id)
            || c.name != name_of(c.number);
        if opts.force_recreate || (outdated && !opts.no_recreate) {
            actions.push(Action::Recreate { number: c.number, name: name_of(c.number), old: (*c).clone() });
        } else if matches!(c.state.as_str(), "running" | "paused" | "restarting") {
            actions.push(Action::Keep((*c).clone()));
        } else {
            actions.push(Action::Start((*c).clone()));
        }
    }
    // Scale up: the lowest free numbers.
    let used: BTreeSet<u32> = kept.iter().take(keep_count).map(|c| c.number).collect();
    let missing = keep_count.saturating_sub(used.len());
    let mut number = 1u32;
    for _ in 0..missing {
        while used.contains(&number) {
            number += 1;
        }
        actions.push(Action::Create { number, name: name_of(number) });
        number += 1;
    }
    actions
}

/// A service that depends on a recreated one with `restart: true` is restarted, unless it changes anyway.
fn restart_dependents(desired: &Desired, services: &mut [ServiceChanges]) {
    let recreated: BTreeSet<String> = services.iter().filter(|s| s.recreates()).map(|s| s.service.clone()).collect();
    for changes in services.iter_mut() {
        let Some(svc) = desired.service(&changes.service) else { continue };
        let triggered = svc.depends_on.iter().any(|d| d.restart && recreated.contains(&d.service));
        if !triggered || !changes.is_noop() {
            continue;
        }
        for action in changes.actions.iter_mut() {
            if let Action::Keep(c) = action {
                *action = Action::Restart(c.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::DependencyCondition;
    use crate::controller::desired::DesiredDependency;
    use crate::controller::observe::ObservedVolume;

    fn svc(name: &str, replicas: u32) -> DesiredService {
        DesiredService {
            name: name.into(),
            replicas,
            config_hash: format!("hash-{name}"),
            image: "bb".into(),
            container_name: None,
            depends_on: Vec::new(),
        }
    }

    fn running(service: &str, number: u32) -> ObservedContainer {
        ObservedContainer {
            id: format!("id-{service}-{number}"),
            name: format!("p-{service}-{number}"),
            service: service.into(),
            number,
            state: "running".into(),
            config_hash: format!("hash-{service}"),
            image_id: "sha256:bb".into(),
            ..Default::default()
        }
    }

    fn desired(services: Vec<DesiredService>) -> Desired {
        Desired { project: "p".into(), services, volumes: Vec::new(), networks: Vec::new() }
    }

    fn observed(containers: Vec<ObservedContainer>) -> Observed {
        Observed { containers, volumes: Vec::new(), networks: Vec::new() }
    }

    fn opts() -> DiffOptions {
        DiffOptions { image_ids: BTreeMap::from([("bb".to_string(), "sha256:bb".to_string())]), ..Default::default() }
    }

    fn kinds(c: &Changes, service: &str) -> Vec<String> {
        c.service(service)
            .map(|s| {
                s.actions
                    .iter()
                    .map(|a| match a {
                        Action::Create { name, .. } => format!("create {name}"),
                        Action::Recreate { name, .. } => format!("recreate {name}"),
                        Action::Start(c) => format!("start {}", c.name),
                        Action::Restart(c) => format!("restart {}", c.name),
                        Action::Remove(c) => format!("remove {}", c.name),
                        Action::Keep(c) => format!("keep {}", c.name),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    #[test]
    fn missing_containers_are_created_and_up_to_date_ones_kept() {
        let d = desired(vec![svc("web", 2), svc("db", 1)]);
        let c = diff(&d, &observed(vec![running("web", 1)]), &opts());
        assert_eq!(kinds(&c, "web"), ["keep p-web-1", "create p-web-2"]);
        assert_eq!(kinds(&c, "db"), ["create p-db-1"]);
        assert!(!c.is_noop());
        let all = observed(vec![running("web", 1), running("web", 2), running("db", 1)]);
        assert!(diff(&d, &all, &opts()).is_noop());
    }

    #[test]
    fn recreate_only_when_hash_or_image_differ() {
        let d = desired(vec![svc("web", 1)]);
        let mut changed = running("web", 1);
        changed.config_hash = "old".into();
        assert_eq!(kinds(&diff(&d, &observed(vec![changed.clone()]), &opts()), "web"), ["recreate p-web-1"]);
        let mut new_image = running("web", 1);
        new_image.image_id = "sha256:older".into();
        assert_eq!(kinds(&diff(&d, &observed(vec![new_image.clone()]), &opts()), "web"), ["recreate p-web-1"]);
        // An image the engine could not resolve is not compared.
        let unresolved = DiffOptions::default();
        assert_eq!(kinds(&diff(&d, &observed(vec![new_image]), &unresolved), "web"), ["keep p-web-1"]);
        let no_recreate = DiffOptions { no_recreate: true, ..opts() };
        assert_eq!(kinds(&diff(&d, &observed(vec![changed]), &no_recreate), "web"), ["keep p-web-1"]);
        let force = DiffOptions { force_recreate: true, ..opts() };
        assert_eq!(kinds(&diff(&d, &observed(vec![running("web", 1)]), &force), "web"), ["recreate p-web-1"]);
    }

    #[test]
    fn stopped_containers_are_started() {
        let d = desired(vec![svc("web", 1)]);
        let mut stopped = running("web", 1);
        stopped.state = "exited".into();
        assert_eq!(kinds(&diff(&d, &observed(vec![stopped]), &opts()), "web"), ["start p-web-1"]);
    }

    #[test]
    fn scale_down_removes_the_highest_numbers_and_scale_up_fills_gaps() {
        let d = desired(vec![svc("web", 2)]);
        let three = observed(vec![running("web", 1), running("web", 2), running("web", 3), running("web", 4)]);
        assert_eq!(
            kinds(&diff(&d, &three, &opts()), "web"),
            ["remove p-web-4", "remove p-web-3", "keep p-web-1", "keep p-web-2"]
        );
        let d = desired(vec![svc("web", 3)]);
        let gap = observed(vec![running("web", 2)]);
        assert_eq!(kinds(&diff(&d, &gap, &opts()), "web"), ["keep p-web-2", "create p-web-1", "create p-web-3"]);
    }

    #[test]
    fn an_interrupted_recreate_converges() {
        let d = desired(vec![svc("web", 1)]);
        let mut replacement = running("web", 1);
        replacement.id = "new".into();
        replacement.name = "id-web-1_p-web-1".into();
        replacement.state = "created".into();
        let c = diff(&d, &observed(vec![running("web", 1), replacement.clone()]), &opts());
        assert_eq!(kinds(&c, "web"), ["remove id-web-1_p-web-1", "keep p-web-1"]);
        // Only the replacement is left (the old one was removed before the rename): it gets its proper name.
        let c = diff(&d, &observed(vec![replacement]), &opts());
        assert_eq!(kinds(&c, "web"), ["recreate p-web-1"]);
    }

    #[test]
    fn restart_true_dependents_of_a_recreated_service_restart() {
        let mut web = svc("web", 1);
        web.depends_on.push(DesiredDependency {
            service: "db".into(),
            condition: DependencyCondition::ServiceStarted,
            restart: true,
            required: true,
        });
        let mut worker = svc("worker", 1);
        worker.depends_on.push(DesiredDependency {
            service: "db".into(),
            condition: DependencyCondition::ServiceStarted,
            restart: false,
            required: true,
        });
        let d = desired(vec![svc("db", 1), web, worker]);
        let mut db = running("db", 1);
        db.config_hash = "old".into();
        let c = diff(&d, &observed(vec![db, running("web", 1), running("worker", 1)]), &opts());
        assert_eq!(kinds(&c, "db"), ["recreate p-db-1"]);
        assert_eq!(kinds(&c, "web"), ["restart p-web-1"]);
        assert_eq!(kinds(&c, "worker"), ["keep p-worker-1"]);
    }

    #[test]
    fn orphans_are_reported_and_removed_only_when_asked() {
        let d = desired(vec![svc("web", 1)]);
        let mut oneoff = running("web", 9);
        oneoff.oneoff = true;
        let o = observed(vec![running("web", 1), running("old", 1), running("dev", 1), oneoff]);
        let opts_ = DiffOptions { disabled: BTreeSet::from(["dev".to_string()]), ..opts() };
        let c = diff(&d, &o, &opts_);
        assert_eq!(c.orphans.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(), ["p-old-1"]);
        assert!(c.is_noop(), "orphans are only reported without --remove-orphans");
        let c = diff(&d, &o, &DiffOptions { remove_orphans: true, ..opts_ });
        assert!(!c.is_noop());
    }

    #[test]
    fn no_deps_leaves_other_services_alone() {
        let d = desired(vec![svc("web", 1), svc("db", 1)]);
        let only = DiffOptions { only: Some(BTreeSet::from(["web".to_string()])), ..opts() };
        let c = diff(&d, &observed(vec![]), &only);
        assert_eq!(kinds(&c, "web"), ["create p-web-1"]);
        assert!(kinds(&c, "db").is_empty());
    }

    #[test]
    fn missing_volumes_and_networks_are_created_external_ones_never() {
        let vol = |name: &str, external| DesiredVolume {
            key: name.into(),
            name: format!("p_{name}"),
            external,
            driver: String::new(),
            driver_opts: BTreeMap::new(),
            labels: BTreeMap::new(),
        };
        let mut d = desired(vec![]);
        d.volumes = vec![vol("data", false), vol("cache", false), vol("ext", true)];
        let mut o = observed(vec![]);
        o.volumes.push(ObservedVolume { name: "p_cache".into(), key: "cache".into() });
        let net = |key: &str, external| DesiredNetwork {
            key: key.into(),
            name: format!("p_{key}"),
            external,
            create: Default::default(),
        };
        d.networks = vec![net("default", false), net("back", false), net("outside", true)];
        o.networks.push("p_back".into());
        let c = diff(&d, &o, &opts());
        assert_eq!(c.create_volumes.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(), ["p_data"]);
        assert_eq!(c.create_networks.iter().map(|n| n.name.as_str()).collect::<Vec<_>>(), ["p_default"]);
        assert!(!c.is_noop());
    }
}
