//! The desired state of a project: per service its replica count, config hash and image, per named volume its
//! engine name and labels; and the create body of any one container (built when it is needed, since its
//! `com.docker.compose.image` label is the image id the engine resolves).

use std::collections::BTreeMap;
use std::path::PathBuf;

use berth_engine::client::containers::CreateBody;
use berth_engine::client::networks::{CreateNetworkOptions, Ipam, IpamConfig};

use super::labels;
use super::spec::{self, Identity};
use super::{SpecError, names};
use crate::compose::hash::config_hash;
use crate::compose::model::{DependencyCondition, Project, Service};
use crate::graph::ServiceGraph;

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredService {
    pub name: String,
    pub replicas: u32,
    pub config_hash: String,
    /// The image reference to run.
    pub image: String,
    /// `container_name`: the one container's fixed name.
    pub container_name: Option<String>,
    /// Services this one depends on, with their condition (from the dependency graph).
    pub depends_on: Vec<DesiredDependency>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredDependency {
    pub service: String,
    pub condition: DependencyCondition,
    pub restart: bool,
    pub required: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredVolume {
    pub key: String,
    /// The engine name (`<project>_<key>` or `name:`).
    pub name: String,
    pub external: bool,
    pub driver: String,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DesiredNetwork {
    pub key: String,
    /// The engine name (`<project>_<key>` or `name:`).
    pub name: String,
    pub external: bool,
    /// The create request (name, driver, IPAM, labels).
    pub create: CreateNetworkOptions,
}

/// What the project asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub project: String,
    /// In the project's order.
    pub services: Vec<DesiredService>,
    pub volumes: Vec<DesiredVolume>,
    pub networks: Vec<DesiredNetwork>,
}

impl Desired {
    pub fn service(&self, name: &str) -> Option<&DesiredService> {
        self.services.iter().find(|s| s.name == name)
    }
}

/// The desired state; `scale` overrides replica counts (`--scale web=3`).
pub fn desired(project: &Project, scale: &BTreeMap<String, u32>) -> Result<Desired, SpecError> {
    let name = project.name.clone().unwrap_or_default();
    let graph = ServiceGraph::new(project).map_err(|e| SpecError::Graph(e.to_string()))?;
    let mut services = Vec::new();
    for (svc_name, svc) in &project.services {
        let replicas = scale.get(svc_name).copied().unwrap_or_else(|| replicas(svc));
        if replicas > 1 && svc.container_name.is_some() {
            return Err(SpecError::Invalid {
                service: svc_name.clone(),
                message: format!("has container_name and cannot be scaled to {replicas} containers"),
            });
        }
        services.push(DesiredService {
            name: svc_name.clone(),
            replicas,
            config_hash: config_hash(svc),
            image: spec::image_ref(&name, svc_name, svc)?,
            container_name: svc.container_name.clone(),
            depends_on: graph
                .dependencies(svc_name)
                .into_iter()
                .map(|d| DesiredDependency {
                    service: d.service.clone(),
                    condition: d.condition,
                    restart: d.restart,
                    required: d.required,
                })
                .collect(),
        });
    }
    let volumes = project
        .volumes
        .iter()
        .map(|(key, v)| {
            let mut labels: BTreeMap<String, String> = v.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            labels.insert(labels::PROJECT.into(), name.clone());
            labels.insert(labels::VOLUME.into(), key.clone());
            labels.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
            DesiredVolume {
                key: key.clone(),
                name: names::scoped_name(&name, key, v.name.as_deref()),
                external: v.external,
                driver: v.driver.clone().unwrap_or_default(),
                driver_opts: v.driver_opts.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                labels,
            }
        })
        .collect();
    let networks = project
        .networks
        .iter()
        .map(|(key, n)| {
            let mut labels: BTreeMap<String, String> = n.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            labels.insert(labels::PROJECT.into(), name.clone());
            labels.insert(labels::NETWORK.into(), key.clone());
            labels.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
            let engine_name = names::scoped_name(&name, key, n.name.as_deref());
            let ipam = Ipam {
                config: n
                    .ipam
                    .iter()
                    .flat_map(|i| i.config.iter())
                    .map(|pool| IpamConfig {
                        subnet: pool.subnet.clone().unwrap_or_default(),
                        ip_range: pool.ip_range.clone().unwrap_or_default(),
                        gateway: pool.gateway.clone().unwrap_or_default(),
                        auxiliary_addresses: pool.aux_addresses.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    })
                    .collect(),
            };
            DesiredNetwork {
                key: key.clone(),
                name: engine_name.clone(),
                external: n.external,
                create: CreateNetworkOptions {
                    name: engine_name,
                    driver: n.driver.clone().unwrap_or_default(),
                    internal: n.internal,
                    attachable: n.attachable,
                    ipam,
                    options: n.driver_opts.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    labels,
                },
            }
        })
        .collect();
    Ok(Desired { project: name, services, volumes, networks })
}

/// `scale`, else `deploy.replicas`, else 1.
pub fn replicas(svc: &Service) -> u32 {
    svc.scale.or_else(|| svc.deploy.as_ref().and_then(|d| d.replicas)).unwrap_or(1)
}

/// Where the project came from, for the `project.working_dir` and `project.config_files` labels.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub working_dir: PathBuf,
    pub config_files: Vec<PathBuf>,
}

/// The full create body of replica `number` of `service`, labelled as Docker Compose labels it.
pub fn container_body(
    project: &Project,
    origin: &Origin,
    service: &DesiredService,
    number: u32,
    image_id: &str,
) -> Result<CreateBody, SpecError> {
    let svc = project
        .services
        .get(&service.name)
        .ok_or_else(|| SpecError::Invalid { service: service.name.clone(), message: "is not in the project".into() })?;
    let project_name = project.name.as_deref().unwrap_or_default();
    let name = names::container_name(project_name, &service.name, number, service.container_name.as_deref());
    let id = Identity { project, service_name: &service.name, service: svc, container_name: &name, number };
    let mut body = spec::create_body(&id, &service.image)?;
    let l = &mut body.config.labels;
    l.insert(labels::PROJECT.into(), project_name.to_string());
    l.insert(labels::SERVICE.into(), service.name.clone());
    l.insert(labels::CONTAINER_NUMBER.into(), number.to_string());
    l.insert(labels::ONEOFF.into(), "False".into());
    l.insert(labels::CONFIG_HASH.into(), service.config_hash.clone());
    l.insert(labels::DEPENDS_ON.into(), depends_on_label(&service.depends_on));
    l.insert(labels::IMAGE.into(), image_id.to_string());
    l.insert(labels::WORKING_DIR.into(), origin.working_dir.to_string_lossy().into_owned());
    l.insert(
        labels::CONFIG_FILES.into(),
        origin.config_files.iter().map(|f| f.to_string_lossy().into_owned()).collect::<Vec<_>>().join(","),
    );
    l.insert(labels::VERSION.into(), labels::COMPOSE_VERSION.into());
    Ok(body)
}

/// Docker Compose's `depends_on` label: `service:condition:restart`, comma-separated.
fn depends_on_label(deps: &[DesiredDependency]) -> String {
    deps.iter()
        .map(|d| {
            let condition = match d.condition {
                DependencyCondition::ServiceStarted => "service_started",
                DependencyCondition::ServiceHealthy => "service_healthy",
                DependencyCondition::ServiceCompletedSuccessfully => "service_completed_successfully",
            };
            format!("{}:{condition}:{}", d.service, d.restart)
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project(j: serde_json::Value) -> Project {
        serde_json::from_value(j).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn replicas_hashes_and_dependencies() {
        let p = project(json!({"name": "p", "services": {
            "web": {"image": "bb", "scale": 2, "depends_on": {"db": {"condition": "service_healthy", "restart": true}}},
            "db": {"image": "bb", "deploy": {"replicas": 3}},
            "one": {"image": "bb", "container_name": "solo"}
        }, "volumes": {"data": {"name": "p_data", "labels": {"a": "b"}}},
           "networks": {"back": {"name": "p_back", "internal": true,
                                 "ipam": {"config": [{"subnet": "10.99.0.0/24"}]}}}}));
        let d = desired(&p, &BTreeMap::from([("one".to_string(), 1)])).unwrap_or_else(|e| panic!("{e}"));
        let web = d.service("web").unwrap_or_else(|| panic!("web"));
        assert_eq!(web.replicas, 2);
        assert_eq!(d.service("db").map(|s| s.replicas), Some(3));
        assert_eq!(web.depends_on[0].condition, DependencyCondition::ServiceHealthy);
        assert!(web.depends_on[0].restart);
        assert_eq!(web.config_hash, config_hash(&p.services["web"]));
        assert_eq!(d.volumes[0].name, "p_data");
        assert_eq!(d.volumes[0].labels.get(labels::PROJECT).map(String::as_str), Some("p"));
        assert_eq!(d.volumes[0].labels.get("a").map(String::as_str), Some("b"));
        let back = &d.networks[0];
        assert_eq!((back.name.as_str(), back.create.name.as_str(), back.create.internal), ("p_back", "p_back", true));
        assert_eq!(back.create.labels.get(labels::NETWORK).map(String::as_str), Some("back"));
        assert_eq!(back.create.ipam.config[0].subnet, "10.99.0.0/24");

        let scaled = desired(&p, &BTreeMap::from([("web".to_string(), 5)])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(scaled.service("web").map(|s| s.replicas), Some(5));
        let bad = desired(&p, &BTreeMap::from([("one".to_string(), 2)]));
        assert!(bad.err().is_some_and(|e| e.to_string().contains("container_name")));
    }

    #[test]
    fn container_bodies_carry_the_compose_labels() {
        let p = project(json!({"name": "p", "services": {
            "web": {"image": "bb", "depends_on": {"db": {"condition": "service_started"}}, "labels": {"mine": "1"}},
            "db": {"image": "bb"}
        }}));
        let d = desired(&p, &BTreeMap::new()).unwrap_or_else(|e| panic!("{e}"));
        let origin = Origin { working_dir: "/w".into(), config_files: vec!["/w/compose.yaml".into()] };
        let web = d.service("web").unwrap_or_else(|| panic!("web"));
        let body = container_body(&p, &origin, web, 2, "sha256:abc").unwrap_or_else(|e| panic!("{e}"));
        let l = |k: &str| body.config.labels.get(k).cloned().unwrap_or_default();
        assert_eq!(l(labels::PROJECT), "p");
        assert_eq!(l(labels::SERVICE), "web");
        assert_eq!(l(labels::CONTAINER_NUMBER), "2");
        assert_eq!(l(labels::ONEOFF), "False");
        assert_eq!(l(labels::CONFIG_HASH), web.config_hash);
        assert_eq!(l(labels::DEPENDS_ON), "db:service_started:false");
        assert_eq!(l(labels::IMAGE), "sha256:abc");
        assert_eq!(l(labels::WORKING_DIR), "/w");
        assert_eq!(l(labels::CONFIG_FILES), "/w/compose.yaml");
        assert_eq!(l("mine"), "1");
        assert_eq!(body.config.image, "bb");
    }
}
