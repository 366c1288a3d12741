//! Profiles and service selection.
//!
//! A service without `profiles` is always enabled; one with profiles only when one of them is active (`--profile`,
//! `COMPOSE_PROFILES`, `*` for all). Naming services on the command line enables them whatever their profiles, and
//! with them everything they depend on, as Docker Compose does; the other services are then left out.

use std::collections::BTreeSet;

use crate::compose::error::Diagnostic;
use crate::compose::node::Node;

/// The services a service needs running: depends_on, links, volumes_from and `service:` references.
pub fn dependencies(svc: &Node) -> Vec<String> {
    let mut deps = Vec::new();
    if let Some(m) = svc.get("depends_on").and_then(Node::as_map) {
        deps.extend(m.keys().cloned());
    }
    if let Some(links) = svc.get("links").and_then(Node::as_seq) {
        deps.extend(links.iter().filter_map(Node::as_str).map(|l| l.split(':').next().unwrap_or(l).to_string()));
    }
    if let Some(from) = svc.get("volumes_from").and_then(Node::as_seq) {
        deps.extend(
            from.iter()
                .filter_map(Node::as_str)
                .filter(|v| !v.starts_with("container:"))
                .map(|v| v.split(':').next().unwrap_or(v).to_string()),
        );
    }
    for key in ["network_mode", "ipc", "pid"] {
        if let Some(s) = svc.get(key).and_then(Node::as_str).and_then(|s| s.strip_prefix("service:")) {
            deps.push(s.to_string());
        }
    }
    deps
}

/// Remove the services that are not enabled from `root`; returns the names removed.
pub fn apply(root: &mut Node, active: &[String], selected: &[String]) -> Result<Vec<String>, Vec<Diagnostic>> {
    let Some(services) = root.get("services").and_then(Node::as_map) else {
        return Ok(Vec::new());
    };
    let all = active.iter().any(|p| p == "*");
    let profile_enabled = |svc: &Node| match svc.get("profiles").and_then(Node::as_seq) {
        None => true,
        Some([]) => true,
        Some(p) => all || p.iter().filter_map(Node::as_str).any(|p| active.iter().any(|a| a == p)),
    };
    let mut keep: BTreeSet<String> = BTreeSet::new();
    if selected.is_empty() {
        keep.extend(services.iter().filter(|(_, e)| profile_enabled(&e.value)).map(|(k, _)| k.clone()));
    } else {
        let unknown: Vec<Diagnostic> = selected
            .iter()
            .filter(|s| !services.contains_key(s.as_str()))
            .map(|s| {
                let d = Diagnostic::new(root.span.clone(), format!("no such service: {s}"));
                match crate::compose::error::nearest(s, services.keys().map(String::as_str)) {
                    Some(n) => d.with_hint(format!("did you mean {n:?}?")),
                    None => d,
                }
            })
            .collect();
        if !unknown.is_empty() {
            return Err(unknown);
        }
        // The named services and, transitively, what they depend on.
        let mut todo: Vec<String> = selected.to_vec();
        while let Some(name) = todo.pop() {
            if !keep.insert(name.clone()) {
                continue;
            }
            if let Some(svc) = services.get(&name) {
                todo.extend(dependencies(&svc.value).into_iter().filter(|d| services.contains_key(d)));
            }
        }
    }
    let removed: Vec<String> = services.keys().filter(|k| !keep.contains(*k)).cloned().collect();
    if let Some(m) = root.get_mut("services").and_then(Node::as_map_mut) {
        m.retain(|k, _| keep.contains(k));
    }
    Ok(removed)
}

/// `--profile` values and `COMPOSE_PROFILES` (comma separated) together.
pub fn active_profiles(flags: &[String], env_value: Option<&str>) -> Vec<String> {
    let mut out: Vec<String> = flags.to_vec();
    if let Some(v) = env_value {
        out.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string));
    }
    out
}

/// Every profile named by any service, sorted (for `config --profiles`).
pub fn all_profiles(root: &Node) -> Vec<String> {
    let mut set = BTreeSet::new();
    if let Some(services) = root.get("services").and_then(Node::as_map) {
        for e in services.values() {
            if let Some(p) = e.value.get("profiles").and_then(Node::as_seq) {
                set.extend(p.iter().filter_map(Node::as_str).map(str::to_string));
            }
        }
    }
    set.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::error::Span;
    use serde_json::json;

    fn tree() -> Node {
        Node::from_json(
            &json!({"services": {
                "web": {"depends_on": {"db": {}}},
                "db": {},
                "debug": {"profiles": ["dev"], "links": ["web:w"]},
                "tools": {"profiles": ["ops", "dev"]},
            }}),
            &Span::default(),
        )
    }

    fn names(t: &Node) -> Vec<String> {
        t.get("services").and_then(Node::as_map).map(|m| m.keys().cloned().collect()).unwrap_or_default()
    }

    #[test]
    fn profiles_enable_services() {
        let mut t = tree();
        let removed = apply(&mut t, &[], &[]).unwrap_or_default();
        assert_eq!(names(&t), ["web", "db"]);
        assert_eq!(removed, ["debug", "tools"]);
        let mut t = tree();
        let _ = apply(&mut t, &["ops".into()], &[]);
        assert_eq!(names(&t), ["web", "db", "tools"]);
        let mut t = tree();
        let _ = apply(&mut t, &["*".into()], &[]);
        assert_eq!(names(&t).len(), 4);
    }

    #[test]
    fn naming_a_service_enables_it_and_its_dependencies() {
        let mut t = tree();
        let _ = apply(&mut t, &[], &["debug".into()]);
        assert_eq!(names(&t), ["web", "db", "debug"]);
    }

    #[test]
    fn unknown_service_named() {
        let mut t = tree();
        let e = apply(&mut t, &[], &["wbe".into()]).err().unwrap_or_default();
        assert_eq!(e.len(), 1);
        assert!(e[0].message.contains("no such service: wbe"));
        assert_eq!(e[0].hint.as_deref(), Some("did you mean \"web\"?"));
    }

    #[test]
    fn env_profiles() {
        assert_eq!(active_profiles(&["a".into()], Some("b, c,")), ["a", "b", "c"]);
        assert_eq!(all_profiles(&tree()), ["dev", "ops"]);
    }
}
