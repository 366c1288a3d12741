//! `berth-shim-runtime exec` against real containers, with libcontainer and with crun: the process runs in the
//! container with the helper's stdio, its exit status is the helper's and is in the result file with its pid,
//! and a missing command is a `failed` result with Docker's 127 rather than an exit.

mod common;

use std::fs;
use std::process::{Command, Output};

use common::{Fixture, HELPER, root_or_skip};
use serde_json::{Value, json};

/// Run `args` in the fixture's container through the helper (with `runtime`, or libcontainer); its output and
/// result file. `wrap` runs the helper through another command line first (crun's hybrid-cgroup workaround).
fn exec(f: &Fixture, runtime: Option<&str>, wrap: &[&str], args: &[&str]) -> (Output, Value) {
    let mut process = f.spec["process"].clone();
    process["args"] = json!(args);
    process["terminal"] = json!(false);
    let dir = f.dir.path().join(format!("exec-{}", common::random_id()));
    fs::create_dir_all(&dir).expect("exec dir");
    fs::write(dir.join("process.json"), serde_json::to_vec(&process).expect("json")).expect("process.json");
    let mut cmd = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(HELPER);
            c
        }
        None => Command::new(HELPER),
    };
    berth_shim::spawn::fork_exec(&mut cmd)
        .args(["exec", "--id", &f.id, "--runtime-root"])
        .arg(&f.runtime_root)
        .arg("--process")
        .arg(dir.join("process.json"))
        .arg("--pid-file")
        .arg(dir.join("pid"))
        .arg("--result")
        .arg(dir.join("result.json"));
    if let Some(r) = runtime {
        cmd.args(["--runtime", r]);
    }
    let out = cmd.output().expect("run berth-shim-runtime exec");
    let result = fs::read_to_string(dir.join("result.json")).unwrap_or_default();
    let result: Value = serde_json::from_str(&result).unwrap_or(Value::Null);
    assert!(fs::read_to_string(dir.join("pid")).is_ok() || result["type"] == "failed", "no pid file: {result}");
    (out, result)
}

fn check_exec(f: &Fixture, runtime: Option<&str>, wrap: &[&str]) {
    let (out, result) = exec(f, runtime, wrap, &["sh", "-c", "echo out; echo err >&2; cat /proc/1/cmdline; exit 5"]);
    assert_eq!(out.status.code(), Some(5), "{result} {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\nsleep\x00100\x00");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    assert_eq!(result, json!({"type": "exited", "exit_code": 5}));

    let (out, result) = exec(f, runtime, wrap, &["no-such-command"]);
    assert_eq!(result["type"], "failed", "{result}");
    assert_eq!(result["exit_code"], 127, "{result}");
    assert_eq!(out.status.code(), Some(127));
}

#[test]
fn exec_with_libcontainer() {
    if !root_or_skip("exec_with_libcontainer") {
        return;
    }
    let f = Fixture::new(&["sleep", "100"]);
    f.start_ok(&[]);
    check_exec(&f, None, &[]);
}

#[test]
fn exec_with_crun() {
    if !root_or_skip("exec_with_crun") {
        return;
    }
    let Some(crun) = ["/usr/bin/crun", "/usr/local/bin/crun"].into_iter().find(|p| fs::metadata(p).is_ok()) else {
        eprintln!("skipping exec_with_crun: crun is not installed");
        return;
    };
    // As in shim.rs's crun test: crun refuses this host's hybrid cgroups while cgroup2 holds a controller, so
    // the shim and the helper run where the unified hierarchy is hidden.
    let hybrid = fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").is_ok_and(|c| !c.trim().is_empty());
    let hide = "mount -t tmpfs berthtest /sys/fs/cgroup/unified && exec \"$0\" \"$@\"";
    let wrap: Vec<&str> =
        if hybrid { vec!["unshare", "-m", "--propagation", "private", "sh", "-c", hide] } else { Vec::new() };
    let f = Fixture::new(&["sleep", "100"]);
    let mut start = match wrap.split_first() {
        Some((first, rest)) => {
            let mut c = Command::new(first);
            c.args(rest).arg(common::SHIM);
            c
        }
        None => common::shim_command(),
    };
    let out =
        berth_shim::spawn::fork_exec(&mut start).args(f.start_args(&["--runtime", crun])).output().expect("start");
    assert!(out.status.success(), "start with crun: {}", String::from_utf8_lossy(&out.stderr));
    check_exec(&f, Some(crun), &wrap);
    let _ = f.control(json!({"cmd": "kill", "signal": "KILL"}));
    f.wait_exit(std::time::Duration::from_secs(20));
}
