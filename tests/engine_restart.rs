//! End to end, as root: restart policies in berthd through the `docker` CLI — `always` with Docker's backoff,
//! `on-failure:N`, a stop that stays, `unless-stopped` across a `kill -9` of berthd, and the supervisor re-armed
//! after a berthd restart.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Berth, busybox_tar, stderr, stdout};

fn setup() -> Berth {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1", "-c", "CMD [\"sh\"]"]);
    b
}

fn inspect(b: &Berth, name: &str, format: &str) -> String {
    b.docker_ok(&["inspect", name, "--format", format]).trim().to_string()
}

/// Poll `inspect` until `done` holds on its output (bounded); the last output.
fn wait_for(b: &Berth, name: &str, format: &str, within: Duration, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + within;
    loop {
        let out = inspect(b, name, format);
        if done(&out) {
            return out;
        }
        assert!(Instant::now() < deadline, "{name}: {format} is still {out:?} after {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn berthd_pid(b: &Berth) -> String {
    std::fs::read_to_string(b.run_dir().join("berthd.pid")).unwrap_or_default().trim().to_string()
}

/// Signal berthd and wait (bounded) until it is gone.
fn stop_berthd(b: &Berth, signal: &str) {
    let pid = berthd_pid(b);
    assert!(!pid.is_empty(), "no berthd pid file");
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(&pid).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "berthd {pid} still runs after SIG{signal}");
}

#[test]
fn always_restarts_with_backoff_until_stopped() {
    let b = setup();
    let since = now();
    b.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "a1",
        "--restart",
        "always",
        "e2e/bb:1",
        "sh",
        "-c",
        "exit 1",
    ]);
    // `docker wait` answers at the first exit even though the container comes back.
    let waited = b.docker_ok(&["wait", "a1"]);
    assert_eq!(waited.trim(), "1");

    // Restarts come with growing delays: 100 ms, 200 ms, 400 ms, 800 ms, 1.6 s …; in between it is
    // `restarting`, which ps shows (without -a: it counts as running) with the last exit code.
    let ps = (0..200)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            b.docker_ok(&["ps", "--filter", "name=a1", "--format", "{{.Status}}"])
        })
        .find(|s| s.starts_with("Restarting (1)"));
    assert!(ps.is_some_and(|s| s.trim_end().ends_with(" ago")), "never shown as restarting by ps");
    // RestartCount 7 is set when the 7th run ended, so 7 starts happened by then.
    let count =
        wait_for(&b, "a1", "{{.RestartCount}}", Duration::from_secs(40), |c| c.parse::<u32>().unwrap_or(0) >= 7);
    assert!(count.parse::<u32>().unwrap_or(0) >= 7);
    let starts = b.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        &now(),
        "--filter",
        "container=a1",
        "--filter",
        "event=start",
        "--format",
        "{{.TimeNano}}",
    ]);
    let times: Vec<i64> = starts.lines().filter_map(|l| l.trim().parse().ok()).collect();
    assert!(times.len() >= 7, "{starts}");
    let gaps: Vec<i64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Each run is the same `exit 1`; the delays before the 2nd and the 6th start (100 ms, 1.6 s) differ by 1.5 s.
    assert!(gaps[4] - gaps[0] > 1_000_000_000, "no backoff visible in the gaps between starts: {gaps:?}");

    // A stop is final, whether it meets the container running or waiting for its restart.
    b.docker_ok(&["stop", "-t", "1", "a1"]);
    let stopped = inspect(&b, "a1", "{{.State.Status}} {{.RestartCount}}");
    assert!(stopped.starts_with("exited "), "{stopped}");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(inspect(&b, "a1", "{{.State.Status}} {{.RestartCount}}"), stopped, "restarted after a stop");

    // `start` wants it running again: the restart count starts over and the policy holds again.
    b.docker_ok(&["start", "a1"]);
    wait_for(&b, "a1", "{{.RestartCount}}", Duration::from_secs(20), |c| c.parse::<u32>().unwrap_or(0) >= 1);
    b.docker_ok(&["rm", "-f", "a1"]);
    assert!(b.docker(&["inspect", "a1"]).status.code() != Some(0));
}

#[test]
fn on_failure_stops_after_its_retries_and_update_changes_the_policy() {
    let b = setup();
    b.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "f1",
        "--restart",
        "on-failure:2",
        "e2e/bb:1",
        "sh",
        "-c",
        "exit 3",
    ]);
    let done =
        wait_for(&b, "f1", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}", Duration::from_secs(30), |s| {
            s == "exited 2 3"
        });
    // Past the next backoff delay (400 ms): no third restart.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(inspect(&b, "f1", "{{.State.Status}} {{.RestartCount}} {{.State.ExitCode}}"), done);

    // A successful exit is not a failure: no restart.
    b.docker_ok(&["run", "--network", "none", "-d", "--name", "f0", "--restart", "on-failure", "e2e/bb:1", "true"]);
    wait_for(&b, "f0", "{{.State.Status}}", Duration::from_secs(10), |s| s == "exited");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(inspect(&b, "f0", "{{.State.Status}} {{.RestartCount}}"), "exited 0");

    // `docker update --restart` changes the policy: from the next exit on, it holds.
    b.docker_ok(&["update", "--restart", "always", "f0"]);
    assert_eq!(inspect(&b, "f0", "{{.HostConfig.RestartPolicy.Name}}"), "always");
    b.docker_ok(&["start", "f0"]);
    wait_for(&b, "f0", "{{.RestartCount}}", Duration::from_secs(20), |c| c.parse::<u32>().unwrap_or(0) >= 1);
    b.docker_ok(&["update", "--restart", "no", "f0"]);
    let update = b.docker(&["update", "--memory", "64m", "f0"]);
    assert!(!update.status.success() && stderr(&update).contains("Memory"), "{}", stderr(&update));
    b.docker_ok(&["stop", "-t", "1", "f0"]);

    // AutoRemove with a restart policy is refused by berthd (400), as by Docker.
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(b.socket())
        .args(["-X", "POST", "-H", "Content-Type: application/json", "-d"])
        .arg(r#"{"Image":"e2e/bb:1","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#)
        .arg("http://berth/v1.47/containers/create")
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("400"), "{text}");
    assert!(text.contains("AutoRemove"), "{text}");
    b.docker_ok(&["rm", "f0", "f1"]);
}

#[test]
fn unless_stopped_comes_back_after_exiting_while_berthd_was_killed() {
    let b = setup();
    // It exits once the host touches the flag file in its bind mount, and only the first time.
    let flag_dir = b.dir.path().join("flag");
    std::fs::create_dir_all(&flag_dir).unwrap_or_else(|e| panic!("{e}"));
    let bind = format!("{}:/flag", flag_dir.display());
    let script = "if [ -f /flag/done ]; then exec sleep 1000; fi; \
                  while [ ! -f /flag/exit ]; do sleep 0.05; done; touch /flag/done; exit 7";
    b.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "u1",
        "--restart",
        "unless-stopped",
        "-v",
        &bind,
        "e2e/bb:1",
        "sh",
        "-c",
        script,
    ]);
    let first_start = inspect(&b, "u1", "{{.State.StartedAt}}");

    stop_berthd(&b, "KILL");
    std::fs::write(flag_dir.join("exit"), b"").unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !flag_dir.join("done").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(flag_dir.join("done").exists(), "the container did not exit");
    std::thread::sleep(Duration::from_millis(500));

    // The next command starts berthd, which records the exit and restarts the container.
    b.ok(&["system", "info"]);
    let state = wait_for(&b, "u1", "{{.State.Status}} {{.State.StartedAt}}", Duration::from_secs(20), |s| {
        s.starts_with("running ") && !s.ends_with(&first_start)
    });
    assert!(state.starts_with("running"), "{state}");

    // A stop through the API is remembered across a berthd restart: unless-stopped stays stopped.
    b.docker_ok(&["stop", "-t", "1", "u1"]);
    stop_berthd(&b, "TERM");
    b.ok(&["system", "info"]);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(inspect(&b, "u1", "{{.State.Status}}"), "exited");
    b.docker_ok(&["rm", "u1"]);
}

#[test]
fn the_supervisor_is_rearmed_after_a_berthd_restart() {
    let b = setup();
    b.docker_ok(&[
        "run",
        "--network",
        "none",
        "-d",
        "--name",
        "s1",
        "--restart",
        "always",
        "e2e/bb:1",
        "sleep",
        "1000",
    ]);
    stop_berthd(&b, "TERM");
    b.ok(&["system", "info"]);
    assert_eq!(inspect(&b, "s1", "{{.State.Status}} {{.RestartCount}}"), "running 0");

    // Killed from the host, not through the API: the policy brings it back.
    let pid = inspect(&b, "s1", "{{.State.Pid}}");
    assert!(pid.parse::<u32>().unwrap_or(0) > 1, "{pid}");
    let kill = Command::new("kill").arg("-KILL").arg(&pid).output().unwrap_or_else(|e| panic!("kill: {e}"));
    assert!(kill.status.success(), "{}{}", stdout(&kill), stderr(&kill));
    let state =
        wait_for(&b, "s1", "{{.State.Status}} {{.RestartCount}} {{.State.Pid}}", Duration::from_secs(20), |s| {
            s.starts_with("running 1 ")
        });
    assert!(!state.ends_with(&format!(" {pid}")), "{state}");
    b.docker_ok(&["rm", "-f", "s1"]);
}
