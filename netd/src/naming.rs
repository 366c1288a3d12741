//! netd's side of the DNS module (`dns/`): which names and servers exist follows the networks and endpoints in
//! the state. One listener per network on its gateway address, port 53 (a resolv.conf cannot name a port);
//! names of every endpoint go into the shared registry; the container's resolv.conf and hosts file are rendered
//! here from the host's resolv.conf and the endpoint's wishes.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::api::{Endpoint, EndpointRequest, Network};
use crate::dns::{self, ClientOptions, DnsServer, HostResolvConf, NetworkInfo, Registry, Upstream};

/// The port containers ask.
const DNS_PORT: u16 = 53;
/// How often the host's resolv.conf is checked for changes (when a query is forwarded).
const RESOLV_RECHECK: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum NamingError {
    #[error("invalid dns server {0:?}: expected an IP address, optionally with a port")]
    BadServer(String),
    #[error("invalid link {0:?}: expected service or service:alias")]
    BadLink(String),
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
}

pub struct Naming {
    registry: Arc<Registry>,
    upstream: Arc<Upstream>,
    host_resolv: PathBuf,
    servers: HashMap<String, DnsServer>,
}

/// `1.2.3.4`, `1.2.3.4:5353`, `::1`, `[::1]:53`.
pub fn parse_server(s: &str) -> Result<SocketAddr, NamingError> {
    let s = s.trim();
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, DNS_PORT));
    }
    s.parse::<SocketAddr>().map_err(|_| NamingError::BadServer(s.to_string()))
}

/// compose `links`: `service` or `service:alias` → (alias, target).
pub fn parse_link(s: &str) -> Result<(String, String), NamingError> {
    let bad = || NamingError::BadLink(s.to_string());
    let (target, alias) = match s.trim().split_once(':') {
        Some((t, a)) => (t.trim(), a.trim()),
        None => (s.trim(), s.trim()),
    };
    if target.is_empty() || alias.is_empty() || target.contains(char::is_whitespace) {
        return Err(bad());
    }
    Ok((alias.to_string(), target.to_string()))
}

/// Check the endpoint's DNS wishes before anything is made.
pub fn validate(req: &EndpointRequest, gateway: IpAddr) -> Result<(), NamingError> {
    for s in &req.dns_servers {
        parse_server(s)?;
    }
    for l in &req.links {
        parse_link(l)?;
    }
    for h in &req.extra_hosts {
        dns::parse_extra_host(h, Some(gateway))?;
    }
    Ok(())
}

impl Naming {
    /// `host_resolv`: the resolv.conf whose nameservers get the names berth does not own (the host's, or a
    /// test's stub) and whose search and options containers inherit.
    pub fn new(host_resolv: &Path) -> Naming {
        Naming {
            registry: Arc::new(Registry::new()),
            upstream: Arc::new(Upstream::from_resolv_conf(host_resolv, DNS_PORT, RESOLV_RECHECK)),
            host_resolv: host_resolv.to_path_buf(),
            servers: HashMap::new(),
        }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Serve a network's names on its gateway (the bridge must have the address already).
    pub async fn add_network(&mut self, net: &Network) -> Result<(), NamingError> {
        self.registry.set_network(NetworkInfo { id: net.id.clone(), name: net.name.clone(), internal: net.internal });
        if !self.servers.contains_key(&net.id) {
            let listen = SocketAddr::new(IpAddr::V4(net.gateway), DNS_PORT);
            let server = DnsServer::start(listen, self.registry.clone(), self.upstream.clone()).await?;
            self.servers.insert(net.id.clone(), server);
        }
        Ok(())
    }

    pub async fn remove_network(&mut self, network_id: &str) {
        self.registry.remove_network(network_id);
        if let Some(server) = self.servers.remove(network_id)
            && let Err(e) = server.stop().await
        {
            tracing::warn!("stopping the DNS listener of {network_id}: {e}");
        }
    }

    /// Publish an endpoint's names (its names, then its aliases; the first is the PTR name).
    pub fn add_endpoint(&self, network_id: &str, ep: &Endpoint) {
        let mut names: Vec<String> = Vec::new();
        for n in ep.names.iter().chain(&ep.aliases) {
            if !n.is_empty() && !names.contains(n) {
                names.push(n.clone());
            }
        }
        self.registry.set_endpoint(dns::Endpoint {
            container_id: ep.container_id.clone(),
            network_id: network_id.to_string(),
            ipv4: Some(ep.ipv4_address),
            ipv6: None,
            names,
        });
        let options = ClientOptions {
            links: ep.links.iter().filter_map(|l| parse_link(l).ok()).collect(),
            dns: ep.dns_servers.iter().filter_map(|s| parse_server(s).ok()).collect(),
        };
        self.registry.set_client_options(&ep.container_id, options);
    }

    /// Withdraw an endpoint; `last` when the container has no other endpoint left (its options go too).
    pub fn remove_endpoint(&self, network_id: &str, container_id: &str, last: bool) {
        if last {
            self.registry.remove_container(container_id);
        } else {
            self.registry.remove_endpoint(container_id, network_id);
        }
    }

    /// The container's resolv.conf: `nameservers` are the gateways of its networks, first joined first.
    pub fn resolv_conf(&self, nameservers: &[IpAddr], req: &EndpointRequest) -> String {
        let host = std::fs::read_to_string(&self.host_resolv).map(|t| HostResolvConf::parse(&t)).unwrap_or_default();
        dns::render_resolv_conf(&host, nameservers, &req.dns_search, &req.dns_options)
    }

    /// The container's /etc/hosts: its address with its hostname, and its `extra_hosts` (`host-gateway` is the
    /// network's gateway, where the host answers).
    pub fn hosts(&self, ep_address: IpAddr, gateway: IpAddr, req: &EndpointRequest) -> String {
        let extra: Vec<dns::ExtraHost> =
            req.extra_hosts.iter().filter_map(|h| dns::parse_extra_host(h, Some(gateway)).ok()).collect();
        let mut hostnames: Vec<String> = Vec::new();
        for n in req.hostname.iter().chain(req.names.first()) {
            if !n.is_empty() && !hostnames.contains(n) {
                hostnames.push(n.clone());
            }
        }
        dns::render_hosts(&[ep_address], &hostnames, &extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn servers_and_links_parse_like_compose() {
        assert_eq!(parse_server("10.0.0.1").ok(), "10.0.0.1:53".parse().ok());
        assert_eq!(parse_server("10.0.0.1:5353").ok(), "10.0.0.1:5353".parse().ok());
        assert_eq!(parse_server("::1").ok(), "[::1]:53".parse().ok());
        assert!(parse_server("dns.example").is_err());
        assert_eq!(parse_link("db").ok(), Some(("db".into(), "db".into())));
        assert_eq!(parse_link("db:database").ok(), Some(("database".into(), "db".into())));
        assert!(parse_link(":x").is_err() && parse_link("").is_err());
    }
}
