//! Hostile layers: every way a tar can try to write, link or mark something outside the directory it is unpacked
//! into. Each test unpacks into `<tmp>/dest` next to an empty `<tmp>/canary` and an `<tmp>/outside/secret`, then
//! checks that the result is a clean error or stays inside `dest`, and that nothing outside changed: the canary is
//! still empty (same mtime, no xattr), the secret still has one link, `/etc/passwd` is byte-for-byte and
//! inode-for-inode the same, and no `/etc` or `/dev` name the layer used exists.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_engine::image::unpack::{UnpackError, UnpackStats, unpack_layer};
use tar::EntryType;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// One tar entry with raw path and link bytes: the `tar` crate's own setters refuse `..` and absolute paths.
struct Ent {
    kind: EntryType,
    path: Vec<u8>,
    link: Vec<u8>,
    data: Vec<u8>,
    dev: (u32, u32),
}

fn ent(kind: EntryType, path: impl AsRef<[u8]>) -> Ent {
    Ent { kind, path: path.as_ref().to_vec(), link: Vec::new(), data: Vec::new(), dev: (0, 0) }
}
fn file(path: impl AsRef<[u8]>) -> Ent {
    Ent { data: b"pwned\n".to_vec(), ..ent(EntryType::Regular, path) }
}
fn dir(path: impl AsRef<[u8]>) -> Ent {
    ent(EntryType::Directory, path)
}
fn symlink(path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Ent {
    Ent { link: target.as_ref().to_vec(), ..ent(EntryType::Symlink, path) }
}
fn hardlink(path: impl AsRef<[u8]>, target: impl AsRef<[u8]>) -> Ent {
    Ent { link: target.as_ref().to_vec(), ..ent(EntryType::Link, path) }
}
fn chardev(path: impl AsRef<[u8]>, major: u32, minor: u32) -> Ent {
    Ent { dev: (major, minor), ..ent(EntryType::Char, path) }
}

fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let base = key.len() + value.len() + 3;
    let mut len = base + 1;
    while base + len.to_string().len() != len {
        len = base + len.to_string().len();
    }
    let mut r = format!("{len} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

fn tar(entries: &[Ent]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        // Names longer than the header's 100 bytes go in a PAX record, as Go and GNU tar write them.
        let mut pax = Vec::new();
        if e.path.len() > 100 {
            pax.extend(pax_record("path", &e.path));
        }
        if e.link.len() > 100 {
            pax.extend(pax_record("linkpath", &e.link));
        }
        if !pax.is_empty() {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(EntryType::XHeader);
            h.as_old_mut().name[..14].copy_from_slice(b"././@PaxHeader");
            h.set_size(pax.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append(&h, pax.as_slice())?;
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(e.kind);
        h.set_mode(if e.kind == EntryType::Directory { 0o755 } else { 0o644 });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(e.data.len() as u64);
        h.set_device_major(e.dev.0)?;
        h.set_device_minor(e.dev.1)?;
        let n = e.path.len().min(100);
        h.as_old_mut().name[..n].copy_from_slice(&e.path[..n]);
        let n = e.link.len().min(100);
        h.as_old_mut().linkname[..n].copy_from_slice(&e.link[..n]);
        h.set_cksum();
        b.append(&h, e.data.as_slice())?;
    }
    b.into_inner()
}

/// What must not change outside `dest`.
#[derive(Debug, PartialEq)]
struct Outside {
    top: Vec<String>,
    canary: Vec<String>,
    canary_mtime: (i64, i64),
    canary_opaque: Option<Vec<u8>>,
    secret: (String, u64),
    passwd: (Vec<u8>, u64, u64, u32, i64, i64),
}

struct Sandbox {
    tmp: tempfile::TempDir,
    dest: PathBuf,
    canary: PathBuf,
    before: Outside,
    /// Absolute names outside the sandbox the layer aims at; none may exist afterwards.
    forbidden: Vec<PathBuf>,
}

impl Sandbox {
    fn new() -> Result<Sandbox, Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        let dest = tmp.path().join("dest");
        let canary = tmp.path().join("canary");
        fs::create_dir(&dest)?;
        fs::create_dir(&canary)?;
        fs::create_dir(tmp.path().join("outside"))?;
        fs::write(tmp.path().join("outside/secret"), "secret")?;
        let mut s = Sandbox { tmp, dest, canary, before: empty_outside(), forbidden: Vec::new() };
        s.before = s.outside()?;
        Ok(s)
    }

    /// A name in `/etc` (or `/dev`) unique to this test, that must never be created.
    fn forbid(&mut self, dir: &str, test: &str) -> String {
        let name = format!("berth-hostile-{}-{test}", std::process::id());
        let p = Path::new(dir).join(&name);
        self.forbidden.push(p);
        name
    }

    fn outside(&self) -> Result<Outside, Box<dyn std::error::Error>> {
        let names = |p: &Path| -> std::io::Result<Vec<String>> {
            let mut v: Vec<String> = fs::read_dir(p)?
                .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
                .collect::<Result<_, _>>()?;
            v.sort();
            Ok(v)
        };
        let cm = fs::symlink_metadata(&self.canary)?;
        let secret = self.tmp.path().join("outside/secret");
        let pm = fs::symlink_metadata("/etc/passwd")?;
        Ok(Outside {
            top: names(self.tmp.path())?,
            canary: names(&self.canary)?,
            canary_mtime: (cm.mtime(), cm.mtime_nsec()),
            canary_opaque: xattr::get(&self.canary, "trusted.overlay.opaque")?,
            secret: (fs::read_to_string(&secret)?, fs::metadata(&secret)?.nlink()),
            passwd: (fs::read("/etc/passwd")?, pm.ino(), pm.nlink(), pm.mode(), pm.mtime(), pm.ctime()),
        })
    }

    fn unpack(&self, entries: &[Ent]) -> Result<Result<UnpackStats, UnpackError>, Box<dyn std::error::Error>> {
        Ok(unpack_layer(tar(entries)?.as_slice(), &self.dest))
    }

    /// Nothing outside `dest` changed.
    fn assert_untouched(&self) -> TestResult {
        assert_eq!(self.outside()?, self.before, "something outside the layer directory changed");
        assert_eq!(self.before.canary, Vec::<String>::new());
        assert_eq!(self.before.secret.1, 1);
        for p in &self.forbidden {
            assert!(fs::symlink_metadata(p).is_err(), "{} was created", p.display());
        }
        Ok(())
    }
}

fn empty_outside() -> Outside {
    Outside {
        top: Vec::new(),
        canary: Vec::new(),
        canary_mtime: (0, 0),
        canary_opaque: None,
        secret: (String::new(), 0),
        passwd: (Vec::new(), 0, 0, 0, 0, 0),
    }
}

fn is_root() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipped: device nodes and trusted.* xattrs need root");
    }
    root
}

fn assert_escape(r: &Result<UnpackStats, UnpackError>, path: &str) {
    match r {
        Err(UnpackError::Escape { path: p }) => assert_eq!(p, path),
        other => panic!("expected an escape error for {path:?}, got {other:?}"),
    }
}

#[test]
fn absolute_paths_land_inside() -> TestResult {
    let mut s = Sandbox::new()?;
    let etc_name = s.forbid("/etc", "abs");
    let canary = s.canary.to_string_lossy().into_owned();
    let r = s.unpack(&[
        file(format!("/etc/{etc_name}")),
        file(format!("{canary}/pwned")),
        file("//double/slash"),
        dir("/"),
    ])?;
    r?;
    assert!(s.dest.join("etc").join(&etc_name).is_file());
    assert!(s.dest.join(canary.trim_start_matches('/')).join("pwned").is_file());
    assert!(s.dest.join("double/slash").is_file());
    s.assert_untouched()
}

#[test]
fn dotdot_is_clamped_at_the_root() -> TestResult {
    let mut s = Sandbox::new()?;
    let etc_name = s.forbid("/etc", "dotdot");
    let r = s.unpack(&[
        file(format!("../../etc/{etc_name}")),
        // From dest, `../canary` is the real canary: clamped, it is `dest/canary`.
        file("../canary/pwned"),
        file("a/../../../canary/again"),
        file(format!("{}x", "../".repeat(2000))),
    ])?;
    r?;
    assert!(s.dest.join("etc").join(&etc_name).is_file());
    assert!(s.dest.join("canary/pwned").is_file());
    assert!(s.dest.join("canary/again").is_file());
    assert!(s.dest.join("x").is_file());
    s.assert_untouched()
}

#[test]
fn absolute_symlink_then_write_through_it() -> TestResult {
    let mut s = Sandbox::new()?;
    let etc_name = s.forbid("/etc", "abs-symlink");
    let r = s.unpack(&[symlink("evil", &*s.canary.to_string_lossy()), file("evil/pwned")])?;
    assert_escape(&r, "evil/pwned");
    // The symlink itself was created as it is: inside the container it points at its own /tmp/….
    assert_eq!(fs::read_link(s.dest.join("evil"))?, s.canary);
    s.assert_untouched()?;

    let s2 = Sandbox::new()?;
    let r = s2.unpack(&[symlink("etc", "/etc"), file(format!("etc/{etc_name}"))])?;
    assert_escape(&r, &format!("etc/{etc_name}"));
    s2.assert_untouched()?;
    s.assert_untouched()
}

#[test]
fn relative_symlink_escapes() -> TestResult {
    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("c", "../canary"), file("c/pwned")])?;
    assert_escape(&r, "c/pwned");
    s.assert_untouched()?;

    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("x", "../../.."), file("x/tmp/pwned")])?;
    assert_escape(&r, "x/tmp/pwned");
    s.assert_untouched()?;

    // A directory created through the symlink is as bad as a file.
    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("c", "../canary"), dir("c/sub")])?;
    assert_escape(&r, "c/sub");
    s.assert_untouched()
}

#[test]
fn symlink_chains_to_dotdot() -> TestResult {
    // `b -> a/..` with `a -> .`: b is dest/.., outside.
    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("a", "."), symlink("b", "a/.."), file("b/canary/pwned")])?;
    assert_escape(&r, "b/canary/pwned");
    s.assert_untouched()?;

    // `d/up -> ..` stays inside; walking it twice from the root would not.
    let s = Sandbox::new()?;
    let r = s.unpack(&[
        dir("d"),
        symlink("d/up", ".."),
        file("d/up/d/up/inside"),
        symlink("up", "d/up/d/up/.."),
        file("up/canary/pwned"),
    ])?;
    assert_escape(&r, "up/canary/pwned");
    assert!(s.dest.join("inside").is_file(), "a symlink that stays inside is followed");
    s.assert_untouched()?;

    // A symlink loop is an error, not a hang.
    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("loop", "loop"), file("loop/f")])?;
    assert!(r.is_err(), "{r:?}");
    s.assert_untouched()
}

#[test]
fn directory_replaced_by_a_symlink() -> TestResult {
    let s = Sandbox::new()?;
    // The directory is replaced by a symlink to the canary (a later entry wins), then written through.
    let r = s.unpack(&[dir("d"), file("d/ok"), symlink("d", &*s.canary.to_string_lossy()), file("d/pwned")])?;
    assert_escape(&r, "d/pwned");
    s.assert_untouched()?;

    // Without the write: the directory's mtime, set at the end, is not set through the symlink.
    let s = Sandbox::new()?;
    let r = s.unpack(&[dir("d"), symlink("d", "../canary")])?;
    r?;
    assert!(fs::symlink_metadata(s.dest.join("d"))?.file_type().is_symlink());
    s.assert_untouched()
}

#[test]
fn a_file_replaces_a_symlink_instead_of_writing_through_it() -> TestResult {
    let s = Sandbox::new()?;
    let target = s.canary.join("target");
    let r =
        s.unpack(&[symlink("f", &*target.to_string_lossy()), file("f"), symlink("g", "../outside/secret"), file("g")])?;
    r?;
    assert!(fs::symlink_metadata(s.dest.join("f"))?.is_file());
    assert!(fs::symlink_metadata(s.dest.join("g"))?.is_file());
    s.assert_untouched()
}

#[test]
fn hard_link_to_etc_passwd() -> TestResult {
    let s = Sandbox::new()?;
    for target in ["/etc/passwd", "../../../../../etc/passwd", "etc/passwd"] {
        let r = s.unpack(&[hardlink("h", target)])?;
        assert!(matches!(r, Err(UnpackError::LinkTarget { .. })), "{target}: {r:?}");
        s.assert_untouched()?;
    }
    // With its own etc/passwd, the layer links to that one.
    let s = Sandbox::new()?;
    let r = s.unpack(&[file("etc/passwd"), hardlink("h", "/etc/passwd")])?;
    r?;
    assert_eq!(fs::metadata(s.dest.join("h"))?.ino(), fs::metadata(s.dest.join("etc/passwd"))?.ino());
    s.assert_untouched()
}

#[test]
fn hard_link_through_a_symlinked_directory() -> TestResult {
    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("s", "/etc"), hardlink("h", "s/passwd")])?;
    assert_escape(&r, "h");
    s.assert_untouched()?;

    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("s", "../outside"), hardlink("h", "s/secret")])?;
    assert_escape(&r, "h");
    s.assert_untouched()?;

    // The link itself placed through a symlinked directory.
    let s = Sandbox::new()?;
    let r = s.unpack(&[file("f"), symlink("c", "../canary"), hardlink("c/h", "f")])?;
    assert_escape(&r, "c/h");
    s.assert_untouched()
}

#[test]
fn whiteouts_aimed_outside() -> TestResult {
    if !is_root() {
        return Ok(());
    }
    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("c", "../canary"), file("c/.wh.x")])?;
    assert_escape(&r, "c/.wh.x");
    s.assert_untouched()?;

    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("c", &*s.canary.to_string_lossy()), file("c/.wh..wh..opq")])?;
    assert_escape(&r, "c/.wh..wh..opq");
    s.assert_untouched()?;

    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("e", "/etc"), file("e/.wh.passwd")])?;
    assert_escape(&r, "e/.wh.passwd");
    s.assert_untouched()?;

    // Clamped, these whiteouts mark names inside the layer.
    let s = Sandbox::new()?;
    let r = s.unpack(&[file("../../.wh.canary"), file("/etc/.wh.passwd"), file("../.wh..wh..opq")])?;
    r?;
    assert!(fs::symlink_metadata(s.dest.join("canary"))?.file_type().is_char_device());
    assert!(fs::symlink_metadata(s.dest.join("etc/passwd"))?.file_type().is_char_device());
    assert_eq!(xattr::get(&s.dest, "trusted.overlay.opaque")?.as_deref(), Some(&b"y"[..]));
    s.assert_untouched()
}

#[test]
fn device_nodes_aimed_outside() -> TestResult {
    if !is_root() {
        return Ok(());
    }
    let mut s = Sandbox::new()?;
    let dev_name = s.forbid("/dev", "node");
    let r = s.unpack(&[symlink("c", "../canary"), chardev("c/null", 1, 3)])?;
    assert_escape(&r, "c/null");
    s.assert_untouched()?;

    let s2 = Sandbox::new()?;
    let r = s2.unpack(&[symlink("dev", "/dev"), chardev(format!("dev/{dev_name}"), 1, 3)])?;
    assert_escape(&r, &format!("dev/{dev_name}"));
    s2.assert_untouched()?;

    let s3 = Sandbox::new()?;
    let r =
        s3.unpack(&[chardev(format!("/dev/{dev_name}"), 1, 3), chardev(format!("../../dev/{dev_name}-2"), 1, 3)])?;
    r?;
    assert!(fs::symlink_metadata(s3.dest.join("dev").join(&dev_name))?.file_type().is_char_device());
    s3.assert_untouched()?;
    s.assert_untouched()
}

#[test]
fn huge_names() -> TestResult {
    // A 255-byte component is the limit: fine. 300 bytes is a clean error naming the entry.
    let s = Sandbox::new()?;
    let ok = "n".repeat(255);
    s.unpack(&[file(&ok)])??;
    assert!(s.dest.join(&ok).is_file());
    s.assert_untouched()?;

    let s = Sandbox::new()?;
    let long = "n".repeat(300);
    let r = s.unpack(&[file(&long)])?;
    let msg = r.as_ref().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(matches!(r, Err(UnpackError::Fs { .. })), "{r:?}");
    assert!(msg.contains(&long), "{msg}");
    s.assert_untouched()?;

    // A path longer than PATH_MAX: an error, or contained.
    let s = Sandbox::new()?;
    let deep = format!("{}f", "dd/".repeat(2000));
    let r = s.unpack(&[file(&deep)])?;
    assert!(r.is_err(), "{r:?}");
    s.assert_untouched()?;

    // A huge symlink target and a huge hard-link target.
    let s = Sandbox::new()?;
    let r = s.unpack(&[symlink("l", "../".repeat(1500)), file("l/canary/pwned")])?;
    assert!(r.is_err(), "{r:?}");
    let r = Sandbox::new()?.unpack(&[hardlink("h", format!("{}etc/passwd", "../".repeat(3000)))])?;
    assert!(r.is_err(), "{r:?}");
    s.assert_untouched()
}
