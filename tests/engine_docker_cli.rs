//! End to end, as root: the parts of the `docker` CLI's container workflow that stream — `logs -f` (with
//! `--tail`, `--since`, `-t`), `run -i` feeding stdin, `run -t` with a pty, log rotation — and a container's log
//! that keeps growing across a `kill -9` of berthd.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Berth, busybox_tar, stderr, stdout};

fn setup() -> Berth {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/cli:1"]);
    b
}

/// The `docker` CLI pointed at this berth, for commands the harness's `docker()` cannot drive (pipes, streams).
fn docker_cmd(b: &Berth, args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(args)
        .env("DOCKER_HOST", format!("unix://{}", b.socket().display()))
        .env("DOCKER_CONFIG", b.dir.path().join("docker-config"));
    cmd
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn logs_follow_streams_new_lines_and_ends_with_the_container() {
    let b = setup();
    b.docker_ok(&[
        "run",
        "-d",
        "--name",
        "ticker",
        "e2e/cli:1",
        "sh",
        "-c",
        "for i in 1 2 3; do echo line$i; done; sleep 4; echo late; sleep 1; echo last",
    ]);
    wait_until("the first lines", Duration::from_secs(10), || b.docker_ok(&["logs", "ticker"]).contains("line3"));

    // --tail and --timestamps on what is there.
    assert_eq!(b.docker_ok(&["logs", "--tail", "1", "ticker"]).trim(), "line3");
    let stamped = b.docker_ok(&["logs", "-t", "--tail", "1", "ticker"]);
    let (stamp, text) = stamped.trim().split_once(' ').unwrap_or_default();
    assert_eq!(text, "line3");
    assert!(stamp.len() >= 20 && stamp.ends_with('Z') && stamp.contains('T'), "{stamp}");
    // --since in the future shows nothing.
    let future = (std::time::SystemTime::now() + Duration::from_secs(3600))
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    assert_eq!(b.docker_ok(&["logs", "--since", &future.to_string(), "ticker"]).trim(), "");

    // -f: the old lines at once, the new ones as they come, and the stream ends when the container exits.
    let mut follow = docker_cmd(&b, &["logs", "-f", "ticker"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("docker logs -f: {e}"));
    let out = follow.stdout.take().unwrap_or_else(|| panic!("no stdout"));
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains(&"last".to_string()) && Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) {
            seen.push(line);
        }
    }
    assert_eq!(seen, ["line1", "line2", "line3", "late", "last"]);
    // The container exited after `last`: the follower ends on its own.
    let ended = (0..100).any(|_| {
        std::thread::sleep(Duration::from_millis(100));
        matches!(follow.try_wait(), Ok(Some(_)))
    });
    if !ended {
        let _ = follow.kill();
    }
    let _ = follow.wait();
    assert!(ended, "docker logs -f did not end when the container exited");
    b.docker_ok(&["rm", "-f", "ticker"]);
}

#[test]
fn run_feeds_stdin_and_gives_a_tty() {
    let b = setup();
    // `-i`: the client's stdin reaches the container; EOF ends `cat`.
    let mut cat = docker_cmd(&b, &["run", "-i", "--rm", "e2e/cli:1", "sh", "-c", "cat; echo done"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("docker run -i: {e}"));
    if let Some(mut stdin) = cat.stdin.take() {
        let _ = stdin.write_all(b"through stdin\n");
    }
    let out = cat.wait_with_output().unwrap_or_else(|e| panic!("docker run -i: {e}"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).replace('\r', ""), "through stdin\ndone\n");

    // `-t`: the container's stdout is a terminal (a pty the shim holds), and its log still has the output.
    let tty = b.docker(&["run", "-t", "--name", "tty", "e2e/cli:1", "sh", "-c", "test -t 1 && tty"]);
    assert!(tty.status.success(), "{}", stderr(&tty));
    assert!(stdout(&tty).trim().starts_with("/dev/pts/"), "{}", stdout(&tty));
    assert!(b.docker_ok(&["logs", "tty"]).contains("/dev/pts/"));
    b.docker_ok(&["rm", "tty"]);
    assert_eq!(b.docker_ok(&["ps", "-a", "-q"]).trim(), "");
}

#[test]
fn logs_rotate_and_keep_growing_across_a_berthd_kill() {
    let b = setup();
    // Rotation: a 1 KiB log with 2 files keeps only the newest lines.
    b.docker_ok(&[
        "run",
        "--name",
        "chatty",
        "--log-opt",
        "max-size=1k",
        "--log-opt",
        "max-file=2",
        "e2e/cli:1",
        "sh",
        "-c",
        "i=0; while [ $i -lt 200 ]; do echo line-$i; i=$((i+1)); done",
    ]);
    let logs = b.docker_ok(&["logs", "chatty"]);
    assert!(logs.trim_end().ends_with("line-199"), "{logs}");
    assert!(!logs.contains("line-0\n"), "the oldest lines are rotated away");
    let id = b.docker_ok(&["inspect", "chatty", "--format", "{{.Id}}"]);
    let dir = b.root().join("containers").join(id.trim());
    let files: Vec<_> = std::fs::read_dir(&dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let logs_kept = files.iter().filter(|f| f.contains("-json.log")).count();
    assert_eq!(logs_kept, 2, "{files:?}");

    // A running container's log keeps growing while berthd is gone and after it is back.
    b.docker_ok(&[
        "run",
        "-d",
        "--name",
        "steady",
        "e2e/cli:1",
        "sh",
        "-c",
        "i=0; while true; do echo tick-$i; i=$((i+1)); sleep 0.1; done",
    ]);
    wait_until("ticks", Duration::from_secs(10), || b.docker_ok(&["logs", "steady"]).contains("tick-3"));
    let pid = std::fs::read_to_string(b.run_dir().join("berthd.pid")).unwrap_or_default();
    let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
    wait_until("berthd to die", Duration::from_secs(5), || {
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists()
    });
    // The log file grows while no berthd runs: the shim writes it.
    let steady_dir = std::fs::read_dir(b.root().join("containers"))
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.join("record.json").exists()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .find(|p| std::fs::read_to_string(p.join("record.json")).is_ok_and(|r| r.contains("\"steady\"")))
        .unwrap_or_else(|| panic!("no record for steady"));
    let log_len = || {
        std::fs::read_dir(&steady_dir)
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().ends_with("-json.log"))
                    .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
                    .sum::<u64>()
            })
            .unwrap_or(0)
    };
    let len = log_len();
    wait_until("the log to grow without berthd", Duration::from_secs(5), || log_len() > len);
    // A berth command starts a new berthd, which serves the lines written meanwhile, and the log keeps growing.
    b.ok(&["system", "info"]);
    let before = b.docker_ok(&["logs", "steady"]).lines().count();
    assert!(before >= 6, "{before} lines");
    wait_until("more ticks", Duration::from_secs(10), || b.docker_ok(&["logs", "steady"]).lines().count() > before + 3);
    b.docker_ok(&["rm", "-f", "steady", "chatty"]);
}

#[test]
fn init_true_runs_a_reaper_as_pid_1_that_forwards_signals() {
    let b = setup();
    // tini (Debian's tini-static) is pid 1 and the command its child.
    let ps = b.docker_ok(&["run", "--rm", "--init", "--network", "none", "e2e/cli:1", "cat", "/proc/1/cmdline"]);
    assert!(ps.starts_with("/sbin/docker-init\0--\0cat\0"), "{ps:?}");
    // A plain `sleep` as pid 1 ignores SIGTERM (so `stop` would wait for its timeout); under the init it dies.
    b.docker_ok(&["run", "-d", "--init", "--network", "none", "--name", "sleeper", "e2e/cli:1", "sleep", "600"]);
    let t = Instant::now();
    b.docker_ok(&["stop", "-t", "20", "sleeper"]);
    assert!(t.elapsed() < Duration::from_secs(10), "stop took {:?}: SIGTERM did not reach sleep", t.elapsed());
    let state = b.docker_ok(&["inspect", "sleeper", "--format", "{{.State.ExitCode}}"]);
    assert_eq!(state.trim(), "143", "sleep died of SIGTERM (128 + 15)");
    b.docker_ok(&["rm", "sleeper"]);
}
