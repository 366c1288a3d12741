//! `extra_hosts`: host names mapped to the addresses a container resolves them to.

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Host name → addresses (one host may have several, IPv4 and IPv6).
///
/// The canonical tree holds a mapping (what the loader merges); printing gives the sorted `host=ip` list that
/// `docker compose config` prints (`=` rather than `:` keeps IPv6 readable). Reading accepts both.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HostsList(pub IndexMap<String, Vec<String>>);

impl HostsList {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every `host<sep>ip` pair, sorted; the Engine API takes `:`, compose prints `=`.
    pub fn to_list(&self, sep: &str) -> Vec<String> {
        let mut list: Vec<String> =
            self.0.iter().flat_map(|(host, ips)| ips.iter().map(move |ip| format!("{host}{sep}{ip}"))).collect();
        list.sort();
        list
    }

    fn push(&mut self, host: &str, ip: &str) {
        // `[::1]` is accepted for an IPv6 address; the engine wants it bare.
        let ip = ip.strip_prefix('[').and_then(|s| s.strip_suffix(']')).unwrap_or(ip);
        self.0.entry(host.to_string()).or_default().push(ip.to_string());
    }
}

impl Serialize for HostsList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_list("=").serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for HostsList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HostsVisitor;

        /// A mapping value: one address or a list of them.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Addresses {
            One(String),
            Many(Vec<String>),
        }

        impl<'de> Visitor<'de> for HostsVisitor {
            type Value = HostsList;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of host names to addresses, or a list of `host=ip` entries")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<HostsList, A::Error> {
                let mut hosts = HostsList::default();
                while let Some((host, addresses)) = map.next_entry::<String, Option<Addresses>>()? {
                    match addresses {
                        None => hosts.push(&host, ""),
                        Some(Addresses::One(ip)) => hosts.push(&host, &ip),
                        Some(Addresses::Many(ips)) => {
                            hosts.0.entry(host.clone()).or_default();
                            ips.iter().for_each(|ip| hosts.push(&host, ip));
                        }
                    }
                }
                Ok(hosts)
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HostsList, A::Error> {
                let mut hosts = HostsList::default();
                while let Some(entry) = seq.next_element::<String>()? {
                    // `=` first: an IPv6 address holds colons, so only the host part can be split on `:`.
                    let (host, ip) = entry
                        .split_once('=')
                        .or_else(|| entry.split_once(':'))
                        .ok_or_else(|| de::Error::custom(format!("invalid extra host {entry:?}: expected host=ip")))?;
                    hosts.push(host, ip);
                }
                Ok(hosts)
            }
        }

        deserializer.deserialize_any(HostsVisitor)
    }
}

impl JsonSchema for HostsList {
    fn schema_name() -> Cow<'static, str> {
        "HostsList".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Host name to addresses; printed as a sorted list of `host=ip`.",
            "anyOf": [
                {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                },
                {
                    "type": "array",
                    "items": {"type": "string", "pattern": "^[^=:]+[=:].*$"},
                },
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_map_and_list_prints_sorted_list() {
        let map: HostsList =
            serde_json::from_value(serde_json::json!({"somehost": ["162.242.195.82"], "other": ["::1", "[::2]"]}))
                .unwrap_or_default();
        assert_eq!(map.0["other"], vec!["::1", "::2"]);
        let printed = serde_json::to_value(&map).unwrap_or_default();
        assert_eq!(printed, serde_json::json!(["other=::1", "other=::2", "somehost=162.242.195.82"]));
        let back: HostsList = serde_json::from_value(printed).unwrap_or_default();
        assert_eq!(back.to_list(":"), map.to_list(":"));
        let short: HostsList = serde_json::from_value(serde_json::json!(["h:10.0.0.1"])).unwrap_or_default();
        assert_eq!(short.0["h"], vec!["10.0.0.1"]);
        assert!(serde_json::from_value::<HostsList>(serde_json::json!(["nohost"])).is_err());
    }
}
