//! A service's final `environment`: its `env_file`s read in order, then its own `environment` on top; bare
//! variables (`- FOO`) take their value from the project environment, and stay unset when it has none.
//! The `env_file` list is dropped afterwards, as `docker compose config` does: its content is in `environment`.
//! `label_file`s feed `labels` the same way (the service's own labels win), and build args without a value take
//! theirs from the project environment or are dropped.

use std::path::Path;

use super::tree::Env;
use crate::compose::dotenv;
use crate::compose::error::Diagnostic;
use crate::compose::node::{Entry, Mapping, Node, Value};

pub fn resolve_services(root: &mut Node, env: &Env) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    if let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) {
        for entry in services.values_mut() {
            if let Err(d) = resolve_service(&mut entry.value, env) {
                diags.push(d);
            }
        }
    }
    diags
}

fn resolve_service(svc: &mut Node, env: &Env) -> Result<(), Diagnostic> {
    let Some(map) = svc.as_map_mut() else {
        return Ok(());
    };
    let mut merged = Mapping::default();
    if let Some(files) = map.shift_remove("env_file") {
        for f in files.value.as_seq().unwrap_or_default() {
            let Some(path) = f.get("path").and_then(Node::as_str) else {
                continue;
            };
            let required = !matches!(f.get("required").map(|r| &r.value), Some(Value::Bool(false)));
            let raw = f.get("format").and_then(Node::as_str) == Some("raw");
            let path = Path::new(path);
            let text = match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                Err(e) => {
                    return Err(Diagnostic::new(f.span.clone(), format!("env file {}: {e}", path.display()))
                        .with_hint("create the file, or mark it `required: false`"));
                }
            };
            let lookup = |k: &str| {
                merged.get(k).and_then(|e: &Entry| e.value.as_str().map(str::to_owned)).or_else(|| env.get(k).cloned())
            };
            let vars = if raw {
                dotenv::parse_raw_with_lookup(&text, path, &lookup)?
            } else {
                dotenv::parse(&text, path, &lookup)?
            };
            for (k, v) in vars {
                merged.insert(k, Entry { key_span: f.span.clone(), value: Node::string(v, f.span.clone()) });
            }
        }
    }
    if let Some(own) = map.get("environment").and_then(|e| e.value.as_map()) {
        for (k, e) in own {
            let mut value = e.value.clone();
            if value.is_null()
                && let Some(v) = env.get(k)
            {
                value.value = Value::String(v.clone());
            }
            merged.insert(k.clone(), Entry { key_span: e.key_span.clone(), value });
        }
    }
    if !merged.is_empty() {
        let span = svc.span.clone();
        svc.insert("environment", Node::new(Value::Map(merged), span));
    }
    resolve_label_files(svc, env)?;
    resolve_build_args(svc, env);
    Ok(())
}

fn resolve_label_files(svc: &mut Node, env: &Env) -> Result<(), Diagnostic> {
    let Some(files) = svc.as_map_mut().and_then(|m| m.shift_remove("label_file")) else {
        return Ok(());
    };
    let mut labels = Mapping::default();
    for f in files.value.as_seq().unwrap_or_default() {
        let Some(path) = f.as_str().map(Path::new) else {
            continue;
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            Diagnostic::new(f.span.clone(), format!("label file {}: {e}", path.display()))
                .with_hint("create the file, or remove it from label_file")
        })?;
        let lookup = |k: &str| env.get(k).cloned();
        for (k, v) in dotenv::parse(&text, path, &lookup)? {
            labels.insert(k, Entry { key_span: f.span.clone(), value: Node::string(v, f.span.clone()) });
        }
    }
    if let Some(own) = svc.get("labels").and_then(Node::as_map) {
        for (k, e) in own {
            labels.insert(k.clone(), e.clone());
        }
    }
    if !labels.is_empty() {
        let span = svc.span.clone();
        svc.insert("labels", Node::new(Value::Map(labels), span));
    }
    Ok(())
}

fn resolve_build_args(svc: &mut Node, env: &Env) {
    let Some(args) = svc.get_mut("build").and_then(|b| b.get_mut("args")).and_then(Node::as_map_mut) else {
        return;
    };
    args.retain(|k, e| {
        if !e.value.is_null() {
            return true;
        }
        match env.get(k) {
            Some(v) => {
                e.value.value = Value::String(v.clone());
                true
            }
            None => false,
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::error::Span;
    use serde_json::json;

    #[test]
    fn env_files_then_environment_then_bare_lookup() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let a = tmp.path().join("a.env");
        std::fs::write(&a, "A=from-file\nB=from-file\n")?;
        let raw = tmp.path().join("raw.env");
        std::fs::write(&raw, "R=\"quoted $X\"\n")?;
        let mut root = Node::from_json(
            &json!({"services": {"s": {
                "env_file": [
                    {"path": a.to_string_lossy(), "required": true},
                    {"path": tmp.path().join("missing.env").to_string_lossy(), "required": false},
                    {"path": raw.to_string_lossy(), "required": true, "format": "raw"}
                ],
                "environment": {"B": "own", "HOME_X": null, "UNSET": null}
            }}}),
            &Span::default(),
        );
        let env: Env = [("HOME_X".to_string(), "/h".to_string())].into_iter().collect();
        let d = resolve_services(&mut root, &env);
        assert!(d.is_empty(), "{d:?}");
        let s = &root.to_json()["services"]["s"];
        assert_eq!(
            s["environment"],
            json!({"A": "from-file", "B": "own", "R": "\"quoted $X\"", "HOME_X": "/h", "UNSET": null})
        );
        assert!(s.get("env_file").is_none());
        Ok(())
    }

    #[test]
    fn missing_required_env_file() {
        let mut root = Node::from_json(
            &json!({"services": {"s": {"env_file": [{"path": "/nonexistent/berth.env", "required": true}]}}}),
            &Span::default(),
        );
        let d = resolve_services(&mut root, &Env::new());
        assert_eq!(d.len(), 1);
        assert!(d[0].message.contains("/nonexistent/berth.env"));
    }
}
