//! netd's persisted state: every network with its endpoints (and so every address handed out) in one JSON file,
//! `<root>/netd/state.json`, replaced atomically (temp file, fsync, rename, fsync of the directory) so a
//! `kill -9` at any moment leaves either the old or the new state. One file keeps networks, endpoints and IPAM
//! allocations consistent with each other by construction: an address is allocated exactly when an endpoint
//! record holds it.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::Network;

const STATE_FILE: &str = "state.json";
const INSTANCE_FILE: &str = "instance";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is corrupt: {source}")]
    Corrupt { path: PathBuf, source: serde_json::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// Everything netd owns, by network id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    #[serde(default)]
    pub networks: BTreeMap<String, Network>,
    /// Bridges about to be made: recorded first because a bridge gets its ownership alias only after it exists
    /// (the kernel ignores an alias on create), so a crash in between would otherwise leave a bridge no start
    /// recognises. (A veth needs no such record: it dies with its container's namespace.)
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_bridges: Vec<String>,
}

impl State {
    /// A network by full id, exact name, or unique id prefix (Docker's lookup order).
    pub fn find(&self, key: &str) -> Option<&Network> {
        if key.is_empty() {
            return None;
        }
        if let Some(n) = self.networks.get(key) {
            return Some(n);
        }
        if let Some(n) = self.networks.values().find(|n| n.name == key) {
            return Some(n);
        }
        let mut by_prefix = self.networks.values().filter(|n| n.id.starts_with(key));
        match (by_prefix.next(), by_prefix.next()) {
            (Some(n), None) => Some(n),
            _ => None,
        }
    }
}

/// Where netd keeps its files (`<root>/netd/`).
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    pub fn new(dir: &Path) -> Store {
        Store { dir: dir.to_path_buf() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The saved state, or an empty one on first start. Temp files a killed netd left mid-write are removed.
    pub fn load(&self) -> Result<State, StateError> {
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        let path = self.dir.join(STATE_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| StateError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    /// Replace the state file. Always atomic (temp file + rename), so a `kill -9` at any moment leaves the old
    /// or the new state. `durable` also fsyncs the file and the directory so the change survives a power loss;
    /// on this kind of disk that costs 5-15 ms, so netd asks for it only for networks: endpoints and published
    /// ports cannot outlive a host crash anyway (the namespaces and veths die with the kernel), and the next
    /// start forgets those whose veth is gone.
    pub fn save(&self, state: &State, durable: bool) -> Result<(), StateError> {
        let bytes = serde_json::to_vec_pretty(state)
            .map_err(|source| StateError::Corrupt { path: self.dir.join(STATE_FILE), source })?;
        self.write_atomic(STATE_FILE, &bytes, durable)
    }

    /// This netd's ownership tag, made once and kept: every link netd creates carries it as its alias, so a netd
    /// finds (and cleans) its own links even when it crashed before recording them, and never touches the links
    /// of another netd running beside it with another root (as tests do).
    pub fn instance_tag(&self) -> Result<String, StateError> {
        let path = self.dir.join(INSTANCE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(s) if !s.trim().is_empty() => return Ok(format!("berth-netd:{}", s.trim())),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateError::Read { path, source }),
        }
        let id =
            crate::ids::random_hex(16).map_err(|source| StateError::Read { path: "/dev/urandom".into(), source })?;
        self.write_atomic(INSTANCE_FILE, format!("{id}\n").as_bytes(), true)?;
        Ok(format!("berth-netd:{id}"))
    }

    fn write_atomic(&self, name: &str, bytes: &[u8], durable: bool) -> Result<(), StateError> {
        let path = self.dir.join(name);
        let err = |source| StateError::Write { path: path.clone(), source };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(err)?;
        tmp.write_all(bytes).map_err(err)?;
        if durable {
            tmp.as_file().sync_all().map_err(err)?;
        }
        tmp.persist(&path).map_err(|e| err(e.error))?;
        if durable {
            std::fs::File::open(&self.dir).and_then(|d| d.sync_all()).map_err(err)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Network;

    fn network(id: &str, name: &str) -> Network {
        Network {
            id: id.into(),
            name: name.into(),
            driver: "bridge".into(),
            internal: false,
            created: 1,
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            mtu: 1500,
            subnet: "172.17.0.0/16".parse().expect("net"),
            ip_range: "172.17.0.0/16".parse().expect("net"),
            gateway: "172.17.0.1".parse().expect("addr"),
            aux_addresses: BTreeMap::new(),
            user_subnet: false,
            bridge: format!("br-{}", &id[..12]),
            endpoints: BTreeMap::new(),
            last_allocated: None,
        }
    }

    #[test]
    fn state_round_trips_and_a_missing_file_is_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(&dir.path().join("netd"));
        assert_eq!(store.load().expect("empty"), State::default());
        let mut state = State::default();
        state.networks.insert("a".repeat(64), network(&"a".repeat(64), "web"));
        store.save(&state, true).expect("save");
        assert_eq!(store.load().expect("load"), state);
        state.networks.clear();
        store.save(&state, false).expect("save without fsync");
        assert_eq!(store.load().expect("load"), state);
        // Nothing but the state file is left behind, and a temp file of a killed write is swept on load.
        let names: Vec<_> = std::fs::read_dir(store.dir()).expect("dir").filter_map(|e| e.ok()).collect();
        assert_eq!(names.len(), 1);
        std::fs::write(store.dir().join(".tmpAbC123"), b"{half").expect("write");
        assert_eq!(store.load().expect("load"), state);
        assert!(!store.dir().join(".tmpAbC123").exists());
    }

    #[test]
    fn a_corrupt_state_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(STATE_FILE), b"{not json").expect("write");
        let err = Store::new(dir.path()).load().expect_err("corrupt");
        assert!(err.to_string().contains("is corrupt"), "{err}");
    }

    #[test]
    fn lookup_by_id_name_and_unique_prefix() {
        let mut state = State::default();
        let a = format!("ab{}", "1".repeat(62));
        let b = format!("ac{}", "2".repeat(62));
        state.networks.insert(a.clone(), network(&a, "front"));
        state.networks.insert(b.clone(), network(&b, "back"));
        assert_eq!(state.find(&a).map(|n| n.name.as_str()), Some("front"));
        assert_eq!(state.find("back").map(|n| n.id.as_str()), Some(b.as_str()));
        assert_eq!(state.find("ab1").map(|n| n.name.as_str()), Some("front"));
        assert!(state.find("a").is_none(), "ambiguous prefix");
        assert!(state.find("").is_none());
        assert!(state.find("zz").is_none());
    }

    #[test]
    fn the_instance_tag_is_stable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::new(dir.path());
        let first = store.instance_tag().expect("tag");
        assert!(first.starts_with("berth-netd:"));
        assert_eq!(store.instance_tag().expect("again"), first);
    }
}
