//! The cgroup of a running container, as berthd uses it: pause and unpause ([`freezer`]), `stats` ([`stats`]),
//! `top` ([`top`]). Works on cgroup v1 (one hierarchy per controller) and v2 (unified), detected at run time from
//! the host's mounts ([`hierarchy`]).
//!
//! The files are read and written by hand, not through youki's `libcgroups`: berthd needs a dozen text files
//! and two writes, while `libcgroups` would link a second `nix`, `pathrs` and `procfs` into berthd (which must
//! stay small) and its stats types do not carry the keys Docker's clients compute with.
//!
//! # Finding a container's cgroup
//! berth-shim records it in its state dir's `state.json` (`cgroup`, as `/proc/<init>/cgroup` shows it: the
//! memory hierarchy's path on v1, the unified path on v2). While the init runs, its own `/proc/<pid>/cgroup`
//! gives each v1 controller's path, which wins; the recorded path serves every controller otherwise.

pub mod freezer;
pub mod hierarchy;
pub mod pause;
pub mod stats;
pub mod top;

use std::path::{Path, PathBuf};

pub use hierarchy::{ContainerCgroup, Hierarchies, Mode};

#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("the cgroup of container {0} is unknown: its shim recorded none")]
    Unknown(String),
    #[error("no {0} cgroup hierarchy is mounted on this host")]
    NoController(&'static str),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the container's processes did not {what} within {ms} ms ({path} still reads {state:?})")]
    Timeout { what: &'static str, ms: u128, path: PathBuf, state: String },
}

pub type Result<T> = std::result::Result<T, CgroupError>;

pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io { op: "read", path: path.to_path_buf(), source })
}

pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    std::fs::write(path, value).map_err(|source| CgroupError::Io { op: "write", path: path.to_path_buf(), source })
}

/// What the shim recorded of a running container: its init pid and cgroup path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimRecord {
    pub init_pid: i32,
    pub cgroup: Option<String>,
}

impl ShimRecord {
    /// `state.json` in the shim's state dir (see `berth_shim::protocol`); `None` when absent or unreadable.
    pub fn read(shim_dir: &Path) -> Option<ShimRecord> {
        let bytes = std::fs::read(shim_dir.join("state.json")).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        Some(ShimRecord {
            init_pid: v.get("init_pid").and_then(serde_json::Value::as_i64).and_then(|p| i32::try_from(p).ok())?,
            cgroup: v.get("cgroup").and_then(serde_json::Value::as_str).map(str::to_owned),
        })
    }
}

/// The cgroup of the container whose shim keeps its state in `shim_dir`.
pub fn of_container(id: &str, shim_dir: &Path) -> Result<(ShimRecord, ContainerCgroup)> {
    let shim = ShimRecord::read(shim_dir).ok_or_else(|| CgroupError::Unknown(id.to_owned()))?;
    let membership = std::fs::read_to_string(format!("/proc/{}/cgroup", shim.init_pid)).ok();
    let cgroup = ContainerCgroup::resolve(Hierarchies::host(), shim.cgroup.as_deref(), membership.as_deref())
        .ok_or_else(|| CgroupError::Unknown(id.to_owned()))?;
    Ok((shim, cgroup))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shim_record_gives_pid_and_cgroup() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        assert_eq!(ShimRecord::read(tmp.path()), None);
        std::fs::write(tmp.path().join("state.json"), r#"{"id":"x","init_pid":42,"cgroup":"/berth/x"}"#)?;
        assert_eq!(ShimRecord::read(tmp.path()), Some(ShimRecord { init_pid: 42, cgroup: Some("/berth/x".into()) }));
        std::fs::write(tmp.path().join("state.json"), "{not json")?;
        assert_eq!(ShimRecord::read(tmp.path()), None);
        Ok(())
    }
}
