//! End to end, as root: healthchecks through the `docker` CLI against berthd — a passing probe makes the
//! container healthy (and `docker ps` says so), failing probes make it unhealthy after its retries, failures in
//! the start period do not count, a probe over its timeout is killed and fails with exit -1, and the health
//! survives a berthd restart.

mod common;

use std::time::{Duration, Instant};

use common::{Berth, busybox_tar};
use serde_json::Value;

fn setup(b: &Berth) {
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/health:1"]);
}

fn run(b: &Berth, name: &str, health: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--network", "none"];
    args.extend_from_slice(health);
    args.extend_from_slice(&["e2e/health:1", "sleep", "1000"]);
    b.docker_ok(&args);
}

fn health(b: &Berth, name: &str) -> Value {
    let out = b.docker_ok(&["inspect", name, "--format", "{{json .State.Health}}"]);
    serde_json::from_str(out.trim()).unwrap_or(Value::Null)
}

/// Poll the container's health until `done` holds (bounded); the last health seen.
fn wait_health(b: &Berth, name: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let h = health(b, name);
        if done(&h) {
            return h;
        }
        assert!(Instant::now() < deadline, "{name}: health never got there: {h}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status(h: &Value) -> &str {
    h["Status"].as_str().unwrap_or_default()
}

fn log(h: &Value) -> Vec<Value> {
    h["Log"].as_array().cloned().unwrap_or_default()
}

#[test]
fn a_passing_probe_makes_it_healthy_across_a_berthd_restart() {
    let b = Berth::new();
    setup(&b);
    run(&b, "ok", &["--health-cmd", "echo fine", "--health-interval", "1s"]);
    assert_eq!(status(&health(&b, "ok")), "starting");
    let h = wait_health(&b, "ok", Duration::from_secs(30), |h| status(h) == "healthy");
    assert_eq!(h["FailingStreak"], 0);
    let first = &log(&h)[0];
    assert_eq!(first["ExitCode"], 0);
    assert_eq!(first["Output"], "fine\n");
    assert!(first["Start"].as_str().is_some_and(|s| s.starts_with("20")), "{first}");
    let ps = b.docker_ok(&["ps", "--filter", "name=ok", "--format", "{{.Status}}"]);
    assert!(ps.trim().ends_with("(healthy)"), "{ps}");

    // berthd restarts (the container runs on under its shim): the health is still there, and probes go on.
    let pid = std::fs::read_to_string(b.run_dir().join("berthd.pid")).unwrap_or_default();
    let pid = pid.trim().to_string();
    let _ = std::process::Command::new("kill").arg("-TERM").arg(&pid).status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::path::Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    b.ok(&["system", "info"]);
    let after = health(&b, "ok");
    assert_eq!(status(&after), "healthy", "{after}");
    let seen = log(&after).last().cloned().unwrap_or_default();
    wait_health(&b, "ok", Duration::from_secs(30), |h| log(h).last().is_some_and(|l| l["Start"] != seen["Start"]));
    b.docker_ok(&["rm", "-f", "ok"]);
}

#[test]
fn failing_probes_start_period_and_timeouts() {
    let b = Berth::new();
    setup(&b);
    run(&b, "bad", &["--health-cmd", "echo nope; exit 1", "--health-interval", "1s", "--health-retries", "2"]);
    run(
        &b,
        "slow-start",
        &["--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1", "--health-start-period", "120s"],
    );
    run(
        &b,
        "hung",
        &["--health-cmd", "sleep 30", "--health-interval", "1s", "--health-timeout", "1s", "--health-retries", "1"],
    );

    // Two failures in a row: unhealthy, with the streak and the probes' output in the log.
    let h = wait_health(&b, "bad", Duration::from_secs(30), |h| status(h) == "unhealthy");
    assert!(h["FailingStreak"].as_u64().unwrap_or(0) >= 2, "{h}");
    let entries = log(&h);
    assert!(entries.len() >= 2, "{h}");
    assert!(entries.iter().all(|l| l["ExitCode"] == 1 && l["Output"] == "nope\n"), "{h}");
    let ps = b.docker_ok(&["ps", "--filter", "name=bad", "--format", "{{.Status}}"]);
    assert!(ps.trim().ends_with("(unhealthy)"), "{ps}");

    // Failures inside the start period are logged but not counted.
    let h = wait_health(&b, "slow-start", Duration::from_secs(30), |h| log(h).len() >= 2);
    assert_eq!(status(&h), "starting", "{h}");
    assert_eq!(h["FailingStreak"], 0, "{h}");
    assert!(log(&h).iter().all(|l| l["ExitCode"] == 1), "{h}");

    // A probe over its timeout is killed and fails with -1 and Docker's message.
    let h = wait_health(&b, "hung", Duration::from_secs(30), |h| status(h) == "unhealthy");
    let first = &log(&h)[0];
    assert_eq!(first["ExitCode"], -1, "{h}");
    assert!(first["Output"].as_str().is_some_and(|o| o.contains("Health check exceeded timeout (1s)")), "{h}");
    // Timed-out probes are killed: at most the one running now is left, however many timed out before.
    wait_health(&b, "hung", Duration::from_secs(30), |h| log(h).len() >= 3);
    let ps = b.docker_ok(&["exec", "hung", "ps"]);
    assert!(ps.matches("sleep 30").count() <= 1, "timed-out probes left behind: {ps}");

    // The log keeps the last 5 probes; a stopped container is probed no more.
    let h = wait_health(&b, "bad", Duration::from_secs(30), |h| {
        log(h).len() == 5 && h["FailingStreak"].as_u64().unwrap_or(0) >= 6
    });
    assert_eq!(log(&h).len(), 5);
    b.docker_ok(&["stop", "-t", "1", "bad"]);
    let stopped = health(&b, "bad");
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(health(&b, "bad")["FailingStreak"], stopped["FailingStreak"]);
    b.docker_ok(&["rm", "-f", "bad", "slow-start", "hung"]);
}
