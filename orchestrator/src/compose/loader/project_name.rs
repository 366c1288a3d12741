//! The project name, as Docker Compose picks it: `-p`, else `COMPOSE_PROJECT_NAME`, else the top-level `name:`,
//! else the project directory's base name. Names given by the user must already be valid; a directory name is
//! normalized (lowercased, other characters dropped) because the user did not choose it as a name.

/// Why a name is invalid, or `None` when it is valid: lowercase letters, digits, `-` and `_`, starting with a
/// letter or digit (the rule Docker Compose enforces, since the name prefixes container and network names).
pub fn invalid_reason(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the project name is empty".into());
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Some(format!("project name {name:?} must start with a lowercase letter or a digit"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')) {
        return Some(format!(
            "project name {name:?} contains {c:?}: use only lowercase letters, digits, dashes and underscores"
        ));
    }
    None
}

/// A directory name made into a project name: lowercase, only `[a-z0-9_-]`, no leading `-` or `_`.
pub fn normalize(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect();
    lowered.trim_start_matches(['-', '_']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validity() {
        assert_eq!(invalid_reason("my-app_1"), None);
        assert!(invalid_reason("My-App").is_some());
        assert!(invalid_reason("_x").is_some());
        assert!(invalid_reason("").is_some());
        assert!(invalid_reason("a.b").is_some());
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize("UNNORMALIZED PATH"), "unnormalizedpath");
        assert_eq!(normalize("--My.App"), "myapp");
        assert_eq!(normalize("simple"), "simple");
    }
}
