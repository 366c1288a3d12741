//! The typed client of berthd, bollard-like: `Client::connect_with_unix(path)` and one method per API call.
//! The orchestrator and the e2e tests use it; it speaks plain HTTP/1.1 over the Unix socket.

pub mod containers;
pub mod events;
pub mod exec;
pub mod networks;
pub mod volumes;

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
pub use hyper::Method;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to berthd at {socket}: {source}")]
    Connect { socket: PathBuf, source: std::io::Error },
    #[error("berthd connection failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("invalid request {0}")]
    Request(String),
    /// An error berthd answered with (Docker's `{"message": …}`).
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("cannot decode berthd's answer: {0}")]
    Decode(#[from] serde_json::Error),
}

impl ClientError {
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn connect_with_unix(socket: &Path) -> Client {
        Client { socket: socket.to_path_buf() }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `GET /_ping`.
    pub async fn ping(&self) -> Result<(), ClientError> {
        self.send(Method::GET, "/_ping", None).await.map(|_| ())
    }

    /// `GET /version`.
    pub async fn version(&self) -> Result<serde_json::Value, ClientError> {
        self.get_json("/version").await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let resp = self.send(Method::GET, path, None).await?;
        Ok(serde_json::from_slice(&collect(resp).await?)?)
    }

    pub async fn post_json<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, ClientError> {
        let bytes = serde_json::to_vec(body)?;
        let resp = self.send(Method::POST, path, Some(bytes)).await?;
        let raw = collect(resp).await?;
        if raw.is_empty() {
            return Ok(serde_json::from_slice(b"null")?);
        }
        Ok(serde_json::from_slice(&raw)?)
    }

    /// A request whose answer is not needed beyond its status.
    pub async fn request(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Bytes, ClientError> {
        let resp = self.send(method, path, body).await?;
        collect(resp).await
    }

    /// A request whose answer is a stream of JSON objects, one per line (pull and push progress).
    /// An object with an `error` field ends the stream with that error.
    pub async fn stream_json(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        mut on_message: impl FnMut(serde_json::Value),
    ) -> Result<(), ClientError> {
        let mut resp = self.send(method, path, body).await?;
        let mut buf: Vec<u8> = Vec::new();
        let mut handle = |line: &[u8]| -> Result<(), ClientError> {
            if line.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let v: serde_json::Value = serde_json::from_slice(line)?;
            if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
                return Err(ClientError::Api { status: 500, message: err.to_string() });
            }
            on_message(v);
            Ok(())
        };
        while let Some(frame) = resp.body_mut().frame().await {
            if let Ok(data) = frame?.into_data() {
                buf.extend_from_slice(&data);
                while let Some(pos) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=pos).collect();
                    handle(&line)?;
                }
            }
        }
        handle(&buf)
    }

    /// Send one request on a fresh connection; a non-2xx answer becomes `ClientError::Api`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Response<Incoming>, ClientError> {
        let mut sender = self.open().await?;
        let has_body = body.is_some();
        let mut builder = Request::builder().method(method).uri(path).header("Host", "berth");
        if has_body {
            builder = builder.header("Content-Type", "application/json");
        }
        let req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Request(format!("{path}: {e}")))?;
        check(sender.send_request(req).await?).await
    }

    /// A fresh HTTP/1.1 connection to berthd (one per request: the CLI makes few, and the daemon stays simple).
    async fn open<B>(&self) -> Result<hyper::client::conn::http1::SendRequest<B>, ClientError>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect { socket: self.socket.clone(), source })?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }
}

impl Client {
    /// Send the contents of `file` as the request body, streamed in chunks (image tarballs can be large).
    pub async fn upload(
        &self,
        path: &str,
        file: tokio::fs::File,
        content_type: &str,
    ) -> Result<Response<Incoming>, ClientError> {
        use http_body_util::StreamBody;
        use hyper::body::Frame;
        use tokio::io::AsyncReadExt;
        let mut sender = self.open().await?;
        let chunks = futures_util::stream::unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(Frame::data(Bytes::from(buf))), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("Host", "berth")
            .header("Content-Type", content_type)
            .body(StreamBody::new(chunks))
            .map_err(|e| ClientError::Request(format!("{path}: {e}")))?;
        check(sender.send_request(req).await?).await
    }

    /// Stream a response body into `out` (image tarballs).
    pub async fn download(&self, path: &str, out: &mut (impl std::io::Write + ?Sized)) -> Result<u64, ClientError> {
        let mut resp = self.send(Method::GET, path, None).await?;
        let mut total = 0u64;
        while let Some(frame) = resp.body_mut().frame().await {
            if let Ok(data) = frame?.into_data() {
                out.write_all(&data).map_err(|e| ClientError::Request(format!("writing {path}: {e}")))?;
                total += data.len() as u64;
            }
        }
        Ok(total)
    }
}

/// The response when berthd answered 2xx (or 304), else its error.
async fn check(resp: Response<Incoming>) -> Result<Response<Incoming>, ClientError> {
    if resp.status().is_success() || resp.status() == StatusCode::NOT_MODIFIED {
        Ok(resp)
    } else {
        Err(api_error(resp).await)
    }
}

/// A non-2xx answer as `ClientError::Api`, with Docker's `{"message": …}` when the body has one.
async fn api_error(resp: Response<Incoming>) -> ClientError {
    let status = resp.status().as_u16();
    let raw = collect(resp).await.unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&raw)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(&raw).into_owned());
    ClientError::Api { status, message }
}

async fn collect(resp: Response<Incoming>) -> Result<Bytes, ClientError> {
    Ok(resp.into_body().collect().await?.to_bytes())
}
