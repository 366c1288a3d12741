//! `berth-shim-runtime`: the helper the monitor runs to create and to delete its container.
//!
//! A separate binary in a fresh process, for three reasons: libcontainer's code and working set (and its clones)
//! never live in the long-running monitor, so the monitor stays small; the signal state the container inherits
//! is reset here (the monitor blocks SIGCHLD and the termination signals for its signalfd, and Rust ignores
//! SIGPIPE; a mask and an ignored signal both survive fork and execve); and a runtime's failures stay out of the
//! monitor. The container init ends up the monitor's child either way (libcontainer `as_sibling`; a runtime
//! binary's detached init is reparented to the monitor, a child subreaper).

mod binary;
pub mod exec;
mod exec_binary;
#[cfg(feature = "libcontainer")]
mod exec_libcontainer;
#[cfg(feature = "libcontainer")]
mod libcontainer;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use nix::sys::signal::SigSet;

use crate::atomic::{self, Durability};
use crate::cli::{CreateArgs, DeleteArgs, ExecArgs};
use crate::error::chain;
use crate::protocol::{CreateResult, ErrorRecord, FailureStage, files};

/// `create`: the outcome for the container is in `<state dir>/create.json`; `Err` only when that file could not be
/// written.
pub fn create(args: &CreateArgs) -> Result<(), String> {
    reset_signals();
    let result = match &args.runtime {
        Some(bin) => binary::create(bin, args),
        None => with_libcontainer::create(args),
    };
    atomic::write_json(&args.state_dir.join(files::CREATE_RESULT), &result, Durability::UntilReboot)
        .map_err(|e| chain(&e))
}

/// `delete`: remove the runtime state of an exited container.
pub fn delete(args: &DeleteArgs) -> Result<(), String> {
    reset_signals();
    match &args.runtime {
        Some(bin) => binary::delete(bin, args),
        None => with_libcontainer::delete(args),
    }
}

/// `exec`: run a process in a running container and wait for it (see [`exec`]); its exit status.
pub fn exec_in(args: &ExecArgs) -> Result<i32, String> {
    reset_signals();
    exec::exec(args).map(|r| r.exit_code())
}

/// What the container (and a runtime binary or hook) should start with: no blocked signals, every standard
/// signal at its default.
fn reset_signals() {
    let _ = SigSet::empty().thread_set_mask();
    // An ignored signal survives execve: Rust ignores SIGPIPE at startup, and a berthd started under `nohup` (or
    // by anything that ignores SIGHUP, SIGINT, SIGQUIT) would hand that on to every container. A caught signal is
    // reset to default by execve, so catching each one here gives the container the defaults.
    use signal_hook::consts::*;
    for sig in [SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGALRM, SIGTERM, SIGUSR1, SIGUSR2, SIGTSTP, SIGTTIN, SIGTTOU] {
        let _ = signal_hook::flag::register(sig, Arc::new(AtomicBool::new(false)));
    }
}

#[cfg(feature = "libcontainer")]
mod with_libcontainer {
    pub(super) use super::exec_libcontainer::exec;
    pub(super) use super::libcontainer::{create, delete};
}

#[cfg(not(feature = "libcontainer"))]
mod with_libcontainer {
    use super::*;

    const MISSING: &str = "berth-shim-runtime was built without libcontainer; pass --runtime";

    pub(super) fn create(_args: &CreateArgs) -> CreateResult {
        CreateResult::Failed(ErrorRecord { error: MISSING.into(), exit_code: 128, stage: FailureStage::Setup })
    }

    pub(super) fn delete(_args: &DeleteArgs) -> Result<(), String> {
        Err(MISSING.into())
    }

    pub(super) fn exec(_args: &ExecArgs) -> Result<nix::unistd::Pid, String> {
        Err(MISSING.into())
    }
}

/// A failure of the container, classified for its exit code.
fn failed(stage: FailureStage, message: String) -> CreateResult {
    CreateResult::Failed(ErrorRecord::classify(stage, message))
}
