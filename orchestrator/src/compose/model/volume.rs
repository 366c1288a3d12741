//! Volumes: the top-level named volumes and the mounts of a service.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::units::ByteSize;
use super::{Extensions, forms, is_false};

/// A named volume (top-level `volumes`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct VolumeConfig {
    /// The engine's name for it; by default `<project>_<key>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub driver_opts: IndexMap<String, String>,
    /// The volume exists outside the project: berth neither creates nor removes it.
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// One mount of a service. `"./data:/data:ro"` is `{type: bind, source: ./data, target: /data, read_only: true}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["type"]))]
pub struct ServiceVolumeConfig {
    #[serde(rename = "type")]
    pub kind: MountType,
    /// Host path (bind), volume name (volume) or image (image); unset for anonymous volumes and tmpfs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Path in the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// Consistency hint for bind mounts on Docker Desktop (`cached`, `delegated`, `consistent`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<ServiceVolumeBind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub volume: Option<ServiceVolumeVolume>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tmpfs: Option<ServiceVolumeTmpfs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<ServiceVolumeImage>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// What a mount mounts: a host path (`bind`), a named or anonymous `volume`, memory (`tmpfs`), a CSI `cluster`
/// volume, a Windows named pipe (`npipe`) or the content of an `image`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    #[default]
    Volume,
    Tmpfs,
    Cluster,
    Npipe,
    Image,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ServiceVolumeBind {
    /// Mount propagation: `rprivate`, `private`, `rshared`, `shared`, `rslave`, `slave`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// Create the host path when missing; unset means yes, as in compose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_host_path: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux: Option<SelinuxLabel>,
    /// Recursive read-only behaviour of submounts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recursive: Option<BindRecursive>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// SELinux relabelling of a bind mount: `z` shares the content between containers, `Z` keeps it private to
/// this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SelinuxLabel {
    #[serde(rename = "z")]
    Shared,
    #[serde(rename = "Z")]
    Private,
}

/// How a bind mount treats the mounts below its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum BindRecursive {
    Enabled,
    Disabled,
    Writable,
    Readonly,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ServiceVolumeVolume {
    /// Labels for the volume when the mount creates it.
    #[serde(skip_serializing_if = "IndexMap::is_empty", deserialize_with = "forms::dict")]
    #[schemars(schema_with = "forms::dict_schema")]
    pub labels: IndexMap<String, String>,
    /// Do not copy the image's content at the target into a new volume.
    #[serde(skip_serializing_if = "is_false")]
    pub nocopy: bool,
    /// Mount only this path inside the volume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ServiceVolumeTmpfs {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<ByteSize>,
    /// Permission bits of the tmpfs root, as a number (write `0o1777` in YAML for octal).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ServiceVolumeImage {
    /// Mount only this path of the image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}
