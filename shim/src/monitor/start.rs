//! From the launcher's exec to a running container: the steps, in order, over the pieces they make.

use std::fs::{self, File};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use serde::Deserialize;

use super::{Monitor, Output, shimlog};
use crate::atomic::{self, Durability};
use crate::cgroup::ContainerCgroup;
use crate::cli::ContainerArgs;
use crate::control::ControlServer;
use crate::error::{ShimError, chain};
use crate::logfile::{JsonLog, LineSplitter, Rotation, Stream};
use crate::protocol::{CreateResult, ErrorRecord, FailureStage, ShimState, files};
use crate::runtime::{self, CreateSpec, Runtime};
use crate::stdio::{self, set_nonblocking};
use crate::timefmt;

/// How long the runtime may take to hand over the pty master after the container started.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Run the start-up steps. On failure the returned record is already in `error.json`.
pub(super) fn start(mut args: ContainerArgs, foreground: bool) -> Result<Monitor, ErrorRecord> {
    let setup_failed = |e: ShimError| ErrorRecord { error: chain(&e), exit_code: 128, stage: FailureStage::Setup };
    if let Err(e) = args.absolutize() {
        return Err(setup_failed(ShimError::io("read", "the current directory")(e)));
    }
    let state_dir = args.state_dir.clone();
    let record = |r: ErrorRecord| {
        if let Err(e) = atomic::write_json(&state_dir.join(files::ERROR), &r, Durability::UntilReboot) {
            shimlog!("cannot write error.json: {}", chain(&e));
        }
        shimlog!("container {} failed: {}", args.id, r.error);
        r
    };
    // Another live shim owns this state dir: say so, but leave its files (error.json, shim.log) alone.
    if let Some(other) = live_shim(&args.state_dir) {
        let message = format!("shim {other} still runs for the container of {}", args.state_dir.display());
        return Err(ErrorRecord { error: message, exit_code: 128, stage: FailureStage::Setup });
    }
    detach(&args.state_dir, foreground).map_err(setup_failed).map_err(record)?;
    let shim_pid = std::process::id() as i32;
    if crate::spawn::glibc_signals_ignored() {
        shimlog!(
            "warning: started with signals 32 and 33 ignored (spawned with posix_spawn); the container inherits that. \
             Spawn berth-shim with fork+exec (berth_shim::spawn::fork_exec)"
        );
    }
    prepare_state_dir(&args.state_dir, shim_pid).map_err(setup_failed).map_err(record)?;
    let signals = route_signals().map_err(setup_failed).map_err(record)?;
    let facts = read_spec(&args.bundle).map_err(setup_failed).map_err(record)?;
    let tty = facts.tty;
    let control = ControlServer::bind(&args.control_socket_path()).map_err(setup_failed).map_err(record)?;
    let rotation = Rotation { max_size: args.log_max_size, max_file: args.log_max_file };
    let log = match &args.log_path {
        Some(p) => Some(JsonLog::open(p, rotation).map_err(setup_failed).map_err(record)?),
        None => None,
    };
    let (child_stdio, shim_stdio) = stdio::setup(&args.state_dir, &args.console_socket_path(), tty, args.stdin)
        .map_err(setup_failed)
        .map_err(record)?;
    let runtime = args.runtime.clone().map(Runtime::Binary).unwrap_or(Runtime::Libcontainer);

    let console_path = shim_stdio.console.as_ref().map(|c| c.path.clone());
    let spec = CreateSpec {
        id: &args.id,
        bundle: &args.bundle,
        runtime_root: &args.runtime_root,
        state_dir: &args.state_dir,
        console_socket: console_path.as_deref(),
        helper: args.helper.as_deref(),
    };
    let created = runtime::create(&runtime, &spec, child_stdio);
    let init_pid = match created {
        Ok(CreateResult::Started { init_pid }) => init_pid,
        Ok(CreateResult::Failed(r)) => return Err(record(fail_cleanly(&args, &runtime, control, r, false))),
        Err(e) => {
            // The shim's own trouble (could not run the helper or the runtime binary), not the container's.
            let r = ErrorRecord { error: chain(&e), exit_code: 128, stage: FailureStage::Create };
            return Err(record(fail_cleanly(&args, &runtime, control, r, false)));
        }
    };
    let started_at = timefmt::now();
    shimlog!("container {} started with {}: init pid {init_pid}", args.id, runtime.name());

    let mut outputs: Vec<Output> = shim_stdio
        .outputs
        .into_iter()
        .map(|(stream, fd)| Output { stream, fd, splitter: LineSplitter::default(), open: true })
        .collect();
    if let Some(console) = shim_stdio.console {
        let master = console.receive(CONSOLE_TIMEOUT).and_then(|fd| set_nonblocking(&fd).map(|()| fd));
        match master {
            Ok(fd) => {
                outputs.push(Output { stream: Stream::Stdout, fd, splitter: LineSplitter::default(), open: true })
            }
            Err(e) => {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(init_pid), Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(init_pid), None);
                let r = ErrorRecord { error: chain(&e), exit_code: 128, stage: FailureStage::Start };
                return Err(record(fail_cleanly(&args, &runtime, control, r, true)));
            }
        }
    }
    // The spec's absolute cgroupsPath is where the runtime put it; otherwise ask the kernel while the init runs
    // (a fast container may already be gone, and its counter with it).
    let cgroup = ContainerCgroup::for_container(facts.cgroups_path.as_deref(), init_pid);
    let oom_baseline = cgroup.oom_kills().unwrap_or(0);

    let state = ShimState {
        id: args.id.clone(),
        shim_pid,
        init_pid,
        started_at: started_at.clone(),
        runtime: runtime.name(),
        tty,
        stdin: args.stdin,
        cgroup: cgroup.path.clone(),
    };
    for (name, result) in [
        (files::STATE, atomic::write_json(&args.state_dir.join(files::STATE), &state, Durability::UntilReboot)),
        (
            files::INIT_PID,
            atomic::write(
                &args.state_dir.join(files::INIT_PID),
                format!("{init_pid}\n").as_bytes(),
                Durability::UntilReboot,
            ),
        ),
    ] {
        // The container runs; berthd can still ask the control socket. Not worth killing it over.
        if let Err(e) = result {
            shimlog!("cannot write {name}: {}", chain(&e));
        }
    }
    Ok(Monitor {
        args,
        runtime,
        tty,
        shim_pid,
        init_pid,
        started_at,
        signals,
        control,
        log,
        log_failed: false,
        outputs,
        stdin_fifo: shim_stdio.stdin_fifo,
        relay: Vec::new(),
        cgroup,
        oom_baseline,
        exit: None,
    })
}

/// New session (so berthd's terminal and process group signals never reach us), stdin from /dev/null, stderr
/// to `shim.log`. Stdout stays: it carries the one line for the launcher.
fn detach(state_dir: &Path, foreground: bool) -> Result<(), ShimError> {
    fs::create_dir_all(state_dir).map_err(ShimError::io("create", state_dir))?;
    if foreground {
        return Ok(());
    }
    nix::unistd::setsid().map_err(ShimError::sys("start a new session"))?;
    let null = File::open("/dev/null").map_err(ShimError::io("open", "/dev/null"))?;
    nix::unistd::dup2_stdin(&null).map_err(ShimError::sys("redirect stdin"))?;
    let log_path = state_dir.join(files::SHIM_LOG);
    let log = File::options().append(true).create(true).open(&log_path).map_err(ShimError::io("open", &log_path))?;
    nix::unistd::dup2_stderr(&log).map_err(ShimError::sys("redirect stderr"))?;
    Ok(())
}

/// `shim.pid` first; records of an earlier run of this container go.
fn prepare_state_dir(state_dir: &Path, shim_pid: i32) -> Result<(), ShimError> {
    for stale in [files::STATE, files::INIT_PID, files::ERROR, files::EXIT] {
        let path = state_dir.join(stale);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ShimError::io("remove stale", path)(e)),
        }
    }
    atomic::write(&state_dir.join(files::SHIM_PID), format!("{shim_pid}\n").as_bytes(), Durability::UntilReboot)?;
    // Orphans of the container (and a runtime binary's detached init) are reparented to us, not to pid 1.
    nix::sys::prctl::set_child_subreaper(true).map_err(ShimError::sys("become a child subreaper"))
}

/// The pid in `shim.pid`, if that process is alive and is the berth-shim of this state dir (not a recycled pid).
fn live_shim(state_dir: &Path) -> Option<i32> {
    let pid: i32 = fs::read_to_string(state_dir.join(files::SHIM_PID)).ok()?.trim().parse().ok()?;
    if pid == std::process::id() as i32 {
        return None;
    }
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let is_shim = args.first().is_some_and(|a| a.ends_with(b"berth-shim"));
    let same_dir =
        args.windows(2).any(|w| w[0] == b"--state-dir" && Path::new(std::ffi::OsStr::from_bytes(w[1])) == state_dir);
    (is_shim && same_dir).then_some(pid)
}

/// SIGCHLD (and the termination signals, which the shim ignores: it ends when its container does) are blocked
/// and read from a signalfd in the poll loop. Blocked before the container exists, so no exit is missed.
fn route_signals() -> Result<SignalFd, ShimError> {
    let mut mask = SigSet::empty();
    for sig in [Signal::SIGCHLD, Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        mask.add(sig);
    }
    mask.thread_block().map_err(ShimError::sys("block signals"))?;
    SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(ShimError::sys("make a signalfd"))
}

/// What the monitor reads of the bundle's config.json (the rest is the runtime's to validate).
struct SpecFacts {
    tty: bool,
    cgroups_path: Option<String>,
}

fn read_spec(bundle: &Path) -> Result<SpecFacts, ShimError> {
    #[derive(Deserialize)]
    struct Spec {
        process: Option<Process>,
        linux: Option<Linux>,
    }
    #[derive(Deserialize)]
    struct Process {
        #[serde(default)]
        terminal: bool,
    }
    #[derive(Deserialize)]
    struct Linux {
        #[serde(rename = "cgroupsPath")]
        cgroups_path: Option<String>,
    }
    let path = bundle.join("config.json");
    let text = fs::read(&path).map_err(ShimError::io("read", &path))?;
    let spec: Spec =
        serde_json::from_slice(&text).map_err(|e| ShimError::Spec { path: path.clone(), message: e.to_string() })?;
    Ok(SpecFacts {
        tty: spec.process.is_some_and(|p| p.terminal),
        cgroups_path: spec.linux.and_then(|l| l.cgroups_path),
    })
}

/// The container did not start: leave nothing behind (sockets, FIFO, and the runtime state if it was ours: a
/// failed create is cleaned up by the runtime itself, and "already exists" is somebody else's container).
fn fail_cleanly(
    args: &ContainerArgs,
    runtime: &Runtime,
    control: ControlServer,
    record: ErrorRecord,
    created: bool,
) -> ErrorRecord {
    if created && let Err(e) = runtime::delete(runtime, &args.id, &args.runtime_root, args.helper.as_deref()) {
        shimlog!("cleanup after the failed start: {e}");
    }
    let _ = fs::remove_file(control.path());
    drop(control);
    let _ = fs::remove_file(args.state_dir.join(files::STDIN_FIFO));
    let _ = fs::remove_file(args.console_socket_path());
    // Reap what the runtime left us (libcontainer's intermediate process is our child).
    while let Ok(status) = nix::sys::wait::waitpid(None, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
        if status == nix::sys::wait::WaitStatus::StillAlive {
            break;
        }
    }
    record
}
