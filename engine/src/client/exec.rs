//! Exec through the typed client: `create_exec`, `start_exec` (attached: the hijacked stream; or detached),
//! `resize_exec`, `inspect_exec`. `berth exec` and the tests use them.

use bytes::Bytes;
use http_body_util::Full;
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;

use super::{Client, ClientError, api_error};
pub use crate::runtime::exec::ExecConfig as CreateExecOptions;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateExecResults {
    pub id: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct StartExecOptions {
    pub detach: bool,
    pub tty: bool,
    /// `[height, width]` of a tty, set as soon as the pty exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_size: Option<[u16; 2]>,
}

/// An attached exec: the hijacked connection. Write to `io` for the process's stdin (shut it down for EOF);
/// read its output (stdcopy frames unless `tty`) or let [`ExecStream::collect`] do it.
pub struct ExecStream {
    pub io: TokioIo<Upgraded>,
    pub tty: bool,
}

/// The output of an exec, split by stream (with a tty, everything is stdout).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecStream {
    /// Read until the exec ends; demultiplex stdcopy frames.
    pub async fn collect(mut self) -> Result<ExecOutput, ClientError> {
        let mut raw = Vec::new();
        self.io.read_to_end(&mut raw).await.map_err(|e| ClientError::Request(format!("exec stream: {e}")))?;
        if self.tty {
            return Ok(ExecOutput { stdout: raw, stderr: Vec::new() });
        }
        demux(&raw)
    }
}

/// Split stdcopy frames (`[stream, 0, 0, 0, len BE]` + payload).
pub fn demux(mut raw: &[u8]) -> Result<ExecOutput, ClientError> {
    let mut out = ExecOutput::default();
    while !raw.is_empty() {
        if raw.len() < 8 {
            return Err(ClientError::Request("exec stream: a truncated frame header".into()));
        }
        let len = u32::from_be_bytes([raw[4], raw[5], raw[6], raw[7]]) as usize;
        let payload =
            raw.get(8..8 + len).ok_or_else(|| ClientError::Request("exec stream: a truncated frame".into()))?;
        match raw[0] {
            2 => out.stderr.extend_from_slice(payload),
            _ => out.stdout.extend_from_slice(payload),
        }
        raw = &raw[8 + len..];
    }
    Ok(out)
}

/// `GET /exec/{id}/json`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExecInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub running: bool,
    /// None while it runs.
    pub exit_code: Option<i64>,
    pub pid: i64,
    #[serde(rename = "ContainerID")]
    pub container_id: String,
    pub process_config: ProcessConfig,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ProcessConfig {
    pub tty: bool,
    pub entrypoint: String,
    pub arguments: Vec<String>,
    pub privileged: bool,
    pub user: String,
}

impl Client {
    /// `POST /containers/{id}/exec`.
    pub async fn create_exec(
        &self,
        container: &str,
        options: &CreateExecOptions,
    ) -> Result<CreateExecResults, ClientError> {
        self.post_json(&format!("/containers/{container}/exec"), options).await
    }

    /// `POST /exec/{id}/start`: `Some(stream)` when attached, `None` when detached.
    pub async fn start_exec(&self, id: &str, options: &StartExecOptions) -> Result<Option<ExecStream>, ClientError> {
        let path = format!("/exec/{id}/start");
        let body = serde_json::to_vec(options)?;
        if options.detach {
            self.request(Method::POST, &path, Some(body)).await?;
            return Ok(None);
        }
        let stream = UnixStream::connect(self.socket())
            .await
            .map_err(|source| ClientError::Connect { socket: self.socket().to_path_buf(), source })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // `with_upgrades`: the connection is handed over to us after the 101.
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let req = Request::builder()
            .method(Method::POST)
            .uri(&path)
            .header("Host", "berth")
            .header("Content-Type", "application/json")
            .header("Connection", "Upgrade")
            .header("Upgrade", "tcp")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ClientError::Request(format!("{path}: {e}")))?;
        let resp = sender.send_request(req).await?;
        if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
            return Err(api_error(resp).await);
        }
        let upgraded = hyper::upgrade::on(resp).await?;
        Ok(Some(ExecStream { io: TokioIo::new(upgraded), tty: options.tty }))
    }

    /// `POST /exec/{id}/resize?h=&w=`.
    pub async fn resize_exec(&self, id: &str, height: u16, width: u16) -> Result<(), ClientError> {
        self.request(Method::POST, &format!("/exec/{id}/resize?h={height}&w={width}"), None).await.map(|_| ())
    }

    /// `GET /exec/{id}/json`.
    pub async fn inspect_exec(&self, id: &str) -> Result<ExecInspect, ClientError> {
        self.get_json(&format!("/exec/{id}/json")).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_by_stream() -> Result<(), ClientError> {
        let raw = [&[1u8, 0, 0, 0, 0, 0, 0, 2][..], b"hi", &[2, 0, 0, 0, 0, 0, 0, 1], b"!"].concat();
        let out = demux(&raw)?;
        assert_eq!(out.stdout, b"hi");
        assert_eq!(out.stderr, b"!");
        assert!(demux(&[1, 0, 0, 0, 0, 0, 0, 5, b'x']).is_err());
        Ok(())
    }
}
