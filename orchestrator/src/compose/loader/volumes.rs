//! The short volume syntax, `[SOURCE:]TARGET[:MODE]`, as compose-go's `ParseVolume` reads it.
//!
//! A source that starts with `.`, `/` or `~` is a bind mount; any other source names a volume; no source is an
//! anonymous volume. Mode is a comma list of `ro`/`rw`, SELinux `z`/`Z`, `nocopy`, a consistency and a propagation.

use crate::compose::error::Span;
use crate::compose::node::{Node, Value};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ShortVolume {
    pub kind: &'static str,
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    pub selinux: Option<String>,
    pub propagation: Option<String>,
    pub nocopy: bool,
    pub consistency: Option<String>,
}

const PROPAGATIONS: [&str; 6] = ["shared", "rshared", "slave", "rslave", "private", "rprivate"];
const CONSISTENCIES: [&str; 3] = ["consistent", "cached", "delegated"];

impl ShortVolume {
    pub fn to_node(&self, span: &Span) -> Node {
        let s = |v: &str| Node::string(v, span.clone());
        let mut m = Node::map(span.clone());
        m.insert("type", s(self.kind));
        if let Some(src) = &self.source {
            m.insert("source", s(src));
        }
        m.insert("target", s(&self.target));
        if self.read_only {
            m.insert("read_only", Node::new(Value::Bool(true), span.clone()));
        }
        if let Some(c) = &self.consistency {
            m.insert("consistency", s(c));
        }
        if self.kind == "bind" {
            let mut bind = Node::map(span.clone());
            if let Some(p) = &self.propagation {
                bind.insert("propagation", s(p));
            }
            // The short syntax always creates a missing host path, as `docker run -v` did.
            bind.insert("create_host_path", Node::new(Value::Bool(true), span.clone()));
            if let Some(z) = &self.selinux {
                bind.insert("selinux", s(z));
            }
            m.insert("bind", bind);
        } else if self.kind == "volume" {
            let mut vol = Node::map(span.clone());
            if self.nocopy {
                vol.insert("nocopy", Node::new(Value::Bool(true), span.clone()));
            }
            m.insert("volume", vol);
        }
        m
    }
}

pub fn parse_volume(spec: &str) -> Result<ShortVolume, String> {
    if spec.is_empty() {
        return Err("empty volume".into());
    }
    // A Windows drive letter (`C:\data`, `d:/src`) is part of the source, not a separator.
    let drive = spec
        .as_bytes()
        .get(..3)
        .filter(|b| b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/'));
    let (prefix, rest) = if drive.is_some() { spec.split_at(2) } else { ("", spec) };
    let mut parts: Vec<String> = rest.split(':').map(str::to_string).collect();
    if !prefix.is_empty()
        && let Some(first) = parts.first_mut()
    {
        *first = format!("{prefix}{first}");
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let (source, target, mode) = match parts.as_slice() {
        [t] => (None, *t, None),
        [s, t] => (Some(*s), *t, None),
        [s, t, m] => (Some(*s), *t, Some(*m)),
        _ => return Err("too many ':' separated parts".into()),
    };
    if target.is_empty() {
        return Err("the target path is empty".into());
    }
    let mut v = ShortVolume { target: target.to_string(), ..Default::default() };
    v.kind = match source {
        None => "volume",
        Some("") => return Err("the source is empty".into()),
        Some(s) if s.starts_with('.') || s.starts_with('/') || s.starts_with('~') || drive.is_some() => "bind",
        Some(_) => "volume",
    };
    v.source = source.map(str::to_string);
    for opt in mode.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        match opt {
            "ro" => v.read_only = true,
            "rw" => v.read_only = false,
            "z" | "Z" => v.selinux = Some(opt.to_string()),
            "nocopy" => v.nocopy = true,
            o if CONSISTENCIES.contains(&o) => v.consistency = Some(o.to_string()),
            o if PROPAGATIONS.contains(&o) => v.propagation = Some(o.to_string()),
            o => return Err(format!("unknown mode {o:?}")),
        }
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds() {
        let v = parse_volume("/data").unwrap_or_default();
        assert_eq!((v.kind, v.source), ("volume", None));
        let v = parse_volume("./src:/app:ro,z").unwrap_or_default();
        assert_eq!((v.kind, v.read_only, v.selinux.as_deref()), ("bind", true, Some("z")));
        let v = parse_volume("dbdata:/var/lib/db:nocopy").unwrap_or_default();
        assert_eq!((v.kind, v.source.as_deref(), v.nocopy), ("volume", Some("dbdata"), true));
        let v = parse_volume("~/x:/x:rshared").unwrap_or_default();
        assert_eq!((v.kind, v.propagation.as_deref()), ("bind", Some("rshared")));
    }

    #[test]
    fn windows_drive_letters() {
        let v = parse_volume("C:\\data:/data:ro").unwrap_or_default();
        assert_eq!(
            (v.kind, v.source.as_deref(), v.target.as_str(), v.read_only),
            ("bind", Some("C:\\data"), "/data", true)
        );
        let v = parse_volume("d:/src/app:/app").unwrap_or_default();
        assert_eq!((v.kind, v.source.as_deref()), ("bind", Some("d:/src/app")));
    }

    #[test]
    fn errors() {
        assert!(parse_volume("a:b:c:d").is_err());
        assert!(parse_volume("vol:/b:bogus").is_err());
        assert!(parse_volume(":/b").is_err());
        assert!(parse_volume("").is_err());
    }

    #[test]
    fn long_form() {
        let n = parse_volume("./src:/app").unwrap_or_default().to_node(&Span::default());
        assert_eq!(
            n.to_json(),
            serde_json::json!({"type": "bind", "source": "./src", "target": "/app", "bind": {"create_host_path": true}})
        );
    }
}
