//! End to end, as root: the `berth` CLI (which starts berthd itself), a real registry on 127.0.0.1
//! (Debian's docker-registry), an image built from Debian's busybox-static, and the `docker` CLI pointed at
//! berthd. Each test owns its root, run directory and registry, and stops its daemon even when it fails.

#[path = "../engine/tests/common/registry_server.rs"]
mod registry_server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use registry_server::RegistryServer;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One berth installation: its own root and run directory; its berthd is stopped on drop.
struct Berth {
    dir: tempfile::TempDir,
}

impl Berth {
    fn new() -> Berth {
        let dir = tempfile::Builder::new().prefix("berth-e2e-img-").tempdir().unwrap_or_else(|e| panic!("{e}"));
        Berth { dir }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.path().join("run")
    }

    fn socket(&self) -> PathBuf {
        self.run_dir().join("berth.sock")
    }

    fn berth(&self, args: &[&str]) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--root")
            .arg(self.root())
            .arg("--run-dir")
            .arg(self.run_dir())
            .args(args)
            .env_remove("BERTH_ROOT")
            .env_remove("BERTH_RUN_DIR")
            .output();
        out.unwrap_or_else(|e| panic!("cannot run berth: {e}"))
    }

    /// `berth …` that must succeed; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.berth(args);
        assert!(out.status.success(), "berth {args:?} failed:\n{}\n{}", stdout(&out), stderr(&out));
        stdout(&out)
    }

    fn docker(&self, args: &[&str]) -> Output {
        Command::new("docker")
            .args(args)
            .env("DOCKER_HOST", format!("unix://{}", self.socket().display()))
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run docker: {e}"))
    }

    fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.status.success(), "docker {args:?} failed:\n{}\n{}", stdout(&out), stderr(&out));
        stdout(&out)
    }
}

impl Drop for Berth {
    fn drop(&mut self) {
        let pid_file = self.run_dir().join("berthd.pid");
        let Ok(pid) = std::fs::read_to_string(&pid_file) else { return };
        let pid = pid.trim().to_string();
        let _ = Command::new("kill").arg("-TERM").arg(&pid).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        if Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("kill").arg("-KILL").arg(&pid).status();
        }
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The busybox rootfs tarball made by the project's script from Debian's busybox-static.
fn busybox_tar(dir: &Path) -> PathBuf {
    let out = dir.join("busybox.tar");
    let status = Command::new(repo().join("scripts/make-busybox-rootfs.sh"))
        .arg(&out)
        .output()
        .unwrap_or_else(|e| panic!("cannot run make-busybox-rootfs.sh: {e}"));
    assert!(status.status.success(), "make-busybox-rootfs.sh failed: {}", stderr(&status));
    out
}

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
