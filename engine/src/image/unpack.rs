//! Image layers applied to directories: each layer tar (plain, gzip or zstd) is unpacked once into
//! `layers/<chain-id>/diff` and used as an overlayfs lower directory.
//!
//! # Containment
//! A layer is hostile input. Nothing it contains may create, change or link anything outside the directory it is
//! unpacked into, whatever its paths, symlinks and hard links say:
//! - Entry paths are cleaned lexically as Docker does when it applies a layer inside a chroot of the layer
//!   directory (`filepath.Join("/", name)`): a leading `/` is dropped and a `..` that would climb above the root is
//!   clamped to the root, so `/etc/x` and `../../etc/x` both land on `<dest>/etc/x`.
//! - Symlinks are created as they are (a container sees them inside its rootfs), so a later entry may name a path
//!   through one. Every parent directory is therefore opened with
//!   `openat2(dest_fd, parent, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`: the kernel refuses any
//!   resolution that leaves `dest` (an absolute symlink, or `..` above it) and the entry fails with
//!   [`UnpackError::Escape`]. Within `dest`, relative symlinks resolve as they would in the container.
//! - The entry itself is then created relative to that parent fd with a single-component name, without following
//!   a symlink in its place: `openat(O_CREAT | O_EXCL | O_NOFOLLOW)`, `mkdirat`, `mknodat`, `symlinkat`, `linkat`
//!   without `AT_SYMLINK_FOLLOW`. A name that already exists is first removed (recursively, through fds), unless
//!   both are directories, so a later entry replaces an earlier one and never writes through it.
//! - Metadata is set through the new fd (`fchown`, `fchmod`, `fsetxattr`, `futimens`) or with `*at` calls that do
//!   not follow symlinks. Hard-link targets are resolved like parents, so a link can only share an inode that this
//!   layer already put inside `dest`.
//!
//! # Whiteouts
//! Layers use the OCI whiteout files; they are converted to what overlayfs reads, as Docker's overlay2 driver does:
//! `.wh.<name>` becomes a character device 0:0 named `<name>`, and `.wh..wh..opq` sets `trusted.overlay.opaque=y`
//! on its directory. Other `.wh..wh.*` names are AUFS bookkeeping and are skipped. `trusted.overlay.*` xattrs
//! carried by the tar itself are dropped: overlayfs metadata (redirects, metacopy) is only ever written here.

use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat, openat2};
use nix::sys::stat::{
    FchmodatFlags, Mode, SFlag, UtimensatFlags, fchmod, fchmodat, fstatat, futimens, makedev, mkdirat, mknodat,
    utimensat,
};
use nix::sys::time::TimeSpec;
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchown, fchownat, linkat, symlinkat, unlinkat};
use sha2::{Digest as _, Sha256};
use tar::EntryType;
use xattr::FileExt as _;

use super::digest::Digest;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
const WHITEOUT_OPAQUE: &[u8] = b".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const OVERLAY_XATTR_PREFIX: &[u8] = b"trusted.overlay.";
const PAX_XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Detect from the first bytes (gzip `1f 8b`, zstd `28 b5 2f fd`, else plain tar).
pub fn detect_compression(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// What unpacking a layer found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackStats {
    /// sha256 of the uncompressed tar stream, every byte of it (the image config's `rootfs.diff_ids`).
    pub diff_id: Digest,
    /// Tar entries applied or skipped (PAX and GNU long-name headers are part of the entry they describe).
    pub entries: u64,
    /// Size of the uncompressed tar stream.
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("opening the layer directory {path}: {source}")]
    OpenDest { path: PathBuf, source: io::Error },
    #[error("the layer directory {0} is not empty")]
    DestNotEmpty(PathBuf),
    /// The stream itself is unreadable: corrupt compression, a truncated or malformed tar header.
    #[error("reading the layer {at}: {source}")]
    Read { at: String, source: io::Error },
    #[error("layer entry {path:?}: reading its data: {source}")]
    EntryData { path: String, source: io::Error },
    #[error("layer entry {path:?}: the layer ends inside its data ({got} of {expected} bytes)")]
    Truncated { path: String, expected: u64, got: u64 },
    #[error("layer entry {path:?}: invalid header: {reason}")]
    InvalidEntry { path: String, reason: String },
    #[error("layer entry {path:?}: entry type {kind:?} is not supported")]
    Unsupported { path: String, kind: String },
    #[error("layer entry {path:?} resolves outside the layer directory (through a symlink or `..`)")]
    Escape { path: String },
    #[error("layer entry {path:?}: hard link target {target:?} is not in the layer: {source}")]
    LinkTarget { path: String, target: String, source: io::Error },
    #[error("layer entry {path:?}: {op}: {source}")]
    Fs { path: String, op: &'static str, source: io::Error },
    #[error("entry {path:?}: cannot overwrite {what}")]
    Overwrite { path: String, what: &'static str },
    #[error("creating a temporary directory in {dir}: {source}")]
    TempDir { dir: PathBuf, source: io::Error },
    #[error("moving the unpacked layer into place at {path}: {source}")]
    Commit { path: PathBuf, source: io::Error },
}

/// Chain ids as the OCI image spec defines them: `chain(L0) = diff(L0)`,
/// `chain(Ln) = sha256(chain(Ln-1) + " " + diff(Ln))`, over the `sha256:<hex>` forms.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// Unpack a (possibly compressed) layer tar from `reader` into the empty directory `dest`, streaming (never
/// holding the layer in memory), as an overlayfs lower layer. See the module docs for the containment rules.
///
/// Entries repeated in one tar: the later wins (it replaces the earlier one, except that two directories merge).
/// The tar's entry for the root directory itself is ignored, as in Docker. Hard links share their target's inode,
/// so their own header metadata is not applied. Xattrs the filesystem refuses (`EPERM`, `ENOTSUP`) are logged and
/// skipped, as Docker does; any other failure stops the unpack and leaves `dest` half-written: unpack into a
/// temporary directory (see [`unpack_layer_atomic`]).
pub fn unpack_layer(reader: impl Read, dest: &Path) -> Result<UnpackStats, UnpackError> {
    let root = open_dest(dest)?;
    apply(reader, Unpacker { root: root.as_fd(), base: Vec::new(), copy: None, dirs: Vec::new() })
}

/// How [`extract_in_root`] treats entries, as Docker's `PUT /containers/{id}/archive` does.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// Owner of every entry instead of the tar's (Docker: the container's root unless `copyUIDGID`).
    pub owner: Option<(u32, u32)>,
    /// Docker's `noOverwriteDirNonDir`: an entry may not replace a directory with a non-directory or the reverse.
    pub no_overwrite_dir_non_dir: bool,
}

/// Extract a (possibly compressed) tar into the existing directory `dest` of the tree at `root`, as `docker cp`
/// does into a container, with the same containment as layers except how paths resolve: every path is opened
/// with `openat2(root, dest/…, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so symlinks resolve as the container
/// sees them (`/` and `..` stop at `root`) instead of failing, and mounts below `root` (volumes) are crossed.
/// Entry paths are cleaned lexically and clamped at `dest`. `.wh.*` names are plain names here. The directory is
/// not required to be empty: entries replace what is there, directories merge.
pub fn extract_in_root(
    reader: impl Read,
    root: BorrowedFd<'_>,
    dest: &[u8],
    options: ExtractOptions,
) -> Result<UnpackStats, UnpackError> {
    let base = clean(dest).join(&b'/');
    apply(reader, Unpacker { root, base, copy: Some(options), dirs: Vec::new() })
}

fn apply(reader: impl Read, mut unpacker: Unpacker<'_>) -> Result<UnpackStats, UnpackError> {
    let stream = decompress(reader)?;
    let mut archive = tar::Archive::new(HashingReader { inner: stream, hasher: Sha256::new(), bytes: 0 });
    let mut entries = 0u64;
    let mut last = String::new();
    let iter = archive.entries().map_err(|source| UnpackError::Read { at: "at its start".into(), source })?;
    for entry in iter {
        let mut entry = entry.map_err(|source| UnpackError::Read { at: after(&last), source })?;
        entries += 1;
        last = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        unpacker.entry(&mut entry, &last)?;
    }
    unpacker.finish()?;
    // The tar reader stops at the end-of-archive blocks; the diff id covers the padding after them too, and reading
    // to the end lets the decompressor check its trailer (gzip CRC, zstd frame end).
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink())
        .map_err(|source| UnpackError::Read { at: "after its end-of-archive marker".into(), source })?;
    Ok(UnpackStats { diff_id: Digest::from_hasher(rest.hasher), entries, bytes: rest.bytes })
}

/// Unpack a layer into `layers_root/<chain-hex>/diff` all or nothing: into `layers_root/tmp-<random>/diff` first,
/// renamed to `layers_root/<chain-hex>` only on success (the temp dir is removed on failure). If the layer is
/// already there (another unpack won the race, now or earlier), that one is returned and the stream is not read.
///
/// The caller checks that the chain id belongs to the layer (from the image config's diff ids, after checking the
/// blob digest): this function cannot, as a chain id also depends on the layers below.
///
/// Guarantee: the stream is read to its very end before anything is committed, so a reader that fails its last
/// read (a diff-id check wrapped around it) makes this return that error and leaves nothing behind.
///
/// Survives a crash of berthd (a kill leaves only a `tmp-*` dir, see [`remove_temp_dirs`]), not a power loss:
/// nothing is fsynced, as in Docker.
pub fn unpack_layer_atomic(reader: impl Read, layers_root: &Path, chain_id: &Digest) -> Result<PathBuf, UnpackError> {
    let layer_dir = layers_root.join(chain_id.hex());
    let diff = layer_dir.join("diff");
    if is_dir(&diff) {
        return Ok(diff);
    }
    let temp = make_temp_dir(layers_root)?;
    let result = (|| {
        let temp_diff = temp.join("diff");
        fs::create_dir(&temp_diff).map_err(|source| UnpackError::TempDir { dir: temp.clone(), source })?;
        let stats = unpack_layer(reader, &temp_diff)?;
        tracing::debug!(chain_id = %chain_id, diff_id = %stats.diff_id, entries = stats.entries, "layer unpacked");
        match fs::rename(&temp, &layer_dir) {
            Ok(()) => return Ok(()),
            // `rename(2)` onto a non-empty directory fails with ENOTEMPTY or EEXIST.
            Err(e) if !is_errno(&e, &[Errno::ENOTEMPTY, Errno::EEXIST]) => {
                return Err(UnpackError::Commit { path: layer_dir.clone(), source: e });
            }
            Err(_) => {}
        }
        // `<chain>` exists and is not empty: another unpack won, or something else keeps files there.
        if is_dir(&diff) {
            return Ok(());
        }
        match fs::rename(&temp_diff, &diff) {
            Ok(()) => Ok(()),
            Err(_) if is_dir(&diff) => Ok(()),
            Err(source) => Err(UnpackError::Commit { path: diff.clone(), source }),
        }
    })();
    if temp.exists() {
        if let Err(e) = fs::remove_dir_all(&temp) {
            tracing::warn!(path = %temp.display(), error = %e, "cannot remove a temporary layer directory");
        }
    }
    result.map(|()| diff)
}

/// Remove the `tmp-*` directories a crash left in `layers_root`. Call it at startup, before any unpack runs.
pub fn remove_temp_dirs(layers_root: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(layers_root) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_name().as_bytes().starts_with(b"tmp-") {
            tracing::info!(path = %entry.path().display(), "removing an interrupted layer unpack");
            fs::remove_dir_all(entry.path())?;
        }
    }
    Ok(())
}

fn is_dir(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

fn make_temp_dir(layers_root: &Path) -> Result<PathBuf, UnpackError> {
    let err = |source| UnpackError::TempDir { dir: layers_root.to_path_buf(), source };
    fs::create_dir_all(layers_root).map_err(err)?;
    let mut last = io::Error::from(io::ErrorKind::AlreadyExists);
    for _ in 0..16 {
        let p = layers_root.join(format!("tmp-{}", random_suffix()));
        match fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = e,
            Err(e) => return Err(err(e)),
        }
    }
    Err(err(last))
}

/// 16 hex characters, unpredictable enough for a temp name (`RandomState` is seeded from the OS).
fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    format!("{:016x}", h.finish())
}

fn after(last: &str) -> String {
    if last.is_empty() { "before its first entry".into() } else { format!("after entry {last:?}") }
}

fn open_dest(dest: &Path) -> Result<OwnedFd, UnpackError> {
    let err = |e: Errno| UnpackError::OpenDest { path: dest.to_path_buf(), source: e.into() };
    let fd =
        nix::fcntl::open(dest, OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty()).map_err(err)?;
    let mut dir = Dir::from_fd(fd.try_clone().map_err(|source| UnpackError::OpenDest { path: dest.into(), source })?)
        .map_err(err)?;
    for e in dir.iter() {
        let e = e.map_err(err)?;
        if !matches!(e.file_name().to_bytes(), b"." | b"..") {
            return Err(UnpackError::DestNotEmpty(dest.to_path_buf()));
        }
    }
    Ok(fd)
}

/// Sniff the compression from the first four bytes and return a reader of the plain tar.
fn decompress<'a>(mut reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>, UnpackError> {
    let mut head = [0u8; 4];
    let mut n = 0;
    while n < head.len() {
        match reader.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(source) => return Err(UnpackError::Read { at: "at its start".into(), source }),
        }
    }
    let stream = io::Cursor::new(head[..n].to_vec()).chain(reader);
    const BUF: usize = 128 * 1024;
    Ok(match detect_compression(&head[..n]) {
        Compression::None => Box::new(io::BufReader::with_capacity(BUF, stream)),
        // Layers may hold several gzip members (Go's reader accepts them); read them all.
        Compression::Gzip => Box::new(io::BufReader::with_capacity(BUF, flate2::read::MultiGzDecoder::new(stream))),
        Compression::Zstd => Box::new(io::BufReader::with_capacity(
            BUF,
            zstd::stream::read::Decoder::new(stream)
                .map_err(|source| UnpackError::Read { at: "starting zstd".into(), source })?,
        )),
    })
}

/// Hashes and counts everything read through it: the diff id is the sha256 of the uncompressed tar.
struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

/// The metadata of an entry: header fields with PAX overrides applied.
struct Meta {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: TimeSpec,
    xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

struct Unpacker<'fd> {
    root: BorrowedFd<'fd>,
    /// The directory entries land in, relative to `root` (empty for a layer).
    base: Vec<u8>,
    /// `None` for an image layer (RESOLVE_BENEATH, whiteouts), else a `docker cp` extraction (RESOLVE_IN_ROOT).
    copy: Option<ExtractOptions>,
    /// Directories whose mtime is set at the end, once nothing more is created in them (as Docker does).
    dirs: Vec<(Vec<u8>, TimeSpec)>,
}

/// What an entry becomes on disk.
enum Kind {
    File,
    Dir,
    Symlink(Vec<u8>),
    HardLink(Vec<u8>),
    Node(SFlag, u64, u64),
}

impl Unpacker<'_> {
    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>, path: &str) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let header_type = entry.header().entry_type();
        let kind = match header_type {
            EntryType::XGlobalHeader => return Ok(()),
            // A pre-POSIX tar marks directories with a trailing slash on a regular entry.
            EntryType::Regular if entry.header().as_bytes()[156] == 0 && raw.ends_with(b"/") => Kind::Dir,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => Kind::File,
            EntryType::Directory => Kind::Dir,
            EntryType::Symlink | EntryType::Link => {
                let target = entry.link_name_bytes().map(|c| c.into_owned()).unwrap_or_default();
                if target.is_empty() {
                    return Err(invalid(path, "a link with an empty target"));
                }
                if header_type == EntryType::Symlink { Kind::Symlink(target) } else { Kind::HardLink(target) }
            }
            EntryType::Char | EntryType::Block => {
                let major = entry.header().device_major().map_err(|e| invalid(path, &e.to_string()))?;
                let minor = entry.header().device_minor().map_err(|e| invalid(path, &e.to_string()))?;
                let flag = if header_type == EntryType::Char { SFlag::S_IFCHR } else { SFlag::S_IFBLK };
                Kind::Node(flag, major.unwrap_or(0).into(), minor.unwrap_or(0).into())
            }
            EntryType::Fifo => Kind::Node(SFlag::S_IFIFO, 0, 0),
            other => return Err(unsupported(path, other)),
        };

        let comps = clean(&raw);
        let Some((name, parents)) = comps.split_last() else {
            // The root directory itself: Docker ignores its entry, so do we; anything else cannot replace it.
            return match kind {
                Kind::Dir => Ok(()),
                _ => Err(invalid(path, "a non-directory entry for the layer root")),
            };
        };
        let layer = self.copy.is_none();
        if layer && name.starts_with(WHITEOUT_META_PREFIX) && *name != WHITEOUT_OPAQUE {
            tracing::debug!(path, "skipping AUFS metadata");
            return Ok(());
        }
        let mut meta = self.meta(entry, path)?;
        if let Some((uid, gid)) = self.copy.as_ref().and_then(|c| c.owner) {
            (meta.uid, meta.gid) = (uid, gid);
        }
        let parent = self.parent(parents, path)?;

        if layer && *name == WHITEOUT_OPAQUE {
            let dir = File::from(parent);
            return dir.set_xattr(OVERLAY_OPAQUE_XATTR, b"y").map_err(fs_err(path, "setting the opaque xattr"));
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX)
            && layer
        {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(invalid(path, "a whiteout without a name"));
            }
            remove_existing(parent.as_fd(), hidden, false, path)?;
            mknodat(parent.as_fd(), hidden, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0))
                .map_err(nix_err(path, "creating the whiteout device"))?;
            return chown_at(parent.as_fd(), hidden, &meta, path);
        }

        if self.copy.as_ref().is_some_and(|c| c.no_overwrite_dir_non_dir) {
            refuse_dir_non_dir(parent.as_fd(), name, matches!(kind, Kind::Dir), path)?;
        }
        remove_existing(parent.as_fd(), name, matches!(kind, Kind::Dir), path)?;
        match kind {
            Kind::File => {
                let fd = openat(
                    parent.as_fd(),
                    *name,
                    OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::from_bits_truncate(0o600),
                )
                .map_err(nix_err(path, "creating the file"))?;
                let mut file = File::from(fd);
                let expected = entry.size();
                copy_data(entry, &mut file, expected, path)?;
                apply_fd_meta(&file, &meta, path)?;
                futimens(&file, &meta.mtime, &meta.mtime).map_err(nix_err(path, "setting the mtime"))?;
            }
            Kind::Dir => {
                match mkdirat(parent.as_fd(), *name, Mode::from_bits_truncate(0o700)) {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(nix_err(path, "creating the directory")(e)),
                }
                let fd = openat(
                    parent.as_fd(),
                    *name,
                    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
                .map_err(nix_err(path, "opening the directory"))?;
                apply_fd_meta(&File::from(fd), &meta, path)?;
                self.dirs.push((comps.join(&b'/'), meta.mtime));
            }
            Kind::Symlink(target) => {
                symlinkat(target.as_slice(), parent.as_fd(), *name).map_err(nix_err(path, "creating the symlink"))?;
                chown_at(parent.as_fd(), name, &meta, path)?;
                set_xattrs_at(parent.as_fd(), name, &meta, path)?;
                utimensat(parent.as_fd(), *name, &meta.mtime, &meta.mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(nix_err(path, "setting the mtime"))?;
            }
            Kind::HardLink(target) => {
                let target_display = String::from_utf8_lossy(&target).into_owned();
                let link_err = |source: io::Error| UnpackError::LinkTarget {
                    path: path.to_string(),
                    target: target_display.clone(),
                    source,
                };
                let tcomps = clean(&target);
                let Some((tname, tparents)) = tcomps.split_last() else {
                    return Err(link_err(io::Error::from(io::ErrorKind::IsADirectory)));
                };
                let tparent = match self.open_dir(&tparents.join(&b'/'), OFlag::O_PATH) {
                    Ok(fd) => fd,
                    Err(Errno::EXDEV) | Err(Errno::ELOOP) => return Err(UnpackError::Escape { path: path.into() }),
                    Err(e) => return Err(link_err(e.into())),
                };
                linkat(tparent.as_fd(), *tname, parent.as_fd(), *name, AtFlags::empty())
                    .map_err(|e| link_err(e.into()))?;
            }
            Kind::Node(flag, major, minor) => {
                mknodat(parent.as_fd(), *name, flag, Mode::from_bits_truncate(0o600), makedev(major, minor))
                    .map_err(nix_err(path, "creating the device node"))?;
                chown_at(parent.as_fd(), name, &meta, path)?;
                fchmodat(
                    parent.as_fd(),
                    *name,
                    Mode::from_bits_truncate(meta.mode & 0o7777),
                    FchmodatFlags::NoFollowSymlink,
                )
                .map_err(nix_err(path, "setting the mode"))?;
                set_xattrs_at(parent.as_fd(), name, &meta, path)?;
                utimensat(parent.as_fd(), *name, &meta.mtime, &meta.mtime, UtimensatFlags::NoFollowSymlink)
                    .map_err(nix_err(path, "setting the mtime"))?;
            }
        }
        Ok(())
    }

    /// The header fields, with PAX records overriding them (Go writes uids above 2097151 and sub-second mtimes
    /// only there) and the `SCHILY.xattr.*` records.
    fn meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>, path: &str) -> Result<Meta, UnpackError> {
        let h = entry.header();
        let old = h.as_old();
        // An empty field is 0, as Go's archive/tar reads it; anything else that is not a number is an error.
        let num = |parsed: io::Result<u64>, raw: &[u8]| match parsed {
            Ok(v) => Ok(v),
            Err(_) if raw.iter().all(|b| matches!(b, 0 | b' ')) => Ok(0),
            Err(e) => Err(invalid(path, &e.to_string())),
        };
        let mode = num(h.mode().map(u64::from), &old.mode)? as u32 & 0o7777;
        let mut uid = num(h.uid(), &old.uid)?;
        let mut gid = num(h.gid(), &old.gid)?;
        let mut mtime = TimeSpec::new(i64::try_from(num(h.mtime(), &old.mtime)?).unwrap_or(i64::MAX), 0);
        let mut xattrs = Vec::new();
        if let Some(exts) = entry.pax_extensions().map_err(|e| invalid(path, &format!("PAX records: {e}")))? {
            for ext in exts {
                let ext = ext.map_err(|e| invalid(path, &format!("PAX records: {e}")))?;
                let (key, value) = (ext.key_bytes(), ext.value_bytes());
                let number = || std::str::from_utf8(value).ok().and_then(|v| v.parse::<u64>().ok());
                match key {
                    b"uid" => uid = number().ok_or_else(|| invalid(path, "PAX uid is not a number"))?,
                    b"gid" => gid = number().ok_or_else(|| invalid(path, "PAX gid is not a number"))?,
                    b"mtime" => mtime = pax_time(value).ok_or_else(|| invalid(path, "PAX mtime is not a time"))?,
                    _ => {
                        if let Some(name) = key.strip_prefix(PAX_XATTR_PREFIX) {
                            if name.starts_with(OVERLAY_XATTR_PREFIX) {
                                tracing::warn!(path, xattr = %String::from_utf8_lossy(name), "dropping overlay xattr");
                            } else {
                                xattrs.push((name.to_vec(), value.to_vec()));
                            }
                        }
                    }
                }
            }
        }
        let id = |v: u64, what: &str| u32::try_from(v).map_err(|_| invalid(path, &format!("{what} {v} is too large")));
        Ok(Meta { mode, uid: id(uid, "uid")?, gid: id(gid, "gid")?, mtime, xattrs })
    }

    /// Open (creating what is missing, 0755 as Docker does) the parent directory of an entry, beneath the root.
    fn parent(&self, parents: &[&[u8]], path: &str) -> Result<OwnedFd, UnpackError> {
        let resolve_err = |e: Errno| match e {
            Errno::EXDEV | Errno::ELOOP => UnpackError::Escape { path: path.into() },
            e => nix_err(path, "opening the parent directory")(e),
        };
        match self.open_dir(&parents.join(&b'/'), OFlag::O_RDONLY) {
            Ok(fd) => return Ok(fd),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(resolve_err(e)),
        }
        let mut dir = self.open_dir(b"", OFlag::O_RDONLY).map_err(resolve_err)?;
        for i in 0..parents.len() {
            let prefix = parents[..=i].join(&b'/');
            dir = match self.open_dir(&prefix, OFlag::O_RDONLY) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => {
                    match mkdirat(dir.as_fd(), parents[i], Mode::from_bits_truncate(0o755)) {
                        Ok(()) | Err(Errno::EEXIST) => {}
                        Err(e) => return Err(nix_err(path, "creating a parent directory")(e)),
                    }
                    let fd = self.open_dir(&prefix, OFlag::O_RDONLY).map_err(resolve_err)?;
                    fchmod(&fd, Mode::from_bits_truncate(0o755))
                        .map_err(nix_err(path, "creating a parent directory"))?;
                    fd
                }
                Err(e) => return Err(resolve_err(e)),
            };
        }
        Ok(dir)
    }

    /// Open the directory `rel` (empty: the base) of the tree: beneath the layer root, or in the container's root.
    fn open_dir(&self, rel: &[u8], flags: OFlag) -> nix::Result<OwnedFd> {
        if self.copy.is_none() {
            return open_beneath(self.root, rel, flags);
        }
        let mut path = self.base.clone();
        if !rel.is_empty() {
            if !path.is_empty() {
                path.push(b'/');
            }
            path.extend_from_slice(rel);
        }
        let path: &[u8] = if path.is_empty() { b"." } else { &path };
        let how = OpenHow::new()
            .flags(flags | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        openat2(self.root, path, how)
    }

    /// Directory mtimes, last (creating entries in a directory changes its mtime). A directory replaced or removed
    /// by a later entry is skipped.
    fn finish(&mut self) -> Result<(), UnpackError> {
        for (rel, mtime) in std::mem::take(&mut self.dirs) {
            let path = String::from_utf8_lossy(&rel).into_owned();
            match self.open_dir(&rel, OFlag::O_RDONLY | OFlag::O_NOFOLLOW) {
                Ok(fd) => futimens(&fd, &mtime, &mtime).map_err(nix_err(&path, "setting the directory mtime"))?,
                Err(Errno::ENOENT | Errno::ENOTDIR | Errno::ELOOP | Errno::EXDEV) => {}
                Err(e) => return Err(nix_err(&path, "opening the directory")(e)),
            }
        }
        Ok(())
    }
}

fn unsupported(path: &str, kind: EntryType) -> UnpackError {
    UnpackError::Unsupported { path: path.into(), kind: format!("{kind:?} ({:?})", kind.as_byte() as char) }
}

/// The components of an entry path inside the layer: `/`, `.` and empty components dropped, `..` applied
/// lexically and clamped at the root (Docker's `filepath.Join("/", name)` inside its chroot).
fn clean(raw: &[u8]) -> Vec<&[u8]> {
    let mut out: Vec<&[u8]> = Vec::new();
    for c in raw.split(|b| *b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out
}

/// Open a directory `rel` (empty: the root) beneath `root`; the kernel fails the resolution with EXDEV if any
/// step, symlinks included, would leave `root`.
fn open_beneath(root: BorrowedFd<'_>, rel: &[u8], flags: OFlag) -> nix::Result<OwnedFd> {
    let rel: &[u8] = if rel.is_empty() { b"." } else { rel };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_BENEATH | ResolveFlag::RESOLVE_NO_MAGICLINKS | ResolveFlag::RESOLVE_NO_XDEV);
    openat2(root, rel, how)
}

/// Remove whatever `name` is in `parent` so a new entry can take its place, unless both are directories (they
/// merge).
fn remove_existing(parent: BorrowedFd<'_>, name: &[u8], is_dir: bool, path: &str) -> Result<(), UnpackError> {
    let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(nix_err(path, "checking what is there")(e)),
    };
    if is_dir && st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits() {
        return Ok(());
    }
    remove_all_at(parent, name).map_err(nix_err(path, "removing what an earlier entry put there"))
}

/// Docker's `noOverwriteDirNonDir`: a directory is not replaced by a non-directory, nor the reverse.
fn refuse_dir_non_dir(parent: BorrowedFd<'_>, name: &[u8], is_dir: bool, path: &str) -> Result<(), UnpackError> {
    let st = match fstatat(parent, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(nix_err(path, "checking what is there")(e)),
    };
    let there_dir = st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFDIR.bits();
    match (there_dir, is_dir) {
        (true, false) => Err(UnpackError::Overwrite { path: path.into(), what: "a directory with a non-directory" }),
        (false, true) => Err(UnpackError::Overwrite { path: path.into(), what: "a non-directory with a directory" }),
        _ => Ok(()),
    }
}

/// `rm -rf` of `name` in `parent`, through fds, never following a symlink.
fn remove_all_at(parent: BorrowedFd<'_>, name: &[u8]) -> nix::Result<()> {
    match unlinkat(parent, name, UnlinkatFlags::NoRemoveDir) {
        Ok(()) | Err(Errno::ENOENT) => return Ok(()),
        Err(Errno::EISDIR) => {}
        Err(e) => return Err(e),
    }
    let fd = openat(
        parent,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let children: Vec<Vec<u8>> = {
        let dup = fd.try_clone().map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(Errno::EIO as i32)))?;
        let mut dir = Dir::from_fd(dup)?;
        let mut names = Vec::new();
        for e in dir.iter() {
            let n = e?.file_name().to_bytes().to_vec();
            if n != b"." && n != b".." {
                names.push(n);
            }
        }
        names
    };
    for child in children {
        remove_all_at(fd.as_fd(), &child)?;
    }
    unlinkat(parent, name, UnlinkatFlags::RemoveDir)
}

fn copy_data(src: &mut impl Read, dst: &mut File, expected: u64, path: &str) -> Result<(), UnpackError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(UnpackError::EntryData { path: path.into(), source }),
        };
        dst.write_all(&buf[..n]).map_err(fs_err(path, "writing the file"))?;
        got += n as u64;
    }
    // The tar reader returns end-of-file early when the stream stops inside an entry's data.
    if got != expected {
        return Err(UnpackError::Truncated { path: path.into(), expected, got });
    }
    Ok(())
}

fn apply_fd_meta(file: &File, meta: &Meta, path: &str) -> Result<(), UnpackError> {
    // Owner first: chown clears the setuid and setgid bits that chmod then sets.
    fchown(file, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)))
        .map_err(nix_err(path, "setting the owner"))?;
    fchmod(file, Mode::from_bits_truncate(meta.mode)).map_err(nix_err(path, "setting the mode"))?;
    for (name, value) in &meta.xattrs {
        tolerate_xattr(file.set_xattr(OsStr::from_bytes(name), value), name, path)?;
    }
    Ok(())
}

fn chown_at(parent: BorrowedFd<'_>, name: &[u8], meta: &Meta, path: &str) -> Result<(), UnpackError> {
    fchownat(parent, name, Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)), AtFlags::AT_SYMLINK_NOFOLLOW)
        .map_err(nix_err(path, "setting the owner"))
}

/// Xattrs on something that cannot be opened for writing (a symlink, a device): `lsetxattr` on
/// `/proc/self/fd/<parent>/<name>`, which reaches the parent through its fd and does not follow `name`.
fn set_xattrs_at(parent: BorrowedFd<'_>, name: &[u8], meta: &Meta, path: &str) -> Result<(), UnpackError> {
    if meta.xattrs.is_empty() {
        return Ok(());
    }
    let mut target = PathBuf::from(format!("/proc/self/fd/{}", parent.as_raw_fd()));
    target.push(OsStr::from_bytes(name));
    for (xname, value) in &meta.xattrs {
        tolerate_xattr(xattr::set(&target, OsStr::from_bytes(xname), value), xname, path)?;
    }
    Ok(())
}

/// Like Docker: a filesystem or namespace that refuses an xattr (EPERM, ENOTSUP) is logged, not fatal.
fn tolerate_xattr(r: io::Result<()>, name: &[u8], path: &str) -> Result<(), UnpackError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if is_errno(&e, &[Errno::EPERM, Errno::ENOTSUP]) => {
            tracing::warn!(path, xattr = %String::from_utf8_lossy(name), error = %e, "xattr not kept");
            Ok(())
        }
        Err(e) => Err(fs_err(path, "setting an xattr")(e)),
    }
}

/// A PAX time: seconds with an optional fraction (`1700000000.123456789`), possibly negative.
fn pax_time(v: &[u8]) -> Option<TimeSpec> {
    let s = std::str::from_utf8(v).ok()?;
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: i64 = if digits.is_empty() { 0 } else { format!("{digits:0<9}").parse().ok()? };
    if secs < 0 && nanos > 0 {
        return Some(TimeSpec::new(secs - 1, 1_000_000_000 - nanos));
    }
    Some(TimeSpec::new(secs, nanos))
}

fn is_errno(e: &io::Error, which: &[Errno]) -> bool {
    e.raw_os_error().is_some_and(|raw| which.iter().any(|w| *w as i32 == raw))
}

fn invalid(path: &str, reason: &str) -> UnpackError {
    UnpackError::InvalidEntry { path: path.into(), reason: reason.into() }
}

fn nix_err<'a>(path: &'a str, op: &'static str) -> impl Fn(Errno) -> UnpackError + 'a {
    move |e| UnpackError::Fs { path: path.into(), op, source: e.into() }
}

fn fs_err<'a>(path: &'a str, op: &'static str) -> impl Fn(io::Error) -> UnpackError + 'a {
    move |source| UnpackError::Fs { path: path.into(), op, source }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// One tar entry, with raw bytes for its path and link so tests can write anything.
    #[derive(Clone)]
    struct Ent {
        kind: EntryType,
        path: Vec<u8>,
        link: Vec<u8>,
        data: Vec<u8>,
        mode: u32,
        owner: (u64, u64),
        mtime: u64,
        dev: (u32, u32),
        pax: Vec<(String, Vec<u8>)>,
    }

    fn ent(kind: EntryType, path: &str) -> Ent {
        let mode = if kind == EntryType::Directory { 0o755 } else { 0o644 };
        Ent {
            kind,
            path: path.into(),
            link: Vec::new(),
            data: Vec::new(),
            mode,
            owner: (0, 0),
            mtime: 1_600_000_000,
            dev: (0, 0),
            pax: Vec::new(),
        }
    }
    fn file(path: &str, data: &str) -> Ent {
        Ent { data: data.into(), ..ent(EntryType::Regular, path) }
    }
    fn dir(path: &str) -> Ent {
        ent(EntryType::Directory, path)
    }
    fn symlink(path: &str, target: &str) -> Ent {
        Ent { link: target.into(), mode: 0o777, ..ent(EntryType::Symlink, path) }
    }
    fn hardlink(path: &str, target: &str) -> Ent {
        Ent { link: target.into(), ..ent(EntryType::Link, path) }
    }

    fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
        let base = key.len() + value.len() + 3;
        let mut len = base + 1;
        while base + len.to_string().len() != len {
            len = base + len.to_string().len();
        }
        let mut r = format!("{len} {key}=").into_bytes();
        r.extend_from_slice(value);
        r.push(b'\n');
        r
    }

    fn tar(entries: &[Ent]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for e in entries {
            let mut pax = e.pax.clone();
            if e.path.len() > 100 {
                pax.push(("path".into(), e.path.clone()));
            }
            if e.link.len() > 100 {
                pax.push(("linkpath".into(), e.link.clone()));
            }
            if !pax.is_empty() {
                let data: Vec<u8> = pax.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
                let mut h = tar::Header::new_ustar();
                h.set_entry_type(EntryType::XHeader);
                h.as_old_mut().name[..14].copy_from_slice(b"././@PaxHeader");
                h.set_size(data.len() as u64);
                h.set_cksum();
                b.append(&h, data.as_slice()).expect("pax header");
            }
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(e.kind);
            h.set_mode(e.mode);
            h.set_uid(e.owner.0);
            h.set_gid(e.owner.1);
            h.set_mtime(e.mtime);
            h.set_size(e.data.len() as u64);
            h.set_device_major(e.dev.0).expect("major");
            h.set_device_minor(e.dev.1).expect("minor");
            let n = e.path.len().min(100);
            h.as_old_mut().name[..n].copy_from_slice(&e.path[..n]);
            let n = e.link.len().min(100);
            h.as_old_mut().linkname[..n].copy_from_slice(&e.link[..n]);
            h.set_cksum();
            b.append(&h, e.data.as_slice()).expect("entry");
        }
        b.into_inner().expect("tar end")
    }

    fn unpack(layer: &[u8]) -> (tempfile::TempDir, PathBuf, Result<UnpackStats, UnpackError>) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dest = tmp.path().join("diff");
        fs::create_dir(&dest).expect("dest");
        let r = unpack_layer(layer, &dest);
        (tmp, dest, r)
    }

    fn is_root() -> bool {
        let root = nix::unistd::geteuid().is_root();
        if !root {
            eprintln!("skipped: needs root (chown, mknod, trusted.* xattrs)");
        }
        root
    }

    #[test]
    fn compression_detection() {
        assert_eq!(detect_compression(&[0x1f, 0x8b, 8, 0]), Compression::Gzip);
        assert_eq!(detect_compression(&[0x28, 0xb5, 0x2f, 0xfd, 0]), Compression::Zstd);
        assert_eq!(detect_compression(b"etc/passwd"), Compression::None);
        assert_eq!(detect_compression(&[0x1f]), Compression::None);
        assert_eq!(detect_compression(&[0x28, 0xb5, 0x2f]), Compression::None);
        assert_eq!(detect_compression(&[]), Compression::None);
    }

    #[test]
    fn chain_ids_follow_the_spec() -> TestResult {
        // Computed by hand: printf 'sha256:<a> sha256:<b>' | sha256sum, with a, b, c the sha256 of "a", "b", "c".
        let diffs = [Digest::of(b"a"), Digest::of(b"b"), Digest::of(b"c")];
        let chain = chain_ids(&diffs);
        assert_eq!(chain[0], diffs[0]);
        assert_eq!(chain[1], "sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676".parse()?);
        assert_eq!(chain[2], "sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106".parse()?);
        assert!(chain_ids(&[]).is_empty());
        Ok(())
    }

    #[test]
    fn regular_files_keep_content_mode_owner_mtime() -> TestResult {
        let owned = Ent { mode: 0o4755, owner: (1234, 5678), ..file("usr/bin/su", "#!/bin/sh\n") };
        let layer = tar(&[dir("usr"), owned, file("empty", "")]);
        let (_tmp, dest, r) = unpack(&layer);
        let stats = r?;
        assert_eq!(stats.entries, 3);
        assert_eq!(stats.bytes, layer.len() as u64);
        assert_eq!(stats.diff_id, Digest::of(&layer));
        let p = dest.join("usr/bin/su");
        assert_eq!(fs::read_to_string(&p)?, "#!/bin/sh\n");
        let m = fs::symlink_metadata(&p)?;
        assert_eq!(m.mode() & 0o7777, 0o4755);
        if is_root() {
            assert_eq!((m.uid(), m.gid()), (1234, 5678));
        }
        assert_eq!(m.mtime(), 1_600_000_000);
        // The implied directory `usr/bin` is created 0755.
        assert_eq!(fs::metadata(dest.join("usr/bin"))?.mode() & 0o7777, 0o755);
        assert_eq!(fs::metadata(dest.join("empty"))?.len(), 0);
        Ok(())
    }

    #[test]
    fn directories_keep_mode_and_mtime_after_children() -> TestResult {
        let tmpdir = Ent { mode: 0o1777, mtime: 1_500_000_000, ..dir("tmp") };
        let (_tmp, dest, r) = unpack(&tar(&[tmpdir, file("tmp/x", "x"), dir("tmp/sub"), file("tmp/sub/y", "y")]));
        r?;
        let m = fs::symlink_metadata(dest.join("tmp"))?;
        assert!(m.is_dir());
        assert_eq!(m.mode() & 0o7777, 0o1777);
        assert_eq!(m.mtime(), 1_500_000_000);
        assert_eq!(fs::read_to_string(dest.join("tmp/sub/y"))?, "y");
        Ok(())
    }

    #[test]
    fn symlinks_are_created_as_they_are() -> TestResult {
        let owned = Ent { owner: (7, 8), mtime: 1_400_000_000, ..symlink("etc-link", "/etc") };
        let (_tmp, dest, r) = unpack(&tar(&[owned, symlink("rel", "../../outside"), file("f", "f")]));
        r?;
        assert_eq!(fs::read_link(dest.join("etc-link"))?, Path::new("/etc"));
        assert_eq!(fs::read_link(dest.join("rel"))?, Path::new("../../outside"));
        let m = fs::symlink_metadata(dest.join("etc-link"))?;
        assert!(m.file_type().is_symlink());
        assert_eq!(m.mtime(), 1_400_000_000);
        if is_root() {
            assert_eq!((m.uid(), m.gid()), (7, 8));
        }
        Ok(())
    }

    #[test]
    fn hard_links_share_the_inode() -> TestResult {
        let (_tmp, dest, r) =
            unpack(&tar(&[file("bin/busybox", "bb"), hardlink("bin/sh", "bin/busybox"), hardlink("ls", "/bin/sh")]));
        r?;
        let a = fs::metadata(dest.join("bin/busybox"))?;
        let b = fs::metadata(dest.join("bin/sh"))?;
        assert_eq!(a.ino(), b.ino());
        assert_eq!(a.nlink(), 3);
        assert_eq!(fs::metadata(dest.join("ls"))?.ino(), a.ino());
        // A link to nothing in the layer is an error naming the entry.
        let (_tmp, _dest, r) = unpack(&tar(&[hardlink("x", "missing")]));
        assert!(matches!(r, Err(UnpackError::LinkTarget { ref path, .. }) if path == "x"), "{r:?}");
        Ok(())
    }

    #[test]
    fn devices_and_fifos() -> TestResult {
        if !is_root() {
            return Ok(());
        }
        let null = Ent { dev: (1, 3), mode: 0o666, ..ent(EntryType::Char, "dev/null") };
        let loop0 = Ent { dev: (7, 0), mode: 0o660, owner: (0, 6), ..ent(EntryType::Block, "dev/loop0") };
        let fifo = Ent { mode: 0o4620, ..ent(EntryType::Fifo, "run/fifo") };
        let (_tmp, dest, r) = unpack(&tar(&[null, loop0, fifo]));
        r?;
        let m = fs::symlink_metadata(dest.join("dev/null"))?;
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), makedev(1, 3));
        assert_eq!(m.mode() & 0o7777, 0o666);
        let m = fs::symlink_metadata(dest.join("dev/loop0"))?;
        assert!(m.file_type().is_block_device());
        assert_eq!((m.rdev(), m.gid()), (makedev(7, 0), 6));
        let m = fs::symlink_metadata(dest.join("run/fifo"))?;
        assert!(m.file_type().is_fifo());
        assert_eq!(m.mode() & 0o7777, 0o4620);
        Ok(())
    }

    #[test]
    fn whiteouts_become_overlay_whiteouts() -> TestResult {
        if !is_root() {
            return Ok(());
        }
        let opaque = file("var/cache/.wh..wh..opq", "");
        let (_tmp, dest, r) = unpack(&tar(&[
            dir("etc"),
            file("etc/.wh.motd", ""),
            dir("var/cache"),
            opaque,
            file("var/cache/kept", "k"),
            file(".wh..wh.plnk", ""),
        ]));
        r?;
        let m = fs::symlink_metadata(dest.join("etc/motd"))?;
        assert!(m.file_type().is_char_device());
        assert_eq!(m.rdev(), 0);
        assert!(!dest.join("etc/.wh.motd").exists());
        assert_eq!(xattr::get(dest.join("var/cache"), OVERLAY_OPAQUE_XATTR)?.as_deref(), Some(&b"y"[..]));
        assert!(fs::symlink_metadata(dest.join("var/cache/.wh..wh..opq")).is_err());
        assert_eq!(fs::read_to_string(dest.join("var/cache/kept"))?, "k");
        assert!(fs::symlink_metadata(dest.join(".wh..wh.plnk")).is_err(), "AUFS metadata is skipped");
        assert!(xattr::get(dest.join("etc"), OVERLAY_OPAQUE_XATTR)?.is_none());
        // A whiteout in a directory the layer does not list creates the directory, as Docker does.
        let (_tmp, dest, r) = unpack(&tar(&[file("a/b/.wh.c", "")]));
        r?;
        assert!(fs::symlink_metadata(dest.join("a/b/c"))?.file_type().is_char_device());
        let (_tmp, _dest, r) = unpack(&tar(&[file("a/.wh.", "")]));
        assert!(matches!(r, Err(UnpackError::InvalidEntry { .. })), "{r:?}");
        Ok(())
    }

    #[test]
    fn xattrs_are_kept() -> TestResult {
        if !is_root() {
            return Ok(());
        }
        let xa = |e: Ent, k: &str, v: &[u8]| Ent { pax: vec![(format!("SCHILY.xattr.{k}"), v.to_vec())], ..e };
        let layer = tar(&[
            xa(
                file("bin/ping", "p"),
                "security.capability",
                &[1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            xa(file("f", "f"), "user.note", b"hello"),
            xa(dir("d"), "trusted.berth", b"dir"),
            xa(symlink("l", "f"), "trusted.berth", b"link"),
            xa(file("o", "o"), "trusted.overlay.redirect", b"/etc"),
        ]);
        let (_tmp, dest, r) = unpack(&layer);
        r?;
        assert!(xattr::get(dest.join("bin/ping"), "security.capability")?.is_some());
        assert_eq!(xattr::get(dest.join("f"), "user.note")?.as_deref(), Some(&b"hello"[..]));
        assert_eq!(xattr::get(dest.join("d"), "trusted.berth")?.as_deref(), Some(&b"dir"[..]));
        assert_eq!(xattr::get(dest.join("l"), "trusted.berth")?.as_deref(), Some(&b"link"[..]));
        assert!(xattr::get(dest.join("f"), "trusted.berth")?.is_none(), "the symlink's xattr is not on its target");
        assert!(xattr::get(dest.join("o"), "trusted.overlay.redirect")?.is_none(), "overlay xattrs are dropped");
        Ok(())
    }

    #[test]
    fn pax_overrides_uid_gid_mtime_and_long_paths() -> TestResult {
        let long = format!("{}/{}", "d".repeat(120), "f".repeat(150));
        let e = Ent {
            pax: vec![
                ("uid".into(), b"3000000".to_vec()),
                ("gid".into(), b"3000001".to_vec()),
                ("mtime".into(), b"1700000000.5".to_vec()),
            ],
            ..file(&long, "long")
        };
        let (_tmp, dest, r) = unpack(&tar(&[e]));
        r?;
        let m = fs::symlink_metadata(dest.join(&long))?;
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_700_000_000, 500_000_000));
        if is_root() {
            assert_eq!((m.uid(), m.gid()), (3_000_000, 3_000_001));
        }
        assert_eq!(pax_time(b"-1.25"), Some(TimeSpec::new(-2, 750_000_000)));
        assert_eq!(pax_time(b"x"), None);
        Ok(())
    }

    #[test]
    fn later_entries_win() -> TestResult {
        let (_tmp, dest, r) = unpack(&tar(&[
            file("a", "first"),
            file("a", "second"),
            dir("d"),
            file("d/child", "c"),
            file("d", "now a file"),
            file("e", "file first"),
            dir("e"),
            dir("m"),
            file("m/kept", "k"),
            Ent { mode: 0o700, ..dir("m") },
            file("t", "target"),
            hardlink("h", "t"),
            file("h", "replaced, not written through"),
            symlink("s", "t"),
            file("s", "replaced the symlink"),
        ]));
        r?;
        assert_eq!(fs::read_to_string(dest.join("a"))?, "second");
        assert_eq!(fs::read_to_string(dest.join("d"))?, "now a file");
        assert!(fs::symlink_metadata(dest.join("e"))?.is_dir());
        assert_eq!(fs::read_to_string(dest.join("m/kept"))?, "k");
        assert_eq!(fs::metadata(dest.join("m"))?.permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::read_to_string(dest.join("t"))?, "target");
        assert_eq!(fs::metadata(dest.join("t"))?.nlink(), 1);
        assert_eq!(fs::read_to_string(dest.join("h"))?, "replaced, not written through");
        assert!(fs::symlink_metadata(dest.join("s"))?.is_file());
        Ok(())
    }

    #[test]
    fn paths_are_cleaned_as_docker_does() -> TestResult {
        assert_eq!(clean(b"/etc/./x//y/"), vec![&b"etc"[..], b"x", b"y"]);
        assert_eq!(clean(b"../../etc/x"), vec![&b"etc"[..], b"x"]);
        assert_eq!(clean(b"a/../../b"), vec![&b"b"[..]]);
        assert!(clean(b"./").is_empty());
        let (_tmp, dest, r) = unpack(&tar(&[file("/abs", "1"), file("../../up", "2"), dir("./"), dir("/")]));
        r?;
        assert_eq!(fs::read_to_string(dest.join("abs"))?, "1");
        assert_eq!(fs::read_to_string(dest.join("up"))?, "2");
        Ok(())
    }

    #[test]
    fn compressed_layers_have_the_diff_id_of_the_plain_tar() -> TestResult {
        let plain = tar(&[dir("etc"), file("etc/hostname", "berth\n")]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain)?;
        let gz = gz.finish()?;
        let zst = zstd::encode_all(plain.as_slice(), 3)?;
        for blob in [&plain, &gz, &zst] {
            let (_tmp, dest, r) = unpack(blob);
            let stats = r?;
            assert_eq!(stats.diff_id, Digest::of(&plain));
            assert_eq!(stats.bytes, plain.len() as u64);
            assert_eq!(fs::read_to_string(dest.join("etc/hostname"))?, "berth\n");
        }
        Ok(())
    }

    #[test]
    fn truncated_and_corrupt_layers_are_errors() -> TestResult {
        let plain = tar(&[file("a", &"x".repeat(5000)), file("b", "b")]);
        // Cut inside the data of `a`.
        let (_tmp, _dest, r) = unpack(&plain[..512 + 1000]);
        assert!(matches!(r, Err(UnpackError::Truncated { ref path, expected: 5000, .. }) if path == "a"), "{r:?}");
        // Cut inside the second header.
        let (_tmp, _dest, r) = unpack(&plain[..512 + 5120 + 100]);
        assert!(matches!(r, Err(UnpackError::Read { .. })), "{r:?}");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain)?;
        let gz = gz.finish()?;
        let (_tmp, _dest, r) = unpack(&gz[..gz.len() - 6]);
        assert!(r.is_err(), "a gzip stream without its trailer: {r:?}");
        let mut bad = gz.clone();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        let (_tmp, _dest, r) = unpack(&bad);
        assert!(r.is_err(), "a corrupt gzip stream: {r:?}");
        let zst = zstd::encode_all(plain.as_slice(), 3)?;
        let (_tmp, _dest, r) = unpack(&zst[..zst.len() - 10]);
        assert!(r.is_err(), "a truncated zstd stream: {r:?}");
        let msg = unpack(&plain[..512 + 1000]).2.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("\"a\""), "{msg}");
        Ok(())
    }

    #[test]
    fn unsupported_entries_and_bad_destinations() -> TestResult {
        let (_tmp, _dest, r) = unpack(&tar(&[ent(EntryType::new(b'Z'), "weird")]));
        assert!(matches!(r, Err(UnpackError::Unsupported { .. })), "{r:?}");
        let (_tmp, _dest, r) = unpack(&tar(&[file("/", "x")]));
        assert!(matches!(r, Err(UnpackError::InvalidEntry { .. })), "{r:?}");
        let tmp = tempfile::tempdir()?;
        fs::write(tmp.path().join("existing"), "x")?;
        assert!(matches!(unpack_layer(&tar(&[])[..], tmp.path()), Err(UnpackError::DestNotEmpty(_))));
        assert!(matches!(unpack_layer(&tar(&[])[..], &tmp.path().join("missing")), Err(UnpackError::OpenDest { .. })));
        Ok(())
    }

    #[test]
    fn atomic_unpack_renames_into_place_once() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let root = tmp.path().join("layers");
        let layer = tar(&[file("hello", "world")]);
        let chain = Digest::of(&layer);
        let diff = unpack_layer_atomic(layer.as_slice(), &root, &chain)?;
        assert_eq!(diff, root.join(chain.hex()).join("diff"));
        assert_eq!(fs::read_to_string(diff.join("hello"))?, "world");
        // Already there: returned as is, the stream is not read.
        let again = unpack_layer_atomic(&b"not a tar at all"[..], &root, &chain)?;
        assert_eq!(again, diff);
        // Lost the race: `<chain>` appeared while this unpack ran.
        let other = Digest::of(b"other");
        let racing = RaceReader { inner: io::Cursor::new(tar(&[file("mine", "m")])), plant: root.join(other.hex()) };
        let diff = unpack_layer_atomic(racing, &root, &other)?;
        assert_eq!(fs::read_to_string(diff.join("theirs"))?, "t");
        assert!(!diff.join("mine").exists());
        // A failure leaves nothing behind.
        let bad = Digest::of(b"bad");
        let r = unpack_layer_atomic(&tar(&[hardlink("x", "missing")])[..], &root, &bad);
        assert!(r.is_err());
        assert!(!root.join(bad.hex()).exists());
        let left: Vec<_> = fs::read_dir(&root)?.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert!(left.iter().all(|n| !n.as_bytes().starts_with(b"tmp-")), "{left:?}");
        fs::create_dir_all(root.join("tmp-crashed/diff/x"))?;
        remove_temp_dirs(&root)?;
        assert!(!root.join("tmp-crashed").exists());
        assert!(root.join(chain.hex()).exists());
        Ok(())
    }

    /// Creates `<plant>/diff/theirs` on its first read, as a concurrent unpack finishing first would.
    struct RaceReader {
        inner: io::Cursor<Vec<u8>>,
        plant: PathBuf,
    }

    impl Read for RaceReader {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if !self.plant.exists() {
                fs::create_dir_all(self.plant.join("diff"))?;
                fs::write(self.plant.join("diff/theirs"), "t")?;
            }
            self.inner.read(buf)
        }
    }
}
