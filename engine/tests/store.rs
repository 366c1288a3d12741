//! Image store: blobs, crash safety, tags, removal, prune, shared layers, concurrent unpacking, import, archives.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::path::Path;

use berth_engine::image::store::{ImageStore, RemoveEvent, StoreError};
use berth_engine::image::{Digest, Reference};
use serde_json::json;

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = ImageStore::open(dir.path()).expect("open store");
    (dir, store)
}

fn r(s: &str) -> Reference {
    s.parse().expect("reference")
}

fn never(_: &Digest) -> bool {
    false
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A gzip-compressed layer tar holding one file; returns (blob digest, diff_id).
fn write_layer(store: &ImageStore, name: &str, content: &[u8]) -> (Digest, Digest) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    tar.append_data(&mut header, name, content).expect("tar append");
    let plain = tar.into_inner().expect("tar finish");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).expect("gzip");
    let compressed = gz.finish().expect("gzip finish");
    (store.write_blob(&compressed).expect("write layer"), Digest::of(&plain))
}

/// Writes config and manifest blobs for an image of the given layers; returns the manifest digest.
fn write_image(store: &ImageStore, layers: &[(Digest, Digest)], created: &str) -> Digest {
    let config = json!({
        "created": created,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|(_, d)| d.to_string()).collect::<Vec<_>>()},
    });
    let config = serde_json::to_vec(&config).expect("config json");
    let config_digest = store.write_blob(&config).expect("write config");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(),
                   "size": config.len()},
        "layers": layers.iter().map(|(d, _)| json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": d.to_string(),
            "size": store.blob_size(d).expect("layer size"),
        })).collect::<Vec<_>>(),
    });
    store.write_blob(&serde_json::to_vec(&manifest).expect("manifest json")).expect("write manifest")
}

/// A one-layer image with a distinct file and creation time, added under `tag`.
fn simple_image(store: &ImageStore, seed: &str, tag: Option<&str>) -> berth_engine::image::store::Image {
    let layer = write_layer(store, seed, seed.as_bytes());
    let manifest = write_image(store, &[layer], &format!("2024-01-01T00:00:{:02}Z", seed.len() % 60));
    store.add_image(&manifest, tag.map(r).as_ref()).expect("add image")
}

// ---- blobs ----

#[test]
fn blob_write_read_and_verify() {
    let (_dir, store) = store();
    let d = store.write_blob(b"hello").expect("write");
    assert_eq!(d, Digest::of(b"hello"));
    assert!(store.has_blob(&d));
    assert_eq!(store.read_blob(&d).expect("read"), b"hello");
    assert_eq!(store.blob_path(&d), store.root().join("blobs/sha256").join(d.hex()));
    // Writing the same content again is a no-op that succeeds.
    assert_eq!(store.write_blob(b"hello").expect("write again"), d);

    let mut w = store.blob_writer(Some(&Digest::of(b"streamed"))).expect("writer");
    w.write_all(b"stream").expect("write");
    w.write_all(b"ed").expect("write");
    assert_eq!(w.size(), 8);
    let d2 = w.commit().expect("commit");
    assert_eq!(store.read_blob(&d2).expect("read"), b"streamed");
    assert!(files_in(&store.root().join("blobs/tmp")).is_empty());
}

#[test]
fn blob_digest_mismatch_leaves_nothing_visible() {
    let (_dir, store) = store();
    let expected = Digest::of(b"what the registry promised");
    let mut w = store.blob_writer(Some(&expected)).expect("writer");
    w.write_all(b"something else").expect("write");
    match w.commit() {
        Err(StoreError::DigestMismatch { expected: e, actual }) => {
            assert_eq!(e, expected);
            assert_eq!(actual, Digest::of(b"something else"));
        }
        other => panic!("expected a digest mismatch, got {other:?}"),
    }
    assert!(!store.has_blob(&expected));
    assert!(!store.has_blob(&Digest::of(b"something else")));
    assert!(files_in(&store.root().join("blobs/sha256")).is_empty());
    assert!(files_in(&store.root().join("blobs/tmp")).is_empty());
}

#[test]
fn dropped_blob_writer_removes_its_temp_file() {
    let (_dir, store) = store();
    let mut w = store.blob_writer(None).expect("writer");
    w.write_all(b"partial").expect("write");
    assert_eq!(files_in(&store.root().join("blobs/tmp")).len(), 1);
    drop(w);
    assert!(files_in(&store.root().join("blobs/tmp")).is_empty());
    assert!(files_in(&store.root().join("blobs/sha256")).is_empty());
}

#[test]
fn corrupted_blob_on_disk_is_detected_on_read() {
    let (_dir, store) = store();
    let d = store.write_blob(b"{\"a\":1}").expect("write");
    fs::write(store.blob_path(&d), b"{\"a\":2}").expect("corrupt");
    assert!(matches!(store.read_blob(&d), Err(StoreError::Corrupt { .. })));
}

// ---- crash safety ----

#[test]
fn open_removes_stale_temp_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = ImageStore::open(dir.path()).expect("open");
        simple_image(&store, "a", Some("app:1"));
    }
    // What a kill -9 in the middle of writes leaves: a half-written blob and a half-written records file.
    fs::write(dir.path().join("blobs/tmp/12-0-99"), b"half a layer").expect("write tmp blob");
    fs::write(dir.path().join(".images.json.tmp-12-1-99"), b"{\"version\":1,\"ima").expect("write tmp state");
    let store = ImageStore::open(dir.path()).expect("reopen");
    assert!(files_in(&dir.path().join("blobs/tmp")).is_empty());
    assert!(!files_in(dir.path()).iter().any(|n| n.contains(".tmp-")));
    assert_eq!(store.resolve("app:1").expect("resolve").repo_tags, vec![r("app:1")]);
}

#[test]
fn records_survive_reopen_and_a_damaged_file_is_recovered_from_blobs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = {
        let store = ImageStore::open(dir.path()).expect("open");
        (simple_image(&store, "a", Some("app:1")), simple_image(&store, "bb", Some("app:2")))
    };
    {
        let store = ImageStore::open(dir.path()).expect("reopen");
        assert_eq!(store.list().len(), 2);
        assert_eq!(store.resolve("app:1").expect("app:1").id, a.id);
        assert_eq!(store.resolve("app:2").expect("app:2").id, b.id);
    }
    // A records file cut short (a write that bypassed the rename protocol): the images come back untagged.
    let state = dir.path().join("images.json");
    let bytes = fs::read(&state).expect("read state");
    fs::write(&state, &bytes[..bytes.len() / 2]).expect("truncate");
    let store = ImageStore::open(dir.path()).expect("open with damaged records");
    let ids: HashSet<Digest> = store.list().into_iter().map(|i| i.id).collect();
    assert_eq!(ids, HashSet::from([a.id.clone(), b.id.clone()]));
    assert!(store.list().iter().all(|i| i.repo_tags.is_empty()));
    assert!(files_in(dir.path()).iter().any(|n| n.starts_with("images.json.corrupt-")));
    // And the repaired state is itself readable.
    drop(store);
    assert_eq!(ImageStore::open(dir.path()).expect("open repaired").list().len(), 2);
}

// ---- tags, resolve, remove ----

#[test]
fn resolve_by_name_tag_id_prefix_and_digest() {
    let (_dir, store) = store();
    let img = simple_image(&store, "a", Some("busybox"));
    store.tag("busybox", &r("localhost:5000/team/app:1")).expect("tag");
    let pinned = r(&format!("busybox@{}", img.manifest_digest));
    store.add_image(&img.manifest_digest, Some(&pinned)).expect("add by digest");

    for name in [
        "busybox".to_string(),
        "busybox:latest".to_string(),
        "docker.io/library/busybox:latest".to_string(),
        "localhost:5000/team/app:1".to_string(),
        img.id.to_string(),
        img.id.hex().to_string(),
        img.id.short().to_string(),
        format!("sha256:{}", img.id.short()),
        format!("busybox@{}", img.manifest_digest),
    ] {
        assert_eq!(store.resolve(&name).unwrap_or_else(|e| panic!("{name}: {e}")).id, img.id, "{name}");
    }
    let got = store.resolve("busybox").expect("resolve");
    assert_eq!(got.repo_tags, vec![r("busybox:latest"), r("localhost:5000/team/app:1")]);
    assert_eq!(got.repo_digests, vec![format!("docker.io/library/busybox@{}", img.manifest_digest)]);
    assert!(matches!(store.resolve("busybox:2"), Err(StoreError::ImageNotFound(_))));
    assert!(matches!(store.resolve("other"), Err(StoreError::ImageNotFound(_))));
    assert!(store.tag("busybox", &pinned).is_err(), "a tag cannot carry a digest");
}

#[test]
fn ambiguous_id_prefix_is_an_error() {
    let (_dir, store) = store();
    let mut images = Vec::new();
    // 17 images: two of them share a first hex digit.
    for i in 0..17 {
        images.push(simple_image(&store, &format!("f{i}"), None));
    }
    let mut firsts = HashSet::new();
    let dup = images.iter().find(|i| !firsts.insert(&i.id.hex()[..1])).expect("pigeonhole");
    assert!(matches!(store.resolve(&dup.id.hex()[..1]), Err(StoreError::AmbiguousId(_))));
}

#[test]
fn tag_moves_between_images() {
    let (_dir, store) = store();
    let a = simple_image(&store, "a", Some("app:1"));
    let b = simple_image(&store, "bb", None);
    store.tag(&b.id.to_string(), &r("app:1")).expect("tag");
    assert_eq!(store.resolve("app:1").expect("resolve").id, b.id);
    assert!(store.resolve(a.id.short()).expect("a by id").repo_tags.is_empty());
}

#[test]
fn remove_one_of_several_tags_only_untags() {
    let (_dir, store) = store();
    let img = simple_image(&store, "a", Some("app:1"));
    store.tag("app:1", &r("app:2")).expect("tag");
    store.tag("app:1", &r("other:x")).expect("tag");

    let events = store.remove("app:1", false, &never).expect("remove tag");
    assert_eq!(events, vec![RemoveEvent::Untagged("app:1".into())]);
    assert_eq!(store.resolve(img.id.short()).expect("still there").repo_tags, vec![r("app:2"), r("other:x")]);

    // By id with tags in two repositories: refused without force.
    assert!(matches!(store.remove(&img.id.to_string(), false, &never), Err(StoreError::MultipleRepositories { .. })));
    let events = store.remove(&img.id.to_string(), true, &never).expect("force remove by id");
    assert_eq!(
        events[..3],
        [
            RemoveEvent::Untagged("app:2".into()),
            RemoveEvent::Untagged("other:x".into()),
            RemoveEvent::Deleted(img.id.clone())
        ]
    );
    assert_eq!(events[3..], [RemoveEvent::Deleted(img.layers[0].chain_id.clone())]);
    assert!(store.list().is_empty());
    // Its blobs went with it.
    assert!(files_in(&store.root().join("blobs/sha256")).is_empty());
}

#[test]
fn remove_last_tag_deletes_the_image_but_keeps_shared_blobs() {
    let (_dir, store) = store();
    let base = write_layer(&store, "base", b"base");
    let top = write_layer(&store, "top", b"top");
    let one = store
        .add_image(&write_image(&store, std::slice::from_ref(&base), "2024-01-01T00:00:00Z"), Some(&r("one")))
        .expect("one");
    let two = store
        .add_image(&write_image(&store, &[base.clone(), top.clone()], "2024-01-02T00:00:00Z"), Some(&r("two")))
        .expect("two");
    let events = store.remove("two", false, &never).expect("remove");
    assert_eq!(
        events,
        vec![
            RemoveEvent::Untagged("two:latest".into()),
            RemoveEvent::Deleted(two.id.clone()),
            RemoveEvent::Deleted(two.layers[1].chain_id.clone())
        ]
    );
    assert!(store.has_blob(&base.0), "the base layer is still used by `one`");
    assert!(!store.has_blob(&top.0));
    assert!(!store.has_blob(&two.manifest_digest));
    assert!(store.has_blob(&one.manifest_digest));
}

#[test]
fn in_use_images_are_refused_unless_forced() {
    let (_dir, store) = store();
    let img = simple_image(&store, "a", Some("app:1"));
    let used = |d: &Digest| *d == img.id;
    assert!(matches!(store.remove("app:1", false, &used), Err(StoreError::InUse { .. })));
    assert!(matches!(store.remove(img.id.short(), false, &used), Err(StoreError::InUse { .. })));
    // Another tag can go: the image keeps a name.
    store.tag("app:1", &r("app:2")).expect("tag");
    assert_eq!(store.remove("app:2", false, &used).expect("untag"), vec![RemoveEvent::Untagged("app:2".into())]);
    // Forced: the name goes, the image stays (dangling) while the container needs its layers.
    assert_eq!(store.remove("app:1", true, &used).expect("force"), vec![RemoveEvent::Untagged("app:1".into())]);
    let left = store.resolve(img.id.short()).expect("image kept");
    assert!(left.repo_tags.is_empty());
    assert!(store.has_blob(&img.layers[0].digest));
    // Once the container is gone, the dangling image can be removed by id.
    let events = store.remove(img.id.short(), false, &never).expect("remove dangling");
    assert_eq!(events[0], RemoveEvent::Deleted(img.id.clone()));
}

#[test]
fn digest_references_follow_their_tag() {
    let (_dir, store) = store();
    let img = simple_image(&store, "a", Some("app:1"));
    let pinned = r(&format!("app@{}", img.manifest_digest));
    store.add_image(&img.manifest_digest, Some(&pinned)).expect("pin");
    store.tag("app:1", &r("other:1")).expect("tag");
    // Removing app:1 leaves no tag of `app`, so app@sha256:… goes too; other:1 keeps the image.
    let events = store.remove("app:1", false, &never).expect("remove");
    assert_eq!(
        events,
        vec![RemoveEvent::Untagged("app:1".into()), RemoveEvent::Untagged(format!("app@{}", img.manifest_digest))]
    );
    assert!(store.resolve(&format!("app@{}", img.manifest_digest)).is_err());
    assert_eq!(store.resolve("other:1").expect("other").id, img.id);
}

#[test]
fn add_image_checks_its_inputs() {
    let (_dir, store) = store();
    let missing = Digest::of(b"no such manifest");
    assert!(matches!(store.add_image(&missing, None), Err(StoreError::BlobNotFound(_))));
    let index = store
        .write_blob(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#)
        .expect("index");
    assert!(matches!(store.add_image(&index, None), Err(StoreError::InvalidManifest { .. })));
    // A digest reference must pin this very manifest.
    let img = simple_image(&store, "a", None);
    let wrong = r(&format!("app@{}", Digest::of(b"x")));
    assert!(matches!(store.add_image(&img.manifest_digest, Some(&wrong)), Err(StoreError::DigestMismatch { .. })));
}

// ---- prune ----

#[test]
fn prune_removes_dangling_then_unused_and_their_blobs() {
    let (_dir, store) = store();
    let tagged = simple_image(&store, "a", Some("app:1"));
    let dangling = simple_image(&store, "bb", None);
    let used = simple_image(&store, "ccc", None);
    let orphan = store.write_blob(b"an orphan blob").expect("orphan");
    let in_use = |d: &Digest| *d == used.id;

    let report = store.prune(false, &in_use).expect("prune dangling");
    assert!(report.images_deleted.contains(&RemoveEvent::Deleted(dangling.id.clone())));
    assert!(!report.images_deleted.contains(&RemoveEvent::Deleted(used.id.clone())));
    assert!(report.space_reclaimed > 0);
    assert!(!store.has_blob(&orphan));
    assert!(!store.has_blob(&dangling.layers[0].digest));
    assert!(store.resolve("app:1").is_ok());
    assert!(store.resolve(used.id.short()).is_ok());

    let report = store.prune(true, &in_use).expect("prune all");
    assert!(report.images_deleted.contains(&RemoveEvent::Untagged("app:1".into())));
    assert!(report.images_deleted.contains(&RemoveEvent::Deleted(tagged.id.clone())));
    let left: Vec<Digest> = store.list().into_iter().map(|i| i.id).collect();
    assert_eq!(left, vec![used.id.clone()]);
    assert!(store.has_blob(&used.layers[0].digest));
}

#[test]
fn a_lease_defers_blob_collection() {
    let (_dir, store) = store();
    let lease = store.lease();
    let pulled = store.write_blob(b"layer of an image being pulled").expect("blob");
    store.prune(true, &never).expect("prune");
    assert!(store.has_blob(&pulled), "a pull in progress keeps its blobs");
    drop(lease);
    store.prune(true, &never).expect("prune");
    assert!(!store.has_blob(&pulled));
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<ImageStore>();
    check::<berth_engine::image::store::BlobWriter>();
}

// ---- import and unpacking ----

use berth_engine::image::import::{ImportSource, import};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// A small rootfs with what import must keep: modes, owners, symlinks (one pointing out of it), hard links, a fifo.
fn sample_rootfs(parent: &Path) -> std::path::PathBuf {
    let root = parent.join("rootfs");
    let outside = parent.join("outside");
    fs::create_dir_all(root.join("bin")).expect("mkdir");
    fs::create_dir_all(root.join("etc/empty.d")).expect("mkdir");
    fs::create_dir_all(&outside).expect("mkdir");
    fs::write(outside.join("secret"), b"must not be imported").expect("write");
    fs::write(root.join("bin/tool"), b"#!/bin/sh\necho tool\n").expect("write");
    fs::set_permissions(root.join("bin/tool"), fs::Permissions::from_mode(0o4755)).expect("chmod");
    fs::write(root.join("etc/hostname"), b"berth\n").expect("write");
    std::os::unix::fs::chown(root.join("etc/hostname"), Some(1234), Some(5678)).expect("chown");
    fs::hard_link(root.join("bin/tool"), root.join("bin/tool-link")).expect("hard link");
    std::os::unix::fs::symlink("tool", root.join("bin/alias")).expect("symlink");
    std::os::unix::fs::symlink("/etc/passwd", root.join("etc/passwd-link")).expect("symlink");
    std::os::unix::fs::symlink(&outside, root.join("escape")).expect("symlink");
    nix::unistd::mkfifo(&root.join("etc/fifo"), nix::sys::stat::Mode::from_bits_truncate(0o640)).expect("mkfifo");
    fs::write(root.join("bin/ping"), b"ping").expect("write");
    // cap_net_raw+ep, as `setcap cap_net_raw+ep bin/ping` writes it (vfs_cap_data revision 2).
    xattr::set(root.join("bin/ping"), "security.capability", &PING_CAPS).expect("set capability xattr");
    root
}

const PING_CAPS: [u8; 20] = [1, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

/// The plain tar of a directory, as `tar -C dir -cf - .` would make it (via the tar crate).
fn tar_of(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).expect("tar dir");
    b.into_inner().expect("tar finish")
}

#[test]
fn import_directory_keeps_modes_owners_links_and_does_not_follow_symlinks() {
    let (dir, store) = store();
    let root = sample_rootfs(dir.path());
    let changes = vec![
        r#"CMD ["/bin/tool", "--flag"]"#.to_string(),
        "ENV PATH=/bin GREETING=hello".to_string(),
        "EXPOSE 80 53/udp".to_string(),
        "WORKDIR /srv".to_string(),
        "USER 1000".to_string(),
        r#"LABEL org.example.name="my image""#.to_string(),
    ];
    let img = import(&store, ImportSource::Dir(root.clone()), Some(&r("imported:1")), &changes).expect("import");
    assert_eq!(img.repo_tags, vec![r("imported:1")]);
    assert_eq!(img.layers.len(), 1);
    assert_eq!(img.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip");

    let config = img.config.config().as_ref().expect("config");
    assert_eq!(config.cmd().as_deref(), Some(&["/bin/tool".to_string(), "--flag".to_string()][..]));
    assert_eq!(config.env().as_deref(), Some(&["PATH=/bin".to_string(), "GREETING=hello".to_string()][..]));
    let mut ports = config.exposed_ports().clone().unwrap_or_default();
    ports.sort();
    assert_eq!(ports, vec!["53/udp", "80/tcp"]);
    assert_eq!(config.working_dir().as_deref(), Some("/srv"));
    assert_eq!(config.user().as_deref(), Some("1000"));
    assert_eq!(config.labels().as_ref().and_then(|l| l.get("org.example.name")).map(String::as_str), Some("my image"));
    assert_eq!(img.config.os().to_string(), "linux");
    let history = img.config.history().as_ref().expect("history");
    assert_eq!(history[0].created_by().as_deref(), Some("berth import"));

    let dirs = store.ensure_unpacked(&img).expect("unpack");
    assert_eq!(dirs, vec![store.layer_dir(&img.layers[0].chain_id)]);
    let diff = &dirs[0];
    let tool = fs::symlink_metadata(diff.join("bin/tool")).expect("tool");
    assert_eq!(tool.mode() & 0o7777, 0o4755);
    assert_eq!(fs::read(diff.join("bin/tool")).expect("read"), b"#!/bin/sh\necho tool\n");
    let link = fs::symlink_metadata(diff.join("bin/tool-link")).expect("hard link");
    assert_eq!(link.ino(), tool.ino(), "hard links stay hard links");
    let hostname = fs::symlink_metadata(diff.join("etc/hostname")).expect("hostname");
    assert_eq!((hostname.uid(), hostname.gid()), (1234, 5678));
    assert_eq!(fs::read_link(diff.join("bin/alias")).expect("alias"), Path::new("tool"));
    assert_eq!(fs::read_link(diff.join("etc/passwd-link")).expect("link"), Path::new("/etc/passwd"));
    assert!(fs::symlink_metadata(diff.join("escape")).expect("escape").file_type().is_symlink());
    let mut names = Vec::new();
    walk(diff, &mut names);
    assert!(!names.iter().any(|n| n.ends_with("secret")), "the symlinked dir was followed: {names:?}");
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(
        &fs::symlink_metadata(diff.join("etc/fifo")).expect("fifo").file_type()
    ));
    assert!(diff.join("etc/empty.d").is_dir());
    let caps = xattr::get(diff.join("bin/ping"), "security.capability").expect("read xattr");
    assert_eq!(caps.as_deref(), Some(&PING_CAPS[..]), "file capabilities survive import and unpack");
}

#[test]
fn import_tar_plain_gzip_and_zstd() {
    let (dir, store) = store();
    let root = sample_rootfs(dir.path());
    let plain = tar_of(&root);
    let diff_id = Digest::of(&plain);

    let a = import(&store, ImportSource::Tar(Box::new(std::io::Cursor::new(plain.clone()))), None, &[]).expect("plain");
    assert_eq!(a.layers[0].diff_id, diff_id);
    assert_eq!(a.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+gzip", "a plain tar is compressed");

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&plain).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let b = import(&store, ImportSource::Tar(Box::new(std::io::Cursor::new(gz.clone()))), None, &[]).expect("gzip");
    assert_eq!((b.layers[0].diff_id.clone(), b.layers[0].digest.clone()), (diff_id.clone(), Digest::of(&gz)));

    let zst = zstd::encode_all(std::io::Cursor::new(&plain), 3).expect("zstd");
    let c = import(&store, ImportSource::Tar(Box::new(std::io::Cursor::new(zst.clone()))), None, &[]).expect("zstd");
    assert_eq!((c.layers[0].diff_id.clone(), c.layers[0].digest.clone()), (diff_id.clone(), Digest::of(&zst)));
    assert_eq!(c.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar+zstd");

    // The same content is one unpacked layer.
    let dirs: HashSet<_> = [&a, &b, &c].iter().map(|i| store.ensure_unpacked(i).expect("unpack")).collect();
    assert_eq!(dirs.len(), 1);
    assert_eq!(store.layers_unpacked(), 1);
}

#[test]
fn import_refuses_what_is_not_a_tar_and_leaves_nothing() {
    let (_dir, store) = store();
    let garbage = vec![0x42u8; 4096];
    let err = import(&store, ImportSource::Tar(Box::new(std::io::Cursor::new(garbage))), Some(&r("x")), &[]);
    assert!(matches!(err, Err(StoreError::Import(_))), "{err:?}");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"this is gzip but not a tar, it is far too short to hold a header").expect("gzip");
    let err = import(&store, ImportSource::Tar(Box::new(std::io::Cursor::new(gz.finish().expect("gz")))), None, &[]);
    assert!(err.is_err());
    assert!(matches!(
        import(&store, ImportSource::Dir("/nonexistent/berth".into()), None, &[]),
        Err(StoreError::Io { .. })
    ));
    let bad_change = import(&store, ImportSource::Tar(Box::new(std::io::empty())), None, &["RUN rm -rf /".into()]);
    assert!(matches!(bad_change, Err(StoreError::InvalidChange { .. })));
    assert!(files_in(&store.root().join("blobs/sha256")).is_empty());
    assert!(files_in(&store.root().join("blobs/tmp")).is_empty());
    assert!(store.list().is_empty());
}

/// An image of `base`'s layer plus the layer of `top` (a rootfs dir), with a config written here.
fn stack(
    store: &ImageStore,
    base: &berth_engine::image::store::Image,
    top: &Path,
    tag: &str,
) -> berth_engine::image::store::Image {
    let upper = import(store, ImportSource::Dir(top.to_path_buf()), None, &[]).expect("import top");
    let layers = [
        (base.layers[0].digest.clone(), base.layers[0].diff_id.clone()),
        (upper.layers[0].digest.clone(), upper.layers[0].diff_id.clone()),
    ];
    let manifest = write_image(store, &layers, "2024-02-01T00:00:00Z");
    let image = store.add_image(&manifest, Some(&r(tag))).expect("add stacked image");
    store.remove(upper.id.short(), false, &never).expect("drop the helper image");
    image
}

/// Every path under `dir`, without following symlinks.
fn walk(dir: &Path, out: &mut Vec<String>) {
    for e in fs::read_dir(dir).expect("read dir") {
        let path = e.expect("entry").path();
        out.push(path.display().to_string());
        if fs::symlink_metadata(&path).expect("stat").is_dir() {
            walk(&path, out);
        }
    }
}

#[test]
fn images_sharing_a_base_share_its_unpacked_dir() {
    let (dir, store) = store();
    let base = import(&store, ImportSource::Dir(sample_rootfs(dir.path())), Some(&r("base")), &[]).expect("base");
    let app1 = dir.path().join("app1");
    let app2 = dir.path().join("app2");
    for (d, content) in [(&app1, "one"), (&app2, "two")] {
        fs::create_dir_all(d.join("app")).expect("mkdir");
        fs::write(d.join("app/id"), content).expect("write");
    }
    let one = stack(&store, &base, &app1, "app:1");
    let two = stack(&store, &base, &app2, "app:2");
    let dirs1 = store.ensure_unpacked(&one).expect("unpack one");
    let dirs2 = store.ensure_unpacked(&two).expect("unpack two");
    assert_eq!(dirs1.len(), 2);
    // Top-most first; the base (last) is the same dir, the tops differ.
    assert_eq!(dirs1[1], dirs2[1]);
    assert_ne!(dirs1[0], dirs2[0]);
    let ino = |p: &Path| fs::metadata(p.join("bin/tool")).expect("tool").ino();
    assert_eq!(ino(&dirs1[1]), ino(&dirs2[1]));
    assert_eq!(fs::read(dirs1[0].join("app/id")).expect("read"), b"one");
    assert_eq!(fs::read(dirs2[0].join("app/id")).expect("read"), b"two");
    assert_eq!(store.layers_unpacked(), 3, "base once, each top once");
    assert_eq!(store.ensure_unpacked(&base).expect("base")[0], dirs1[1]);
    assert_eq!(store.layers_unpacked(), 3);

    // Removing one app keeps the shared base dir; prune after removing everything clears layers/.
    store.remove("app:1", false, &never).expect("remove app:1");
    assert!(!dirs1[0].exists());
    assert!(dirs1[1].exists() && dirs2[0].exists());
    let usage = store.disk_usage();
    assert_eq!(usage.images.len(), 2);
    assert!(usage.images.iter().all(|i| i.shared_size == base.layers[0].size && i.unpacked_size > 0));
    assert!(usage.layers_size > 0 && usage.blobs_size > 0);
    store.prune(true, &never).expect("prune");
    assert!(files_in(&store.root().join("layers")).is_empty());
    assert!(files_in(&store.root().join("blobs/sha256")).is_empty());
}

#[test]
fn concurrent_ensure_unpacked_unpacks_each_layer_once() {
    let (dir, store) = store();
    let base = import(&store, ImportSource::Dir(sample_rootfs(dir.path())), None, &[]).expect("base");
    let top = dir.path().join("top");
    fs::create_dir_all(&top).expect("mkdir");
    fs::write(top.join("file"), vec![7u8; 1 << 20]).expect("write");
    let img = stack(&store, &base, &top, "app");
    let store = std::sync::Arc::new(store);
    let results: Vec<Vec<std::path::PathBuf>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = std::sync::Arc::clone(&store);
                let img = img.clone();
                s.spawn(move || store.ensure_unpacked(&img).expect("unpack"))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(store.layers_unpacked(), 2);
    let names = files_in(&store.root().join("layers"));
    assert_eq!(names.len(), 2, "no temp dirs left: {names:?}");
}

#[test]
fn a_layer_whose_diff_id_differs_from_the_config_is_refused_and_leaves_nothing() {
    let (dir, store) = store();
    let good = import(&store, ImportSource::Dir(sample_rootfs(dir.path())), None, &[]).expect("import");
    let wrong_diff = Digest::of(b"not this layer");
    let manifest = write_image(&store, &[(good.layers[0].digest.clone(), wrong_diff.clone())], "2024-03-01T00:00:00Z");
    let bad = store.add_image(&manifest, Some(&r("liar:1"))).expect("add");
    match store.ensure_unpacked(&bad) {
        Err(e @ StoreError::DiffIdMismatch { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("liar:1") && msg.contains(&good.layers[0].digest.to_string()), "{msg}");
        }
        other => panic!("expected a diff id mismatch, got {other:?}"),
    }
    assert!(files_in(&store.root().join("layers")).is_empty());
    assert_eq!(store.layers_unpacked(), 0);
}

// ---- save and load ----

use berth_engine::image::archive::{Loaded, load, save};

enum Item<'a> {
    File(&'a str, Vec<u8>),
    Symlink(&'a str, &'a str),
}

/// A tar of the items, names written raw (so that hostile names can be tested).
fn raw_tar(items: &[Item<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for item in items {
        let (name, kind, data, link) = match item {
            Item::File(n, d) => (*n, tar::EntryType::Regular, d.as_slice(), None),
            Item::Symlink(n, t) => (*n, tar::EntryType::Symlink, &[][..], Some(*t)),
        };
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(t) = link {
            h.as_old_mut().linkname[..t.len()].copy_from_slice(t.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, data).expect("append");
    }
    b.into_inner().expect("finish")
}

/// Names and contents of a tar's regular files.
fn tar_files(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut a = tar::Archive::new(bytes);
    for e in a.entries().expect("entries") {
        let mut e = e.expect("entry");
        if e.header().entry_type().is_file() {
            let name = e.path().expect("path").display().to_string();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).expect("read");
            out.insert(name, data);
        }
    }
    out
}

fn assert_nothing_left(store: &ImageStore) {
    assert!(files_in(&store.root().join("blobs/sha256")).is_empty(), "blobs left behind");
    assert!(files_in(&store.root().join("blobs/tmp")).is_empty(), "temp files left behind");
    assert!(store.list().is_empty());
}

fn config_json(diff_ids: &[&Digest]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
        "config": {"Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids.iter().map(|d| d.to_string()).collect::<Vec<_>>()},
    }))
    .expect("json")
}

fn layer_tar(name: &str, content: &[u8]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(content.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append_data(&mut h, name, content).expect("append");
    b.into_inner().expect("finish")
}

#[test]
fn save_then_load_round_trips_into_a_fresh_store() {
    let (dir, a) = store();
    let base = import(&a, ImportSource::Dir(sample_rootfs(dir.path())), Some(&r("base:1")), &[]).expect("base");
    a.tag("base:1", &r("base:2")).expect("tag");
    let top = dir.path().join("top");
    fs::create_dir_all(&top).expect("mkdir");
    fs::write(top.join("app"), b"app").expect("write");
    let app = stack(&a, &base, &top, "localhost:5000/app:1");

    let mut archive = Vec::new();
    save(&a, &["base", "localhost:5000/app:1"], &mut archive).expect("save");
    let files = tar_files(&archive);
    for f in ["manifest.json", "index.json", "oci-layout"] {
        assert!(files.contains_key(f), "{f} missing: {:?}", files.keys());
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).expect("manifest.json");
    assert_eq!(manifest[0]["RepoTags"], json!(["base:1", "base:2"]));
    assert_eq!(manifest[1]["RepoTags"], json!(["localhost:5000/app:1"]));
    assert_eq!(manifest[1]["Config"], json!(format!("blobs/sha256/{}", app.id.hex())));
    for l in manifest[1]["Layers"].as_array().expect("layers") {
        assert!(files.contains_key(l.as_str().expect("path")), "{l} is not in the archive");
    }
    let index: serde_json::Value = serde_json::from_slice(&files["index.json"]).expect("index.json");
    assert_eq!(index["manifests"].as_array().map(Vec::len), Some(3));
    assert_eq!(index["manifests"][2]["annotations"]["io.containerd.image.name"], json!("localhost:5000/app:1"));
    // The shared base layer is written once.
    // base: config, layer, manifest; app: config, top layer, manifest.
    assert_eq!(files.keys().filter(|k| k.starts_with("blobs/sha256/")).count(), 6);

    let (_dir2, b) = store();
    let loaded = load(&b, archive.as_slice()).expect("load");
    let lines: Vec<String> = loaded.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        vec!["Loaded image: base:1", "Loaded image: base:2", "Loaded image: localhost:5000/app:1"],
        "{loaded:?}"
    );
    let got = b.resolve("localhost:5000/app:1").expect("app");
    assert_eq!((got.id.clone(), got.manifest_digest.clone()), (app.id.clone(), app.manifest_digest.clone()));
    assert_eq!(b.resolve("base:2").expect("base").id, base.id);
    let dirs = b.ensure_unpacked(&got).expect("unpack");
    assert_eq!(fs::read(dirs[0].join("app")).expect("app file"), b"app");
    assert!(files_in(&b.root().join("blobs/tmp")).is_empty());

    // The docker-save half alone (what an older `docker load` reads) gives the same images.
    let docker_only: Vec<Item<'_>> = files
        .iter()
        .filter(|(k, _)| *k != "index.json" && *k != "oci-layout")
        .map(|(k, v)| Item::File(k.as_str(), v.clone()))
        .collect();
    let (_dir3, c) = store();
    load(&c, raw_tar(&docker_only).as_slice()).expect("load docker-save half");
    assert_eq!(c.resolve("localhost:5000/app:1").expect("app").id, app.id);
    assert_eq!(c.resolve("base:1").expect("base").id, base.id);

    // Saving by id writes no tags.
    let mut by_id = Vec::new();
    save(&a, &[app.id.short()], &mut by_id).expect("save by id");
    let (_dir4, d) = store();
    assert_eq!(load(&d, by_id.as_slice()).expect("load"), vec![Loaded::Id(app.id.clone())]);
}

#[test]
fn load_a_legacy_docker_save_tarball_with_linked_layers() {
    let layer = layer_tar("hello.txt", b"hello from a docker-save tarball");
    let diff = Digest::of(&layer);
    let config1 = config_json(&[&diff]);
    let config2 = config_json(&[&diff, &diff]);
    let (c1, c2) = (Digest::of(&config1), Digest::of(&config2));
    let manifest = json!([
        {"Config": format!("{}.json", c1.hex()), "RepoTags": ["hello:1"], "Layers": ["aaaa/layer.tar"]},
        {"Config": format!("{}.json", c2.hex()), "RepoTags": ["registry.example.com/team/hello:2"],
         "Layers": ["aaaa/layer.tar", "bbbb/layer.tar"]},
    ]);
    let c1_name = format!("{}.json", c1.hex());
    let c2_name = format!("{}.json", c2.hex());
    let archive = raw_tar(&[
        Item::File("aaaa/VERSION", b"1.0".to_vec()),
        Item::File("aaaa/json", b"{}".to_vec()),
        Item::File("aaaa/layer.tar", layer.clone()),
        Item::Symlink("bbbb/layer.tar", "../aaaa/layer.tar"),
        Item::File(&c1_name, config1),
        Item::File(&c2_name, config2),
        Item::File("manifest.json", serde_json::to_vec(&manifest).expect("json")),
        Item::File("repositories", br#"{"hello":{"1":"aaaa"}}"#.to_vec()),
    ]);
    let (_dir, store) = store();
    let loaded = load(&store, archive.as_slice()).expect("load");
    assert_eq!(loaded, vec![Loaded::Tag(r("hello:1")), Loaded::Tag(r("registry.example.com/team/hello:2"))]);
    let one = store.resolve("hello:1").expect("hello:1");
    assert_eq!(one.id, c1);
    assert_eq!(one.layers[0].media_type, "application/vnd.oci.image.layer.v1.tar");
    let dirs = store.ensure_unpacked(&one).expect("unpack");
    assert_eq!(fs::read(dirs[0].join("hello.txt")).expect("read"), b"hello from a docker-save tarball");
    assert_eq!(store.resolve("registry.example.com/team/hello:2").expect("2").id, c2);
    // The legacy json/VERSION files were not kept: only the layer, two configs and two manifests.
    assert_eq!(files_in(&store.root().join("blobs/sha256")).len(), 5);
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An OCI layout: index.json -> a nested multi-platform index (named) -> this host's manifest, plus an entry for
/// another platform whose blobs are not in the archive.
fn oci_layout(corrupt_layer: bool) -> (Vec<u8>, Digest) {
    let layer = layer_tar("etc/os-release", b"ID=berth\n");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).expect("gzip");
    let gz = gz.finish().expect("gzip");
    let config = config_json(&[&Digest::of(&layer)]);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(&config).to_string(), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": Digest::of(&gz).to_string(), "size": gz.len()}],
    }))
    .expect("json");
    let other_arch = if host_arch() == "arm64" { "amd64" } else { "arm64" };
    let nested = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(b"elsewhere").to_string(),
             "size": 9, "platform": {"architecture": other_arch, "os": "linux"}},
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": Digest::of(&manifest).to_string(),
             "size": manifest.len(), "platform": {"architecture": host_arch(), "os": "linux"}},
        ],
    }))
    .expect("json");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": Digest::of(&nested).to_string(),
                       "size": nested.len(), "annotations": {"io.containerd.image.name": "localhost:5000/multi:1",
                                                             "org.opencontainers.image.ref.name": "1"}}],
    }))
    .expect("json");
    let mut layer_bytes = gz.clone();
    if corrupt_layer {
        let last = layer_bytes.len() - 20;
        layer_bytes[last] ^= 0xff;
    }
    let names: Vec<String> =
        [&config, &gz, &manifest, &nested].iter().map(|b| format!("blobs/sha256/{}", Digest::of(b).hex())).collect();
    let tar = raw_tar(&[
        Item::File("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec()),
        Item::File(&names[0], config.clone()),
        Item::File(&names[1], layer_bytes),
        Item::File(&names[2], manifest),
        Item::File(&names[3], nested),
        Item::File("index.json", index),
    ]);
    (tar, Digest::of(&config))
}

#[test]
fn load_an_oci_layout_with_a_nested_multi_platform_index_gzip_compressed() {
    let (tar, id) = oci_layout(false);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    let (_dir, store) = store();
    let loaded = load(&store, gz.finish().expect("gzip").as_slice()).expect("load");
    assert_eq!(loaded, vec![Loaded::Tag(r("localhost:5000/multi:1"))]);
    let img = store.resolve("localhost:5000/multi:1").expect("resolve");
    assert_eq!(img.id, id);
    let dirs = store.ensure_unpacked(&img).expect("unpack");
    assert_eq!(fs::read(dirs[0].join("etc/os-release")).expect("read"), b"ID=berth\n");
    // The nested index is not kept: manifest, config, layer.
    assert_eq!(files_in(&store.root().join("blobs/sha256")).len(), 3);
}

#[test]
fn load_refuses_a_blob_whose_content_is_not_its_name_and_leaves_nothing() {
    let (tar, _) = oci_layout(true);
    let (_dir, store) = store();
    match load(&store, tar.as_slice()) {
        Err(StoreError::Archive(msg)) => assert!(msg.contains("hashes to"), "{msg}"),
        other => panic!("expected a digest error, got {other:?}"),
    }
    assert_nothing_left(&store);
}

#[test]
fn load_refuses_a_layer_that_is_not_what_its_config_says_and_leaves_nothing() {
    let layer = layer_tar("a", b"a");
    let config = config_json(&[&Digest::of(b"another layer")]);
    let c = Digest::of(&config);
    let manifest = json!([{"Config": "config.json", "RepoTags": ["liar:1"], "Layers": ["l/layer.tar"]}]);
    let archive = raw_tar(&[
        Item::File("l/layer.tar", layer),
        Item::File("config.json", config),
        Item::File("manifest.json", serde_json::to_vec(&manifest).expect("json")),
    ]);
    let (_dir, store) = store();
    match load(&store, archive.as_slice()) {
        Err(e @ StoreError::DiffIdMismatch { .. }) => assert!(e.to_string().contains("liar:1"), "{e}"),
        other => panic!("expected a diff id mismatch for {c}, got {other:?}"),
    }
    assert_nothing_left(&store);
}

#[test]
fn load_refuses_paths_and_links_that_escape() {
    let manifest = serde_json::to_vec(&json!([])).expect("json");
    for items in [
        vec![Item::File("../evil", b"x".to_vec()), Item::File("manifest.json", manifest.clone())],
        vec![Item::File("/etc/evil", b"x".to_vec()), Item::File("manifest.json", manifest.clone())],
        vec![Item::Symlink("a/layer.tar", "../../etc/passwd"), Item::File("manifest.json", manifest.clone())],
        vec![Item::Symlink("a/layer.tar", "/etc/passwd"), Item::File("manifest.json", manifest.clone())],
    ] {
        let (_dir, store) = store();
        match load(&store, raw_tar(&items).as_slice()) {
            Err(StoreError::Archive(msg)) => {
                assert!(msg.contains("outside") || msg.contains("absolute") || msg.contains("climbs"), "{msg}")
            }
            other => panic!("expected an escape error, got {other:?}"),
        }
        assert_nothing_left(&store);
    }
    // Not an archive at all, and an archive with no image.
    let (_dir, store) = store();
    assert!(load(&store, &b"not a tar"[..]).is_err());
    assert!(load(&store, raw_tar(&[Item::File("readme", b"hi".to_vec())]).as_slice()).is_err());
    assert_nothing_left(&store);
}
