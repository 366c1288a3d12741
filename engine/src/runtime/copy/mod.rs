//! `docker cp` in berthd: stat, read (tar out) and write (tar in) paths of a container's filesystem, running or
//! not.
//!
//! # Which filesystem
//! - A running (or paused) container is reached through `/proc/<init pid>/root`: the root of its own mount
//!   namespace, so its volumes, bind mounts, tmpfs and `/etc/hosts` are seen as the container sees them, as
//!   Docker's view (rootfs plus mounted volumes) shows them.
//! - A created or exited container has no mounts: its overlay is mounted for the copy at
//!   `containers/<id>/rootfs` from the same lowers, upper and work dirs as a start (`Runtime::prepare_rootfs`),
//!   its binds and plain volumes are bind-mounted into it as Docker does for a copy ([`volumes`]), the overlay is
//!   made read-only when the container's rootfs is (its volumes stay as they are), and all of it is detached when
//!   the copy ends, also on error.
//!
//! While a stopped container's overlay is mounted for a copy, its start waits: both hold the container's entry in
//! [`RootfsLocks`], so a start never mounts a second overlay over the same upper and work directories.
//!
//! # Containment
//! Every path is resolved by the kernel with `RESOLVE_IN_ROOT` against the container's root (see [`path`]); the
//! tar written into a container goes through the layer unpacker's code in that mode
//! ([`crate::image::unpack::extract_in_root`]).

pub mod pack;
pub mod path;
pub mod stat;
pub mod volumes;

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::stat::{Mode, SFlag, fstat};
use tokio::sync::OwnedMutexGuard;

use super::lifecycle::{RunError, Runtime};
use super::record::Status;
use crate::image::rootfs;
use crate::image::unpack::{ExtractOptions, UnpackError, extract_in_root};
use path::{Located, absolute, base_name, follow_in_root, open_in_root};
use stat::PathStat;

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("Could not find the file {path} in container {container}")]
    NotFound { path: String, container: String },
    #[error("extraction point is not a directory")]
    NotADirectory,
    #[error("container rootfs is marked read-only")]
    ReadOnly,
    #[error("{0}")]
    BadRequest(String),
    #[error("{what}: {source}")]
    Io { what: String, source: io::Error },
    #[error("extracting into {path}: {source}")]
    Extract { path: String, source: UnpackError },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> CopyError {
    let what = what.into();
    move |source| CopyError::Io { what, source }
}

/// One async lock per container id, held by a start and by a copy that mounts a stopped container's overlay.
#[derive(Default)]
pub struct RootfsLocks {
    map: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl RootfsLocks {
    pub async fn lock(&self, id: &str) -> OwnedMutexGuard<()> {
        let entry = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            // Entries nobody holds or waits for are dropped, so the map does not grow with every container ever.
            map.retain(|_, m| Arc::strong_count(m) > 1);
            map.entry(id.to_string()).or_default().clone()
        };
        entry.lock_owned().await
    }
}

/// The root of a container's filesystem, open for a copy. Dropping it closes the fd, unmounts a temporary
/// overlay and lets a waiting start go, in that order (fields drop in declaration order).
pub struct ContainerRoot {
    fd: OwnedFd,
    pub name: String,
    pub user: String,
    pub read_only: bool,
    _mount: Option<TempMount>,
    _lock: Option<OwnedMutexGuard<()>>,
}

/// The overlay mounted for a copy, and whether volumes are mounted in it.
struct TempMount {
    target: PathBuf,
    submounts: bool,
}

impl Drop for TempMount {
    fn drop(&mut self) {
        // With volumes inside, a lazy detach takes the whole tree at once (a plain unmount would be EBUSY).
        let result = if self.submounts {
            nix::mount::umount2(&self.target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
                .map_err(|e| e.to_string())
        } else {
            rootfs::unmount(&self.target).map_err(|e| e.to_string())
        };
        if let Err(e) = result {
            tracing::warn!(target = %self.target.display(), error = %e, "unmounting a rootfs mounted for a copy");
        }
    }
}

impl ContainerRoot {
    /// Open container `key`'s root: its live root if it runs, else its overlay mounted for the copy.
    pub async fn open(runtime: &Runtime, key: &str) -> Result<ContainerRoot, CopyError> {
        let record = runtime.containers.get(key).map_err(RunError::from)?;
        runtime.refresh(&record.id).await;
        let lock = runtime.rootfs_locks.lock(&record.id).await;
        let record = runtime.containers.get(&record.id).map_err(RunError::from)?;
        let name = record.name.clone();
        let user = record.config.user.clone();
        let read_only = record.host_config.readonly_rootfs;
        if matches!(record.state.status, Status::Running | Status::Paused) && record.state.pid > 0 {
            let proc_root = format!("/proc/{}/root", record.state.pid);
            let fd = nix::fcntl::open(proc_root.as_str(), OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
                .map_err(|e| io_err(format!("opening {proc_root}"))(e.into()))?;
            // The pid was read before the open: if the container exited in between, the pid may be another
            // process's. Its record still naming the same pid as running means the fd is the container's.
            let again = runtime.containers.get(&record.id).map_err(RunError::from)?;
            if again.state.pid != record.state.pid || !matches!(again.state.status, Status::Running | Status::Paused) {
                return Err(RunError::NotRunning(record.id).into());
            }
            return Ok(ContainerRoot { fd, name, user, read_only, _mount: None, _lock: None });
        }
        let target = runtime.prepare_rootfs(&record)?;
        let mut mount = TempMount { target: target.clone(), submounts: false };
        let fd = nix::fcntl::open(&target, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
            .map_err(|e| io_err(format!("opening {}", target.display()))(e.into()))?;
        // Marked first: a failure half-way leaves some mounted, and the drop must detach them too.
        mount.submounts = !record.mounts.is_empty();
        volumes::mount_all(fd.as_fd(), &record.mounts, &runtime.volumes)?;
        if read_only {
            // Writes outside the volumes fail with EROFS, as in the running container.
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
            nix::mount::mount(None::<&str>, &target, None::<&str>, flags, None::<&str>)
                .map_err(|e| io_err(format!("making {} read-only", target.display()))(e.into()))?;
        }
        Ok(ContainerRoot { fd, name, user, read_only, _mount: Some(mount), _lock: Some(lock) })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The root as a path for code that takes one (`/proc/self/fd/<n>`, resolved by the kernel to the fd).
    fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }

    fn not_found(&self, path: &str) -> CopyError {
        CopyError::NotFound { path: path.to_string(), container: self.name.clone() }
    }

    /// What `HEAD`/`GET` report for `path`: the stat (the last component not followed) and where it is.
    pub fn stat(&self, path: &str) -> Result<(PathStat, Located), CopyError> {
        let abs = absolute(path);
        let located = Located::find(self.fd(), &abs)
            .map_err(io_err(format!("resolving {path}")))?
            .ok_or_else(|| self.not_found(path))?;
        let st = located.lstat().map_err(io_err(format!("stat {path}")))?;
        let link_target = if st.st_mode & SFlag::S_IFMT.bits() == SFlag::S_IFLNK.bits() {
            follow_in_root(self.fd(), &abs).map_err(io_err(format!("following the symlink {path}")))?
        } else {
            String::new()
        };
        Ok((PathStat::new(base_name(&abs), &st, link_target), located))
    }

    /// Write the tar of `path` to `out` (what `GET /containers/{id}/archive` streams).
    pub fn archive(&self, path: &str, located: &Located, out: impl Write) -> Result<(), CopyError> {
        pack::write_tar(located, base_name(&absolute(path)), out).map_err(io_err(format!("archiving {path}")))
    }

    /// Check that `path` (followed to the end) is a directory to extract into.
    pub fn extraction_point(&self, path: &str) -> Result<(), CopyError> {
        if path.is_empty() {
            return Err(CopyError::BadRequest("path is required".into()));
        }
        let fd = match open_in_root(self.fd(), &absolute(path), OFlag::O_PATH) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Err(self.not_found(path)),
            Err(Errno::ENOTDIR) => return Err(CopyError::NotADirectory),
            Err(e) => return Err(io_err(format!("resolving {path}"))(e.into())),
        };
        let st = fstat(fd.as_fd()).map_err(|e| io_err(format!("stat {path}"))(e.into()))?;
        if st.st_mode & SFlag::S_IFMT.bits() != SFlag::S_IFDIR.bits() {
            return Err(CopyError::NotADirectory);
        }
        Ok(())
    }

    /// Who owns the extracted files: the container's root (0:0), or with `copyUIDGID` the container's user as
    /// its `/etc/passwd` says, or the tar's own owners when the container has no user (Docker's rules).
    pub fn owner(&self, copy_uid_gid: bool) -> Result<Option<(u32, u32)>, CopyError> {
        if !copy_uid_gid {
            return Ok(Some((0, 0)));
        }
        if self.user.is_empty() {
            return Ok(None);
        }
        let user = crate::container::user::resolve(Path::new(&self.proc_path()), &self.user, &[])
            .map_err(|e| CopyError::BadRequest(e.to_string()))?;
        Ok(Some((user.uid, user.gid)))
    }

    /// Extract the tar from `reader` into the directory `path` (checked with [`Self::extraction_point`]).
    pub fn extract(&self, path: &str, reader: impl Read, options: ExtractOptions) -> Result<(), CopyError> {
        let abs = absolute(path);
        extract_in_root(reader, self.fd(), abs.as_bytes(), options).map(|_| ()).map_err(|source| match source {
            // A running container's read-only rootfs (a volume in it is writable), said as Docker says it.
            UnpackError::Fs { source: ref e, .. } if e.raw_os_error() == Some(Errno::EROFS as i32) => {
                CopyError::ReadOnly
            }
            source => CopyError::Extract { path: path.to_string(), source },
        })
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, symlink};

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn tar_of(entries: &[(&str, Option<&str>)]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, content) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(1234);
            h.set_gid(4321);
            h.set_mtime(1_600_000_000);
            match content {
                Some(c) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_mode(0o640);
                    h.set_size(c.len() as u64);
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o750);
                    h.set_size(0);
                }
            }
            // Names written raw: the tar crate refuses `..`, which a hostile client may well send.
            let name = &mut h.as_old_mut().name;
            name.fill(0);
            name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, content.unwrap_or("").as_bytes())?;
        }
        Ok(b.into_inner()?)
    }

    /// A container root with escaping symlinks, beside a "host" directory that must stay untouched.
    fn container() -> Result<(tempfile::TempDir, OwnedFd), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("tmp"))?;
        std::fs::create_dir_all(t.path().join("host"))?;
        // The container's own /host, where its escaping links really lead.
        std::fs::create_dir_all(root.join("host"))?;
        symlink("/../../host", root.join("tmp/up"))?;
        symlink("../../../../host", root.join("rel"))?;
        std::fs::write(root.join("tmp/file"), "old")?;
        let fd = nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
        Ok((t, fd))
    }

    #[test]
    fn extraction_resolves_symlinks_inside_the_root() -> TestResult {
        let (t, root) = container()?;
        let tar = tar_of(&[("up/x", Some("through an absolute link")), ("../../rel/y", Some("clamped"))])?;
        extract_in_root(tar.as_slice(), root.as_fd(), b"/tmp", ExtractOptions::default())?;
        assert_eq!(std::fs::read_dir(t.path().join("host"))?.count(), 0, "nothing reached the host");
        // `/tmp/up` is `/host` inside the container; `../../rel/y` is clamped to `/tmp/rel/y`.
        assert_eq!(std::fs::read_to_string(t.path().join("root/host/x"))?, "through an absolute link");
        assert_eq!(std::fs::read_to_string(t.path().join("root/tmp/rel/y"))?, "clamped");
        // An extraction point reached through a relative escaping link stays inside too.
        extract_in_root(tar_of(&[("z", Some("z"))])?.as_slice(), root.as_fd(), b"/rel", ExtractOptions::default())?;
        assert_eq!(std::fs::read_to_string(t.path().join("root/host/z"))?, "z");
        assert_eq!(std::fs::read_dir(t.path().join("host"))?.count(), 0);
        Ok(())
    }

    #[test]
    fn extraction_sets_the_owner_and_keeps_modes() -> TestResult {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: chown needs root");
            return Ok(());
        }
        let (t, root) = container()?;
        let tar = tar_of(&[("d", None), ("d/f", Some("f"))])?;
        let root_owner = ExtractOptions { owner: Some((0, 0)), ..Default::default() };
        extract_in_root(tar.as_slice(), root.as_fd(), b"/tmp", root_owner)?;
        let f = std::fs::metadata(t.path().join("root/tmp/d/f"))?;
        assert_eq!((f.uid(), f.gid(), f.mode() & 0o7777, f.mtime()), (0, 0, 0o640, 1_600_000_000));
        let d = std::fs::metadata(t.path().join("root/tmp/d"))?;
        assert_eq!((d.uid(), d.mode() & 0o7777), (0, 0o750));
        // Without an owner (copyUIDGID for a container without a user) the tar's owners stay.
        extract_in_root(tar.as_slice(), root.as_fd(), b"/tmp", ExtractOptions::default())?;
        let f = std::fs::metadata(t.path().join("root/tmp/d/f"))?;
        assert_eq!((f.uid(), f.gid()), (1234, 4321));
        Ok(())
    }

    #[test]
    fn no_overwrite_dir_non_dir_refuses_both_ways() -> TestResult {
        let (t, root) = container()?;
        let refuse = ExtractOptions { no_overwrite_dir_non_dir: true, ..Default::default() };
        let r = extract_in_root(tar_of(&[("file", None)])?.as_slice(), root.as_fd(), b"/tmp", refuse.clone());
        assert!(matches!(r, Err(UnpackError::Overwrite { .. })), "{r:?}");
        std::fs::create_dir(t.path().join("root/tmp/dir"))?;
        let r = extract_in_root(tar_of(&[("dir", Some("x"))])?.as_slice(), root.as_fd(), b"/tmp", refuse.clone());
        assert!(matches!(r, Err(UnpackError::Overwrite { .. })), "{r:?}");
        // A file replaces a file; without the flag a directory replaces a file.
        extract_in_root(tar_of(&[("file", Some("new"))])?.as_slice(), root.as_fd(), b"/tmp", refuse)?;
        assert_eq!(std::fs::read_to_string(t.path().join("root/tmp/file"))?, "new");
        extract_in_root(tar_of(&[("file", None)])?.as_slice(), root.as_fd(), b"/tmp", ExtractOptions::default())?;
        assert!(t.path().join("root/tmp/file").is_dir());
        Ok(())
    }

    #[test]
    fn whiteout_names_are_plain_files_in_a_copy() -> TestResult {
        let (t, root) = container()?;
        let tar = tar_of(&[(".wh.file", Some("plain")), (".wh..wh..opq", Some(""))])?;
        extract_in_root(tar.as_slice(), root.as_fd(), b"/tmp", ExtractOptions::default())?;
        assert_eq!(std::fs::read_to_string(t.path().join("root/tmp/file"))?, "old");
        assert_eq!(std::fs::read_to_string(t.path().join("root/tmp/.wh.file"))?, "plain");
        assert!(t.path().join("root/tmp/.wh..wh..opq").is_file());
        Ok(())
    }

    #[tokio::test]
    async fn locks_exclude_per_container_and_are_dropped_when_free() {
        let locks = RootfsLocks::default();
        let held = |id: &str| {
            let map = locks.map.lock().unwrap_or_else(|e| e.into_inner());
            map.get(id).is_some_and(|m| m.try_lock().is_err())
        };
        let a = locks.lock("a").await;
        // Another container is not held up.
        let b = locks.lock("b").await;
        assert!(held("a") && held("b"));
        drop(a);
        assert!(!held("a"));
        drop(b);
        let _a = locks.lock("a").await;
        assert!(held("a"));
        let map = locks.map.lock().unwrap_or_else(|e| e.into_inner());
        assert!(!map.contains_key("b"), "a free entry is dropped on the next lock");
    }
}
