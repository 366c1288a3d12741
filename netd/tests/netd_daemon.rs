//! End-to-end: berth-netd as a process (root only): one daemon per run directory, a stale socket replaced after a
//! crash, socket mode 0660, the pid file, and a clean exit on SIGTERM.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::process::Command;

use common::Netd;

#[tokio::test]
async fn one_daemon_per_socket_stale_sockets_replaced_and_sigterm_cleans_up() {
    let mut t = Netd::start("dmn");
    t.client().ping().await.expect("ping");
    let mode = std::fs::metadata(t.socket()).expect("socket").permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let pid: u32 =
        std::fs::read_to_string(t.run_dir().join("netd.pid")).expect("pid file").trim().parse().expect("pid");
    assert!(std::path::Path::new(&format!("/proc/{pid}")).exists());

    // A second daemon on the same run directory (here through the environment) refuses to start.
    let second = Command::new(env!("CARGO_BIN_EXE_berth-netd"))
        .env("BERTH_ROOT", t.root())
        .env("BERTH_RUN_DIR", t.run_dir())
        .env("BERTH_NETD_NFT_TABLE", &t.prefix)
        .output()
        .expect("run second netd");
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("already answers"), "{err}");
    t.client().ping().await.expect("the first one still answers");

    // After kill -9 the socket file stays behind; the next start replaces it.
    t.kill();
    assert!(t.socket().exists());
    t.spawn();
    t.client().ping().await.expect("ping after restart");

    // SIGTERM: exits, removing its socket and pid file.
    t.stop();
    assert!(!t.socket().exists(), "socket left after SIGTERM");
    assert!(!t.run_dir().join("netd.pid").exists(), "pid file left after SIGTERM");
}
