//! End to end, as root: the cgroup operations of berthd through the `docker` CLI — pause and unpause (the
//! processes really stop), stop of a paused container, `top`, `stats`, resource limits in the cgroup files,
//! OOM kills and the ulimit error.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Berth, busybox_tar, stderr, stdout};

/// Thaws every cgroup of this berth before the harness kills what is left: on cgroup v1 a frozen process does
/// not die of SIGKILL, so a test that fails while a container is paused would leave it behind. Declare it after
/// the `Berth` so it drops first.
struct ThawOnDrop<'a>(&'a Berth);

impl Drop for ThawOnDrop<'_> {
    fn drop(&mut self) {
        let parent = self.0.cgroup_parent();
        for base in ["/sys/fs/cgroup/freezer", "/sys/fs/cgroup"] {
            let Ok(children) = std::fs::read_dir(Path::new(base).join(parent.trim_start_matches('/'))) else {
                continue;
            };
            for c in children.flatten() {
                let _ = std::fs::write(c.path().join("freezer.state"), "THAWED");
                let _ = std::fs::write(c.path().join("cgroup.freeze"), "0");
            }
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn v1() -> bool {
    Path::new("/sys/fs/cgroup/freezer").is_dir()
}

/// The container's directory in a v1 controller's hierarchy, or in the unified one.
fn cgroup_dir(b: &Berth, controller: &str, id: &str) -> PathBuf {
    let parent = b.cgroup_parent();
    let base = if v1() { Path::new("/sys/fs/cgroup").join(controller) } else { PathBuf::from("/sys/fs/cgroup") };
    base.join(parent.trim_start_matches('/')).join(id)
}

/// What the kernel says of the container's freezer: "FROZEN"/"THAWED" (v1), "frozen 1"/"frozen 0" (v2).
fn freezer_state(b: &Berth, id: &str) -> String {
    if v1() {
        std::fs::read_to_string(cgroup_dir(b, "freezer", id).join("freezer.state")).unwrap_or_default().trim().into()
    } else {
        let events = std::fs::read_to_string(cgroup_dir(b, "", id).join("cgroup.events")).unwrap_or_default();
        events.lines().find(|l| l.starts_with("frozen")).unwrap_or_default().to_string()
    }
}

fn frozen_text() -> &'static str {
    if v1() { "FROZEN" } else { "frozen 1" }
}

fn setup() -> Berth {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1", "-c", "CMD [\"sh\"]"]);
    b
}

fn id_of(b: &Berth, name: &str) -> String {
    b.docker_ok(&["inspect", name, "--format", "{{.Id}}"]).trim().to_string()
}

/// Wait (bounded) until `f` holds.
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The counter the container writes to /tmp/c, read through its merged rootfs on the host.
fn counter(b: &Berth, id: &str) -> u64 {
    let file = b.root().join("containers").join(id).join("rootfs/tmp/c");
    std::fs::read_to_string(file).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
}

const COUNTER: &str = "i=0; while true; do i=$((i+1)); echo $i > /tmp/c.new; mv /tmp/c.new /tmp/c; sleep 0.02; done";

#[test]
fn pause_stops_the_processes_and_unpause_resumes_them() {
    let b = setup();
    let _thaw = ThawOnDrop(&b);
    b.docker_ok(&["run", "--network", "none", "-d", "--name", "p1", "e2e/bb:1", "sh", "-c", COUNTER]);
    let id = id_of(&b, "p1");
    wait_until("the counter to run", || counter(&b, &id) > 2);

    b.docker_ok(&["pause", "p1"]);
    assert_eq!(freezer_state(&b, &id), frozen_text());
    let state = b.docker_ok(&["inspect", "p1", "--format", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}"]);
    assert_eq!(state.trim(), "paused true true");
    assert_eq!(b.docker_ok(&["ps", "--format", "{{.Names}} {{.Status}}"]).trim(), "p1 Up (Paused)");
    // The processes really stopped: the counter does not move.
    let frozen_at = counter(&b, &id);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(counter(&b, &id), frozen_at, "the counter advanced while paused");

    let again = b.docker(&["pause", "p1"]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("is already paused"), "{}", stderr(&again));

    // A paused container stays paused across a berthd restart (kill -9 here).
    let pid = std::fs::read_to_string(b.run_dir().join("berthd.pid")).unwrap_or_default();
    let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.trim()).status();
    wait_until("berthd to die", || !Path::new(&format!("/proc/{}", pid.trim())).exists());
    b.ok(&["system", "info"]);
    assert_eq!(b.docker_ok(&["inspect", "p1", "--format", "{{.State.Status}}"]).trim(), "paused");
    assert_eq!(freezer_state(&b, &id), frozen_text());

    b.docker_ok(&["unpause", "p1"]);
    assert_eq!(b.docker_ok(&["inspect", "p1", "--format", "{{.State.Status}}"]).trim(), "running");
    wait_until("the counter to move again", || counter(&b, &id) > frozen_at);
    let not = b.docker(&["unpause", "p1"]);
    assert!(!not.status.success());
    assert!(stderr(&not).contains("is not paused"), "{}", stderr(&not));

    // Another signal than KILL or the stop signal leaves it paused (pending until the unpause), as in Docker.
    b.docker_ok(&["pause", "p1"]);
    b.docker_ok(&["kill", "-s", "USR1", "p1"]);
    assert_eq!(b.docker_ok(&["inspect", "p1", "--format", "{{.State.Status}}"]).trim(), "paused");
    assert_eq!(freezer_state(&b, &id), frozen_text());
    b.docker_ok(&["unpause", "p1"]);

    // Stopping a paused container works: the signal is sent, then the container thawed so it gets it.
    b.docker_ok(&["pause", "p1"]);
    let started = Instant::now();
    b.docker_ok(&["stop", "-t", "1", "p1"]);
    eprintln!("stop of a paused container took {:?}", started.elapsed());
    assert_eq!(
        b.docker_ok(&["inspect", "p1", "--format", "{{.State.Status}} {{.State.Paused}}"]).trim(),
        "exited false"
    );
    let stopped = b.docker(&["pause", "p1"]);
    assert!(!stopped.status.success());
    assert!(stderr(&stopped).contains("is not running"), "{}", stderr(&stopped));

    // kill and rm -f of a paused container.
    b.docker_ok(&["start", "p1"]);
    b.docker_ok(&["pause", "p1"]);
    b.docker_ok(&["kill", "p1"]);
    assert_eq!(b.docker_ok(&["wait", "p1"]).trim(), "137");
    b.docker_ok(&["start", "p1"]);
    b.docker_ok(&["pause", "p1"]);
    b.docker_ok(&["rm", "-f", "p1"]);
    assert_eq!(b.docker_ok(&["ps", "-a", "-q"]).trim(), "");
}

/// 20 pause + unpause rounds over the API; the time per round is printed (the benchmark is elsewhere).
#[test]
fn pause_and_unpause_in_a_loop() {
    let b = setup();
    let _thaw = ThawOnDrop(&b);
    b.docker_ok(&["run", "--network", "none", "-d", "--name", "loop", "e2e/bb:1", "sh", "-c", COUNTER]);
    let id = id_of(&b, "loop");
    let started = Instant::now();
    for _ in 0..20 {
        for verb in ["pause", "unpause"] {
            let out = std::process::Command::new("curl")
                .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--unix-socket"])
                .arg(b.socket())
                .arg(format!("http://berth/v1.47/containers/{id}/{verb}"))
                .output()
                .unwrap_or_else(|e| panic!("curl: {e}"));
            assert_eq!(stdout(&out), "204", "{verb}: {}", stderr(&out));
        }
    }
    eprintln!("pause + unpause: {:?} per round (with curl)", started.elapsed() / 20);
    assert_ne!(freezer_state(&b, &id), frozen_text());
    // Each one is an event, as from Docker (the history between --since and --until, so the command ends).
    let until = unix_now() + 1;
    let actions = b.docker_ok(&[
        "events",
        "--since",
        &(until - 120).to_string(),
        "--until",
        &until.to_string(),
        "--filter",
        "container=loop",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(actions.lines().filter(|a| *a == "pause").count(), 20, "{actions}");
    assert_eq!(actions.lines().filter(|a| *a == "unpause").count(), 20, "{actions}");
    b.docker_ok(&["rm", "-f", "loop"]);
}

/// Whether this process (and so berthd) has CAP_SYS_RESOURCE: without it, raising a hard rlimit or lowering
/// oom_score_adj fails (the case on the project's VM).
fn has_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let eff = status.lines().find_map(|l| l.strip_prefix("CapEff:")).unwrap_or_default().trim().to_string();
    u64::from_str_radix(&eff, 16).is_ok_and(|caps| caps & (1 << 24) != 0)
}

fn read_trimmed(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).trim().to_string()
}

#[test]
fn top_lists_the_processes_like_ps_ef() {
    let b = setup();
    let _thaw = ThawOnDrop(&b);
    b.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "t1",
        "e2e/bb:1",
        "sh",
        "-c",
        "sleep 1000 & sleep 2000; echo done",
    ]);
    let pid = b.docker_ok(&["inspect", "t1", "--format", "{{.State.Pid}}"]).trim().to_string();
    wait_until("both sleeps", || b.docker_ok(&["top", "t1"]).lines().count() == 4);
    let out = b.docker_ok(&["top", "t1"]);
    let mut lines = out.lines();
    let titles: Vec<&str> = lines.next().unwrap_or_default().split_whitespace().collect();
    assert_eq!(titles, ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split_whitespace().collect()).collect();
    let init = rows.iter().find(|r| r[1] == pid).unwrap_or_else(|| panic!("no row for init {pid}:\n{out}"));
    assert_eq!(init[0], "root");
    assert_eq!(init[5], "?");
    assert_eq!(init[7..].join(" "), "sh -c sleep 1000 & sleep 2000; echo done");
    for cmd in ["sleep 1000", "sleep 2000"] {
        let row = rows.iter().find(|r| r[7..].join(" ") == cmd).unwrap_or_else(|| panic!("no {cmd}:\n{out}"));
        assert_eq!(row[2], pid, "{cmd} is a child of the init");
        assert!(row[6].len() == 8 && row[6].contains(':'), "TIME column: {row:?}");
    }
    // Paused containers are listed too (the files are read, nothing runs in the container).
    b.docker_ok(&["pause", "t1"]);
    assert_eq!(b.docker_ok(&["top", "t1"]).lines().count(), 4);
    b.docker_ok(&["unpause", "t1"]);
    // Other ps options are refused with a reason; a stopped container is a conflict.
    let other = b.docker(&["top", "t1", "-o", "pid"]);
    assert!(!other.status.success());
    assert!(stderr(&other).contains("ps -ef"), "{}", stderr(&other));
    b.docker_ok(&["kill", "t1"]);
    b.docker_ok(&["wait", "t1"]);
    let stopped = b.docker(&["top", "t1"]);
    assert!(!stopped.status.success());
    assert!(stderr(&stopped).contains("is not running"), "{}", stderr(&stopped));
    b.docker_ok(&["rm", "t1"]);
}

/// Memory, CPU, cpuset, pids limits, oom_score_adj and ulimits given to `docker run` reach the cgroup files and
/// the process; `docker stats --no-stream` shows the limit, the CPU use and the pids.
#[test]
fn resources_reach_the_cgroup_and_stats_show_them() {
    let b = setup();
    let _thaw = ThawOnDrop(&b);
    b.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "r1",
        "--memory",
        "32m",
        "--memory-reservation",
        "16m",
        "--memory-swap",
        "64m",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "--pids-limit",
        "10",
        "--oom-score-adj",
        "300",
        "--ulimit",
        "nofile=1024:2048",
        "e2e/bb:1",
        "sh",
        "-c",
        // A shell that forks more sleeps than the pids limit allows (it dies when a fork fails), then a busy
        // loop, so the CPU % is above zero.
        "sh -c 'for i in $(seq 1 30); do sleep 1000 & done'; while true; do :; done",
    ]);
    let id = id_of(&b, "r1");
    let pid = b.docker_ok(&["inspect", "r1", "--format", "{{.State.Pid}}"]).trim().to_string();
    let file = |controller: &str, name: &str| read_trimmed(&cgroup_dir(&b, controller, &id).join(name));
    if v1() {
        assert_eq!(file("memory", "memory.limit_in_bytes"), (32u64 << 20).to_string());
        assert_eq!(file("memory", "memory.soft_limit_in_bytes"), (16u64 << 20).to_string());
        if cgroup_dir(&b, "memory", &id).join("memory.memsw.limit_in_bytes").exists() {
            assert_eq!(file("memory", "memory.memsw.limit_in_bytes"), (64u64 << 20).to_string());
        }
        assert_eq!(file("cpu", "cpu.cfs_quota_us"), "50000");
        assert_eq!(file("cpu", "cpu.cfs_period_us"), "100000");
        assert_eq!(file("cpu", "cpu.shares"), "512");
        assert_eq!(file("cpuset", "cpuset.cpus"), "0");
        assert_eq!(file("pids", "pids.max"), "10");
    } else {
        assert_eq!(file("", "memory.max"), (32u64 << 20).to_string());
        assert_eq!(file("", "memory.low"), (16u64 << 20).to_string());
        assert_eq!(file("", "cpu.max"), "50000 100000");
        assert_eq!(file("", "cpuset.cpus"), "0");
        assert_eq!(file("", "pids.max"), "10");
    }
    assert_eq!(read_trimmed(Path::new(&format!("/proc/{pid}/oom_score_adj"))), "300");
    let limits = read_trimmed(Path::new(&format!("/proc/{pid}/limits")));
    let nofile: Vec<&str> =
        limits.lines().find(|l| l.starts_with("Max open files")).unwrap_or_default().split_whitespace().collect();
    assert_eq!(nofile[3..5], ["1024", "2048"], "{limits}");

    // The pids limit holds: 30 sleeps were asked for, 10 processes at most exist.
    wait_until("the forking shell to give up", || !b.docker_ok(&["top", "r1"]).contains("sh -c for"));
    let procs = b.docker_ok(&["top", "r1"]).lines().count() - 1;
    assert!((3..=10).contains(&procs), "{procs} processes with a limit of 10");

    let row = b.docker_ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}",
        "r1",
    ]);
    let cols: Vec<&str> = row.trim().split('|').collect();
    assert_eq!(cols.len(), 6, "{row}");
    assert_eq!(cols[0], "r1");
    let cpu: f64 = cols[1].trim_end_matches('%').parse().unwrap_or(-1.0);
    assert!(cpu > 0.0, "a busy container uses some CPU: {row}");
    assert!(cols[2].ends_with(" / 32MiB"), "memory limit in stats: {row}");
    assert_eq!(cols[3], "0B / 0B", "no network yet: {row}");
    assert!(cols[4].contains(" / "), "{row}");
    assert_eq!(cols[5], procs.to_string(), "{row}");
    b.docker_ok(&["rm", "-f", "r1"]);
}

/// `stats?stream=1` sends one object a second, each with the previous sample as `precpu_stats`, and ends when
/// the client goes.
#[test]
fn stats_stream_one_object_a_second() {
    let b = setup();
    let _thaw = ThawOnDrop(&b);
    b.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "s1",
        "--memory",
        "64m",
        "e2e/bb:1",
        "sh",
        "-c",
        "while true; do :; done",
    ]);
    let out = std::process::Command::new("curl")
        .args(["-s", "-N", "--max-time", "2.5", "--unix-socket"])
        .arg(b.socket())
        .arg("http://berth/v1.47/containers/s1/stats?stream=1")
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let objects: Vec<serde_json::Value> =
        stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!((2..=4).contains(&objects.len()), "{} objects in 2.5 s", objects.len());
    assert_eq!(objects[0]["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(objects[1]["preread"], objects[0]["read"]);
    assert_eq!(objects[1]["precpu_stats"], objects[0]["cpu_stats"]);
    assert_eq!(objects[1]["memory_stats"]["limit"], 64u64 << 20);
    assert_eq!(objects[1]["name"], "/s1");
    // berthd is fine after the client left.
    b.docker_ok(&["rm", "-f", "s1"]);
}

#[test]
fn a_container_over_its_memory_limit_is_oom_killed() {
    let b = setup();
    let _thaw = ThawOnDrop(&b);
    let run = b.docker(&[
        "run",
        "--network",
        "none",
        "--name",
        "oom",
        "--memory",
        "16m",
        "e2e/bb:1",
        "sh",
        "-c",
        // The pause first: berth-shim reads the cgroup's OOM-kill count as a baseline just after the start, and
        // a container killed before that read is reported with OOMKilled false (a shim race, seen under load).
        "sleep 1; x=a; while true; do x=$x$x; done",
    ]);
    assert_eq!(run.status.code(), Some(137), "{}", stderr(&run));
    let state =
        b.docker_ok(&["inspect", "oom", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}"]);
    assert_eq!(state.trim(), "exited 137 true");
    b.docker_ok(&["rm", "oom"]);
}

/// Without CAP_SYS_RESOURCE a hard ulimit above berthd's own, or an oom_score_adj below it, cannot be given:
/// the start fails with a message that says so, the container stays created, berthd keeps serving.
#[test]
fn limits_that_need_cap_sys_resource_fail_clearly() {
    let b = setup();
    let _thaw = ThawOnDrop(&b);
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let hard = limits.lines().find(|l| l.starts_with("Max open files")).and_then(|l| l.split_whitespace().nth(4));
    let Some(hard) = hard.and_then(|h| h.parse::<u64>().ok()) else { panic!("no nofile hard limit:\n{limits}") };
    let ulimit = format!("nofile=1024:{}", hard + 1);
    let run = b.docker(&["run", "--network", "none", "--name", "ul", "--ulimit", &ulimit, "e2e/bb:1", "true"]);
    let oom = b.docker(&["run", "--network", "none", "--name", "adj", "--oom-score-adj", "-500", "e2e/bb:1", "true"]);
    if has_sys_resource() {
        assert!(run.status.success(), "{}", stderr(&run));
        assert!(oom.status.success(), "{}", stderr(&oom));
    } else {
        assert!(!run.status.success());
        assert!(stderr(&run).contains("raising it needs CAP_SYS_RESOURCE"), "{}", stderr(&run));
        let state = b.docker_ok(&["inspect", "ul", "--format", "{{.State.Status}}|{{.State.Error}}"]);
        assert!(state.starts_with("created|invalid ulimit nofile: hard limit"), "{state}");
        assert!(!oom.status.success());
        assert!(stderr(&oom).contains("lowering it needs CAP_SYS_RESOURCE"), "{}", stderr(&oom));
    }
    // berthd still serves.
    assert_eq!(b.docker_ok(&["ps", "-a", "--format", "{{.Names}}"]).lines().count(), 2);
    b.docker_ok(&["rm", "-f", "ul", "adj"]);
}

/// The v2 freezer against the kernel: this VM runs v1, but its controller-less cgroup2 mount can freeze (the
/// freezer is part of cgroup2's core), so berth's v2 path is checked on real cgroupfs, not only on fakes.
#[test]
fn the_v2_freezer_stops_a_process_in_a_real_cgroup2() {
    let unified = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.join("cgroup.controllers").exists())
        .unwrap_or_else(|| panic!("no cgroup2 mount on this host"));
    let dir = unified.join(format!("berth-e2e-freeze-{}", std::process::id()));
    let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let out = tmp.path().join("ticks");
    std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("while :; do echo x >> {}; sleep 0.01; done", out.display()))
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    // Killed, thawed and removed whatever happens below.
    struct Cleanup(std::process::Child, PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = std::fs::write(self.1.join("cgroup.freeze"), "0");
            let _ = self.0.wait();
            let deadline = Instant::now() + Duration::from_secs(5);
            while std::fs::remove_dir(&self.1).is_err() && self.1.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    let cleanup = Cleanup(child, dir.clone());
    std::fs::write(dir.join("cgroup.procs"), cleanup.0.id().to_string()).unwrap_or_else(|e| panic!("{e}"));

    use berth_engine::runtime::cgroups::{ContainerCgroup, freezer};
    let cg = ContainerCgroup::V2(dir.clone());
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap_or_else(|e| panic!("{e}"));
    let size = || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    wait_until("the writer to run", || size() > 0);
    rt.block_on(freezer::freeze(&cg)).unwrap_or_else(|e| panic!("freeze: {e}"));
    assert!(freezer::is_frozen(&cg).unwrap_or(false));
    let frozen_at = size();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(size(), frozen_at, "the process wrote while frozen");
    rt.block_on(freezer::thaw(&cg)).unwrap_or_else(|e| panic!("thaw: {e}"));
    assert!(!freezer::is_frozen(&cg).unwrap_or(true));
    wait_until("the writer to go on", || size() > frozen_at);
    drop(cleanup);
    assert!(!dir.exists(), "{} left behind", dir.display());
}
