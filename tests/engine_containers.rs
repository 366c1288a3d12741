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
