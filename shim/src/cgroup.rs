//! The container's cgroup as the shim needs it: the OOM-kill counter (v1 `memory.oom_control`, v2
//! `memory.events`) and the list of its processes. Found from `/proc/<init>/cgroup` while the init runs, so it
//! works whichever runtime made the cgroup and wherever `cgroupsPath` put it.

use std::fs;
use std::path::{Path, PathBuf};

/// Where the container's cgroup files are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerCgroup {
    /// The path as `/proc/<pid>/cgroup` shows it (memory hierarchy on v1, the unified path on v2).
    pub path: Option<String>,
    oom: Option<OomCounter>,
    procs: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum OomCounter {
    /// `memory.oom_control` (v1): `oom_kill N`.
    V1(PathBuf),
    /// `memory.events` (v2): `oom_kill N`.
    V2(PathBuf),
}

impl ContainerCgroup {
    /// The container's cgroup: the spec's absolute `cgroupsPath` (where the runtime put it), or else what the
    /// kernel says of the init while it runs. Best effort: an unknown layout gives no counter and no processes
    /// rather than an error.
    ///
    /// **Warning**: `procs()` feeds `kill`. A root cgroup (`/`, which is also what the kernel shows for a process
    /// that has already exited) is never taken for the container's.
    pub fn for_container(cgroups_path: Option<&str>, init_pid: i32) -> Self {
        match cgroups_path.filter(|p| p.starts_with('/')) {
            Some(path) => Self::at_path(path),
            None => Self::of_pid(init_pid),
        }
    }

    /// The cgroup of `pid`, as `/proc/<pid>/cgroup` shows it.
    pub fn of_pid(pid: i32) -> Self {
        let Ok(membership) = fs::read_to_string(format!("/proc/{pid}/cgroup")) else { return Self::default() };
        let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else { return Self::default() };
        Self::resolve(&membership, &mountinfo, Path::exists)
    }

    /// The cgroup at `path` (an absolute cgroupsPath) in every hierarchy: v1 memory if mounted, else unified.
    pub fn at_path(path: &str) -> Self {
        let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else { return Self::default() };
        Self::resolve(&format!("1:memory:{path}\n0::{path}\n"), &mountinfo, Path::exists)
    }

    fn resolve(membership: &str, mountinfo: &str, exists: impl Fn(&Path) -> bool) -> Self {
        let found = Self::resolve_any(membership, mountinfo, exists);
        match found.path.as_deref().map(|p| p.trim_end_matches('/')) {
            Some(p) if !p.is_empty() => found,
            _ => Self::default(),
        }
    }

    fn resolve_any(membership: &str, mountinfo: &str, exists: impl Fn(&Path) -> bool) -> Self {
        let mounts = CgroupMounts::parse(mountinfo);
        let mut v1_memory = None;
        let mut v1_any = None;
        let mut unified = None;
        for line in membership.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
            if controllers.is_empty() {
                unified = Some(path.to_string());
            } else if controllers.split(',').any(|c| c == "memory") {
                v1_memory = Some(path.to_string());
            } else if v1_any.is_none() && !controllers.starts_with("name=") {
                v1_any = Some((controllers.to_string(), path.to_string()));
            }
        }
        let join = |mnt: &Path, path: &str| mnt.join(path.trim_start_matches('/'));
        if let (Some(path), Some(mnt)) = (&v1_memory, mounts.v1("memory")) {
            let dir = join(mnt, path);
            return ContainerCgroup {
                path: Some(path.clone()),
                oom: Some(OomCounter::V1(dir.join("memory.oom_control"))),
                procs: Some(dir.join("cgroup.procs")),
            };
        }
        if let (Some(path), Some(mnt)) = (&unified, &mounts.unified) {
            let dir = join(mnt, path);
            let events = dir.join("memory.events");
            let oom = exists(&events).then_some(OomCounter::V2(events));
            if oom.is_some() || v1_any.is_none() {
                return ContainerCgroup { path: Some(path.clone()), oom, procs: Some(dir.join("cgroup.procs")) };
            }
        }
        if let Some((controllers, path)) = v1_any
            && let Some(mnt) = controllers.split(',').find_map(|c| mounts.v1(c))
        {
            return ContainerCgroup {
                path: Some(path.clone()),
                oom: None,
                procs: Some(join(mnt, &path).join("cgroup.procs")),
            };
        }
        Self::default()
    }

    /// How many times the OOM killer has killed a process of this cgroup.
    pub fn oom_kills(&self) -> Option<u64> {
        let (OomCounter::V1(file) | OomCounter::V2(file)) = self.oom.as_ref()?;
        let text = fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| l.strip_prefix("oom_kill ")).and_then(|n| n.trim().parse().ok())
    }

    /// The pids in the cgroup now.
    pub fn procs(&self) -> Vec<i32> {
        let Some(file) = &self.procs else { return Vec::new() };
        fs::read_to_string(file).map(|t| t.lines().filter_map(|l| l.trim().parse().ok()).collect()).unwrap_or_default()
    }
}

/// cgroup mount points from `/proc/self/mountinfo`.
#[derive(Debug, Default)]
struct CgroupMounts {
    /// (controllers from the super options, mount point) of each v1 hierarchy.
    v1: Vec<(Vec<String>, PathBuf)>,
    unified: Option<PathBuf>,
}

impl CgroupMounts {
    fn parse(mountinfo: &str) -> Self {
        let mut out = CgroupMounts::default();
        for line in mountinfo.lines() {
            // id parent maj:min root mountpoint options [optional…] - fstype source superoptions
            let Some((left, right)) = line.split_once(" - ") else { continue };
            let Some(mountpoint) = left.split(' ').nth(4) else { continue };
            let mut right = right.split(' ');
            let (Some(fstype), Some(_source), Some(superopts)) = (right.next(), right.next(), right.next()) else {
                continue;
            };
            match fstype {
                "cgroup" => {
                    out.v1.push((superopts.split(',').map(str::to_string).collect(), PathBuf::from(mountpoint)))
                }
                "cgroup2" if out.unified.is_none() => out.unified = Some(PathBuf::from(mountpoint)),
                _ => {}
            }
        }
        out
    }

    fn v1(&self, controller: &str) -> Option<&Path> {
        self.v1.iter().find(|(opts, _)| opts.iter().any(|o| o == controller)).map(|(_, p)| p.as_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
30 24 0:26 / /sys/fs/cgroup ro,nosuid shared:4 - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:5 - cgroup2 cgroup2 rw,nsdelegate
35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory
36 30 0:32 / /sys/fs/cgroup/pids rw,nosuid shared:10 - cgroup cgroup rw,pids
";

    #[test]
    fn v1_memory_wins_on_hybrid_hosts() {
        let cg = ContainerCgroup::resolve("12:pids:/berth/c1\n9:memory:/berth/c1\n0::/berth/c1\n", MOUNTINFO, |_| true);
        assert_eq!(cg.path.as_deref(), Some("/berth/c1"));
        assert_eq!(cg.oom, Some(OomCounter::V1("/sys/fs/cgroup/memory/berth/c1/memory.oom_control".into())));
        assert_eq!(cg.procs, Some("/sys/fs/cgroup/memory/berth/c1/cgroup.procs".into()));
    }

    #[test]
    fn the_root_cgroup_is_never_the_containers() {
        // An exited process shows "/": killing "its cgroup" would signal the host's root cgroup.
        let cg = ContainerCgroup::resolve("9:memory:/\n0::/\n", MOUNTINFO, |_| true);
        assert_eq!(cg, ContainerCgroup::default());
        assert!(cg.procs().is_empty());
        assert_eq!(ContainerCgroup::at_path("/"), ContainerCgroup::default());
    }

    #[test]
    fn pure_v2() {
        let mi = "31 24 0:27 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        let cg = ContainerCgroup::resolve("0::/berth/c1\n", mi, |_| true);
        assert_eq!(cg.oom, Some(OomCounter::V2("/sys/fs/cgroup/berth/c1/memory.events".into())));
    }

    #[test]
    fn hybrid_without_v1_memory_uses_another_v1_hierarchy_for_procs() {
        let cg = ContainerCgroup::resolve("12:pids:/c1\n0::/\n", MOUNTINFO, |_| false);
        assert_eq!(cg.oom, None);
        assert_eq!(cg.procs, Some("/sys/fs/cgroup/pids/c1/cgroup.procs".into()));
    }
}
