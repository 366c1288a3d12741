//! The volume store: `<root>/volumes/<name>/_data` holds a volume's files and `<root>/volumes/<name>/volume.json`
//! its metadata, written atomically (temp + fsync + rename). On berthd's start every directory is read back; a
//! directory whose metadata was never written (a `kill -9` during create) is adopted as a plain local volume.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};

use serde::{Deserialize, Serialize};

use super::{ANONYMOUS_LABEL, Result, VolumeError, local};
use crate::time::now_rfc3339;

const META: &str = "volume.json";
const DATA: &str = "_data";

/// One volume's metadata, as inspect shows it (plus the mount point, which follows from the name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub created_at: String,
    pub scope: String,
}

impl Volume {
    pub fn anonymous(&self) -> bool {
        self.labels.contains_key(ANONYMOUS_LABEL)
    }
}

/// What `POST /volumes/create` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateRequest {
    /// Empty: a random 64-hex name.
    pub name: String,
    /// Empty or `local`.
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

pub struct VolumeStore {
    dir: PathBuf,
    table: RwLock<BTreeMap<String, Volume>>,
    /// Held while a local-driver mount is decided and made, so two starting containers mount a volume once.
    mounting: Mutex<()>,
    /// Held during a copy-up.
    copying: Mutex<()>,
    /// Where `create`, `destroy`, `mount` and `unmount` go (none in unit tests).
    events: Option<crate::events::Events>,
}

impl VolumeStore {
    /// Read every volume under `<root>/volumes`. Never fails: an unreadable entry is logged and skipped, and a
    /// missing directory is created on the first create (whose error then says what is wrong).
    pub fn open(root: &Path) -> VolumeStore {
        let dir = root.join("volumes");
        let mut table = BTreeMap::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
                if !crate::runtime::record::valid_name(&name) || !entry.path().join(DATA).is_dir() {
                    continue;
                }
                match read_meta(&entry.path(), &name) {
                    Ok(v) => {
                        table.insert(name, v);
                    }
                    Err(e) => tracing::warn!(volume = %name, error = %e, "unreadable volume metadata, skipped"),
                }
            }
        }
        VolumeStore { dir, table: RwLock::new(table), mounting: Mutex::new(()), copying: Mutex::new(()), events: None }
    }

    /// Emit the volume events on this bus.
    pub fn with_events(mut self, events: crate::events::Events) -> VolumeStore {
        self.events = Some(events);
        self
    }

    /// A volume event (Docker's `type=volume`), when the store has a bus.
    pub fn emit(&self, action: &str, name: &str, extra: &[(&str, String)]) {
        if let Some(events) = &self.events {
            events.volume(action, name, extra);
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Volume>> {
        self.table.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Volume>> {
        self.table.write().unwrap_or_else(|e| e.into_inner())
    }

    /// `<root>/volumes/<name>/_data`: what containers mount.
    pub fn mountpoint(&self, name: &str) -> PathBuf {
        self.dir.join(name).join(DATA)
    }

    /// Copy the image's content at `destination` into the volume if it is empty ([`super::copyup::copy_up`]).
    /// One copy-up at a time: two containers starting on one new volume must not both fill it.
    pub fn copy_up(&self, name: &str, rootfs: &Path, destination: &str) -> Result<bool> {
        let _guard = self.copying.lock().unwrap_or_else(|e| e.into_inner());
        let marker = self.dir.join(name).join(".copyup-incomplete");
        super::copyup::copy_up(rootfs, destination, &self.mountpoint(name), &marker)
            .map_err(|e| VolumeError::Mount { name: name.to_string(), reason: format!("copy-up: {e}") })
    }

    pub fn get(&self, name: &str) -> Result<Volume> {
        self.read().get(name).cloned().ok_or_else(|| VolumeError::NotFound(name.to_string()))
    }

    pub fn list(&self) -> Vec<Volume> {
        self.read().values().cloned().collect()
    }

    /// Create a volume, or return the existing one of that name when the driver and options agree
    /// (`created` tells which).
    pub fn create(&self, req: CreateRequest) -> Result<(Volume, bool)> {
        let driver = if req.driver.is_empty() { "local".to_string() } else { req.driver.clone() };
        if driver != "local" {
            return Err(VolumeError::UnknownDriver(driver));
        }
        local::parse(&req.options)?;
        let mut labels = req.labels;
        let name = if req.name.is_empty() {
            // Made without a name: anonymous, as Docker's API does for an unnamed create.
            labels.entry(ANONYMOUS_LABEL.to_string()).or_default();
            random_name()?
        } else {
            req.name
        };
        if !crate::runtime::record::valid_name(&name) {
            return Err(VolumeError::InvalidName(name));
        }
        let mut table = self.write();
        if let Some(existing) = table.get(&name) {
            if existing.driver != driver || (!req.options.is_empty() && existing.options != req.options) {
                return Err(VolumeError::Conflict(name));
            }
            return Ok((existing.clone(), false));
        }
        let volume = Volume {
            name: name.clone(),
            driver,
            labels,
            options: req.options,
            created_at: now_rfc3339(),
            scope: "local".into(),
        };
        let vdir = self.dir.join(&name);
        let data = vdir.join(DATA);
        std::fs::create_dir_all(&data).map_err(VolumeError::io("create", &data))?;
        write_meta(&vdir, &volume)?;
        table.insert(name.clone(), volume.clone());
        drop(table);
        self.emit("create", &name, &[]);
        Ok((volume, true))
    }

    /// A new anonymous volume (64 hex digits, the anonymous label) for a container.
    pub fn create_anonymous(&self, mut labels: BTreeMap<String, String>) -> Result<Volume> {
        labels.entry(ANONYMOUS_LABEL.to_string()).or_default();
        self.create(CreateRequest { labels, ..Default::default() }).map(|(v, _)| v)
    }

    /// Forget a volume and delete its files. Whether a container uses it is the caller's question; a
    /// local-driver mount left on `_data` is undone first, so the device's own files are never deleted.
    pub fn remove(&self, name: &str) -> Result<Volume> {
        let mut table = self.write();
        let volume = table.get(name).cloned().ok_or_else(|| VolumeError::NotFound(name.to_string()))?;
        let data = self.mountpoint(name);
        {
            let _guard = self.mounting.lock().unwrap_or_else(|e| e.into_inner());
            if local::is_mounted(&data) {
                local::unmount(&data).map_err(|reason| VolumeError::Mount { name: name.to_string(), reason })?;
            }
        }
        if local::is_mounted(&data) {
            return Err(VolumeError::Mount { name: name.to_string(), reason: "still mounted".into() });
        }
        let vdir = self.dir.join(name);
        // The metadata goes first: a crash half way leaves a directory that is adopted or finished next time.
        match std::fs::remove_file(vdir.join(META)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(VolumeError::io("remove", &vdir)(e)),
        }
        table.remove(name);
        drop(table);
        self.emit("destroy", name, &[]);
        match std::fs::remove_dir_all(&vdir) {
            Ok(()) => Ok(volume),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(volume),
            Err(e) => Err(VolumeError::io("remove", &vdir)(e)),
        }
    }

    /// Mount a volume's local-driver device on its `_data` unless it is mounted already; a volume without
    /// options needs nothing.
    pub fn mount(&self, name: &str) -> Result<()> {
        let volume = self.get(name)?;
        let Some(m) = local::parse(&volume.options)? else { return Ok(()) };
        let data = self.mountpoint(name);
        let _guard = self.mounting.lock().unwrap_or_else(|e| e.into_inner());
        if local::is_mounted(&data) {
            return Ok(());
        }
        std::fs::create_dir_all(&data).map_err(VolumeError::io("create", &data))?;
        local::mount_on(&m, &data).map_err(|reason| VolumeError::Mount { name: name.to_string(), reason })
    }

    /// Undo [`VolumeStore::mount`]; the caller knows that no running container uses the volume.
    pub fn unmount(&self, name: &str) -> Result<()> {
        let volume = self.get(name)?;
        if volume.options.is_empty() {
            return Ok(());
        }
        let data = self.mountpoint(name);
        let _guard = self.mounting.lock().unwrap_or_else(|e| e.into_inner());
        if !local::is_mounted(&data) {
            return Ok(());
        }
        local::unmount(&data).map_err(|reason| VolumeError::Mount { name: name.to_string(), reason })
    }

    /// Bytes used by the files of a volume (apparent sizes; for prune's SpaceReclaimed).
    pub fn size(&self, name: &str) -> u64 {
        let mut total = 0u64;
        let mut stack = vec![self.mountpoint(name)];
        // Bounded by the tree itself: symlinks are never followed.
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for e in entries.flatten() {
                match e.metadata() {
                    Ok(m) if m.is_dir() => stack.push(e.path()),
                    Ok(m) => total = total.saturating_add(m.len()),
                    Err(_) => {}
                }
            }
        }
        total
    }
}

fn read_meta(vdir: &Path, name: &str) -> Result<Volume> {
    let path = vdir.join(META);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map_err(|e| VolumeError::io("decode", &path)(std::io::Error::other(e)))
        }
        // Created but its metadata never written: a plain local volume made now.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let volume = Volume {
                name: name.to_string(),
                driver: "local".into(),
                labels: BTreeMap::new(),
                options: BTreeMap::new(),
                created_at: now_rfc3339(),
                scope: "local".into(),
            };
            write_meta(vdir, &volume)?;
            Ok(volume)
        }
        Err(e) => Err(VolumeError::io("read", &path)(e)),
    }
}

/// `volume.json` by temp file, fsync and rename, then fsync of the directory.
fn write_meta(vdir: &Path, volume: &Volume) -> Result<()> {
    let path = vdir.join(META);
    let tmp = vdir.join(".volume.json.tmp");
    let bytes =
        serde_json::to_vec_pretty(volume).map_err(|e| VolumeError::io("encode", &path)(std::io::Error::other(e)))?;
    let mut f = std::fs::File::create(&tmp).map_err(VolumeError::io("create", &tmp))?;
    f.write_all(&bytes).map_err(VolumeError::io("write", &tmp))?;
    f.sync_all().map_err(VolumeError::io("fsync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(VolumeError::io("rename", &path))?;
    if let Ok(d) = std::fs::File::open(vdir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn random_name() -> Result<String> {
    crate::runtime::record::random_id()
        .map_err(|e| VolumeError::io("read", Path::new("/dev/urandom"))(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    fn req(name: &str) -> CreateRequest {
        CreateRequest { name: name.into(), ..Default::default() }
    }

    #[test]
    fn create_list_reopen_and_remove() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let store = VolumeStore::open(tmp.path());
        let mut r = req("data");
        r.labels.insert("app".into(), "web".into());
        let (v, created) = store.create(r.clone())?;
        assert!(created);
        assert_eq!((v.driver.as_str(), v.scope.as_str()), ("local", "local"));
        assert!(store.mountpoint("data").is_dir());
        std::fs::write(store.mountpoint("data").join("f"), "12345")?;
        assert_eq!(store.size("data"), 5);
        // The same create again returns the volume as it is.
        let (again, created) = store.create(r)?;
        assert!(!created);
        assert_eq!(again, v);
        // A fresh process reads the same volumes.
        let reopened = VolumeStore::open(tmp.path());
        assert_eq!(reopened.get("data")?, v);
        assert_eq!(reopened.list().len(), 1);
        reopened.remove("data")?;
        assert!(!tmp.path().join("volumes/data").exists());
        assert!(matches!(reopened.get("data"), Err(VolumeError::NotFound(_))));
        assert!(matches!(reopened.remove("data"), Err(VolumeError::NotFound(_))));
        Ok(())
    }

    #[test]
    fn names_drivers_and_options_are_checked() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let store = VolumeStore::open(tmp.path());
        for bad in ["bad name", "-x", "a", "../up", "a/b"] {
            assert!(matches!(store.create(req(bad)), Err(VolumeError::InvalidName(_))), "{bad}");
        }
        let mut r = req("v1");
        r.driver = "nfs-plugin".into();
        assert!(matches!(store.create(r), Err(VolumeError::UnknownDriver(_))));
        let mut r = req("v1");
        r.options.insert("colour".into(), "blue".into());
        assert!(matches!(store.create(r), Err(VolumeError::InvalidOption(_))));
        let mut r = req("v1");
        r.options = [("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        store.create(r.clone())?;
        r.options.insert("o".into(), "size=2m".into());
        assert!(matches!(store.create(r), Err(VolumeError::Conflict(_))));
        // Without options the existing one is returned, as `docker volume create v1` does.
        assert!(store.create(req("v1")).is_ok());
        Ok(())
    }

    #[test]
    fn anonymous_volumes_have_hex_names_and_the_label() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let store = VolumeStore::open(tmp.path());
        let v = store.create_anonymous(BTreeMap::new())?;
        assert_eq!(v.name.len(), 64);
        assert!(v.name.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(v.anonymous());
        let (unnamed, _) = store.create(CreateRequest::default())?;
        assert!(unnamed.anonymous());
        assert_ne!(unnamed.name, v.name);
        Ok(())
    }

    #[test]
    fn a_volume_whose_metadata_was_never_written_is_adopted() -> TestResult {
        let tmp = tempfile::tempdir()?;
        std::fs::create_dir_all(tmp.path().join("volumes/half/_data"))?;
        std::fs::create_dir_all(tmp.path().join("volumes/notavolume"))?;
        std::fs::create_dir_all(tmp.path().join("volumes/broken/_data"))?;
        std::fs::write(tmp.path().join("volumes/broken/volume.json"), "{not json")?;
        let store = VolumeStore::open(tmp.path());
        let names: Vec<String> = store.list().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["half"]);
        assert!(tmp.path().join("volumes/half/volume.json").is_file());
        Ok(())
    }
}
