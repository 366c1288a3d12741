//! Image tarballs over the API: `GET /images/{name}/get` and `/images/get?names=` (save), `POST /images/load`,
//! and `POST /images/create?fromSrc=-` (import of a rootfs tar).
//!
//! The store's archive code is synchronous (`Read`/`Write`); bodies cross to it through a channel in one direction
//! and a spooled temp file in the other, so no archive is ever held in memory.

use std::io::{Seek, Write};

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::image::archive;
use crate::image::import::{ImportSource, import};

/// All values of `key` in a raw query string (Docker repeats `names=` and `changes=`), percent-decoded.
pub fn query_values(query: Option<&str>, key: &str) -> Vec<String> {
    query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| percent_decode(v))
        .collect()
}

/// `+` and `%XX` decoding of a query value. Hand-written: one small function, no URL crate needed for it.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A `Write` that hands its bytes to an async response body.
struct ChannelWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the client went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A tar of `names` streamed as it is written.
pub fn save_response(state: &AppState, names: Vec<String>) -> ApiResult<Response> {
    for n in &names {
        state.images.resolve(n)?;
    }
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    let store = state.images.clone();
    let events = state.events.clone();
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let writer = std::io::BufWriter::with_capacity(256 * 1024, ChannelWriter { tx: tx.clone() });
        if let Err(e) = archive::save(&store, &refs, writer) {
            tracing::warn!(error = %e, "image save failed");
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        } else {
            for name in &names {
                let id = store.resolve(name).map(|i| i.id.to_string()).unwrap_or_else(|_| name.clone());
                events.image("save", &id, name);
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    Ok(([("Content-Type", "application/x-tar")], Body::from_stream(stream)).into_response())
}

/// `GET /images/get?names=a&names=b`.
pub async fn save_many(State(state): State<AppState>, RawQuery(query): RawQuery) -> ApiResult<Response> {
    let names = query_values(query.as_deref(), "names");
    if names.is_empty() {
        return Err(ApiError::bad_request("missing parameter: names"));
    }
    save_response(&state, names)
}

/// Write a request body to an unlinked temp file under the root, then rewind it for the synchronous reader.
async fn spool(state: &AppState, body: Body) -> ApiResult<std::fs::File> {
    let dir = state.paths.root.join("tmp");
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(format!("cannot create {}: {e}", dir.display())))?;
    let mut file =
        tempfile::tempfile_in(&dir).map_err(|e| ApiError::internal(format!("cannot spool the upload: {e}")))?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("reading the upload: {e}")))?;
        file.write_all(&chunk).map_err(|e| ApiError::internal(format!("spooling the upload: {e}")))?;
    }
    file.rewind().map_err(|e| ApiError::internal(format!("spooling the upload: {e}")))?;
    Ok(file)
}

/// `POST /images/load`: Docker answers with JSON messages `{"stream": "Loaded image: busybox:latest\n"}`.
pub async fn load(State(state): State<AppState>, body: Body) -> ApiResult<Response> {
    let file = spool(&state, body).await?;
    let store = state.images.clone();
    let loaded = tokio::task::spawn_blocking(move || archive::load(&store, std::io::BufReader::new(file)))
        .await
        .map_err(|e| ApiError::internal(format!("load task failed: {e}")))??;
    let mut out = String::new();
    for l in loaded {
        let name = match &l {
            archive::Loaded::Tag(r) => r.familiar(),
            archive::Loaded::Id(d) => d.to_string(),
        };
        state.events.image("load", &name, &name);
        out.push_str(&json!({"stream": format!("{l}\n")}).to_string());
        out.push('\n');
    }
    Ok(([("Content-Type", "application/json")], out).into_response())
}

/// `POST /images/create?fromSrc=-&repo=&tag=&changes=…`: import the body as a one-layer image.
pub async fn import_body(state: AppState, query: Option<String>, body: Body) -> ApiResult<Response> {
    let q = query.as_deref();
    let first = |k: &str| query_values(q, k).into_iter().next().filter(|v| !v.is_empty());
    if first("fromSrc").as_deref() != Some("-") {
        return Err(ApiError::bad_request("fromSrc must be `-` (the request body); URLs are not fetched"));
    }
    let reference = match (first("repo"), first("tag")) {
        (Some(r), Some(t)) => Some(format!("{r}:{t}")),
        (Some(r), None) => Some(r),
        _ => None,
    }
    .map(|r| r.parse::<crate::image::Reference>().map_err(|e| ApiError::bad_request(e.to_string())))
    .transpose()?;
    let changes = query_values(q, "changes");
    let file = spool(&state, body).await?;
    let store = state.images.clone();
    let image = tokio::task::spawn_blocking(move || {
        import(&store, ImportSource::Tar(Box::new(std::io::BufReader::new(file))), reference.as_ref(), &changes)
    })
    .await
    .map_err(|e| ApiError::internal(format!("import task failed: {e}")))??;
    state.events.image("import", &image.id.to_string(), &image.id.to_string());
    let line = json!({"status": image.id.to_string()}).to_string() + "\n";
    Ok(([("Content-Type", "application/json")], line).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = Some("names=busybox%3Alatest&names=localhost%3A5000%2Fapp&x=1&changes=CMD+%5B%22sh%22%5D");
        assert_eq!(query_values(q, "names"), ["busybox:latest", "localhost:5000/app"]);
        assert_eq!(query_values(q, "changes"), ["CMD [\"sh\"]"]);
        assert!(query_values(q, "none").is_empty());
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
