//! A stopped container's binds and volumes, mounted into its overlay for a copy, as Docker's `MountVolumes` does
//! before a copy: so `docker cp` into a stopped container's volume lands in the volume, as it will be seen once
//! the container runs.
//!
//! Each destination is resolved (and created when missing: a directory, or an empty file for a file source)
//! inside the container's root with `RESOLVE_IN_ROOT`, and the source is bind-mounted onto the fd of that
//! destination (`/proc/self/fd/<n>`), never onto a path a symlink could redirect. Read-only mounts are remounted
//! read-only. Tmpfs mounts are not made (a stopped container's tmpfs is empty), nor volumes with driver options
//! (`type`/`device`: their filesystem is mounted only while a container runs). Parents mount before children.
//! The mounts go away with the overlay, which is detached with everything below it.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat};
use nix::mount::{MsFlags, mount};
use nix::sys::stat::{Mode, mkdirat};

use super::CopyError;
use super::path::open_in_root;
use crate::volume::{MountKind, MountPoint, VolumeStore};

fn mount_err(what: String) -> impl FnOnce(Errno) -> CopyError {
    move |e| CopyError::Io { what, source: e.into() }
}

/// Mount the record's binds and volumes under `root` (the overlay mounted for the copy); how many were mounted.
pub fn mount_all(root: BorrowedFd<'_>, points: &[MountPoint], store: &VolumeStore) -> Result<usize, CopyError> {
    let mut sorted: Vec<&MountPoint> = points.iter().collect();
    sorted.sort_by_key(|p| p.destination.split('/').filter(|c| !c.is_empty()).count());
    let mut mounted = 0;
    for p in sorted {
        let source = match p.kind {
            MountKind::Tmpfs => continue,
            MountKind::Bind => PathBuf::from(&p.source),
            MountKind::Volume => match store.get(&p.name) {
                Ok(v) if v.options.is_empty() => store.mountpoint(&p.name),
                Ok(_) => {
                    tracing::debug!(volume = %p.name, "volume with driver options not mounted for a copy");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(volume = %p.name, error = %e, "volume of a stopped container is missing");
                    continue;
                }
            },
        };
        // A bind source that does not exist (yet) has nothing to show; the start will create or refuse it.
        let Ok(meta) = std::fs::metadata(&source) else { continue };
        let target = make_target(root, &p.destination, meta.is_dir())?;
        let what = format!("mounting {} at {} for the copy", source.display(), p.destination);
        let fd_path = format!("/proc/self/fd/{}", target.as_raw_fd());
        mount(Some(&source), fd_path.as_str(), None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
            .map_err(mount_err(what.clone()))?;
        mounted += 1;
        if !p.rw {
            // The fd above names the directory under the new mount; the mount's own root is found by a new lookup.
            let top = open_in_root(root, &p.destination, OFlag::O_PATH).map_err(mount_err(what.clone()))?;
            let top_path = format!("/proc/self/fd/{}", top.as_raw_fd());
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
            mount(None::<&str>, top_path.as_str(), None::<&str>, flags, None::<&str>).map_err(mount_err(what))?;
        }
    }
    Ok(mounted)
}

/// The destination inside the root, created when missing (parents 0755 as Docker makes them); its fd.
fn make_target(root: BorrowedFd<'_>, destination: &str, dir: bool) -> Result<OwnedFd, CopyError> {
    let err = |e: Errno| CopyError::Io { what: format!("creating the mount point {destination}"), source: e.into() };
    let parts: Vec<&str> = destination.split('/').filter(|c| !c.is_empty() && *c != ".").collect();
    let mut prefix = String::from("/");
    for (i, part) in parts.iter().enumerate() {
        let here = format!("{prefix}{part}");
        match open_in_root(root, &here, OFlag::O_PATH) {
            Ok(_) => {}
            Err(Errno::ENOENT) => {
                let parent = open_in_root(root, &prefix, OFlag::O_PATH | OFlag::O_DIRECTORY).map_err(err)?;
                let last = i + 1 == parts.len();
                let made = if last && !dir {
                    let flags = OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW;
                    openat(parent.as_fd(), *part, flags, Mode::from_bits_truncate(0o644)).map(drop)
                } else {
                    mkdirat(parent.as_fd(), *part, Mode::from_bits_truncate(0o755))
                };
                match made {
                    Ok(()) | Err(Errno::EEXIST) => {}
                    Err(e) => return Err(err(e)),
                }
            }
            Err(e) => return Err(err(e)),
        }
        prefix = format!("{here}/");
    }
    open_in_root(root, destination, OFlag::O_PATH).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_points_are_created_inside_the_root() -> Result<(), Box<dyn std::error::Error>> {
        let t = tempfile::tempdir()?;
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc"))?;
        std::fs::create_dir_all(root.join("host"))?;
        std::fs::create_dir_all(t.path().join("host"))?;
        // A destination through a symlink that points above the root lands inside it.
        std::os::unix::fs::symlink("/../../host", root.join("up"))?;
        let fd = nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
        make_target(fd.as_fd(), "/up/data/deep", true)?;
        make_target(fd.as_fd(), "/etc/conf.d/app.conf", false)?;
        assert!(root.join("host/data/deep").is_dir());
        assert!(root.join("etc/conf.d/app.conf").is_file());
        assert_eq!(std::fs::read_dir(t.path().join("host"))?.count(), 0, "nothing made outside the root");
        // Existing ones are used as they are.
        make_target(fd.as_fd(), "/etc", true)?;
        Ok(())
    }
}
