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
