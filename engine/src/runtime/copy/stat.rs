//! The `X-Docker-Container-Path-Stat` header: base64 of `{name, size, mode, mtime, linkTarget}`, where `mode` is
//! Go's `os.FileMode` (type bits high, permission bits low), which the docker CLI decodes and tests
//! (`IsDir()`, `ModeSymlink`) to decide how to copy.

use base64::Engine as _;
use nix::sys::stat::{FileStat, SFlag};
use serde::{Deserialize, Serialize};

// Go's os.FileMode bits (io/fs/fs.go).
const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;
const MODE_DEVICE: u32 = 1 << 26;
const MODE_NAMED_PIPE: u32 = 1 << 25;
const MODE_SOCKET: u32 = 1 << 24;
const MODE_SETUID: u32 = 1 << 23;
const MODE_SETGID: u32 = 1 << 22;
const MODE_CHAR_DEVICE: u32 = 1 << 21;
const MODE_STICKY: u32 = 1 << 20;

/// Docker's `container.PathStat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    pub fn new(name: &str, st: &FileStat, link_target: String) -> PathStat {
        PathStat {
            name: name.to_string(),
            size: st.st_size,
            mode: go_file_mode(st.st_mode),
            mtime: crate::time::rfc3339_parts(st.st_mtime, u32::try_from(st.st_mtime_nsec).unwrap_or(0)),
            link_target,
        }
    }

    /// The header value: base64 (standard, padded) of the JSON.
    pub fn header_value(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::STANDARD.encode(json)
    }

    pub fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }
}

/// `st_mode` as Go's `os.FileMode` (what `fillFileStatFromSys` computes).
pub fn go_file_mode(st_mode: u32) -> u32 {
    let mut mode = st_mode & 0o777;
    let kind = st_mode & SFlag::S_IFMT.bits();
    mode |= match kind {
        k if k == SFlag::S_IFDIR.bits() => MODE_DIR,
        k if k == SFlag::S_IFLNK.bits() => MODE_SYMLINK,
        k if k == SFlag::S_IFBLK.bits() => MODE_DEVICE,
        k if k == SFlag::S_IFCHR.bits() => MODE_DEVICE | MODE_CHAR_DEVICE,
        k if k == SFlag::S_IFIFO.bits() => MODE_NAMED_PIPE,
        k if k == SFlag::S_IFSOCK.bits() => MODE_SOCKET,
        _ => 0,
    };
    for (bit, go) in [(0o4000, MODE_SETUID), (0o2000, MODE_SETGID), (0o1000, MODE_STICKY)] {
        if st_mode & bit != 0 {
            mode |= go;
        }
    }
    mode
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_are_go_file_modes() {
        assert_eq!(go_file_mode(0o100644), 0o644);
        assert_eq!(go_file_mode(0o040755), MODE_DIR | 0o755);
        assert_eq!(go_file_mode(0o041777), MODE_DIR | MODE_STICKY | 0o777);
        assert_eq!(go_file_mode(0o120777), MODE_SYMLINK | 0o777);
        assert_eq!(go_file_mode(0o104755), MODE_SETUID | 0o755);
        assert_eq!(go_file_mode(0o102755), MODE_SETGID | 0o755);
        assert_eq!(go_file_mode(0o020666), MODE_DEVICE | MODE_CHAR_DEVICE | 0o666);
        assert_eq!(go_file_mode(0o060660), MODE_DEVICE | 0o660);
        assert_eq!(go_file_mode(0o010644), MODE_NAMED_PIPE | 0o644);
        assert_eq!(go_file_mode(0o140755), MODE_SOCKET | 0o755);
        // What Go prints for a directory: drwxr-xr-x is 2147484141.
        assert_eq!(go_file_mode(0o040755), 2_147_484_141);
    }

    #[test]
    fn the_header_is_base64_json_with_docker_field_names() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let f = dir.path().join("hostname");
        std::fs::write(&f, "abc\n")?;
        let st = nix::sys::stat::lstat(&f)?;
        let stat = PathStat::new("hostname", &st, String::new());
        let raw = base64::engine::general_purpose::STANDARD.decode(stat.header_value())?;
        let v: serde_json::Value = serde_json::from_slice(&raw)?;
        assert_eq!(v["name"], "hostname");
        assert_eq!(v["size"], 4);
        assert_eq!(v["mode"], u64::from(st.st_mode & 0o777));
        assert_eq!(v["linkTarget"], "");
        let mtime = v["mtime"].as_str().unwrap_or_default();
        assert_eq!(crate::time::unix_seconds(Some(mtime)), st.st_mtime, "{mtime}");
        assert!(!stat.is_dir());
        Ok(())
    }
}
