//! The Docker `/networks` API over berth-netd: list (filters name, id, label, driver, type), inspect, create,
//! remove, connect, disconnect and prune. `host` and `none` are modes, shown as Docker shows them; `bridge`
//! is a berth-netd network made on first use ([`crate::network`]).

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use berth_netd::api::{IpamRequest, Network, NetworkCreate};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::containers::parse_filters;
use super::error::{ApiError, ApiResult};
use crate::network::{NetworkError, docker, plan};
use crate::runtime::record::{ContainerRecord, Status};

impl From<NetworkError> for ApiError {
    fn from(e: NetworkError) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError::new(status, e.to_string())
    }
}

type Params = Query<HashMap<String, String>>;

/// `POST /networks/create`, as the docker CLI and compose send it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    /// Docker ≥ 25 always checks; kept for older clients (names are unique either way).
    #[allow(dead_code)]
    check_duplicate: Option<bool>,
    driver: Option<String>,
    internal: bool,
    attachable: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    options: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    driver: Option<String>,
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: Option<String>,
    #[serde(rename = "IPRange")]
    ip_range: Option<String>,
    gateway: Option<String>,
    auxiliary_addresses: Option<BTreeMap<String, String>>,
}

/// `POST /networks/{id}/connect`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectBody {
    container: String,
    endpoint_config: Option<Value>,
}

/// `POST /networks/{id}/disconnect`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DisconnectBody {
    container: String,
    force: bool,
}

/// A JSON body, naming the field that is wrong.
fn parse<T: for<'de> Deserialize<'de> + Default>(bytes: &[u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        ApiError::bad_request(if path == "." { e.inner().to_string() } else { format!("{path}: {}", e.inner()) })
    })
}

fn name_of(state: &AppState) -> impl Fn(&str) -> Option<String> + '_ {
    move |id: &str| state.containers.get(id).ok().map(|r| r.name)
}

fn not_found(key: &str) -> ApiError {
    ApiError::not_found(format!("network {key} not found"))
}

/// A netd network by id, name or prefix (`bridge` made on first use); 404 names the key.
async fn lookup(state: &AppState, key: &str) -> ApiResult<Network> {
    state.runtime.network.network(key).await.map_err(|e| match e {
        NetworkError::Netd { status: 404, .. } => not_found(key),
        e => e.into(),
    })
}

/// Docker's network filters; values of one key are alternatives, keys all apply.
fn matches(v: &Value, builtin: bool, filters: &HashMap<String, Vec<String>>) -> bool {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    filters.iter().all(|(key, values)| {
        values.iter().any(|f| match key.as_str() {
            "name" => s("Name").contains(f.as_str()),
            "id" => s("Id").starts_with(f.as_str()),
            "driver" => s("Driver") == *f,
            "type" => (f == "builtin") == builtin && matches!(f.as_str(), "builtin" | "custom"),
            "scope" => f == "local",
            "label" => {
                let labels = v.get("Labels");
                match f.split_once('=') {
                    Some((k, val)) => labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(val),
                    None => labels.and_then(|l| l.get(f.as_str())).is_some(),
                }
            }
            _ => true,
        })
    })
}

/// `GET /networks?filters=`.
pub async fn list(State(state): State<AppState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let filters = parse_filters(params.get("filters"))?;
    for key in filters.keys() {
        if !matches!(key.as_str(), "name" | "id" | "label" | "driver" | "type" | "scope" | "dangling") {
            return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
        }
    }
    let net = &state.runtime.network;
    let networks = net.client().list_networks().await.map_err(|e| ApiError::from(net.error(e)))?;
    let names = name_of(&state);
    let mut out: Vec<Value> = Vec::new();
    // The default bridge is listed as Docker lists it, but made (a kernel bridge, a subnet) only when a container
    // or an inspect needs it: listing must not leave a bridge behind on a host that never uses it.
    if !networks.iter().any(|n| n.name == plan::DEFAULT_NETWORK) {
        let mut v = docker::predefined_json(plan::DEFAULT_NETWORK);
        v["Driver"] = json!("bridge");
        v["EnableIPv4"] = json!(true);
        if matches(&v, true, &filters) {
            out.push(v);
        }
    }
    for n in &networks {
        let v = docker::network_json(n, &names);
        if matches(&v, n.name == plan::DEFAULT_NETWORK, &filters) {
            out.push(v);
        }
    }
    for name in docker::PREDEFINED_MODES {
        let v = docker::predefined_json(name);
        if matches(&v, true, &filters) {
            out.push(v);
        }
    }
    Ok(Json(Value::Array(out)))
}

/// `GET /networks/{id}`.
pub async fn inspect(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    if let Some(name) = docker::predefined(&id) {
        return Ok(Json(docker::predefined_json(name)));
    }
    let n = lookup(&state, &id).await?;
    Ok(Json(docker::network_json(&n, &name_of(&state))))
}

/// `POST /networks/create`.
pub async fn create(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let body: CreateBody = parse(&body)?;
    let req = create_request(body)?;
    let created =
        state.runtime.network.client().create_network(&req).await.map_err(|e| state.runtime.network.error(e))?;
    Ok((StatusCode::CREATED, Json(json!({"Id": created.id, "Warning": ""}))).into_response())
}

/// The Docker body as berth-netd's request; what netd cannot do (IPv6, other drivers) is a 400 here.
fn create_request(body: CreateBody) -> ApiResult<NetworkCreate> {
    if body.name.trim().is_empty() {
        return Err(ApiError::bad_request("Name: a network needs a name"));
    }
    if docker::is_builtin(&body.name) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{} is a pre-defined network and cannot be created", body.name),
        ));
    }
    let driver = body.driver.unwrap_or_default();
    if !driver.is_empty() && driver != "bridge" {
        return Err(ApiError::bad_request(format!("Driver: berth-netd has only the bridge driver, not {driver:?}")));
    }
    if body.enable_ipv6 == Some(true) {
        return Err(ApiError::bad_request("EnableIPv6: berth-netd networks are IPv4 only"));
    }
    let ipam = body.ipam.unwrap_or_default();
    if let Some(d) = ipam.driver.as_deref().filter(|d| !d.is_empty() && *d != "default") {
        return Err(ApiError::bad_request(format!("IPAM.Driver: only the default IPAM driver exists, not {d:?}")));
    }
    let configs = ipam.config.unwrap_or_default();
    if configs.iter().any(|c| c.subnet.as_deref().is_some_and(|s| s.contains(':'))) {
        return Err(ApiError::bad_request("IPAM.Config: berth-netd networks are IPv4 only"));
    }
    if configs.len() > 1 {
        return Err(ApiError::bad_request("IPAM.Config: berth-netd networks have one IPv4 subnet"));
    }
    let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let ipam = configs
        .into_iter()
        .next()
        .map(|c| IpamRequest {
            subnet: nonempty(c.subnet),
            ip_range: nonempty(c.ip_range),
            gateway: nonempty(c.gateway),
            aux_addresses: c.auxiliary_addresses.unwrap_or_default(),
        })
        .unwrap_or_default();
    let mut options = body.options.unwrap_or_default();
    if body.attachable {
        options.insert("berth.attachable".into(), "true".into());
    }
    Ok(NetworkCreate {
        name: body.name,
        driver: "bridge".into(),
        internal: body.internal,
        ipam,
        labels: body.labels.unwrap_or_default(),
        options,
    })
}

/// `DELETE /networks/{id}`: 409 while containers are connected.
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    if let Some(name) = docker::predefined(&id) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{name} is a pre-defined network and cannot be removed"),
        ));
    }
    let n = lookup(&state, &id).await?;
    if n.name == plan::DEFAULT_NETWORK {
        return Err(ApiError::new(StatusCode::FORBIDDEN, "bridge is a pre-defined network and cannot be removed"));
    }
    if !n.endpoints.is_empty() {
        let names: Vec<String> = n.endpoints.keys().map(|c| name_of(&state)(c).unwrap_or_else(|| c.clone())).collect();
        return Err(ApiError::conflict(format!(
            "error while removing network: network {} has active endpoints (containers: {})",
            n.name,
            names.join(", ")
        )));
    }
    state.runtime.network.client().remove_network(&n.id).await.map_err(|e| state.runtime.network.error(e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn running(r: &ContainerRecord) -> bool {
    matches!(r.state.status, Status::Running | Status::Paused)
}

/// `POST /networks/{id}/connect`: a running container gets the interface now; every container keeps the
/// network in its `NetworkingConfig`, so its next start joins it again.
pub async fn connect(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let body: ConnectBody = parse(&body)?;
    if docker::predefined(&id).is_some() {
        return Err(ApiError::bad_request(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    let record = state.containers.get(&body.container)?;
    let network = lookup(&state, &id).await?;
    let settings = body.endpoint_config.unwrap_or(Value::Null);
    let endpoint = plan::endpoint(&network.name, Some(&settings)).map_err(ApiError::bad_request)?;
    // The container's networks with this one added must still make sense (not with host, none, container:).
    let mut networking = record.networking_config.clone().unwrap_or_else(|| json!({}));
    if !networking.get("EndpointsConfig").is_some_and(Value::is_object) {
        networking["EndpointsConfig"] = json!({});
    }
    networking["EndpointsConfig"][&network.name] = settings;
    plan::plan(record.host_config.network_mode.as_deref(), Some(&networking)).map_err(ApiError::bad_request)?;
    if running(&record) {
        state.runtime.network.connect_running(&state.containers.container_dir(&record.id), &record, &endpoint).await?;
    }
    state.containers.update(&record.id, |r| r.networking_config = Some(networking))?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /networks/{id}/disconnect`; `Force` also removes an endpoint whose container berthd does not know.
pub async fn disconnect(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let body: DisconnectBody = parse(&body)?;
    if docker::predefined(&id).is_some() {
        return Err(ApiError::bad_request(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    let network = lookup(&state, &id).await?;
    let net = &state.runtime.network;
    let record = match state.containers.get(&body.container) {
        Ok(r) => r,
        Err(_) if body.force => {
            net.client().disconnect(&network.id, &body.container).await.map_err(|e| net.error(e))?;
            return Ok(StatusCode::OK.into_response());
        }
        Err(e) => return Err(e.into()),
    };
    let mut found = running(&record)
        && net.disconnect_running(&state.containers.container_dir(&record.id), &record, &network).await?;
    let mut networking = record.networking_config.clone().unwrap_or(Value::Null);
    if let Some(map) = networking.get_mut("EndpointsConfig").and_then(Value::as_object_mut) {
        found |= map.remove(&network.name).is_some() | map.remove(&network.id).is_some();
    }
    let mode = record.host_config.network_mode.as_deref().unwrap_or("");
    let mode_network = if mode.is_empty() || mode == "default" { plan::DEFAULT_NETWORK } else { mode };
    found |= mode_network == network.name || mode_network == network.id;
    if !found {
        return Err(ApiError::not_found(format!(
            "container {} is not connected to network {}",
            record.name, network.name
        )));
    }
    state.containers.update(&record.id, |r| {
        r.networking_config = Some(networking);
        // Leaving the mode's own network leaves the container without networks, as Docker's `none`.
        if mode_network == network.name || mode_network == network.id {
            r.host_config.network_mode = Some("none".into());
        }
    })?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /networks/prune`: networks without endpoints (never `bridge`), narrowed by `label` filters.
pub async fn prune(State(state): State<AppState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let filters = parse_filters(params.get("filters"))?;
    let net = &state.runtime.network;
    let networks = net.client().list_networks().await.map_err(|e| ApiError::from(net.error(e)))?;
    let names = name_of(&state);
    let mut deleted = Vec::new();
    for n in networks {
        if n.name == plan::DEFAULT_NETWORK || !n.endpoints.is_empty() {
            continue;
        }
        let labels_only: HashMap<String, Vec<String>> =
            filters.iter().filter(|(k, _)| k.as_str() == "label").map(|(k, v)| (k.clone(), v.clone())).collect();
        if !matches(&docker::network_json(&n, &names), false, &labels_only) {
            continue;
        }
        match net.client().remove_network(&n.id).await {
            Ok(()) => deleted.push(n.name),
            // Someone connected meanwhile: not unused any more.
            Err(e) if e.status() == Some(409) => {}
            Err(e) => return Err(net.error(e).into()),
        }
    }
    Ok(Json(json!({"NetworksDeleted": deleted})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> CreateBody {
        parse(json.as_bytes()).unwrap_or_default()
    }

    #[test]
    fn docker_cli_create_bodies_map_to_netd_requests() {
        let req = create_request(body(
            r#"{"Name":"front","CheckDuplicate":true,"Driver":"bridge","EnableIPv6":false,
            "IPAM":{"Driver":"default","Options":{},"Config":[{"Subnet":"10.215.9.0/24","IPRange":"10.215.9.128/25",
            "Gateway":"10.215.9.1","AuxiliaryAddresses":{"r":"10.215.9.2"}}]},"Internal":true,"Attachable":false,
            "Options":{"com.docker.network.driver.mtu":"1400"},"Labels":{"a":"b"}}"#,
        ))
        .unwrap_or_default();
        assert_eq!(req.name, "front");
        assert!(req.internal);
        assert_eq!(req.ipam.subnet.as_deref(), Some("10.215.9.0/24"));
        assert_eq!(req.ipam.ip_range.as_deref(), Some("10.215.9.128/25"));
        assert_eq!(req.ipam.aux_addresses.get("r").map(String::as_str), Some("10.215.9.2"));
        assert_eq!(req.options.get("com.docker.network.driver.mtu").map(String::as_str), Some("1400"));
        assert_eq!(req.labels.get("a").map(String::as_str), Some("b"));
        let auto = create_request(body(r#"{"Name":"x","IPAM":{"Config":[]}}"#)).unwrap_or_default();
        assert_eq!(auto.ipam, IpamRequest::default());
    }

    #[test]
    fn what_netd_cannot_do_is_a_400_naming_the_field() {
        let status = |json: &str| create_request(body(json)).err().map(|e| (e.status.as_u16(), e.message));
        for (json, field) in [
            (r#"{"Name":""}"#, "Name"),
            (r#"{"Name":"x","Driver":"overlay"}"#, "Driver"),
            (r#"{"Name":"x","EnableIPv6":true}"#, "EnableIPv6"),
            (r#"{"Name":"x","IPAM":{"Config":[{"Subnet":"fd00::/64"}]}}"#, "IPAM.Config"),
            (r#"{"Name":"x","IPAM":{"Driver":"dhcp"}}"#, "IPAM.Driver"),
        ] {
            let (code, message) = status(json).unwrap_or_default();
            assert_eq!(code, 400, "{json}");
            assert!(message.starts_with(field), "{json}: {message}");
        }
        assert_eq!(status(r#"{"Name":"bridge"}"#).map(|s| s.0), Some(403));
        let e = parse::<CreateBody>(br#"{"Name":5}"#).err().map(|e| e.message).unwrap_or_default();
        assert!(e.starts_with("Name:"), "{e}");
    }

    #[test]
    fn filters_match_like_docker() {
        let v = json!({"Name": "proj_default", "Id": "abcdef", "Driver": "bridge", "Labels": {"a": "b"}});
        let f = |k: &str, vals: &[&str]| HashMap::from([(k.to_string(), vals.iter().map(|s| s.to_string()).collect())]);
        assert!(matches(&v, false, &f("name", &["proj"])));
        assert!(!matches(&v, false, &f("name", &["other"])));
        assert!(matches(&v, false, &f("id", &["abc"])));
        assert!(matches(&v, false, &f("label", &["a=b"])) && matches(&v, false, &f("label", &["a"])));
        assert!(!matches(&v, false, &f("label", &["a=c"])));
        assert!(matches(&v, false, &f("type", &["custom"])) && !matches(&v, false, &f("type", &["builtin"])));
        assert!(matches(&v, true, &f("type", &["builtin"])));
        assert!(matches(&v, false, &f("driver", &["bridge"])));
    }
}
