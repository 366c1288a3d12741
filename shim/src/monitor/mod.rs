//! The monitor: the long-lived berth-shim process of one container.
//!
//! # Expected flow
//! 1. `start`: detach (new session, stderr to `shim.log`), write `shim.pid`, become a child subreaper, route
//!    SIGCHLD to a signalfd, bind the control socket, set up stdio, create and start the container.
//!    Failure: `error.json` and a `failed` line to the launcher, then exit 1.
//! 2. Tell the launcher `started` (one JSON line on stdout), write `state.json` and `init.pid`.
//! 3. `events`: one poll loop over the signalfd, the output pipes (or pty master), the stdin relay and the
//!    control socket, until the init has exited and its output is drained.
//! 4. `finish`: read the OOM counter, kill leftovers, delete the runtime state, write `exit.json`, answer
//!    `wait`ers, remove the sockets, exit.
//!
//! # Guarantees
//! - Single-threaded, no async runtime: the container init is this process's child, and its pid cannot be reused
//!   before we reap it, so `kill` from the control socket never hits a stranger.
//! - `exit.json` appears only after the log holds all the container wrote and the runtime state is gone, so
//!   berthd may read the log and reuse the id as soon as it sees the file.

mod events;
mod finish;
mod start;

use std::fs::File;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::process::ExitCode;
use std::time::Instant;

use nix::sys::signalfd::SignalFd;

use crate::cgroup::ContainerCgroup;
use crate::cli::ContainerArgs;
use crate::control::ControlServer;
use crate::logfile::{JsonLog, LineSplitter, Stream};
use crate::protocol::Ready;
use crate::runtime::Runtime;

/// A stream of the container's output.
struct Output {
    stream: Stream,
    fd: OwnedFd,
    splitter: LineSplitter,
    open: bool,
}

/// How the init ended.
struct Exit {
    exit_code: i32,
    signal: Option<i32>,
    finished_at: String,
    /// Stop waiting for output after this.
    drain_deadline: Instant,
}

/// The running shim.
struct Monitor {
    args: ContainerArgs,
    runtime: Runtime,
    tty: bool,
    shim_pid: i32,
    init_pid: i32,
    started_at: String,
    signals: SignalFd,
    control: ControlServer,
    log: Option<JsonLog>,
    log_failed: bool,
    /// Pipes (stdout, stderr) or the pty master (tty, reported as stdout).
    outputs: Vec<Output>,
    /// The stdin FIFO: held open (pipes) or relayed into the pty master (tty).
    stdin_fifo: Option<File>,
    /// Bytes read from the FIFO, not yet taken by the pty.
    relay: Vec<u8>,
    cgroup: ContainerCgroup,
    oom_baseline: u64,
    exit: Option<Exit>,
}

/// Run the monitor to the end of the container.
pub fn run(args: ContainerArgs, foreground: bool) -> ExitCode {
    match start::start(args, foreground) {
        Ok(mut monitor) => {
            announce(&Ready::Started { shim_pid: monitor.shim_pid, init_pid: monitor.init_pid }, foreground);
            monitor.run_events();
            monitor.finish();
            ExitCode::SUCCESS
        }
        Err(record) => {
            announce(&Ready::Failed(record), foreground);
            ExitCode::from(1)
        }
    }
}

/// The one line for the launcher; afterwards stdout goes to /dev/null so nobody waits on it.
fn announce(ready: &Ready, foreground: bool) {
    let line = serde_json::to_string(ready).unwrap_or_else(|e| format!("{{\"type\":\"failed\",\"error\":\"{e}\"}}"));
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    drop(out);
    if !foreground && let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(&null);
    }
}

/// One line in `shim.log` (the monitor's stderr).
fn log_line(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "{} {message}", crate::timefmt::now());
}

macro_rules! shimlog {
    ($($t:tt)*) => { $crate::monitor::log_line(format_args!($($t)*)) };
}
pub(crate) use shimlog;
