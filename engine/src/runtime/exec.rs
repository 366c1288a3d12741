//! Processes run in a running container: `docker exec` and health probes.
//!
//! # Design
//! berthd never forks from its threads. For each exec it writes the process as an OCI `process.json` and execs
//! `berth-shim-runtime exec` (beside berthd), a fresh single-threaded process that joins the container with
//! libcontainer's tenant builder (or `<runtime> exec` when the container runs under an OCI runtime binary), waits
//! for the process and exits with its status. The process's stdio is the helper's: pipes to berthd, or a pty
//! whose master the helper's runtime sends to a console socket berthd listens on (berthd then holds the master
//! for relaying and resizing).
//!
//! The process gets the container's process settings, as Docker gives an exec: capabilities (all of them when
//! the exec is privileged), rlimits, no_new_privileges, OOM score and env from the container's `config.json`, its
//! cwd and user unless the exec names others (a user is resolved against the container's own `/etc/passwd` and
//! `/etc/group`, like the init's), and the container's namespaces, cgroup and seccomp filter.
//!
//! Each exec has a small directory under `<run-dir>/x/` (process.json, pid, result.json, console.sock), removed
//! when it ends: the helper reports the process's host pid there (so a timed-out probe can be killed) and
//! whether the process ran at all (a missing command is 127, not executable 126, as Docker reports them).

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use oci_spec::runtime::{LinuxCapabilities, Process, Spec, UserBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::AsyncReadExt;

use super::lifecycle::Runtime;
use super::record::{ContainerError, ContainerRecord, Status};
use crate::container::spec::HostFacts;
use crate::container::user;

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is paused, unpause the container before exec")]
    Paused(String),
    #[error("no such exec instance: {0}")]
    NoSuchExec(String),
    #[error("exec instance {0} has already been started")]
    AlreadyStarted(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

type Result<T> = std::result::Result<T, ExecError>;

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> ExecError {
    let what = what.to_string();
    move |source| ExecError::Io { what, source }
}

/// How long the helper may take to hand over the pty master.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Docker's `ExecConfig` (`POST /containers/{id}/exec`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ExecConfig {
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub detach_keys: String,
    pub tty: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub cmd: Vec<String>,
    pub privileged: bool,
    pub user: String,
    pub working_dir: String,
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The process's stdio as berthd holds it.
pub enum ExecIo {
    Pipes {
        stdin: Option<tokio::process::ChildStdin>,
        stdout: Option<tokio::process::ChildStdout>,
        stderr: Option<tokio::process::ChildStderr>,
    },
    /// The pty master: read for output, write for input, resize.
    Pty(Arc<OwnedFd>),
}

/// A started exec: the helper process and its files.
pub struct Started {
    pub helper: tokio::process::Child,
    pub io: ExecIo,
    dir: PathBuf,
}

/// How an exec ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: i64,
    /// The process never ran: the runtime's message (Docker writes it to the client's stream).
    pub error: Option<String>,
}

impl Started {
    /// Where the helper reports the process's host pid.
    pub fn pid_path(&self) -> PathBuf {
        self.dir.join("pid")
    }

    /// The process's host pid, once the helper has reported it.
    pub fn pid(&self) -> Option<i32> {
        read_pid(&self.pid_path())
    }

    /// SIGKILL the process (and the helper, should it not have reported the pid yet).
    pub fn kill(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        } else {
            let _ = self.helper.start_kill();
        }
    }

    /// Wait for the helper, read its result, remove the exec's directory.
    pub async fn wait(mut self) -> Outcome {
        let status = self.helper.wait().await;
        let outcome = read_result(&self.dir.join("result.json")).unwrap_or_else(|| Outcome {
            // The helper died without a result (killed): what its status says.
            exit_code: status.ok().and_then(|s| s.code()).map_or(-1, i64::from),
            error: None,
        });
        let _ = std::fs::remove_dir_all(&self.dir);
        outcome
    }
}

/// A pid file's pid.
pub fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok().filter(|p: &i32| *p > 0)
}

fn read_result(path: &Path) -> Option<Outcome> {
    let v: Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    let exit_code = v.get("exit_code")?.as_i64()?;
    match v.get("type")?.as_str()? {
        "exited" => Some(Outcome { exit_code, error: None }),
        "failed" => Some(Outcome {
            exit_code,
            error: Some(v.get("error").and_then(Value::as_str).unwrap_or("exec failed").to_string()),
        }),
        _ => None,
    }
}

/// The container must be running (not paused) to exec in it.
pub fn check_running(record: &ContainerRecord) -> Result<()> {
    match record.state.status {
        Status::Running => Ok(()),
        Status::Paused => Err(ExecError::Paused(record.id.clone())),
        _ => Err(ExecError::NotRunning(record.id.clone())),
    }
}

/// Start `config` in the running container `record` (stdio as its Attach flags say).
pub async fn start(runtime: &Runtime, record: &ContainerRecord, config: &ExecConfig) -> Result<Started> {
    check_running(record)?;
    if config.cmd.is_empty() || config.cmd[0].is_empty() {
        return Err(ExecError::Invalid("no exec command specified".into()));
    }
    let container_dir = runtime.containers.container_dir(&record.id);
    let process = process_json(&container_dir, record, config)?;
    let dir = exec_dir(&runtime.paths.run_dir)?;
    let started = spawn_helper(runtime, record, config, &process, &dir).await;
    if started.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    started
}

/// A fresh `<run-dir>/x/<12 hex>` (short: the console socket's path must fit a sockaddr_un).
fn exec_dir(run_dir: &Path) -> Result<PathBuf> {
    let id = super::record::random_id()?;
    let dir = run_dir.join("x").join(&id[..12]);
    std::fs::create_dir_all(&dir).map_err(io(format!("create {}", dir.display())))?;
    Ok(dir)
}

async fn spawn_helper(
    runtime: &Runtime,
    record: &ContainerRecord,
    config: &ExecConfig,
    process: &Process,
    dir: &Path,
) -> Result<Started> {
    let process_path = dir.join("process.json");
    let bytes = serde_json::to_vec(process).map_err(|e| ExecError::Setup(format!("process.json: {e}")))?;
    std::fs::write(&process_path, bytes).map_err(io(format!("write {}", process_path.display())))?;
    let mut cmd = tokio::process::Command::new(helper_binary());
    // fork+exec rather than posix_spawn, which would leave the process glibc's signals 32 and 33 ignored.
    cmd.gid(nix::unistd::getgid().as_raw());
    cmd.arg("exec")
        .arg("--id")
        .arg(&record.id)
        .arg("--runtime-root")
        .arg(runtime.paths.run_dir.join("runc"))
        .arg("--process")
        .arg(&process_path)
        .arg("--pid-file")
        .arg(dir.join("pid"))
        .arg("--result")
        .arg(dir.join("result.json"));
    if let Some(bin) = runtime_binary(&runtime.containers.container_dir(&record.id)) {
        cmd.arg("--runtime").arg(bin);
    }
    cmd.kill_on_drop(false);
    if config.tty {
        let console = dir.join("console.sock");
        let listener = tokio::net::UnixListener::bind(&console).map_err(io(format!("bind {}", console.display())))?;
        cmd.arg("--console-socket").arg(&console);
        cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        let mut helper = cmd.spawn().map_err(io("run berth-shim-runtime"))?;
        let accepted = tokio::select! {
            a = listener.accept() => a.map(|(s, _)| s).map_err(io("accept the pty master")),
            _ = helper.wait() => Err(ExecError::Setup(String::new())),
            () = tokio::time::sleep(CONSOLE_TIMEOUT) => Err(ExecError::Setup("no pty from the runtime".into())),
        };
        let stream = match accepted {
            Ok(s) => s,
            // The helper ended before sending a pty: its result says why.
            Err(ExecError::Setup(m)) if m.is_empty() => {
                return Ok(Started {
                    helper,
                    io: ExecIo::Pipes { stdin: None, stdout: None, stderr: None },
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => {
                let _ = helper.start_kill();
                return Err(e);
            }
        };
        let master = receive_fd(stream).await?;
        return Ok(Started { helper, io: ExecIo::Pty(Arc::new(master)), dir: dir.to_path_buf() });
    }
    let pipe = |on: bool| if on { Stdio::piped() } else { Stdio::null() };
    cmd.stdin(pipe(config.attach_stdin)).stdout(pipe(config.attach_stdout)).stderr(pipe(config.attach_stderr));
    let mut helper = cmd.spawn().map_err(io("run berth-shim-runtime"))?;
    let io = ExecIo::Pipes { stdin: helper.stdin.take(), stdout: helper.stdout.take(), stderr: helper.stderr.take() };
    Ok(Started { helper, io, dir: dir.to_path_buf() })
}

/// The pty master the runtime sent over the console socket (SCM_RIGHTS; rustix gives it as an `OwnedFd`).
async fn receive_fd(stream: tokio::net::UnixStream) -> Result<OwnedFd> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    use std::io::IoSliceMut;
    use std::mem::MaybeUninit;
    let stream = stream.into_std().map_err(io("console socket"))?;
    stream.set_nonblocking(false).map_err(io("console socket"))?;
    stream.set_read_timeout(Some(CONSOLE_TIMEOUT)).map_err(io("console socket"))?;
    tokio::task::spawn_blocking(move || -> Result<OwnedFd> {
        let mut name = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        recvmsg(&stream, &mut [IoSliceMut::new(&mut name)], &mut control, RecvFlags::CMSG_CLOEXEC)
            .map_err(|e| ExecError::Io { what: "receive the pty master".into(), source: e.into() })?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = message
                && let Some(fd) = fds.next()
            {
                return Ok(fd);
            }
        }
        Err(ExecError::Setup("the runtime sent no pty master".into()))
    })
    .await
    .map_err(|e| ExecError::Setup(format!("receive the pty master: {e}")))?
}

/// Set the pty's window size.
pub fn resize(master: &OwnedFd, rows: u16, cols: u16) -> Result<()> {
    let size = rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    rustix::termios::tcsetwinsize(master, size).map_err(|e| ExecError::Io { what: "resize".into(), source: e.into() })
}

/// The OCI runtime binary the container's shim runs it with (`state.json`), if not libcontainer.
fn runtime_binary(container_dir: &Path) -> Option<PathBuf> {
    let state: Value =
        serde_json::from_slice(&std::fs::read(container_dir.join("shim").join("state.json")).ok()?).ok()?;
    let runtime = state.get("runtime")?.as_str()?;
    (runtime != "libcontainer" && !runtime.is_empty()).then(|| PathBuf::from(runtime))
}

/// berth-shim-runtime beside berthd (a cargo build, an install), else the one on PATH.
fn helper_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("berth-shim-runtime"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("berth-shim-runtime"))
}

/// The exec's process: the container's (from its bundle) with the exec's command, env, user, cwd and tty.
pub fn process_json(container_dir: &Path, record: &ContainerRecord, config: &ExecConfig) -> Result<Process> {
    let config_path = container_dir.join("bundle").join("config.json");
    let spec = Spec::load(&config_path).map_err(|e| ExecError::Setup(format!("{}: {e}", config_path.display())))?;
    let mut process = spec.process().clone().ok_or_else(|| ExecError::Setup("the container has no process".into()))?;
    process.set_args(Some(config.cmd.clone()));
    process.set_terminal(Some(config.tty));
    process.set_console_size(None);
    if !config.working_dir.is_empty() {
        if !config.working_dir.starts_with('/') {
            return Err(ExecError::Invalid(format!(
                "the working directory '{}' is invalid, it needs to be an absolute path",
                config.working_dir
            )));
        }
        process.set_cwd(PathBuf::from(&config.working_dir));
    }
    let mut home = None;
    if !config.user.is_empty() {
        let rootfs = container_dir.join("rootfs");
        let exec_user =
            user::resolve(&rootfs, &config.user, &group_add(record)).map_err(|e| ExecError::Invalid(e.to_string()))?;
        let u = UserBuilder::default()
            .uid(exec_user.uid)
            .gid(exec_user.gid)
            .additional_gids(exec_user.additional_gids.clone())
            .build()
            .map_err(|e| ExecError::Setup(format!("user: {e}")))?;
        process.set_user(u);
        home = Some(exec_user.home);
    }
    let env = exec_env(process.env().as_deref().unwrap_or_default(), &config.env, config.tty, home.as_deref());
    process.set_env(Some(env));
    if config.privileged {
        let all: oci_spec::runtime::Capabilities = all_capabilities().iter().copied().collect();
        let mut caps = LinuxCapabilities::default();
        caps.set_bounding(Some(all.clone()))
            .set_effective(Some(all.clone()))
            .set_permitted(Some(all))
            .set_inheritable(None)
            .set_ambient(None);
        process.set_capabilities(Some(caps));
    }
    Ok(process)
}

/// Docker's `GroupAdd` (kept in HostConfig's extra fields).
fn group_add(record: &ContainerRecord) -> Vec<String> {
    record
        .host_config
        .extra
        .get("GroupAdd")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// The container's env with the exec's variables replacing those of the same name (moby
/// `ReplaceOrAppendEnvValues`), `TERM=xterm` for a tty unless set, and `HOME` of the exec's user unless the exec
/// sets it.
pub fn exec_env(container: &[String], exec: &[String], tty: bool, home: Option<&str>) -> Vec<String> {
    let key = |e: &str| e.split_once('=').map_or(e, |(k, _)| k).to_owned();
    let mut env: Vec<String> = container.to_vec();
    let mut set = |value: String| {
        let k = key(&value);
        match env.iter().position(|e| key(e) == k) {
            Some(i) => env[i] = value,
            None => env.push(value),
        }
    };
    if tty && !exec.iter().any(|e| key(e) == "TERM") {
        set("TERM=xterm".into());
    }
    if let Some(h) = home
        && !exec.iter().any(|e| key(e) == "HOME")
    {
        set(format!("HOME={h}"));
    }
    for value in exec {
        if value.contains('=') {
            set(value.clone());
        }
    }
    // `KEY` alone unsets it, as for the container's env.
    let unset: Vec<&String> = exec.iter().filter(|e| !e.contains('=')).collect();
    env.retain(|e| !unset.iter().any(|u| key(e) == **u));
    env
}

/// Every capability this host has, for privileged execs (probed once).
fn all_capabilities() -> &'static [oci_spec::runtime::Capability] {
    static ALL: OnceLock<Vec<oci_spec::runtime::Capability>> = OnceLock::new();
    ALL.get_or_init(|| HostFacts::probe().capabilities)
}

/// The execs berthd knows, for `/exec/{id}/…` and the container's `ExecIDs`.
#[derive(Default)]
pub struct Execs {
    table: Mutex<HashMap<String, ExecEntry>>,
    /// Creation order, so the oldest finished execs are the ones forgotten.
    created: std::sync::atomic::AtomicU64,
}

#[derive(Debug, Clone)]
pub struct ExecEntry {
    pub id: String,
    pub container_id: String,
    pub config: ExecConfig,
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i64>,
    pub pid: i64,
    /// The pty master while a tty exec runs (resize).
    pub pty: Option<Arc<OwnedFd>>,
    /// Creation order.
    pub seq: u64,
}

/// Finished execs kept for inspection before the oldest are forgotten.
const KEPT_FINISHED: usize = 256;

impl Execs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecEntry>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn create(&self, container_id: &str, config: ExecConfig) -> Result<String> {
        let id = super::record::random_id()?;
        let seq = self.created.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut table = self.lock();
        let mut finished: Vec<(u64, String)> =
            table.values().filter(|e| e.started && !e.running).map(|e| (e.seq, e.id.clone())).collect();
        if finished.len() > KEPT_FINISHED {
            finished.sort_unstable();
            for (_, id) in finished.iter().take(finished.len() - KEPT_FINISHED) {
                table.remove(id);
            }
        }
        table.insert(
            id.clone(),
            ExecEntry {
                id: id.clone(),
                container_id: container_id.to_string(),
                config,
                started: false,
                running: false,
                exit_code: None,
                pid: 0,
                pty: None,
                seq,
            },
        );
        Ok(id)
    }

    pub fn get(&self, id: &str) -> Result<ExecEntry> {
        self.lock().get(id).cloned().ok_or_else(|| ExecError::NoSuchExec(id.to_string()))
    }

    pub fn update(&self, id: &str, f: impl FnOnce(&mut ExecEntry)) -> Result<ExecEntry> {
        let mut table = self.lock();
        let entry = table.get_mut(id).ok_or_else(|| ExecError::NoSuchExec(id.to_string()))?;
        f(entry);
        Ok(entry.clone())
    }

    /// Mark an exec started; an exec starts once.
    pub fn claim(&self, id: &str) -> Result<ExecEntry> {
        let mut table = self.lock();
        let entry = table.get_mut(id).ok_or_else(|| ExecError::NoSuchExec(id.to_string()))?;
        if entry.started {
            return Err(ExecError::AlreadyStarted(id.to_string()));
        }
        entry.started = true;
        entry.running = true;
        Ok(entry.clone())
    }

    /// The ids of a container's execs, oldest first is not promised (Docker does not either).
    pub fn ids_of(&self, container_id: &str) -> Vec<String> {
        self.lock().values().filter(|e| e.container_id == container_id).map(|e| e.id.clone()).collect()
    }

    /// Forget a container's execs (it was removed).
    pub fn forget_container(&self, container_id: &str) {
        self.lock().retain(|_, e| e.container_id != container_id);
    }
}

/// A probe's result: its exit code (-1 when it timed out or could not run) and its output (at most `max` bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub exit_code: i64,
    pub output: String,
    pub timed_out: bool,
}

/// Run `config` to its end with stdout and stderr captured together (health probes); killed after `timeout`.
pub async fn run_captured(
    runtime: &Runtime,
    record: &ContainerRecord,
    config: &ExecConfig,
    timeout: Duration,
    max: usize,
) -> Result<Captured> {
    let config =
        ExecConfig { attach_stdin: false, attach_stdout: true, attach_stderr: true, tty: false, ..config.clone() };
    let mut started = start(runtime, record, &config).await?;
    let (stdout, stderr) = match &mut started.io {
        ExecIo::Pipes { stdout, stderr, .. } => (stdout.take(), stderr.take()),
        ExecIo::Pty(_) => (None, None),
    };
    let output = Arc::new(Mutex::new(Vec::<u8>::new()));
    let readers: Vec<_> = [
        stdout.map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        stderr.map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut r| {
        let output = output.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = r.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut out = output.lock().unwrap_or_else(|e| e.into_inner());
                let room = max.saturating_sub(out.len());
                out.extend_from_slice(&buf[..n.min(room)]);
            }
        })
    })
    .collect();
    let waited = tokio::time::timeout(timeout, started.helper.wait()).await;
    let (timed_out, outcome) = match waited {
        Ok(_) => (false, started.wait().await),
        Err(_) => {
            started.kill();
            let _ = tokio::time::timeout(Duration::from_secs(10), started.helper.wait()).await;
            (true, started.wait().await)
        }
    };
    // Output still held open by a process the probe left behind is not waited for long.
    for r in readers {
        let abort = r.abort_handle();
        if tokio::time::timeout(Duration::from_secs(1), r).await.is_err() {
            abort.abort();
        }
    }
    let mut text = String::from_utf8_lossy(&output.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    if let Some(e) = &outcome.error {
        text.push_str(e);
    }
    Ok(Captured { exit_code: if timed_out { -1 } else { outcome.exit_code }, output: text, timed_out })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn exec_env_overrides_and_adds() {
        let container = strings(&["PATH=/bin", "HOME=/root", "A=1"]);
        let env = exec_env(&container, &strings(&["A=2", "B=3"]), false, None);
        assert_eq!(env, strings(&["PATH=/bin", "HOME=/root", "A=2", "B=3"]));
        let env = exec_env(&container, &strings(&["A"]), true, Some("/home/u"));
        assert_eq!(env, strings(&["PATH=/bin", "HOME=/home/u", "TERM=xterm"]));
        let env = exec_env(&container, &strings(&["HOME=/x", "TERM=dumb"]), true, Some("/home/u"));
        assert_eq!(env, strings(&["PATH=/bin", "HOME=/x", "A=1", "TERM=dumb"]));
    }

    #[test]
    fn exec_config_decodes_docker_json() -> std::result::Result<(), serde_json::Error> {
        let c: ExecConfig = serde_json::from_str(
            r#"{"AttachStdout":true,"Cmd":["ls","/"],"Env":null,"User":"1:2","WorkingDir":"/tmp","Tty":false}"#,
        )?;
        assert_eq!(c.cmd, strings(&["ls", "/"]));
        assert!(c.env.is_empty());
        assert_eq!(c.user, "1:2");
        assert!(c.attach_stdout && !c.attach_stdin);
        Ok(())
    }

    #[test]
    fn results_are_read() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let p = dir.path().join("result.json");
        assert_eq!(read_result(&p), None);
        std::fs::write(&p, r#"{"type":"exited","exit_code":3}"#)?;
        assert_eq!(read_result(&p), Some(Outcome { exit_code: 3, error: None }));
        std::fs::write(&p, r#"{"type":"failed","error":"not found","exit_code":127}"#)?;
        assert_eq!(read_result(&p), Some(Outcome { exit_code: 127, error: Some("not found".into()) }));
        Ok(())
    }

    #[test]
    fn the_oldest_finished_execs_are_forgotten() -> Result<()> {
        let execs = Execs::default();
        let mut ids = Vec::new();
        for _ in 0..KEPT_FINISHED + 2 {
            let id = execs.create("c1", ExecConfig::default())?;
            execs.claim(&id)?;
            execs.update(&id, |e| e.running = false)?;
            ids.push(id);
        }
        let running = execs.create("c1", ExecConfig::default())?;
        execs.claim(&running)?;
        execs.create("c1", ExecConfig::default())?;
        assert!(execs.get(&ids[0]).is_err() && execs.get(&ids[1]).is_err());
        assert!(execs.get(&ids[2]).is_ok() && execs.get(&running).is_ok());
        Ok(())
    }

    #[test]
    fn execs_start_once() -> Result<()> {
        let execs = Execs::default();
        let id = execs.create("c1", ExecConfig::default())?;
        assert_eq!(execs.ids_of("c1"), vec![id.clone()]);
        execs.claim(&id)?;
        assert!(matches!(execs.claim(&id), Err(ExecError::AlreadyStarted(_))));
        assert!(matches!(execs.get("nope"), Err(ExecError::NoSuchExec(_))));
        execs.forget_container("c1");
        assert!(execs.ids_of("c1").is_empty());
        Ok(())
    }
}
