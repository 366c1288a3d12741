//! Paths of `docker cp` resolved inside a container's root, as Docker's `ResolvePath` / `GetResourcePath` do,
//! but by the kernel: every open is `openat2(root, …, RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)`, so `..` and
//! absolute symlinks stop at the container's `/` and nothing on the host is ever reached.
//!
//! Docker's rules kept here:
//! - the path is absolute in the container whatever the client sent (`etc/x` is `/etc/x`);
//! - a trailing `/` or `/.` is kept (`/etc/.` means "the contents of /etc" to the CLI);
//! - for GET and HEAD the directory part is followed through symlinks, the last component is not (a symlink is
//!   copied as a symlink); for PUT the whole path is followed (a symlink to a directory is a fine target).

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, OpenHow, ResolveFlag, openat2, readlinkat};
use nix::sys::stat::{FileStat, fstat, fstatat};

/// Symlinks followed while computing a link target, as the kernel's own limit (`ELOOP` after 40).
const MAX_LINK_HOPS: usize = 40;

/// `path` as an absolute, cleaned container path that keeps a trailing `/` or `/.` (Go's
/// `PreserveTrailingDotOrSeparator(filepath.Join("/", path), path)`).
pub fn absolute(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    let mut abs = format!("/{}", parts.join("/"));
    let dot = path == "." || path.ends_with("/.");
    if dot && !abs.ends_with("/.") {
        if !abs.ends_with('/') {
            abs.push('/');
        }
        abs.push('.');
    } else if path.ends_with('/') && !abs.ends_with('/') {
        abs.push('/');
    }
    abs
}

/// Go's `filepath.Base`: the last element, trailing slashes ignored; `/` for the root.
pub fn base_name(abs: &str) -> &str {
    let trimmed = abs.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/";
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed)
}

/// Go's `filepath.Split`: everything up to and including the last `/`, and the rest.
fn split(abs: &str) -> (&str, &str) {
    match abs.rfind('/') {
        Some(i) => (&abs[..=i], &abs[i + 1..]),
        None => ("", abs),
    }
}

/// Open `path` (absolute or not) with `root` as `/`: symlinks and `..` never leave it.
pub fn open_in_root(root: BorrowedFd<'_>, path: &str, flags: OFlag) -> nix::Result<OwnedFd> {
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC)
        .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, rel, how)
}

/// What a GET or HEAD path names: a directory and a name in it (not followed if it is a symlink), or a
/// directory itself (the path ended in `/`, `/.`, or is `/`).
pub enum Located {
    InDir { dir: OwnedFd, name: String },
    Itself(OwnedFd),
}

impl Located {
    /// Find `abs` (from [`absolute`]) in the container. `Ok(None)` when it does not exist.
    pub fn find(root: BorrowedFd<'_>, abs: &str) -> io::Result<Option<Located>> {
        let (dir, base) = split(abs);
        let dir_fd = match open_in_root(root, dir, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(fd) => fd,
            Err(Errno::ENOENT | Errno::ENOTDIR) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if base.is_empty() || base == "." {
            return Ok(Some(Located::Itself(dir_fd)));
        }
        match fstatat(dir_fd.as_fd(), base, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(_) => Ok(Some(Located::InDir { dir: dir_fd, name: base.to_string() })),
            Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Its metadata, a symlink's own.
    pub fn lstat(&self) -> io::Result<FileStat> {
        match self {
            Located::InDir { dir, name } => Ok(fstatat(dir.as_fd(), name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW)?),
            Located::Itself(fd) => Ok(fstat(fd.as_fd())?),
        }
    }
}

/// Where `abs` leads once every symlink in it is followed, as an absolute container path (Docker's
/// `FollowSymlinkInScope`): the `linkTarget` of a stat. Components that do not exist are kept as written.
pub fn follow_in_root(root: BorrowedFd<'_>, abs: &str) -> io::Result<String> {
    let mut resolved: Vec<String> = Vec::new();
    let mut pending: Vec<String> = abs.split('/').rev().map(str::to_owned).collect();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                resolved.pop();
                continue;
            }
            _ => {}
        }
        let parent = format!("/{}", resolved.join("/"));
        let target = match open_in_root(root, &parent, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(dir) => match readlinkat(dir.as_fd(), c.as_str()) {
                Ok(t) => Some(t),
                Err(Errno::EINVAL | Errno::ENOENT | Errno::ENOTDIR) => None,
                Err(e) => return Err(e.into()),
            },
            Err(Errno::ENOENT | Errno::ENOTDIR) => None,
            Err(e) => return Err(e.into()),
        };
        let Some(target) = target else {
            resolved.push(c);
            continue;
        };
        hops += 1;
        if hops > MAX_LINK_HOPS {
            return Err(Errno::ELOOP.into());
        }
        let target = target.to_string_lossy().into_owned();
        if target.starts_with('/') {
            resolved.clear();
        }
        pending.extend(target.split('/').rev().map(str::to_owned));
    }
    Ok(format!("/{}", resolved.join("/")))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn absolute_paths_keep_a_trailing_slash_or_dot() {
        for (input, want) in [
            ("etc/passwd", "/etc/passwd"),
            ("/etc//passwd", "/etc/passwd"),
            ("/etc/", "/etc/"),
            ("/etc/.", "/etc/."),
            ("/etc/./", "/etc/"),
            (".", "/."),
            ("/", "/"),
            ("", "/"),
            ("/../../etc/shadow", "/etc/shadow"),
            ("/a/b/../c", "/a/c"),
            ("/a/..", "/"),
        ] {
            assert_eq!(absolute(input), want, "{input:?}");
        }
    }

    #[test]
    fn base_names_as_go() {
        assert_eq!(base_name("/etc/passwd"), "passwd");
        assert_eq!(base_name("/etc/"), "etc");
        assert_eq!(base_name("/etc/."), ".");
        assert_eq!(base_name("/"), "/");
        assert_eq!(split("/etc/passwd"), ("/etc/", "passwd"));
        assert_eq!(split("/etc/"), ("/etc/", ""));
    }

    /// A fake container root inside a temp dir, with a "host" file beside it that must never be reached.
    fn tree() -> io::Result<(tempfile::TempDir, OwnedFd)> {
        let t = tempfile::tempdir()?;
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc"))?;
        std::fs::create_dir_all(root.join("data/sub"))?;
        std::fs::write(t.path().join("secret"), "host")?;
        std::fs::write(root.join("secret"), "container")?;
        std::fs::write(root.join("etc/passwd"), "root:x:0:0::/:/bin/sh\n")?;
        symlink("/../../../secret", root.join("abs-escape"))?;
        symlink("../../../../secret", root.join("data/sub/rel-escape"))?;
        symlink("/data", root.join("link-dir"))?;
        symlink("sub", root.join("data/rel-dir"))?;
        symlink("loop2", root.join("loop1"))?;
        symlink("loop1", root.join("loop2"))?;
        let fd = nix::fcntl::open(&root, OFlag::O_PATH | OFlag::O_DIRECTORY, nix::sys::stat::Mode::empty())?;
        Ok((t, fd))
    }

    fn read(root: BorrowedFd<'_>, path: &str) -> io::Result<String> {
        let fd = open_in_root(root, path, OFlag::O_RDONLY)?;
        std::fs::read_to_string(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd)))
    }

    #[test]
    fn symlinks_never_leave_the_root() -> TestResult {
        let (_t, root) = tree()?;
        let root = root.as_fd();
        assert_eq!(read(root, "/abs-escape")?, "container");
        assert_eq!(read(root, "/data/sub/rel-escape")?, "container");
        assert_eq!(read(root, "../../secret")?, "container");
        assert_eq!(read(root, "/link-dir/sub/rel-escape")?, "container");
        assert_eq!(follow_in_root(root, "/abs-escape")?, "/secret");
        assert_eq!(follow_in_root(root, "/data/sub/rel-escape")?, "/secret");
        assert_eq!(follow_in_root(root, "/link-dir/rel-dir")?, "/data/sub");
        assert_eq!(follow_in_root(root, "/link-dir/missing/x")?, "/data/missing/x");
        assert!(follow_in_root(root, "/loop1").is_err());
        Ok(())
    }

    #[test]
    fn located_does_not_follow_the_last_component() -> TestResult {
        let (_t, root) = tree()?;
        let root = root.as_fd();
        let Some(l) = Located::find(root, &absolute("/link-dir"))? else { panic!("/link-dir not found") };
        assert!(matches!(&l, Located::InDir { name, .. } if name == "link-dir"));
        assert_eq!(l.lstat()?.st_mode & libc_s_ifmt(), 0o120000);
        // Through a symlinked directory, and the directory itself with a trailing slash.
        let Some(l) = Located::find(root, &absolute("/link-dir/sub/"))? else { panic!("not found") };
        assert!(matches!(l, Located::Itself(_)));
        assert_eq!(l.lstat()?.st_mode & libc_s_ifmt(), 0o040000);
        assert!(Located::find(root, "/nope")?.is_none());
        assert!(Located::find(root, "/nope/x")?.is_none());
        assert!(Located::find(root, "/etc/passwd/x")?.is_none());
        Ok(())
    }

    fn libc_s_ifmt() -> u32 {
        nix::sys::stat::SFlag::S_IFMT.bits()
    }
}
