//! The container's user: `user`, `uid`, `user:group` or `uid:gid` resolved against the image's own
//! `/etc/passwd` and `/etc/group`, with runc's rules (libcontainer/user `GetExecUser`, which Docker uses):
//!
//! - a numeric user is always a uid, found in passwd or not; a name must be in passwd;
//! - the first matching entry wins; without an explicit group the gid is the user's primary group and the
//!   supplementary groups are the groups that list the user by name;
//! - with an explicit group (name or gid) there are no supplementary groups from /etc/group;
//! - ids must lie in 0..=2147483647.
//!
//! The files are read inside the rootfs with `openat2(RESOLVE_IN_ROOT)`, so an image whose `/etc/passwd` is a
//! symlink to `/../../etc/passwd` reads its own `/etc/passwd`, never the host's. Where openat2 is missing
//! (kernels before 5.6, some sandboxes) a component walk resolves symlinks against the rootfs instead.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat2};

/// Files larger than this are not a passwd or group file anyone means.
const MAX_FILE: u64 = 16 << 20;
/// Largest uid or gid runc accepts.
const MAX_ID: i64 = i32::MAX as i64;

/// Who the container's process runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Docker's order: the primary gid, the supplementary groups from /etc/group, then `group_add`.
    pub additional_gids: Vec<u32>,
    /// Home directory from passwd, `/` when the user has no entry.
    pub home: String,
}

/// One line of /etc/passwd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: i64,
    pub gid: i64,
    pub home: String,
}

/// One line of /etc/group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: i64,
    pub members: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    #[error("{0}: uids and gids must be in range 0-{MAX_ID}")]
    Range(String),
    #[error("read {path} in the container's rootfs: {source}")]
    Read {
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("{path} in the container's rootfs is not a regular file")]
    NotRegular { path: String },
    #[error("{path} in the container's rootfs is larger than {MAX_FILE} bytes")]
    TooLarge { path: String },
}

/// Resolves `user` (empty means root) and Docker's `group_add` against the rootfs's /etc/passwd and
/// /etc/group. Missing files are not an error: numeric ids still work, names do not (as runc).
pub fn resolve(rootfs: &Path, user: &str, group_add: &[String]) -> Result<ExecUser, UserError> {
    let passwd = read_in_root(rootfs, "/etc/passwd")?.map(|b| parse_passwd(&String::from_utf8_lossy(&b)));
    let group = read_in_root(rootfs, "/etc/group")?.map(|b| parse_group(&String::from_utf8_lossy(&b)));
    let mut exec = exec_user(user, passwd.as_deref(), group.as_deref())?;
    for gid in additional_groups(group_add, group.as_deref())? {
        if !exec.additional_gids.contains(&gid) {
            exec.additional_gids.push(gid);
        }
    }
    Ok(exec)
}

/// runc's `GetExecUser` with the defaults Docker passes (uid 0, gid 0, home `/`), plus Docker's list of
/// additional gids (the primary gid first).
pub fn exec_user(
    spec: &str,
    passwd: Option<&[PasswdEntry]>,
    group: Option<&[GroupEntry]>,
) -> Result<ExecUser, UserError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g.split(':').next().unwrap_or_default()),
        None => (spec, ""),
    };
    let uid_arg = user_arg.parse::<i64>().ok();
    let gid_arg = group_arg.parse::<i64>().ok();

    let mut uid: i64 = 0;
    let mut gid: i64 = 0;
    let mut home = "/".to_owned();
    let matched = passwd.unwrap_or_default().iter().find(|u| match (user_arg, uid_arg) {
        ("", _) => u.uid == 0,
        (_, Some(n)) => u.uid == n,
        (name, None) => u.name == name,
    });
    let matched_name = match matched {
        Some(entry) => {
            uid = entry.uid;
            gid = entry.gid;
            home = entry.home.clone();
            Some(entry.name.as_str())
        }
        None if user_arg.is_empty() => None,
        None => {
            uid = uid_arg.ok_or_else(|| UserError::NoSuchUser(user_arg.to_owned()))?;
            None
        }
    };
    check_range(uid, user_arg)?;

    let mut supplementary = Vec::new();
    if !group_arg.is_empty() {
        let found = group.unwrap_or_default().iter().find(|g| match gid_arg {
            Some(n) => g.gid == n,
            None => g.name == group_arg,
        });
        gid = match found {
            Some(g) => g.gid,
            None => gid_arg.ok_or_else(|| UserError::NoSuchGroup(group_arg.to_owned()))?,
        };
    } else if let Some(name) = matched_name {
        supplementary =
            group.unwrap_or_default().iter().filter(|g| g.members.iter().any(|m| m == name)).map(|g| g.gid).collect();
    }
    check_range(gid, group_arg)?;

    let gid = to_id(gid, group_arg)?;
    let mut additional_gids = vec![gid];
    for g in supplementary {
        let g = to_id(g, "group file")?;
        if !additional_gids.contains(&g) {
            additional_gids.push(g);
        }
    }
    Ok(ExecUser { uid: to_id(uid, user_arg)?, gid, additional_gids, home })
}

/// runc's `GetAdditionalGroups`: each entry is a group name or gid from /etc/group, or any gid in range.
pub fn additional_groups(names: &[String], group: Option<&[GroupEntry]>) -> Result<Vec<u32>, UserError> {
    let mut gids = Vec::new();
    for wanted in names {
        let found = group.unwrap_or_default().iter().find(|g| g.name == *wanted || g.gid.to_string() == *wanted);
        let gid = match found {
            Some(g) => g.gid,
            None => wanted.parse::<i64>().map_err(|_| UserError::NoSuchGroup(wanted.clone()))?,
        };
        let gid = to_id(gid, wanted)?;
        if !gids.contains(&gid) {
            gids.push(gid);
        }
    }
    Ok(gids)
}

fn check_range(id: i64, what: &str) -> Result<(), UserError> {
    to_id(id, what).map(|_| ())
}

fn to_id(id: i64, what: &str) -> Result<u32, UserError> {
    if (0..=MAX_ID).contains(&id) {
        u32::try_from(id).map_err(|_| UserError::Range(what.to_owned()))
    } else {
        Err(UserError::Range(what.to_owned()))
    }
}

/// Parses /etc/passwd (`name:password:uid:gid:gecos:home:shell`). Lines without a numeric uid and gid are
/// skipped rather than read as root (runc reads them as 0).
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.trim().split(':').collect();
            let name = (*f.first()?).to_owned();
            let uid = f.get(2)?.parse().ok()?;
            let gid = f.get(3)?.parse().ok()?;
            let home = f.get(5).map(|h| (*h).to_owned()).unwrap_or_default();
            (!name.is_empty()).then_some(PasswdEntry { name, uid, gid, home })
        })
        .collect()
}

/// Parses /etc/group (`name:password:gid:member,member`).
pub fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.trim().split(':').collect();
            let name = (*f.first()?).to_owned();
            let gid = f.get(2)?.parse().ok()?;
            let members = f
                .get(3)
                .map(|m| m.split(',').filter(|m| !m.is_empty()).map(str::to_owned).collect())
                .unwrap_or_default();
            (!name.is_empty()).then_some(GroupEntry { name, gid, members })
        })
        .collect()
}

/// Reads a regular file of the rootfs, resolving `path` (absolute or not) with the rootfs as `/`: symlinks,
/// absolute or relative, never leave it. `Ok(None)` when the file or a directory on the way is missing.
pub fn read_in_root(rootfs: &Path, path: &str) -> Result<Option<Vec<u8>>, UserError> {
    let read_err = |source| UserError::Read { path: path.to_owned(), source };
    let Some(file) = open_in_root(rootfs, path).map_err(read_err)? else {
        return Ok(None);
    };
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(UserError::NotRegular { path: path.to_owned() });
    }
    if meta.len() > MAX_FILE {
        return Err(UserError::TooLarge { path: path.to_owned() });
    }
    let mut buf = Vec::new();
    file.take(MAX_FILE + 1).read_to_end(&mut buf).map_err(read_err)?;
    if buf.len() as u64 > MAX_FILE {
        return Err(UserError::TooLarge { path: path.to_owned() });
    }
    Ok(Some(buf))
}

/// Flags for opening the final file: never block on a FIFO, never take a terminal, never leak the fd.
fn open_flags() -> OFlag {
    OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_NOCTTY | OFlag::O_NONBLOCK
}

fn open_in_root(rootfs: &Path, path: &str) -> io::Result<Option<File>> {
    let root = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((OFlag::O_DIRECTORY | OFlag::O_CLOEXEC).bits())
        .open(rootfs)?;
    let relative = path.trim_start_matches('/');
    let how =
        OpenHow::new().flags(open_flags()).resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    match openat2(&root, relative, how) {
        Ok(fd) => Ok(Some(File::from(fd))),
        Err(Errno::ENOENT | Errno::ENOTDIR) => Ok(None),
        // No openat2 here (old kernel, or a seccomp filter that answers EPERM for unknown syscalls).
        Err(Errno::ENOSYS | Errno::EPERM) => open_by_walk(rootfs, path),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// The fallback of [`open_in_root`]: resolves `path` component by component, reading each symlink and
/// resolving it against `rootfs` (`..` stops at the rootfs), then opens the result without following a
/// final symlink. The rootfs is not being modified while a container is created, so the walk and the open
/// see the same tree.
fn open_by_walk(rootfs: &Path, path: &str) -> io::Result<Option<File>> {
    let Some(resolved) = resolve_in_root(rootfs, path)? else {
        return Ok(None);
    };
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags((open_flags() | OFlag::O_NOFOLLOW).bits())
        .open(rootfs.join(&resolved));
    match opened {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `path` with every symlink resolved inside `rootfs`, relative to it; `None` when something is missing.
fn resolve_in_root(rootfs: &Path, path: &str) -> io::Result<Option<PathBuf>> {
    const MAX_LINKS: usize = 40;
    let mut pending: Vec<OsString> = components(Path::new(path));
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate: PathBuf = resolved.iter().chain(std::iter::once(&part)).collect();
        let meta = match std::fs::symlink_metadata(rootfs.join(&candidate)) {
            Ok(m) => m,
            Err(e) if matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory) => {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if !meta.file_type().is_symlink() {
            resolved.push(part);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(io::Error::from(Errno::ELOOP));
        }
        let target = std::fs::read_link(rootfs.join(&candidate))?;
        if target.is_absolute() {
            resolved.clear();
        }
        let mut more = components(&target);
        more.reverse();
        pending.extend(more);
    }
    Ok(Some(resolved.iter().collect()))
}

/// The normal components of `path` and its `..`s, leaving out `/` and `.`.
fn components(path: &Path) -> Vec<OsString> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_owned()),
            Component::ParentDir => Some(OsString::from(std::ffi::OsStr::from_bytes(b".."))),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        www-data:x:33:33:www-data:/var/www:/bin/false\n\
        app:x:1000:1000::/home/app:/bin/sh\n\
        broken:x:notanumber:0::/:/bin/sh\n\
        dup:x:1000:5::/dup:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        daemon:x:1:\n\
        tty:x:5:app\n\
        www-data:x:33:\n\
        app:x:1000:\n\
        audio:x:29:app,www-data\n\
        wheel:x:10:root\n";

    fn rootfs_with(passwd: &str, group: &str) -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        std::fs::create_dir_all(dir.path().join("etc"))?;
        std::fs::write(dir.path().join("etc/passwd"), passwd)?;
        std::fs::write(dir.path().join("etc/group"), group)?;
        Ok(dir)
    }

    fn user(spec: &str) -> Result<ExecUser, UserError> {
        let p = parse_passwd(PASSWD);
        let g = parse_group(GROUP);
        exec_user(spec, Some(&p), Some(&g))
    }

    fn ids(u: &ExecUser) -> (u32, u32, Vec<u32>) {
        (u.uid, u.gid, u.additional_gids.clone())
    }

    #[test]
    fn the_four_forms() -> TestResult {
        assert_eq!(ids(&user("")?), (0, 0, vec![0, 10]), "root, with the groups that list root");
        assert_eq!(ids(&user("app")?), (1000, 1000, vec![1000, 5, 29]));
        assert_eq!(user("app")?.home, "/home/app");
        assert_eq!(ids(&user("1000")?), (1000, 1000, vec![1000, 5, 29]), "numeric matches by uid");
        assert_eq!(ids(&user("www-data:audio")?), (33, 29, vec![29]), "explicit group: no supplementary");
        assert_eq!(ids(&user("33:5")?), (33, 5, vec![5]));
        assert_eq!(ids(&user("4242")?), (4242, 0, vec![0]), "numeric user without an entry");
        assert_eq!(user("4242")?.home, "/");
        assert_eq!(ids(&user("4242:4343")?), (4242, 4343, vec![4343]));
        assert_eq!(ids(&user("app:4343")?), (1000, 4343, vec![4343]));
        Ok(())
    }

    #[test]
    fn unknown_names_and_bad_ids() {
        let msg = |r: Result<ExecUser, UserError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg(user("nobody")), "unable to find user nobody: no matching entries in passwd file");
        assert_eq!(msg(user("app:nogroup")), "unable to find group nogroup: no matching entries in group file");
        assert!(msg(user("-1")).contains("must be in range"));
        assert!(msg(user("0:99999999999")).contains("must be in range"));
        assert!(user("broken").is_err(), "a line with a bad uid is skipped");
    }

    #[test]
    fn without_files_numeric_ids_still_work() -> TestResult {
        assert_eq!(ids(&exec_user("", None, None)?), (0, 0, vec![0]));
        assert_eq!(ids(&exec_user("5:6", None, None)?), (5, 6, vec![6]));
        assert!(exec_user("app", None, None).is_err());
        Ok(())
    }

    #[test]
    fn group_add_by_name_or_id() -> TestResult {
        let g = parse_group(GROUP);
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(additional_groups(&names(&["audio", "33", "777", "audio"]), Some(&g))?, vec![29, 33, 777]);
        let err = additional_groups(&names(&["video"]), Some(&g)).err().ok_or("video accepted")?;
        assert_eq!(err.to_string(), "unable to find group video: no matching entries in group file");
        Ok(())
    }

    #[test]
    fn resolve_reads_the_rootfs_files() -> TestResult {
        let root = rootfs_with(PASSWD, GROUP)?;
        let u = resolve(root.path(), "app", &["wheel".to_owned()])?;
        assert_eq!(ids(&u), (1000, 1000, vec![1000, 5, 29, 10]));
        // No /etc at all: root still resolves, names do not.
        let empty = tempfile::tempdir()?;
        assert_eq!(ids(&resolve(empty.path(), "", &[])?), (0, 0, vec![0]));
        assert!(resolve(empty.path(), "app", &[]).is_err());
        Ok(())
    }

    /// The image's /etc/passwd points out of the rootfs: the host's passwd must never be read.
    #[test]
    fn hostile_symlinks_stay_in_the_rootfs() -> TestResult {
        let base = tempfile::tempdir()?;
        let outside = base.path().join("outside");
        std::fs::create_dir_all(&outside)?;
        std::fs::write(outside.join("passwd"), "evil:x:0:0::/:/bin/sh\n")?;
        let root = base.path().join("rootfs");
        std::fs::create_dir_all(root.join("etc"))?;
        std::fs::write(root.join("etc/group"), GROUP)?;

        // Relative escape: ../../outside/passwd stops at the rootfs, where there is no outside/.
        symlink("../../outside/passwd", root.join("etc/passwd"))?;
        assert!(matches!(resolve(&root, "evil", &[]), Err(UserError::NoSuchUser(_))));
        assert_eq!(resolve_in_root(&root, "/etc/passwd")?, None);

        // Absolute link to the host's /etc/passwd: inside the rootfs that is the link itself (a loop).
        std::fs::remove_file(root.join("etc/passwd"))?;
        symlink("/etc/passwd", root.join("etc/passwd"))?;
        let host_user = parse_passwd(&std::fs::read_to_string("/etc/passwd").unwrap_or_default())
            .into_iter()
            .find(|u| u.name != "root")
            .map(|u| u.name);
        if let Some(name) = host_user {
            assert!(resolve(&root, &name, &[]).is_err(), "{name} came from the host's /etc/passwd");
        }
        assert!(resolve_in_root(&root, "/etc/passwd").is_err(), "the walk reports the loop");

        // A symlinked /etc directory pointing out is resolved inside too.
        std::fs::remove_file(root.join("etc/passwd"))?;
        std::fs::remove_file(root.join("etc/group"))?;
        std::fs::remove_dir(root.join("etc"))?;
        symlink("/../../../outside", root.join("etc"))?;
        assert!(matches!(resolve(&root, "evil", &[]), Err(UserError::NoSuchUser(_))));
        assert_eq!(resolve_in_root(&root, "/etc/passwd")?, None);
        Ok(())
    }

    #[test]
    fn symlinks_inside_the_rootfs_are_followed() -> TestResult {
        let root = tempfile::tempdir()?;
        std::fs::create_dir_all(root.path().join("etc"))?;
        std::fs::create_dir_all(root.path().join("usr/share/base"))?;
        std::fs::write(root.path().join("usr/share/base/passwd"), PASSWD)?;
        symlink("/usr/share/base/passwd", root.path().join("etc/passwd"))?;
        assert_eq!(resolve(root.path(), "app", &[])?.uid, 1000);
        assert_eq!(resolve_in_root(root.path(), "/etc/passwd")?, Some(PathBuf::from("usr/share/base/passwd")));
        let walked = open_by_walk(root.path(), "/etc/passwd")?.ok_or("walk found nothing")?;
        assert!(walked.metadata()?.is_file());
        Ok(())
    }

    #[test]
    fn only_regular_files_are_read() -> TestResult {
        let root = tempfile::tempdir()?;
        std::fs::create_dir_all(root.path().join("etc/passwd"))?;
        assert!(matches!(resolve(root.path(), "", &[]), Err(UserError::NotRegular { .. })));
        Ok(())
    }
}
