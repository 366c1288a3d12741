//! The rules berth puts in its table, built as data (nftables JSON schema) so they can be checked without a
//! kernel. Every rule carries a comment naming its owner (see [`Owner`]): a restarted daemon lists the table and
//! finds its rules by comment.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;
use nftables::expr::{
    CT, Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix,
};
use nftables::schema::{Chain, NfListObject, Rule, Set, SetType, SetTypeValue};
use nftables::stmt::{JumpTarget, Match, NAT, NATFamily, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};

/// DNAT for traffic arriving from outside.
pub const PREROUTING: &str = "prerouting";
/// DNAT for traffic from the host itself (including 127.0.0.1).
pub const OUTPUT: &str = "output";
/// Masquerade: egress, hairpin, localhost.
pub const POSTROUTING: &str = "postrouting";
/// Filter: isolation between networks, internal networks.
pub const FORWARD: &str = "forward";
/// Regular chain of DNAT rules, one per published port (jumped to for local destinations).
pub const PUBLISH: &str = "publish";
/// Regular chain: internal networks' drops (evaluated before published ports are let through).
pub const INTERNAL: &str = "internal";
/// Regular chain: drops between berth networks.
pub const ISOLATE: &str = "isolate";
/// Set of every berth bridge name.
pub const BRIDGES: &str = "bridges";

/// Who a rule belongs to, written in its comment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The hook chains' fixed rules.
    Base,
    /// A network's rules (by network id).
    Network(String),
    /// An endpoint's published ports (by endpoint id).
    Endpoint(String),
}

impl Owner {
    /// The comment text.
    pub fn comment(&self) -> String {
        match self {
            Owner::Base => "berth base".to_owned(),
            Owner::Network(id) => format!("berth net={id}"),
            Owner::Endpoint(id) => format!("berth ep={id}"),
        }
    }

    /// Read a comment back; `None` for comments berth did not write.
    pub fn parse(comment: &str) -> Option<Self> {
        let rest = comment.strip_prefix("berth ")?;
        if rest == "base" {
            Some(Owner::Base)
        } else if let Some(id) = rest.strip_prefix("net=") {
            Some(Owner::Network(id.to_owned()))
        } else {
            rest.strip_prefix("ep=").map(|id| Owner::Endpoint(id.to_owned()))
        }
    }
}

/// A network as the firewall sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkRules {
    pub id: String,
    /// The bridge's interface name.
    pub bridge: String,
    /// Its subnets (IPv4 and/or IPv6).
    pub subnets: Vec<IpNet>,
    /// `internal: true`: no traffic in or out of the bridge except to the host itself.
    pub internal: bool,
}

/// Transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// One published port: host `host_ip:host_port` (any local address when `host_ip` is `None`) to
/// `container_ip:container_port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub proto: Proto,
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_ip: IpAddr,
    pub container_port: u16,
}

fn s(v: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(v.into()))
}

fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: protocol.into(),
        field: field.into(),
    })))
}

fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT { key: key.into(), family: None, dir: None }))
}

fn prefix(net: &IpNet) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(net.network().to_string())),
        len: u32::from(net.prefix_len()),
    }))
}

fn matches(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    matches(left, Operator::EQ, right)
}

fn ne(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    matches(left, Operator::NEQ, right)
}

fn nfproto(ip_v6: bool) -> Statement<'static> {
    eq(meta(MetaKey::Nfproto), s(if ip_v6 { "ipv6" } else { "ipv4" }))
}

fn addr_field(ip_v6: bool, field: &'static str) -> Expression<'static> {
    payload(if ip_v6 { "ip6" } else { "ip" }, field)
}

fn fib_daddr_local() -> Statement<'static> {
    let mut flags = HashSet::new();
    flags.insert(FibFlag::Daddr);
    eq(Expression::Named(NamedExpression::Fib(Fib { result: FibResult::Type, flags })), s("local"))
}

fn ct_status_dnat() -> Statement<'static> {
    matches(ct("status"), Operator::IN, s("dnat"))
}

fn rule(table: &str, chain: &str, owner: &Owner, expr: Vec<Statement<'static>>) -> Rule<'static> {
    Rule {
        family: NfFamily::INet,
        table: Cow::Owned(table.to_owned()),
        chain: Cow::Owned(chain.to_owned()),
        expr: Cow::Owned(expr),
        handle: None,
        index: None,
        comment: Some(Cow::Owned(owner.comment())),
    }
}

/// The table's chains and set (`add` is a no-op for those that exist).
pub fn base_objects(table: &str) -> Vec<NfListObject<'static>> {
    let chain = |name: &str, hook: Option<(NfChainType, NfHook, i32)>| {
        NfListObject::Chain(Chain {
            family: NfFamily::INet,
            table: Cow::Owned(table.to_owned()),
            name: Cow::Owned(name.to_owned()),
            newname: None,
            handle: None,
            _type: hook.map(|h| h.0),
            hook: hook.map(|h| h.1),
            prio: hook.map(|h| h.2),
            dev: None,
            policy: hook.map(|_| NfChainPolicy::Accept),
        })
    };
    vec![
        NfListObject::Table(nftables::schema::Table {
            family: NfFamily::INet,
            name: Cow::Owned(table.to_owned()),
            handle: None,
        }),
        // dstnat (-100) and srcnat (100) priorities, filter (0).
        chain(PREROUTING, Some((NfChainType::NAT, NfHook::Prerouting, -100))),
        chain(OUTPUT, Some((NfChainType::NAT, NfHook::Output, -100))),
        chain(POSTROUTING, Some((NfChainType::NAT, NfHook::Postrouting, 100))),
        chain(FORWARD, Some((NfChainType::Filter, NfHook::Forward, 0))),
        chain(PUBLISH, None),
        chain(INTERNAL, None),
        chain(ISOLATE, None),
        NfListObject::Set(Box::new(Set {
            family: NfFamily::INet,
            table: Cow::Owned(table.to_owned()),
            name: Cow::Borrowed(BRIDGES),
            handle: None,
            set_type: SetTypeValue::Single(SetType::Ifname),
            policy: None,
            flags: None,
            elem: None,
            timeout: None,
            gc_interval: None,
            size: None,
            comment: None,
        })),
    ]
}

/// The chains holding only base rules: flushed and refilled on every change, so the base is always whole.
pub const BASE_CHAINS: [&str; 3] = [PREROUTING, OUTPUT, FORWARD];

/// The fixed rules of the hook chains.
pub fn base_rules(table: &str) -> Vec<Rule<'static>> {
    let o = Owner::Base;
    let jump = |target: &str| Statement::Jump(JumpTarget { target: Cow::Owned(target.to_owned()) });
    vec![
        // Published ports: any destination address of this host, from outside and from the host itself.
        rule(table, PREROUTING, &o, vec![fib_daddr_local(), jump(PUBLISH)]),
        rule(table, OUTPUT, &o, vec![fib_daddr_local(), jump(PUBLISH)]),
        // Replies of allowed connections pass, whichever bridges they cross.
        rule(
            table,
            FORWARD,
            &o,
            vec![
                matches(ct("state"), Operator::IN, Expression::List(vec![s("established"), s("related")])),
                Statement::Accept(None),
            ],
        ),
        rule(table, FORWARD, &o, vec![jump(INTERNAL)]),
        // A published port is public: reachable from any network, once internal networks had their say.
        rule(table, FORWARD, &o, vec![ct_status_dnat(), Statement::Accept(None)]),
        rule(table, FORWARD, &o, vec![jump(ISOLATE)]),
    ]
}

/// A network's rules. Internal networks: no traffic between the bridge and any other interface. Others:
/// masquerade egress (source subnet, out of another interface), masquerade hairpin (a container reaching a
/// published port that leads back into its own network) and localhost (127.0.0.1 DNATed onto the bridge, which
/// needs `route_localnet=1` on the bridge), and drop traffic to other berth bridges.
pub fn network_rules(table: &str, net: &NetworkRules) -> Vec<Rule<'static>> {
    let o = Owner::Network(net.id.clone());
    let br = || s(net.bridge.clone());
    if net.internal {
        return vec![
            rule(
                table,
                INTERNAL,
                &o,
                vec![eq(meta(MetaKey::Iifname), br()), ne(meta(MetaKey::Oifname), br()), Statement::Drop(None)],
            ),
            rule(
                table,
                INTERNAL,
                &o,
                vec![eq(meta(MetaKey::Oifname), br()), ne(meta(MetaKey::Iifname), br()), Statement::Drop(None)],
            ),
        ];
    }
    let mut rules = vec![rule(
        table,
        ISOLATE,
        &o,
        vec![
            eq(meta(MetaKey::Iifname), br()),
            ne(meta(MetaKey::Oifname), br()),
            eq(meta(MetaKey::Oifname), s(format!("@{BRIDGES}"))),
            Statement::Drop(None),
        ],
    )];
    for subnet in &net.subnets {
        let v6 = matches!(subnet, IpNet::V6(_));
        rules.push(rule(
            table,
            POSTROUTING,
            &o,
            vec![
                nfproto(v6),
                eq(addr_field(v6, "saddr"), prefix(subnet)),
                ne(meta(MetaKey::Oifname), br()),
                Statement::Masquerade(None),
            ],
        ));
        rules.push(rule(
            table,
            POSTROUTING,
            &o,
            vec![
                nfproto(v6),
                eq(meta(MetaKey::Oifname), br()),
                eq(addr_field(v6, "saddr"), prefix(subnet)),
                ct_status_dnat(),
                Statement::Masquerade(None),
            ],
        ));
    }
    if net.subnets.iter().any(|n| matches!(n, IpNet::V4(_))) {
        rules.push(rule(
            table,
            POSTROUTING,
            &o,
            vec![
                nfproto(false),
                eq(meta(MetaKey::Oifname), br()),
                eq(
                    addr_field(false, "saddr"),
                    Expression::Named(NamedExpression::Prefix(Prefix { addr: Box::new(s("127.0.0.0")), len: 8 })),
                ),
                Statement::Masquerade(None),
            ],
        ));
    }
    rules
}

/// An endpoint's DNAT rules, one per published port. A `host_ip` of the other family than the container's
/// address cannot be translated and is skipped (the caller pairs host and container addresses by family).
pub fn endpoint_rules(table: &str, endpoint_id: &str, ports: &[Publish]) -> Vec<Rule<'static>> {
    let o = Owner::Endpoint(endpoint_id.to_owned());
    let mut rules = Vec::with_capacity(ports.len());
    for p in ports {
        let v6 = p.container_ip.is_ipv6();
        if p.host_ip.is_some_and(|h| h.is_ipv6() != v6) {
            continue;
        }
        let mut expr = vec![nfproto(v6)];
        if let Some(h) = p.host_ip {
            expr.push(eq(addr_field(v6, "daddr"), s(h.to_string())));
        }
        expr.push(eq(meta(MetaKey::L4proto), s(p.proto.as_str())));
        expr.push(eq(payload(p.proto.as_str(), "dport"), Expression::Number(u32::from(p.host_port))));
        expr.push(Statement::DNAT(Some(NAT {
            addr: Some(s(p.container_ip.to_string())),
            family: Some(if v6 { NATFamily::IP6 } else { NATFamily::IP }),
            port: Some(Expression::Number(u32::from(p.container_port))),
            flags: None,
        })));
        rules.push(rule(table, PUBLISH, &o, expr));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(rules: &[Rule<'static>]) -> Vec<String> {
        rules.iter().map(|r| serde_json::to_string(r).unwrap_or_default()).collect()
    }

    #[test]
    fn owners_round_trip_through_comments() {
        for o in [Owner::Base, Owner::Network("n1".into()), Owner::Endpoint("e1".into())] {
            assert_eq!(Owner::parse(&o.comment()), Some(o));
        }
        assert_eq!(Owner::parse("someone else"), None);
    }

    #[test]
    fn endpoint_rules_dnat_per_port_with_host_ip_and_protocol() {
        let ports = [
            Publish {
                proto: Proto::Tcp,
                host_ip: None,
                host_port: 8080,
                container_ip: "10.89.0.2".parse().expect("ip"),
                container_port: 80,
            },
            Publish {
                proto: Proto::Udp,
                host_ip: Some("127.0.0.1".parse().expect("ip")),
                host_port: 5353,
                container_ip: "10.89.0.2".parse().expect("ip"),
                container_port: 53,
            },
            // Mismatched families: skipped.
            Publish {
                proto: Proto::Tcp,
                host_ip: Some("::1".parse().expect("ip")),
                host_port: 8081,
                container_ip: "10.89.0.2".parse().expect("ip"),
                container_port: 80,
            },
        ];
        let got = json(&endpoint_rules("berth", "ep1", &ports));
        assert_eq!(
            got,
            vec![
                r#"{"family":"inet","table":"berth","chain":"publish","expr":[{"match":{"left":{"meta":{"key":"nfproto"}},"right":"ipv4","op":"=="}},{"match":{"left":{"meta":{"key":"l4proto"}},"right":"tcp","op":"=="}},{"match":{"left":{"payload":{"protocol":"tcp","field":"dport"}},"right":8080,"op":"=="}},{"dnat":{"addr":"10.89.0.2","family":"ip","port":80}}],"comment":"berth ep=ep1"}"#,
                r#"{"family":"inet","table":"berth","chain":"publish","expr":[{"match":{"left":{"meta":{"key":"nfproto"}},"right":"ipv4","op":"=="}},{"match":{"left":{"payload":{"protocol":"ip","field":"daddr"}},"right":"127.0.0.1","op":"=="}},{"match":{"left":{"meta":{"key":"l4proto"}},"right":"udp","op":"=="}},{"match":{"left":{"payload":{"protocol":"udp","field":"dport"}},"right":5353,"op":"=="}},{"dnat":{"addr":"10.89.0.2","family":"ip","port":53}}],"comment":"berth ep=ep1"}"#,
            ]
        );
    }

    #[test]
    fn network_rules_masquerade_and_isolate() {
        let net = NetworkRules {
            id: "n1".into(),
            bridge: "br-n1".into(),
            subnets: vec!["10.89.0.0/24".parse().expect("net")],
            internal: false,
        };
        let got = json(&network_rules("berth", &net));
        assert_eq!(got.len(), 4, "{got:#?}");
        assert_eq!(
            got[0],
            r#"{"family":"inet","table":"berth","chain":"isolate","expr":[{"match":{"left":{"meta":{"key":"iifname"}},"right":"br-n1","op":"=="}},{"match":{"left":{"meta":{"key":"oifname"}},"right":"br-n1","op":"!="}},{"match":{"left":{"meta":{"key":"oifname"}},"right":"@bridges","op":"=="}},{"drop":null}],"comment":"berth net=n1"}"#
        );
        // Egress: source subnet, out of anything but the bridge.
        assert!(got[1].contains(r#""chain":"postrouting""#));
        assert!(got[1].contains(r#"{"prefix":{"addr":"10.89.0.0","len":24}}"#));
        assert!(got[1].contains(r#""right":"br-n1","op":"!=""#));
        assert!(got[1].contains(r#"{"masquerade":null}"#));
        // Hairpin: back into the bridge after DNAT.
        assert!(got[2].contains(r#"{"match":{"left":{"ct":{"key":"status"}},"right":"dnat","op":"in"}}"#));
        assert!(got[2].contains(r#""right":"br-n1","op":"==""#));
        // Localhost.
        assert!(got[3].contains(r#"{"prefix":{"addr":"127.0.0.0","len":8}}"#));
    }

    #[test]
    fn ipv6_subnets_and_containers_use_ip6() {
        let net = NetworkRules {
            id: "n6".into(),
            bridge: "br-n6".into(),
            subnets: vec!["fd00:1::/64".parse().expect("net")],
            internal: false,
        };
        let got = json(&network_rules("t", &net));
        // Isolation, egress and hairpin; no 127.0.0.0/8 rule for an IPv6-only network.
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[1].contains(r#""right":"ipv6""#));
        assert!(got[1].contains(r#"{"payload":{"protocol":"ip6","field":"saddr"}}"#));
        assert!(got[1].contains(r#"{"prefix":{"addr":"fd00:1::","len":64}}"#));
        let ports = [Publish {
            proto: Proto::Tcp,
            host_ip: None,
            host_port: 8080,
            container_ip: "fd00:1::2".parse().expect("ip"),
            container_port: 80,
        }];
        let got = json(&endpoint_rules("t", "e6", &ports));
        assert!(got[0].contains(r#"{"dnat":{"addr":"fd00:1::2","family":"ip6","port":80}}"#), "{}", got[0]);
    }

    #[test]
    fn internal_networks_get_no_egress() {
        let net = NetworkRules {
            id: "n2".into(),
            bridge: "br-n2".into(),
            subnets: vec!["10.90.0.0/24".parse().expect("net")],
            internal: true,
        };
        let got = json(&network_rules("t", &net));
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|r| r.contains(r#""chain":"internal""#) && r.contains(r#"{"drop":null}"#)));
        assert!(!got.iter().any(|r| r.contains("masquerade")));
    }

    #[test]
    fn base_jumps_to_publish_for_local_destinations() {
        let got = json(&base_rules("t"));
        assert!(got[0].contains(r#""chain":"prerouting""#));
        assert!(
            got[0].contains(
                r#"{"match":{"left":{"fib":{"result":"type","flags":["daddr"]}},"right":"local","op":"=="}}"#
            ),
            "{}",
            got[0]
        );
        assert!(got[0].contains(r#"{"jump":{"target":"publish"}}"#));
        assert!(got[1].contains(r#""chain":"output""#));
    }
}
