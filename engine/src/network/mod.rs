//! Containers on berth-netd networks: berthd's side of issue #5.
//!
//! At start, a container whose mode is a network (`bridge`, the default, or a user network) gets a network
//! namespace berthd makes before its shim runs ([`netns`]); berth-netd connects it to each network (`eth0`,
//! `eth1`…) and publishes its ports, and its resolv.conf and hosts come from netd's answer. What netd gave is
//! kept in `containers/<id>/network.json` ([`attached`]) and released when the container exits (or at berthd's
//! next start when it died meanwhile). `container:<id>` joins the other container's namespace file.
//!
//! berthd finds netd on `<run-dir>/netd.sock`; the `berth` CLI starts it. When it does not answer, the error
//! names the socket and how to start it.

pub mod attached;
pub mod docker;
pub mod netns;
pub mod plan;
pub mod ports;

pub use berth_netd;

use std::path::{Path, PathBuf};

use berth_netd::api::{EndpointRequest, Network, NetworkCreate, PortMapping, PortPublish};
use berth_netd::client::{Client, ClientError};

use crate::container::spec::NetworkMode;
use crate::paths::Paths;
use crate::runtime::record::{ContainerRecord, Containers, Status};
use attached::{Attached, AttachedEndpoint};
use plan::{EndpointPlan, Mode};

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(
        "berth-netd does not answer on {socket} ({source}); start it with `berth-netd --root {root} --run-dir \
         {run_dir}` (the berth CLI starts it when needed)"
    )]
    Unreachable { socket: PathBuf, root: PathBuf, run_dir: PathBuf, source: std::io::Error },
    /// An error netd answered with, its HTTP status kept.
    #[error("{message}")]
    Netd { status: u16, message: String },
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
    /// Bad input: a field or mode that cannot be honoured.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Other(String),
}

impl NetworkError {
    /// The HTTP status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            NetworkError::Netd { status, .. } => *status,
            NetworkError::Invalid(_) => 400,
            NetworkError::Unreachable { .. } => 503,
            NetworkError::Netns(_) | NetworkError::Other(_) => 500,
        }
    }
}

type Result<T> = std::result::Result<T, NetworkError>;

/// What the container's spec and its network files get.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub mode: NetworkMode,
    /// resolv.conf and hosts contents; None keeps berthd's defaults (the host's resolvers).
    pub resolv_conf: Option<String>,
    pub hosts: Option<String>,
}

pub struct Networking {
    paths: Paths,
    client: Client,
    /// One lock per container: a start's prepare, a release and a live connect never interleave (a late
    /// release would otherwise remove the namespace a restart just made at the same path).
    locks: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<tokio::sync::Mutex<()>>>>,
}

impl Networking {
    pub fn new(paths: &Paths) -> Networking {
        Networking {
            paths: paths.clone(),
            client: Client::connect_with_unix(&paths.netd_socket()),
            locks: Default::default(),
        }
    }

    /// The container's network lock: held by whoever records its exit until the release is done, so a stop
    /// returns only once the network is gone and a new start waits for it.
    pub async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(id.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn netns_path(&self, id: &str) -> PathBuf {
        self.paths.run_dir.join("netns").join(id)
    }

    /// netd's errors, with an unreachable netd named and how to start it.
    pub fn error(&self, e: ClientError) -> NetworkError {
        match e {
            ClientError::Connect { socket, source } => NetworkError::Unreachable {
                socket,
                root: self.paths.root.clone(),
                run_dir: self.paths.run_dir.clone(),
                source,
            },
            ClientError::Api { status, message } => NetworkError::Netd { status, message },
            other => NetworkError::Other(other.to_string()),
        }
    }

    /// A network by id, name or id prefix; `bridge` is made on first use.
    pub async fn network(&self, key: &str) -> Result<Network> {
        match self.client.inspect_network(key).await {
            Err(ClientError::Api { status: 404, .. }) if key == plan::DEFAULT_NETWORK => self.default_bridge().await,
            r => r.map_err(|e| self.error(e)),
        }
    }

    /// The default `bridge` network: a berth-netd network like any other, created on demand with an automatic
    /// subnet (Docker's pools start at 172.17.0.0/16, as Docker's docker0).
    pub async fn default_bridge(&self) -> Result<Network> {
        match self.client.inspect_network(plan::DEFAULT_NETWORK).await {
            Ok(n) => return Ok(n),
            Err(ClientError::Api { status: 404, .. }) => {}
            Err(e) => return Err(self.error(e)),
        }
        let req = NetworkCreate {
            name: plan::DEFAULT_NETWORK.into(),
            driver: "bridge".into(),
            options: [("com.docker.network.bridge.default_bridge".to_string(), "true".to_string())].into(),
            ..Default::default()
        };
        match self.client.create_network(&req).await {
            Ok(n) => Ok(n),
            // Two first starts at once: the other one made it.
            Err(ClientError::Api { status: 409, .. }) => {
                self.client.inspect_network(plan::DEFAULT_NETWORK).await.map_err(|e| self.error(e))
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// Before the shim runs: the namespace the spec names, connected to the container's networks, its ports
    /// published. On failure nothing is left (namespace, endpoints, ports).
    pub async fn prepare(&self, record: &ContainerRecord, containers: &Containers) -> Result<Prepared> {
        let h = &record.host_config;
        let mode =
            plan::plan(h.network_mode.as_deref(), record.networking_config.as_ref()).map_err(NetworkError::Invalid)?;
        let dir = containers.container_dir(&record.id);
        let _guard = self.lock(&record.id).await;
        // Whatever a previous run left (berthd killed before the exit was seen).
        self.release_locked(&dir, &record.id).await;
        match mode {
            Mode::None => Ok(Prepared { mode: NetworkMode::None, resolv_conf: None, hosts: None }),
            Mode::Host => Ok(Prepared { mode: NetworkMode::Host, resolv_conf: None, hosts: None }),
            Mode::Container(key) => self.join_container(&key, containers),
            Mode::Networks(list) => {
                let attached = match self.attach(&dir, record, &list).await {
                    Ok(a) => a,
                    Err(e) => {
                        self.release_locked(&dir, &record.id).await;
                        return Err(e);
                    }
                };
                let netns = attached.netns.clone().unwrap_or_default();
                Ok(Prepared {
                    mode: NetworkMode::Path(netns),
                    resolv_conf: attached.endpoints.last().map(|e| e.endpoint.resolv_conf.clone()),
                    hosts: attached.endpoints.first().map(|e| e.endpoint.hosts.clone()),
                })
            }
        }
    }

    /// `container:<id>`: the other container's namespace file (its netns bind mount, else its init's), and its
    /// resolv.conf and hosts, as Docker shares them.
    fn join_container(&self, key: &str, containers: &Containers) -> Result<Prepared> {
        let other = containers
            .get(key)
            .map_err(|_| NetworkError::Invalid(format!("network mode container:{key}: no such container")))?;
        if !matches!(other.state.status, Status::Running | Status::Paused) || other.state.pid <= 0 {
            return Err(NetworkError::Invalid(format!(
                "cannot join the network of container {}: it is not running",
                other.name
            )));
        }
        let other_dir = containers.container_dir(&other.id);
        let path = attached::load(&other_dir)
            .and_then(|a| a.netns)
            .unwrap_or_else(|| PathBuf::from(format!("/proc/{}/ns/net", other.state.pid)));
        let bundle = other_dir.join("bundle");
        Ok(Prepared {
            mode: NetworkMode::Container(path),
            resolv_conf: std::fs::read_to_string(bundle.join("resolv.conf")).ok(),
            hosts: std::fs::read_to_string(bundle.join("hosts")).ok(),
        })
    }

    async fn attach(&self, dir: &Path, record: &ContainerRecord, list: &[EndpointPlan]) -> Result<Attached> {
        let netns_path = self.netns_path(&record.id);
        // Recorded before it exists, so a crash right after leaves something the next release finds.
        let mut attached = Attached { netns: Some(netns_path.clone()), ..Default::default() };
        save(dir, &attached)?;
        netns::create(&netns_path)?;
        for plan in list {
            let endpoint = self.connect_one(dir, record, &netns_path, plan, &mut attached).await?;
            tracing::debug!(container = %record.id, interface = %endpoint, "connected");
        }
        let mappings = port_mappings(record).map_err(NetworkError::Invalid)?;
        if let Some(first) = attached.endpoints.first()
            && !mappings.is_empty()
        {
            let req =
                PortPublish { container_id: record.id.clone(), network: first.network_id.clone(), ports: mappings };
            attached.ports = self.client.publish(&req).await.map_err(|e| self.error(e))?;
            save(dir, &attached)?;
        }
        Ok(attached)
    }

    /// Connect one network; the endpoint is recorded at once. Returns the interface name.
    async fn connect_one(
        &self,
        dir: &Path,
        record: &ContainerRecord,
        netns: &Path,
        plan: &EndpointPlan,
        attached: &mut Attached,
    ) -> Result<String> {
        let network = self.network(&plan.network).await?;
        if attached.endpoints.iter().any(|e| e.network_id == network.id) {
            return Err(NetworkError::Netd {
                status: 409,
                message: format!("container {} is already connected to network {}", record.name, network.name),
            });
        }
        let req = endpoint_request(record, netns, plan);
        let endpoint = self.client.connect(&network.id, &req).await.map_err(|e| self.error(e))?;
        let interface = endpoint.interface.clone();
        attached.endpoints.push(AttachedEndpoint {
            network_id: network.id,
            network_name: network.name,
            aliases: plan.aliases.clone(),
            endpoint,
        });
        save(dir, attached)?;
        Ok(interface)
    }

    /// Undo what `network.json` lists: ports, endpoints, the namespace. Errors are logged, not returned: netd
    /// forgets endpoints whose namespace is gone on its next start, so removing the namespace is what counts.
    pub async fn release(&self, dir: &Path, id: &str) {
        let _guard = self.lock(id).await;
        self.release_locked(dir, id).await;
    }

    /// [`Networking::release`] with the container's [`Networking::lock`] already held.
    pub async fn release_locked(&self, dir: &Path, id: &str) {
        let Some(a) = attached::load(dir) else { return };
        if !a.ports.is_empty()
            && let Err(e) = self.client.unpublish(id).await
        {
            tracing::warn!(container = %id, "unpublish: {e}");
        }
        for ep in &a.endpoints {
            match self.client.disconnect(&ep.network_id, id).await {
                Ok(()) | Err(ClientError::Api { status: 404, .. }) => {}
                Err(e) => tracing::warn!(container = %id, network = %ep.network_name, "disconnect: {e}"),
            }
        }
        if let Some(ns) = &a.netns
            && let Err(e) = netns::remove(ns)
        {
            tracing::warn!(container = %id, "{e}");
        }
        attached::forget(dir);
    }

    /// `docker network connect` on a running container: a new interface now, its resolv.conf rewritten.
    pub async fn connect_running(&self, dir: &Path, record: &ContainerRecord, plan: &EndpointPlan) -> Result<()> {
        let _guard = self.lock(&record.id).await;
        let Some(mut a) = attached::load(dir).filter(|a| a.netns.is_some()) else {
            return Err(NetworkError::Invalid(format!(
                "container {} cannot be connected to a network: its network mode is {}",
                record.name,
                record.host_config.network_mode.as_deref().unwrap_or("none")
            )));
        };
        let netns = a.netns.clone().unwrap_or_default();
        self.connect_one(dir, record, &netns, plan, &mut a).await?;
        if let Some(last) = a.endpoints.last() {
            write_in_place(&dir.join("bundle/resolv.conf"), &last.endpoint.resolv_conf);
        }
        Ok(())
    }

    /// `docker network disconnect` of a running container: false when it was not on that network.
    pub async fn disconnect_running(&self, dir: &Path, record: &ContainerRecord, network: &Network) -> Result<bool> {
        let _guard = self.lock(&record.id).await;
        let Some(mut a) = attached::load(dir) else { return Ok(false) };
        let Some(pos) = a.endpoints.iter().position(|e| e.network_id == network.id) else { return Ok(false) };
        if pos == 0 && !a.ports.is_empty() {
            self.client.unpublish(&record.id).await.map_err(|e| self.error(e))?;
            a.ports.clear();
            save(dir, &a)?;
        }
        match self.client.disconnect(&network.id, &record.id).await {
            Ok(()) | Err(ClientError::Api { status: 404, .. }) => {}
            Err(e) => return Err(self.error(e)),
        }
        a.endpoints.remove(pos);
        save(dir, &a)?;
        Ok(true)
    }
}

fn save(dir: &Path, a: &Attached) -> Result<()> {
    attached::save(dir, a).map_err(|e| NetworkError::Other(format!("cannot record the container's network: {e}")))
}

/// A bind-mounted file is rewritten in place: a rename would leave the container looking at the old inode.
fn write_in_place(path: &Path, text: &str) {
    if let Err(e) = std::fs::write(path, text) {
        tracing::warn!(path = %path.display(), "cannot update: {e}");
    }
}

/// The container's names on a network: its name, hostname and short id (Docker's DNSNames), deduplicated.
pub fn names(record: &ContainerRecord) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let short = record.id.get(..12).unwrap_or(&record.id).to_string();
    for n in [record.name.clone(), record.config.hostname.clone(), short] {
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

fn endpoint_request(record: &ContainerRecord, netns: &Path, plan: &EndpointPlan) -> EndpointRequest {
    let h = &record.host_config;
    let hostname = if record.config.hostname.is_empty() {
        record.id.get(..12).unwrap_or(&record.id).to_string()
    } else {
        record.config.hostname.clone()
    };
    EndpointRequest {
        container_id: record.id.clone(),
        netns: netns.to_path_buf(),
        names: names(record),
        aliases: plan.aliases.clone(),
        ipv4_address: plan.ipv4_address,
        mac_address: plan.mac_address.clone(),
        dns_servers: h.dns.clone(),
        dns_search: h.dns_search.clone(),
        dns_options: h.dns_options.clone(),
        links: Vec::new(),
        hostname: Some(hostname),
        extra_hosts: h.extra_hosts.clone(),
    }
}

/// `PortBindings`, plus an ephemeral port for every exposed port without one under `PublishAllPorts`.
fn port_mappings(record: &ContainerRecord) -> std::result::Result<Vec<PortMapping>, String> {
    let h = &record.host_config;
    let mut list = ports::mappings(h.port_bindings.as_ref())?;
    let publish_all = h.extra.get("PublishAllPorts").and_then(serde_json::Value::as_bool).unwrap_or(false);
    if publish_all {
        let exposed = record.config.exposed_ports.clone().unwrap_or_default();
        let unbound: serde_json::Map<String, serde_json::Value> = exposed
            .keys()
            .filter(|k| h.port_bindings.as_ref().and_then(|b| b.get(k.as_str())).is_none())
            .map(|k| (k.clone(), serde_json::Value::Null))
            .collect();
        list.extend(ports::mappings(Some(&serde_json::Value::Object(unbound)))?);
    }
    Ok(list)
}
