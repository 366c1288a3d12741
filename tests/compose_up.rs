//! End to end, as root: the compose commands against a real berthd — `up -d` twice (the second does nothing),
//! recreating only what changed (and restarting `restart: true` dependents), scaling, orphans, depends_on order and
//! gating, failures that name the service, `pause`, the container commands, and `down` removing everything.
//! Stacks use `network_mode: none` until berth-netd is wired into berthd.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Berth, busybox_tar, stderr, stdout};

const IMAGE: &str = "e2e/compose-bb:1";

/// A berth with the busybox image imported.
fn berth() -> Berth {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), IMAGE, "-c", "CMD [\"sh\"]"]);
    b
}

/// Write `compose.yaml` in its own directory under the berth's temp dir; `IMAGE` stands for the test image.
fn compose_file(b: &Berth, dir: &str, yaml: &str) -> PathBuf {
    let dir = b.dir.path().join(dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("compose.yaml");
    std::fs::write(&path, yaml.replace("IMAGE", IMAGE)).unwrap_or_else(|e| panic!("{e}"));
    path
}

/// `berth -f file args…`, which must succeed; returns stderr (where progress goes).
fn compose_ok(b: &Berth, file: &Path, args: &[&str]) -> String {
    let out = compose(b, file, args);
    assert!(out.status.success(), "berth {args:?} failed:\n{}\n{}", stdout(&out), stderr(&out));
    stderr(&out)
}

fn compose(b: &Berth, file: &Path, args: &[&str]) -> std::process::Output {
    let f = file.to_string_lossy().into_owned();
    let mut all = vec!["-f", f.as_str()];
    all.extend_from_slice(args);
    b.berth(&all)
}

fn inspect(b: &Berth, name: &str, format: &str) -> String {
    b.docker_ok(&["inspect", name, "--format", format]).trim().to_string()
}

fn id(b: &Berth, name: &str) -> String {
    inspect(b, name, "{{.Id}}")
}

fn started_at(b: &Berth, name: &str) -> String {
    inspect(b, name, "{{.State.StartedAt}}")
}

/// Names of the project's containers (all states), sorted.
fn names(b: &Berth, project: &str) -> Vec<String> {
    let label = format!("label=com.docker.compose.project={project}");
    let out = b.docker_ok(&["ps", "-a", "--filter", &label, "--format", "{{.Names}}"]);
    let mut v: Vec<String> = out.lines().map(str::to_owned).collect();
    v.sort();
    v
}

const TWO_SERVICES: &str = r#"
name: twice
services:
  web:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    scale: 2
    environment:
      GREETING: hello
  db:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
"#;

#[test]
fn up_twice_changes_nothing_the_second_time() {
    let b = berth();
    let file = compose_file(&b, "twice", TWO_SERVICES);
    let first = compose_ok(&b, &file, &["up", "-d"]);
    for name in ["twice-web-1", "twice-web-2", "twice-db-1"] {
        assert!(first.contains(&format!(" Container {name}  Started")), "{first}");
        assert_eq!(inspect(&b, name, "{{.State.Status}}"), "running");
    }
    assert_eq!(names(&b, "twice"), ["twice-db-1", "twice-web-1", "twice-web-2"]);
    let labels = inspect(&b, "twice-web-2", "{{json .Config.Labels}}");
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap_or_default();
    assert_eq!(labels["com.docker.compose.project"], "twice");
    assert_eq!(labels["com.docker.compose.service"], "web");
    assert_eq!(labels["com.docker.compose.container-number"], "2");
    assert_eq!(labels["com.docker.compose.oneoff"], "False");
    assert_eq!(labels["com.docker.compose.config-hash"].as_str().map(str::len), Some(64));
    assert!(labels["com.docker.compose.image"].as_str().is_some_and(|i| i.starts_with("sha256:")));
    assert_eq!(labels["com.docker.compose.project.config_files"], file.to_string_lossy().as_ref());
    let env = inspect(&b, "twice-web-1", "{{json .Config.Env}}");
    assert!(env.contains("GREETING=hello"), "{env}");

    let ids: Vec<String> = names(&b, "twice").iter().map(|n| id(&b, n)).collect();
    let starts: Vec<String> = names(&b, "twice").iter().map(|n| started_at(&b, n)).collect();
    let begin = Instant::now();
    let second = compose_ok(&b, &file, &["up", "-d"]);
    let took = begin.elapsed();
    assert!(second.contains("nothing to do"), "{second}");
    assert!(!second.contains("Created") && !second.contains("Started"), "{second}");
    assert!(second.contains(" Container twice-db-1  Running"), "{second}");
    assert_eq!(names(&b, "twice").iter().map(|n| id(&b, n)).collect::<Vec<_>>(), ids);
    assert_eq!(names(&b, "twice").iter().map(|n| started_at(&b, n)).collect::<Vec<_>>(), starts);
    eprintln!("no-change up -d took {took:?} (including process start)");

    // ps: running containers by default; -q ids; --services names; json lines.
    let ps = b.ok(&["-f", &file.to_string_lossy(), "ps"]);
    assert!(ps.starts_with("NAME"), "{ps}");
    assert_eq!(ps.lines().count(), 4, "{ps}");
    let quiet = b.ok(&["-f", &file.to_string_lossy(), "ps", "-q"]);
    assert_eq!(quiet.lines().count(), 3, "{quiet}");
    let services = b.ok(&["-f", &file.to_string_lossy(), "ps", "--services"]);
    assert_eq!(services.lines().collect::<Vec<_>>(), ["web", "db"]);
    let json = b.ok(&["-f", &file.to_string_lossy(), "ps", "--format", "json", "db"]);
    let row: serde_json::Value = serde_json::from_str(json.trim()).unwrap_or_default();
    assert_eq!((row["Name"].as_str(), row["State"].as_str()), (Some("twice-db-1"), Some("running")));

    let ls = b.ok(&["ls"]);
    assert!(ls.lines().any(|l| l.starts_with("twice") && l.contains("running(3)")), "{ls}");

    let down = compose_ok(&b, &file, &["down", "-t", "1"]);
    assert!(down.contains(" Container twice-web-1  Removed"), "{down}");
    assert!(names(&b, "twice").is_empty());
}

#[test]
fn changing_one_service_recreates_it_alone_and_restarts_its_restart_true_dependents() {
    let b = berth();
    let stack = |version: &str| {
        format!(
            r#"
name: change
services:
  db:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
    environment:
      VERSION: "{version}"
  api:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
    depends_on:
      db:
        condition: service_started
        restart: true
  worker:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
    depends_on: [db]
  other:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
"#
        )
    };
    let file = compose_file(&b, "change", &stack("1"));
    compose_ok(&b, &file, &["up", "-d"]);
    let before: Vec<(String, String)> = names(&b, "change").iter().map(|n| (id(&b, n), started_at(&b, n))).collect();
    // StartedAt has whole-second precision in some engines: make the restart visible.
    std::thread::sleep(Duration::from_millis(1100));

    compose_file(&b, "change", &stack("2"));
    let out = compose_ok(&b, &file, &["up", "-d"]);
    assert!(out.contains(" Container change-db-1  Recreate"), "{out}");
    assert!(out.contains(" Container change-api-1  Restarted"), "{out}");
    let after: Vec<(String, String)> = names(&b, "change").iter().map(|n| (id(&b, n), started_at(&b, n))).collect();
    // Sorted names: api, db, other, worker.
    assert_eq!(after[0].0, before[0].0, "api is the same container");
    assert_ne!(after[0].1, before[0].1, "api was restarted");
    assert_ne!(after[1].0, before[1].0, "db was recreated");
    assert_eq!(after[2], before[2], "other was left alone");
    assert_eq!(after[3], before[3], "worker (no restart: true) was left alone");
    assert!(inspect(&b, "change-db-1", "{{json .Config.Env}}").contains("VERSION=2"));
    assert_eq!(names(&b, "change"), ["change-api-1", "change-db-1", "change-other-1", "change-worker-1"]);

    // --force-recreate recreates everything; --no-recreate leaves a changed service as it is.
    compose_file(&b, "change", &stack("3"));
    compose_ok(&b, &file, &["up", "-d", "--no-recreate"]);
    assert!(inspect(&b, "change-db-1", "{{json .Config.Env}}").contains("VERSION=2"));
    let forced = compose_ok(&b, &file, &["up", "-d", "--force-recreate", "-t", "0"]);
    assert_eq!(forced.matches("Recreated").count(), 4, "{forced}");
    assert!(inspect(&b, "change-db-1", "{{json .Config.Env}}").contains("VERSION=3"));
    compose_ok(&b, &file, &["down", "-t", "0"]);
    assert!(names(&b, "change").is_empty());
}

#[test]
fn scale_up_and_down_and_orphans() {
    let b = berth();
    let with_extra = r#"
name: scale
services:
  web:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
  extra:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
"#;
    let file = compose_file(&b, "scale", with_extra);
    compose_ok(&b, &file, &["up", "-d", "--scale", "web=3"]);
    assert_eq!(names(&b, "scale"), ["scale-extra-1", "scale-web-1", "scale-web-2", "scale-web-3"]);
    let web1 = id(&b, "scale-web-1");
    let out = compose_ok(&b, &file, &["up", "-d", "--scale", "web=1"]);
    assert!(out.contains(" Container scale-web-3  Removed"), "{out}");
    assert_eq!(names(&b, "scale"), ["scale-extra-1", "scale-web-1"]);
    assert_eq!(id(&b, "scale-web-1"), web1, "scaling down keeps the lowest numbers");
    compose_ok(&b, &file, &["up", "-d", "--scale", "web=2"]);
    assert_eq!(names(&b, "scale"), ["scale-extra-1", "scale-web-1", "scale-web-2"]);

    // `extra` leaves the file: an orphan, reported and kept until --remove-orphans.
    let without = with_extra.split("  extra:").next().unwrap_or_default().to_string();
    compose_file(&b, "scale", &without);
    let out = compose_ok(&b, &file, &["up", "-d", "--scale", "web=2"]);
    assert!(out.contains("orphan containers (scale-extra-1)"), "{out}");
    assert!(names(&b, "scale").contains(&"scale-extra-1".to_string()));
    let out = compose_ok(&b, &file, &["up", "-d", "--scale", "web=2", "--remove-orphans"]);
    assert!(out.contains(" Container scale-extra-1  Removed"), "{out}");
    assert_eq!(names(&b, "scale"), ["scale-web-1", "scale-web-2"]);
    compose_ok(&b, &file, &["down"]);
    assert!(names(&b, "scale").is_empty());
}

#[test]
fn depends_on_order_and_completion_gating() {
    let b = berth();
    let file = compose_file(
        &b,
        "order",
        r#"
name: order
services:
  app:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
    depends_on:
      migrate:
        condition: service_completed_successfully
      db:
        condition: service_started
  migrate:
    image: IMAGE
    command: ["sh", "-c", "sleep 1; echo migrated"]
    network_mode: none
    depends_on: [db]
  db:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
"#,
    );
    compose_ok(&b, &file, &["up", "-d"]);
    let db = started_at(&b, "order-db-1");
    let migrate = started_at(&b, "order-migrate-1");
    let migrated = inspect(&b, "order-migrate-1", "{{.State.FinishedAt}}");
    let app = started_at(&b, "order-app-1");
    // RFC 3339 timestamps in UTC with the same layout compare as strings.
    assert!(db <= migrate, "db {db} before migrate {migrate}");
    assert!(migrated <= app, "migrate finished {migrated} before app started {app}");
    assert_eq!(inspect(&b, "order-migrate-1", "{{.State.ExitCode}}"), "0");
    let logs = b.ok(&["-f", &file.to_string_lossy(), "logs", "migrate"]);
    assert!(logs.contains("migrate-1  | migrated"), "{logs}");
    // -f follows until the container stops: here it has, so it returns with everything; -t adds timestamps.
    let followed = b.ok(&["-f", &file.to_string_lossy(), "logs", "-f", "-t", "migrate"]);
    let line = followed.lines().next().unwrap_or_default();
    assert!(line.starts_with("migrate-1  | 20") && line.ends_with(" migrated"), "{followed}");
    compose_ok(&b, &file, &["down", "-t", "0"]);

    // A failed migration keeps the app from starting; the error names the service; db is left running.
    let failing = compose_file(
        &b,
        "order-fail",
        r#"
name: orderfail
services:
  app:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    depends_on:
      migrate:
        condition: service_completed_successfully
  migrate:
    image: IMAGE
    command: ["sh", "-c", "echo schema is broken; exit 3"]
    network_mode: none
    depends_on: [db]
  db:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
"#,
    );
    let out = compose(&b, &failing, &["up", "-d"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("\"migrate\" didn't complete successfully") && err.contains("code 3"), "{err}");
    assert!(!names(&b, "orderfail").contains(&"orderfail-app-1".to_string()), "app must not be created");
    assert_eq!(inspect(&b, "orderfail-db-1", "{{.State.Status}}"), "running");
    compose_ok(&b, &failing, &["down", "-t", "0"]);
    assert!(names(&b, "orderfail").is_empty());
}

#[test]
fn failures_name_the_service_and_invalid_files_touch_nothing() {
    let b = berth();
    let invalid = compose_file(&b, "invalid", "name: invalid\nservices:\n  web:\n    image: IMAGE\n    ports: [bad]\n");
    let out = compose(&b, &invalid, &["up", "-d"]);
    assert!(!out.status.success());
    assert!(names(&b, "invalid").is_empty());

    let broken = compose_file(
        &b,
        "broken",
        r#"
name: broken
services:
  ok:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
  bad:
    image: IMAGE
    command: ["/no/such/binary"]
    network_mode: none
  after:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    depends_on: [bad]
"#,
    );
    let out = compose(&b, &broken, &["up", "-d"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("service \"bad\" failed") && err.contains("/no/such/binary"), "{err}");
    assert_eq!(inspect(&b, "broken-ok-1", "{{.State.Status}}"), "running", "the rest is left as it is");
    assert!(err.contains("not started: after (its dependency \"bad\" failed)"), "{err}");
    assert!(!names(&b, "broken").contains(&"broken-after-1".to_string()), "a dependent of a failed service waits");

    // An image the store lacks is reported before anything is created.
    let missing = compose_file(
        &b,
        "missing",
        "name: missing\nservices:\n  web:\n    image: e2e/not-here:1\n    network_mode: none\n",
    );
    let out = compose(&b, &missing, &["up", "-d"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("e2e/not-here:1"), "{}", stderr(&out));
    assert!(names(&b, "missing").is_empty());
    compose_ok(&b, &broken, &["down", "-t", "0"]);
    assert!(names(&b, "broken").is_empty());
}

/// Lines of a container's log so far.
fn log_lines(b: &Berth, name: &str) -> usize {
    b.docker_ok(&["logs", name]).lines().count()
}

#[test]
fn pause_freezes_and_the_container_commands_work() {
    let b = berth();
    let file = compose_file(
        &b,
        "cmds",
        r#"
name: cmds
services:
  ticker:
    image: IMAGE
    command: ["sh", "-c", "while true; do echo tick; sleep 0.1; done"]
    network_mode: none
    stop_signal: SIGKILL
  idle:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
"#,
    );
    compose_ok(&b, &file, &["up", "-d"]);

    // pause: the ticker stops writing; unpause: it goes on.
    let out = compose_ok(&b, &file, &["pause"]);
    assert!(out.contains(" Container cmds-ticker-1  Paused"), "{out}");
    assert_eq!(inspect(&b, "cmds-ticker-1", "{{.State.Status}}"), "paused");
    let frozen = log_lines(&b, "cmds-ticker-1");
    std::thread::sleep(Duration::from_millis(700));
    assert_eq!(log_lines(&b, "cmds-ticker-1"), frozen, "a paused container does not run");
    compose_ok(&b, &file, &["unpause"]);
    assert_eq!(inspect(&b, "cmds-ticker-1", "{{.State.Status}}"), "running");
    let deadline = Instant::now() + Duration::from_secs(10);
    while log_lines(&b, "cmds-ticker-1") <= frozen && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(log_lines(&b, "cmds-ticker-1") > frozen, "an unpaused container runs again");

    // logs: prefixed per container, --no-log-prefix, --tail.
    let logs = b.ok(&["-f", &file.to_string_lossy(), "logs", "--tail", "2", "ticker"]);
    assert_eq!(logs.lines().collect::<Vec<_>>(), ["ticker-1  | tick", "ticker-1  | tick"]);
    let bare = b.ok(&["-f", &file.to_string_lossy(), "logs", "--no-log-prefix", "-n", "1", "ticker"]);
    assert_eq!(bare, "tick\n");

    // stop / start / restart / kill / rm.
    let out = compose_ok(&b, &file, &["stop", "idle"]);
    assert!(out.contains(" Container cmds-idle-1  Stopped"), "{out}");
    assert_eq!(inspect(&b, "cmds-idle-1", "{{.State.Status}}"), "exited");
    assert_eq!(inspect(&b, "cmds-ticker-1", "{{.State.Status}}"), "running");
    compose_ok(&b, &file, &["start"]);
    assert_eq!(inspect(&b, "cmds-idle-1", "{{.State.Status}}"), "running");
    let before = started_at(&b, "cmds-idle-1");
    std::thread::sleep(Duration::from_millis(1100));
    compose_ok(&b, &file, &["restart", "idle"]);
    assert_ne!(started_at(&b, "cmds-idle-1"), before);
    compose_ok(&b, &file, &["kill", "idle"]);
    assert_eq!(inspect(&b, "cmds-idle-1", "{{.State.Status}}"), "exited");
    // wait: the exit code of the stopped container.
    let waited = b.berth(&["-f", &file.to_string_lossy(), "wait", "idle"]);
    assert_eq!(waited.status.code(), Some(137), "{}", stdout(&waited));
    compose_ok(&b, &file, &["rm", "-f"]);
    assert_eq!(names(&b, "cmds"), ["cmds-ticker-1"], "rm removes stopped containers only");
    compose_ok(&b, &file, &["rm", "-f", "-s"]);
    assert!(names(&b, "cmds").is_empty());
}

/// The stack of the volume test; `round` changes the service's environment (and so forces a recreate).
fn volume_stack(round: u32) -> String {
    format!(
        r#"
name: vols
services:
  writer:
    image: IMAGE
    command: ["sh", "-c", "cat /data/note /cache/mark 2>/dev/null; echo kept > /data/note; echo anon > /cache/mark; echo ready; sleep 1000"]
    network_mode: none
    stop_signal: SIGKILL
    environment:
      ROUND: "{round}"
    volumes:
      - data:/data
      - /cache
volumes:
  data: {{}}
"#
    )
}

/// Wait until the container's log has `text` (bounded), then return the log.
fn wait_for_log(b: &Berth, name: &str, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let logs = b.docker_ok(&["logs", name]);
        if logs.contains(text) || Instant::now() > deadline {
            return logs;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn down_removes_containers_and_with_v_the_volumes() {
    let b = berth();
    let file = compose_file(&b, "vols", &volume_stack(1));
    let out = compose_ok(&b, &file, &["up", "-d"]);
    assert!(out.contains(" Volume vols_data  Created"), "{out}");
    let labels = b.docker_ok(&["volume", "inspect", "vols_data", "--format", "{{json .Labels}}"]);
    assert!(labels.contains("\"com.docker.compose.project\":\"vols\""), "{labels}");
    assert!(wait_for_log(&b, "vols-writer-1", "ready").contains("ready"));

    // A recreate keeps the anonymous volume (and the named one).
    compose_file(&b, "vols", &volume_stack(2));
    let out = compose_ok(&b, &file, &["up", "-d"]);
    assert!(out.contains(" Container vols-writer-1  Recreated"), "{out}");
    let logs = wait_for_log(&b, "vols-writer-1", "ready");
    assert!(logs.contains("kept") && logs.contains("anon"), "{logs}");

    compose_ok(&b, &file, &["down"]);
    assert!(names(&b, "vols").is_empty());
    let kept = b.docker_ok(&["volume", "ls", "-q"]);
    assert!(kept.lines().any(|v| v == "vols_data"), "down keeps named volumes");
    // Without -v the anonymous volume stays too (dangling), as with Docker Compose.
    let dangling: Vec<&str> = kept.lines().filter(|v| *v != "vols_data").collect();
    assert_eq!(dangling.len(), 1, "{kept}");

    // The named volume survives down; a new container gets a new anonymous volume.
    compose_ok(&b, &file, &["up", "-d"]);
    let logs = wait_for_log(&b, "vols-writer-1", "ready");
    assert!(logs.contains("kept") && !logs.contains("anon"), "{logs}");
    let out = compose_ok(&b, &file, &["down", "-v"]);
    assert!(out.contains(" Volume vols_data  Removed"), "{out}");
    assert!(names(&b, "vols").is_empty());
    let left = b.docker_ok(&["volume", "ls", "-q"]);
    assert_eq!(left.lines().collect::<Vec<_>>(), dangling, "down -v removes the named and the anonymous volume");
}

#[test]
fn service_healthy_gates_dependents_and_wait_waits_for_health() {
    let b = berth();
    let file = compose_file(
        &b,
        "health",
        r#"
name: health
services:
  app:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
    depends_on:
      db:
        condition: service_healthy
  db:
    image: IMAGE
    command: ["sh", "-c", "sleep 2; touch /tmp/ready; sleep 1000"]
    network_mode: none
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 300ms
      retries: 30
"#,
    );
    compose_ok(&b, &file, &["up", "-d"]);
    // db only becomes healthy after 2 s: without the gate, up would have returned while it was still starting.
    assert_eq!(inspect(&b, "health-db-1", "{{.State.Health.Status}}"), "healthy");
    assert_eq!(inspect(&b, "health-app-1", "{{.State.Status}}"), "running");
    compose_ok(&b, &file, &["down", "-t", "0"]);

    // --wait returns once every container with a healthcheck is healthy.
    compose_ok(&b, &file, &["up", "-d", "--no-deps", "--wait", "--wait-timeout", "30", "db"]);
    assert_eq!(inspect(&b, "health-db-1", "{{.State.Health.Status}}"), "healthy");
    assert_eq!(names(&b, "health"), ["health-db-1"], "--no-deps with a service starts only that service");
    compose_ok(&b, &file, &["down", "-t", "0"]);

    // An unhealthy dependency: the dependent is not created and the error says why.
    let sick = compose_file(
        &b,
        "sick",
        r#"
name: sick
services:
  app:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    depends_on:
      db:
        condition: service_healthy
  db:
    image: IMAGE
    command: ["sleep", "1000"]
    network_mode: none
    stop_signal: SIGKILL
    healthcheck:
      test: ["CMD", "false"]
      interval: 200ms
      retries: 1
"#,
    );
    let out = compose(&b, &sick, &["up", "-d"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("sick-db-1 is unhealthy"), "{}", stderr(&out));
    assert_eq!(names(&b, "sick"), ["sick-db-1"]);
    compose_ok(&b, &sick, &["down", "-t", "0"]);
}

#[test]
fn services_reach_each_other_by_name_ports_are_published_and_down_removes_the_network() {
    let b = berth();
    // A free port on the loopback: bound once to learn it, then released for berth to publish.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let file = compose_file(
        &b,
        "net",
        &r#"
name: net
services:
  web:
    image: IMAGE
    command: ["httpd", "-f", "-p", "80", "-h", "/etc"]
    stop_signal: SIGKILL
    ports:
      - "127.0.0.1:PORT:80"
  client:
    image: IMAGE
    command: ["sh", "-c", "until wget -q -O /dev/null http://web/hostname; do sleep 0.2; done; echo reached web; sleep 1000"]
    stop_signal: SIGKILL
    depends_on: [web]
"#
        .replace("PORT", &port.to_string()),
    );
    let out = compose_ok(&b, &file, &["up", "-d"]);
    assert!(out.contains(" Network net_default  Created"), "{out}");
    // The published port answers on the host.
    let url = format!("http://127.0.0.1:{port}/hostname");
    let deadline = Instant::now() + Duration::from_secs(10);
    let fetched = loop {
        let out = std::process::Command::new("curl").args(["-s", "--max-time", "2", &url]).output();
        let out = out.unwrap_or_else(|e| panic!("curl: {e}"));
        if out.status.success() || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(fetched.status.success(), "GET {url}: {}", stderr(&fetched));
    let networks = b.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(networks.lines().any(|n| n == "net_default"), "{networks}");
    let logs = wait_for_log(&b, "net-client-1", "reached web");
    assert!(logs.contains("reached web"), "the client reaches web by its service name: {logs}");
    let second = compose_ok(&b, &file, &["up", "-d"]);
    assert!(second.contains("nothing to do"), "{second}");
    let out = compose_ok(&b, &file, &["down"]);
    assert!(out.contains(" Network net_default  Removed"), "{out}");
    let networks = b.docker_ok(&["network", "ls", "--format", "{{.Name}}"]);
    assert!(!networks.lines().any(|n| n == "net_default"), "{networks}");
    assert!(names(&b, "net").is_empty());
}
