//! The canonical long form: every short syntax of the Compose Specification rewritten as its long form.
//!
//! Runs on each file's tree after interpolation and before `extends`, `include` and merging, because merge rules
//! key ports, volumes, secrets and configs by fields that only the long form has (compose-go's `transform` step).
//! Shapes it does not recognise are left alone: schema validation reports them later with their position.
//! New nodes take the span of the value they replace, so every later error still points at the user's text.

use super::ports::parse_port;
use super::volumes::parse_volume;
use crate::compose::error::{Diagnostic, Span};
use crate::compose::node::{Entry, Mapping, Node, Value};

/// Rewrite one file's tree in place; problems in short syntax are returned together.
pub fn canonicalize(root: &mut Node) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let Some(top) = root.as_map_mut() else {
        return diags;
    };
    top.shift_remove("version");
    if let Some(include) = top.get_mut("include") {
        canonical_include(&mut include.value);
    }
    if let Some(services) = top.get_mut("services").and_then(|e| e.value.as_map_mut()) {
        for entry in services.values_mut() {
            canonical_service(&mut entry.value, &mut diags);
        }
    }
    for kind in ["networks", "volumes", "secrets", "configs", "models"] {
        if let Some(resources) = top.get_mut(kind).and_then(|e| e.value.as_map_mut()) {
            for (name, entry) in resources.iter_mut() {
                canonical_resource(kind, name, &mut entry.value, &mut diags);
            }
        }
    }
    diags
}

/// A service in long form. Public for `extends`, which canonicalizes a base service pulled from another file.
pub fn canonical_service(svc: &mut Node, diags: &mut Vec<Diagnostic>) {
    // compose-go turns a service left empty (`svc:` with nothing under it) into an empty mapping.
    if svc.is_null() {
        *svc = Node::map(svc.span.clone());
    }
    if svc.as_map().is_none() {
        return;
    }
    if let Some(n) = svc.get_mut("extends")
        && let Some(s) = n.as_str().map(str::to_owned)
    {
        let span = n.span.clone();
        let mut m = Node::map(span.clone());
        m.insert("service", Node::string(s, span));
        *n = m;
    }
    if let Some(build) = svc.get_mut("build") {
        canonical_build(build, diags);
    }
    rewrite(svc, SERVICE_REWRITES, diags);
    if let Some(test) = svc.get_mut("healthcheck").and_then(|h| h.get_mut("test"))
        && let Some(s) = test.as_str().map(str::to_owned)
    {
        let span = test.span.clone();
        *test = seq(vec![Node::string("CMD-SHELL", span.clone()), Node::string(s, span.clone())], span);
    }
    for key in ["cpu_rt_runtime", "cpu_rt_period"] {
        // The spec documents durations here (`400ms`); the engine wants microseconds.
        if let Some(n) = svc.get_mut(key)
            && let Some(micros) = n
                .as_str()
                .filter(|s| s.parse::<i64>().is_err())
                .and_then(|s| crate::compose::model::Duration::parse(s).ok())
        {
            n.value = Value::Int(micros.as_nanos() / 1000);
        }
    }
    if let Some(n) = svc.get_mut("pull_policy")
        && n.as_str() == Some("if_not_present")
    {
        // compose-go's spelling for Docker's `missing`.
        n.value = Value::String("missing".into());
    }
    if let Some(n) = svc.get_mut("gpus")
        && n.as_str() == Some("all")
    {
        let span = n.span.clone();
        let mut dev = Node::map(span.clone());
        dev.insert("count", Node::string("all", span.clone()));
        *n = seq(vec![dev], span);
    }
    if let Some(labels) = svc.get_mut("deploy").and_then(|d| d.get_mut("labels")) {
        list_to_map(labels, Bare::Empty);
    }
    if let Some(logging) = svc.get_mut("logging").and_then(|l| l.get_mut("options")) {
        map_values_to_strings(logging);
    }
}

/// How one attribute's short syntax becomes its long form.
type Rewrite = fn(&mut Node, &mut Vec<Diagnostic>);

/// A service's attributes that have a short syntax, and their rewrites (`build` and `healthcheck` have their own).
const SERVICE_REWRITES: &[(&str, Rewrite)] = &[
    ("command", shell_split),
    ("entrypoint", shell_split),
    ("environment", |n, _| list_to_map(n, Bare::Null)),
    ("labels", |n, _| list_to_map(n, Bare::Empty)),
    ("annotations", |n, _| list_to_map(n, Bare::Empty)),
    ("sysctls", |n, _| list_to_map(n, Bare::Empty)),
    ("extra_hosts", |n, _| canonical_extra_hosts(n)),
    ("depends_on", |n, _| canonical_depends_on(n)),
    ("networks", |n, _| list_to_null_map(n)),
    ("ports", canonical_ports),
    ("expose", |n, _| each_scalar_to_string(n)),
    ("volumes", canonical_volumes),
    ("secrets", |n, _| canonical_file_refs(n)),
    ("configs", |n, _| canonical_file_refs(n)),
    ("env_file", |n, _| canonical_env_file(n)),
    ("label_file", |n, _| scalar_to_list(n)),
    ("dns", |n, _| scalar_to_list(n)),
    ("dns_search", |n, _| scalar_to_list(n)),
    ("tmpfs", |n, _| scalar_to_list(n)),
    ("ulimits", |n, _| canonical_ulimits(n)),
    ("devices", |n, _| canonical_devices(n)),
];

const BUILD_REWRITES: &[(&str, Rewrite)] = &[
    ("args", |n, _| list_to_map(n, Bare::Null)),
    ("labels", |n, _| list_to_map(n, Bare::Empty)),
    ("additional_contexts", |n, _| list_to_map(n, Bare::Empty)),
    ("extra_hosts", |n, _| canonical_extra_hosts(n)),
    ("secrets", |n, _| canonical_file_refs(n)),
    ("ulimits", |n, _| canonical_ulimits(n)),
    ("cache_from", |n, _| scalar_to_list(n)),
    ("cache_to", |n, _| scalar_to_list(n)),
    ("tags", |n, _| scalar_to_list(n)),
    ("platforms", |n, _| scalar_to_list(n)),
    ("ssh", |n, _| scalar_to_list(n)),
];

fn rewrite(node: &mut Node, table: &[(&str, Rewrite)], diags: &mut Vec<Diagnostic>) {
    for (key, f) in table {
        if let Some(n) = node.get_mut(key) {
            f(n, diags);
        }
    }
}

fn canonical_build(build: &mut Node, diags: &mut Vec<Diagnostic>) {
    if let Some(ctx) = build.as_str().map(str::to_owned) {
        let span = build.span.clone();
        let mut m = Node::map(span.clone());
        m.insert("context", Node::string(ctx, span));
        *build = m;
    }
    if build.as_map().is_none() {
        return;
    }
    if build.get("context").is_none() {
        build.insert("context", Node::string(".", build.span.clone()));
    }
    if build.get("dockerfile").is_none() && build.get("dockerfile_inline").is_none() {
        build.insert("dockerfile", Node::string("Dockerfile", build.span.clone()));
    }
    rewrite(build, BUILD_REWRITES, diags);
}

/// Top-level networks, volumes, secrets, configs: `null` is an empty definition; the legacy `external: {name: x}`
/// (or any mapping) becomes `external: true`, with `name: x` when it names one.
fn canonical_resource(kind: &str, key: &str, res: &mut Node, diags: &mut Vec<Diagnostic>) {
    if res.is_null() {
        *res = Node::map(res.span.clone());
    }
    if let Some(ext) = res.get("external").filter(|e| e.as_map().is_some()).cloned() {
        res.insert("external", Node::new(Value::Bool(true), ext.span.clone()));
        if let Some(ext_name) = ext.get("name") {
            match res.get("name") {
                Some(own) if own.value != ext_name.value => diags.push(
                    Diagnostic::new(own.span.clone(), format!("{kind}.{key}: `name` and `external.name` conflict"))
                        .with_hint("only use `name`"),
                ),
                Some(_) => {}
                None => res.insert("name", ext_name.clone()),
            }
        }
    }
    if let Some(labels) = res.get_mut("labels") {
        list_to_map(labels, Bare::Empty);
    }
    if let Some(opts) = res.get_mut("driver_opts") {
        map_values_to_strings(opts);
    }
}

/// `include: [a.yaml]` and `path: a.yaml` become `[{path: [a.yaml]}]`.
fn canonical_include(include: &mut Node) {
    let Value::Seq(items) = &mut include.value else {
        return;
    };
    for item in items.iter_mut() {
        if item.as_str().is_some() {
            let span = item.span.clone();
            let mut m = Node::map(span.clone());
            m.insert("path", item.clone());
            *item = m;
        }
        if let Some(path) = item.get_mut("path") {
            scalar_to_list(path);
        }
        if let Some(env) = item.get_mut("env_file") {
            scalar_to_list(env);
        }
    }
}

fn seq(items: Vec<Node>, span: Span) -> Node {
    Node::new(Value::Seq(items), span)
}

/// A string `command`/`entrypoint` is split as a POSIX shell would split it, as Docker Compose does.
fn shell_split(n: &mut Node, diags: &mut Vec<Diagnostic>) {
    let Some(s) = n.as_str() else {
        return;
    };
    let span = n.span.clone();
    match shell_words::split(s) {
        Ok(words) => *n = seq(words.into_iter().map(|w| Node::string(w, span.clone())).collect(), span),
        Err(e) => diags.push(
            Diagnostic::new(span, format!("cannot split command {s:?}: {e}"))
                .with_hint("close the quote, or write the command as a list"),
        ),
    }
}

/// What a bare `KEY` (no `=`) in a list means: environment and build args keep it unresolved (null),
/// labels make it an empty string.
#[derive(Clone, Copy)]
enum Bare {
    Null,
    Empty,
}

/// `["A=1", "B"]` becomes `{A: "1", B: null}`; mapping values are turned into strings.
fn list_to_map(n: &mut Node, bare: Bare) {
    match &mut n.value {
        Value::Seq(items) => {
            let mut m = Mapping::default();
            for item in items.iter() {
                let Some(text) = item.scalar_text() else {
                    // Left for the schema to reject: we cannot rewrite what we do not understand.
                    return;
                };
                let (key, value) = match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), Node::string(v, item.span.clone())),
                    None => (
                        text.clone(),
                        match bare {
                            Bare::Null => Node::new(Value::Null, item.span.clone()),
                            Bare::Empty => Node::string("", item.span.clone()),
                        },
                    ),
                };
                m.insert(key, Entry { key_span: item.span.clone(), value });
            }
            n.value = Value::Map(m);
        }
        Value::Map(m) => {
            for entry in m.values_mut() {
                match (&entry.value.value, bare) {
                    (Value::Null, Bare::Empty) => entry.value.value = Value::String(String::new()),
                    (Value::Null, Bare::Null) => {}
                    _ => to_string(&mut entry.value),
                }
            }
        }
        _ => {}
    }
}

fn map_values_to_strings(n: &mut Node) {
    if let Some(m) = n.as_map_mut() {
        for entry in m.values_mut() {
            to_string(&mut entry.value);
        }
    }
}

/// A scalar as the text a user wrote; strings stay as they are (not copied), collections and null too.
fn to_string(n: &mut Node) {
    if !matches!(n.value, Value::String(_))
        && let Some(text) = n.scalar_text()
    {
        n.value = Value::String(text);
    }
}

/// `networks: [a, b]` becomes `{a: null, b: null}`.
fn list_to_null_map(n: &mut Node) {
    if let Value::Seq(items) = &n.value {
        let mut m = Mapping::default();
        for item in items {
            let Some(text) = item.scalar_text() else {
                return;
            };
            m.insert(text, Entry { key_span: item.span.clone(), value: Node::new(Value::Null, item.span.clone()) });
        }
        n.value = Value::Map(m);
    }
}

/// `depends_on: [db]` becomes `{db: {condition: service_started, required: true}}`. The long form gets `required`
/// by default but must name its `condition` (the spec requires it; the logical checks say so).
fn canonical_depends_on(n: &mut Node) {
    let short = matches!(n.value, Value::Seq(_));
    list_to_null_map(n);
    if let Some(m) = n.as_map_mut() {
        for entry in m.values_mut() {
            let dep = &mut entry.value;
            if dep.is_null() {
                *dep = Node::map(dep.span.clone());
            }
            if dep.as_map().is_none() {
                continue;
            }
            if short && dep.get("condition").is_none() {
                dep.insert("condition", Node::string("service_started", dep.span.clone()));
            }
            if dep.get("required").is_none() {
                dep.insert("required", Node::new(Value::Bool(true), dep.span.clone()));
            }
        }
    }
}

/// `extra_hosts` as a mapping of host name to addresses. The list form is `host:ip` or `host=ip`
/// (IPv6 addresses contain colons, so `=` wins and otherwise the first colon splits).
fn canonical_extra_hosts(n: &mut Node) {
    match &mut n.value {
        Value::Seq(items) => {
            let mut m = Mapping::default();
            for item in items.iter() {
                let Some(text) = item.scalar_text() else {
                    return;
                };
                let Some((host, ip)) = text.split_once('=').or_else(|| text.split_once(':')) else {
                    return;
                };
                let ip = Node::string(ip.trim_start_matches('[').trim_end_matches(']'), item.span.clone());
                let entry = m.entry(host.to_string()).or_insert_with(|| Entry {
                    key_span: item.span.clone(),
                    value: seq(Vec::new(), item.span.clone()),
                });
                if let Value::Seq(ips) = &mut entry.value.value {
                    ips.push(ip);
                }
            }
            n.value = Value::Map(m);
        }
        Value::Map(m) => {
            for entry in m.values_mut() {
                if entry.value.scalar_text().is_some() {
                    let span = entry.value.span.clone();
                    let one = entry.value.clone();
                    entry.value = seq(vec![one], span);
                }
                each_scalar_to_string(&mut entry.value);
            }
        }
        _ => {}
    }
}

fn canonical_ports(n: &mut Node, diags: &mut Vec<Diagnostic>) {
    let Value::Seq(items) = &mut n.value else {
        return;
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        match item.scalar_text() {
            // An uninterpolated `${PORT}` (`config --no-interpolate`) is shown as written.
            Some(text) if text.contains('$') => out.push(item),
            Some(text) if !matches!(item.value, Value::Map(_)) => match parse_port(&text) {
                Ok(ports) => out.extend(ports.into_iter().map(|p| p.to_node(&item.span))),
                Err(e) => {
                    diags.push(Diagnostic::new(item.span.clone(), format!("invalid port {text:?}: {e}")).with_hint(
                        "write [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], for example 127.0.0.1:8080:80/tcp",
                    ));
                    out.push(item);
                }
            },
            _ => {
                let mut item = item;
                if item.as_map().is_some() {
                    if let Some(p) = item.get_mut("published") {
                        to_string(p);
                    }
                    if item.get("mode").is_none() {
                        item.insert("mode", Node::string("ingress", item.span.clone()));
                    }
                    if item.get("protocol").is_none() {
                        item.insert("protocol", Node::string("tcp", item.span.clone()));
                    }
                }
                out.push(item);
            }
        }
    }
    *items = out;
}

fn canonical_volumes(n: &mut Node, diags: &mut Vec<Diagnostic>) {
    let Value::Seq(items) = &mut n.value else {
        return;
    };
    for item in items.iter_mut() {
        let Some(text) = item.as_str().map(str::to_owned).filter(|t| !t.contains('$')) else {
            continue;
        };
        match parse_volume(&text) {
            Ok(v) => *item = v.to_node(&item.span),
            Err(e) => diags.push(
                Diagnostic::new(item.span.clone(), format!("invalid volume {text:?}: {e}"))
                    .with_hint("write [SOURCE:]TARGET[:MODE], for example ./data:/data:ro or dbdata:/var/lib/db"),
            ),
        }
    }
}

/// Service `secrets`/`configs`: `- name` becomes `- source: name`.
fn canonical_file_refs(n: &mut Node) {
    if let Value::Seq(items) = &mut n.value {
        for item in items.iter_mut() {
            if let Some(s) = item.as_str().map(str::to_owned) {
                let span = item.span.clone();
                let mut m = Node::map(span.clone());
                m.insert("source", Node::string(s, span));
                *item = m;
            }
        }
    }
}

/// `env_file: a.env` and `[a.env]` become `[{path: a.env, required: true}]`.
fn canonical_env_file(n: &mut Node) {
    scalar_to_list(n);
    if let Value::Seq(items) = &mut n.value {
        for item in items.iter_mut() {
            if let Some(s) = item.as_str().map(str::to_owned) {
                let span = item.span.clone();
                let mut m = Node::map(span.clone());
                m.insert("path", Node::string(s, span));
                *item = m;
            }
            if item.as_map().is_some() && item.get("required").is_none() {
                item.insert("required", Node::new(Value::Bool(true), item.span.clone()));
            }
        }
    }
}

/// `nproc: 65535` becomes `nproc: {soft: 65535, hard: 65535}`.
fn canonical_ulimits(n: &mut Node) {
    if let Some(m) = n.as_map_mut() {
        for entry in m.values_mut() {
            if matches!(entry.value.value, Value::Int(_) | Value::String(_)) {
                let span = entry.value.span.clone();
                let v = entry.value.clone();
                let mut long = Node::map(span);
                long.insert("soft", v.clone());
                long.insert("hard", v);
                entry.value = long;
            }
        }
    }
}

/// `/dev/a:/dev/b:rwm` becomes `{source, target, permissions}`.
fn canonical_devices(n: &mut Node) {
    if let Value::Seq(items) = &mut n.value {
        for item in items.iter_mut() {
            let Some(s) = item.as_str().map(str::to_owned) else {
                continue;
            };
            let span = item.span.clone();
            let parts: Vec<&str> = s.split(':').collect();
            let (source, target, perms) = match parts.as_slice() {
                [src] => (*src, *src, "rwm"),
                [src, p] if p.chars().all(|c| "rwm".contains(c)) => (*src, *src, *p),
                [src, dst] => (*src, *dst, "rwm"),
                [src, dst, p, ..] => (*src, *dst, *p),
                [] => continue,
            };
            let mut m = Node::map(span.clone());
            m.insert("source", Node::string(source, span.clone()));
            m.insert("target", Node::string(target, span.clone()));
            m.insert("permissions", Node::string(perms, span));
            *item = m;
        }
    }
}

fn scalar_to_list(n: &mut Node) {
    if n.scalar_text().is_some() {
        let span = n.span.clone();
        let one = n.clone();
        *n = seq(vec![one], span);
    }
}

fn each_scalar_to_string(n: &mut Node) {
    if let Value::Seq(items) = &mut n.value {
        items.iter_mut().for_each(to_string);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(json: serde_json::Value) -> Node {
        Node::from_json(&json, &Span::default())
    }

    fn canon(json: serde_json::Value) -> (serde_json::Value, Vec<Diagnostic>) {
        let mut n = node(json);
        let d = canonicalize(&mut n);
        (n.to_json(), d)
    }

    #[test]
    fn service_short_forms() {
        let (j, d) = canon(serde_json::json!({"version": "3.8", "services": {"web": {
            "build": "./app",
            "command": "sh -c 'echo hi'",
            "healthcheck": {"test": "curl -f http://localhost"},
            "environment": ["A=1", "B", "C=x=y"],
            "labels": ["l1", "l2=v"],
            "depends_on": ["db"],
            "networks": ["front"],
            "env_file": "a.env",
            "ulimits": {"nproc": 10},
            "secrets": ["s1"],
            "extra_hosts": ["h1:10.0.0.1", "h2=::1"],
            "expose": [80, "81"],
            "dns": "1.1.1.1",
        }, "db": null}}));
        assert!(d.is_empty(), "{d:?}");
        assert!(j.get("version").is_none());
        let web = &j["services"]["web"];
        assert_eq!(web["build"], serde_json::json!({"context": "./app", "dockerfile": "Dockerfile"}));
        assert_eq!(web["command"], serde_json::json!(["sh", "-c", "echo hi"]));
        assert_eq!(web["healthcheck"]["test"], serde_json::json!(["CMD-SHELL", "curl -f http://localhost"]));
        assert_eq!(web["environment"], serde_json::json!({"A": "1", "B": null, "C": "x=y"}));
        assert_eq!(web["labels"], serde_json::json!({"l1": "", "l2": "v"}));
        assert_eq!(web["depends_on"], serde_json::json!({"db": {"condition": "service_started", "required": true}}));
        assert_eq!(web["networks"], serde_json::json!({"front": null}));
        assert_eq!(web["env_file"], serde_json::json!([{"path": "a.env", "required": true}]));
        assert_eq!(web["ulimits"], serde_json::json!({"nproc": {"soft": 10, "hard": 10}}));
        assert_eq!(web["secrets"], serde_json::json!([{"source": "s1"}]));
        assert_eq!(web["extra_hosts"], serde_json::json!({"h1": ["10.0.0.1"], "h2": ["::1"]}));
        assert_eq!(web["expose"], serde_json::json!(["80", "81"]));
        assert_eq!(web["dns"], serde_json::json!(["1.1.1.1"]));
        assert_eq!(j["services"]["db"], serde_json::json!({}));
    }

    #[test]
    fn environment_map_values_become_strings() {
        let (j, _) = canon(serde_json::json!({"services": {"a": {"environment": {"N": 1, "B": true, "U": null}}}}));
        assert_eq!(j["services"]["a"]["environment"], serde_json::json!({"N": "1", "B": "true", "U": null}));
    }

    #[test]
    fn ports_expand_and_errors_carry_span() {
        let mut n = node(serde_json::json!({"services": {"a": {"ports": ["8000-8001:80-81", 9000, "x:y"]}}}));
        let bad_span = Span::new(None, 7, 9);
        if let Some(Value::Seq(items)) =
            n.get_mut("services").and_then(|s| s.get_mut("a")).and_then(|a| a.get_mut("ports")).map(|p| &mut p.value)
        {
            items[2].span = bad_span.clone();
        }
        let d = canonicalize(&mut n);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].span, bad_span);
        let ports = n.to_json()["services"]["a"]["ports"].clone();
        assert_eq!(ports[0]["published"], "8000");
        assert_eq!(ports[1]["target"], 81);
        assert_eq!(ports[2]["target"], 9000);
    }

    #[test]
    fn legacy_external_name() {
        let (j, _) = canon(serde_json::json!({"networks": {"n": {"external": {"name": "real"}}, "m": null}}));
        assert_eq!(j["networks"]["n"], serde_json::json!({"external": true, "name": "real"}));
        assert_eq!(j["networks"]["m"], serde_json::json!({}));
        let (j, _) = canon(serde_json::json!({"volumes": {"v": {"external": {}}}}));
        assert_eq!(j["volumes"]["v"], serde_json::json!({"external": true}));
        let (_, d) = canon(serde_json::json!({"volumes": {"v": {"name": "a", "external": {"name": "b"}}}}));
        assert_eq!(d.len(), 1);
    }

    #[test]
    fn include_short_forms() {
        let (j, _) = canon(serde_json::json!({"include": ["a.yaml", {"path": "b.yaml", "env_file": "x.env"}]}));
        assert_eq!(
            j["include"],
            serde_json::json!([{"path": ["a.yaml"]}, {"path": ["b.yaml"], "env_file": ["x.env"]}])
        );
    }

    #[test]
    fn devices_short_form() {
        let (j, _) =
            canon(serde_json::json!({"services": {"a": {"devices": ["/dev/a", "/dev/b:/dev/c", "/dev/d:/dev/e:r"]}}}));
        assert_eq!(
            j["services"]["a"]["devices"],
            serde_json::json!([
                {"source": "/dev/a", "target": "/dev/a", "permissions": "rwm"},
                {"source": "/dev/b", "target": "/dev/c", "permissions": "rwm"},
                {"source": "/dev/d", "target": "/dev/e", "permissions": "r"},
            ])
        );
    }
}
