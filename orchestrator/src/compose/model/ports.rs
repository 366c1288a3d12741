//! `ports`: container ports published on the host.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Extensions;

/// One published port. `"127.0.0.1:8080:80/udp"` is `{host_ip: 127.0.0.1, published: "8080", target: 80,
/// protocol: udp}`; a range in the short syntax becomes one entry per port.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
#[schemars(extend("required" = ["target"]))]
pub struct ServicePortConfig {
    /// A name for the port, for humans and tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `ingress` (load balanced, the default) or `host` (one per node).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Host address to bind; unset binds every address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// The container port.
    #[schemars(range(max = 65535))]
    pub target: u32,
    /// The host port or port range (`8080`, `8000-8010`); unset picks a free port. Text, as compose keeps it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    /// `tcp` (the default), `udp` or `sctp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// The application protocol (`http`, `grpc`), a hint for tools.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
    #[serde(flatten)]
    pub extensions: Extensions,
}
