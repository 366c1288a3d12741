//! Platforms (`linux/amd64`, `linux/arm64/v8`) and the choice of one manifest in an image index or Docker manifest
//! list, as containerd's default matcher does: same OS, same architecture, same variant once the defaults are
//! filled in (`arm64` is `v8`, `arm` is `v7`, `amd64` is `v1`).

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Default for Platform {
    /// `linux/amd64`, what berth runs.
    fn default() -> Self {
        Platform { os: "linux".into(), architecture: "amd64".into(), variant: None }
    }
}

impl Platform {
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_ascii_lowercase(),
            architecture: normalize_arch(architecture).to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        }
    }

    /// The variant with the architecture's default filled in.
    fn effective_variant(&self) -> Option<&str> {
        match (self.architecture.as_str(), self.variant.as_deref()) {
            (_, Some(v)) => Some(v),
            ("arm64", None) => Some("v8"),
            ("arm", None) => Some("v7"),
            ("amd64", None) => Some("v1"),
            _ => None,
        }
    }

    /// Whether an image built for `other` runs here.
    pub fn matches(&self, other: &Platform) -> bool {
        self.os == other.os
            && self.architecture == other.architecture
            && self.effective_variant() == other.effective_variant()
    }
}

/// Architecture names as Go spells them (`uname -m` names accepted).
fn normalize_arch(a: &str) -> &str {
    match a {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        "i686" | "i386" => "386",
        "armhf" | "armel" => "arm",
        other => other,
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid platform {0:?}: expected os/architecture[/variant], like linux/amd64")]
pub struct InvalidPlatform(pub String);

impl FromStr for Platform {
    type Err = InvalidPlatform;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [os, arch] if !os.is_empty() && !arch.is_empty() => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] if !os.is_empty() && !arch.is_empty() && !variant.is_empty() => {
                Ok(Platform::new(os, arch, Some(variant)))
            }
            _ => Err(InvalidPlatform(s.to_string())),
        }
    }
}

/// Of the entries of an index, the index of the one for `wanted`: an exact variant match first, then one whose
/// variant is only implied. `None` when no entry fits.
pub fn select<'a>(wanted: &Platform, entries: impl IntoIterator<Item = Option<&'a Platform>>) -> Option<usize> {
    let mut fallback = None;
    for (i, p) in entries.into_iter().enumerate() {
        let Some(p) = p else { continue };
        if !wanted.matches(p) {
            continue;
        }
        if p.variant == wanted.variant {
            return Some(i);
        }
        fallback = fallback.or(Some(i));
    }
    fallback
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn parse_print() {
        assert_eq!(p("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(p("linux/x86_64"), Platform::default());
        assert_eq!(p("linux/arm/v6").variant.as_deref(), Some("v6"));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux//v7".parse::<Platform>().is_err());
        assert!("a/b/c/d".parse::<Platform>().is_err());
    }

    #[test]
    fn variants_with_defaults() {
        assert!(p("linux/arm64").matches(&p("linux/arm64/v8")));
        assert!(p("linux/arm64/v8").matches(&p("linux/arm64")));
        assert!(!p("linux/arm/v7").matches(&p("linux/arm/v6")));
        assert!(p("linux/amd64").matches(&p("linux/amd64/v1")));
        assert!(!p("linux/amd64").matches(&p("linux/amd64/v3")));
        assert!(!p("linux/amd64").matches(&p("windows/amd64")));
    }

    #[test]
    fn selection_prefers_exact_variants() {
        let entries = [
            Some(p("linux/arm/v6")),
            None,
            Some(p("linux/amd64/v3")),
            Some(p("linux/amd64/v1")),
            Some(p("linux/amd64")),
            Some(p("linux/arm/v7")),
        ];
        let refs = || entries.iter().map(Option::as_ref);
        assert_eq!(select(&p("linux/amd64"), refs()), Some(4));
        assert_eq!(select(&p("linux/amd64/v1"), refs()), Some(3));
        assert_eq!(select(&p("linux/arm"), refs()), Some(5));
        assert_eq!(select(&p("linux/arm64"), refs()), None);
        assert_eq!(select(&p("linux/amd64"), [Some(&p("linux/amd64/v1"))]), Some(0));
    }
}
