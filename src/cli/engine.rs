//! Reaching berthd: the socket from `--root`/`--run-dir` (or `BERTH_ROOT`/`BERTH_RUN_DIR`), and the embedded
//! default: when nothing answers, the CLI starts berthd itself (logging to `<run-dir>/berthd.log`) and waits for it,
//! so a newcomer needs no service manager. berth-netd is started the same way (`<run-dir>/netd.log`), first, so
//! berthd finds it when it starts containers.

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
    let autostart = std::env::var_os("BERTH_NO_AUTOSTART").is_none();
    if autostart {
        ensure_netd(&paths).await?;
    }
    if client.ping().await.is_ok() {
        return Ok(client);
    }
    if !autostart {
        return Err(format!(
            "error: berthd does not answer on {} (BERTH_NO_AUTOSTART is set, so berth will not start it)",
            paths.engine_socket().display()
        ));
    }
    start_daemon(&paths, &berthd_binary(), "berthd")?;
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

fn berthd_binary() -> PathBuf {
    beside_me("berthd")
}

/// berth-netd answering on `<run-dir>/netd.sock`, started when it does not.
async fn ensure_netd(paths: &Paths) -> Result<(), String> {
    use berth_engine::network::berth_netd::client::Client as NetdClient;
    let netd = NetdClient::connect_with_unix(&paths.netd_socket());
    if netd.ping().await.is_ok() {
        return Ok(());
    }
    let binary = beside_me("berth-netd");
    start_daemon(paths, &binary, "netd")?;
    let deadline = Instant::now() + START_TIMEOUT;
    while netd.ping().await.is_err() {
        if Instant::now() > deadline {
            return Err(format!(
                "error: started {}, but it does not answer on {} after {}s; see {}",
                binary.display(),
                paths.netd_socket().display(),
                START_TIMEOUT.as_secs(),
                paths.run_dir.join("netd.log").display()
            ));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(())
}

/// A daemon beside this executable (a cargo build, an install), else the one on PATH.
fn beside_me(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(name))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Start `binary --root … --run-dir …` in the background, logging to `<run-dir>/<log>.log`.
fn start_daemon(paths: &Paths, binary: &std::path::Path, log: &str) -> Result<(), String> {
    std::fs::create_dir_all(&paths.run_dir)
        .map_err(|e| format!("error: cannot create {}: {e}", paths.run_dir.display()))?;
    let log_path = paths.run_dir.join(format!("{log}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("error: cannot open {}: {e}", log_path.display()))?;
    let log2 = log.try_clone().map_err(|e| format!("error: {e}"))?;
    Command::new(binary)
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
