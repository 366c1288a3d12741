//! berth's embedded DNS: one listener per network on its gateway address (UDP and TCP), answering A, AAAA and
//! PTR for container names, hostnames, service names (every replica, rotated per answer), network aliases and
//! links, with TTL 0. A client is identified by its source address: it only sees names on networks it shares
//! with the target. Other names go to the upstream resolvers (the host's resolv.conf, re-read when it changes,
//! or the container's own `dns` servers).
//!
//! ```no_run
//! # async fn demo() -> Result<(), berth_netd::dns::DnsError> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use berth_netd::dns::{DnsServer, Endpoint, NetworkInfo, Registry, Upstream};
//!
//! let registry = Arc::new(Registry::new());
//! let upstream = Arc::new(Upstream::from_resolv_conf("/etc/resolv.conf", 53, Duration::from_secs(1)));
//! registry.set_network(NetworkInfo { id: "n1".into(), name: "proj_default".into(), internal: false });
//! // After the bridge has its gateway address:
//! let server = DnsServer::start("172.18.0.1:53".parse().unwrap(), registry.clone(), upstream).await?;
//! registry.set_endpoint(Endpoint {
//!     container_id: "c1".into(),
//!     network_id: "n1".into(),
//!     ipv4: Some("172.18.0.2".parse().unwrap()),
//!     ipv6: None,
//!     names: vec!["proj-web-1".into(), "web".into(), "c1shortid".into()],
//! });
//! // ... on disconnect / network removal:
//! registry.remove_endpoint("c1", "n1");
//! server.stop().await?;
//! # Ok(()) }
//! ```
//!
//! Files for the container: [`render_resolv_conf`] (nameserver = its networks' gateways, `dns_search`,
//! `dns_opt`) and [`render_hosts`] with [`parse_extra_host`] for `extra_hosts`.
//!
//! Performance: a lookup reads an immutable snapshot (`arc-swap`), so queries take no lock; writers rebuild the
//! snapshot (O(endpoints)) on each change. hickory-server logs every request at `info` level under the target
//! `hickory_server`: the daemon's log filter should set that target to `warn` for speed.

mod hosts;
mod registry;
mod resolv_conf;
mod server;
mod upstream;

use std::net::SocketAddr;

pub use hosts::{ExtraHost, parse_extra_host, render_hosts};
pub use registry::{ClientOptions, Endpoint, Forwarding, NameAnswer, NetworkInfo, Registry};
pub use resolv_conf::{HostResolvConf, render_resolv_conf};
pub use server::DnsServer;
pub use upstream::{DEFAULT_SERVER_TIMEOUT, Upstream, nameservers};

/// Errors of the DNS module.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("cannot listen for DNS on {0}: {1}")]
    Bind(SocketAddr, #[source] std::io::Error),
    #[error("DNS server: {0}")]
    Server(String),
    #[error("no upstream resolver configured")]
    NoUpstream,
    #[error("upstream resolver {0}")]
    Upstream(String),
    #[error("extra_hosts entry {0:?}: {1}")]
    ExtraHost(String, String),
}
