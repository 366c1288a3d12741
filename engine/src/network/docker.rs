//! berth-netd's networks and a container's attachments in Docker's JSON shapes (`docker network inspect`,
//! `NetworkSettings` of `docker inspect` and `docker ps`), plus the predefined `host` and `none` networks,
//! which are modes rather than netd networks.

use berth_netd::api::Network;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::attached::Attached;
use super::plan::{self, Mode};
use crate::runtime::record::{ContainerRecord, Status};

/// Networks Docker always lists that are no netd network.
pub const PREDEFINED_MODES: [&str; 2] = ["host", "none"];

/// A stable id for a predefined mode network (Docker makes a random one per daemon; berth has no record to keep
/// one in, and a hash of the name is as unique).
pub fn predefined_id(name: &str) -> String {
    hex::encode(Sha256::digest(format!("berth-predefined-network:{name}").as_bytes()))
}

/// `host` or `none` by name, id or id prefix.
pub fn predefined(key: &str) -> Option<&'static str> {
    PREDEFINED_MODES.into_iter().find(|n| *n == key || (key.len() >= 3 && predefined_id(n).starts_with(key)))
}

/// Whether a name is taken by Docker's built-in networks (they cannot be created or removed).
pub fn is_builtin(name: &str) -> bool {
    name == plan::DEFAULT_NETWORK || PREDEFINED_MODES.contains(&name)
}

pub fn predefined_json(name: &str) -> Value {
    json!({
        "Name": name,
        "Id": predefined_id(name),
        "Created": "0001-01-01T00:00:00Z",
        "Scope": "local",
        "Driver": if name == "host" { "host" } else { "null" },
        "EnableIPv4": name == "host",
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": null, "Config": []},
        "Internal": false,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": {},
        "Labels": {},
    })
}

/// A netd network as Docker shows it; `name_of` turns a container id into its name.
pub fn network_json(n: &Network, name_of: &dyn Fn(&str) -> Option<String>) -> Value {
    let mut config = serde_json::Map::new();
    config.insert("Subnet".into(), json!(n.subnet.to_string()));
    if n.ip_range != n.subnet {
        config.insert("IPRange".into(), json!(n.ip_range.to_string()));
    }
    config.insert("Gateway".into(), json!(n.gateway.to_string()));
    if !n.aux_addresses.is_empty() {
        let aux: serde_json::Map<String, Value> =
            n.aux_addresses.iter().map(|(k, v)| (k.clone(), json!(v.to_string()))).collect();
        config.insert("AuxiliaryAddresses".into(), Value::Object(aux));
    }
    let containers: serde_json::Map<String, Value> = n
        .endpoints
        .iter()
        .map(|(cid, ep)| {
            (
                cid.clone(),
                json!({
                    "Name": name_of(cid).unwrap_or_else(|| cid.clone()),
                    "EndpointID": ep.id,
                    "MacAddress": ep.mac_address,
                    "IPv4Address": format!("{}/{}", ep.ipv4_address, ep.prefix_len),
                    "IPv6Address": "",
                }),
            )
        })
        .collect();
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": crate::time::rfc3339_parts(n.created, 0),
        "Scope": "local",
        "Driver": if n.driver.is_empty() { "bridge" } else { n.driver.as_str() },
        "EnableIPv4": true,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [Value::Object(config)]},
        "Internal": n.internal,
        "Attachable": n.options.get("berth.attachable").is_some_and(|v| v == "true"),
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

fn empty_endpoint(network_id: &str, aliases: &[String]) -> Value {
    json!({
        "IPAMConfig": null, "Links": null, "Aliases": if aliases.is_empty() { Value::Null } else { json!(aliases) },
        "MacAddress": "", "DriverOpts": null, "NetworkID": network_id, "EndpointID": "", "Gateway": "",
        "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
        "DNSNames": null,
    })
}

/// `NetworkSettings.Networks`: what the container is attached to while it runs, else the networks it will join.
pub fn networks_json(record: &ContainerRecord, attached: Option<&Attached>) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(a) = attached.filter(|a| !a.endpoints.is_empty()) {
        for e in &a.endpoints {
            let ep = &e.endpoint;
            let mut dns_names = super::names(record);
            dns_names.extend(e.aliases.iter().cloned());
            out.insert(
                e.network_name.clone(),
                json!({
                    "IPAMConfig": null, "Links": null,
                    "Aliases": if e.aliases.is_empty() { Value::Null } else { json!(e.aliases) },
                    "MacAddress": ep.mac_address, "DriverOpts": null,
                    "NetworkID": e.network_id, "EndpointID": ep.id,
                    "Gateway": ep.gateway.map(|g| g.to_string()).unwrap_or_default(),
                    "IPAddress": ep.ipv4_address.to_string(), "IPPrefixLen": ep.prefix_len,
                    "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
                    "DNSNames": dns_names,
                }),
            );
        }
        return Value::Object(out);
    }
    match plan::plan(record.host_config.network_mode.as_deref(), record.networking_config.as_ref()) {
        Ok(Mode::None) => {
            out.insert("none".into(), empty_endpoint(&predefined_id("none"), &[]));
        }
        Ok(Mode::Host) => {
            out.insert("host".into(), empty_endpoint(&predefined_id("host"), &[]));
        }
        Ok(Mode::Networks(list)) => {
            for p in list {
                out.insert(p.network.clone(), empty_endpoint("", &p.aliases));
            }
        }
        Ok(Mode::Container(_)) | Err(_) => {}
    }
    Value::Object(out)
}

fn exposed(record: &ContainerRecord) -> Vec<String> {
    record.config.exposed_ports.as_ref().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Fill `NetworkSettings` (and the legacy top-level address fields of the first network) of an inspect body.
pub fn decorate_inspect(body: &mut Value, record: &ContainerRecord, attached: Option<&Attached>) {
    let published = attached.map(|a| a.ports.as_slice()).unwrap_or_default();
    let first = attached.and_then(|a| a.endpoints.first());
    body["NetworkSettings"] = json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": attached.and_then(|a| a.netns.as_ref()).map(|p| p.display().to_string()).unwrap_or_default(),
        "HairpinMode": false,
        "Ports": super::ports::inspect_ports(&exposed(record), published),
        "EndpointID": first.map(|e| e.endpoint.id.clone()).unwrap_or_default(),
        "Gateway": first.and_then(|e| e.endpoint.gateway).map(|g| g.to_string()).unwrap_or_default(),
        "IPAddress": first.map(|e| e.endpoint.ipv4_address.to_string()).unwrap_or_default(),
        "IPPrefixLen": first.map(|e| e.endpoint.prefix_len).unwrap_or(0),
        "MacAddress": first.map(|e| e.endpoint.mac_address.clone()).unwrap_or_default(),
        "Networks": networks_json(record, attached),
    });
}

/// `docker ps`'s `Ports`, `NetworkSettings` and network mode.
pub fn decorate_summary(body: &mut Value, record: &ContainerRecord, attached: Option<&Attached>) {
    let published = attached.map(|a| a.ports.as_slice()).unwrap_or_default();
    // A stopped container shows no ports in `docker ps`, as with Docker.
    let running = matches!(record.state.status, Status::Running | Status::Paused);
    let exposed = if running { exposed(record) } else { Vec::new() };
    body["Ports"] = super::ports::summary_ports(&exposed, published);
    body["NetworkSettings"] = json!({"Networks": networks_json(record, attached)});
    let mode = record.host_config.network_mode.as_deref().filter(|m| !m.is_empty()).unwrap_or("default");
    body["HostConfig"]["NetworkMode"] = json!(mode);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_networks_are_found_by_name_and_id() {
        assert_eq!(predefined("host"), Some("host"));
        assert_eq!(predefined(&predefined_id("none")[..12]), Some("none"));
        assert_eq!(predefined("bridge"), None);
        assert_eq!(predefined("ab"), None, "too short a prefix");
        assert_eq!(predefined_id("host").len(), 64);
        assert!(is_builtin("bridge") && is_builtin("none") && !is_builtin("web"));
        assert_eq!(predefined_json("none")["Driver"], "null");
    }
}
