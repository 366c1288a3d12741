//! The engine's create body for one container of a service: what Docker Compose sends to `POST /containers/create`
//! for the same service, field by field. Mounts live in [`super::mounts`], networking in [`super::network`].

use std::collections::BTreeMap;

use berth_engine::client::containers::{ContainerConfig, CreateBody, HostConfig, RestartPolicy};
use berth_engine::runtime::config::{DeviceMapping, LogConfig, Ulimit};
use serde_json::{Value, json};

use super::SpecError;
use crate::compose::model::{HealthCheckConfig, Project, Service};

/// Who a container is, for its labels and names.
#[derive(Debug, Clone)]
pub struct Identity<'a> {
    pub project: &'a Project,
    pub service_name: &'a str,
    pub service: &'a Service,
    pub container_name: &'a str,
    pub number: u32,
}

/// The image reference a service runs: `image`, or the name Docker Compose gives a built image.
pub fn image_ref(project: &str, service_name: &str, service: &Service) -> Result<String, SpecError> {
    match (&service.image, &service.build) {
        (Some(image), _) => Ok(image.clone()),
        (None, Some(_)) => Ok(format!("{project}-{service_name}")),
        (None, None) => Err(SpecError::NoImage(service_name.to_string())),
    }
}

/// The create body without labels (the caller adds the compose labels, which need the image id).
pub fn create_body(id: &Identity<'_>, image: &str) -> Result<CreateBody, SpecError> {
    let s = id.service;
    let config = ContainerConfig {
        hostname: s.hostname.clone().unwrap_or_default(),
        domainname: s.domainname.clone().unwrap_or_default(),
        user: s.user.clone().unwrap_or_default(),
        tty: s.tty,
        open_stdin: s.stdin_open,
        env: environment(s),
        cmd: s.command.clone(),
        entrypoint: s.entrypoint.clone(),
        healthcheck: s.healthcheck.as_ref().map(healthcheck),
        image: image.to_string(),
        working_dir: s.working_dir.clone().unwrap_or_default(),
        exposed_ports: exposed_ports(s),
        stop_signal: s.stop_signal.clone(),
        stop_timeout: s.stop_grace_period.map(|d| d.as_nanos() / 1_000_000_000),
        labels: s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        ..Default::default()
    };
    let mut host = host_config(id)?;
    host.port_bindings = port_bindings(s);
    super::mounts::apply(id.project, id.service_name, s, &mut host)?;
    let (mode, networking) = super::network::attachment(id);
    host.network_mode = mode;
    Ok(CreateBody { config, host_config: host, networking_config: networking })
}

/// `environment`: bare names whose value was not found are left out, as Docker Compose does.
fn environment(s: &Service) -> Vec<String> {
    s.environment.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}"))).collect()
}

/// Docker's `Healthcheck` object; durations in nanoseconds; `disable` is `["NONE"]`.
fn healthcheck(h: &HealthCheckConfig) -> Value {
    if h.disable {
        return json!({"Test": ["NONE"]});
    }
    let mut out = serde_json::Map::new();
    if let Some(test) = &h.test {
        out.insert("Test".into(), json!(test));
    }
    for (key, value) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if let Some(d) = value {
            out.insert(key.into(), json!(d.as_nanos()));
        }
    }
    if let Some(r) = h.retries {
        out.insert("Retries".into(), json!(r));
    }
    Value::Object(out)
}

/// `expose` and the container side of `ports`, as `{"80/tcp": {}}`.
fn exposed_ports(s: &Service) -> Option<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    for e in &s.expose {
        let port = if e.contains('/') { e.clone() } else { format!("{e}/tcp") };
        out.insert(port, json!({}));
    }
    for p in &s.ports {
        out.insert(format!("{}/{}", p.target, p.protocol.as_deref().unwrap_or("tcp")), json!({}));
    }
    (!out.is_empty()).then_some(out)
}

/// `ports` as Docker's `PortBindings`: `{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}`; a port
/// without `published` gets an ephemeral host port (empty `HostPort`).
fn port_bindings(s: &Service) -> Option<Value> {
    let mut out = serde_json::Map::new();
    for p in &s.ports {
        let key = format!("{}/{}", p.target, p.protocol.as_deref().unwrap_or("tcp"));
        let binding = json!({
            "HostIp": p.host_ip.clone().unwrap_or_default(),
            "HostPort": p.published.clone().unwrap_or_default(),
        });
        if let Some(list) = out.entry(key).or_insert_with(|| json!([])).as_array_mut() {
            list.push(binding);
        }
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn host_config(id: &Identity<'_>) -> Result<HostConfig, SpecError> {
    let s = id.service;
    let limits = s.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.limits.as_ref());
    let reservations = s.deploy.as_ref().and_then(|d| d.resources.as_ref()).and_then(|r| r.reservations.as_ref());
    let cpus = s.cpus.or(limits.and_then(|l| l.cpus));
    let mut host = HostConfig {
        restart_policy: restart_policy(id.service_name, s)?,
        privileged: s.privileged,
        readonly_rootfs: s.read_only,
        cap_add: s.cap_add.clone(),
        cap_drop: s.cap_drop.clone(),
        security_opt: s.security_opt.clone(),
        init: s.init,
        memory: s.mem_limit.or(limits.and_then(|l| l.memory)).map_or(0, |b| b.0),
        memory_reservation: s.mem_reservation.or(reservations.and_then(|r| r.memory)).map_or(0, |b| b.0),
        memory_swap: s.memswap_limit.map_or(0, |b| b.0),
        nano_cpus: cpus.map_or(0, |c| (c * 1e9).round() as i64),
        cpu_shares: s.cpu_shares.unwrap_or(0),
        cpu_period: s.cpu_period.unwrap_or(0),
        cpu_quota: s.cpu_quota.unwrap_or(0),
        cpuset_cpus: s.cpuset.clone().unwrap_or_default(),
        pids_limit: s.pids_limit.or(limits.and_then(|l| l.pids)),
        oom_score_adj: s.oom_score_adj,
        shm_size: s.shm_size.map_or(0, |b| b.0),
        sysctls: s.sysctls.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        tmpfs: s.tmpfs.iter().map(|t| tmpfs_entry(t)).collect(),
        ulimits: s.ulimits.iter().map(|(name, u)| Ulimit { name: name.clone(), soft: u.soft, hard: u.hard }).collect(),
        devices: s
            .devices
            .iter()
            .map(|d| DeviceMapping {
                path_on_host: d.source.clone(),
                path_in_container: d.target.clone().unwrap_or_else(|| d.source.clone()),
                cgroup_permissions: d.permissions.clone().unwrap_or_else(|| "rwm".into()),
            })
            .collect(),
        volumes_from: s.volumes_from.iter().map(|v| volumes_from(id, v)).collect(),
        log_config: s.logging.as_ref().map(|l| LogConfig {
            kind: l.driver.clone().unwrap_or_default(),
            config: l.options.iter().filter_map(|(k, v)| v.clone().map(|v| (k.clone(), v))).collect(),
        }),
        ipc_mode: s.ipc.as_deref().map(|m| namespace_mode(id, m)),
        pid_mode: s.pid.as_deref().map(|m| namespace_mode(id, m)),
        uts_mode: s.uts.clone(),
        extra_hosts: s.extra_hosts.to_list(":"),
        dns: s.dns.clone(),
        dns_search: s.dns_search.clone(),
        dns_options: s.dns_opt.clone(),
        ..Default::default()
    };
    if !s.group_add.is_empty() {
        host.extra.insert("GroupAdd".into(), json!(s.group_add));
    }
    if let Some(parent) = &s.cgroup_parent {
        host.extra.insert("CgroupParent".into(), json!(parent));
    }
    if let Some(swappiness) = s.mem_swappiness {
        host.extra.insert("MemorySwappiness".into(), json!(swappiness));
    }
    if s.oom_kill_disable {
        host.extra.insert("OomKillDisable".into(), json!(true));
    }
    Ok(host)
}

/// `restart:` (`no`, `always`, `unless-stopped`, `on-failure[:N]`), else `deploy.restart_policy`.
fn restart_policy(service: &str, s: &Service) -> Result<RestartPolicy, SpecError> {
    let bad = |value: &str| SpecError::Invalid {
        service: service.to_string(),
        message: format!("invalid restart policy {value:?} (use no, always, unless-stopped or on-failure[:N])"),
    };
    if let Some(restart) = s.restart.as_deref() {
        let (name, count) = restart.split_once(':').unwrap_or((restart, ""));
        let maximum_retry_count = match (name, count) {
            (_, "") => 0,
            ("on-failure", n) => n.parse().map_err(|_| bad(restart))?,
            _ => return Err(bad(restart)),
        };
        if !matches!(name, "no" | "always" | "unless-stopped" | "on-failure") {
            return Err(bad(restart));
        }
        return Ok(RestartPolicy { name: name.to_string(), maximum_retry_count });
    }
    let deploy = s.deploy.as_ref().and_then(|d| d.restart_policy.as_ref());
    Ok(match deploy.and_then(|p| p.condition.as_deref()) {
        Some("any") => RestartPolicy { name: "always".into(), maximum_retry_count: 0 },
        Some("on-failure") => RestartPolicy {
            name: "on-failure".into(),
            maximum_retry_count: deploy.and_then(|p| p.max_attempts).map_or(0, |n| n as i64),
        },
        _ => RestartPolicy { name: "no".into(), maximum_retry_count: 0 },
    })
}

/// `/run:size=64m,mode=1777` → (`/run`, `size=64m,mode=1777`).
fn tmpfs_entry(entry: &str) -> (String, String) {
    match entry.split_once(':') {
        Some((path, options)) => (path.to_string(), options.to_string()),
        None => (entry.to_string(), String::new()),
    }
}

/// `service:db` names the first container of that service; `container:x` and others pass through.
fn namespace_mode(id: &Identity<'_>, mode: &str) -> String {
    match mode.strip_prefix("service:") {
        Some(target) => format!("container:{}", first_container(id, target)),
        None => mode.to_string(),
    }
}

/// `volumes_from: [db, db:ro, container:x]` → engine form `<container>[:ro]`.
fn volumes_from(id: &Identity<'_>, entry: &str) -> String {
    if let Some(container) = entry.strip_prefix("container:") {
        return container.to_string();
    }
    let (service, mode) = match entry.split_once(':') {
        Some((s, m)) => (s, Some(m)),
        None => (entry, None),
    };
    let name = first_container(id, service);
    match mode {
        Some(m) => format!("{name}:{m}"),
        None => name,
    }
}

/// The container that stands for a service in `service:` references: its first replica.
pub fn first_container(id: &Identity<'_>, service: &str) -> String {
    let project = id.project.name.as_deref().unwrap_or_default();
    let explicit = id.project.services.get(service).and_then(|s| s.container_name.as_deref());
    super::names::container_name(project, service, 1, explicit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(j: Value) -> Service {
        serde_json::from_value(j).unwrap_or_else(|e| panic!("{e}"))
    }

    fn body(j: Value) -> CreateBody {
        let svc = service(j);
        let mut project = Project { name: Some("p".into()), ..Default::default() };
        project.services.insert("web".into(), svc.clone());
        let id =
            Identity { project: &project, service_name: "web", service: &svc, container_name: "p-web-1", number: 1 };
        create_body(&id, "bb:1").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn service_fields_become_docker_fields() {
        let b = body(json!({
            "image": "bb:1", "command": ["sleep", "1"], "entrypoint": ["/bin/sh", "-c"],
            "environment": {"A": "1", "UNSET": null}, "working_dir": "/w", "user": "1000", "tty": true,
            "stdin_open": true, "stop_signal": "SIGUSR1", "stop_grace_period": "3s", "restart": "on-failure:3",
            "init": true, "read_only": true, "cap_add": ["NET_ADMIN"], "cap_drop": ["ALL"], "privileged": true,
            "security_opt": ["no-new-privileges"], "sysctls": {"net.core.somaxconn": "1024"},
            "ulimits": {"nofile": {"soft": 10, "hard": 20}}, "mem_limit": "64m", "cpus": 0.5, "pids_limit": 50,
            "shm_size": "1m", "tmpfs": ["/run:size=1m"], "logging": {"driver": "json-file", "options": {"max-size": "1m"}},
            "healthcheck": {"test": ["CMD", "true"], "interval": "2s", "retries": 3},
            "network_mode": "none", "labels": {"x": "y"}, "expose": ["80"],
            "ports": [{"target": 80, "published": "8080", "host_ip": "127.0.0.1"}, {"target": 53, "protocol": "udp"}]
        }));
        let (c, h) = (&b.config, &b.host_config);
        assert_eq!(c.cmd, Some(vec!["sleep".into(), "1".into()]));
        assert_eq!(c.entrypoint, Some(vec!["/bin/sh".into(), "-c".into()]));
        assert_eq!(c.env, vec!["A=1"]);
        assert_eq!((c.working_dir.as_str(), c.user.as_str(), c.tty, c.open_stdin), ("/w", "1000", true, true));
        assert_eq!((c.stop_signal.as_deref(), c.stop_timeout), (Some("SIGUSR1"), Some(3)));
        assert_eq!(c.labels.get("x").map(String::as_str), Some("y"));
        assert_eq!(c.healthcheck, Some(json!({"Test": ["CMD", "true"], "Interval": 2_000_000_000i64, "Retries": 3})));
        assert!(c.exposed_ports.as_ref().is_some_and(|p| p.contains_key("80/tcp") && p.contains_key("53/udp")));
        assert_eq!(
            h.port_bindings,
            Some(json!({
                "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                "53/udp": [{"HostIp": "", "HostPort": ""}]
            }))
        );
        assert_eq!(h.restart_policy, RestartPolicy { name: "on-failure".into(), maximum_retry_count: 3 });
        assert_eq!((h.init, h.readonly_rootfs, h.privileged), (Some(true), true, true));
        assert_eq!((h.cap_add.clone(), h.cap_drop.clone()), (vec!["NET_ADMIN".into()], vec!["ALL".into()]));
        assert_eq!(h.memory, 64 * 1024 * 1024);
        assert_eq!(h.nano_cpus, 500_000_000);
        assert_eq!((h.pids_limit, h.shm_size), (Some(50), 1024 * 1024));
        assert_eq!(h.tmpfs.get("/run").map(String::as_str), Some("size=1m"));
        assert_eq!(h.ulimits, vec![Ulimit { name: "nofile".into(), soft: 10, hard: 20 }]);
        assert_eq!(h.log_config.as_ref().map(|l| l.kind.as_str()), Some("json-file"));
        assert_eq!(h.network_mode.as_deref(), Some("none"));
        assert_eq!(b.networking_config, None);
    }

    #[test]
    fn bad_restart_policies_name_the_service() {
        let svc = service(json!({"image": "x", "restart": "sometimes"}));
        let e = restart_policy("web", &svc).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("web") && e.contains("sometimes"), "{e}");
        let svc = service(json!({"image": "x", "restart": "always:3"}));
        assert!(restart_policy("web", &svc).is_err());
    }

    #[test]
    fn healthcheck_disable_is_none() {
        let b = body(json!({"image": "x", "healthcheck": {"disable": true}}));
        assert_eq!(b.config.healthcheck, Some(json!({"Test": ["NONE"]})));
    }

    #[test]
    fn built_images_get_compose_names() {
        let svc = service(json!({"build": {"context": "."}}));
        assert_eq!(image_ref("p", "web", &svc).ok().as_deref(), Some("p-web"));
        assert!(image_ref("p", "web", &Service::default()).is_err());
    }
}
