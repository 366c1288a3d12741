//! End to end, as root: container records through the `docker` CLI against berthd — create, list with filters,
//! inspect, rename, remove, and the image a container uses being protected from `rmi`.

mod common;

use common::{Berth, busybox_tar, stderr};

#[test]
fn containers_are_created_listed_inspected_renamed_and_removed() {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1", "-c", "CMD [\"sh\"]"]);

    let id = b.docker_ok(&["create", "--name", "web", "-l", "app=web", "e2e/bb:1", "sleep", "100"]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64, "{id}");
    b.docker_ok(&["create", "-l", "app=db", "e2e/bb:1"]);

    // `ps` shows only running containers; `-a` shows created ones; filters narrow it.
    assert_eq!(b.docker_ok(&["ps", "-q"]).trim(), "");
    assert_eq!(b.docker_ok(&["ps", "-a", "-q"]).lines().count(), 2);
    let web = b.docker_ok(&["ps", "-a", "--filter", "label=app=web", "--format", "{{.Names}} {{.Status}}"]);
    assert_eq!(web.trim(), "web Created");
    let by_name = b.docker_ok(&["ps", "-a", "--filter", "name=web", "-q"]);
    assert_eq!(by_name.trim(), &id[..12]);

    let inspect = b.docker_ok(&["inspect", "web", "--format", "{{.State.Status}}|{{.Path}}|{{json .Args}}|{{.Name}}"]);
    assert_eq!(inspect.trim(), "created|sleep|[\"100\"]|/web");

    // Names are unique; a missing image is a 404 that names it.
    let dup = b.docker(&["create", "--name", "web", "e2e/bb:1"]);
    assert!(!dup.status.success());
    assert!(stderr(&dup).contains("is already in use"), "{}", stderr(&dup));
    let bad = b.docker(&["create", "--name", "bad name", "e2e/bb:1"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("invalid container name"), "{}", stderr(&bad));

    // An image a container uses is not removed without force.
    let rmi = b.docker(&["rmi", "e2e/bb:1"]);
    assert!(!rmi.status.success());
    assert!(stderr(&rmi).contains("being used by a container"), "{}", stderr(&rmi));

    b.docker_ok(&["rename", "web", "front"]);
    assert!(b.docker(&["inspect", "web"]).status.code() != Some(0));
    b.docker_ok(&["rm", "front"]);
    let left = b.docker_ok(&["ps", "-a", "-q"]);
    b.docker_ok(&["rm", left.trim()]);
    assert_eq!(b.docker_ok(&["ps", "-a", "-q"]).trim(), "");
    assert!(b.docker(&["rm", "front"]).status.code() != Some(0));
    b.docker_ok(&["rmi", "e2e/bb:1"]);
}

#[test]
fn bad_create_bodies_are_400_naming_the_field() {
    let b = Berth::new();
    b.ok(&["system", "info"]);
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(b.socket())
        .args(["-X", "POST", "-H", "Content-Type: application/json"])
        .args(["-d", r#"{"Image":"x","HostConfig":{"Memory":"lots"}}"#, "http://berth/v1.47/containers/create"])
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("400"), "{text}");
    assert!(text.contains("HostConfig.Memory"), "{text}");
}

/// `docker run`, `ps`, `logs`, `stop`, `start`, `restart`, `kill`, `rm -f`, exit codes and a command that does
/// not exist, with real containers (berth-shim and youki's libcontainer underneath).
#[test]
fn containers_run_through_the_docker_cli() {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1", "-c", "CMD [\"sh\"]"]);

    // Attached run: output reaches the client; --rm removes the container afterwards.
    let out = b.docker_ok(&["run", "--rm", "e2e/bb:1", "echo", "hello from berth"]);
    assert_eq!(out.trim(), "hello from berth");
    assert_eq!(b.docker_ok(&["ps", "-a", "-q"]).trim(), "");

    // Exit codes and separate streams.
    let run = b.docker(&["run", "--name", "e1", "e2e/bb:1", "sh", "-c", "echo out; echo err >&2; exit 3"]);
    assert_eq!(run.status.code(), Some(3), "{}", stderr(&run));
    let logs = b.docker(&["logs", "e1"]);
    assert_eq!(common::stdout(&logs).trim(), "out");
    assert_eq!(stderr(&logs).trim(), "err");
    assert_eq!(b.docker_ok(&["inspect", "e1", "--format", "{{.State.Status}} {{.State.ExitCode}}"]).trim(), "exited 3");

    // A command that is not in the image: the container stays created with exit code 127, as with Docker.
    let nf = b.docker(&["run", "--name", "nf", "e2e/bb:1", "no-such-command"]);
    assert_eq!(nf.status.code(), Some(127), "{}", stderr(&nf));
    assert_eq!(
        b.docker_ok(&["inspect", "nf", "--format", "{{.State.Status}} {{.State.ExitCode}}"]).trim(),
        "created 127"
    );

    // Detached: running, listed, logs, stop/start/restart/kill, then rm -f.
    b.docker_ok(&[
        "run",
        "-d",
        "--name",
        "d1",
        "e2e/bb:1",
        "sh",
        "-c",
        "trap 'exit 0' TERM; echo up; while true; do sleep 0.1; done",
    ]);
    assert_eq!(b.docker_ok(&["ps", "--format", "{{.Names}}"]).trim(), "d1");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !b.docker_ok(&["logs", "d1"]).contains("up") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(b.docker_ok(&["logs", "d1"]).trim(), "up");
    b.docker_ok(&["stop", "-t", "5", "d1"]);
    assert_eq!(b.docker_ok(&["inspect", "d1", "--format", "{{.State.Status}} {{.State.ExitCode}}"]).trim(), "exited 0");
    b.docker_ok(&["start", "d1"]);
    assert_eq!(b.docker_ok(&["inspect", "d1", "--format", "{{.State.Running}}"]).trim(), "true");
    b.docker_ok(&["restart", "-t", "5", "d1"]);
    assert_eq!(b.docker_ok(&["inspect", "d1", "--format", "{{.State.Running}}"]).trim(), "true");
    b.docker_ok(&["kill", "d1"]);
    let code = b.docker_ok(&["wait", "d1"]);
    assert_eq!(code.trim(), "137");
    b.docker_ok(&["start", "d1"]);
    let rm = b.docker(&["rm", "d1"]);
    assert!(!rm.status.success(), "a running container is not removed without -f");
    b.docker_ok(&["rm", "-f", "d1", "e1", "nf"]);
    assert_eq!(b.docker_ok(&["ps", "-a", "-q"]).trim(), "");
}

/// Containers keep running when berthd is killed; a new berthd still lists them, and stop works.
#[test]
fn containers_survive_a_kill_9_of_berthd() {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1"]);
    b.docker_ok(&[
        "run",
        "-d",
        "--name",
        "keep",
        "e2e/bb:1",
        "sh",
        "-c",
        "trap 'exit 0' TERM; while true; do sleep 0.1; done",
    ]);
    let pid_file = b.run_dir().join("berthd.pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap_or_default();
    let _ = std::process::Command::new("kill").arg("-KILL").arg(pid.trim()).status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::path::Path::new(&format!("/proc/{}", pid.trim())).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The next command starts a new berthd, which finds the container still running under its shim.
    b.ok(&["system", "info"]);
    assert_eq!(b.docker_ok(&["ps", "--format", "{{.Names}} {{.State}}"]).trim(), "keep running");
    b.docker_ok(&["stop", "-t", "5", "keep"]);
    assert_eq!(b.docker_ok(&["inspect", "keep", "--format", "{{.State.Status}}"]).trim(), "exited");
    b.docker_ok(&["rm", "keep"]);
}
