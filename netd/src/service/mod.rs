//! What netd does, behind its API: networks and endpoints, kept in the persisted state and made real in the
//! kernel. One lock serialises every change: each takes a few netlink round trips, and serialising keeps the
//! state, the IPAM allocations and the kernel in step without finer locking.
//!
//! Every change is made so that a failure leaves nothing half-made: kernel objects are created first and
//! deleted again if a later step (including persisting) fails; the state is only changed once everything
//! succeeded.
//!
//! The parts: networks here, `endpoints.rs` (connect, disconnect), `publish.rs` (ports), `reconcile.rs` (after a
//! start).

mod endpoints;
mod publish;
mod reconcile;

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

fn network_rules(net: &Network) -> NetworkRules {
    NetworkRules {
        id: net.id.clone(),
        bridge: net.bridge.clone(),
        subnets: vec![ipnet::IpNet::V4(net.subnet)],
        internal: net.internal,
    }
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
