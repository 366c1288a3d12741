//! Pull, push and login against a real registry (Debian's docker-registry) on 127.0.0.1, with images built here.

#[path = "common/registry_server.rs"]
mod registry_server;

use std::collections::HashMap;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use berth_engine::image::store::ImageStore;
use berth_engine::image::{Digest, Reference};
use berth_engine::registry::{
    self, Credentials, ProgressEvent, PullOptions, Puller, PushOptions, RegistryError, RegistryOptions,
};
use registry_server::{Compression, RegistryServer, TestImage, build_image, noise, tar_layer};

/// Every test's async part runs under this deadline.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);

fn run<T>(f: impl std::future::Future<Output = T>) -> T {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    rt.block_on(async { tokio::time::timeout(TEST_TIMEOUT, f).await.expect("the test timed out") })
}

fn new_store() -> (tempfile::TempDir, Arc<ImageStore>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ImageStore::open(&dir.path().join("root")).expect("open store");
    (dir, Arc::new(store))
}

fn registry_opts() -> RegistryOptions {
    // No credentials files: tests must not read the user's ~/.docker/config.json.
    RegistryOptions {
        auth_files: Vec::new(),
        connect_timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(20),
        ..RegistryOptions::default()
    }
}

fn pull_opts() -> PullOptions {
    PullOptions { registry: registry_opts(), ..PullOptions::default() }
}

fn reference(reg: &RegistryServer, name: &str) -> Reference {
    format!("{}/{name}", reg.host()).parse().expect("reference")
}

fn digest(s: &str) -> Digest {
    s.parse().expect("digest")
}

fn small_image(seed: u64, platform: &str) -> TestImage {
    build_image(
        vec![
            tar_layer(&[("etc/a", &noise(20_000, seed))], Compression::Gzip, false),
            tar_layer(&[("etc/b", &noise(30_000, seed + 1))], Compression::Gzip, false),
            tar_layer(&[("etc/c", format!("{platform}\n").as_bytes())], Compression::Gzip, false),
        ],
        platform,
        false,
    )
}

/// Files under `blobs/tmp` (writes in progress or abandoned).
fn temp_blobs(store: &ImageStore) -> usize {
    std::fs::read_dir(store.root().join("blobs/tmp")).map(|d| d.count()).unwrap_or(0)
}

/// (inode, mtime) of a stored blob, to tell whether it was rewritten.
fn blob_identity(store: &ImageStore, d: &str) -> (u64, i64, i64) {
    let m = std::fs::metadata(store.blob_path(&digest(d))).expect("blob metadata");
    (m.ino(), m.mtime(), m.mtime_nsec())
}

fn recorder() -> (Arc<std::sync::Mutex<Vec<ProgressEvent>>>, impl FnMut(ProgressEvent) + Send + 'static) {
    let events = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    (events, move |e| sink.lock().expect("events").push(e))
}

#[test]
fn missing_registry_binary_fails_with_instructions() {
    let message = registry_server::check_binary(Path::new("/nonexistent/docker-registry"))
        .expect_err("a missing binary must be an error");
    assert!(message.contains("run .ci/run"), "{message}");
    assert!(message.contains("/nonexistent/docker-registry"), "{message}");
}

#[test]
fn pull_multi_layer_image_then_again_without_download() {
    let reg = RegistryServer::start();
    let img = small_image(1, "linux/amd64");
    reg.push_image("team/app", "1", &img);
    let (_dir, store) = new_store();
    let puller = Puller::new(store.clone());
    let r = reference(&reg, "team/app:1");

    let (events, sink) = recorder();
    let image = run(puller.pull(&r, &pull_opts(), sink)).expect("pull");
    assert_eq!(image.manifest_digest, digest(&img.manifest_digest));
    assert_eq!(image.id, digest(&img.config_digest));
    assert_eq!(image.layers.len(), 3);
    assert!(image.repo_tags.contains(&r), "{:?}", image.repo_tags);
    for l in &img.layers {
        let stored = std::fs::read(store.blob_path(&digest(&l.digest))).expect("layer blob");
        assert!(stored == l.blob, "layer {} stored as pulled", l.digest);
    }
    let events = events.lock().expect("events").clone();
    let done: Vec<_> = events.iter().filter(|e| matches!(e, ProgressEvent::BlobDone { .. })).collect();
    assert_eq!(done.len(), 4, "config and three layers: {events:?}");
    assert!(matches!(events.last(), Some(ProgressEvent::Done { up_to_date: false, .. })), "{events:?}");
    let first = puller.stats();
    assert_eq!(first.blob_fetches, 4);
    assert_eq!(temp_blobs(&store), 0);

    let before: Vec<_> = img
        .layers
        .iter()
        .map(|l| blob_identity(&store, &l.digest))
        .chain([blob_identity(&store, &img.manifest_digest)])
        .collect();
    let (events, sink) = recorder();
    let again = run(puller.pull(&r, &pull_opts(), sink)).expect("second pull");
    assert_eq!(again.id, image.id);
    let second = puller.stats();
    assert_eq!(second.blob_fetches, first.blob_fetches, "no blob downloaded again");
    assert_eq!(second.bytes_fetched, first.bytes_fetched);
    assert_eq!(second.manifest_requests, first.manifest_requests + 1, "one request: the tag's digest");
    let after: Vec<_> = img
        .layers
        .iter()
        .map(|l| blob_identity(&store, &l.digest))
        .chain([blob_identity(&store, &img.manifest_digest)])
        .collect();
    assert_eq!(before, after, "blobs not rewritten");
    let events = events.lock().expect("events").clone();
    assert!(matches!(events.last(), Some(ProgressEvent::Done { up_to_date: true, .. })), "{events:?}");
    assert!(!events.iter().any(|e| matches!(e, ProgressEvent::BlobProgress { .. })), "{events:?}");

    // By digest: no request at all.
    let by_digest: Reference = format!("{}/team/app@{}", reg.host(), img.manifest_digest).parse().expect("ref");
    let pinned = run(puller.pull(&by_digest, &pull_opts(), |_| {})).expect("pull by digest");
    assert_eq!(pinned.id, image.id);
    assert_eq!(puller.stats().manifest_requests, second.manifest_requests);
}

#[test]
fn manifest_list_and_index_choose_the_platform() {
    let reg = RegistryServer::start();
    let arm64 = small_image(10, "linux/arm64/v8");
    let amd64 = small_image(20, "linux/amd64");
    let armv7 = small_image(30, "linux/arm/v7");
    reg.push_index("multi/docker", "1", &[&arm64, &amd64, &armv7], true);
    reg.push_index("multi/oci", "1", &[&armv7, &arm64, &amd64], false);

    for repo in ["multi/docker:1", "multi/oci:1"] {
        let (_dir, store) = new_store();
        let image = run(registry::pull(&store, &reference(&reg, repo), &pull_opts(), |_| {})).expect("pull");
        assert_eq!(image.id, digest(&amd64.config_digest), "{repo}: amd64 chosen");
        assert_eq!(image.manifest_digest, digest(&amd64.manifest_digest));
        assert!(!store.has_blob(&digest(&arm64.layers[0].digest)), "other platforms' layers are not fetched");

        let opts = PullOptions { platform: "linux/arm64".parse().expect("platform"), ..pull_opts() };
        let image = run(registry::pull(&store, &reference(&reg, repo), &opts, |_| {})).expect("pull arm64");
        assert_eq!(image.id, digest(&arm64.config_digest), "{repo}: arm64 (v8 implied) chosen");
        let opts = PullOptions { platform: "linux/arm/v7".parse().expect("platform"), ..pull_opts() };
        let image = run(registry::pull(&store, &reference(&reg, repo), &opts, |_| {})).expect("pull arm/v7");
        assert_eq!(image.id, digest(&armv7.config_digest));
    }
}

#[test]
fn another_platform_only_is_a_clear_error() {
    let reg = RegistryServer::start();
    let arm64 = small_image(40, "linux/arm64/v8");
    let s390x = small_image(50, "linux/s390x");
    reg.push_image("only/arm", "1", &arm64);
    reg.push_index("only/index", "1", &[&arm64, &s390x], false);
    let (_dir, store) = new_store();

    let r = reference(&reg, "only/arm:1");
    let e = run(registry::pull(&store, &r, &pull_opts(), |_| {})).expect_err("wrong platform");
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::PlatformNotAvailable { .. }), "{msg}");
    assert!(msg.contains("only/arm:1") && msg.contains("linux/amd64") && msg.contains("linux/arm64/v8"), "{msg}");
    assert!(store.resolve(&r.to_string()).is_err(), "no image added");
    assert!(!store.has_blob(&digest(&arm64.layers[0].digest)), "no layer fetched");

    let r = reference(&reg, "only/index:1");
    let msg = run(registry::pull(&store, &r, &pull_opts(), |_| {})).expect_err("wrong platform").to_string();
    assert!(msg.contains("only/index:1") && msg.contains("linux/arm64/v8, linux/s390x"), "{msg}");
    assert!(store.resolve(&r.to_string()).is_err());
}

#[test]
fn zstd_plain_and_docker_schema2_layers_are_stored_as_pulled() {
    let reg = RegistryServer::start();
    let oci = build_image(
        vec![
            tar_layer(&[("z", &noise(40_000, 7))], Compression::Zstd, false),
            tar_layer(&[("p", b"plain layer")], Compression::Plain, false),
            tar_layer(&[("g", b"gzip layer")], Compression::Gzip, false),
        ],
        "linux/amd64",
        false,
    );
    let docker =
        build_image(vec![tar_layer(&[("d", &noise(10_000, 8))], Compression::Gzip, true)], "linux/amd64", true);
    reg.push_image("mixed/oci", "1", &oci);
    reg.push_image("mixed/docker", "1", &docker);
    let (_dir, store) = new_store();
    for (repo, img) in [("mixed/oci:1", &oci), ("mixed/docker:1", &docker)] {
        let image = run(registry::pull(&store, &reference(&reg, repo), &pull_opts(), |_| {})).expect(repo);
        assert_eq!(image.manifest_digest, digest(&img.manifest_digest));
        for (l, info) in img.layers.iter().zip(&image.layers) {
            assert_eq!(info.media_type, l.media_type);
            assert_eq!(info.diff_id, digest(&l.diff_id));
            assert!(std::fs::read(store.blob_path(&digest(&l.digest))).expect("blob") == l.blob);
        }
    }
}

#[test]
fn missing_tag_and_repository_say_not_found() {
    let reg = RegistryServer::start();
    reg.push_image("here/app", "1", &small_image(60, "linux/amd64"));
    let (_dir, store) = new_store();
    for name in ["here/app:nope", "nowhere/app:1"] {
        let r = reference(&reg, name);
        let e = run(registry::pull(&store, &r, &pull_opts(), |_| {})).expect_err("missing");
        let msg = e.to_string();
        assert!(matches!(e, RegistryError::NotFound { .. }), "{msg}");
        assert_eq!(msg, format!("image {} not found in registry {} (manifest unknown)", r.familiar(), reg.host()));
    }
}

#[test]
fn corrupted_blob_is_a_digest_mismatch_and_nothing_is_stored() {
    let reg = RegistryServer::start();
    let img = small_image(70, "linux/amd64");
    reg.push_image("bad/app", "1", &img);
    let victim = &img.layers[1];
    let path = reg.blob_data_path(&victim.digest);
    let mut bytes = std::fs::read(&path).expect("registry blob");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).expect("corrupt blob");

    let (_dir, store) = new_store();
    let r = reference(&reg, "bad/app:1");
    let e = run(registry::pull(&store, &r, &pull_opts(), |_| {})).expect_err("corrupt");
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::DigestMismatch { .. }), "{msg}");
    assert!(msg.contains(&victim.digest) && msg.contains("bad/app:1") && msg.contains("it was not stored"), "{msg}");
    assert!(!store.has_blob(&digest(&victim.digest)));
    assert!(!store.has_blob(&digest(&img.manifest_digest)), "manifest stored only when the pull completes");
    assert!(store.resolve(&r.to_string()).is_err());
    assert_eq!(temp_blobs(&store), 0, "no partial blob left");
}

#[test]
fn truncated_blob_in_the_registry_is_reported_as_truncated() {
    let reg = RegistryServer::start();
    let img = small_image(80, "linux/amd64");
    reg.push_image("short/app", "1", &img);
    let victim = &img.layers[0];
    let path = reg.blob_data_path(&victim.digest);
    let bytes = std::fs::read(&path).expect("registry blob");
    std::fs::write(&path, &bytes[..bytes.len() / 3]).expect("truncate blob");

    let (_dir, store) = new_store();
    let e = run(registry::pull(&store, &reference(&reg, "short/app:1"), &pull_opts(), |_| {})).expect_err("short");
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Truncated { .. }), "{msg}");
    assert!(msg.contains(&victim.digest) && msg.contains(&format!("of {} bytes", bytes.len())), "{msg}");
    assert!(!store.has_blob(&digest(&victim.digest)));
    assert_eq!(temp_blobs(&store), 0);
}

#[test]
fn registry_killed_mid_pull_then_the_next_pull_completes() {
    let mut reg = RegistryServer::start();
    let img = build_image(
        vec![
            tar_layer(&[("small", b"small")], Compression::Gzip, false),
            tar_layer(&[("big", &noise(48 << 20, 90))], Compression::Plain, false),
        ],
        "linux/amd64",
        false,
    );
    reg.push_image("kill/app", "1", &img);
    let r = reference(&reg, "kill/app:1");
    let (_dir, store) = new_store();
    let puller = Puller::new(store.clone());
    let big = digest(&img.layers[1].digest);

    let e = run(puller.pull(&r, &pull_opts(), |e| {
        if let ProgressEvent::BlobProgress { digest, current, total } = &e
            && *digest == big
            && current < total
            && reg.is_running()
        {
            reg.kill();
        }
    }))
    .expect_err("the registry died");
    let msg = e.to_string();
    assert!(
        matches!(
            e,
            RegistryError::Interrupted { .. } | RegistryError::Unreachable { .. } | RegistryError::Truncated { .. }
        ),
        "{msg}"
    );
    assert!(msg.contains("kill/app:1"), "{msg}");
    assert!(!store.has_blob(&big), "the cut layer is not in the store");
    assert!(store.resolve(&r.to_string()).is_err(), "no image half-visible");
    assert_eq!(temp_blobs(&store), 0);

    reg.restart();
    let fetched_before = puller.stats().blob_fetches;
    let image = run(puller.pull(&r, &pull_opts(), |_| {})).expect("pull after restart");
    assert_eq!(image.manifest_digest, digest(&img.manifest_digest));
    assert!(store.has_blob(&big));
    // The small layer and the config made it the first time: only the big layer is fetched again.
    assert_eq!(puller.stats().blob_fetches - fetched_before, 1);
}

#[test]
fn a_pull_cancelled_midway_leaves_nothing_half_visible() {
    let reg = RegistryServer::start();
    let img = build_image(
        vec![
            tar_layer(&[("small", b"small")], Compression::Gzip, false),
            tar_layer(&[("big", &noise(32 << 20, 91))], Compression::Plain, false),
        ],
        "linux/amd64",
        false,
    );
    reg.push_image("cancel/app", "1", &img);
    let r = reference(&reg, "cancel/app:1");
    let (dir, store) = new_store();
    let big = digest(&img.layers[1].digest);

    // The pull future is dropped as soon as the big layer is under way, as when berthd's client goes away.
    let puller = Puller::new(store.clone());
    let cancelled = run(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let mut tx = Some(tx);
        let opts = pull_opts();
        let pull = puller.pull(&r, &opts, |e| {
            if matches!(&e, ProgressEvent::BlobProgress { digest, .. } if *digest == big)
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(());
            }
        });
        tokio::select! {
            res = pull => res.map(|_| false),
            _ = rx => Ok(true),
        }
    });
    assert!(cancelled.expect("no error before the cancel"), "the pull was cancelled midway");
    // The writer thread sees its queue closed and deletes the partial blob.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while temp_blobs(&store) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(temp_blobs(&store), 0, "no partial blob left");
    assert!(!store.has_blob(&big));
    assert!(store.resolve(&r.to_string()).is_err(), "no image half-visible");
    drop(puller);

    // berthd restarts: the store is opened again and the next pull completes with what is missing.
    drop(store);
    let store = Arc::new(ImageStore::open(&dir.path().join("root")).expect("reopen"));
    let puller = Puller::new(store.clone());
    let image = run(puller.pull(&r, &pull_opts(), |_| {})).expect("pull after the cancel");
    assert_eq!(image.manifest_digest, digest(&img.manifest_digest));
    assert_eq!(puller.stats().blob_fetches, 1, "only the cut layer is fetched again");
}

/// berthd runs pulls and pushes with `tokio::spawn`: their futures must be `Send + 'static` once given owned data.
#[test]
fn pull_and_push_futures_can_be_spawned() {
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let r: Reference = format!("127.0.0.1:{port}/app:1").parse().expect("ref");
    let (_dir, store) = new_store();
    let puller = Arc::new(Puller::new(store));
    let (pulled, pushed) = run(async {
        let (p, r2) = (puller.clone(), r.clone());
        let pull = tokio::spawn(async move { p.pull(&r2, &pull_opts(), |_| {}).await.map(|_| ()) });
        let (p, r2) = (puller.clone(), r.clone());
        let opts = PushOptions { registry: registry_opts(), ..PushOptions::default() };
        let push = tokio::spawn(async move { p.push("app:1", &r2, &opts, |_| {}).await.map(|_| ()) });
        (pull.await.expect("pull task"), push.await.expect("push task"))
    });
    assert!(matches!(pulled, Err(RegistryError::Unreachable { .. })), "{pulled:?}");
    let pushed = pushed.expect_err("no such local image").to_string();
    assert!(pushed.contains("app:1"), "{pushed}");
}

#[test]
fn concurrent_pulls_fetch_each_blob_once() {
    let reg = RegistryServer::start();
    let img = build_image(
        (0..4).map(|i| tar_layer(&[("f", &noise(3 << 20, 100 + i))], Compression::Plain, false)).collect(),
        "linux/amd64",
        false,
    );
    reg.push_image("conc/app", "1", &img);
    let r = reference(&reg, "conc/app:1");
    let (_dir, store) = new_store();
    let puller = Arc::new(Puller::new(store.clone()));

    let results = run(async {
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let (puller, r) = (puller.clone(), r.clone());
                // tokio::spawn also proves the pull future is Send, as berthd needs.
                tokio::spawn(async move { puller.pull(&r, &pull_opts(), |_| {}).await })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("task"));
        }
        out
    });
    for res in results {
        assert_eq!(res.expect("pull").manifest_digest, digest(&img.manifest_digest));
    }
    let stats = puller.stats();
    assert_eq!(stats.blob_fetches, 5, "four layers and the config, once each: {stats:?}");
    let total: u64 = img.layers.iter().map(|l| l.blob.len() as u64).sum::<u64>() + img.config.len() as u64;
    assert_eq!(stats.bytes_fetched, total);
}

#[test]
fn push_then_pull_round_trip() {
    let reg = RegistryServer::start();
    // The source image enters a store by pull from one repository…
    let img = small_image(110, "linux/amd64");
    reg.push_image("src/app", "1", &img);
    let (_dir, store) = new_store();
    let puller = Puller::new(store.clone());
    let src = reference(&reg, "src/app:1");
    run(puller.pull(&src, &pull_opts(), |_| {})).expect("pull source");

    // …and is pushed to another, which has none of its blobs.
    let target = reference(&reg, "dst/app:2");
    let opts = PushOptions { registry: registry_opts(), ..PushOptions::default() };
    let (events, sink) = recorder();
    let pushed = run(puller.push(&src.to_string(), &target, &opts, sink)).expect("push");
    assert_eq!(pushed, digest(&img.manifest_digest), "the manifest is pushed byte for byte");
    assert_eq!(puller.stats().blob_uploads, 4);
    let head = reg.request("HEAD", "/v2/dst/app/manifests/2", &[("Accept", registry_server::OCI_MANIFEST)], &[]);
    assert_eq!(head.header("docker-content-digest"), Some(img.manifest_digest.as_str()));
    let events = events.lock().expect("events").clone();
    assert!(matches!(events.last(), Some(ProgressEvent::Done { up_to_date: false, .. })), "{events:?}");

    // Again: the registry has every blob, only the manifest is put.
    let (events, sink) = recorder();
    run(puller.push(&img.config_digest, &target, &opts, sink)).expect("push by id");
    assert_eq!(puller.stats().blob_uploads, 4, "nothing uploaded twice");
    let events = events.lock().expect("events").clone();
    assert_eq!(events.iter().filter(|e| matches!(e, ProgressEvent::BlobExists { .. })).count(), 4, "{events:?}");

    let (_dir2, fresh) = new_store();
    let image = run(registry::pull(&fresh, &target, &pull_opts(), |_| {})).expect("pull pushed image");
    assert_eq!(image.id, digest(&img.config_digest));
    assert_eq!(image.manifest_digest, pushed);

    let missing = run(puller.push("nosuch:1", &target, &opts, |_| {})).expect_err("no such image").to_string();
    assert!(missing.contains("nosuch:1"), "{missing}");
}

#[test]
fn basic_auth_with_login_and_logout() {
    let Some(reg) = RegistryServer::start_with_auth("alice", "wonder land") else {
        // .ci/run installs apache2-utils; a developer machine may not have it.
        eprintln!("SKIPPED basic_auth_with_login_and_logout: /usr/bin/htpasswd (apache2-utils) is not installed");
        return;
    };
    let img = small_image(120, "linux/amd64");
    reg.push_image("private/app", "1", &img);
    let r = reference(&reg, "private/app:1");
    let (dir, store) = new_store();
    let config = dir.path().join("docker/config.json");

    let e = run(registry::pull(&store, &r, &pull_opts(), |_| {})).expect_err("anonymous");
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{msg}");
    assert!(
        msg.contains(&format!("log in with `berth login {}`", reg.host())) && msg.contains("private/app:1"),
        "{msg}"
    );

    let wrong = Credentials::new("alice", "wrong");
    let e = run(registry::login(&reg.host(), &wrong, &config, &registry_opts())).expect_err("bad password");
    assert!(matches!(e, RegistryError::LoginFailed { .. }), "{e}");
    assert!(!config.exists(), "nothing written on a failed login");

    let good = Credentials::new("alice", "wonder land");
    run(registry::login(&reg.host(), &good, &config, &registry_opts())).expect("login");
    let opts = PullOptions {
        registry: RegistryOptions { auth_files: vec![config.clone()], ..registry_opts() },
        ..pull_opts()
    };
    let image = run(registry::pull(&store, &r, &opts, |_| {})).expect("pull with credentials");
    assert_eq!(image.id, digest(&img.config_digest));

    // Push with the same credentials, then logout.
    let push_opts = PushOptions { registry: opts.registry.clone(), ..PushOptions::default() };
    run(registry::push(&store, &r.to_string(), &reference(&reg, "private/copy:1"), &push_opts, |_| {}))
        .expect("push with credentials");
    assert!(registry::logout(&reg.host(), &config).expect("logout"));
    assert!(!registry::logout(&reg.host(), &config).expect("second logout"));
    let (_d, fresh) = new_store();
    let e = run(registry::pull(&fresh, &r, &opts, |_| {})).expect_err("logged out");
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{e}");
}

#[test]
fn connection_refused_and_server_errors_name_the_registry() {
    // Nothing listens on this port.
    let port = TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let r: Reference = format!("127.0.0.1:{port}/app:1").parse().expect("ref");
    let (_dir, store) = new_store();
    let e = run(registry::pull(&store, &r, &pull_opts(), |_| {})).expect_err("refused");
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Unreachable { .. }), "{msg}");
    assert!(msg.starts_with(&format!("cannot reach registry 127.0.0.1:{port} for 127.0.0.1:{port}/app:1")), "{msg}");

    // A registry that answers 500 to everything.
    let server = failing_server(500, "storage backend down");
    let r: Reference = format!("127.0.0.1:{}/app:1", server.port).parse().expect("ref");
    let e = run(registry::pull(&store, &r, &pull_opts(), |_| {})).expect_err("500");
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Server { status: 500, .. }), "{msg}");
    assert!(msg.contains("HTTP 500") && msg.contains("storage backend down") && msg.contains("app:1"), "{msg}");
}

/// A request as the fake servers see it.
struct FakeRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl FakeRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

struct FakeResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl FakeResponse {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        FakeResponse { status, headers: Vec::new(), body: body.into() }
    }

    fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1 (one request per connection), for registries docker-registry cannot play:
/// a broken one, one with a token service.
struct FakeServer {
    port: u16,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeServer {
    fn start(handler: impl Fn(&FakeRequest) -> FakeResponse + Send + 'static) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + TEST_TIMEOUT;
            while !stop2.load(std::sync::atomic::Ordering::Relaxed) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                        let mut buf = [0u8; 8192];
                        let mut head = Vec::new();
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match s.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let text = String::from_utf8_lossy(&head).into_owned();
                        let mut lines = text.split("\r\n");
                        let mut first = lines.next().unwrap_or("").split(' ');
                        let request = FakeRequest {
                            method: first.next().unwrap_or("").to_string(),
                            path: first.next().unwrap_or("").to_string(),
                            headers: lines
                                .filter_map(|l| l.split_once(':'))
                                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                                .collect(),
                        };
                        let response = handler(&request);
                        let mut out = format!("HTTP/1.1 {} X\r\n", response.status);
                        for (k, v) in &response.headers {
                            out.push_str(&format!("{k}: {v}\r\n"));
                        }
                        out.push_str(&format!("Content-Length: {}\r\nConnection: close\r\n\r\n", response.body.len()));
                        let _ = s.write_all(out.as_bytes());
                        if request.method != "HEAD" {
                            let _ = s.write_all(&response.body);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        FakeServer { port, stop }
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A registry with a token service, as Docker Hub and most hosted registries work: `/v2/` answers 401 with a
/// Bearer challenge, `/token` trades basic credentials for a token, everything else wants the token.
fn token_registry(image: TestImage, user: &'static str, password: &'static str) -> FakeServer {
    use base64::Engine as _;
    let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")));
    let blobs: HashMap<String, Vec<u8>> = image
        .layers
        .iter()
        .map(|l| (l.digest.clone(), l.blob.clone()))
        .chain([(image.config_digest.clone(), image.config.clone())])
        .collect();
    let port = Arc::new(std::sync::OnceLock::<u16>::new());
    let port2 = port.clone();
    let server = FakeServer::start(move |r| {
        let realm = format!("http://127.0.0.1:{}/token", port2.get().copied().unwrap_or(0));
        let challenge = format!("Bearer realm=\"{realm}\",service=\"fake\",scope=\"repository:private/app:pull\"");
        let unauthorized = || {
            FakeResponse::new(401, r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
                .header("WWW-Authenticate", &challenge)
                .header("Content-Type", "application/json")
        };
        if r.path.starts_with("/token") {
            return if r.header("authorization") == Some(basic.as_str()) {
                FakeResponse::new(200, r#"{"token":"tok-123","expires_in":300}"#)
                    .header("Content-Type", "application/json")
            } else {
                FakeResponse::new(401, r#"{"details":"incorrect username or password"}"#)
            };
        }
        if r.header("authorization") != Some("Bearer tok-123") {
            return unauthorized();
        }
        if r.path == "/v2/" {
            return FakeResponse::new(200, "{}");
        }
        if let Some(reference) = r.path.strip_prefix("/v2/private/app/manifests/") {
            if reference != "1" && reference != image.manifest_digest {
                return FakeResponse::new(
                    404,
                    r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
                );
            }
            return FakeResponse::new(200, image.manifest.clone())
                .header("Content-Type", image.manifest_media_type)
                .header("Docker-Content-Digest", &image.manifest_digest);
        }
        if let Some(digest) = r.path.strip_prefix("/v2/private/app/blobs/")
            && let Some(bytes) = blobs.get(digest)
        {
            return FakeResponse::new(200, bytes.clone()).header("Docker-Content-Digest", digest);
        }
        FakeResponse::new(404, r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}"#)
    });
    let _ = port.set(server.port);
    server
}

#[test]
fn bearer_token_auth_with_login() {
    let img = small_image(130, "linux/amd64");
    let server = token_registry(img.clone(), "bob", "hunter2");
    let r: Reference = format!("{}/private/app:1", server.host()).parse().expect("ref");
    let (dir, store) = new_store();
    let config = dir.path().join("auth.json");

    let e = run(registry::pull(&store, &r, &pull_opts(), |_| {})).expect_err("anonymous");
    let msg = e.to_string();
    assert!(matches!(e, RegistryError::Unauthorized { .. }), "{msg}");
    assert!(msg.contains(&format!("berth login {}", server.host())), "{msg}");

    let e = run(registry::login(&server.host(), &Credentials::new("bob", "nope"), &config, &registry_opts()))
        .expect_err("bad password");
    assert!(matches!(e, RegistryError::LoginFailed { .. }), "{e}");
    assert!(!config.exists());
    run(registry::login(&server.host(), &Credentials::new("bob", "hunter2"), &config, &registry_opts()))
        .expect("login");

    let opts = PullOptions { registry: RegistryOptions { auth_files: vec![config], ..registry_opts() }, ..pull_opts() };
    let image = run(registry::pull(&store, &r, &opts, |_| {})).expect("pull with a token");
    assert_eq!(image.manifest_digest, digest(&img.manifest_digest));
}

/// A registry answering every request with one status.
fn failing_server(status: u16, body: &'static str) -> FakeServer {
    FakeServer::start(move |_| FakeResponse::new(status, body).header("Content-Type", "text/plain"))
}
