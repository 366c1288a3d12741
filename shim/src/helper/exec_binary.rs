//! `exec` with an OCI runtime binary: `<bin> --root R --log=… --log-format=json exec --detach --process P
//! --pid-file F [--console-socket S] ID`. Detached, so the process is reparented to the helper (a child
//! subreaper) and waited for like libcontainer's; its stdio is the helper's, which the binary passes on.

use std::path::Path;
use std::process::Command;

use nix::unistd::Pid;

use super::exec::read_pid;
use crate::cli::ExecArgs;
use crate::spawn::fork_exec;

pub(super) fn exec(bin: &Path, args: &ExecArgs) -> Result<Pid, String> {
    let log = args.result.with_file_name("runtime.log");
    let runtime_pid = args.result.with_file_name("runtime.pid");
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&runtime_pid);
    let mut cmd = Command::new(bin);
    fork_exec(&mut cmd)
        .arg("--root")
        .arg(&args.runtime_root)
        .arg(format!("--log={}", log.display()))
        .arg("--log-format=json")
        .args(["exec", "--detach", "--process"])
        .arg(&args.process)
        .arg("--pid-file")
        .arg(&runtime_pid);
    if let Some(cs) = &args.console_socket {
        cmd.arg("--console-socket").arg(cs);
    }
    cmd.arg(&args.id);
    let status = cmd.status().map_err(|e| format!("failed to run {}: {e}", bin.display()))?;
    if !status.success() {
        let message = super::binary::last_error(&log).unwrap_or_else(|| format!("{} exec: {status}", bin.display()));
        return Err(message);
    }
    read_pid(&runtime_pid).ok_or_else(|| format!("{} left no pid in {}", bin.display(), runtime_pid.display()))
}
