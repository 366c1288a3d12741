//! End to end, as root: volumes through the `docker` CLI against berthd — `volume create/ls/inspect/rm/prune`,
//! named volumes shared by containers, copy-up of image content into an empty volume, anonymous volumes removed
//! with their container, binds (read-only, created host paths), tmpfs mounts, `--mount`, and local-driver
//! volumes with options (tmpfs, bind) mounted while a container uses them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Berth, busybox_tar, stderr};

/// The busybox image plus `/data` (two files, a subdirectory and a symlink) owned by www-data (33:33) with
/// mode 0750, and the image config's `VOLUME /data`.
fn image_with_data(b: &Berth) -> String {
    let base = busybox_tar(b.dir.path());
    let rootfs = b.dir.path().join("img-rootfs");
    std::fs::create_dir_all(&rootfs).unwrap_or_else(|e| panic!("{e}"));
    run(Command::new("tar").arg("-xf").arg(&base).arg("-C").arg(&rootfs));
    let data = rootfs.join("data");
    std::fs::create_dir_all(data.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(data.join("hello.txt"), "hello from the image\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(data.join("sub/deep.txt"), "deep\n").unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("hello.txt", data.join("link")).unwrap_or_else(|e| panic!("{e}"));
    run(Command::new("chown").args(["-hR", "33:33"]).arg(&data));
    run(Command::new("chmod").arg("0750").arg(&data));
    let tar = b.dir.path().join("data-image.tar");
    run(Command::new("tar").arg("--numeric-owner").arg("-cf").arg(&tar).arg("-C").arg(&rootfs).arg("."));
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/vol:1", "-c", "CMD [\"sh\"]", "-c", "VOLUME /data"]);
    "e2e/vol:1".into()
}

fn plain_image(b: &Berth) -> String {
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1", "-c", "CMD [\"sh\"]"]);
    "e2e/bb:1".into()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
}

fn volumes(b: &Berth) -> Vec<String> {
    b.docker_ok(&["volume", "ls", "-q"]).lines().map(str::to_owned).collect()
}

fn host_mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let want = path.to_string_lossy();
    info.lines().filter_map(|l| l.split(' ').nth(4)).any(|m| m == want)
}

#[test]
fn volume_commands_create_list_inspect_remove_and_prune() {
    let b = Berth::new();
    let img = plain_image(&b);

    assert_eq!(b.docker_ok(&["volume", "create", "--label", "app=web", "--label", "tier=front", "v1"]).trim(), "v1");
    b.docker_ok(&["volume", "create", "--label", "app=db", "v2"]);
    // The same create again returns the volume as it is.
    assert_eq!(b.docker_ok(&["volume", "create", "v1"]).trim(), "v1");
    let inspect = b.docker_ok(&[
        "volume",
        "inspect",
        "v1",
        "--format",
        "{{.Name}}|{{.Driver}}|{{.Scope}}|{{.Mountpoint}}|{{index .Labels \"app\"}}|{{.CreatedAt}}",
    ]);
    let fields: Vec<&str> = inspect.trim().split('|').collect();
    assert_eq!(&fields[..3], ["v1", "local", "local"], "{inspect}");
    assert_eq!(fields[3], b.root().join("volumes/v1/_data").to_string_lossy(), "{inspect}");
    assert!(Path::new(fields[3]).is_dir());
    assert_eq!(fields[4], "web");
    assert!(fields[5].starts_with("20"), "{inspect}");

    // Filters: name, label, driver, dangling.
    let ls = |filters: &[&str]| {
        let mut args = vec!["volume", "ls", "-q"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        let mut names: Vec<String> = b.docker_ok(&args).lines().map(str::to_owned).collect();
        names.sort();
        names
    };
    assert_eq!(ls(&[]), ["v1", "v2"]);
    assert_eq!(ls(&["name=1"]), ["v1"]);
    assert_eq!(ls(&["label=app=db"]), ["v2"]);
    assert_eq!(ls(&["label=tier"]), ["v1"]);
    assert_eq!(ls(&["driver=local"]), ["v1", "v2"]);
    b.docker_ok(&["create", "--network=none", "--name", "user", "-v", "v1:/data", &img]);
    assert_eq!(ls(&["dangling=true"]), ["v2"]);
    assert_eq!(ls(&["dangling=false"]), ["v1"]);

    // A volume a container uses (even a stopped one) is not removed: 409 naming the container.
    let rm = b.docker(&["volume", "rm", "v1"]);
    assert!(!rm.status.success());
    assert!(stderr(&rm).contains("volume is in use"), "{}", stderr(&rm));
    assert!(stderr(&rm).contains("user"), "{}", stderr(&rm));
    let rm = b.docker(&["volume", "rm", "-f", "v1"]);
    assert!(!rm.status.success(), "force does not remove a volume in use");

    // Bad input is refused with a reason.
    let bad = b.docker(&["volume", "create", "bad name"]);
    assert!(stderr(&bad).contains("invalid characters"), "{}", stderr(&bad));
    let bad = b.docker(&["volume", "create", "--opt", "colour=blue", "v3"]);
    assert!(stderr(&bad).contains("invalid option key"), "{}", stderr(&bad));
    let bad = b.docker(&["volume", "create", "--driver", "nfs-plugin", "v3"]);
    assert!(stderr(&bad).contains("not found"), "{}", stderr(&bad));
    let missing = b.docker(&["volume", "inspect", "nope"]);
    assert!(stderr(&missing).contains("no such volume"), "{}", stderr(&missing));
    b.docker_ok(&["volume", "rm", "-f", "nope"]);

    // Prune: anonymous volumes only, unless --all; never one in use; label filters narrow it.
    let anon = b.docker_ok(&["volume", "create"]).trim().to_string();
    assert_eq!(anon.len(), 64, "{anon}");
    b.docker_ok(&["volume", "create", "--label", "keep=yes", "v4"]);
    let pruned = b.docker_ok(&["volume", "prune", "-f"]);
    assert!(pruned.contains(&anon), "{pruned}");
    assert_eq!(ls(&[]), ["v1", "v2", "v4"]);
    b.docker_ok(&["volume", "prune", "-f", "--all", "--filter", "label!=keep=yes"]);
    assert_eq!(ls(&[]), ["v1", "v4"]);
    b.docker_ok(&["volume", "prune", "-f", "--all"]);
    assert_eq!(ls(&[]), ["v1"]);
    b.docker_ok(&["rm", "user"]);
    b.docker_ok(&["volume", "rm", "v1"]);
    assert!(volumes(&b).is_empty());
    assert!(!b.root().join("volumes/v1").exists());
}

#[test]
fn a_named_volume_keeps_writes_for_the_next_container() {
    let b = Berth::new();
    let img = plain_image(&b);
    // Created on first use, as Docker does.
    b.docker_ok(&[
        "run",
        "--network=none",
        "--name",
        "writer",
        "-v",
        "shared:/data",
        &img,
        "sh",
        "-c",
        "echo kept > /data/f",
    ]);
    assert_eq!(volumes(&b), ["shared"]);
    let mounts = b.docker_ok(&[
        "inspect",
        "writer",
        "--format",
        "{{range .Mounts}}{{.Type}}|{{.Name}}|{{.Source}}|{{.Destination}}|{{.Driver}}|{{.RW}}{{end}}",
    ]);
    let data = b.root().join("volumes/shared/_data");
    assert_eq!(mounts.trim(), format!("volume|shared|{}|/data|local|true", data.display()));
    assert_eq!(std::fs::read_to_string(data.join("f")).unwrap_or_default(), "kept\n");
    let read = b.docker_ok(&["run", "--network=none", "--rm", "-v", "shared:/other:ro", &img, "cat", "/other/f"]);
    assert_eq!(read.trim(), "kept");
    let ro = b.docker(&["run", "--network=none", "--rm", "-v", "shared:/other:ro", &img, "touch", "/other/g"]);
    assert!(!ro.status.success(), "a read-only volume took a write");
    // ps shows the volume's name.
    let ps = b.docker_ok(&["ps", "-a", "--filter", "name=writer", "--format", "{{.Mounts}}"]);
    assert_eq!(ps.trim(), "shared");
    // `rm -v` keeps named volumes.
    b.docker_ok(&["rm", "-v", "writer"]);
    assert_eq!(volumes(&b), ["shared"]);
    // Volume events: made on first use, mounted and unmounted by each container.
    let until = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() + 1);
    let until = until.unwrap_or_default().to_string();
    let events = b.docker_ok(&[
        "events",
        "--since",
        "1",
        "--until",
        &until,
        "--filter",
        "type=volume",
        "--filter",
        "volume=shared",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<&str> = events.lines().collect();
    assert_eq!(actions.first(), Some(&"create"), "{events}");
    assert!(actions.iter().filter(|a| **a == "mount").count() >= 3, "{events}");
    assert!(actions.contains(&"unmount"), "{events}");
}

#[test]
fn an_empty_volume_gets_the_images_content_with_owners_and_modes() {
    let b = Berth::new();
    let img = image_with_data(&b);
    let listing = b.docker_ok(&[
        "run",
        "--network=none",
        "--rm",
        "-v",
        "fresh:/data",
        &img,
        "sh",
        "-c",
        "cat /data/hello.txt /data/sub/deep.txt; readlink /data/link; stat -c '%u:%g %a' /data /data/hello.txt",
    ]);
    assert_eq!(listing, "hello from the image\ndeep\nhello.txt\n33:33 750\n33:33 644\n");
    // The image's user can write to it (the volume's root kept the image's owner).
    b.docker_ok(&[
        "run",
        "--network=none",
        "--rm",
        "-u",
        "www-data",
        "-v",
        "fresh:/data",
        &img,
        "sh",
        "-c",
        "echo mine > /data/new",
    ]);
    let data = b.root().join("volumes/fresh/_data");
    assert_eq!(std::fs::read_to_string(data.join("new")).unwrap_or_default(), "mine\n");
    // A volume with files is never overwritten: the image's file removed stays removed.
    b.docker_ok(&["run", "--network=none", "--rm", "-v", "fresh:/data", &img, "rm", "/data/hello.txt"]);
    let gone = b.docker(&["run", "--network=none", "--rm", "-v", "fresh:/data", &img, "cat", "/data/hello.txt"]);
    assert!(!gone.status.success());
    // nocopy leaves a new volume empty.
    let empty = b.docker_ok(&["run", "--network=none", "--rm", "-v", "bare:/data:nocopy", &img, "ls", "-A", "/data"]);
    assert_eq!(empty.trim(), "");
    let empty = b.docker_ok(&[
        "run",
        "--network=none",
        "--rm",
        "--mount",
        "type=volume,source=bare2,target=/data,volume-nocopy",
        &img,
        "ls",
        "-A",
        "/data",
    ]);
    assert_eq!(empty.trim(), "");
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_run_rm() {
    let b = Berth::new();
    let img = image_with_data(&b);
    // The image's VOLUME /data and `-v /cache` become anonymous volumes; /data gets the image's files.
    b.docker_ok(&[
        "run",
        "--network=none",
        "--name",
        "anon",
        "-v",
        "/cache",
        &img,
        "sh",
        "-c",
        "cat /data/hello.txt > /cache/copy",
    ]);
    let anon = volumes(&b);
    assert_eq!(anon.len(), 2, "{anon:?}");
    for name in &anon {
        assert_eq!(name.len(), 64, "{name}");
        let label = b.docker_ok(&["volume", "inspect", name, "--format", "{{json .Labels}}"]);
        assert!(label.contains("com.docker.volume.anonymous"), "{label}");
    }
    let dests = b.docker_ok(&["inspect", "anon", "--format", "{{range .Mounts}}{{.Destination}} {{end}}"]);
    let mut dests: Vec<&str> = dests.split_whitespace().collect();
    dests.sort();
    assert_eq!(dests, ["/cache", "/data"]);
    let copied = anon.iter().map(|n| b.root().join("volumes").join(n).join("_data/copy")).find(|p| p.exists());
    let copied = copied.unwrap_or_else(|| panic!("no volume holds /cache/copy"));
    assert_eq!(std::fs::read_to_string(copied).unwrap_or_default(), "hello from the image\n");
    // Another container keeps its named volume; rm -v removes only the anonymous ones.
    b.docker_ok(&["rm", "-v", "anon"]);
    assert!(volumes(&b).is_empty(), "{:?}", volumes(&b));

    // `run --rm` removes the anonymous volumes, not the named one; a mount over /data replaces the VOLUME.
    b.docker_ok(&["run", "--network=none", "--rm", "-v", "keep:/data", "-v", "/scratch", &img, "true"]);
    assert_eq!(volumes(&b), ["keep"]);
    // Without -v, rm leaves anonymous volumes behind, as Docker does.
    b.docker_ok(&["create", "--network=none", "--name", "plain", &img]);
    assert_eq!(volumes(&b).len(), 2);
    b.docker_ok(&["rm", "plain"]);
    assert_eq!(volumes(&b).len(), 2);
}

#[test]
fn binds_read_only_created_host_paths_and_tmpfs() {
    let b = Berth::new();
    let img = plain_image(&b);
    let host = b.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(host.join("in"), "from host\n").unwrap_or_else(|e| panic!("{e}"));
    let bind = |spec: &str| format!("{}:{spec}", host.display());

    let out = b.docker_ok(&[
        "run",
        "--network=none",
        "--rm",
        "-v",
        &bind("/h"),
        &img,
        "sh",
        "-c",
        "cat /h/in; echo back > /h/out",
    ]);
    assert_eq!(out.trim(), "from host");
    assert_eq!(std::fs::read_to_string(host.join("out")).unwrap_or_default(), "back\n");
    let ro = b.docker(&["run", "--network=none", "--rm", "-v", &bind("/h:ro"), &img, "touch", "/h/nope"]);
    assert!(!ro.status.success(), "a read-only bind took a write");
    assert!(stderr(&ro).contains("Read-only file system"), "{}", stderr(&ro));
    assert!(!host.join("nope").exists());

    // Binds: a missing host path is created; --mount: it is an error unless asked for.
    let missing = b.dir.path().join("made/by/berth");
    b.docker_ok(&["run", "--network=none", "--rm", "-v", &format!("{}:/m", missing.display()), &img, "touch", "/m/x"]);
    assert!(missing.join("x").is_file());
    let absent = b.dir.path().join("absent");
    let err = b.docker(&[
        "run",
        "--network=none",
        "--rm",
        "--mount",
        &format!("type=bind,source={},target=/a", absent.display()),
        &img,
    ]);
    assert!(!err.status.success());
    assert!(stderr(&err).contains("bind source path does not exist"), "{}", stderr(&err));
    assert!(!absent.exists());

    // Propagation and mode as inspect shows them.
    b.docker_ok(&["create", "--network=none", "--name", "prop", "-v", &bind("/h:ro,rslave"), &img]);
    let m = b.docker_ok(&[
        "inspect",
        "prop",
        "--format",
        "{{range .Mounts}}{{.Type}} {{.Mode}} {{.RW}} {{.Propagation}}{{end}}",
    ]);
    assert_eq!(m.trim(), "bind ro,rslave false rslave");

    // tmpfs: size and mode as the kernel shows them inside.
    let mounts = b.docker_ok(&[
        "run",
        "--network=none",
        "--rm",
        "--tmpfs",
        "/t1:size=1m,mode=1770",
        "--mount",
        "type=tmpfs,target=/t2,tmpfs-size=2097152,tmpfs-mode=0700",
        &img,
        "cat",
        "/proc/mounts",
    ]);
    let line = |dst: &str| mounts.lines().find(|l| l.split(' ').nth(1) == Some(dst)).unwrap_or_default().to_string();
    let t1 = line("/t1");
    assert!(t1.starts_with("tmpfs /t1 tmpfs "), "{mounts}");
    assert!(t1.contains("size=1024k") && t1.contains("mode=1770"), "{t1}");
    let t2 = line("/t2");
    assert!(t2.contains("size=2048k") && t2.contains("mode=700"), "{t2}");
}

#[test]
fn mount_flag_volumes_and_local_driver_options() {
    let b = Berth::new();
    let img = plain_image(&b);

    // --mount type=volume: named and read-only, and anonymous.
    b.docker_ok(&["run", "--network=none", "--rm", "-v", "mv:/mv", &img, "sh", "-c", "echo x > /mv/f"]);
    let ro = b.docker(&[
        "run",
        "--network=none",
        "--rm",
        "--mount",
        "type=volume,source=mv,target=/mv,readonly",
        &img,
        "touch",
        "/mv/g",
    ]);
    assert!(!ro.status.success(), "a readonly volume took a write");
    let read = b.docker_ok(&[
        "run",
        "--network=none",
        "--rm",
        "--mount",
        "type=volume,source=mv,target=/mv,readonly",
        &img,
        "cat",
        "/mv/f",
    ]);
    assert_eq!(read.trim(), "x");
    b.docker_ok(&["run", "--network=none", "--rm", "--mount", "type=volume,target=/anon", &img, "touch", "/anon/f"]);
    assert_eq!(volumes(&b), ["mv"], "run --rm removed the anonymous --mount volume");
    // A volume made by --mount gets the mount's labels and driver options.
    b.docker_ok(&[
        "run",
        "--network=none",
        "--rm",
        "--mount",
        "type=volume,source=lv,target=/lv,volume-label=team=ops,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
        &img,
        "true",
    ]);
    let lv =
        b.docker_ok(&["volume", "inspect", "lv", "--format", "{{index .Labels \"team\"}} {{index .Options \"type\"}}"]);
    assert_eq!(lv.trim(), "ops tmpfs");
    b.docker_ok(&["volume", "rm", "lv"]);

    // A tmpfs-typed local volume: mounted while a container uses it, unmounted after.
    b.docker_ok(&["volume", "create", "--opt", "type=tmpfs", "--opt", "device=tmpfs", "--opt", "o=size=10m", "tv"]);
    let opts = b.docker_ok(&["volume", "inspect", "tv", "--format", "{{json .Options}}"]);
    assert!(opts.contains("\"o\":\"size=10m\""), "{opts}");
    let data = b.root().join("volumes/tv/_data");
    b.docker_ok(&["run", "--network=none", "-d", "--name", "holder", "-v", "tv:/tv", &img, "sleep", "1000"]);
    assert!(host_mounted(&data), "the tmpfs volume is not mounted while used");
    let inside = b.docker_ok(&["run", "--network=none", "--rm", "-v", "tv:/tv", &img, "grep", " /tv ", "/proc/mounts"]);
    assert!(inside.starts_with("tmpfs /tv tmpfs ") && inside.contains("size=10240k"), "{inside}");
    // Still used by `holder`: the second container's exit leaves it mounted.
    assert!(host_mounted(&data));
    b.docker_ok(&["rm", "-f", "holder"]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while host_mounted(&data) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(!host_mounted(&data), "the tmpfs volume stayed mounted after its last user");
    b.docker_ok(&["volume", "rm", "tv"]);

    // A bind-like local volume: the container writes into the host directory.
    let host = b.dir.path().join("bound");
    std::fs::create_dir_all(&host).unwrap_or_else(|e| panic!("{e}"));
    let device = format!("device={}", host.display());
    b.docker_ok(&["volume", "create", "--opt", "type=none", "--opt", &device, "--opt", "o=bind", "bv"]);
    b.docker_ok(&["run", "--network=none", "--rm", "-v", "bv:/bv", &img, "sh", "-c", "echo through > /bv/f"]);
    assert_eq!(std::fs::read_to_string(host.join("f")).unwrap_or_default(), "through\n");
    assert!(!host_mounted(&b.root().join("volumes/bv/_data")));
    // Removing the volume never deletes the host directory's files.
    b.docker_ok(&["volume", "rm", "bv"]);
    assert!(host.join("f").is_file());
}

/// The typed client the orchestrator uses: create (idempotent), list by label, inspect, remove, prune.
#[test]
fn the_typed_client_manages_volumes() {
    use berth_engine::client::Client;
    use berth_engine::client::volumes::{CreateVolumeOptions, ListVolumesOptions};
    let b = Berth::new();
    b.ok(&["system", "info"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
    rt.block_on(async {
        let c = Client::connect_with_unix(&b.socket());
        let mut opts = CreateVolumeOptions { name: "proj_data".into(), ..Default::default() };
        opts.labels.insert("com.docker.compose.project".into(), "proj".into());
        let v = c.create_volume(&opts).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((v.name.as_str(), v.driver.as_str()), ("proj_data", "local"));
        assert_eq!(PathBuf::from(&v.mountpoint), b.root().join("volumes/proj_data/_data"));
        let again = c.create_volume(&opts).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(again.created_at, v.created_at);
        let mut filters = std::collections::HashMap::new();
        filters.insert("label".to_string(), vec!["com.docker.compose.project=proj".to_string()]);
        let listed = c.list_volumes(Some(ListVolumesOptions { filters })).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(listed.volumes.len(), 1);
        let inspected = c.inspect_volume("proj_data").await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inspected.labels.get("com.docker.compose.project").map(String::as_str), Some("proj"));
        assert_eq!(c.inspect_volume("nope").await.err().and_then(|e| e.status()), Some(404));
        let anon = c.create_volume(&CreateVolumeOptions::default()).await.unwrap_or_else(|e| panic!("{e}"));
        let pruned = c.prune_volumes(None).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pruned.volumes_deleted, [anon.name]);
        c.remove_volume("proj_data", false).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.remove_volume("proj_data", false).await.err().and_then(|e| e.status()), Some(404));
        c.remove_volume("proj_data", true).await.unwrap_or_else(|e| panic!("{e}"));
    });
}

/// Bind propagation: a `rslave` bind sees what the host mounts under its source after the container started.
/// (That the default `rprivate` one does not is left unchecked: libcontainer 0.7 never applies a bind's
/// propagation — its open_tree/mount_setattr path drops the flag — so a bind of a shared source stays shared.)
#[test]
fn an_rslave_bind_sees_later_host_mounts() {
    let b = Berth::new();
    let img = plain_image(&b);
    let host = b.dir.path().join("prop");
    std::fs::create_dir_all(host.join("sub")).unwrap_or_else(|e| panic!("{e}"));
    // Propagation needs a shared source: the host directory becomes a shared mount of its own (the harness
    // unmounts it with everything under the test's directory).
    run(Command::new("mount").arg("--bind").arg(&host).arg(&host));
    run(Command::new("mount").arg("--make-shared").arg(&host));
    let spec = |mode: &str| format!("{}:/h{mode}", host.display());
    b.docker_ok(&["run", "-d", "--network=none", "--name", "slave", "-v", &spec(":rslave"), &img, "sleep", "1000"]);
    b.docker_ok(&["run", "-d", "--network=none", "--name", "private", "-v", &spec(""), &img, "sleep", "1000"]);
    run(Command::new("mount").args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"]).arg(host.join("sub")));
    let sees = |name: &str| b.docker(&["exec", name, "grep", "-q", " /h/sub tmpfs ", "/proc/mounts"]).status.success();
    assert!(sees("slave"), "the rslave bind did not receive the host's new mount");
    let m = b.docker_ok(&["inspect", "private", "--format", "{{range .Mounts}}{{.Propagation}}{{end}}"]);
    assert_eq!(m.trim(), "rprivate");
    b.docker_ok(&["rm", "-f", "slave", "private"]);
    run(Command::new("umount").arg(host.join("sub")));
    run(Command::new("umount").arg(&host));
}
