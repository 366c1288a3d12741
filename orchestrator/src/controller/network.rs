//! How a container joins networks. berthd has no `/networks` API yet (berth-netd is being built), so this is the
//! one place that decides what the create body says about networking; when networks land, fill in here (and
//! create the networks in the plan before the containers).

use serde_json::{Value, json};

use super::spec::{Identity, first_container};

/// `HostConfig.NetworkMode` and `NetworkingConfig` for one container, as Docker Compose sends them:
/// `host`, `none` and `container:`/`service:` pass through; otherwise the first network is the mode and every
/// network gets an endpoint with the service name and the container name as aliases.
pub fn attachment(id: &Identity<'_>) -> (Option<String>, Option<Value>) {
    if let Some(mode) = id.service.network_mode.as_deref() {
        let mode = match mode.strip_prefix("service:") {
            Some(target) => format!("container:{}", first_container(id, target)),
            None => mode.to_string(),
        };
        return (Some(mode), None);
    }
    let project = id.project.name.as_deref().unwrap_or_default();
    let mut endpoints = serde_json::Map::new();
    let mut first: Option<String> = None;
    for (key, cfg) in &id.service.networks {
        let declared = id.project.networks.get(key);
        let name = super::names::scoped_name(project, key, declared.and_then(|n| n.name.as_deref()));
        let mut aliases = vec![id.service_name.to_string(), id.container_name.to_string()];
        if let Some(cfg) = cfg {
            aliases.extend(cfg.aliases.iter().cloned());
        }
        let mut endpoint = json!({"Aliases": aliases});
        if let Some(cfg) = cfg {
            let mut ipam = serde_json::Map::new();
            if let Some(ip) = &cfg.ipv4_address {
                ipam.insert("IPv4Address".into(), json!(ip));
            }
            if let Some(ip) = &cfg.ipv6_address {
                ipam.insert("IPv6Address".into(), json!(ip));
            }
            if !ipam.is_empty() {
                endpoint["IPAMConfig"] = Value::Object(ipam);
            }
            if let Some(mac) = &cfg.mac_address {
                endpoint["MacAddress"] = json!(mac);
            }
        }
        first.get_or_insert_with(|| name.clone());
        endpoints.insert(name, endpoint);
    }
    match first {
        Some(mode) => (Some(mode), Some(json!({"EndpointsConfig": endpoints}))),
        None => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::Project;

    #[test]
    fn networks_get_compose_aliases_and_modes_pass_through() {
        let project: Project = serde_json::from_value(json!({
            "name": "p",
            "networks": {"default": {"name": "p_default"}, "back": {"name": "p_back"}},
            "services": {
                "web": {"image": "x", "networks": {"default": null, "back": {"aliases": ["api"]}}},
                "side": {"image": "x", "network_mode": "service:web"},
                "lone": {"image": "x", "network_mode": "none"}
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let id = |svc: &'static str, name: &'static str| Identity {
            project: &project,
            service_name: svc,
            service: &project.services[svc],
            container_name: name,
            number: 1,
        };
        let (mode, cfg) = attachment(&id("web", "p-web-1"));
        assert_eq!(mode.as_deref(), Some("p_default"));
        assert_eq!(
            cfg,
            Some(json!({"EndpointsConfig": {
                "p_default": {"Aliases": ["web", "p-web-1"]},
                "p_back": {"Aliases": ["web", "p-web-1", "api"]}
            }}))
        );
        assert_eq!(attachment(&id("side", "p-side-1")).0.as_deref(), Some("container:p-web-1"));
        assert_eq!(attachment(&id("lone", "p-lone-1")), (Some("none".into()), None));
    }
}
