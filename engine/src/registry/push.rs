//! Push: the blobs the registry lacks (asked with a HEAD each), streamed from the store files a few at once, then
//! the config, then the manifest as stored, byte for byte, so that its digest stays the image's.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt as _, TryStreamExt as _, stream};
use oci_client::Client;
use tokio::io::AsyncReadExt as _;

use super::client::{RegistryOptions, to_oci};
use super::error::{Ctx, RegistryError};
use super::manifest::{self, Descriptor, Manifest};
use super::progress::{ProgressEvent, Reporter};
use super::pull::Shared;
use crate::image::error::StoreError;
use crate::image::store::ImageStore;
use crate::image::{Digest, Reference};

/// Blobs uploaded at once by one push, by default.
pub const DEFAULT_CONCURRENT_UPLOADS: usize = 4;

/// Bytes read from a store file per chunk of an upload.
const READ_CHUNK: usize = 1024 * 1024;

/// How often upload progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

#[derive(Clone, Debug)]
pub struct PushOptions {
    pub registry: RegistryOptions,
    pub max_concurrent_uploads: usize,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions { registry: RegistryOptions::default(), max_concurrent_uploads: DEFAULT_CONCURRENT_UPLOADS }
    }
}

pub(crate) async fn push<F>(
    store: &ImageStore,
    shared: &Shared,
    source: &str,
    target: &Reference,
    opts: &PushOptions,
    progress: F,
) -> Result<Digest, RegistryError>
where
    F: FnMut(ProgressEvent) + Send,
{
    let image_name = target.familiar();
    let store_err = |what: &str, e: StoreError| RegistryError::Store {
        context: format!("push {source}: {what}"),
        source: Box::new(e),
    };
    let image = store.resolve(source).map_err(|e| store_err("find the image", e))?;
    let manifest_bytes = store.read_blob(&image.manifest_digest).map_err(|e| store_err("read the manifest", e))?;
    let invalid = |detail: String| RegistryError::InvalidManifest {
        image: source.to_string(),
        digest: image.manifest_digest.to_string(),
        detail,
    };
    let m = match manifest::parse(&manifest_bytes).map_err(invalid)? {
        Manifest::Image(m) => m,
        Manifest::Index(_) => return Err(invalid("an index: push its platform images one by one".into())),
    };
    let (client, auth) = shared.clients.get(&target.registry, &opts.registry)?;
    let oref = to_oci(target);
    client.store_auth_if_needed(oref.resolve_registry(), &auth).await;
    let push = Push {
        store,
        shared,
        client,
        oref,
        image: image_name,
        registry: target.registry.clone(),
        reporter: Reporter::new(progress),
    };

    let mut uploaded_any = false;
    // Collected first: a lazy `map` held across the await makes the future not provably Send.
    let layers: Vec<_> = m.layers.iter().map(|l| push.blob(l, "layer")).collect();
    let done: Vec<bool> =
        stream::iter(layers).buffer_unordered(opts.max_concurrent_uploads.max(1)).try_collect().await?;
    uploaded_any |= done.into_iter().any(|u| u);
    uploaded_any |= push.blob(&m.config, "config").await?;

    let ctx = push.ctx("manifest");
    let content_type = manifest::media_type_of(&manifest_bytes).unwrap_or_else(|| m.media_type.clone());
    let content_type =
        hyper::http::HeaderValue::from_str(&content_type).map_err(|e| RegistryError::InvalidManifest {
            image: source.to_string(),
            digest: image.manifest_digest.to_string(),
            detail: format!("media type {content_type:?}: {e}"),
        })?;
    push.client
        .push_manifest_raw(&push.oref, manifest_bytes.clone(), content_type)
        .await
        .map_err(|e| ctx.classify(e))?;
    let digest = Digest::of(&manifest_bytes);
    tracing::info!(source, target = %target, manifest = %digest, uploaded_any, "pushed");
    push.reporter.send(ProgressEvent::Done { manifest_digest: digest.clone(), up_to_date: !uploaded_any });
    Ok(digest)
}

struct Push<'a, F> {
    store: &'a ImageStore,
    shared: &'a Shared,
    client: Client,
    oref: oci_client::Reference,
    image: String,
    registry: String,
    reporter: Reporter<F>,
}

impl<F: FnMut(ProgressEvent) + Send> Push<'_, F> {
    fn ctx(&self, what: &'static str) -> Ctx<'_> {
        Ctx::new(&self.image, &self.registry, "push", what)
    }

    /// Uploads one blob unless the registry has it; true when it was uploaded.
    async fn blob(&self, desc: &Descriptor, what: &'static str) -> Result<bool, RegistryError> {
        let ctx = self.ctx(what).blob(what, &desc.digest);
        let digest = desc.digest.to_string();
        if self.client.blob_exists(&self.oref, &digest).await.map_err(|e| ctx.classify(e))? {
            self.reporter.send(ProgressEvent::BlobExists { digest: desc.digest.clone(), size: desc.size });
            return Ok(false);
        }
        let path = self.store.blob_path(&desc.digest);
        let file = tokio::fs::File::open(&path).await.map_err(|e| RegistryError::StoreWrite {
            image: self.image.clone(),
            what,
            digest: desc.digest.clone(),
            detail: format!("open {}: {e}", path.display()),
        })?;
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let body = file_stream(file, sent.clone());
        let upload = self.client.push_blob_stream(&self.oref, body, &digest, Some(desc.size));
        tokio::pin!(upload);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let result = loop {
            tokio::select! {
                r = &mut upload => break r,
                _ = tick.tick() => {
                    let current = sent.load(Ordering::Relaxed);
                    if current > 0 {
                        let digest = desc.digest.clone();
                        self.reporter.send(ProgressEvent::BlobProgress { digest, current, total: desc.size });
                    }
                }
            }
        };
        let sent = sent.load(Ordering::Relaxed);
        result.map_err(|e| Ctx { progress: Some((sent, desc.size)), ..ctx }.classify(e))?;
        self.shared.stats.blob_uploads.fetch_add(1, Ordering::Relaxed);
        self.shared.stats.bytes_uploaded.fetch_add(sent, Ordering::Relaxed);
        self.reporter.send(ProgressEvent::BlobDone { digest: desc.digest.clone(), size: desc.size });
        Ok(true)
    }
}

/// A store file as a stream of chunks, counting the bytes read.
fn file_stream(
    file: tokio::fs::File,
    sent: std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> impl futures_util::Stream<Item = oci_client::errors::Result<Bytes>> + Send + 'static {
    stream::try_unfold((file, sent), |(mut file, sent)| async move {
        let mut buf = Vec::with_capacity(READ_CHUNK);
        let n = (&mut file).take(READ_CHUNK as u64).read_to_end(&mut buf).await?;
        if n == 0 {
            return Ok::<_, std::io::Error>(None);
        }
        sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(Some((Bytes::from(buf), (file, sent))))
    })
    .map_err(oci_client::errors::OciDistributionError::IoError)
    .boxed()
}
