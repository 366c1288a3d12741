//! Engine-side names of networks, volumes, secrets and configs, and the implicit `default` network, as Docker
//! Compose fills them in: `<project>_<key>` unless the resource has a `name:` (or is external, when the key is the
//! name).

use crate::compose::node::{Node, Value};

pub fn fill_in(root: &mut Node, project: &str) {
    add_default_network(root);
    add_implicit_dependencies(root);
    for kind in ["networks", "volumes", "secrets", "configs"] {
        let Some(resources) = root.get_mut(kind).and_then(Node::as_map_mut) else {
            continue;
        };
        for (key, entry) in resources.iter_mut() {
            let res = &mut entry.value;
            if res.as_map().is_none() || res.get("name").is_some() {
                continue;
            }
            let external = matches!(res.get("external").map(|e| &e.value), Some(Value::Bool(true)));
            let name = if external { key.clone() } else { format!("{project}_{key}") };
            let span = res.span.clone();
            res.insert("name", Node::string(name, span));
        }
    }
}

/// `links`, `volumes_from` and `service:` in network_mode, ipc, pid and uts are dependencies too: Docker Compose
/// writes them into `depends_on` (condition service_started; `restart` for links and namespaces), unless the
/// service already lists that dependency.
fn add_implicit_dependencies(root: &mut Node) {
    let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) else {
        return;
    };
    for entry in services.values_mut() {
        let svc = &mut entry.value;
        let mut implicit: Vec<(String, bool)> = Vec::new();
        if let Some(links) = svc.get("links").and_then(Node::as_seq) {
            implicit.extend(
                links.iter().filter_map(Node::as_str).map(|l| (l.split(':').next().unwrap_or(l).to_string(), true)),
            );
        }
        for key in ["network_mode", "ipc", "pid", "uts"] {
            if let Some(s) = svc.get(key).and_then(Node::as_str).and_then(|s| s.strip_prefix("service:")) {
                implicit.push((s.to_string(), true));
            }
        }
        if let Some(from) = svc.get("volumes_from").and_then(Node::as_seq) {
            implicit.extend(
                from.iter()
                    .filter_map(Node::as_str)
                    .filter(|v| !v.starts_with("container:"))
                    .map(|v| (v.split(':').next().unwrap_or(v).to_string(), false)),
            );
        }
        if implicit.is_empty() || svc.as_map().is_none() {
            continue;
        }
        let span = svc.span.clone();
        if svc.get("depends_on").is_none() {
            svc.insert("depends_on", Node::map(span.clone()));
        }
        let Some(deps) = svc.get_mut("depends_on") else {
            continue;
        };
        for (name, restart) in implicit {
            if deps.get(&name).is_none() {
                let mut d = Node::map(span.clone());
                d.insert("condition", Node::string("service_started", span.clone()));
                if restart {
                    d.insert("restart", Node::new(Value::Bool(true), span.clone()));
                }
                d.insert("required", Node::new(Value::Bool(true), span.clone()));
                deps.insert(name, d);
            }
        }
    }
}

/// Services with neither `networks` nor `network_mode` join `default`; the network exists when someone joins it.
fn add_default_network(root: &mut Node) {
    let mut uses_default = false;
    if let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) {
        for entry in services.values_mut() {
            let svc = &mut entry.value;
            if svc.as_map().is_none() || svc.get("network_mode").is_some() {
                continue;
            }
            match svc.get("networks").and_then(Node::as_map) {
                Some(m) if !m.is_empty() => uses_default |= m.contains_key("default"),
                _ => {
                    let span = svc.span.clone();
                    let mut nets = Node::map(span.clone());
                    nets.insert("default", Node::new(Value::Null, span));
                    svc.insert("networks", nets);
                    uses_default = true;
                }
            }
        }
    }
    if !uses_default {
        return;
    }
    if root.get("networks").is_none() {
        let span = root.span.clone();
        root.insert("networks", Node::map(span));
    }
    if let Some(nets) = root.get_mut("networks")
        && nets.get("default").is_none()
    {
        let span = nets.span.clone();
        nets.insert("default", Node::map(span));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::error::Span;
    use serde_json::json;

    #[test]
    fn names_and_default_network() {
        let mut t = Node::from_json(
            &json!({
                "services": {"a": {}, "b": {"networks": {"back": null}}, "c": {"network_mode": "host"}},
                "networks": {"back": {}, "ext": {"external": true}, "named": {"name": "mine"}},
                "volumes": {"data": {}},
                "secrets": {"s": {"file": "/x"}}
            }),
            &Span::default(),
        );
        fill_in(&mut t, "proj");
        let j = t.to_json();
        assert_eq!(j["services"]["a"]["networks"], json!({"default": null}));
        assert!(j["services"]["c"].get("networks").is_none());
        assert_eq!(j["networks"]["default"]["name"], "proj_default");
        assert_eq!(j["networks"]["back"]["name"], "proj_back");
        assert_eq!(j["networks"]["ext"]["name"], "ext");
        assert_eq!(j["networks"]["named"]["name"], "mine");
        assert_eq!(j["volumes"]["data"]["name"], "proj_data");
        assert_eq!(j["secrets"]["s"]["name"], "proj_s");
    }

    #[test]
    fn implicit_dependencies() {
        let mut t = Node::from_json(
            &json!({"services": {
                "a": {"links": ["db:database"], "volumes_from": ["data:ro", "container:x"], "ipc": "service:db"},
                "b": {"network_mode": "service:a", "depends_on": {"a": {"condition": "service_healthy", "required": true}}},
            }}),
            &Span::default(),
        );
        fill_in(&mut t, "p");
        let j = t.to_json();
        assert_eq!(
            j["services"]["a"]["depends_on"],
            json!({
                "db": {"condition": "service_started", "restart": true, "required": true},
                "data": {"condition": "service_started", "required": true}
            })
        );
        assert_eq!(j["services"]["b"]["depends_on"], json!({"a": {"condition": "service_healthy", "required": true}}));
    }

    #[test]
    fn no_default_network_when_nobody_uses_it() {
        let mut t = Node::from_json(&json!({"services": {"c": {"network_mode": "none"}}}), &Span::default());
        fill_in(&mut t, "p");
        assert!(t.get("networks").is_none());
    }
}
