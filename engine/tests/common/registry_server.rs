//! A real OCI registry on loopback for tests: Debian's `docker-registry` (distribution 2.8) started with a generated
//! config (filesystem storage in a temporary directory, `127.0.0.1:<free port>`, optional htpasswd basic auth),
//! killed and cleaned up on drop. Plus a tiny blocking HTTP/1.1 client and a builder of small OCI and Docker images
//! (tar layers, gzip/zstd/plain) to seed it without going through berth's own push.
//!
//! Use it from an integration test with `#[path = "common/registry_server.rs"] mod registry_server;`.
//!
//! The binary is looked up at `$BERTH_DOCKER_REGISTRY` or `/usr/bin/docker-registry`. When it is missing the test
//! fails and says so: CI installs it with `.ci/run`; nothing is skipped silently.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

pub const DEFAULT_BINARY: &str = "/usr/bin/docker-registry";
const READY_TIMEOUT: Duration = Duration::from_secs(15);
const IO_TIMEOUT: Duration = Duration::from_secs(30);

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// The registry binary, or a panic telling how to get it.
pub fn registry_binary() -> PathBuf {
    let path = std::env::var_os("BERTH_DOCKER_REGISTRY").map_or_else(|| PathBuf::from(DEFAULT_BINARY), PathBuf::from);
    if let Err(message) = check_binary(&path) {
        panic!("{message}");
    }
    path
}

/// Whether the registry binary is there; the error says how to install it.
pub fn check_binary(path: &Path) -> Result<(), String> {
    if path.is_file() {
        return Ok(());
    }
    Err(format!(
        "{} is missing: these tests need Debian's docker-registry; run .ci/run (it installs the test \
         dependencies) or `apt-get install -y docker-registry`",
        path.display()
    ))
}

/// `htpasswd` from apache2-utils, when installed (basic-auth tests need its bcrypt).
pub fn htpasswd_binary() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/htpasswd");
    p.exists().then_some(p)
}

pub struct RegistryServer {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
    credentials: Option<(String, String)>,
}

impl RegistryServer {
    /// An anonymous registry.
    pub fn start() -> RegistryServer {
        Self::start_inner(None)
    }

    /// A registry with htpasswd basic auth for one user, or `None` when `htpasswd` is not installed.
    pub fn start_with_auth(user: &str, password: &str) -> Option<RegistryServer> {
        htpasswd_binary()?;
        Some(Self::start_inner(Some((user.to_string(), password.to_string()))))
    }

    fn start_inner(credentials: Option<(String, String)>) -> RegistryServer {
        let binary = registry_binary();
        let dir = tempfile::Builder::new().prefix("berth-registry-").tempdir().expect("temporary directory");
        if let Some((user, password)) = &credentials {
            let out = Command::new(htpasswd_binary().expect("htpasswd"))
                .args(["-Bbn", user, password])
                .output()
                .expect("run htpasswd");
            assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
            std::fs::write(dir.path().join("htpasswd"), &out.stdout).expect("write htpasswd");
        }
        let mut server = RegistryServer { dir, port: 0, child: None, credentials };
        // A port found free may be taken before the registry binds it: try a few.
        for attempt in 0..5 {
            server.port = free_port();
            match server.spawn(&binary) {
                Ok(()) => return server,
                Err(e) if attempt < 4 => eprintln!("registry did not start on port {}: {e}; retrying", server.port),
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    fn write_config(&self) -> PathBuf {
        let auth = if self.credentials.is_some() {
            format!(
                "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                self.dir.path().join("htpasswd").display()
            )
        } else {
            String::new()
        };
        let config = format!(
            "version: 0.1\n\
             log:\n  level: warn\n  accesslog:\n    disabled: true\n\
             storage:\n  filesystem:\n    rootdirectory: {storage}\n  delete:\n    enabled: true\n  \
             maintenance:\n    uploadpurging:\n      enabled: false\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: berth-test-secret\n\
             {auth}",
            storage = self.storage_dir().display(),
            port = self.port,
        );
        let path = self.dir.path().join("config.yml");
        std::fs::write(&path, config).expect("write registry config");
        path
    }

    fn spawn(&mut self, binary: &Path) -> Result<(), String> {
        let config = self.write_config();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("registry log: {e}"))?;
        let log2 = log.try_clone().map_err(|e| format!("registry log: {e}"))?;
        let child = Command::new(binary)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Polls `GET /v2/` until the registry answers (200, or 401 with auth), the process exits, or a deadline.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("docker-registry exited with {status} before answering; log:\n{}", self.log()));
            }
            if let Ok(r) = self.request_as("GET", "/v2/", &[], &[], None)
                && (r.status == 200 || r.status == 401)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(format!(
                    "docker-registry on 127.0.0.1:{} did not answer /v2/ within {READY_TIMEOUT:?}; log:\n{}",
                    self.port,
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `127.0.0.1:<port>`, the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn storage_dir(&self) -> PathBuf {
        self.dir.path().join("storage")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Where the registry keeps a blob's bytes (`sha256:<hex>`), to corrupt it in tests.
    pub fn blob_data_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
        self.storage_dir().join("docker/registry/v2/blobs/sha256").join(&hex[..2]).join(hex).join("data")
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL and reap; the storage stays.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port with the same storage.
    pub fn restart(&mut self) {
        self.kill();
        let binary = registry_binary();
        // The old socket may linger in TIME_WAIT; Go sets SO_REUSEADDR, but retry a few times anyway.
        let mut last = String::new();
        for _ in 0..5 {
            match self.spawn(&binary) {
                Ok(()) => return,
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("registry did not restart: {last}");
    }

    // ---- A small blocking HTTP/1.1 client (Connection: close) ----

    /// A request with this server's credentials, if any.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
        let creds = self.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
        self.request_as(method, path, headers, body, creds)
            .unwrap_or_else(|e| panic!("{method} {path} to {}: {e}", self.host()))
    }

    pub fn request_as(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        credentials: Option<(&str, &str)>,
    ) -> std::io::Result<Response> {
        http_request(&self.host(), method, path, headers, body, credentials)
    }

    /// Uploads a blob (monolithic POST + PUT) and returns its digest.
    pub fn upload_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let r = self.request("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[]);
        assert_eq!(r.status, 202, "start upload: {}", r.text());
        let location = r.header("location").expect("Location of the upload").to_string();
        let path = location.strip_prefix(&format!("http://{}", self.host())).unwrap_or(&location).to_string();
        let sep = if path.contains('?') { '&' } else { '?' };
        let r = self.request(
            "PUT",
            &format!("{path}{sep}digest={digest}"),
            &[("Content-Type", "application/octet-stream")],
            bytes,
        );
        assert_eq!(r.status, 201, "finish upload of {digest}: {}", r.text());
        digest
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> String {
        let r =
            self.request("PUT", &format!("/v2/{repo}/manifests/{reference}"), &[("Content-Type", media_type)], bytes);
        assert_eq!(r.status, 201, "put manifest {repo}:{reference}: {}", r.text());
        sha256(bytes)
    }

    /// Uploads the layers, the config and the manifest of an image under `repo:tag`; returns the manifest digest.
    pub fn push_image(&self, repo: &str, tag: &str, image: &TestImage) -> String {
        for layer in &image.layers {
            self.upload_blob(repo, &layer.blob);
        }
        self.upload_blob(repo, &image.config);
        self.put_manifest(repo, tag, image.manifest_media_type, &image.manifest)
    }

    /// Pushes every image by digest, then an index (OCI, or a Docker manifest list) of them under `repo:tag`.
    pub fn push_index(&self, repo: &str, tag: &str, images: &[&TestImage], docker: bool) -> String {
        let mut entries = Vec::new();
        for image in images {
            let d = self.push_image(repo, &image.manifest_digest, image);
            let mut platform = serde_json::json!({ "architecture": image.architecture, "os": image.os });
            if let Some(v) = &image.variant {
                platform["variant"] = serde_json::json!(v);
            }
            entries.push(serde_json::json!({
                "mediaType": image.manifest_media_type,
                "digest": d,
                "size": image.manifest.len(),
                "platform": platform,
            }));
        }
        let media_type = if docker { DOCKER_MANIFEST_LIST } else { OCI_INDEX };
        let index = serde_json::json!({ "schemaVersion": 2, "mediaType": media_type, "manifests": entries });
        let bytes = serde_json::to_vec_pretty(&index).expect("index json");
        self.put_manifest(repo, tag, media_type, &bytes)
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local address").port()
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`; the whole response is read.
pub fn http_request(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    credentials: Option<(&str, &str)>,
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(host)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some((u, p)) = credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        head.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw, method == "HEAD")
}

fn parse_response(raw: &[u8], head_only: bool) -> std::io::Result<Response> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect();
    let rest = &raw[end + 4..];
    let chunked =
        headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    let body = if head_only {
        Vec::new()
    } else if chunked {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            let nl = rest[i..].windows(2).position(|w| w == b"\r\n").ok_or_else(|| bad("bad chunk"))?;
            let size_str = String::from_utf8_lossy(&rest[i..i + nl]);
            let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| bad("bad chunk size"))?;
            i += nl + 2;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(i..i + size).ok_or_else(|| bad("short chunk"))?);
            i += size + 2;
        }
        out
    } else {
        rest.to_vec()
    };
    Ok(Response { status, headers, body })
}

// ---- Test images ----

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    Plain,
}

#[derive(Clone, Debug)]
pub struct TestLayer {
    /// The blob as stored in the registry (compressed or not).
    pub blob: Vec<u8>,
    pub digest: String,
    /// The digest of the uncompressed tar (the config's `rootfs.diff_ids`).
    pub diff_id: String,
    pub media_type: &'static str,
}

/// A tar of regular files (`path`, contents), compressed as asked, with the OCI media type (Docker's for gzip when
/// `docker` is set; Docker has no zstd or plain media type worth using here).
pub fn tar_layer(files: &[(&str, &[u8])], compression: Compression, docker: bool) -> TestLayer {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append_data(&mut header, path, *contents).expect("append to tar");
    }
    let tar = builder.into_inner().expect("finish tar");
    let diff_id = sha256(&tar);
    let (blob, media_type) = match (compression, docker) {
        (Compression::Gzip, true) => (gzip(&tar), "application/vnd.docker.image.rootfs.diff.tar.gzip"),
        (Compression::Gzip, false) => (gzip(&tar), "application/vnd.oci.image.layer.v1.tar+gzip"),
        (Compression::Zstd, _) => {
            (zstd::encode_all(tar.as_slice(), 3).expect("zstd"), "application/vnd.oci.image.layer.v1.tar+zstd")
        }
        (Compression::Plain, _) => (tar, "application/vnd.oci.image.layer.v1.tar"),
    };
    TestLayer { digest: sha256(&blob), blob, diff_id, media_type }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

/// Bytes that compress badly (xorshift), for images of a realistic size.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    // Distinct seeds give distinct streams (a bare `seed | 1` would make 2k and 2k+1 equal).
    let mut x = (seed.wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

#[derive(Clone, Debug)]
pub struct TestImage {
    pub layers: Vec<TestLayer>,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub manifest: Vec<u8>,
    pub manifest_digest: String,
    pub manifest_media_type: &'static str,
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

/// An image of these layers for `os/architecture[/variant]`, as an OCI manifest or a Docker schema2 one.
pub fn build_image(layers: Vec<TestLayer>, platform: &str, docker: bool) -> TestImage {
    let mut parts = platform.split('/');
    let os = parts.next().unwrap_or("linux").to_string();
    let architecture = parts.next().unwrap_or("amd64").to_string();
    let variant = parts.next().map(str::to_string);
    let mut config = serde_json::json!({
        "architecture": architecture,
        "os": os,
        "config": { "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["/bin/sh"] },
        "rootfs": { "type": "layers", "diff_ids": layers.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>() },
        "history": layers.iter().map(|_| serde_json::json!({ "created_by": "berth test" })).collect::<Vec<_>>(),
    });
    if let Some(v) = &variant {
        config["variant"] = serde_json::json!(v);
    }
    let config = serde_json::to_vec(&config).expect("config json");
    let config_digest = sha256(&config);
    let (manifest_media_type, config_media_type) =
        if docker { (DOCKER_MANIFEST, DOCKER_CONFIG) } else { (OCI_MANIFEST, OCI_CONFIG) };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest_media_type,
        "config": { "mediaType": config_media_type, "digest": config_digest, "size": config.len() },
        "layers": layers.iter().map(|l| serde_json::json!({
            "mediaType": l.media_type, "digest": l.digest, "size": l.blob.len()
        })).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec_pretty(&manifest).expect("manifest json");
    TestImage {
        manifest_digest: sha256(&manifest),
        layers,
        config,
        config_digest,
        manifest,
        manifest_media_type,
        os,
        architecture,
        variant,
    }
}
