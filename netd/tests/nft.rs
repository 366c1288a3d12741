//! berth's nft rules in a test-named table, against a real bridge, veth and network namespace made with `ip`
//! (root). Every name starts with `bnt`; leftovers of an earlier run are swept first, and everything is
//! removed at the end, also when the test fails. Traffic only goes between the host and the test namespace.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use berth_netd::nft::{NetworkRules, NftTable, PortAllocator, PortRequest, Proto, Publish};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const PREFIX: &str = "bnt";
const WAIT: Duration = Duration::from_secs(3);

/// Serialises the sweep against the tests of this file running in parallel (they share the prefix).
static SWEEP: Mutex<bool> = Mutex::new(false);

fn run(cmd: &str, args: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
    let out = Command::new(cmd).args(args).output()?;
    if !out.status.success() {
        return Err(format!("{cmd} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Remove links, namespaces and nft tables named with our prefix (left by an earlier, killed run).
fn sweep() {
    let mut done = SWEEP.lock().unwrap_or_else(|e| e.into_inner());
    if *done {
        return;
    }
    *done = true;
    if let Ok(links) = run("ip", &["-o", "link", "show"]) {
        for line in links.lines() {
            let name = line.split(": ").nth(1).unwrap_or("").split('@').next().unwrap_or("");
            if name.starts_with(PREFIX) {
                let _ = run("ip", &["link", "del", name]);
            }
        }
    }
    if let Ok(list) = run("ip", &["netns", "list"]) {
        for ns in list.lines().filter_map(|l| l.split_whitespace().next()) {
            if ns.starts_with(PREFIX) {
                let _ = run("ip", &["netns", "del", ns]);
            }
        }
    }
    if let Ok(tables) = run("nft", &["list", "tables", "inet"]) {
        for t in tables.lines().filter_map(|l| l.split_whitespace().nth(2)) {
            if t.starts_with(PREFIX) {
                let _ = run("nft", &["delete", "table", "inet", t]);
            }
        }
    }
}

/// A bridge with a veth into a namespace: host side `<p>br` (`10.231.<n>.1/24`), namespace `<p>ns` with
/// `10.231.<n>.2/24` and a default route via the bridge. Removed on drop.
struct TestNet {
    n: u8,
    bridge: String,
    ns: String,
    table: String,
}

impl TestNet {
    fn new(n: u8) -> Result<Self, Box<dyn std::error::Error>> {
        sweep();
        let p = format!("{PREFIX}{n}");
        let net = TestNet { n, bridge: format!("{p}br"), ns: format!("{p}ns"), table: format!("{p}t") };
        let (vh, vc) = (format!("{p}vh"), format!("{p}vc"));
        let gw = format!("{}/24", net.gateway());
        let ip = format!("{}/24", net.container());
        let gw_plain = net.gateway().to_string();
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", &net.ns],
            vec!["link", "add", &net.bridge, "type", "bridge"],
            vec!["addr", "add", &gw, "dev", &net.bridge],
            vec!["link", "set", &net.bridge, "up"],
            vec!["link", "add", &vh, "type", "veth", "peer", "name", &vc],
            vec!["link", "set", &vc, "netns", &net.ns],
            vec!["link", "set", &vh, "master", &net.bridge, "up"],
            vec!["-n", &net.ns, "addr", "add", &ip, "dev", &vc],
            vec!["-n", &net.ns, "link", "set", &vc, "up"],
            vec!["-n", &net.ns, "link", "set", "lo", "up"],
            vec!["-n", &net.ns, "route", "add", "default", "via", &gw_plain],
        ];
        for step in steps {
            run("ip", &step)?;
        }
        // With br_netfilter loaded (this VM: bridge-nf-call-iptables=1), a packet DNATed back to the container
        // it came from is bridged out of the port it arrived on: the port needs hairpin mode.
        std::fs::write(format!("/sys/class/net/{vh}/brport/hairpin_mode"), "1")?;
        // What berth-netd sets on its bridges: 127.0.0.1 may be routed out of the bridge after DNAT.
        std::fs::write(format!("/proc/sys/net/ipv4/conf/{}/route_localnet", net.bridge), "1")?;
        Ok(net)
    }

    fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.n, 1)
    }

    fn container(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 231, self.n, 2)
    }

    fn rules(&self, internal: bool) -> NetworkRules {
        NetworkRules {
            id: format!("net{}", self.n),
            bridge: self.bridge.clone(),
            subnets: vec![format!("10.231.{}.0/24", self.n).parse().expect("literal subnet")],
            internal,
        }
    }

    /// Run `f` on a thread that entered the namespace (setns is per thread): its sockets live there.
    fn in_ns<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<JoinHandle<T>, Box<dyn std::error::Error>> {
        let file = std::fs::File::open(format!("/run/netns/{}", self.ns))?;
        Ok(std::thread::spawn(move || {
            if let Err(e) = nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET) {
                panic!("setns: {e}");
            }
            f()
        }))
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        let _ = run("nft", &["delete", "table", "inet", &self.table]);
        let _ = run("ip", &["link", "del", &format!("{PREFIX}{}vh", self.n)]);
        let _ = run("ip", &["link", "del", &self.bridge]);
        let _ = run("ip", &["netns", "del", &self.ns]);
    }
}

/// In the namespace: a TCP server on :80 answering "hello <peer ip>\n" and a UDP server on :53 answering
/// "pong <peer ip> <data>", until `stop` is set (bounded: 30 s at most).
fn servers(net: &TestNet, stop: Arc<AtomicBool>) -> Result<JoinHandle<()>, Box<dyn std::error::Error>> {
    let ip = net.container();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let handle = net.in_ns(move || {
        let tcp = TcpListener::bind((ip, 80));
        let udp = UdpSocket::bind((ip, 53));
        let (Ok(tcp), Ok(udp)) = (tcp, udp) else {
            let _ = ready_tx.send(false);
            return;
        };
        let _ = tcp.set_nonblocking(true);
        let _ = udp.set_read_timeout(Some(Duration::from_millis(20)));
        let _ = ready_tx.send(true);
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            if let Ok((mut s, peer)) = tcp.accept() {
                let _ = s.write_all(format!("hello {}\n", peer.ip()).as_bytes());
            }
            if let Ok((n, peer)) = udp.recv_from(&mut buf) {
                let reply = format!("pong {} {}", peer.ip(), String::from_utf8_lossy(&buf[..n]));
                let _ = udp.send_to(reply.as_bytes(), peer);
            }
        }
    })?;
    if !ready_rx.recv_timeout(WAIT).unwrap_or(false) {
        return Err("servers in the namespace did not start".into());
    }
    Ok(handle)
}

fn tcp_get(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, WAIT)?;
    s.set_read_timeout(Some(WAIT))?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn udp_ask(addr: SocketAddr, data: &str) -> std::io::Result<String> {
    let s = UdpSocket::bind("127.0.0.1:0")?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    // UDP may be lost: a few bounded tries.
    for _ in 0..5 {
        s.send_to(data.as_bytes(), addr)?;
        let mut buf = [0u8; 512];
        if let Ok((n, _)) = s.recv_from(&mut buf) {
            return Ok(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no udp reply"))
}

fn publishes(net: &TestNet, held: &[berth_netd::nft::PortBinding]) -> Vec<Publish> {
    held.iter()
        .map(|b| Publish {
            proto: b.proto,
            host_ip: b.host_ip,
            host_port: b.host_port,
            container_ip: IpAddr::V4(net.container()),
            container_port: b.container_port,
        })
        .collect()
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn published_tcp_and_udp_answer_on_localhost_and_the_bridge_address_then_go_away() -> TestResult {
    assert!(root(), "this test needs root (nft, ip netns)");
    let net = TestNet::new(1)?;
    let stop = Arc::new(AtomicBool::new(false));
    let server = servers(&net, stop.clone())?;

    let table = NftTable::new(&net.table)?;
    table.ensure()?;
    table.set_network(&net.rules(false))?;
    let ports = PortAllocator::new();
    let held = ports.reserve(
        "ep1",
        &[
            PortRequest { proto: Proto::Tcp, host_ip: None, host_ports: None, container_ports: (80, 80) },
            PortRequest {
                proto: Proto::Udp,
                host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                host_ports: None,
                container_ports: (53, 53),
            },
        ],
    )?;
    table.set_endpoint("ep1", &publishes(&net, &held))?;
    let (tport, uport) = (held[0].host_port, held[1].host_port);

    // 127.0.0.1: DNAT in output, routed out of the bridge (route_localnet), source masqueraded to the bridge.
    let local = tcp_get(SocketAddr::from((Ipv4Addr::LOCALHOST, tport)))?;
    assert_eq!(local, format!("hello {}\n", net.gateway()));
    // The host's address on the bridge.
    let bridge = tcp_get(SocketAddr::from((net.gateway(), tport)))?;
    assert_eq!(bridge, format!("hello {}\n", net.gateway()));
    // udp on 127.0.0.1 only.
    let pong = udp_ask(SocketAddr::from((Ipv4Addr::LOCALHOST, uport)), "ping")?;
    assert_eq!(pong, format!("pong {} ping", net.gateway()));

    // The same port again is refused, naming who holds it.
    let again = ports.reserve(
        "ep2",
        &[PortRequest {
            proto: Proto::Tcp,
            host_ip: None,
            host_ports: Some((tport, tport)),
            container_ports: (80, 80),
        }],
    );
    let err = again.err().ok_or("a published port was given twice")?;
    assert!(err.to_string().contains("berth endpoint ep1"), "{err}");

    let listing = table.list()?;
    assert_eq!(listing.endpoints().len(), 1);
    assert_eq!(listing.networks().len(), 1);
    assert!(listing.bridges.contains(&net.bridge));

    // Setting the endpoint again replaces its rules rather than adding more.
    let before = table.list()?.owned_rule_count();
    table.set_endpoint("ep1", &publishes(&net, &held))?;
    assert_eq!(table.list()?.owned_rule_count(), before);

    table.remove_endpoint("ep1")?;
    ports.release("ep1");
    let refused = tcp_get(SocketAddr::from((Ipv4Addr::LOCALHOST, tport)));
    assert!(refused.is_err(), "the port still answers after unpublishing: {refused:?}");
    table.remove_network(&net.rules(false).id)?;
    let empty = table.list()?;
    assert!(empty.exists);
    assert_eq!(empty.owned_rule_count(), 0, "{empty:?}");
    assert!(empty.bridges.is_empty(), "{empty:?}");
    table.delete()?;
    assert!(!table.list()?.exists);

    stop.store(true, Ordering::SeqCst);
    server.join().map_err(|_| "server thread panicked")?;
    Ok(())
}

fn connects(net: &TestNet, to: SocketAddr) -> Result<bool, Box<dyn std::error::Error>> {
    let client = net.in_ns(move || TcpStream::connect_timeout(&to, Duration::from_millis(700)).is_ok())?;
    Ok(client.join().map_err(|_| "client thread panicked")?)
}

#[test]
fn hairpin_isolation_between_networks_and_internal_networks() -> TestResult {
    assert!(root(), "this test needs root (nft, ip netns)");
    let a = TestNet::new(2)?;
    let b = TestNet::new(3)?;
    let stop = Arc::new(AtomicBool::new(false));
    let server_a = servers(&a, stop.clone())?;
    let server_b = servers(&b, stop.clone())?;
    let b_direct = SocketAddr::from((b.container(), 80));
    // Without berth's rules the host routes between the two bridges (ip_forward): the isolation below is real.
    assert!(connects(&a, b_direct)?, "a cannot reach b even without rules");

    let table = NftTable::new(&a.table)?;
    table.set_network(&a.rules(false))?;
    table.set_network(&b.rules(false))?;
    let ports = PortAllocator::new();
    let request = |port| PortRequest { proto: Proto::Tcp, host_ip: None, host_ports: port, container_ports: (80, 80) };
    let held_a = ports.reserve("epa", &[request(None)])?;
    table.set_endpoint("epa", &publishes(&a, &held_a))?;
    let held_b = ports.reserve("epb", &[request(None)])?;
    table.set_endpoint("epb", &publishes(&b, &held_b))?;
    let (port_a, port_b) = (held_a[0].host_port, held_b[0].host_port);

    // Hairpin: a container reaches its own published port through its gateway; masqueraded, so the reply
    // comes back through the host and the client sees the gateway.
    let gw = a.gateway();
    let hairpin = a.in_ns(move || tcp_get(SocketAddr::from((gw, port_a))).map_err(|e| e.to_string()))?;
    let got = hairpin.join().map_err(|_| "client thread panicked")??;
    assert_eq!(got, format!("hello {gw}\n"));

    // Between networks: dropped, but a published port is public.
    assert!(!connects(&a, b_direct)?, "a reached b across networks");
    assert!(connects(&a, SocketAddr::from((gw, port_b)))?, "a cannot reach b's published port");

    // a made internal: nothing leaves its bridge, not even to a published port of another network.
    table.set_network(&a.rules(true))?;
    let listing = table.list()?;
    assert!(listing.rules.iter().any(|r| r.chain == "internal"), "{listing:?}");
    assert!(!connects(&a, SocketAddr::from((gw, port_b)))?, "internal network reached another network");
    assert!(!connects(&a, b_direct)?);

    for ep in ["epa", "epb"] {
        table.remove_endpoint(ep)?;
        ports.release(ep);
    }
    table.remove_network(&a.rules(true).id)?;
    table.remove_network(&b.rules(false).id)?;
    let empty = table.list()?;
    assert_eq!(empty.owned_rule_count(), 0, "{empty:?}");
    assert!(empty.bridges.is_empty());
    table.delete()?;
    stop.store(true, Ordering::SeqCst);
    server_a.join().map_err(|_| "server thread panicked")?;
    server_b.join().map_err(|_| "server thread panicked")?;
    Ok(())
}

#[test]
fn dual_stack_and_udp_rules_are_accepted_and_removed() -> TestResult {
    assert!(root(), "this test needs root (nft)");
    sweep();
    // Rules match interface names as strings: no link is needed to load them.
    let table = NftTable::new("bnt4t")?;
    let net = NetworkRules {
        id: "net4".into(),
        bridge: "bnt4br".into(),
        subnets: vec!["10.231.4.0/24".parse()?, "fd00:4::/64".parse()?],
        internal: false,
    };
    let result = (|| -> TestResult {
        table.set_network(&net)?;
        let v4: IpAddr = "10.231.4.2".parse()?;
        let v6: IpAddr = "fd00:4::2".parse()?;
        let publish = |proto, host_ip, container_ip| Publish {
            proto,
            host_ip,
            host_port: 40000,
            container_ip,
            container_port: 80,
        };
        table.set_endpoint(
            "ep4",
            &[
                publish(Proto::Tcp, None, v4),
                publish(Proto::Udp, None, v4),
                publish(Proto::Tcp, None, v6),
                // Loaded, though the kernel never routes ::1 to a container (see nft/mod.rs).
                publish(Proto::Tcp, Some("::1".parse()?), v6),
            ],
        )?;
        let listing = table.list()?;
        let ep_rules = listing.rules.iter().filter(|r| r.chain == "publish").count();
        assert_eq!(ep_rules, 4, "{listing:?}");
        table.remove_endpoint("ep4")?;
        table.remove_network("net4")?;
        assert_eq!(table.list()?.owned_rule_count(), 0);
        Ok(())
    })();
    let deleted = table.delete();
    result?;
    deleted?;
    Ok(())
}
