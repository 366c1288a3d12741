//! What netd does, behind its API: networks and endpoints, kept in the persisted state and made real in the
//! kernel. One lock serialises every change: each takes a few netlink round trips, and serialising keeps the
//! state, the IPAM allocations and the kernel in step without finer locking.
//!
//! Every change is made so that a failure leaves nothing half-made: kernel objects are created first and
//! deleted again if a later step (including persisting) fails; the state is only changed once everything
//! succeeded.

use std::collections::BTreeMap;

use tokio::sync::Mutex;

use crate::api::{
    DEFAULT_MTU, Endpoint, EndpointRequest, MTU_OPTION, Network, NetworkCreate, PortMapping, Protocol, PublishedPort,
};
use crate::ids;
use crate::ipam::{self, Holders, IpamError, UsedSubnet};
use crate::links::{self, BridgeSpec, HostLinks, LinkError, VethSpec};
use crate::naming::{self, Naming, NamingError};
use crate::nft::{NetworkRules, NftError, NftTable, PortAllocator, PortBinding, PortRequest, Proto, Publish};
use crate::state::{State, StateError, Store};

#[derive(Debug, thiserror::Error)]
pub enum NetdError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Naming(#[from] NamingError),
    #[error(transparent)]
    Nft(#[from] NftError),
    #[error("{0}")]
    Internal(String),
}

impl NetdError {
    /// The HTTP status the API answers with.
    pub fn status(&self) -> u16 {
        match self {
            NetdError::NotFound(_) => 404,
            NetdError::Conflict(_) => 409,
            NetdError::BadRequest(_) => 400,
            NetdError::Ipam(IpamError::Overlaps { .. } | IpamError::Taken { .. }) => 409,
            NetdError::Ipam(IpamError::NoFreeSubnet | IpamError::Exhausted { .. }) => 503,
            NetdError::Ipam(_) => 400,
            NetdError::Link(LinkError::Netns { .. }) => 400,
            NetdError::Naming(NamingError::Dns(crate::dns::DnsError::ExtraHost(..))) => 400,
            NetdError::Naming(NamingError::BadServer(_) | NamingError::BadLink(_)) => 400,
            NetdError::Naming(_) => 500,
            NetdError::Nft(NftError::PortTaken { .. }) => 409,
            NetdError::Nft(NftError::BadPorts(_) | NftError::NotLocal(_)) => 400,
            NetdError::Nft(_) => 500,
            NetdError::Link(_) | NetdError::State(_) | NetdError::Internal(_) => 500,
        }
    }
}

/// Docker's rule for network names.
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn mtu_of(options: &BTreeMap<String, String>) -> Result<u32, NetdError> {
    let Some(v) = options.get(MTU_OPTION) else { return Ok(DEFAULT_MTU) };
    match v.trim().parse::<u32>() {
        Ok(m) if (68..=65535).contains(&m) => Ok(m),
        _ => Err(NetdError::BadRequest(format!("invalid {MTU_OPTION} {v:?}: expected a number from 68 to 65535"))),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub struct Netd {
    inner: Mutex<Inner>,
}

struct Inner {
    state: State,
    store: Store,
    links: HostLinks,
    naming: Naming,
    /// berth's nft table. Its calls run the `nft` binary synchronously (a few ms): they happen under the
    /// service lock anyway, and the two runtime workers keep serving the DNS meanwhile.
    nft: NftTable,
    /// Sockets holding every published host port (see nft/ports.rs).
    ports: PortAllocator,
}

/// netd's settings beyond where its files live.
#[derive(Debug, Clone)]
pub struct Options {
    /// The resolv.conf whose nameservers get the names berth does not own (`/etc/resolv.conf`; tests point it
    /// at a stub on loopback so no query leaves the machine).
    pub resolv_conf: std::path::PathBuf,
    /// The nft table (`inet <name>`) netd owns: `berth`; tests give each netd its own.
    pub nft_table: String,
}

impl Default for Options {
    fn default() -> Options {
        Options { resolv_conf: "/etc/resolv.conf".into(), nft_table: "berth".into() }
    }
}

fn proto(p: Protocol) -> Proto {
    match p {
        Protocol::Tcp => Proto::Tcp,
        Protocol::Udp => Proto::Udp,
    }
}

fn protocol(p: Proto) -> Protocol {
    match p {
        Proto::Tcp => Protocol::Tcp,
        Proto::Udp => Protocol::Udp,
    }
}

fn request_of(m: &PortMapping) -> PortRequest {
    let host_ports = m.host_port.filter(|p| *p != 0).map(|h| (h, m.host_port_end.unwrap_or(h)));
    PortRequest {
        proto: proto(m.protocol),
        host_ip: m.host_ip,
        host_ports,
        container_ports: (m.container_port, m.container_port_end.unwrap_or(m.container_port)),
    }
}

fn network_rules(net: &Network) -> NetworkRules {
    NetworkRules {
        id: net.id.clone(),
        bridge: net.bridge.clone(),
        subnets: vec![ipnet::IpNet::V4(net.subnet)],
        internal: net.internal,
    }
}

fn publishes(ep: &Endpoint) -> Vec<Publish> {
    ep.published
        .iter()
        .map(|p| Publish {
            proto: proto(p.protocol),
            host_ip: p.host_ip,
            host_port: p.host_port,
            container_ip: ep.ipv4_address.into(),
            container_port: p.container_port,
        })
        .collect()
}

impl Inner {
    fn find(&self, key: &str) -> Result<Network, NetdError> {
        self.state.find(key).cloned().ok_or_else(|| NetdError::NotFound(format!("network {key} not found")))
    }

    /// Save `next` and make it current; the caller undoes its kernel changes if this fails.
    /// `durable`: see `Store::save` (networks yes, endpoints and ports no).
    fn commit(&mut self, next: State, durable: bool) -> Result<(), NetdError> {
        self.store.save(&next, durable)?;
        self.state = next;
        Ok(())
    }

    /// DNS servers for a container joining `net`: the gateways of the networks it is already on, then `net`'s.
    fn nameservers_of(&self, container_id: &str, net: &Network) -> Vec<std::net::IpAddr> {
        let mut joined: Vec<(&Network, &Endpoint)> = self
            .state
            .networks
            .values()
            .filter(|n| n.id != net.id)
            .filter_map(|n| n.endpoints.get(container_id).map(|e| (n, e)))
            .collect();
        // eth0's network first: interface names grow in join order.
        joined.sort_by_key(|(_, e)| e.interface.trim_start_matches("eth").parse::<u32>().unwrap_or(u32::MAX));
        joined.iter().map(|(n, _)| n.gateway.into()).chain(std::iter::once(net.gateway.into())).collect()
    }

    async fn make_bridge(&self, net: &Network) -> Result<(), NetdError> {
        let spec =
            BridgeSpec { name: &net.bridge, mtu: net.mtu, gateway: net.gateway, prefix_len: net.subnet.prefix_len() };
        self.links.ensure_bridge(&spec).await?;
        crate::sysctl::bridge(&net.bridge).map_err(|e| NetdError::Internal(e.to_string()))
    }
}

impl Netd {
    /// Open the state and bring the kernel in line with it (see `reconcile`).
    pub async fn start(store: Store, options: Options) -> Result<Netd, NetdError> {
        let state = store.load()?;
        let links = HostLinks::new(store.instance_tag()?)?;
        if let Err(e) = crate::sysctl::host() {
            tracing::warn!("{e}; containers will not reach beyond their bridge");
        }
        let naming = Naming::new(&options.resolv_conf);
        let nft = NftTable::new(&options.nft_table)?;
        nft.ensure()?;
        let netd = Netd { inner: Mutex::new(Inner { state, store, links, naming, nft, ports: PortAllocator::new() }) };
        netd.reconcile().await?;
        netd.serve_names().await;
        Ok(netd)
    }

    /// After a (re)start: every network's DNS listener and every endpoint's names, from the state.
    async fn serve_names(&self) {
        let mut inner = self.inner.lock().await;
        let networks: Vec<Network> = inner.state.networks.values().cloned().collect();
        for net in &networks {
            if let Err(e) = inner.naming.add_network(net).await {
                tracing::warn!(network = %net.name, "no DNS on {}: {e}", net.gateway);
            }
            for ep in net.endpoints.values() {
                inner.naming.add_endpoint(&net.id, ep);
            }
        }
    }

    /// After a restart: recreate missing bridges of known networks, forget endpoints whose namespace is gone
    /// (their veth died with it), and delete every tagged link that no network or endpoint needs.
    pub async fn reconcile(&self) -> Result<(), NetdError> {
        let mut inner = self.inner.lock().await;
        let mut next = inner.state.clone();
        for net in next.networks.values_mut() {
            if let Err(e) = inner.make_bridge(net).await {
                tracing::warn!(network = %net.name, "cannot restore bridge {}: {e}", net.bridge);
            }
            let mut gone = Vec::new();
            for (cid, ep) in &net.endpoints {
                let alive = ep.netns.exists() && inner.links.exists(&ep.host_veth).await?;
                if !alive {
                    gone.push(cid.clone());
                }
            }
            for cid in gone {
                if let Some(ep) = net.endpoints.remove(&cid) {
                    tracing::info!(network = %net.name, container = %cid, "endpoint's namespace is gone; released {}", ep.ipv4_address);
                    inner.links.delete(&ep.host_veth).await?;
                }
            }
        }
        // Bridges recorded as about to be made but never finished: whatever got made is an orphan.
        for name in std::mem::take(&mut next.pending_bridges) {
            if !next.networks.values().any(|n| n.bridge == name) && inner.links.exists(&name).await? {
                tracing::info!("removing half-made bridge {name}");
                inner.links.delete(&name).await?;
            }
        }
        let bridges: Vec<&str> = next.networks.values().map(|n| n.bridge.as_str()).collect();
        let veths: Vec<&str> =
            next.networks.values().flat_map(|n| n.endpoints.values().map(|e| e.host_veth.as_str())).collect();
        for link in inner.links.owned().await? {
            let needed = if link.is_bridge {
                bridges.contains(&link.name.as_str())
            } else {
                veths.contains(&link.name.as_str())
            };
            if !needed {
                tracing::info!("removing orphaned link {}", link.name);
                inner.links.delete(&link.name).await?;
            }
        }
        // Rules: drop those of networks and endpoints nothing needs, then (re)install every needed one, which
        // also repairs a table someone flushed.
        let listing = inner.nft.list()?;
        for id in listing.networks() {
            if !next.networks.contains_key(&id) {
                tracing::info!("removing orphaned rules of network {id}");
                inner.nft.remove_network(&id)?;
            }
        }
        let publishing: Vec<&Endpoint> =
            next.networks.values().flat_map(|n| n.endpoints.values()).filter(|e| !e.published.is_empty()).collect();
        for id in listing.endpoints() {
            if !publishing.iter().any(|e| e.id == id) {
                tracing::info!("removing orphaned published ports of endpoint {id}");
                inner.nft.remove_endpoint(&id)?;
            }
        }
        for net in next.networks.values() {
            inner.nft.set_network(&network_rules(net))?;
        }
        for ep in publishing {
            // Hold the ports again (the sockets died with the last netd); a port a host process took meanwhile is
            // still forwarded by the rules, so it is only reported.
            for p in &ep.published {
                let exact = PortRequest {
                    proto: proto(p.protocol),
                    host_ip: p.host_ip,
                    host_ports: Some((p.host_port, p.host_port)),
                    container_ports: (p.container_port, p.container_port),
                };
                if let Err(e) = inner.ports.reserve(&ep.id, &[exact]) {
                    tracing::warn!(container = %ep.container_id, "cannot hold published port again: {e}");
                }
            }
            inner.nft.set_endpoint(&ep.id, &publishes(ep))?;
        }
        if next != inner.state {
            inner.commit(next, true)?;
        }
        Ok(())
    }

    pub async fn list(&self) -> Vec<Network> {
        self.inner.lock().await.state.networks.values().cloned().collect()
    }

    pub async fn inspect(&self, key: &str) -> Result<Network, NetdError> {
        self.inner.lock().await.find(key)
    }

    pub async fn create_network(&self, req: NetworkCreate) -> Result<Network, NetdError> {
        let name = req.name.trim().to_string();
        if !valid_name(&name) {
            return Err(NetdError::BadRequest(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        let driver = match req.driver.trim() {
            "" | "bridge" => "bridge".to_string(),
            other => return Err(NetdError::BadRequest(format!("driver {other:?} is not supported (only bridge)"))),
        };
        let mtu = mtu_of(&req.options)?;
        let mut inner = self.inner.lock().await;
        if inner.state.networks.values().any(|n| n.name == name) {
            return Err(NetdError::Conflict(format!("network with name {name} already exists")));
        }
        let used: Vec<UsedSubnet> =
            inner.state.networks.values().map(|n| UsedSubnet { subnet: n.subnet, owner: n.name.clone() }).collect();
        let routes = inner.links.routes().await?;
        let plan = ipam::plan(&req.ipam, &used, &routes)?;
        let id = ids::new_id().map_err(|e| NetdError::Internal(format!("cannot make an id: {e}")))?;
        let bridge = ids::bridge_name(&id);
        if inner.links.exists(&bridge).await? {
            return Err(NetdError::Internal(format!("link {bridge} already exists; try again")));
        }
        let net = Network {
            id: id.clone(),
            name,
            driver,
            internal: req.internal,
            created: now(),
            labels: req.labels,
            options: req.options,
            mtu,
            subnet: plan.subnet,
            ip_range: plan.ip_range,
            gateway: plan.gateway,
            aux_addresses: plan.aux_addresses,
            user_subnet: plan.user_subnet,
            bridge,
            endpoints: BTreeMap::new(),
            last_allocated: None,
        };
        let mut pending = inner.state.clone();
        pending.pending_bridges.push(net.bridge.clone());
        inner.commit(pending, false)?;
        let made = async {
            inner.make_bridge(&net).await?;
            inner.nft.set_network(&network_rules(&net))?;
            inner.naming.add_network(&net).await?;
            let mut next = inner.state.clone();
            next.pending_bridges.retain(|b| *b != net.bridge);
            next.networks.insert(id, net.clone());
            inner.commit(next, true)
        }
        .await;
        if let Err(e) = made {
            inner.naming.remove_network(&net.id).await;
            let _ = inner.nft.remove_network(&net.id);
            let _ = inner.links.delete(&net.bridge).await;
            let mut next = inner.state.clone();
            next.pending_bridges.retain(|b| *b != net.bridge);
            let _ = inner.commit(next, false);
            return Err(e);
        }
        tracing::info!(network = %net.name, subnet = %net.subnet, bridge = %net.bridge, "network created");
        Ok(net)
    }

    pub async fn remove_network(&self, key: &str) -> Result<(), NetdError> {
        let mut inner = self.inner.lock().await;
        let net = inner.find(key)?;
        if !net.endpoints.is_empty() {
            let who: Vec<&str> = net.endpoints.keys().map(|c| c.get(..12).unwrap_or(c)).collect();
            return Err(NetdError::Conflict(format!(
                "network {} has active endpoints (containers {})",
                net.name,
                who.join(", ")
            )));
        }
        let mut next = inner.state.clone();
        next.networks.remove(&net.id);
        // Forget first, then delete: a bridge left by a failed delete is an orphan the next start removes, while
        // a record without its bridge would be recreated, which is not what the user asked for.
        inner.commit(next, true)?;
        inner.naming.remove_network(&net.id).await;
        inner.nft.remove_network(&net.id)?;
        inner.links.delete(&net.bridge).await?;
        tracing::info!(network = %net.name, "network removed");
        Ok(())
    }

    pub async fn connect(&self, key: &str, req: EndpointRequest) -> Result<Endpoint, NetdError> {
        let container_id = req.container_id.trim().to_string();
        if container_id.is_empty() {
            return Err(NetdError::BadRequest("container_id is empty".into()));
        }
        if !req.netns.is_absolute() || !req.netns.exists() {
            return Err(NetdError::BadRequest(format!("network namespace {} does not exist", req.netns.display())));
        }
        let mut inner = self.inner.lock().await;
        let net = inner.find(key)?;
        if net.endpoints.contains_key(&container_id) {
            return Err(NetdError::Conflict(format!(
                "container {container_id} is already connected to network {}",
                net.name
            )));
        }
        let mut holders = Holders::new(net.gateway, &net.aux_addresses);
        for (cid, ep) in &net.endpoints {
            holders.hold(ep.ipv4_address, format!("container {}", cid.get(..12).unwrap_or(cid)));
        }
        let address =
            ipam::allocate(&net.name, &net.subnet, &net.ip_range, &holders, req.ipv4_address, net.last_allocated)?;
        naming::validate(&req, std::net::IpAddr::V4(net.gateway))?;
        let mac = match req.mac_address.as_deref().map(str::trim).filter(|m| !m.is_empty()) {
            Some(m) => links::parse_mac(m).ok_or_else(|| {
                NetdError::BadRequest(format!("invalid mac_address {m:?}: expected aa:bb:cc:dd:ee:ff (unicast)"))
            })?,
            None => links::mac_for(address),
        };
        let id = ids::new_id().map_err(|e| NetdError::Internal(format!("cannot make an id: {e}")))?;
        let host_veth = ids::veth_name(&id);
        let interface = links::next_eth(&links::names_in(&req.netns).await?);
        let gateway = (!net.internal).then_some(net.gateway);
        let spec = VethSpec {
            host_name: &host_veth,
            bridge: &net.bridge,
            netns: &req.netns,
            peer_name: &interface,
            mtu: net.mtu,
            mac,
            address,
            prefix_len: net.subnet.prefix_len(),
            default_gateway: gateway,
        };
        inner.links.create_endpoint(&spec).await?;
        let endpoint = Endpoint {
            id,
            container_id: container_id.clone(),
            netns: req.netns.clone(),
            interface,
            host_veth: host_veth.clone(),
            ipv4_address: address,
            prefix_len: net.subnet.prefix_len(),
            mac_address: links::format_mac(&mac),
            gateway,
            dns_server: net.gateway,
            resolv_conf: inner.naming.resolv_conf(&inner.nameservers_of(&container_id, &net), &req),
            hosts: inner.naming.hosts(address.into(), net.gateway.into(), &req),
            names: req.names,
            aliases: req.aliases,
            dns_servers: req.dns_servers,
            links: req.links,
            published: Vec::new(),
        };
        let mut next = inner.state.clone();
        if let Some(n) = next.networks.get_mut(&net.id) {
            n.endpoints.insert(container_id, endpoint.clone());
            if req.ipv4_address.is_none() {
                n.last_allocated = Some(address);
            }
        }
        if let Err(e) = inner.commit(next, false) {
            let _ = inner.links.delete(&host_veth).await;
            return Err(e);
        }
        inner.naming.add_endpoint(&net.id, &endpoint);
        tracing::info!(network = %net.name, container = %endpoint.container_id, address = %address, "endpoint attached");
        Ok(endpoint)
    }

    pub async fn disconnect(&self, key: &str, container_id: &str) -> Result<(), NetdError> {
        let mut inner = self.inner.lock().await;
        let net = inner.find(key)?;
        let Some(ep) = net.endpoints.get(container_id).cloned() else {
            return Err(NetdError::NotFound(format!(
                "container {container_id} is not connected to network {}",
                net.name
            )));
        };
        let mut next = inner.state.clone();
        if let Some(n) = next.networks.get_mut(&net.id) {
            n.endpoints.remove(container_id);
        }
        inner.commit(next, false)?;
        let last = !inner.state.networks.values().any(|n| n.endpoints.contains_key(container_id));
        inner.naming.remove_endpoint(&net.id, container_id, last);
        if !ep.published.is_empty() {
            inner.nft.remove_endpoint(&ep.id)?;
            inner.ports.release(&ep.id);
        }
        // Deleting one end removes the pair; if the namespace died first the pair is gone already.
        inner.links.delete(&ep.host_veth).await?;
        tracing::info!(network = %net.name, container = %container_id, "endpoint detached; released {}", ep.ipv4_address);
        Ok(())
    }

    /// Forward host ports to the container's address on `network`. All or nothing: the ports are held, the rules
    /// installed and the state saved, or none of it.
    pub async fn publish(
        &self,
        network: &str,
        container_id: &str,
        ports: &[PortMapping],
    ) -> Result<Vec<PublishedPort>, NetdError> {
        let mut inner = self.inner.lock().await;
        let net = inner.find(network)?;
        let Some(ep) = net.endpoints.get(container_id).cloned() else {
            return Err(NetdError::NotFound(format!(
                "container {container_id} is not connected to network {}",
                net.name
            )));
        };
        if !ep.published.is_empty() {
            return Err(NetdError::Conflict(format!(
                "container {container_id} already publishes ports on network {}; unpublish first",
                net.name
            )));
        }
        if net.internal && !ports.is_empty() {
            return Err(NetdError::BadRequest(format!(
                "network {} is internal: its containers cannot publish ports",
                net.name
            )));
        }
        let requests: Vec<PortRequest> = ports.iter().map(request_of).collect();
        let bindings: Vec<PortBinding> = inner.ports.reserve(&ep.id, &requests)?;
        let published: Vec<PublishedPort> = bindings
            .iter()
            .map(|b| PublishedPort {
                protocol: protocol(b.proto),
                host_ip: b.host_ip,
                host_port: b.host_port,
                container_port: b.container_port,
            })
            .collect();
        let with_ports = Endpoint { published: published.clone(), ..ep.clone() };
        let done = async {
            inner.nft.set_endpoint(&ep.id, &publishes(&with_ports))?;
            let mut next = inner.state.clone();
            if let Some(e) = next.networks.get_mut(&net.id).and_then(|n| n.endpoints.get_mut(container_id)) {
                e.published = published.clone();
            }
            inner.commit(next, false)
        }
        .await;
        if let Err(e) = done {
            let _ = inner.nft.remove_endpoint(&ep.id);
            inner.ports.release(&ep.id);
            return Err(e);
        }
        tracing::info!(network = %net.name, container = %container_id, ports = published.len(), "ports published");
        Ok(published)
    }

    /// Stop forwarding every port the container publishes, on every network.
    pub async fn unpublish(&self, container_id: &str) -> Result<(), NetdError> {
        let mut inner = self.inner.lock().await;
        let mut next = inner.state.clone();
        let mut dropped: Vec<String> = Vec::new();
        for n in next.networks.values_mut() {
            if let Some(e) = n.endpoints.get_mut(container_id)
                && !e.published.is_empty()
            {
                e.published.clear();
                dropped.push(e.id.clone());
            }
        }
        if dropped.is_empty() {
            return Ok(());
        }
        // Save first: a rule left by a failure below is an orphan the next start removes.
        inner.commit(next, false)?;
        for id in &dropped {
            inner.ports.release(id);
            inner.nft.remove_endpoint(id)?;
        }
        tracing::info!(container = %container_id, "ports unpublished");
        Ok(())
    }

    /// The address an endpoint has on a network (for port publishing).
    pub async fn endpoint(&self, key: &str, container_id: &str) -> Result<(Network, Endpoint), NetdError> {
        let inner = self.inner.lock().await;
        let net = inner.find(key)?;
        let ep = net.endpoints.get(container_id).cloned().ok_or_else(|| {
            NetdError::NotFound(format!("container {container_id} is not connected to network {}", net.name))
        })?;
        Ok((net, ep))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_names_follow_docker() {
        for ok in ["web", "proj_default", "a.b-c", "0x"] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "-x", "_x", "a b", "a/b", "é"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn mtu_option_is_validated() {
        let mut o = BTreeMap::new();
        assert_eq!(mtu_of(&o).ok(), Some(1500));
        o.insert(MTU_OPTION.to_string(), "1400".to_string());
        assert_eq!(mtu_of(&o).ok(), Some(1400));
        o.insert(MTU_OPTION.to_string(), "12".to_string());
        assert!(mtu_of(&o).is_err());
        o.insert(MTU_OPTION.to_string(), "big".to_string());
        assert!(mtu_of(&o).is_err());
    }
}
