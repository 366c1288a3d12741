//! Upstream resolvers for names outside berth, and the forwarder that asks them.
//!
//! The forwarder is hand-written (a UDP exchange, TCP for TCP clients): hickory-resolver would parse, cache and
//! re-synthesise answers, while netd only needs to relay the upstream's reply as it is, with TTLs intact, and
//! must stay a transparent hop for the per-container `dns` servers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::DnsError;

/// How long one upstream server gets before the next one is tried.
pub const DEFAULT_SERVER_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest DNS message over UDP that the forwarder accepts (EDNS0 maximum).
const MAX_UDP: usize = 65_535;

/// The identity of the resolv.conf we last read: a change of any part means "read it again". Renames onto the
/// path (how most tools update resolv.conf) change the inode.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp { modified: meta.modified().ok(), len: meta.len(), inode: meta.ino() })
}

struct Watch {
    path: PathBuf,
    port: u16,
    /// Checked at most this often, so a busy forwarder does not stat the file for every query.
    recheck: Duration,
    last_check: Mutex<(Option<Instant>, Option<FileStamp>)>,
}

/// The host's resolvers: read from a resolv.conf file (re-read when it changes) or a fixed list.
pub struct Upstream {
    servers: ArcSwap<Vec<SocketAddr>>,
    watch: Option<Watch>,
    server_timeout: Duration,
}

/// Nameservers of a resolv.conf text, each with `port`. Loopback servers are kept: netd forwards from the host's
/// namespace, where e.g. a local caching resolver on 127.0.0.53 is reachable.
pub fn nameservers(text: &str, port: u16) -> Vec<SocketAddr> {
    let (conf, _errors) = resolv_conf::Config::parse_with_errors(text.as_bytes());
    conf.nameservers.iter().map(|ip| SocketAddr::new(IpAddr::from(ip), port)).collect()
}

impl Upstream {
    /// Servers from the resolv.conf at `path` (the host's is `/etc/resolv.conf`), queried on `port` (53 in
    /// production; tests point the file at a stub resolver on loopback and may use another port). The file is
    /// checked for changes at most once per `recheck` (e.g. 1 s), when a query is forwarded.
    pub fn from_resolv_conf(path: impl Into<PathBuf>, port: u16, recheck: Duration) -> Self {
        let path = path.into();
        let current = stamp(&path);
        let servers = read_servers(&path, port);
        Self {
            servers: ArcSwap::from_pointee(servers),
            watch: Some(Watch { path, port, recheck, last_check: Mutex::new((Some(Instant::now()), current)) }),
            server_timeout: DEFAULT_SERVER_TIMEOUT,
        }
    }

    /// A fixed list of servers.
    pub fn fixed(servers: Vec<SocketAddr>) -> Self {
        Self { servers: ArcSwap::from_pointee(servers), watch: None, server_timeout: DEFAULT_SERVER_TIMEOUT }
    }

    /// Change how long each server gets before the next is tried.
    pub fn with_server_timeout(mut self, t: Duration) -> Self {
        self.server_timeout = t;
        self
    }

    /// The current servers, re-reading the file first if it changed.
    pub fn servers(&self) -> Arc<Vec<SocketAddr>> {
        if let Some(w) = &self.watch {
            let mut last = w.last_check.lock().unwrap_or_else(PoisonError::into_inner);
            let due = last.0.is_none_or(|t| t.elapsed() >= w.recheck);
            if due {
                let now = stamp(&w.path);
                if now != last.1 {
                    self.servers.store(Arc::new(read_servers(&w.path, w.port)));
                    last.1 = now;
                }
                last.0 = Some(Instant::now());
            }
        }
        self.servers.load_full()
    }

    /// Send `query` (a whole DNS message) to each of `servers` in turn until one answers; returns the raw reply.
    /// `tcp` asks over TCP (for clients that came over TCP, e.g. after a truncated answer).
    pub async fn forward(&self, servers: &[SocketAddr], query: &[u8], tcp: bool) -> Result<Vec<u8>, DnsError> {
        if query.len() < 2 {
            return Err(DnsError::Upstream("query shorter than a header".into()));
        }
        let mut last_error = DnsError::NoUpstream;
        for &server in servers {
            let attempt = if tcp {
                timeout(self.server_timeout, exchange_tcp(server, query)).await
            } else {
                timeout(self.server_timeout, exchange_udp(server, query)).await
            };
            match attempt {
                Ok(Ok(reply)) => return Ok(reply),
                Ok(Err(e)) => last_error = DnsError::Upstream(format!("{server}: {e}")),
                Err(_) => last_error = DnsError::Upstream(format!("{server}: timed out")),
            }
        }
        Err(last_error)
    }
}

fn read_servers(path: &Path, port: u16) -> Vec<SocketAddr> {
    match std::fs::read_to_string(path) {
        Ok(text) => nameservers(&text, port),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read resolv.conf: no upstream resolvers");
            Vec::new()
        }
    }
}

async fn exchange_udp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    // A fresh socket per query: a random source port per exchange, and a connected socket only accepts
    // datagrams from the server asked.
    let socket = UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; MAX_UDP];
    loop {
        let n = socket.recv(&mut buf).await?;
        // A reply carries the query's id; anything else is stale or spoofed.
        if n >= 2 && buf[..2] == query[..2] {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

async fn exchange_tcp(server: SocketAddr, query: &[u8]) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(query.len())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "query too long"))?;
    let mut stream = TcpStream::connect(server).await?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut reply).await?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nameservers_are_read_with_the_given_port() {
        let text = "# comment\nsearch example.org\nnameserver 127.0.0.53\nnameserver ::1\noptions ndots:2\n";
        assert_eq!(
            nameservers(text, 5300),
            vec!["127.0.0.53:5300".parse::<SocketAddr>().expect("literal"), "[::1]:5300".parse().expect("literal"),]
        );
    }

    #[test]
    fn a_changed_file_is_read_again() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("resolv.conf");
        std::fs::write(&path, "nameserver 127.0.0.1\n")?;
        let up = Upstream::from_resolv_conf(&path, 53, Duration::ZERO);
        assert_eq!(*up.servers(), vec!["127.0.0.1:53".parse()?]);
        // Replaced by rename, as resolvconf and DHCP clients do.
        let tmp = dir.path().join("new");
        std::fs::write(&tmp, "nameserver 127.0.0.2\nnameserver 127.0.0.3\n")?;
        std::fs::rename(&tmp, &path)?;
        assert_eq!(*up.servers(), vec!["127.0.0.2:53".parse()?, "127.0.0.3:53".parse()?]);
        std::fs::remove_file(&path)?;
        assert!(up.servers().is_empty());
        Ok(())
    }
}
