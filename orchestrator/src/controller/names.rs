//! Resource names as Docker Compose makes them: containers `<project>-<service>-<n>` (or `container_name`),
//! volumes and networks `<project>_<key>` (a `name:` wins).

/// The name of replica `number` (1-based) of a service.
pub fn container_name(project: &str, service: &str, number: u32, container_name: Option<&str>) -> String {
    match container_name {
        Some(name) => name.to_string(),
        None => format!("{project}-{service}-{number}"),
    }
}

/// The name a replacement container has until the old one is gone (Docker Compose: `<old id prefix>_<name>`).
pub fn temporary_name(old_id: &str, name: &str) -> String {
    let prefix: String = old_id.chars().take(12).collect();
    format!("{prefix}_{name}")
}

/// The engine name of a top-level volume or network: its `name:` or `<project>_<key>`.
pub fn scoped_name(project: &str, key: &str, explicit: Option<&str>) -> String {
    match explicit {
        Some(name) => name.to_string(),
        None => format!("{project}_{key}"),
    }
}

/// A container's name as the engine lists it (`/web-1`), without the slash.
pub fn plain(name: &str) -> &str {
    name.strip_prefix('/').unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_compose() {
        assert_eq!(container_name("hello", "web", 2, None), "hello-web-2");
        assert_eq!(container_name("hello", "web", 1, Some("front")), "front");
        assert_eq!(temporary_name("0123456789abcdef", "hello-web-1"), "0123456789ab_hello-web-1");
        assert_eq!(scoped_name("hello", "data", None), "hello_data");
        assert_eq!(scoped_name("hello", "data", Some("shared")), "shared");
        assert_eq!(plain("/hello-web-1"), "hello-web-1");
    }
}
