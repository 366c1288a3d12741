//! End-to-end: the real berth-netd with its nft table (a per-test name): networks isolated from each other,
//! published ports answering on 127.0.0.1 and on the bridge address, across a restart, and nothing left when
//! everything is removed (root only). Traffic only goes between the host and the test's namespaces.

mod common;

use std::io::Read as _;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use berth_netd::api::{EndpointRequest, IpamRequest, NetworkCreate, PortMapping, PortPublish};
use berth_netd::client::ClientError;
use common::{Netd, subnet};

fn network(name: &str, subnet: &str, internal: bool) -> NetworkCreate {
    NetworkCreate {
        name: name.to_string(),
        internal,
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

/// What a TCP server at `addr` says, or the error (bounded by timeouts).
fn tcp_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.trim().to_string())
}

fn publish(container: &str, network: &str, host_port: Option<u16>, container_port: u16) -> PortPublish {
    PortPublish {
        container_id: container.into(),
        network: network.into(),
        ports: vec![PortMapping { host_port, container_port, ..PortMapping::default() }],
    }
}

fn status(r: Result<impl std::fmt::Debug, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api { status, message }) => (status, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn networks_are_isolated_and_published_ports_answer_across_restarts_until_unpublished() {
    let mut t = Netd::start("prt");
    let c = t.client();
    let one = c.create_network(&network(&format!("{}-one", t.prefix), &subnet(10), false)).await.expect("one");
    let two = c.create_network(&network(&format!("{}-two", t.prefix), &subnet(11), false)).await.expect("two");
    let inner = c.create_network(&network(&format!("{}-in", t.prefix), &subnet(12), true)).await.expect("internal");
    let (na, nb, nc) = (t.netns("a"), t.netns("b"), t.netns("c"));
    let a = c.connect(&one.name, &endpoint("a", &na)).await.expect("a");
    let b = c.connect(&one.name, &endpoint("b", &nb)).await.expect("b");
    let cc = c.connect(&two.name, &endpoint("c", &nc)).await.expect("c");
    assert!(t.nft_table().contains(&format!("berth net={}", one.id)), "{}", t.nft_table());

    // Same network: reachable. Different networks: dropped both ways, though the host routes between them.
    assert!(t.pings("a", &b.ipv4_address.to_string()));
    assert!(!t.pings("a", &cc.ipv4_address.to_string()), "a reaches c on another network");
    assert!(!t.pings("c", &a.ipv4_address.to_string()), "c reaches a on another network");

    // A published port (ephemeral) answers on 127.0.0.1 and on the bridge's address.
    t.serve_tcp("a", 8080, "hello-from-a");
    let ports = c.publish(&publish("a", &one.name, None, 8080)).await.expect("publish");
    assert_eq!(ports.len(), 1);
    let port = ports[0].host_port;
    assert!(port > 0 && ports[0].container_port == 8080);
    let local = SocketAddr::from(([127, 0, 0, 1], port));
    let on_bridge = SocketAddr::new(two.gateway.into(), port);
    assert_eq!(tcp_get(local).expect("127.0.0.1"), "hello-from-a", "{}", t.nft_table());
    assert_eq!(tcp_get(on_bridge).expect("bridge address"), "hello-from-a");
    // The container reaches its own published port through the host's address (hairpin), and so does its
    // neighbour on the same network.
    for from in ["a", "b"] {
        let out = t.exec(from, &["busybox", "nc", "-w", "2", &one.gateway.to_string(), &port.to_string()]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hello-from-a", "from {from}: {out:?}");
    }

    // The port is taken now, by berth; and a container publishes once.
    let (code, msg) = status(c.publish(&publish("c", &two.name, Some(port), 80)).await);
    assert_eq!(code, 409, "{msg}");
    assert!(msg.contains(&port.to_string()), "{msg}");
    assert_eq!(status(c.publish(&publish("a", &one.name, Some(port + 1), 8080)).await).0, 409);
    // No published ports on internal networks.
    let ni = t.netns("i");
    c.connect(&inner.name, &endpoint("i", &ni)).await.expect("i");
    let (code, msg) = status(c.publish(&publish("i", &inner.name, None, 80)).await);
    assert_eq!(code, 400, "{msg}");

    // netd down: the port still answers. Back up: still, and the port is held again.
    t.kill();
    assert_eq!(tcp_get(local).expect("while netd is down"), "hello-from-a");
    t.spawn();
    assert_eq!(tcp_get(local).expect("after restart"), "hello-from-a");
    assert_eq!(status(c.publish(&publish("c", &two.name, Some(port), 80)).await).0, 409);

    c.unpublish("a").await.expect("unpublish");
    assert!(tcp_get(local).is_err(), "port still forwarded after unpublish");
    assert!(!t.nft_table().contains("berth ep="), "{}", t.nft_table());

    // An endpoint whose namespace vanished while netd was down takes its rules with it on the next start.
    let again = c.publish(&publish("b", &one.name, None, 9090)).await.expect("publish b");
    assert!(t.nft_table().contains(&format!("berth ep={}", b.id)));
    t.kill();
    t.del_netns("b");
    t.spawn();
    assert!(!t.nft_table().contains("berth ep="), "orphaned rules kept:\n{}", t.nft_table());
    assert!(!c.inspect_network(&one.name).await.expect("inspect").endpoints.contains_key("b"));
    assert!(again[0].host_port > 0);

    // Removing everything leaves only the table's fixed rules.
    for (net, who) in [(&one.name, "a"), (&two.name, "c"), (&inner.name, "i")] {
        c.disconnect(net, who).await.expect("disconnect");
    }
    for net in [&one, &two, &inner] {
        c.remove_network(&net.id).await.expect("remove");
    }
    let table = t.nft_table();
    assert!(!table.contains("berth net=") && !table.contains("berth ep="), "{table}");
    assert!(t.owned_links().is_empty(), "{:?}", t.owned_links());
}
