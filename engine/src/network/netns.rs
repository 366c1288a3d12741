//! A container's network namespace, made by berthd before its shim runs: a new namespace bind-mounted on
//! `<run-dir>/netns/<id>`. The spec points the container at that file, so berth-netd can wire eth0 (and write
//! the DNS answers into resolv.conf) before the container's first process runs; the bind mount keeps the
//! namespace alive until berthd releases it, also after the container died (so its veths can be found and
//! removed).

use std::path::Path;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, unshare};

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("cannot create the network namespace {path}: {message}")]
    Create { path: String, message: String },
    #[error("cannot remove the network namespace {path}: {message}")]
    Remove { path: String, message: String },
}

/// Make a new network namespace and bind-mount it on `path` (a leftover at `path` is removed first).
pub fn create(path: &Path) -> Result<(), NetnsError> {
    let fail = |message: String| NetnsError::Create { path: path.display().to_string(), message };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
    }
    remove(path).map_err(|e| fail(e.to_string()))?;
    std::fs::File::create(path).map_err(|e| fail(format!("mount point: {e}")))?;
    let target = path.to_path_buf();
    // unshare(CLONE_NEWNET) moves only the calling thread: a short-lived thread of its own, so no tokio worker
    // ever runs in the container's namespace; the bind mount outlives the thread.
    let made = std::thread::spawn(move || -> nix::Result<()> {
        unshare(CloneFlags::CLONE_NEWNET)?;
        mount(Some("/proc/thread-self/ns/net"), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
    })
    .join();
    let result = match made {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Err(_) => Err(fail("the namespace thread panicked".into())),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Unmount and delete the namespace file; the namespace dies with its last user. Nothing there is fine.
pub fn remove(path: &Path) -> Result<(), NetnsError> {
    let fail = |message: String| NetnsError::Remove { path: path.display().to_string(), message };
    match umount2(path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (never mounted, or already unmounted).
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(fail(e.to_string())),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removing_nothing_is_fine() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        assert!(remove(&dir.path().join("none")).is_ok());
        let plain = dir.path().join("plain");
        std::fs::write(&plain, b"").unwrap_or_else(|e| panic!("{e}"));
        assert!(remove(&plain).is_ok());
        assert!(!plain.exists());
    }

    /// Needs root (CAP_SYS_ADMIN); skipped otherwise, as the e2e tests cover it.
    #[test]
    fn a_namespace_is_made_and_removed() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("netns/x");
        create(&path).unwrap_or_else(|e| panic!("{e}"));
        let ours = std::fs::metadata(&path).map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap_or(0);
        let host = std::fs::metadata("/proc/self/ns/net").map(|m| std::os::unix::fs::MetadataExt::ino(&m)).unwrap_or(0);
        assert_ne!(ours, host, "a namespace of its own is mounted there");
        remove(&path).unwrap_or_else(|e| panic!("{e}"));
        assert!(!path.exists());
    }
}
