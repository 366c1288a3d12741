//! The OCI runtime spec of a container, built the way Docker builds it (moby `daemon/oci_linux.go`,
//! `daemon/pkg/oci/defaults.go`, `daemon/pkg/oci/caps`, `daemon/seccomp_linux.go`), with one deliberate
//! difference: `no_new_privileges` is on unless `security_opt` turns it off.
//!
//! # Expected flow
//! berthd gathers what it knows about a container into a [`ContainerSpecInput`] (the part of Docker's create
//! body that shapes the spec, with names, volumes and networks already resolved to host paths), mounts the
//! rootfs, and calls [`build_spec`]. The shim hands the result to libcontainer or crun.
//!
//! [`build_spec_with`] runs named steps over a `Plan`: each step turns part of the input into plain data
//! (and fails with a [`SpecError`] naming the offending field), and `Plan::finish` assembles the oci-spec
//! types at the end.
//!
//! # Assumptions
//! - Reads nothing but the rootfs's `/etc/passwd` and `/etc/group` ([`super::user`]), the device nodes named
//!   in `devices` (all of `/dev` when privileged), a seccomp profile file named in `security_opt`, and the
//!   host facts of [`HostFacts::probe`] (`/proc/self/status`, `/proc/self/limits`, a few `/proc/sys` and
//!   `/sys` entries).
//! - No user namespace, no systemd: the cgroup path is a plain `<parent>/<id>`.
//!
//! # Caveats
//! - AppArmor and SELinux options in `security_opt` are accepted and ignored (logged).
//! - Shared and slave propagation of binds sets the rootfs propagation as Docker does, but does not check that
//!   the source's mount is itself shared, which Docker does and reports.
//! - Creating the working directory, bind sources and the shareable `/dev/shm` is berthd's job.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use oci_spec::runtime::{
    Capability, LinuxCapabilities, LinuxCpu, LinuxDevice, LinuxDeviceCgroup, LinuxDeviceType, LinuxMemory,
    LinuxNamespace, LinuxNamespaceType, LinuxPids, LinuxResources, LinuxSeccomp, Mount, PosixRlimit,
    PosixRlimitBuilder, PosixRlimitType, Process, Root, Spec, User,
};
use serde::{Deserialize, Serialize};

use super::seccomp::{self, KernelVersion};
use super::user::{self, ExecUser, UserError};

/// `PATH` when neither the image nor the container sets one (moby `oci.DefaultPathEnv`).
pub const DEFAULT_PATH_ENV: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where the init binary of `init: true` appears in the container (Docker's `/sbin/docker-init`).
pub const INIT_PATH: &str = "/sbin/docker-init";
/// Docker's default `/dev/shm` size: 64 MiB.
pub const DEFAULT_SHM_SIZE: u64 = 64 << 20;
/// The cgroup parent when `cgroup_parent` is empty (Docker's is `/docker`).
pub const DEFAULT_CGROUP_PARENT: &str = "/berth";

/// What berthd knows about a container when it creates it: the subset of Docker's create body that shapes
/// the runtime spec, with volumes, networks and `container:` references already resolved to host paths.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ContainerSpecInput {
    /// The full container id; the default hostname is its first 12 characters.
    pub id: String,
    pub name: String,
    pub hostname: Option<String>,
    pub domainname: Option<String>,
    /// The image's config: env, entrypoint, cmd, working dir, user and stop signal come from here unless the
    /// fields below override them.
    pub image_config: Option<oci_spec::image::Config>,
    /// Container env (`KEY=value`, or `KEY` to unset an image variable), overlaid on the image's.
    pub env: Vec<String>,
    /// `None`: the image's. `Some([])`: no entrypoint, keep the image's cmd. `Some([""])`: no entrypoint and
    /// no image cmd (`--entrypoint ""`).
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub working_dir: Option<String>,
    /// `name`, `uid`, `name:group` or `uid:gid`; empty means root.
    pub user: Option<String>,
    /// Extra groups by name or gid (`group_add`).
    pub group_add: Vec<String>,
    pub stop_signal: Option<String>,
    pub tty: bool,
    /// Read by the shim (keep stdin open); no effect on the spec.
    pub open_stdin: bool,
    pub privileged: bool,
    pub read_only_rootfs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    /// `no-new-privileges[=|:true|false]`, `seccomp=unconfined|builtin|<profile JSON>|<path>`,
    /// `systempaths=unconfined`, `writable-cgroups=<bool>`; `apparmor=…` and `label=…` are ignored.
    pub security_opt: Vec<String>,
    pub sysctls: BTreeMap<String, String>,
    pub devices: Vec<DeviceMapping>,
    /// Extra device cgroup rules such as `c 1:3 mr`.
    pub device_cgroup_rules: Vec<String>,
    /// Size of the private `/dev/shm` in bytes; [`DEFAULT_SHM_SIZE`] when unset.
    pub shm_size: Option<u64>,
    /// Host path of an init binary (tini, docker-init): bind-mounted at [`INIT_PATH`] and run as pid 1, in
    /// front of the command, when the container has its own pid namespace.
    pub init: Option<PathBuf>,
    pub resources: Resources,
    pub mounts: Vec<MountInput>,
    pub network: NetworkMode,
    pub ipc: IpcMode,
    pub pid: NamespaceMode,
    pub uts: NamespaceMode,
    /// `None`: Docker's default for the host (private on cgroup v2, the host's on v1).
    pub cgroupns: Option<CgroupnsMode>,
    /// Empty: [`DEFAULT_CGROUP_PARENT`].
    pub cgroup_parent: String,
    /// Files berthd writes for the container, bind-mounted at /etc/hosts, /etc/resolv.conf, /etc/hostname.
    pub hosts_file: Option<PathBuf>,
    pub resolv_conf: Option<PathBuf>,
    pub hostname_file: Option<PathBuf>,
    /// A host directory mounted at /dev/shm instead of a private tmpfs: the shareable IPC of Docker's
    /// `shareable` mode, or the one of the container joined with `ipc: container:…`.
    pub shm_path: Option<PathBuf>,
}

impl ContainerSpecInput {
    /// The signal that stops the container: the container's, the image's, or SIGTERM.
    pub fn stop_signal(&self) -> String {
        self.stop_signal
            .clone()
            .or_else(|| self.image_config.as_ref().and_then(|c| c.stop_signal().clone()))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "SIGTERM".to_owned())
    }
}

/// A host device made available in the container (`--device /dev/fuse:/dev/fuse:rwm`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceMapping {
    pub path_on_host: PathBuf,
    /// Defaults to `path_on_host`.
    pub path_in_container: Option<PathBuf>,
    /// Some of `rwm`; defaults to `rwm`.
    pub cgroup_permissions: Option<String>,
}

/// Resource limits, in the units of Docker's `HostConfig` (0 means unset unless said otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    /// Bytes.
    pub memory: i64,
    pub memory_reservation: i64,
    /// Memory plus swap in bytes; -1 unlimited; 0 means twice `memory` (Docker's default).
    pub memory_swap: i64,
    pub memory_swappiness: Option<i64>,
    pub oom_kill_disable: Option<bool>,
    /// CPUs in billionths (`cpus: 1.5` is 1_500_000_000); becomes a CFS quota over a 100 ms period.
    pub nano_cpus: i64,
    pub cpu_shares: i64,
    /// Microseconds.
    pub cpu_period: i64,
    pub cpu_quota: i64,
    pub cpuset_cpus: String,
    pub cpuset_mems: String,
    /// `Some(n <= 0)` means unlimited.
    pub pids_limit: Option<i64>,
    /// 10..=1000, 0 unset.
    pub blkio_weight: u16,
    /// -1000..=1000; `None` leaves the shim's.
    pub oom_score_adj: Option<i32>,
    pub ulimits: Vec<Ulimit>,
}

/// A `ulimit`: name as Docker spells it (`nofile`, `nproc`, `core`…), -1 for unlimited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// A mount of the container besides its rootfs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountInput {
    /// A host path.
    Bind {
        source: PathBuf,
        target: String,
        #[serde(default)]
        read_only: bool,
        /// Docker's default is `rprivate`.
        #[serde(default)]
        propagation: Option<Propagation>,
        /// `bind` instead of `rbind`.
        #[serde(default)]
        non_recursive: bool,
    },
    /// A volume, already resolved to its host directory (`volumes/<name>/_data`).
    Volume {
        source: PathBuf,
        target: String,
        #[serde(default)]
        read_only: bool,
    },
    Tmpfs {
        target: String,
        /// Bytes.
        #[serde(default)]
        size: Option<u64>,
        /// Permission bits, such as 0o1777.
        #[serde(default)]
        mode: Option<u32>,
        #[serde(default)]
        read_only: bool,
        /// Further tmpfs options as `--tmpfs /run:exec,uid=1000` gives them.
        #[serde(default)]
        options: Vec<String>,
    },
}

impl MountInput {
    pub fn target(&self) -> &str {
        match self {
            MountInput::Bind { target, .. } | MountInput::Volume { target, .. } | MountInput::Tmpfs { target, .. } => {
                target
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Propagation {
    Private,
    Rprivate,
    Shared,
    Rshared,
    Slave,
    Rslave,
}

impl Propagation {
    fn as_str(self) -> &'static str {
        match self {
            Propagation::Private => "private",
            Propagation::Rprivate => "rprivate",
            Propagation::Shared => "shared",
            Propagation::Rshared => "rshared",
            Propagation::Slave => "slave",
            Propagation::Rslave => "rslave",
        }
    }
}

/// The network namespace. Until netd attaches endpoints, `None` (loopback only) is the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// A new network namespace with only loopback.
    #[default]
    None,
    /// The host's network namespace.
    Host,
    /// A namespace prepared for this container (netd's), joined by path: the container's own.
    Path(PathBuf),
    /// Another container's namespace (`/proc/<pid>/ns/net`).
    Container(PathBuf),
}

/// Pid and uts namespaces: private, the host's, or another container's (by namespace path).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceMode {
    #[default]
    Private,
    Host,
    Container(PathBuf),
}

/// Docker's IPC modes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IpcMode {
    #[default]
    Private,
    /// Private, and others may join it (its /dev/shm comes from `shm_path` when berthd provides one).
    Shareable,
    /// Private, without /dev/shm.
    None,
    Host,
    /// Another container's namespace (`/proc/<pid>/ns/ipc`).
    Container(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CgroupnsMode {
    Private,
    Host,
}

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("no command specified")]
    NoCommand,
    #[error("the working directory '{0}' is invalid, it needs to be an absolute path")]
    WorkingDir(String),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error("unknown capability: {0:?}")]
    UnknownCapability(String),
    #[error("capability not supported by your kernel or not available in the current environment: {0:?}")]
    UnavailableCapability(String),
    #[error("invalid --security-opt: {0:?}")]
    SecurityOpt(String),
    #[error("sysctl {key:?} {reason}")]
    Sysctl { key: String, reason: String },
    #[error("error gathering device information while adding custom device {path:?}: {reason}")]
    Device { path: PathBuf, reason: String },
    #[error("invalid device cgroup rule format: '{0}'")]
    DeviceCgroupRule(String),
    #[error("invalid mount {target:?}: {reason}")]
    Mount { target: String, reason: String },
    #[error("invalid ulimit {name}: {reason}")]
    Ulimit { name: String, reason: String },
    #[error("invalid resources: {0}")]
    Resources(String),
    #[error("conflicting options: {0}")]
    Conflict(String),
    #[error("invalid container id {0:?}")]
    Id(String),
    #[error("invalid cgroup parent {0:?}")]
    CgroupParent(String),
    #[error("runtime spec: {0}")]
    Oci(#[from] oci_spec::OciSpecError),
}

/// Facts about the host that shape the spec, read once by [`HostFacts::probe`] (tests build their own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// libseccomp's name of the architecture ([`seccomp::native_arch`]).
    pub arch: String,
    pub kernel: Option<KernelVersion>,
    /// Capabilities the kernel knows and this process's bounding set holds: what `privileged` and
    /// `cap_add: ALL` give (moby `caps.GetAllCapabilities`).
    pub capabilities: Vec<Capability>,
    pub seccomp: bool,
    pub cgroup_v2: bool,
    /// The memory cgroup can limit swap (memsw on v1).
    pub swap_limit: bool,
    /// CAP_SYS_RESOURCE is effective: hard rlimits may be raised.
    pub can_raise_rlimits: bool,
    /// Current hard rlimits by Docker's ulimit name; `u64::MAX` is unlimited.
    pub rlimits_hard: BTreeMap<String, u64>,
    /// berthd's own `oom_score_adj`: without CAP_SYS_RESOURCE a container cannot go below it.
    pub oom_score_adj: i32,
    /// berthd runs in a user namespace (no ping_group_range then, as Docker).
    pub in_user_ns: bool,
    /// Sysctls of Docker's defaults that this kernel has.
    pub sysctls: BTreeSet<String>,
    /// `/sys/devices/system/cpu/cpuN/thermal_throttle` directories, which Docker masks too.
    pub thermal_throttle: Vec<String>,
}

/// Capabilities by number, with the names Docker and the kernel use.
const CAPABILITIES: [(Capability, &str); 41] = [
    (Capability::Chown, "CAP_CHOWN"),
    (Capability::DacOverride, "CAP_DAC_OVERRIDE"),
    (Capability::DacReadSearch, "CAP_DAC_READ_SEARCH"),
    (Capability::Fowner, "CAP_FOWNER"),
    (Capability::Fsetid, "CAP_FSETID"),
    (Capability::Kill, "CAP_KILL"),
    (Capability::Setgid, "CAP_SETGID"),
    (Capability::Setuid, "CAP_SETUID"),
    (Capability::Setpcap, "CAP_SETPCAP"),
    (Capability::LinuxImmutable, "CAP_LINUX_IMMUTABLE"),
    (Capability::NetBindService, "CAP_NET_BIND_SERVICE"),
    (Capability::NetBroadcast, "CAP_NET_BROADCAST"),
    (Capability::NetAdmin, "CAP_NET_ADMIN"),
    (Capability::NetRaw, "CAP_NET_RAW"),
    (Capability::IpcLock, "CAP_IPC_LOCK"),
    (Capability::IpcOwner, "CAP_IPC_OWNER"),
    (Capability::SysModule, "CAP_SYS_MODULE"),
    (Capability::SysRawio, "CAP_SYS_RAWIO"),
    (Capability::SysChroot, "CAP_SYS_CHROOT"),
    (Capability::SysPtrace, "CAP_SYS_PTRACE"),
    (Capability::SysPacct, "CAP_SYS_PACCT"),
    (Capability::SysAdmin, "CAP_SYS_ADMIN"),
    (Capability::SysBoot, "CAP_SYS_BOOT"),
    (Capability::SysNice, "CAP_SYS_NICE"),
    (Capability::SysResource, "CAP_SYS_RESOURCE"),
    (Capability::SysTime, "CAP_SYS_TIME"),
    (Capability::SysTtyConfig, "CAP_SYS_TTY_CONFIG"),
    (Capability::Mknod, "CAP_MKNOD"),
    (Capability::Lease, "CAP_LEASE"),
    (Capability::AuditWrite, "CAP_AUDIT_WRITE"),
    (Capability::AuditControl, "CAP_AUDIT_CONTROL"),
    (Capability::Setfcap, "CAP_SETFCAP"),
    (Capability::MacOverride, "CAP_MAC_OVERRIDE"),
    (Capability::MacAdmin, "CAP_MAC_ADMIN"),
    (Capability::Syslog, "CAP_SYSLOG"),
    (Capability::WakeAlarm, "CAP_WAKE_ALARM"),
    (Capability::BlockSuspend, "CAP_BLOCK_SUSPEND"),
    (Capability::AuditRead, "CAP_AUDIT_READ"),
    (Capability::Perfmon, "CAP_PERFMON"),
    (Capability::Bpf, "CAP_BPF"),
    (Capability::CheckpointRestore, "CAP_CHECKPOINT_RESTORE"),
];

/// Docker's default capabilities (moby `caps.DefaultCapabilities`), in its order.
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
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

/// Docker's masked paths (moby `defaultLinuxMaskedPaths`), before the host's thermal_throttle directories.
pub const MASKED_PATHS: [&str; 12] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Docker's read-only paths.
pub const READONLY_PATHS: [&str; 5] = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// `/proc/self/limits` row titles by Docker's ulimit name.
const RLIMITS: [(&str, &str, PosixRlimitType); 16] = [
    ("cpu", "Max cpu time", PosixRlimitType::RlimitCpu),
    ("fsize", "Max file size", PosixRlimitType::RlimitFsize),
    ("data", "Max data size", PosixRlimitType::RlimitData),
    ("stack", "Max stack size", PosixRlimitType::RlimitStack),
    ("core", "Max core file size", PosixRlimitType::RlimitCore),
    ("rss", "Max resident set", PosixRlimitType::RlimitRss),
    ("nproc", "Max processes", PosixRlimitType::RlimitNproc),
    ("nofile", "Max open files", PosixRlimitType::RlimitNofile),
    ("memlock", "Max locked memory", PosixRlimitType::RlimitMemlock),
    ("as", "Max address space", PosixRlimitType::RlimitAs),
    ("locks", "Max file locks", PosixRlimitType::RlimitLocks),
    ("sigpending", "Max pending signals", PosixRlimitType::RlimitSigpending),
    ("msgqueue", "Max msgqueue size", PosixRlimitType::RlimitMsgqueue),
    ("nice", "Max nice priority", PosixRlimitType::RlimitNice),
    ("rtprio", "Max realtime priority", PosixRlimitType::RlimitRtprio),
    ("rttime", "Max realtime timeout", PosixRlimitType::RlimitRttime),
];

/// Docker's default sysctls for a container with its own network namespace.
const PING_GROUP_RANGE: &str = "net.ipv4.ping_group_range";
const UNPRIVILEGED_PORT_START: &str = "net.ipv4.ip_unprivileged_port_start";

impl HostFacts {
    /// Reads the facts of this host and process. Anything unreadable falls back to the cautious answer.
    pub fn probe() -> Self {
        let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
        let status = read("/proc/self/status");
        let hex = |field: &str| {
            status.lines().find_map(|l| l.strip_prefix(field)).and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        };
        let bounding = hex("CapBnd:");
        let effective = hex("CapEff:").unwrap_or(0);
        let last_cap = read("/proc/sys/kernel/cap_last_cap").trim().parse::<usize>().unwrap_or(CAPABILITIES.len() - 1);
        let capabilities = CAPABILITIES
            .iter()
            .enumerate()
            .filter(|(n, _)| *n <= last_cap && bounding.is_none_or(|b| b & (1 << n) != 0))
            .map(|(_, (c, _))| *c)
            .collect();
        let cgroup_v2 = Path::new("/sys/fs/cgroup/cgroup.controllers").exists();
        let swap_limit = if cgroup_v2 {
            read("/sys/fs/cgroup/cgroup.controllers").split_whitespace().any(|c| c == "memory")
        } else {
            Path::new("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes").exists()
        };
        let uid_map = read("/proc/self/uid_map");
        let in_user_ns =
            !uid_map.is_empty() && uid_map.split_whitespace().collect::<Vec<_>>() != ["0", "0", "4294967295"];
        let sysctls = [PING_GROUP_RANGE, UNPRIVILEGED_PORT_START]
            .into_iter()
            .filter(|k| Path::new("/proc/sys").join(k.replace('.', "/")).exists())
            .map(str::to_owned)
            .collect();
        HostFacts {
            arch: seccomp::native_arch().to_owned(),
            kernel: KernelVersion::parse(read("/proc/sys/kernel/osrelease").trim()),
            capabilities,
            seccomp: status.lines().any(|l| l.starts_with("Seccomp:")),
            cgroup_v2,
            swap_limit,
            can_raise_rlimits: effective & (1 << 24) != 0,
            rlimits_hard: parse_limits(&read("/proc/self/limits")),
            oom_score_adj: read("/proc/self/oom_score_adj").trim().parse().unwrap_or(0),
            in_user_ns,
            sysctls,
            thermal_throttle: thermal_throttle_dirs(),
        }
    }
}

/// Hard limits from `/proc/self/limits`, keyed by Docker's ulimit names.
fn parse_limits(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        for (name, title, _) in RLIMITS {
            if let Some(rest) = line.strip_prefix(title) {
                let hard = rest.split_whitespace().nth(1).and_then(|h| match h {
                    "unlimited" => Some(u64::MAX),
                    n => n.parse().ok(),
                });
                if let Some(hard) = hard {
                    out.insert(name.to_owned(), hard);
                }
            }
        }
    }
    out
}

fn thermal_throttle_dirs() -> Vec<String> {
    let Ok(entries) = fs::read_dir("/sys/devices/system/cpu") else { return Vec::new() };
    let mut cpus: Vec<u32> =
        entries.filter_map(|e| e.ok()?.file_name().to_str()?.strip_prefix("cpu")?.parse().ok()).collect();
    cpus.sort_unstable();
    cpus.into_iter()
        .map(|n| format!("/sys/devices/system/cpu/cpu{n}/thermal_throttle"))
        .filter(|p| Path::new(p).exists())
        .collect()
}

/// Builds the runtime spec of a container whose merged rootfs is mounted at `rootfs`.
pub fn build_spec(input: &ContainerSpecInput, rootfs: &Path) -> Result<Spec, SpecError> {
    build_spec_with(input, rootfs, &HostFacts::probe())
}

/// [`build_spec`] with the host facts given (probe them once per daemon, or fake them in tests).
pub fn build_spec_with(input: &ContainerSpecInput, rootfs: &Path, host: &HostFacts) -> Result<Spec, SpecError> {
    let mut plan = Plan::new(input, rootfs, host)?;
    plan.command()?;
    plan.user()?;
    plan.env();
    plan.capabilities()?;
    plan.namespaces()?;
    plan.mounts()?;
    plan.system_paths();
    plan.devices()?;
    plan.sysctls()?;
    plan.resources()?;
    plan.rlimits()?;
    plan.seccomp()?;
    Ok(plan.finish())
}

/// The container's command by Docker's rules: a given entrypoint resets the image's cmd unless a cmd is
/// given too; a given cmd replaces the image's; `entrypoint: [""]` clears both entrypoints.
pub fn resolve_command(input: &ContainerSpecInput) -> Result<Vec<String>, SpecError> {
    let image = input.image_config.as_ref();
    let image_entrypoint = image.and_then(|c| c.entrypoint().clone());
    let image_cmd = image.and_then(|c| c.cmd().clone());
    let user_cmd = input.cmd.clone().filter(|c| !c.is_empty());
    let (entrypoint, cmd) = match &input.entrypoint {
        Some(ep) if !ep.is_empty() => (ep.clone(), user_cmd.unwrap_or_default()),
        // moby daemon/commit.go `merge`: an empty entrypoint keeps the image's cmd; a missing one keeps both.
        Some(_) => (Vec::new(), user_cmd.or(image_cmd).unwrap_or_default()),
        None => (image_entrypoint.unwrap_or_default(), user_cmd.or(image_cmd).unwrap_or_default()),
    };
    // `--entrypoint ""` arrives as [""]: no entrypoint at all.
    let entrypoint = if entrypoint == [""] { Vec::new() } else { entrypoint };
    let args: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if args.is_empty() || args[0].is_empty() {
        return Err(SpecError::NoCommand);
    }
    Ok(args)
}

/// The container's env by Docker's rules, without `HOME` (which needs the user): the image's env overlaid by
/// the container's (`KEY` alone unsets), on top of `PATH`, `HOSTNAME` and, with a tty, `TERM=xterm`.
pub fn resolve_env(input: &ContainerSpecInput) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
    // moby daemon/commit.go `merge`: container env first, then image variables it does not set.
    let mut config_env = input.env.clone();
    if let Some(image_env) = input.image_config.as_ref().and_then(|c| c.env().as_ref()) {
        if config_env.is_empty() {
            config_env = image_env.clone();
        } else {
            let user_keys: HashSet<String> = input.env.iter().map(|e| key(e)).collect();
            config_env.extend(image_env.iter().filter(|e| !user_keys.contains(&key(e))).cloned());
        }
    }
    // moby container `CreateDaemonEnvironment` + `ReplaceOrAppendEnvValues`.
    let mut env = vec![format!("PATH={DEFAULT_PATH_ENV}"), format!("HOSTNAME={}", hostname_of(input))];
    if input.tty {
        env.push("TERM=xterm".to_owned());
    }
    let defaults: HashMap<String, usize> = env.iter().enumerate().map(|(i, e)| (key(e), i)).collect();
    let mut removed = vec![false; env.len()];
    for value in config_env {
        match value.split_once('=') {
            None => {
                if let Some(&i) = defaults.get(&value) {
                    removed[i] = true;
                }
            }
            Some((k, _)) => match defaults.get(k) {
                Some(&i) => {
                    env[i] = value.clone();
                    removed[i] = false;
                }
                None => env.push(value),
            },
        }
    }
    env.into_iter().enumerate().filter(|(i, _)| !removed.get(*i).copied().unwrap_or(false)).map(|(_, e)| e).collect()
}

/// The container's hostname: the given one, or the first 12 characters of its id (Docker's default).
fn hostname_of(input: &ContainerSpecInput) -> String {
    match &input.hostname {
        Some(h) if !h.is_empty() => h.clone(),
        _ => input.id.chars().take(12).collect(),
    }
}

/// `security_opt`, parsed once (moby `parseSecurityOpt`).
struct SecurityOpts {
    no_new_privileges: bool,
    seccomp: SeccompChoice,
    /// `systempaths=unconfined`: no masked or read-only paths.
    unconfined_paths: bool,
    writable_cgroups: bool,
}

enum SeccompChoice {
    Default,
    Unconfined,
    Profile(Box<seccomp::Profile>),
}

fn parse_security_opts(id: &str, opts: &[String]) -> Result<SecurityOpts, SpecError> {
    let mut out = SecurityOpts {
        no_new_privileges: true,
        seccomp: SeccompChoice::Default,
        unconfined_paths: false,
        writable_cgroups: false,
    };
    let invalid = |opt: &str| SpecError::SecurityOpt(opt.to_owned());
    for opt in opts {
        match opt.as_str() {
            "no-new-privileges" => {
                out.no_new_privileges = true;
                continue;
            }
            "disable" => {
                tracing::warn!(id, "security_opt label:disable ignored: berth applies no SELinux labels");
                continue;
            }
            _ => {}
        }
        let (key, value) = opt.split_once('=').or_else(|| opt.split_once(':')).ok_or_else(|| invalid(opt))?;
        match key {
            "no-new-privileges" => out.no_new_privileges = parse_bool(value).ok_or_else(|| invalid(opt))?,
            "writable-cgroups" => out.writable_cgroups = parse_bool(value).ok_or_else(|| invalid(opt))?,
            "systempaths" if value == "unconfined" => out.unconfined_paths = true,
            "seccomp" => {
                out.seccomp = match value {
                    "unconfined" => SeccompChoice::Unconfined,
                    "builtin" | "default" => SeccompChoice::Default,
                    json if json.trim_start().starts_with('{') => {
                        SeccompChoice::Profile(Box::new(seccomp::Profile::from_json(json, "security_opt")?))
                    }
                    path => SeccompChoice::Profile(Box::new(seccomp::Profile::load(Path::new(path))?)),
                }
            }
            "apparmor" => {
                tracing::warn!(id, profile = value, "security_opt apparmor ignored: berth loads no AppArmor profiles")
            }
            "label" => tracing::warn!(id, label = value, "security_opt label ignored: berth applies no SELinux labels"),
            _ => return Err(invalid(opt)),
        }
    }
    Ok(out)
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A mount before it becomes an oci-spec [`Mount`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct MountEntry {
    destination: String,
    typ: String,
    source: String,
    options: Vec<String>,
}

fn mount_entry(destination: &str, typ: &str, source: &str, options: &[&str]) -> MountEntry {
    MountEntry {
        destination: destination.to_owned(),
        typ: typ.to_owned(),
        source: source.to_owned(),
        options: options.iter().map(|o| (*o).to_owned()).collect(),
    }
}

/// The spec being built: the input, and what each step has decided so far.
struct Plan<'a> {
    input: &'a ContainerSpecInput,
    rootfs: &'a Path,
    host: &'a HostFacts,
    security: SecurityOpts,
    args: Vec<String>,
    cwd: String,
    user: ExecUser,
    env: Vec<String>,
    capabilities: Vec<Capability>,
    namespaces: Vec<(LinuxNamespaceType, Option<PathBuf>)>,
    hostname: Option<String>,
    mounts: Vec<MountEntry>,
    rootfs_propagation: Option<String>,
    masked_paths: Vec<String>,
    readonly_paths: Vec<String>,
    devices: Vec<LinuxDevice>,
    device_rules: Vec<LinuxDeviceCgroup>,
    sysctls: BTreeMap<String, String>,
    resources: LinuxResources,
    cgroups_path: String,
    rlimits: Vec<PosixRlimit>,
    seccomp: Option<LinuxSeccomp>,
}

impl<'a> Plan<'a> {
    fn new(input: &'a ContainerSpecInput, rootfs: &'a Path, host: &'a HostFacts) -> Result<Self, SpecError> {
        if input.id.is_empty() || input.id.contains('/') || input.id == "." || input.id == ".." {
            return Err(SpecError::Id(input.id.clone()));
        }
        let security = parse_security_opts(&input.id, &input.security_opt)?;
        Ok(Plan {
            input,
            rootfs,
            host,
            security,
            args: Vec::new(),
            cwd: "/".to_owned(),
            user: ExecUser { uid: 0, gid: 0, additional_gids: vec![0], home: "/".to_owned() },
            env: Vec::new(),
            capabilities: Vec::new(),
            namespaces: Vec::new(),
            hostname: None,
            mounts: Vec::new(),
            rootfs_propagation: None,
            masked_paths: Vec::new(),
            readonly_paths: Vec::new(),
            devices: Vec::new(),
            device_rules: Vec::new(),
            sysctls: BTreeMap::new(),
            resources: LinuxResources::default(),
            cgroups_path: String::new(),
            rlimits: Vec::new(),
            seccomp: None,
        })
    }

    fn has_init(&self) -> bool {
        self.input.init.is_some() && self.input.pid == NamespaceMode::Private
    }

    /// Args (entrypoint + cmd, behind the init when there is one) and the working directory.
    fn command(&mut self) -> Result<(), SpecError> {
        let args = resolve_command(self.input)?;
        self.args = if self.has_init() {
            [INIT_PATH.to_owned(), "--".to_owned()].into_iter().chain(args).collect()
        } else {
            args
        };
        let image_dir = self.input.image_config.as_ref().and_then(|c| c.working_dir().clone());
        let dir = [self.input.working_dir.clone(), image_dir].into_iter().flatten().find(|d| !d.is_empty());
        if let Some(dir) = dir {
            if !dir.starts_with('/') {
                return Err(SpecError::WorkingDir(dir));
            }
            self.cwd = clean_path(&dir);
        }
        Ok(())
    }

    /// uid, gid and groups from the rootfs's passwd and group files.
    fn user(&mut self) -> Result<(), SpecError> {
        let image_user = self.input.image_config.as_ref().and_then(|c| c.user().clone());
        let spec =
            [self.input.user.clone(), image_user].into_iter().flatten().find(|u| !u.is_empty()).unwrap_or_default();
        self.user = user::resolve(self.rootfs, &spec, &self.input.group_add)?;
        Ok(())
    }

    /// Docker's env, plus HOME from passwd when nothing sets it (what runc and crun do at exec).
    fn env(&mut self) {
        self.env = resolve_env(self.input);
        if !self.env.iter().any(|e| e.starts_with("HOME=")) {
            self.env.push(format!("HOME={}", self.user.home));
        }
    }

    /// moby `caps.TweakCapabilities`.
    fn capabilities(&mut self) -> Result<(), SpecError> {
        let available: Vec<&'static str> = self.host.capabilities.iter().filter_map(|c| cap_name(*c)).collect();
        let names: Vec<&'static str> = if self.input.privileged {
            available.clone()
        } else if self.input.cap_add.is_empty() && self.input.cap_drop.is_empty() {
            DEFAULT_CAPABILITIES.to_vec()
        } else {
            let drop = normalize_caps(&self.input.cap_drop, &available)?;
            let add = normalize_caps(&self.input.cap_add, &available)?;
            if add.contains(&"ALL") {
                available.iter().copied().filter(|c| !drop.contains(c)).collect()
            } else if drop.contains(&"ALL") {
                add
            } else {
                DEFAULT_CAPABILITIES.iter().copied().filter(|c| !drop.contains(c)).chain(add).collect()
            }
        };
        self.capabilities.clear();
        for name in names {
            if let Some(cap) = capability(name)
                && !self.capabilities.contains(&cap)
            {
                self.capabilities.push(cap);
            }
        }
        Ok(())
    }

    /// mount, network, uts, pid, ipc and (on cgroup v2, or when asked) cgroup, as moby `WithNamespaces`.
    fn namespaces(&mut self) -> Result<(), SpecError> {
        use LinuxNamespaceType as T;
        let input = self.input;
        let mut ns = vec![(T::Mount, None)];
        match &input.network {
            NetworkMode::None => ns.push((T::Network, None)),
            NetworkMode::Host => {}
            NetworkMode::Path(p) | NetworkMode::Container(p) => ns.push((T::Network, Some(p.clone()))),
        }
        match &input.uts {
            NamespaceMode::Private => {
                ns.push((T::Uts, None));
                self.hostname = Some(hostname_of(input));
            }
            NamespaceMode::Host if input.hostname.as_deref().is_some_and(|h| !h.is_empty()) => {
                return Err(SpecError::Conflict("hostname and the UTS mode".to_owned()));
            }
            NamespaceMode::Host => {}
            NamespaceMode::Container(p) => ns.push((T::Uts, Some(p.clone()))),
        }
        match &input.pid {
            NamespaceMode::Private => ns.push((T::Pid, None)),
            NamespaceMode::Host => {}
            NamespaceMode::Container(p) => ns.push((T::Pid, Some(p.clone()))),
        }
        match &input.ipc {
            IpcMode::Private | IpcMode::Shareable | IpcMode::None => ns.push((T::Ipc, None)),
            IpcMode::Host => {}
            IpcMode::Container(p) => ns.push((T::Ipc, Some(p.clone()))),
        }
        let cgroupns =
            input.cgroupns.unwrap_or(if self.host.cgroup_v2 { CgroupnsMode::Private } else { CgroupnsMode::Host });
        if cgroupns == CgroupnsMode::Private {
            ns.push((T::Cgroup, None));
        }
        self.namespaces = ns;
        Ok(())
    }

    /// Docker's default mounts, then the container's own (network files, /dev/shm of shared IPC, binds,
    /// volumes, tmpfs) sorted by depth, as moby `WithMounts`.
    fn mounts(&mut self) -> Result<(), SpecError> {
        let input = self.input;
        let own = self.container_mounts()?;
        let own_targets: HashSet<&str> = own.iter().map(|m| m.destination.as_str()).collect();
        let dev_mounted = own_targets.contains("/dev");
        let shm_size = input.shm_size.filter(|s| *s > 0).unwrap_or(DEFAULT_SHM_SIZE);
        let shm_size = format!("size={shm_size}");

        let mut defaults = vec![
            mount_entry("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
            mount_entry("/dev", "tmpfs", "tmpfs", &["nosuid", "strictatime", "mode=755", "size=65536k"]),
            mount_entry(
                "/dev/pts",
                "devpts",
                "devpts",
                &["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            ),
            mount_entry("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", "ro"]),
            mount_entry("/sys/fs/cgroup", "cgroup", "cgroup", &["ro", "nosuid", "noexec", "nodev"]),
            mount_entry("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
            mount_entry("/dev/shm", "tmpfs", "shm", &["nosuid", "noexec", "nodev", "mode=1777", &shm_size]),
        ];
        if let Some(init) = input.init.as_ref().filter(|_| self.has_init()) {
            defaults.push(mount_entry(INIT_PATH, "bind", &init.to_string_lossy(), &["bind", "ro"]));
        }
        // Left out: what the container mounts itself, all of /dev's defaults under its own /dev, and
        // /dev/shm with `ipc: none`.
        defaults.retain(|m| {
            let dest = m.destination.as_str();
            let replaced = own_targets.contains(dest) || (dev_mounted && dest.starts_with("/dev/"));
            let no_shm = dest == "/dev/shm" && input.ipc == IpcMode::None;
            !replaced && !no_shm
        });
        if input.read_only_rootfs {
            for m in &mut defaults {
                let writable = ["/proc", "/dev/pts", "/dev/shm", "/dev/mqueue", "/dev"];
                if !writable.contains(&m.destination.as_str()) && !m.options.iter().any(|o| o == "ro") {
                    m.options.push("ro".to_owned());
                }
            }
        }
        let clear_ro = |m: &mut MountEntry| m.options.retain(|o| o != "ro");
        for m in &mut defaults {
            if input.privileged && m.destination == "/sys" {
                clear_ro(m);
            }
            if (input.privileged || self.security.writable_cgroups) && m.typ == "cgroup" {
                clear_ro(m);
            }
        }
        self.mounts = defaults.into_iter().chain(own).collect();
        Ok(())
    }

    /// The container's own mounts (Docker's "user mounts"), checked and sorted by depth.
    fn container_mounts(&mut self) -> Result<Vec<MountEntry>, SpecError> {
        let input = self.input;
        let bad =
            |target: &str, reason: &str| SpecError::Mount { target: target.to_owned(), reason: reason.to_owned() };
        let mut own: Vec<MountEntry> = Vec::new();
        let mut seen = HashSet::new();
        for m in &input.mounts {
            let target = m.target();
            if !target.starts_with('/') {
                return Err(bad(target, "mount path must be absolute"));
            }
            let target = clean_path(target);
            if target == "/" {
                return Err(bad(&target, "destination can't be '/'"));
            }
            if !seen.insert(target.clone()) {
                return Err(bad(&target, "duplicate mount point"));
            }
            let entry = match m {
                MountInput::Bind { source, read_only, propagation, non_recursive, .. } => {
                    if !source.is_absolute() {
                        return Err(bad(&target, "bind source path must be absolute"));
                    }
                    let propagation = propagation.unwrap_or(Propagation::Rprivate);
                    self.note_propagation(propagation);
                    let mut options = vec![if *non_recursive { "bind" } else { "rbind" }.to_owned()];
                    if *read_only {
                        options.push("ro".to_owned());
                    }
                    options.push(propagation.as_str().to_owned());
                    MountEntry {
                        destination: target,
                        typ: "bind".to_owned(),
                        source: source.to_string_lossy().into_owned(),
                        options,
                    }
                }
                MountInput::Volume { source, read_only, .. } => {
                    if !source.is_absolute() {
                        return Err(bad(&target, "volume source path must be absolute"));
                    }
                    let mut options = vec!["rbind".to_owned()];
                    if *read_only {
                        options.push("ro".to_owned());
                    }
                    MountEntry {
                        destination: target,
                        typ: "bind".to_owned(),
                        source: source.to_string_lossy().into_owned(),
                        options,
                    }
                }
                MountInput::Tmpfs { size, mode, read_only, options, .. } => {
                    let options =
                        tmpfs_options(*size, *mode, *read_only, options).map_err(|reason| bad(&target, &reason))?;
                    MountEntry { destination: target, typ: "tmpfs".to_owned(), source: "tmpfs".to_owned(), options }
                }
            };
            own.push(entry);
        }

        let rprivate_bind = |source: &Path, destination: &str, read_only: bool| MountEntry {
            destination: destination.to_owned(),
            typ: "bind".to_owned(),
            source: source.to_string_lossy().into_owned(),
            options: ["rbind"]
                .into_iter()
                .chain(read_only.then_some("ro"))
                .chain(["rprivate"])
                .map(str::to_owned)
                .collect(),
        };
        let shm = match (&input.ipc, &input.shm_path) {
            (IpcMode::Host, _) => Some(PathBuf::from("/dev/shm")),
            (IpcMode::Shareable | IpcMode::Container(_), Some(path)) => Some(path.clone()),
            _ => None,
        };
        if let Some(path) = shm.filter(|_| !seen.contains("/dev/shm")) {
            own.push(rprivate_bind(&path, "/dev/shm", false));
        }
        let files = [
            (&input.resolv_conf, "/etc/resolv.conf"),
            (&input.hostname_file, "/etc/hostname"),
            (&input.hosts_file, "/etc/hosts"),
        ];
        for (file, destination) in files {
            if let Some(file) = file.as_ref().filter(|_| !seen.contains(destination)) {
                own.push(rprivate_bind(file, destination, input.read_only_rootfs));
            }
        }
        // Docker sorts by the number of path components; a stable sort keeps the given order within a depth.
        own.sort_by_key(|m| m.destination.matches('/').count());
        Ok(own)
    }

    /// Shared and slave binds need a rootfs propagation that lets them work (moby `WithMounts`).
    fn note_propagation(&mut self, propagation: Propagation) {
        let current = self.rootfs_propagation.as_deref();
        match propagation {
            Propagation::Shared | Propagation::Rshared => {
                if !matches!(current, Some("shared" | "rshared")) {
                    self.rootfs_propagation = Some("shared".to_owned());
                }
            }
            Propagation::Slave | Propagation::Rslave => {
                if !matches!(current, Some("shared" | "rshared" | "slave" | "rslave")) {
                    // Not moby's "rslave": libcontainer 0.7 refuses it ("failed to prepare rootfs") and applies
                    // "slave" recursively anyway; crun and runc read both.
                    self.rootfs_propagation = Some("slave".to_owned());
                }
            }
            Propagation::Private | Propagation::Rprivate => {}
        }
    }

    /// Docker's masked and read-only paths; none when privileged or with `systempaths=unconfined`.
    fn system_paths(&mut self) {
        if self.input.privileged || self.security.unconfined_paths {
            return;
        }
        self.masked_paths =
            MASKED_PATHS.iter().map(|p| (*p).to_owned()).chain(self.host.thermal_throttle.iter().cloned()).collect();
        self.readonly_paths = READONLY_PATHS.iter().map(|p| (*p).to_owned()).collect();
    }

    /// Device nodes and the device cgroup rules (moby `WithDevices`).
    fn devices(&mut self) -> Result<(), SpecError> {
        let input = self.input;
        if input.privileged {
            self.devices = host_devices(Path::new("/dev"));
            for d in &input.devices {
                let in_container = d.path_in_container.clone().unwrap_or_else(|| d.path_on_host.clone());
                if d.path_on_host == in_container {
                    continue; // already there with all of /dev
                }
                let (devs, _) = devices_from_path(&d.path_on_host, &in_container, "rwm")?;
                self.devices.extend(devs);
            }
            self.device_rules = vec![device_rule(true, None, None, None)];
            return Ok(());
        }
        self.device_rules = default_device_rules();
        for d in &input.devices {
            let in_container = d.path_in_container.clone().unwrap_or_else(|| d.path_on_host.clone());
            let permissions =
                d.cgroup_permissions.clone().filter(|p| !p.is_empty()).unwrap_or_else(|| "rwm".to_owned());
            if !valid_device_mode(&permissions) {
                return Err(SpecError::Device {
                    path: d.path_on_host.clone(),
                    reason: format!("invalid device mode: {permissions}"),
                });
            }
            let (devs, rules) = devices_from_path(&d.path_on_host, &in_container, &permissions)?;
            self.devices.extend(devs);
            self.device_rules.extend(rules);
        }
        for rule in &input.device_cgroup_rules {
            self.device_rules.push(parse_device_cgroup_rule(rule)?);
        }
        Ok(())
    }

    /// Docker's default sysctls, the domainname, the container's sysctls, each checked against the
    /// namespaces it needs (runc's validator).
    fn sysctls(&mut self) -> Result<(), SpecError> {
        let input = self.input;
        let private_net = matches!(input.network, NetworkMode::None | NetworkMode::Path(_));
        if private_net {
            if self.host.sysctls.contains(PING_GROUP_RANGE) && !self.host.in_user_ns {
                self.sysctls.insert(PING_GROUP_RANGE.to_owned(), "0 2147483647".to_owned());
            }
            if self.host.sysctls.contains(UNPRIVILEGED_PORT_START) {
                self.sysctls.insert(UNPRIVILEGED_PORT_START.to_owned(), "0".to_owned());
            }
        }
        if let Some(domain) = input.domainname.as_ref().filter(|d| !d.is_empty()) {
            self.sysctls.insert("kernel.domainname".to_owned(), domain.clone());
        }
        for (key, value) in &input.sysctls {
            self.sysctls.insert(key.clone(), value.clone());
        }
        let own = |t: LinuxNamespaceType| self.namespaces.iter().any(|(ty, _)| *ty == t);
        for key in self.sysctls.keys() {
            let reject = |reason: &str| Err(SpecError::Sysctl { key: key.clone(), reason: reason.to_owned() });
            let dotted = key.replace('/', ".");
            if is_ipc_sysctl(&dotted) {
                if !own(LinuxNamespaceType::Ipc) {
                    return reject("is not allowed in the host's ipc namespace");
                }
            } else if dotted.starts_with("net.") {
                if !own(LinuxNamespaceType::Network) {
                    return reject("is not allowed in the host's network namespace");
                }
            } else if dotted == "kernel.domainname" {
                if !own(LinuxNamespaceType::Uts) {
                    return reject("is not allowed in the host's uts namespace");
                }
            } else if dotted == "kernel.hostname" {
                return reject("is not allowed as it conflicts with the hostname option");
            } else {
                return reject("is not in a separate kernel namespace");
            }
        }
        Ok(())
    }

    /// Memory, CPU, pids and block IO limits, and the cgroup path (moby `WithResources`, `WithCgroups`,
    /// and the checks of `verifyPlatformContainerResources`).
    fn resources(&mut self) -> Result<(), SpecError> {
        let r = &self.input.resources;
        let bad = |msg: &str| Err(SpecError::Resources(msg.to_owned()));
        const MIN_MEMORY: i64 = 6 << 20;
        if r.memory != 0 && r.memory < MIN_MEMORY {
            return bad("minimum memory limit allowed is 6MB");
        }
        if r.memory_swap > 0 && r.memory == 0 {
            return bad("you should always set the memory limit when using the memoryswap limit");
        }
        if r.memory > 0 && r.memory_swap > 0 && r.memory_swap < r.memory {
            return bad("minimum memoryswap limit should be larger than memory limit");
        }
        if r.memory_reservation != 0 && r.memory_reservation < MIN_MEMORY {
            return bad("minimum memory reservation allowed is 6MB");
        }
        if r.memory > 0 && r.memory_reservation > 0 && r.memory < r.memory_reservation {
            return bad("minimum memory limit can not be less than memory reservation limit");
        }
        if r.memory_swappiness.is_some_and(|s| !(-1..=100).contains(&s)) {
            return bad("invalid value for memory swappiness, the valid range is from 0 to 100");
        }
        if r.nano_cpus > 0 && (r.cpu_period > 0 || r.cpu_quota > 0) {
            return bad("conflicting options: nano cpus and cpu period/quota cannot both be set");
        }
        if r.nano_cpus < 0 || r.cpu_shares < 0 || r.cpu_period < 0 {
            return bad("cpus, cpu shares and cpu period cannot be negative");
        }
        if r.cpu_period != 0 && !(1000..=1_000_000).contains(&r.cpu_period) {
            return bad("cpu cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)");
        }
        if r.cpu_quota > 0 && r.cpu_quota < 1000 {
            return bad("cpu cfs quota can not be less than 1ms (i.e. 1000)");
        }
        if r.blkio_weight != 0 && !(10..=1000).contains(&r.blkio_weight) {
            return bad("range of blkio weight is from 10 to 1000");
        }
        if r.oom_score_adj.is_some_and(|s| !(-1000..=1000).contains(&s)) {
            return bad("invalid value for oom score adj, the range is [-1000, 1000]");
        }
        // The runtime's write would fail with a bare EACCES ("io error") at create: say why instead.
        if let Some(adj) = r.oom_score_adj
            && adj < self.host.oom_score_adj
            && !self.host.can_raise_rlimits
        {
            return Err(SpecError::Resources(format!(
                "oom_score_adj {adj} is below berthd's own ({}), and lowering it needs CAP_SYS_RESOURCE, which berth does not have here",
                self.host.oom_score_adj
            )));
        }

        let mut memory = LinuxMemory::default();
        memory.set_limit((r.memory > 0).then_some(r.memory));
        memory.set_reservation((r.memory_reservation > 0).then_some(r.memory_reservation));
        let swap = match r.memory_swap {
            0 if r.memory > 0 => r.memory.saturating_mul(2),
            s => s,
        };
        if swap != 0 && r.memory > 0 && !self.host.swap_limit {
            tracing::warn!(id = %self.input.id, "the kernel cannot limit swap: memory_swap ignored");
        } else if swap != 0 {
            memory.set_swap(Some(swap));
        }
        memory.set_swappiness(r.memory_swappiness.and_then(|s| u64::try_from(s).ok()));
        memory.set_disable_oom_killer(r.oom_kill_disable);

        let mut cpu = LinuxCpu::default();
        if r.nano_cpus > 0 {
            const PERIOD: u64 = 100_000;
            cpu.set_period(Some(PERIOD));
            cpu.set_quota(Some(r.nano_cpus.saturating_mul(PERIOD as i64) / 1_000_000_000));
        }
        if r.cpu_period > 0 {
            cpu.set_period(u64::try_from(r.cpu_period).ok());
        }
        if r.cpu_quota != 0 {
            cpu.set_quota(Some(r.cpu_quota));
        }
        cpu.set_shares(u64::try_from(r.cpu_shares).ok().filter(|s| *s > 0));
        cpu.set_cpus(Some(r.cpuset_cpus.clone()).filter(|s| !s.is_empty()));
        cpu.set_mems(Some(r.cpuset_mems.clone()).filter(|s| !s.is_empty()));

        let mut resources = LinuxResources::default();
        resources.set_devices(Some(self.device_rules.clone()));
        resources.set_memory((memory != LinuxMemory::default()).then_some(memory));
        resources.set_cpu((cpu != LinuxCpu::default()).then_some(cpu));
        resources.set_pids(r.pids_limit.map(|l| {
            let mut pids = LinuxPids::default();
            pids.set_limit(if l <= 0 { -1 } else { l });
            pids
        }));
        if r.blkio_weight > 0 {
            let mut blkio = oci_spec::runtime::LinuxBlockIo::default();
            blkio.set_weight(Some(r.blkio_weight));
            resources.set_block_io(Some(blkio));
        }
        self.resources = resources;

        let parent =
            if self.input.cgroup_parent.is_empty() { DEFAULT_CGROUP_PARENT } else { &self.input.cgroup_parent };
        if Path::new(parent).components().any(|c| c == Component::ParentDir) {
            return Err(SpecError::CgroupParent(parent.to_owned()));
        }
        self.cgroups_path = format!("{}/{}", parent.trim_end_matches('/'), self.input.id);
        Ok(())
    }

    /// Only the configured ulimits; a hard limit above the current one needs CAP_SYS_RESOURCE.
    fn rlimits(&mut self) -> Result<(), SpecError> {
        for u in &self.input.resources.ulimits {
            let bad = |reason: String| SpecError::Ulimit { name: u.name.clone(), reason };
            let (name, _, typ) =
                RLIMITS.iter().find(|(n, _, _)| *n == u.name).ok_or_else(|| bad("unknown ulimit type".to_owned()))?;
            let limit = |v: i64| if v < 0 { u64::MAX } else { v.unsigned_abs() };
            let (soft, hard) = (limit(u.soft), limit(u.hard));
            if soft > hard {
                return Err(bad(format!(
                    "soft limit must be less than or equal to hard limit: {} > {}",
                    u.soft, u.hard
                )));
            }
            if let Some(current) = self.host.rlimits_hard.get(*name).copied()
                && hard > current
                && !self.host.can_raise_rlimits
            {
                let shown = |v: u64| if v == u64::MAX { "unlimited".to_owned() } else { v.to_string() };
                return Err(bad(format!(
                    "hard limit {} is above the current hard limit {}, and raising it needs CAP_SYS_RESOURCE, which berth does not have here",
                    shown(hard),
                    shown(current)
                )));
            }
            self.rlimits.push(PosixRlimitBuilder::default().typ(*typ).soft(soft).hard(hard).build()?);
        }
        Ok(())
    }

    /// Docker's default profile unless privileged or `seccomp=unconfined` (moby `WithSeccomp`).
    fn seccomp(&mut self) -> Result<(), SpecError> {
        if self.input.privileged {
            return Ok(());
        }
        let profile = match &self.security.seccomp {
            SeccompChoice::Unconfined => return Ok(()),
            SeccompChoice::Default if !self.host.seccomp => {
                tracing::warn!(id = %self.input.id, "seccomp is not enabled in this kernel: running without the default profile");
                return Ok(());
            }
            SeccompChoice::Default => seccomp::default_profile(),
            SeccompChoice::Profile(p) => (**p).clone(),
        };
        let bounding: BTreeSet<String> =
            self.capabilities.iter().filter_map(|c| cap_name(*c)).map(str::to_owned).collect();
        let target = seccomp::Target { arch: &self.host.arch, bounding: &bounding, kernel: self.host.kernel };
        self.seccomp = seccomp::resolve(&profile, &target)?;
        Ok(())
    }

    /// Assembles the oci-spec types from the plan.
    fn finish(self) -> Spec {
        let input = self.input;
        let caps: oci_spec::runtime::Capabilities = self.capabilities.iter().copied().collect();
        let mut capabilities = LinuxCapabilities::default();
        capabilities.set_bounding(Some(caps.clone()));
        capabilities.set_effective(Some(caps.clone()));
        capabilities.set_permitted(Some(caps));
        capabilities.set_inheritable(None);
        capabilities.set_ambient(None);

        let mut user = User::default();
        user.set_uid(self.user.uid);
        user.set_gid(self.user.gid);
        user.set_additional_gids(Some(self.user.additional_gids.clone()));

        let mut process = Process::default();
        process.set_terminal(Some(input.tty));
        process.set_console_size(None);
        process.set_user(user);
        process.set_args(Some(self.args));
        process.set_env(Some(self.env));
        process.set_cwd(PathBuf::from(self.cwd));
        process.set_capabilities(Some(capabilities));
        process.set_rlimits((!self.rlimits.is_empty()).then_some(self.rlimits));
        process.set_no_new_privileges(Some(self.security.no_new_privileges));
        process.set_apparmor_profile(None);
        process.set_selinux_label(None);
        process.set_oom_score_adj(input.resources.oom_score_adj);

        let mounts = self
            .mounts
            .into_iter()
            .map(|m| {
                let mut mount = Mount::default();
                mount.set_destination(PathBuf::from(m.destination));
                mount.set_typ(Some(m.typ));
                mount.set_source(Some(PathBuf::from(m.source)));
                mount.set_options(Some(m.options));
                mount
            })
            .collect();

        let namespaces = self
            .namespaces
            .into_iter()
            .map(|(typ, path)| {
                let mut ns = LinuxNamespace::default();
                ns.set_typ(typ);
                ns.set_path(path);
                ns
            })
            .collect();

        let mut linux = oci_spec::runtime::Linux::default();
        linux.set_uid_mappings(None);
        linux.set_gid_mappings(None);
        linux.set_sysctl((!self.sysctls.is_empty()).then(|| self.sysctls.into_iter().collect()));
        linux.set_resources(Some(self.resources));
        linux.set_cgroups_path(Some(PathBuf::from(self.cgroups_path)));
        linux.set_namespaces(Some(namespaces));
        linux.set_devices((!self.devices.is_empty()).then_some(self.devices));
        linux.set_seccomp(self.seccomp);
        linux.set_rootfs_propagation(self.rootfs_propagation);
        linux.set_masked_paths((!self.masked_paths.is_empty()).then_some(self.masked_paths));
        linux.set_readonly_paths((!self.readonly_paths.is_empty()).then_some(self.readonly_paths));
        linux.set_mount_label(None);

        let mut root = Root::default();
        root.set_path(self.rootfs.to_owned());
        root.set_readonly(Some(input.read_only_rootfs));

        let mut spec = Spec::default();
        spec.set_version(oci_spec::runtime::VERSION.to_owned());
        spec.set_root(Some(root));
        spec.set_mounts(Some(mounts));
        spec.set_process(Some(process));
        spec.set_hostname(self.hostname);
        // The domainname is the kernel.domainname sysctl, as Docker sets it (runtimes without the 1.1
        // `domainname` field still apply it).
        spec.set_domainname(None);
        spec.set_hooks(None);
        spec.set_annotations(None);
        spec.set_linux(Some(linux));
        spec
    }
}

fn cap_name(cap: Capability) -> Option<&'static str> {
    CAPABILITIES.iter().find(|(c, _)| *c == cap).map(|(_, n)| *n)
}

fn capability(name: &str) -> Option<Capability> {
    CAPABILITIES.iter().find(|(_, n)| *n == name).map(|(c, _)| *c)
}

/// moby `caps.NormalizeLegacyCapabilities`: upper-case, `CAP_` prefix, `ALL` kept; unknown or unavailable
/// names are errors.
fn normalize_caps(names: &[String], available: &[&'static str]) -> Result<Vec<&'static str>, SpecError> {
    let mut out = Vec::new();
    for name in names {
        let upper = name.to_uppercase();
        if upper == "ALL" {
            out.push("ALL");
            continue;
        }
        let full = if upper.starts_with("CAP_") { upper } else { format!("CAP_{upper}") };
        let known = CAPABILITIES
            .iter()
            .map(|(_, n)| *n)
            .find(|n| *n == full)
            .ok_or_else(|| SpecError::UnknownCapability(full.clone()))?;
        if !available.contains(&known) {
            return Err(SpecError::UnavailableCapability(full));
        }
        out.push(known);
    }
    Ok(out)
}

/// Sysctls of the IPC namespace (runc's list).
fn is_ipc_sysctl(key: &str) -> bool {
    matches!(
        key,
        "kernel.msgmax"
            | "kernel.msgmnb"
            | "kernel.msgmni"
            | "kernel.sem"
            | "kernel.shmall"
            | "kernel.shmmax"
            | "kernel.shmmni"
            | "kernel.shm_rmid_forced"
    ) || key.starts_with("fs.mqueue.")
}

/// Lexically cleans an absolute path (Go's `filepath.Clean`): no `.`, no `..`, no repeated or trailing `/`.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// tmpfs options as moby builds them: `noexec,nosuid,nodev,rprivate`, then `ro`, `mode`, `size` and the
/// extra options, merged so that for each flag and each `key=` the last one wins (`MergeTmpfsOptions`).
fn tmpfs_options(
    size: Option<u64>,
    mode: Option<u32>,
    read_only: bool,
    extra: &[String],
) -> Result<Vec<String>, String> {
    let mut options: Vec<String> = ["noexec", "nosuid", "nodev", "rprivate"].map(str::to_owned).to_vec();
    if read_only {
        options.push("ro".to_owned());
    }
    if let Some(mode) = mode.filter(|m| *m != 0) {
        options.push(format!("mode={mode:o}"));
    }
    if let Some(size) = size.filter(|s| *s != 0) {
        let (value, suffix) = [(1u64 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")]
            .into_iter()
            .find(|(d, _)| size % d == 0)
            .map_or((size, ""), |(d, s)| (size / d, s));
        options.push(format!("size={value}{suffix}"));
    }
    options.extend(extra.iter().flat_map(|o| o.split(',')).filter(|o| !o.is_empty()).map(str::to_owned));

    const DATA: [&str; 7] = ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol"];
    let mut flags_seen = HashSet::new();
    let mut data_seen = HashSet::new();
    let mut merged = Vec::new();
    for option in options.iter().rev() {
        if option == "defaults" {
            continue;
        }
        if let Some(family) = flag_family(option) {
            if flags_seen.insert(family) {
                merged.push(option.clone());
            }
            continue;
        }
        let key = option
            .split_once('=')
            .map(|(k, _)| k)
            .filter(|k| DATA.contains(k))
            .ok_or_else(|| format!("invalid tmpfs option {option:?}"))?;
        if data_seen.insert(key) {
            merged.push(option.clone());
        }
    }
    merged.reverse();
    Ok(merged)
}

/// The mount flag a tmpfs option sets or clears; options of one family override each other.
fn flag_family(option: &str) -> Option<&'static str> {
    Some(match option {
        "ro" | "rw" => "ro",
        "suid" | "nosuid" => "nosuid",
        "dev" | "nodev" => "nodev",
        "exec" | "noexec" => "noexec",
        "sync" | "async" => "sync",
        "dirsync" => "dirsync",
        "mand" | "nomand" => "mand",
        "atime" | "noatime" => "noatime",
        "diratime" | "nodiratime" => "nodiratime",
        "relatime" | "norelatime" => "relatime",
        "strictatime" | "nostrictatime" => "strictatime",
        "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" | "unbindable" | "runbindable" => {
            "propagation"
        }
        _ => return None,
    })
}

fn device_rule(allow: bool, typ: Option<LinuxDeviceType>, major: Option<i64>, minor: Option<i64>) -> LinuxDeviceCgroup {
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(allow);
    rule.set_typ(typ);
    rule.set_major(major);
    rule.set_minor(minor);
    rule.set_access(Some("rwm".to_owned()));
    rule
}

/// moby `DefaultLinuxSpec` device rules: deny all, allow null, zero, full, random, urandom, tty, console,
/// and deny /dev/net/tun. (ptmx and the pts devices are added by runtimes with devpts.)
fn default_device_rules() -> Vec<LinuxDeviceCgroup> {
    let c = Some(LinuxDeviceType::C);
    let allow = |major, minor| device_rule(true, c, Some(major), Some(minor));
    vec![
        device_rule(false, None, None, None),
        allow(1, 5),
        allow(1, 3),
        allow(1, 9),
        allow(1, 8),
        allow(5, 0),
        allow(5, 1),
        device_rule(false, c, Some(10), Some(229)),
    ]
}

/// `--device-cgroup-rule` (`c 1:3 mr`, `a *:* rwm`).
fn parse_device_cgroup_rule(rule: &str) -> Result<LinuxDeviceCgroup, SpecError> {
    let invalid = || SpecError::DeviceCgroupRule(rule.to_owned());
    let mut parts = rule.split(' ');
    let (Some(typ), Some(numbers), Some(access), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let typ = match typ {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(invalid()),
    };
    let number = |s: &str| -> Result<Option<i64>, SpecError> {
        match s {
            "*" => Ok(None),
            n if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.parse().map(Some).map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(invalid)?;
    if access.is_empty() || access.len() > 3 || !access.chars().all(|c| "rwm".contains(c)) {
        return Err(invalid());
    }
    let mut out = device_rule(true, Some(typ), number(major)?, number(minor)?);
    out.set_access(Some(access.to_owned()));
    Ok(out)
}

/// Some of `r`, `w`, `m`, each at most once.
fn valid_device_mode(mode: &str) -> bool {
    let mut seen = HashSet::new();
    !mode.is_empty() && mode.chars().all(|c| "rwm".contains(c) && seen.insert(c))
}

/// A device node: `None` when `path` is not one (or a FIFO, which containerd leaves out of /dev).
fn device_from_path(path: &Path) -> std::io::Result<Option<LinuxDevice>> {
    let meta = fs::symlink_metadata(path)?;
    let ft = meta.file_type();
    let typ = if ft.is_char_device() {
        LinuxDeviceType::C
    } else if ft.is_block_device() {
        LinuxDeviceType::B
    } else if ft.is_fifo() {
        LinuxDeviceType::P
    } else {
        return Ok(None);
    };
    let rdev = meta.rdev();
    let mut dev = LinuxDevice::default();
    dev.set_path(path.to_owned());
    dev.set_typ(typ);
    dev.set_major(i64::try_from(nix::sys::stat::major(rdev)).unwrap_or(i64::MAX));
    dev.set_minor(i64::try_from(nix::sys::stat::minor(rdev)).unwrap_or(i64::MAX));
    dev.set_file_mode(Some(meta.mode() & 0o7777));
    dev.set_uid(Some(meta.uid()));
    dev.set_gid(Some(meta.gid()));
    Ok(Some(dev))
}

/// A symlink on the host is followed only when it leads to a device under /dev (moby `resolvedDevicePath`).
fn resolved_device_path(path: &Path) -> PathBuf {
    let is_link = fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    match fs::canonicalize(path) {
        Ok(target) if is_link && target.starts_with("/dev") => target,
        _ => path.to_owned(),
    }
}

fn device_cgroup(dev: &LinuxDevice, permissions: &str) -> LinuxDeviceCgroup {
    let mut rule = device_rule(true, Some(dev.typ()), Some(dev.major()), Some(dev.minor()));
    rule.set_access(Some(permissions.to_owned()));
    rule
}

/// moby `DevicesFromPath`: a device node, or every device node under a directory.
fn devices_from_path(
    on_host: &Path,
    in_container: &Path,
    permissions: &str,
) -> Result<(Vec<LinuxDevice>, Vec<LinuxDeviceCgroup>), SpecError> {
    let err = |reason: String| SpecError::Device { path: on_host.to_owned(), reason };
    let resolved = resolved_device_path(on_host);
    match device_from_path(&resolved) {
        Ok(Some(mut dev)) => {
            dev.set_path(in_container.to_owned());
            let rule = device_cgroup(&dev, permissions);
            return Ok((vec![dev], vec![rule]));
        }
        Ok(None) => {}
        Err(e) => return Err(err(e.to_string())),
    }
    let mut devs = Vec::new();
    if fs::metadata(&resolved).is_ok_and(|m| m.is_dir()) {
        walk_devices(&resolved, &mut |path| {
            if let Ok(Some(mut dev)) = device_from_path(&resolved_device_path(path))
                && let Ok(rest) = path.strip_prefix(&resolved)
            {
                dev.set_path(in_container.join(rest));
                devs.push(dev);
            }
        });
    }
    if devs.is_empty() {
        return Err(err("not a device node".to_owned()));
    }
    let rules = devs.iter().map(|d| device_cgroup(d, permissions)).collect();
    Ok((devs, rules))
}

/// Calls `each` for every entry below `dir`, recursively, without following symlinked directories.
fn walk_devices(dir: &Path, each: &mut dyn FnMut(&Path)) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            walk_devices(&path, each);
        } else {
            each(&path);
        }
    }
}

/// Every device node of the host's /dev for a privileged container (containerd `HostDevices`): not the
/// pts, shm, fd and mqueue directories, not the console, not FIFOs.
fn host_devices(dev: &Path) -> Vec<LinuxDevice> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dev) else { return out };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let name = entry.file_name();
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            if !matches!(name.to_str(), Some("pts" | "shm" | "fd" | "mqueue" | ".lxc" | ".lxd-mounts" | ".udev")) {
                out.extend(host_devices(&path));
            }
            continue;
        }
        if name == "console" {
            continue;
        }
        if let Ok(Some(device)) = device_from_path(&path)
            && device.typ() != LinuxDeviceType::P
        {
            out.push(device);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::LinuxSeccompAction;
    use std::process::{Command, Stdio};

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        app:x:1000:1000::/home/app:/bin/sh\n";
    const GROUP: &str = "root:x:0:\ndaemon:x:1:\napp:x:1000:\naudio:x:29:app\n";

    /// An x86_64 host with every capability but CAP_SYS_RESOURCE, cgroup v1 with swap accounting.
    fn host() -> HostFacts {
        HostFacts {
            arch: "amd64".to_owned(),
            kernel: KernelVersion::parse("6.1.0"),
            capabilities: CAPABILITIES.iter().map(|(c, _)| *c).filter(|c| *c != Capability::SysResource).collect(),
            seccomp: true,
            cgroup_v2: false,
            swap_limit: true,
            can_raise_rlimits: false,
            rlimits_hard: [("nofile", 20_000), ("nproc", 32_768), ("core", u64::MAX)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            oom_score_adj: 0,
            in_user_ns: false,
            sysctls: [PING_GROUP_RANGE, UNPRIVILEGED_PORT_START].into_iter().map(str::to_owned).collect(),
            thermal_throttle: vec![],
        }
    }

    fn rootfs() -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        fs::create_dir_all(dir.path().join("etc"))?;
        fs::write(dir.path().join("etc/passwd"), PASSWD)?;
        fs::write(dir.path().join("etc/group"), GROUP)?;
        Ok(dir)
    }

    fn input() -> ContainerSpecInput {
        ContainerSpecInput { id: ID.to_owned(), cmd: Some(vec!["/bin/true".to_owned()]), ..Default::default() }
    }

    fn build_on(input: &ContainerSpecInput, host: &HostFacts) -> Result<Spec, SpecError> {
        let root = tempfile::tempdir().map_err(|e| SpecError::Resources(e.to_string()))?;
        let etc = root.path().join("etc");
        let setup = fs::create_dir_all(&etc)
            .and_then(|()| fs::write(etc.join("passwd"), PASSWD))
            .and_then(|()| fs::write(etc.join("group"), GROUP));
        setup.map_err(|e| SpecError::Resources(e.to_string()))?;
        build_spec_with(input, root.path(), host)
    }

    fn build(input: &ContainerSpecInput) -> Result<Spec, SpecError> {
        build_on(input, &host())
    }

    fn process(spec: &Spec) -> Result<&Process, Box<dyn std::error::Error>> {
        spec.process().as_ref().ok_or_else(|| "no process".into())
    }

    fn linux(spec: &Spec) -> Result<&oci_spec::runtime::Linux, Box<dyn std::error::Error>> {
        spec.linux().as_ref().ok_or_else(|| "no linux".into())
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    fn mounts(spec: &Spec) -> Vec<(String, String, Vec<String>)> {
        spec.mounts()
            .iter()
            .flatten()
            .map(|m| {
                (
                    m.destination().to_string_lossy().into_owned(),
                    m.typ().clone().unwrap_or_default(),
                    m.options().clone().unwrap_or_default(),
                )
            })
            .collect()
    }

    fn mount_options(spec: &Spec, destination: &str) -> Option<Vec<String>> {
        mounts(spec).into_iter().find(|(d, _, _)| d == destination).map(|(_, _, o)| o)
    }

    fn err(result: Result<Spec, SpecError>) -> String {
        result.err().map(|e| e.to_string()).unwrap_or_else(|| "no error".to_owned())
    }

    fn image(entrypoint: Option<&[&str]>, cmd: Option<&[&str]>) -> Option<oci_spec::image::Config> {
        let mut config = oci_spec::image::Config::default();
        config.set_entrypoint(entrypoint.map(strings));
        config.set_cmd(cmd.map(strings));
        Some(config)
    }

    #[test]
    fn command_follows_dockers_table() {
        type Args<'a> = Option<&'a [&'a str]>;
        type Case<'a> = (Args<'a>, Args<'a>, Args<'a>, Args<'a>, Args<'a>);
        let ep: Args = Some(&["/entry", "-x"]);
        let cmd: Args = Some(&["serve"]);
        let cases: [Case; 9] = [
            // image entrypoint, image cmd, container entrypoint, container cmd => args
            (ep, cmd, None, None, Some(&["/entry", "-x", "serve"])),
            (ep, cmd, None, Some(&["debug"]), Some(&["/entry", "-x", "debug"])),
            (ep, cmd, Some(&["/other"]), None, Some(&["/other"])),
            (ep, cmd, Some(&["/other"]), Some(&["a"]), Some(&["/other", "a"])),
            (ep, cmd, Some(&[]), None, Some(&["serve"])),
            (ep, cmd, Some(&[""]), Some(&["/bin/sh"]), Some(&["/bin/sh"])),
            (ep, cmd, Some(&[""]), None, None),
            (None, Some(&["/bin/sh"]), None, Some(&[]), Some(&["/bin/sh"])),
            (None, None, None, None, None),
        ];
        for (i, (image_ep, image_cmd, user_ep, user_cmd, want)) in cases.into_iter().enumerate() {
            let input = ContainerSpecInput {
                id: ID.to_owned(),
                image_config: image(image_ep, image_cmd),
                entrypoint: user_ep.map(strings),
                cmd: user_cmd.map(strings),
                ..Default::default()
            };
            match (resolve_command(&input), want) {
                (Ok(args), Some(want)) => assert_eq!(args, strings(want), "case {i}"),
                (Err(e), None) => assert_eq!(e.to_string(), "no command specified", "case {i}"),
                (got, want) => panic!("case {i}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn env_merges_image_and_container() -> TestResult {
        let mut config = oci_spec::image::Config::default();
        config.set_env(Some(strings(&["PATH=/opt/bin:/bin", "FOO=image", "BAR=image", "LANG=C"])));
        let input = ContainerSpecInput {
            image_config: Some(config),
            env: strings(&["FOO=container", "BAR", "HOSTNAME", "EXTRA=1"]),
            hostname: Some("web".to_owned()),
            tty: true,
            ..input()
        };
        assert_eq!(
            resolve_env(&input),
            strings(&["PATH=/opt/bin:/bin", "TERM=xterm", "FOO=container", "EXTRA=1", "LANG=C"])
        );
        let spec = build(&input)?;
        let env = process(&spec)?.env().clone().unwrap_or_default();
        assert_eq!(env.last().map(String::as_str), Some("HOME=/root"), "HOME of root from passwd");

        // Nothing set: the default PATH, the hostname (12 characters of the id), no TERM without a tty.
        let plain = resolve_env(&input_with_env(&[]));
        assert_eq!(plain, strings(&[&format!("PATH={DEFAULT_PATH_ENV}"), "HOSTNAME=0123456789ab"]));
        let home = resolve_env(&input_with_env(&["HOME=/data"]));
        assert!(home.contains(&"HOME=/data".to_owned()));
        Ok(())
    }

    fn input_with_env(env: &[&str]) -> ContainerSpecInput {
        ContainerSpecInput { env: strings(env), ..input() }
    }

    #[test]
    fn user_and_working_dir() -> TestResult {
        let mut config = oci_spec::image::Config::default();
        config.set_user(Some("app".to_owned()));
        config.set_working_dir(Some("/srv/app/".to_owned()));
        let spec = build(&ContainerSpecInput { image_config: Some(config.clone()), ..input() })?;
        let p = process(&spec)?;
        assert_eq!((p.user().uid(), p.user().gid()), (1000, 1000));
        assert_eq!(p.user().additional_gids().clone(), Some(vec![1000, 29]));
        assert_eq!(p.cwd(), Path::new("/srv/app"));
        assert!(p.env().iter().flatten().any(|e| e == "HOME=/home/app"));

        let spec = build(&ContainerSpecInput {
            image_config: Some(config.clone()),
            user: Some("daemon:audio".to_owned()),
            group_add: strings(&["app"]),
            working_dir: Some("/x/../y/./z".to_owned()),
            ..input()
        })?;
        let p = process(&spec)?;
        assert_eq!((p.user().uid(), p.user().gid()), (1, 29));
        assert_eq!(p.user().additional_gids().clone(), Some(vec![29, 1000]));
        assert_eq!(p.cwd(), Path::new("/y/z"));

        assert_eq!(process(&build(&input())?)?.cwd(), Path::new("/"));
        assert_eq!(
            err(build(&ContainerSpecInput { user: Some("nobody".to_owned()), ..input() })),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert_eq!(
            err(build(&ContainerSpecInput { working_dir: Some("srv".to_owned()), ..input() })),
            "the working directory 'srv' is invalid, it needs to be an absolute path"
        );
        Ok(())
    }

    fn caps_of(spec: &Spec) -> Result<BTreeSet<String>, Box<dyn std::error::Error>> {
        let caps = process(spec)?.capabilities().clone().ok_or("no capabilities")?;
        let bounding = caps.bounding().clone().unwrap_or_default();
        assert_eq!(caps.effective().clone().unwrap_or_default(), bounding);
        assert_eq!(caps.permitted().clone().unwrap_or_default(), bounding);
        assert!(caps.inheritable().is_none() && caps.ambient().is_none(), "Docker >= 20.10 sets neither");
        Ok(bounding.into_iter().filter_map(cap_name).map(str::to_owned).collect())
    }

    fn cap_set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn capabilities_add_drop_all_privileged() -> TestResult {
        assert_eq!(caps_of(&build(&input())?)?, cap_set(&DEFAULT_CAPABILITIES));

        let tweaked = ContainerSpecInput {
            cap_add: strings(&["NET_ADMIN", "cap_sys_time"]),
            cap_drop: strings(&["chown", "CAP_KILL"]),
            ..input()
        };
        let mut want = cap_set(&DEFAULT_CAPABILITIES);
        want.remove("CAP_CHOWN");
        want.remove("CAP_KILL");
        want.extend(cap_set(&["CAP_NET_ADMIN", "CAP_SYS_TIME"]));
        assert_eq!(caps_of(&build(&tweaked)?)?, want);

        let only =
            ContainerSpecInput { cap_drop: strings(&["all"]), cap_add: strings(&["NET_BIND_SERVICE"]), ..input() };
        assert_eq!(caps_of(&build(&only)?)?, cap_set(&["CAP_NET_BIND_SERVICE"]));

        let all_host: BTreeSet<String> =
            host().capabilities.iter().filter_map(|c| cap_name(*c)).map(str::to_owned).collect();
        let all_but = ContainerSpecInput { cap_add: strings(&["ALL"]), cap_drop: strings(&["SYS_ADMIN"]), ..input() };
        let mut want = all_host.clone();
        want.remove("CAP_SYS_ADMIN");
        assert_eq!(caps_of(&build(&all_but)?)?, want);

        let privileged = ContainerSpecInput { privileged: true, cap_drop: strings(&["ALL"]), ..input() };
        assert_eq!(caps_of(&build(&privileged)?)?, all_host, "privileged: every capability the host has");

        assert_eq!(
            err(build(&ContainerSpecInput { cap_add: strings(&["FLY"]), ..input() })),
            "unknown capability: \"CAP_FLY\""
        );
        assert_eq!(
            err(build(&ContainerSpecInput { cap_add: strings(&["sys_resource"]), ..input() })),
            "capability not supported by your kernel or not available in the current environment: \"CAP_SYS_RESOURCE\""
        );
        Ok(())
    }

    #[test]
    fn masked_and_readonly_paths() -> TestResult {
        let thermal = "/sys/devices/system/cpu/cpu0/thermal_throttle".to_owned();
        let host = HostFacts { thermal_throttle: vec![thermal.clone()], ..host() };
        let spec = build_on(&input(), &host)?;
        let l = linux(&spec)?;
        let mut masked: Vec<String> = MASKED_PATHS.iter().map(|p| (*p).to_owned()).collect();
        masked.push(thermal);
        assert_eq!(l.masked_paths().clone(), Some(masked));
        for p in ["/proc/kcore", "/proc/keys", "/proc/interrupts", "/sys/firmware", "/sys/devices/virtual/powercap"] {
            assert!(MASKED_PATHS.contains(&p), "{p}");
        }
        assert_eq!(l.readonly_paths().clone(), Some(strings(&READONLY_PATHS)));

        for input in [
            ContainerSpecInput { privileged: true, ..input() },
            ContainerSpecInput { security_opt: strings(&["systempaths=unconfined"]), ..input() },
        ] {
            let spec = build_on(&input, &host)?;
            assert!(linux(&spec)?.masked_paths().is_none() && linux(&spec)?.readonly_paths().is_none());
        }
        Ok(())
    }

    #[test]
    fn default_mounts_are_dockers() -> TestResult {
        let spec = build(&input())?;
        let got = mounts(&spec);
        let want: Vec<(&str, &str, Vec<String>)> = vec![
            ("/proc", "proc", strings(&["nosuid", "noexec", "nodev"])),
            ("/dev", "tmpfs", strings(&["nosuid", "strictatime", "mode=755", "size=65536k"])),
            (
                "/dev/pts",
                "devpts",
                strings(&["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]),
            ),
            ("/sys", "sysfs", strings(&["nosuid", "noexec", "nodev", "ro"])),
            ("/sys/fs/cgroup", "cgroup", strings(&["ro", "nosuid", "noexec", "nodev"])),
            ("/dev/mqueue", "mqueue", strings(&["nosuid", "noexec", "nodev"])),
            ("/dev/shm", "tmpfs", strings(&["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"])),
        ];
        let want: Vec<(String, String, Vec<String>)> =
            want.into_iter().map(|(d, t, o)| (d.to_owned(), t.to_owned(), o)).collect();
        assert_eq!(got, want);
        assert_eq!(spec.root().as_ref().map(|r| r.readonly()), Some(Some(false)));
        Ok(())
    }

    #[test]
    fn container_mounts_sorted_by_depth_after_the_defaults() -> TestResult {
        let dir = tempfile::tempdir()?;
        let file = |name: &str| Some(dir.path().join(name));
        let input = ContainerSpecInput {
            mounts: vec![
                MountInput::Bind {
                    source: "/srv/data/logs".into(),
                    target: "/data/logs".to_owned(),
                    read_only: true,
                    propagation: None,
                    non_recursive: false,
                },
                MountInput::Volume {
                    source: "/var/lib/berth/volumes/v/_data".into(),
                    target: "/data".to_owned(),
                    read_only: false,
                },
                MountInput::Tmpfs {
                    target: "/run/".to_owned(),
                    size: Some(64 << 20),
                    mode: Some(0o1777),
                    read_only: false,
                    options: strings(&["exec", "uid=1000"]),
                },
                MountInput::Bind {
                    source: "/srv/shared".into(),
                    target: "/shared".to_owned(),
                    read_only: false,
                    propagation: Some(Propagation::Rshared),
                    non_recursive: true,
                },
            ],
            hosts_file: file("hosts"),
            resolv_conf: file("resolv.conf"),
            hostname_file: file("hostname"),
            shm_size: Some(1 << 30),
            ..input()
        };
        let spec = build(&input)?;
        let order: Vec<String> = mounts(&spec).into_iter().map(|(d, _, _)| d).collect();
        assert_eq!(
            order,
            strings(&[
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm",
                "/data",
                "/run",
                "/shared",
                "/data/logs",
                "/etc/resolv.conf",
                "/etc/hostname",
                "/etc/hosts",
            ])
        );
        assert_eq!(mount_options(&spec, "/data/logs"), Some(strings(&["rbind", "ro", "rprivate"])));
        assert_eq!(mount_options(&spec, "/data"), Some(strings(&["rbind"])));
        assert_eq!(mount_options(&spec, "/shared"), Some(strings(&["bind", "rshared"])));
        assert_eq!(linux(&spec)?.rootfs_propagation().as_deref(), Some("shared"));
        assert_eq!(
            mount_options(&spec, "/run"),
            Some(strings(&["noexec", "nosuid", "nodev", "rprivate", "mode=1777", "size=64m", "exec", "uid=1000"]))
                .map(|o| o.into_iter().filter(|o| o != "noexec").collect())
        );
        assert_eq!(mount_options(&spec, "/etc/hosts"), Some(strings(&["rbind", "rprivate"])));
        assert_eq!(
            mount_options(&spec, "/dev/shm").and_then(|o| o.last().cloned()).as_deref(),
            Some("size=1073741824")
        );
        Ok(())
    }

    #[test]
    fn user_mounts_replace_defaults_and_readonly_rootfs() -> TestResult {
        let shm = MountInput::Tmpfs {
            target: "/dev/shm".to_owned(),
            size: None,
            mode: None,
            read_only: false,
            options: vec![],
        };
        let spec = build(&ContainerSpecInput { mounts: vec![shm], ..input() })?;
        let shm: Vec<_> = mounts(&spec).into_iter().filter(|(d, _, _)| d == "/dev/shm").collect();
        assert_eq!(shm.len(), 1);
        assert_eq!(shm[0].2, strings(&["noexec", "nosuid", "nodev", "rprivate"]), "the user's tmpfs wins");

        let dev = MountInput::Bind {
            source: "/dev".into(),
            target: "/dev".to_owned(),
            read_only: false,
            propagation: None,
            non_recursive: false,
        };
        let spec = build(&ContainerSpecInput { mounts: vec![dev], ..input() })?;
        let under_dev: Vec<_> =
            mounts(&spec).into_iter().map(|(d, _, _)| d).filter(|d| d.starts_with("/dev")).collect();
        assert_eq!(under_dev, strings(&["/dev"]), "a user /dev replaces every default under it");

        let spec = build(&ContainerSpecInput { ipc: IpcMode::None, ..input() })?;
        assert!(mount_options(&spec, "/dev/shm").is_none(), "ipc none: no /dev/shm");
        let spec = build(&ContainerSpecInput { ipc: IpcMode::Host, ..input() })?;
        let shm = mounts(&spec).into_iter().find(|(d, _, _)| d == "/dev/shm").ok_or("no /dev/shm")?;
        assert_eq!((shm.1.as_str(), shm.2), ("bind", strings(&["rbind", "rprivate"])));

        let dir = tempfile::tempdir()?;
        let ro = ContainerSpecInput {
            read_only_rootfs: true,
            hosts_file: Some(dir.path().join("hosts")),
            init: Some("/usr/bin/tini".into()),
            mounts: vec![MountInput::Tmpfs {
                target: "/tmp".to_owned(),
                size: None,
                mode: None,
                read_only: false,
                options: vec![],
            }],
            ..input()
        };
        let spec = build(&ro)?;
        assert_eq!(spec.root().as_ref().map(|r| r.readonly()), Some(Some(true)));
        for writable in ["/proc", "/dev", "/dev/pts", "/dev/mqueue", "/dev/shm", "/tmp"] {
            let options = mount_options(&spec, writable).ok_or(writable)?;
            assert!(!options.contains(&"ro".to_owned()), "{writable}: {options:?}");
        }
        for readonly in ["/sys", "/sys/fs/cgroup", "/etc/hosts", INIT_PATH] {
            let options = mount_options(&spec, readonly).ok_or(readonly)?;
            assert_eq!(options.iter().filter(|o| *o == "ro").count(), 1, "{readonly}: {options:?}");
        }

        let spec = build(&ContainerSpecInput { privileged: true, ..input() })?;
        assert!(!mount_options(&spec, "/sys").unwrap_or_default().contains(&"ro".to_owned()));
        assert!(!mount_options(&spec, "/sys/fs/cgroup").unwrap_or_default().contains(&"ro".to_owned()));
        let spec = build(&ContainerSpecInput { security_opt: strings(&["writable-cgroups=true"]), ..input() })?;
        assert!(!mount_options(&spec, "/sys/fs/cgroup").unwrap_or_default().contains(&"ro".to_owned()));
        assert!(mount_options(&spec, "/sys").unwrap_or_default().contains(&"ro".to_owned()));
        Ok(())
    }

    #[test]
    fn bad_mounts_are_refused() {
        let tmpfs = |target: &str, options: &[&str]| MountInput::Tmpfs {
            target: target.to_owned(),
            size: None,
            mode: None,
            read_only: false,
            options: strings(options),
        };
        let with = |mounts: Vec<MountInput>| err(build(&ContainerSpecInput { mounts, ..input() }));
        assert_eq!(with(vec![tmpfs("data", &[])]), "invalid mount \"data\": mount path must be absolute");
        assert_eq!(with(vec![tmpfs("/", &[])]), "invalid mount \"/\": destination can't be '/'");
        assert_eq!(with(vec![tmpfs("/a", &[]), tmpfs("/a/", &[])]), "invalid mount \"/a\": duplicate mount point");
        assert_eq!(with(vec![tmpfs("/a", &["bogus=1"])]), "invalid mount \"/a\": invalid tmpfs option \"bogus=1\"");
        let relative = MountInput::Bind {
            source: "data".into(),
            target: "/d".to_owned(),
            read_only: false,
            propagation: None,
            non_recursive: false,
        };
        assert_eq!(with(vec![relative]), "invalid mount \"/d\": bind source path must be absolute");
    }

    #[test]
    fn namespaces_per_mode() -> TestResult {
        let kinds = |spec: &Spec| -> Vec<(LinuxNamespaceType, Option<PathBuf>)> {
            spec.linux()
                .as_ref()
                .and_then(|l| l.namespaces().clone())
                .unwrap_or_default()
                .iter()
                .map(|n| (n.typ(), n.path().clone()))
                .collect()
        };
        use LinuxNamespaceType as T;
        let spec = build(&input())?;
        assert_eq!(
            kinds(&spec),
            vec![(T::Mount, None), (T::Network, None), (T::Uts, None), (T::Pid, None), (T::Ipc, None)]
        );
        assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
        let v2 = build_on(&input(), &HostFacts { cgroup_v2: true, ..host() })?;
        assert!(kinds(&v2).contains(&(T::Cgroup, None)), "private cgroup namespace on v2");
        let v1 = build(&ContainerSpecInput { cgroupns: Some(CgroupnsMode::Private), ..input() })?;
        assert!(kinds(&v1).contains(&(T::Cgroup, None)));

        let joined = ContainerSpecInput {
            network: NetworkMode::Container("/proc/42/ns/net".into()),
            pid: NamespaceMode::Host,
            ipc: IpcMode::Container("/proc/42/ns/ipc".into()),
            uts: NamespaceMode::Host,
            ..input()
        };
        let spec = build(&joined)?;
        assert_eq!(
            kinds(&spec),
            vec![
                (T::Mount, None),
                (T::Network, Some("/proc/42/ns/net".into())),
                (T::Ipc, Some("/proc/42/ns/ipc".into()))
            ]
        );
        assert_eq!(spec.hostname(), &None);
        let host_net = build(&ContainerSpecInput { network: NetworkMode::Host, ..input() })?;
        assert!(!kinds(&host_net).iter().any(|(t, _)| *t == T::Network || *t == T::User));
        assert_eq!(
            err(build(&ContainerSpecInput { uts: NamespaceMode::Host, hostname: Some("x".to_owned()), ..input() })),
            "conflicting options: hostname and the UTS mode"
        );
        Ok(())
    }

    fn sysctls_of(spec: &Spec) -> BTreeMap<String, String> {
        spec.linux().as_ref().and_then(|l| l.sysctl().clone()).unwrap_or_default().into_iter().collect()
    }

    #[test]
    fn only_namespaced_sysctls() -> TestResult {
        let spec = build(&input())?;
        let want: BTreeMap<String, String> = [(PING_GROUP_RANGE, "0 2147483647"), (UNPRIVILEGED_PORT_START, "0")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        assert_eq!(sysctls_of(&spec), want, "Docker's defaults with a private network namespace");

        let set = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let input_with = |pairs: &[(&str, &str)]| ContainerSpecInput { sysctls: set(pairs), ..input() };
        let spec = build(&ContainerSpecInput {
            domainname: Some("example.org".to_owned()),
            ..input_with(&[
                ("kernel.shm_rmid_forced", "1"),
                ("fs.mqueue.msg_max", "64"),
                ("net.core.somaxconn", "1024"),
                (UNPRIVILEGED_PORT_START, "1024"),
            ])
        })?;
        let got = sysctls_of(&spec);
        assert_eq!(got.get("kernel.domainname").map(String::as_str), Some("example.org"));
        assert_eq!(got.get(UNPRIVILEGED_PORT_START).map(String::as_str), Some("1024"), "the container's value wins");
        assert_eq!(got.len(), 6);

        assert_eq!(
            err(build(&input_with(&[("vm.swappiness", "10")]))),
            "sysctl \"vm.swappiness\" is not in a separate kernel namespace"
        );
        assert_eq!(
            err(build(&input_with(&[("kernel.hostname", "x")]))),
            "sysctl \"kernel.hostname\" is not allowed as it conflicts with the hostname option"
        );
        let host_net = ContainerSpecInput { network: NetworkMode::Host, ..input_with(&[("net.ipv4.ip_forward", "1")]) };
        assert_eq!(
            err(build(&host_net)),
            "sysctl \"net.ipv4.ip_forward\" is not allowed in the host's network namespace"
        );
        let host_net = build(&ContainerSpecInput { network: NetworkMode::Host, ..input() })?;
        assert!(sysctls_of(&host_net).is_empty(), "no network defaults in the host's namespace");
        let host_ipc = ContainerSpecInput { ipc: IpcMode::Host, ..input_with(&[("kernel/sem", "1 2 3 4")]) };
        assert_eq!(err(build(&host_ipc)), "sysctl \"kernel/sem\" is not allowed in the host's ipc namespace");
        let host_uts = ContainerSpecInput { uts: NamespaceMode::Host, domainname: Some("x".to_owned()), ..input() };
        assert_eq!(err(build(&host_uts)), "sysctl \"kernel.domainname\" is not allowed in the host's uts namespace");
        let joined = ContainerSpecInput {
            network: NetworkMode::Container("/proc/1/ns/net".into()),
            ..input_with(&[("net.core.somaxconn", "1")])
        };
        assert_eq!(sysctls_of(&build(&joined)?).len(), 1, "net.* in a joined namespace, without Docker's defaults");
        Ok(())
    }

    #[test]
    fn device_rules_and_devices() -> TestResult {
        let rules = |spec: &Spec| -> Vec<String> {
            spec.linux()
                .as_ref()
                .and_then(|l| l.resources().as_ref())
                .and_then(|r| r.devices().clone())
                .unwrap_or_default()
                .iter()
                .map(|r| format!("{} {r}", if r.allow() { "allow" } else { "deny" }))
                .collect()
        };
        let spec = build(&input())?;
        assert_eq!(
            rules(&spec),
            strings(&[
                "deny a *:* rwm",
                "allow c 1:5 rwm",
                "allow c 1:3 rwm",
                "allow c 1:9 rwm",
                "allow c 1:8 rwm",
                "allow c 5:0 rwm",
                "allow c 5:1 rwm",
                "deny c 10:229 rwm",
            ])
        );
        assert!(linux(&spec)?.devices().is_none());

        let with_null = ContainerSpecInput {
            devices: vec![DeviceMapping {
                path_on_host: "/dev/null".into(),
                path_in_container: Some("/dev/mynull".into()),
                cgroup_permissions: Some("rw".to_owned()),
            }],
            device_cgroup_rules: strings(&["c 42:* rmw", "b *:* m"]),
            ..input()
        };
        let spec = build(&with_null)?;
        let devices = linux(&spec)?.devices().clone().unwrap_or_default();
        assert_eq!(devices.len(), 1);
        assert_eq!(devices[0].path(), Path::new("/dev/mynull"));
        assert_eq!((devices[0].typ(), devices[0].major(), devices[0].minor()), (LinuxDeviceType::C, 1, 3));
        let got = rules(&spec);
        assert_eq!(&got[8..], &strings(&["allow c 1:3 rw", "allow c 42:* rmw", "allow b *:* m"]));

        let not_a_device = ContainerSpecInput {
            devices: vec![DeviceMapping { path_on_host: "/etc/hostname".into(), ..Default::default() }],
            ..input()
        };
        assert_eq!(
            err(build(&not_a_device)),
            "error gathering device information while adding custom device \"/etc/hostname\": not a device node"
        );
        let bad_rule = ContainerSpecInput { device_cgroup_rules: strings(&["c 1:3"]), ..input() };
        assert_eq!(err(build(&bad_rule)), "invalid device cgroup rule format: 'c 1:3'");

        let spec = build(&ContainerSpecInput { privileged: true, ..input() })?;
        assert_eq!(rules(&spec), strings(&["allow a *:* rwm"]));
        let host_devices = linux(&spec)?.devices().clone().unwrap_or_default();
        assert!(host_devices.iter().any(|d| d.path() == Path::new("/dev/null")), "privileged: the host's /dev");
        assert!(
            !host_devices.iter().any(|d| d.path() == Path::new("/dev/console") || d.path().starts_with("/dev/pts"))
        );
        Ok(())
    }

    #[test]
    fn seccomp_and_no_new_privileges() -> TestResult {
        let spec = build(&input())?;
        let seccomp = linux(&spec)?.seccomp().clone().ok_or("no default seccomp profile")?;
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert!(seccomp.syscalls().iter().flatten().any(|s| s.names().contains(&"read".to_owned())));
        assert_eq!(process(&spec)?.no_new_privileges(), Some(true), "berth's default");

        for opts in [&["seccomp=unconfined"][..], &["seccomp:unconfined"]] {
            let spec = build(&ContainerSpecInput { security_opt: strings(opts), ..input() })?;
            assert!(linux(&spec)?.seccomp().is_none(), "{opts:?}");
        }
        let privileged = build(&ContainerSpecInput { privileged: true, ..input() })?;
        assert!(linux(&privileged)?.seccomp().is_none());

        let json = r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("profile.json");
        fs::write(&path, json)?;
        for opt in [format!("seccomp={json}"), format!("seccomp={}", path.display())] {
            let spec = build(&ContainerSpecInput { security_opt: vec![opt], ..input() })?;
            let seccomp = linux(&spec)?.seccomp().clone().ok_or("no custom profile")?;
            assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActAllow);
            assert_eq!(seccomp.syscalls().as_ref().map(Vec::len), Some(1));
        }
        let missing = ContainerSpecInput { security_opt: strings(&["seccomp=/no/such/profile.json"]), ..input() };
        assert!(err(build(&missing)).starts_with("read seccomp profile /no/such/profile.json"));

        for (opt, nnp) in [
            ("no-new-privileges=false", false),
            ("no-new-privileges:false", false),
            ("no-new-privileges", true),
            ("no-new-privileges=true", true),
        ] {
            let spec = build(&ContainerSpecInput { security_opt: strings(&[opt]), ..input() })?;
            assert_eq!(process(&spec)?.no_new_privileges(), Some(nnp), "{opt}");
        }
        let ignored =
            ContainerSpecInput { security_opt: strings(&["apparmor=unconfined", "label=disable"]), ..input() };
        assert!(process(&build(&ignored)?)?.apparmor_profile().is_none());
        assert_eq!(
            err(build(&ContainerSpecInput { security_opt: strings(&["bogus"]), ..input() })),
            "invalid --security-opt: \"bogus\""
        );
        assert_eq!(
            err(build(&ContainerSpecInput { security_opt: strings(&["no-new-privileges=maybe"]), ..input() })),
            "invalid --security-opt: \"no-new-privileges=maybe\""
        );
        Ok(())
    }

    #[test]
    fn resources_and_cgroup_path() -> TestResult {
        let resources = Resources {
            memory: 256 << 20,
            memory_reservation: 128 << 20,
            nano_cpus: 1_500_000_000,
            cpu_shares: 512,
            cpuset_cpus: "0-1".to_owned(),
            pids_limit: Some(0),
            blkio_weight: 300,
            oom_score_adj: Some(500),
            ..Default::default()
        };
        let spec = build(&ContainerSpecInput { resources, cgroup_parent: "tenants/a/".to_owned(), ..input() })?;
        let json = serde_json::to_value(&spec)?;
        let r = &json["linux"]["resources"];
        assert_eq!(r["memory"]["limit"], 256 << 20);
        assert_eq!(r["memory"]["reservation"], 128 << 20);
        assert_eq!(r["memory"]["swap"], 512 << 20, "Docker's default swap: twice the memory");
        assert_eq!(r["cpu"]["quota"], 150_000);
        assert_eq!(r["cpu"]["period"], 100_000);
        assert_eq!(r["cpu"]["shares"], 512);
        assert_eq!(r["cpu"]["cpus"], "0-1");
        assert_eq!(r["pids"]["limit"], -1);
        assert_eq!(r["blockIO"]["weight"], 300);
        assert_eq!(json["process"]["oomScoreAdj"], 500);
        assert_eq!(json["linux"]["cgroupsPath"], format!("tenants/a/{ID}"));

        let plain = serde_json::to_value(build(&input())?)?;
        assert_eq!(plain["linux"]["cgroupsPath"], format!("/berth/{ID}"));
        assert!(plain["linux"]["resources"].get("memory").is_none());
        assert!(plain["process"].get("oomScoreAdj").is_none());
        let no_swap = build_on(
            &ContainerSpecInput { resources: Resources { memory: 64 << 20, ..Default::default() }, ..input() },
            &HostFacts { swap_limit: false, ..host() },
        )?;
        assert!(serde_json::to_value(no_swap)?["linux"]["resources"]["memory"].get("swap").is_none());

        let with = |r: Resources| err(build(&ContainerSpecInput { resources: r, ..input() }));
        assert!(
            with(Resources { memory: 1 << 20, ..Default::default() }).contains("minimum memory limit allowed is 6MB")
        );
        assert!(
            with(Resources { memory: 64 << 20, memory_swap: 32 << 20, ..Default::default() }).contains("memoryswap")
        );
        assert!(with(Resources { nano_cpus: 1, cpu_quota: 50_000, ..Default::default() }).contains("nano cpus"));
        assert!(with(Resources { blkio_weight: 5, ..Default::default() }).contains("blkio weight"));
        assert!(with(Resources { oom_score_adj: Some(1001), ..Default::default() }).contains("oom score adj"));
        let lower = Resources { oom_score_adj: Some(-500), ..Default::default() };
        assert!(with(lower.clone()).contains("oom_score_adj -500 is below berthd's own (0)"));
        let can = HostFacts { can_raise_rlimits: true, ..host() };
        let spec = build_on(&ContainerSpecInput { resources: lower, ..input() }, &can)?;
        assert_eq!(serde_json::to_value(spec)?["process"]["oomScoreAdj"], -500);
        assert_eq!(
            err(build(&ContainerSpecInput { cgroup_parent: "../escape".to_owned(), ..input() })),
            "invalid cgroup parent \"../escape\""
        );
        assert_eq!(
            err(build(&ContainerSpecInput { id: "../x".to_owned(), ..input() })),
            "invalid container id \"../x\""
        );
        Ok(())
    }

    #[test]
    fn rlimits_only_when_configured_and_never_above_the_hard_limit() -> TestResult {
        assert!(process(&build(&input())?)?.rlimits().is_none(), "no rlimits unless configured");
        let ulimit = |name: &str, soft, hard| Ulimit { name: name.to_owned(), soft, hard };
        let with = |u: Vec<Ulimit>| ContainerSpecInput {
            resources: Resources { ulimits: u, ..Default::default() },
            ..input()
        };
        let spec = build(&with(vec![ulimit("nofile", 1024, 20_000), ulimit("core", -1, -1)]))?;
        let json = serde_json::to_value(&spec)?;
        assert_eq!(
            json["process"]["rlimits"][0],
            serde_json::json!({"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 20000})
        );
        assert_eq!(json["process"]["rlimits"][1]["hard"], u64::MAX);

        assert_eq!(
            err(build(&with(vec![ulimit("nofile", 1_048_576, 1_048_576)]))),
            "invalid ulimit nofile: hard limit 1048576 is above the current hard limit 20000, and raising it needs CAP_SYS_RESOURCE, which berth does not have here"
        );
        let can = HostFacts { can_raise_rlimits: true, ..host() };
        assert!(build_on(&with(vec![ulimit("nofile", 1_048_576, 1_048_576)]), &can).is_ok());
        assert!(
            err(build(&with(vec![ulimit("nofile", 10, 5)])))
                .contains("soft limit must be less than or equal to hard limit: 10 > 5")
        );
        assert_eq!(err(build(&with(vec![ulimit("files", 1, 1)]))), "invalid ulimit files: unknown ulimit type");
        Ok(())
    }

    #[test]
    fn init_runs_first_with_its_own_pid_namespace() -> TestResult {
        let with_init = ContainerSpecInput { init: Some("/usr/bin/tini".into()), ..input() };
        let spec = build(&with_init)?;
        assert_eq!(process(&spec)?.args().clone(), Some(strings(&[INIT_PATH, "--", "/bin/true"])));
        let init = mounts(&spec).into_iter().find(|(d, _, _)| d == INIT_PATH).ok_or("no init mount")?;
        assert_eq!((init.1.as_str(), init.2), ("bind", strings(&["bind", "ro"])));
        let host_pid = build(&ContainerSpecInput { pid: NamespaceMode::Host, ..with_init })?;
        assert_eq!(process(&host_pid)?.args().clone(), Some(strings(&["/bin/true"])));
        assert!(mount_options(&host_pid, INIT_PATH).is_none());
        Ok(())
    }

    #[test]
    fn serializes_what_runtimes_need() -> TestResult {
        let root = rootfs()?;
        let input = ContainerSpecInput { tty: true, user: Some("app".to_owned()), ..input() };
        let spec = build_spec_with(&input, root.path(), &host())?;
        let json = serde_json::to_value(&spec)?;
        assert_eq!(json["ociVersion"], "1.1.0");
        assert_eq!(json["root"]["path"], root.path().to_string_lossy().as_ref());
        assert_eq!(json["process"]["args"], serde_json::json!(["/bin/true"]));
        assert_eq!(json["process"]["terminal"], true);
        assert_eq!(json["process"]["cwd"], "/");
        assert_eq!(
            json["process"]["user"],
            serde_json::json!({"uid": 1000, "gid": 1000, "additionalGids": [1000, 29]})
        );
        assert_eq!(json["process"]["noNewPrivileges"], true);
        assert!(json["process"]["capabilities"].get("inheritable").is_none());
        assert_eq!(json["hostname"], "0123456789ab");
        assert_eq!(json["linux"]["namespaces"][0], serde_json::json!({"type": "mount"}));
        assert_eq!(json["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        assert!(json.get("hooks").is_none() && json.get("annotations").is_none() && json.get("domainname").is_none());
        let back: Spec = serde_json::from_value(json)?;
        assert_eq!(back, spec);

        // The input itself is data berthd can persist.
        let text = serde_json::to_string(&ContainerSpecInput {
            network: NetworkMode::Path("/run/berth/netns/x".into()),
            mounts: vec![MountInput::Tmpfs {
                target: "/t".to_owned(),
                size: Some(1),
                mode: None,
                read_only: false,
                options: vec![],
            }],
            ..input
        })?;
        let again: ContainerSpecInput = serde_json::from_str(&text)?;
        assert_eq!(again.network, NetworkMode::Path("/run/berth/netns/x".into()));
        assert_eq!(again.stop_signal(), "SIGTERM");
        Ok(())
    }

    #[test]
    fn limits_file_parses() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
            Max cpu time              unlimited            unlimited            seconds\n\
            Max open files            20000                20000                files\n\
            Max processes             31547                31547                processes\n";
        let limits = parse_limits(text);
        assert_eq!(limits.get("nofile"), Some(&20_000));
        assert_eq!(limits.get("cpu"), Some(&u64::MAX));
        assert_eq!(limits.get("nproc"), Some(&31_547));
        let probed = HostFacts::probe();
        assert!(probed.rlimits_hard.contains_key("nofile"), "{probed:?}");
        assert!(probed.capabilities.contains(&Capability::Chown));
    }

    /// Removes the cgroup parent directories crun leaves behind (it removes only the container's own).
    struct CgroupCleanup(String);

    impl Drop for CgroupCleanup {
        fn drop(&mut self) {
            let name = self.0.trim_start_matches('/');
            let _ = fs::remove_dir(Path::new("/sys/fs/cgroup").join(name));
            for hierarchy in fs::read_dir("/sys/fs/cgroup").into_iter().flatten().flatten() {
                let _ = fs::remove_dir(hierarchy.path().join(name));
            }
        }
    }

    /// The generated spec runs under crun: a busybox container checks its own identity, limits and
    /// confinement from inside and prints them.
    ///
    /// crun 1.8 refuses this VM's hybrid cgroup layout while cgroup2 still owns the hugetlb controller. The
    /// host is left as it is: crun runs in a private mount namespace where an empty file is bind-mounted over
    /// `/sys/fs/cgroup/unified/cgroup.controllers`, so crun sees plain cgroup v1. Without root, `unshare`, crun
    /// or busybox the test only checks `crun --version`.
    #[test]
    fn crun_runs_the_spec() -> TestResult {
        let crun = Path::new("/usr/bin/crun");
        if !crun.exists() {
            eprintln!("skipped: no /usr/bin/crun");
            return Ok(());
        }
        let version = Command::new(crun).arg("--version").output()?;
        assert!(version.status.success() && String::from_utf8_lossy(&version.stdout).contains("crun version"));
        let unshare_works = Command::new("unshare")
            .args(["-m", "--propagation", "private", "true"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !nix::unistd::geteuid().is_root() || !unshare_works || !Path::new("/bin/busybox").exists() {
            eprintln!("crun run skipped: it needs root, unshare -m and /bin/busybox; checked crun --version only");
            return Ok(());
        }

        let dir = tempfile::tempdir()?;
        let bundle = dir.path();
        let tar = bundle.join("busybox.tar");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-busybox-rootfs.sh");
        let made = Command::new("bash").arg(&script).arg(&tar).stdout(Stdio::null()).status()?;
        assert!(made.success(), "{} failed", script.display());
        let rootfs = bundle.join("rootfs");
        fs::create_dir(&rootfs)?;
        assert!(Command::new("tar").arg("-C").arg(&rootfs).arg("-xf").arg(&tar).status()?.success());
        for (name, text) in
            [("hosts", "127.0.0.1 localhost\n"), ("resolv.conf", "nameserver 127.0.0.1\n"), ("hostname", "spec-test\n")]
        {
            fs::write(bundle.join(name), text)?;
        }
        let empty = bundle.join("empty");
        fs::write(&empty, "")?;

        let id = format!("berth-spec-test-{}", std::process::id());
        let parent = format!("/berth-spec-test-{}", std::process::id());
        let _cleanup = CgroupCleanup(parent.clone());
        let checks = r#"
            echo "ids=$(id -u):$(id -g):$(id -G)"
            echo "hostname=$(hostname)"
            echo "cwd=$(pwd) foo=$FOO home=$HOME"
            grep -E '^(CapBnd|CapEff|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t '
            echo "shm_rmid_forced=$(cat /proc/sys/kernel/shm_rmid_forced)"
            echo "nofile=$(ulimit -n)"
            if touch /written 2>/dev/null; then echo rootfs=rw; else echo rootfs=ro; fi
            if touch /scratch/x; then echo scratch=rw; fi
            if [ -c /proc/keys ] && [ -c /proc/interrupts ]; then echo proc=masked; fi
            echo "resolv=$(cat /etc/resolv.conf)"
        "#;
        let input = ContainerSpecInput {
            id: id.clone(),
            hostname: Some("spec-test".to_owned()),
            user: Some("daemon".to_owned()),
            env: strings(&["FOO=bar"]),
            cmd: Some(strings(&["/bin/sh", "-c", checks])),
            working_dir: Some("/tmp".to_owned()),
            read_only_rootfs: true,
            mounts: vec![MountInput::Tmpfs {
                target: "/scratch".to_owned(),
                size: Some(1 << 20),
                mode: Some(0o1777),
                read_only: false,
                options: vec![],
            }],
            sysctls: [("kernel.shm_rmid_forced".to_owned(), "1".to_owned())].into(),
            resources: Resources {
                memory: 64 << 20,
                pids_limit: Some(64),
                ulimits: vec![Ulimit { name: "nofile".to_owned(), soft: 1024, hard: 1024 }],
                ..Default::default()
            },
            cgroup_parent: parent,
            hosts_file: Some(bundle.join("hosts")),
            resolv_conf: Some(bundle.join("resolv.conf")),
            hostname_file: Some(bundle.join("hostname")),
            ..Default::default()
        };
        let spec = build_spec(&input, &rootfs)?;
        fs::write(bundle.join("config.json"), serde_json::to_vec_pretty(&spec)?)?;

        let state = bundle.join("state");
        let shell = format!(
            "if grep -q . /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then mount --bind '{}' /sys/fs/cgroup/unified/cgroup.controllers || exit 97; fi; \
             exec crun --cgroup-manager=cgroupfs --root '{}' run --bundle '{}' '{}'",
            empty.display(),
            state.display(),
            bundle.display(),
            id
        );
        let out = Command::new("timeout")
            .args(["60", "unshare", "-m", "--propagation", "private", "sh", "-c", &shell])
            .stdin(Stdio::null())
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "crun run failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
        let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
        for want in [
            "ids=1:1:1",
            "hostname=spec-test",
            "cwd=/tmp foo=bar home=/usr/sbin",
            "CapBnd:00000000a80425fb",
            "CapEff:0000000000000000",
            "NoNewPrivs:1",
            "Seccomp:2",
            "shm_rmid_forced=1",
            "nofile=1024",
            "rootfs=ro",
            "scratch=rw",
            "proc=masked",
            "resolv=nameserver 127.0.0.1",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in:\n{stdout}\nstderr:\n{stderr}");
        }
        Ok(())
    }
}
