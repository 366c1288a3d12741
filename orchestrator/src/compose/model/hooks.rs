//! Lifecycle hooks: commands run around a service's containers (`pre_start`, `post_start`, `pre_stop`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Extensions, forms, is_false};

/// A command run inside a service's container at a lifecycle event (`post_start`, `pre_stop`, `develop.watch`
/// `exec`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["command"]))]
pub struct ServiceHook {
    /// The command; a string is split as a shell would.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "forms::command")]
    #[schemars(schema_with = "forms::command_schema")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Variables added to the container's for this command; `None` is an unresolved bare name.
    #[serde(skip_serializing_if = "IndexMap::is_empty", deserialize_with = "forms::dict_opt")]
    #[schemars(schema_with = "forms::dict_opt_schema")]
    pub environment: IndexMap<String, Option<String>>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// An init step run to completion in its own short-lived container before the service's containers start; a
/// non-zero exit fails the start of the service and of its dependents.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct PreStartHook {
    /// The command; unset runs the image's default command.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "forms::command")]
    #[schemars(schema_with = "forms::command_schema")]
    pub command: Option<Vec<String>>,
    /// The image to run; unset uses the service's image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty", deserialize_with = "forms::dict_opt")]
    #[schemars(schema_with = "forms::dict_opt_schema")]
    pub environment: IndexMap<String, Option<String>>,
    /// Run the step once per replica instead of once per service.
    #[serde(skip_serializing_if = "is_false")]
    pub per_replica: bool,
    #[serde(flatten)]
    pub extensions: Extensions,
}
