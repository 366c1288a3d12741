//! berth's DNS server on loopback addresses, with stub upstream resolvers on loopback: no query leaves the
//! machine. Clients are told apart by their source address, so each test client binds its own 127.x address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use berth_netd::dns::{ClientOptions, DnsServer, Endpoint, NetworkInfo, Registry, Upstream};
use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::time::timeout;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const WAIT: Duration = Duration::from_secs(3);

/// A stub resolver: `example.test` A → `answer` (TTL 300), anything else NXDOMAIN. Counts the queries it gets.
struct Stub {
    addr: SocketAddr,
    queries: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn stub_reply(raw: &[u8], answer: Ipv4Addr) -> Option<Vec<u8>> {
    let request = Message::from_vec(raw).ok()?;
    let query = request.queries.first()?.clone();
    let mut reply = Message::response(request.metadata.id, OpCode::Query);
    reply.metadata.recursion_available = true;
    if query.name().to_ascii().eq_ignore_ascii_case("example.test.") && query.query_type() == RecordType::A {
        reply.add_answer(Record::from_rdata(query.name().clone(), 300, RData::A(A(answer))));
    } else {
        reply.metadata.response_code = ResponseCode::NXDomain;
    }
    reply.add_query(query);
    reply.to_vec().ok()
}

async fn stub(ip: Ipv4Addr, answer: Ipv4Addr) -> Result<Stub, Box<dyn std::error::Error>> {
    stub_at(SocketAddr::new(IpAddr::V4(ip), 0), answer).await
}

/// A stub on a given address (port 0: any free port, the same for UDP and TCP).
async fn stub_at(addr: SocketAddr, answer: Ipv4Addr) -> Result<Stub, Box<dyn std::error::Error>> {
    let udp = UdpSocket::bind(addr).await?;
    let addr = udp.local_addr()?;
    let tcp = TcpListener::bind(addr).await?;
    let queries = Arc::new(AtomicUsize::new(0));
    let count = queries.clone();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            tokio::select! {
                got = udp.recv_from(&mut buf) => {
                    let Ok((n, from)) = got else { return };
                    count.fetch_add(1, Ordering::SeqCst);
                    if let Some(reply) = stub_reply(&buf[..n], answer) {
                        let _ = udp.send_to(&reply, from).await;
                    }
                }
                conn = tcp.accept() => {
                    let Ok((mut s, _)) = conn else { return };
                    count.fetch_add(1, Ordering::SeqCst);
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).await.is_err() { continue }
                    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut msg).await.is_err() { continue }
                    if let Some(reply) = stub_reply(&msg, answer) {
                        let Ok(n) = u16::try_from(reply.len()) else { continue };
                        let _ = s.write_all(&n.to_be_bytes()).await;
                        let _ = s.write_all(&reply).await;
                    }
                }
            }
        }
    });
    Ok(Stub { addr, queries, task })
}

fn query_bytes(name: &str, rtype: RecordType) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut m = Message::query();
    m.metadata.id = 4242;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name)?, rtype));
    Ok(m.to_vec()?)
}

/// Ask `server` from the source address `from` over UDP.
async fn ask(
    from: Ipv4Addr,
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
) -> Result<Message, Box<dyn std::error::Error>> {
    let socket = UdpSocket::bind((from, 0)).await?;
    socket.connect(server).await?;
    socket.send(&query_bytes(name, rtype)?).await?;
    let mut buf = vec![0u8; 4096];
    let n = timeout(WAIT, socket.recv(&mut buf)).await??;
    let reply = Message::from_vec(&buf[..n])?;
    assert_eq!(reply.metadata.id, 4242);
    assert_eq!(reply.metadata.message_type, MessageType::Response);
    Ok(reply)
}

/// Ask over TCP.
async fn ask_tcp(
    from: Ipv4Addr,
    server: SocketAddr,
    name: &str,
    rtype: RecordType,
) -> Result<Message, Box<dyn std::error::Error>> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((from, 0).into())?;
    let mut s: TcpStream = timeout(WAIT, socket.connect(server)).await??;
    let q = query_bytes(name, rtype)?;
    let len = u16::try_from(q.len())?;
    s.write_all(&len.to_be_bytes()).await?;
    s.write_all(&q).await?;
    let mut len = [0u8; 2];
    timeout(WAIT, s.read_exact(&mut len)).await??;
    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
    timeout(WAIT, s.read_exact(&mut msg)).await??;
    Ok(Message::from_vec(&msg)?)
}

fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

fn endpoint(c: &str, net: &str, ip: Ipv4Addr, v6: Option<Ipv6Addr>, names: &[&str]) -> Endpoint {
    Endpoint {
        container_id: c.into(),
        network_id: net.into(),
        ipv4: Some(ip),
        ipv6: v6,
        names: names.iter().map(|s| s.to_string()).collect(),
    }
}

/// Loopback addresses of this test file: 127.53.<test>.x, so the tests can run in parallel.
fn lo(test: u8, last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 53, test, last)
}

struct Setup {
    registry: Arc<Registry>,
    server: DnsServer,
    stub: Stub,
    _dir: tempfile::TempDir,
    resolv: std::path::PathBuf,
}

/// Network `n1` (`proj_n1`) with web-1 (lo .2, with an IPv6 address) and web-2 (lo .3), both `web`; network
/// `n2` with db (lo .4). Upstream: a resolv.conf naming a stub on lo .9.
async fn setup(test: u8) -> Result<Setup, Box<dyn std::error::Error>> {
    let stub = stub(lo(test, 9), Ipv4Addr::new(192, 0, 2, 1)).await?;
    let dir = tempfile::tempdir()?;
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {}\n", stub.addr.ip()))?;
    let upstream = Upstream::from_resolv_conf(&resolv, stub.addr.port(), Duration::ZERO);
    let registry = Arc::new(Registry::new());
    for (id, internal) in [("n1", false), ("n2", false)] {
        registry.set_network(NetworkInfo { id: id.into(), name: format!("proj_{id}"), internal });
    }
    registry.set_endpoint(endpoint(
        "c1",
        "n1",
        lo(test, 2),
        Some("2001:db8::2".parse()?),
        &["proj-web-1", "web", "frontend"],
    ));
    registry.set_endpoint(endpoint("c2", "n1", lo(test, 3), None, &["proj-web-2", "web"]));
    registry.set_endpoint(endpoint("c3", "n2", lo(test, 4), None, &["proj-db-1", "db"]));
    let server =
        DnsServer::start(SocketAddr::new(IpAddr::V4(lo(test, 1)), 0), registry.clone(), Arc::new(upstream)).await?;
    Ok(Setup { registry, server, stub, _dir: dir, resolv })
}

#[tokio::test]
async fn a_aaaa_and_ptr_with_ttl_0_and_rotated_replicas() -> TestResult {
    let s = setup(1).await?;
    let srv = s.server.local_addr();

    let first = ask(lo(1, 2), srv, "web", RecordType::A).await?;
    assert_eq!(first.metadata.response_code, ResponseCode::NoError);
    assert!(first.metadata.authoritative);
    assert!(first.answers.iter().all(|r| r.ttl == 0), "{first:?}");
    let mut got = a_records(&first);
    let second = a_records(&ask(lo(1, 2), srv, "web.", RecordType::A).await?);
    assert_ne!(got, second, "consecutive answers rotate the replicas");
    got.sort();
    assert_eq!(got, vec![lo(1, 2), lo(1, 3)]);

    // Alias, container name and name.network.
    assert_eq!(a_records(&ask(lo(1, 3), srv, "FrontEnd", RecordType::A).await?), vec![lo(1, 2)]);
    assert_eq!(a_records(&ask(lo(1, 3), srv, "proj-web-2.proj_n1", RecordType::A).await?), vec![lo(1, 3)]);

    let aaaa = ask(lo(1, 3), srv, "proj-web-1", RecordType::AAAA).await?;
    let v6: Vec<Ipv6Addr> = aaaa
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::AAAA(a) => Some(a.0),
            _ => None,
        })
        .collect();
    assert_eq!(v6, vec!["2001:db8::2".parse::<Ipv6Addr>()?]);
    assert!(aaaa.answers.iter().all(|r| r.ttl == 0));

    // A berth name without AAAA: NOERROR and no answer, not forwarded.
    let before = s.stub.queries.load(Ordering::SeqCst);
    let none = ask(lo(1, 2), srv, "proj-web-2", RecordType::AAAA).await?;
    assert_eq!(none.metadata.response_code, ResponseCode::NoError);
    assert!(none.answers.is_empty());
    assert_eq!(s.stub.queries.load(Ordering::SeqCst), before);

    let ptr = ask(lo(1, 2), srv, "3.1.53.127.in-addr.arpa", RecordType::PTR).await?;
    let names: Vec<String> = ptr
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::PTR(p) => Some(p.0.to_ascii()),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec!["proj-web-2.proj_n1.".to_string()]);
    assert!(ptr.answers.iter().all(|r| r.ttl == 0));

    // TCP answers the same.
    let mut tcp = a_records(&ask_tcp(lo(1, 2), srv, "web", RecordType::A).await?);
    tcp.sort();
    assert_eq!(tcp, vec![lo(1, 2), lo(1, 3)]);
    s.server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn names_on_other_networks_go_upstream_and_are_not_found() -> TestResult {
    let s = setup(2).await?;
    let srv = s.server.local_addr();
    // db (on n2) asks for web (on n1): forwarded, and the stub does not know it.
    let before = s.stub.queries.load(Ordering::SeqCst);
    let reply = ask(lo(2, 4), srv, "web", RecordType::A).await?;
    assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    assert!(s.stub.queries.load(Ordering::SeqCst) > before);
    let ptr = ask(lo(2, 4), srv, "2.2.53.127.in-addr.arpa", RecordType::PTR).await?;
    assert!(ptr.answers.is_empty());
    // Disconnecting web-1 removes its name at once.
    s.registry.remove_endpoint("c1", "n1");
    let left = ask(lo(2, 3), srv, "web", RecordType::A).await?;
    assert_eq!(a_records(&left), vec![lo(2, 3)]);
    let gone = ask(lo(2, 3), srv, "frontend", RecordType::A).await?;
    assert_eq!(gone.metadata.response_code, ResponseCode::NXDomain);
    s.server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn other_names_are_forwarded_over_udp_and_tcp_and_follow_resolv_conf() -> TestResult {
    let s = setup(3).await?;
    let srv = s.server.local_addr();
    let reply = ask(lo(3, 2), srv, "example.test", RecordType::A).await?;
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert_eq!(a_records(&reply), vec![Ipv4Addr::new(192, 0, 2, 1)]);
    assert_eq!(reply.answers[0].ttl, 300, "forwarded answers keep their TTL");
    let tcp = ask_tcp(lo(3, 2), srv, "example.test", RecordType::A).await?;
    assert_eq!(a_records(&tcp), vec![Ipv4Addr::new(192, 0, 2, 1)]);

    // resolv.conf now names another stub (another loopback address; the upstream port is the same for all).
    let second =
        stub_at(SocketAddr::new(IpAddr::V4(lo(3, 10)), s.stub.addr.port()), Ipv4Addr::new(192, 0, 2, 2)).await?;
    let tmp = s.resolv.with_extension("new");
    std::fs::write(&tmp, format!("# moved\nnameserver {}\n", lo(3, 10)))?;
    std::fs::rename(&tmp, &s.resolv)?;
    let moved = ask(lo(3, 2), srv, "example.test", RecordType::A).await?;
    assert_eq!(a_records(&moved), vec![Ipv4Addr::new(192, 0, 2, 2)]);
    assert_eq!(second.queries.load(Ordering::SeqCst), 1);

    // A container with its own `dns` servers is forwarded there instead.
    let own = stub(lo(3, 11), Ipv4Addr::new(192, 0, 2, 3)).await?;
    s.registry.set_client_options("c2", ClientOptions { links: vec![], dns: vec![own.addr] });
    let via_own = ask(lo(3, 3), srv, "example.test", RecordType::A).await?;
    assert_eq!(a_records(&via_own), vec![Ipv4Addr::new(192, 0, 2, 3)]);
    let via_host = ask(lo(3, 2), srv, "example.test", RecordType::A).await?;
    assert_eq!(a_records(&via_host), vec![Ipv4Addr::new(192, 0, 2, 2)]);
    s.server.stop().await?;
    Ok(())
}

#[tokio::test]
async fn links_and_internal_networks() -> TestResult {
    let s = setup(4).await?;
    let srv = s.server.local_addr();
    s.registry
        .set_client_options("c2", ClientOptions { links: vec![("backend".into(), "proj-web-1".into())], dns: vec![] });
    assert_eq!(a_records(&ask(lo(4, 3), srv, "backend", RecordType::A).await?), vec![lo(4, 2)]);
    // Only the linking container sees the link's alias.
    let other = ask(lo(4, 2), srv, "backend", RecordType::A).await?;
    assert_eq!(other.metadata.response_code, ResponseCode::NXDomain);

    // A container only on an internal network resolves berth names but nothing outside.
    s.registry.set_network(NetworkInfo { id: "int".into(), name: "proj_int".into(), internal: true });
    s.registry.set_endpoint(endpoint("c9", "int", lo(4, 20), None, &["proj-job-1", "job"]));
    assert_eq!(a_records(&ask(lo(4, 20), srv, "job", RecordType::A).await?), vec![lo(4, 20)]);
    let before = s.stub.queries.load(Ordering::SeqCst);
    let refused = ask(lo(4, 20), srv, "example.test", RecordType::A).await?;
    assert_eq!(refused.metadata.response_code, ResponseCode::Refused);
    assert_eq!(s.stub.queries.load(Ordering::SeqCst), before);
    s.server.stop().await?;
    Ok(())
}
