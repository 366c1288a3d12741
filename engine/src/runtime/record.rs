//! The containers berthd knows: one record per container under `<root>/containers/<id>/record.json`, written
//! atomically (temp + fsync + rename), so a `kill -9` of berthd at any moment leaves records the next start reads.
//! Names are unique; ids are 64 random hex digits, found by any unique prefix, as in Docker.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use super::config::{ContainerConfig, CreateBody, HostConfig};
use crate::image::Digest;
use crate::time::now_rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("no such container: {0}")]
    NotFound(String),
    #[error("multiple containers match {0:?}: use more of the id")]
    Ambiguous(String),
    #[error(
        "conflict: the container name \"/{name}\" is already in use by container \"{id}\"; remove or rename that container to reuse the name"
    )]
    NameInUse { name: String, id: String },
    #[error("invalid container name ({0}): only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed")]
    InvalidName(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, ContainerError>;

/// Docker's container states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// The `State` of inspect.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct State {
    pub status: Status,
    pub pid: i64,
    pub exit_code: i64,
    pub error: String,
    #[serde(rename = "OOMKilled")]
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
    /// With a healthcheck: its state (kept across berthd restarts; see `health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<super::health::Health>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    pub id: String,
    /// Without the leading `/` Docker shows.
    pub name: String,
    /// RFC 3339.
    pub created: String,
    /// The image as the client named it.
    pub image: String,
    pub image_id: Option<Digest>,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    #[serde(default)]
    pub networking_config: Option<serde_json::Value>,
    pub state: State,
    #[serde(default)]
    pub restart_count: u64,
    /// Stopped or killed through the API: no restart policy undoes that until the next `start`.
    #[serde(default)]
    pub manually_stopped: bool,
    /// Binds, volumes (with the names of those made for it) and tmpfs mounts, resolved at create.
    #[serde(default)]
    pub mounts: Vec<crate::volume::MountPoint>,
}

pub const NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// Docker's name rule: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, an optional leading `/`.
pub fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// 64 random hex digits from the kernel's generator.
pub fn random_id() -> Result<String> {
    let mut buf = [0u8; 32];
    let path = Path::new("/dev/urandom");
    std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut buf)).map_err(|source| ContainerError::Io {
        op: "read",
        path: path.to_path_buf(),
        source,
    })?;
    Ok(hex::encode(buf))
}

/// A name like Docker's `focused_hopper`, from the id so it needs no second random source.
pub fn generated_name(id: &str) -> String {
    const ADJECTIVES: [&str; 16] = [
        "brave", "calm", "eager", "focused", "gentle", "happy", "keen", "lucid", "modest", "nimble", "quiet", "sharp",
        "steady", "swift", "tender", "witty",
    ];
    const NAMES: [&str; 16] = [
        "hopper",
        "lovelace",
        "turing",
        "curie",
        "noether",
        "ritchie",
        "thompson",
        "knuth",
        "liskov",
        "hamilton",
        "dijkstra",
        "shannon",
        "babbage",
        "torvalds",
        "goldberg",
        "kernighan",
    ];
    let n = u64::from_str_radix(id.get(..12).unwrap_or("0"), 16).unwrap_or(0);
    format!("{}_{}{}", ADJECTIVES[(n % 16) as usize], NAMES[((n >> 4) % 16) as usize], (n >> 8) % 100)
}

pub struct Containers {
    dir: PathBuf,
    table: RwLock<BTreeMap<String, ContainerRecord>>,
    /// Exit codes of recently removed containers: a `wait?condition=removed` may look after the removal.
    removed: std::sync::Mutex<std::collections::VecDeque<(String, i64)>>,
}

/// How many removed containers' exit codes are remembered.
const REMEMBERED_EXITS: usize = 256;

impl Containers {
    /// Read every record under `<root>/containers`; a record that cannot be read is logged and left alone.
    pub fn open(root: &Path) -> Result<Containers> {
        let dir = root.join("containers");
        std::fs::create_dir_all(&dir).map_err(|source| ContainerError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        let mut table = BTreeMap::new();
        let entries =
            std::fs::read_dir(&dir).map_err(|source| ContainerError::Io { op: "read", path: dir.clone(), source })?;
        for entry in entries.flatten() {
            let path = entry.path().join("record.json");
            match std::fs::read(&path).map(|b| serde_json::from_slice::<ContainerRecord>(&b)) {
                Ok(Ok(mut r)) => {
                    overlay_runtime_state(&entry.path(), &mut r);
                    table.insert(r.id.clone(), r);
                }
                Ok(Err(e)) => tracing::warn!(path = %path.display(), error = %e, "unreadable container record"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "unreadable container record"),
            }
        }
        Ok(Containers { dir, table: RwLock::new(table), removed: Default::default() })
    }

    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, ContainerRecord>> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, ContainerRecord>> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a new container (state `created`), its directory and record file.
    pub fn create(&self, name: Option<&str>, body: CreateBody, image_id: Option<Digest>) -> Result<ContainerRecord> {
        body.host_config.restart_policy.validate().map_err(ContainerError::Invalid)?;
        let id = random_id()?;
        let name = match name.map(|n| n.trim_start_matches('/')) {
            Some(n) if !n.is_empty() => {
                if !valid_name(n) {
                    return Err(ContainerError::InvalidName(n.to_string()));
                }
                n.to_string()
            }
            _ => generated_name(&id),
        };
        let mut table = self.write();
        if let Some(other) = table.values().find(|r| r.name == name) {
            return Err(ContainerError::NameInUse { name, id: other.id.clone() });
        }
        let record = ContainerRecord {
            id: id.clone(),
            name,
            created: now_rfc3339(),
            image: body.config.image.clone(),
            image_id,
            config: body.config,
            host_config: body.host_config,
            networking_config: body.networking_config,
            state: State::default(),
            restart_count: 0,
            manually_stopped: false,
            mounts: Vec::new(),
        };
        let dir = self.container_dir(&id);
        std::fs::create_dir_all(&dir).map_err(|source| ContainerError::Io {
            op: "create",
            path: dir.clone(),
            source,
        })?;
        persist(&dir, &record)?;
        table.insert(id, record.clone());
        Ok(record)
    }

    /// By full id, unique id prefix, or name (with or without `/`), as Docker resolves them: id, then name, then prefix.
    pub fn get(&self, key: &str) -> Result<ContainerRecord> {
        let table = self.read();
        find(&table, key).cloned()
    }

    pub fn list(&self) -> Vec<ContainerRecord> {
        let mut all: Vec<ContainerRecord> = self.read().values().cloned().collect();
        all.sort_by(|a, b| b.created.cmp(&a.created));
        all
    }

    /// Change a record and write it before anyone sees the change.
    pub fn update(&self, key: &str, f: impl FnOnce(&mut ContainerRecord)) -> Result<ContainerRecord> {
        let mut table = self.write();
        let id = find(&table, key)?.id.clone();
        let mut record = table.get(&id).cloned().ok_or_else(|| ContainerError::NotFound(key.to_string()))?;
        let before = table.get(&id).cloned().unwrap_or_default();
        f(&mut record);
        let dir = self.container_dir(&id);
        if runtime_state_only(&before, &record) {
            persist_runtime_state(&dir, &record)?;
        } else {
            persist(&dir, &record)?;
            // The runtime state goes along, so the next start does not overlay an older one.
            persist_runtime_state(&dir, &record)?;
        }
        table.insert(id, record.clone());
        Ok(record)
    }

    /// Change a record in memory only, for state the kernel keeps per boot and berthd reads back from it on
    /// start (paused: the freezer), so its fast path has no fsync'd write.
    pub fn update_in_memory(&self, key: &str, f: impl FnOnce(&mut ContainerRecord)) -> Result<ContainerRecord> {
        let mut table = self.write();
        let id = find(&table, key)?.id.clone();
        let record = table.get_mut(&id).ok_or_else(|| ContainerError::NotFound(key.to_string()))?;
        f(record);
        Ok(record.clone())
    }

    pub fn rename(&self, key: &str, new_name: &str) -> Result<()> {
        let new_name = new_name.trim_start_matches('/');
        if !valid_name(new_name) {
            return Err(ContainerError::InvalidName(new_name.to_string()));
        }
        {
            let table = self.read();
            let me = find(&table, key)?;
            if let Some(other) = table.values().find(|r| r.name == new_name && r.id != me.id) {
                return Err(ContainerError::NameInUse { name: new_name.to_string(), id: other.id.clone() });
            }
        }
        self.update(key, |r| r.name = new_name.to_string()).map(|_| ())
    }

    /// Forget a container and delete its directory (its rootfs must already be unmounted).
    pub fn remove(&self, key: &str) -> Result<ContainerRecord> {
        let mut table = self.write();
        let id = find(&table, key)?.id.clone();
        let dir = self.container_dir(&id);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ContainerError::Io { op: "remove", path: dir, source }),
        }
        let record = table.remove(&id).ok_or_else(|| ContainerError::NotFound(key.to_string()))?;
        let mut removed = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        if removed.len() == REMEMBERED_EXITS {
            removed.pop_front();
        }
        removed.push_back((record.id.clone(), record.state.exit_code));
        Ok(record)
    }

    /// The exit code of a container removed lately.
    pub fn removed_exit(&self, id: &str) -> Option<i64> {
        let removed = self.removed.lock().unwrap_or_else(|e| e.into_inner());
        removed.iter().rev().find(|(i, _)| i == id).map(|(_, code)| *code)
    }

    /// Whether any container was created from this image (it may not be removed without force).
    pub fn uses_image(&self, image_id: &Digest) -> bool {
        self.read().values().any(|r| r.image_id.as_ref() == Some(image_id))
    }
}

fn find<'a>(table: &'a BTreeMap<String, ContainerRecord>, key: &str) -> Result<&'a ContainerRecord> {
    if let Some(r) = table.get(key) {
        return Ok(r);
    }
    let name = key.trim_start_matches('/');
    if let Some(r) = table.values().find(|r| r.name == name) {
        return Ok(r);
    }
    let is_hex = !key.is_empty() && key.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex {
        let mut hits = table.values().filter(|r| r.id.starts_with(key));
        if let Some(first) = hits.next() {
            return if hits.next().is_some() { Err(ContainerError::Ambiguous(key.to_string())) } else { Ok(first) };
        }
    }
    Err(ContainerError::NotFound(key.to_string()))
}

/// The part of a record that changes with every start and exit: `state.json`, beside `record.json`.
#[derive(Serialize, Deserialize)]
struct RuntimeState {
    id: String,
    state: State,
    restart_count: u64,
}

/// Whether an update changed only the runtime state (status, pid, exit, health, restart count).
fn runtime_state_only(before: &ContainerRecord, after: &ContainerRecord) -> bool {
    let mut same = before.clone();
    same.state = after.state.clone();
    same.restart_count = after.restart_count;
    same == *after
}

/// Write `state.json` by temp file and rename, without fsync: a `kill -9` of berthd keeps it (the page cache
/// survives the process), and what a power loss may take back — whether a container ran — is rebuilt anyway on
/// the next start from the shims (none run after a reboot). An fsync here cost 5–15 ms per start and per exit.
fn persist_runtime_state(dir: &Path, record: &ContainerRecord) -> Result<()> {
    let path = dir.join("state.json");
    let tmp = dir.join(".state.json.tmp");
    let io = |op, source| ContainerError::Io { op, path: path.clone(), source };
    let state =
        RuntimeState { id: record.id.clone(), state: record.state.clone(), restart_count: record.restart_count };
    let bytes = serde_json::to_vec(&state).map_err(|e| io("encode", std::io::Error::other(e)))?;
    std::fs::write(&tmp, bytes).map_err(|e| io("write", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io("rename", e))
}

/// The newest runtime state over the record read from `record.json`; an unreadable `state.json` (cut short by a
/// power loss) is ignored, leaving the state the record last had durably.
fn overlay_runtime_state(dir: &Path, record: &mut ContainerRecord) {
    let Ok(bytes) = std::fs::read(dir.join("state.json")) else { return };
    match serde_json::from_slice::<RuntimeState>(&bytes) {
        Ok(s) if s.id == record.id => {
            record.state = s.state;
            record.restart_count = s.restart_count;
        }
        _ => tracing::warn!(dir = %dir.display(), "unreadable state.json: keeping record.json's state"),
    }
}

/// Write `record.json` by temp file, fsync and rename, then fsync the directory.
fn persist(dir: &Path, record: &ContainerRecord) -> Result<()> {
    let path = dir.join("record.json");
    let tmp = dir.join(".record.json.tmp");
    let io = |op, source| ContainerError::Io { op, path: path.clone(), source };
    let bytes = serde_json::to_vec_pretty(record).map_err(|e| io("encode", std::io::Error::other(e)))?;
    let mut f = std::fs::File::create(&tmp).map_err(|e| io("create", e))?;
    f.write_all(&bytes).map_err(|e| io("write", e))?;
    f.sync_all().map_err(|e| io("fsync", e))?;
    std::fs::rename(&tmp, &path).map_err(|e| io("rename", e))?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(image: &str) -> CreateBody {
        CreateBody { config: ContainerConfig { image: image.into(), ..Default::default() }, ..Default::default() }
    }

    #[test]
    fn create_get_rename_remove_and_reopen() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let c = Containers::open(tmp.path())?;
        let a = c.create(Some("web"), body("busybox"), None)?;
        assert_eq!(a.id.len(), 64);
        assert_eq!(c.get("web")?.id, a.id);
        assert_eq!(c.get("/web")?.id, a.id);
        assert_eq!(c.get(&a.id[..8])?.id, a.id);
        let dup = c.create(Some("web"), body("busybox"), None);
        assert!(matches!(dup, Err(ContainerError::NameInUse { .. })));
        let b = c.create(None, body("busybox"), None)?;
        assert!(valid_name(&b.name), "{}", b.name);
        c.rename("web", "front")?;
        assert!(c.get("web").is_err());
        c.update("front", |r| r.state.status = Status::Exited)?;
        // A fresh process reads the same records.
        let again = Containers::open(tmp.path())?;
        assert_eq!(again.get("front")?.state.status, Status::Exited);
        again.remove("front")?;
        assert!(!tmp.path().join("containers").join(&a.id).exists());
        assert!(matches!(again.get("front"), Err(ContainerError::NotFound(_))));
        Ok(())
    }

    #[test]
    fn runtime_state_goes_to_state_json_and_wins_on_reopen() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let c = Containers::open(tmp.path())?;
        let a = c.create(Some("job"), body("busybox"), None)?;
        let dir = tmp.path().join("containers").join(&a.id);
        let durable = std::fs::read(dir.join("record.json"))?;
        c.update("job", |r| {
            r.state.status = Status::Running;
            r.state.pid = 42;
            r.restart_count = 2;
        })?;
        // Only the runtime state changed: record.json is as it was, state.json has the news.
        assert_eq!(std::fs::read(dir.join("record.json"))?, durable);
        let again = Containers::open(tmp.path())?;
        let r = again.get("job")?;
        assert_eq!((r.state.status, r.state.pid, r.restart_count), (Status::Running, 42, 2));
        // A config change rewrites record.json (with the state); a torn state.json falls back to it.
        again.update("job", |r| r.manually_stopped = true)?;
        assert_ne!(std::fs::read(dir.join("record.json"))?, durable);
        std::fs::write(dir.join("state.json"), b"{\"id\": ")?;
        let third = Containers::open(tmp.path())?;
        let r = third.get("job")?;
        assert!(r.manually_stopped);
        assert_eq!((r.state.status, r.state.pid), (Status::Running, 42));
        Ok(())
    }

    #[test]
    fn names_and_policies_are_checked() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let c = Containers::open(tmp.path())?;
        assert!(matches!(c.create(Some("bad name"), body("x"), None), Err(ContainerError::InvalidName(_))));
        let mut b = body("x");
        b.host_config.restart_policy.name = "sometimes".into();
        assert!(matches!(c.create(None, b, None), Err(ContainerError::Invalid(_))));
        Ok(())
    }
}
