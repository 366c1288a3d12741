//! What berth-netd gave a running container, kept in `containers/<id>/network.json` (written atomically): its
//! namespace file, its endpoints and its published ports. Inspect and `docker ps` read it; the release at exit
//! (or at berthd's next start) undoes exactly what it lists.

use std::path::{Path, PathBuf};

use berth_netd::api::{Endpoint, PublishedPort};
use serde::{Deserialize, Serialize};

pub const FILE: &str = "network.json";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Attached {
    /// The namespace bind mount berthd made (`<run-dir>/netns/<id>`); removed on release.
    pub netns: Option<PathBuf>,
    /// In connect order: the first one is `eth0`.
    pub endpoints: Vec<AttachedEndpoint>,
    /// Published on the first network's endpoint.
    pub ports: Vec<PublishedPort>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedEndpoint {
    pub network_id: String,
    pub network_name: String,
    /// The user's aliases (netd's endpoint has them too, with the names).
    pub aliases: Vec<String>,
    pub endpoint: Endpoint,
}

pub fn path(container_dir: &Path) -> PathBuf {
    container_dir.join(FILE)
}

/// None when the container holds nothing of netd's (never attached, or released).
pub fn load(container_dir: &Path) -> Option<Attached> {
    let bytes = std::fs::read(path(container_dir)).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn save(container_dir: &Path, attached: &Attached) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(attached).map_err(std::io::Error::other)?;
    let target = path(container_dir);
    let tmp = container_dir.join(format!("{FILE}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, target)
}

pub fn forget(container_dir: &Path) {
    let _ = std::fs::remove_file(path(container_dir));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_state_loads_back_and_is_forgotten() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load(dir.path()), None);
        let a = Attached { netns: Some("/run/berth/netns/x".into()), ..Default::default() };
        save(dir.path(), &a).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(load(dir.path()), Some(a));
        forget(dir.path());
        assert_eq!(load(dir.path()), None);
    }
}
