//! End to end, as root: `docker exec` against berthd — output and exit codes, env, user, workdir, stdin, the
//! container's namespaces, cgroup, capabilities and seccomp filter, Docker's 126/127 for a command that cannot
//! run, 409 for a stopped container — and a tty exec with resize through the typed client.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_engine::client::Client;
use berth_engine::client::exec::{CreateExecOptions, StartExecOptions};
use common::{Berth, busybox_tar, stderr, stdout};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn setup(b: &Berth, name: &str) {
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/exec:1"]);
    b.docker_ok(&["run", "-d", "--name", name, "--network", "none", "e2e/exec:1", "sleep", "1000"]);
}

/// `docker …` with `input` on its stdin.
fn docker_with_stdin(b: &Berth, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new("docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", b.socket().display()))
        .env("DOCKER_CONFIG", b.dir.path().join("docker-config"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run docker: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input).unwrap_or_else(|e| panic!("stdin: {e}"));
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("docker: {e}"))
}

fn status_line(text: &str, key: &str) -> String {
    text.lines().find(|l| l.starts_with(key)).unwrap_or_default().to_string()
}

#[test]
fn exec_runs_commands_with_the_containers_settings() {
    let b = Berth::new();
    setup(&b, "ex");

    let ls = b.docker_ok(&["exec", "ex", "ls", "/"]);
    assert!(ls.lines().any(|l| l == "bin") && ls.lines().any(|l| l == "etc"), "{ls}");

    // Exit codes come back as the docker CLI's own.
    assert_eq!(b.docker(&["exec", "ex", "sh", "-c", "exit 3"]).status.code(), Some(3));
    let err = b.docker(&["exec", "ex", "sh", "-c", "echo to-err >&2"]);
    assert_eq!(stderr(&err).trim(), "to-err");
    assert_eq!(stdout(&err).trim(), "");

    // -e, -u (name and uid:gid, resolved in the container's /etc/passwd), -w.
    assert_eq!(b.docker_ok(&["exec", "-e", "FOO=bar", "ex", "sh", "-c", "echo $FOO"]).trim(), "bar");
    let id = b.docker_ok(&["exec", "-u", "www-data", "ex", "sh", "-c", "id; echo $HOME"]);
    assert!(id.contains("uid=33(www-data) gid=33(www-data)") && id.contains("/var/www"), "{id}");
    assert!(b.docker_ok(&["exec", "-u", "1000:1000", "ex", "id"]).contains("uid=1000 gid=1000"));
    assert_eq!(b.docker_ok(&["exec", "-w", "/tmp", "ex", "pwd"]).trim(), "/tmp");
    let nobody = b.docker(&["exec", "-u", "nosuchuser", "ex", "true"]);
    assert_eq!(nobody.status.code(), Some(126), "{}", stderr(&nobody));

    // -i: stdin reaches the process and its end is EOF.
    let cat = docker_with_stdin(&b, &["exec", "-i", "ex", "sh", "-c", "cat; echo done"], b"hello\nworld\n");
    assert!(cat.status.success(), "{}", stderr(&cat));
    assert_eq!(stdout(&cat), "hello\nworld\ndone\n");

    // A command that cannot run: Docker's 127 (not found) and 126 (not executable), with the runtime's message.
    let missing = b.docker(&["exec", "ex", "no-such-command"]);
    assert_eq!(missing.status.code(), Some(127));
    assert!(format!("{}{}", stdout(&missing), stderr(&missing)).contains("not found"), "{missing:?}");
    assert_eq!(b.docker(&["exec", "ex", "/etc/passwd"]).status.code(), Some(126));
    let nowhere = b.docker(&["exec", "-w", "/nowhere", "ex", "true"]);
    assert_eq!(nowhere.status.code(), Some(127));
    assert!(stdout(&nowhere).contains("chdir to cwd (\"/nowhere\")"), "{nowhere:?}");

    // The container's pid namespace (pid 1 is its init), capabilities, no_new_privs and seccomp filter.
    let cmdline = b.docker_ok(&["exec", "ex", "cat", "/proc/1/cmdline"]);
    assert_eq!(cmdline.replace('\0', " ").trim(), "sleep 1000");
    let own = b.docker_ok(&["exec", "ex", "cat", "/proc/self/status"]);
    let init = b.docker_ok(&["exec", "ex", "cat", "/proc/1/status"]);
    for key in ["CapEff:", "CapBnd:", "NoNewPrivs:", "Seccomp:"] {
        assert_eq!(status_line(&own, key), status_line(&init, key), "{key}");
    }
    assert_eq!(status_line(&own, "Seccomp:").split_whitespace().nth(1), Some("2"), "filtered: {own}");
    // --privileged: every capability, beyond the container's.
    let privileged = b.docker_ok(&["exec", "--privileged", "ex", "cat", "/proc/self/status"]);
    assert_ne!(status_line(&privileged, "CapEff:"), status_line(&init, "CapEff:"));

    // The container lists its execs.
    let ids = b.docker_ok(&["inspect", "ex", "--format", "{{len .ExecIDs}}"]);
    assert!(ids.trim().parse::<usize>().unwrap_or(0) >= 10, "{ids}");

    // A paused container: a conflict too.
    b.docker_ok(&["pause", "ex"]);
    let paused = b.docker(&["exec", "ex", "true"]);
    assert!(stderr(&paused).contains("is paused"), "{}", stderr(&paused));
    b.docker_ok(&["unpause", "ex"]);
    b.docker_ok(&["exec", "ex", "true"]);

    // A stopped container: Docker's conflict, and the CLI fails.
    b.docker_ok(&["stop", "-t", "1", "ex"]);
    let stopped = b.docker(&["exec", "ex", "ls"]);
    assert!(!stopped.status.success());
    assert!(stderr(&stopped).contains("is not running"), "{}", stderr(&stopped));
    b.docker_ok(&["rm", "ex"]);
}

#[test]
fn exec_joins_the_containers_cgroup_and_reports_its_pid() {
    let b = Berth::new();
    setup(&b, "cg");
    let init_pid = b.docker_ok(&["inspect", "cg", "--format", "{{.State.Pid}}"]).trim().to_string();
    let client = Client::connect_with_unix(&b.socket());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let options = CreateExecOptions { cmd: vec!["sleep".into(), "30".into()], ..Default::default() };
        let exec = client.create_exec("cg", &options).await.unwrap_or_else(|e| panic!("create: {e}"));
        let detached = StartExecOptions { detach: true, ..Default::default() };
        assert!(client.start_exec(&exec.id, &detached).await.unwrap_or_else(|e| panic!("start: {e}")).is_none());
        // The pid is reported once the helper has it (bounded).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut inspect = client.inspect_exec(&exec.id).await.unwrap_or_else(|e| panic!("inspect: {e}"));
        while inspect.pid == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            inspect = client.inspect_exec(&exec.id).await.unwrap_or_else(|e| panic!("inspect: {e}"));
        }
        assert!(inspect.running && inspect.pid > 0, "{inspect:?}");
        assert_eq!(inspect.container_id.len(), 64);
        assert_eq!(inspect.process_config.entrypoint, "sleep");
        let cgroup = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        let own = cgroup(&inspect.pid.to_string());
        assert!(!own.is_empty());
        assert_eq!(own, cgroup(&init_pid), "the exec is in the container's cgroups");
        let ns = |pid: &str, ns: &str| std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok();
        for kind in ["pid", "mnt", "uts", "ipc", "net"] {
            assert_eq!(ns(&inspect.pid.to_string(), kind), ns(&init_pid, kind), "{kind} namespace");
        }
        // A second start is a conflict; unknown ids are 404.
        let again = client.start_exec(&exec.id, &detached).await.err().and_then(|e| e.status());
        assert_eq!(again, Some(409));
        assert_eq!(client.inspect_exec("nope").await.err().and_then(|e| e.status()), Some(404));
        let none = client.create_exec("no-such-container", &options).await.err().and_then(|e| e.status());
        assert_eq!(none, Some(404));
    });
    b.docker_ok(&["rm", "-f", "cg"]);
}

#[test]
fn tty_exec_relays_input_output_and_resize() {
    let b = Berth::new();
    setup(&b, "tty");
    let client = Client::connect_with_unix(&b.socket());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let options = CreateExecOptions {
            attach_stdin: true,
            attach_stdout: true,
            attach_stderr: true,
            tty: true,
            cmd: vec!["sh".into(), "-c".into(), "read line; tty; stty size; echo got:$line:$TERM".into()],
            ..Default::default()
        };
        let exec = client.create_exec("tty", &options).await.unwrap_or_else(|e| panic!("create: {e}"));
        let stream = client
            .start_exec(&exec.id, &StartExecOptions { tty: true, console_size: Some([30, 100]), ..Default::default() })
            .await
            .unwrap_or_else(|e| panic!("start: {e}"))
            .unwrap_or_else(|| panic!("attached start gave no stream"));
        // The pty exists once the process runs: resize until it does (bounded), then type a line.
        let deadline = Instant::now() + Duration::from_secs(10);
        while let Err(e) = client.resize_exec(&exec.id, 40, 120).await {
            assert!(Instant::now() < deadline, "resize: {e}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut io = stream.io;
        io.write_all(b"hi\n").await.unwrap_or_else(|e| panic!("write: {e}"));
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), io.read_to_end(&mut out))
            .await
            .unwrap_or_else(|_| panic!("the tty exec did not end"))
            .unwrap_or_else(|e| panic!("read: {e}"));
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("/dev/pts/"), "{text:?}");
        assert!(text.contains("40 120"), "resized: {text:?}");
        assert!(text.contains("got:hi:xterm"), "{text:?}");
        // Raw tty output, no stdcopy frames: the pty turns \n into \r\n.
        assert!(text.contains("\r\n"), "{text:?}");
        let inspect = client.inspect_exec(&exec.id).await.unwrap_or_else(|e| panic!("inspect: {e}"));
        assert_eq!((inspect.running, inspect.exit_code), (false, Some(0)));
        assert!(inspect.process_config.tty);

        // The detach keys (here ctrl-x,q) end the client's stream; the process runs on.
        let options = CreateExecOptions {
            attach_stdin: true,
            attach_stdout: true,
            tty: true,
            detach_keys: "ctrl-x,q".into(),
            cmd: vec!["sleep".into(), "30".into()],
            ..Default::default()
        };
        let exec = client.create_exec("tty", &options).await.unwrap_or_else(|e| panic!("create: {e}"));
        let stream = client
            .start_exec(&exec.id, &StartExecOptions { tty: true, ..Default::default() })
            .await
            .unwrap_or_else(|e| panic!("start: {e}"))
            .unwrap_or_else(|| panic!("attached start gave no stream"));
        let mut io = stream.io;
        io.write_all(&[0x18, b'q']).await.unwrap_or_else(|e| panic!("write: {e}"));
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), io.read_to_end(&mut rest))
            .await
            .unwrap_or_else(|_| panic!("detaching did not end the stream"))
            .unwrap_or_else(|e| panic!("read: {e}"));
        let inspect = client.inspect_exec(&exec.id).await.unwrap_or_else(|e| panic!("inspect: {e}"));
        assert!(inspect.running && inspect.exit_code.is_none(), "{inspect:?}");
        let bad = CreateExecOptions { detach_keys: "ctrl-1".into(), ..options };
        assert_eq!(client.create_exec("tty", &bad).await.err().and_then(|e| e.status()), Some(400));
    });
    b.docker_ok(&["rm", "-f", "tty"]);
}
