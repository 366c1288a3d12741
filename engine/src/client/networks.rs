//! Typed network calls, named as bollard names them: `create_network`, `list_networks`, `inspect_network`,
//! `remove_network`, `connect_network`, `disconnect_network`, `prune_networks`. The orchestrator creates
//! `<project>_<key>` networks with them and finds its own by label.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Client, ClientError, Method};

/// The body of `POST /networks/create` (IPv4, bridge driver).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateNetworkOptions {
    pub name: String,
    /// Empty or `bridge`.
    pub driver: String,
    pub internal: bool,
    pub attachable: bool,
    #[serde(rename = "IPAM")]
    pub ipam: Ipam,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ipam {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub config: Vec<IpamConfig>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(default, rename = "IPRange", skip_serializing_if = "String::is_empty")]
    pub ip_range: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty", deserialize_with = "null_as_empty")]
    pub auxiliary_addresses: BTreeMap<String, String>,
}

/// A network as `GET /networks/{id}` shows it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInfo {
    pub name: String,
    pub id: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub internal: bool,
    #[serde(default, rename = "IPAM")]
    pub ipam: Ipam,
    /// Container id → its endpoint.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub containers: BTreeMap<String, NetworkContainer>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub options: BTreeMap<String, String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkContainer {
    #[serde(default)]
    pub name: String,
    #[serde(default, rename = "EndpointID")]
    pub endpoint_id: String,
    #[serde(default)]
    pub mac_address: String,
    /// `10.0.0.2/24`.
    #[serde(default, rename = "IPv4Address")]
    pub ipv4_address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateNetworkResponse {
    pub id: String,
    #[serde(default)]
    pub warning: String,
}

/// The endpoint settings of `connect_network` (`EndpointConfig`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(rename = "IPAMConfig", skip_serializing_if = "Option::is_none")]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndpointIpamConfig {
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneNetworksResponse {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub networks_deleted: Vec<String>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn with_filters(path: &str, filters: &HashMap<String, Vec<String>>) -> Result<String, ClientError> {
    if filters.is_empty() {
        return Ok(path.to_string());
    }
    let q = serde_urlencoded::to_string([("filters", serde_json::to_string(filters)?)])
        .map_err(|e| ClientError::Request(format!("{path}: {e}")))?;
    Ok(format!("{path}?{q}"))
}

impl Client {
    /// `POST /networks/create`: a name in use is a 409.
    pub async fn create_network(&self, options: &CreateNetworkOptions) -> Result<CreateNetworkResponse, ClientError> {
        self.post_json("/networks/create", options).await
    }

    /// `GET /networks?filters=` (`name`, `id`, `label`, `driver`, `type`).
    pub async fn list_networks(&self, filters: &HashMap<String, Vec<String>>) -> Result<Vec<NetworkInfo>, ClientError> {
        self.get_json(&with_filters("/networks", filters)?).await
    }

    /// `GET /networks/{id}` by id, name or id prefix.
    pub async fn inspect_network(&self, key: &str) -> Result<NetworkInfo, ClientError> {
        self.get_json(&format!("/networks/{}", segment(key))).await
    }

    /// `DELETE /networks/{id}`: 409 while containers are connected.
    pub async fn remove_network(&self, key: &str) -> Result<(), ClientError> {
        self.request(Method::DELETE, &format!("/networks/{}", segment(key)), None).await.map(drop)
    }

    /// `POST /networks/{id}/connect`: a running container gets the interface at once; every container joins it
    /// at its next start.
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        settings: &EndpointSettings,
    ) -> Result<(), ClientError> {
        let body = serde_json::json!({"Container": container, "EndpointConfig": settings});
        let path = format!("/networks/{}/connect", segment(network));
        self.request(Method::POST, &path, Some(serde_json::to_vec(&body)?)).await.map(drop)
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn disconnect_network(&self, network: &str, container: &str, force: bool) -> Result<(), ClientError> {
        let body = serde_json::json!({"Container": container, "Force": force});
        let path = format!("/networks/{}/disconnect", segment(network));
        self.request(Method::POST, &path, Some(serde_json::to_vec(&body)?)).await.map(drop)
    }

    /// `POST /networks/prune?filters=` (`label`): unused networks, `bridge` kept.
    pub async fn prune_networks(
        &self,
        filters: &HashMap<String, Vec<String>>,
    ) -> Result<PruneNetworksResponse, ClientError> {
        let raw = self.request(Method::POST, &with_filters("/networks/prune", filters)?, None).await?;
        Ok(serde_json::from_slice(&raw)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_dockers() {
        let opts = CreateNetworkOptions {
            name: "p_default".into(),
            ipam: Ipam { config: vec![IpamConfig { subnet: "10.0.0.0/24".into(), ..Default::default() }] },
            ..Default::default()
        };
        let v = serde_json::to_value(&opts).unwrap_or_default();
        assert_eq!(v["Name"], "p_default");
        assert_eq!(v["IPAM"]["Config"][0], serde_json::json!({"Subnet": "10.0.0.0/24"}));
        let ep = EndpointSettings { aliases: vec!["db".into()], ..Default::default() };
        assert_eq!(serde_json::to_value(&ep).unwrap_or_default(), serde_json::json!({"Aliases": ["db"]}));
        let info: NetworkInfo = serde_json::from_str(
            r#"{"Name":"n","Id":"abc","Driver":"bridge","IPAM":{"Driver":"default","Config":[{"Subnet":"10.0.0.0/24","Gateway":"10.0.0.1"}]},
            "Containers":{"c1":{"Name":"web","EndpointID":"e","MacAddress":"m","IPv4Address":"10.0.0.2/24","IPv6Address":""}},"Labels":null}"#,
        )
        .unwrap_or_default();
        assert_eq!(info.ipam.config[0].gateway, "10.0.0.1");
        assert_eq!(info.containers.get("c1").map(|c| c.name.as_str()), Some("web"));
    }

    #[test]
    fn filters_go_in_the_query() {
        let f = HashMap::from([("label".to_string(), vec!["a=b".to_string()])]);
        assert_eq!(
            with_filters("/networks", &f).unwrap_or_default(),
            "/networks?filters=%7B%22label%22%3A%5B%22a%3Db%22%5D%7D"
        );
        assert_eq!(with_filters("/networks", &HashMap::new()).unwrap_or_default(), "/networks");
    }
}
