//! The types berth-netd's API speaks, shared by the daemon and the client. Field names follow Docker's network
//! vocabulary (subnet, ip_range, gateway, aux_addresses) so berthd maps its `/networks` API onto them one to one.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

/// Docker's option key for a bridge's MTU (`docker network create -o com.docker.network.driver.mtu=1400`).
pub const MTU_OPTION: &str = "com.docker.network.driver.mtu";
/// The MTU when none is asked for (Docker's default).
pub const DEFAULT_MTU: u32 = 1500;

/// `POST /networks`: what to create. Only the `bridge` driver exists.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkCreate {
    pub name: String,
    /// `bridge` (or empty, meaning bridge).
    pub driver: String,
    /// No egress and no published ports: containers reach each other only.
    pub internal: bool,
    pub ipam: IpamRequest,
    pub labels: BTreeMap<String, String>,
    /// Driver options; `com.docker.network.driver.mtu` is honoured.
    pub options: BTreeMap<String, String>,
}

/// The user's IPAM wishes, as strings because they come straight from compose files and the Docker API:
/// netd validates them and answers with a clear error.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpamRequest {
    /// CIDR; empty: the next free subnet of Docker's default pools.
    pub subnet: Option<String>,
    /// CIDR inside the subnet that automatic addresses come from.
    pub ip_range: Option<String>,
    pub gateway: Option<String>,
    /// Addresses that are never handed out (name → address).
    pub aux_addresses: BTreeMap<String, String>,
}

/// A network as netd keeps it (and as `inspect`/`list` return it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// 64 hex characters.
    pub id: String,
    pub name: String,
    pub driver: String,
    pub internal: bool,
    /// Unix seconds.
    pub created: i64,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub mtu: u32,
    pub subnet: Ipv4Net,
    /// Where automatic addresses come from (the subnet itself when no ip_range was given).
    pub ip_range: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    /// Whether the user chose the subnet (Docker shows the IPAM config only then).
    pub user_subnet: bool,
    /// Host-side bridge: `br-<12 hex of id>`.
    pub bridge: String,
    /// Endpoints by container id.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// The last address handed out automatically: the next search starts after it, so a released address is
    /// not reused at once (peers may still have it in their ARP caches), as Docker's IPAM does.
    #[serde(default)]
    pub last_allocated: Option<Ipv4Addr>,
}

/// `POST /networks/{id}/connect`: attach a container's network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointRequest {
    pub container_id: String,
    /// A file that names the container's network namespace: `/proc/<pid>/ns/net` or a bind mount of it.
    pub netns: PathBuf,
    /// Names the container answers to on this network (container name, hostname, service name).
    pub names: Vec<String>,
    /// Network-scoped aliases.
    pub aliases: Vec<String>,
    pub ipv4_address: Option<Ipv4Addr>,
    /// `aa:bb:cc:dd:ee:ff`; default: 02:42 followed by the IPv4 address, as Docker does.
    pub mac_address: Option<String>,
    /// The container's `dns`, `dns_search` and `dns_opt`, written into its resolv.conf.
    pub dns_servers: Vec<String>,
    pub dns_search: Vec<String>,
    pub dns_options: Vec<String>,
    /// compose `links` (`service` or `service:alias`): names only this container resolves.
    pub links: Vec<String>,
    /// Written into the hosts file with the container's address (default: its first name).
    pub hostname: Option<String>,
    /// compose `extra_hosts` (`name:ip`, `name=ip`, `name:host-gateway`), for the hosts file.
    pub extra_hosts: Vec<String>,
}

/// An attached endpoint: what the container got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// 64 hex characters.
    pub id: String,
    pub container_id: String,
    pub netns: PathBuf,
    /// The interface inside the container: `eth0`, `eth1`, …
    pub interface: String,
    /// The host side of the veth pair: `veth<10 hex of the endpoint id>`.
    pub host_veth: String,
    pub ipv4_address: Ipv4Addr,
    pub prefix_len: u8,
    pub mac_address: String,
    /// None on internal networks (no default route through them).
    pub gateway: Option<Ipv4Addr>,
    /// The network's DNS server (its gateway address).
    pub dns_server: Ipv4Addr,
    /// What the container's /etc/resolv.conf should hold: the DNS servers of every network it is on (this one
    /// last), its search domains and options.
    pub resolv_conf: String,
    /// What the container's /etc/hosts should hold.
    #[serde(default)]
    pub hosts: String,
    pub names: Vec<String>,
    pub aliases: Vec<String>,
    /// The container's own upstream servers (`dns`), for the DNS server to forward its queries to.
    #[serde(default)]
    pub dns_servers: Vec<String>,
    /// Its `links`, for the DNS server.
    #[serde(default)]
    pub links: Vec<String>,
    /// Host ports forwarded to this endpoint.
    #[serde(default)]
    pub published: Vec<PublishedPort>,
}

/// `POST /networks/{id}/disconnect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndpointRemove {
    pub container_id: String,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
}

/// `POST /ports/publish`: forward host ports to a container's address on one of its networks. A container
/// publishes once (at start); publishing again needs an unpublish first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortPublish {
    pub container_id: String,
    /// The network (id or name) whose endpoint address the traffic goes to.
    pub network: String,
    pub ports: Vec<PortMapping>,
}

/// One `ports:` entry (`host_ip:host_port[-end]:container_port[-end]/protocol`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortMapping {
    pub protocol: Protocol,
    /// None: every host address.
    pub host_ip: Option<IpAddr>,
    /// None or 0: a free ephemeral port per container port.
    pub host_port: Option<u16>,
    /// With `host_port`, an inclusive range: as long as the container range (port by port), or any length for a
    /// single container port (the first free port of the range).
    pub host_port_end: Option<u16>,
    pub container_port: u16,
    pub container_port_end: Option<u16>,
}

/// One host port forwarded to one container port (what publishing made).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedPort {
    pub protocol: Protocol,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
}

/// `POST /ports/unpublish`: drop every port published for the container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PortUnpublish {
    pub container_id: String,
}

/// The error body of every non-2xx answer (Docker's shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub message: String,
}
