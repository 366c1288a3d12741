//! Bringing the kernel and the nft table in line with the saved state when netd starts.

use super::publish::{proto, publishes};
use super::*;

impl Netd {
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
}
