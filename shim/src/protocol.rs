//! What berthd and the shim say to each other: the files the shim leaves in the state dir and the line-JSON
//! protocol of its control socket. Pure types, no I/O, so berthd can depend on this crate without its
//! `libcontainer` feature and read the same structs.
//!
//! # The state dir (`--state-dir`, e.g. `<root>/containers/<id>/`)
//! ```text
//! shim.pid      the monitor's pid, written first (before the container exists)
//! shim.log      the shim's own diagnostics (its stderr)
//! control.sock  control socket, mode 0600, removed when the shim exits
//! stdin         FIFO, with --stdin: write to it to feed the container's stdin
//! state.json    ShimState, once the container's init runs
//! init.pid      the container init's pid (host namespace), at the same moment
//! error.json    ErrorRecord: the container never ran (bad spec, command not found, runtime failure)
//! exit.json     ExitRecord: the container ran and exited; written last, after its runtime state is deleted
//! runtime.log   the OCI runtime binary's log (with --runtime)
//! ```
//! Every file is written atomically (temp, rename; see `atomic` for why without fsync): a reader sees the whole
//! record or none.
//!
//! # Control protocol
//! One JSON object per line each way; every request gets exactly one response line, in order.
//! ```text
//! → {"cmd":"state"}                          ← {"type":"state","status":"running","init_pid":42,...}
//! → {"cmd":"kill","signal":"TERM"}           ← {"type":"ok"}            (signal: name, SIGNAME or number)
//! → {"cmd":"kill","signal":9,"all":true}     ← {"type":"ok"}            (every process of the container's cgroup)
//! → {"cmd":"resize","rows":40,"cols":120}    ← {"type":"ok"}            (tty containers)
//! → {"cmd":"close_stdin"}                    ← {"type":"ok"}            (EOF to the container's stdin)
//! → {"cmd":"wait"}                           ← {"type":"exited",...}    (sent when the container has exited)
//! any failure                                ← {"type":"error","message":"..."}
//! ```
//! While the output drains after the init's exit, `state` says `"status":"stopping"` with its `exit_code`. The
//! shim writes `exit.json` before it removes the socket, and answers whoever is still connected or queued then
//! (`state` and `wait` with `exited`, the rest with an error): at every moment berthd finds `exit.json` or a
//! socket that answers.
//!
//! # For berthd
//! Spawn `berth-shim start` with fork+exec, not `posix_spawn` (std/tokio `Command::gid(getgid())` forces it, see
//! `spawn::fork_exec`): glibc's `posix_spawn` leaves signals 32 and 33 ignored, and every container would
//! inherit that. `berth-shim-runtime` must sit beside `berth-shim` (or pass `--helper`).

use serde::{Deserialize, Serialize};

/// File names inside the state dir.
pub mod files {
    pub const SHIM_PID: &str = "shim.pid";
    pub const SHIM_LOG: &str = "shim.log";
    pub const CONTROL_SOCKET: &str = "control.sock";
    pub const CONSOLE_SOCKET: &str = "console.sock";
    pub const STDIN_FIFO: &str = "stdin";
    pub const STATE: &str = "state.json";
    pub const INIT_PID: &str = "init.pid";
    pub const ERROR: &str = "error.json";
    pub const EXIT: &str = "exit.json";
    pub const CREATE_RESULT: &str = "create.json";
    pub const RUNTIME_LOG: &str = "runtime.log";
    pub const RUNTIME_PID: &str = "runtime.pid";
}

/// `state.json`: the container is running under this shim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShimState {
    pub id: String,
    pub shim_pid: i32,
    pub init_pid: i32,
    /// RFC 3339, UTC, nanoseconds.
    pub started_at: String,
    /// `libcontainer` or the path of the OCI runtime binary.
    pub runtime: String,
    pub tty: bool,
    pub stdin: bool,
    /// The container's cgroup as `/proc/<init>/cgroup` shows it (v1 memory hierarchy, or the v2 path).
    pub cgroup: Option<String>,
}

/// `exit.json`: how the container ended. Written after its runtime state is deleted, so the id may be reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// As Docker reports it: the exit status, or 128 + signal number when a signal killed the init.
    pub exit_code: i32,
    /// The signal that killed the init, if one did.
    pub signal: Option<i32>,
    /// The kernel's OOM killer killed a process of the container's cgroup while it ran.
    pub oom_killed: bool,
    pub started_at: String,
    pub finished_at: String,
    /// Deleting the runtime state (cgroup, state dir) failed; the exit itself is still true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cleanup_error: Option<String>,
}

/// Where a failure before the container ran happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureStage {
    /// Arguments, state dir, bundle, or the spec itself.
    Setup,
    /// Creating the container (namespaces, cgroups, mounts, the executable check).
    Create,
    /// Starting the created container.
    Start,
}

/// `error.json`: the container never ran. `exit_code` follows Docker: 127 command not found, 126 not executable,
/// 128 any other runtime failure.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub error: String,
    pub exit_code: i32,
    pub stage: FailureStage,
}

impl ErrorRecord {
    /// Classify a runtime's failure message the way Docker does (`translateContainerdStartErr`).
    pub fn classify(stage: FailureStage, error: String) -> Self {
        let lower = error.to_ascii_lowercase();
        let exit_code = if lower.contains("not found in $path")
            || lower.contains("executable file not found")
            || lower.contains("no such file or directory")
        {
            127
        } else if lower.contains("permission denied") || lower.contains("does not have correct permissions") {
            126
        } else {
            128
        };
        ErrorRecord { error, exit_code, stage }
    }
}

/// The monitor's single line to the launcher (and the launcher's stdout for berthd).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Ready {
    Started { shim_pid: i32, init_pid: i32 },
    Failed(ErrorRecord),
}

/// The result file of the creator helper (`berth-shim create`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CreateResult {
    Started { init_pid: i32 },
    Failed(ErrorRecord),
}

/// A signal as berthd names it: a number, `TERM` or `SIGTERM`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SignalName {
    Number(i32),
    Name(String),
}

/// A control request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    State,
    Kill {
        signal: SignalName,
        #[serde(default)]
        all: bool,
    },
    Resize {
        rows: u16,
        cols: u16,
    },
    CloseStdin,
    Wait,
}

/// The container's life as the shim sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Running,
    /// The init exited; the shim is draining output and deleting the container.
    Stopping,
}

/// A control response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    Ok,
    State { status: Status, shim_pid: i32, init_pid: i32, started_at: String, exit_code: Option<i32> },
    Exited(ExitRecord),
    Error { message: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_from_lines() -> Result<(), serde_json::Error> {
        let kill: Request = serde_json::from_str(r#"{"cmd":"kill","signal":"TERM"}"#)?;
        assert_eq!(kill, Request::Kill { signal: SignalName::Name("TERM".into()), all: false });
        let kill: Request = serde_json::from_str(r#"{"cmd":"kill","signal":9,"all":true}"#)?;
        assert_eq!(kill, Request::Kill { signal: SignalName::Number(9), all: true });
        let resize: Request = serde_json::from_str(r#"{"cmd":"resize","rows":40,"cols":120}"#)?;
        assert_eq!(resize, Request::Resize { rows: 40, cols: 120 });
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"explode"}"#).is_err());
        Ok(())
    }

    #[test]
    fn responses_are_tagged() -> Result<(), serde_json::Error> {
        assert_eq!(serde_json::to_string(&Response::Ok)?, r#"{"type":"ok"}"#);
        let err = Response::Error { message: "no tty".into() };
        assert_eq!(serde_json::to_string(&err)?, r#"{"type":"error","message":"no tty"}"#);
        Ok(())
    }

    #[test]
    fn failures_are_classified_as_docker_does() {
        let e = ErrorRecord::classify(FailureStage::Create, "executable 'x' not found in $PATH".into());
        assert_eq!(e.exit_code, 127);
        let e = ErrorRecord::classify(FailureStage::Create, "exec: permission denied".into());
        assert_eq!(e.exit_code, 126);
        let e = ErrorRecord::classify(FailureStage::Create, "cgroup: device busy".into());
        assert_eq!(e.exit_code, 128);
    }
}
