//! Spawning the shim's own processes so the container inherits a clean signal state.

use std::os::unix::process::CommandExt;
use std::process::Command;

/// Have `cmd` fork and exec rather than `posix_spawn`.
///
/// glibc's `posix_spawn` sets its internal signals (32 and 33, SIGCANCEL and SIGSETXID) to SIG_IGN in the child,
/// an ignored signal survives `execve`, and every process down to the container's init would start with them
/// ignored (crun's containers too, when crun is spawned that way). std takes the fork path when a gid is set;
/// setting the gid we already have changes nothing else. Our processes are single-threaded, so forking is safe.
///
/// **Warning** for whoever starts `berth-shim` (berthd): spawn it this way too (std or tokio `Command`:
/// `.gid(getgid())`), or those signals are already ignored when it starts and no safe call can un-ignore them
/// (glibc's `sigaction` refuses its internal signals). The monitor logs a warning in `shim.log` when that happened.
pub fn fork_exec(cmd: &mut Command) -> &mut Command {
    cmd.gid(nix::unistd::getgid().as_raw())
}

/// Signals 32 and 33 are ignored in this process (it was started with `posix_spawn`).
pub fn glibc_signals_ignored() -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return false };
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|mask| mask & (0b11 << 31) != 0)
}
