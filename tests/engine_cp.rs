//! End to end, as root: `docker cp` both ways against berthd (`HEAD`/`GET`/`PUT /containers/{id}/archive`), for
//! running and stopped containers, with symlinks that try to leave the container.

mod common;

use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{Berth, busybox_tar, stderr, stdout};

/// What the containers write into their own /etc/shadow: a copy must return this, never the host's file.
const CONTAINER_SHADOW: &str = "container-shadow";

/// A berth with the busybox image imported.
fn berth() -> Berth {
    let b = Berth::new();
    let tar = busybox_tar(b.dir.path());
    b.ok(&["image", "import", &tar.to_string_lossy(), "e2e/bb:1", "-c", "CMD [\"sh\"]"]);
    b
}

/// Shell commands that plant a tree and links escaping the root (absolute, relative, through a directory).
fn plant() -> String {
    format!(
        "mkdir -p /data/sub /links && echo hi > /data/a && chmod 4711 /data/a && ln /data/a /data/sub/hard && \
         ln -s a /data/rel && echo {CONTAINER_SHADOW} > /etc/shadow && \
         ln -s /../../../../etc/shadow /links/abs && ln -s ../../../../../../etc/shadow /links/rel && \
         ln -s /../../../etc /links/etc"
    )
}

/// `docker …` with `input` on stdin.
fn docker_stdin(b: &Berth, args: &[&str], input: &[u8]) -> Output {
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
        stdin.write_all(input).unwrap_or_else(|e| panic!("docker stdin: {e}"));
    }
    child.wait_with_output().unwrap_or_else(|e| panic!("docker: {e}"))
}

/// `docker cp CONTAINER:PATH -` as raw tar bytes.
fn cp_out(b: &Berth, src: &str) -> Vec<u8> {
    let out = b.docker(&["cp", src, "-"]);
    assert!(out.status.success(), "docker cp {src} - failed: {}", stderr(&out));
    out.stdout
}

/// (name, type, link name, uid, gid, mode, data) of every entry.
type Entry = (String, tar::EntryType, String, u64, u64, u32, Vec<u8>);

fn entries(tar: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar);
    for e in archive.entries().unwrap_or_else(|e| panic!("tar: {e}")) {
        let mut e = e.unwrap_or_else(|e| panic!("tar entry: {e}"));
        let h = e.header().clone();
        let link = e.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap_or_else(|e| panic!("tar data: {e}"));
        out.push((
            String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            h.entry_type(),
            link,
            h.uid().unwrap_or(u64::MAX),
            h.gid().unwrap_or(u64::MAX),
            h.mode().unwrap_or(0),
            data,
        ));
    }
    out
}

fn find<'a>(entries: &'a [Entry], name: &str) -> &'a Entry {
    entries.iter().find(|e| e.0 == name).unwrap_or_else(|| panic!("no {name} in {:?}", names(entries)))
}

fn names(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.0.as_str()).collect()
}

/// Wait (bounded) until the running container has created `path`.
fn wait_for_file(b: &Berth, container: &str, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !b.docker(&["cp", &format!("{container}:{path}"), "-"]).status.success() {
        assert!(Instant::now() < deadline, "{container}:{path} did not appear");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The escaping links read the container's own files, never the host's.
fn links_stay_inside(b: &Berth, c: &str, out: &Path) {
    for link in ["/links/abs", "/links/rel"] {
        let local = out.join(link.trim_start_matches("/links/"));
        b.docker_ok(&["cp", "-L", &format!("{c}:{link}"), &local.to_string_lossy()]);
        let got = std::fs::read_to_string(&local).unwrap_or_else(|e| panic!("{}: {e}", local.display()));
        assert_eq!(got.trim(), CONTAINER_SHADOW, "{link}");
    }
    // A path through a symlinked directory that points above the root.
    let tar = entries(&cp_out(b, &format!("{c}:/links/etc/shadow")));
    assert_eq!(tar.len(), 1);
    assert_eq!(String::from_utf8_lossy(&tar[0].6).trim(), CONTAINER_SHADOW);
    // Without -L a symlink is copied as the symlink it is.
    let tar = entries(&cp_out(b, &format!("{c}:/links/abs")));
    assert_eq!((tar[0].1, tar[0].2.as_str()), (tar::EntryType::Symlink, "/../../../../etc/shadow"));
}

#[test]
fn cp_out_of_a_running_container() {
    let b = berth();
    let script = format!("{} && touch /ready && exec sleep 1000", plant());
    b.docker_ok(&["run", "-d", "--network", "none", "--name", "cpout", "e2e/bb:1", "sh", "-c", &script]);
    wait_for_file(&b, "cpout", "/ready");
    let out = b.dir.path().join("out");
    std::fs::create_dir(&out).unwrap_or_else(|e| panic!("{e}"));

    // A file to a new local name.
    b.docker_ok(&["cp", "cpout:/etc/passwd", &out.join("passwd").to_string_lossy()]);
    let passwd = std::fs::read_to_string(out.join("passwd")).unwrap_or_default();
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");

    // A directory to a new local name, with its hard link and relative symlink.
    b.docker_ok(&["cp", "cpout:/data", &out.join("data-copy").to_string_lossy()]);
    let a = std::fs::symlink_metadata(out.join("data-copy/a")).unwrap_or_else(|e| panic!("{e}"));
    let hard = std::fs::symlink_metadata(out.join("data-copy/sub/hard")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a.ino(), hard.ino(), "the hard link is kept");
    assert_eq!(a.mode() & 0o7777, 0o4711);
    assert_eq!(std::fs::read_link(out.join("data-copy/rel")).unwrap_or_default(), Path::new("a"));

    // The tar stream: names under the requested base name, modes, owners, links.
    let tar = entries(&cp_out(&b, "cpout:/data"));
    assert_eq!(names(&tar), ["data/", "data/a", "data/rel", "data/sub/", "data/sub/hard"]);
    let a = find(&tar, "data/a");
    assert_eq!((a.3, a.4, a.5, a.6.as_slice()), (0, 0, 0o4711, &b"hi\n"[..]));
    assert_eq!(find(&tar, "data/sub/hard").1, tar::EntryType::Link);
    assert_eq!(find(&tar, "data/sub/hard").2, "data/a");
    // `/.` is the directory's contents.
    let tar = entries(&cp_out(&b, "cpout:/data/."));
    assert!(names(&tar).contains(&"a") || names(&tar).contains(&"./a"), "{:?}", names(&tar));

    links_stay_inside(&b, "cpout", &out);

    // The whole root: the image's hard links are kept, the container's /proc and /sys are not entered.
    let tar = entries(&cp_out(&b, "cpout:/"));
    let all = names(&tar);
    assert!(all.contains(&"etc/passwd") && all.contains(&"bin/busybox"), "{all:?}");
    // The applets are hard links of one file: one regular entry, the others links to it.
    let links: Vec<&Entry> = tar.iter().filter(|e| e.1 == tar::EntryType::Link && !e.0.starts_with("data/")).collect();
    assert!(links.len() > 100, "{} hard links", links.len());
    let first = &links[0].2;
    assert!(links.iter().all(|l| &l.2 == first), "all applets link to one file");
    assert_eq!(find(&tar, first).1, tar::EntryType::Regular);
    assert!(all.contains(&"proc/") && all.contains(&"sys/"), "{all:?}");
    assert!(!all.iter().any(|n| n.starts_with("proc/") && *n != "proc/"), "/proc was entered");
    assert!(!all.iter().any(|n| n.starts_with("sys/") && *n != "sys/"), "/sys was entered");

    // A path that does not exist.
    let missing = b.docker(&["cp", "cpout:/nope", &out.join("nope").to_string_lossy()]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("Could not find the file /nope in container cpout"), "{}", stderr(&missing));
    assert!(!out.join("nope").exists());
    b.docker_ok(&["rm", "-f", "cpout"]);
}

#[test]
fn cp_into_a_running_container() {
    let b = berth();
    b.docker_ok(&[
        "run",
        "-d",
        "--network",
        "none",
        "--name",
        "cpin",
        "e2e/bb:1",
        "sh",
        "-c",
        "touch /ready && exec sleep 1000",
    ]);
    wait_for_file(&b, "cpin", "/ready");
    let src = b.dir.path().join("src");
    std::fs::create_dir_all(src.join("dir/sub")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(src.join("dir/one"), "one\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(src.join("dir/sub/two"), "two\n").unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(src.join("file"), "replaced\n").unwrap_or_else(|e| panic!("{e}"));
    // Owned by someone else locally: the copy in the container belongs to root unless -a.
    for p in ["dir", "dir/one", "dir/sub", "dir/sub/two", "file"] {
        std::os::unix::fs::chown(src.join(p), Some(1234), Some(1234)).unwrap_or_else(|e| panic!("{e}"));
    }
    let dir = src.join("dir").to_string_lossy().into_owned();

    // A directory into an existing directory, and to a new name.
    b.docker_ok(&["cp", &dir, "cpin:/tmp/"]);
    b.docker_ok(&["cp", &dir, "cpin:/tmp/renamed"]);
    let tar = entries(&cp_out(&b, "cpin:/tmp"));
    for name in ["tmp/dir/one", "tmp/dir/sub/two", "tmp/renamed/one", "tmp/renamed/sub/two"] {
        let e = find(&tar, name);
        assert_eq!((e.3, e.4), (0, 0), "{name} belongs to root");
    }
    assert_eq!(find(&tar, "tmp/renamed/sub/two").6, b"two\n");

    // -a keeps the owners (the container has no user).
    b.docker_ok(&["cp", "-a", &dir, "cpin:/tmp/kept"]);
    let tar = entries(&cp_out(&b, "cpin:/tmp/kept"));
    assert_eq!((find(&tar, "kept/one").3, find(&tar, "kept/one").4), (1234, 1234));

    // A file onto an existing file replaces it; a directory onto a file is refused.
    b.docker_ok(&["cp", &src.join("file").to_string_lossy(), "cpin:/etc/hostname"]);
    assert_eq!(entries(&cp_out(&b, "cpin:/etc/hostname"))[0].6, b"replaced\n");
    let onto_file = b.docker(&["cp", &dir, "cpin:/etc/passwd"]);
    assert!(!onto_file.status.success());
    assert!(stderr(&onto_file).contains("cannot copy directory"), "{}", stderr(&onto_file));
    // Into a directory that does not exist.
    let missing = b.docker(&["cp", &src.join("file").to_string_lossy(), "cpin:/nope/file"]);
    assert!(!missing.status.success());
    assert!(stderr(&missing).contains("Could not find the file /nope"), "{}", stderr(&missing));

    // A large file both ways, streamed in chunks.
    let big: Vec<u8> = (0..24u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(src.join("big"), &big).unwrap_or_else(|e| panic!("{e}"));
    b.docker_ok(&["cp", &src.join("big").to_string_lossy(), "cpin:/tmp/big"]);
    let back = b.dir.path().join("big-back");
    b.docker_ok(&["cp", "cpin:/tmp/big", &back.to_string_lossy()]);
    assert!(std::fs::read(&back).unwrap_or_default() == big, "the large file came back changed");

    // A tar stream on stdin, extracted into a directory.
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(7);
    h.set_mode(0o600);
    h.set_uid(42);
    h.set_mtime(1_700_000_000);
    builder.append_data(&mut h, "streamed.txt", &b"stream\n"[..]).unwrap_or_else(|e| panic!("{e}"));
    let tar = builder.into_inner().unwrap_or_else(|e| panic!("{e}"));
    let out = docker_stdin(&b, &["cp", "-", "cpin:/tmp"], &tar);
    assert!(out.status.success(), "docker cp - failed: {}{}", stdout(&out), stderr(&out));
    let got = entries(&cp_out(&b, "cpin:/tmp/streamed.txt"));
    assert_eq!((got[0].3, got[0].5, got[0].6.as_slice()), (0, 0o600, &b"stream\n"[..]));
    b.docker_ok(&["rm", "-f", "cpin"]);
}

/// Mounts of this berth (the harness's root dir is in their path).
fn mounts_of(b: &Berth) -> usize {
    let marker = b.dir.path().to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mounts.lines().filter(|l| l.split(' ').nth(4).is_some_and(|m| m.starts_with(&marker))).count()
}

#[test]
fn cp_into_and_out_of_stopped_containers() {
    let b = berth();
    // Created, never started: a file copied in is there when it starts.
    b.docker_ok(&["create", "--network", "none", "--name", "later", "e2e/bb:1", "cat", "/greeting"]);
    let greeting = b.dir.path().join("greeting");
    std::fs::write(&greeting, "hello from cp\n").unwrap_or_else(|e| panic!("{e}"));
    b.docker_ok(&["cp", &greeting.to_string_lossy(), "later:/greeting"]);
    assert_eq!(mounts_of(&b), 0, "the overlay mounted for the copy is unmounted");
    b.docker_ok(&["start", "later"]);
    assert_eq!(b.docker_ok(&["wait", "later"]).trim(), "0");
    assert_eq!(b.docker_ok(&["logs", "later"]), "hello from cp\n");

    // Exited, with escaping links planted while it ran.
    b.docker_ok(&["run", "--network", "none", "--name", "done", "e2e/bb:1", "sh", "-c", &plant()]);
    assert_eq!(b.docker_ok(&["inspect", "done", "--format", "{{.State.Status}}"]).trim(), "exited");
    let out = b.dir.path().join("out");
    std::fs::create_dir(&out).unwrap_or_else(|e| panic!("{e}"));
    links_stay_inside(&b, "done", &out);
    let tar = entries(&cp_out(&b, "done:/data/a"));
    assert_eq!((tar[0].0.as_str(), tar[0].6.as_slice()), ("a", &b"hi\n"[..]));
    let missing = b.docker(&["cp", "done:/nope", "-"]);
    assert!(stderr(&missing).contains("Could not find the file /nope in container done"), "{}", stderr(&missing));
    assert_eq!(mounts_of(&b), 0, "no mount is left after copies out, failed ones included");
    b.docker_ok(&["rm", "later", "done"]);
}

/// `curl` against the test's socket: (status, headers, body).
fn curl(b: &Berth, method: &str, path: &str) -> (u16, String, String) {
    let out = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "-", "-w", "\n%{http_code}", "--unix-socket"])
        .arg(b.socket())
        .args(["-X", method])
        .args(if method == "HEAD" { vec!["-I"] } else { vec![] })
        .args(if method == "PUT" { vec!["--data-binary", "@/dev/null"] } else { vec![] })
        .arg(format!("http://berth/v1.47{path}"))
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (rest, code) = text.rsplit_once('\n').unwrap_or(("", ""));
    let (headers, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    (code.trim().parse().unwrap_or(0), headers.to_ascii_lowercase(), body.to_string())
}

#[test]
fn archive_api_answers_as_docker() {
    let b = berth();
    b.docker_ok(&["create", "--network", "none", "--name", "api", "e2e/bb:1"]);

    // HEAD: the stat header only, with Go's FileMode bits (directory = 1 << 31).
    let (code, headers, _) = curl(&b, "HEAD", "/containers/api/archive?path=/tmp");
    assert_eq!(code, 200, "{headers}");
    assert!(headers.contains("x-docker-container-path-stat: "), "{headers}");
    let stat = stat_of(&b, "/tmp");
    assert_eq!(stat["name"], "tmp");
    assert_eq!(stat["mode"].as_u64(), Some((1 << 31) | (1 << 20) | 0o777), "{stat}");
    assert_eq!(stat["linkTarget"], "");

    let (code, _, body) = curl(&b, "HEAD", "/containers/api/archive?path=/nope");
    assert_eq!((code, body.trim()), (404, ""));
    let (code, _, body) = curl(&b, "GET", "/containers/api/archive?path=/nope");
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("Could not find the file /nope in container api"), "{body}");
    let (code, _, body) = curl(&b, "PUT", "/containers/api/archive?path=/etc/passwd");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("not a directory"), "{body}");
    let (code, _, body) = curl(&b, "PUT", "/containers/api/archive?path=/nope");
    assert_eq!(code, 404, "{body}");
    let (code, _, body) = curl(&b, "GET", "/containers/nosuch/archive?path=/");
    assert_eq!(code, 404, "{body}");
    let (code, _, body) = curl(&b, "GET", "/containers/api/archive");
    assert_eq!(code, 400, "{body}");

    // A symlink streamed into the stopped container: its stat names the resolved target, inside the container.
    let mut builder = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    h.set_mtime(1_700_000_000);
    h.set_uid(0);
    h.set_gid(0);
    builder.append_link(&mut h, "esc", "/../../etc/passwd").unwrap_or_else(|e| panic!("{e}"));
    let tar = builder.into_inner().unwrap_or_else(|e| panic!("{e}"));
    let out = docker_stdin(&b, &["cp", "-", "api:/tmp"], &tar);
    assert!(out.status.success(), "{}", stderr(&out));
    let stat = stat_of(&b, "/tmp/esc");
    assert_eq!(stat["name"], "esc");
    assert_eq!(stat["linkTarget"], "/etc/passwd", "{stat}");
    assert_eq!(stat["mode"].as_u64(), Some((1 << 27) | 0o777), "{stat}");

    // A read-only container's rootfs takes no copy, stopped or not.
    b.docker_ok(&["create", "--network", "none", "--read-only", "--name", "ro", "e2e/bb:1"]);
    let refused = docker_stdin(&b, &["cp", "-", "ro:/tmp"], &tar);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("container rootfs is marked read-only"), "{}", stderr(&refused));
    assert_eq!(mounts_of(&b), 0);
    b.docker_ok(&["rm", "api", "ro"]);
}

/// The decoded stat header of `path` in container `api`.
fn stat_of(b: &Berth, path: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args(["-s", "-I", "--unix-socket"])
        .arg(b.socket())
        .arg(format!("http://berth/v1.47/containers/api/archive?path={path}"))
        .output()
        .unwrap_or_else(|e| panic!("curl: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let value = text
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-docker-container-path-stat").then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no stat header in {text}"));
    let json = base64::engine::general_purpose::STANDARD.decode(value).unwrap_or_else(|e| panic!("base64: {e}"));
    serde_json::from_slice(&json).unwrap_or_else(|e| panic!("stat json: {e}"))
}

/// A running container is copied through its own mount namespace: files under a bind mount are the host
/// directory's, both ways, even with a read-only rootfs (which refuses copies elsewhere), and a symlink in the
/// bind still resolves inside the container.
#[test]
fn cp_through_a_bind_mount_of_a_running_container() {
    let b = berth();
    let host = b.dir.path().join("bound");
    std::fs::create_dir(&host).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(host.join("from-host"), "host side\n").unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink("/etc/passwd", host.join("passwd-link")).unwrap_or_else(|e| panic!("{e}"));
    let bind = format!("{}:/vol", host.display());
    let script = "touch /vol/ready && exec sleep 1000";
    b.docker_ok(
        &["run", "-d", "--network", "none", "--read-only", "--name", "bound", "-v", &bind, "e2e/bb:1"]
            .into_iter()
            .chain(["sh", "-c", script])
            .collect::<Vec<_>>(),
    );
    wait_for_file(&b, "bound", "/vol/ready");

    let tar = entries(&cp_out(&b, "bound:/vol/from-host"));
    assert_eq!(tar[0].6, b"host side\n");
    let local = b.dir.path().join("into");
    std::fs::write(&local, "container side\n").unwrap_or_else(|e| panic!("{e}"));
    b.docker_ok(&["cp", &local.to_string_lossy(), "bound:/vol/"]);
    assert_eq!(std::fs::read_to_string(host.join("into")).unwrap_or_default(), "container side\n");
    // The same file is not in the container's own rootfs under the mount point.
    let upper = b.root().join("containers");
    let leaked = walk_for(&upper, "into");
    assert!(leaked.is_empty(), "the copy went under the bind mount, not into the rootfs: {leaked:?}");

    let refused = b.docker(&["cp", &local.to_string_lossy(), "bound:/tmp/"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("container rootfs is marked read-only"), "{}", stderr(&refused));

    // The link in the bind names /etc/passwd: the container's (busybox's), not the host's.
    let out = b.dir.path().join("passwd-out");
    b.docker_ok(&["cp", "-L", "bound:/vol/passwd-link", &out.to_string_lossy()]);
    let passwd = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(passwd.contains("www-data:x:33:33:www-data:/var/www:/bin/false"), "{passwd}");
    assert_eq!(passwd, String::from_utf8_lossy(&entries(&cp_out(&b, "bound:/etc/passwd"))[0].6));
    b.docker_ok(&["rm", "-f", "bound"]);
}

/// Paths named `name` below `dir` (bounded depth, no symlinks followed, mounts not entered).
fn walk_for(dir: &Path, name: &str) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), 0)];
    while let Some((d, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_name() == name {
                found.push(p.clone());
            }
            // The running container's merged rootfs is a mount of its own: its upper dir is what counts.
            if e.file_type().is_ok_and(|t| t.is_dir()) && depth < 12 && e.file_name() != "rootfs" {
                stack.push((p, depth + 1));
            }
        }
    }
    found
}

/// A stopped container's volumes and binds are mounted for the copy, as Docker does: a file copied into its
/// volume is in the volume when it runs, its bind shows the host directory, and a read-only rootfs refuses
/// copies everywhere but there.
#[test]
fn cp_into_the_volumes_of_a_stopped_container() {
    let b = berth();
    let host = b.dir.path().join("bound");
    std::fs::create_dir(&host).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(host.join("from-host"), "host side\n").unwrap_or_else(|e| panic!("{e}"));
    let bind = format!("{}:/bind", host.display());
    let create = ["create", "--network", "none", "--read-only", "--name", "vols", "-v", "cpvol:/data", "-v", &bind];
    b.docker_ok(&create.into_iter().chain(["e2e/bb:1", "cat", "/data/greeting", "/bind/into"]).collect::<Vec<_>>());

    let local = b.dir.path().join("greeting");
    std::fs::write(&local, "in the volume\n").unwrap_or_else(|e| panic!("{e}"));
    b.docker_ok(&["cp", &local.to_string_lossy(), "vols:/data/greeting"]);
    b.docker_ok(&["cp", &local.to_string_lossy(), "vols:/bind/into"]);
    assert_eq!(std::fs::read_to_string(host.join("into")).unwrap_or_default(), "in the volume\n");
    assert_eq!(entries(&cp_out(&b, "vols:/bind/from-host"))[0].6, b"host side\n");
    let refused = b.docker(&["cp", &local.to_string_lossy(), "vols:/tmp/"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("container rootfs is marked read-only"), "{}", stderr(&refused));
    assert_eq!(mounts_of(&b), 0, "the overlay and the volumes mounted for the copies are gone");

    b.docker_ok(&["start", "vols"]);
    assert_eq!(b.docker_ok(&["wait", "vols"]).trim(), "0");
    assert_eq!(b.docker_ok(&["logs", "vols"]), "in the volume\nin the volume\n");
    b.docker_ok(&["rm", "-v", "vols"]);
    b.docker_ok(&["volume", "rm", "cpvol"]);
}
