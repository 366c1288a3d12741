//! Docker's copy-up: an empty volume mounted where the image has files gets a copy of them on first use, with
//! owners, modes, times, symlinks, hard links, special files and extended attributes, and the volume's root takes
//! the owner and mode of the image's directory, so the container's user can use it.
//!
//! Hand-written because no crate copies a tree keeping ownership, xattrs and hard links (fs_extra and
//! copy_dir copy contents and modes only). The image directory is opened inside the container's rootfs with
//! `openat2(RESOLVE_IN_ROOT)`, so a symlink in the image cannot point the copy at the host; below it, symlinks
//! are copied as links and never followed.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};
use nix::sys::stat::{Mode, SFlag, mknod};

/// Copy the image's `destination` (inside `rootfs`) into `volume` when the volume is empty. Returns whether a
/// copy was made (nothing when the volume has files or the image has no directory there).
///
/// The copy is made in place (a container may already use the volume's directory, so it cannot be swapped for a
/// finished one); `marker`, written before and removed after, tells the next start that a copy was cut short
/// (berthd killed), and that copy's partial files are removed and the copy made again.
pub fn copy_up(rootfs: &Path, destination: &str, volume: &Path, marker: &Path) -> io::Result<bool> {
    if marker.exists() {
        clear_dir(volume)?;
    } else if fs::read_dir(volume)?.next().is_some() {
        return Ok(false);
    }
    let Some(fd) = open_dir_in_root(rootfs, destination)? else {
        remove_marker(marker)?;
        return Ok(false);
    };
    // The opened directory by its fd: paths below it are looked up from there, never from the host's root.
    let source = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
    fs::write(marker, b"")?;
    copy_tree(&source, volume)?;
    apply_metadata(&source, volume, &fs::metadata(&source)?)?;
    drop(fd);
    remove_marker(marker)?;
    Ok(true)
}

fn remove_marker(marker: &Path) -> io::Result<()> {
    match fs::remove_file(marker) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Remove everything inside `dir`, keeping `dir` itself (it may be a mount point).
fn clear_dir(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if fs::symlink_metadata(&path)?.is_dir() {
            fs::remove_dir_all(&path)?;
        } else {
            fs::remove_file(&path)?;
        }
    }
    Ok(())
}

fn open_dir_in_root(rootfs: &Path, path: &str) -> io::Result<Option<OwnedFd>> {
    let root = fs::File::open(rootfs)?;
    let how = OpenHow::new()
        .flags(OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&root, path.trim_start_matches('/'), how) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Copy the contents of `src` into the existing directory `dst`, depth first with an explicit stack (an image's
/// tree can be deep); directories get their metadata after their contents, so a read-only one can be filled.
fn copy_tree(src: &Path, dst: &Path) -> io::Result<()> {
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut dirs_done: Vec<(PathBuf, PathBuf, fs::Metadata)> = Vec::new();
    let mut stack = vec![(src.to_path_buf(), dst.to_path_buf())];
    while let Some((from_dir, to_dir)) = stack.pop() {
        for entry in fs::read_dir(&from_dir)? {
            let entry = entry?;
            let from = entry.path();
            let to = to_dir.join(entry.file_name());
            let meta = fs::symlink_metadata(&from)?;
            let ft = meta.file_type();
            if !ft.is_dir() && meta.nlink() > 1 {
                if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                    fs::hard_link(first, &to)?;
                    continue;
                }
                links.insert((meta.dev(), meta.ino()), to.clone());
            }
            if ft.is_dir() {
                fs::create_dir(&to)?;
                stack.push((from.clone(), to.clone()));
                dirs_done.push((from, to, meta));
                continue;
            } else if ft.is_symlink() {
                std::os::unix::fs::symlink(fs::read_link(&from)?, &to)?;
            } else if ft.is_file() {
                fs::copy(&from, &to)?;
            } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
                let kind = if ft.is_fifo() {
                    SFlag::S_IFIFO
                } else if ft.is_char_device() {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                mknod(&to, kind, Mode::from_bits_truncate(meta.mode() & 0o7777), meta.rdev())
                    .map_err(io::Error::from)?;
            } else {
                // Sockets belong to a process that is not running here.
                continue;
            }
            apply_metadata(&from, &to, &meta)?;
        }
    }
    for (from, to, meta) in dirs_done.iter().rev() {
        apply_metadata(from, to, meta)?;
    }
    Ok(())
}

/// Owner, then mode (chown clears set-id bits), extended attributes where the filesystem takes them, and times.
fn apply_metadata(from: &Path, to: &Path, meta: &fs::Metadata) -> io::Result<()> {
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    let is_link = meta.file_type().is_symlink();
    if !is_link {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    if let Ok(names) = xattr::list(from) {
        for name in names {
            if let Ok(Some(value)) = xattr::get(from, &name) {
                // Best effort, as Docker: a target filesystem without user or security xattrs still gets the files.
                let _ = xattr::set(to, &name, &value);
            }
        }
    }
    let atime = filetime::FileTime::from_last_access_time(meta);
    let mtime = filetime::FileTime::from_last_modification_time(meta);
    filetime::set_symlink_file_times(to, atime, mtime)
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = std::result::Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn content_modes_links_and_times_are_copied_into_an_empty_volume() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let rootfs = tmp.path().join("rootfs");
        let data = rootfs.join("data");
        fs::create_dir_all(data.join("sub"))?;
        fs::write(data.join("a.txt"), "hello")?;
        fs::set_permissions(data.join("a.txt"), fs::Permissions::from_mode(0o640))?;
        fs::hard_link(data.join("a.txt"), data.join("sub/b.txt"))?;
        std::os::unix::fs::symlink("../a.txt", data.join("sub/link"))?;
        fs::set_permissions(&data, fs::Permissions::from_mode(0o750))?;
        filetime::set_file_mtime(data.join("a.txt"), filetime::FileTime::from_unix_time(1_000_000, 0))?;
        let volume = tmp.path().join("vol");
        fs::create_dir(&volume)?;

        let marker = tmp.path().join(".copyup");
        assert!(copy_up(&rootfs, "/data", &volume, &marker)?);
        assert!(!marker.exists());
        assert_eq!(fs::read_to_string(volume.join("a.txt"))?, "hello");
        let a = fs::metadata(volume.join("a.txt"))?;
        assert_eq!(a.mode() & 0o7777, 0o640);
        assert_eq!(a.mtime(), 1_000_000);
        assert_eq!(a.ino(), fs::metadata(volume.join("sub/b.txt"))?.ino());
        assert_eq!(fs::read_link(volume.join("sub/link"))?, PathBuf::from("../a.txt"));
        assert_eq!(fs::metadata(&volume)?.mode() & 0o7777, 0o750);
        // A volume with files is left alone.
        fs::write(data.join("later"), "x")?;
        assert!(!copy_up(&rootfs, "/data", &volume, &marker)?);
        assert!(!volume.join("later").exists());
        // A copy cut short (its marker left behind) is made again from the start.
        fs::write(&marker, "")?;
        fs::write(volume.join("partial"), "x")?;
        assert!(copy_up(&rootfs, "/data", &volume, &marker)?);
        assert!(!volume.join("partial").exists());
        assert!(volume.join("later").is_file() && volume.join("sub/b.txt").is_file());
        assert!(!marker.exists());
        Ok(())
    }

    #[test]
    fn nothing_is_copied_from_a_missing_path_or_through_an_escaping_symlink() -> TestResult {
        let tmp = tempfile::tempdir()?;
        let rootfs = tmp.path().join("rootfs");
        fs::create_dir_all(rootfs.join("etc"))?;
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&outside)?;
        fs::write(outside.join("secret"), "host")?;
        // An absolute symlink resolves inside the rootfs, where /outside does not exist.
        std::os::unix::fs::symlink(&outside, rootfs.join("data"))?;
        std::os::unix::fs::symlink("../../outside", rootfs.join("up"))?;
        let volume = tmp.path().join("vol");
        fs::create_dir(&volume)?;
        let marker = tmp.path().join(".copyup");
        assert!(!copy_up(&rootfs, "/missing", &volume, &marker)?);
        assert!(!copy_up(&rootfs, "/data", &volume, &marker)?);
        assert!(!copy_up(&rootfs, "/up", &volume, &marker)?);
        assert!(fs::read_dir(&volume)?.next().is_none());
        Ok(())
    }
}
