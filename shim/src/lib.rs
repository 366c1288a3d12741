//! berth-shim: one process per container, between berthd and the container (the containerd-shim / conmon
//! pattern). It creates the container (youki's libcontainer, or an OCI runtime binary such as crun), holds its
//! stdio, writes its json-file log with rotation, reaps its init and records the exit (code, time, OOM kill),
//! and answers berthd on a small control socket. It outlives berthd: berthd finds it again through the state dir.
//!
//! Processes: berthd execs `berth-shim start` (the launcher), which execs the monitor (`berth-shim monitor`, a
//! new session) and exits as soon as the monitor reports the container running or failed. The monitor runs the
//! helper `berth-shim-runtime create` (libcontainer or the runtime binary; a separate binary, so libcontainer
//! never lives in the long-running process) and, after the exit, `berth-shim-runtime delete`; the container's
//! init is the monitor's child. See `protocol` for the files and the socket.
//!
//! ```text
//! berthd ── berth-shim start ──exec──▶ berth-shim monitor (setsid, subreaper, poll loop) ──┬── berth-shim-runtime create
//!            (exits when ready)              │ pipes / pty master, control.sock             └── berth-shim-runtime delete
//!                                            └── container init (child: reaped, exit.json)
//! ```

pub mod atomic;
pub mod cgroup;
pub mod cli;
pub mod control;
pub mod error;
pub mod helper;
pub mod launcher;
pub mod logfile;
pub mod monitor;
pub mod protocol;
pub mod runtime;
pub mod spawn;
pub mod stdio;
pub mod timefmt;
