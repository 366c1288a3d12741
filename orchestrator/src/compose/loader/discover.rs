//! Which compose files make up the project, and where its project directory is.
//!
//! As Docker Compose: the `-f` files, else `COMPOSE_FILE` (split on `COMPOSE_PATH_SEPARATOR`, `:` by default),
//! else the first of `compose.yaml`, `compose.yml`, `docker-compose.yml`, `docker-compose.yaml` found in the working
//! directory or its parents, together with its override file (`compose.override.yaml`, …) beside it.

use std::path::{Path, PathBuf};

use crate::compose::error::{Diagnostic, Span};

pub const DEFAULT_FILES: [&str; 4] = ["compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"];
pub const OVERRIDE_FILES: [&str; 4] =
    ["compose.override.yml", "compose.override.yaml", "docker-compose.override.yml", "docker-compose.override.yaml"];

/// Split a `COMPOSE_FILE` value into paths, relative ones taken from `base`.
pub fn split_compose_file(value: &str, separator: Option<&str>, base: &Path) -> Vec<PathBuf> {
    let sep = separator.filter(|s| !s.is_empty()).unwrap_or(":");
    value.split(sep).filter(|s| !s.is_empty()).map(|p| absolute(base, Path::new(p))).collect()
}

/// Find the default compose file in `dir` or the nearest parent that has one, and its override file.
pub fn find_default(dir: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let mut current = Some(dir);
    while let Some(d) = current {
        if let Some(main) = first_existing(d, &DEFAULT_FILES) {
            let others: Vec<&str> = DEFAULT_FILES.iter().copied().filter(|f| d.join(f).is_file()).collect();
            if others.len() > 1 {
                tracing::warn!(dir = %d.display(), using = %main.display(), "found several compose files: {}", others.join(", "));
            }
            let mut files = vec![main];
            files.extend(first_existing(d, &OVERRIDE_FILES));
            return Ok(files);
        }
        current = d.parent();
    }
    Err(Diagnostic::new(Span::file(dir), "no compose file found in this directory or any parent directory".to_string())
        .with_hint("create compose.yaml, or name a file with -f"))
}

fn first_existing(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// A reference to a remote resource (`git@…`, `https://…`, `oci://…`, `remote:…`) rather than a local path.
/// berth loads only local files; a scheme of one letter is a Windows drive, not a scheme.
pub fn is_remote(s: &str) -> bool {
    if s.contains("://") || s.starts_with("git@") {
        return true;
    }
    match s.split_once(':') {
        Some((scheme, _)) => {
            scheme.len() > 1
                && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
        }
        None => false,
    }
}

/// `path` made absolute against `base`, with `.` and `..` folded lexically (symlinks are not resolved, as Docker
/// Compose does not resolve them either).
pub fn absolute(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() { path.to_path_buf() } else { base.join(path) };
    let mut out = PathBuf::new();
    for comp in joined.components() {
        match comp {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            c => out.push(c.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_in_parent_with_override() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        std::fs::write(tmp.path().join("docker-compose.yml"), "services: {}")?;
        std::fs::write(tmp.path().join("compose.override.yaml"), "services: {}")?;
        let sub = tmp.path().join("a/b");
        std::fs::create_dir_all(&sub)?;
        let files = find_default(&sub).map_err(|d| std::io::Error::other(d.to_string()))?;
        assert_eq!(files, vec![tmp.path().join("docker-compose.yml"), tmp.path().join("compose.override.yaml")]);
        Ok(())
    }

    #[test]
    fn compose_yaml_wins() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        std::fs::write(tmp.path().join("docker-compose.yml"), "")?;
        std::fs::write(tmp.path().join("compose.yaml"), "")?;
        let files = find_default(tmp.path()).map_err(|d| std::io::Error::other(d.to_string()))?;
        assert_eq!(files, vec![tmp.path().join("compose.yaml")]);
        Ok(())
    }

    #[test]
    fn none_found_is_an_error() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let e = find_default(tmp.path()).err().map(|d| d.message);
        assert!(e.is_some_and(|m| m.contains("no compose file")));
        Ok(())
    }

    #[test]
    fn remote_references() {
        assert!(is_remote("remote:nested/compose.yaml"));
        assert!(is_remote("oci://docker.io/x"));
        assert!(is_remote("git@github.com:a/b.git"));
        assert!(!is_remote("C:/x"));
        assert!(!is_remote("./a.yaml"));
        assert!(!is_remote("/a/b:c.yaml"));
    }

    #[test]
    fn compose_file_variable() {
        let v = split_compose_file("a.yml:../b.yml", None, Path::new("/p/q"));
        assert_eq!(v, vec![PathBuf::from("/p/q/a.yml"), PathBuf::from("/p/b.yml")]);
        let v = split_compose_file("a.yml;b.yml", Some(";"), Path::new("/p"));
        assert_eq!(v.len(), 2);
    }
}
