//! The image store: content-addressed blobs, image records with their tags, and layers unpacked once.
//!
//! # Layout under the root
//! ```text
//! blobs/sha256/<hex>       manifests, configs, layers as pulled; a file here always hashes to its name
//! blobs/tmp/               blobs being written (BlobWriter); emptied by `open`
//! layers/<chain-hex>/diff  each layer unpacked once, shared by every image whose layer has that chain id
//! layers/.trash-*          layer dirs being deleted (renamed first, so a half-deleted layer is never used)
//! images.json              image records keyed by id, and tags; replaced atomically
//! ```
//!
//! # Guarantees
//! - A blob appears under `blobs/sha256/` only by `rename` after its sha256 was verified and the file fsynced:
//!   a `kill -9` leaves at most a temp file in `blobs/tmp/`, which the next `open` removes.
//! - `images.json` is written to a temp file, fsynced, renamed over the old one, and the directory fsynced. The
//!   in-memory table is replaced only after that succeeded, so memory never shows state that is not on disk.
//!   A records file that cannot be parsed anyway (disk damage) is moved aside and the images are recovered from
//!   the manifest blobs, untagged.
//!
//! # Decisions
//! An image's id is its config digest, as in Docker; records are keyed by id, and tags map `name:tag` to the id
//! (DESIGN.md's "name:tag -> manifest digest" is kept per record: each id carries the manifest it came with).
//! The same config can arrive in several manifests (gzip or zstd layers, a `docker save` without the original
//! manifest); keying by id shows it once, as `docker images` does. `repo_digests` keep `name@manifest-digest`.
//!
//! # Garbage and leases
//! `remove` and `prune` delete blobs that no image references. A pull or load writes blobs before the image that
//! references them exists, so it holds a [`Lease`] from before its first `has_blob` until `add_image` returned:
//! while any lease is held, blob deletion is deferred (to a later `prune`).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use oci_spec::image::{Descriptor, ImageConfiguration, ImageManifest};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::digest::Digest;
pub use super::error::StoreError;
use super::error::{Result, io_err};
use super::reference::Reference;
pub use super::unpack::chain_ids;
use super::unpack::{Compression, detect_compression, remove_temp_dirs, unpack_layer_atomic};

const STATE_FILE: &str = "images.json";
const STATE_VERSION: u32 = 1;
/// Manifests and configs above this size are refused (Docker's registry limit for manifests is 4 MiB).
pub const MAX_METADATA_BLOB: u64 = 8 << 20;

pub const MEDIA_OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const MEDIA_OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const MEDIA_OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const MEDIA_DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const MEDIA_DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const MEDIA_DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const MEDIA_DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

const LAYER_MEDIA_TYPES: &[&str] = &[
    MEDIA_OCI_LAYER,
    MEDIA_OCI_LAYER_GZIP,
    MEDIA_OCI_LAYER_ZSTD,
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    MEDIA_DOCKER_LAYER_GZIP,
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    // Docker 25+ `docker save` writes uncompressed layers with this (non-standard) type in its OCI layout.
    "application/vnd.docker.image.rootfs.diff.tar",
];

/// One layer of an image, as its manifest and config describe it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// Digest of the blob as stored (compressed, as pulled).
    pub digest: Digest,
    pub media_type: String,
    /// Size of the blob as stored.
    pub size: u64,
    /// Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry).
    pub diff_id: Digest,
    /// Chain id of the layers up to and including this one: the name of its unpacked dir under `layers/`.
    pub chain_id: Digest,
}

/// An image as the store knows it.
#[derive(Clone, Debug)]
pub struct Image {
    /// The config digest.
    pub id: Digest,
    pub manifest_digest: Digest,
    pub repo_tags: Vec<Reference>,
    /// `name@sha256:…` of the manifest, for images pulled (or pushed) by digest.
    pub repo_digests: Vec<String>,
    pub config: ImageConfiguration,
    pub layers: Vec<LayerInfo>,
    /// Bytes of the image's blobs: manifest, config and layers as stored.
    pub size: u64,
    /// The config's `created` timestamp.
    pub created: Option<String>,
}

/// One line of `docker rmi` output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub enum RemoveEvent {
    /// A tag or digest reference was removed, in its familiar form (`busybox:latest`).
    Untagged(String),
    /// An image (its id) or a layer (its chain id) was deleted.
    Deleted(Digest),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneReport {
    pub images_deleted: Vec<RemoveEvent>,
    pub space_reclaimed: u64,
}

/// For `system df`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DiskUsage {
    pub images: Vec<ImageUsage>,
    /// Bytes under `blobs/sha256`.
    pub blobs_size: u64,
    /// Bytes of the unpacked layers under `layers/` (hard links counted once).
    pub layers_size: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ImageUsage {
    pub id: Digest,
    pub repo_tags: Vec<String>,
    pub created: Option<String>,
    /// Bytes of the image's blobs (see [`Image::size`]).
    pub size: u64,
    /// Bytes of its layer blobs that other images use too.
    pub shared_size: u64,
    pub unique_size: u64,
    /// Bytes of its unpacked layers (those unpacked so far).
    pub unpacked_size: u64,
}

/// Defers blob garbage collection while held; see the module documentation.
#[derive(Debug)]
pub struct Lease {
    count: Arc<AtomicUsize>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The blob a [`BlobWriter`] committed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedBlob {
    pub digest: Digest,
    pub size: u64,
    /// False when the store already had this blob.
    pub created: bool,
}

/// Writes a blob into `blobs/tmp/`, hashing as it goes. [`BlobWriter::commit`] verifies, fsyncs and renames it
/// into place; dropping the writer without committing deletes the temp file.
pub struct BlobWriter {
    file: Option<BufWriter<File>>,
    tmp: PathBuf,
    blobs_dir: PathBuf,
    hasher: Sha256,
    size: u64,
    expected: Option<Digest>,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter").field("tmp", &self.tmp).field("size", &self.size).finish()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let file = self.file.as_mut().ok_or_else(|| io::Error::other("blob writer already finished"))?;
        let n = file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

impl BlobWriter {
    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Verifies, fsyncs and renames the blob into place; returns its digest.
    pub fn commit(self) -> Result<Digest> {
        self.commit_blob().map(|c| c.digest)
    }

    /// As [`BlobWriter::commit`], also telling the size and whether the blob is new to the store.
    pub fn commit_blob(mut self) -> Result<CommittedBlob> {
        let Some(buffered) = self.file.take() else {
            return Err(StoreError::Stream {
                context: format!("commit {}", self.tmp.display()),
                source: io::Error::other("blob writer already finished"),
            });
        };
        let file = buffered.into_inner().map_err(|e| StoreError::Io {
            op: "write",
            path: self.tmp.clone(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io_err("fsync", &self.tmp))?;
        drop(file);
        let digest = Digest::from_hasher(std::mem::take(&mut self.hasher));
        if let Some(expected) = &self.expected
            && *expected != digest
        {
            // The temp file is removed by Drop.
            return Err(StoreError::DigestMismatch { expected: expected.clone(), actual: digest });
        }
        let dest = self.blobs_dir.join(digest.hex());
        if dest.exists() {
            return Ok(CommittedBlob { digest, size: self.size, created: false });
        }
        fs::rename(&self.tmp, &dest).map_err(io_err("rename", &dest))?;
        fsync_dir(&self.blobs_dir)?;
        Ok(CommittedBlob { digest, size: self.size, created: true })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // After a successful rename the temp path no longer exists; otherwise this is an abandoned write.
        self.file = None;
        if let Err(e) = fs::remove_file(&self.tmp)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.tmp.display(), error = %e, "cannot remove temp blob");
        }
    }
}

/// An image record as `images.json` keeps it, and what the manifest and config say about it.
#[derive(Clone, Debug)]
struct Entry {
    manifest_digest: Digest,
    manifest_size: u64,
    config_size: u64,
    config: ImageConfiguration,
    layers: Vec<LayerInfo>,
    repo_digests: BTreeSet<String>,
}

impl Entry {
    fn size(&self) -> u64 {
        self.manifest_size + self.config_size + self.layers.iter().map(|l| l.size).sum::<u64>()
    }

    /// Every blob this image needs: manifest, config, layers.
    fn blobs<'a>(&'a self, id: &'a Digest) -> impl Iterator<Item = &'a Digest> {
        [&self.manifest_digest, id].into_iter().chain(self.layers.iter().map(|l| &l.digest))
    }
}

#[derive(Clone, Debug, Default)]
struct Table {
    images: BTreeMap<Digest, Entry>,
    tags: BTreeMap<Reference, Digest>,
}

impl Table {
    fn tags_of(&self, id: &Digest) -> Vec<Reference> {
        self.tags.iter().filter(|(_, d)| *d == id).map(|(r, _)| r.clone()).collect()
    }

    fn image(&self, id: &Digest) -> Option<Image> {
        let e = self.images.get(id)?;
        Some(Image {
            id: id.clone(),
            manifest_digest: e.manifest_digest.clone(),
            repo_tags: self.tags_of(id),
            repo_digests: e.repo_digests.iter().cloned().collect(),
            config: e.config.clone(),
            layers: e.layers.clone(),
            size: e.size(),
            created: e.config.created().clone(),
        })
    }

    fn referenced_blobs(&self) -> HashSet<Digest> {
        self.images.iter().flat_map(|(id, e)| e.blobs(id).cloned().collect::<Vec<_>>()).collect()
    }

    fn referenced_chains(&self) -> HashSet<Digest> {
        self.images.values().flat_map(|e| e.layers.iter().map(|l| l.chain_id.clone())).collect()
    }
}

#[derive(Serialize, Deserialize)]
struct StateFile {
    version: u32,
    images: BTreeMap<Digest, ImageRecord>,
    #[serde(default)]
    tags: BTreeMap<String, Digest>,
}

#[derive(Serialize, Deserialize)]
struct ImageRecord {
    manifest: Digest,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    repo_digests: Vec<String>,
}

/// How `find` resolved a name.
enum Found {
    Id(Digest),
    Tag(Reference, Digest),
    /// A `name@digest` reference recorded in the image's repo digests (the canonical `name@digest` string).
    RepoDigest(String, Digest),
}

impl Found {
    fn id(&self) -> &Digest {
        match self {
            Found::Id(d) | Found::Tag(_, d) | Found::RepoDigest(_, d) => d,
        }
    }
}

pub struct ImageStore {
    root: PathBuf,
    table: RwLock<Table>,
    chain_locks: Mutex<HashMap<Digest, Arc<Mutex<()>>>>,
    gc: Mutex<()>,
    leases: Arc<AtomicUsize>,
    layers_unpacked: AtomicU64,
}

impl std::fmt::Debug for ImageStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageStore").field("root", &self.root).finish_non_exhaustive()
    }
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name for a temp file, unique in this process and across restarts.
pub(crate) fn unique_suffix() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{}-{}", std::process::id(), TMP_COUNTER.fetch_add(1, Ordering::Relaxed), nanos)
}

pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("fsync", dir))
}

/// Writes `bytes` to `dir/name` atomically: temp file, fsync, rename, fsync of the directory.
pub(crate) fn atomic_write(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{}", unique_suffix()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(bytes).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        let dest = dir.join(name);
        fs::rename(&tmp, &dest).map_err(io_err("rename", &dest))?;
        fsync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn oci_digest(d: &oci_spec::image::Digest) -> std::result::Result<Digest, String> {
    d.to_string().parse::<Digest>().map_err(|e| e.to_string())
}

/// Whether a media type names an image index (OCI index or Docker manifest list).
pub fn is_index_media_type(m: &str) -> bool {
    m == MEDIA_OCI_INDEX || m == MEDIA_DOCKER_MANIFEST_LIST
}

/// Parses and checks an image manifest (OCI or Docker schema 2): a config and layers of known media types.
pub fn parse_manifest(digest: &Digest, bytes: &[u8]) -> Result<ImageManifest> {
    let invalid = |reason: String| StoreError::InvalidManifest { digest: digest.clone(), reason };
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
    let media_type = value.get("mediaType").and_then(|m| m.as_str()).unwrap_or("");
    if is_index_media_type(media_type) || value.get("manifests").is_some() {
        return Err(invalid("it is an image index (manifest list), not an image manifest".into()));
    }
    if !media_type.is_empty() && media_type != MEDIA_OCI_MANIFEST && media_type != MEDIA_DOCKER_MANIFEST {
        return Err(invalid(format!("unsupported media type {media_type}")));
    }
    let manifest: ImageManifest = serde_json::from_value(value).map_err(|e| invalid(e.to_string()))?;
    let config_type = manifest.config().media_type().to_string();
    if config_type != MEDIA_OCI_CONFIG && config_type != MEDIA_DOCKER_CONFIG {
        return Err(invalid(format!("config media type {config_type} is not an image config")));
    }
    for l in manifest.layers() {
        let t = l.media_type().to_string();
        if !LAYER_MEDIA_TYPES.contains(&t.as_str()) {
            return Err(invalid(format!("unsupported layer media type {t}")));
        }
    }
    Ok(manifest)
}

fn descriptor_digest(manifest: &Digest, d: &Descriptor) -> Result<Digest> {
    oci_digest(d.digest()).map_err(|reason| StoreError::InvalidManifest { digest: manifest.clone(), reason })
}

impl ImageStore {
    /// Opens (creating if needed) the store under `root`, removes stale temp files and reads `images.json`.
    pub fn open(root: &Path) -> Result<Self> {
        for dir in [root.to_path_buf(), root.join("blobs/sha256"), root.join("blobs/tmp"), root.join("layers")] {
            fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        let store = ImageStore {
            root: root.to_path_buf(),
            table: RwLock::new(Table::default()),
            chain_locks: Mutex::new(HashMap::new()),
            gc: Mutex::new(()),
            leases: Arc::new(AtomicUsize::new(0)),
            layers_unpacked: AtomicU64::new(0),
        };
        store.remove_stale_temp_files()?;
        let table = store.read_state()?;
        *store.table.write().unwrap_or_else(PoisonError::into_inner) = table;
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    /// The unpacked dir of a layer stack (`layers/<chain-hex>/diff`); it exists once unpacked.
    pub fn layer_dir(&self, chain_id: &Digest) -> PathBuf {
        self.layers_dir().join(chain_id.hex()).join("diff")
    }

    fn remove_stale_temp_files(&self) -> Result<()> {
        let tmp = self.root.join("blobs/tmp");
        for entry in fs::read_dir(&tmp).map_err(io_err("read", &tmp))? {
            let path = entry.map_err(io_err("read", &tmp))?.path();
            tracing::info!(path = %path.display(), "removing a blob left half-written");
            fs::remove_file(&path).map_err(io_err("remove", &path))?;
        }
        let prefix = format!(".{STATE_FILE}.tmp-");
        for entry in fs::read_dir(&self.root).map_err(io_err("read", &self.root))? {
            let entry = entry.map_err(io_err("read", &self.root))?;
            if entry.file_name().to_string_lossy().starts_with(&prefix) {
                let path = entry.path();
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
        let layers = self.layers_dir();
        remove_temp_dirs(&layers).map_err(io_err("clean", &layers))?;
        for entry in fs::read_dir(&layers).map_err(io_err("read", &layers))? {
            let entry = entry.map_err(io_err("read", &layers))?;
            if entry.file_name().to_string_lossy().starts_with(".trash-") {
                remove_tree(&entry.path())?;
            }
        }
        Ok(())
    }

    fn read_state(&self) -> Result<Table> {
        let path = self.root.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Table::default()),
            Err(e) => return Err(StoreError::Io { op: "read", path, source: e }),
        };
        let file: StateFile = match serde_json::from_slice(&bytes) {
            Ok(f) => f,
            Err(e) => return self.recover_state(&path, &e.to_string()),
        };
        if file.version != STATE_VERSION {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("version {} is not the supported {STATE_VERSION}", file.version),
            });
        }
        let mut table = Table::default();
        for (id, record) in file.images {
            match self.load_entry(&record.manifest) {
                Ok((config_id, mut entry)) if config_id == id => {
                    entry.repo_digests = record.repo_digests.into_iter().collect();
                    table.images.insert(id, entry);
                }
                Ok((config_id, _)) => {
                    tracing::error!(%id, %config_id, "dropping an image record whose manifest names another config")
                }
                Err(e) => tracing::error!(%id, error = %e, "dropping an image record whose blobs are unreadable"),
            }
        }
        for (name, id) in file.tags {
            match name.parse::<Reference>() {
                Ok(r) if table.images.contains_key(&id) => {
                    table.tags.insert(r, id);
                }
                _ => tracing::error!(tag = %name, %id, "dropping a tag of an unknown image"),
            }
        }
        Ok(table)
    }

    /// `images.json` is unreadable (it is only ever replaced by rename, so this is damage from outside): move it
    /// aside and recover every image whose manifest, config and blobs are present, untagged.
    fn recover_state(&self, path: &Path, reason: &str) -> Result<Table> {
        let aside = self.root.join(format!("{STATE_FILE}.corrupt-{}", unique_suffix()));
        tracing::error!(path = %path.display(), %reason, moved_to = %aside.display(),
            "image records unreadable; recovering images from manifests, untagged");
        fs::rename(path, &aside).map_err(io_err("rename", path))?;
        let mut table = Table::default();
        let blobs = self.blobs_dir();
        for entry in fs::read_dir(&blobs).map_err(io_err("read", &blobs))? {
            let entry = entry.map_err(io_err("read", &blobs))?;
            let Ok(digest) = format!("sha256:{}", entry.file_name().to_string_lossy()).parse::<Digest>() else {
                continue;
            };
            let small = entry.metadata().map(|m| m.len() <= MAX_METADATA_BLOB).unwrap_or(false);
            if !small || !self.looks_like_manifest(&digest) {
                continue;
            }
            if let Ok((id, e)) = self.load_entry(&digest) {
                table.images.entry(id).or_insert(e);
            }
        }
        self.persist(&table)?;
        Ok(table)
    }

    fn looks_like_manifest(&self, d: &Digest) -> bool {
        let mut head = [0u8; 1];
        File::open(self.blob_path(d)).and_then(|mut f| f.read_exact(&mut head)).is_ok() && head[0] == b'{'
    }

    fn persist(&self, table: &Table) -> Result<()> {
        let file = StateFile {
            version: STATE_VERSION,
            images: table
                .images
                .iter()
                .map(|(id, e)| {
                    let record = ImageRecord {
                        manifest: e.manifest_digest.clone(),
                        repo_digests: e.repo_digests.iter().cloned().collect(),
                    };
                    (id.clone(), record)
                })
                .collect(),
            tags: table.tags.iter().map(|(r, id)| (r.to_string(), id.clone())).collect(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(|e| StoreError::Corrupt {
            path: self.root.join(STATE_FILE),
            reason: format!("cannot serialize: {e}"),
        })?;
        atomic_write(&self.root, STATE_FILE, &bytes)
    }

    /// Applies `change` to a copy of the table, persists the copy, then makes it current.
    fn update<T>(&self, change: impl FnOnce(&mut Table) -> Result<T>) -> Result<T> {
        let mut guard = self.table.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = guard.clone();
        let out = change(&mut next)?;
        self.persist(&next)?;
        *guard = next;
        Ok(out)
    }

    fn read_table(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }

    // ---- blobs ----

    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }

    /// The size of a stored blob.
    pub fn blob_size(&self, d: &Digest) -> Result<u64> {
        match fs::metadata(self.blob_path(d)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StoreError::BlobNotFound(d.clone())),
            Err(e) => Err(StoreError::Io { op: "stat", path: self.blob_path(d), source: e }),
        }
    }

    /// Opens a blob for streaming (layers).
    pub fn open_blob(&self, d: &Digest) -> Result<File> {
        let path = self.blob_path(d);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobNotFound(d.clone()),
            _ => StoreError::Io { op: "open", path, source: e },
        })
    }

    /// Reads a small blob (a manifest or config, at most [`MAX_METADATA_BLOB`]) and checks its digest.
    pub fn read_blob(&self, d: &Digest) -> Result<Vec<u8>> {
        let path = self.blob_path(d);
        let mut bytes = Vec::new();
        self.open_blob(d)?.take(MAX_METADATA_BLOB + 1).read_to_end(&mut bytes).map_err(io_err("read", &path))?;
        if bytes.len() as u64 > MAX_METADATA_BLOB {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("larger than {MAX_METADATA_BLOB} bytes, too large for a manifest or config"),
            });
        }
        let actual = Digest::of(&bytes);
        if actual != *d {
            return Err(StoreError::Corrupt { path, reason: format!("content hashes to {actual}") });
        }
        Ok(bytes)
    }

    pub fn write_blob(&self, bytes: &[u8]) -> Result<Digest> {
        let mut w = self.blob_writer(None)?;
        w.write_all(bytes).map_err(io_err("write", &w.tmp))?;
        w.commit()
    }

    /// A streaming writer that hashes as it goes; `commit()` verifies against `expected` (when given), fsyncs and
    /// renames into place; dropping it without commit deletes the temp file.
    pub fn blob_writer(&self, expected: Option<&Digest>) -> Result<BlobWriter> {
        let tmp = self.root.join("blobs/tmp").join(unique_suffix());
        let file = fs::OpenOptions::new().write(true).create_new(true).open(&tmp).map_err(io_err("create", &tmp))?;
        Ok(BlobWriter {
            file: Some(BufWriter::with_capacity(256 << 10, file)),
            tmp,
            blobs_dir: self.blobs_dir(),
            hasher: Sha256::new(),
            size: 0,
            expected: expected.cloned(),
        })
    }

    /// Defers blob garbage collection until the lease is dropped. Take it before checking `has_blob` for an image
    /// about to be written, and drop it after `add_image` returned.
    pub fn lease(&self) -> Lease {
        let _gc = lock(&self.gc);
        self.leases.fetch_add(1, Ordering::SeqCst);
        Lease { count: Arc::clone(&self.leases) }
    }

    // ---- images ----

    /// Reads a manifest and its config from the blobs; returns the image id and its entry.
    fn load_entry(&self, manifest_digest: &Digest) -> Result<(Digest, Entry)> {
        let manifest_bytes = self.read_blob(manifest_digest)?;
        let manifest = parse_manifest(manifest_digest, &manifest_bytes)?;
        let id = descriptor_digest(manifest_digest, manifest.config())?;
        let config_bytes = self.read_blob(&id)?;
        if manifest.config().size() != config_bytes.len() as u64 {
            return Err(StoreError::SizeMismatch {
                digest: id,
                expected: manifest.config().size(),
                actual: config_bytes.len() as u64,
            });
        }
        let invalid = |reason: String| StoreError::InvalidConfig { digest: id.clone(), reason };
        let config: ImageConfiguration = serde_json::from_slice(&config_bytes).map_err(|e| invalid(e.to_string()))?;
        let diff_ids = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| d.parse::<Digest>().map_err(|e| invalid(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        if diff_ids.len() != manifest.layers().len() {
            return Err(invalid(format!(
                "{} diff_ids for the {} layers of manifest {manifest_digest}",
                diff_ids.len(),
                manifest.layers().len()
            )));
        }
        let chains = chain_ids(&diff_ids);
        let layers = manifest
            .layers()
            .iter()
            .zip(diff_ids.into_iter().zip(chains))
            .map(|(desc, (diff_id, chain_id))| {
                Ok(LayerInfo {
                    digest: descriptor_digest(manifest_digest, desc)?,
                    media_type: desc.media_type().to_string(),
                    size: desc.size(),
                    diff_id,
                    chain_id,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let entry = Entry {
            manifest_digest: manifest_digest.clone(),
            manifest_size: manifest_bytes.len() as u64,
            config_size: config_bytes.len() as u64,
            config,
            layers,
            repo_digests: BTreeSet::new(),
        };
        Ok((id, entry))
    }

    /// Records the image of a manifest (its manifest and config blobs must be present; layers may come later,
    /// before `ensure_unpacked`) and tags it with `reference`: a tag moves to this image; a `name@digest`
    /// reference, which must pin this manifest, is recorded as a repo digest.
    pub fn add_image(&self, manifest_digest: &Digest, reference: Option<&Reference>) -> Result<Image> {
        let (id, entry) = self.load_entry(manifest_digest)?;
        let keep_existing_manifest = |e: &Entry| self.has_blob(&e.manifest_digest);
        self.update(|t| {
            match t.images.get_mut(&id) {
                Some(existing) if keep_existing_manifest(existing) => {}
                Some(existing) => {
                    let repo_digests = std::mem::take(&mut existing.repo_digests);
                    *existing = Entry { repo_digests, ..entry };
                }
                None => {
                    t.images.insert(id.clone(), entry);
                }
            }
            if let Some(r) = reference {
                add_reference(t, &id, manifest_digest, r)?;
            }
            Ok(())
        })?;
        tracing::debug!(%id, manifest = %manifest_digest, reference = ?reference.map(|r| r.to_string()), "image added");
        self.get(&id)
    }

    fn get(&self, id: &Digest) -> Result<Image> {
        self.read_table().image(id).ok_or_else(|| StoreError::ImageNotFound(id.to_string()))
    }

    /// Tags the image `source` (any name `resolve` accepts) as `target`, moving the tag from another image.
    pub fn tag(&self, source: &str, target: &Reference) -> Result<()> {
        if target.digest.is_some() {
            return Err(StoreError::TagWithDigest(target.to_string()));
        }
        self.update(|t| {
            let id = find(t, source)?.id().clone();
            t.tags.insert(target.clone(), id);
            Ok(())
        })
    }

    /// Finds an image by `busybox`, `busybox:1`, `localhost:5000/app:1`, `name@sha256:…`, its full id
    /// (`sha256:…`) or a unique prefix of its id's hex (with or without `sha256:`), as Docker does: names first.
    pub fn resolve(&self, name_or_id: &str) -> Result<Image> {
        let t = self.read_table();
        let found = find(&t, name_or_id)?;
        t.image(found.id()).ok_or_else(|| StoreError::ImageNotFound(name_or_id.to_string()))
    }

    /// All images, newest first.
    pub fn list(&self) -> Vec<Image> {
        let t = self.read_table();
        let mut images: Vec<Image> = t.images.keys().filter_map(|id| t.image(id)).collect();
        images.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
        images
    }

    /// Removes a tag or an image, as `docker rmi` does:
    /// - by name, an image that keeps other tags or digests only loses that name; when it was its last one, the
    ///   image is deleted too;
    /// - by id, its references are removed with it; an image tagged in several repositories needs `force`;
    /// - an image that `in_use` says a container uses is refused unless `force`; with `force` its names are
    ///   removed but the image itself is kept (dangling) while a container needs its layers.
    ///
    /// Returns the Untagged/Deleted lines; deleted images release their blobs and unpacked layers that no other
    /// image uses (their chain ids are listed as Deleted). `in_use` is called without any store lock held.
    pub fn remove(&self, name_or_id: &str, force: bool, in_use: &dyn Fn(&Digest) -> bool) -> Result<Vec<RemoveEvent>> {
        // `in_use` is asked before the table is locked (it may lock the daemon's containers); should the name
        // meet another image by the time the lock is taken, that image counts as used.
        let id = find(&self.read_table(), name_or_id)?.id().clone();
        let used = in_use(&id);
        let known = |d: &Digest| if *d == id { used } else { true };
        let (mut events, deleted) = self.update(|t| remove_in_table(t, name_or_id, force, &known))?;
        if let Some((id, entry)) = deleted {
            tracing::info!(%id, "image deleted");
            let t = self.read_table();
            // Docker lists the layers an image released, top-most first, whether unpacked or not.
            let used = t.referenced_chains();
            let mut released = Vec::new();
            for l in entry.layers.iter().rev() {
                if !used.contains(&l.chain_id) && !released.contains(&l.chain_id) {
                    released.push(l.chain_id.clone());
                }
            }
            self.collect_layers(&t, Some(&released))?;
            self.collect_blobs(&t, Some(&entry.blobs(&id).cloned().collect::<Vec<_>>()), 0)?;
            events.extend(released.into_iter().map(RemoveEvent::Deleted));
        }
        Ok(events)
    }

    /// Removes dangling images (no tags and no digests; every image no container uses when `all`), then the blobs
    /// and unpacked layers that no image references.
    pub fn prune(&self, all: bool, in_use: &dyn Fn(&Digest) -> bool) -> Result<PruneReport> {
        // `in_use` is asked before the table is locked; images added meanwhile are left alone.
        let ids: Vec<Digest> = self.read_table().images.keys().cloned().collect();
        let unused: HashSet<Digest> = ids.into_iter().filter(|id| !in_use(id)).collect();
        let removed = self.update(|t| {
            let victims: Vec<Digest> = t
                .images
                .iter()
                .filter(|(id, e)| {
                    unused.contains(*id) && (all || (e.repo_digests.is_empty() && !t.tags.values().any(|d| d == *id)))
                })
                .map(|(id, _)| id.clone())
                .collect();
            let mut events = Vec::new();
            for id in victims {
                for r in t.tags_of(&id) {
                    t.tags.remove(&r);
                    events.push(RemoveEvent::Untagged(r.familiar()));
                }
                if let Some(e) = t.images.remove(&id) {
                    for d in &e.repo_digests {
                        events.push(RemoveEvent::Untagged(familiar_repo_digest(d)));
                    }
                    events.push(RemoveEvent::Deleted(id));
                }
            }
            Ok(events)
        })?;
        let t = self.read_table();
        let mut report = PruneReport { images_deleted: removed, space_reclaimed: 0 };
        let released = self.collect_layers(&t, None)?;
        report.space_reclaimed += released.iter().map(|(_, size)| size).sum::<u64>();
        report.images_deleted.extend(released.into_iter().map(|(c, _)| RemoveEvent::Deleted(c)));
        report.space_reclaimed += self.collect_blobs(&t, None, 0)?;
        Ok(report)
    }

    /// Deletes blobs no image references: `candidates`, or every blob when None. Deferred while more than
    /// `own_leases` leases are held (a pull or load in progress may need them). Returns the bytes freed.
    fn collect_blobs(&self, t: &Table, candidates: Option<&[Digest]>, own_leases: usize) -> Result<u64> {
        let _gc = lock(&self.gc);
        if self.leases.load(Ordering::SeqCst) > own_leases {
            tracing::debug!("blob collection deferred: a pull or load holds a lease");
            return Ok(0);
        }
        let used = t.referenced_blobs();
        let all: Vec<Digest>;
        let candidates = match candidates {
            Some(c) => c,
            None => {
                let dir = self.blobs_dir();
                all = fs::read_dir(&dir)
                    .map_err(io_err("read", &dir))?
                    .filter_map(|e| e.ok())
                    .filter_map(|e| format!("sha256:{}", e.file_name().to_string_lossy()).parse().ok())
                    .collect();
                &all
            }
        };
        let mut freed = 0;
        for d in candidates {
            if used.contains(d) {
                continue;
            }
            let path = self.blob_path(d);
            let size = fs::symlink_metadata(&path).map(|m| m.len()).unwrap_or(0);
            match fs::remove_file(&path) {
                Ok(()) => freed += size,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::Io { op: "remove", path, source: e }),
            }
        }
        Ok(freed)
    }

    /// Deletes the given blobs if no image references them, for a failed pull or load cleaning up what it wrote:
    /// the caller holds one lease; when others are held too, nothing is deleted (a later `prune` will).
    pub fn discard_blobs(&self, _lease: &Lease, digests: &[Digest]) -> Result<()> {
        let t = self.read_table();
        self.collect_blobs(&t, Some(digests), 1).map(|_| ())
    }

    /// Deletes unpacked layer dirs no image references: `candidates` (chain ids), or all when None.
    /// Returns the chain ids deleted with their sizes.
    fn collect_layers(&self, t: &Table, candidates: Option<&[Digest]>) -> Result<Vec<(Digest, u64)>> {
        let used = t.referenced_chains();
        let dir = self.layers_dir();
        let all: Vec<Digest>;
        let candidates = match candidates {
            Some(c) => c,
            None => {
                all = fs::read_dir(&dir)
                    .map_err(io_err("read", &dir))?
                    .filter_map(|e| e.ok())
                    .filter_map(|e| format!("sha256:{}", e.file_name().to_string_lossy()).parse().ok())
                    .collect();
                &all
            }
        };
        let mut out = Vec::new();
        for chain in candidates {
            if used.contains(chain) {
                continue;
            }
            let lock = self.chain_lock(chain);
            let _held = lock.lock().unwrap_or_else(PoisonError::into_inner);
            let path = dir.join(chain.hex());
            if !path.exists() {
                continue;
            }
            let size = tree_size(&path, &mut HashSet::new());
            let trash = dir.join(format!(".trash-{}-{}", chain.hex(), unique_suffix()));
            fs::rename(&path, &trash).map_err(io_err("rename", &path))?;
            remove_tree(&trash)?;
            out.push((chain.clone(), size));
        }
        Ok(out)
    }

    fn chain_lock(&self, chain: &Digest) -> Arc<Mutex<()>> {
        Arc::clone(lock(&self.chain_locks).entry(chain.clone()).or_default())
    }

    /// Unpacks (once) every layer of the image into `layers/<chain-hex>/diff` and returns those dirs, top-most
    /// first, as overlayfs wants its lowerdirs. Layers already unpacked (by this image or another with the same
    /// chain) are reused. Safe to call from many threads: one unpack per chain id at a time, the others wait and
    /// reuse its result. Each layer's uncompressed stream must hash to the config's diff id; the check happens at
    /// the end of the stream, before the unpacked dir is moved into place, so a bad layer leaves nothing behind.
    pub fn ensure_unpacked(&self, image: &Image) -> Result<Vec<PathBuf>> {
        let mut dirs = Vec::with_capacity(image.layers.len());
        for (index, layer) in image.layers.iter().enumerate() {
            let diff = self.layer_dir(&layer.chain_id);
            if !diff.is_dir() {
                let lock = self.chain_lock(&layer.chain_id);
                let _held = lock.lock().unwrap_or_else(PoisonError::into_inner);
                if !diff.is_dir() {
                    self.unpack(image, index, layer)?;
                }
            }
            dirs.push(diff);
        }
        dirs.reverse();
        Ok(dirs)
    }

    fn unpack(&self, image: &Image, index: usize, layer: &LayerInfo) -> Result<()> {
        let name = image.repo_tags.first().map_or_else(|| image.id.short().to_string(), Reference::familiar);
        let unpack_err =
            |reason: String| StoreError::Unpack { image: name.clone(), layer: layer.digest.clone(), reason };
        let path = self.blob_path(&layer.digest);
        let mut blob = io::BufReader::with_capacity(256 << 10, self.open_blob(&layer.digest)?);
        let head = blob.fill_buf().map_err(io_err("read", &path))?;
        let plain: Box<dyn Read> = match detect_compression(head) {
            Compression::None => Box::new(blob),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
            Compression::Zstd => {
                Box::new(zstd::stream::read::Decoder::with_buffer(blob).map_err(io_err("read", &path))?)
            }
        };
        let mut verifying =
            VerifyDiffId { inner: plain, hasher: Sha256::new(), expected: &layer.diff_id, actual: None };
        let started = std::time::Instant::now();
        let result = unpack_layer_atomic(&mut verifying, &self.layers_dir(), &layer.chain_id);
        if let Some(actual) = verifying.actual.filter(|a| *a != layer.diff_id) {
            return Err(StoreError::DiffIdMismatch {
                image: name,
                index,
                layer: layer.digest.clone(),
                expected: layer.diff_id.to_string(),
                actual,
            });
        }
        result.map_err(|e| unpack_err(e.to_string()))?;
        self.layers_unpacked.fetch_add(1, Ordering::SeqCst);
        tracing::info!(chain_id = %layer.chain_id, layer = %layer.digest, elapsed = ?started.elapsed(), "layer unpacked");
        Ok(())
    }

    /// How many layers this store has unpacked since it was opened.
    pub fn layers_unpacked(&self) -> u64 {
        self.layers_unpacked.load(Ordering::SeqCst)
    }

    /// For `system df`: every image with its size, the part of it shared with other images, and the bytes on disk.
    pub fn disk_usage(&self) -> DiskUsage {
        let t = self.read_table();
        let mut users: HashMap<&Digest, usize> = HashMap::new();
        for e in t.images.values() {
            let mut own: HashSet<&Digest> = HashSet::new();
            for l in &e.layers {
                if own.insert(&l.digest) {
                    *users.entry(&l.digest).or_default() += 1;
                }
            }
        }
        let mut chain_sizes: HashMap<Digest, u64> = HashMap::new();
        let mut images = Vec::new();
        for (id, e) in &t.images {
            let mut seen = HashSet::new();
            let shared_size: u64 = e
                .layers
                .iter()
                .filter(|l| seen.insert(&l.digest) && users.get(&l.digest).copied().unwrap_or(0) > 1)
                .map(|l| l.size)
                .sum();
            let unpacked_size = e
                .layers
                .iter()
                .map(|l| {
                    *chain_sizes
                        .entry(l.chain_id.clone())
                        .or_insert_with(|| tree_size(&self.layers_dir().join(l.chain_id.hex()), &mut HashSet::new()))
                })
                .sum();
            let size = e.size();
            images.push(ImageUsage {
                id: id.clone(),
                repo_tags: t.tags_of(id).iter().map(Reference::familiar).collect(),
                created: e.config.created().clone(),
                size,
                shared_size,
                unique_size: size.saturating_sub(shared_size),
                unpacked_size,
            });
        }
        DiskUsage {
            images,
            blobs_size: tree_size(&self.blobs_dir(), &mut HashSet::new()),
            layers_size: tree_size(&self.layers_dir(), &mut HashSet::new()),
        }
    }
}

/// Hashes the uncompressed layer as the unpacker reads it, and fails the read at the end of the stream when the
/// hash is not the expected diff id, so that `unpack_layer_atomic` discards its temp dir instead of committing it.
struct VerifyDiffId<'a, R> {
    inner: R,
    hasher: Sha256,
    expected: &'a Digest,
    actual: Option<Digest>,
}

impl<R: Read> Read for VerifyDiffId<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let actual = self.actual.get_or_insert_with(|| Digest::from_hasher(std::mem::take(&mut self.hasher)));
            if actual != self.expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("the layer's diff id is {actual}, expected {}", self.expected),
                ));
            }
        }
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

fn familiar_repo_digest(s: &str) -> String {
    s.parse::<Reference>().map(|r| r.familiar()).unwrap_or_else(|_| s.to_string())
}

fn add_reference(t: &mut Table, id: &Digest, manifest_digest: &Digest, r: &Reference) -> Result<()> {
    match &r.digest {
        Some(d) if d != manifest_digest => {
            Err(StoreError::DigestMismatch { expected: d.clone(), actual: manifest_digest.clone() })
        }
        Some(d) => {
            if let Some(e) = t.images.get_mut(id) {
                e.repo_digests.insert(format!("{}@{d}", r.name()));
            }
            Ok(())
        }
        None => {
            t.tags.insert(r.clone(), id.clone());
            Ok(())
        }
    }
}

fn is_hex_prefix(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn find(t: &Table, s: &str) -> Result<Found> {
    let not_found = || StoreError::ImageNotFound(s.to_string());
    if let Ok(d) = s.parse::<Digest>() {
        return if t.images.contains_key(&d) { Ok(Found::Id(d)) } else { Err(not_found()) };
    }
    if let Ok(r) = s.parse::<Reference>() {
        match &r.digest {
            Some(d) => {
                let canonical = format!("{}@{d}", r.name());
                if let Some((id, _)) = t.images.iter().find(|(_, e)| e.repo_digests.contains(&canonical)) {
                    return Ok(Found::RepoDigest(canonical, id.clone()));
                }
                // An image of this repository whose manifest is that digest, though not recorded by digest.
                let name = r.name();
                let same_repo = |id: &Digest| t.tags.iter().any(|(tag, d)| d == id && tag.name() == name);
                if let Some((id, _)) = t.images.iter().find(|(id, e)| e.manifest_digest == *d && same_repo(id)) {
                    return Ok(Found::Id(id.clone()));
                }
            }
            None => {
                if let Some(id) = t.tags.get(&r) {
                    return Ok(Found::Tag(r, id.clone()));
                }
            }
        }
    }
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    if is_hex_prefix(hex) {
        let mut matches = t.images.keys().filter(|d| d.hex().starts_with(hex));
        return match (matches.next(), matches.next()) {
            (Some(d), None) => Ok(Found::Id(d.clone())),
            (Some(_), Some(_)) => Err(StoreError::AmbiguousId(s.to_string())),
            (None, _) => Err(not_found()),
        };
    }
    Err(not_found())
}

/// The references of an image: (name without tag or digest, is a digest reference).
fn references_of(t: &Table, id: &Digest) -> Vec<(String, bool)> {
    let mut refs: Vec<(String, bool)> = t.tags_of(id).iter().map(|r| (r.name(), false)).collect();
    if let Some(e) = t.images.get(id) {
        for d in &e.repo_digests {
            refs.push((d.split_once('@').map_or(d.as_str(), |(n, _)| n).to_string(), true));
        }
    }
    refs
}

/// Docker's `isSingleReference`: at most one tag, and every digest reference in that tag's repository.
fn is_single_reference(refs: &[(String, bool)]) -> bool {
    if refs.len() <= 1 {
        return refs.len() == 1;
    }
    let tags: Vec<&String> = refs.iter().filter(|(_, digest)| !digest).map(|(n, _)| n).collect();
    if tags.len() > 1 {
        return false;
    }
    let digest_names: HashSet<&String> = refs.iter().filter(|(_, digest)| *digest).map(|(n, _)| n).collect();
    let single = tags.first().copied().unwrap_or(&refs[0].0);
    digest_names.len() == 1 && digest_names.contains(single)
}

/// Untags every reference of `id`, recording the events.
fn untag_all(t: &mut Table, id: &Digest, events: &mut Vec<RemoveEvent>) {
    for r in t.tags_of(id) {
        t.tags.remove(&r);
        events.push(RemoveEvent::Untagged(r.familiar()));
    }
    if let Some(e) = t.images.get_mut(id) {
        for d in std::mem::take(&mut e.repo_digests) {
            events.push(RemoveEvent::Untagged(familiar_repo_digest(&d)));
        }
    }
}

type Removal = (Vec<RemoveEvent>, Option<(Digest, Entry)>);

fn remove_in_table(t: &mut Table, name_or_id: &str, force: bool, in_use: &dyn Fn(&Digest) -> bool) -> Result<Removal> {
    let found = find(t, name_or_id)?;
    let id = found.id().clone();
    let refs = references_of(t, &id);
    let used = in_use(&id);
    let mut events = Vec::new();
    match found {
        Found::Tag(..) | Found::RepoDigest(..) => {
            if !force && used && is_single_reference(&refs) {
                return Err(StoreError::InUse { reference: name_or_id.to_string(), id: id.short().to_string() });
            }
            let name = match &found {
                Found::Tag(r, _) => {
                    t.tags.remove(r);
                    events.push(RemoveEvent::Untagged(r.familiar()));
                    Some(r.name())
                }
                Found::RepoDigest(canonical, _) => {
                    if let Some(e) = t.images.get_mut(&id) {
                        e.repo_digests.remove(canonical);
                    }
                    events.push(RemoveEvent::Untagged(familiar_repo_digest(canonical)));
                    None
                }
                Found::Id(_) => None,
            };
            // A removed tag takes the digest references of its repository along when no other tag of it is left.
            if let Some(name) = name
                && !t.tags_of(&id).iter().any(|r| r.name() == name)
                && let Some(e) = t.images.get_mut(&id)
            {
                let prefix = format!("{name}@");
                let gone: Vec<String> = e.repo_digests.iter().filter(|d| d.starts_with(&prefix)).cloned().collect();
                for d in gone {
                    e.repo_digests.remove(&d);
                    events.push(RemoveEvent::Untagged(familiar_repo_digest(&d)));
                }
            }
            let remaining = !t.tags_of(&id).is_empty() || t.images.get(&id).is_some_and(|e| !e.repo_digests.is_empty());
            if remaining || used {
                return Ok((events, None));
            }
        }
        Found::Id(_) => {
            if !force && refs.len() > 1 && !is_single_reference(&refs) {
                return Err(StoreError::MultipleRepositories { id: id.short().to_string() });
            }
            if used && !force {
                return Err(StoreError::InUse { reference: name_or_id.to_string(), id: id.short().to_string() });
            }
            untag_all(t, &id, &mut events);
            if used {
                if events.is_empty() {
                    return Err(StoreError::InUse { reference: name_or_id.to_string(), id: id.short().to_string() });
                }
                return Ok((events, None));
            }
        }
    }
    let entry = t.images.remove(&id);
    events.push(RemoveEvent::Deleted(id.clone()));
    Ok((events, entry.map(|e| (id, e))))
}

/// Bytes used by the files of a tree (allocated blocks; hard links counted once, across calls sharing `seen`).
fn tree_size(path: &Path, seen: &mut HashSet<(u64, u64)>) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else { return 0 };
    if meta.nlink() > 1 && !meta.is_dir() && !seen.insert((meta.dev(), meta.ino())) {
        return 0;
    }
    let own = meta.blocks() * 512;
    if !meta.is_dir() {
        return own;
    }
    let Ok(entries) = fs::read_dir(path) else { return own };
    own + entries.filter_map(|e| e.ok()).map(|e| tree_size(&e.path(), seen)).sum::<u64>()
}

/// Removes a directory tree, making read-only directories writable first if needed.
pub(crate) fn remove_tree(path: &Path) -> Result<()> {
    match fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            make_writable(path);
            fs::remove_dir_all(path).map_err(io_err("remove", path))
        }
        Err(e) => Err(StoreError::Io { op: "remove", path: path.to_path_buf(), source: e }),
    }
}

fn make_writable(path: &Path) {
    let Ok(meta) = fs::symlink_metadata(path) else { return };
    if !meta.is_dir() {
        return;
    }
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o700));
    if let Ok(entries) = fs::read_dir(path) {
        for e in entries.filter_map(|e| e.ok()) {
            make_writable(&e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_reference_rules() {
        let tag = |n: &str| (n.to_string(), false);
        let dig = |n: &str| (n.to_string(), true);
        assert!(!is_single_reference(&[]));
        assert!(is_single_reference(&[tag("a")]));
        assert!(is_single_reference(&[tag("a"), dig("a")]));
        assert!(!is_single_reference(&[tag("a"), tag("a")]));
        assert!(!is_single_reference(&[tag("a"), dig("b")]));
        assert!(is_single_reference(&[dig("a"), dig("a")]));
    }
}
