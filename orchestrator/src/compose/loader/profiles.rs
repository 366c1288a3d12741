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
    for key in ["network_mode", "ipc", "pid", "uts"] {
        if let Some(s) = svc.get(key).and_then(Node::as_str).and_then(|s| s.strip_prefix("service:")) {
            deps.push(s.to_string());
        }
    }
    deps
}

/// Remove the services that are not enabled from `root`; returns the names removed.
///
/// As Docker Compose: naming a service activates its own profiles (not those of its dependencies); then only the
/// named services and what they depend on are kept. A dependency that stays disabled is reported by the checks.
pub fn apply(root: &mut Node, active: &[String], selected: &[String]) -> Result<Vec<String>, Vec<Diagnostic>> {
    let Some(services) = root.get("services").and_then(Node::as_map) else {
        return Ok(Vec::new());
    };
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
    let profiles_of = |svc: &Node| -> Vec<String> {
        svc.get("profiles")
            .and_then(Node::as_seq)
            .map(|p| p.iter().filter_map(Node::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let mut active: Vec<String> = active.to_vec();
    for name in selected {
        if let Some(e) = services.get(name) {
            active.extend(profiles_of(&e.value));
        }
    }
    let all = active.iter().any(|p| p == "*");
    let enabled = |svc: &Node| {
        let p = profiles_of(svc);
        p.is_empty() || all || p.iter().any(|x| active.contains(x))
    };
    let mut keep: BTreeSet<String> =
        services.iter().filter(|(_, e)| enabled(&e.value)).map(|(k, _)| k.clone()).collect();
    if !selected.is_empty() {
        // The named services and, transitively, what they depend on (among the enabled ones).
        let mut chosen = BTreeSet::new();
        let mut todo: Vec<String> = selected.to_vec();
        while let Some(name) = todo.pop() {
            if !keep.contains(&name) || !chosen.insert(name.clone()) {
                continue;
            }
            if let Some(svc) = services.get(&name) {
                todo.extend(dependencies(&svc.value));
            }
        }
        keep = chosen;
    }
    let removed: Vec<String> = services.keys().filter(|k| !keep.contains(*k)).cloned().collect();
    if let Some(m) = root.get_mut("services").and_then(Node::as_map_mut) {
        m.retain(|k, _| keep.contains(k));
    }
    Ok(removed)
}

/// The active profiles: the `--profile` values, or `COMPOSE_PROFILES` (comma separated) when no flag is given.
pub fn active_profiles(flags: &[String], env_value: Option<&str>) -> Vec<String> {
    if !flags.is_empty() {
        return flags.to_vec();
    }
    env_value
        .map(|v| v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect())
        .unwrap_or_default()
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
        // Its profile `dev` becomes active, but only what the named service needs is kept.
        let mut t = tree();
        let _ = apply(&mut t, &[], &["web".into()]);
        assert_eq!(names(&t), ["web", "db"]);
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
        assert_eq!(active_profiles(&["a".into()], Some("b, c,")), ["a"]);
        assert_eq!(active_profiles(&[], Some("b, c,")), ["b", "c"]);
        assert_eq!(all_profiles(&tree()), ["dev", "ops"]);
    }
}
