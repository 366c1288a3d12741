//! `GET /containers/{id}/logs` and `POST /containers/{id}/attach`: the container's json-file log as Docker
//! streams it — stdcopy frames (`[stream, 0, 0, 0, size (u32 BE)]` + payload) unless the container has a tty.
//!
//! Attach is served from the log the shim writes rather than from the container's pipes: the shim holds them,
//! and every output line reaches the log first. Following polls the file every 50 ms while the container runs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{BufRead, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::runtime::record::Status;
use crate::time::unix_seconds;

const POLL: Duration = Duration::from_millis(50);

#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    pub timestamps: bool,
    /// Last N lines only.
    pub tail: Option<usize>,
    /// Unix seconds.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

impl LogOptions {
    fn from_params(p: &HashMap<String, String>) -> LogOptions {
        let yes = |k: &str| p.get(k).is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"));
        let time = |k: &str| {
            p.get(k).filter(|v| !v.is_empty() && v.as_str() != "0").and_then(|v| {
                v.split('.').next().and_then(|s| s.parse::<i64>().ok()).or_else(|| Some(unix_seconds(Some(v))))
            })
        };
        LogOptions {
            stdout: yes("stdout"),
            stderr: yes("stderr"),
            follow: yes("follow"),
            timestamps: yes("timestamps"),
            tail: p.get("tail").and_then(|t| t.parse::<usize>().ok()),
            since: time("since"),
            until: time("until"),
        }
    }
}

/// One log line as the client sees it: a stdcopy frame, or the raw text for a tty container.
fn frame(line: &Value, opts: &LogOptions, tty: bool) -> Option<Bytes> {
    let stream = line.get("stream").and_then(Value::as_str).unwrap_or("stdout");
    if (stream == "stdout" && !opts.stdout) || (stream == "stderr" && !opts.stderr) {
        return None;
    }
    let time = line.get("time").and_then(Value::as_str).unwrap_or("");
    let t = unix_seconds(Some(time));
    if opts.since.is_some_and(|s| t < s) || opts.until.is_some_and(|u| t > u) {
        return None;
    }
    let text = line.get("log").and_then(Value::as_str).unwrap_or("");
    let payload = if opts.timestamps { format!("{time} {text}") } else { text.to_string() };
    if tty {
        return Some(Bytes::from(payload));
    }
    let mut out = Vec::with_capacity(8 + payload.len());
    out.push(if stream == "stderr" { 2 } else { 1 });
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload.as_bytes());
    Some(Bytes::from(out))
}

/// Send the log's lines to `tx`: the existing ones (the last `tail`), then, when following, new ones until the
/// container stops running (`keep_going` says so) and the file has no more to give.
fn pump(path: PathBuf, opts: LogOptions, tty: bool, tx: mpsc::Sender<Bytes>, keep_going: impl Fn() -> bool) {
    let mut pos: u64 = 0;
    if let Some(n) = opts.tail
        && let Ok(text) = std::fs::read_to_string(&path)
    {
        let lines: Vec<&str> = text.lines().collect();
        for l in &lines[lines.len().saturating_sub(n)..] {
            if let Some(f) = serde_json::from_str::<Value>(l).ok().and_then(|v| frame(&v, &opts, tty))
                && tx.blocking_send(f).is_err()
            {
                return;
            }
        }
        pos = text.len() as u64;
    }
    loop {
        let running = keep_going();
        if let Ok(mut file) = std::fs::File::open(&path) {
            // A rotated log starts over.
            if file.metadata().map(|m| m.len() < pos).unwrap_or(false) {
                pos = 0;
            }
            if file.seek(SeekFrom::Start(pos)).is_ok() {
                let mut reader = std::io::BufReader::new(file);
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    if !line.ends_with('\n') {
                        break; // half-written: read it whole next time
                    }
                    pos += line.len() as u64;
                    if let Some(f) = serde_json::from_str::<Value>(&line).ok().and_then(|v| frame(&v, &opts, tty))
                        && tx.blocking_send(f).is_err()
                    {
                        return;
                    }
                    line.clear();
                }
            }
        }
        if !opts.follow || !running {
            return;
        }
        std::thread::sleep(POLL);
    }
}

/// Whether a container is (or is about to be) running, for followers.
fn still_running(state: &AppState, id: &str, attached_at: i64) -> bool {
    match state.containers.get(id) {
        Ok(r) => match r.state.status {
            Status::Running | Status::Paused | Status::Restarting => true,
            // Attached before start: wait for a run that ends after the attach, unless the start failed.
            Status::Created => r.state.error.is_empty(),
            Status::Exited | Status::Dead => unix_seconds(Some(&r.state.finished_at)) < attached_at,
            Status::Removing => false,
        },
        Err(_) => false,
    }
}

/// `GET /containers/{id}/logs`.
pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Response> {
    let record = state.containers.get(&id)?;
    let opts = LogOptions::from_params(&params);
    if !opts.stdout && !opts.stderr {
        return Err(ApiError::bad_request("you must choose at least one stream"));
    }
    let path = state.runtime.log_path(&record.id);
    let tty = record.config.tty;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let s = state.clone();
    let rid = record.id.clone();
    let running = matches!(record.state.status, Status::Running | Status::Paused | Status::Restarting);
    tokio::task::spawn_blocking(move || {
        // Attached "at 0": any exit ends the follow (for attach, only an exit after the attach does).
        pump(path, opts, tty, tx, move || running && still_running(&s, &rid, 0));
    });
    let stream =
        futures_util::stream::unfold(
            rx,
            |mut rx| async move { rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx)) },
        );
    let content_type =
        if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(stream)).into_response())
}

/// `POST /containers/{id}/attach?stream=1&stdout=1&stderr=1`: the connection is upgraded (hijacked, as Docker
/// does) and carries the container's output until it exits.
pub async fn attach(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    mut req: Request,
) -> ApiResult<Response> {
    let record = state.containers.get(&id)?;
    let mut opts = LogOptions::from_params(&params);
    opts.follow = params.get("stream").is_some_and(|v| v == "1" || v == "true");
    if params.get("logs").is_none_or(|v| v != "1" && v != "true") {
        // Only what is written from now on (for a container not started yet, everything).
        opts.since = None;
    }
    let tty = record.config.tty;
    let attached_at =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    let path = state.runtime.log_path(&record.id);
    let skip_existing = matches!(record.state.status, Status::Running | Status::Paused);
    let want_stdin = record.config.open_stdin && params.get("stdin").is_some_and(|v| v == "1" || v == "true");
    let stdin_once = record.config.stdin_once;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let rid = record.id.clone();
    let s: AppState = state.clone();
    state.attach_count(&rid, 1);
    state.events.container(&record, "attach", &[]);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            s.attach_count(&rid, -1);
            return;
        };
        let (reader, mut io) = tokio::io::split(TokioIo::new(upgraded));
        if want_stdin {
            tokio::spawn(forward_stdin(s.clone(), rid.clone(), reader, stdin_once));
        }
        let (tx, mut rx) = mpsc::channel::<Bytes>(64);
        let s2 = s.clone();
        let rid2 = rid.clone();
        tokio::task::spawn_blocking(move || {
            let mut opts = opts;
            if skip_existing {
                opts.tail = Some(0);
            }
            pump(path, opts, tty, tx, move || still_running(&s2, &rid2, attached_at));
        });
        while let Some(chunk) = rx.recv().await {
            if io.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = io.flush().await;
        let _ = io.shutdown().await;
        s.attach_count(&rid, -1);
    });
    let content_type =
        if tty { "application/vnd.docker.raw-stream" } else { "application/vnd.docker.multiplexed-stream" };
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::empty())
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// How long an attach waits for its container to start before its input has nowhere to go.
const STDIN_START_TIMEOUT: Duration = Duration::from_secs(60);

/// The client's input into the container's stdin FIFO, as it arrives. `docker run -i` attaches before it starts
/// the container, so the FIFO is awaited (bounded); until then the client's bytes wait in the socket. When the
/// client ends its input and the container was created with `StdinOnce` (as `docker run -i` does), the
/// container's stdin gets EOF.
async fn forward_stdin(state: AppState, id: String, mut input: impl tokio::io::AsyncRead + Unpin, stdin_once: bool) {
    let fifo = state.runtime.stdin_fifo(&id);
    let deadline = tokio::time::Instant::now() + STDIN_START_TIMEOUT;
    let mut sender = loop {
        let running = state.containers.get(&id).is_ok_and(|r| matches!(r.state.status, Status::Running));
        if running && let Ok(tx) = tokio::net::unix::pipe::OpenOptions::new().open_sender(&fifo) {
            break tx;
        }
        let gone = state
            .containers
            .get(&id)
            .map(|r| matches!(r.state.status, Status::Exited | Status::Dead) || !r.state.error.is_empty())
            .unwrap_or(true);
        if gone || tokio::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    // A container that exits stops reading: the copy then fails on a broken pipe, which ends this task.
    let _ = tokio::io::copy(&mut input, &mut sender).await;
    drop(sender);
    if stdin_once {
        state.runtime.close_stdin(&id).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_stdcopy() {
        let opts = LogOptions { stdout: true, stderr: true, ..Default::default() };
        let line = serde_json::json!({"log": "hi\n", "stream": "stderr", "time": "2026-01-01T00:00:00Z"});
        let f = frame(&line, &opts, false).unwrap_or_default();
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 0, 3]);
        assert_eq!(&f[8..], b"hi\n");
        let only_out = LogOptions { stdout: true, ..Default::default() };
        assert!(frame(&line, &only_out, false).is_none());
        assert_eq!(frame(&line, &opts, true).unwrap_or_default(), Bytes::from("hi\n"));
    }
}
