//! `berth-shim start`: exec the monitor, relay its one line, exit. berthd waits for this short-lived process
//! only; the monitor, reparented when we exit, lives as long as the container.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode, Stdio};

use crate::atomic::{self, Durability};
use crate::cli::ContainerArgs;
use crate::protocol::{ErrorRecord, FailureStage, Ready, files};
use crate::spawn::fork_exec;

pub fn run(args: &ContainerArgs) -> ExitCode {
    let ready = launch(args).unwrap_or_else(|error| {
        let record = ErrorRecord { error, exit_code: 128, stage: FailureStage::Setup };
        let path = args.state_dir.join(files::ERROR);
        if !path.exists() {
            let _ = atomic::write_json(&path, &record, Durability::UntilReboot);
        }
        Ready::Failed(record)
    });
    let line = serde_json::to_string(&ready).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    match ready {
        Ready::Started { .. } => ExitCode::SUCCESS,
        Ready::Failed(_) => ExitCode::from(1),
    }
}

fn launch(args: &ContainerArgs) -> Result<Ready, String> {
    // Absolute paths in the monitor's command line: it is how a later start recognises a live shim of this dir.
    let mut args = args.clone();
    args.absolutize().map_err(|e| format!("failed to read the current directory: {e}"))?;
    std::fs::create_dir_all(&args.state_dir)
        .map_err(|e| format!("failed to create the state dir {}: {e}", args.state_dir.display()))?;
    // /proc/self/exe: the very binary running now, even if the file on disk was replaced by an upgrade.
    let mut cmd = Command::new("/proc/self/exe");
    let mut child = fork_exec(&mut cmd)
        .arg0("berth-shim")
        .arg("monitor")
        .args(args.to_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("failed to run the shim monitor: {e}"))?;
    let stdout = child.stdout.take().ok_or("the shim monitor has no stdout")?;
    let mut line = String::new();
    let read = BufReader::new(stdout).read_line(&mut line);
    match read {
        Ok(n) if n > 0 => {
            serde_json::from_str(line.trim()).map_err(|e| format!("bad line from the shim monitor {line:?}: {e}"))
        }
        _ => {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            Err(format!(
                "the shim monitor exited ({status}) before the container started; see {}",
                args.state_dir.join(files::SHIM_LOG).display()
            ))
        }
    }
}
