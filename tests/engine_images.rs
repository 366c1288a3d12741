//! End to end, as root: the `berth` CLI (which starts berthd itself), a real registry on 127.0.0.1
//! (Debian's docker-registry), an image built from Debian's busybox-static, and the `docker` CLI pointed at
//! berthd. Each test owns its root, run directory and registry, and stops its daemon even when it fails.

#[path = "../engine/tests/common/registry_server.rs"]
mod registry_server;

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Berth, busybox_tar, stderr};
use registry_server::RegistryServer;

#[test]
fn import_push_pull_into_a_fresh_root_and_manage_images() {
    let registry = RegistryServer::start();
    let reg = format!("127.0.0.1:{}", registry.port());
    let a = Berth::new();
    let tar = busybox_tar(a.dir.path());
    let name = format!("{reg}/e2e/busybox:1");

    // Import with --change, then the image answers inspect with its config.
    let id = a.ok(&["image", "import", &tar.to_string_lossy(), &name, "-c", "CMD [\"sh\"]", "-c", "ENV GREETING=hi"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let inspect: serde_json::Value =
        serde_json::from_str(&a.ok(&["image", "inspect", &name])).unwrap_or(serde_json::Value::Null);
    assert_eq!(inspect[0]["Config"]["Cmd"], serde_json::json!(["sh"]));
    assert_eq!(inspect[0]["Config"]["Env"], serde_json::json!(["GREETING=hi"]));
    assert_eq!(inspect[0]["Id"].as_str(), Some(id.trim()));

    a.ok(&["image", "push", &name]);

    // A fresh root pulls it back: same id, layers unpack, and a second pull downloads nothing.
    let b = Berth::new();
    let pulled = b.ok(&["image", "pull", &name]);
    assert!(pulled.contains("Downloaded newer image"), "{pulled}");
    let again = b.ok(&["image", "pull", &name]);
    assert!(again.contains("Image is up to date"), "{again}");
    let ls = b.ok(&["image", "ls"]);
    assert!(ls.contains(&format!("{reg}/e2e/busybox")) && ls.contains(&id.trim()[7..19]), "{ls}");

    // tag, history, save, rm, load, prune, system df.
    b.ok(&["image", "tag", &name, "local/bb:2"]);
    assert!(b.ok(&["image", "ls"]).contains("local/bb"));
    assert!(b.ok(&["image", "history", "local/bb:2"]).contains("berth import"));
    let archive = b.dir.path().join("bb.tar");
    b.ok(&["image", "save", "local/bb:2", "-o", &archive.to_string_lossy()]);
    let rm = b.ok(&["image", "rm", "local/bb:2"]);
    assert!(rm.contains("Untagged: local/bb:2"), "{rm}");
    let loaded = b.ok(&["image", "load", "-i", &archive.to_string_lossy()]);
    assert!(loaded.contains("Loaded image: local/bb:2"), "{loaded}");
    assert!(b.ok(&["system", "df"]).contains("Images"));
    let rm = b.ok(&["image", "rm", "-f", id.trim()]);
    assert!(rm.contains("Deleted:"), "{rm}");
    assert_eq!(b.ok(&["image", "ls", "-q"]).trim(), "");

    // Errors: a missing image is a clear error naming it.
    let missing = b.berth(&["image", "pull", &format!("{reg}/e2e/nope:1")]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("nope"), "{}", stderr(&missing));
    let missing = b.berth(&["image", "inspect", "no-such-image"]);
    assert!(!missing.status.success());
}

#[test]
fn the_docker_cli_manages_images_through_berthd() {
    let registry = RegistryServer::start();
    let reg = format!("127.0.0.1:{}", registry.port());
    let a = Berth::new();
    let tar = busybox_tar(a.dir.path());
    let name = format!("{reg}/e2e/bb:latest");
    a.ok(&["image", "import", &tar.to_string_lossy(), &name]);

    // The docker CLI: version, images, tag, push, rmi, pull, inspect, history, save, load, system df, prune.
    let v = a.docker_ok(&["version", "--format", "{{.Server.APIVersion}}"]);
    assert_eq!(v.trim(), "1.47");
    assert!(a.docker_ok(&["images"]).contains(&format!("{reg}/e2e/bb")));
    let pushed = format!("{reg}/e2e/other:7");
    a.docker_ok(&["tag", &name, &pushed]);
    a.docker_ok(&["push", &pushed]);
    a.docker_ok(&["rmi", &pushed]);
    assert!(!a.docker_ok(&["images"]).contains("e2e/other"));
    a.docker_ok(&["pull", &pushed]);
    let id = a.docker_ok(&["image", "inspect", &pushed, "--format", "{{.Id}}"]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    let digests = a.docker_ok(&["image", "inspect", &pushed, "--format", "{{json .RepoDigests}}"]);
    assert!(digests.contains(&format!("{reg}/e2e/other@sha256:")), "{digests}");
    assert!(a.docker_ok(&["history", &pushed]).contains("berth import"));
    let archive = a.dir.path().join("docker-save.tar");
    a.docker_ok(&["save", "-o", &archive.to_string_lossy(), &pushed]);
    a.docker_ok(&["rmi", &pushed]);
    let loaded = a.docker_ok(&["load", "-i", &archive.to_string_lossy()]);
    assert!(loaded.contains(&pushed), "{loaded}");
    assert!(a.docker_ok(&["system", "df"]).contains("Images"));
    let rmi = a.docker(&["rmi", "does-not-exist"]);
    assert!(!rmi.status.success());
    assert!(stderr(&rmi).contains("does-not-exist"), "{}", stderr(&rmi));
    a.docker_ok(&["image", "prune", "-f"]);
}

#[test]
fn the_socket_is_private_and_berthd_restarts_on_demand() {
    let a = Berth::new();
    a.ok(&["system", "info"]);
    let mode = std::fs::metadata(a.socket()).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777);
    assert_eq!(mode.ok(), Some(0o660));
    // Stop the daemon: the next command starts it again, and the state (an imported image) is still there.
    let tar = busybox_tar(a.dir.path());
    a.ok(&["image", "import", &tar.to_string_lossy(), "keep/me:1"]);
    let pid = std::fs::read_to_string(a.run_dir().join("berthd.pid")).unwrap_or_default();
    let _ = Command::new("kill").arg("-KILL").arg(pid.trim()).status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{}", pid.trim())).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(a.ok(&["image", "ls"]).contains("keep/me"));
}
