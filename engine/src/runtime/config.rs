//! A container's configuration as the Docker Engine API carries it (`POST /containers/create` body, the
//! `Config` and `HostConfig` of inspect). Field names are Docker's; fields berth does not act on yet are kept
//! in `extra` so inspect returns what the client sent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The `Config` part: what runs and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub attach_stdin: bool,
    #[serde(default)]
    pub attach_stdout: bool,
    #[serde(default)]
    pub attach_stderr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub tty: bool,
    #[serde(default)]
    pub open_stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    #[serde(default, deserialize_with = "null_as_default")]
    pub env: Vec<String>,
    #[serde(default, deserialize_with = "string_or_list")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Value>,
    #[serde(default)]
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub working_dir: String,
    #[serde(default, deserialize_with = "string_or_list")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<i64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The `HostConfig` part: resources, mounts, security, restart policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    #[serde(default, deserialize_with = "null_as_default")]
    pub binds: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_bindings: Option<Value>,
    #[serde(default)]
    pub restart_policy: RestartPolicy,
    #[serde(default)]
    pub auto_remove: bool,
    #[serde(default)]
    pub privileged: bool,
    #[serde(default)]
    pub readonly_rootfs: bool,
    #[serde(default, rename = "CapAdd", deserialize_with = "null_as_default")]
    pub cap_add: Vec<String>,
    #[serde(default, rename = "CapDrop", deserialize_with = "null_as_default")]
    pub cap_drop: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub security_opt: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<bool>,
    #[serde(default)]
    pub memory: i64,
    #[serde(default)]
    pub memory_reservation: i64,
    #[serde(default)]
    pub memory_swap: i64,
    #[serde(default)]
    pub nano_cpus: i64,
    #[serde(default)]
    pub cpu_shares: i64,
    #[serde(default)]
    pub cpu_period: i64,
    #[serde(default)]
    pub cpu_quota: i64,
    #[serde(default)]
    pub cpuset_cpus: String,
    #[serde(default)]
    pub cpuset_mems: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    #[serde(default)]
    pub shm_size: i64,
    #[serde(default, deserialize_with = "null_as_default")]
    pub sysctls: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub tmpfs: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub ulimits: Vec<Ulimit>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub devices: Vec<DeviceMapping>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub mounts: Vec<Mount>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub volumes_from: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_config: Option<LogConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipc_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uts_mode: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub extra_hosts: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub dns: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub dns_search: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub dns_options: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// "", "no", "always", "on-failure", "unless-stopped".
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    /// Checked as Docker checks it: a known name, and a retry count only with on-failure.
    pub fn validate(&self) -> Result<(), String> {
        match self.name.as_str() {
            "" | "no" | "always" | "unless-stopped" if self.maximum_retry_count != 0 => {
                Err(format!("maximum retry count cannot be used with restart policy '{}'", self.name))
            }
            "" | "no" | "always" | "unless-stopped" | "on-failure" if self.maximum_retry_count >= 0 => Ok(()),
            "on-failure" => Err("maximum retry count cannot be negative".into()),
            other => Err(format!("invalid restart policy '{other}'")),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeviceMapping {
    pub path_on_host: String,
    #[serde(default)]
    pub path_in_container: String,
    #[serde(default)]
    pub cgroup_permissions: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Mount {
    /// "bind", "volume", "tmpfs".
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default)]
    pub source: String,
    pub target: String,
    #[serde(default)]
    pub read_only: bool,
    #[serde(flatten)]
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LogConfig {
    #[serde(rename = "Type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub config: BTreeMap<String, String>,
}

/// The body of `POST /containers/create`: `Config` fields at the top level, plus `HostConfig` and
/// `NetworkingConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CreateBody {
    #[serde(flatten)]
    pub config: ContainerConfig,
    #[serde(rename = "HostConfig", default)]
    pub host_config: HostConfig,
    #[serde(rename = "NetworkingConfig", default, skip_serializing_if = "Option::is_none")]
    pub networking_config: Option<Value>,
}

/// Docker clients send `null` for empty lists and maps.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// `Cmd` and `Entrypoint` may be a string (old API versions) or a list; `null` is unset.
fn string_or_list<'de, D>(d: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<Form>::deserialize(d)? {
        None => None,
        Some(Form::One(s)) => Some(vec![s]),
        Some(Form::Many(v)) => Some(v),
    })
}

/// Parse a create body, naming the field that is wrong (`HostConfig.Memory: invalid type: …`).
pub fn parse_create_body(bytes: &[u8]) -> Result<CreateBody, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(CreateBody::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        if path == "." { e.inner().to_string() } else { format!("{path}: {}", e.inner()) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_cli_body_parses() {
        let body = br#"{"Hostname":"","User":"","AttachStdout":true,"Tty":false,"Env":null,"Cmd":["sleep","1000"],
            "Image":"busybox","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{"a":"b"},
            "HostConfig":{"Binds":null,"NetworkMode":"none","RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},
            "AutoRemove":false,"CapAdd":null,"Memory":1048576,"Ulimits":null,"Mounts":[{"Type":"tmpfs","Target":"/t"}]},
            "NetworkingConfig":{"EndpointsConfig":{}}}"#;
        let b = parse_create_body(body).unwrap_or_default();
        assert_eq!(b.config.cmd, Some(vec!["sleep".to_string(), "1000".to_string()]));
        assert_eq!(b.config.image, "busybox");
        assert_eq!(b.host_config.memory, 1_048_576);
        assert_eq!(b.host_config.restart_policy.name, "on-failure");
        assert_eq!(b.host_config.mounts[0].kind, "tmpfs");
        assert!(b.config.extra.contains_key("OnBuild"));
    }

    #[test]
    fn bad_fields_are_named() {
        let e = parse_create_body(br#"{"Image":"x","HostConfig":{"Memory":"lots"}}"#).err().unwrap_or_default();
        assert!(e.starts_with("HostConfig.Memory:"), "{e}");
        assert!(parse_create_body(b"{not json").is_err());
    }

    #[test]
    fn restart_policies() {
        let p = |n: &str, c| RestartPolicy { name: n.into(), maximum_retry_count: c };
        assert!(p("on-failure", 3).validate().is_ok());
        assert!(p("always", 3).validate().is_err());
        assert!(p("sometimes", 0).validate().is_err());
        assert!(p("", 0).validate().is_ok());
    }
}
