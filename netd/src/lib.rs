//! berth-netd, the network daemon: bridges, veths, IPAM, embedded DNS and nftables port publishing.
//! See `docs/architecture.md`; it lands with issue #5.
