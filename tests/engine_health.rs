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
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let until = (now + 1).to_string();
    let events = b.docker_ok(&["events", "--since", "10m", "--until", &until, "--filter", "event=health_status"]);
    assert!(events.contains("health_status: healthy") && events.contains("name=ok"), "{events}");

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

/// A docker-save archive of the busybox rootfs whose image config has a `Healthcheck` (berth's import cannot
/// set one; a Dockerfile's HEALTHCHECK ends up there).
fn image_with_healthcheck(b: &Berth, tag: &str) -> std::path::PathBuf {
    use sha2::{Digest, Sha256};
    let layer = std::fs::read(busybox_tar(b.dir.path())).unwrap_or_else(|e| panic!("layer: {e}"));
    let layer_hex = hex::encode(Sha256::digest(&layer));
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Cmd": ["sleep", "1000"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Healthcheck": {"Test": ["CMD-SHELL", "echo from-image"], "Interval": 1_000_000_000u64, "Retries": 1},
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
    });
    let config = serde_json::to_vec(&config).unwrap_or_default();
    let config_hex = hex::encode(Sha256::digest(&config));
    let manifest = serde_json::json!([{
        "Config": format!("{config_hex}.json"),
        "RepoTags": [tag],
        "Layers": [format!("{layer_hex}/layer.tar")],
    }]);
    let manifest = serde_json::to_vec(&manifest).unwrap_or_default();
    let out = b.dir.path().join("hc-image.tar");
    let file = std::fs::File::create(&out).unwrap_or_else(|e| panic!("{e}"));
    let mut tar = tar::Builder::new(file);
    for (name, data) in [
        (format!("{config_hex}.json"), &config),
        (format!("{layer_hex}/layer.tar"), &layer),
        ("manifest.json".to_string(), &manifest),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, data.as_slice()).unwrap_or_else(|e| panic!("tar: {e}"));
    }
    tar.finish().unwrap_or_else(|e| panic!("tar: {e}"));
    out
}

#[test]
fn the_images_healthcheck_applies_unless_the_container_overrides_it() {
    let b = Berth::new();
    b.ok(&["system", "info"]);
    let archive = image_with_healthcheck(&b, "e2e/hc:1");
    b.docker_ok(&["load", "-i", &archive.to_string_lossy()]);
    b.docker_ok(&["run", "-d", "--name", "img", "--network", "none", "e2e/hc:1"]);
    // The container's own test with the image's interval and retries.
    b.docker_ok(&["run", "-d", "--name", "own", "--network", "none", "--health-cmd", "echo own", "e2e/hc:1"]);
    b.docker_ok(&["run", "-d", "--name", "none", "--network", "none", "--no-healthcheck", "e2e/hc:1"]);

    let h = wait_health(&b, "img", Duration::from_secs(30), |h| status(h) == "healthy");
    assert_eq!(log(&h)[0]["Output"], "from-image\n", "{h}");
    let h = wait_health(&b, "own", Duration::from_secs(30), |h| status(h) == "healthy");
    assert_eq!(log(&h)[0]["Output"], "own\n", "{h}");
    assert_eq!(health(&b, "none"), Value::Null);
    let ps = b.docker_ok(&["ps", "--filter", "name=none", "--format", "{{.Status}}"]);
    assert!(!ps.contains("health"), "{ps}");
    b.docker_ok(&["rm", "-f", "img", "own", "none"]);
}
