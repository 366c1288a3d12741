//! End-to-end: the real berth-netd making bridges and veths in namespaces this test creates (root only).
//! Every test has its own netd, namespace prefix and subnet (see common/mod.rs), and cleans up on drop.

mod common;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use berth_netd::api::{EndpointRequest, IpamRequest, MTU_OPTION, NetworkCreate};
use berth_netd::client::ClientError;
use common::{Netd, host_addresses, link_exists, links_with_alias, path_str, run, run_ok, subnet};

fn network(name: &str, subnet: &str) -> NetworkCreate {
    NetworkCreate {
        name: name.to_string(),
        ipam: IpamRequest { subnet: Some(subnet.to_string()), ..IpamRequest::default() },
        ..NetworkCreate::default()
    }
}

fn endpoint(container: &str, netns: &std::path::Path) -> EndpointRequest {
    EndpointRequest {
        container_id: container.to_string(),
        netns: netns.to_path_buf(),
        names: vec![container.to_string()],
        ..EndpointRequest::default()
    }
}

/// Deletes a link the test made by hand, even when the test fails first.
struct DeleteLinkOnDrop(String);

impl Drop for DeleteLinkOnDrop {
    fn drop(&mut self) {
        if link_exists(&self.0) {
            let _ = run("ip", &["link", "del", "dev", &self.0]);
        }
    }
}

fn api_status(r: Result<impl std::fmt::Debug, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, message }) => (status, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn endpoints_on_one_network_reach_each_other_and_disconnect_releases_everything() {
    let mut t = Netd::start("one");
    let c = t.client();
    let net = c.create_network(&network(&format!("{}-net", t.prefix), &subnet(1))).await.expect("create");
    assert_eq!(net.bridge.len(), 15);
    assert!(link_exists(&net.bridge));
    assert!(host_addresses().contains(&"10.214.1.1/24".to_string()), "gateway on the bridge");

    let (na, nb) = (t.netns("a"), t.netns("b"));
    let a = c.connect(&net.name, &endpoint("ca", &na)).await.expect("connect a");
    let b = c.connect(&net.id[..10], &endpoint("cb", &nb)).await.expect("connect b by id prefix");
    assert_eq!((a.interface.as_str(), b.interface.as_str()), ("eth0", "eth0"));
    assert_eq!(a.ipv4_address, Ipv4Addr::new(10, 214, 1, 2));
    assert_eq!(b.ipv4_address, Ipv4Addr::new(10, 214, 1, 3));
    assert_eq!(a.gateway, Some(Ipv4Addr::new(10, 214, 1, 1)));
    assert_eq!(a.mac_address, "02:42:0a:d6:01:02");
    assert!(a.resolv_conf.contains("nameserver 10.214.1.1"), "{}", a.resolv_conf);
    assert!(link_exists(&a.host_veth) && link_exists(&b.host_veth));

    let inside =
        String::from_utf8_lossy(&t.exec("a", &["ip", "-o", "-4", "addr", "show", "dev", "eth0"]).stdout).into_owned();
    assert!(inside.contains("10.214.1.2/24"), "{inside}");
    let route = String::from_utf8_lossy(&t.exec("a", &["ip", "route", "show", "default"]).stdout).into_owned();
    assert!(route.contains("via 10.214.1.1 dev eth0"), "{route}");
    assert!(t.exec("a", &["ip", "-o", "link", "show", "lo"]).status.success());
    assert!(t.pings("a", "10.214.1.3"), "a cannot reach b:\n{}", t.log());
    assert!(t.pings("b", "10.214.1.2"), "b cannot reach a");
    assert!(t.pings("a", "10.214.1.1"), "a cannot reach its gateway");

    // Removing a network that still has endpoints is refused, and changes nothing.
    let (status, msg) = api_status(c.remove_network(&net.name).await);
    assert_eq!(status, 409);
    assert!(msg.contains("active endpoints"), "{msg}");
    assert!(link_exists(&net.bridge));

    c.disconnect(&net.name, "cb").await.expect("disconnect b");
    assert!(!link_exists(&b.host_veth), "host veth of b is left");
    assert!(!t.exec("b", &["ip", "link", "show", "eth0"]).status.success(), "eth0 is left in b");
    assert!(!t.pings("a", "10.214.1.3"), "b still answers");
    let (status, _) = api_status(c.disconnect(&net.name, "cb").await);
    assert_eq!(status, 404);
    assert_eq!(c.inspect_network(&net.name).await.expect("inspect").endpoints.len(), 1);

    // The released address is not handed out again at once (peers may still cache its MAC).
    let b2 = c.connect(&net.name, &endpoint("cb", &nb)).await.expect("reconnect b");
    assert_eq!(b2.ipv4_address, Ipv4Addr::new(10, 214, 1, 4));
    assert!(t.pings("a", "10.214.1.4"));

    c.disconnect(&net.name, "ca").await.expect("disconnect a");
    c.disconnect(&net.name, "cb").await.expect("disconnect b2");
    c.remove_network(&net.id).await.expect("remove");
    assert!(!link_exists(&net.bridge), "bridge is left");
    assert!(t.owned_links().is_empty(), "links left: {:?}", t.owned_links());
    assert!(!host_addresses().iter().any(|a| a.starts_with("10.214.1.")), "gateway address is left");
    assert_eq!(api_status(c.inspect_network(&net.name).await).0, 404);
}

#[tokio::test]
async fn concurrent_connects_get_distinct_addresses() {
    let mut t = Netd::start("par");
    let c = t.client();
    let net = c.create_network(&network(&format!("{}-net", t.prefix), &subnet(2))).await.expect("create");
    let paths: Vec<_> = (0..6).map(|i| t.netns(&format!("n{i}"))).collect();
    let mut tasks = Vec::new();
    for (i, p) in paths.iter().enumerate() {
        let (c, name, req) = (c.clone(), net.name.clone(), endpoint(&format!("c{i}"), p));
        tasks.push(tokio::spawn(async move { c.connect(&name, &req).await }));
    }
    let mut addrs = BTreeSet::new();
    for task in tasks {
        let ep = task.await.expect("join").expect("connect");
        assert!(link_exists(&ep.host_veth));
        addrs.insert(ep.ipv4_address);
    }
    assert_eq!(addrs.len(), 6, "{addrs:?}");
    assert!(t.pings("n0", "10.214.2.7"));
    let stored = c.inspect_network(&net.name).await.expect("inspect");
    assert_eq!(stored.endpoints.values().map(|e| e.ipv4_address).collect::<BTreeSet<_>>(), addrs);
}

#[tokio::test]
async fn bad_input_is_refused_clearly_and_leaves_nothing_half_made() {
    let mut t = Netd::start("bad");
    let c = t.client();
    let name = format!("{}-net", t.prefix);
    let net = c.create_network(&network(&name, &subnet(3))).await.expect("create");
    let ns = t.netns("a");
    let a = c.connect(&name, &endpoint("ca", &ns)).await.expect("connect");
    let links_before = {
        let mut l = t.owned_links();
        l.sort();
        l
    };
    let state_before = std::fs::read(t.root().join("netd/state.json")).expect("state");

    let bad_networks: Vec<(NetworkCreate, u16, &str)> = vec![
        (network(&name, "10.214.103.0/24"), 409, "already exists"),
        (network("bad name", "10.214.103.0/24"), 400, "invalid network name"),
        (network(&format!("{name}2"), "10.214.3.128/25"), 409, "overlaps 10.214.3.0/24"),
        (network(&format!("{name}2"), "10.214.103.7/24"), 400, "it should be 10.214.103.0/24"),
        (network(&format!("{name}2"), "10.214.103.0/40"), 400, "invalid subnet"),
        (
            NetworkCreate {
                ipam: IpamRequest {
                    subnet: Some("10.214.103.0/24".into()),
                    gateway: Some("10.214.104.1".into()),
                    ..IpamRequest::default()
                },
                ..network(&format!("{name}2"), "")
            },
            400,
            "not in subnet",
        ),
        (
            NetworkCreate {
                options: [(MTU_OPTION.to_string(), "9".to_string())].into_iter().collect(),
                ..network(&format!("{name}2"), "10.214.103.0/24")
            },
            400,
            "mtu",
        ),
        (NetworkCreate { driver: "overlay".into(), ..network(&format!("{name}2"), "10.214.103.0/24") }, 400, "driver"),
    ];
    for (req, want_status, want) in bad_networks {
        let (status, msg) = api_status(c.create_network(&req).await);
        assert_eq!(status, want_status, "{req:?}: {msg}");
        assert!(msg.contains(want), "{req:?}: {msg:?} should mention {want:?}");
    }

    let nb = t.netns("b");
    let with_ip = |ip: Ipv4Addr| EndpointRequest { ipv4_address: Some(ip), ..endpoint("cb", &nb) };
    let bad_endpoints: Vec<(EndpointRequest, u16, &str)> = vec![
        (with_ip(Ipv4Addr::new(10, 214, 4, 9)), 400, "not in subnet"),
        (with_ip(a.ipv4_address), 409, "already in use"),
        (with_ip(Ipv4Addr::new(10, 214, 3, 1)), 409, "the gateway"),
        (with_ip(Ipv4Addr::new(10, 214, 3, 255)), 400, "broadcast"),
        (EndpointRequest { mac_address: Some("01:00:5e:00:00:01".into()), ..endpoint("cb", &nb) }, 400, "mac_address"),
        (EndpointRequest { dns_servers: vec!["dns.example".into()], ..endpoint("cb", &nb) }, 400, "dns server"),
        (EndpointRequest { extra_hosts: vec!["no-address".into()], ..endpoint("cb", &nb) }, 400, "extra_hosts"),
        (EndpointRequest { links: vec![":x".into()], ..endpoint("cb", &nb) }, 400, "invalid link"),
        (endpoint("ca", &nb), 409, "already connected"),
        (endpoint("cb", std::path::Path::new("/run/netns/berth-no-such-netns")), 400, "does not exist"),
        (EndpointRequest { container_id: String::new(), ..endpoint("cb", &nb) }, 400, "container_id"),
        (endpoint("cb", std::path::Path::new("/etc/hostname")), 400, "network namespace /etc/hostname"),
    ];
    for (req, want_status, want) in bad_endpoints {
        let (status, msg) = api_status(c.connect(&name, &req).await);
        assert_eq!(status, want_status, "{req:?}: {msg}");
        assert!(msg.contains(want), "{req:?}: {msg:?} should mention {want:?}");
    }
    assert_eq!(api_status(c.connect("no-such-network", &endpoint("cb", &nb)).await).0, 404);
    assert_eq!(api_status(c.disconnect(&name, "nobody").await).0, 404);
    assert_eq!(api_status(c.remove_network("no-such-network").await).0, 404);

    let mut links_after = t.owned_links();
    links_after.sort();
    assert_eq!(links_after, links_before, "a refused request left links behind");
    assert_eq!(std::fs::read(t.root().join("netd/state.json")).expect("state"), state_before, "state changed");
    assert!(!t.exec("b", &["ip", "link", "show", "eth0"]).status.success(), "eth0 left in b");
    assert!(!host_addresses().iter().any(|a| a.starts_with("10.214.103.")), "half-made network");
    drop(net);
}

#[tokio::test]
async fn fixed_address_mac_mtu_second_interface_and_internal_networks() {
    let mut t = Netd::start("fix");
    let c = t.client();
    let mut req = network(&format!("{}-front", t.prefix), &subnet(5));
    req.options.insert(MTU_OPTION.into(), "1400".into());
    req.ipam.ip_range = Some("10.214.5.64/26".into());
    let front = c.create_network(&req).await.expect("front");
    let mut req = network(&format!("{}-back", t.prefix), &subnet(6));
    req.internal = true;
    let back = c.create_network(&req).await.expect("back");

    let (na, nb) = (t.netns("a"), t.netns("b"));
    let fixed = EndpointRequest {
        ipv4_address: Some(Ipv4Addr::new(10, 214, 5, 200)),
        mac_address: Some("02:42:aa:bb:cc:dd".into()),
        dns_search: vec!["example.test".into()],
        hostname: Some("web-host".into()),
        extra_hosts: vec!["gw:host-gateway".into(), "db.local=10.1.2.3".into()],
        ..endpoint("ca", &na)
    };
    let a = c.connect(&front.name, &fixed).await.expect("fixed");
    assert_eq!(a.ipv4_address, Ipv4Addr::new(10, 214, 5, 200));
    assert!(a.resolv_conf.contains("search example.test"), "{}", a.resolv_conf);
    for line in ["10.214.5.1\tgw\n", "10.1.2.3\tdb.local\n", "10.214.5.200\tweb-host ca\n", "127.0.0.1\tlocalhost\n"] {
        assert!(a.hosts.contains(line), "{line:?} missing from:\n{}", a.hosts);
    }
    let link = run_ok("ip", &["netns", "exec", &format!("{}-a", t.prefix), "ip", "-o", "link", "show", "eth0"]);
    assert!(link.contains("mtu 1400") && link.contains("02:42:aa:bb:cc:dd"), "{link}");
    let host = run_ok("ip", &["-o", "link", "show", &a.host_veth]);
    assert!(host.contains("mtu 1400") && host.contains(&format!("master {}", front.bridge)), "{host}");

    // Automatic addresses come from the ip_range.
    let b = c.connect(&front.name, &endpoint("cb", &nb)).await.expect("b");
    assert_eq!(b.ipv4_address, Ipv4Addr::new(10, 214, 5, 64));

    // A second network: eth1, and the default route stays the first network's.
    let a2 = c.connect(&back.name, &endpoint("ca", &na)).await.expect("a on back");
    assert_eq!(a2.interface, "eth1");
    assert_eq!(a2.gateway, None, "internal networks give no gateway");
    let route = String::from_utf8_lossy(&t.exec("a", &["ip", "route", "show", "default"]).stdout).into_owned();
    assert!(route.contains("via 10.214.5.1 dev eth0"), "{route}");

    // Only on an internal network: no default route at all, but the peers on it are reachable.
    let nc = t.netns("c");
    let cc = c.connect(&back.name, &endpoint("cc", &nc)).await.expect("c on back");
    let route = String::from_utf8_lossy(&t.exec("c", &["ip", "route", "show", "default"]).stdout).into_owned();
    assert!(route.trim().is_empty(), "internal network gave a default route: {route}");
    assert!(t.pings("c", &a2.ipv4_address.to_string()));
    assert_eq!(cc.ipv4_address, Ipv4Addr::new(10, 214, 6, 3));
}

#[tokio::test]
async fn restart_keeps_traffic_forgets_dead_endpoints_and_removes_orphans() {
    let mut t = Netd::start("rst");
    let c = t.client();
    let net = c.create_network(&network(&format!("{}-net", t.prefix), &subnet(7))).await.expect("create");
    let (na, nb) = (t.netns("a"), t.netns("b"));
    let a = c.connect(&net.name, &endpoint("ca", &na)).await.expect("a");
    let b = c.connect(&net.name, &endpoint("cb", &nb)).await.expect("b");

    t.kill();
    assert!(t.pings("a", "10.214.7.3"), "traffic stopped with netd");
    // While netd is away: b's namespace goes (its veth pair dies with it) and a link of netd's is left over
    // (what a crash between creating a link and recording it leaves).
    t.del_netns("b");
    let tag = t.tag().expect("tag");
    let orphan = "vethbn0rphan";
    run_ok("ip", &["link", "add", orphan, "type", "veth", "peer", "name", "vethbn0rphanp"]);
    run_ok("ip", &["link", "set", "dev", orphan, "alias", &tag]);
    assert!(links_with_alias(&tag).contains(&orphan.to_string()));
    // And a bridge recorded as about to be made, made but not yet tagged (a crash between the two steps).
    let half = format!("br-{:012x}", u64::from(std::process::id()) * 7919);
    run_ok("ip", &["link", "add", &half, "type", "bridge"]);
    let _cleanup = DeleteLinkOnDrop(half.clone());
    let state_path = t.root().join("netd/state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&state_path).expect("state")).expect("state json");
    state["pending_bridges"] = serde_json::json!([half]);
    std::fs::write(&state_path, serde_json::to_vec(&state).expect("json")).expect("write state");

    t.spawn();
    assert!(!link_exists(orphan), "orphan link kept:\n{}", t.log());
    assert!(!link_exists(&half), "half-made bridge kept:\n{}", t.log());
    assert!(!link_exists(&b.host_veth));
    let stored = c.inspect_network(&net.name).await.expect("inspect");
    assert_eq!(stored.endpoints.keys().collect::<Vec<_>>(), vec!["ca"], "dead endpoint kept");
    assert!(link_exists(&a.host_veth) && link_exists(&net.bridge));
    assert!(t.pings("a", "10.214.7.1"), "a lost its network over the restart");

    // A graceful stop and start changes nothing either.
    t.stop();
    t.spawn();
    assert_eq!(c.inspect_network(&net.name).await.expect("inspect"), stored);
    let nc = t.netns("c");
    let cc = c.connect(&net.name, &endpoint("cc", &nc)).await.expect("c");
    assert!(t.pings("c", &a.ipv4_address.to_string()));
    drop(cc);
}

#[tokio::test]
async fn automatic_subnets_skip_routed_ones_and_removing_everything_leaves_nothing() {
    // Two netds side by side (as two berth roots would be): the second must not take the first's subnet, which
    // it only knows as a route on the host.
    let mut first = Netd::start("au1");
    let mut second = Netd::start("au2");
    let (c1, c2) = (first.client(), second.client());
    let n1 = c1
        .create_network(&NetworkCreate { name: format!("{}-net", first.prefix), ..NetworkCreate::default() })
        .await
        .expect("first");
    let n2 = c2
        .create_network(&NetworkCreate { name: format!("{}-net", second.prefix), ..NetworkCreate::default() })
        .await
        .expect("second");
    assert!(!n1.user_subnet && !n2.user_subnet);
    assert!(!n1.subnet.contains(&n2.subnet.network()) && !n2.subnet.contains(&n1.subnet.network()), "{n1:?} {n2:?}");
    let routes = run_ok("ip", &["-4", "route", "show"]);
    for n in [&n1, &n2] {
        assert!(routes.contains(&format!("{} dev {}", n.subnet, n.bridge)), "{routes}");
    }
    let ns = first.netns("a");
    c1.connect(&n1.name, &endpoint("ca", &ns)).await.expect("connect");
    assert!(first.pings("a", &n1.gateway.to_string()));

    c1.disconnect(&n1.name, "ca").await.expect("disconnect");
    first.del_netns("a");
    c1.remove_network(&n1.name).await.expect("remove 1");
    c2.remove_network(&n2.name).await.expect("remove 2");
    first.stop();
    second.stop();
    assert!(first.owned_links().is_empty() && second.owned_links().is_empty());
    assert!(first.namespaces().is_empty());
    let addrs = host_addresses();
    for n in [&n1, &n2] {
        assert!(!addrs.iter().any(|a| a.starts_with(&format!("{}/", n.gateway))), "{addrs:?}");
        assert!(!run_ok("ip", &["-4", "route", "show"]).contains(&n.bridge));
    }
    assert_eq!(run("ip", &["link", "show", "dev", &n1.bridge]).status.code(), Some(1));
    let _ = path_str(&ns);
}
