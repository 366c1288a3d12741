//! End-to-end: names served by the real berth-netd's DNS on each network's gateway, asked from namespaces with
//! busybox nslookup (root only). Names outside berth go to a dead resolver on loopback (see common/mod.rs).

mod common;

use berth_netd::api::{EndpointRequest, IpamRequest, NetworkCreate};
use common::{Netd, subnet};

fn network(name: &str, subnet: &str) -> NetworkCreate {
    NetworkCreate {
        name: name.to_string(),
        ipam: IpamRequest { subnet: Some(subnet.to_string()), ..IpamRequest::default() },
        ..NetworkCreate::default()
    }
}

fn endpoint(container: &str, netns: &std::path::Path, aliases: &[&str]) -> EndpointRequest {
    EndpointRequest {
        container_id: container.to_string(),
        netns: netns.to_path_buf(),
        names: vec![container.to_string()],
        aliases: aliases.iter().map(|a| a.to_string()).collect(),
        ..EndpointRequest::default()
    }
}

#[tokio::test]
async fn names_resolve_on_shared_networks_only_and_survive_a_restart() {
    let mut t = Netd::start("dns");
    let c = t.client();
    let front = c.create_network(&network(&format!("{}-front", t.prefix), &subnet(20))).await.expect("front");
    let back = c.create_network(&network(&format!("{}-back", t.prefix), &subnet(21))).await.expect("back");
    let (nweb, napi, ndb) = (t.netns("web"), t.netns("api"), t.netns("db"));
    // web on front; api on front and back; db on back only.
    let web = c.connect(&front.name, &endpoint("web", &nweb, &["www"])).await.expect("web");
    let api_front = c.connect(&front.name, &endpoint("api", &napi, &[])).await.expect("api front");
    let api_back = c.connect(&back.name, &endpoint("api", &napi, &[])).await.expect("api back");
    let db = c.connect(&back.name, &endpoint("db", &ndb, &["database"])).await.expect("db");
    assert!(
        api_back.resolv_conf.contains("nameserver 10.214.20.1\nnameserver 10.214.21.1\n"),
        "{}",
        api_back.resolv_conf
    );
    let gw_front = front.gateway.to_string();
    let gw_back = back.gateway.to_string();

    assert_eq!(t.lookup("web", "api", &gw_front), vec![api_front.ipv4_address.to_string()], "{}", t.log());
    assert_eq!(t.lookup("api", "www", &gw_front), vec![web.ipv4_address.to_string()]);
    assert_eq!(t.lookup("api", "database", &gw_back), vec![db.ipv4_address.to_string()]);
    assert_eq!(t.lookup("db", "api", &gw_back), vec![api_back.ipv4_address.to_string()]);
    // web shares no network with db: not even through the gateway db's network uses.
    assert!(t.lookup("web", "db", &gw_front).is_empty());
    assert!(t.lookup("db", "web", &gw_back).is_empty());

    // Names survive netd's restart (kill -9: nothing saved on the way out).
    t.kill();
    t.spawn();
    assert_eq!(t.lookup("web", "api", &gw_front), vec![api_front.ipv4_address.to_string()], "{}", t.log());
    assert_eq!(t.lookup("db", "api", &gw_back), vec![api_back.ipv4_address.to_string()]);

    // Disconnect takes the name away on that network only.
    c.disconnect(&front.name, "api").await.expect("disconnect");
    assert!(t.lookup("web", "api", &gw_front).is_empty());
    assert_eq!(t.lookup("db", "api", &gw_back), vec![api_back.ipv4_address.to_string()]);

    // Removing the network stops its listener: the gateway address is gone with the bridge.
    c.disconnect(&front.name, "web").await.expect("disconnect web");
    c.remove_network(&front.name).await.expect("remove front");
    assert!(t.lookup("db", "database", &gw_back).contains(&db.ipv4_address.to_string()));
}
