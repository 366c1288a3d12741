//! Registry pull and push with the OCI distribution protocol (oci-client underneath): anonymous, basic and
//! bearer-token auth, OCI indexes and Docker manifest lists, Docker schema2 and OCI manifests, gzip, zstd and
//! plain layers stored as pulled.
//!
//! # Expected flow
//! berthd keeps one [`Puller`] for its store; every pull and push goes through it, so that concurrent pulls of one
//! image fetch each blob once and connections and tokens are reused. [`pull`] and [`push`] are the same
//! operations for a one-off caller (a test, a bench) without that sharing.
//!
//! # Guarantees
//! - Layers stream from the socket to the store's blob writer; none is held in memory.
//! - An image appears in the store only once all its blobs are there, each verified against its digest; a pull
//!   cut midway leaves only whole blobs, and the next pull fetches the rest.
//! - An image already present costs one manifest HEAD and no download.
//! - Plain HTTP only for loopback registries and those listed as insecure.
//!
//! # Caveats
//! - For an anonymous registry oci-client asks `/v2/` before each request (it caches only tokens and basic
//!   credentials); on loopback that is well under a millisecond per request.
//! - Credential helpers (`credsStore`, `credHelpers`) and identity tokens are not supported.

pub mod auth;
mod client;
mod error;
mod login;
mod manifest;
pub mod platform;
pub mod progress;
mod pull;
mod push;

use std::sync::Arc;

pub use auth::Credentials;
pub use client::RegistryOptions;
pub use error::RegistryError;
pub use login::{login, logout};
pub use manifest::{DOCKER_CONFIG, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST};
pub use platform::Platform;
pub use progress::ProgressEvent;
pub use pull::{DEFAULT_CONCURRENT_DOWNLOADS, PullOptions, TransferStats};
pub use push::{DEFAULT_CONCURRENT_UPLOADS, PushOptions};

use crate::image::store::{Image, ImageStore};
use crate::image::{Digest, Reference};

/// Pulls and pushes for one store, sharing per-blob locks, registry clients and transfer counters.
pub struct Puller {
    store: Arc<ImageStore>,
    shared: pull::Shared,
}

impl Puller {
    pub fn new(store: Arc<ImageStore>) -> Puller {
        Puller { store, shared: pull::Shared::default() }
    }

    pub fn store(&self) -> &Arc<ImageStore> {
        &self.store
    }

    /// Pulls `reference` into the store and returns the image (see the module's guarantees).
    pub async fn pull(
        &self,
        reference: &Reference,
        opts: &PullOptions,
        progress: impl FnMut(ProgressEvent) + Send,
    ) -> Result<Image, RegistryError> {
        pull::pull(&self.store, &self.shared, reference, opts, progress).await
    }

    /// Pushes the local image `source` (a name or an id, as [`ImageStore::resolve`] takes) to `target`; returns
    /// the digest of the manifest pushed.
    pub async fn push(
        &self,
        source: &str,
        target: &Reference,
        opts: &PushOptions,
        progress: impl FnMut(ProgressEvent) + Send,
    ) -> Result<Digest, RegistryError> {
        push::push(&self.store, &self.shared, source, target, opts, progress).await
    }

    /// What went over the wire since this puller was made.
    pub fn stats(&self) -> TransferStats {
        self.shared.stats.snapshot()
    }
}

/// A pull of its own (no blob sharing with other pulls): see [`Puller::pull`].
pub async fn pull(
    store: &ImageStore,
    reference: &Reference,
    opts: &PullOptions,
    progress: impl FnMut(ProgressEvent) + Send,
) -> Result<Image, RegistryError> {
    pull::pull(store, &pull::Shared::default(), reference, opts, progress).await
}

/// A push of its own: see [`Puller::push`].
pub async fn push(
    store: &ImageStore,
    source: &str,
    target: &Reference,
    opts: &PushOptions,
    progress: impl FnMut(ProgressEvent) + Send,
) -> Result<Digest, RegistryError> {
    push::push(store, &pull::Shared::default(), source, target, opts, progress).await
}
