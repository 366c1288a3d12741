//! Reaching berthd: the socket from `--root`/`--run-dir` (or `BERTH_ROOT`/`BERTH_RUN_DIR`), and the embedded
//! default: when nothing answers, the CLI starts berthd itself (logging to `<run-dir>/berthd.log`) and waits for it,
//! so a newcomer needs no service manager.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_engine::client::Client;
use berth_engine::paths::Paths;

use super::GlobalArgs;

/// How long a freshly started berthd may take to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

pub fn paths(global: &GlobalArgs) -> Paths {
    Paths::resolve(global.root.as_deref(), global.run_dir.as_deref())
}

/// A client of a running berthd, starting one when none answers (unless `BERTH_NO_AUTOSTART` is set).
pub async fn connect(global: &GlobalArgs) -> Result<Client, String> {
    let paths = paths(global);
    let client = Client::connect_with_unix(&paths.engine_socket());
    if client.ping().await.is_ok() {
        return Ok(client);
    }
    if std::env::var_os("BERTH_NO_AUTOSTART").is_some() {
        return Err(format!(
            "error: berthd does not answer on {} (BERTH_NO_AUTOSTART is set, so berth will not start it)",
            paths.engine_socket().display()
        ));
    }
    start_berthd(&paths)?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if client.ping().await.is_ok() {
            return Ok(client);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "error: started berthd, but it does not answer on {} after {}s; see {}",
                paths.engine_socket().display(),
                START_TIMEOUT.as_secs(),
                paths.run_dir.join("berthd.log").display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// berthd beside this executable (a cargo build, an install), else the one on PATH.
fn berthd_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("berthd"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("berthd"))
}

fn start_berthd(paths: &Paths) -> Result<(), String> {
    std::fs::create_dir_all(&paths.run_dir)
        .map_err(|e| format!("error: cannot create {}: {e}", paths.run_dir.display()))?;
    let log_path = paths.run_dir.join("berthd.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("error: cannot open {}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| format!("error: {e}"))?;
    let binary = berthd_binary();
    Command::new(&binary)
        .arg("--root")
        .arg(&paths.root)
        .arg("--run-dir")
        .arg(&paths.run_dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        // Its own process group: a Ctrl-C meant for this command must not stop the daemon.
        .process_group(0)
        // fork+exec rather than posix_spawn, which leaves glibc's signals 32 and 33 ignored in the daemon and so
        // in every container it starts.
        .gid(nix::unistd::getgid().as_raw())
        .spawn()
        .map_err(|e| format!("error: cannot start {}: {e}", binary.display()))?;
    Ok(())
}
