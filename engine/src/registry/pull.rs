//! Pull, as named steps over one context: resolve the reference to a manifest digest (one HEAD), read or fetch
//! the manifest (and pick the platform in an index), fetch the config and the missing layers (a few at once, each
//! blob once across concurrent pulls), then store the manifests and register the image.
//!
//! Guarantees:
//! - a layer never sits in memory: it streams from the socket through a bounded queue into the store's blob
//!   writer on a blocking thread, which verifies its sha256 before the blob becomes visible;
//! - an image is added only once every blob it names is in the store; a pull cut at any point leaves only whole,
//!   verified blobs, and the next pull fetches what is missing;
//! - an image already present costs one request (the tag's manifest digest) and no download.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use oci_client::Client;
use oci_client::secrets::RegistryAuth;

use super::client::{Clients, RegistryOptions, to_oci};
use super::error::{Ctx, RegistryError};
use super::manifest::{self, Descriptor, ImageManifest, Manifest};
use super::platform::{self, Platform};
use super::progress::{Meter, ProgressEvent, Reporter};
use crate::image::error::StoreError;
use crate::image::store::{BlobWriter, Image, ImageStore};
use crate::image::{Digest, Reference};

/// Blobs fetched at once by one pull, by default.
pub const DEFAULT_CONCURRENT_DOWNLOADS: usize = 4;

/// Chunks queued between the socket and the blob writer of one blob (chunks are what the socket gave: a few KiB
/// to a few dozen).
const WRITE_QUEUE: usize = 32;

/// Bytes a blob transfer moves before it lets other tasks run.
const YIELD_EVERY: u64 = 2 << 20;

#[derive(Clone, Debug)]
pub struct PullOptions {
    pub registry: RegistryOptions,
    /// The platform to pick in an index, and to require of a single-platform image.
    pub platform: Platform,
    pub max_concurrent_downloads: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            registry: RegistryOptions::default(),
            platform: Platform::default(),
            max_concurrent_downloads: DEFAULT_CONCURRENT_DOWNLOADS,
        }
    }
}

/// Counters of what went over the wire, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Config and layer downloads started.
    pub blob_fetches: u64,
    pub bytes_fetched: u64,
    /// Manifest requests: the HEAD resolving a tag, and GETs of manifests not in the store.
    pub manifest_requests: u64,
    /// Blobs uploaded by push (those the registry already had are not counted).
    pub blob_uploads: u64,
    pub bytes_uploaded: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    blob_fetches: AtomicU64,
    bytes_fetched: AtomicU64,
    manifest_requests: AtomicU64,
    pub(crate) blob_uploads: AtomicU64,
    pub(crate) bytes_uploaded: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> TransferStats {
        TransferStats {
            blob_fetches: self.blob_fetches.load(Ordering::Relaxed),
            bytes_fetched: self.bytes_fetched.load(Ordering::Relaxed),
            manifest_requests: self.manifest_requests.load(Ordering::Relaxed),
            blob_uploads: self.blob_uploads.load(Ordering::Relaxed),
            bytes_uploaded: self.bytes_uploaded.load(Ordering::Relaxed),
        }
    }
}

/// What concurrent pulls and pushes share: one lock per blob being fetched, the clients, the counters.
#[derive(Default)]
pub(crate) struct Shared {
    /// Weak so that a lock lives only while someone holds or waits for it; dead entries are swept on insert.
    inflight: Mutex<HashMap<Digest, Weak<tokio::sync::Mutex<()>>>>,
    pub(crate) clients: Clients,
    pub(crate) stats: Counters,
}

impl Shared {
    /// The lock of one blob: held while it is fetched, so a second pull of it waits and then finds it stored.
    async fn acquire(&self, digest: &Digest, on_wait: impl FnOnce()) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = self.inflight.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match map.get(digest).and_then(Weak::upgrade) {
                Some(l) => l,
                None => {
                    if map.len() >= 64 {
                        map.retain(|_, w| w.strong_count() > 0);
                    }
                    let l = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(digest.clone(), Arc::downgrade(&l));
                    l
                }
            }
        };
        match lock.clone().try_lock_owned() {
            Ok(guard) => guard,
            Err(_) => {
                on_wait();
                lock.lock_owned().await
            }
        }
    }
}

pub(crate) async fn pull<F>(
    store: &ImageStore,
    shared: &Shared,
    reference: &Reference,
    opts: &PullOptions,
    progress: F,
) -> Result<Image, RegistryError>
where
    F: FnMut(ProgressEvent) + Send,
{
    let (client, auth) = shared.clients.get(&reference.registry, &opts.registry)?;
    let oref = to_oci(reference);
    client.store_auth_if_needed(oref.resolve_registry(), &auth).await;
    let pull = Pull {
        store,
        shared,
        client,
        auth,
        oref,
        reference,
        image: reference.familiar(),
        opts,
        reporter: Reporter::new(progress),
    };
    pull.run().await
}

struct Pull<'a, F> {
    store: &'a ImageStore,
    shared: &'a Shared,
    client: Client,
    auth: RegistryAuth,
    oref: oci_client::Reference,
    reference: &'a Reference,
    /// The image as errors name it.
    image: String,
    opts: &'a PullOptions,
    reporter: Reporter<F>,
}

/// A manifest's bytes and whether they came from the registry (still to be stored).
struct Fetched {
    digest: Digest,
    bytes: Vec<u8>,
    new: bool,
}

/// Why the transfer of a blob stopped.
enum StreamError {
    Registry(RegistryError),
    /// The writer thread stopped taking chunks: its own result tells why.
    WriterGone,
}

enum Chunk {
    Data(Bytes),
    Commit,
}

impl<F: FnMut(ProgressEvent) + Send> Pull<'_, F> {
    fn ctx(&self, what: &'static str) -> Ctx<'_> {
        Ctx::new(&self.image, &self.reference.registry, "pull", what)
    }

    fn store_err(&self, what: &str, source: StoreError) -> RegistryError {
        RegistryError::Store { context: format!("pull {}: {what}", self.image), source: Box::new(source) }
    }

    async fn run(&self) -> Result<Image, RegistryError> {
        // Blobs written before the image that names them exists must survive a concurrent prune.
        let _lease = self.store.lease();
        let top = self.resolve().await?;
        let top = self.manifest(&top).await?;
        let (fetched, index, selected_from_index) =
            match manifest::parse(&top.bytes).map_err(|d| self.invalid(&top.digest, d))? {
                Manifest::Index(entries) => {
                    let chosen = platform::select(&self.opts.platform, entries.iter().map(|e| e.platform.as_ref()))
                        .and_then(|i| entries.get(i))
                        .ok_or_else(|| RegistryError::PlatformNotAvailable {
                            image: self.image.clone(),
                            wanted: self.opts.platform.clone(),
                            available: entries
                                .iter()
                                .filter_map(|e| e.platform.as_ref())
                                .filter(|p| p.os != "unknown")
                                .map(ToString::to_string)
                                .collect(),
                        })?;
                    (self.manifest(&chosen.descriptor.digest).await?, Some(top), true)
                }
                Manifest::Image(_) => (top, None, false),
            };
        let image_manifest = match manifest::parse(&fetched.bytes).map_err(|d| self.invalid(&fetched.digest, d))? {
            Manifest::Image(m) => m,
            Manifest::Index(_) => {
                return Err(self.invalid(&fetched.digest, "an index where an image manifest was expected".into()));
            }
        };
        self.reporter.send(ProgressEvent::Resolved {
            reference: self.reference.to_string(),
            manifest_digest: fetched.digest.clone(),
            layers: image_manifest.layers.len(),
        });

        let complete = !fetched.new
            && self.store.has_blob(&image_manifest.config.digest)
            && image_manifest.layers.iter().all(|l| self.store.has_blob(&l.digest));
        if !complete {
            self.fetch_blob(&image_manifest.config, "config").await?;
        }
        if !selected_from_index {
            self.check_platform(&image_manifest)?;
        }
        if complete && let Some(image) = self.already_tagged(&fetched.digest) {
            tracing::debug!(image = %self.image, manifest = %fetched.digest, "pull: image up to date");
            self.reporter.send(ProgressEvent::Done { manifest_digest: fetched.digest.clone(), up_to_date: true });
            return Ok(image);
        }
        if !complete {
            self.fetch_layers(&image_manifest).await?;
        }

        // Manifests last: a stored manifest is the sign of a finished pull.
        for m in [Some(&fetched), index.as_ref()].into_iter().flatten().filter(|m| m.new) {
            let stored = self.store.write_blob(&m.bytes).map_err(|e| self.store_err("store the manifest", e))?;
            if stored != m.digest {
                return Err(self.invalid(&m.digest, format!("stored as {stored}")));
            }
        }
        let image = self
            .store
            .add_image(&fetched.digest, Some(self.reference))
            .map_err(|e| self.store_err("add the image", e))?;
        tracing::info!(image = %self.image, manifest = %fetched.digest, id = %image.id, up_to_date = complete, "pulled");
        self.reporter.send(ProgressEvent::Done { manifest_digest: fetched.digest.clone(), up_to_date: complete });
        Ok(image)
    }

    /// The image when the reference already names this manifest in the store: nothing to write at all.
    fn already_tagged(&self, manifest_digest: &Digest) -> Option<Image> {
        let image = self.store.resolve(&self.reference.to_string()).ok()?;
        (image.manifest_digest == *manifest_digest).then_some(image)
    }

    fn invalid(&self, digest: &Digest, detail: String) -> RegistryError {
        RegistryError::InvalidManifest { image: self.image.clone(), digest: digest.to_string(), detail }
    }

    /// The digest the reference names: its own, or the tag's as the registry answers a HEAD.
    async fn resolve(&self) -> Result<Digest, RegistryError> {
        if let Some(d) = &self.reference.digest {
            return Ok(d.clone());
        }
        self.shared.stats.manifest_requests.fetch_add(1, Ordering::Relaxed);
        let text = self
            .client
            .fetch_manifest_digest(&self.oref, &self.auth)
            .await
            .map_err(|e| self.ctx("manifest").classify(e))?;
        text.parse::<Digest>().map_err(|e| RegistryError::InvalidManifest {
            image: self.image.clone(),
            digest: text.clone(),
            detail: e.to_string(),
        })
    }

    /// A manifest's bytes, from the store when it has them.
    async fn manifest(&self, digest: &Digest) -> Result<Fetched, RegistryError> {
        if self.store.has_blob(digest) {
            let bytes = self.store.read_blob(digest).map_err(|e| self.store_err("read a manifest", e))?;
            return Ok(Fetched { digest: digest.clone(), bytes, new: false });
        }
        self.shared.stats.manifest_requests.fetch_add(1, Ordering::Relaxed);
        let by_digest = self.oref.clone_with_digest(digest.to_string());
        let (bytes, _) = self
            .client
            .pull_manifest_raw(&by_digest, &self.auth, manifest::ACCEPTED)
            .await
            .map_err(|e| self.ctx("manifest").blob("manifest", digest).classify(e))?;
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                image: self.image.clone(),
                registry: self.reference.registry.clone(),
                what: "manifest",
                expected: digest.to_string(),
                detail: format!("its sha256 is {actual}"),
            });
        }
        Ok(Fetched { digest: digest.clone(), bytes: bytes.to_vec(), new: true })
    }

    /// A single-platform image must be for the wanted platform (when its config says which it is for).
    fn check_platform(&self, m: &ImageManifest) -> Result<(), RegistryError> {
        let config = self.store.read_blob(&m.config.digest).map_err(|e| self.store_err("read the config", e))?;
        match manifest::config_platform(&config).map_err(|d| self.invalid(&m.config.digest, d))? {
            Some(p) if !self.opts.platform.matches(&p) => Err(RegistryError::PlatformNotAvailable {
                image: self.image.clone(),
                wanted: self.opts.platform.clone(),
                available: vec![p.to_string()],
            }),
            _ => Ok(()),
        }
    }

    async fn fetch_layers(&self, m: &ImageManifest) -> Result<(), RegistryError> {
        // Collected first: a lazy `map` held across the await makes the future not provably Send.
        let fetches: Vec<_> = m.layers.iter().map(|l| self.fetch_blob(l, "layer")).collect();
        stream::iter(fetches)
            .buffer_unordered(self.opts.max_concurrent_downloads.max(1))
            .try_for_each(|()| std::future::ready(Ok(())))
            .await
    }

    /// One blob into the store, unless it is there or another pull is fetching it (then wait for that one).
    async fn fetch_blob(&self, desc: &Descriptor, what: &'static str) -> Result<(), RegistryError> {
        let exists = || ProgressEvent::BlobExists { digest: desc.digest.clone(), size: desc.size };
        if self.store.has_blob(&desc.digest) {
            self.reporter.send(exists());
            return Ok(());
        }
        let _guard = self
            .shared
            .acquire(&desc.digest, || self.reporter.send(ProgressEvent::BlobWaiting { digest: desc.digest.clone() }))
            .await;
        if self.store.has_blob(&desc.digest) {
            self.reporter.send(exists());
            return Ok(());
        }
        self.shared.stats.blob_fetches.fetch_add(1, Ordering::Relaxed);
        self.download(desc, what).await?;
        self.reporter.send(ProgressEvent::BlobDone { digest: desc.digest.clone(), size: desc.size });
        Ok(())
    }

    /// Streams a blob into a store blob writer running on a blocking thread.
    async fn download(&self, desc: &Descriptor, what: &'static str) -> Result<(), RegistryError> {
        let writer = self
            .store
            .blob_writer(Some(&desc.digest))
            .map_err(|e| self.store_err(&format!("open a writer for {what} {}", desc.digest), e))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Chunk>(WRITE_QUEUE);
        let writer_task = tokio::task::spawn_blocking(move || write_chunks(writer, rx));
        let streamed = self.stream_blob(desc, what, &tx).await;
        if streamed.is_ok() && tx.send(Chunk::Commit).await.is_err() {
            tracing::debug!(digest = %desc.digest, "blob writer stopped before the commit");
        }
        // Closing the queue without a commit makes the writer drop (and so delete) the partial blob; waiting for
        // it means nothing partial is left when this returns.
        drop(tx);
        let written = writer_task.await;
        let write_error = |detail: String| RegistryError::StoreWrite {
            image: self.image.clone(),
            what,
            digest: desc.digest.clone(),
            detail,
        };
        match (streamed, written) {
            (Err(StreamError::Registry(e)), _) => Err(e),
            (_, Err(join)) => Err(write_error(format!("the writer thread failed: {join}"))),
            (_, Ok(Err(WriteFailure::Store(StoreError::DigestMismatch { expected, actual })))) => {
                Err(RegistryError::DigestMismatch {
                    image: self.image.clone(),
                    registry: self.reference.registry.clone(),
                    what,
                    expected: expected.to_string(),
                    detail: format!("its sha256 is {actual}"),
                })
            }
            (_, Ok(Err(WriteFailure::Store(e)))) => Err(self.store_err(&format!("commit {what} {}", desc.digest), e)),
            (_, Ok(Err(WriteFailure::Io(e)))) => Err(write_error(e.to_string())),
            (_, Ok(Err(WriteFailure::Aborted))) => Err(write_error("the transfer stopped before the end".into())),
            (Err(StreamError::WriterGone), Ok(Ok(()))) => Err(write_error("the writer stopped early".into())),
            (Ok(()), Ok(Ok(()))) => Ok(()),
        }
    }

    async fn stream_blob(
        &self,
        desc: &Descriptor,
        what: &'static str,
        tx: &tokio::sync::mpsc::Sender<Chunk>,
    ) -> Result<(), StreamError> {
        let ctx = self.ctx(what).blob(what, &desc.digest);
        let digest = desc.digest.to_string();
        let mut blob = self
            .client
            .pull_blob_stream(&self.oref, digest.as_str())
            .await
            .map_err(|e| StreamError::Registry(ctx.classify(e)))?;
        let mismatch = |detail: String| {
            StreamError::Registry(RegistryError::DigestMismatch {
                image: self.image.clone(),
                registry: self.reference.registry.clone(),
                what,
                expected: digest.clone(),
                detail,
            })
        };
        let truncated = |received: u64| {
            StreamError::Registry(RegistryError::Truncated {
                image: self.image.clone(),
                registry: self.reference.registry.clone(),
                what,
                digest: desc.digest.clone(),
                received,
                expected: desc.size,
            })
        };
        match blob.content_length {
            Some(len) if len < desc.size => return Err(truncated(len)),
            Some(len) if len > desc.size => {
                return Err(mismatch(format!("the registry sends {len} bytes, the manifest says {}", desc.size)));
            }
            _ => {}
        }
        let mut meter = Meter::new();
        let mut since_yield = 0u64;
        while let Some(item) = blob.next().await {
            let chunk = item.map_err(|e| {
                StreamError::Registry(Ctx { progress: Some((meter.current, desc.size)), ..ctx }.classify_io(e))
            })?;
            let n = chunk.len() as u64;
            if meter.current + n > desc.size {
                return Err(mismatch(format!(
                    "the registry sends more than the {} bytes the manifest says",
                    desc.size
                )));
            }
            tx.send(Chunk::Data(chunk)).await.map_err(|_| StreamError::WriterGone)?;
            self.shared.stats.bytes_fetched.fetch_add(n, Ordering::Relaxed);
            // When the socket is always ahead (loopback) and the writer keeps up, nothing in this loop waits, and
            // chunks can be hundreds of KiB: yield every few MiB so that other tasks run and a cancelled pull
            // stops promptly.
            since_yield += n;
            if since_yield >= YIELD_EVERY {
                since_yield = 0;
                tokio::task::yield_now().await;
            }
            if meter.add(n) {
                self.reporter.send(ProgressEvent::BlobProgress {
                    digest: desc.digest.clone(),
                    current: meter.current,
                    total: desc.size,
                });
            }
        }
        if meter.current < desc.size {
            return Err(truncated(meter.current));
        }
        self.reporter.send(ProgressEvent::BlobProgress {
            digest: desc.digest.clone(),
            current: meter.current,
            total: desc.size,
        });
        Ok(())
    }
}

enum WriteFailure {
    Io(std::io::Error),
    Store(StoreError),
    /// The queue closed without a commit: the transfer failed or was cancelled.
    Aborted,
}

/// The blocking side: chunks into the blob writer, then commit (which verifies the digest). Dropping the writer
/// without a commit deletes what was written.
fn write_chunks(mut writer: BlobWriter, mut rx: tokio::sync::mpsc::Receiver<Chunk>) -> Result<(), WriteFailure> {
    while let Some(chunk) = rx.blocking_recv() {
        match chunk {
            Chunk::Data(bytes) => writer.write_all(&bytes).map_err(WriteFailure::Io)?,
            Chunk::Commit => {
                writer.commit().map_err(WriteFailure::Store)?;
                return Ok(());
            }
        }
    }
    Err(WriteFailure::Aborted)
}
