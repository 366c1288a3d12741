//! berth's nftables rules, only in its own table (`inet berth`; the name is a parameter so tests use their
//! own), applied with the `nft` binary's JSON interface (Debian's `nftables` package).
//!
//! - **Port publishing**: DNAT in `prerouting` (traffic from outside) and `output` (from the host itself,
//!   including 127.0.0.1) for every local destination address, or only `host_ip` when given; tcp and udp; one
//!   rule per port of a range. [`PortAllocator`] picks ephemeral ports, refuses a port that another publish or a
//!   host socket holds (naming the holder), and holds each port with a bound socket.
//! - **Masquerade** in `postrouting`: egress of non-internal networks (source subnet, out of another interface),
//!   hairpin (a container reaching a published port that leads back into its own network), and 127.0.0.1
//!   sources DNATed onto a bridge.
//! - **Forward**: traffic between different berth networks is dropped (published ports excepted); internal
//!   networks get no traffic in or out of their bridge.
//!
//! Each change is one atomic batch. Rules carry a comment `berth net=<id>` / `berth ep=<id>` so that a
//! restarted daemon finds them ([`NftTable::list`]) and removes those nothing needs any more.
//!
//! Kernel settings the daemon must make (not done here): `net.ipv4.ip_forward=1`, and
//! `net.ipv4.conf.<bridge>.route_localnet=1` on each bridge — without it the kernel drops packets from
//! 127.0.0.1 routed out of the bridge, so a port published on 127.0.0.1 would not answer from the host.
//! When `br_netfilter` is loaded (`net.bridge.bridge-nf-call-iptables=1`, as on Docker hosts and this project's
//! VM), a packet DNATed back into the bridge it came from is *bridged* out of the port it arrived on, so each
//! endpoint's bridge port needs `hairpin_mode=1` (`/sys/class/net/<host veth>/brport/hairpin_mode`) for a
//! container to reach its own published port; without br_netfilter the packet is routed and needs nothing.
//! IPv6 has no `route_localnet`: `[::1]:port` cannot be DNATed to a container, and publishing on `::1` is
//! not possible; use 127.0.0.1 or another host address. Other tables still see the traffic: a `drop` policy in
//! another table's forward chain (e.g. Docker's iptables) also drops berth's forwarded traffic.
//!
//! ```no_run
//! # fn demo() -> Result<(), berth_netd::nft::NftError> {
//! use berth_netd::nft::{NetworkRules, NftTable, PortAllocator, PortRequest, Proto, Publish};
//!
//! let table = NftTable::new("berth")?;
//! table.ensure()?;
//! table.set_network(&NetworkRules {
//!     id: "n1".into(),
//!     bridge: "br-0123456789ab".into(),
//!     subnets: vec!["172.18.0.0/16".parse().unwrap()],
//!     internal: false,
//! })?;
//! let ports = PortAllocator::new();
//! let held = ports.reserve("ep1", &[PortRequest {
//!     proto: Proto::Tcp,
//!     host_ip: None,
//!     host_ports: Some((8080, 8080)),
//!     container_ports: (80, 80),
//! }])?;
//! let publish: Vec<Publish> = held
//!     .iter()
//!     .map(|b| Publish {
//!         proto: b.proto,
//!         host_ip: b.host_ip,
//!         host_port: b.host_port,
//!         container_ip: "172.18.0.2".parse().unwrap(),
//!         container_port: b.container_port,
//!     })
//!     .collect();
//! table.set_endpoint("ep1", &publish)?;
//! // Later:
//! table.remove_endpoint("ep1")?;
//! ports.release("ep1");
//! table.remove_network("n1")?;
//! # Ok(()) }
//! ```

mod ports;
mod rules;
mod table;

use std::net::IpAddr;

pub use ports::{PortAllocator, PortBinding, PortRequest, holder};
pub use rules::{NetworkRules, Owner, Proto, Publish, base_objects, base_rules, endpoint_rules, network_rules};
pub use table::{ListedRule, Listing, NftTable};

/// Errors of the nftables module.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("invalid nftables table name {0:?}")]
    InvalidName(String),
    #[error("invalid id {0:?} for an nftables comment")]
    InvalidId(String),
    #[error("nft failed while {what}: {stderr}")]
    Failed { what: String, stderr: String },
    #[error("cannot run nft: {0}")]
    Run(String),
    #[error("port {port}/{proto} is already taken by {holder}")]
    PortTaken { port: u16, proto: &'static str, holder: String },
    #[error("invalid ports: {0}")]
    BadPorts(String),
    #[error("host_ip {0} is not an address of this host")]
    NotLocal(IpAddr),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
