//! The kernel settings berth needs, set by netd (and documented in docs/architecture.md):
//!
//! - `net.ipv4.ip_forward = 1`: traffic between a bridge and the outside (egress masquerade, published ports
//!   reached from other hosts) is routed by the host.
//! - `net.ipv4.conf.<bridge>.route_localnet = 1`: a port published on 127.0.0.1 is DNATed in `output` to a
//!   container address; the packet keeps its 127.0.0.1 source, which the kernel routes out of a non-loopback
//!   interface only with route_localnet on that interface (the source is then masqueraded to the gateway).
//! - `net.ipv4.conf.<bridge>.rp_filter = 2` (loose): the reverse-path check must accept those packets and hairpin
//!   traffic (a container reaching its own published port) whose source is not routed back through the bridge in
//!   strict mode. The kernel uses the higher of `all` and the interface's value, so a host in strict mode (1)
//!   becomes loose on berth bridges only.
//! - `/sys/class/net/<host veth>/brport/hairpin_mode = 1` on each endpoint's bridge port: with `br_netfilter`
//!   loaded (Docker hosts, this project's VM), a container's packet DNATed back to itself (its own published
//!   port) is bridged out of the port it came in on, which a bridge does only in hairpin mode.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[error("cannot set {path}: {source}")]
pub struct SysctlError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

fn set(path: PathBuf, value: &str) -> Result<(), SysctlError> {
    if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == value) {
        return Ok(());
    }
    std::fs::write(&path, value).map_err(|source| SysctlError { path, source })
}

/// Host-wide settings, once at start.
pub fn host() -> Result<(), SysctlError> {
    set(PathBuf::from("/proc/sys/net/ipv4/ip_forward"), "1")
}

/// Per-bridge settings, whenever a bridge is made or repaired.
pub fn bridge(name: &str) -> Result<(), SysctlError> {
    let dir = PathBuf::from("/proc/sys/net/ipv4/conf").join(name);
    set(dir.join("route_localnet"), "1")?;
    set(dir.join("rp_filter"), "2")
}

/// Hairpin mode on an endpoint's bridge port (see the module doc).
pub fn hairpin(host_veth: &str) -> Result<(), SysctlError> {
    set(PathBuf::from("/sys/class/net").join(host_veth).join("brport/hairpin_mode"), "1")
}
