//! Kernel resource limits of a container: ulimits and block IO.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Extensions;
use super::units::ByteSize;

/// One `ulimit`. `nofile: 1024` is `{soft: 1024, hard: 1024}`; `-1` is unlimited.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["soft", "hard"]))]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// Block IO weights and throttles (cgroup `io`/`blkio`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct BlkioConfig {
    /// Relative weight (the engine takes 10 to 1000; 0 leaves the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    /// Bytes per second read from a device.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    /// Operations per second read from a device.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
}

/// The weight of one device.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// A rate limit on one device: bytes (`10mb`) or operations per second.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: ByteSize,
}
