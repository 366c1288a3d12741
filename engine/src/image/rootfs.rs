//! Container root filesystems: an overlay of the image's unpacked layers (`layers/<chain-id>/diff`, read-only,
//! shared) under the container's own `upper/` and `work/` directories.
//!
//! # Long layer lists
//! `mount(2)` copies its option string from one page, so `lowerdir=` plus `upperdir=` and `workdir=` must fit in
//! 4095 bytes. With `/var/lib/berth/layers/<64 hex>/diff` (94 bytes with its `:`) that is about 40 layers, fewer
//! than real images have (Docker allows 125).
//!
//! What Docker's overlay2 driver does, relative short links `l/<26 chars>` resolved after a `chdir`, cannot be done
//! here: the working directory is process-wide and berthd is multi-threaded (Docker re-executes itself to mount
//! from a child process). The new mount API (`fsopen` + `fsconfig(lowerdir+)` per layer, no length limit) is not
//! in nix, and the crate forbids `unsafe`. Absolute short links (`/var/lib/berth/l/<26 chars>`) would fit only
//! about 70 layers and need link files created, repaired after a crash and collected.
//!
//! So when the plain option string is too long, each lower directory is opened (`O_PATH`) and named by its fd,
//! `/proc/self/fd/<n>`: the kernel resolves that magic link to the directory itself, in the calling process,
//! whatever thread makes the call. At about 20 bytes a layer, some 190 layers fit beside 200-byte upper and work
//! paths, beyond Docker's 125 and below overlayfs's own limit of 500. The mount table then shows those
//! `/proc/self/fd/<n>` names for that mount (they mean nothing afterwards: overlayfs resolved them at mount time),
//! and `/proc` must be mounted in berthd's mount namespace. More lowers than fit is [`RootfsError::TooManyLayers`].

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sys::stat::Mode;

/// The longest option string `mount(2)` takes: one page (4096 bytes on every Linux berth runs on; larger pages
/// only raise it) including the terminating NUL.
pub const MAX_MOUNT_OPTIONS: usize = 4095;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("an overlay needs at least one lower layer")]
    NoLowers,
    #[error("overlay directory {path} contains {what}, which overlay mount options cannot carry")]
    UnsafePath { path: PathBuf, what: &'static str },
    #[error("opening lower layer {path}: {source}")]
    OpenLower { path: PathBuf, source: io::Error },
    #[error("{layers} layers do not fit in one overlay mount: {len} bytes of options, at most {MAX_MOUNT_OPTIONS}")]
    TooManyLayers { layers: usize, len: usize },
    #[error("mounting the overlay at {target}: {source}")]
    Mount { target: PathBuf, source: io::Error },
    #[error("unmounting {target}: {source}")]
    Unmount { target: PathBuf, source: io::Error },
}

/// Mount an overlay of `lowers` (top-most first) plus `upper`/`work` at `target`.
///
/// `index=off`, as Docker sets it: the same lower directories are shared by many overlays at once. Paths are
/// refused if they hold `,` `:` `\` or NUL, which the option syntax cannot carry (berth's own paths never do).
/// Lists too long for one page are mounted through `/proc/self/fd/<n>` names (see the module docs).
pub fn mount_overlay(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<(), RootfsError> {
    if lowers.is_empty() {
        return Err(RootfsError::NoLowers);
    }
    let mut lower_names = Vec::with_capacity(lowers.len());
    for l in lowers {
        lower_names.push(option_path(l)?);
    }
    let (upper, work) = (option_path(upper)?, option_path(work)?);
    let plain = overlay_options(&lower_names, &upper, &work);
    if plain.len() <= MAX_MOUNT_OPTIONS {
        return do_mount(&plain, target);
    }
    // Kept open until the mount returns: the names below refer to these fds.
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(lowers.len());
    for l in lowers {
        let fd = open(l.as_path(), OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(|e| RootfsError::OpenLower { path: l.clone(), source: e.into() })?;
        fds.push(fd);
    }
    let short: Vec<String> = fds.iter().map(|fd| format!("/proc/self/fd/{}", fd.as_raw_fd())).collect();
    let options = overlay_options(&short, &upper, &work);
    if options.len() > MAX_MOUNT_OPTIONS {
        return Err(RootfsError::TooManyLayers { layers: lowers.len(), len: options.len() });
    }
    tracing::debug!(layers = lowers.len(), plain = plain.len(), short = options.len(), "overlay lowers named by fd");
    let result = do_mount(&options, target);
    drop(fds);
    result
}

/// Unmount `target`. Something not mounted (or already gone) is not an error, so teardown goes on. A mount still
/// busy (a process keeps a file open in it) is detached lazily (`MNT_DETACH`): it disappears from `target` now and
/// the kernel releases it when its last user goes. Symlinks at `target` are not followed.
pub fn unmount(target: &Path) -> Result<(), RootfsError> {
    let err = |e: Errno| RootfsError::Unmount { target: target.to_path_buf(), source: e.into() };
    match umount2(target, MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) => Ok(()),
        Err(Errno::EINVAL | Errno::ENOENT) => {
            tracing::debug!(target = %target.display(), "not mounted");
            Ok(())
        }
        Err(Errno::EBUSY) => {
            tracing::warn!(target = %target.display(), "rootfs busy, detaching it lazily");
            umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW).map_err(err)
        }
        Err(e) => Err(err(e)),
    }
}

fn do_mount(options: &str, target: &Path) -> Result<(), RootfsError> {
    mount(Some("overlay"), target, Some("overlay"), MsFlags::empty(), Some(options))
        .map_err(|e| RootfsError::Mount { target: target.to_path_buf(), source: e.into() })
}

fn overlay_options(lowers: &[String], upper: &str, work: &str) -> String {
    format!("lowerdir={},upperdir={upper},workdir={work},index=off", lowers.join(":"))
}

/// A path as an overlay option value: UTF-8 and free of the separators the option syntax uses.
fn option_path(p: &Path) -> Result<String, RootfsError> {
    let bad = |what| Err(RootfsError::UnsafePath { path: p.to_path_buf(), what });
    let bytes = p.as_os_str().as_bytes();
    for (c, what) in [(b',', "a comma"), (b':', "a colon"), (b'\\', "a backslash"), (0, "a NUL byte")] {
        if bytes.contains(&c) {
            return bad(what);
        }
    }
    match p.to_str() {
        Some(s) if !s.is_empty() => Ok(s.to_string()),
        Some(_) => bad("nothing"),
        None => bad("bytes that are not UTF-8"),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::FileTypeExt;

    use super::*;
    use crate::image::unpack::unpack_layer;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    /// Unmounts when dropped, so a failing assertion does not leave a mount behind.
    struct Mounted(PathBuf);

    impl Mounted {
        fn new(lowers: &[PathBuf], upper: &Path, work: &Path, target: &Path) -> Result<Mounted, RootfsError> {
            mount_overlay(lowers, upper, work, target)?;
            Ok(Mounted(target.to_path_buf()))
        }
    }

    impl Drop for Mounted {
        fn drop(&mut self) {
            if let Err(e) = unmount(&self.0) {
                eprintln!("cleanup: {e}");
            }
        }
    }

    /// A container layout in a temp dir: `layers/<n>/diff`, `upper`, `work`, `rootfs`.
    struct Layout {
        dir: tempfile::TempDir,
    }

    impl Layout {
        fn new() -> io::Result<Layout> {
            let dir = tempfile::tempdir()?;
            for d in ["upper", "work", "rootfs"] {
                fs::create_dir(dir.path().join(d))?;
            }
            Ok(Layout { dir })
        }
        fn path(&self, p: &str) -> PathBuf {
            self.dir.path().join(p)
        }
        /// A lower layer from a tar, unpacked as berth does (whiteouts become overlay whiteouts).
        fn layer(&self, name: &str, entries: &[(&str, Option<&str>)]) -> Result<PathBuf, Box<dyn std::error::Error>> {
            let diff = self.path(&format!("layers/{name}/diff"));
            fs::create_dir_all(&diff)?;
            let mut b = tar::Builder::new(Vec::new());
            for (path, content) in entries {
                let mut h = tar::Header::new_ustar();
                h.set_size(0);
                h.set_uid(0);
                h.set_gid(0);
                h.set_mtime(1_600_000_000);
                match content {
                    Some(c) => {
                        h.set_entry_type(tar::EntryType::Regular);
                        h.set_mode(0o644);
                        h.set_size(c.len() as u64);
                    }
                    None => {
                        h.set_entry_type(tar::EntryType::Directory);
                        h.set_mode(0o755);
                    }
                }
                b.append_data(&mut h, path, content.unwrap_or("").as_bytes())?;
            }
            unpack_layer(b.into_inner()?.as_slice(), &diff)?;
            Ok(diff)
        }
        fn mount(&self, lowers: &[PathBuf]) -> Result<Mounted, RootfsError> {
            Mounted::new(lowers, &self.path("upper"), &self.path("work"), &self.path("rootfs"))
        }
    }

    fn is_root() -> bool {
        let root = nix::unistd::geteuid().is_root();
        if !root {
            eprintln!("skipped: mounting needs root");
        }
        root
    }

    fn is_mounted(target: &Path) -> io::Result<bool> {
        let target = fs::canonicalize(target)?;
        let mounts = fs::read_to_string("/proc/self/mountinfo")?;
        Ok(mounts.lines().any(|l| l.split(' ').nth(4) == Some(target.to_string_lossy().as_ref())))
    }

    #[test]
    fn three_layers_and_an_upper() -> TestResult {
        if !is_root() {
            return Ok(());
        }
        let t = Layout::new()?;
        let base = t.layer(
            "base",
            &[
                ("etc", None),
                ("etc/os-release", Some("base")),
                ("etc/motd", Some("hello")),
                ("var/cache", None),
                ("var/cache/old", Some("stale")),
                ("bin/sh", Some("sh")),
            ],
        )?;
        let mid = t.layer("mid", &[("etc/os-release", Some("mid")), ("etc/.wh.motd", Some(""))])?;
        let top = t.layer(
            "top",
            &[
                ("etc/os-release", Some("top")),
                ("var/cache", None),
                ("var/cache/.wh..wh..opq", Some("")),
                ("var/cache/new", Some("fresh")),
            ],
        )?;
        let rootfs = t.path("rootfs");
        {
            let _m = t.mount(&[top, mid, base])?;
            assert!(is_mounted(&rootfs)?);
            // The highest lower wins.
            assert_eq!(fs::read_to_string(rootfs.join("etc/os-release"))?, "top");
            // A whiteout in a higher layer hides a lower file.
            assert!(!rootfs.join("etc/motd").exists());
            // An opaque directory hides the lower content of that directory, not its own.
            assert!(!rootfs.join("var/cache/old").exists());
            assert_eq!(fs::read_to_string(rootfs.join("var/cache/new"))?, "fresh");
            assert_eq!(fs::read_to_string(rootfs.join("bin/sh"))?, "sh");
            // Writes land in the upper directory; lowers stay as they were.
            fs::write(rootfs.join("etc/os-release"), "container")?;
            fs::write(rootfs.join("created"), "c")?;
            fs::remove_file(rootfs.join("bin/sh"))?;
            assert_eq!(fs::read_to_string(t.path("upper/etc/os-release"))?, "container");
            assert_eq!(fs::read_to_string(t.path("upper/created"))?, "c");
            assert!(fs::symlink_metadata(t.path("upper/bin/sh"))?.file_type().is_char_device());
            assert_eq!(fs::read_to_string(t.path("layers/top/diff/etc/os-release"))?, "top");
            assert_eq!(fs::read_to_string(t.path("layers/base/diff/bin/sh"))?, "sh");
        }
        // Unmounting cleans up: the mount point is an empty directory again.
        assert!(!is_mounted(&rootfs)?);
        assert_eq!(fs::read_dir(&rootfs)?.count(), 0);
        // Unmounting again is not an error.
        unmount(&rootfs)?;
        Ok(())
    }

    #[test]
    fn a_hundred_layers_mount() -> TestResult {
        if !is_root() {
            return Ok(());
        }
        let t = Layout::new()?;
        // Long paths, like the real `layers/<64 hex>/diff`, so the plain options cannot fit.
        let mut lowers = Vec::new();
        for i in 0..100 {
            let name = format!("{i:064x}");
            let content = i.to_string();
            let own = format!("f{i}");
            lowers.push(t.layer(&name, &[("common", Some(&content)), (&own, Some(&content))])?);
        }
        lowers.reverse(); // top-most first: layer 99 is on top
        let plain: Vec<String> = lowers.iter().map(|l| l.to_string_lossy().into_owned()).collect();
        assert!(overlay_options(&plain, "u", "w").len() > MAX_MOUNT_OPTIONS, "the test must need the fallback");
        let rootfs = t.path("rootfs");
        {
            let _m = t.mount(&lowers)?;
            assert_eq!(fs::read_to_string(rootfs.join("common"))?, "99");
            for i in 0..100 {
                assert_eq!(fs::read_to_string(rootfs.join(format!("f{i}")))?, i.to_string());
            }
        }
        assert!(!is_mounted(&rootfs)?);
        Ok(())
    }

    #[test]
    fn the_guard_unmounts_when_a_test_panics() -> TestResult {
        if !is_root() {
            return Ok(());
        }
        let t = Layout::new()?;
        let lower = t.layer("l", &[("f", Some("f"))])?;
        let rootfs = t.path("rootfs");
        let panicked = std::panic::catch_unwind(|| {
            let _m = t.mount(std::slice::from_ref(&lower)).map_err(|e| e.to_string());
            panic!("assertion failed while mounted");
        });
        assert!(panicked.is_err());
        assert!(!is_mounted(&rootfs)?);
        Ok(())
    }

    #[test]
    fn bad_arguments() {
        let p = PathBuf::from;
        assert!(matches!(mount_overlay(&[], &p("/u"), &p("/w"), &p("/t")), Err(RootfsError::NoLowers)));
        let r = mount_overlay(&[p("/a,b")], &p("/u"), &p("/w"), &p("/t"));
        assert!(matches!(r, Err(RootfsError::UnsafePath { what: "a comma", .. })), "{r:?}");
        let r = mount_overlay(&[p("/a")], &p("/u:x"), &p("/w"), &p("/t"));
        assert!(matches!(r, Err(RootfsError::UnsafePath { what: "a colon", .. })), "{r:?}");
        let too_many: Vec<PathBuf> = (0..300).map(|i| PathBuf::from(format!("/nonexistent/{i}"))).collect();
        let r = mount_overlay(&too_many, &p("/u"), &p("/w"), &p("/t"));
        assert!(matches!(r, Err(RootfsError::OpenLower { .. })), "{r:?}");
        assert_eq!(
            overlay_options(&["/a".into(), "/b".into()], "/u", "/w"),
            "lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off"
        );
    }

    #[test]
    fn too_many_layers_is_a_clear_error() -> TestResult {
        let dir = tempfile::tempdir()?;
        let lowers = vec![dir.path().to_path_buf(); 400];
        let r = mount_overlay(&lowers, dir.path(), dir.path(), dir.path());
        assert!(matches!(r, Err(RootfsError::TooManyLayers { layers: 400, .. })), "{r:?}");
        Ok(())
    }
}
