//! Where cgroups are mounted on this host, which mode it runs (v1 or unified v2), and the directories of one
//! container's cgroup in them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// How the host runs cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// One hierarchy per controller (or a few), perhaps with a controller-less cgroup2 beside (hybrid).
    V1,
    /// One unified cgroup2 hierarchy.
    V2,
}

/// The cgroup mounts of the host, from `/proc/self/mountinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hierarchies {
    /// Each v1 hierarchy: the controllers it holds (from the super options) and its mount point.
    v1: Vec<(Vec<String>, PathBuf)>,
    unified: Option<PathBuf>,
}

/// The v1 controllers berthd reads or writes.
const V1_CONTROLLERS: [&str; 7] = ["freezer", "memory", "cpuacct", "cpu", "pids", "blkio", "cpuset"];

impl Hierarchies {
    /// The host's, read once: cgroup mounts do not move under a running daemon.
    pub fn host() -> &'static Hierarchies {
        static HOST: OnceLock<Hierarchies> = OnceLock::new();
        HOST.get_or_init(|| Hierarchies::parse(&std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()))
    }

    pub fn parse(mountinfo: &str) -> Hierarchies {
        let mut out = Hierarchies::default();
        for line in mountinfo.lines() {
            // id parent maj:min root mountpoint options [optional…] - fstype source superoptions
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let Some(mountpoint) = left.split(' ').nth(4) else { continue };
            let mountpoint = PathBuf::from(unescape(mountpoint));
            let mut right = right.split(' ');
            let (Some(fstype), Some(_source), Some(superopts)) = (right.next(), right.next(), right.next()) else {
                continue;
            };
            match fstype {
                "cgroup" => {
                    let controllers: Vec<String> =
                        superopts.split(',').filter(|o| V1_CONTROLLERS.contains(o)).map(str::to_owned).collect();
                    // Several mounts of one hierarchy show the same controllers: the first is enough.
                    if !controllers.is_empty() && !out.v1.iter().any(|(c, _)| *c == controllers) {
                        out.v1.push((controllers, mountpoint));
                    }
                }
                "cgroup2" if out.unified.is_none() => out.unified = Some(mountpoint),
                _ => {}
            }
        }
        out
    }

    /// v1 as soon as any controller has a v1 hierarchy (a hybrid host's cgroup2 then holds no controllers that
    /// berth uses), v2 when only cgroup2 is mounted; `None` without cgroups.
    pub fn mode(&self) -> Option<Mode> {
        if !self.v1.is_empty() {
            Some(Mode::V1)
        } else if self.unified.is_some() {
            Some(Mode::V2)
        } else {
            None
        }
    }

    fn v1_mount(&self, controller: &str) -> Option<&Path> {
        self.v1.iter().find(|(c, _)| c.iter().any(|x| x == controller)).map(|(_, p)| p.as_path())
    }
}

/// The directories of one container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContainerCgroup {
    /// The container's directory in each v1 hierarchy that is mounted, by controller.
    V1(BTreeMap<&'static str, PathBuf>),
    /// The container's directory in the unified hierarchy.
    V2(PathBuf),
}

impl ContainerCgroup {
    /// From the path the shim recorded and, while the init runs, its `/proc/<pid>/cgroup` (which names each v1
    /// controller's path). The membership counts only when it still shows the recorded path: a recycled pid
    /// belongs to someone else. The root cgroup is never taken for a container's (freezing it would freeze the
    /// host).
    pub fn resolve(h: &Hierarchies, recorded: Option<&str>, membership: Option<&str>) -> Option<ContainerCgroup> {
        let recorded = recorded.filter(|p| is_container_path(p));
        let lines: Vec<(&str, &str)> = membership
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
                Some((controllers, path))
            })
            .collect();
        let trusted = match recorded {
            Some(r) => lines.iter().any(|(_, p)| *p == r),
            None => false,
        };
        let path_of = |controller: &str| -> Option<String> {
            let from_membership = trusted
                .then(|| {
                    lines.iter().find(|(c, _)| {
                        if controller.is_empty() { c.is_empty() } else { c.split(',').any(|x| x == controller) }
                    })
                })
                .flatten()
                .map(|(_, p)| (*p).to_owned());
            from_membership.or_else(|| recorded.map(str::to_owned)).filter(|p| is_container_path(p))
        };
        let join = |mnt: &Path, path: &str| mnt.join(path.trim_start_matches('/'));
        match h.mode()? {
            Mode::V1 => {
                let dirs: BTreeMap<&'static str, PathBuf> =
                    V1_CONTROLLERS.iter().filter_map(|c| Some((*c, join(h.v1_mount(c)?, &path_of(c)?)))).collect();
                (!dirs.is_empty()).then_some(ContainerCgroup::V1(dirs))
            }
            Mode::V2 => Some(ContainerCgroup::V2(join(h.unified.as_deref()?, &path_of("")?))),
        }
    }

    pub fn mode(&self) -> Mode {
        match self {
            ContainerCgroup::V1(_) => Mode::V1,
            ContainerCgroup::V2(_) => Mode::V2,
        }
    }

    /// A v1 controller's directory (`None` when not mounted); on v2 the unified directory.
    pub fn dir(&self, controller: &'static str) -> Option<&Path> {
        match self {
            ContainerCgroup::V1(dirs) => dirs.get(controller).map(PathBuf::as_path),
            ContainerCgroup::V2(dir) => Some(dir),
        }
    }

    /// The processes (thread-group ids) in the container's cgroup now.
    pub fn procs(&self) -> super::Result<Vec<i32>> {
        let dir = ["pids", "memory", "freezer", "cpuacct", "cpu"]
            .into_iter()
            .find_map(|c| self.dir(c))
            .ok_or(super::CgroupError::NoController("pids"))?;
        let text = super::read(&dir.join("cgroup.procs"))?;
        Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect())
    }
}

/// A cgroup path that may be a container's: absolute, not the root, no `..`.
fn is_container_path(p: &str) -> bool {
    p.starts_with('/') && !p.trim_matches('/').is_empty() && !p.split('/').any(|c| c == "..")
}

/// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && let Some(oct) = s.get(i + 1..i + 4)
            && let Ok(v) = u8::from_str_radix(oct, 8)
        {
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This VM's layout: v1 controllers plus a controller-less cgroup2 (hybrid).
    const HYBRID: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:5 - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw shared:6 - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw shared:7 - cgroup cgroup rw,cpu,cpuacct
34 30 0:30 / /sys/fs/cgroup/freezer rw shared:8 - cgroup cgroup rw,freezer
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid shared:10 - cgroup cgroup rw,pids
";

    const UNIFIED: &str = "31 24 0:27 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n";

    #[test]
    fn the_mode_follows_the_mounts() {
        assert_eq!(Hierarchies::parse(HYBRID).mode(), Some(Mode::V1));
        assert_eq!(Hierarchies::parse(UNIFIED).mode(), Some(Mode::V2));
        assert_eq!(Hierarchies::parse("22 1 0:5 / /proc rw - proc proc rw\n").mode(), None);
        // The named systemd hierarchy holds no controller berth uses.
        let h = Hierarchies::parse(HYBRID);
        assert_eq!(h.v1_mount("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct")));
        assert_eq!(h.v1_mount("blkio"), None);
    }

    #[test]
    fn v1_dirs_per_controller_from_the_membership() {
        let h = Hierarchies::parse(HYBRID);
        let membership = "6:freezer:/berth/c1\n4:memory:/berth/c1\n2:cpu,cpuacct:/other/c1\n8:pids:/berth/c1\n0::/\n";
        let cg = ContainerCgroup::resolve(&h, Some("/berth/c1"), Some(membership));
        let Some(cg) = cg else { panic!("no cgroup") };
        assert_eq!(cg.mode(), Mode::V1);
        assert_eq!(cg.dir("freezer"), Some(Path::new("/sys/fs/cgroup/freezer/berth/c1")));
        assert_eq!(cg.dir("cpuacct"), Some(Path::new("/sys/fs/cgroup/cpu,cpuacct/other/c1")));
        assert_eq!(cg.dir("blkio"), None);
    }

    #[test]
    fn a_recycled_pid_does_not_move_the_cgroup() {
        let h = Hierarchies::parse(HYBRID);
        // The pid now belongs to a process elsewhere: the recorded path is used for every controller.
        let cg = ContainerCgroup::resolve(&h, Some("/berth/c1"), Some("6:freezer:/\n4:memory:/user/x\n"));
        let Some(cg) = cg else { panic!("no cgroup") };
        assert_eq!(cg.dir("freezer"), Some(Path::new("/sys/fs/cgroup/freezer/berth/c1")));
    }

    #[test]
    fn the_root_cgroup_is_never_a_containers() {
        for h in [Hierarchies::parse(HYBRID), Hierarchies::parse(UNIFIED)] {
            assert_eq!(ContainerCgroup::resolve(&h, Some("/"), Some("6:freezer:/\n0::/\n")), None);
            assert_eq!(ContainerCgroup::resolve(&h, None, Some("6:freezer:/a\n0::/a\n")), None);
            assert_eq!(ContainerCgroup::resolve(&h, Some("/a/../.."), None), None);
        }
    }

    #[test]
    fn v2_uses_the_unified_path() {
        let h = Hierarchies::parse(UNIFIED);
        let cg = ContainerCgroup::resolve(&h, Some("/berth/c1"), Some("0::/berth/c1\n"));
        assert_eq!(cg, Some(ContainerCgroup::V2("/sys/fs/cgroup/berth/c1".into())));
        assert_eq!(cg.as_ref().and_then(|c| c.dir("memory")), Some(Path::new("/sys/fs/cgroup/berth/c1")));
    }

    #[test]
    fn procs_read_from_a_fake_tree() -> Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let mnt = tmp.path().join("unified dir");
        std::fs::create_dir_all(mnt.join("berth/c1"))?;
        std::fs::write(mnt.join("berth/c1/cgroup.procs"), "12\n34\n")?;
        let mountinfo =
            format!("31 24 0:27 / {} rw - cgroup2 cgroup2 rw\n", mnt.display().to_string().replace(' ', "\\040"));
        let h = Hierarchies::parse(&mountinfo);
        let cg = ContainerCgroup::resolve(&h, Some("/berth/c1"), None).ok_or("no cgroup")?;
        assert_eq!(cg.procs()?, vec![12, 34]);
        Ok(())
    }
}
