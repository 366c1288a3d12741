//! Attaching and detaching a container's network namespace.

use super::*;

impl Netd {
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
}
