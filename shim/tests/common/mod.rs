//! A container under test: its own temp root (bundle from the busybox rootfs, state dir, runtime root), its own id
//! `berthtest-<random>` and cgroup `/berthtest-<random>`, and a Drop that leaves nothing behind (the shim, the
//! container, the libcontainer state, the cgroups) even when the test panics.

#![allow(dead_code)] // each test file uses a different part of the fixture

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub const SHIM: &str = env!("CARGO_BIN_EXE_berth-shim");
pub const HELPER: &str = env!("CARGO_BIN_EXE_berth-shim-runtime");

/// `berth-shim` spawned as berthd must spawn it: fork+exec (see `berth_shim::spawn::fork_exec`).
pub fn shim_command() -> Command {
    let mut cmd = Command::new(SHIM);
    berth_shim::spawn::fork_exec(&mut cmd);
    cmd
}

/// Tests drive real containers: root only. Others skip (and say so).
pub fn root_or_skip(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipping {test}: needs root");
    }
    root
}

/// `berthtest-<12 hex>`: process id, time and a counter, so parallel tests and runs never collide.
pub fn random_id() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mix =
        (u64::from(std::process::id()) << 32 | u64::from(nanos)).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(n);
    format!("berthtest-{:012x}", mix & 0xffff_ffff_ffff)
}

/// The busybox rootfs tar, built once per test run with the repo's script.
fn busybox_tar() -> PathBuf {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Built fresh each run (the script is deterministic), under a temp name, renamed into place: a
        // concurrent run never reads half a tar. It stays in target/tmp for the next run to replace.
        let tar = dir.join("berth-shim-busybox.tar");
        let tmp = dir.join(format!("berth-shim-busybox.tar.{}", std::process::id()));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-rootfs.sh");
        let out = Command::new("bash").arg(&script).arg(&tmp).output().expect("run make-busybox-rootfs.sh");
        assert!(out.status.success(), "make-busybox-rootfs.sh: {}", String::from_utf8_lossy(&out.stderr));
        fs::rename(&tmp, &tar).expect("rename the busybox tar");
        tar
    })
    .clone()
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub id: String,
    pub cgroup: String,
    pub bundle: PathBuf,
    pub state: PathBuf,
    pub runtime_root: PathBuf,
    pub log: PathBuf,
    pub spec: Value,
}

impl Fixture {
    /// A bundle running `args` with pid/ipc/uts/mount/network namespaces, /proc /dev /dev/pts /dev/shm /sys,
    /// Docker's default capabilities, no seccomp.
    pub fn new(args: &[&str]) -> Self {
        let dir = tempfile::Builder::new().prefix("berthtest-").tempdir().expect("tempdir");
        let id = random_id();
        let bundle = dir.path().join("bundle");
        let rootfs = bundle.join("rootfs");
        fs::create_dir_all(&rootfs).expect("mkdir rootfs");
        let out = Command::new("tar").arg("-C").arg(&rootfs).arg("-xf").arg(busybox_tar()).output().expect("tar");
        assert!(out.status.success(), "untar: {}", String::from_utf8_lossy(&out.stderr));
        let state = dir.path().join("state");
        let runtime_root = dir.path().join("runtime");
        let log = state.join(format!("{id}-json.log"));
        let cgroup = format!("/{id}");
        let spec = default_spec(args, &cgroup);
        let f = Fixture { dir, id, cgroup, bundle, state, runtime_root, log, spec };
        f.write_spec();
        f
    }

    pub fn edit_spec(&mut self, edit: impl FnOnce(&mut Value)) {
        edit(&mut self.spec);
        self.write_spec();
    }

    fn write_spec(&self) {
        let text = serde_json::to_vec_pretty(&self.spec).expect("spec json");
        fs::write(self.bundle.join("config.json"), text).expect("write config.json");
    }

    /// The arguments of `berth-shim start` for this container, `extra` appended.
    pub fn start_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "start".into(),
            "--id".into(),
            self.id.clone(),
            "--bundle".into(),
            self.bundle.display().to_string(),
            "--state-dir".into(),
            self.state.display().to_string(),
            "--runtime-root".into(),
            self.runtime_root.display().to_string(),
            "--log-path".into(),
            self.log.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// `berth-shim start`: its exit status and its one JSON line.
    pub fn start(&self, extra: &[&str]) -> (Output, Value) {
        let out = shim_command().args(self.start_args(extra)).output().expect("run berth-shim start");
        let line = String::from_utf8_lossy(&out.stdout);
        let ready: Value = serde_json::from_str(line.trim()).unwrap_or_else(|e| {
            panic!("start printed {line:?} ({e}); stderr {}", String::from_utf8_lossy(&out.stderr))
        });
        (out, ready)
    }

    /// Start and insist it ran.
    pub fn start_ok(&self, extra: &[&str]) -> Value {
        let (out, ready) = self.start(extra);
        assert!(out.status.success(), "start failed: {ready}; shim.log: {}", self.shim_log());
        assert_eq!(ready["type"], "started", "{ready}");
        ready
    }

    /// Poll (with a deadline) for `exit.json`.
    pub fn wait_exit(&self, timeout: Duration) -> Value {
        let path = self.state.join("exit.json");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(text) = fs::read_to_string(&path) {
                return serde_json::from_str(&text).expect("exit.json is JSON");
            }
            assert!(Instant::now() < deadline, "no exit.json after {timeout:?}; shim.log: {}", self.shim_log());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Poll (with a deadline) until `cond` holds.
    pub fn poll_until(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}; shim.log: {}", self.shim_log());
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn control_path(&self) -> PathBuf {
        self.state.join("control.sock")
    }

    /// One request, one response, on a fresh connection.
    pub fn control(&self, request: Value) -> Value {
        let mut conn = Control::connect(&self.control_path());
        conn.request(request)
    }

    pub fn shim_pid(&self) -> Option<i32> {
        fs::read_to_string(self.state.join("shim.pid")).ok()?.trim().parse().ok()
    }

    pub fn init_pid(&self) -> Option<i32> {
        fs::read_to_string(self.state.join("init.pid")).ok()?.trim().parse().ok()
    }

    pub fn shim_log(&self) -> String {
        fs::read_to_string(self.state.join("shim.log")).unwrap_or_default()
    }

    /// The json-file log entries of `path`.
    pub fn log_entries_of(path: &Path) -> Vec<Value> {
        let text = fs::read_to_string(path).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line {l:?}: {e}"))).collect()
    }

    pub fn log_entries(&self) -> Vec<Value> {
        Self::log_entries_of(&self.log)
    }

    /// Nothing of the container is left once its shim has exited: runtime state, cgroup directories, control
    /// socket, stdin FIFO.
    pub fn assert_no_leftovers(&self) {
        self.poll_until("the shim to exit", Duration::from_secs(20), || !self.shim_pid().is_some_and(is_shim));
        assert!(!self.runtime_root.join(&self.id).exists(), "libcontainer state of {} left", self.id);
        for dir in cgroup_dirs(&self.cgroup) {
            assert!(!dir.exists(), "cgroup {} left", dir.display());
        }
        assert!(!self.control_path().exists(), "control socket left");
        assert!(!self.state.join("stdin").exists(), "stdin fifo left");
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // The container first (the shim then records, deletes and exits by itself), then whatever is left.
        if let (Some(shim), Some(init)) = (self.shim_pid(), self.init_pid())
            && is_alive(shim)
            && parent_of(init) == Some(shim)
        {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(init), nix::sys::signal::Signal::SIGKILL);
        }
        if let Some(shim) = self.shim_pid() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while is_shim(shim) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if is_shim(shim) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(shim), nix::sys::signal::Signal::SIGKILL);
            }
        }
        let _ =
            Command::new(HELPER).args(["delete", "--id", &self.id, "--runtime-root"]).arg(&self.runtime_root).output();
        for dir in cgroup_dirs(&self.cgroup) {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// A control socket connection.
pub struct Control {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Control {
    pub fn connect(path: &Path) -> Self {
        let stream = UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let writer = stream.try_clone().expect("clone stream");
        Control { reader: BufReader::new(stream), writer }
    }

    /// Connect, or `None` when the socket is gone.
    pub fn connect_or_none(path: &Path) -> Option<Self> {
        let stream = UnixStream::connect(path).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let writer = stream.try_clone().ok()?;
        Some(Control { reader: BufReader::new(stream), writer })
    }

    /// One request; `None` when the connection ends without an answer.
    pub fn request_or_none(&mut self, request: Value) -> Option<Value> {
        let mut line = serde_json::to_vec(&request).ok()?;
        line.push(b'\n');
        self.writer.write_all(&line).ok()?;
        let mut answer = String::new();
        self.reader.read_line(&mut answer).ok()?;
        serde_json::from_str(answer.trim()).ok()
    }

    pub fn send(&mut self, request: Value) {
        let mut line = serde_json::to_vec(&request).expect("json");
        line.push(b'\n');
        self.writer.write_all(&line).expect("send request");
    }

    pub fn recv(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read response");
        serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("response {line:?}: {e}"))
    }

    pub fn request(&mut self, request: Value) -> Value {
        self.send(request);
        self.recv()
    }
}

pub fn default_spec(args: &[&str], cgroup: &str) -> Value {
    let caps = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": 0, "gid": 0},
            "args": args,
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": true
        },
        "root": {"path": "rootfs", "readonly": false},
        "hostname": "berthtest",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}
        ],
        "linux": {
            "cgroupsPath": cgroup,
            "namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}, {"type": "network"}],
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// `<mount>/<cgroup>` for every cgroup hierarchy mounted here (v1 and v2).
pub fn cgroup_dirs(cgroup: &str) -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| left.split(' ').nth(4).map(PathBuf::from))?
        })
        .map(|mnt| mnt.join(cgroup.trim_start_matches('/')))
        .collect()
}

pub fn is_alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// Alive and a berth-shim (not a recycled pid).
pub fn is_shim(pid: i32) -> bool {
    is_alive(pid)
        && fs::read(format!("/proc/{pid}/cmdline"))
            .map(|c| c.split(|&b| b == 0).next().is_some_and(|a| a.ends_with(b"berth-shim")))
            .unwrap_or(false)
}

pub fn parent_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.split(' ').nth(1)?.parse().ok()
}

/// A field of /proc/<pid>/status or smaps_rollup, in kB.
pub fn proc_kb(pid: i32, file: &str, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    text.lines().find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
}
