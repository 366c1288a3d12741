//! `exec` with youki's libcontainer: the tenant builder joins the running container's namespaces and cgroup
//! with the process from `process.json`.
//!
//! libcontainer 0.7 rebuilds the tenant's `linux` section from namespaces and the cgroup path only, so the
//! container's seccomp filter would not reach the exec'd process. Docker gives an exec the container's filter;
//! [`ContainerSeccomp`] loads it from the container's own `config.json` right before `execve`, after the user,
//! capabilities and no_new_privileges are in place (as runc does when no_new_privileges is set, which is
//! berth's default). Without no_new_privileges a non-root exec cannot load a filter and fails rather than run
//! unconfined.

use std::path::Path;

use libcontainer::container::Container;
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::oci_spec::runtime::{LinuxSeccomp, Spec};
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{Executor, ExecutorError, ExecutorValidationError};
use nix::unistd::Pid;

use crate::cli::ExecArgs;
use crate::error::chain;

/// Start the process in the container; its host pid.
pub(super) fn exec(args: &ExecArgs) -> Result<Pid, String> {
    let container_dir = args.runtime_root.join(&args.id);
    let container =
        Container::load(container_dir).map_err(|e| format!("container {} is not running: {}", args.id, chain(&e)))?;
    let config = container.bundle().join("config.json");
    let spec = Spec::load(&config).map_err(|e| format!("read {}: {}", config.display(), chain(&e)))?;
    let seccomp = spec.linux().as_ref().and_then(|l| l.seccomp().clone());
    let init_pid = container.pid().map(|p| p.as_raw());
    let tty = args.console_socket.is_some();
    ContainerBuilder::new(args.id.clone(), SyscallType::Linux)
        .with_root_path(&args.runtime_root)
        .map_err(|e| chain(&e))?
        .with_console_socket(args.console_socket.as_deref().map(Path::to_path_buf))
        .with_executor(ContainerSeccomp { profile: seccomp })
        .as_tenant()
        .with_process(Some(&args.process))
        // libcontainer wants "detached" exactly when a console socket carries the tty; the process is our
        // child either way and we wait for it.
        .with_detach(tty)
        .build()
        // libcontainer's nix is another version: hand the pid over as a number.
        .map(|pid| Pid::from_raw(pid.as_raw()))
        .map_err(|e| explain(&chain(&e), args, init_pid))
}

/// libcontainer reports a failed chdir as a bare "failed to unix syscall"; say what runc (and so Docker) says
/// when the working directory is missing in the container (which Docker reports as 127).
fn explain(message: &str, args: &ExecArgs, init_pid: Option<i32>) -> String {
    let cwd = std::fs::read(&args.process)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|p| p.get("cwd").and_then(|c| c.as_str()).map(str::to_owned));
    if let (Some(cwd), Some(pid)) = (cwd, init_pid) {
        // Through the init's root: absolute symlinks inside resolve against our root, so a missing directory is
        // only trusted as the explanation of a failure that already happened.
        let inside = Path::new("/proc").join(pid.to_string()).join("root").join(cwd.trim_start_matches('/'));
        if !inside.is_dir() {
            return format!("chdir to cwd ({cwd:?}) set in config.json failed: no such file or directory ({message})");
        }
    }
    message.to_string()
}

/// The default executor, with the container's seccomp filter loaded first.
#[derive(Clone)]
struct ContainerSeccomp {
    profile: Option<LinuxSeccomp>,
}

impl Executor for ContainerSeccomp {
    fn exec(&self, spec: &Spec) -> Result<(), ExecutorError> {
        if let Some(profile) = &self.profile {
            if libcontainer::seccomp::is_notify(profile) {
                return Err(ExecutorError::Other(
                    "seccomp profiles with a notify action cannot be used by exec".into(),
                ));
            }
            libcontainer::seccomp::initialize_seccomp(profile)
                .map_err(|e| ExecutorError::Other(format!("load the container's seccomp filter: {}", chain(&e))))?;
        }
        DefaultExecutor {}.exec(spec)
    }

    fn validate(&self, spec: &Spec) -> Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec)
    }
}
