//! Published ports: held by the nft module's allocator, forwarded by its DNAT rules, recorded on the endpoint.

use super::*;

pub(super) fn proto(p: Protocol) -> Proto {
    match p {
        Protocol::Tcp => Proto::Tcp,
        Protocol::Udp => Proto::Udp,
    }
}

fn protocol(p: Proto) -> Protocol {
    match p {
        Proto::Tcp => Protocol::Tcp,
        Proto::Udp => Protocol::Udp,
    }
}

fn request_of(m: &PortMapping) -> PortRequest {
    let host_ports = m.host_port.filter(|p| *p != 0).map(|h| (h, m.host_port_end.unwrap_or(h)));
    PortRequest {
        proto: proto(m.protocol),
        host_ip: m.host_ip,
        host_ports,
        container_ports: (m.container_port, m.container_port_end.unwrap_or(m.container_port)),
    }
}

pub(super) fn publishes(ep: &Endpoint) -> Vec<Publish> {
    ep.published
        .iter()
        .map(|p| Publish {
            proto: proto(p.protocol),
            host_ip: p.host_ip,
            host_port: p.host_port,
            container_ip: ep.ipv4_address.into(),
            container_port: p.container_port,
        })
        .collect()
}

impl Netd {
    /// Forward host ports to the container's address on `network`. All or nothing: the ports are held, the rules
    /// installed and the state saved, or none of it.
    pub async fn publish(
        &self,
        network: &str,
        container_id: &str,
        ports: &[PortMapping],
    ) -> Result<Vec<PublishedPort>, NetdError> {
        let mut inner = self.inner.lock().await;
        let net = inner.find(network)?;
        let Some(ep) = net.endpoints.get(container_id).cloned() else {
            return Err(NetdError::NotFound(format!(
                "container {container_id} is not connected to network {}",
                net.name
            )));
        };
        if !ep.published.is_empty() {
            return Err(NetdError::Conflict(format!(
                "container {container_id} already publishes ports on network {}; unpublish first",
                net.name
            )));
        }
        if net.internal && !ports.is_empty() {
            return Err(NetdError::BadRequest(format!(
                "network {} is internal: its containers cannot publish ports",
                net.name
            )));
        }
        let requests: Vec<PortRequest> = ports.iter().map(request_of).collect();
        let bindings: Vec<PortBinding> = inner.ports.reserve(&ep.id, &requests)?;
        let published: Vec<PublishedPort> = bindings
            .iter()
            .map(|b| PublishedPort {
                protocol: protocol(b.proto),
                host_ip: b.host_ip,
                host_port: b.host_port,
                container_port: b.container_port,
            })
            .collect();
        let with_ports = Endpoint { published: published.clone(), ..ep.clone() };
        let done = async {
            inner.nft.set_endpoint(&ep.id, &publishes(&with_ports))?;
            let mut next = inner.state.clone();
            if let Some(e) = next.networks.get_mut(&net.id).and_then(|n| n.endpoints.get_mut(container_id)) {
                e.published = published.clone();
            }
            inner.commit(next, false)
        }
        .await;
        if let Err(e) = done {
            let _ = inner.nft.remove_endpoint(&ep.id);
            inner.ports.release(&ep.id);
            return Err(e);
        }
        tracing::info!(network = %net.name, container = %container_id, ports = published.len(), "ports published");
        Ok(published)
    }

    /// Stop forwarding every port the container publishes, on every network.
    pub async fn unpublish(&self, container_id: &str) -> Result<(), NetdError> {
        let mut inner = self.inner.lock().await;
        let mut next = inner.state.clone();
        let mut dropped: Vec<String> = Vec::new();
        for n in next.networks.values_mut() {
            if let Some(e) = n.endpoints.get_mut(container_id)
                && !e.published.is_empty()
            {
                e.published.clear();
                dropped.push(e.id.clone());
            }
        }
        if dropped.is_empty() {
            return Ok(());
        }
        // Save first: a rule left by a failure below is an orphan the next start removes.
        inner.commit(next, false)?;
        for id in &dropped {
            inner.ports.release(id);
            inner.nft.remove_endpoint(id)?;
        }
        tracing::info!(container = %container_id, "ports unpublished");
        Ok(())
    }
}
