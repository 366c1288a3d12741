//! Container endpoints of the Docker Engine API: create, list (with filters), inspect, rename, start, stop,
//! kill, restart, wait, remove. Running goes through [`crate::runtime::lifecycle`] and berth-shim.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::runtime::config::parse_create_body;
use crate::runtime::lifecycle::RunError;
use crate::runtime::record::{ContainerError, ContainerRecord, Status};

impl From<RunError> for ApiError {
    fn from(e: RunError) -> Self {
        match e {
            RunError::Container(c) => c.into(),
            RunError::NotRunning(_)
            | RunError::AlreadyRunning(_)
            | RunError::AlreadyPaused(_)
            | RunError::NotPaused(_) => ApiError::conflict(e.to_string()),
            RunError::Cgroup(_) => ApiError::internal(e.to_string()),
            // The docker CLI turns "executable file not found" into exit status 127, as for Docker.
            RunError::StartFailed { message, exit_code: 127 } if !message.contains("executable file not found") => {
                ApiError::bad_request(format!("{message} (exec: executable file not found in $PATH)"))
            }
            RunError::StartFailed { .. } => ApiError::bad_request(e.to_string()),
            RunError::Setup(_) => ApiError::internal(e.to_string()),
        }
    }
}

type Params = Query<HashMap<String, String>>;

impl From<ContainerError> for ApiError {
    fn from(e: ContainerError) -> Self {
        let status = match &e {
            ContainerError::NotFound(_) => StatusCode::NOT_FOUND,
            ContainerError::NameInUse { .. } => StatusCode::CONFLICT,
            ContainerError::Ambiguous(_) | ContainerError::InvalidName(_) | ContainerError::Invalid(_) => {
                StatusCode::BAD_REQUEST
            }
            ContainerError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

fn truthy(params: &HashMap<String, String>, key: &str) -> bool {
    params.get(key).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"))
}

/// `POST /containers/create?name=`.
pub async fn create(State(state): State<AppState>, Query(params): Params, body: Bytes) -> ApiResult<Response> {
    let body = parse_create_body(&body).map_err(ApiError::bad_request)?;
    if body.config.image.is_empty() {
        return Err(ApiError::bad_request("config.Image: an image is required"));
    }
    crate::runtime::restart::validate(&body.host_config).map_err(ApiError::bad_request)?;
    let image = state
        .images
        .resolve(&body.config.image)
        .map_err(|_| ApiError::not_found(format!("No such image: {}", body.config.image)))?;
    let image_volumes = image.config.config().as_ref().and_then(|c| c.volumes().clone()).unwrap_or_default();
    let planned = super::volumes::plan_mounts(&body, &image_volumes)?;
    let record = state.containers.create(params.get("name").map(String::as_str), body, Some(image.id))?;
    super::volumes::attach_mounts(&state, &record.id, planned)?;
    state.events.container(&record, "create", &[]);
    Ok((StatusCode::CREATED, Json(json!({"Id": record.id, "Warnings": []}))).into_response())
}

/// Docker's `Status` column: "Created", "Up 5 minutes", "Exited (0) 2 seconds ago".
fn status_text(r: &ContainerRecord) -> String {
    match r.state.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up{}", crate::runtime::health::status_suffix(r)),
        Status::Paused => "Up (Paused)".into(),
        Status::Restarting => crate::runtime::restart::restarting_status(r),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited => format!("Exited ({})", r.state.exit_code),
        Status::Dead => "Dead".into(),
    }
}

fn command_text(r: &ContainerRecord) -> String {
    let mut parts: Vec<String> = r.config.entrypoint.clone().unwrap_or_default();
    parts.extend(r.config.cmd.clone().unwrap_or_default());
    parts.join(" ")
}

fn summary(r: &ContainerRecord) -> Value {
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.image,
        "ImageID": r.image_id.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        "Command": command_text(r),
        "Created": crate::time::unix_seconds(Some(&r.created)),
        "Ports": [],
        "Labels": r.config.labels,
        "State": r.state.status.as_str(),
        "Status": status_text(r),
        "HostConfig": {"NetworkMode": r.host_config.network_mode.clone().unwrap_or_else(|| "none".into())},
        "NetworkSettings": {"Networks": {}},
        "Mounts": crate::volume::mounts::to_json(&r.mounts),
    })
}

/// Whether a container passes Docker's list filters (`label`, `name`, `status`, `id`, `ancestor`).
fn matches(r: &ContainerRecord, filters: &HashMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(key, values)| {
        values.iter().any(|v| match key.as_str() {
            "label" => match v.split_once('=') {
                Some((k, val)) => r.config.labels.get(k).is_some_and(|x| x == val),
                None => r.config.labels.contains_key(v),
            },
            "name" => r.name.contains(v.trim_start_matches('/')),
            "status" => r.state.status.as_str() == v,
            "id" => r.id.starts_with(v),
            "ancestor" => &r.image == v || r.image_id.as_ref().is_some_and(|d| d.to_string() == *v),
            _ => true,
        })
    })
}

/// Docker sends filters as `{"label":["a=b"]}` or, from old clients, `{"label":{"a=b":true}}`.
pub fn parse_filters(raw: Option<&String>) -> ApiResult<HashMap<String, Vec<String>>> {
    let Some(raw) = raw.filter(|r| !r.is_empty()) else {
        return Ok(HashMap::new());
    };
    let v: Value = serde_json::from_str(raw).map_err(|e| ApiError::bad_request(format!("filters: {e}")))?;
    let obj = v.as_object().ok_or_else(|| ApiError::bad_request("filters: expected a JSON object"))?;
    Ok(obj
        .iter()
        .map(|(k, v)| {
            let values = match v {
                Value::Array(a) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                Value::Object(o) => o.keys().cloned().collect(),
                Value::String(s) => vec![s.clone()],
                _ => Vec::new(),
            };
            (k.clone(), values)
        })
        .collect())
}

/// `GET /containers/json?all=&filters=`.
pub async fn list(State(state): State<AppState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let all = truthy(&params, "all");
    let filters = parse_filters(params.get("filters"))?;
    let out: Vec<Value> = state
        .containers
        .list()
        .iter()
        // A restarting container is listed as running, as Docker lists it.
        .filter(|r| {
            all || filters.contains_key("status")
                || matches!(r.state.status, Status::Running | Status::Paused | Status::Restarting)
        })
        .filter(|r| matches(r, &filters))
        .map(|r| {
            let mut body = summary(r);
            let attached = crate::network::attached::load(&state.containers.container_dir(&r.id));
            crate::network::docker::decorate_summary(&mut body, r, attached.as_ref());
            body
        })
        .collect();
    Ok(Json(Value::Array(out)))
}

pub fn inspect_json(r: &ContainerRecord) -> Value {
    let mut args: Vec<String> = r.config.entrypoint.clone().unwrap_or_default();
    args.extend(r.config.cmd.clone().unwrap_or_default());
    let path = if args.is_empty() { String::new() } else { args.remove(0) };
    let s = &r.state;
    let zero = "0001-01-01T00:00:00Z".to_string();
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": path,
        "Args": args,
        "State": {
            "Status": s.status.as_str(),
            "Running": matches!(s.status, Status::Running | Status::Paused | Status::Restarting),
            "Paused": s.status == Status::Paused,
            "Restarting": s.status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": s.status == Status::Dead,
            "Pid": s.pid,
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": if s.started_at.is_empty() { zero.clone() } else { s.started_at.clone() },
            "FinishedAt": if s.finished_at.is_empty() { zero } else { s.finished_at.clone() },
            // null (Go's nil) without a healthcheck, as Docker's omitted field decodes.
            "Health": s.health.as_ref().map(|h| h.to_api()),
        },
        "Image": r.image_id.as_ref().map(|d| d.to_string()).unwrap_or_default(),
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "HostConfig": r.host_config,
        "Config": r.config,
        "NetworkSettings": {"Networks": {}, "Ports": {}},
        "Mounts": crate::volume::mounts::to_json(&r.mounts),
    })
}

/// `GET /containers/{id}/{json,stats,top}`.
pub async fn get(
    State(state): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    Query(params): Params,
) -> ApiResult<Response> {
    let record = state.containers.get(&id)?;
    match verb.as_str() {
        "json" => {
            state.runtime.refresh(&record.id).await;
            let record = state.containers.get(&record.id)?;
            let mut body = inspect_json(&record);
            let attached = crate::network::attached::load(&state.containers.container_dir(&record.id));
            crate::network::docker::decorate_inspect(&mut body, &record, attached.as_ref());
            let exec_ids = state.execs.ids_of(&record.id);
            body["ExecIDs"] = if exec_ids.is_empty() { Value::Null } else { json!(exec_ids) };
            Ok(Json(body).into_response())
        }
        "stats" => super::stats::stats(state, &record.id, &params).await,
        "top" => super::stats::top(state, &record.id, &params).await,
        other => Err(ApiError::not_found(format!("page not found: /containers/{id}/{other}"))),
    }
}

/// `POST /containers/{id}/{rename,start,stop,kill,restart,wait,attach}`.
pub async fn post(
    State(state): State<AppState>,
    Path((id, verb)): Path<(String, String)>,
    Query(params): Params,
) -> ApiResult<Response> {
    let timeout = params.get("t").and_then(|t| t.parse::<u64>().ok()).map(std::time::Duration::from_secs);
    match verb.as_str() {
        "rename" => {
            let name = params.get("name").ok_or_else(|| ApiError::bad_request("missing parameter: name"))?;
            let old = state.containers.get(&id)?;
            state.containers.rename(&old.id, name)?;
            if let Ok(r) = state.containers.get(&old.id) {
                state.events.container(&r, "rename", &[("oldName", format!("/{}", old.name))]);
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "start" => {
            let record = state.containers.get(&id)?;
            state.runtime.refresh(&record.id).await;
            // A restarting container counts as running, as in Docker: its supervisor starts it.
            if matches!(state.containers.get(&record.id)?.state.status, Status::Running | Status::Restarting) {
                return Ok(StatusCode::NOT_MODIFIED.into_response());
            }
            state.runtime.start(&record.id).await?;
            crate::runtime::restart::note_start(&state.runtime, &record.id);
            spawn_watcher(&state, &record.id);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "stop" => {
            let record = state.containers.get(&id)?;
            state.runtime.refresh(&record.id).await;
            if !matches!(
                state.containers.get(&record.id)?.state.status,
                Status::Running | Status::Paused | Status::Restarting
            ) {
                return Ok(StatusCode::NOT_MODIFIED.into_response());
            }
            state.runtime.stop(&record.id, timeout).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "kill" => {
            let signal = params.get("signal").filter(|s| !s.is_empty()).cloned().unwrap_or_else(|| "KILL".into());
            state.runtime.kill(&id, &signal).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "restart" => {
            let record = state.containers.get(&id)?;
            state.runtime.stop(&record.id, timeout).await?;
            let started = state.runtime.start(&record.id).await?;
            crate::runtime::restart::note_start(&state.runtime, &record.id);
            state.events.container(&started, "restart", &[]);
            spawn_watcher(&state, &record.id);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "wait" => wait(state, &id, params.get("condition").map(String::as_str).unwrap_or("not-running")).await,
        "pause" => {
            state.runtime.pause(&id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        "unpause" => {
            state.runtime.unpause(&id).await?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        other => {
            Err(ApiError::new(StatusCode::NOT_IMPLEMENTED, format!("/containers/{{id}}/{other} is not available yet")))
        }
    }
}

/// Record the exit of a started container as soon as it happens and restart it as its policy says
/// ([`crate::runtime::restart::supervise`]); remove it once it stopped for good when it has AutoRemove.
pub fn spawn_watcher(state: &AppState, id: &str) {
    let state = state.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        // The healthcheck monitor lives as long as this watcher: across restarts, until the container is done.
        state.health.start(&state.runtime, &id);
        crate::runtime::restart::supervise(state.runtime.clone(), id.clone()).await;
        state.health.stop(&id);
        if state.runtime.restarts.stopping() {
            return;
        }
        if let Ok(r) = state.containers.get(&id)
            && r.host_config.auto_remove
            && r.state.status == Status::Exited
        {
            // Its output goes to attached clients from the log file: remove once they have it all (bounded).
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while state.attached(&id) && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            // Docker's AutoRemove removes the anonymous volumes too, as `rm -v` does.
            if let Ok(removed) = state.containers.remove(&id) {
                state.events.container(&removed, "destroy", &[]);
                super::volumes::remove_container_volumes(&state, &removed);
            }
        }
    });
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`: `{"StatusCode": n}` once it holds.
///
/// The headers go out at once and the body when the condition holds, as Docker does: the docker CLI waits for
/// the headers of this request before it starts the container.
async fn wait(state: AppState, id: &str, condition: &str) -> ApiResult<Response> {
    let record = state.containers.get(id)?;
    let condition = condition.to_string();
    let body = futures_util::stream::once(async move {
        let result = wait_for(&state, &record, &condition).await;
        let error = state.containers.get(&record.id).ok().map(|r| r.state.error).filter(|e| !e.is_empty());
        let v = match result {
            Ok(code) => json!({"StatusCode": code, "Error": error.map(|m| json!({"Message": m}))}),
            Err(e) => json!({"StatusCode": -1, "Error": {"Message": e.to_string()}}),
        };
        Ok::<axum::body::Bytes, std::convert::Infallible>(axum::body::Bytes::from(v.to_string() + "\n"))
    });
    Ok(([("Content-Type", "application/json")], axum::body::Body::from_stream(body)).into_response())
}

async fn wait_for(state: &AppState, record: &ContainerRecord, condition: &str) -> Result<i64, RunError> {
    match condition {
        "removed" => {
            // Polled: the watcher records the exit and removes the container; this only observes.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(24 * 3600);
            loop {
                let Ok(r) = state.containers.get(&record.id) else {
                    return Ok(state.containers.removed_exit(&record.id).unwrap_or(0));
                };
                match r.state.status {
                    Status::Running | Status::Paused | Status::Restarting => {
                        let _ = state.runtime.wait(&record.id).await;
                    }
                    Status::Exited | Status::Dead if !r.host_config.auto_remove => return Ok(r.state.exit_code),
                    Status::Created if !r.state.error.is_empty() => return Ok(r.state.exit_code),
                    _ => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
                }
                if std::time::Instant::now() > deadline {
                    return Ok(r.state.exit_code);
                }
            }
        }
        "next-exit" => {
            // Not started yet: first wait for the start (the client starts it right after this request).
            while state
                .containers
                .get(&record.id)
                .is_ok_and(|r| r.state.status == Status::Created && r.state.error.is_empty())
            {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            state.runtime.wait(&record.id).await
        }
        _ => state.runtime.wait(&record.id).await,
    }
}

/// `DELETE /containers/{id}?force=`.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
) -> ApiResult<Response> {
    let record = state.containers.get(&id)?;
    state.runtime.refresh(&record.id).await;
    let record = state.containers.get(&record.id)?;
    if matches!(record.state.status, Status::Running | Status::Paused | Status::Restarting) {
        if !truthy(&params, "force") {
            return Err(ApiError::conflict(format!(
                "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
                record.name,
                record.state.status.as_str()
            )));
        }
        let _ = state.runtime.kill(&record.id, "KILL").await;
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), state.runtime.wait(&record.id)).await;
    }
    // Whatever netd still holds for it (normally released at its exit) goes before its directory does.
    state.runtime.network.release(&state.containers.container_dir(&record.id), &record.id).await;
    // A copy may have a stopped container's overlay mounted in its directory: removal waits until it is done.
    let rootfs_lock = state.runtime.rootfs_locks.lock(&record.id).await;
    let removed = state.containers.remove(&record.id)?;
    drop(rootfs_lock);
    state.execs.forget_container(&removed.id);
    state.events.container(&removed, "destroy", &[]);
    if truthy(&params, "v") {
        super::volumes::remove_container_volumes(&state, &removed);
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
