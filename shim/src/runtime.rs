//! Creating and deleting the container: with youki's libcontainer (the default) or with an OCI runtime binary
//! (`--runtime crun`), both through the `berth-shim-runtime` helper, a separate binary so that the long-lived
//! monitor maps none of libcontainer (measured: 4.9 MB RSS for a monitor in one binary with libcontainer, 2.9 MB
//! apart, of which the private part fell from 720 kB to 280 kB: the PIE relocations of a big binary dirty its
//! whole `.data.rel.ro`).
//!
//! # Expected flow
//! The monitor calls [`create`] with the container's stdio; the container init ends up the monitor's child
//! (libcontainer: `as_sibling`, the helper's clones take the monitor as parent; binary: the monitor is a child
//! subreaper and the runtime's detached init is reparented to it). [`delete`] runs after the init was reaped.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};

use std::process::Command;

use crate::error::{Result, ShimError};
use crate::protocol::{CreateResult, files};
use crate::spawn::fork_exec;
use crate::stdio::ChildStdio;

/// Which runtime creates the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Runtime {
    Libcontainer,
    Binary(PathBuf),
}

impl Runtime {
    pub fn name(&self) -> String {
        match self {
            Runtime::Libcontainer => "libcontainer".to_string(),
            Runtime::Binary(p) => p.display().to_string(),
        }
    }
}

/// What to create.
pub struct CreateSpec<'a> {
    pub id: &'a str,
    pub bundle: &'a Path,
    pub runtime_root: &'a Path,
    pub state_dir: &'a Path,
    pub console_socket: Option<&'a Path>,
    /// The helper binary; `None`: `berth-shim-runtime` beside the running binary.
    pub helper: Option<&'a Path>,
}

pub const HELPER_BINARY: &str = "berth-shim-runtime";

/// `berth-shim-runtime` in the directory of the running binary.
pub fn default_helper() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    exe.with_file_name(HELPER_BINARY)
}

/// Create and start the container through the helper (`berth-shim-runtime create`), which runs libcontainer or
/// the runtime binary. Failures of the container (spec, executable, namespaces) come back as
/// `CreateResult::Failed`; `Err` is the shim's own trouble (could not run the helper at all).
pub fn create(runtime: &Runtime, spec: &CreateSpec<'_>, stdio: ChildStdio) -> Result<CreateResult> {
    let helper = spec.helper.map(Path::to_path_buf).unwrap_or_else(default_helper);
    let result_path = spec.state_dir.join(files::CREATE_RESULT);
    remove_if_exists(&result_path)?;
    let status = {
        // The Command owns the parent's copies of the container's pipe ends: it must be dropped right after the
        // helper exits, or the shim would never see EOF on the container's output.
        let mut cmd = Command::new(&helper);
        fork_exec(&mut cmd)
            .arg("create")
            .arg("--id")
            .arg(spec.id)
            .arg("--bundle")
            .arg(spec.bundle)
            .arg("--runtime-root")
            .arg(spec.runtime_root)
            .arg("--state-dir")
            .arg(spec.state_dir)
            .current_dir(spec.state_dir)
            .stdin(stdio.stdin)
            .stdout(stdio.stdout)
            .stderr(stdio.stderr);
        if let Runtime::Binary(bin) = runtime {
            cmd.arg("--runtime").arg(bin);
        }
        if let Some(cs) = spec.console_socket {
            cmd.arg("--console-socket").arg(cs);
        }
        cmd.status().map_err(|source| ShimError::Spawn { program: helper.display().to_string(), source })?
    };
    let text = match fs::read(&result_path) {
        Ok(t) => t,
        Err(_) => return Err(ShimError::CreatorLost { status: describe(status), path: result_path }),
    };
    let _ = fs::remove_file(&result_path);
    serde_json::from_slice(&text).map_err(ShimError::json(result_path.display().to_string()))
}

/// Delete the container's runtime state (cgroup, runtime state dir) after its init exited, through the helper.
pub fn delete(
    runtime: &Runtime,
    id: &str,
    runtime_root: &Path,
    helper: Option<&Path>,
) -> std::result::Result<(), String> {
    let helper = helper.map(Path::to_path_buf).unwrap_or_else(default_helper);
    let mut cmd = Command::new(&helper);
    fork_exec(&mut cmd).arg("delete").arg("--id").arg(id).arg("--runtime-root").arg(runtime_root);
    if let Runtime::Binary(bin) = runtime {
        cmd.arg("--runtime").arg(bin);
    }
    let out = cmd.output().map_err(|e| format!("failed to run {}: {e}", helper.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(format!("delete {id} ({}): {}", describe(out.status), stderr.trim()))
    }
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(ShimError::io("remove stale", path)(e)),
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => status.to_string(),
    }
}
