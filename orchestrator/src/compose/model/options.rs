//! Small service attributes with a structure of their own: dependencies, env files, logging, provider, …

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Extensions, forms, is_false};

/// How a service waits for one of its dependencies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["condition"]))]
pub struct ServiceDependency {
    /// What "ready" means for the dependency.
    pub condition: DependencyCondition,
    /// Restart this service when the dependency is updated.
    #[serde(skip_serializing_if = "is_false")]
    pub restart: bool,
    /// A missing or failed optional dependency only warns. Printed always, as compose does.
    #[serde(default = "super::default_true")]
    pub required: bool,
    #[serde(flatten)]
    pub extensions: Extensions,
}

impl Default for ServiceDependency {
    fn default() -> Self {
        ServiceDependency {
            condition: DependencyCondition::default(),
            restart: false,
            required: true,
            extensions: Extensions::new(),
        }
    }
}

/// The state a dependency must reach before the dependent starts: its containers run (`service_started`), its
/// healthcheck passes (`service_healthy`), or it ran to completion with exit code 0
/// (`service_completed_successfully`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DependencyCondition {
    #[default]
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

/// A file of `KEY=value` lines that feeds `environment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["path"]))]
pub struct EnvFile {
    pub path: String,
    /// A missing optional file is skipped. Printed always, as compose does.
    #[serde(default = "super::default_true")]
    pub required: bool,
    /// The file's syntax; unset is compose's dotenv format.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

impl Default for EnvFile {
    fn default() -> Self {
        EnvFile { path: String::new(), required: true, format: None }
    }
}

/// `extends`: the service (in this file or `file`) this one is based on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["service"]))]
pub struct ExtendsConfig {
    pub service: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct LoggingConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver options; `None` leaves an option at the driver's default.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub options: IndexMap<String, Option<String>>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// Windows group managed service account credentials.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct CredentialSpecConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A service managed by an external provider (a plugin binary) rather than by containers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["type"]))]
pub struct ProviderConfig {
    /// The provider: a plugin name or binary.
    #[serde(rename = "type")]
    pub kind: String,
    /// Options passed to the provider; each may repeat, so each holds a list.
    #[serde(skip_serializing_if = "IndexMap::is_empty", deserialize_with = "forms::options_lists")]
    #[schemars(schema_with = "forms::options_lists_schema")]
    pub options: IndexMap<String, Vec<String>>,
    #[serde(flatten)]
    pub extensions: Extensions,
}
