//! berth's nftables table: each change is one atomic `nft -j -f -` batch; berth's rules are found again by
//! their comments.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use nftables::batch::Batch;
use nftables::expr::Expression;
use nftables::helper::{NftablesError, apply_ruleset_with_args, get_current_ruleset_raw};
use nftables::schema::{Chain, Element, FlushObject, NfCmd, NfListObject, Nftables, Rule, Table};
use nftables::types::NfFamily;
use serde_json::Value;

use super::NftError;
use super::rules::{
    BASE_CHAINS, BRIDGES, NetworkRules, Owner, Publish, base_objects, base_rules, endpoint_rules, network_rules,
};

/// One rule found in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedRule {
    pub chain: String,
    pub handle: u32,
    pub owner: Owner,
    /// The bridge a network rule matches (`iifname`/`oifname` first seen), for the `bridges` set.
    pub bridge: Option<String>,
}

/// What berth's table holds now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    pub exists: bool,
    pub rules: Vec<ListedRule>,
    pub bridges: BTreeSet<String>,
}

impl Listing {
    /// Ids of networks with rules in the table (to compare with the daemon's state after a restart).
    pub fn networks(&self) -> BTreeSet<String> {
        self.owned(|o| match o {
            Owner::Network(id) => Some(id.clone()),
            _ => None,
        })
    }

    /// Ids of endpoints with published ports in the table.
    pub fn endpoints(&self) -> BTreeSet<String> {
        self.owned(|o| match o {
            Owner::Endpoint(id) => Some(id.clone()),
            _ => None,
        })
    }

    /// Rules other than the base rules.
    pub fn owned_rule_count(&self) -> usize {
        self.rules.iter().filter(|r| r.owner != Owner::Base).count()
    }

    fn owned(&self, pick: impl Fn(&Owner) -> Option<String>) -> BTreeSet<String> {
        self.rules.iter().filter_map(|r| pick(&r.owner)).collect()
    }
}

/// A handle on one nftables table of family `inet` (berth's is `berth`; tests use their own names).
pub struct NftTable {
    name: String,
    program: PathBuf,
    /// Serialises list-then-apply, so two changes never delete each other's handles.
    lock: Mutex<()>,
}

enum Change<'a> {
    SetNetwork(&'a NetworkRules),
    RemoveNetwork(&'a str),
    SetEndpoint(&'a str, &'a [Publish]),
    RemoveEndpoint(&'a str),
    None,
}

impl NftTable {
    /// The table `inet <name>`; `nft` from `PATH`. Names are 1-32 characters of `[A-Za-z0-9_-]`.
    pub fn new(name: &str) -> Result<Self, NftError> {
        let valid = !name.is_empty()
            && name.len() <= 32
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(NftError::InvalidName(name.to_owned()));
        }
        Ok(Self { name: name.to_owned(), program: PathBuf::from("nft"), lock: Mutex::new(()) })
    }

    /// Use another `nft` binary.
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Create the table, its chains, set and base rules (idempotent).
    pub fn ensure(&self) -> Result<(), NftError> {
        self.change(Change::None)
    }

    /// Install or replace a network's rules (and its bridge in the `bridges` set).
    pub fn set_network(&self, net: &NetworkRules) -> Result<(), NftError> {
        check_id(&net.id)?;
        self.change(Change::SetNetwork(net))
    }

    /// Remove a network's rules and its bridge from the set.
    pub fn remove_network(&self, network_id: &str) -> Result<(), NftError> {
        self.change(Change::RemoveNetwork(network_id))
    }

    /// Install or replace an endpoint's published ports.
    pub fn set_endpoint(&self, endpoint_id: &str, ports: &[Publish]) -> Result<(), NftError> {
        check_id(endpoint_id)?;
        self.change(Change::SetEndpoint(endpoint_id, ports))
    }

    /// Remove an endpoint's published ports.
    pub fn remove_endpoint(&self, endpoint_id: &str) -> Result<(), NftError> {
        self.change(Change::RemoveEndpoint(endpoint_id))
    }

    /// Delete the whole table (nothing happens when it does not exist).
    pub fn delete(&self) -> Result<(), NftError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        if !self.list_locked()?.exists {
            return Ok(());
        }
        let mut batch = Batch::new();
        batch.delete(NfListObject::Table(Table {
            family: NfFamily::INet,
            name: Cow::Owned(self.name.clone()),
            handle: None,
        }));
        self.apply(&batch.to_nftables())
    }

    /// What the table holds.
    pub fn list(&self) -> Result<Listing, NftError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.list_locked()
    }

    fn list_locked(&self) -> Result<Listing, NftError> {
        let args = ["list", "table", "inet", self.name.as_str()];
        match get_current_ruleset_raw(Some(&self.program), args) {
            Ok(json) => parse_listing(&json),
            Err(NftablesError::NftFailed { stderr, .. }) if stderr.contains("No such file or directory") => {
                Ok(Listing::default())
            }
            Err(e) => Err(nft_error(e)),
        }
    }

    fn change(&self, change: Change<'_>) -> Result<(), NftError> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let listing = self.list_locked()?;
        let batch = plan(&self.name, &listing, &change);
        self.apply(&batch)
    }

    fn apply(&self, nftables: &Nftables<'_>) -> Result<(), NftError> {
        apply_ruleset_with_args(nftables, Some(&self.program), [] as [&str; 0]).map_err(nft_error)
    }
}

/// The batch for one change, given what the table holds: the base (chains, set, flushed and refilled base
/// chains), deletion of the owner's old rules by handle, the owner's new rules, and the `bridges` set brought
/// in line with the networks that have rules.
fn plan(table: &str, listing: &Listing, change: &Change<'_>) -> Nftables<'static> {
    let mut batch = Batch::new();
    for obj in base_objects(table) {
        batch.add(obj);
    }
    for chain in BASE_CHAINS {
        batch.add_cmd(NfCmd::Flush(FlushObject::Chain(Chain {
            family: NfFamily::INet,
            table: Cow::Owned(table.to_owned()),
            name: Cow::Owned(chain.to_owned()),
            ..Chain::default()
        })));
    }
    for rule in base_rules(table) {
        batch.add(NfListObject::Rule(rule));
    }

    let replaced = match change {
        Change::SetNetwork(net) => Some(Owner::Network(net.id.clone())),
        Change::RemoveNetwork(id) => Some(Owner::Network((*id).to_owned())),
        Change::SetEndpoint(id, _) | Change::RemoveEndpoint(id) => Some(Owner::Endpoint((*id).to_owned())),
        Change::None => None,
    };
    // Bridges of networks keeping their rules.
    let mut wanted: BTreeMap<String, ()> = BTreeMap::new();
    for r in &listing.rules {
        if Some(&r.owner) == replaced.as_ref() {
            batch.delete(NfListObject::Rule(Rule {
                family: NfFamily::INet,
                table: Cow::Owned(table.to_owned()),
                chain: Cow::Owned(r.chain.clone()),
                expr: Cow::Owned(Vec::new()),
                handle: Some(r.handle),
                index: None,
                comment: None,
            }));
        } else if let (Owner::Network(_), Some(b)) = (&r.owner, &r.bridge) {
            wanted.insert(b.clone(), ());
        }
    }
    let new_rules = match change {
        Change::SetNetwork(net) => {
            wanted.insert(net.bridge.clone(), ());
            network_rules(table, net)
        }
        Change::SetEndpoint(id, ports) => endpoint_rules(table, id, ports),
        _ => Vec::new(),
    };
    for rule in new_rules {
        batch.add(NfListObject::Rule(rule));
    }
    let element = |names: Vec<&String>| {
        NfListObject::Element(Element {
            family: NfFamily::INet,
            table: Cow::Owned(table.to_owned()),
            name: Cow::Borrowed(BRIDGES),
            elem: Cow::Owned(names.into_iter().map(|n| Expression::String(Cow::Owned(n.clone()))).collect()),
        })
    };
    let stale: Vec<&String> = listing.bridges.iter().filter(|b| !wanted.contains_key(*b)).collect();
    if !stale.is_empty() {
        batch.delete(element(stale));
    }
    let missing: Vec<&String> = wanted.keys().filter(|b| !listing.bridges.contains(*b)).collect();
    if !missing.is_empty() {
        batch.add(element(missing));
    }
    batch.to_nftables()
}

fn check_id(id: &str) -> Result<(), NftError> {
    // The id goes into a comment (at most 128 bytes) and must read back unchanged.
    let valid =
        !id.is_empty() && id.len() <= 100 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.:".contains(&b));
    if valid { Ok(()) } else { Err(NftError::InvalidId(id.to_owned())) }
}

fn nft_error(e: NftablesError) -> NftError {
    match e {
        NftablesError::NftFailed { hint, stderr, .. } => {
            NftError::Failed { what: hint, stderr: stderr.trim().to_owned() }
        }
        other => NftError::Run(other.to_string()),
    }
}

/// Read `nft -j list table` output. Parsed as plain JSON rather than the crate's typed schema, which cannot
/// read every expression nft prints; only the rule's place, handle and comment matter here.
fn parse_listing(json: &str) -> Result<Listing, NftError> {
    let doc: Value = serde_json::from_str(json).map_err(|e| NftError::Run(e.to_string()))?;
    let mut listing = Listing::default();
    let Some(items) = doc.get("nftables").and_then(Value::as_array) else {
        return Ok(listing);
    };
    for item in items {
        if item.get("table").is_some() {
            listing.exists = true;
        }
        if let Some(set) = item.get("set")
            && set.get("name").and_then(Value::as_str) == Some(BRIDGES)
        {
            let elems = set.get("elem").and_then(Value::as_array);
            for e in elems.into_iter().flatten() {
                if let Some(name) = e.as_str() {
                    listing.bridges.insert(name.to_owned());
                }
            }
        }
        let Some(rule) = item.get("rule") else {
            continue;
        };
        let owner = rule.get("comment").and_then(Value::as_str).and_then(Owner::parse);
        let (Some(owner), Some(chain), Some(handle)) = (
            owner,
            rule.get("chain").and_then(Value::as_str),
            rule.get("handle").and_then(Value::as_u64).and_then(|h| u32::try_from(h).ok()),
        ) else {
            continue;
        };
        let bridge = match owner {
            Owner::Network(_) => rule_bridge(rule),
            _ => None,
        };
        listing.rules.push(ListedRule { chain: chain.to_owned(), handle, owner, bridge });
    }
    Ok(listing)
}

/// The first `iifname == X` / `oifname == X` string of a rule.
fn rule_bridge(rule: &Value) -> Option<String> {
    rule.get("expr")?.as_array()?.iter().find_map(|stmt| {
        let m = stmt.get("match")?;
        let key = m.get("left")?.get("meta")?.get("key")?.as_str()?;
        let op = m.get("op").and_then(Value::as_str).unwrap_or("==");
        let right = m.get("right")?.as_str()?;
        ((key == "iifname" || key == "oifname") && op == "==" && !right.starts_with('@')).then(|| right.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTED: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
      {"table": {"family": "inet", "name": "t", "handle": 3}},
      {"set": {"family": "inet", "name": "bridges", "table": "t", "type": "ifname", "handle": 9,
               "elem": ["br-a", "br-old"]}},
      {"rule": {"family": "inet", "table": "t", "chain": "prerouting", "handle": 10, "comment": "berth base",
                "expr": []}},
      {"rule": {"family": "inet", "table": "t", "chain": "isolate", "handle": 11, "comment": "berth net=a",
                "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "br-a"}}]}},
      {"rule": {"family": "inet", "table": "t", "chain": "publish", "handle": 12, "comment": "berth ep=e1",
                "expr": []}},
      {"rule": {"family": "inet", "table": "t", "chain": "publish", "handle": 13, "comment": "not ours",
                "expr": []}}
    ]}"#;

    #[test]
    fn listing_finds_owners_handles_and_bridges() -> Result<(), NftError> {
        let l = parse_listing(LISTED)?;
        assert!(l.exists);
        assert_eq!(l.rules.len(), 3);
        assert_eq!(l.networks().into_iter().collect::<Vec<_>>(), vec!["a".to_string()]);
        assert_eq!(l.endpoints().into_iter().collect::<Vec<_>>(), vec!["e1".to_string()]);
        assert_eq!(l.rules[1].bridge.as_deref(), Some("br-a"));
        assert_eq!(l.owned_rule_count(), 2);
        Ok(())
    }

    #[test]
    fn removing_an_endpoint_deletes_its_handles_and_prunes_stale_bridges() -> Result<(), NftError> {
        let l = parse_listing(LISTED)?;
        let batch = serde_json::to_string(&plan("t", &l, &Change::RemoveEndpoint("e1")))
            .map_err(|e| NftError::Run(e.to_string()))?;
        assert!(
            batch.contains(
                r#"{"delete":{"rule":{"family":"inet","table":"t","chain":"publish","expr":[],"handle":12}}}"#
            ),
            "{batch}"
        );
        assert!(!batch.contains(r#""handle":11"#), "network rules stay");
        assert!(!batch.contains(r#""handle":13"#), "foreign rules stay");
        assert!(
            batch
                .contains(r#"{"delete":{"element":{"family":"inet","table":"t","name":"bridges","elem":["br-old"]}}}"#),
            "{batch}"
        );
        assert!(batch.contains(r#"{"flush":{"chain":{"family":"inet","table":"t","name":"prerouting"}}}"#), "{batch}");
        Ok(())
    }

    #[test]
    fn setting_a_network_replaces_its_rules_and_adds_its_bridge() -> Result<(), NftError> {
        let l = parse_listing(LISTED)?;
        let net = NetworkRules {
            id: "b".into(),
            bridge: "br-b".into(),
            subnets: vec!["10.1.0.0/24".parse().map_err(|_| NftError::Run("net".into()))?],
            internal: false,
        };
        let batch = serde_json::to_string(&plan("t", &l, &Change::SetNetwork(&net)))
            .map_err(|e| NftError::Run(e.to_string()))?;
        assert!(
            batch.contains(r#"{"add":{"element":{"family":"inet","table":"t","name":"bridges","elem":["br-b"]}}}"#),
            "{batch}"
        );
        assert!(batch.contains(r#""comment":"berth net=b""#));
        assert!(!batch.contains(r#""delete":{"rule""#), "nothing of b to delete");
        Ok(())
    }

    #[test]
    fn bad_names_and_ids_are_refused() {
        assert!(NftTable::new("").is_err());
        assert!(NftTable::new("has space").is_err());
        assert!(NftTable::new(&"x".repeat(33)).is_err());
        assert!(check_id("ok-id_1").is_ok());
        assert!(check_id("bad\"id").is_err());
        assert!(check_id("").is_err());
    }
}
