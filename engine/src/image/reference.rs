//! Image references, normalized as Docker does: `busybox` is `docker.io/library/busybox:latest`,
//! `localhost:5000/app:1` names a registry on localhost, `name@sha256:…` pins a digest.
//!
//! Hand-written rather than taken from a crate: oci-client's `Reference` does not keep Docker's "familiar" form
//! (`busybox` rather than `docker.io/library/busybox`) that `docker images` prints, and the grammar is small.

use std::fmt;
use std::str::FromStr;

use super::digest::Digest;

pub const DEFAULT_REGISTRY: &str = "docker.io";
pub const DEFAULT_TAG: &str = "latest";

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// `docker.io`, `localhost:5000`, `127.0.0.1:5000`, `registry.example.com`.
    pub registry: String,
    /// `library/busybox`, `team/app`.
    pub repository: String,
    /// The tag; `latest` when neither a tag nor a digest was given.
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidReference {
    #[error("invalid reference {0:?}: it is empty")]
    Empty(String),
    #[error("invalid reference {reference:?}: {reason}")]
    Syntax { reference: String, reason: String },
}

impl Reference {
    /// `registry/repository`, the name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The short form Docker prints: `busybox`, `team/app`, `localhost:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.registry == DEFAULT_REGISTRY {
            self.repository.strip_prefix("library/").unwrap_or(&self.repository).to_string()
        } else {
            self.name()
        }
    }

    /// `busybox:latest`, `localhost:5000/app:1`, `app@sha256:…`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// The same name with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Reference {
        Reference { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }

    /// Whether this registry is on a loopback address, where plain HTTP is allowed.
    pub fn is_loopback_registry(&self) -> bool {
        let host = match self.registry.rsplit_once(':') {
            Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => self.registry.as_str(),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
            || host.ends_with(".localhost")
    }
}

fn syntax(reference: &str, reason: impl Into<String>) -> InvalidReference {
    InvalidReference::Syntax { reference: reference.to_string(), reason: reason.into() }
}

/// A path component: lowercase alphanumerics separated by `.`, `_`, `__` or runs of `-`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        let ch = b[i];
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok || start == i {
            return false;
        }
    }
    true
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

impl FromStr for Reference {
    type Err = InvalidReference;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(InvalidReference::Empty(s.to_string()));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|e| syntax(s, e.to_string()))?)),
            None => (s, None),
        };
        // A tag follows the last ':' that comes after the last '/' (a ':' before it is a registry port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(syntax(s, format!("tag {t:?} must be letters, digits, '_', '.' or '-' (at most 128)")));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[') =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DEFAULT_REGISTRY.to_string(), name.to_string()),
        };
        let registry = if registry == "index.docker.io" { DEFAULT_REGISTRY.to_string() } else { registry };
        let repository = if registry == DEFAULT_REGISTRY && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository
        };
        if repository.len() > 255 {
            return Err(syntax(s, "the repository name is longer than 255 characters"));
        }
        if let Some(bad) = repository.split('/').find(|c| !valid_component(c)) {
            return Err(syntax(
                s,
                format!(
                    "repository component {bad:?} must be lowercase letters and digits, separated by '.', '_' or '-'"
                ),
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some(DEFAULT_TAG.to_string()),
        };
        Ok(Reference { registry, repository, tag, digest })
    }
}

impl fmt::Display for Reference {
    /// The full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(s: &str) -> Reference {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn normalization() {
        assert_eq!(r("busybox").to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r("busybox").familiar(), "busybox:latest");
        assert_eq!(r("team/app:1.2").to_string(), "docker.io/team/app:1.2");
        assert_eq!(r("localhost:5000/app:1").registry, "localhost:5000");
        assert_eq!(r("localhost:5000/app:1").familiar(), "localhost:5000/app:1");
        assert_eq!(r("localhost/busybox").registry, "localhost");
        assert_eq!(r("127.0.0.1:5000/a/b/c").repository, "a/b/c");
        assert_eq!(r("index.docker.io/library/busybox").familiar(), "busybox:latest");
        assert_eq!(r("localhost:5000/app").tag.as_deref(), Some("latest"));
    }

    #[test]
    fn digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let x = r(&format!("busybox@{d}"));
        assert_eq!((x.tag, x.digest.map(|d| d.to_string())), (None, Some(d.clone())));
        let y = r(&format!("localhost:5000/app:1@{d}"));
        assert_eq!(y.tag.as_deref(), Some("1"));
        assert!(format!("busybox@sha256:{}", "z".repeat(64)).parse::<Reference>().is_err());
    }

    #[test]
    fn invalid() {
        for bad in ["", "Busybox", "a//b", "app:", "app:-x", "-app", "app_", "a/b:c:d", "app@sha256:1"] {
            assert!(bad.parse::<Reference>().is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn loopback_registries() {
        assert!(r("localhost:5000/a").is_loopback_registry());
        assert!(r("127.0.0.1:5000/a").is_loopback_registry());
        assert!(r("[::1]:5000/a").is_loopback_registry());
        assert!(!r("registry.example.com/a").is_loopback_registry());
        assert!(!r("busybox").is_loopback_registry());
    }
}
