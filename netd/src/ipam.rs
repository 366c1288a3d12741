//! IPv4 address management: choosing a network's subnet (the user's, validated, or the next free one of Docker's
//! default pools) and handing out endpoint addresses. Pure functions over what is in use, so the daemon decides
//! under its lock and persists the outcome; nothing here touches the kernel.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::api::IpamRequest;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("invalid {what} {value:?}: {reason}")]
    Malformed { what: &'static str, value: String, reason: String },
    #[error("invalid subnet {given}: it should be {expected}")]
    NotNetworkAddress { given: String, expected: Ipv4Net },
    #[error("subnet {subnet} is too small: it needs room for a gateway and at least one container")]
    TooSmall { subnet: Ipv4Net },
    #[error("subnet {subnet} overlaps {other}, already used by network {network:?}")]
    Overlaps { subnet: Ipv4Net, other: Ipv4Net, network: String },
    #[error("{what} {addr} is not in subnet {subnet}")]
    OutsideSubnet { what: String, addr: String, subnet: Ipv4Net },
    #[error("{what} {addr} is the subnet's {which} address, which no host may use")]
    Unusable { what: String, addr: Ipv4Addr, which: &'static str },
    #[error("no free subnet left in the default pools (172.17-31.0.0/16, 192.168.0.0/16 in /20 steps)")]
    NoFreeSubnet,
    #[error("no free address left in {range} of network {network:?}")]
    Exhausted { range: Ipv4Net, network: String },
    #[error("address {addr} is already in use on network {network:?} ({by})")]
    Taken { addr: Ipv4Addr, network: String, by: String },
}

/// A subnet somebody else uses: another berth network (by name) or a route on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsedSubnet {
    pub subnet: Ipv4Net,
    pub owner: String,
}

/// The validated address plan of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub subnet: Ipv4Net,
    pub ip_range: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    pub user_subnet: bool,
}

/// Docker's default address pools, in its order: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/16 cut in /20s.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let wide = (17u8..=31).filter_map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).ok());
    let narrow = (0u8..16).filter_map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).ok());
    wide.chain(narrow)
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

fn parse_net(what: &'static str, value: &str) -> Result<Ipv4Net, IpamError> {
    let value = value.trim();
    let net: Ipv4Net = value.parse().map_err(|_| IpamError::Malformed {
        what,
        value: value.to_string(),
        reason: "expected an IPv4 CIDR such as 172.28.0.0/16 (IPv6 is not supported)".into(),
    })?;
    if net.addr() != net.network() {
        return Err(IpamError::NotNetworkAddress { given: value.to_string(), expected: net.trunc() });
    }
    Ok(net)
}

fn parse_addr(what: &str, value: &str) -> Result<Ipv4Addr, IpamError> {
    let value = value.trim();
    // Docker accepts a gateway written with a prefix ("172.28.0.1/16"); the prefix says nothing more.
    let bare = value.split_once('/').map_or(value, |(a, _)| a);
    bare.parse().map_err(|_| IpamError::Malformed {
        what: if what == "gateway" { "gateway" } else { "address" },
        value: value.to_string(),
        reason: format!("{what}: expected an IPv4 address"),
    })
}

/// An address a host of `subnet` may have: inside it, and neither its network nor its broadcast address
/// (a /31 or /32 has neither, but is refused earlier as too small).
fn check_host(what: &str, addr: Ipv4Addr, subnet: &Ipv4Net) -> Result<(), IpamError> {
    if !subnet.contains(&addr) {
        return Err(IpamError::OutsideSubnet { what: what.to_string(), addr: addr.to_string(), subnet: *subnet });
    }
    if addr == subnet.network() {
        return Err(IpamError::Unusable { what: what.to_string(), addr, which: "network" });
    }
    if addr == subnet.broadcast() {
        return Err(IpamError::Unusable { what: what.to_string(), addr, which: "broadcast" });
    }
    Ok(())
}

/// Validate the user's wishes and pick the subnet. `networks` are the subnets of other berth networks (never
/// shared); `host_routes` are routes on the host, which only automatic choices avoid (a user may knowingly pick a
/// routed subnet, as with Docker).
pub fn plan(req: &IpamRequest, networks: &[UsedSubnet], host_routes: &[Ipv4Net]) -> Result<Plan, IpamError> {
    let given = req.subnet.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let (subnet, user_subnet) = match given {
        Some(s) => {
            let subnet = parse_net("subnet", s)?;
            if subnet.prefix_len() > 30 {
                return Err(IpamError::TooSmall { subnet });
            }
            if let Some(other) = networks.iter().find(|u| overlaps(&u.subnet, &subnet)) {
                return Err(IpamError::Overlaps { subnet, other: other.subnet, network: other.owner.clone() });
            }
            (subnet, true)
        }
        None => {
            let has_other_fields = req.ip_range.as_deref().is_some_and(|s| !s.trim().is_empty())
                || req.gateway.as_deref().is_some_and(|s| !s.trim().is_empty())
                || !req.aux_addresses.is_empty();
            if has_other_fields {
                return Err(IpamError::Malformed {
                    what: "ipam config",
                    value: String::new(),
                    reason: "ip_range, gateway and aux_addresses need a subnet".into(),
                });
            }
            let free = default_pools().find(|pool| {
                !networks.iter().any(|u| overlaps(&u.subnet, pool))
                    && !host_routes.iter().filter(|r| r.prefix_len() > 0).any(|r| overlaps(r, pool))
            });
            (free.ok_or(IpamError::NoFreeSubnet)?, false)
        }
    };
    let ip_range = match req.ip_range.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(r) => {
            let range = parse_net("ip_range", r)?;
            if !subnet.contains(&range) {
                return Err(IpamError::OutsideSubnet { what: "ip_range".into(), addr: range.to_string(), subnet });
            }
            range
        }
        None => subnet,
    };
    let gateway = match req.gateway.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(g) => parse_addr("gateway", g)?,
        // The first host address, as Docker does.
        None => Ipv4Addr::from(u32::from(subnet.network()) + 1),
    };
    check_host("gateway", gateway, &subnet)?;
    let mut aux_addresses = BTreeMap::new();
    for (name, value) in &req.aux_addresses {
        let addr = parse_addr(&format!("aux address {name:?}"), value)?;
        check_host(&format!("aux address {name:?}"), addr, &subnet)?;
        aux_addresses.insert(name.clone(), addr);
    }
    Ok(Plan { subnet, ip_range, gateway, aux_addresses, user_subnet })
}

/// The addresses of a network that are not free, with who holds each (for error messages).
#[derive(Debug, Clone, Default)]
pub struct Holders {
    pub held: BTreeMap<Ipv4Addr, String>,
}

impl Holders {
    pub fn new(gateway: Ipv4Addr, aux: &BTreeMap<String, Ipv4Addr>) -> Holders {
        let mut held = BTreeMap::new();
        held.insert(gateway, "the gateway".to_string());
        for (name, addr) in aux {
            held.insert(*addr, format!("aux address {name:?}"));
        }
        Holders { held }
    }

    pub fn hold(&mut self, addr: Ipv4Addr, by: String) {
        self.held.insert(addr, by);
    }
}

/// Pick an endpoint address: the fixed one if it is valid and free, else the first free address of `range`
/// after `last` (wrapping around).
pub fn allocate(
    network: &str,
    subnet: &Ipv4Net,
    range: &Ipv4Net,
    holders: &Holders,
    fixed: Option<Ipv4Addr>,
    last: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, IpamError> {
    if let Some(addr) = fixed {
        check_host("address", addr, subnet)?;
        if let Some(by) = holders.held.get(&addr) {
            return Err(IpamError::Taken { addr, network: network.to_string(), by: by.clone() });
        }
        return Ok(addr);
    }
    // u64 so that a range ending at 255.255.255.255 cannot overflow.
    let first = u64::from(u32::from(range.network()));
    let end = u64::from(u32::from(range.broadcast()));
    let usable = |a: u64| {
        let Ok(a) = u32::try_from(a) else { return false };
        let addr = Ipv4Addr::from(a);
        addr != subnet.network() && addr != subnet.broadcast() && !holders.held.contains_key(&addr)
    };
    let start = last.map(|l| u64::from(u32::from(l))).filter(|l| (first..=end).contains(l)).map_or(first, |l| l + 1);
    (start..=end)
        .chain(first..start.min(end + 1))
        .find(|a| usable(*a))
        .and_then(|a| u32::try_from(a).ok())
        .map(Ipv4Addr::from)
        .ok_or_else(|| IpamError::Exhausted { range: *range, network: network.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(subnet: &str) -> IpamRequest {
        IpamRequest { subnet: Some(subnet.into()), ..IpamRequest::default() }
    }

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn used(s: &str, owner: &str) -> UsedSubnet {
        UsedSubnet { subnet: net(s), owner: owner.into() }
    }

    #[test]
    fn default_pools_in_dockers_order() {
        let pools: Vec<Ipv4Net> = default_pools().collect();
        assert_eq!(pools.first(), Some(&net("172.17.0.0/16")));
        assert_eq!(pools.get(14), Some(&net("172.31.0.0/16")));
        assert_eq!(pools.get(15), Some(&net("192.168.0.0/20")));
        assert_eq!(pools.get(16), Some(&net("192.168.16.0/20")));
        assert_eq!(pools.last(), Some(&net("192.168.240.0/20")));
        assert_eq!(pools.len(), 31);
    }

    #[test]
    fn automatic_subnet_skips_networks_and_host_routes_but_not_the_default_route() {
        let networks = [used("172.17.0.0/16", "a")];
        let routes = [net("0.0.0.0/0"), net("172.18.5.0/24")];
        let p = plan(&IpamRequest::default(), &networks, &routes).expect("plan");
        assert_eq!(p.subnet, net("172.19.0.0/16"));
        assert_eq!(p.gateway, Ipv4Addr::new(172, 19, 0, 1));
        assert_eq!(p.ip_range, p.subnet);
        assert!(!p.user_subnet);
    }

    #[test]
    fn a_wide_host_route_pushes_the_choice_into_the_192_168_pool() {
        let routes = [net("172.16.0.0/12")];
        let p = plan(&IpamRequest::default(), &[], &routes).expect("plan");
        assert_eq!(p.subnet, net("192.168.0.0/20"));
    }

    #[test]
    fn no_free_subnet_is_an_error() {
        let routes = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert_eq!(plan(&IpamRequest::default(), &[], &routes), Err(IpamError::NoFreeSubnet));
    }

    #[test]
    fn user_config_is_honoured() {
        let mut r = req("10.55.0.0/16");
        r.ip_range = Some("10.55.3.0/24".into());
        r.gateway = Some("10.55.0.254".into());
        r.aux_addresses.insert("router".into(), "10.55.3.1".into());
        let p = plan(&r, &[used("172.17.0.0/16", "a")], &[net("10.55.0.0/16")]).expect("plan");
        assert_eq!(p.subnet, net("10.55.0.0/16"));
        assert_eq!(p.ip_range, net("10.55.3.0/24"));
        assert_eq!(p.gateway, Ipv4Addr::new(10, 55, 0, 254));
        assert_eq!(p.aux_addresses.get("router"), Some(&Ipv4Addr::new(10, 55, 3, 1)));
        assert!(p.user_subnet);
    }

    #[test]
    fn bad_ipam_config_is_refused_with_a_reason() {
        let cases: Vec<(IpamRequest, &str)> = vec![
            (req("10.1.0.0/33"), "invalid subnet"),
            (req("not-a-subnet"), "invalid subnet"),
            (req("fd00::/64"), "IPv6"),
            (req("10.1.2.0/16"), "it should be 10.1.0.0/16"),
            (req("10.1.0.0/31"), "too small"),
            (req("172.17.128.0/24"), "overlaps 172.17.0.0/16"),
            (
                IpamRequest {
                    subnet: Some("10.1.0.0/24".into()),
                    gateway: Some("10.2.0.1".into()),
                    ..Default::default()
                },
                "not in subnet",
            ),
            (
                IpamRequest {
                    subnet: Some("10.1.0.0/24".into()),
                    gateway: Some("10.1.0.255".into()),
                    ..Default::default()
                },
                "broadcast",
            ),
            (
                IpamRequest {
                    subnet: Some("10.1.0.0/24".into()),
                    gateway: Some("10.1.0.0".into()),
                    ..Default::default()
                },
                "network address",
            ),
            (
                IpamRequest { subnet: Some("10.1.0.0/24".into()), gateway: Some("x".into()), ..Default::default() },
                "invalid gateway",
            ),
            (
                IpamRequest {
                    subnet: Some("10.1.0.0/24".into()),
                    ip_range: Some("10.1.0.0/16".into()),
                    ..Default::default()
                },
                "ip_range",
            ),
            (IpamRequest { gateway: Some("10.1.0.1".into()), ..Default::default() }, "need a subnet"),
        ];
        let networks = [used("172.17.0.0/16", "first")];
        for (r, want) in cases {
            let err = plan(&r, &networks, &[]).expect_err(&format!("{r:?} should fail"));
            assert!(err.to_string().contains(want), "{r:?}: {err} should mention {want:?}");
        }
        let mut aux = req("10.1.0.0/24");
        aux.aux_addresses.insert("far".into(), "10.9.9.9".into());
        let err = plan(&aux, &[], &[]).expect_err("aux outside");
        assert!(err.to_string().contains("aux address \"far\""), "{err}");
    }

    #[test]
    fn allocation_skips_gateway_aux_and_taken_addresses_and_moves_on_after_the_last() {
        let subnet = net("10.9.0.0/29"); // .1 to .6 usable
        let mut aux = BTreeMap::new();
        aux.insert("r".to_string(), Ipv4Addr::new(10, 9, 0, 2));
        let mut h = Holders::new(Ipv4Addr::new(10, 9, 0, 1), &aux);
        let a = allocate("n", &subnet, &subnet, &h, None, None).expect("first");
        assert_eq!(a, Ipv4Addr::new(10, 9, 0, 3));
        h.hold(a, "c1".into());
        let b = allocate("n", &subnet, &subnet, &h, None, Some(a)).expect("second");
        assert_eq!(b, Ipv4Addr::new(10, 9, 0, 4));
        // .3 is released, but the next search starts after the last one handed out.
        h.held.remove(&a);
        h.hold(b, "c2".into());
        let c = allocate("n", &subnet, &subnet, &h, None, Some(b)).expect("third");
        assert_eq!(c, Ipv4Addr::new(10, 9, 0, 5));
        h.hold(c, "c3".into());
        h.hold(Ipv4Addr::new(10, 9, 0, 6), "c4".into());
        // Wraps around to the released .3.
        let d = allocate("n", &subnet, &subnet, &h, None, Some(Ipv4Addr::new(10, 9, 0, 6))).expect("wrap");
        assert_eq!(d, Ipv4Addr::new(10, 9, 0, 3));
        h.hold(d, "c5".into());
        let err = allocate("n", &subnet, &subnet, &h, None, Some(d)).expect_err("full");
        assert!(matches!(err, IpamError::Exhausted { .. }), "{err}");
    }

    #[test]
    fn allocation_stays_in_the_ip_range() {
        let subnet = net("10.9.0.0/24");
        let range = net("10.9.0.128/30");
        let h = Holders::new(Ipv4Addr::new(10, 9, 0, 1), &BTreeMap::new());
        let a = allocate("n", &subnet, &range, &h, None, None).expect("alloc");
        assert_eq!(a, Ipv4Addr::new(10, 9, 0, 128));
    }

    #[test]
    fn fixed_addresses_are_checked() {
        let subnet = net("10.9.0.0/24");
        let mut h = Holders::new(Ipv4Addr::new(10, 9, 0, 1), &BTreeMap::new());
        h.hold(Ipv4Addr::new(10, 9, 0, 7), "container c1".into());
        let ok = allocate("n", &subnet, &subnet, &h, Some(Ipv4Addr::new(10, 9, 0, 200)), None);
        assert_eq!(ok, Ok(Ipv4Addr::new(10, 9, 0, 200)));
        for (addr, want) in [
            (Ipv4Addr::new(10, 9, 1, 5), "not in subnet"),
            (Ipv4Addr::new(10, 9, 0, 1), "the gateway"),
            (Ipv4Addr::new(10, 9, 0, 7), "container c1"),
            (Ipv4Addr::new(10, 9, 0, 255), "broadcast"),
        ] {
            let err = allocate("n", &subnet, &subnet, &h, Some(addr), None).expect_err("must fail");
            assert!(err.to_string().contains(want), "{addr}: {err}");
        }
    }
}
