//! berth-netd, the network daemon: bridges, veths, IPAM, embedded DNS and nftables port publishing.
//!
//! Two halves: `api` (the types) and `client` (the typed client berthd uses) need only hyper and serde; the
//! daemon (`daemon`, `service`, `links`, …) sits behind the default `daemon` feature. See docs/architecture.md.

pub mod api;
pub mod client;
pub mod ipam;
pub mod paths;

#[cfg(feature = "daemon")]
pub mod daemon;
#[cfg(feature = "daemon")]
pub mod dns;
#[cfg(feature = "daemon")]
pub mod ids;
#[cfg(feature = "daemon")]
pub mod links;
#[cfg(feature = "daemon")]
pub mod naming;
#[cfg(feature = "daemon")]
pub mod nft;
#[cfg(feature = "daemon")]
pub mod server;
#[cfg(feature = "daemon")]
pub mod service;
#[cfg(feature = "daemon")]
pub mod state;
#[cfg(feature = "daemon")]
pub mod sysctl;
