//! Volumes: the store of named and anonymous volumes (`<root>/volumes/<name>/_data`, metadata in
//! `volume.json` beside it), the local driver's `type`/`device`/`o` options, and the mounts of a container
//! (binds, volumes, tmpfs) from its create body to the OCI spec, with Docker's copy-up of image content into an
//! empty volume.
//!
//! # Flow
//! - `POST /volumes/create` → [`store::VolumeStore::create`].
//! - `POST /containers/create` → [`mounts::plan`] (Binds, Mounts, Tmpfs, image VOLUMEs; checked, nothing made
//!   yet) → [`attach::attach`] creates the named volumes used for the first time and the anonymous ones, and the
//!   result is kept in the container record as [`mounts::MountPoint`]s (what inspect shows as `Mounts`).
//! - Start → [`attach::prepare`]: local-driver mounts of option volumes, copy-up, bind sources created, and the
//!   spec's mounts. Exit → [`attach::release`] unmounts option volumes no running container uses any more.

pub mod attach;
pub mod copyup;
pub mod local;
pub mod mounts;
pub mod store;

pub use mounts::{MountKind, MountPoint};
pub use store::{Volume, VolumeStore};

use std::path::PathBuf;

/// The label Docker puts on volumes made for a container without a name; `volume prune` removes only those
/// unless `all=true`.
pub const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error(
        "{0:?} includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
    )]
    InvalidName(String),
    #[error("get {0}: no such volume")]
    NotFound(String),
    #[error("error looking up volume plugin {0}: plugin {0:?} not found (berth has only the \"local\" driver)")]
    UnknownDriver(String),
    #[error("volume {0} already exists with different options")]
    Conflict(String),
    #[error("remove {name}: volume is in use - [{}]", .users.join(", "))]
    InUse { name: String, users: Vec<String> },
    #[error("{0}")]
    InvalidOption(String),
    #[error("{0}")]
    InvalidMount(String),
    #[error("mount of volume {name}: {reason}")]
    Mount { name: String, reason: String },
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl VolumeError {
    pub(crate) fn io(op: &'static str, path: &std::path::Path) -> impl FnOnce(std::io::Error) -> VolumeError {
        let path = path.to_path_buf();
        move |source| VolumeError::Io { op, path, source }
    }
}

pub type Result<T> = std::result::Result<T, VolumeError>;
