//! Running containers: start (rootfs, spec, shim), wait, kill, stop, and reading the exit the shim recorded.
//!
//! # Expected flow
//! `start`: unpack the image's layers once, mount the overlay rootfs at `containers/<id>/rootfs`, write the OCI
//! bundle (`containers/<id>/bundle/config.json`), then exec `berth-shim start`, which answers with one JSON line
//! once the container runs (or why it could not). The shim outlives berthd; berthd talks to it over
//! `containers/<id>/shim/control.sock` (line JSON: `kill`, `wait`, `state`) and reads `exit.json` when it is gone.
//!
//! # Guarantees
//! A failure before the container runs leaves it `created` with Docker's exit code (127 command not found, 126
//! not executable) and its rootfs unmounted. An exit is recorded once, whoever notices it first.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::config::HostConfig;
use super::record::{ContainerRecord, Containers, Status};
use crate::container::spec::{self, ContainerSpecInput, HostFacts, Resources};
use crate::image::store::ImageStore;
use crate::image::{Digest, rootfs};
use crate::paths::Paths;
use crate::time::now_rfc3339;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Container(#[from] super::record::ContainerError),
    #[error("container {0} is not running")]
    NotRunning(String),
    #[error("container {0} is already running")]
    AlreadyRunning(String),
    #[error("container {0} is already paused")]
    AlreadyPaused(String),
    #[error("container {0} is not paused")]
    NotPaused(String),
    #[error(transparent)]
    Cgroup(#[from] super::cgroups::CgroupError),
    /// The container could not be started; it stays `created` with `exit_code`.
    #[error("{message}")]
    StartFailed { message: String, exit_code: i64 },
    #[error("{0}")]
    Setup(String),
}

type Result<T> = std::result::Result<T, RunError>;

/// How long `berth-shim start` may take to say whether the container runs.
const SHIM_START_TIMEOUT: Duration = Duration::from_secs(60);

fn setup(what: &str, e: impl std::fmt::Display) -> RunError {
    RunError::Setup(format!("{what}: {e}"))
}

pub struct Runtime {
    pub paths: Paths,
    pub images: Arc<ImageStore>,
    pub containers: Arc<Containers>,
    facts: HostFacts,
    shim: PathBuf,
    /// Where container cgroups go (`BERTH_CGROUP_PARENT`, default `/berth`): tests give each berth its own.
    cgroup_parent: String,
    /// Where every container event goes.
    pub events: crate::events::Events,
    /// Restart policies' daemon-wide state (see [`super::restart`]).
    pub restarts: super::restart::Restarts,
    /// Held by a start and by a copy into or out of a stopped container (which mounts its overlay).
    pub rootfs_locks: super::copy::RootfsLocks,
    /// The volume store: containers' volumes are mounted and filled at start, released at exit.
    pub volumes: Arc<crate::volume::VolumeStore>,
    /// berth-netd's side: namespaces, endpoints and ports of containers on networks.
    pub network: crate::network::Networking,
}

impl Runtime {
    pub fn new(paths: Paths, images: Arc<ImageStore>, containers: Arc<Containers>) -> Runtime {
        let cgroup_parent = std::env::var("BERTH_CGROUP_PARENT").unwrap_or_default();
        let events = crate::events::Events::new();
        let volumes = Arc::new(crate::volume::VolumeStore::open(&paths.root).with_events(events.clone()));
        let network = crate::network::Networking::new(&paths);
        Runtime {
            paths,
            images,
            containers,
            facts: HostFacts::probe(),
            shim: shim_binary(),
            cgroup_parent,
            events,
            restarts: Default::default(),
            rootfs_locks: Default::default(),
            volumes,
            network,
        }
    }

    fn dir(&self, id: &str) -> PathBuf {
        self.containers.container_dir(id)
    }

    pub(crate) fn shim_dir(&self, id: &str) -> PathBuf {
        self.dir(id).join("shim")
    }

    pub fn log_path(&self, id: &str) -> PathBuf {
        self.dir(id).join(format!("{id}-json.log"))
    }

    /// Start a created or exited container.
    pub async fn start(&self, key: &str) -> Result<ContainerRecord> {
        let record = self.containers.get(key)?;
        // A copy may have this container's overlay mounted: wait until it is done.
        let _rootfs = self.rootfs_locks.lock(&record.id).await;
        self.refresh(&record.id).await;
        let record = self.containers.get(&record.id)?;
        if matches!(record.state.status, Status::Running | Status::Paused) {
            return Err(RunError::AlreadyRunning(record.name));
        }
        let id = record.id.clone();
        self.containers.update(&id, |r| r.state.error.clear())?;
        let rootfs_dir = match self.prepare_rootfs(&record) {
            Ok(d) => d,
            Err(e) => {
                let _ = self.containers.update(&id, |r| r.state.error = e.to_string());
                return Err(e);
            }
        };
        // The network before the bundle: the spec names the namespace netd wired, resolv.conf is netd's answer.
        let net = match self.network.prepare(&record, &self.containers).await {
            Ok(n) => n,
            Err(e) => {
                let _ = rootfs::unmount(&rootfs_dir);
                crate::volume::attach::release(&self.volumes, &self.containers, &id);
                let message = e.to_string();
                let _ = self.containers.update(&id, |r| r.state.error = message.clone());
                return Err(RunError::StartFailed { message, exit_code: 128 });
            }
        };
        let bundle = match self.write_bundle(&record, &rootfs_dir, &net) {
            Ok(b) => b,
            Err(e) => {
                self.network.release(&self.dir(&id), &id).await;
                let _ = rootfs::unmount(&rootfs_dir);
                crate::volume::attach::release(&self.volumes, &self.containers, &id);
                let _ = self.containers.update(&id, |r| r.state.error = e.to_string());
                return Err(e);
            }
        };
        match self.run_shim(&record, &bundle).await {
            Ok(init_pid) => {
                let started = self.containers.update(&id, |r| {
                    r.state.status = Status::Running;
                    r.state.pid = init_pid;
                    r.state.exit_code = 0;
                    r.state.error.clear();
                    r.state.oom_killed = false;
                    r.state.started_at = now_rfc3339();
                    r.state.finished_at.clear();
                })?;
                self.events.container(&started, "start", &[]);
                Ok(started)
            }
            Err((message, exit_code)) => {
                self.network.release(&self.dir(&id), &id).await;
                let _ = rootfs::unmount(&rootfs_dir);
                crate::volume::attach::release(&self.volumes, &self.containers, &id);
                self.containers.update(&id, |r| {
                    r.state.exit_code = exit_code;
                    r.state.error = message.clone();
                })?;
                Err(RunError::StartFailed { message, exit_code })
            }
        }
    }

    /// Layers unpacked once, overlay mounted at `containers/<id>/rootfs` with the container's upper and work dirs.
    pub(crate) fn prepare_rootfs(&self, record: &ContainerRecord) -> Result<PathBuf> {
        let image_id = record.image_id.as_ref().map(Digest::to_string).unwrap_or_else(|| record.image.clone());
        let image = self.images.resolve(&image_id).map_err(|e| setup("image", e))?;
        let lowers = self.images.ensure_unpacked(&image).map_err(|e| setup("image layers", e))?;
        let dir = self.dir(&record.id);
        let (upper, work, target) = (dir.join("upper"), dir.join("work"), dir.join("rootfs"));
        for d in [&upper, &work, &target] {
            std::fs::create_dir_all(d).map_err(|e| setup(&d.display().to_string(), e))?;
        }
        // A rootfs left mounted by a crash is unmounted first: the overlay is remounted from the same dirs.
        let _ = rootfs::unmount(&target);
        rootfs::mount_overlay(&lowers, &upper, &work, &target).map_err(|e| setup("rootfs", e))?;
        Ok(target)
    }

    /// The OCI bundle: config.json from the record and the image config, plus /etc/hosts, resolv.conf, hostname.
    fn write_bundle(
        &self,
        record: &ContainerRecord,
        rootfs_dir: &Path,
        net: &crate::network::Prepared,
    ) -> Result<PathBuf> {
        let bundle = self.dir(&record.id).join("bundle");
        std::fs::create_dir_all(&bundle).map_err(|e| setup("bundle", e))?;
        let mut input = self.spec_input(record, &bundle, net)?;
        // Binds, volumes (mounted, filled from the image when empty) and tmpfs, from the record's mount points.
        input.mounts = crate::volume::attach::prepare(&self.volumes, record, rootfs_dir)
            .map_err(|e| RunError::StartFailed { message: e.to_string(), exit_code: 128 })?;
        let spec = spec::build_spec_with(&input, rootfs_dir, &self.facts)
            .map_err(|e| RunError::StartFailed { message: e.to_string(), exit_code: 128 })?;
        let json = serde_json::to_vec_pretty(&spec).map_err(|e| setup("config.json", e))?;
        write_atomic(&bundle.join("config.json"), &json).map_err(|e| setup("config.json", e))?;
        Ok(bundle)
    }

    fn spec_input(
        &self,
        record: &ContainerRecord,
        bundle: &Path,
        net: &crate::network::Prepared,
    ) -> Result<ContainerSpecInput> {
        let c = &record.config;
        let h = &record.host_config;
        let image_id = record.image_id.as_ref().map(Digest::to_string).unwrap_or_else(|| record.image.clone());
        let image = self.images.resolve(&image_id).map_err(|e| setup("image", e))?;
        let hostname = if c.hostname.is_empty() { record.id[..12].to_string() } else { c.hostname.clone() };
        let hosts = bundle.join("hosts");
        let hosts_text = format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{hostname} {}\n",
            record.name
        );
        let hosts_text = net.hosts.clone().unwrap_or(hosts_text);
        std::fs::write(&hosts, hosts_text).map_err(|e| setup("hosts", e))?;
        let hostname_file = bundle.join("hostname");
        std::fs::write(&hostname_file, format!("{hostname}\n")).map_err(|e| setup("hostname", e))?;
        let resolv = bundle.join("resolv.conf");
        // netd's answer on its networks (their DNS servers); the host's resolvers otherwise.
        let resolv_text = match &net.resolv_conf {
            Some(text) => text.clone().into_bytes(),
            None => std::fs::read("/etc/resolv.conf").unwrap_or_default(),
        };
        std::fs::write(&resolv, resolv_text).map_err(|e| setup("resolv.conf", e))?;
        Ok(ContainerSpecInput {
            id: record.id.clone(),
            name: record.name.clone(),
            hostname: Some(hostname),
            domainname: (!c.domainname.is_empty()).then(|| c.domainname.clone()),
            image_config: image.config.config().clone(),
            env: c.env.clone(),
            entrypoint: c.entrypoint.clone(),
            cmd: c.cmd.clone(),
            working_dir: (!c.working_dir.is_empty()).then(|| c.working_dir.clone()),
            user: (!c.user.is_empty()).then(|| c.user.clone()),
            stop_signal: c.stop_signal.clone(),
            tty: c.tty,
            open_stdin: c.open_stdin,
            privileged: h.privileged,
            read_only_rootfs: h.readonly_rootfs,
            cap_add: h.cap_add.clone(),
            cap_drop: h.cap_drop.clone(),
            security_opt: h.security_opt.clone(),
            sysctls: h.sysctls.clone(),
            shm_size: (h.shm_size > 0).then_some(h.shm_size as u64),
            resources: resources(h),
            network: net.mode.clone(),
            init: match h.init {
                Some(true) => Some(init_binary().ok_or_else(|| {
                    RunError::StartFailed {
                        message: "init: true needs a statically linked init on the host (tini-static: apt-get install \
                              tini; or set BERTH_INIT_PATH)"
                            .into(),
                        exit_code: 128,
                    }
                })?),
                _ => None,
            },
            cgroup_parent: self.cgroup_parent.clone(),
            hosts_file: Some(hosts),
            resolv_conf: Some(resolv),
            hostname_file: Some(hostname_file),
            ..Default::default()
        })
    }

    /// `berth-shim start …`: its one JSON line says whether the container runs.
    async fn run_shim(&self, record: &ContainerRecord, bundle: &Path) -> std::result::Result<i64, (String, i64)> {
        let id = &record.id;
        let shim_dir = self.shim_dir(id);
        // A previous run's records must not be mistaken for this one's.
        let _ = std::fs::remove_dir_all(&shim_dir);
        let mut cmd = tokio::process::Command::new(&self.shim);
        // Setting the gid makes the standard library fork+exec instead of posix_spawn, which would hand the
        // shim (and so every container) the runtime's ignored real-time signals.
        cmd.gid(nix::unistd::getgid().as_raw());
        cmd.arg("start")
            .arg("--id")
            .arg(id)
            .arg("--bundle")
            .arg(bundle)
            .arg("--state-dir")
            .arg(&shim_dir)
            .arg("--runtime-root")
            .arg(self.paths.run_dir.join("runc"))
            .arg("--log-path")
            .arg(self.log_path(id));
        if let Some(log) = &record.host_config.log_config {
            if let Some(size) = log.config.get("max-size") {
                cmd.arg("--log-max-size").arg(size);
            }
            if let Some(files) = log.config.get("max-file") {
                cmd.arg("--log-max-file").arg(files);
            }
        }
        if record.config.open_stdin {
            cmd.arg("--stdin");
        }
        // Unix socket paths are limited to 107 bytes: the control socket lives under the run dir, not the root.
        let sockets = self.paths.run_dir.join("s");
        let _ = std::fs::create_dir_all(&sockets);
        cmd.arg("--control-socket").arg(self.control_socket(id));
        // Only the first line is awaited: the shim that stays behind may keep the pipe open as long as it lives.
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .stdin(std::process::Stdio::null());
        let mut child = cmd.spawn().map_err(|e| (format!("cannot run {}: {e}", self.shim.display()), 128))?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            let mut reader = BufReader::new(out);
            let read = tokio::time::timeout(SHIM_START_TIMEOUT, reader.read_line(&mut line)).await;
            if read.is_err() {
                let _ = child.start_kill();
                return Err((format!("berth-shim gave no answer within {}s", SHIM_START_TIMEOUT.as_secs()), 128));
            }
        }
        let _ = tokio::time::timeout(SHIM_START_TIMEOUT, child.wait()).await;
        let ready: Value = serde_json::from_str(line.trim()).unwrap_or(Value::Null);
        match ready.get("type").and_then(Value::as_str) {
            Some("started") => Ok(ready.get("init_pid").and_then(Value::as_i64).unwrap_or(0)),
            Some("failed") => Err((
                ready.get("error").and_then(Value::as_str).unwrap_or("the container failed to start").to_string(),
                ready.get("exit_code").and_then(Value::as_i64).unwrap_or(128),
            )),
            _ => Err((format!("berth-shim failed: {}", line.trim()), 128)),
        }
    }

    fn control_socket(&self, id: &str) -> PathBuf {
        self.paths.run_dir.join("s").join(format!("{id}.sock"))
    }

    /// One request to the container's shim; `None` when the shim is gone.
    async fn ask_shim(&self, id: &str, request: Value) -> Option<Value> {
        let sock = self.control_socket(id);
        let mut stream = UnixStream::connect(&sock).await.ok()?;
        let mut line = request.to_string();
        line.push('\n');
        stream.write_all(line.as_bytes()).await.ok()?;
        let mut reader = BufReader::new(stream);
        let mut answer = String::new();
        reader.read_line(&mut answer).await.ok()?;
        serde_json::from_str(&answer).ok()
    }

    /// The FIFO the shim feeds the container's stdin from (containers created with `OpenStdin`), once it runs.
    pub fn stdin_fifo(&self, id: &str) -> PathBuf {
        self.shim_dir(id).join("stdin")
    }

    /// EOF to the container's stdin (an attach with `StdinOnce` ended its input).
    pub async fn close_stdin(&self, id: &str) {
        let _ = self.ask_shim(id, json!({"cmd": "close_stdin"})).await;
    }

    /// The exit the shim recorded, if the container has exited.
    fn exit_record(&self, id: &str) -> Option<Value> {
        let bytes = std::fs::read(self.shim_dir(id).join("exit.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Bring a running record up to date with its shim: record the exit once it happened.
    pub async fn refresh(&self, id: &str) {
        let Ok(record) = self.containers.get(id) else { return };
        // Restarting: the exit is recorded and no shim runs until the restart supervisor starts one.
        if !matches!(record.state.status, Status::Running | Status::Paused) {
            return;
        }
        if let Some(exit) = self.exit_record(&record.id) {
            self.exit_and_release(&record.id, &exit).await;
        } else if self.ask_shim(&record.id, json!({"cmd": "state"})).await.is_none() {
            // Neither a shim nor an exit record: the shim died with the container (or the host rebooted).
            let exit = json!({"exit_code": 255, "error": "the container's shim is gone"});
            self.exit_and_release(&record.id, &exit).await;
        }
    }

    /// Record an exit and release the container's network, under its network lock: a second caller waits until
    /// the first one's release is done (so a stop returns with veths, ports and namespace gone) and then finds
    /// the exit recorded and does nothing: its record_exit would unmount the rootfs, or its release remove the
    /// namespace, that a restart is preparing meanwhile.
    async fn exit_and_release(&self, id: &str, exit: &Value) {
        let _net = self.network.lock(id).await;
        let running = self.containers.get(id).is_ok_and(|r| matches!(r.state.status, Status::Running | Status::Paused));
        if running && self.record_exit(id, exit) {
            self.network.release_locked(&self.dir(id), id).await;
        }
    }

    /// Whether this call recorded the exit (false when someone else did first).
    fn record_exit(&self, id: &str, exit: &Value) -> bool {
        let _ = rootfs::unmount(&self.dir(id).join("rootfs"));
        crate::volume::attach::release(&self.volumes, &self.containers, id);
        // A restarting container's last exit is already recorded; its restart is the supervisor's.
        let mut exited = false;
        let updated = self.containers.update(id, |r| {
            if !matches!(r.state.status, Status::Running | Status::Paused) {
                return;
            }
            exited = true;
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.exit_code = exit.get("exit_code").and_then(Value::as_i64).unwrap_or(255);
            r.state.oom_killed = exit.get("oom_killed").and_then(Value::as_bool).unwrap_or(false);
            r.state.finished_at =
                exit.get("finished_at").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(now_rfc3339);
            if let Some(e) = exit.get("error").and_then(Value::as_str) {
                r.state.error = e.to_string();
            }
        });
        if let Ok(r) = updated
            && exited
        {
            if r.state.oom_killed {
                self.events.container(&r, "oom", &[]);
            }
            self.events.container(&r, "die", &[("exitCode", r.state.exit_code.to_string())]);
        }
        exited
    }

    /// Block until the container is not running; its exit code.
    pub async fn wait(&self, key: &str) -> Result<i64> {
        let record = self.containers.get(key)?;
        if matches!(record.state.status, Status::Running | Status::Paused | Status::Restarting) {
            if let Some(answer) = self.ask_shim(&record.id, json!({"cmd": "wait"})).await
                && answer.get("type").and_then(Value::as_str) == Some("exited")
            {
                self.exit_and_release(&record.id, &answer).await;
            }
            self.refresh(&record.id).await;
        }
        Ok(self.containers.get(&record.id)?.state.exit_code)
    }

    /// Send a signal to the container's init (`all` to every process in it).
    pub async fn kill(&self, key: &str, signal: &str) -> Result<()> {
        let record = self.containers.get(key)?;
        self.refresh(&record.id).await;
        let mut record = self.containers.get(&record.id)?;
        let sig = signal.trim_start_matches("SIG");
        if record.state.status == Status::Restarting {
            // Nothing runs to signal: the kill only cancels the pending restart, as in Docker.
            if super::restart::cancel(self, &record.id).await {
                self.events.container(&record, "kill", &[("signal", super::restart::signal_number(sig))]);
                return Ok(());
            }
            // The restart was under way: the container runs now and gets the signal.
            record = self.containers.get(&record.id)?;
        }
        if !matches!(record.state.status, Status::Running | Status::Paused) {
            return Err(RunError::NotRunning(record.id));
        }
        let signal = match sig.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => json!(sig),
        };
        match self.ask_shim(&record.id, json!({"cmd": "kill", "signal": signal})).await {
            Some(a) if a.get("type").and_then(Value::as_str) == Some("error") => {
                Err(RunError::Setup(a.get("message").and_then(Value::as_str).unwrap_or("kill failed").to_string()))
            }
            Some(_) => {
                super::restart::note_kill(self, &record, sig);
                self.events.container(&record, "kill", &[("signal", super::restart::signal_number(sig))]);
                if record.state.status == Status::Paused && super::cgroups::pause::signal_thaws(&record, sig) {
                    self.thaw_after_signal(&record.id).await;
                }
                Ok(())
            }
            None => {
                self.refresh(&record.id).await;
                Err(RunError::NotRunning(record.id))
            }
        }
    }

    /// The stop signal, then SIGKILL after `timeout` (Docker's default 10 s).
    pub async fn stop(&self, key: &str, timeout: Option<Duration>) -> Result<()> {
        let record = self.containers.get(key)?;
        self.refresh(&record.id).await;
        let mut record = self.containers.get(&record.id)?;
        if record.state.status == Status::Restarting {
            if super::restart::cancel(self, &record.id).await {
                self.events.container(&record, "stop", &[]);
                return Ok(());
            }
            // The restart was under way: the container runs now and is stopped as any other.
            record = self.containers.get(&record.id)?;
        }
        if !matches!(record.state.status, Status::Running | Status::Paused) {
            return Ok(());
        }
        let timeout = timeout
            .or_else(|| record.config.stop_timeout.map(|s| Duration::from_secs(s.max(0) as u64)))
            .unwrap_or(Duration::from_secs(10));
        let signal = record.config.stop_signal.clone().unwrap_or_else(|| "TERM".into());
        let _ = self.kill(&record.id, &signal).await;
        if tokio::time::timeout(timeout, self.wait(&record.id)).await.is_err() {
            let _ = self.kill(&record.id, "KILL").await;
            let _ = tokio::time::timeout(Duration::from_secs(10), self.wait(&record.id)).await;
        }
        if let Ok(r) = self.containers.get(&record.id) {
            self.events.container(&r, "stop", &[]);
        }
        Ok(())
    }

    /// On berthd's start: every container that was running is checked against its shim.
    pub async fn reconcile(&self) {
        for r in self.containers.list() {
            self.refresh(&r.id).await;
            self.sync_paused(&r.id);
            // Exited while berthd was away (or released halfway): its endpoints, ports and namespace go now.
            if let Ok(r) = self.containers.get(&r.id)
                && !matches!(r.state.status, Status::Running | Status::Paused)
            {
                self.network.release(&self.dir(&r.id), &r.id).await;
            }
        }
    }
}

fn resources(h: &HostConfig) -> Resources {
    Resources {
        memory: h.memory,
        memory_reservation: h.memory_reservation,
        memory_swap: h.memory_swap,
        nano_cpus: h.nano_cpus,
        cpu_shares: h.cpu_shares,
        cpu_period: h.cpu_period,
        cpu_quota: h.cpu_quota,
        cpuset_cpus: h.cpuset_cpus.clone(),
        cpuset_mems: h.cpuset_mems.clone(),
        pids_limit: h.pids_limit,
        oom_score_adj: h.oom_score_adj.and_then(|v| i32::try_from(v).ok()),
        ulimits: h.ulimits.iter().map(|u| spec::Ulimit { name: u.name.clone(), soft: u.soft, hard: u.hard }).collect(),
        ..Default::default()
    }
}

/// The init `init: true` runs as the container's pid 1, in front of its command: `BERTH_INIT_PATH`, else tini's
/// static build or Docker's docker-init where Debian installs them. It is bind-mounted into a rootfs that may
/// have no C library, so it must be statically linked.
fn init_binary() -> Option<PathBuf> {
    let configured = std::env::var_os("BERTH_INIT_PATH").map(PathBuf::from);
    configured
        .into_iter()
        .chain(["/usr/bin/tini-static", "/usr/libexec/docker/docker-init", "/usr/bin/docker-init"].map(PathBuf::from))
        .find(|p| p.is_file())
}

/// berth-shim beside berthd (a cargo build, an install), else the one on PATH.
fn shim_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name("berth-shim"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("berth-shim"))
}

/// Temp file and rename, without fsync: the bundle is written afresh at every start, so after a power loss
/// there is nothing in it to keep (and an fsync cost 5–15 ms of every start here).
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}
