//! Exec endpoints of the Docker Engine API: `POST /containers/{id}/exec` (create), `POST /exec/{id}/start`,
//! `POST /exec/{id}/resize`, `GET /exec/{id}/json`. Running goes through [`crate::runtime::exec`].
//!
//! `start` without `Detach` hijacks the connection (HTTP upgrade, as the docker CLI expects): the process's
//! output goes to the client as stdcopy frames (raw bytes with a tty), the client's bytes go to its stdin, and
//! the client's half-close is its EOF. When the process never ran (command not found) the runtime's message is
//! written to the stream and the exit code is Docker's 126/127, as the docker CLI reports them.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::runtime::exec::{self, ExecConfig, ExecError, ExecIo, Outcome, Started};

/// How long output still arriving after the process exited is relayed (a background child may hold it open).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

impl From<ExecError> for ApiError {
    fn from(e: ExecError) -> Self {
        match e {
            ExecError::Container(c) => c.into(),
            ExecError::NotRunning(_) | ExecError::Paused(_) | ExecError::AlreadyStarted(_) => {
                ApiError::conflict(e.to_string())
            }
            ExecError::NoSuchExec(_) => ApiError::not_found(e.to_string()),
            ExecError::Invalid(_) => ApiError::bad_request(e.to_string()),
            ExecError::Io { .. } | ExecError::Setup(_) => ApiError::internal(e.to_string()),
        }
    }
}

/// `POST /containers/{id}/exec`.
pub async fn create(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let config: ExecConfig =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("exec config: {e}")))?;
    let record = state.containers.get(&id)?;
    state.runtime.refresh(&record.id).await;
    let record = state.containers.get(&record.id)?;
    exec::check_running(&record)?;
    if config.cmd.is_empty() || config.cmd[0].is_empty() {
        return Err(ApiError::bad_request("no exec command specified"));
    }
    detach_keys(&config.detach_keys).map_err(ApiError::bad_request)?;
    let command = config.cmd.join(" ");
    let exec_id = state.execs.create(&record.id, config)?;
    state.events.container(&record, &format!("exec_create: {command}"), &[("execID", exec_id.clone())]);
    Ok((StatusCode::CREATED, Json(json!({"Id": exec_id}))).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct StartBody {
    detach: bool,
    /// `[height, width]` of the tty from the start (API 1.42+); `[0, 0]` when the client has none.
    console_size: Option<[u16; 2]>,
}

/// `POST /exec/{id}/start`.
pub async fn start(State(state): State<AppState>, Path(id): Path<String>, mut req: Request) -> ApiResult<Response> {
    let entry = state.execs.get(&id)?;
    let record = state.containers.get(&entry.container_id)?;
    state.runtime.refresh(&record.id).await;
    let record = state.containers.get(&record.id)?;
    exec::check_running(&record)?;
    let on_upgrade = hyper::upgrade::on(&mut req);
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("exec start: {e}")))?;
    let start: StartBody = if body.is_empty() {
        StartBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("exec start: {e}")))?
    };
    let entry = state.execs.claim(&id)?;
    let config = entry.config.clone();
    state.events.container(&record, &format!("exec_start: {}", config.cmd.join(" ")), &[("execID", id.clone())]);
    if start.detach {
        let detached = ExecConfig { attach_stdin: false, attach_stdout: false, attach_stderr: false, ..config };
        let started = match exec::start(&state.runtime, &record, &detached).await {
            Ok(s) => s,
            Err(e) => {
                finish(&state, &id, Outcome { exit_code: 126, error: Some(e.to_string()) });
                return Err(e.into());
            }
        };
        let s = state.clone();
        tokio::spawn(async move {
            note_pid(&s, &id, &started);
            let outcome = started.wait().await;
            finish(&s, &id, outcome);
        });
        return Ok(StatusCode::OK.into_response());
    }
    let tty = config.tty;
    let console_size = start.console_size.filter(|[h, w]| *h > 0 && *w > 0);
    let s = state.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            finish(
                &s,
                &id,
                Outcome { exit_code: 126, error: Some("the client did not upgrade the connection".into()) },
            );
            return;
        };
        let (reader, mut writer) = tokio::io::split(TokioIo::new(upgraded));
        let outcome = match exec::start(&s.runtime, &record, &config).await {
            Ok(started) => relay(&s, &id, started, console_size, reader, &mut writer).await,
            Err(e) => Some(Outcome { exit_code: 126, error: Some(e.to_string()) }),
        };
        if let Some(outcome) = outcome {
            if let Some(message) = &outcome.error {
                // Docker writes the runtime's error to the client's stdout.
                let _ = writer.write_all(&frame(1, format!("{message}\r\n").as_bytes(), tty)).await;
            }
            // The exit code is recorded before the stream ends: the docker CLI inspects the exec right then.
            finish(&s, &id, outcome);
        }
        let _ = writer.flush().await;
        let _ = writer.shutdown().await;
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

/// Record the end of an exec.
fn finish(state: &AppState, id: &str, outcome: Outcome) {
    if let Ok(e) = state.execs.update(id, |e| {
        e.running = false;
        e.exit_code = Some(outcome.exit_code);
        e.pty = None;
    }) && let Ok(record) = state.containers.get(&e.container_id)
    {
        state.events.container(
            &record,
            "exec_die",
            &[("execID", id.to_string()), ("exitCode", outcome.exit_code.to_string())],
        );
    }
}

/// The process's pid, for inspect, once the helper reported it (bounded: a short wait after the start).
fn note_pid(state: &AppState, id: &str, started: &Started) {
    let pid_path = started.pid_path();
    let state = state.clone();
    let id = id.to_string();
    tokio::spawn(async move {
        for _ in 0..100 {
            if let Some(pid) = exec::read_pid(&pid_path) {
                let _ = state.execs.update(&id, |e| e.pid = i64::from(pid));
                return;
            }
            if state.execs.get(&id).map(|e| !e.running).unwrap_or(true) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
}

/// Relay between the client and the process until it has exited and its output is delivered.
async fn relay<R, W>(
    state: &AppState,
    id: &str,
    mut started: Started,
    console_size: Option<[u16; 2]>,
    reader: R,
    writer: &mut W,
) -> Option<Outcome>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin,
{
    note_pid(state, id, &started);
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
    let (tx, mut rx) = mpsc::channel::<Bytes>(64);
    let mut tasks = Vec::new();
    let mut stdin_task = None;
    match std::mem::replace(&mut started.io, ExecIo::Pipes { stdin: None, stdout: None, stderr: None }) {
        ExecIo::Pipes { stdin, stdout, stderr } => {
            if let Some(out) = stdout {
                tasks.push(tokio::spawn(pump(out, 1, false, tx.clone())));
            }
            if let Some(err) = stderr {
                tasks.push(tokio::spawn(pump(err, 2, false, tx.clone())));
            }
            if let Some(stdin) = stdin {
                stdin_task = Some(tokio::spawn(copy_stdin(reader, stdin)));
            }
        }
        ExecIo::Pty(master) => {
            if let Some([h, w]) = console_size
                && let Err(e) = exec::resize(&master, h, w)
            {
                tracing::warn!(exec = id, error = %e, "cannot set the exec's console size");
            }
            let _ = state.execs.update(id, |e| e.pty = Some(master.clone()));
            match pty_file(&master) {
                Ok((out, input)) => {
                    tasks.push(tokio::spawn(pump(out, 1, true, tx.clone())));
                    if let Ok(e) = state.execs.get(id)
                        && e.config.attach_stdin
                    {
                        let keys = detach_keys(&e.config.detach_keys).unwrap_or_else(|_| DEFAULT_DETACH_KEYS.to_vec());
                        stdin_task = Some(tokio::spawn(async move {
                            if copy_tty_input(reader, input, &keys).await {
                                let _ = detach_tx.send(());
                            }
                        }));
                    }
                }
                Err(e) => tracing::warn!(exec = id, error = %e, "cannot relay the exec's pty"),
            }
        }
    }
    drop(tx);
    let mut exited = false;
    let mut detached = false;
    let mut deadline = None;
    let helper = &mut started.helper;
    loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Some(c) => if writer.write_all(&c).await.is_err() { break },
                None => break,
            },
            _ = helper.wait(), if !exited => {
                exited = true;
                deadline = Some(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
            }
            Ok(()) = &mut detach_rx, if !exited => {
                detached = true;
                break;
            }
            () = sleep_until(deadline) => break,
        }
    }
    for t in tasks {
        t.abort();
    }
    if let Some(t) = stdin_task {
        t.abort();
    }
    if detached {
        // The detach keys: the client goes, the process runs on and its exit is recorded when it comes.
        let s = state.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let outcome = started.wait().await;
            finish(&s, &id, outcome);
        });
        return None;
    }
    if !exited {
        // The client went away: the process runs on, as with Docker; wait for it to record its exit.
        let _ = started.helper.wait().await;
    }
    Some(started.wait().await)
}

/// Docker's default detach keys: ctrl-p, ctrl-q.
const DEFAULT_DETACH_KEYS: [u8; 2] = [16, 17];

/// Docker's detach key syntax (`ctrl-p,ctrl-q`, `a,ctrl-@`; moby `term.ToBytes`); the default when empty.
pub fn detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    if spec.is_empty() {
        return Ok(DEFAULT_DETACH_KEYS.to_vec());
    }
    spec.split(',')
        .map(|key| {
            let key = key.trim();
            match key.strip_prefix("ctrl-") {
                Some(c) if c.len() == 1 => match c.as_bytes()[0] {
                    b @ b'a'..=b'z' => Ok(b - b'a' + 1),
                    b'@' => Ok(0),
                    b @ b'['..=b'_' => Ok(b - b'[' + 27),
                    _ => Err(format!("invalid detach keys ({spec}): unknown character {key:?}")),
                },
                _ if key.len() == 1 => Ok(key.as_bytes()[0]),
                _ => Err(format!("invalid detach keys ({spec}): unknown character {key:?}")),
            }
        })
        .collect()
}

/// The client's bytes to the pty until the detach sequence (moby `copyEscapable`: bytes of a partial match are
/// passed on when the match breaks); whether the client detached.
async fn copy_tty_input(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin, keys: &[u8]) -> bool {
    let mut matched = 0usize;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => n,
        };
        let mut out = Vec::with_capacity(n);
        let mut detach = false;
        for &b in &buf[..n] {
            if keys.get(matched) == Some(&b) {
                matched += 1;
                if matched == keys.len() {
                    detach = true;
                    break;
                }
                continue;
            }
            out.extend_from_slice(&keys[..matched]);
            matched = 0;
            if keys.first() == Some(&b) {
                matched = 1;
                if keys.len() == 1 {
                    detach = true;
                    break;
                }
                continue;
            }
            out.push(b);
        }
        if to.write_all(&out).await.is_err() || to.flush().await.is_err() {
            return false;
        }
        if detach {
            return true;
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Read a stream of the process and send it on as frames.
async fn pump(mut from: impl AsyncRead + Unpin, stream: u8, tty: bool, tx: mpsc::Sender<Bytes>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(frame(stream, &buf[..n], tty)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The client's bytes to the process's stdin; the client's half-close closes it.
async fn copy_stdin(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let _ = tokio::io::copy(&mut from, &mut to).await;
    let _ = to.shutdown().await;
}

/// The pty master as an async reader and writer (a non-blocking dup of it each way).
fn pty_file(master: &OwnedFd) -> std::io::Result<(tokio::fs::File, tokio::fs::File)> {
    let read = std::fs::File::from(master.try_clone()?);
    let write = std::fs::File::from(master.try_clone()?);
    Ok((tokio::fs::File::from_std(read), tokio::fs::File::from_std(write)))
}

/// A stdcopy frame (`[stream, 0, 0, 0, len BE]` + payload), or the bytes themselves with a tty.
fn frame(stream: u8, payload: &[u8], tty: bool) -> Bytes {
    if tty {
        return Bytes::copy_from_slice(payload);
    }
    let mut out = Vec::with_capacity(8 + payload.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    Bytes::from(out)
}

#[derive(Debug, Deserialize)]
pub struct ResizeParams {
    h: Option<u16>,
    w: Option<u16>,
}

/// `POST /exec/{id}/resize?h=&w=`.
pub async fn resize(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(params): Query<ResizeParams>,
) -> ApiResult<Response> {
    let entry = state.execs.get(&id)?;
    let (Some(h), Some(w)) = (params.h, params.w) else {
        return Err(ApiError::bad_request("resize: h and w are required"));
    };
    let Some(master) = entry.pty.as_ref().map(Arc::clone) else {
        return Err(ApiError::conflict(format!("exec {id} has no running tty")));
    };
    exec::resize(&master, h, w)?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /exec/{id}/json`.
pub async fn inspect(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let e = state.execs.get(&id)?;
    let mut args = e.config.cmd.clone();
    let entrypoint = if args.is_empty() { String::new() } else { args.remove(0) };
    Ok(Json(json!({
        "ID": e.id,
        "Running": e.running,
        "ExitCode": e.exit_code,
        "ProcessConfig": {
            "tty": e.config.tty,
            "entrypoint": entrypoint,
            "arguments": args,
            "privileged": e.config.privileged,
            "user": e.config.user,
        },
        "OpenStdin": e.config.attach_stdin,
        "OpenStderr": e.config.attach_stderr,
        "OpenStdout": e.config.attach_stdout,
        "CanRemove": false,
        "ContainerID": e.container_id,
        "DetachKeys": e.config.detach_keys,
        "Pid": e.pid,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_as_docker_does() {
        assert_eq!(detach_keys(""), Ok(vec![16, 17]));
        assert_eq!(detach_keys("ctrl-a,x,ctrl-@,ctrl-_"), Ok(vec![1, b'x', 0, 31]));
        assert!(detach_keys("ctrl-1").is_err());
        assert!(detach_keys("xy").is_err());
    }

    #[tokio::test]
    async fn the_detach_sequence_ends_tty_input() {
        let keys = [16, 17];
        let mut out = Vec::new();
        assert!(copy_tty_input(&b"ab\x10c\x10\x10\x11ignored"[..], &mut out, &keys).await);
        assert_eq!(out, b"ab\x10c\x10");
        let mut out = Vec::new();
        assert!(!copy_tty_input(&b"plain\x10"[..], &mut out, &keys).await);
        assert_eq!(out, b"plain");
    }

    #[test]
    fn frames_are_stdcopy_unless_tty() {
        let f = frame(2, b"hi", false);
        assert_eq!(&f[..], &[2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(&frame(1, b"hi", true)[..], b"hi");
    }
}
