//! Host ports for publishing: chosen (a free ephemeral port when none is given), checked against other
//! publishes and the host's sockets, and held.
//!
//! netd holds each published port with a socket bound (not listening) to it, as Docker does: no other program
//! can bind the port while it is published, and the kernel picks ephemeral ports that nothing holds. The DNAT
//! rules act before any local socket sees the traffic, so the bound socket never receives anything. Sockets
//! die with netd: on restart the daemon reserves its persisted publishes again.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, PoisonError};

use socket2::{Domain, Socket, Type};

use super::NftError;
use super::rules::Proto;

/// A `ports:` entry: host ports (a single port, a range, or none for an ephemeral port) to container ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortRequest {
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    /// Inclusive range; `None`: ephemeral.
    pub host_ports: Option<(u16, u16)>,
    /// Inclusive range.
    pub container_ports: (u16, u16),
}

/// One host port held for one container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortBinding {
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
}

struct Held {
    owner: String,
    binding: PortBinding,
    _socket: Socket,
}

/// Every host port berth publishes, with the socket that holds it.
#[derive(Default)]
pub struct PortAllocator {
    held: Mutex<Vec<Held>>,
}

fn overlaps(a: Option<IpAddr>, b: Option<IpAddr>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => x == y,
        // An unspecified address takes the port on every address.
        _ => true,
    }
}

impl PortAllocator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Hold the host ports of `requests` for `owner` (an endpoint id): all of them or none.
    /// - `host_ports` `None`: one ephemeral port per container port.
    /// - a range as long as the container range: port by port.
    /// - a range for a single container port: the first free port of the range.
    pub fn reserve(&self, owner: &str, requests: &[PortRequest]) -> Result<Vec<PortBinding>, NftError> {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        let mut new: Vec<Held> = Vec::new();
        for req in requests {
            let (c0, c1) = req.container_ports;
            if c0 == 0 || c1 < c0 {
                return Err(NftError::BadPorts(format!("container ports {c0}-{c1}")));
            }
            match req.host_ports {
                None => {
                    for cport in c0..=c1 {
                        let (socket, port) = hold(req.proto, req.host_ip, 0)?;
                        new.push(Held {
                            owner: owner.to_owned(),
                            binding: PortBinding {
                                proto: req.proto,
                                host_ip: req.host_ip,
                                host_port: port,
                                container_port: cport,
                            },
                            _socket: socket,
                        });
                    }
                }
                Some((h0, h1)) if h0 == 0 || h1 < h0 => {
                    return Err(NftError::BadPorts(format!("host ports {h0}-{h1}")));
                }
                Some((h0, h1)) if h1 - h0 == c1 - c0 => {
                    for (hport, cport) in (h0..=h1).zip(c0..=c1) {
                        check_berth(&held, &new, req.proto, req.host_ip, hport)?;
                        let (socket, _) = hold(req.proto, req.host_ip, hport)?;
                        new.push(Held {
                            owner: owner.to_owned(),
                            binding: PortBinding {
                                proto: req.proto,
                                host_ip: req.host_ip,
                                host_port: hport,
                                container_port: cport,
                            },
                            _socket: socket,
                        });
                    }
                }
                Some((h0, h1)) if c0 == c1 => {
                    let mut last_error = None;
                    let mut found = None;
                    for hport in h0..=h1 {
                        let attempt = check_berth(&held, &new, req.proto, req.host_ip, hport)
                            .and_then(|()| hold(req.proto, req.host_ip, hport));
                        match attempt {
                            Ok((socket, _)) => {
                                found = Some((socket, hport));
                                break;
                            }
                            Err(e) => last_error = Some(e),
                        }
                    }
                    let Some((socket, hport)) = found else {
                        return Err(last_error.unwrap_or_else(|| NftError::BadPorts(format!("host ports {h0}-{h1}"))));
                    };
                    new.push(Held {
                        owner: owner.to_owned(),
                        binding: PortBinding {
                            proto: req.proto,
                            host_ip: req.host_ip,
                            host_port: hport,
                            container_port: c0,
                        },
                        _socket: socket,
                    });
                }
                Some((h0, h1)) => {
                    return Err(NftError::BadPorts(format!(
                        "host ports {h0}-{h1} and container ports {c0}-{c1} differ in length"
                    )));
                }
            }
        }
        let out = new.iter().map(|h| h.binding.clone()).collect();
        held.extend(new);
        Ok(out)
    }

    /// Give back every port of `owner` (closing the sockets that held them).
    pub fn release(&self, owner: &str) {
        let mut held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.retain(|h| h.owner != owner);
    }

    /// The ports `owner` holds.
    pub fn bindings(&self, owner: &str) -> Vec<PortBinding> {
        let held = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        held.iter().filter(|h| h.owner == owner).map(|h| h.binding.clone()).collect()
    }
}

/// Fail when another berth publish (held, or earlier in the same request) has the port.
fn check_berth(held: &[Held], new: &[Held], proto: Proto, ip: Option<IpAddr>, port: u16) -> Result<(), NftError> {
    let taken = held
        .iter()
        .chain(new)
        .find(|h| h.binding.proto == proto && h.binding.host_port == port && overlaps(h.binding.host_ip, ip));
    match taken {
        Some(h) => {
            Err(NftError::PortTaken { port, proto: proto.as_str(), holder: format!("berth endpoint {}", h.owner) })
        }
        None => Ok(()),
    }
}

/// Bind a socket (without listening) to the port; port 0 lets the kernel pick a free ephemeral port.
fn hold(proto: Proto, ip: Option<IpAddr>, port: u16) -> Result<(Socket, u16), NftError> {
    let ip = ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let kind = match proto {
        Proto::Tcp => Type::STREAM,
        Proto::Udp => Type::DGRAM,
    };
    let addr = SocketAddr::new(ip, port);
    let socket = Socket::new(Domain::for_address(addr), kind, None)?;
    match socket.bind(&addr.into()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            return Err(NftError::PortTaken { port, proto: proto.as_str(), holder: holder(proto, port) });
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => {
            return Err(NftError::NotLocal(ip));
        }
        Err(e) => return Err(e.into()),
    }
    let port = socket
        .local_addr()?
        .as_socket()
        .map(|a| a.port())
        .ok_or_else(|| NftError::BadPorts("bound socket has no port".into()))?;
    Ok((socket, port))
}

/// Who holds `port`: the process owning a matching socket in /proc/net (a listening one for TCP), or a
/// description when it cannot be found (e.g. a socket of another network namespace).
pub fn holder(proto: Proto, port: u16) -> String {
    let inodes = socket_inodes(proto, port);
    if let Some((pid, comm)) = inodes.iter().find_map(|&i| process_of_inode(i)) {
        return format!("process {pid} ({comm})");
    }
    if inodes.is_empty() {
        "a socket of the host".to_owned()
    } else {
        "a socket of the host not owned by any visible process".to_owned()
    }
}

/// Inodes of sockets bound to `port` in /proc/net/{tcp,tcp6} (listening) or {udp,udp6}.
fn socket_inodes(proto: Proto, port: u16) -> Vec<u64> {
    let files: [&str; 2] = match proto {
        Proto::Tcp => ["/proc/net/tcp", "/proc/net/tcp6"],
        Proto::Udp => ["/proc/net/udp", "/proc/net/udp6"],
    };
    let mut out = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        out.extend(parse_proc_net(&text, proto, port));
    }
    out
}

/// The inodes in one /proc/net table whose local port is `port` (and, for TCP, in LISTEN state, `0A`).
fn parse_proc_net(text: &str, proto: Proto, port: u16) -> Vec<u64> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let local = cols.get(1)?;
            let state = cols.get(3)?;
            let inode: u64 = cols.get(9)?.parse().ok()?;
            let hex_port = local.rsplit(':').next()?;
            let p = u16::from_str_radix(hex_port, 16).ok()?;
            let listening = proto == Proto::Udp || *state == "0A";
            (p == port && listening && inode != 0).then_some(inode)
        })
        .collect()
}

/// The process with an fd on `socket:[inode]`, as (pid, command name).
fn process_of_inode(inode: u64) -> Option<(u32, String)> {
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()) {
                let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                return Some((pid, comm.trim().to_owned()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: Option<(u16, u16)>, container: (u16, u16)) -> PortRequest {
        PortRequest {
            proto: Proto::Tcp,
            host_ip: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            host_ports: host,
            container_ports: container,
        }
    }

    #[test]
    fn proc_net_lines_are_matched_by_port_and_state() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1\n\
           1: 0100007F:1F90 0100007F:C000 01 00000000:00000000 00:00000000 00000000     0        0 23456 1\n\
           2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 34567 1\n";
        assert_eq!(parse_proc_net(text, Proto::Tcp, 8080), vec![12345]);
        assert_eq!(parse_proc_net(text, Proto::Udp, 8080), vec![12345, 23456]);
        assert!(parse_proc_net(text, Proto::Tcp, 81).is_empty());
    }

    #[test]
    fn ephemeral_ports_are_distinct_and_released() -> Result<(), NftError> {
        let a = PortAllocator::new();
        let got = a.reserve("e1", &[req(None, (80, 81))])?;
        assert_eq!(got.len(), 2);
        assert_ne!(got[0].host_port, got[1].host_port);
        assert_eq!((got[0].container_port, got[1].container_port), (80, 81));
        assert_eq!(a.bindings("e1"), got);
        a.release("e1");
        assert!(a.bindings("e1").is_empty());
        Ok(())
    }

    #[test]
    fn a_port_held_by_a_listener_names_the_process() -> Result<(), Box<dyn std::error::Error>> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        let a = PortAllocator::new();
        let err = a.reserve("e1", &[req(Some((port, port)), (80, 80))]).err().ok_or("expected the port to be taken")?;
        let text = err.to_string();
        assert!(text.contains(&format!("{port}/tcp")), "{text}");
        assert!(text.contains(&format!("process {}", std::process::id())), "{text}");
        Ok(())
    }

    #[test]
    fn a_port_held_by_another_publish_names_the_endpoint() -> Result<(), Box<dyn std::error::Error>> {
        let a = PortAllocator::new();
        let first = a.reserve("e1", &[req(None, (80, 80))])?;
        let port = first[0].host_port;
        let err = a.reserve("e2", &[req(Some((port, port)), (80, 80))]).err().ok_or("expected the port to be taken")?;
        assert!(err.to_string().contains("berth endpoint e1"), "{err}");
        // All or nothing: a failing second request gives back the first.
        let free = a.reserve("e3", &[req(None, (90, 90))])?;
        a.release("e3");
        let err = a.reserve("e4", &[req(None, (91, 91)), req(Some((port, port)), (80, 80))]);
        assert!(err.is_err());
        assert!(a.bindings("e4").is_empty());
        assert_eq!(free.len(), 1);
        Ok(())
    }

    #[test]
    fn a_range_for_one_port_takes_the_first_free_and_bad_ranges_fail() -> Result<(), Box<dyn std::error::Error>> {
        let a = PortAllocator::new();
        let first = a.reserve("e1", &[req(None, (80, 80))])?;
        let p = first[0].host_port;
        if p < u16::MAX {
            let got = a.reserve("e2", &[req(Some((p, p + 1)), (80, 80))]);
            // p is ours; p+1 may be taken by something else on the host, then the error says so.
            if let Ok(got) = got {
                assert_eq!(got[0].host_port, p + 1);
            }
        }
        assert!(a.reserve("e3", &[req(Some((9000, 9002)), (80, 81))]).is_err());
        assert!(a.reserve("e3", &[req(Some((0, 0)), (80, 80))]).is_err());
        assert!(a.reserve("e3", &[req(None, (0, 0))]).is_err());
        Ok(())
    }

    #[test]
    fn a_host_ip_that_is_not_local_is_refused() {
        let a = PortAllocator::new();
        let mut r = req(None, (80, 80));
        // TEST-NET-1: never assigned to this host; bind fails locally, no packet is sent.
        r.host_ip = Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert!(matches!(a.reserve("e1", &[r]), Err(NftError::NotLocal(_))));
    }
}
