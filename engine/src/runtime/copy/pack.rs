//! The tar stream of `GET /containers/{id}/archive`: the located file or directory tree under one top name, with
//! modes, owners, mtimes, symlinks (as they are, never followed), hard links within the tree, devices, FIFOs and
//! file capabilities, as Docker's `TarWithOptions` writes them. Sockets are skipped, as in Docker.
//!
//! Everything is read through directory fds (`openat`/`fstatat` with `O_NOFOLLOW`), starting from the fd the
//! path resolution in the container's root returned, so a symlink swapped in while the tree is read cannot lead
//! outside it. The walk is iterative (a deep tree cannot overflow the stack) and does not descend into pseudo
//! filesystems mounted in a running container (`/proc`, `/sys`, cgroups, `/dev/pts`): their entries would be
//! endless or meaningless, and Docker's view of a container's filesystem does not have them either.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::dir::Dir;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag, openat, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, major, minor};
use nix::sys::statfs::{self, fstatfs};
use tar::{EntryType, Header};
use xattr::FileExt as _;

use super::path::Located;

const CAPABILITY_XATTR: &str = "security.capability";

/// Write the tar of `located` to `out`, its top entry named `top` (Docker rebases the entries onto the
/// requested path's base name; `.` and `/` give the directory's contents at the top of the archive).
pub fn write_tar(located: &Located, top: &str, out: impl Write) -> io::Result<()> {
    let top = match top {
        "/" | "." => ".".to_string(),
        t => t.to_string(),
    };
    let mut packer = Packer { builder: tar::Builder::new(out), links: HashMap::new() };
    let mut stack: Vec<DirWalk> = Vec::new();
    match located {
        Located::InDir { dir, name } => {
            if let Some(walk) = packer.entry(dir.as_fd(), name, &top, None)? {
                stack.push(walk);
            }
        }
        Located::Itself(fd) => {
            let st = fstat(fd.as_fd())?;
            let dir = openat(fd.as_fd(), ".", dir_flags(), Mode::empty())?;
            packer.append_dir(&st, &top)?;
            stack.push(DirWalk::new(dir, top, st.st_dev)?);
        }
    }
    while let Some(walk) = stack.last_mut() {
        let Some(name) = walk.names.pop() else {
            stack.pop();
            continue;
        };
        let tar_name = if walk.prefix == "." { name.clone() } else { format!("{}/{name}", walk.prefix) };
        let dev = walk.dev;
        let dir = walk.dir.try_clone()?;
        if let Some(child) = packer.entry(dir.as_fd(), &name, &tar_name, Some(dev))? {
            stack.push(child);
        }
    }
    packer.builder.into_inner()?.flush()
}

/// A directory being read: its fd, its name in the archive, its device, and the names still to visit (sorted in
/// reverse, so popping gives Go's lexical walk order).
struct DirWalk {
    dir: OwnedFd,
    prefix: String,
    dev: u64,
    names: Vec<String>,
}

impl DirWalk {
    fn new(dir: OwnedFd, prefix: String, dev: u64) -> io::Result<DirWalk> {
        let mut names = Vec::new();
        let mut d = Dir::from_fd(dir.try_clone()?)?;
        for e in d.iter() {
            let e = e?;
            let n = e.file_name().to_bytes();
            if n != b"." && n != b".." {
                names.push(String::from_utf8_lossy(n).into_owned());
            }
        }
        names.sort_unstable_by(|a, b| b.cmp(a));
        Ok(DirWalk { dir, prefix, dev, names })
    }
}

struct Packer<W: Write> {
    builder: tar::Builder<W>,
    /// (device, inode) of files with several links, to the archive name of their first entry.
    links: HashMap<(u64, u64), String>,
}

fn dir_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC
}

fn kind(st: &FileStat) -> u32 {
    st.st_mode & SFlag::S_IFMT.bits()
}

impl<W: Write> Packer<W> {
    /// Append `name` in `dir` as `tar_name`; a directory to descend into is returned. An entry that vanished
    /// since its directory was read is skipped, as a concurrent `rm` in a running container makes it.
    fn entry(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &str,
        tar_name: &str,
        parent_dev: Option<u64>,
    ) -> io::Result<Option<DirWalk>> {
        let st = match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::ENOENT) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let k = kind(&st);
        if k == SFlag::S_IFDIR.bits() {
            let fd = match openat(dir, name, dir_flags(), Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::ENOENT) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            self.append_dir(&st, tar_name)?;
            if parent_dev.is_some_and(|d| d != st.st_dev) && is_pseudo_fs(fd.as_fd()) {
                return Ok(None);
            }
            return Ok(Some(DirWalk::new(fd, tar_name.to_string(), st.st_dev)?));
        }
        let mut h = header(&st);
        if k != SFlag::S_IFDIR.bits() && st.st_nlink > 1 {
            if let Some(first) = self.links.get(&(st.st_dev, st.st_ino)) {
                h.set_entry_type(EntryType::Link);
                h.set_size(0);
                let first = first.clone();
                self.builder.append_link(&mut h, tar_name, first)?;
                return Ok(None);
            }
            self.links.insert((st.st_dev, st.st_ino), tar_name.to_string());
        }
        match k {
            k if k == SFlag::S_IFREG.bits() => {
                let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
                let file = match openat(dir, name, flags, Mode::empty()) {
                    Ok(fd) => std::fs::File::from(fd),
                    Err(Errno::ENOENT) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                // The size written is the one of the file opened (it may have been replaced since the stat).
                let st = fstat(file.as_fd())?;
                if kind(&st) != SFlag::S_IFREG.bits() {
                    return Ok(None);
                }
                let mut h = header(&st);
                h.set_entry_type(EntryType::Regular);
                let size = u64::try_from(st.st_size).unwrap_or(0);
                h.set_size(size);
                // File capabilities (`setcap`) are the one xattr Docker's tars carry; a file without them, or a
                // filesystem without xattrs, has none.
                if let Ok(Some(cap)) = file.get_xattr(CAPABILITY_XATTR) {
                    let key = format!("SCHILY.xattr.{CAPABILITY_XATTR}");
                    self.builder.append_pax_extensions([(key.as_str(), cap.as_slice())])?;
                }
                self.builder.append_data(&mut h, tar_name, Padded { inner: file.take(size), left: size })?;
            }
            k if k == SFlag::S_IFLNK.bits() => {
                let target = match readlinkat(dir, name) {
                    Ok(t) => t,
                    Err(Errno::ENOENT) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
                h.set_entry_type(EntryType::Symlink);
                self.builder.append_link(&mut h, tar_name, target)?;
            }
            k if k == SFlag::S_IFCHR.bits() || k == SFlag::S_IFBLK.bits() => {
                let ty = if k == SFlag::S_IFCHR.bits() { EntryType::Char } else { EntryType::Block };
                h.set_entry_type(ty);
                h.set_device_major(u32::try_from(major(st.st_rdev)).unwrap_or(0))?;
                h.set_device_minor(u32::try_from(minor(st.st_rdev)).unwrap_or(0))?;
                self.builder.append_data(&mut h, tar_name, io::empty())?;
            }
            k if k == SFlag::S_IFIFO.bits() => {
                h.set_entry_type(EntryType::Fifo);
                self.builder.append_data(&mut h, tar_name, io::empty())?;
            }
            _ => tracing::debug!(tar_name, "skipping a socket"),
        }
        Ok(None)
    }

    fn append_dir(&mut self, st: &FileStat, tar_name: &str) -> io::Result<()> {
        let mut h = header(st);
        h.set_entry_type(EntryType::Directory);
        let name = if tar_name.ends_with('/') { tar_name.to_string() } else { format!("{tar_name}/") };
        self.builder.append_data(&mut h, name, io::empty())
    }
}

/// A GNU header (long names and big ids fit) with the metadata of `st`; size 0 until set.
fn header(st: &FileStat) -> Header {
    let mut h = Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(u64::try_from(st.st_mtime).unwrap_or(0));
    h.set_size(0);
    h
}

/// Filesystems whose content is not files a copy wants: kernel state, endless or racing.
fn is_pseudo_fs(fd: BorrowedFd<'_>) -> bool {
    let Ok(fs) = fstatfs(fd) else { return false };
    [
        statfs::PROC_SUPER_MAGIC,
        statfs::SYSFS_MAGIC,
        statfs::CGROUP_SUPER_MAGIC,
        statfs::CGROUP2_SUPER_MAGIC,
        statfs::DEVPTS_SUPER_MAGIC,
        statfs::SECURITYFS_MAGIC,
        statfs::DEBUGFS_MAGIC,
        statfs::TRACEFS_MAGIC,
        statfs::BPF_FS_MAGIC,
    ]
    .contains(&fs.filesystem_type())
}

/// Exactly `left` bytes: a file that shrank while it was read is padded with zeros, so the archive stays valid
/// (the header already promised its size).
struct Padded<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Padded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let max = usize::try_from(self.left).unwrap_or(usize::MAX).min(buf.len());
        let n = match self.inner.read(&mut buf[..max])? {
            0 => {
                buf[..max].fill(0);
                max
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, symlink};

    use super::*;
    use crate::runtime::copy::path::{Located, absolute};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// (name, type, link name, data) of an entry.
    type Entry = (String, EntryType, String, Vec<u8>);

    fn entries(tar: &[u8]) -> io::Result<Vec<Entry>> {
        let mut out = Vec::new();
        let mut a = tar::Archive::new(tar);
        for e in a.entries()? {
            let mut e = e?;
            let path = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            let ty = e.header().entry_type();
            let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
            let mut data = Vec::new();
            e.read_to_end(&mut data)?;
            out.push((path, ty, link, data));
        }
        Ok(out)
    }

    fn pack(root: &std::path::Path, path: &str, top: &str) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let fd = nix::fcntl::open(root, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())?;
        let located = Located::find(fd.as_fd(), &absolute(path))?.ok_or("not found")?;
        let mut out = Vec::new();
        write_tar(&located, top, &mut out)?;
        Ok(out)
    }

    #[test]
    fn a_tree_keeps_links_modes_and_order() -> TestResult {
        let t = tempfile::tempdir()?;
        let d = t.path().join("data");
        std::fs::create_dir_all(d.join("b"))?;
        std::fs::write(d.join("a.txt"), "a")?;
        std::fs::write(d.join("b/c"), "cc")?;
        std::fs::hard_link(d.join("a.txt"), d.join("b/hard"))?;
        symlink("/etc/shadow", d.join("link"))?;
        nix::sys::stat::fchmodat(
            nix::fcntl::AT_FDCWD,
            &d.join("b/c"),
            Mode::from_bits_truncate(0o4711),
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )?;
        let tar = pack(t.path(), "/data", "data")?;
        let got = entries(&tar)?;
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["data/", "data/a.txt", "data/b/", "data/b/c", "data/b/hard", "data/link"]);
        assert_eq!(got[1].3, b"a");
        assert_eq!(got[4].1, EntryType::Link);
        assert_eq!(got[4].2, "data/a.txt");
        assert_eq!(got[5].1, EntryType::Symlink);
        assert_eq!(got[5].2, "/etc/shadow");
        let mut a = tar::Archive::new(tar.as_slice());
        let c = a.entries()?.nth(3).ok_or("no entry")??;
        assert_eq!(c.header().mode()?, 0o4711);
        assert_eq!(c.header().mtime()?, std::fs::metadata(d.join("b/c"))?.mtime() as u64);
        Ok(())
    }

    #[test]
    fn contents_of_a_directory_and_a_single_file() -> TestResult {
        let t = tempfile::tempdir()?;
        std::fs::create_dir_all(t.path().join("etc"))?;
        std::fs::write(t.path().join("etc/hostname"), "box\n")?;
        let got = entries(&pack(t.path(), "/etc/.", ".")?)?;
        let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(names, ["./", "hostname"]);
        let got = entries(&pack(t.path(), "/etc/hostname", "renamed")?)?;
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0.as_str(), &got[0].3[..]), ("renamed", &b"box\n"[..]));
        Ok(())
    }

    #[test]
    fn file_capabilities_are_carried() -> TestResult {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: setting file capabilities needs root");
            return Ok(());
        }
        let t = tempfile::tempdir()?;
        let f = t.path().join("ping");
        std::fs::write(&f, "bin")?;
        // vfs_cap_data revision 2, effective, permitted CAP_NET_RAW (13): what `setcap cap_net_raw+ep` writes.
        let mut cap = Vec::new();
        for word in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
            cap.extend_from_slice(&word.to_le_bytes());
        }
        if let Err(e) = xattr::set(&f, CAPABILITY_XATTR, &cap) {
            eprintln!("skipped: this filesystem refuses file capabilities: {e}");
            return Ok(());
        }
        let tar = pack(t.path(), "/ping", "ping")?;
        let mut a = tar::Archive::new(tar.as_slice());
        let mut e = a.entries()?.next().ok_or("no entry")??;
        let exts = e.pax_extensions()?.ok_or("no PAX records")?;
        let found: Vec<(String, Vec<u8>)> = exts
            .filter_map(Result::ok)
            .map(|x| (String::from_utf8_lossy(x.key_bytes()).into_owned(), x.value_bytes().to_vec()))
            .collect();
        assert_eq!(found, [(format!("SCHILY.xattr.{CAPABILITY_XATTR}"), cap)]);
        let mut data = String::new();
        e.read_to_string(&mut data)?;
        assert_eq!(data, "bin");
        Ok(())
    }

    #[test]
    fn padding_keeps_the_promised_size() -> io::Result<()> {
        let mut p = Padded { inner: &b"ab"[..], left: 5 };
        let mut out = Vec::new();
        p.read_to_end(&mut out)?;
        assert_eq!(out, b"ab\0\0\0");
        Ok(())
    }
}
