//! `docker cp`: `HEAD`, `GET` and `PUT /containers/{id}/archive?path=`, over [`crate::runtime::copy`].
//!
//! The docker CLI first asks `HEAD` for the `X-Docker-Container-Path-Stat` of the path (whether it exists, is a
//! directory or a symlink), then `GET`s a tar of it or `PUT`s a tar into a directory. The filesystem work is
//! blocking, so it runs on the blocking pool; tar bodies stream both ways through bounded channels.

use std::collections::HashMap;
use std::io::{self, Read, Write};

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use tokio::sync::mpsc;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::image::unpack::{ExtractOptions, UnpackError};
use crate::runtime::copy::{ContainerRoot, CopyError};

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";
/// Chunks of the tar in flight between the blocking thread and the connection.
const CHUNK: usize = 64 * 1024;
const CHANNEL_DEPTH: usize = 16;

type Params = Query<HashMap<String, String>>;

impl From<CopyError> for ApiError {
    fn from(e: CopyError) -> Self {
        match e {
            CopyError::Run(r) => r.into(),
            CopyError::NotFound { .. } => ApiError::not_found(e.to_string()),
            CopyError::NotADirectory | CopyError::BadRequest(_) => ApiError::bad_request(e.to_string()),
            CopyError::ReadOnly => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
            // A tar that cannot be applied as sent (malformed, an overwrite refused, a link outside) is the
            // client's; the filesystem failing is ours.
            CopyError::Extract { source: UnpackError::Fs { .. } | UnpackError::OpenDest { .. }, .. } => {
                ApiError::internal(e.to_string())
            }
            CopyError::Extract { .. } => ApiError::bad_request(e.to_string()),
            CopyError::Io { .. } => ApiError::internal(e.to_string()),
        }
    }
}

fn path_param(params: &HashMap<String, String>) -> ApiResult<String> {
    match params.get("path") {
        Some(p) if !p.is_empty() => Ok(p.clone()),
        _ => Err(ApiError::bad_request("bad parameter: path cannot be empty")),
    }
}

fn truthy(params: &HashMap<String, String>, key: &str) -> bool {
    params.get(key).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"))
}

fn joined<T>(r: Result<T, tokio::task::JoinError>) -> ApiResult<T> {
    r.map_err(|e| ApiError::internal(format!("copy task failed: {e}")))
}

fn stat_header(value: String) -> ApiResult<HeaderValue> {
    HeaderValue::from_str(&value).map_err(|e| ApiError::internal(format!("stat header: {e}")))
}

/// `HEAD /containers/{id}/archive?path=`: only the stat header; 404 when the path does not exist.
pub async fn head(State(state): State<AppState>, Path(id): Path<String>, Query(params): Params) -> Response {
    let result: ApiResult<Response> = async {
        let path = path_param(&params)?;
        let root = ContainerRoot::open(&state.runtime, &id).await?;
        let stat = joined(tokio::task::spawn_blocking(move || root.stat(&path).map(|(s, _)| s)).await)??;
        let mut resp = StatusCode::OK.into_response();
        resp.headers_mut().insert(STAT_HEADER, stat_header(stat.header_value())?);
        Ok(resp)
    }
    .await;
    // A HEAD answer has no body: the status says it all (the CLI turns 404 into "no such file").
    result.unwrap_or_else(|e| e.status.into_response())
}

/// `GET /containers/{id}/archive?path=`: the stat header and a tar of the path, streamed.
pub async fn get(State(state): State<AppState>, Path(id): Path<String>, Query(params): Params) -> ApiResult<Response> {
    let path = path_param(&params)?;
    let root = ContainerRoot::open(&state.runtime, &id).await?;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_DEPTH);
    let (stat_tx, stat_rx) = tokio::sync::oneshot::channel();
    // One blocking task: stat first (answered at once, for the headers), then the tar, with the root (and a
    // temporary mount) held until the last byte is written.
    tokio::task::spawn_blocking(move || {
        let located = match root.stat(&path) {
            Ok((stat, located)) => {
                if stat_tx.send(Ok(stat)).is_err() {
                    return;
                }
                located
            }
            Err(e) => {
                let _ = stat_tx.send(Err(e));
                return;
            }
        };
        let mut out = ChannelWriter { tx: tx.clone(), buf: Vec::with_capacity(CHUNK) };
        if let Err(e) = root
            .archive(&path, &located, &mut out)
            .map_err(|e| e.to_string())
            .and_then(|()| out.flush().map_err(|e| e.to_string()))
        {
            tracing::warn!(container = %root.name, path, error = %e, "archive stream aborted");
            // An error item ends the body early: the client sees a truncated tar, not a silently short one.
            let _ = tx.blocking_send(Err(io::Error::other(e)));
        }
    });
    let stat = stat_rx.await.map_err(|_| ApiError::internal("copy task ended early"))??;
    let body = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let mut resp = Body::from_stream(body).into_response();
    resp.headers_mut().insert(STAT_HEADER, stat_header(stat.header_value())?);
    resp.headers_mut().insert("Content-Type", HeaderValue::from_static("application/x-tar"));
    Ok(resp)
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: extract the tar body (plain or
/// compressed) into the directory `path`.
pub async fn put(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Params,
    body: Body,
) -> ApiResult<Response> {
    let path = path_param(&params)?;
    let root = ContainerRoot::open(&state.runtime, &id).await?;
    let options_path = path.clone();
    let copy_uid_gid = truthy(&params, "copyUIDGID");
    let no_overwrite = truthy(&params, "noOverwriteDirNonDir");
    let (root, owner) = joined(
        tokio::task::spawn_blocking(move || {
            root.extraction_point(&options_path)?;
            let owner = root.owner(copy_uid_gid)?;
            Ok::<_, CopyError>((root, owner))
        })
        .await,
    )??;
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(CHANNEL_DEPTH);
    let forward = tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let item = chunk.map_err(io::Error::other);
            let failed = item.is_err();
            // The extraction stopped (done or failed): the rest of the body is not wanted.
            if tx.send(item).await.is_err() || failed {
                break;
            }
        }
    });
    let options = ExtractOptions { owner, no_overwrite_dir_non_dir: no_overwrite };
    let result = joined(
        tokio::task::spawn_blocking(move || root.extract(&path, ChannelReader { rx, cur: Bytes::new() }, options))
            .await,
    )?;
    forward.abort();
    result?;
    Ok(StatusCode::OK.into_response())
}

/// The blocking side of a streamed response body.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// The blocking side of a streamed request body.
struct ChannelReader {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    cur: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.cur = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.cur.len());
        buf[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}
