//! Engine-side names of networks, volumes, secrets and configs, and the implicit `default` network, as Docker
//! Compose fills them in: `<project>_<key>` unless the resource has a `name:` (or is external, when the key is the
//! name).

use crate::compose::node::{Node, Value};

pub fn fill_in(root: &mut Node, project: &str) {
    add_default_network(root);
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
    fn no_default_network_when_nobody_uses_it() {
        let mut t = Node::from_json(&json!({"services": {"c": {"network_mode": "none"}}}), &Span::default());
        fill_in(&mut t, "p");
        assert!(t.get("networks").is_none());
    }
}
