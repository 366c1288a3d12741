//! The harness of the engine's end-to-end tests: a berth installation of its own (root, run directory, berthd
//! stopped on drop), the `docker` CLI pointed at it, and the busybox test image.
#![allow(dead_code)] // each test binary uses a different part of the harness

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One berth installation: its own root and run directory; its berthd is stopped on drop.
pub struct Berth {
    pub dir: tempfile::TempDir,
}

impl Berth {
    pub fn new() -> Berth {
        sweep_orphans();
        let dir = tempfile::Builder::new().prefix(PREFIX).tempdir().unwrap_or_else(|e| panic!("{e}"));
        // Who owns this installation: a later test sweeps it if this process died without dropping it.
        let _ = std::fs::write(dir.path().join(OWNER), std::process::id().to_string());
        Berth { dir }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    /// This installation's own cgroup parent, removed on drop (so no test leaves cgroups behind).
    pub fn cgroup_parent(&self) -> String {
        let name = self.dir.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        format!("/{name}")
    }

    pub fn socket(&self) -> PathBuf {
        self.run_dir().join("berth.sock")
    }

    /// This installation's own nftables table for its berth-netd (`inet <name>`), deleted on drop.
    pub fn nft_table(&self) -> String {
        nft_table(&self.dir.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default())
    }

    /// The resolv.conf berth-netd forwards outside names to: loopback only, so no query leaves the machine.
    pub fn netd_resolv_conf(&self) -> PathBuf {
        let path = self.dir.path().join("netd-resolv.conf");
        if !path.exists() {
            let _ = std::fs::write(&path, "nameserver 127.0.0.1\n");
        }
        path
    }

    pub fn berth(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            // fork+exec (see src/cli/engine.rs): posix_spawn would leave signals 32 and 33 ignored down the line.
            .gid(nix::unistd::getgid().as_raw())
            .arg("--root")
            .arg(self.root())
            .arg("--run-dir")
            .arg(self.run_dir())
            .args(args)
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_RUN_DIR")
            .env("BERTH_CGROUP_PARENT", self.cgroup_parent())
            // The berth-netd the CLI starts: its own nft table and loopback-only upstream resolvers.
            .env("BERTH_NETD_NFT_TABLE", self.nft_table())
            .env("BERTH_NETD_RESOLV_CONF", self.netd_resolv_conf())
            .output();
        out.unwrap_or_else(|e| panic!("cannot run berth: {e}"))
    }

    /// `berth …` that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(out.status.success(), "berth {args:?} failed:\n{}\n{}", stdout(&out), stderr(&out));
        stdout(&out)
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker: {e}"))
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.status.success(), "docker {args:?} failed:\n{}\n{}", stdout(&out), stderr(&out));
        stdout(&out)
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        teardown(self.dir.path());
    }
}

/// Every test installation is a temp dir with this prefix.
const PREFIX: &str = "berth-e2e-img-";
/// The file in it that names the test process owning it.
const OWNER: &str = "owner.pid";

/// Installations whose test process is gone (killed by a timeout, say, so its `Drop` never ran): torn down and
/// removed, so a leaking run does not break the next one. Live tests' installations are left alone.
fn sweep_orphans() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for e in entries.flatten() {
        let dir = e.path();
        if !e.file_name().to_string_lossy().starts_with(PREFIX) {
            continue;
        }
        let owner = std::fs::read_to_string(dir.join(OWNER)).ok().and_then(|p| p.trim().parse::<u32>().ok());
        let alive = owner.is_some_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
        // A dir without an owner file is either being set up this instant or from an older harness: only old
        // ones are swept.
        let young = owner.is_none()
            && e.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|a| a.as_secs() < 600));
        if !alive && !young {
            teardown(&dir);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Stop an installation's daemons and remove everything it made on the host: processes, mounts, cgroups, links,
/// its nft table.
fn teardown(dir: &Path) {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let (root, run_dir) = (dir.join("root"), dir.join("run"));
    stop_pid_file(&run_dir.join("berthd.pid"));
    // berth-netd stops before the sweep below would kill it, then what it made goes: its bridges and veths
    // (tagged with its instance id) and its nft table.
    let netd_tag = std::fs::read_to_string(root.join("netd/instance")).ok();
    stop_pid_file(&run_dir.join("netd.pid"));
    // Whatever a failed test left running: the containers (every process in this berth's cgroups), their
    // shims (found by the state directory in their command line), their mounts, then the cgroups.
    let parent = name.as_str();
    let pids_root = Path::new("/sys/fs/cgroup/pids").join(parent);
    let mut pids: Vec<String> = Vec::new();
    if let Ok(children) = std::fs::read_dir(&pids_root) {
        for c in children.flatten() {
            let tasks = std::fs::read_to_string(c.path().join("cgroup.procs")).unwrap_or_default();
            pids.extend(tasks.lines().map(str::to_owned));
        }
    }
    let marker = dir.to_string_lossy().into_owned();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                pids.push(p.file_name().to_string_lossy().into_owned());
            }
        }
    }
    for pid in &pids {
        let _ = Command::new("kill").arg("-KILL").arg(pid).status();
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut ours: Vec<&str> =
        mounts.lines().filter_map(|l| l.split(' ').nth(4)).filter(|m| m.starts_with(&marker)).collect();
    ours.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in ours {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.flatten() {
            let dir = h.path().join(parent);
            if let Ok(children) = std::fs::read_dir(&dir) {
                for c in children.flatten() {
                    while std::fs::remove_dir(c.path()).is_err() && c.path().exists() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
    if let Some(id) = netd_tag {
        for link in links_with_alias(&format!("berth-netd:{}", id.trim())) {
            let _ = Command::new("ip").args(["link", "del", "dev", &link]).status();
        }
    }
    let _ = Command::new("nft")
        .args(["delete", "table", "inet", &nft_table(&name)])
        .stderr(std::process::Stdio::null())
        .status();
}

/// The nft table of the installation `name`.
fn nft_table(name: &str) -> String {
    let suffix: String = name.chars().filter(char::is_ascii_alphanumeric).collect();
    format!("be2e_{suffix}")
}

/// Links on the host whose alias is `tag` (from `ip -o -d link show`, one line per link).
pub fn links_with_alias(tag: &str) -> Vec<String> {
    let out = Command::new("ip").args(["-o", "-d", "link", "show"]).output();
    let text = out.map(|o| stdout(&o)).unwrap_or_default();
    text.lines()
        .filter(|l| l.split_whitespace().collect::<Vec<_>>().windows(2).any(|w| w[0] == "alias" && w[1] == tag))
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// SIGTERM the daemon of a pid file, SIGKILL after 5 s.
fn stop_pid_file(pid_file: &Path) {
    let Ok(pid) = std::fs::read_to_string(pid_file) else { return };
    let pid = pid.trim().to_string();
    if pid.is_empty() {
        return;
    }
    let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if Path::new(&format!("/proc/{pid}")).exists() {
        let _ = Command::new("kill").arg("-KILL").arg(&pid).status();
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The busybox rootfs tarball made by the project's script from Debian's busybox-static.
pub fn busybox_tar(dir: &Path) -> PathBuf {
    let out = dir.join("busybox.tar");
    let status = Command::new(repo().join("scripts/make-busybox-rootfs.sh"))
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run make-busybox-rootfs.sh: {e}"));
    assert!(status.status.success(), "make-busybox-rootfs.sh failed: {}", stderr(&status));
    out
}
