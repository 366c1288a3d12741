//! The local driver's options, as `docker volume create --opt type=… --opt device=… --opt o=…` gives them:
//! with none the volume is a plain directory; with them `device` is mounted on the volume's `_data` (mount(2)
//! with `type` and the flags and data of `o`) while a container uses it, as moby's local driver does.
//! `o=bind` (type `none`) binds a host directory; `type=tmpfs device=tmpfs o=size=10m` makes a tmpfs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use super::{Result, VolumeError};

/// The keys the local driver knows (moby: `validOpts`).
const KEYS: [&str; 3] = ["type", "device", "o"];

/// A validated set of local driver options: what to mount on `_data`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMount {
    /// The filesystem type; `None` for a bind.
    pub fs_type: Option<String>,
    pub device: String,
    pub flags: MsFlags,
    /// What mount(2) gets as data: the `o` entries that are not flags.
    pub data: String,
}

impl LocalMount {
    fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
}

/// Check the options; `None` when there are none (a plain directory volume).
pub fn parse(options: &BTreeMap<String, String>) -> Result<Option<LocalMount>> {
    if let Some(key) = options.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(VolumeError::InvalidOption(format!(
            "invalid option key: {key:?} (the local driver takes type, device and o)"
        )));
    }
    if options.is_empty() {
        return Ok(None);
    }
    let get = |k: &str| options.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let device = get("device").ok_or_else(|| {
        VolumeError::InvalidOption("missing required option: \"device\" (the local driver mounts it)".into())
    })?;
    let (flags, data) = split_o(get("o").unwrap_or(""));
    let fs_type = get("type").filter(|t| *t != "none").map(str::to_owned);
    let bind = flags.contains(MsFlags::MS_BIND);
    match (&fs_type, bind) {
        (None, false) => {
            return Err(VolumeError::InvalidOption(
                "missing required option: \"type\" (or o=bind to bind a host directory)".into(),
            ));
        }
        (Some(t), true) => {
            return Err(VolumeError::InvalidOption(format!("o=bind goes with type=none, not type={t}")));
        }
        (None, true) if !device.starts_with('/') => {
            return Err(VolumeError::InvalidOption(format!("device {device:?} of a bind must be an absolute path")));
        }
        _ => {}
    }
    Ok(Some(LocalMount { fs_type, device: device.to_owned(), flags, data }))
}

/// `o` as mount(8) reads it: known flag names become mount flags, the rest stays data for the filesystem.
fn split_o(o: &str) -> (MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for opt in o.split(',').filter(|s| !s.is_empty()) {
        let (set, clear) = match opt {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "async" => (MsFlags::empty(), MsFlags::MS_SYNCHRONOUS),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "nodiratime" => (MsFlags::MS_NODIRATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "defaults" => (MsFlags::empty(), MsFlags::empty()),
            other => {
                data.push(other);
                continue;
            }
        };
        flags.insert(set);
        flags.remove(clear);
    }
    (flags, data.join(","))
}

/// Mount the volume's device on `target` (its `_data`).
pub fn mount_on(m: &LocalMount, target: &Path) -> std::result::Result<(), String> {
    let data = (!m.data.is_empty()).then_some(m.data.as_str());
    if m.is_bind() {
        let device = PathBuf::from(&m.device);
        if !device.is_dir() {
            return Err(format!("bind device {} is not a directory", device.display()));
        }
        let recursive = m.flags & MsFlags::MS_REC;
        mount(Some(device.as_path()), target, None::<&str>, MsFlags::MS_BIND | recursive, None::<&str>)
            .map_err(|e| format!("bind {} on {}: {e}", device.display(), target.display()))?;
        // A bind takes its other flags (ro, nosuid, …) only on a remount.
        let rest = m.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
        if !rest.is_empty() {
            let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | rest;
            if let Err(e) = mount(None::<&str>, target, None::<&str>, flags, None::<&str>) {
                let _ = umount2(target, MntFlags::MNT_DETACH);
                return Err(format!("remount {} with {rest:?}: {e}", target.display()));
            }
        }
        return Ok(());
    }
    mount(Some(m.device.as_str()), target, m.fs_type.as_deref(), m.flags, data).map_err(|e| {
        format!("mount {} ({}) on {}: {e}", m.device, m.fs_type.as_deref().unwrap_or(""), target.display())
    })
}

/// Unmount `target`; not being mounted is no error.
pub fn unmount(target: &Path) -> std::result::Result<(), String> {
    match umount2(target, MntFlags::UMOUNT_NOFOLLOW) {
        Ok(()) | Err(nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => umount2(target, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW)
            .map_err(|e| format!("unmount {}: {e}", target.display())),
        Err(e) => Err(format!("unmount {}: {e}", target.display())),
    }
}

/// Whether something is mounted exactly on `target`, from `/proc/self/mountinfo` (field 5, octal escapes).
pub fn is_mounted(target: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else { return false };
    let want = target.to_string_lossy();
    info.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| unescape(m) == want)
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(pos) = rest.find('\\') {
        out.push_str(&rest[..pos]);
        let code = rest.get(pos + 1..pos + 4).and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(char::from(c));
                rest = &rest[pos + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[pos + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn tmpfs_and_bind_options_are_understood() -> std::result::Result<(), VolumeError> {
        assert_eq!(parse(&opts(&[]))?, None);
        let tmpfs = parse(&opts(&[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=10m,uid=1000,noexec")]))?;
        let tmpfs = tmpfs.ok_or_else(|| VolumeError::InvalidOption("none".into()))?;
        assert_eq!(tmpfs.fs_type.as_deref(), Some("tmpfs"));
        assert_eq!(tmpfs.data, "size=10m,uid=1000");
        assert_eq!(tmpfs.flags, MsFlags::MS_NOEXEC);
        let bind = parse(&opts(&[("type", "none"), ("device", "/srv/x"), ("o", "bind,ro")]))?;
        let bind = bind.ok_or_else(|| VolumeError::InvalidOption("none".into()))?;
        assert!(bind.is_bind());
        assert_eq!(bind.fs_type, None);
        assert!(bind.flags.contains(MsFlags::MS_RDONLY));
        Ok(())
    }

    #[test]
    fn other_options_are_refused_with_a_reason() {
        let err = |pairs: &[(&str, &str)]| parse(&opts(pairs)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err(&[("size", "1g")]).contains("invalid option key: \"size\""));
        assert!(err(&[("type", "tmpfs")]).contains("device"));
        assert!(err(&[("device", "/x")]).contains("type"));
        assert!(err(&[("type", "ext4"), ("device", "/x"), ("o", "bind")]).contains("type=none"));
        assert!(err(&[("type", "none"), ("device", "rel"), ("o", "bind")]).contains("absolute"));
    }

    #[test]
    fn mountinfo_escapes_are_read() {
        assert_eq!(unescape(r"/a\040b\134c"), r"/a b\c");
        assert_eq!(unescape(r"/plain"), "/plain");
        assert_eq!(unescape(r"/odd\4"), r"/odd\4");
    }
}
