//! Volume endpoints of the Docker Engine API: `GET /volumes`, `POST /volumes/create`, `GET /volumes/{name}`,
//! `DELETE /volumes/{name}`, `POST /volumes/prune`; and the volume side of container create and remove.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::containers::parse_filters;
use super::error::{ApiError, ApiResult};
use crate::runtime::config::CreateBody;
use crate::runtime::record::ContainerRecord;
use crate::volume::mounts::Planned;
use crate::volume::store::CreateRequest;
use crate::volume::{ANONYMOUS_LABEL, Volume, VolumeError, attach};

impl From<VolumeError> for ApiError {
    fn from(e: VolumeError) -> Self {
        let status = match &e {
            VolumeError::InvalidName(_) | VolumeError::InvalidOption(_) | VolumeError::InvalidMount(_) => {
                StatusCode::BAD_REQUEST
            }
            VolumeError::NotFound(_) | VolumeError::UnknownDriver(_) => StatusCode::NOT_FOUND,
            VolumeError::Conflict(_) | VolumeError::InUse { .. } => StatusCode::CONFLICT,
            VolumeError::Mount { .. } | VolumeError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

type Params = Query<HashMap<String, String>>;

fn volume_json(state: &AppState, v: &Volume) -> Value {
    json!({
        "Name": v.name,
        "Driver": v.driver,
        "Mountpoint": state.runtime.volumes.mountpoint(&v.name),
        "Labels": v.labels,
        "Options": v.options,
        "Scope": v.scope,
        "CreatedAt": v.created_at,
    })
}

fn in_use(state: &AppState, name: &str) -> Vec<String> {
    attach::users(&state.containers, name)
}

fn truthy(v: &str) -> Option<bool> {
    match v {
        "1" | "true" | "True" => Some(true),
        "0" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// `label=k` or `label=k=v` against a volume's labels.
fn label_matches(labels: &BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}

/// `GET /volumes?filters=` (name, label, dangling, driver).
pub async fn list(State(state): State<AppState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let filters = parse_filters(params.get("filters"))?;
    for key in filters.keys() {
        if !matches!(key.as_str(), "name" | "label" | "dangling" | "driver") {
            return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
        }
    }
    let mut dangling = None;
    for v in filters.get("dangling").into_iter().flatten() {
        dangling = Some(truthy(v).ok_or_else(|| ApiError::bad_request(format!("invalid filter 'dangling={v}'")))?);
    }
    let out: Vec<Value> = state
        .runtime
        .volumes
        .list()
        .iter()
        .filter(|v| filters.get("name").is_none_or(|names| names.iter().any(|n| v.name.contains(n.as_str()))))
        .filter(|v| filters.get("driver").is_none_or(|ds| ds.contains(&v.driver)))
        .filter(|v| filters.get("label").is_none_or(|ls| ls.iter().all(|l| label_matches(&v.labels, l))))
        .filter(|v| dangling.is_none_or(|d| in_use(&state, &v.name).is_empty() == d))
        .map(|v| volume_json(&state, v))
        .collect();
    Ok(Json(json!({"Volumes": out, "Warnings": []})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBodyJson {
    name: Option<String>,
    driver: Option<String>,
    driver_opts: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/create`: 201 with the volume, also when it existed with the same options.
pub async fn create(State(state): State<AppState>, body: Bytes) -> ApiResult<Response> {
    let req: CreateBodyJson = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBodyJson::default()
    } else {
        let de = &mut serde_json::Deserializer::from_slice(&body);
        serde_path_to_error::deserialize(de)
            .map_err(|e| ApiError::bad_request(format!("{}: {}", e.path(), e.inner())))?
    };
    let (volume, _) = state.runtime.volumes.create(CreateRequest {
        name: req.name.unwrap_or_default(),
        driver: req.driver.unwrap_or_default(),
        options: req.driver_opts.unwrap_or_default(),
        labels: req.labels.unwrap_or_default(),
    })?;
    Ok((StatusCode::CREATED, Json(volume_json(&state, &volume))).into_response())
}

/// `GET /volumes/{name}`.
pub async fn inspect(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<Value>> {
    let volume = state.runtime.volumes.get(&name)?;
    Ok(Json(volume_json(&state, &volume)))
}

/// `DELETE /volumes/{name}?force=`: 409 while a container (running or not) uses it; `force` only makes a
/// missing volume no error, as in Docker.
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Params,
) -> ApiResult<Response> {
    let force = params.get("force").and_then(|v| truthy(v)).unwrap_or(false);
    match state.runtime.volumes.get(&name) {
        Err(VolumeError::NotFound(_)) if force => return Ok(StatusCode::NO_CONTENT.into_response()),
        other => other?,
    };
    let users = in_use(&state, &name);
    if !users.is_empty() {
        return Err(VolumeError::InUse { name, users }.into());
    }
    state.runtime.volumes.remove(&name)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /volumes/prune?filters=`: unused anonymous volumes, or all unused ones with `all=true`; `label`,
/// `label!` narrow it.
pub async fn prune(State(state): State<AppState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let filters = parse_filters(params.get("filters"))?;
    let mut all = false;
    for (key, values) in &filters {
        match key.as_str() {
            "label" | "label!" => {}
            "all" => {
                for v in values {
                    all = truthy(v).ok_or_else(|| ApiError::bad_request(format!("invalid filter 'all={v}'")))?;
                }
            }
            other => return Err(ApiError::bad_request(format!("invalid filter '{other}'"))),
        }
    }
    let store = &state.runtime.volumes;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    for v in store.list() {
        let wanted = (all || v.labels.contains_key(ANONYMOUS_LABEL))
            && filters.get("label").is_none_or(|ls| ls.iter().all(|l| label_matches(&v.labels, l)))
            && filters.get("label!").is_none_or(|ls| ls.iter().all(|l| !label_matches(&v.labels, l)));
        if !wanted || !in_use(&state, &v.name).is_empty() {
            continue;
        }
        let size = store.size(&v.name);
        match store.remove(&v.name) {
            Ok(_) => {
                reclaimed = reclaimed.saturating_add(size);
                deleted.push(v.name);
            }
            Err(e) => tracing::warn!(volume = %v.name, error = %e, "prune could not remove a volume"),
        }
    }
    Ok(Json(json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed})))
}

/// Container create, before the record exists: every mount read and checked (a bad one is a 400 and no
/// container is made). `image_volumes` are the image config's `Volumes`.
pub fn plan_mounts(body: &CreateBody, image_volumes: &[String]) -> ApiResult<Vec<Planned>> {
    Ok(crate::volume::mounts::plan(body, image_volumes)?)
}

/// Container create, once the record exists: its volumes made and its mount points recorded. On failure the
/// container is removed again, so a create either fully happens or not at all.
pub fn attach_mounts(state: &AppState, id: &str, planned: Vec<Planned>) -> ApiResult<()> {
    let result = attach::attach(&state.runtime.volumes, planned)
        .map_err(ApiError::from)
        .and_then(|points| state.containers.update(id, |r| r.mounts = points).map_err(ApiError::from));
    if let Err(e) = result {
        let _ = state.containers.remove(id);
        return Err(e);
    }
    Ok(())
}

/// After a container was removed with `v=1` or by AutoRemove: its anonymous volumes go too.
pub fn remove_container_volumes(state: &AppState, record: &ContainerRecord) {
    attach::remove_anonymous(&state.runtime.volumes, &state.containers, record);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters() {
        let labels: BTreeMap<String, String> = [("a".to_string(), "1".to_string())].into_iter().collect();
        assert!(label_matches(&labels, "a"));
        assert!(label_matches(&labels, "a=1"));
        assert!(!label_matches(&labels, "a=2"));
        assert!(!label_matches(&labels, "b"));
    }

    #[test]
    fn errors_map_to_dockers_statuses() {
        let status = |e: VolumeError| ApiError::from(e).status;
        assert_eq!(status(VolumeError::NotFound("x".into())), StatusCode::NOT_FOUND);
        assert_eq!(status(VolumeError::InvalidName("x y".into())), StatusCode::BAD_REQUEST);
        let busy = VolumeError::InUse { name: "v".into(), users: vec!["abc (web)".into()] };
        assert_eq!(busy.to_string(), "remove v: volume is in use - [abc (web)]");
        assert_eq!(status(busy), StatusCode::CONFLICT);
    }
}
