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
    b.docker_ok(&["run", "-d", "--name", "p1", "e2e/bb:1", "sh", "-c", COUNTER]);
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
    b.docker_ok(&["run", "-d", "--name", "loop", "e2e/bb:1", "sh", "-c", COUNTER]);
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
    b.docker_ok(&["rm", "-f", "loop"]);
}
