//! berth-shim against real containers (root; libcontainer with the busybox rootfs). Each test has its own temp
//! root, id and cgroup, all removed by the fixture's Drop.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Control, Fixture, SHIM, cgroup_dirs, is_shim, parent_of, proc_kb, root_or_skip};
use serde_json::json;

const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn echo_hello_is_logged_as_a_json_line_and_exits_0() {
    if !root_or_skip("echo_hello") {
        return;
    }
    let f = Fixture::new(&["echo", "hello"]);
    let ready = f.start_ok(&[]);
    assert!(ready["init_pid"].as_i64().unwrap_or(0) > 0, "{ready}");
    let exit = f.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit["exit_code"], 0, "{exit}");
    assert_eq!(exit["oom_killed"], false);
    let entries = f.log_entries();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["log"], "hello\n");
    assert_eq!(entries[0]["stream"], "stdout");
    let time = entries[0]["time"].as_str().unwrap_or_default();
    assert!(time.len() >= 20 && time.ends_with('Z') && time.contains('T'), "{time}");
    let state: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(f.state.join("state.json")).unwrap_or_default()).unwrap_or_default();
    assert_eq!(state["id"], f.id.as_str());
    assert_eq!(state["runtime"], "libcontainer");
    assert_eq!(state["cgroup"], f.cgroup.as_str());
    f.poll_until("the shim to exit", EXIT_TIMEOUT, || !f.shim_pid().is_some_and(is_shim));
    f.assert_no_leftovers();
}

#[test]
fn stdout_and_stderr_are_separate_streams_and_a_last_partial_line_is_kept() {
    if !root_or_skip("streams") {
        return;
    }
    let f = Fixture::new(&["sh", "-c", "echo out; echo err >&2; printf partial"]);
    f.start_ok(&[]);
    f.wait_exit(EXIT_TIMEOUT);
    let entries = f.log_entries();
    let pairs: Vec<(String, String)> = entries
        .iter()
        .map(|e| (e["stream"].as_str().unwrap_or("").to_string(), e["log"].as_str().unwrap_or("").to_string()))
        .collect();
    assert!(pairs.contains(&("stdout".into(), "out\n".into())), "{pairs:?}");
    assert!(pairs.contains(&("stderr".into(), "err\n".into())), "{pairs:?}");
    assert!(pairs.contains(&("stdout".into(), "partial".into())), "{pairs:?}");
}

#[test]
fn exit_code_3_is_recorded() {
    if !root_or_skip("exit_3") {
        return;
    }
    let f = Fixture::new(&["sh", "-c", "exit 3"]);
    f.start_ok(&[]);
    let exit = f.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit["exit_code"], 3, "{exit}");
    assert_eq!(exit["signal"], serde_json::Value::Null);
    assert!(exit["finished_at"].as_str().unwrap_or_default() >= exit["started_at"].as_str().unwrap_or_default());
}

#[test]
fn a_command_not_found_is_127_with_a_message_and_leaves_nothing() {
    if !root_or_skip("not_found") {
        return;
    }
    let f = Fixture::new(&["nonexistent-cmd"]);
    let (out, ready) = f.start(&[]);
    assert_eq!(out.status.code(), Some(1), "{ready}");
    assert_eq!(ready["type"], "failed", "{ready}");
    assert_eq!(ready["exit_code"], 127, "{ready}");
    let error: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(f.state.join("error.json")).unwrap_or_default()).unwrap_or_default();
    assert_eq!(error["exit_code"], 127, "{error}");
    assert_eq!(error["stage"], "create");
    let message = error["error"].as_str().unwrap_or_default();
    assert!(message.contains("nonexistent-cmd") && message.contains("not found"), "{message}");
    assert!(!f.state.join("exit.json").exists());
    f.poll_until("the shim to exit", EXIT_TIMEOUT, || !f.shim_pid().is_some_and(is_shim));
    f.assert_no_leftovers();
}

#[test]
fn a_file_that_is_not_executable_is_126() {
    if !root_or_skip("not_executable") {
        return;
    }
    let f = Fixture::new(&["/data.txt"]);
    let file = f.bundle.join("rootfs/data.txt");
    fs::write(&file, "not a program\n").expect("write");
    fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
    let (out, ready) = f.start(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(ready["exit_code"], 126, "{ready}");
}

#[test]
fn a_broken_spec_is_a_setup_error() {
    if !root_or_skip("broken_spec") {
        return;
    }
    let f = Fixture::new(&["true"]);
    fs::write(f.bundle.join("config.json"), "{ not json").expect("write");
    let (out, ready) = f.start(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(ready["type"], "failed");
    assert_eq!(ready["stage"], "setup", "{ready}");
    assert_eq!(ready["exit_code"], 128, "{ready}");
    assert!(ready["error"].as_str().unwrap_or_default().contains("config.json"), "{ready}");
    f.assert_no_leftovers();
}

#[test]
fn kill_term_through_the_control_socket_gives_143() {
    if !root_or_skip("kill_term") {
        return;
    }
    // Without a pid namespace `sleep` is not a namespace init, so SIGTERM's default action applies to it.
    let mut f = Fixture::new(&["sleep", "1000"]);
    f.edit_spec(|spec| {
        let ns = spec["linux"]["namespaces"].as_array_mut().expect("namespaces");
        ns.retain(|n| n["type"] != "pid");
    });
    f.start_ok(&[]);
    let state = f.control(json!({"cmd": "state"}));
    assert_eq!(state["type"], "state", "{state}");
    assert_eq!(state["status"], "running");
    let mut waiter = Control::connect(&f.control_path());
    waiter.send(json!({"cmd": "wait"}));
    assert_eq!(f.control(json!({"cmd": "kill", "signal": "TERM"})), json!({"type": "ok"}));
    let exited = waiter.recv();
    assert_eq!(exited["type"], "exited", "{exited}");
    assert_eq!(exited["exit_code"], 143, "{exited}");
    assert_eq!(exited["signal"], 15);
    let exit = f.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit["exit_code"], 143);
    f.poll_until("the shim to exit", EXIT_TIMEOUT, || !f.shim_pid().is_some_and(is_shim));
    f.assert_no_leftovers();
}

#[test]
fn sleep_as_pid_1_ignores_term_as_in_docker_and_dies_of_kill() {
    if !root_or_skip("pid1_term") {
        return;
    }
    let f = Fixture::new(&["sleep", "1000"]);
    f.start_ok(&[]);
    assert_eq!(f.control(json!({"cmd": "kill", "signal": 15})), json!({"type": "ok"}));
    // The kernel drops signals without a handler sent to a pid namespace's init: it keeps running.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(f.control(json!({"cmd": "state"}))["status"], "running");
    let bad = f.control(json!({"cmd": "kill", "signal": "NOPE"}));
    assert_eq!(bad["type"], "error", "{bad}");
    let bad = f.control(json!({"cmd": "explode"}));
    assert_eq!(bad["type"], "error", "{bad}");
    assert_eq!(f.control(json!({"cmd": "kill", "signal": "SIGKILL"})), json!({"type": "ok"}));
    let exit = f.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit["exit_code"], 137, "{exit}");
    assert_eq!(exit["signal"], 9);
}

#[test]
fn the_shim_survives_the_death_of_its_parent() {
    if !root_or_skip("survives_parent") {
        return;
    }
    let f = Fixture::new(&["sleep", "1000"]);
    // A helper process (its own process group, like a daemon's) starts the shim, then is SIGKILLed with its group.
    let mut parent = Command::new("sh");
    let mut parent = berth_shim::spawn::fork_exec(&mut parent)
        .arg("-c")
        .arg("\"$0\" \"$@\" > \"$STATE_OUT\" && exec sleep 1000")
        .arg(SHIM)
        .args(f.start_args(&[]))
        .env("STATE_OUT", f.dir.path().join("ready.json"))
        .process_group(0)
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn the parent");
    f.poll_until("the container to start", EXIT_TIMEOUT, || f.state.join("state.json").exists());
    let shim = f.shim_pid().expect("shim.pid");
    let group = nix::unistd::Pid::from_raw(-(parent.id() as i32));
    nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL).expect("kill the parent's group");
    let _ = parent.wait();
    assert!(is_shim(shim), "the shim died with its parent");
    assert_ne!(parent_of(shim), Some(parent.id() as i32));
    let state = f.control(json!({"cmd": "state"}));
    assert_eq!(state["status"], "running", "{state}");
    assert_eq!(state["shim_pid"], shim);
    assert_eq!(f.control(json!({"cmd": "kill", "signal": "KILL"})), json!({"type": "ok"}));
    assert_eq!(f.wait_exit(EXIT_TIMEOUT)["exit_code"], 137);
}

#[test]
fn berthd_always_finds_the_socket_answering_or_the_exit_record() {
    if !root_or_skip("socket_or_exit") {
        return;
    }
    // What berthd does after a restart: exit.json, else ask the socket. Asked as fast as possible through the
    // whole exit (drain, delete, removal of the socket), there is never a moment with neither.
    let f = Fixture::new(&["sh", "-c", "sleep 0.2"]);
    f.start_ok(&[]);
    let exit_path = f.state.join("exit.json");
    let mut asked = 0;
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while !exit_path.exists() {
        assert!(Instant::now() < deadline, "no exit; shim.log: {}", f.shim_log());
        match Control::connect_or_none(&f.control_path()) {
            Some(mut conn) => match conn.request_or_none(json!({"cmd": "state"})) {
                Some(answer) => {
                    assert!(answer["type"] == "state" || answer["type"] == "exited", "{answer}");
                    asked += 1;
                }
                None => assert!(exit_path.exists(), "the socket took a request, never answered, and no exit.json"),
            },
            None => assert!(exit_path.exists(), "neither a socket nor exit.json"),
        }
    }
    assert!(asked > 0);
}

#[test]
fn a_second_shim_for_the_same_state_dir_is_refused() {
    if !root_or_skip("second_shim") {
        return;
    }
    let f = Fixture::new(&["sleep", "1000"]);
    f.start_ok(&[]);
    let (out, ready) = f.start(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(ready["error"].as_str().unwrap_or_default().contains("still runs"), "{ready}");
    // The first one is untouched.
    assert!(!f.state.join("error.json").exists());
    assert_eq!(f.control(json!({"cmd": "state"}))["status"], "running");
}

#[test]
fn a_megabyte_of_output_rotates_into_max_file_files() {
    if !root_or_skip("rotation") {
        return;
    }
    // 10,000 lines of 100 bytes.
    let line = "x".repeat(99);
    let script = format!("yes {line} | head -n 10000; echo last-line");
    let f = Fixture::new(&["sh", "-c", &script]);
    f.start_ok(&["--log-max-size", "100k", "--log-max-file", "3"]);
    let exit = f.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit["exit_code"], 0, "{exit}");
    let name = f.log.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let mut files: Vec<String> = fs::read_dir(&f.state)
        .expect("list state dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with(&name))
        .collect();
    files.sort();
    assert_eq!(files, vec![name.clone(), format!("{name}.1"), format!("{name}.2")]);
    let mut total = 0;
    for file in &files {
        let size = fs::metadata(f.state.join(file)).expect("stat").len();
        // A file may pass max-size by one entry (Docker checks before each write).
        assert!(size <= 100 * 1024 + 300, "{file} is {size} bytes");
        total += Fixture::log_entries_of(&f.state.join(file)).len();
    }
    assert!(total < 10_001, "nothing was rotated away: {total} entries");
    // Oldest first: .2, .1, current; the last entry is the last line and the sequence has no gap.
    let mut entries = Fixture::log_entries_of(&f.state.join(format!("{name}.2")));
    entries.extend(Fixture::log_entries_of(&f.state.join(format!("{name}.1"))));
    entries.extend(f.log_entries());
    assert_eq!(entries.last().map(|e| e["log"].clone()), Some(json!("last-line\n")));
    assert!(entries[..entries.len() - 1].iter().all(|e| e["log"] == format!("{line}\n")));
}

#[test]
fn a_tty_container_writes_through_the_pty() {
    if !root_or_skip("tty") {
        return;
    }
    let mut f = Fixture::new(&["sh", "-c", "tty; echo hi"]);
    f.edit_spec(|spec| spec["process"]["terminal"] = json!(true));
    f.start_ok(&[]);
    let exit = f.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit["exit_code"], 0, "{exit}");
    let logs: Vec<String> = f.log_entries().iter().map(|e| e["log"].as_str().unwrap_or("").to_string()).collect();
    assert!(f.log_entries().iter().all(|e| e["stream"] == "stdout"));
    assert!(logs.contains(&"/dev/pts/0\r\n".to_string()), "{logs:?}");
    assert!(logs.contains(&"hi\r\n".to_string()), "{logs:?}");
    f.assert_no_leftovers();
    assert!(!f.state.join("console.sock").exists());
}

#[test]
fn a_tty_container_takes_input_and_resizes() {
    if !root_or_skip("tty_input") {
        return;
    }
    let mut f = Fixture::new(&["sh"]);
    f.edit_spec(|spec| spec["process"]["terminal"] = json!(true));
    f.start_ok(&["--stdin"]);
    assert_eq!(f.control(json!({"cmd": "resize", "rows": 40, "cols": 120})), json!({"type": "ok"}));
    fs::write(f.state.join("stdin"), "stty size\nexit 7\n").expect("write to the stdin fifo");
    let exit = f.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit["exit_code"], 7, "{exit}");
    let text: String = f.log_entries().iter().map(|e| e["log"].as_str().unwrap_or("").to_string()).collect();
    assert!(text.contains("40 120\r\n"), "{text:?}");
}

#[test]
fn stdin_is_fed_through_the_fifo_until_close_stdin() {
    if !root_or_skip("stdin") {
        return;
    }
    let f = Fixture::new(&["sh", "-c", "cat; echo done"]);
    f.start_ok(&["--stdin"]);
    // Two writers one after the other: the container sees no EOF in between.
    fs::write(f.state.join("stdin"), "line1\n").expect("write");
    fs::write(f.state.join("stdin"), "line2\n").expect("write");
    f.poll_until("both lines in the log", EXIT_TIMEOUT, || f.log_entries().len() >= 2);
    assert_eq!(f.control(json!({"cmd": "state"}))["status"], "running");
    assert_eq!(f.control(json!({"cmd": "resize", "rows": 1, "cols": 1}))["type"], "error", "no tty to resize");
    assert_eq!(f.control(json!({"cmd": "close_stdin"})), json!({"type": "ok"}));
    let exit = f.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit["exit_code"], 0);
    let logs: Vec<serde_json::Value> = f.log_entries().iter().map(|e| e["log"].clone()).collect();
    assert_eq!(logs, vec![json!("line1\n"), json!("line2\n"), json!("done\n")]);
}

#[test]
fn an_oom_kill_is_recorded() {
    if !root_or_skip("oom") {
        return;
    }
    let mut f = Fixture::new(&["sh", "-c", "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo survived"]);
    f.edit_spec(|spec| spec["linux"]["resources"] = json!({"memory": {"limit": 32 * 1024 * 1024}}));
    f.start_ok(&[]);
    let exit = f.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit["oom_killed"], true, "{exit}");
    assert_eq!(exit["exit_code"], 137, "{exit}");
}

#[test]
fn the_container_starts_with_a_clean_signal_state() {
    if !root_or_skip("signals") {
        return;
    }
    // The shim blocks SIGCHLD/SIGTERM/… for its signalfd and Rust ignores SIGPIPE; none of it may leak in.
    let f = Fixture::new(&["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"]);
    f.start_ok(&[]);
    f.wait_exit(EXIT_TIMEOUT);
    let mask = |name: &str, text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|h| u64::from_str_radix(h.trim(), 16).ok())
            .unwrap_or(u64::MAX)
    };
    let text: String = f.log_entries().iter().map(|e| e["log"].as_str().unwrap_or("").to_string()).collect();
    assert_eq!(mask("SigBlk:", &text), 0, "{text:?}");
    // glibc's internal signals 32 and 33 may come ignored from whoever started this test (cargo uses posix_spawn):
    // the shim cannot undo that, but adds nothing to it.
    let ours = mask("SigIgn:", &fs::read_to_string("/proc/self/status").unwrap_or_default());
    let glibc = 0b11u64 << 31;
    assert_eq!(mask("SigIgn:", &text) & !(ours & glibc), 0, "{text:?}");
}

#[test]
fn time_of_a_true_run() {
    if !root_or_skip("timing") {
        return;
    }
    let mut runs = Vec::new();
    for _ in 0..10 {
        let f = Fixture::new(&["true"]);
        let t0 = Instant::now();
        f.start_ok(&[]);
        let started = t0.elapsed();
        let exit = f.wait_exit(EXIT_TIMEOUT);
        let recorded = t0.elapsed();
        assert_eq!(exit["exit_code"], 0);
        runs.push((started, recorded));
    }
    runs.sort_by_key(|r| r.1);
    let (started, recorded) = runs[runs.len() / 2];
    println!(
        "berth-shim /bin/true: start returned after {:.1} ms, exit recorded after {:.1} ms (median of {})",
        started.as_secs_f64() * 1e3,
        recorded.as_secs_f64() * 1e3,
        runs.len()
    );
}

#[test]
fn memory_of_running_shims() {
    if !root_or_skip("memory") {
        return;
    }
    const N: usize = 10;
    let fixtures: Vec<Fixture> = (0..N).map(|_| Fixture::new(&["sleep", "1000"])).collect();
    for f in &fixtures {
        f.start_ok(&[]);
    }
    let mut rss = Vec::new();
    let mut pss = Vec::new();
    let mut anon = Vec::new();
    for f in &fixtures {
        let shim = f.shim_pid().expect("shim.pid");
        // Serve one request first so the measured shim has run its control path too.
        assert_eq!(f.control(json!({"cmd": "state"}))["status"], "running");
        rss.push(proc_kb(shim, "status", "VmRSS:").unwrap_or(0));
        anon.push(proc_kb(shim, "status", "RssAnon:").unwrap_or(0));
        pss.push(proc_kb(shim, "smaps_rollup", "Pss:").unwrap_or(0));
    }
    let avg = |v: &[u64]| v.iter().sum::<u64>() / v.len() as u64;
    println!(
        "berth-shim memory with {N} running: VmRSS {} kB, RssAnon {} kB, Pss {} kB (averages; RSS counts the \
         shared libc and binary pages in full)",
        avg(&rss),
        avg(&anon),
        avg(&pss)
    );
    assert!(rss.iter().all(|&r| r > 0));
}

#[test]
fn crun_as_the_runtime() {
    if !root_or_skip("crun") {
        return;
    }
    let Some(crun) = ["/usr/bin/crun", "/usr/local/bin/crun"].into_iter().find(|p| fs::metadata(p).is_ok()) else {
        eprintln!("skipping crun_as_the_runtime: crun is not installed");
        return;
    };
    let f = Fixture::new(&["sh", "-c", "echo hello from crun; exit 4"]);
    // crun 1.8 refuses this host's hybrid cgroups while cgroup2 holds a controller (hugetlb): run the shim in a
    // private mount namespace where the unified hierarchy is hidden, so crun sees plain cgroup v1.
    let hybrid = fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").is_ok_and(|c| !c.trim().is_empty());
    let mut cmd = if hybrid {
        let mut c = Command::new("unshare");
        berth_shim::spawn::fork_exec(&mut c)
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs berthtest /sys/fs/cgroup/unified && exec \"$0\" \"$@\"")
            .arg(SHIM);
        c
    } else {
        common::shim_command()
    };
    let out = cmd.args(f.start_args(&["--runtime", crun])).output().expect("start with crun");
    let ready: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    assert!(out.status.success(), "{ready} {}", String::from_utf8_lossy(&out.stderr));
    let exit = f.wait_exit(EXIT_TIMEOUT);
    assert_eq!(exit["exit_code"], 4, "{exit}");
    assert_eq!(f.log_entries()[0]["log"], "hello from crun\n");
    f.poll_until("the shim to exit", EXIT_TIMEOUT, || !f.shim_pid().is_some_and(is_shim));
    assert!(fs::read_dir(&f.runtime_root).map(|d| d.count() == 0).unwrap_or(true), "crun state left");
    for dir in cgroup_dirs(&f.cgroup) {
        assert!(!dir.exists(), "cgroup {} left", dir.display());
    }
}
