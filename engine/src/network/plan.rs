//! What a container's create body asks of the network: its mode (`none`, `host`, `container:<id>`, or berth-netd
//! networks) and, per network, the endpoint settings of `NetworkingConfig.EndpointsConfig`.

use std::net::Ipv4Addr;

use serde_json::Value;

/// The network of the default mode (Docker's `bridge`, a berth-netd network created on demand).
pub const DEFAULT_NETWORK: &str = "bridge";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Its own namespace with loopback only.
    None,
    /// The host's namespace.
    Host,
    /// Another container's namespace (id or name).
    Container(String),
    /// Its own namespace wired by berth-netd to these networks, the first one being `eth0`.
    Networks(Vec<EndpointPlan>),
}

/// One network to join and how (`EndpointConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointPlan {
    /// Network name or id as the user wrote it.
    pub network: String,
    pub aliases: Vec<String>,
    pub ipv4_address: Option<Ipv4Addr>,
    pub mac_address: Option<String>,
}

/// The mode of `HostConfig.NetworkMode` plus `NetworkingConfig.EndpointsConfig` (its own network first, the
/// others by name, so `eth0` is always the mode's network).
pub fn plan(network_mode: Option<&str>, networking_config: Option<&Value>) -> Result<Mode, String> {
    let endpoints = networking_config.and_then(|n| n.get("EndpointsConfig")).and_then(Value::as_object);
    let mode = network_mode.unwrap_or("").trim();
    let mode = if mode.is_empty() || mode == "default" { DEFAULT_NETWORK } else { mode };
    // The docker CLI names the default network `default` in EndpointsConfig too.
    let is_mode = |k: &str| k == mode || (mode == DEFAULT_NETWORK && k == "default");
    let others = || endpoints.into_iter().flat_map(|m| m.keys()).filter(|k| !is_mode(k));
    let shared = match mode {
        "none" => Some(Mode::None),
        "host" => Some(Mode::Host),
        m => match m.strip_prefix("container:") {
            Some("") => return Err("NetworkMode container: needs a container id or name".into()),
            Some(c) => Some(Mode::Container(c.to_string())),
            None => None,
        },
    };
    if let Some(shared) = shared {
        if let Some(other) = others().next() {
            return Err(format!(
                "container sharing network namespace with another container or host cannot be connected to \
                 any other network (asked: {other})"
            ));
        }
        return Ok(shared);
    }
    let own = endpoints.and_then(|m| m.iter().find(|(k, _)| is_mode(k)).map(|(_, v)| v));
    let mut list = vec![endpoint(mode, own)?];
    let mut rest: Vec<&String> = others().collect();
    rest.sort();
    for name in rest {
        if matches!(name.as_str(), "none" | "host") {
            return Err(format!("a container cannot join {name} besides {mode}"));
        }
        list.push(endpoint(name, endpoints.and_then(|m| m.get(name)))?);
    }
    Ok(Mode::Networks(list))
}

/// One `EndpointSettings` body (`Aliases`, `IPAMConfig.IPv4Address`, `MacAddress`); null means defaults.
pub fn endpoint(network: &str, settings: Option<&Value>) -> Result<EndpointPlan, String> {
    let mut plan = EndpointPlan { network: network.to_string(), ..Default::default() };
    let Some(s) = settings.filter(|s| !s.is_null()) else { return Ok(plan) };
    plan.aliases = s
        .get("Aliases")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if let Some(ip) = text(s.get("IPAMConfig").and_then(|i| i.get("IPv4Address"))) {
        plan.ipv4_address = Some(
            ip.parse()
                .map_err(|_| format!("EndpointsConfig.{network}.IPAMConfig.IPv4Address: invalid address {ip:?}"))?,
        );
    }
    plan.mac_address = text(s.get("MacAddress")).map(str::to_string);
    Ok(plan)
}

/// A non-empty trimmed string field.
fn text(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn nets(mode: &Mode) -> Vec<String> {
        match mode {
            Mode::Networks(l) => l.iter().map(|e| e.network.clone()).collect(),
            _ => Vec::new(),
        }
    }

    #[test]
    fn default_modes_go_to_the_bridge() {
        for m in [None, Some(""), Some("default"), Some("bridge")] {
            assert_eq!(nets(&plan(m, None).unwrap_or(Mode::None)), vec!["bridge"], "{m:?}");
        }
        // What the docker CLI sends for a plain `docker run`.
        let cli = json!({"EndpointsConfig": {"default": {"Aliases": ["x"]}}});
        let mode = plan(Some("default"), Some(&cli)).unwrap_or(Mode::None);
        assert_eq!(nets(&mode), vec!["bridge"]);
        assert_eq!(plan(Some("none"), None), Ok(Mode::None));
        assert_eq!(plan(Some("host"), None), Ok(Mode::Host));
        assert_eq!(plan(Some("container:web"), None), Ok(Mode::Container("web".into())));
        assert!(plan(Some("container:"), None).is_err());
    }

    #[test]
    fn endpoints_config_adds_networks_after_the_mode_one() {
        let cfg = json!({"EndpointsConfig": {
            "zeta": null,
            "front": {"Aliases": ["web", "www"], "IPAMConfig": {"IPv4Address": "10.0.0.5"}, "MacAddress": ""},
            "alpha": {}
        }});
        let mode = plan(Some("front"), Some(&cfg)).unwrap_or(Mode::None);
        assert_eq!(nets(&mode), vec!["front", "alpha", "zeta"]);
        let Mode::Networks(list) = mode else { return };
        assert_eq!(list[0].aliases, vec!["web", "www"]);
        assert_eq!(list[0].ipv4_address, Some(Ipv4Addr::new(10, 0, 0, 5)));
        assert_eq!(list[0].mac_address, None);
    }

    #[test]
    fn bad_endpoint_settings_are_named() {
        let cfg = json!({"EndpointsConfig": {"n": {"IPAMConfig": {"IPv4Address": "10.0.0.300"}}}});
        let e = plan(Some("n"), Some(&cfg)).err().unwrap_or_default();
        assert!(e.contains("EndpointsConfig.n.IPAMConfig.IPv4Address"), "{e}");
        let shared = json!({"EndpointsConfig": {"other": {}}});
        assert!(plan(Some("host"), Some(&shared)).is_err());
        assert!(plan(Some("none"), Some(&json!({"EndpointsConfig": {"none": {}}}))).is_ok());
    }
}
