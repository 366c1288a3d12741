//! Seccomp: Docker's profile format, Docker's default profile as Rust data, and how a profile becomes the
//! runtime spec's `linux.seccomp` for one container.
//!
//! # Where the default profile comes from
//! [`default_profile`] is a rule-by-rule transcription of moby's `profiles/seccomp/default_linux.go`
//! (github.com/moby/moby at commit 00f3d189e420d485e42d15fe494f96d272284e0e), the Go source from which Docker
//! generates `profiles/seccomp/default.json`. The rules keep moby's order, names and values; only the spelling
//! is Rust. When Docker changes its profile, diff that file and update the lists here.
//!
//! # How a profile is applied (moby `profiles/seccomp/seccomp_linux.go`, `setupSeccomp`)
//! - `archMap`: only the entry of the native architecture is kept, with its sub-architectures
//!   (x86_64 gives `SCMP_ARCH_X86_64`, `SCMP_ARCH_X86`, `SCMP_ARCH_X32`).
//! - each rule is dropped when its `excludes` match (the native arch is listed, any listed capability is in the
//!   container's bounding set, the kernel is at least `minKernel`), or when its `includes` do not (the arch is
//!   not listed, a listed capability is missing, the kernel is older than `minKernel`).
//! - `defaultAction`, `defaultErrnoRet`, `errnoRet`, `args`, `flags` and the listener fields pass through.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder, LinuxSeccompFilterFlag, LinuxSeccompOperator,
    LinuxSyscall,
};
use serde::{Deserialize, Deserializer, Serialize};

/// A seccomp profile in Docker's format (what `--security-opt seccomp=<file>` takes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Absent together with `syscalls`: seccomp is disabled (moby's rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<LinuxSeccompAction>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_errno_ret: Option<u32>,
    /// Explicit architectures; a profile gives either these or `arch_map`, never both.
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub architectures: Vec<Arch>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub syscalls: Vec<Rule>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_path: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_metadata: Option<String>,
}

/// One native architecture and the ones its syscall ABI also accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchMap {
    #[serde(rename = "architecture")]
    pub arch: Arch,
    #[serde(rename = "subArchitectures", default, deserialize_with = "nullable")]
    pub sub_arches: Vec<Arch>,
}

/// A rule of the profile: syscalls, an action, optional argument filters, and when the rule applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// The single-name form; a rule gives either `name` or `names`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<Arg>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub includes: Filter,
    #[serde(default, skip_serializing_if = "Filter::is_empty")]
    pub excludes: Filter,
}

/// An argument filter: `op` compares argument `index` with `value` (and `value_two` for masked compares:
/// `(arg & value) == value_two`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Arg {
    pub index: usize,
    pub value: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub value_two: u64,
    pub op: LinuxSeccompOperator,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// When a rule applies: architectures in libseccomp's native names (`amd64`, `x86`, `arm64`, `s390x`...),
/// capabilities as `CAP_*` names, and a minimum kernel (`"4.8"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub caps: Vec<String>,
    #[serde(default, deserialize_with = "nullable", skip_serializing_if = "Vec::is_empty")]
    pub arches: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_kernel: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.caps.is_empty() && self.arches.is_empty() && self.min_kernel.is_none()
    }
}

/// JSON `null` reads as the empty value (Docker's profiles write `"subArchitectures": null`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A kernel release, compared as Docker does: major, minor, patch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct KernelVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl KernelVersion {
    /// Parses `6.18.44-fc-v769`, `4.8` or `5`: leading numbers separated by dots, the rest ignored.
    pub fn parse(release: &str) -> Option<Self> {
        let mut parts = release.split('.').map(|p| {
            let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
            digits.parse::<u32>().ok()
        });
        let major = parts.next()??;
        let minor = parts.next().flatten().unwrap_or(0);
        let patch = parts.next().flatten().unwrap_or(0);
        Some(Self { major, minor, patch })
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The architecture name libseccomp (and Docker's profile filters) use for the machine berth was built for.
pub fn native_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "x86",
        "aarch64" => "arm64",
        "arm" => "arm",
        "s390x" => "s390x",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "powerpc64" => "ppc64",
        "powerpc" => "ppc",
        "riscv64" => "riscv64",
        "mips64" if cfg!(target_endian = "little") => "mipsel64",
        "mips64" => "mips64",
        "mips" if cfg!(target_endian = "little") => "mipsel",
        "mips" => "mips",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// The seccomp architecture of a native name (moby's `nativeToSeccomp`).
fn seccomp_arch(native: &str) -> Option<Arch> {
    Some(match native {
        "x86" => Arch::ScmpArchX86,
        "amd64" => Arch::ScmpArchX86_64,
        "arm" => Arch::ScmpArchArm,
        "arm64" => Arch::ScmpArchAarch64,
        "mips64" => Arch::ScmpArchMips64,
        "mips64n32" => Arch::ScmpArchMips64n32,
        "mipsel64" => Arch::ScmpArchMipsel64,
        "mipsel64n32" => Arch::ScmpArchMipsel64n32,
        "mipsel" => Arch::ScmpArchMipsel,
        "ppc" => Arch::ScmpArchPpc,
        "ppc64" => Arch::ScmpArchPpc64,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390" => Arch::ScmpArchS390,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        "loong64" => Arch::ScmpArchLoongarch64,
        _ => return None,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("read seccomp profile {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("decoding seccomp profile {origin} failed: {source}")]
    Decode {
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'"
    )]
    ArchitecturesAndArchMap,
    #[error("'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")]
    NameAndNames,
    #[error("the seccomp profile lists syscalls but has no defaultAction")]
    NoDefaultAction,
    #[error("invalid minKernel {0:?} in the seccomp profile")]
    InvalidMinKernel(String),
    #[error("the seccomp profile has rules for minKernel {0} but the kernel version of this host is unknown")]
    UnknownKernel(String),
    #[error("seccomp argument filter: {0}")]
    Arg(#[from] oci_spec::OciSpecError),
}

impl Profile {
    /// Decodes a profile from JSON; `origin` (a path, or "security_opt") names it in errors.
    pub fn from_json(json: &str, origin: &str) -> Result<Self, SeccompError> {
        serde_json::from_str(json).map_err(|source| SeccompError::Decode { origin: origin.to_owned(), source })
    }

    /// Reads and decodes a profile file.
    pub fn load(path: &std::path::Path) -> Result<Self, SeccompError> {
        let json =
            std::fs::read_to_string(path).map_err(|source| SeccompError::Read { path: path.to_owned(), source })?;
        Self::from_json(&json, &path.display().to_string())
    }
}

/// What [`resolve`] needs to know about the container and the host.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// libseccomp native name of the machine, as [`native_arch`] gives it.
    pub arch: &'a str,
    /// The container's bounding capabilities, as `CAP_*` names.
    pub bounding: &'a BTreeSet<String>,
    /// The running kernel; needed only when a rule has a `minKernel`.
    pub kernel: Option<KernelVersion>,
}

/// Turns a profile into the runtime spec's `linux.seccomp` for one container, with Docker's semantics
/// (see the module docs). `None` when the profile disables seccomp.
pub fn resolve(profile: &Profile, target: &Target<'_>) -> Result<Option<LinuxSeccomp>, SeccompError> {
    if profile.default_action.is_none() && profile.syscalls.is_empty() {
        return Ok(None);
    }
    let default_action = profile.default_action.ok_or(SeccompError::NoDefaultAction)?;
    if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
        return Err(SeccompError::ArchitecturesAndArchMap);
    }
    let mut architectures = profile.architectures.clone();
    if let Some(native) = seccomp_arch(target.arch)
        && let Some(entry) = profile.arch_map.iter().find(|m| m.arch == native)
    {
        architectures.push(entry.arch);
        architectures.extend(entry.sub_arches.iter().copied());
    }

    let mut syscalls = Vec::new();
    for rule in &profile.syscalls {
        if !applies(rule, target)? {
            continue;
        }
        let names = match (&rule.name, rule.names.is_empty()) {
            (Some(_), false) => return Err(SeccompError::NameAndNames),
            (Some(name), true) => vec![name.clone()],
            (None, _) => rule.names.clone(),
        };
        let mut call = LinuxSyscall::default();
        call.set_names(names);
        call.set_action(rule.action);
        call.set_errno_ret(rule.errno_ret);
        let args = rule
            .args
            .iter()
            .map(|a| {
                LinuxSeccompArgBuilder::default().index(a.index).value(a.value).value_two(a.value_two).op(a.op).build()
            })
            .collect::<Result<Vec<_>, _>>()?;
        call.set_args((!args.is_empty()).then_some(args));
        syscalls.push(call);
    }

    let mut seccomp = LinuxSeccomp::default();
    seccomp.set_default_action(default_action);
    seccomp.set_default_errno_ret(profile.default_errno_ret);
    seccomp.set_architectures((!architectures.is_empty()).then_some(architectures));
    seccomp.set_flags((!profile.flags.is_empty()).then(|| profile.flags.clone()));
    seccomp.set_listener_path(profile.listener_path.clone());
    seccomp.set_listener_metadata(profile.listener_metadata.clone());
    seccomp.set_syscalls(Some(syscalls));
    Ok(Some(seccomp))
}

/// moby's include/exclude filtering of one rule.
fn applies(rule: &Rule, target: &Target<'_>) -> Result<bool, SeccompError> {
    let ex = &rule.excludes;
    if ex.arches.iter().any(|a| a == target.arch) || ex.caps.iter().any(|c| target.bounding.contains(c)) {
        return Ok(false);
    }
    if let Some(min) = &ex.min_kernel
        && kernel_at_least(min, target.kernel)?
    {
        return Ok(false);
    }
    let inc = &rule.includes;
    if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == target.arch) {
        return Ok(false);
    }
    if !inc.caps.iter().all(|c| target.bounding.contains(c)) {
        return Ok(false);
    }
    if let Some(min) = &inc.min_kernel
        && !kernel_at_least(min, target.kernel)?
    {
        return Ok(false);
    }
    Ok(true)
}

fn kernel_at_least(min: &str, kernel: Option<KernelVersion>) -> Result<bool, SeccompError> {
    let min_version = KernelVersion::parse(min).ok_or_else(|| SeccompError::InvalidMinKernel(min.to_owned()))?;
    let kernel = kernel.ok_or_else(|| SeccompError::UnknownKernel(min.to_owned()))?;
    Ok(kernel >= min_version)
}

// ---------------------------------------------------------------------------------------------------------
// Docker's default profile (moby profiles/seccomp/default_linux.go, see the module docs).
// ---------------------------------------------------------------------------------------------------------

const EPERM: u32 = 1;
const ENOSYS: u32 = 38;
const AF_VSOCK: u64 = 40;
/// CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP.
const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000 | 0x0200_0000;

/// The unconditional allow list of Docker's default profile, in moby's order.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_time64",
    "futex_waitv",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listxattr",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// Allowed only with CAP_SYS_ADMIN in the bounding set.
const SYS_ADMIN: &[&str] = &[
    "bpf",
    "clone",
    "clone3",
    "fanotify_init",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "open_tree",
    "perf_event_open",
    "quotactl",
    "quotactl_fd",
    "setdomainname",
    "sethostname",
    "setns",
    "syslog",
    "umount",
    "umount2",
    "unshare",
];

fn rule(names: &[&str], action: LinuxSeccompAction) -> Rule {
    Rule { names: names.iter().map(|n| (*n).to_owned()).collect(), action, ..Rule::default() }
}

fn allow(names: &[&str]) -> Rule {
    rule(names, LinuxSeccompAction::ScmpActAllow)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn arg(index: usize, value: u64, op: LinuxSeccompOperator) -> Arg {
    Arg { index, value, value_two: 0, op }
}

impl Rule {
    fn args(mut self, args: Vec<Arg>) -> Self {
        self.args = args;
        self
    }
    fn if_caps(mut self, caps: &[&str]) -> Self {
        self.includes.caps = strings(caps);
        self
    }
    fn if_arches(mut self, arches: &[&str]) -> Self {
        self.includes.arches = strings(arches);
        self
    }
    fn unless_caps(mut self, caps: &[&str]) -> Self {
        self.excludes.caps = strings(caps);
        self
    }
}

/// Docker's default seccomp profile (see the module docs for its source).
pub fn default_profile() -> Profile {
    use LinuxSeccompOperator::{ScmpCmpEq, ScmpCmpMaskedEq, ScmpCmpNe};
    let arch_map = |arch: Arch, sub: &[Arch]| ArchMap { arch, sub_arches: sub.to_vec() };
    let personality = |value: u64| allow(&["personality"]).args(vec![arg(0, value, ScmpCmpEq)]);

    let mut clone_s390 = allow(&["clone"])
        .args(vec![arg(1, CLONE_NAMESPACE_FLAGS, ScmpCmpMaskedEq)])
        .if_arches(&["s390", "s390x"])
        .unless_caps(&["CAP_SYS_ADMIN"]);
    clone_s390.comment = Some("s390 parameter ordering for clone is different".to_owned());
    let mut clone =
        allow(&["clone"]).args(vec![arg(0, CLONE_NAMESPACE_FLAGS, ScmpCmpMaskedEq)]).unless_caps(&["CAP_SYS_ADMIN"]);
    clone.excludes.arches = strings(&["s390", "s390x"]);
    let mut clone3 = rule(&["clone3"], LinuxSeccompAction::ScmpActErrno).unless_caps(&["CAP_SYS_ADMIN"]);
    clone3.errno_ret = Some(ENOSYS);
    let mut ptrace_4_8 = allow(&["process_vm_readv", "process_vm_writev", "ptrace"]);
    ptrace_4_8.includes.min_kernel = Some("4.8".to_owned());

    let syscalls = vec![
        allow(ALLOWED),
        ptrace_4_8,
        allow(&["socket"]).args(vec![arg(0, AF_VSOCK, ScmpCmpNe)]),
        personality(0x0),
        personality(0x0008),
        personality(0x20000),
        personality(0x20008),
        personality(0xffff_ffff),
        allow(&["sync_file_range2", "swapcontext"]).if_arches(&["ppc64le"]),
        allow(&["arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"])
            .if_arches(&["arm", "arm64"]),
        allow(&["arch_prctl"]).if_arches(&["amd64", "x32"]),
        allow(&["modify_ldt"]).if_arches(&["amd64", "x32", "x86"]),
        allow(&["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"]).if_arches(&["s390", "s390x"]),
        allow(&["riscv_flush_icache"]).if_arches(&["riscv64"]),
        allow(&["open_by_handle_at"]).if_caps(&["CAP_DAC_READ_SEARCH"]),
        allow(SYS_ADMIN).if_caps(&["CAP_SYS_ADMIN"]),
        clone,
        clone_s390,
        clone3,
        allow(&["reboot"]).if_caps(&["CAP_SYS_BOOT"]),
        allow(&["chroot"]).if_caps(&["CAP_SYS_CHROOT"]),
        allow(&["delete_module", "init_module", "finit_module"]).if_caps(&["CAP_SYS_MODULE"]),
        allow(&["acct"]).if_caps(&["CAP_SYS_PACCT"]),
        allow(&["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"])
            .if_caps(&["CAP_SYS_PTRACE"]),
        allow(&["iopl", "ioperm"]).if_caps(&["CAP_SYS_RAWIO"]),
        allow(&["settimeofday", "stime", "clock_settime", "clock_settime64"]).if_caps(&["CAP_SYS_TIME"]),
        allow(&["vhangup"]).if_caps(&["CAP_SYS_TTY_CONFIG"]),
        allow(&["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]).if_caps(&["CAP_SYS_NICE"]),
        allow(&["syslog"]).if_caps(&["CAP_SYSLOG"]),
        allow(&["bpf"]).if_caps(&["CAP_BPF"]),
        allow(&["perf_event_open"]).if_caps(&["CAP_PERFMON"]),
    ];

    Profile {
        default_action: Some(LinuxSeccompAction::ScmpActErrno),
        default_errno_ret: Some(EPERM),
        arch_map: vec![
            arch_map(Arch::ScmpArchX86_64, &[Arch::ScmpArchX86, Arch::ScmpArchX32]),
            arch_map(Arch::ScmpArchAarch64, &[Arch::ScmpArchArm]),
            arch_map(Arch::ScmpArchMips64, &[Arch::ScmpArchMips, Arch::ScmpArchMips64n32]),
            arch_map(Arch::ScmpArchMips64n32, &[Arch::ScmpArchMips, Arch::ScmpArchMips64]),
            arch_map(Arch::ScmpArchMipsel64, &[Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64n32]),
            arch_map(Arch::ScmpArchMipsel64n32, &[Arch::ScmpArchMipsel, Arch::ScmpArchMipsel64]),
            arch_map(Arch::ScmpArchS390x, &[Arch::ScmpArchS390]),
            arch_map(Arch::ScmpArchRiscv64, &[]),
        ],
        syscalls,
        ..Profile::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn caps(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    fn resolved(bounding: &BTreeSet<String>, arch: &str) -> Result<LinuxSeccomp, Box<dyn std::error::Error>> {
        let target = Target { arch, bounding, kernel: KernelVersion::parse("6.1.0") };
        resolve(&default_profile(), &target)?.ok_or_else(|| "the default profile disabled seccomp".into())
    }

    /// The rules of the resolved profile that name `name`.
    fn rules_for(s: &LinuxSeccomp, name: &str) -> Vec<LinuxSyscall> {
        s.syscalls().iter().flatten().filter(|c| c.names().iter().any(|n| n == name)).cloned().collect()
    }

    #[test]
    fn default_profile_header_matches_docker() -> TestResult {
        let s = resolved(&caps(&["CAP_CHOWN"]), "amd64")?;
        assert_eq!(s.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(s.default_errno_ret(), Some(1));
        assert_eq!(
            s.architectures().as_deref(),
            Some(&[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32][..])
        );
        let json = serde_json::to_value(&s)?;
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert_eq!(json["architectures"][0], "SCMP_ARCH_X86_64");
        // Docker's allow list has 300-odd names; make sure none was duplicated in transcription.
        assert!(ALLOWED.len() > 300, "{}", ALLOWED.len());
        let unique: BTreeSet<_> = ALLOWED.iter().collect();
        assert_eq!(unique.len(), ALLOWED.len(), "duplicate names in the allow list");
        for name in ["read", "openat2", "io_uring_setup", "landlock_restrict_self", "rseq", "close_range"] {
            assert!(ALLOWED.contains(&name), "{name}");
        }
        for name in ["mount", "ptrace", "bpf", "kexec_load", "open_by_handle_at", "socket", "personality"] {
            assert!(!ALLOWED.contains(&name), "{name} must be conditional");
        }
        Ok(())
    }

    #[test]
    fn clone_is_filtered_without_sys_admin_and_free_with_it() -> TestResult {
        let plain = resolved(&caps(&["CAP_CHOWN"]), "amd64")?;
        let clone = rules_for(&plain, "clone");
        assert_eq!(clone.len(), 1, "{clone:?}");
        let args = clone[0].args().clone().unwrap_or_default();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].value(), 2_114_060_288);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        let clone3 = rules_for(&plain, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(38));
        assert!(rules_for(&plain, "mount").is_empty());

        let admin = resolved(&caps(&["CAP_SYS_ADMIN"]), "amd64")?;
        let clone = rules_for(&admin, "clone");
        assert_eq!(clone.len(), 1);
        assert!(clone[0].args().is_none(), "with CAP_SYS_ADMIN clone is unconditional");
        let clone3 = rules_for(&admin, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActAllow);
        assert_eq!(rules_for(&admin, "mount").len(), 1);
        Ok(())
    }

    #[test]
    fn capability_and_arch_includes() -> TestResult {
        let plain = resolved(&caps(&[]), "amd64")?;
        for name in ["ptrace", "reboot", "chroot", "bpf", "perf_event_open", "settimeofday", "init_module"] {
            let allowed = !rules_for(&plain, name).is_empty();
            // ptrace is allowed on kernels >= 4.8 without CAP_SYS_PTRACE; the others need their capability.
            assert_eq!(allowed, name == "ptrace", "{name}");
        }
        assert_eq!(rules_for(&resolved(&caps(&["CAP_SYS_CHROOT"]), "amd64")?, "chroot").len(), 1);
        assert_eq!(rules_for(&resolved(&caps(&["CAP_BPF"]), "amd64")?, "bpf").len(), 1);
        let socket = rules_for(&plain, "socket");
        assert_eq!(socket.len(), 1);
        assert_eq!(
            socket[0].args().as_ref().map(|a| (a[0].value(), a[0].op())),
            Some((40, LinuxSeccompOperator::ScmpCmpNe))
        );
        assert_eq!(rules_for(&plain, "arch_prctl").len(), 1);
        assert_eq!(rules_for(&plain, "personality").len(), 5);
        assert!(rules_for(&plain, "set_tls").is_empty());
        let arm = resolved(&caps(&[]), "arm64")?;
        assert_eq!(rules_for(&arm, "set_tls").len(), 1);
        assert!(rules_for(&arm, "arch_prctl").is_empty());
        assert_eq!(arm.architectures().as_deref(), Some(&[Arch::ScmpArchAarch64, Arch::ScmpArchArm][..]));
        Ok(())
    }

    #[test]
    fn min_kernel_needs_a_known_kernel() -> TestResult {
        let bounding = caps(&[]);
        let old = Target { arch: "amd64", bounding: &bounding, kernel: KernelVersion::parse("4.4.0") };
        let s = resolve(&default_profile(), &old)?.ok_or("no seccomp")?;
        assert!(rules_for(&s, "ptrace").is_empty(), "ptrace without CAP_SYS_PTRACE needs kernel 4.8");
        let unknown = Target { kernel: None, ..old };
        assert!(matches!(resolve(&default_profile(), &unknown), Err(SeccompError::UnknownKernel(_))));
        Ok(())
    }

    #[test]
    fn docker_json_profiles_round_trip() -> TestResult {
        let json = r#"{
            "defaultAction": "SCMP_ACT_ERRNO",
            "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": null}],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "args": null},
                {"name": "kill", "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                 "excludes": {"caps": ["CAP_KILL"]}},
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 40, "valueTwo": 0, "op": "SCMP_CMP_NE"}]}
            ]
        }"#;
        let profile = Profile::from_json(json, "test")?;
        assert_eq!(profile.syscalls.len(), 3);
        let bounding = caps(&["CAP_KILL"]);
        let target = Target { arch: "amd64", bounding: &bounding, kernel: None };
        let s = resolve(&profile, &target)?.ok_or("no seccomp")?;
        assert_eq!(s.architectures().as_deref(), Some(&[Arch::ScmpArchX86_64][..]));
        let calls = s.syscalls().clone().unwrap_or_default();
        assert_eq!(calls.len(), 2, "the kill rule is excluded by CAP_KILL");
        assert_eq!(calls[1].args().as_ref().map(Vec::len), Some(1));

        // The default profile serializes in Docker's format and reads back identical.
        let text = serde_json::to_string(&default_profile())?;
        assert!(text.contains("\"archMap\"") && text.contains("\"subArchitectures\""));
        assert_eq!(Profile::from_json(&text, "round trip")?, default_profile());
        Ok(())
    }

    #[test]
    fn profile_errors() -> TestResult {
        let bounding = caps(&[]);
        let target = Target { arch: "amd64", bounding: &bounding, kernel: None };
        assert!(resolve(&Profile::default(), &target)?.is_none(), "an empty profile disables seccomp");
        let both =
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"],"action":"SCMP_ACT_ERRNO"}]}"#;
        let both = Profile::from_json(both, "x")?;
        assert!(matches!(resolve(&both, &target), Err(SeccompError::NameAndNames)));
        let err = Profile::from_json("{not json", "/etc/x.json").err().ok_or("bad json accepted")?;
        assert!(err.to_string().contains("/etc/x.json"), "{err}");
        Ok(())
    }

    #[test]
    fn kernel_versions_parse_like_docker() {
        let v = |major, minor, patch| Some(KernelVersion { major, minor, patch });
        assert_eq!(KernelVersion::parse("6.18.44-fc-v769"), v(6, 18, 44));
        assert_eq!(KernelVersion::parse("4.8"), v(4, 8, 0));
        assert_eq!(KernelVersion::parse("x"), None);
        assert!(KernelVersion::parse("5.10.0") >= KernelVersion::parse("4.8"));
        assert!(KernelVersion::parse("4.4.0") < KernelVersion::parse("4.8"));
    }
}
