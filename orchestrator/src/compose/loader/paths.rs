//! Relative paths made absolute, each against the directory it belongs to.
//!
//! Runs on every file's canonical tree before it is merged or pulled in by `extends`/`include`: once trees merge
//! nobody knows any more which directory a `./data` came from. Main files resolve against the project directory
//! (as Docker Compose does for every `-f` file), a file reached through `extends` against its own directory, an
//! included project against its own project directory.

use std::path::Path;

use super::discover::absolute;
use crate::compose::node::{Node, Value};

/// What a `~` at the start of a bind source expands to.
pub struct PathContext<'a> {
    pub base: &'a Path,
    pub home: Option<&'a str>,
}

pub fn resolve(root: &mut Node, ctx: &PathContext) {
    if let Some(services) = root.get_mut("services").and_then(Node::as_map_mut) {
        for entry in services.values_mut() {
            resolve_service(&mut entry.value, ctx);
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(res) = root.get_mut(kind).and_then(Node::as_map_mut) {
            for entry in res.values_mut() {
                if let Some(file) = entry.value.get_mut("file") {
                    expand_home(file, ctx.home);
                    rebase(file, ctx);
                }
            }
        }
    }
    if let Some(Value::Seq(items)) = root.get_mut("include").map(|n| &mut n.value) {
        for item in items.iter_mut() {
            for key in ["path", "env_file"] {
                if let Some(Value::Seq(paths)) = item.get_mut(key).map(|n| &mut n.value) {
                    paths.iter_mut().for_each(|p| rebase(p, ctx));
                }
            }
            if let Some(dir) = item.get_mut("project_directory") {
                rebase(dir, ctx);
            }
        }
    }
}

/// One service's paths. Public for `extends`, which rebases a base service taken from another directory.
pub fn resolve_service(svc: &mut Node, ctx: &PathContext) {
    if let Some(build) = svc.get_mut("build") {
        if let Some(context) = build.get_mut("context")
            && !is_remote_context(context.as_str().unwrap_or(""))
        {
            rebase(context, ctx);
        }
        if let Some(extra) = build.get_mut("additional_contexts").and_then(Node::as_map_mut) {
            for entry in extra.values_mut() {
                if !entry.value.as_str().is_some_and(|s| s.contains("://") || s.contains(':')) {
                    rebase(&mut entry.value, ctx);
                }
            }
        }
    }
    if let Some(Value::Seq(files)) = svc.get_mut("env_file").map(|n| &mut n.value) {
        for f in files.iter_mut() {
            if let Some(path) = f.get_mut("path") {
                rebase(path, ctx);
            }
        }
    }
    if let Some(Value::Seq(files)) = svc.get_mut("label_file").map(|n| &mut n.value) {
        files.iter_mut().for_each(|p| rebase(p, ctx));
    }
    if let Some(Value::Seq(volumes)) = svc.get_mut("volumes").map(|n| &mut n.value) {
        for v in volumes.iter_mut() {
            if v.get("type").and_then(Node::as_str) == Some("bind")
                && let Some(source) = v.get_mut("source")
            {
                expand_home(source, ctx.home);
                rebase(source, ctx);
            }
        }
    }
    if let Some(Value::Seq(watch)) = svc.get_mut("develop").and_then(|d| d.get_mut("watch")).map(|n| &mut n.value) {
        for w in watch.iter_mut() {
            if let Some(path) = w.get_mut("path") {
                rebase(path, ctx);
            }
        }
    }
}

/// A build context that is a URL (git or https) stays as it is.
fn is_remote_context(context: &str) -> bool {
    super::discover::is_remote(context) || context.starts_with("github.com/")
}

fn expand_home(n: &mut Node, home: Option<&str>) {
    if let (Some(s), Some(home)) = (n.as_str(), home)
        && (s == "~" || s.starts_with("~/"))
    {
        n.value = Value::String(format!("{home}{}", &s[1..]));
    }
}

fn rebase(n: &mut Node, ctx: &PathContext) {
    let Some(s) = n.as_str() else {
        return;
    };
    if s.is_empty() || is_windows_absolute(s) || super::discover::is_remote(s) {
        return;
    }
    n.value = Value::String(absolute(ctx.base, Path::new(s)).to_string_lossy().into_owned());
}

/// `C:\x` or `C:/x`: absolute on Windows, left alone so files written there load here unchanged.
fn is_windows_absolute(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::error::Span;
    use serde_json::json;

    #[test]
    fn resolves_the_right_fields() {
        let mut n = Node::from_json(
            &json!({
                "services": {"a": {
                    "build": {"context": "./app", "additional_contexts": {"x": "../x", "img": "docker-image://alpine"}},
                    "env_file": [{"path": "a.env", "required": true}],
                    "volumes": [
                        {"type": "bind", "source": "./data", "target": "/d"},
                        {"type": "bind", "source": "~/h", "target": "/h"},
                        {"type": "bind", "source": "C:\\docker", "target": "/w"},
                        {"type": "volume", "source": "named", "target": "/n"}
                    ]
                }, "b": {"build": {"context": "https://github.com/docker/compose.git"}}},
                "secrets": {"s": {"file": "./s.txt"}, "h": {"file": "~/h.txt"}},
                "include": [{"path": ["sub/compose.yaml"]}]
            }),
            &Span::default(),
        );
        resolve(&mut n, &PathContext { base: Path::new("/proj"), home: Some("/root") });
        let j = n.to_json();
        let a = &j["services"]["a"];
        assert_eq!(a["build"]["context"], "/proj/app");
        assert_eq!(a["build"]["additional_contexts"]["x"], "/x");
        assert_eq!(a["build"]["additional_contexts"]["img"], "docker-image://alpine");
        assert_eq!(a["env_file"][0]["path"], "/proj/a.env");
        assert_eq!(a["volumes"][0]["source"], "/proj/data");
        assert_eq!(a["volumes"][1]["source"], "/root/h");
        assert_eq!(a["volumes"][2]["source"], "C:\\docker");
        assert_eq!(a["volumes"][3]["source"], "named");
        assert_eq!(j["services"]["b"]["build"]["context"], "https://github.com/docker/compose.git");
        assert_eq!(j["secrets"]["s"]["file"], "/proj/s.txt");
        assert_eq!(j["secrets"]["h"]["file"], "/root/h.txt");
        assert_eq!(j["include"][0]["path"][0], "/proj/sub/compose.yaml");
    }
}
