//! Logical checks the schema cannot express: references between services and resources, and options that
//! conflict. Each problem is reported at the position of the offending value, all of them together.

use crate::compose::error::{Diagnostic, Span, nearest};
use crate::compose::node::{Node, Value};

/// Check the project tree after profiles were applied. `disabled` are services that exist but are not enabled;
/// optional dependencies (`required: false`) on them are dropped here, as Docker Compose does.
pub fn check(root: &mut Node, disabled: &[String]) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    drop_optional_disabled(root, disabled);
    let services: Vec<String> = keys(root, "services");
    let Some(map) = root.get("services").and_then(Node::as_map) else {
        return diags;
    };
    for (name, entry) in map {
        let svc = &entry.value;
        check_references(root, name, svc, &services, disabled, &mut diags);
        check_service_options(name, svc, &mut diags);
    }
    for kind in ["networks", "volumes"] {
        if let Some(res) = root.get(kind).and_then(Node::as_map) {
            for (name, entry) in res {
                check_external(kind, name, &entry.value, &mut diags);
            }
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(res) = root.get(kind).and_then(Node::as_map) {
            for (name, entry) in res {
                check_file_object(kind, name, &entry.value, &mut diags);
            }
        }
    }
    diags
}

fn keys(root: &Node, kind: &str) -> Vec<String> {
    root.get(kind).and_then(Node::as_map).map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

/// Whether the top-level section `kind` defines `name` (a lookup: services refer to each other a lot).
fn defined(root: &Node, kind: &str, name: &str) -> bool {
    root.get(kind).and_then(Node::as_map).is_some_and(|m| m.contains_key(name))
}

fn drop_optional_disabled(root: &mut Node, disabled: &[String]) {
    let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) else {
        return;
    };
    for entry in services.values_mut() {
        if let Some(deps) = entry.value.get_mut("depends_on").and_then(Node::as_map_mut) {
            deps.retain(|name, dep| {
                let optional = matches!(dep.value.get("required").map(|r| &r.value), Some(Value::Bool(false)));
                !(optional && disabled.contains(name))
            });
        }
    }
}

/// A reference still holding `${…}` (`config --no-interpolate`) cannot be checked.
fn unresolved(name: &str) -> bool {
    name.contains('$')
}

fn unknown_service(span: Span, what: String, target: &str, services: &[String], disabled: &[String]) -> Diagnostic {
    if disabled.iter().any(|d| d == target) {
        return Diagnostic::new(span, format!("{what} {target:?}, which is disabled by its profiles")).with_hint(
            format!("activate one of {target:?}'s profiles with --profile, or mark the dependency `required: false`"),
        );
    }
    let d = Diagnostic::new(span, format!("{what} undefined service {target:?}"));
    match nearest(target, services.iter().map(String::as_str)) {
        Some(n) => d.with_hint(format!("did you mean {n:?}?")),
        None => d.with_hint("define that service, or remove the reference"),
    }
}

fn check_references(
    root: &Node,
    name: &str,
    svc: &Node,
    services: &[String],
    disabled: &[String],
    diags: &mut Vec<Diagnostic>,
) {
    let has = |s: &str| unresolved(s) || defined(root, "services", s);
    if let Some(deps) = svc.get("depends_on").and_then(Node::as_map) {
        for (dep, e) in deps {
            if e.value.as_map().is_some() && e.value.get("condition").is_none() {
                diags.push(
                    Diagnostic::new(
                        e.key_span.clone(),
                        format!("service {name:?}: depends_on.{dep} has no `condition`"),
                    )
                    .with_hint("add `condition: service_started` (or service_healthy, service_completed_successfully)"),
                );
            }
            if !has(dep) {
                diags.push(unknown_service(
                    e.key_span.clone(),
                    format!("service {name:?} depends on"),
                    dep,
                    services,
                    disabled,
                ));
            }
        }
    }
    if let Some(links) = svc.get("links").and_then(Node::as_seq) {
        for l in links {
            let target = l.as_str().unwrap_or("").split(':').next().unwrap_or("");
            if !has(target) {
                diags.push(unknown_service(
                    l.span.clone(),
                    format!("service {name:?} links to"),
                    target,
                    services,
                    disabled,
                ));
            }
        }
    }
    if let Some(from) = svc.get("volumes_from").and_then(Node::as_seq) {
        for v in from {
            let s = v.as_str().unwrap_or("");
            if s.starts_with("container:") {
                continue;
            }
            let target = s.split(':').next().unwrap_or("");
            if !has(target) {
                diags.push(unknown_service(
                    v.span.clone(),
                    format!("service {name:?} takes volumes from"),
                    target,
                    services,
                    disabled,
                ));
            }
        }
    }
    for key in ["network_mode", "ipc", "pid", "uts"] {
        if let Some(n) = svc.get(key)
            && let Some(target) = n.as_str().and_then(|s| s.strip_prefix("service:"))
            && !has(target)
        {
            diags.push(unknown_service(
                n.span.clone(),
                format!("service {name:?} uses {key} of"),
                target,
                services,
                disabled,
            ));
        }
    }
    if let Some(nets) = svc.get("networks").and_then(Node::as_map) {
        if let Some(mode) = svc.get("network_mode") {
            diags.push(
                Diagnostic::new(mode.span.clone(), format!("service {name:?} sets both network_mode and networks"))
                    .with_hint("use one of them: network_mode replaces the service's own networking"),
            );
        }
        for (net, e) in nets {
            if net != "default" && !unresolved(net) && !defined(root, "networks", net) {
                let networks = keys(root, "networks");
                let d = Diagnostic::new(
                    e.key_span.clone(),
                    format!("service {name:?} refers to undefined network {net:?}"),
                );
                diags.push(match nearest(net, networks.iter().map(String::as_str)) {
                    Some(n) => d.with_hint(format!("did you mean {n:?}?")),
                    None => d.with_hint("declare it under the top-level `networks:`"),
                });
            }
        }
    }
    if let Some(vols) = svc.get("volumes").and_then(Node::as_seq) {
        for v in vols {
            if v.get("type").and_then(Node::as_str) != Some("volume") {
                continue;
            }
            if let Some(src) = v.get("source").and_then(Node::as_str)
                && !unresolved(src)
                && !defined(root, "volumes", src)
            {
                diags.push(
                    Diagnostic::new(v.span.clone(), format!("service {name:?} refers to undefined volume {src:?}"))
                        .with_hint(
                            "declare it under the top-level `volumes:`, or start the source with ./ for a bind mount",
                        ),
                );
            }
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(refs) = svc.get(kind).and_then(Node::as_seq) {
            for r in refs {
                if let Some(src) = r.get("source").and_then(Node::as_str)
                    && !unresolved(src)
                    && !defined(root, kind, src)
                {
                    diags.push(
                        Diagnostic::new(
                            r.span.clone(),
                            format!("service {name:?} refers to undefined {} {src:?}", &kind[..kind.len() - 1]),
                        )
                        .with_hint(format!("declare it under the top-level `{kind}:`")),
                    );
                }
            }
        }
    }
}

fn int(n: Option<&Node>) -> Option<i64> {
    match n.map(|n| &n.value) {
        Some(Value::Int(i)) => Some(*i),
        _ => None,
    }
}

fn check_service_options(name: &str, svc: &Node, diags: &mut Vec<Diagnostic>) {
    if svc.as_map().is_none() {
        return;
    }
    if svc.get("image").is_none() && svc.get("build").is_none() && svc.get("provider").is_none() {
        diags.push(
            Diagnostic::new(svc.span.clone(), format!("service {name:?} has neither an image nor a build context"))
                .with_hint("add `image:` or `build:`"),
        );
    }
    let scale = int(svc.get("scale"));
    let replicas = int(svc.get("deploy").and_then(|d| d.get("replicas")));
    if let (Some(s), Some(r)) = (scale, replicas)
        && s != r
    {
        diags.push(
            Diagnostic::new(
                svc.get("scale").map(|n| n.span.clone()).unwrap_or_default(),
                format!("service {name:?} sets scale {s} and deploy.replicas {r}, which disagree"),
            )
            .with_hint("keep one of them"),
        );
    }
    if let Some(cn) = svc.get("container_name")
        && scale.or(replicas).is_some_and(|n| n > 1)
    {
        diags.push(
            Diagnostic::new(
                cn.span.clone(),
                format!("service {name:?} sets container_name but runs more than one container"),
            )
            .with_hint("container names are unique: remove container_name to scale the service"),
        );
    }
}

fn check_external(kind: &str, name: &str, res: &Node, diags: &mut Vec<Diagnostic>) {
    if !matches!(res.get("external").map(|e| &e.value), Some(Value::Bool(true))) {
        return;
    }
    let singular = &kind[..kind.len() - 1];
    for key in ["driver", "driver_opts", "ipam"] {
        if let Some(n) = res.get(key) {
            diags.push(
                Diagnostic::new(n.span.clone(), format!("{singular} {name:?} is external and also sets {key:?}"))
                    .with_hint(format!("an external {singular} is created elsewhere: remove {key:?} or `external`")),
            );
        }
    }
}

fn check_file_object(kind: &str, name: &str, res: &Node, diags: &mut Vec<Diagnostic>) {
    if res.as_map().is_none() {
        return;
    }
    let sources: Vec<&str> =
        ["file", "environment", "content", "external"].into_iter().filter(|k| res.get(k).is_some()).collect();
    let singular = &kind[..kind.len() - 1];
    if sources.len() > 1 {
        diags.push(Diagnostic::new(
            res.span.clone(),
            format!("{singular} {name:?} sets {}; only one source is allowed", sources.join(" and ")),
        ));
    } else if sources.is_empty() && res.get("driver").is_none() {
        diags.push(
            Diagnostic::new(res.span.clone(), format!("{singular} {name:?} has no source"))
                .with_hint("set one of `file`, `environment`, `content` or `external: true`"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(j: serde_json::Value, disabled: &[&str]) -> Vec<String> {
        let mut t = Node::from_json(&j, &Span::default());
        let disabled: Vec<String> = disabled.iter().map(|s| s.to_string()).collect();
        check(&mut t, &disabled).into_iter().map(|d| d.message).collect()
    }

    #[test]
    fn references() {
        let m = run(
            json!({"services": {
                "web": {"image": "x", "depends_on": {"bd": {"condition": "service_started", "required": true}}, "links": ["cache:c"],
                        "volumes_from": ["container:abc", "nope"], "network_mode": "service:gone"},
                "db": {"image": "x", "networks": {"front": null}, "volumes": [{"type": "volume", "source": "data", "target": "/d"}],
                       "secrets": [{"source": "pw"}]}
            }}),
            &[],
        );
        assert_eq!(m.len(), 7, "{m:#?}");
        assert!(m.iter().any(|s| s.contains("depends on undefined service \"bd\"")));
        assert!(m.iter().any(|s| s.contains("undefined network \"front\"")));
        assert!(m.iter().any(|s| s.contains("undefined volume \"data\"")));
        assert!(m.iter().any(|s| s.contains("undefined secret \"pw\"")));
    }

    #[test]
    fn disabled_dependencies() {
        let m = run(
            json!({"services": {"web": {"image": "x", "depends_on": {"db": {"condition": "service_started", "required": true}}}}}),
            &["db"],
        );
        assert_eq!(m, ["service \"web\" depends on \"db\", which is disabled by its profiles"]);
        let m = run(
            json!({"services": {"web": {"image": "x", "depends_on": {"db": {"condition": "service_started", "required": false}}}}}),
            &["db"],
        );
        assert!(m.is_empty());
    }

    #[test]
    fn conflicting_options() {
        let m = run(
            json!({
                "services": {
                    "a": {"image": "x", "network_mode": "host", "networks": {"default": null}},
                    "b": {"image": "x", "scale": 2, "container_name": "b"},
                    "c": {"image": "x", "scale": 2, "deploy": {"replicas": 3}},
                    "d": {}
                },
                "networks": {"n": {"external": true, "driver": "bridge"}},
                "secrets": {"s": {"file": "/a", "environment": "B"}, "t": {}}
            }),
            &[],
        );
        assert_eq!(m.len(), 7, "{m:#?}");
    }
}
