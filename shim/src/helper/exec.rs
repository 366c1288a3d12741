//! `berth-shim-runtime exec`: run one more process in a running container (docker exec, health probes).
//!
//! berthd writes the process as an OCI `process.json` (args, env, cwd, user, capabilities, rlimits,
//! no_new_privileges, terminal — the container's process settings with the exec's changes, Docker's rule) and
//! execs this helper with the process's stdio as its own stdio (pipes, or a console socket for a tty). berthd
//! never forks from its threads; the helper is a fresh single-threaded process that may fork freely.
//!
//! The helper joins the container with libcontainer's tenant builder (or `<runtime> exec --detach` for an OCI
//! runtime binary), writes the process's host pid to `--pid-file` (so berthd can kill a timed-out probe), waits
//! for it and exits with its status (128 + signal when a signal ended it). Its result also goes to `--result`
//! as one JSON object, so berthd can tell "the process exited 127" from "the process never ran (command not
//! found)": `{"type":"exited","exit_code":N}` or `{"type":"failed","error":"…","exit_code":126|127|128}`.
//! Nothing is printed on stdout or stderr: they belong to the process.

use std::path::Path;

use nix::errno::Errno;
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::atomic::{self, Durability};
use crate::cli::ExecArgs;
use crate::error::chain;
use crate::protocol::{ErrorRecord, FailureStage};

/// What `--result` holds once the helper is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ExecResult {
    /// The process ran and ended: its exit status, or 128 + the signal that killed it.
    Exited { exit_code: i32 },
    /// The process never ran; `exit_code` as Docker reports it (127 not found, 126 not executable, else 128).
    Failed { error: String, exit_code: i32 },
}

impl ExecResult {
    pub fn exit_code(&self) -> i32 {
        match self {
            ExecResult::Exited { exit_code } | ExecResult::Failed { exit_code, .. } => *exit_code,
        }
    }

    /// A failure to start the process, classified the way Docker classifies runtime errors.
    pub fn failed(message: String) -> ExecResult {
        let record = ErrorRecord::classify(FailureStage::Start, message);
        ExecResult::Failed { error: record.error, exit_code: record.exit_code }
    }
}

/// Run the exec; the outcome is in `--result` (and is the return value). `Err` only when that file could not be
/// written.
pub fn exec(args: &ExecArgs) -> Result<ExecResult, String> {
    let _ = std::fs::remove_file(&args.pid_file);
    let _ = std::fs::remove_file(&args.result);
    // A runtime binary's detached process is reparented to us (as a subreaper) so we can wait for it.
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let started = match &args.runtime {
        Some(bin) => super::exec_binary::exec(bin, args),
        None => super::with_libcontainer::exec(args),
    };
    let result = match started {
        Ok(pid) => {
            let pid_text = format!("{}\n", pid.as_raw());
            match atomic::write(&args.pid_file, pid_text.as_bytes(), Durability::UntilReboot) {
                Ok(()) => ExecResult::Exited { exit_code: wait_for(pid) },
                Err(e) => {
                    // Unkillable by berthd without its pid: end it rather than leave it unbounded.
                    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    let _ = wait_for(pid);
                    ExecResult::Failed { error: chain(&e), exit_code: 128 }
                }
            }
        }
        Err(message) => ExecResult::failed(message),
    };
    atomic::write_json(&args.result, &result, Durability::UntilReboot).map_err(|e| chain(&e))?;
    Ok(result)
}

/// Wait for our child `pid`; its exit status as Docker reports it. Other children (a runtime binary, orphans
/// reparented to us) are reaped on the way.
fn wait_for(pid: Pid) -> i32 {
    loop {
        match waitpid(None, None) {
            Ok(WaitStatus::Exited(p, code)) if p == pid => return code,
            Ok(WaitStatus::Signaled(p, sig, _)) if p == pid => return 128 + sig as i32,
            Ok(_) | Err(Errno::EINTR) => continue,
            // ECHILD: not ours after all (it cannot happen for a child we started); nothing to wait for.
            Err(_) => return 255,
        }
    }
}

/// The pid a runtime binary wrote, once it has exited.
pub(super) fn read_pid(path: &Path) -> Option<Pid> {
    std::fs::read_to_string(path).ok()?.trim().parse::<i32>().ok().filter(|p| *p > 0).map(Pid::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_tagged_and_classified() -> Result<(), serde_json::Error> {
        let r = ExecResult::Exited { exit_code: 3 };
        assert_eq!(serde_json::to_string(&r)?, r#"{"type":"exited","exit_code":3}"#);
        let f = ExecResult::failed("executable 'nope' not found in $PATH".into());
        assert_eq!(f.exit_code(), 127);
        let back: ExecResult = serde_json::from_str(&serde_json::to_string(&f)?)?;
        assert_eq!(back, f);
        assert_eq!(ExecResult::failed("exec: permission denied".into()).exit_code(), 126);
        Ok(())
    }

    #[test]
    fn pid_files_are_read_strictly() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("pid");
        std::fs::write(&p, "42\n")?;
        assert_eq!(read_pid(&p), Some(Pid::from_raw(42)));
        std::fs::write(&p, "0")?;
        assert_eq!(read_pid(&p), None);
        std::fs::write(&p, "x")?;
        assert_eq!(read_pid(&p), None);
        Ok(())
    }
}
