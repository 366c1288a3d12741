//! `healthcheck`: the command that tells whether a container works, which `service_healthy` waits for.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::units::Duration;
use super::{Extensions, is_false};

/// The health check of a service's containers; unset fields keep the image's `HEALTHCHECK` values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct HealthCheckConfig {
    /// `[CMD, args…]`, `[CMD-SHELL, line]` or `[NONE]`; a string `line` is `[CMD-SHELL, line]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub test: Option<Vec<String>>,
    /// How long one check may run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Time between checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    /// Consecutive failures that make the container unhealthy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Grace period after start when failures do not count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    /// Time between checks during the start period.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    /// Turn off the image's health check.
    #[serde(skip_serializing_if = "is_false")]
    pub disable: bool,
    #[serde(flatten)]
    pub extensions: Extensions,
}
