//! The typed compose model: a project in its canonical form.
//!
//! The loader rewrites every short syntax to the long form before decoding, so these types hold one shape per
//! attribute (`environment` is always a mapping, `ports` always a list of [`ServicePortConfig`], …): the shape
//! `docker compose config` prints, after compose-go's `types` package. Serializing a [`Project`] gives that output;
//! the JSON Schema berth validates with (`schema.rs`) is generated from these types, so the schema and the decoder
//! cannot disagree.
//!
//! Conventions: optional values are `Option` and left out when unset; lists and mappings are left out when empty;
//! flags whose default is `false` are `bool` and left out when false. Mappings keep the file's order (`IndexMap`).
//! Objects where the Compose Specification allows `x-` extension keys carry them in `extensions`. Enum variants
//! carry no doc comments (the enum's comment describes them): with them schemars writes a `oneOf` of constants
//! instead of an `enum`, which makes validation messages worse.

mod ai_model;
mod build;
mod deploy;
mod develop;
mod device;
mod forms;
mod healthcheck;
mod hooks;
mod hosts;
mod limits;
mod network;
mod options;
mod ports;
mod secret;
mod service;
pub mod units;
mod volume;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

pub use ai_model::{ModelConfig, ServiceModelConfig};
pub use build::BuildConfig;
pub use deploy::{
    DeployConfig, DiscreteGenericResource, GenericResource, Placement, PlacementPreference, ResourceLimits,
    ResourceReservations, Resources, RestartPolicy, UpdateConfig, UpdateOrder,
};
pub use develop::{DevelopConfig, WatchAction, WatchRule};
pub use device::{DeviceCount, DeviceMapping, DeviceRequest};
pub use healthcheck::HealthCheckConfig;
pub use hooks::{PreStartHook, ServiceHook};
pub use hosts::HostsList;
pub use limits::{BlkioConfig, ThrottleDevice, Ulimit, WeightDevice};
pub use network::{IpamConfig, IpamPool, NetworkConfig, ServiceNetworkConfig};
pub use options::{
    CredentialSpecConfig, DependencyCondition, EnvFile, ExtendsConfig, LoggingConfig, ProviderConfig, ServiceDependency,
};
pub use ports::ServicePortConfig;
pub use secret::{ConfigObjConfig, SecretConfig, ServiceFileReference};
pub use service::{CgroupMode, Service};
pub use units::{ByteSize, Duration, FileMode};
pub use volume::{
    BindRecursive, MountType, SelinuxLabel, ServiceVolumeBind, ServiceVolumeConfig, ServiceVolumeImage,
    ServiceVolumeTmpfs, ServiceVolumeVolume, VolumeConfig,
};

/// `x-` keys of an object, with their values as written. The schema admits only `x-` keys here.
pub type Extensions = IndexMap<String, serde_json::Value>;

/// Names of services, networks, volumes, secrets, configs and models, as the Compose Specification allows them.
pub const NAME_PATTERN: &str = "^[a-zA-Z0-9._-]+$";

/// A compose project: the merge of its files, in canonical form.
///
/// `version` (obsolete) is accepted and dropped; `include` is resolved by the loader before decoding.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct Project {
    /// The project name, which prefixes the names of everything berth creates. The loader always sets it (from
    /// `-p`, `COMPOSE_PROJECT_NAME`, the top-level `name` or the directory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": NAME_PATTERN}))]
    pub services: IndexMap<String, Service>,
    /// Network keys are free-form in the spec (only the engine-side `name` must be valid for the engine).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, NetworkConfig>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": NAME_PATTERN}))]
    pub volumes: IndexMap<String, VolumeConfig>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": NAME_PATTERN}))]
    pub secrets: IndexMap<String, SecretConfig>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": NAME_PATTERN}))]
    pub configs: IndexMap<String, ConfigObjConfig>,
    /// AI models services can use.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub models: IndexMap<String, ModelConfig>,
    #[serde(flatten, deserialize_with = "only_extensions")]
    pub extensions: Extensions,
}

/// Keep the `x-` keys of the top level: other unknown keys (`version`) are dropped, not carried as extensions.
fn only_extensions<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Extensions, D::Error> {
    let mut all = Extensions::deserialize(deserializer)?;
    all.retain(|key, _| key.starts_with("x-"));
    Ok(all)
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

pub(crate) fn default_true() -> bool {
    true
}

#[cfg(test)]
pub(crate) mod tests;
