//! Typed volume calls, named as bollard names them: `create_volume`, `list_volumes`, `inspect_volume`,
//! `remove_volume`, `prune_volumes`. The orchestrator creates `<project>_<key>` volumes with them and finds its
//! own by label.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Client, ClientError, Method};

/// The body of `POST /volumes/create`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateVolumeOptions {
    /// Empty: berthd picks a 64-hex name.
    pub name: String,
    /// Empty or `local`.
    pub driver: String,
    pub driver_opts: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
}

/// A volume as `GET /volumes/{name}` shows it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeInfo {
    pub name: String,
    #[serde(default)]
    pub driver: String,
    #[serde(default)]
    pub mountpoint: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub scope: String,
    #[serde(default)]
    pub created_at: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListVolumesResponse {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub volumes: Vec<VolumeInfo>,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PruneVolumesResponse {
    #[serde(default, deserialize_with = "null_as_empty")]
    pub volumes_deleted: Vec<String>,
    #[serde(default)]
    pub space_reclaimed: u64,
}

/// `filters` as Docker takes them: `{"label": ["a=b"], "dangling": ["true"]}`.
#[derive(Debug, Clone, Default)]
pub struct ListVolumesOptions {
    pub filters: HashMap<String, Vec<String>>,
}

fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn with_query(path: &str, params: &[(&str, String)]) -> Result<String, ClientError> {
    let q = serde_urlencoded::to_string(params).map_err(|e| ClientError::Request(format!("{path}: {e}")))?;
    Ok(if q.is_empty() { path.to_string() } else { format!("{path}?{q}") })
}

fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn filters_param(filters: &HashMap<String, Vec<String>>) -> Result<Vec<(&'static str, String)>, ClientError> {
    Ok(if filters.is_empty() { Vec::new() } else { vec![("filters", serde_json::to_string(filters)?)] })
}

impl Client {
    /// `POST /volumes/create`: the volume, new or the existing one of that name with the same options.
    pub async fn create_volume(&self, options: &CreateVolumeOptions) -> Result<VolumeInfo, ClientError> {
        self.post_json("/volumes/create", options).await
    }

    /// `GET /volumes?filters=`.
    pub async fn list_volumes(&self, options: Option<ListVolumesOptions>) -> Result<ListVolumesResponse, ClientError> {
        let params = filters_param(&options.unwrap_or_default().filters)?;
        self.get_json(&with_query("/volumes", &params)?).await
    }

    /// `GET /volumes/{name}`.
    pub async fn inspect_volume(&self, name: &str) -> Result<VolumeInfo, ClientError> {
        self.get_json(&format!("/volumes/{}", segment(name))).await
    }

    /// `DELETE /volumes/{name}?force=`; a volume a container uses is a 409 naming the containers.
    pub async fn remove_volume(&self, name: &str, force: bool) -> Result<(), ClientError> {
        let params: Vec<(&str, String)> = if force { vec![("force", "1".into())] } else { Vec::new() };
        let path = with_query(&format!("/volumes/{}", segment(name)), &params)?;
        self.request(Method::DELETE, &path, None).await.map(drop)
    }

    /// `POST /volumes/prune?filters=`: unused anonymous volumes, or every unused one with `all=true`.
    pub async fn prune_volumes(
        &self,
        filters: Option<HashMap<String, Vec<String>>>,
    ) -> Result<PruneVolumesResponse, ClientError> {
        let params = filters_param(&filters.unwrap_or_default())?;
        let raw = self.request(Method::POST, &with_query("/volumes/prune", &params)?, None).await?;
        Ok(serde_json::from_slice(&raw)?)
    }
}
