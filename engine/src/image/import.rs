//! `berth image import`: a rootfs (a tar, plain or compressed, or a directory) becomes a one-layer image.
//!
//! # Expected flow
//! 1. The `--change` lines are parsed first, so a typo writes nothing.
//! 2. The layer blob is written while it is read, in one pass: a gzip or zstd tar is stored as it came, a plain tar
//!    is gzip-compressed, a directory is archived and compressed. The uncompressed stream is hashed on the way
//!    (the diff id) and parsed as a tar, so input that is not a tar is refused.
//! 3. Config (host platform, the diff id, a history entry, the changes) and an OCI manifest are written as blobs,
//!    and the image is recorded under the reference.
//!
//! # Directories
//! Archived as they are on disk, in name order: modes, owners, times, symlinks (never followed: a link to `/etc`
//! is stored as a link), hard links (as tar hard links to the first path seen), devices and fifos. Sockets are
//! skipped, as Docker does. Of the extended attributes only `security.capability` is kept, as Docker does.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::digest::Digest;
use super::error::{Result, StoreError, io_err};
use super::reference::Reference;
use super::store::{
    Image, ImageStore, MEDIA_OCI_CONFIG, MEDIA_OCI_LAYER_GZIP, MEDIA_OCI_LAYER_ZSTD, MEDIA_OCI_MANIFEST,
};
use super::unpack::{Compression, detect_compression};

const CAPABILITY_XATTR: &str = "security.capability";

/// What to import.
pub enum ImportSource {
    /// A rootfs tar, plain, gzip or zstd: a file, or the body of `POST /images/create?fromSrc=-`.
    Tar(Box<dyn Read + Send>),
    /// A directory on this host, archived as it is.
    Dir(PathBuf),
}

impl std::fmt::Debug for ImportSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportSource::Tar(_) => f.write_str("Tar(..)"),
            ImportSource::Dir(p) => f.debug_tuple("Dir").field(p).finish(),
        }
    }
}

/// The layer blob an import wrote.
struct Layer {
    digest: Digest,
    diff_id: Digest,
    size: u64,
    media_type: &'static str,
}

/// Imports `source` as a one-layer image, applies the Dockerfile-syntax `changes` (CMD, ENTRYPOINT, ENV, WORKDIR,
/// EXPOSE, USER, LABEL, VOLUME, STOPSIGNAL) to its config and records it under `reference`.
pub fn import(
    store: &ImageStore,
    source: ImportSource,
    reference: Option<&Reference>,
    changes: &[String],
) -> Result<Image> {
    let mut config = ContainerConfig::default();
    for line in changes {
        config.apply(line)?;
    }
    let _lease = store.lease();
    let (layer, origin) = match source {
        ImportSource::Tar(reader) => (layer_from_tar(store, reader)?, "-".to_string()),
        ImportSource::Dir(dir) => {
            let layer = layer_from_dir(store, &dir)?;
            (layer, dir.display().to_string())
        }
    };
    let created = rfc3339(SystemTime::now());
    let config_json = json!({
        "architecture": host_architecture(),
        "config": config.to_json(),
        "created": created,
        "history": [{"created": created, "created_by": "berth import", "comment": format!("Imported from {origin}")}],
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id.to_string()]},
    });
    let config_bytes = to_json_bytes(&config_json)?;
    let config_digest = store.write_blob(&config_bytes)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_OCI_MANIFEST,
        "config": {"mediaType": MEDIA_OCI_CONFIG, "digest": config_digest.to_string(), "size": config_bytes.len()},
        "layers": [{"mediaType": layer.media_type, "digest": layer.digest.to_string(), "size": layer.size}],
    });
    let manifest_digest = store.write_blob(&to_json_bytes(&manifest)?)?;
    let image = store.add_image(&manifest_digest, reference)?;
    tracing::info!(id = %image.id, source = %origin, "image imported");
    Ok(image)
}

pub(crate) fn to_json_bytes(v: &impl serde::Serialize) -> Result<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| StoreError::Import(format!("cannot serialize JSON: {e}")))
}

/// The host platform's architecture, as Go (and image configs) name it.
pub(crate) fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

// ---- I/O adapters ----

/// Hashes and counts everything read through it.
pub(crate) struct HashingReader<R> {
    pub(crate) inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R> HashingReader<R> {
    pub(crate) fn new(inner: R) -> Self {
        HashingReader { inner, hasher: Sha256::new(), bytes: 0 }
    }

    pub(crate) fn finish(self) -> (R, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.bytes)
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Hashes and counts everything written through it.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter { inner, hasher: Sha256::new(), bytes: 0 }
    }

    pub(crate) fn finish(self) -> (W, Digest, u64) {
        (self.inner, Digest::from_hasher(self.hasher), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Copies everything read through it to `out`.
struct TeeReader<R, W> {
    inner: R,
    out: W,
}

impl<R: Read, W: Write> Read for TeeReader<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.out.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Reads a tar stream to its end, checking every header, so that what is not a tar is refused.
/// Returns the number of entries.
fn check_tar(reader: impl Read) -> Result<u64> {
    let bad = |e: io::Error| StoreError::Import(format!("the input is not a valid tar archive: {e}"));
    let mut archive = tar::Archive::new(reader);
    let mut entries = 0;
    for entry in archive.entries().map_err(bad)? {
        entry.map_err(bad)?;
        entries += 1;
    }
    // The diff id covers everything after the end-of-archive blocks too.
    io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(bad)?;
    Ok(entries)
}

fn layer_from_tar(store: &ImageStore, reader: Box<dyn Read + Send>) -> Result<Layer> {
    let read_err = |e: io::Error| StoreError::Import(format!("reading the input: {e}"));
    let mut input = BufReader::with_capacity(256 << 10, reader);
    let compression = detect_compression(input.fill_buf().map_err(read_err)?);
    let mut blob = store.blob_writer(None)?;
    let diff_id = match compression {
        Compression::None => {
            let gz = flate2::write::GzEncoder::new(&mut blob, flate2::Compression::default());
            let mut plain = HashingWriter::new(gz);
            check_tar(TeeReader { inner: &mut input, out: &mut plain })?;
            let (gz, diff_id, _) = plain.finish();
            gz.finish().map_err(|e| StoreError::Import(format!("writing the layer: {e}")))?;
            diff_id
        }
        Compression::Gzip | Compression::Zstd => {
            let tee = TeeReader { inner: &mut input, out: &mut blob };
            let decoded: Box<dyn Read + '_> = match compression {
                Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(tee).map_err(read_err)?),
                _ => Box::new(flate2::read::MultiGzDecoder::new(tee)),
            };
            let mut hashing = HashingReader::new(decoded);
            check_tar(&mut hashing)?;
            let (_, diff_id, _) = hashing.finish();
            // Whatever follows the compressed stream is kept, so the blob is the input as it came.
            io::copy(&mut input, &mut blob).map_err(read_err)?;
            diff_id
        }
    };
    let committed = blob.commit_blob()?;
    let media_type = if compression == Compression::Zstd { MEDIA_OCI_LAYER_ZSTD } else { MEDIA_OCI_LAYER_GZIP };
    Ok(Layer { digest: committed.digest, diff_id, size: committed.size, media_type })
}

fn layer_from_dir(store: &ImageStore, dir: &Path) -> Result<Layer> {
    let meta = fs::metadata(dir).map_err(io_err("stat", dir))?;
    if !meta.is_dir() {
        return Err(StoreError::Import(format!("{} is not a directory", dir.display())));
    }
    let blob = store.blob_writer(None)?;
    let gz = flate2::write::GzEncoder::new(blob, flate2::Compression::default());
    let mut builder = tar::Builder::new(HashingWriter::new(gz));
    let mut archiver = DirArchiver { root: dir, links: HashMap::new() };
    archiver.walk(&mut builder, dir, "")?;
    let write_err = |e: io::Error| StoreError::Import(format!("writing the layer: {e}"));
    let (gz, diff_id, _) = builder.into_inner().map_err(write_err)?.finish();
    let committed = gz.finish().map_err(write_err)?.commit_blob()?;
    Ok(Layer { digest: committed.digest, diff_id, size: committed.size, media_type: MEDIA_OCI_LAYER_GZIP })
}

struct DirArchiver<'a> {
    root: &'a Path,
    /// (dev, inode) of files with several links -> the archive path of the first one.
    links: HashMap<(u64, u64), String>,
}

impl DirArchiver<'_> {
    fn walk<W: Write>(&mut self, builder: &mut tar::Builder<W>, dir: &Path, prefix: &str) -> Result<()> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .map_err(io_err("read", dir))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<_>>()
            .map_err(io_err("read", dir))?;
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = format!("{prefix}{}", name.to_string_lossy());
            if name.to_str().is_none() {
                return Err(StoreError::Import(format!("{}: file names must be UTF-8", path.display())));
            }
            let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
            self.append(builder, &path, &rel, &meta)?;
            if meta.is_dir() {
                self.walk(builder, &path, &format!("{rel}/"))?;
            }
        }
        Ok(())
    }

    fn append<W: Write>(
        &mut self,
        builder: &mut tar::Builder<W>,
        path: &Path,
        rel: &str,
        meta: &fs::Metadata,
    ) -> Result<()> {
        let err = |e: io::Error| StoreError::Import(format!("archiving {}: {e}", path.display()));
        let mut h = tar::Header::new_gnu();
        h.set_mode(meta.mode() & 0o7777);
        h.set_uid(u64::from(meta.uid()));
        h.set_gid(u64::from(meta.gid()));
        h.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        h.set_size(0);
        let ft = meta.file_type();
        if ft.is_dir() {
            h.set_entry_type(tar::EntryType::Directory);
            builder.append_data(&mut h, format!("{rel}/"), io::empty()).map_err(err)
        } else if ft.is_symlink() {
            let target = fs::read_link(path).map_err(io_err("readlink", path))?;
            h.set_entry_type(tar::EntryType::Symlink);
            builder.append_link(&mut h, rel, target).map_err(err)
        } else if ft.is_file() {
            if meta.nlink() > 1 {
                if let Some(first) = self.links.get(&(meta.dev(), meta.ino())) {
                    h.set_entry_type(tar::EntryType::Link);
                    return builder.append_link(&mut h, rel, first).map_err(err);
                }
                self.links.insert((meta.dev(), meta.ino()), rel.to_string());
            }
            // O_NOFOLLOW: a file swapped for a symlink since the stat is refused, not followed out of the root.
            let file = fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                .open(path)
                .map_err(io_err("open", path))?;
            // File capabilities (ping's cap_net_raw) travel as a PAX xattr record, the one xattr Docker archives.
            if let Ok(Some(caps)) = xattr::get(path, CAPABILITY_XATTR) {
                let key = format!("SCHILY.xattr.{CAPABILITY_XATTR}");
                builder.append_pax_extensions([(key.as_str(), caps.as_slice())]).map_err(err)?;
            }
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            let exact = ExactReader { inner: file, left: meta.len(), path };
            builder.append_data(&mut h, rel, exact).map_err(err)
        } else if ft.is_char_device() || ft.is_block_device() {
            let kind = if ft.is_char_device() { tar::EntryType::Char } else { tar::EntryType::Block };
            h.set_entry_type(kind);
            let rdev = meta.rdev();
            h.set_device_major(nix::sys::stat::major(rdev) as u32).map_err(err)?;
            h.set_device_minor(nix::sys::stat::minor(rdev) as u32).map_err(err)?;
            builder.append_data(&mut h, rel, io::empty()).map_err(err)
        } else if ft.is_fifo() {
            h.set_entry_type(tar::EntryType::Fifo);
            builder.append_data(&mut h, rel, io::empty()).map_err(err)
        } else {
            tracing::debug!(path = %path.display(), root = %self.root.display(), "skipping a socket");
            Ok(())
        }
    }
}

/// Reads exactly `left` bytes: a file that shrank or grew while it was archived is an error, not a corrupt tar.
struct ExactReader<'a> {
    inner: File,
    left: u64,
    path: &'a Path,
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let max = buf.len().min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..max])?;
        if n == 0 {
            return Err(io::Error::other(format!("{} shrank while it was archived", self.path.display())));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

// ---- --change ----

/// The `config` part of an image config that `--change` lines set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContainerConfig {
    pub user: Option<String>,
    pub exposed_ports: BTreeSet<String>,
    pub env: Vec<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub volumes: BTreeSet<String>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
}

impl ContainerConfig {
    /// Applies one Dockerfile instruction.
    pub fn apply(&mut self, line: &str) -> Result<()> {
        let invalid = |reason: &str| StoreError::InvalidChange { line: line.to_string(), reason: reason.to_string() };
        let trimmed = line.trim();
        let (keyword, rest) = match trimmed.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (trimmed, ""),
        };
        if rest.is_empty() {
            return Err(invalid("the instruction has no arguments"));
        }
        match keyword.to_ascii_uppercase().as_str() {
            "CMD" => self.cmd = Some(exec_or_shell(rest)),
            "ENTRYPOINT" => self.entrypoint = Some(exec_or_shell(rest)),
            "ENV" => {
                for (k, v) in key_values(rest).map_err(|r| invalid(&r))? {
                    let prefix = format!("{k}=");
                    self.env.retain(|e| !e.starts_with(&prefix));
                    self.env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                for (k, v) in key_values(rest).map_err(|r| invalid(&r))? {
                    self.labels.insert(k, v);
                }
            }
            "WORKDIR" => {
                let dir = words(rest).map_err(|r| invalid(&r))?.join(" ");
                let joined = match (&self.working_dir, dir.starts_with('/')) {
                    (Some(prev), false) => format!("{}/{dir}", prev.trim_end_matches('/')),
                    (None, false) => format!("/{dir}"),
                    (_, true) => dir,
                };
                self.working_dir = Some(joined);
            }
            "EXPOSE" => {
                for port in words(rest).map_err(|r| invalid(&r))? {
                    self.exposed_ports.extend(expand_port(&port).map_err(|r| invalid(&r))?);
                }
            }
            "USER" => self.user = Some(rest.to_string()),
            "VOLUME" => {
                let list = match json_array(rest) {
                    Some(v) => v,
                    None => words(rest).map_err(|r| invalid(&r))?,
                };
                self.volumes.extend(list.into_iter().filter(|v| !v.is_empty()));
            }
            "STOPSIGNAL" => self.stop_signal = Some(rest.to_string()),
            other => {
                return Err(invalid(&format!(
                    "{other} cannot be changed on import (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, \
                     VOLUME, WORKDIR can)"
                )));
            }
        }
        Ok(())
    }

    /// The `config` object of an image config, keys in Docker's order.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if let Some(u) = &self.user {
            m.insert("User".into(), json!(u));
        }
        if !self.exposed_ports.is_empty() {
            m.insert("ExposedPorts".into(), self.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect());
        }
        if !self.env.is_empty() {
            m.insert("Env".into(), json!(self.env));
        }
        if let Some(e) = &self.entrypoint {
            m.insert("Entrypoint".into(), json!(e));
        }
        if let Some(c) = &self.cmd {
            m.insert("Cmd".into(), json!(c));
        }
        if !self.volumes.is_empty() {
            m.insert("Volumes".into(), self.volumes.iter().map(|v| (v.clone(), json!({}))).collect());
        }
        if let Some(w) = &self.working_dir {
            m.insert("WorkingDir".into(), json!(w));
        }
        if !self.labels.is_empty() {
            m.insert("Labels".into(), json!(self.labels));
        }
        if let Some(s) = &self.stop_signal {
            m.insert("StopSignal".into(), json!(s));
        }
        Value::Object(m)
    }
}

/// `["a","b"]` (exec form) or anything else (shell form: `/bin/sh -c '<rest>'`), as Dockerfile CMD/ENTRYPOINT.
fn exec_or_shell(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into(), rest.to_string()])
}

fn json_array(s: &str) -> Option<Vec<String>> {
    if s.starts_with('[') { serde_json::from_str(s).ok() } else { None }
}

/// Splits on unquoted whitespace; quotes group and are removed, a backslash escapes the next character (except
/// inside single quotes), as Dockerfile words.
fn words(s: &str) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => cur.push(c),
            (_, '\\') => match chars.next() {
                Some(n) => cur.push(n),
                None => cur.push('\\'),
            },
            (Some(_), _) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, _) => {
                cur.push(c);
                in_word = true;
            }
        }
        if quote.is_some() || !cur.is_empty() {
            in_word = true;
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated {q} quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `k=v k2="v 2"`, or the legacy `k v w` (one pair: the first word, the rest of the line).
fn key_values(rest: &str) -> std::result::Result<Vec<(String, String)>, String> {
    let first = rest.split_whitespace().next().unwrap_or("");
    if !first.contains('=') {
        let (k, v) = rest.split_once(char::is_whitespace).ok_or("expected key=value or `key value`")?;
        let value = words(v.trim())?.join(" ");
        return Ok(vec![(k.to_string(), value)]);
    }
    words(rest)?
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!("{w:?} is not key=value")),
        })
        .collect()
}

/// `80` → `80/tcp`; `53/udp`; `8000-8002/tcp` → three ports.
fn expand_port(spec: &str) -> std::result::Result<Vec<String>, String> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("protocol {proto:?} of {spec:?} is not tcp, udp or sctp"));
    }
    let port = |p: &str| p.parse::<u16>().map_err(|_| format!("{p:?} in {spec:?} is not a port number"));
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(ports)?, port(ports)?),
    };
    if start > end {
        return Err(format!("port range {ports:?} ends before it starts"));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

pub(crate) use crate::time::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lines: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        for l in lines {
            c.apply(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        }
        c
    }

    #[test]
    fn cmd_and_entrypoint_exec_and_shell_forms() {
        let c = config(&[r#"CMD ["/bin/echo", "hi there"]"#, "entrypoint exec /app --flag"]);
        assert_eq!(c.cmd, Some(vec!["/bin/echo".to_string(), "hi there".to_string()]));
        assert_eq!(c.entrypoint, Some(vec!["/bin/sh".to_string(), "-c".to_string(), "exec /app --flag".to_string()]));
        // Not valid JSON: shell form, as Docker does.
        assert_eq!(config(&["CMD [oops"]).cmd, Some(vec!["/bin/sh".into(), "-c".into(), "[oops".into()]));
    }

    #[test]
    fn env_and_labels() {
        let c = config(&[
            r#"ENV A=1 B="two words" C=x\ y"#,
            "ENV LEGACY value with spaces",
            "ENV A=replaced",
            r#"LABEL com.example.v="1.0" 'k 2'=v2"#,
            "LABEL maintainer someone@example.com",
        ]);
        assert_eq!(c.env, vec!["B=two words", "C=x y", "LEGACY=value with spaces", "A=replaced"]);
        assert_eq!(c.labels.get("com.example.v").map(String::as_str), Some("1.0"));
        assert_eq!(c.labels.get("k 2").map(String::as_str), Some("v2"));
        assert_eq!(c.labels.get("maintainer").map(String::as_str), Some("someone@example.com"));
    }

    #[test]
    fn workdir_expose_user_volume() {
        let c = config(&[
            "WORKDIR /srv",
            "WORKDIR app",
            "EXPOSE 80 53/udp 8000-8002",
            "USER 1000:1000",
            r#"VOLUME ["/data", "/logs"]"#,
            "STOPSIGNAL SIGTERM",
        ]);
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        let ports: Vec<&str> = c.exposed_ports.iter().map(String::as_str).collect();
        assert_eq!(ports, vec!["53/udp", "80/tcp", "8000/tcp", "8001/tcp", "8002/tcp"]);
        assert_eq!(c.user.as_deref(), Some("1000:1000"));
        assert_eq!(c.volumes.iter().collect::<Vec<_>>(), vec!["/data", "/logs"]);
        let j = c.to_json();
        assert_eq!(j["ExposedPorts"]["80/tcp"], json!({}));
        assert_eq!(j["WorkingDir"], json!("/srv/app"));
    }

    #[test]
    fn invalid_changes() {
        for bad in ["RUN echo", "CMD", "EXPOSE 80/icmp", "EXPOSE http", "EXPOSE 90-80", "ENV =x", "LABEL \"a=b"] {
            let mut c = ContainerConfig::default();
            assert!(c.apply(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00.000000000Z");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_709_251_199);
        assert_eq!(rfc3339(t), "2024-02-29T23:59:59.000000000Z");
    }
}
