//! Create and start with an OCI runtime binary (crun, runc): `<bin> --root R --log=… --log-format=json run
//! --detach --bundle B --pid-file P [--console-socket S] ID`. Its errors come from its JSON log.

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Command;

use super::failed;
use crate::cli::{CreateArgs, DeleteArgs};
use crate::protocol::{CreateResult, ErrorRecord, FailureStage, files};
use crate::spawn::fork_exec;

pub(super) fn create(bin: &Path, args: &CreateArgs) -> CreateResult {
    let log = args.state_dir.join(files::RUNTIME_LOG);
    let pid_file = args.state_dir.join(files::RUNTIME_PID);
    let _ = fs::remove_file(&pid_file);
    let _ = fs::remove_file(&log);
    let mut cmd = Command::new(bin);
    fork_exec(&mut cmd)
        .arg("--root")
        .arg(&args.runtime_root)
        .arg(format!("--log={}", log.display()))
        .arg("--log-format=json")
        .arg("run")
        .arg("--detach")
        .arg("--bundle")
        .arg(&args.bundle)
        .arg("--pid-file")
        .arg(&pid_file);
    if let Some(cs) = &args.console_socket {
        cmd.arg("--console-socket").arg(cs);
    }
    cmd.arg(&args.id);
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) => {
            return CreateResult::Failed(ErrorRecord {
                error: format!("failed to run {}: {e}", bin.display()),
                exit_code: 128,
                stage: FailureStage::Setup,
            });
        }
    };
    if !status.success() {
        let how = match (status.code(), status.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (_, Some(sig)) => format!("was killed by signal {sig}"),
            _ => status.to_string(),
        };
        let message = last_error(&log).unwrap_or_else(|| format!("{} {how}", bin.display()));
        return failed(FailureStage::Create, message);
    }
    let _ = fs::remove_file(&log);
    match fs::read_to_string(&pid_file).map(|t| t.trim().parse::<i32>()) {
        Ok(Ok(init_pid)) => CreateResult::Started { init_pid },
        _ => CreateResult::Failed(ErrorRecord {
            error: format!("{} left no pid in {}", bin.display(), pid_file.display()),
            exit_code: 128,
            stage: FailureStage::Start,
        }),
    }
}

pub(super) fn delete(bin: &Path, args: &DeleteArgs) -> Result<(), String> {
    let out = fork_exec(&mut Command::new(bin))
        .arg("--root")
        .arg(&args.runtime_root)
        .args(["delete", "--force"])
        .arg(&args.id)
        .output()
        .map_err(|e| format!("failed to run {}: {e}", bin.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{} delete {}: {}", bin.display(), args.id, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The last error a runtime binary logged (crun and runc write JSON lines with `msg` and `level`).
pub(super) fn last_error(log: &Path) -> Option<String> {
    let text = fs::read_to_string(log).ok()?;
    let mut last = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(v) => {
                let level = v.get("level").and_then(|l| l.as_str()).unwrap_or("error");
                if level == "error"
                    && let Some(msg) = v.get("msg").and_then(|m| m.as_str())
                {
                    last = Some(msg.to_string());
                }
            }
            Err(_) => last = Some(line.to_string()),
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_error_of_a_json_log() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("runtime.log");
        fs::write(
            &log,
            "{\"msg\":\"setting up\",\"level\":\"debug\"}\n{\"msg\":\"executable file `nope` not found in $PATH: No such file or directory\",\"level\":\"error\"}\n",
        )?;
        let msg = last_error(&log).unwrap_or_default();
        assert!(msg.contains("not found in $PATH"), "{msg}");
        Ok(())
    }
}
