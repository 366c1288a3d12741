//! Registry credentials: Docker-style `config.json` files (`auths.<registry>.auth`, base64 of `user:password`), read
//! in a fixed order, written by `berth login` and removed by `berth logout`.
//!
//! Lookup order ([`default_auth_files`]): berth's own `<root>/auth.json` first, then `$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`. Credential helpers (`credsStore`, `credHelpers`) and `identitytoken` are not supported:
//! such entries are ignored and the registry is tried anonymously.
//!
//! Writing keeps every other key of the file as it was, goes through a temporary file and a rename, and leaves
//! the file readable by its owner only.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;

use super::error::RegistryError;

/// The key Docker uses for Docker Hub in `config.json`.
pub const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password (or access token used as a password).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials { username: username.into(), password: password.into() }
    }

    pub(crate) fn to_registry_auth(&self) -> RegistryAuth {
        RegistryAuth::Basic(self.username.clone(), self.password.clone())
    }

    fn encode(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.username, self.password))
    }

    fn decode(auth: &str) -> Option<Credentials> {
        let raw = base64::engine::general_purpose::STANDARD.decode(auth.trim()).ok()?;
        let text = String::from_utf8(raw).ok()?;
        let (user, password) = text.split_once(':')?;
        Some(Credentials::new(user, password))
    }
}

/// berth's own credentials file under its state root.
pub fn berth_auth_file(root: &Path) -> PathBuf {
    root.join("auth.json")
}

/// Docker's: `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
pub fn docker_config_file() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|home| PathBuf::from(home).join(".docker/config.json"))
}

/// The files searched for credentials, in order: berth's (when a root is given), then Docker's.
pub fn default_auth_files(root: Option<&Path>) -> Vec<PathBuf> {
    root.map(berth_auth_file).into_iter().chain(docker_config_file()).collect()
}

/// The `auths` key berth writes for a registry: Docker Hub's historical URL for `docker.io`, the host otherwise.
pub fn auth_key(registry: &str) -> String {
    if normalize_registry(registry) == "docker.io" { DOCKER_HUB_AUTH_KEY.to_string() } else { registry.to_string() }
}

/// `https://index.docker.io/v1/` → `docker.io`; `http://host:5000/v2` → `host:5000`.
pub fn normalize_registry(key: &str) -> String {
    let without_scheme = key.split_once("://").map_or(key, |(_, rest)| rest);
    let host = without_scheme.split('/').next().unwrap_or(without_scheme);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => "docker.io".to_string(),
        h => h.to_ascii_lowercase(),
    }
}

/// The credentials for `registry` from the first file that has an entry for it. A missing file is skipped; an
/// unreadable or malformed one is an error naming it.
pub fn lookup(files: &[PathBuf], registry: &str) -> Result<Option<Credentials>, RegistryError> {
    let wanted = normalize_registry(registry);
    for path in files {
        let Some(doc) = read_config(path)? else { continue };
        let Some(auths) = doc.get("auths").and_then(|a| a.as_object()) else { continue };
        for (key, entry) in auths {
            if normalize_registry(key) != wanted {
                continue;
            }
            if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()).filter(|a| !a.is_empty()) {
                return match Credentials::decode(auth) {
                    Some(c) => Ok(Some(c)),
                    None => Err(RegistryError::Credentials {
                        path: path.clone(),
                        detail: format!("the auth entry for {key} is not base64 of user:password"),
                    }),
                };
            }
            let user = entry.get("username").and_then(|u| u.as_str());
            let password = entry.get("password").and_then(|p| p.as_str());
            if let (Some(u), Some(p)) = (user, password) {
                return Ok(Some(Credentials::new(u, p)));
            }
            tracing::debug!(
                path = %path.display(),
                registry = %key,
                "credentials entry without auth (identity token or helper); ignored"
            );
        }
    }
    Ok(None)
}

fn read_config(path: &Path) -> Result<Option<serde_json::Value>, RegistryError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(RegistryError::Credentials { path: path.to_path_buf(), detail: e.to_string() }),
    };
    if text.trim().is_empty() {
        return Ok(Some(serde_json::json!({})));
    }
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| RegistryError::Credentials { path: path.to_path_buf(), detail: format!("invalid JSON: {e}") })?;
    if !doc.is_object() {
        return Err(RegistryError::Credentials { path: path.to_path_buf(), detail: "not a JSON object".into() });
    }
    Ok(Some(doc))
}

/// Adds or replaces the entry for `registry` in the credentials file at `path` (created if missing).
pub fn store_credentials(path: &Path, registry: &str, credentials: &Credentials) -> Result<(), RegistryError> {
    let mut doc = read_config(path)?.unwrap_or_else(|| serde_json::json!({}));
    remove_entries(&mut doc, registry);
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| RegistryError::Credentials { path: path.to_path_buf(), detail: "not a JSON object".into() })?;
    let auths = obj.entry("auths").or_insert_with(|| serde_json::json!({}));
    if !auths.is_object() {
        *auths = serde_json::json!({});
    }
    if let Some(auths) = auths.as_object_mut() {
        auths.insert(auth_key(registry), serde_json::json!({ "auth": credentials.encode() }));
    }
    write_config(path, &doc)
}

/// Removes the entries for `registry`; returns whether there was one.
pub fn remove_credentials(path: &Path, registry: &str) -> Result<bool, RegistryError> {
    let Some(mut doc) = read_config(path)? else { return Ok(false) };
    let removed = remove_entries(&mut doc, registry);
    if removed {
        write_config(path, &doc)?;
    }
    Ok(removed)
}

fn remove_entries(doc: &mut serde_json::Value, registry: &str) -> bool {
    let wanted = normalize_registry(registry);
    let Some(auths) = doc.get_mut("auths").and_then(|a| a.as_object_mut()) else { return false };
    let keys: Vec<String> = auths.keys().filter(|k| normalize_registry(k) == wanted).cloned().collect();
    for k in &keys {
        auths.remove(k);
    }
    !keys.is_empty()
}

fn write_config(path: &Path, doc: &serde_json::Value) -> Result<(), RegistryError> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let err = |e: std::io::Error| RegistryError::Credentials { path: path.to_path_buf(), detail: e.to_string() };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut text = serde_json::to_vec_pretty(doc)
        .map_err(|e| RegistryError::Credentials { path: path.to_path_buf(), detail: e.to_string() })?;
    text.push(b'\n');
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "auth".into());
    let tmp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(&text)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_normalized() {
        assert_eq!(normalize_registry("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_registry("docker.io"), "docker.io");
        assert_eq!(normalize_registry("http://127.0.0.1:5000/v2/"), "127.0.0.1:5000");
        assert_eq!(normalize_registry("Registry.Example.com"), "registry.example.com");
        assert_eq!(auth_key("docker.io"), DOCKER_HUB_AUTH_KEY);
        assert_eq!(auth_key("localhost:5000"), "localhost:5000");
    }

    #[test]
    fn store_lookup_remove_keep_other_keys() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("sub/config.json");
        std::fs::create_dir_all(dir.path().join("sub"))?;
        std::fs::write(&path, r#"{"credsStore":"none","auths":{"other:1":{"auth":"eDp5"}},"psFormat":"x"}"#)?;
        store_credentials(&path, "127.0.0.1:5000", &Credentials::new("alice", "s3:cret"))?;
        store_credentials(&path, "docker.io", &Credentials::new("bob", "pw"))?;
        let files = vec![dir.path().join("missing.json"), path.clone()];
        assert_eq!(lookup(&files, "127.0.0.1:5000")?, Some(Credentials::new("alice", "s3:cret")));
        assert_eq!(lookup(&files, "docker.io")?, Some(Credentials::new("bob", "pw")));
        assert_eq!(lookup(&files, "other:1")?, Some(Credentials::new("x", "y")));
        assert_eq!(lookup(&files, "nowhere:1")?, None);
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
        assert_eq!(doc["psFormat"], "x");
        assert_eq!(doc["credsStore"], "none");
        assert!(doc["auths"][DOCKER_HUB_AUTH_KEY]["auth"].is_string());
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
        assert!(remove_credentials(&path, "127.0.0.1:5000")?);
        assert!(!remove_credentials(&path, "127.0.0.1:5000")?);
        assert_eq!(lookup(&files, "127.0.0.1:5000")?, None);
        Ok(())
    }

    #[test]
    fn first_file_wins_and_bad_files_are_named() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        store_credentials(&a, "r:1", &Credentials::new("first", "1"))?;
        store_credentials(&b, "r:1", &Credentials::new("second", "2"))?;
        assert_eq!(lookup(&[a.clone(), b.clone()], "r:1")?.map(|c| c.username), Some("first".into()));
        std::fs::write(&a, "{not json")?;
        let e = lookup(&[a.clone(), b], "r:1").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("a.json") && e.contains("invalid JSON"), "{e}");
        std::fs::write(&a, r#"{"auths":{"r:1":{"auth":"!!!"}}}"#)?;
        assert!(lookup(&[a], "r:1").is_err());
        Ok(())
    }

    #[test]
    fn username_password_entries_and_redacted_debug() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let a = dir.path().join("a.json");
        std::fs::write(&a, r#"{"auths":{"https://r:1":{"username":"u","password":"p"},"t:2":{"identitytoken":"x"}}}"#)?;
        assert_eq!(lookup(std::slice::from_ref(&a), "r:1")?, Some(Credentials::new("u", "p")));
        assert_eq!(lookup(&[a], "t:2")?, None);
        assert!(!format!("{:?}", Credentials::new("u", "secret")).contains("secret"));
        Ok(())
    }
}
