//! The names berth's DNS server answers for, and who may see them.
//!
//! Writers (the daemon, on connect/disconnect) change a [`Registry`] under a mutex and publish an immutable
//! snapshot through `arc-swap`; every query reads the current snapshot without taking a lock, so lookups never
//! wait on an attach and an attach never waits on lookups.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

/// A berth network as DNS sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkInfo {
    /// The network's id (the key every endpoint refers to).
    pub id: String,
    /// The network's name, e.g. `proj_default`: `web.proj_default` resolves like `web`, and PTR answers are
    /// `<name>.<network name>` as Docker gives them.
    pub name: String,
    /// `internal: true` networks get no forwarding to upstream resolvers: a container whose networks are all
    /// internal gets REFUSED for names outside berth.
    pub internal: bool,
}

/// One container attached to one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The container's id.
    pub container_id: String,
    /// The network's id (see [`NetworkInfo::id`]).
    pub network_id: String,
    /// The container's addresses on that network (queries from these addresses are identified as this container).
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// Every name this endpoint answers to on the network, first one canonical (used for PTR): container name,
    /// hostname, service name, network aliases, short id. Case is ignored; a trailing dot is ignored.
    pub names: Vec<String>,
}

/// Per-container resolver settings, independent of the network.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// `links` from compose: alias → target name. The alias is visible to this container only, and resolves
    /// to the target's addresses on the networks both share.
    pub links: Vec<(String, String)>,
    /// The container's `dns` servers: when set, names outside berth are forwarded to these instead of the
    /// host's resolvers (port 53 unless given). They are queried from netd's network namespace (the host's).
    pub dns: Vec<SocketAddr>,
}

/// What a name resolves to for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameAnswer {
    /// A berth name: its addresses (either list may be empty: the name exists but has no record of that type).
    Known { v4: Vec<Ipv4Addr>, v6: Vec<Ipv6Addr> },
    /// Not a name this client can see: forward it.
    Unknown,
}

/// Where a client's other names go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Forwarding {
    /// The host's resolvers (from resolv.conf).
    Host,
    /// The container's own `dns` servers.
    Servers(Arc<[SocketAddr]>),
    /// Nowhere: the client is only on internal networks.
    Refuse,
}

#[derive(Default)]
struct State {
    networks: HashMap<String, NetworkInfo>,
    /// (container id, network id) → endpoint.
    endpoints: HashMap<(String, String), Endpoint>,
    options: HashMap<String, ClientOptions>,
}

#[derive(Default, Clone)]
struct Addrs {
    v4: Vec<Ipv4Addr>,
    v6: Vec<Ipv6Addr>,
}

struct NetSnapshot {
    /// Lowercased network name, for `name.network` queries.
    name: Box<str>,
    internal: bool,
    names: HashMap<Box<str>, Addrs>,
    /// Address → PTR target (`<canonical name>.<network name>`).
    ptr: HashMap<IpAddr, Arc<str>>,
}

struct Client {
    nets: Vec<usize>,
    links: HashMap<Box<str>, Box<str>>,
    forwarding: Forwarding,
}

#[derive(Default)]
struct Snapshot {
    nets: Vec<NetSnapshot>,
    net_index: HashMap<String, usize>,
    clients: HashMap<IpAddr, Arc<Client>>,
}

/// The DNS records of every berth network; cheap to share (`Arc<Registry>`) between the daemon and all
/// listeners.
#[derive(Default)]
pub struct Registry {
    state: Mutex<State>,
    snapshot: ArcSwap<Snapshot>,
    /// Rotates the order of multi-address answers (round robin across queries).
    rotation: AtomicUsize,
}

/// Lowercase and drop one trailing dot: the key form of every name.
fn key(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add or replace a network.
    pub fn set_network(&self, network: NetworkInfo) {
        self.update(|s| {
            s.networks.insert(network.id.clone(), network);
        });
    }

    /// Remove a network and every endpoint on it.
    pub fn remove_network(&self, network_id: &str) {
        self.update(|s| {
            s.networks.remove(network_id);
            s.endpoints.retain(|(_, net), _| net != network_id);
        });
    }

    /// Add or replace the endpoint of `endpoint.container_id` on `endpoint.network_id`. An endpoint on a network
    /// not (yet) set with [`Registry::set_network`] is kept but not served until the network is set.
    pub fn set_endpoint(&self, endpoint: Endpoint) {
        self.update(|s| {
            s.endpoints.insert((endpoint.container_id.clone(), endpoint.network_id.clone()), endpoint);
        });
    }

    /// Remove one container's endpoint on one network (disconnect).
    pub fn remove_endpoint(&self, container_id: &str, network_id: &str) {
        self.update(|s| {
            s.endpoints.remove(&(container_id.to_owned(), network_id.to_owned()));
        });
    }

    /// Remove a container from every network, with its options.
    pub fn remove_container(&self, container_id: &str) {
        self.update(|s| {
            s.endpoints.retain(|(c, _), _| c != container_id);
            s.options.remove(container_id);
        });
    }

    /// Set a container's links and `dns` servers.
    pub fn set_client_options(&self, container_id: &str, options: ClientOptions) {
        self.update(|s| {
            s.options.insert(container_id.to_owned(), options);
        });
    }

    /// Every name served on a network with its addresses, sorted by name (for inspect and tests).
    pub fn names_for(&self, network_id: &str) -> Vec<(String, Vec<IpAddr>)> {
        let snap = self.snapshot.load();
        let Some(net) = snap.net_index.get(network_id).map(|&i| &snap.nets[i]) else {
            return Vec::new();
        };
        let mut out: Vec<(String, Vec<IpAddr>)> = net
            .names
            .iter()
            .map(|(name, a)| {
                let ips = a.v4.iter().map(|&ip| IpAddr::V4(ip));
                let ips = ips.chain(a.v6.iter().map(|&ip| IpAddr::V6(ip)));
                (name.to_string(), ips.collect())
            })
            .collect();
        out.sort();
        out
    }

    /// Resolve `name` (any case, trailing dot allowed) for the client at `client`: only names on networks the
    /// client shares with the target, plus the client's own links. Multi-address answers rotate per call.
    pub fn resolve(&self, client: IpAddr, name: &str) -> NameAnswer {
        let snap = self.snapshot.load();
        let Some(c) = snap.clients.get(&client) else {
            return NameAnswer::Unknown;
        };
        let mut wanted = key(name);
        if let Some(target) = c.links.get(wanted.as_str()) {
            wanted = target.to_string();
        }
        let mut v4: Vec<Ipv4Addr> = Vec::new();
        let mut v6: Vec<Ipv6Addr> = Vec::new();
        let mut found = false;
        for &i in &c.nets {
            let net = &snap.nets[i];
            let hit = net.names.get(wanted.as_str()).or_else(|| {
                // `web.proj_default`: the name qualified by the network's name.
                let short = wanted.strip_suffix(&*net.name)?.strip_suffix('.')?;
                net.names.get(short)
            });
            if let Some(a) = hit {
                found = true;
                if v4.is_empty() && v6.is_empty() {
                    v4.extend_from_slice(&a.v4);
                    v6.extend_from_slice(&a.v6);
                } else {
                    // On several shared networks: each address once.
                    v4.extend(a.v4.iter().filter(|ip| !v4.contains(ip)).collect::<Vec<_>>());
                    v6.extend(a.v6.iter().filter(|ip| !v6.contains(ip)).collect::<Vec<_>>());
                }
            }
        }
        if !found {
            return NameAnswer::Unknown;
        }
        let turn = self.rotation.fetch_add(1, Ordering::Relaxed);
        if v4.len() > 1 {
            let n = turn % v4.len();
            v4.rotate_left(n);
        }
        if v6.len() > 1 {
            let n = turn % v6.len();
            v6.rotate_left(n);
        }
        NameAnswer::Known { v4, v6 }
    }

    /// The PTR target (`<name>.<network name>`, no trailing dot) of `ip` for the client at `client`, if it is a
    /// berth address on a network the client shares.
    pub fn reverse(&self, client: IpAddr, ip: IpAddr) -> Option<Arc<str>> {
        let snap = self.snapshot.load();
        let c = snap.clients.get(&client)?;
        c.nets.iter().find_map(|&i| snap.nets[i].ptr.get(&ip).cloned())
    }

    /// Where names outside berth go for this client; `None` when the address is not a berth endpoint (a host
    /// process talking to a gateway): such clients are forwarded to the host's resolvers.
    pub fn forwarding(&self, client: IpAddr) -> Option<Forwarding> {
        let snap = self.snapshot.load();
        snap.clients.get(&client).map(|c| c.forwarding.clone())
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        // A panic while holding the lock cannot leave State half-changed in a way that matters: every change is
        // a single insert/remove, so a poisoned lock is still usable.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        change(&mut state);
        self.snapshot.store(Arc::new(build(&state)));
    }
}

fn build(state: &State) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut ids: Vec<&NetworkInfo> = state.networks.values().collect();
    ids.sort_by(|a, b| a.id.cmp(&b.id));
    for net in ids {
        snap.net_index.insert(net.id.clone(), snap.nets.len());
        snap.nets.push(NetSnapshot {
            name: key(&net.name).into(),
            internal: net.internal,
            names: HashMap::new(),
            ptr: HashMap::new(),
        });
    }
    // Endpoints in a stable order so answers (before rotation) do not depend on hash order.
    let mut eps: Vec<&Endpoint> = state.endpoints.values().collect();
    eps.sort_by(|a, b| (&a.network_id, &a.container_id).cmp(&(&b.network_id, &b.container_id)));

    let mut per_container: HashMap<&str, (Vec<usize>, Vec<IpAddr>)> = HashMap::new();
    for ep in eps {
        let Some(&i) = snap.net_index.get(&ep.network_id) else {
            continue;
        };
        let net = &mut snap.nets[i];
        let mut seen = HashSet::new();
        for name in &ep.names {
            let k = key(name);
            if k.is_empty() || !seen.insert(k.clone()) {
                continue;
            }
            let a = net.names.entry(k.into_boxed_str()).or_default();
            if let Some(ip) = ep.ipv4 {
                a.v4.push(ip);
            }
            if let Some(ip) = ep.ipv6 {
                a.v6.push(ip);
            }
        }
        if let Some(first) = ep.names.first().map(|n| key(n)).filter(|n| !n.is_empty()) {
            let target: Arc<str> = format!("{first}.{}", net.name).into();
            for ip in ep.ipv4.map(IpAddr::V4).into_iter().chain(ep.ipv6.map(IpAddr::V6)) {
                net.ptr.insert(ip, target.clone());
            }
        }
        let entry = per_container.entry(&ep.container_id).or_default();
        entry.0.push(i);
        entry.1.extend(ep.ipv4.map(IpAddr::V4).into_iter().chain(ep.ipv6.map(IpAddr::V6)));
    }

    for (container, (nets, ips)) in per_container {
        let opts = state.options.get(container);
        let all_internal = nets.iter().all(|&i| snap.nets[i].internal);
        let forwarding = if all_internal {
            Forwarding::Refuse
        } else {
            match opts {
                Some(o) if !o.dns.is_empty() => Forwarding::Servers(o.dns.clone().into()),
                _ => Forwarding::Host,
            }
        };
        let links = opts
            .map(|o| o.links.iter().map(|(alias, target)| (key(alias).into(), key(target).into())).collect())
            .unwrap_or_default();
        let client = Arc::new(Client { nets, links, forwarding });
        for ip in ips {
            snap.clients.insert(ip, client.clone());
        }
    }
    snap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(id: &str, internal: bool) -> NetworkInfo {
        NetworkInfo { id: id.into(), name: format!("proj_{id}"), internal }
    }

    fn ep(c: &str, n: &str, last: u8, names: &[&str]) -> Endpoint {
        Endpoint {
            container_id: c.into(),
            network_id: n.into(),
            ipv4: Some(Ipv4Addr::new(10, 9, 0, last)),
            ipv6: None,
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 9, 0, last))
    }

    fn v4(answer: NameAnswer) -> Vec<Ipv4Addr> {
        match answer {
            NameAnswer::Known { v4, .. } => v4,
            NameAnswer::Unknown => panic!("expected a known name"),
        }
    }

    fn registry() -> Registry {
        let r = Registry::new();
        r.set_network(net("a", false));
        r.set_network(net("b", false));
        r.set_endpoint(ep("c1", "a", 2, &["proj-web-1", "web", "www"]));
        r.set_endpoint(ep("c2", "a", 3, &["proj-web-2", "web"]));
        r.set_endpoint(ep("c3", "b", 4, &["proj-db-1", "db"]));
        r
    }

    #[test]
    fn names_resolve_case_insensitively_with_or_without_dot() {
        let r = registry();
        assert_eq!(v4(r.resolve(ip(3), "WWW.")), vec![Ipv4Addr::new(10, 9, 0, 2)]);
        assert_eq!(v4(r.resolve(ip(3), "proj-web-1")), vec![Ipv4Addr::new(10, 9, 0, 2)]);
        assert_eq!(v4(r.resolve(ip(3), "proj-web-1.proj_a")), vec![Ipv4Addr::new(10, 9, 0, 2)]);
    }

    #[test]
    fn service_name_returns_every_replica_rotated() {
        let r = registry();
        let first = v4(r.resolve(ip(2), "web"));
        let second = v4(r.resolve(ip(2), "web"));
        assert_eq!(first.len(), 2);
        assert_eq!(second.len(), 2);
        assert_ne!(first, second, "consecutive answers start with a different replica");
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, vec![Ipv4Addr::new(10, 9, 0, 2), Ipv4Addr::new(10, 9, 0, 3)]);
    }

    #[test]
    fn names_on_other_networks_are_invisible() {
        let r = registry();
        assert_eq!(r.resolve(ip(2), "db"), NameAnswer::Unknown);
        assert_eq!(r.resolve(ip(4), "web"), NameAnswer::Unknown);
        assert_eq!(r.reverse(ip(4), ip(2)), None);
        // An address that is no endpoint sees nothing.
        assert_eq!(r.resolve(ip(99), "web"), NameAnswer::Unknown);
        // Once c1 joins b too, it sees db.
        r.set_endpoint(ep("c1", "b", 5, &["proj-web-1", "web"]));
        assert_eq!(v4(r.resolve(ip(2), "db")), vec![Ipv4Addr::new(10, 9, 0, 4)]);
        assert_eq!(v4(r.resolve(ip(5), "db")), vec![Ipv4Addr::new(10, 9, 0, 4)]);
    }

    #[test]
    fn reverse_gives_name_dot_network() {
        let r = registry();
        assert_eq!(r.reverse(ip(3), ip(2)).as_deref(), Some("proj-web-1.proj_a"));
        assert_eq!(r.reverse(ip(3), ip(77)), None);
    }

    #[test]
    fn links_are_private_to_the_linking_container() {
        let r = registry();
        r.set_client_options("c2", ClientOptions { links: vec![("backend".into(), "proj-web-1".into())], dns: vec![] });
        assert_eq!(v4(r.resolve(ip(3), "backend")), vec![Ipv4Addr::new(10, 9, 0, 2)]);
        assert_eq!(r.resolve(ip(2), "backend"), NameAnswer::Unknown);
    }

    #[test]
    fn removing_an_endpoint_or_network_removes_its_names() {
        let r = registry();
        r.remove_endpoint("c1", "a");
        assert_eq!(v4(r.resolve(ip(3), "web")), vec![Ipv4Addr::new(10, 9, 0, 3)]);
        assert_eq!(r.resolve(ip(3), "www"), NameAnswer::Unknown);
        r.remove_network("a");
        assert!(r.names_for("a").is_empty());
        assert_eq!(r.resolve(ip(3), "web"), NameAnswer::Unknown);
        r.remove_container("c3");
        assert!(r.names_for("b").is_empty());
    }

    #[test]
    fn a_name_without_records_of_a_type_is_still_known() {
        let r = registry();
        match r.resolve(ip(2), "web") {
            NameAnswer::Known { v4, v6 } => {
                assert_eq!(v4.len(), 2);
                assert!(v6.is_empty(), "no AAAA, yet known: NODATA rather than forwarding");
            }
            NameAnswer::Unknown => panic!("web is known"),
        }
    }

    #[test]
    fn forwarding_follows_dns_option_and_internal_networks() {
        let r = registry();
        assert_eq!(r.forwarding(ip(2)), Some(Forwarding::Host));
        assert_eq!(r.forwarding(ip(99)), None);
        let server: SocketAddr = "127.0.0.1:5353".parse().expect("literal");
        r.set_client_options("c1", ClientOptions { links: vec![], dns: vec![server] });
        assert_eq!(r.forwarding(ip(2)), Some(Forwarding::Servers(vec![server].into())));
        r.set_network(net("i", true));
        r.set_endpoint(ep("c9", "i", 9, &["lonely"]));
        assert_eq!(r.forwarding(ip(9)), Some(Forwarding::Refuse));
    }

    #[test]
    fn names_for_lists_a_network() {
        let r = registry();
        let names = r.names_for("b");
        assert_eq!(names, vec![("db".to_string(), vec![ip(4)]), ("proj-db-1".to_string(), vec![ip(4)])]);
    }
}
