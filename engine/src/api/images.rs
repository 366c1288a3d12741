//! The image endpoints of the Docker Engine API: list, inspect, history, tag, remove, prune, pull
//! (`/images/create?fromImage=`), push, and `system/df`.
//!
//! Image names contain `/` (`localhost:5000/team/app:1`), so the routes under `/images/` are one wildcard and the
//! verb is taken from the path's last segment, as Docker's own router does with `{name:.*}`.

use std::collections::HashMap;
use std::convert::Infallible;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::image::Reference;
use crate::image::error::StoreError;
use crate::image::store::Image;
use crate::registry::{Credentials, ProgressEvent, PullOptions, PushOptions, RegistryError, RegistryOptions};

pub type Params = Query<HashMap<String, String>>;

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match &e {
            StoreError::ImageNotFound(_) | StoreError::BlobNotFound(_) => StatusCode::NOT_FOUND,
            StoreError::InUse { .. } | StoreError::MultipleRepositories { .. } => StatusCode::CONFLICT,
            StoreError::InvalidReference(_) | StoreError::AmbiguousId(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

fn parse_reference(s: &str) -> ApiResult<Reference> {
    s.parse().map_err(|e: crate::image::reference::InvalidReference| ApiError::bad_request(e.to_string()))
}

fn truthy(params: &HashMap<String, String>, key: &str) -> bool {
    params.get(key).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True" | "yes"))
}

use crate::time::unix_seconds;

fn familiar_tags(image: &Image) -> Vec<String> {
    image.repo_tags.iter().map(Reference::familiar).collect()
}

fn summary(image: &Image) -> Value {
    let labels = image.config.config().as_ref().and_then(|c| c.labels().clone()).unwrap_or_default();
    json!({
        "Id": image.id.to_string(),
        "ParentId": "",
        "RepoTags": familiar_tags(image),
        "RepoDigests": image.repo_digests,
        "Created": unix_seconds(image.created.as_deref()),
        "Size": image.size,
        "SharedSize": -1,
        "VirtualSize": image.size,
        "Labels": labels,
        "Containers": -1,
    })
}

pub fn inspect_json(image: &Image) -> Value {
    let config = serde_json::to_value(&image.config).unwrap_or(Value::Null);
    json!({
        "Id": image.id.to_string(),
        "RepoTags": familiar_tags(image),
        "RepoDigests": image.repo_digests,
        "Parent": "",
        "Comment": "",
        "Created": image.created.clone().unwrap_or_default(),
        "DockerVersion": "",
        "Author": config.get("author").cloned().unwrap_or(Value::String(String::new())),
        "Config": config.get("config").cloned().unwrap_or(json!({})),
        "Architecture": config.get("architecture").cloned().unwrap_or(Value::Null),
        "Os": config.get("os").cloned().unwrap_or(Value::Null),
        "Size": image.size,
        "GraphDriver": {"Name": "overlay2", "Data": {}},
        "RootFS": {"Type": "layers", "Layers": image.layers.iter().map(|l| l.diff_id.to_string()).collect::<Vec<_>>()},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    })
}

pub async fn list(State(state): State<AppState>, Query(params): Params) -> Json<Value> {
    let all_tags = !truthy(&params, "dangling-only");
    let mut images: Vec<Image> = state.images.list();
    images.sort_by(|a, b| b.created.cmp(&a.created));
    Json(Value::Array(images.iter().filter(|i| all_tags || i.repo_tags.is_empty()).map(summary).collect()))
}

/// `GET /images/{name}/json`, `/images/{name}/history`.
pub async fn get(State(state): State<AppState>, Path(rest): Path<String>) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/json") {
        let image = state.images.resolve(name)?;
        return Ok(Json(inspect_json(&image)).into_response());
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let image = state.images.resolve(name)?;
        return Ok(Json(history(&image)).into_response());
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return super::archives::save_response(&state, vec![name.to_string()]);
    }
    Err(ApiError::not_found(format!("page not found: /images/{rest}")))
}

fn history(image: &Image) -> Value {
    let config = serde_json::to_value(&image.config).unwrap_or(Value::Null);
    let entries = config.get("history").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut layers = image.layers.iter().rev();
    let mut out = Vec::new();
    let count = entries.len();
    for (i, h) in entries.iter().enumerate().rev() {
        let empty = h.get("empty_layer").and_then(Value::as_bool).unwrap_or(false);
        let size = if empty { 0 } else { layers.next().map(|l| l.size).unwrap_or(0) };
        out.push(json!({
            "Id": if i + 1 == count { image.id.to_string() } else { "<missing>".to_string() },
            "Created": unix_seconds(h.get("created").and_then(Value::as_str)),
            "CreatedBy": h.get("created_by").cloned().unwrap_or(Value::String(String::new())),
            "Tags": if i + 1 == count { json!(familiar_tags(image)) } else { Value::Null },
            "Size": size,
            "Comment": h.get("comment").cloned().unwrap_or(Value::String(String::new())),
        }));
    }
    Value::Array(out)
}

/// `POST /images/{name}/tag?repo=&tag=`, `POST /images/{name}/push?tag=`.
pub async fn post(
    State(state): State<AppState>,
    Path(rest): Path<String>,
    Query(params): Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(name) = rest.strip_suffix("/tag") {
        let repo = params.get("repo").ok_or_else(|| ApiError::bad_request("missing parameter: repo"))?;
        let target = match params.get("tag").filter(|t| !t.is_empty()) {
            Some(t) => format!("{repo}:{t}"),
            None => repo.clone(),
        };
        let target = parse_reference(&target)?;
        state.images.tag(name, &target)?;
        if let Ok(image) = state.images.resolve(name) {
            state.events.image("tag", &image.id.to_string(), &target.familiar());
        }
        return Ok(StatusCode::CREATED.into_response());
    }
    if let Some(name) = rest.strip_suffix("/push") {
        let mut target = parse_reference(name)?;
        if let Some(t) = params.get("tag").filter(|t| !t.is_empty()) {
            target = target.with_tag(t);
        }
        // Docker pushes the local image that has the target's name.
        let source = target.familiar();
        state.images.resolve(&source)?;
        let opts = PushOptions { registry: registry_options(&state, &headers)?, ..Default::default() };
        let puller = state.puller.clone();
        let events = state.events.clone();
        return Ok(progress_stream(move |tx| async move {
            let tx2 = tx.clone();
            let result = puller
                .push(&source, &target, &opts, move |ev: ProgressEvent| {
                    let _ = tx2.send(progress_line(&ev, true));
                })
                .await;
            match result {
                Ok(digest) => {
                    record_repo_digest(&puller, &target, &digest);
                    events.image("push", &target.familiar(), &target.familiar());
                    let _ = tx.send(
                        json!({"status": format!("{}: digest: {digest}", target.tag.as_deref().unwrap_or("latest"))}),
                    );
                }
                Err(e) => {
                    let _ = tx.send(error_line(&e.to_string()));
                }
            }
        }));
    }
    Err(ApiError::not_found(format!("page not found: /images/{rest}")))
}

/// `DELETE /images/{name}?force=`.
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(params): Params,
) -> ApiResult<Json<Value>> {
    let in_use = state.image_in_use();
    let id = state.images.resolve(&name)?.id;
    let events = state.images.remove(&name, truthy(&params, "force"), &in_use)?;
    for e in &events {
        match e {
            crate::image::store::RemoveEvent::Untagged(r) => state.events.image("untag", &id.to_string(), r),
            // Released layers are listed as Deleted too; the image's own id is the delete event.
            crate::image::store::RemoveEvent::Deleted(d) if *d == id => {
                state.events.image("delete", &id.to_string(), &id.to_string())
            }
            crate::image::store::RemoveEvent::Deleted(_) => {}
        }
    }
    Ok(Json(serde_json::to_value(events).unwrap_or(Value::Null)))
}

/// `POST /images/prune?filters={"dangling":["false"]}`.
pub async fn prune(State(state): State<AppState>, Query(params): Params) -> ApiResult<Json<Value>> {
    let all = params
        .get("filters")
        .and_then(|f| serde_json::from_str::<Value>(f).ok())
        .and_then(|f| f.get("dangling").cloned())
        .map(|d| d.to_string().contains("false") || d.get("false").is_some())
        .unwrap_or(false);
    let in_use = state.image_in_use();
    let report = state.images.prune(all, &in_use)?;
    Ok(Json(json!({
        "ImagesDeleted": serde_json::to_value(&report.images_deleted).unwrap_or(Value::Null),
        "SpaceReclaimed": report.space_reclaimed,
    })))
}

/// `POST /images/create?fromImage=busybox&tag=latest`: a pull, reported as Docker's JSON progress stream.
/// With `fromSrc=-` it is an import of the request body instead.
pub async fn create(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let params: HashMap<String, String> = ["fromImage", "fromSrc", "tag"]
        .into_iter()
        .filter_map(|k| {
            super::archives::query_values(query.as_deref(), k).into_iter().next().map(|v| (k.to_string(), v))
        })
        .collect();
    if params.contains_key("fromSrc") {
        return super::archives::import_body(state, query, body).await;
    }
    let Some(from) = params.get("fromImage").filter(|f| !f.is_empty()) else {
        return Err(ApiError::bad_request("missing parameter: fromImage (or fromSrc)"));
    };
    let mut reference = parse_reference(from)?;
    if let Some(t) = params.get("tag").filter(|t| !t.is_empty()) {
        reference = if let Some(digest) = t.strip_prefix("sha256:").map(|_| t.as_str()) {
            parse_reference(&format!("{}@{digest}", reference.name()))?
        } else {
            reference.with_tag(t)
        };
    }
    let opts = PullOptions { registry: registry_options(&state, &headers)?, ..Default::default() };
    let puller = state.puller.clone();
    let events = state.events.clone();
    Ok(progress_stream(move |tx| async move {
        let what = reference.familiar();
        let _ = tx.send(json!({"status": format!("Pulling from {}", reference.repository.trim_start_matches("library/")), "id": reference.tag.clone().unwrap_or_else(|| "latest".into())}));
        let tx2 = tx.clone();
        let mut up_to_date = true;
        let result = puller
            .pull(&reference, &opts, |ev: ProgressEvent| {
                if let ProgressEvent::Done { up_to_date: u, .. } = &ev {
                    up_to_date = *u;
                }
                let _ = tx2.send(progress_line(&ev, false));
            })
            .await;
        match result {
            Ok(image) => {
                record_repo_digest(&puller, &reference, &image.manifest_digest);
                events.image("pull", &what, &what);
                let _ = tx.send(json!({"status": format!("Digest: {}", image.manifest_digest)}));
                let status = if up_to_date {
                    format!("Status: Image is up to date for {what}")
                } else {
                    format!("Status: Downloaded newer image for {what}")
                };
                let _ = tx.send(json!({"status": status}));
            }
            Err(e) => {
                let _ = tx.send(error_line(&e.to_string()));
            }
        }
    }))
}

/// `GET /system/df` (the image part; containers and volumes come with their issues).
pub async fn system_df(State(state): State<AppState>) -> Json<Value> {
    let usage = state.images.disk_usage();
    let images: Vec<Value> = usage
        .images
        .iter()
        .map(|i| {
            json!({
                "Id": i.id.to_string(),
                "ParentId": "",
                "RepoTags": i.repo_tags,
                "RepoDigests": [],
                "Created": unix_seconds(i.created.as_deref()),
                "Size": i.size,
                "SharedSize": i.shared_size,
                "VirtualSize": i.size,
                "Labels": {},
                "Containers": 0,
            })
        })
        .collect();
    Json(json!({
        "LayersSize": usage.blobs_size + usage.layers_size,
        "Images": images,
        "Containers": [],
        "Volumes": [],
        "BuildCache": [],
    }))
}

/// Remember `name@digest` for an image that came from (or went to) a registry, as Docker's RepoDigests do.
fn record_repo_digest(puller: &crate::registry::Puller, reference: &Reference, digest: &crate::image::Digest) {
    let pinned = Reference { tag: None, digest: Some(digest.clone()), ..reference.clone() };
    if let Err(e) = puller.store().add_image(digest, Some(&pinned)) {
        tracing::warn!(reference = %pinned, error = %e, "cannot record the repo digest");
    }
}

/// Registry options of a request: berthd's defaults plus the client's `X-Registry-Auth` credentials.
fn registry_options(state: &AppState, headers: &HeaderMap) -> ApiResult<RegistryOptions> {
    let mut opts = state.registry.clone();
    if let Some(h) = headers.get("X-Registry-Auth").and_then(|h| h.to_str().ok()).filter(|h| !h.is_empty()) {
        let raw = base64::engine::general_purpose::URL_SAFE
            .decode(h.trim_end_matches('='))
            .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(h.trim_end_matches('=')))
            .or_else(|_| base64::engine::general_purpose::STANDARD.decode(h))
            .map_err(|_| ApiError::bad_request("X-Registry-Auth is not base64"))?;
        let v: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        if let (Some(u), Some(p)) =
            (v.get("username").and_then(Value::as_str), v.get("password").and_then(Value::as_str))
            && !u.is_empty()
        {
            opts.credentials = Some(Credentials::new(u, p));
        }
    }
    Ok(opts)
}

fn short(d: &crate::image::Digest) -> String {
    d.short().to_string()
}

/// One progress event as Docker's JSON message.
fn progress_line(ev: &ProgressEvent, push: bool) -> Value {
    match ev {
        ProgressEvent::Resolved { reference, .. } => json!({"status": format!("Resolved {reference}")}),
        ProgressEvent::BlobExists { digest, .. } => {
            json!({"status": if push { "Layer already exists" } else { "Already exists" }, "id": short(digest)})
        }
        ProgressEvent::BlobWaiting { digest } => json!({"status": "Waiting", "id": short(digest)}),
        ProgressEvent::BlobProgress { digest, current, total } => json!({
            "status": if push { "Pushing" } else { "Downloading" },
            "progressDetail": {"current": current, "total": total},
            "id": short(digest),
        }),
        ProgressEvent::BlobDone { digest, .. } => {
            json!({"status": if push { "Pushed" } else { "Pull complete" }, "id": short(digest)})
        }
        ProgressEvent::Done { up_to_date, .. } => {
            json!({"status": if *up_to_date { "Image is up to date" } else { "Download complete" }})
        }
    }
}

fn error_line(message: &str) -> Value {
    json!({"error": message, "errorDetail": {"message": message}})
}

/// A streaming JSON-lines response fed by `work` through a channel: Docker's progress format. The request ends
/// when `work` finishes; a client that goes away closes the channel and `work`'s sends just fail.
fn progress_stream<F, Fut>(work: F) -> Response
where
    F: FnOnce(mpsc::UnboundedSender<Value>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(work(tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let v = rx.recv().await?;
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<Bytes, Infallible>(Bytes::from(line)), rx))
    });
    ([("Content-Type", "application/json")], Body::from_stream(stream)).into_response()
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError::internal(e.to_string())
    }
}
