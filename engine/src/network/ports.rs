//! `HostConfig.PortBindings` (`{"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}`) to berth-netd's
//! port mappings, and what was published back to Docker's shapes (`NetworkSettings.Ports`, `docker ps`'s
//! `Ports`).

use std::collections::BTreeMap;
use std::net::IpAddr;

use berth_netd::api::{PortMapping, Protocol, PublishedPort};
use serde_json::{Value, json};

/// A port key: `80/tcp`, `53/udp`, `8000-8010/tcp`, `80` (tcp).
fn parse_key(key: &str) -> Result<(u16, Option<u16>, Protocol), String> {
    let (ports, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let protocol = match proto.to_ascii_lowercase().as_str() {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        other => return Err(format!("PortBindings: unsupported protocol {other:?} in {key:?}")),
    };
    let (start, end) = parse_range(ports).map_err(|e| format!("PortBindings: {key:?}: {e}"))?;
    if start == 0 {
        return Err(format!("PortBindings: {key:?}: the container port cannot be 0"));
    }
    Ok((start, end, protocol))
}

/// `8080` or `8080-8090`.
fn parse_range(s: &str) -> Result<(u16, Option<u16>), String> {
    let port = |p: &str| p.trim().parse::<u16>().map_err(|_| format!("invalid port {p:?}"));
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(format!("invalid port range {s:?}"));
            }
            Ok((a, Some(b)))
        }
        None => Ok((port(s)?, None)),
    }
}

/// The mappings to publish; empty without bindings.
pub fn mappings(port_bindings: Option<&Value>) -> Result<Vec<PortMapping>, String> {
    let Some(map) = port_bindings.and_then(Value::as_object) else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for (key, bindings) in map {
        let (container_port, container_port_end, protocol) = parse_key(key)?;
        // `"80/tcp": null` or `[]` still publishes once, on an ephemeral port (as Docker does).
        let list = bindings.as_array().cloned().filter(|l| !l.is_empty()).unwrap_or_else(|| vec![json!({})]);
        for b in list {
            let text = |k: &str| b.get(k).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
            let host_ip = match text("HostIp") {
                Some(ip) => Some(
                    ip.trim_start_matches('[')
                        .trim_end_matches(']')
                        .parse::<IpAddr>()
                        .map_err(|_| format!("PortBindings: {key:?}: invalid HostIp {ip:?}"))?,
                ),
                None => None,
            };
            let (host_port, host_port_end) = match text("HostPort") {
                Some(p) => parse_range(p).map_err(|e| format!("PortBindings: {key:?}: HostPort: {e}"))?,
                None => (0, None),
            };
            out.push(PortMapping {
                protocol,
                host_ip,
                host_port: (host_port != 0).then_some(host_port),
                host_port_end,
                container_port,
                container_port_end,
            });
        }
    }
    Ok(out)
}

fn proto(p: Protocol) -> &'static str {
    match p {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

fn host_ip(p: &PublishedPort) -> String {
    p.host_ip.map(|ip| ip.to_string()).unwrap_or_else(|| "0.0.0.0".into())
}

/// `NetworkSettings.Ports`: every exposed or published port; unpublished ones map to null, as Docker shows them.
pub fn inspect_ports(exposed: &[String], published: &[PublishedPort]) -> Value {
    let mut out: BTreeMap<String, Value> = exposed.iter().map(|k| (normalize_key(k), Value::Null)).collect();
    for p in published {
        let entry = out.entry(format!("{}/{}", p.container_port, proto(p.protocol))).or_insert(Value::Null);
        if !entry.is_array() {
            *entry = json!([]);
        }
        if let Some(list) = entry.as_array_mut() {
            list.push(json!({"HostIp": host_ip(p), "HostPort": p.host_port.to_string()}));
        }
    }
    json!(out)
}

/// `docker ps`'s `Ports`: one entry per published port, and exposed ports without a host side.
pub fn summary_ports(exposed: &[String], published: &[PublishedPort]) -> Value {
    let mut out: Vec<Value> = published
        .iter()
        .map(|p| json!({"IP": host_ip(p), "PrivatePort": p.container_port, "PublicPort": p.host_port, "Type": proto(p.protocol)}))
        .collect();
    for key in exposed {
        let Ok((port, _, protocol)) = parse_key(key) else { continue };
        if !published.iter().any(|p| p.container_port == port && p.protocol == protocol) {
            out.push(json!({"PrivatePort": port, "Type": proto(protocol)}));
        }
    }
    Value::Array(out)
}

fn normalize_key(k: &str) -> String {
    if k.contains('/') { k.to_string() } else { format!("{k}/tcp") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cli_bindings_become_mappings() {
        let b = json!({
            "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
            "53/udp": [{"HostIp": "", "HostPort": "5353"}],
            "9000-9001/tcp": [{"HostIp": "", "HostPort": "19000-19001"}],
            "443": null
        });
        let m = mappings(Some(&b)).unwrap_or_default();
        assert_eq!(m.len(), 4);
        let by_port = |p: u16| m.iter().find(|x| x.container_port == p).cloned().unwrap_or_default();
        assert_eq!(by_port(80).host_ip, "127.0.0.1".parse().ok());
        assert_eq!(by_port(80).host_port, None, "empty HostPort: ephemeral");
        assert_eq!(by_port(53).protocol, Protocol::Udp);
        assert_eq!(by_port(53).host_port, Some(5353));
        assert_eq!((by_port(9000).host_port_end, by_port(9000).container_port_end), (Some(19001), Some(9001)));
        assert_eq!(by_port(443).host_port, None);
        assert!(mappings(None).unwrap_or_default().is_empty());
    }

    #[test]
    fn bad_bindings_are_named() {
        for bad in [
            json!({"80/sctp": []}),
            json!({"x/tcp": []}),
            json!({"0/tcp": []}),
            json!({"80/tcp": [{"HostIp": "localhost"}]}),
            json!({"80/tcp": [{"HostPort": "90-80"}]}),
        ] {
            let e = mappings(Some(&bad)).err().unwrap_or_default();
            assert!(e.starts_with("PortBindings:"), "{bad}: {e}");
        }
    }

    #[test]
    fn published_ports_in_docker_shapes() {
        let published = vec![PublishedPort {
            protocol: Protocol::Tcp,
            host_ip: "127.0.0.1".parse().ok(),
            host_port: 32768,
            container_port: 80,
        }];
        let exposed = vec!["80/tcp".to_string(), "443/tcp".to_string()];
        assert_eq!(
            inspect_ports(&exposed, &published),
            json!({"443/tcp": null, "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "32768"}]})
        );
        assert_eq!(
            summary_ports(&exposed, &published),
            json!([{"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 32768, "Type": "tcp"},
                   {"PrivatePort": 443, "Type": "tcp"}])
        );
    }
}
