//! Merging compose trees: several `-f` files, and a service onto the one it `extends`.
//!
//! The Compose Specification's rules, applied to trees already in canonical long form (so ports, volumes,
//! secrets and configs have the fields they are keyed by):
//! - mappings merge key by key; scalars are replaced by the later file;
//! - sequences append (scalars once each), except `command`, `entrypoint` and `healthcheck.test`, which replace;
//! - `ports`, `volumes`, `secrets`, `configs` and `env_file` merge by their key (an entry of the later file replaces the
//!   earlier entry with the same key);
//! - `logging` replaces its options when the driver changes, `ulimits` entries replace whole;
//! - `!reset` removes what earlier files set, `!override` replaces it instead of merging.

use crate::compose::error::Span;
use crate::compose::node::{Entry, Mapping, Node, Tag, Value};

/// Merge `over` onto `base`. `path` is where the two trees sit in a project (`[]` for whole files,
/// `["services", "web"]` for `extends`), so that the path-specific rules apply.
pub fn merge(base: Node, over: Node, path: &[&str]) -> Node {
    let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
    merge_at(Some(base), over, &path).unwrap_or_else(|| Node::new(Value::Null, Default::default()))
}

/// Apply the tags of a tree that is not merged onto anything: `!reset` values disappear, `!override` is plain.
pub fn strip_tags(node: Node) -> Option<Node> {
    merge_at(None, node, &[])
}

enum Rule {
    Merge,
    Replace,
    /// Sequence entries keyed by the result of the function; later entries replace earlier ones with their key.
    Keyed(fn(&Node) -> Option<String>),
    /// `logging`: a different driver throws the earlier options away.
    Logging,
}

fn rule_for(path: &[String]) -> Rule {
    match path {
        [section, _, rest @ ..] if section == "services" => {
            let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
            service_rule(&rest)
        }
        _ => Rule::Merge,
    }
}

/// The rule of a path inside one service (`["ports"]`, `["healthcheck", "test"]`).
fn service_rule(path: &[&str]) -> Rule {
    match path {
        ["command" | "entrypoint"] => Rule::Replace,
        ["healthcheck", "test"] => Rule::Replace,
        ["ulimits", _] | ["build", "ulimits", _] => Rule::Replace,
        ["ports"] => Rule::Keyed(port_key),
        ["volumes"] => Rule::Keyed(|n| text(n, "target")),
        ["secrets"] | ["build", "secrets"] => Rule::Keyed(secret_path),
        ["configs"] => Rule::Keyed(config_path),
        ["env_file"] => Rule::Keyed(|n| text(n, "path")),
        ["devices"] => Rule::Keyed(|n| text(n, "target")),
        ["logging"] => Rule::Logging,
        _ => Rule::Merge,
    }
}

fn text(n: &Node, key: &str) -> Option<String> {
    n.get(key).and_then(Node::scalar_text)
}

/// Where a secret is mounted: `target` (relative ones under `/run/secrets`), else `/run/secrets/<source>`.
fn secret_path(n: &Node) -> Option<String> {
    match text(n, "target") {
        Some(t) if t.starts_with('/') => Some(t),
        Some(t) => Some(format!("/run/secrets/{t}")),
        None => Some(format!("/run/secrets/{}", text(n, "source")?)),
    }
}

/// Where a config is mounted: `target`, else `/<source>`.
fn config_path(n: &Node) -> Option<String> {
    text(n, "target").or_else(|| Some(format!("/{}", text(n, "source")?)))
}

/// A published port's identity; no host address means all of them (0.0.0.0), as Docker Compose keys it.
fn port_key(n: &Node) -> Option<String> {
    Some(format!(
        "{}:{}:{}/{}",
        text(n, "host_ip").unwrap_or_else(|| "0.0.0.0".into()),
        text(n, "published").unwrap_or_default(),
        text(n, "target")?,
        text(n, "protocol").unwrap_or_else(|| "tcp".into())
    ))
}

fn merge_at(base: Option<Node>, mut over: Node, path: &[String]) -> Option<Node> {
    match over.tag.take() {
        Some(Tag::Reset) => return None,
        Some(Tag::Override) => return Some(clean(over)),
        None => {}
    }
    let Some(base) = base else {
        return Some(clean(over));
    };
    let rule = rule_for(path);
    match (base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => {
            if matches!(rule, Rule::Logging) && driver_changed(&b, &o) {
                return Some(clean(Node { value: Value::Map(o), span: over.span, tag: None }));
            }
            Some(Node { value: Value::Map(merge_maps(b, o, path)), span: over.span, tag: None })
        }
        (Value::Seq(b), Value::Seq(o)) => {
            let merged = match rule {
                Rule::Replace => o.into_iter().filter_map(strip_tags).collect(),
                Rule::Keyed(key) => merge_keyed(b, o, key),
                Rule::Merge | Rule::Logging => append_unique(b, o),
            };
            Some(Node { value: Value::Seq(merged), span: over.span, tag: None })
        }
        (_, value) => Some(clean(Node { value, span: over.span, tag: None })),
    }
}

fn driver_changed(base: &Mapping, over: &Mapping) -> bool {
    let driver = |m: &Mapping| m.get("driver").and_then(|e| e.value.scalar_text());
    matches!((driver(base), driver(over)), (Some(a), Some(b)) if a != b)
}

fn merge_maps(mut base: Mapping, over: Mapping, path: &[String]) -> Mapping {
    let mut child_path = path.to_vec();
    for (key, entry) in over {
        child_path.push(key.clone());
        // The base's value moves into the merge (no copy); its slot keeps the key's place until it is refilled.
        let earlier =
            base.get_mut(&key).map(|e| std::mem::replace(&mut e.value, Node::new(Value::Null, Span::default())));
        match merge_at(earlier, entry.value, &child_path) {
            Some(value) => match base.get_mut(&key) {
                Some(e) => e.value = value,
                None => {
                    base.insert(key, Entry { key_span: entry.key_span, value });
                }
            },
            None => {
                base.shift_remove(&key);
            }
        }
        child_path.pop();
    }
    base
}

/// Later entries replace earlier ones with the same key, whole and at the earlier one's place. Each entry's key
/// is computed once and kept beside it (the key functions format strings).
fn merge_keyed(base: Vec<Node>, over: Vec<Node>, key: fn(&Node) -> Option<String>) -> Vec<Node> {
    let mut keys: Vec<Option<String>> = base.iter().map(key).collect();
    let mut out: Vec<Node> = base;
    for item in over {
        let k = key(&item);
        let existing = k.as_ref().and_then(|k| keys.iter().position(|b| b.as_ref() == Some(k)));
        // Removing a `!reset` part inside the entry may change its key; only then is it computed again.
        let tagged = has_tags(&item);
        let Some(item) = strip_tags(item) else {
            if let Some(i) = existing {
                out.remove(i);
                keys.remove(i);
            }
            continue;
        };
        let k = if tagged { key(&item) } else { k };
        match existing {
            Some(i) => {
                keys[i] = k;
                out[i] = item;
            }
            None => {
                keys.push(k);
                out.push(item);
            }
        }
    }
    out
}

/// Whether a tag appears anywhere in the tree.
fn has_tags(node: &Node) -> bool {
    node.tag.is_some()
        || match &node.value {
            Value::Map(m) => m.values().any(|e| has_tags(&e.value)),
            Value::Seq(s) => s.iter().any(has_tags),
            _ => false,
        }
}

/// Append, keeping each scalar once (`dns`, `cap_add`, `profiles`… list things, not counts).
fn append_unique(base: Vec<Node>, over: Vec<Node>) -> Vec<Node> {
    let mut out = base;
    for item in over.into_iter().filter_map(strip_tags) {
        let duplicate = item.scalar_text().is_some() && out.iter().any(|b| b.value == item.value);
        if !duplicate {
            out.push(item);
        }
    }
    out
}

/// Sequences of a service that hold each entry once, even within one file (Docker Compose's `EnforceUnicity`).
const UNIQUE_LISTS: [&str; 16] = [
    "cap_add",
    "cap_drop",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "expose",
    "external_links",
    "group_add",
    "links",
    "profiles",
    "security_opt",
    "tmpfs",
    "volumes_from",
    "env_file",
    "label_file",
];

/// Remove duplicates within each service: keyed entries (ports, volumes, secrets, configs) keep the last of a
/// key at the first one's place; listed scalar sequences keep each value once.
pub fn enforce_unicity(root: &mut Node) {
    let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) else {
        return;
    };
    for entry in services.values_mut() {
        let Some(svc) = entry.value.as_map_mut() else {
            continue;
        };
        for (key, e) in svc.iter_mut() {
            let Value::Seq(items) = &mut e.value.value else {
                continue;
            };
            match service_rule(&[key.as_str()]) {
                Rule::Keyed(k) => *items = merge_keyed(Vec::new(), std::mem::take(items), k),
                _ if UNIQUE_LISTS.contains(&key.as_str()) => *items = append_unique(Vec::new(), std::mem::take(items)),
                _ => {}
            }
        }
    }
}

/// Remove `!reset` children and tags from a tree that has nothing under it to merge with.
fn clean(mut node: Node) -> Node {
    clean_in_place(&mut node);
    node
}

/// [`clean`] without rebuilding the tree: most trees have no tags at all, and rebuilding every mapping (rehashing
/// every key) cost more than the rest of the merge.
fn clean_in_place(node: &mut Node) {
    node.tag = None;
    let is_reset = |n: &Node| n.tag == Some(Tag::Reset);
    match &mut node.value {
        Value::Map(m) => {
            m.retain(|_, e| !is_reset(&e.value));
            m.values_mut().for_each(|e| clean_in_place(&mut e.value));
        }
        Value::Seq(s) => {
            s.retain(|n| !is_reset(n));
            s.iter_mut().for_each(clean_in_place);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn n(j: serde_json::Value) -> Node {
        Node::from_json(&j, &Span::default())
    }

    fn m(a: serde_json::Value, b: serde_json::Value) -> serde_json::Value {
        merge(n(a), n(b), &[]).to_json()
    }

    #[test]
    fn mappings_merge_scalars_replace() {
        let r = m(
            json!({"services": {"web": {"image": "a", "environment": {"A": "1", "B": "2"}}}}),
            json!({"services": {"web": {"image": "b", "environment": {"B": "3"}}, "db": {"image": "pg"}}}),
        );
        assert_eq!(r["services"]["web"], json!({"image": "b", "environment": {"A": "1", "B": "3"}}));
        assert_eq!(r["services"]["db"]["image"], "pg");
    }

    #[test]
    fn sequences_append_once_command_replaces() {
        let r = m(
            json!({"services": {"w": {"dns": ["1.1.1.1"], "command": ["a", "b"], "healthcheck": {"test": ["CMD", "x"]}}}}),
            json!({"services": {"w": {"dns": ["1.1.1.1", "8.8.8.8"], "command": ["c"], "healthcheck": {"test": ["NONE"]}}}}),
        );
        assert_eq!(r["services"]["w"]["dns"], json!(["1.1.1.1", "8.8.8.8"]));
        assert_eq!(r["services"]["w"]["command"], json!(["c"]));
        assert_eq!(r["services"]["w"]["healthcheck"]["test"], json!(["NONE"]));
    }

    #[test]
    fn ports_and_volumes_by_key() {
        let r = m(
            json!({"services": {"w": {
                "ports": [{"target": 80, "published": "8080", "protocol": "tcp"}],
                "volumes": [{"type": "volume", "source": "a", "target": "/data"}, {"type": "bind", "source": "/x", "target": "/x"}]}}}),
            json!({"services": {"w": {
                "ports": [{"target": 80, "published": "8080", "protocol": "tcp", "mode": "host"}, {"target": 81, "protocol": "tcp"}],
                "volumes": [{"type": "volume", "source": "b", "target": "/data"}]}}}),
        );
        let w = &r["services"]["w"];
        assert_eq!(w["ports"].as_array().map(Vec::len), Some(2));
        assert_eq!(w["ports"][0]["mode"], "host");
        assert_eq!(w["volumes"].as_array().map(Vec::len), Some(2));
        assert_eq!(w["volumes"][0]["source"], "b");
    }

    #[test]
    fn secrets_by_target_or_source() {
        let r = m(
            json!({"services": {"w": {"secrets": [{"source": "s", "mode": 256}]}}}),
            json!({"services": {"w": {"secrets": [{"source": "s", "uid": "1"}, {"source": "t"}]}}}),
        );
        // The later entry replaces the earlier one with the same mount path whole.
        assert_eq!(r["services"]["w"]["secrets"], json!([{"source": "s", "uid": "1"}, {"source": "t"}]));
    }

    #[test]
    fn logging_driver_change_drops_options() {
        let r = m(
            json!({"services": {"w": {"logging": {"driver": "json-file", "options": {"max-size": "1m"}}}}}),
            json!({"services": {"w": {"logging": {"driver": "syslog", "options": {"tag": "x"}}}}}),
        );
        assert_eq!(r["services"]["w"]["logging"], json!({"driver": "syslog", "options": {"tag": "x"}}));
        let r = m(
            json!({"services": {"w": {"logging": {"driver": "json-file", "options": {"max-size": "1m"}}}}}),
            json!({"services": {"w": {"logging": {"options": {"max-file": "2"}}}}}),
        );
        assert_eq!(r["services"]["w"]["logging"]["options"], json!({"max-size": "1m", "max-file": "2"}));
    }

    #[test]
    fn ulimits_replace_whole() {
        let r = m(
            json!({"services": {"w": {"ulimits": {"nofile": {"soft": 1, "hard": 2}}}}}),
            json!({"services": {"w": {"ulimits": {"nofile": {"soft": 5, "hard": 5}}}}}),
        );
        assert_eq!(r["services"]["w"]["ulimits"]["nofile"], json!({"soft": 5, "hard": 5}));
    }

    #[test]
    fn reset_and_override_tags() {
        let mut over = n(json!({"services": {"w": {"ports": [], "environment": {"A": "x"}, "command": null}}}));
        let w = over.get_mut("services").and_then(|s| s.get_mut("w"));
        if let Some(w) = w {
            if let Some(p) = w.get_mut("ports") {
                p.tag = Some(Tag::Reset);
            }
            if let Some(e) = w.get_mut("environment") {
                e.tag = Some(Tag::Override);
            }
            if let Some(c) = w.get_mut("command") {
                c.tag = Some(Tag::Reset);
            }
        }
        let base = n(
            json!({"services": {"w": {"image": "i", "ports": [{"target": 1}], "environment": {"B": "y"}, "command": ["a"]}}}),
        );
        let r = merge(base, over, &[]).to_json();
        assert_eq!(r["services"]["w"], json!({"image": "i", "environment": {"A": "x"}}));
    }

    #[test]
    fn reset_without_base_disappears() {
        let mut t = n(json!({"a": 1, "b": 2}));
        if let Some(b) = t.get_mut("b") {
            b.tag = Some(Tag::Reset);
        }
        assert_eq!(strip_tags(t).map(|t| t.to_json()), Some(json!({"a": 1})));
    }
}
