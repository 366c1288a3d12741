//! The kernel side of networks and endpoints, through rtnetlink: bridges with their gateway address, veth pairs
//! whose peer is created straight inside the container's network namespace, addresses, routes.
//!
//! Configuring the inside of a namespace needs a netlink socket opened *in* that namespace. netd does that on a
//! short-lived OS thread that `setns`es into it (`in_netns`): setns changes only the calling thread, and a fresh
//! thread that exits afterwards can never leave a tokio worker stuck in a container's namespace. The veth itself
//! is created from the host with the peer's `IFLA_NET_NS_FD`, like `ip link add … peer name eth0 netns X`, so the
//! peer never exists under a host name (where `eth0` would clash).

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};

use futures_util::TryStreamExt as _;
use ipnet::Ipv4Net;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const ENOENT: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("cannot open a netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("{op}: {source}")]
    Netlink { op: String, source: std::io::Error },
    #[error("network namespace {path}: {reason}")]
    Netns { path: PathBuf, reason: String },
    #[error("link {0} does not exist")]
    Missing(String),
    #[error(transparent)]
    Setting(#[from] crate::sysctl::SysctlError),
}

/// Turn rtnetlink's error into an io::Error so callers can match on errno.
fn io_of(e: rtnetlink::Error) -> std::io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.to_io(),
        other => std::io::Error::other(other.to_string()),
    }
}

fn nl(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> LinkError {
    let op = op.into();
    move |e| LinkError::Netlink { op, source: io_of(e) }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => Some(m.raw_code().abs()),
        _ => None,
    }
}

/// A netlink connection in the current thread's namespace.
fn connect() -> Result<Handle, LinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(LinkError::Socket)?;
    tokio::spawn(conn);
    Ok(handle)
}

/// The host side: bridges and veths, tagged with this netd's alias so they can be told from anyone else's.
#[derive(Clone)]
pub struct HostLinks {
    handle: Handle,
    tag: String,
}

/// A link netd found with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedLink {
    pub name: String,
    pub is_bridge: bool,
}

/// What a bridge needs.
#[derive(Debug, Clone)]
pub struct BridgeSpec<'a> {
    pub name: &'a str,
    pub mtu: u32,
    pub gateway: Ipv4Addr,
    pub prefix_len: u8,
}

/// What an endpoint needs.
#[derive(Debug, Clone)]
pub struct VethSpec<'a> {
    pub host_name: &'a str,
    pub bridge: &'a str,
    pub netns: &'a Path,
    /// Name inside the namespace (`eth0`…).
    pub peer_name: &'a str,
    pub mtu: u32,
    pub mac: [u8; 6],
    pub address: Ipv4Addr,
    pub prefix_len: u8,
    /// Default route through this gateway, unless the namespace already has one.
    pub default_gateway: Option<Ipv4Addr>,
}

impl HostLinks {
    /// Must be called inside a tokio runtime (the netlink connection runs as a task).
    pub fn new(tag: String) -> Result<HostLinks, LinkError> {
        Ok(HostLinks { handle: connect()?, tag })
    }

    pub fn tag(&self) -> &str {
        &self.tag
    }

    async fn get(&self, name: &str) -> Result<Option<LinkMessage>, LinkError> {
        let mut links = self.handle.link().get().match_name(name.to_string()).execute();
        match links.try_next().await {
            Ok(link) => Ok(link),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(nl(format!("looking up link {name}"))(e)),
        }
    }

    pub async fn index(&self, name: &str) -> Result<Option<u32>, LinkError> {
        Ok(self.get(name).await?.map(|l| l.header.index))
    }

    pub async fn exists(&self, name: &str) -> Result<bool, LinkError> {
        Ok(self.get(name).await?.is_some())
    }

    async fn tag_link(&self, name: &str, index: u32) -> Result<(), LinkError> {
        let msg = LinkUnspec::new_with_index(index).alias(self.tag.clone()).build();
        self.handle.link().set(msg).execute().await.map_err(nl(format!("tagging {name}")))
    }

    /// Create the bridge if it is missing, give it the gateway address and bring it up. Idempotent, so a restart
    /// repairs a bridge someone deleted.
    pub async fn ensure_bridge(&self, spec: &BridgeSpec<'_>) -> Result<(), LinkError> {
        let index = match self.index(spec.name).await? {
            Some(i) => i,
            None => {
                let msg = LinkBridge::new(spec.name).mtu(spec.mtu).build();
                self.handle.link().add(msg).execute().await.map_err(nl(format!("creating bridge {}", spec.name)))?;
                self.index(spec.name).await?.ok_or_else(|| LinkError::Missing(spec.name.to_string()))?
            }
        };
        // The kernel does not take an alias at creation (IFLA_IFALIAS is a setlink attribute).
        self.tag_link(spec.name, index).await?;
        let add = self.handle.address().add(index, IpAddr::V4(spec.gateway), spec.prefix_len).execute().await;
        match add {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(EEXIST) => {}
            Err(e) => return Err(nl(format!("adding {}/{} to {}", spec.gateway, spec.prefix_len, spec.name))(e)),
        }
        let up = LinkUnspec::new_with_index(index).up().build();
        self.handle.link().set(up).execute().await.map_err(nl(format!("bringing {} up", spec.name)))
    }

    /// Delete a link; one that is already gone is fine.
    pub async fn delete(&self, name: &str) -> Result<(), LinkError> {
        let Some(index) = self.index(name).await? else { return Ok(()) };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if matches!(errno(&e), Some(ENODEV) | Some(ENOENT)) => Ok(()),
            Err(e) => Err(nl(format!("deleting {name}"))(e)),
        }
    }

    /// Every link that carries this netd's tag.
    pub async fn owned(&self) -> Result<Vec<OwnedLink>, LinkError> {
        let mut links = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(link) = links.try_next().await.map_err(nl("listing links"))? {
            let mut name = None;
            let mut alias = None;
            let mut is_bridge = false;
            for attr in &link.attributes {
                match attr {
                    LinkAttribute::IfName(n) => name = Some(n.clone()),
                    LinkAttribute::IfAlias(a) => alias = Some(a.clone()),
                    LinkAttribute::LinkInfo(infos) => {
                        is_bridge |= infos.iter().any(|i| matches!(i, LinkInfo::Kind(InfoKind::Bridge)));
                    }
                    _ => {}
                }
            }
            if let (Some(name), Some(alias)) = (name, alias)
                && alias == self.tag
            {
                out.push(OwnedLink { name, is_bridge });
            }
        }
        Ok(out)
    }

    /// The IPv4 destinations routed on the host (every table), so automatic subnets avoid them.
    pub async fn routes(&self) -> Result<Vec<Ipv4Net>, LinkError> {
        let mut routes = self.handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
        let mut out = Vec::new();
        while let Some(route) = routes.try_next().await.map_err(nl("listing routes"))? {
            let dest = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(addr)) => Some(*addr),
                _ => None,
            });
            let len = route.header.destination_prefix_length;
            if let Some(net) = dest.and_then(|d| Ipv4Net::new(d, len).ok()) {
                out.push(net.trunc());
            }
        }
        Ok(out)
    }

    /// Create the endpoint's veth pair and configure its inside. On failure nothing is left: the pair is deleted
    /// (which removes both ends).
    pub async fn create_endpoint(&self, spec: &VethSpec<'_>) -> Result<(), LinkError> {
        let netns = std::fs::File::open(spec.netns)
            .map_err(|e| LinkError::Netns { path: spec.netns.to_path_buf(), reason: e.to_string() })?;
        let bridge = self.index(spec.bridge).await?.ok_or_else(|| LinkError::Missing(spec.bridge.to_string()))?;
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(spec.peer_name.to_string())
            .mtu(spec.mtu)
            .address(spec.mac.to_vec())
            .setns_by_fd(netns.as_raw_fd())
            .build();
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(spec.host_name.to_string())
            .mtu(spec.mtu)
            .controller(bridge)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        self.handle.link().add(msg).execute().await.map_err(nl(format!("creating veth {}", spec.host_name)))?;
        drop(netns);
        let result = async {
            let index =
                self.index(spec.host_name).await?.ok_or_else(|| LinkError::Missing(spec.host_name.to_string()))?;
            self.tag_link(spec.host_name, index).await?;
            crate::sysctl::hairpin(spec.host_name)?;
            let inside = InsideSpec {
                name: spec.peer_name.to_string(),
                address: spec.address,
                prefix_len: spec.prefix_len,
                default_gateway: spec.default_gateway,
            };
            in_netns(spec.netns, move |h| configure_inside(h, inside)).await
        }
        .await;
        if result.is_err() {
            let _ = self.delete(spec.host_name).await;
        }
        result
    }
}

struct InsideSpec {
    name: String,
    address: Ipv4Addr,
    prefix_len: u8,
    default_gateway: Option<Ipv4Addr>,
}

async fn index_in(h: &Handle, name: &str) -> Result<u32, LinkError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(l)) => Ok(l.header.index),
        Ok(None) => Err(LinkError::Missing(name.to_string())),
        Err(e) if errno(&e) == Some(ENODEV) => Err(LinkError::Missing(name.to_string())),
        Err(e) => Err(nl(format!("looking up {name}"))(e)),
    }
}

async fn configure_inside(h: Handle, spec: InsideSpec) -> Result<(), LinkError> {
    let lo = index_in(&h, "lo").await?;
    h.link().set(LinkUnspec::new_with_index(lo).up().build()).execute().await.map_err(nl("bringing lo up"))?;
    let index = index_in(&h, &spec.name).await?;
    h.address()
        .add(index, IpAddr::V4(spec.address), spec.prefix_len)
        .execute()
        .await
        .map_err(nl(format!("adding {}/{} to {}", spec.address, spec.prefix_len, spec.name)))?;
    h.link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl(format!("bringing {} up", spec.name)))?;
    if let Some(gw) = spec.default_gateway {
        // A container on several networks keeps the default route of the first one it joined, as with Docker.
        let mut routes = h.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
        let mut has_default = false;
        while let Some(r) = routes.try_next().await.map_err(nl("listing routes"))? {
            if r.header.destination_prefix_length == 0 && r.header.table == 254 {
                has_default = true;
            }
        }
        if !has_default {
            let route = RouteMessageBuilder::<Ipv4Addr>::new().gateway(gw).output_interface(index).build();
            h.route().add(route).execute().await.map_err(nl(format!("adding the default route via {gw}")))?;
        }
    }
    Ok(())
}

/// Interface names already used inside a namespace.
pub async fn names_in(netns: &Path) -> Result<Vec<String>, LinkError> {
    in_netns(netns, |h| async move {
        let mut links = h.link().get().execute();
        let mut names = Vec::new();
        while let Some(link) = links.try_next().await.map_err(nl("listing links"))? {
            names.extend(link.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            }));
        }
        Ok(names)
    })
    .await
}

/// The first `ethN` not yet used.
pub fn next_eth(used: &[String]) -> String {
    (0..).map(|i| format!("eth{i}")).find(|n| !used.contains(n)).unwrap_or_else(|| "eth0".into())
}

/// Run `f` with a netlink handle inside the namespace `netns` (see the module doc for why a thread).
pub async fn in_netns<T, F, Fut>(netns: &Path, f: F) -> Result<T, LinkError>
where
    T: Send + 'static,
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: Future<Output = Result<T, LinkError>>,
{
    let path = netns.to_path_buf();
    let err = |reason: String| LinkError::Netns { path: netns.to_path_buf(), reason };
    let file = std::fs::File::open(netns).map_err(|e| err(e.to_string()))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("netns".into())
        .spawn(move || {
            let run = || -> Result<T, LinkError> {
                let bad = |reason: String| LinkError::Netns { path: path.clone(), reason };
                nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| bad(format!("setns: {e}")))?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                    .map_err(|e| bad(format!("runtime: {e}")))?;
                rt.block_on(async move { f(connect()?).await })
            };
            let _ = tx.send(run());
        })
        .map_err(|e| err(format!("cannot start a thread: {e}")))?;
    rx.await.map_err(|_| err("the namespace thread died".into()))?
}

/// Docker's MAC for an address: 02:42 followed by the four bytes of the IPv4 address.
pub fn mac_for(addr: Ipv4Addr) -> [u8; 6] {
    let o = addr.octets();
    [0x02, 0x42, o[0], o[1], o[2], o[3]]
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Parse `aa:bb:cc:dd:ee:ff`; refuse multicast addresses, which no interface may have.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<&str> = s.trim().split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (slot, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return None;
        }
        *slot = u8::from_str_radix(part, 16).ok()?;
    }
    (mac[0] & 1 == 0 && mac != [0; 6]).then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_follow_docker_and_bad_ones_are_refused() {
        let mac = mac_for(Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(format_mac(&mac), "02:42:ac:11:00:02");
        assert_eq!(parse_mac("02:42:ac:11:00:02"), Some(mac));
        for bad in
            ["", "02:42:ac:11:00", "02:42:ac:11:00:zz", "01:00:5e:00:00:01", "00:00:00:00:00:00", "2:42:ac:11:0:2"]
        {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }

    #[test]
    fn next_eth_takes_the_first_free_name() {
        assert_eq!(next_eth(&["lo".into()]), "eth0");
        assert_eq!(next_eth(&["lo".into(), "eth0".into(), "eth2".into()]), "eth1");
    }
}
