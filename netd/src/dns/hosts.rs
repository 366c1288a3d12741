//! A container's /etc/hosts: the standard entries, compose `extra_hosts`, and the container's own name.

use std::net::IpAddr;

use super::DnsError;

/// One `extra_hosts` entry: `name:ip`, `name=ip`, an IPv6 address bare or in brackets (`name:[::1]`,
/// `name=::1`), or the special `host-gateway`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    pub name: String,
    pub ip: IpAddr,
}

/// Parse one `extra_hosts` entry; `host-gateway` becomes `host_gateway` (the address containers reach the host
/// on: their network's gateway).
pub fn parse_extra_host(entry: &str, host_gateway: Option<IpAddr>) -> Result<ExtraHost, DnsError> {
    let bad = |why: &str| DnsError::ExtraHost(entry.to_owned(), why.to_owned());
    // `=` is compose's newer separator and cannot be part of an address, so it wins; else the first `:` (an
    // IPv6 address follows it).
    let (name, value) =
        entry.split_once('=').or_else(|| entry.split_once(':')).ok_or_else(|| bad("expected name:ip or name=ip"))?;
    let name = name.trim();
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return Err(bad("invalid host name"));
    }
    let value = value.trim();
    let ip = if value == "host-gateway" {
        host_gateway.ok_or_else(|| bad("host-gateway has no address here"))?
    } else {
        let bare = value.strip_prefix('[').and_then(|v| v.strip_suffix(']')).unwrap_or(value);
        bare.parse().map_err(|_| bad("invalid IP address"))?
    };
    Ok(ExtraHost { name: name.to_owned(), ip })
}

/// The hosts file: localhost entries, then `extra`, then the container's own addresses with its hostname (and
/// aliases, e.g. the container name).
pub fn render_hosts(own: &[IpAddr], hostnames: &[String], extra: &[ExtraHost]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    for h in extra {
        out.push_str(&format!("{}\t{}\n", h.ip, h.name));
    }
    if !hostnames.is_empty() {
        let names = hostnames.join(" ");
        for ip in own {
            out.push_str(&format!("{ip}\t{names}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("literal")
    }

    #[test]
    fn extra_host_forms() -> Result<(), DnsError> {
        assert_eq!(parse_extra_host("db:10.0.0.5", None)?.ip, ip("10.0.0.5"));
        assert_eq!(parse_extra_host("db=10.0.0.5", None)?.name, "db");
        assert_eq!(parse_extra_host("v6:::1", None)?.ip, ip("::1"));
        assert_eq!(parse_extra_host("v6:[2001:db8::1]", None)?.ip, ip("2001:db8::1"));
        assert_eq!(parse_extra_host("v6=[::1]", None)?.ip, ip("::1"));
        let gw = parse_extra_host("host.docker.internal:host-gateway", Some(ip("172.18.0.1")))?;
        assert_eq!(gw.ip, ip("172.18.0.1"));
        Ok(())
    }

    #[test]
    fn bad_extra_hosts_are_errors() {
        for bad in ["nocolon", ":1.2.3.4", "db:notanip", "a b:1.2.3.4", "gw:host-gateway"] {
            assert!(parse_extra_host(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_file_lists_extra_then_own() -> Result<(), DnsError> {
        let extra = [parse_extra_host("db:10.0.0.5", None)?];
        let text = render_hosts(&[ip("172.18.0.2")], &["abc123".into(), "web".into()], &extra);
        assert!(text.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(text.ends_with("10.0.0.5\tdb\n172.18.0.2\tabc123 web\n"), "{text}");
        Ok(())
    }
}
