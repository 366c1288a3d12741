//! The typed client of berth-netd, for berthd (and tests). It speaks HTTP/1.1 JSON over netd's Unix socket and
//! needs none of the daemon's dependencies (depend on this crate with `default-features = false`).
//!
//! What berthd does with it:
//! - `docker network create/ls/inspect/rm` → `create_network`, `list_networks`, `inspect_network`,
//!   `remove_network` (a network is found by id, name or unique id prefix).
//! - Starting a container: for each of its networks, `connect` with the container's netns
//!   (`/proc/<pid>/ns/net` of its init, or a bind mount of it), its names (container name, hostname, service
//!   name), aliases, optional `ipv4_address`/`mac_address`, and its `dns`/`dns_search`/`dns_opt`. The answer
//!   says which interface it got (`eth0`, `eth1`…), its address, gateway, DNS server and the resolv.conf to
//!   write into the container. Then `publish` its ports.
//! - Stopping or removing it: `unpublish`, then `disconnect` from each network. A container whose namespace
//!   vanished without a disconnect is cleaned by netd on its next start.
//!
//! Errors from netd keep its HTTP status (`ClientError::Api`): 400 bad input, 404 unknown network or endpoint,
//! 409 conflict (name in use, address taken, network has endpoints), 503 no subnet or address left.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
pub use hyper::Method;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::api::{
    Endpoint, EndpointRemove, EndpointRequest, ErrorBody, Network, NetworkCreate, PortPublish, PortUnpublish,
    PublishedPort,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to berth-netd at {socket}: {source}")]
    Connect { socket: PathBuf, source: std::io::Error },
    #[error("berth-netd connection failed: {0}")]
    Http(#[from] hyper::Error),
    #[error("invalid request {0}")]
    Request(String),
    /// An error netd answered with.
    #[error("{message}")]
    Api { status: u16, message: String },
    #[error("cannot decode berth-netd's answer: {0}")]
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

/// Path segments are ids and names; escape what would change the path's meaning.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Client {
    pub fn connect_with_unix(socket: &Path) -> Client {
        Client { socket: socket.to_path_buf() }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn ping(&self) -> Result<(), ClientError> {
        self.call(Method::GET, "/_ping", None).await.map(|_| ())
    }

    pub async fn create_network(&self, req: &NetworkCreate) -> Result<Network, ClientError> {
        self.json(Method::POST, "/networks", Some(req)).await
    }

    pub async fn list_networks(&self) -> Result<Vec<Network>, ClientError> {
        self.json::<(), _>(Method::GET, "/networks", None).await
    }

    /// By id, name or unique id prefix.
    pub async fn inspect_network(&self, key: &str) -> Result<Network, ClientError> {
        self.json::<(), _>(Method::GET, &format!("/networks/{}", segment(key)), None).await
    }

    pub async fn remove_network(&self, key: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &format!("/networks/{}", segment(key)), None).await.map(|_| ())
    }

    pub async fn connect(&self, network: &str, req: &EndpointRequest) -> Result<Endpoint, ClientError> {
        self.json(Method::POST, &format!("/networks/{}/connect", segment(network)), Some(req)).await
    }

    pub async fn disconnect(&self, network: &str, container_id: &str) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&EndpointRemove { container_id: container_id.to_string() })?;
        self.call(Method::POST, &format!("/networks/{}/disconnect", segment(network)), Some(body)).await.map(|_| ())
    }

    /// Publish ports; the answer has one entry per host port (ranges expanded, ephemeral ports chosen).
    pub async fn publish(&self, req: &PortPublish) -> Result<Vec<PublishedPort>, ClientError> {
        self.json(Method::POST, "/ports/publish", Some(req)).await
    }

    pub async fn unpublish(&self, container_id: &str) -> Result<(), ClientError> {
        let body = serde_json::to_vec(&PortUnpublish { container_id: container_id.to_string() })?;
        self.call(Method::POST, "/ports/unpublish", Some(body)).await.map(|_| ())
    }

    async fn json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        let bytes = body.map(serde_json::to_vec).transpose()?;
        let raw = self.call(method, path, bytes).await?;
        Ok(serde_json::from_slice(&raw)?)
    }

    /// One request on a fresh connection (berthd makes few, and the daemon stays simple); a non-2xx answer
    /// becomes `ClientError::Api` with netd's message.
    async fn call(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Bytes, ClientError> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect { socket: self.socket.clone(), source })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut builder = Request::builder().method(method).uri(path).header("Host", "berth-netd");
        if body.is_some() {
            builder = builder.header("Content-Type", "application/json");
        }
        let req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Request(format!("{path}: {e}")))?;
        let resp = sender.send_request(req).await?;
        let status = resp.status();
        let raw = resp.into_body().collect().await?.to_bytes();
        if status.is_success() {
            return Ok(raw);
        }
        let message = serde_json::from_slice::<ErrorBody>(&raw)
            .map(|b| b.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&raw).trim().to_string());
        let message =
            if message.is_empty() { status.canonical_reason().unwrap_or("error").to_string() } else { message };
        Err(ClientError::Api { status: status.as_u16(), message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(segment("proj_default"), "proj_default");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
    }
}
