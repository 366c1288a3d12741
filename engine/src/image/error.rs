//! Errors of the image store, import and archives: one enum, each I/O failure carrying the path it happened on.

use std::io;
use std::path::PathBuf;

use super::digest::{Digest, InvalidDigest};
use super::reference::InvalidReference;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// An I/O error on a stream that has no path (an archive read from a socket, a layer being written).
    #[error("{context}: {source}")]
    Stream {
        context: String,
        #[source]
        source: io::Error,
    },
    #[error("blob {0} not found")]
    BlobNotFound(Digest),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    SizeMismatch { digest: Digest, expected: u64, actual: u64 },
    #[error("no such image: {0}")]
    ImageNotFound(String),
    #[error("image id prefix {0:?} is ambiguous")]
    AmbiguousId(String),
    /// `remove` without `force` of an image a container uses.
    #[error("conflict: unable to remove {reference} (must force) - image {id} is being used by a container")]
    InUse { reference: String, id: String },
    /// `remove` by id without `force` of an image with tags in several repositories.
    #[error("conflict: unable to delete {id} (must be forced) - image is referenced in multiple repositories")]
    MultipleRepositories { id: String },
    #[error("invalid manifest {digest}: {reason}")]
    InvalidManifest { digest: Digest, reason: String },
    #[error("invalid image config {digest}: {reason}")]
    InvalidConfig { digest: Digest, reason: String },
    #[error("image {image}: layer {index} ({layer}) has diff_id {actual}, but its config says {expected}")]
    DiffIdMismatch { image: String, index: usize, layer: Digest, expected: String, actual: Digest },
    #[error("unpack layer {layer} of image {image}: {reason}")]
    Unpack { image: String, layer: Digest, reason: String },
    #[error(transparent)]
    InvalidReference(#[from] InvalidReference),
    #[error(transparent)]
    InvalidDigest(#[from] InvalidDigest),
    #[error("invalid tag target {0}: a tag cannot carry a digest")]
    TagWithDigest(String),
    #[error("import: {0}")]
    Import(String),
    #[error("invalid --change {line:?}: {reason}")]
    InvalidChange { line: String, reason: String },
    #[error("archive: {0}")]
    Archive(String),
    #[error("{path}: {reason}")]
    Corrupt { path: PathBuf, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attaches the operation and path to an `io::Error`: `.map_err(io_err("open", &path))`.
pub(crate) fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { op, path, source }
}
