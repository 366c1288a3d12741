//! Devices: host device nodes mapped into a container, and requests for devices by capability (GPUs).

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Extensions, forms};

/// A host device node in the container. `/dev/a:/dev/b:r` is `{source: /dev/a, target: /dev/b,
/// permissions: r}`; the short syntax fills in `target` (same path) and `permissions` (`rwm`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["source"]))]
pub struct DeviceMapping {
    /// Path on the host, or a CDI device name (`vendor.com/class=name`).
    pub source: String,
    /// Path in the container; unset is the same as `source`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// cgroup permissions: any of `r`, `w`, `m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub permissions: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A request for devices by driver and capabilities (`deploy.resources.reservations.devices`, `gpus`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct DeviceRequest {
    /// Capabilities the devices must all have (`gpu`, `compute`, `utility`, …).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// How many devices; unset with no `device_ids` means all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<DeviceCount>,
    /// Specific devices, exclusive with `count`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Driver-specific options.
    #[serde(skip_serializing_if = "IndexMap::is_empty", deserialize_with = "forms::dict")]
    #[schemars(schema_with = "forms::dict_schema")]
    pub options: IndexMap<String, String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}

/// A number of devices, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCount {
    All,
    Count(u64),
}

impl Serialize for DeviceCount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            DeviceCount::All => serializer.serialize_str("all"),
            DeviceCount::Count(n) => serializer.serialize_u64(*n),
        }
    }
}

impl<'de> Deserialize<'de> for DeviceCount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CountVisitor;

        impl Visitor<'_> for CountVisitor {
            type Value = DeviceCount;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of devices or `all`")
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DeviceCount, E> {
                Ok(DeviceCount::Count(v))
            }

            // compose-go writes "all" as -1.
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DeviceCount, E> {
                match u64::try_from(v) {
                    Ok(n) => Ok(DeviceCount::Count(n)),
                    Err(_) if v == -1 => Ok(DeviceCount::All),
                    Err(_) => Err(E::custom(format!("invalid device count {v}"))),
                }
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<DeviceCount, E> {
                if v.eq_ignore_ascii_case("all") {
                    return Ok(DeviceCount::All);
                }
                v.parse::<i64>()
                    .map_err(|_| E::custom(format!("invalid device count {v:?}: expected a number or `all`")))
                    .and_then(|n| self.visit_i64(n))
            }
        }

        deserializer.deserialize_any(CountVisitor)
    }
}

impl JsonSchema for DeviceCount {
    fn schema_name() -> Cow<'static, str> {
        "DeviceCount".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": ["integer", "string"],
            "minimum": -1,
            "pattern": "^([aA][lL][lL]|-?[0-9]+)$",
            "description": "A number of devices, or `all`.",
        })
    }
}
