//! The short port syntax, `[HOST_IP:][HOST_PORT[-END]:]CONTAINER_PORT[-END][/PROTOCOL]`, as Docker parses it.
//!
//! Written by hand because no crate parses Docker's port spec; the rules follow Docker's `nat.ParsePortSpec`:
//! a container range expands to one entry per port; a host range must have the container range's size, except
//! that a single container port may take a host range (the engine picks a free port from it).

use crate::compose::error::Span;
use crate::compose::node::{Node, Value};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortPort {
    pub host_ip: Option<String>,
    pub published: Option<String>,
    pub target: u32,
    pub protocol: String,
}

impl ShortPort {
    /// The long form as compose-go writes it: mode, host_ip, target, published, protocol.
    pub fn to_node(&self, span: &Span) -> Node {
        let mut m = Node::map(span.clone());
        m.insert("mode", Node::string("ingress", span.clone()));
        if let Some(ip) = &self.host_ip {
            m.insert("host_ip", Node::string(ip, span.clone()));
        }
        m.insert("target", Node::new(Value::Int(i64::from(self.target)), span.clone()));
        if let Some(p) = &self.published {
            m.insert("published", Node::string(p, span.clone()));
        }
        m.insert("protocol", Node::string(&self.protocol, span.clone()));
        m
    }
}

/// Parse one short port entry into its (possibly several) long entries.
pub fn parse_port(spec: &str) -> Result<Vec<ShortPort>, String> {
    let spec = spec.trim();
    let (rest, protocol) = match spec.rsplit_once('/') {
        Some((r, p)) => (r, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(protocol.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("unknown protocol {protocol:?}: use tcp, udp or sctp"));
    }
    let (host_ip, host_port, container) = split_parts(rest)?;
    let (c_start, c_end) = parse_range(container).map_err(|e| format!("container port: {e}"))?;
    let host = match host_port {
        Some(h) if !h.is_empty() => Some(parse_range(h).map_err(|e| format!("host port: {e}"))?),
        _ => None,
    };
    let c_len = c_end - c_start;
    let mut out = Vec::new();
    match host {
        Some((h_start, h_end)) if h_end - h_start != c_len => {
            if c_len != 0 {
                return Err(format!(
                    "the host range {h_start}-{h_end} and the container range {c_start}-{c_end} differ in size"
                ));
            }
            out.push(ShortPort {
                host_ip: host_ip.clone(),
                published: Some(format!("{h_start}-{h_end}")),
                target: c_start,
                protocol: protocol.clone(),
            });
        }
        Some((h_start, _)) => {
            for i in 0..=c_len {
                out.push(ShortPort {
                    host_ip: host_ip.clone(),
                    published: Some((h_start + i).to_string()),
                    target: c_start + i,
                    protocol: protocol.clone(),
                });
            }
        }
        None => {
            for i in 0..=c_len {
                out.push(ShortPort {
                    host_ip: host_ip.clone(),
                    published: None,
                    target: c_start + i,
                    protocol: protocol.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Split into (host ip, host port, container port). IPv6 host addresses are written in brackets.
fn split_parts(rest: &str) -> Result<(Option<String>, Option<&str>, &str), String> {
    if let Some(after) = rest.strip_prefix('[') {
        let (ip, tail) = after.split_once(']').ok_or("unclosed '[' in the host address")?;
        let tail = tail.strip_prefix(':').ok_or("expected ':' after the host address")?;
        let (host, container) = tail.split_once(':').ok_or("expected HOST_PORT:CONTAINER_PORT after the address")?;
        return Ok((Some(ip.to_string()), Some(host), container));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        [c] => Ok((None, None, c)),
        [h, c] => Ok((None, Some(h), c)),
        [ip, h, c] => Ok((non_empty(ip), Some(h), c)),
        // An IPv6 address without brackets: the last two parts are the ports.
        [.., h, c] => {
            let ip = &rest[..rest.len() - h.len() - c.len() - 2];
            Ok((non_empty(ip), Some(h), c))
        }
        [] => Err("empty port".into()),
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (a, b),
        None => (s, s),
    };
    let a = parse_one(a)?;
    let b = parse_one(b)?;
    if b < a {
        return Err(format!("the range {s} ends before it starts"));
    }
    Ok((a, b))
}

fn parse_one(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(p) if p <= 65535 => Ok(p),
        Ok(p) => Err(format!("{p} is above 65535")),
        Err(_) => Err(format!("{s:?} is not a port number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> ShortPort {
        let mut v = parse_port(spec).unwrap_or_default();
        assert_eq!(v.len(), 1, "{spec}");
        v.remove(0)
    }

    #[test]
    fn forms() {
        assert_eq!(one("80").target, 80);
        assert_eq!(one("80").published, None);
        let p = one("8080:80");
        assert_eq!((p.published.as_deref(), p.target), (Some("8080"), 80));
        let p = one("127.0.0.1:8001:8001/udp");
        assert_eq!((p.host_ip.as_deref(), p.protocol.as_str()), (Some("127.0.0.1"), "udp"));
        let p = one("127.0.0.1::5000");
        assert_eq!((p.host_ip.as_deref(), p.published.as_deref()), (Some("127.0.0.1"), None));
        let p = one("[::1]:6001:6001");
        assert_eq!(p.host_ip.as_deref(), Some("::1"));
        let p = one("::1:6001:6001");
        assert_eq!(p.host_ip.as_deref(), Some("::1"));
        let p = one("8000-8010:80");
        assert_eq!(p.published.as_deref(), Some("8000-8010"));
    }

    #[test]
    fn ranges_expand() {
        let v = parse_port("9090-9091:8080-8081").unwrap_or_default();
        assert_eq!(v.len(), 2);
        assert_eq!((v[1].published.as_deref(), v[1].target), (Some("9091"), 8081));
        assert_eq!(parse_port("3000-3002").map(|v| v.len()), Ok(3));
    }

    #[test]
    fn errors() {
        assert!(parse_port("8000-8002:80-81").is_err());
        assert!(parse_port("abc").is_err());
        assert!(parse_port("70000").is_err());
        assert!(parse_port("80/icmp").is_err());
        assert!(parse_port("90-80").is_err());
        assert!(parse_port("[::1:80:80").is_err());
    }
}
