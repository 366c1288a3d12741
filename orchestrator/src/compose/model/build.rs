//! `build`: how to build a service's image.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::hosts::HostsList;
use super::limits::Ulimit;
use super::secret::ServiceFileReference;
use super::units::ByteSize;
use super::{Extensions, forms, is_false};

/// The build of a service's image. `build: ./dir` is `build: {context: ./dir}`, so `context` is always set.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["context"]))]
pub struct BuildConfig {
    /// Directory or URL of the build context.
    pub context: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    /// The Dockerfile's text, instead of a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    /// Extra privileges the build may use (`network.host`, `security.insecure`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub entitlements: Vec<String>,
    /// Build arguments; `None` is a bare name whose value was not found.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub args: IndexMap<String, Option<String>>,
    /// Provenance attestation: `true`, `false`, `mode=max`, …
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// SBOM attestation: `true`, `false`, `generator=…`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sbom: Option<String>,
    /// SSH agent sockets or keys for the build: `default` or `id=path`.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "forms::ssh_keys")]
    #[schemars(schema_with = "forms::ssh_keys_schema")]
    pub ssh: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_to: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub no_cache: bool,
    /// Build stages that must not use the cache.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "forms::string_or_list")]
    #[schemars(schema_with = "forms::string_or_list_schema")]
    pub no_cache_filter: Vec<String>,
    /// Named contexts: name → directory, URL or `docker-image://…`.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub additional_contexts: IndexMap<String, String>,
    /// Always pull the base images.
    #[serde(skip_serializing_if = "is_false")]
    pub pull: bool,
    #[serde(skip_serializing_if = "HostsList::is_empty")]
    pub extra_hosts: HostsList,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    /// Network mode of the build's RUN steps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The Dockerfile stage to build.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ServiceFileReference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    /// Further image names to tag the result with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    #[schemars(extend("propertyNames" = {"pattern": "^[a-z]+$"}))]
    pub ulimits: IndexMap<String, Ulimit>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub platforms: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(flatten)]
    pub extensions: Extensions,
}
