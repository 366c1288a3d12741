//! `berth image save` / `load`: image archives in the docker-save format and the OCI image layout, both at once.
//!
//! # What `save` writes
//! The layout Docker 25+ writes, which both `docker load` (classic store: `manifest.json`) and containerd-based
//! loaders (`index.json`) read:
//! ```text
//! blobs/sha256/<hex>   every config, layer (as stored: compressed) and manifest, once
//! index.json           OCI index: one entry per tag (io.containerd.image.name, org.opencontainers.image.ref.name)
//! manifest.json        docker-save: [{"Config": "blobs/sha256/…", "RepoTags": […], "Layers": ["blobs/sha256/…"]}]
//! oci-layout           {"imageLayoutVersion": "1.0.0"}
//! ```
//! `docker load` decompresses each `Layers` file itself, so layers are not re-encoded.
//!
//! # What `load` reads
//! Either format from a stream (plain, gzip or zstd), in any entry order: older docker-save archives
//! (`<id>/layer.tar`, `<config-hex>.json`, layer symlinks), Docker 25+ archives, and OCI layouts with nested
//! indexes (the manifest for this host's platform is taken from a multi-platform index). When an archive has both,
//! `index.json` is used (it keeps the manifest digests) and `manifest.json` adds its tags.
//!
//! # Guarantees
//! - An archive is untrusted: entry paths and link targets that are absolute or climb out with `..` are refused,
//!   and nothing is ever written at a path taken from it: every file is streamed into a blob (temp file, never
//!   whole in memory; only `index.json`/`manifest.json`, at most 8 MiB, are held), named by its own digest.
//! - A file named `blobs/sha256/<hex>` must hash to `<hex>`; every layer's uncompressed stream (hashed while it
//!   is stored) must match its config's diff id; descriptor sizes must match.
//! - Images are added only after every one was checked. On any error, the blobs this load created are deleted
//!   (unless another pull or load holds a lease; then a later prune does it); after success, the files the
//!   images do not use (legacy `json`/`VERSION` files, other platforms' blobs) are deleted likewise.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};

use oci_spec::image::{Descriptor, ImageIndex};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::digest::Digest;
use super::error::{Result, StoreError};
use super::import::{HashingWriter, host_architecture, to_json_bytes};
use super::reference::Reference;
use super::store::{
    Image, ImageStore, Lease, MAX_METADATA_BLOB, MEDIA_OCI_CONFIG, MEDIA_OCI_INDEX, MEDIA_OCI_LAYER,
    MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_ZSTD, MEDIA_OCI_MANIFEST, is_index_media_type, parse_manifest,
};
use super::unpack::{Compression, detect_compression};

const ANNOTATION_CONTAINERD_NAME: &str = "io.containerd.image.name";
const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";
/// How many symlinks in a row an archive path may go through.
const MAX_LINK_HOPS: usize = 16;

/// One line of `docker load` output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    Tag(Reference),
    /// An image loaded without a name.
    Id(Digest),
}

impl fmt::Display for Loaded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loaded::Tag(r) => write!(f, "Loaded image: {}", r.familiar()),
            Loaded::Id(d) => write!(f, "Loaded image ID: {d}"),
        }
    }
}

/// An entry of a docker-save `manifest.json`.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DockerManifest {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    #[serde(default)]
    layers: Vec<String>,
}

fn archive_err(reason: impl Into<String>) -> StoreError {
    StoreError::Archive(reason.into())
}

// ---- save ----

/// Writes the images named by `names` (anything `resolve` takes; a bare repository name such as `busybox` takes
/// every tag of that repository, as `docker save` does) to `out` as a tar stream.
pub fn save(store: &ImageStore, names: &[&str], out: impl Write) -> Result<()> {
    let images = select(store, names)?;
    let mut tar = tar::Builder::new(out);
    let write_err = |e: io::Error| archive_err(format!("writing the archive: {e}"));
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut h, dir, io::empty()).map_err(write_err)?;
    }
    let mut written = std::collections::HashSet::new();
    let mut index_entries = Vec::new();
    let mut docker_entries = Vec::new();
    for (image, tags) in &images {
        let manifest = store.read_blob(&image.manifest_digest)?;
        let media_type = serde_json::from_slice::<serde_json::Value>(&manifest)
            .ok()
            .and_then(|v| v.get("mediaType").and_then(|m| m.as_str()).map(str::to_string))
            .unwrap_or_else(|| MEDIA_OCI_MANIFEST.to_string());
        let blobs = std::iter::once(&image.id)
            .chain(image.layers.iter().map(|l| &l.digest))
            .chain(std::iter::once(&image.manifest_digest));
        for d in blobs {
            if written.insert(d.clone()) {
                let size = store.blob_size(d)?;
                let mut h = header(tar::EntryType::Regular, 0o644, size);
                tar.append_data(&mut h, blob_name(d), store.open_blob(d)?).map_err(write_err)?;
            }
        }
        let descriptor = |annotations: Option<serde_json::Value>| {
            let mut d = json!({
                "mediaType": media_type,
                "digest": image.manifest_digest.to_string(),
                "size": manifest.len(),
            });
            if let (Some(a), Some(obj)) = (annotations, d.as_object_mut()) {
                obj.insert("annotations".into(), a);
            }
            d
        };
        if tags.is_empty() {
            index_entries.push(descriptor(None));
        }
        for t in tags {
            index_entries.push(descriptor(Some(json!({
                ANNOTATION_CONTAINERD_NAME: t.to_string(),
                ANNOTATION_REF_NAME: t.tag.clone().unwrap_or_default(),
            }))));
        }
        docker_entries.push(DockerManifest {
            config: blob_name(&image.id),
            repo_tags: Some(tags.iter().map(Reference::familiar).collect()),
            layers: image.layers.iter().map(|l| blob_name(&l.digest)).collect(),
        });
    }
    let index = json!({"schemaVersion": 2, "mediaType": MEDIA_OCI_INDEX, "manifests": index_entries});
    let files = [
        ("index.json", to_json_bytes(&index)?),
        ("manifest.json", to_json_bytes(&docker_entries)?),
        ("oci-layout", to_json_bytes(&json!({"imageLayoutVersion": "1.0.0"}))?),
    ];
    for (name, bytes) in files {
        let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        tar.append_data(&mut h, name, bytes.as_slice()).map_err(write_err)?;
    }
    tar.into_inner().map_err(write_err)?.flush().map_err(write_err)?;
    Ok(())
}

fn blob_name(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// The images to save and, for each, the tags to write (in the order first named).
fn select(store: &ImageStore, names: &[&str]) -> Result<Vec<(Image, Vec<Reference>)>> {
    let mut out: Vec<(Image, Vec<Reference>)> = Vec::new();
    let mut add = |image: Image, tag: Option<Reference>| match out.iter_mut().find(|(i, _)| i.id == image.id) {
        Some((_, tags)) => tags.extend(tag.filter(|t| !tags.contains(t))),
        None => out.push((image, tag.into_iter().collect())),
    };
    for name in names {
        let bare_repository = !name.contains('@') && !name.rsplit('/').next().unwrap_or(name).contains(':');
        if bare_repository && let Ok(r) = name.parse::<Reference>() {
            let repo = r.name();
            let mut found = false;
            for image in store.list() {
                for t in image.repo_tags.iter().filter(|t| t.name() == repo) {
                    found = true;
                    add(image.clone(), Some(t.clone()));
                }
            }
            if found {
                continue;
            }
        }
        let image = store.resolve(name)?;
        let tag = name.parse::<Reference>().ok().filter(|r| r.digest.is_none() && image.repo_tags.contains(r));
        add(image, tag);
    }
    Ok(out)
}

// ---- load ----

/// Reads an image archive (docker-save or OCI layout, optionally gzip- or zstd-compressed) and adds its images
/// with their tags. Returns what was loaded, as `docker load` prints it.
pub fn load(store: &ImageStore, input: impl Read) -> Result<Vec<Loaded>> {
    let mut loader = Loader {
        store,
        lease: store.lease(),
        files: HashMap::new(),
        links: HashMap::new(),
        meta: HashMap::new(),
        created: Vec::new(),
        diff_ids: HashMap::new(),
    };
    match loader.run(input) {
        Ok((loaded, keep)) => {
            let unused: Vec<Digest> = loader.created.iter().filter(|d| !keep.contains(d)).cloned().collect();
            store.discard_blobs(&loader.lease, &unused)?;
            Ok(loaded)
        }
        Err(e) => {
            if let Err(cleanup) = store.discard_blobs(&loader.lease, &loader.created) {
                tracing::warn!(error = %cleanup, "cannot remove the blobs of a failed load");
            }
            Err(e)
        }
    }
}

/// An image found in the archive, checked, not yet added.
struct Candidate {
    manifest: Digest,
    names: Vec<Reference>,
}

struct Loader<'a> {
    store: &'a ImageStore,
    lease: Lease,
    /// Archive path -> digest of the blob its content was stored as.
    files: HashMap<String, Digest>,
    /// Archive path of a symlink or hard link -> the archive path it points to.
    links: HashMap<String, String>,
    /// `index.json`, `manifest.json`, `oci-layout`, kept in memory.
    meta: HashMap<String, Vec<u8>>,
    /// Blobs this load added to the store.
    created: Vec<Digest>,
    /// Blob -> digest of its uncompressed stream (None when it does not decompress).
    diff_ids: HashMap<Digest, Option<Digest>>,
}

const META_FILES: &[&str] = &["index.json", "manifest.json", "oci-layout", "repositories"];

impl Loader<'_> {
    fn run(&mut self, input: impl Read) -> Result<(Vec<Loaded>, Vec<Digest>)> {
        let read_err = |e: io::Error| archive_err(format!("reading the archive: {e}"));
        let mut input = BufReader::with_capacity(256 << 10, input);
        let stream: Box<dyn Read + '_> = match detect_compression(input.fill_buf().map_err(read_err)?) {
            Compression::None => Box::new(input),
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(input).map_err(read_err)?),
        };
        let mut archive = tar::Archive::new(stream);
        for entry in archive.entries().map_err(read_err)? {
            let entry = entry.map_err(read_err)?;
            self.entry(entry)?;
        }
        let candidates = self.candidates()?;
        if candidates.is_empty() {
            return Err(archive_err("the archive holds no image"));
        }
        let mut keep = Vec::new();
        for c in &candidates {
            keep.extend(self.check(c)?);
        }
        let mut loaded = Vec::new();
        for c in candidates {
            let image = self.store.add_image(&c.manifest, None)?;
            if c.names.is_empty() {
                loaded.push(Loaded::Id(image.id.clone()));
            }
            for name in c.names {
                self.store.add_image(&c.manifest, Some(&name))?;
                loaded.push(Loaded::Tag(name));
            }
        }
        Ok((loaded, keep))
    }

    fn entry<R: Read>(&mut self, mut entry: tar::Entry<'_, R>) -> Result<()> {
        let path = clean_path(&entry.path_bytes())?;
        let kind = entry.header().entry_type();
        if path.is_empty() || kind.is_dir() {
            return Ok(());
        }
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry.link_name_bytes().ok_or_else(|| archive_err(format!("link {path:?} has no target")))?;
            let target = String::from_utf8_lossy(&target).into_owned();
            // A symlink is relative to its directory, a hard link to the archive root.
            let base = if kind.is_symlink() { path.rsplit_once('/').map_or("", |(dir, _)| dir) } else { "" };
            let resolved = join_inside(base, &target)
                .ok_or_else(|| archive_err(format!("link {path:?} -> {target:?} points outside the archive")))?;
            self.links.insert(path, resolved);
            return Ok(());
        }
        if !kind.is_file() {
            tracing::debug!(%path, ?kind, "skipping an archive entry that is not a file");
            return Ok(());
        }
        if META_FILES.contains(&path.as_str()) {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(MAX_METADATA_BLOB + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| archive_err(format!("{path}: {e}")))?;
            if bytes.len() as u64 > MAX_METADATA_BLOB {
                return Err(archive_err(format!("{path} is larger than {MAX_METADATA_BLOB} bytes")));
            }
            self.meta.insert(path, bytes);
            return Ok(());
        }
        let named = path.strip_prefix("blobs/sha256/").and_then(|hex| format!("sha256:{hex}").parse::<Digest>().ok());
        let mut blob = self.store.blob_writer(named.as_ref())?;
        let mut diff = DiffIdSink::Head(Vec::new());
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let n = entry.read(&mut buf).map_err(|e| archive_err(format!("reading {path}: {e}")))?;
            if n == 0 {
                break;
            }
            blob.write_all(&buf[..n]).map_err(|e| archive_err(format!("storing {path}: {e}")))?;
            diff.write(&buf[..n]);
        }
        let committed = blob.commit_blob().map_err(|e| match e {
            StoreError::DigestMismatch { expected, actual } => {
                archive_err(format!("{path}: the content hashes to {actual}, not to the {expected} of its name"))
            }
            e => e,
        })?;
        if committed.created {
            self.created.push(committed.digest.clone());
        }
        let diff_id = diff.finish(&committed.digest);
        self.diff_ids.insert(committed.digest.clone(), diff_id);
        self.files.insert(path, committed.digest);
        Ok(())
    }

    /// The blob stored for an archive path, through its links.
    fn file(&self, path: &str) -> Result<Digest> {
        let mut p = clean_path(path.as_bytes())?;
        for _ in 0..MAX_LINK_HOPS {
            if let Some(d) = self.files.get(&p) {
                return Ok(d.clone());
            }
            match self.links.get(&p) {
                Some(next) => p = next.clone(),
                None => return Err(archive_err(format!("{path} is not in the archive"))),
            }
        }
        Err(archive_err(format!("{path}: too many levels of links")))
    }

    fn candidates(&mut self) -> Result<Vec<Candidate>> {
        let docker: Vec<DockerManifest> = match self.meta.get("manifest.json") {
            Some(bytes) => serde_json::from_slice(bytes).map_err(|e| archive_err(format!("manifest.json: {e}")))?,
            None => Vec::new(),
        };
        let mut candidates = match self.meta.get("index.json") {
            Some(bytes) => {
                let index: ImageIndex =
                    serde_json::from_slice(bytes).map_err(|e| archive_err(format!("index.json: {e}")))?;
                let mut out = Vec::new();
                for d in index.manifests() {
                    self.walk(d, names_of(d), 0, &mut out)?;
                }
                out
            }
            None if !docker.is_empty() => docker.iter().map(|m| self.synthesize(m)).collect::<Result<Vec<_>>>()?,
            None => return Err(archive_err("neither index.json nor manifest.json: not an image archive")),
        };
        // manifest.json's tags count too (an OCI layout written by Docker carries both).
        for m in &docker {
            let config = self.file(&m.config)?;
            for c in candidates.iter_mut() {
                if self.config_of(&c.manifest)? == config {
                    for t in m.repo_tags.iter().flatten() {
                        let r = t.parse::<Reference>()?;
                        if !c.names.contains(&r) {
                            c.names.push(r);
                        }
                    }
                }
            }
        }
        // One entry per manifest.
        let mut merged: Vec<Candidate> = Vec::new();
        for c in candidates {
            match merged.iter_mut().find(|m| m.manifest == c.manifest) {
                Some(m) => {
                    for n in c.names {
                        if !m.names.contains(&n) {
                            m.names.push(n);
                        }
                    }
                }
                None => merged.push(c),
            }
        }
        Ok(merged)
    }

    fn config_of(&self, manifest: &Digest) -> Result<Digest> {
        let bytes = self.store.read_blob(manifest)?;
        let m = parse_manifest(manifest, &bytes)?;
        m.config().digest().to_string().parse::<Digest>().map_err(Into::into)
    }

    /// Follows an index entry down to image manifests; `names` come from the outermost annotated descriptor.
    fn walk(&self, d: &Descriptor, names: Vec<Reference>, depth: usize, out: &mut Vec<Candidate>) -> Result<()> {
        if depth > 8 {
            return Err(archive_err("image indexes nested more than 8 deep"));
        }
        let digest: Digest = d.digest().to_string().parse()?;
        let media_type = d.media_type().to_string();
        if !self.store.has_blob(&digest) {
            return Err(archive_err(format!("{digest} ({media_type}) is not in the archive")));
        }
        let size = self.store.blob_size(&digest)?;
        if size != d.size() {
            return Err(StoreError::SizeMismatch { digest, expected: d.size(), actual: size });
        }
        if is_index_media_type(&media_type) {
            let bytes = self.store.read_blob(&digest)?;
            let index: ImageIndex =
                serde_json::from_slice(&bytes).map_err(|e| archive_err(format!("index {digest}: {e}")))?;
            for child in platform_manifests(index.manifests()) {
                let child_names = if names.is_empty() { names_of(child) } else { names.clone() };
                self.walk(child, child_names, depth + 1, out)?;
            }
            return Ok(());
        }
        if media_type == MEDIA_OCI_MANIFEST || media_type == super::store::MEDIA_DOCKER_MANIFEST {
            out.push(Candidate { manifest: digest, names });
        } else {
            tracing::debug!(%digest, %media_type, "skipping an index entry that is not an image");
        }
        Ok(())
    }

    /// A manifest for a docker-save `manifest.json` entry, which has none: OCI, layers typed by their compression.
    fn synthesize(&mut self, m: &DockerManifest) -> Result<Candidate> {
        let config = self.file(&m.config)?;
        let config_size = self.store.blob_size(&config)?;
        let mut layers = Vec::new();
        for path in &m.layers {
            let d = self.file(path)?;
            let mut head = [0u8; 4];
            let n = self.store.open_blob(&d)?.read(&mut head).map_err(|e| archive_err(format!("{path}: {e}")))?;
            let media_type = match detect_compression(&head[..n]) {
                Compression::None => MEDIA_OCI_LAYER,
                Compression::Gzip => MEDIA_OCI_LAYER_GZIP,
                Compression::Zstd => MEDIA_OCI_LAYER_ZSTD,
            };
            let size = self.store.blob_size(&d)?;
            layers.push(json!({"mediaType": media_type, "digest": d.to_string(), "size": size}));
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MEDIA_OCI_MANIFEST,
            "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config.to_string(), "size": config_size},
            "layers": layers,
        });
        let mut w = self.store.blob_writer(None)?;
        w.write_all(&to_json_bytes(&manifest)?).map_err(|e| archive_err(format!("writing a manifest: {e}")))?;
        let committed = w.commit_blob()?;
        if committed.created {
            self.created.push(committed.digest.clone());
        }
        let names = m.repo_tags.iter().flatten().map(|t| t.parse::<Reference>()).collect::<Result<Vec<_>, _>>()?;
        Ok(Candidate { manifest: committed.digest, names })
    }

    /// Checks an image before it is added: manifest, config, every layer present with the diff id its config
    /// names. Returns the blobs it uses.
    fn check(&self, c: &Candidate) -> Result<Vec<Digest>> {
        let bytes = self.store.read_blob(&c.manifest)?;
        let manifest = parse_manifest(&c.manifest, &bytes)?;
        let config_digest: Digest = manifest.config().digest().to_string().parse()?;
        let config_bytes = self.store.read_blob(&config_digest)?;
        let config: oci_spec::image::ImageConfiguration = serde_json::from_slice(&config_bytes)
            .map_err(|e| StoreError::InvalidConfig { digest: config_digest.clone(), reason: e.to_string() })?;
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(StoreError::InvalidConfig {
                digest: config_digest,
                reason: format!("{} diff_ids for {} layers", diff_ids.len(), manifest.layers().len()),
            });
        }
        let name = c.names.first().map_or_else(|| config_digest.short().to_string(), Reference::familiar);
        let mut used = vec![c.manifest.clone(), config_digest.clone()];
        for (index, (layer, expected)) in manifest.layers().iter().zip(diff_ids).enumerate() {
            let digest: Digest = layer.digest().to_string().parse()?;
            let size = self
                .store
                .blob_size(&digest)
                .map_err(|_| archive_err(format!("layer {digest} of image {name} is not in the archive")))?;
            if size != layer.size() {
                return Err(StoreError::SizeMismatch { digest, expected: layer.size(), actual: size });
            }
            // Layers already in the store before this load were checked when they came; they are checked again
            // when unpacked.
            if let Some(actual) = self.diff_ids.get(&digest) {
                let ok = actual.as_ref().is_some_and(|a| a.to_string() == *expected);
                if !ok {
                    return Err(StoreError::DiffIdMismatch {
                        image: name,
                        index,
                        layer: digest.clone(),
                        expected: expected.clone(),
                        actual: actual.clone().unwrap_or_else(|| Digest::of(b"")),
                    });
                }
            }
            used.push(digest);
        }
        Ok(used)
    }
}

/// The names an index entry gives its image: `io.containerd.image.name`, else an
/// `org.opencontainers.image.ref.name` that is a full reference (a bare tag names no repository).
fn names_of(d: &Descriptor) -> Vec<Reference> {
    let Some(a) = d.annotations() else { return Vec::new() };
    if let Some(n) = a.get(ANNOTATION_CONTAINERD_NAME).and_then(|n| n.parse::<Reference>().ok()) {
        return vec![n];
    }
    a.get(ANNOTATION_REF_NAME)
        .filter(|n| n.contains('/') || n.contains(':'))
        .and_then(|n| n.parse::<Reference>().ok())
        .into_iter()
        .collect()
}

/// The entries of an index to load: those for this host's platform when entries name platforms (the first
/// match), else all of them.
fn platform_manifests(entries: &[Descriptor]) -> Vec<&Descriptor> {
    if entries.iter().all(|d| d.platform().is_none()) {
        return entries.iter().collect();
    }
    let arch = host_architecture();
    entries
        .iter()
        .find(|d| {
            d.platform().as_ref().is_some_and(|p| p.os().to_string() == "linux" && p.architecture().to_string() == arch)
        })
        .into_iter()
        .collect()
}

/// An archive path, cleaned: no leading `./`, no empty or `.` components. Absolute paths and `..` are refused.
fn clean_path(raw: &[u8]) -> Result<String> {
    let s = std::str::from_utf8(raw).map_err(|_| archive_err(format!("entry path {raw:?} is not UTF-8")))?;
    if s.starts_with('/') {
        return Err(archive_err(format!("entry path {s:?} is absolute")));
    }
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(archive_err(format!("entry path {s:?} climbs out of the archive"))),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// `target` relative to the archive directory `base`, cleaned; None when it is absolute or climbs above the root.
fn join_inside(base: &str, target: &str) -> Option<String> {
    if target.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = base.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

type GzipSink = flate2::write::MultiGzDecoder<HashingWriter<io::Sink>>;
type ZstdSink = zstd::stream::write::Decoder<'static, HashingWriter<io::Sink>>;

/// Computes a blob's diff id while it is being stored: pushed bytes are decompressed (when gzip or zstd) and
/// hashed. A plain blob's diff id is its digest. A blob that fails to decompress has none.
enum DiffIdSink {
    Head(Vec<u8>),
    Plain,
    Gzip(Box<GzipSink>),
    Zstd(Box<ZstdSink>),
    Broken,
}

impl DiffIdSink {
    fn write(&mut self, buf: &[u8]) {
        if let DiffIdSink::Head(head) = self {
            head.extend_from_slice(buf);
            if head.len() >= 4 {
                self.decide();
            }
            return;
        }
        let ok = match self {
            DiffIdSink::Head(_) | DiffIdSink::Plain | DiffIdSink::Broken => true,
            DiffIdSink::Gzip(d) => d.write_all(buf).is_ok(),
            DiffIdSink::Zstd(d) => d.write_all(buf).is_ok(),
        };
        if !ok {
            *self = DiffIdSink::Broken;
        }
    }

    fn decide(&mut self) {
        let DiffIdSink::Head(head) = std::mem::replace(self, DiffIdSink::Broken) else { return };
        let sink = HashingWriter::new(io::sink());
        *self = match detect_compression(&head) {
            Compression::None => DiffIdSink::Plain,
            Compression::Gzip => DiffIdSink::Gzip(Box::new(flate2::write::MultiGzDecoder::new(sink))),
            Compression::Zstd => match zstd::stream::write::Decoder::new(sink) {
                Ok(d) => DiffIdSink::Zstd(Box::new(d)),
                Err(_) => DiffIdSink::Broken,
            },
        };
        self.write(&head);
    }

    fn finish(mut self, digest: &Digest) -> Option<Digest> {
        if matches!(self, DiffIdSink::Head(_)) {
            self.decide();
        }
        match self {
            DiffIdSink::Head(_) | DiffIdSink::Broken => None,
            DiffIdSink::Plain => Some(digest.clone()),
            DiffIdSink::Gzip(d) => d.finish().ok().map(|w| w.finish().1),
            DiffIdSink::Zstd(mut d) => {
                d.flush().ok()?;
                Some(d.into_inner().finish().1)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_cleaned_and_escapes_refused() {
        assert_eq!(clean_path(b"./blobs/sha256/ab").ok().as_deref(), Some("blobs/sha256/ab"));
        assert_eq!(clean_path(b"a//b/./c").ok().as_deref(), Some("a/b/c"));
        assert!(clean_path(b"/etc/passwd").is_err());
        assert!(clean_path(b"a/../../etc").is_err());
        assert!(clean_path(b"\xff").is_err());
        assert_eq!(join_inside("abc", "../def/layer.tar").as_deref(), Some("def/layer.tar"));
        assert_eq!(join_inside("", "x/./y").as_deref(), Some("x/y"));
        assert_eq!(join_inside("abc", "../../etc/passwd"), None);
        assert_eq!(join_inside("abc", "/etc/passwd"), None);
    }

    #[test]
    fn diff_id_sink_decompresses_what_it_is_pushed() {
        let plain = b"a tar would be here".repeat(1000);
        let expected = Digest::of(&plain);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let _ = gz.write_all(&plain);
        let gz = gz.finish().unwrap_or_default();
        let zst = zstd::encode_all(plain.as_slice(), 1).unwrap_or_default();
        for (data, name) in [(gz, "gzip"), (zst, "zstd")] {
            let mut sink = DiffIdSink::Head(Vec::new());
            for chunk in data.chunks(3) {
                sink.write(chunk);
            }
            assert_eq!(sink.finish(&Digest::of(&data)), Some(expected.clone()), "{name}");
        }
        let mut sink = DiffIdSink::Head(Vec::new());
        sink.write(&plain);
        assert_eq!(sink.finish(&expected), Some(expected.clone()));
        let mut broken = DiffIdSink::Head(Vec::new());
        broken.write(&[0x1f, 0x8b, 0, 0, 1, 2, 3]);
        assert_eq!(broken.finish(&expected), None);
    }
}
