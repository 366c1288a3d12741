//! `develop`: what `watch` does when source files change.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::hooks::ServiceHook;
use super::{Extensions, forms, is_false};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct DevelopConfig {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<WatchRule>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// One watched path and the action a change triggers.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["path", "action"]))]
pub struct WatchRule {
    /// Path on the host to watch.
    pub path: String,
    pub action: WatchAction,
    /// Path in the container that `sync` copies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The command `sync+exec` runs after syncing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<ServiceHook>,
    /// Patterns (relative to `path`) whose changes are ignored.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "forms::string_or_list")]
    #[schemars(schema_with = "forms::string_or_list_schema")]
    pub ignore: Vec<String>,
    /// Patterns (relative to `path`) whose changes count; unset is every file.
    #[serde(skip_serializing_if = "Vec::is_empty", deserialize_with = "forms::string_or_list")]
    #[schemars(schema_with = "forms::string_or_list_schema")]
    pub include: Vec<String>,
    /// Sync the whole path once when watching starts.
    #[serde(skip_serializing_if = "is_false")]
    pub initial_sync: bool,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// What a change triggers: `rebuild` the image and recreate the containers, `sync` the changed files into the
/// running containers, `restart` them, or sync and then restart (`sync+restart`) or run `exec` (`sync+exec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
pub enum WatchAction {
    #[default]
    #[serde(rename = "rebuild")]
    Rebuild,
    #[serde(rename = "sync")]
    Sync,
    #[serde(rename = "restart")]
    Restart,
    #[serde(rename = "sync+restart")]
    SyncRestart,
    #[serde(rename = "sync+exec")]
    SyncExec,
}
