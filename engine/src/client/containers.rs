//! Typed container calls, named as bollard names them: `create_container(options, body)`, `start_container`, …
//!
//! Request bodies are the engine's own types ([`CreateBody`], [`ContainerConfig`], [`HostConfig`]), so a field
//! berthd understands is a field the client can send. Answers are typed on the fields callers use and keep the
//! rest in `extra`, so a newer berthd never breaks an older client.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Client, ClientError, Method};
pub use crate::runtime::config::{ContainerConfig, CreateBody, HostConfig, RestartPolicy};

/// `?name=` of `POST /containers/create`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateContainerOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateContainerResponse {
    pub id: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub warnings: Vec<String>,
}

/// `GET /containers/json` options; `filters` as Docker takes them (`{"label": ["a=b"]}`).
#[derive(Debug, Clone, Default)]
pub struct ListContainersOptions {
    pub all: bool,
    pub filters: HashMap<String, Vec<String>>,
}

/// One row of `GET /containers/json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerSummary {
    pub id: String,
    #[serde(default)]
    pub names: Vec<String>,
    #[serde(default)]
    pub image: String,
    #[serde(default, rename = "ImageID")]
    pub image_id: String,
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub created: i64,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub status: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `State` of `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerState {
    pub status: String,
    #[serde(default)]
    pub running: bool,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub restarting: bool,
    #[serde(default, rename = "OOMKilled")]
    pub oom_killed: bool,
    #[serde(default)]
    pub pid: i64,
    #[serde(default)]
    pub exit_code: i64,
    #[serde(default)]
    pub error: String,
    #[serde(default)]
    pub started_at: String,
    #[serde(default)]
    pub finished_at: String,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerInspect {
    pub id: String,
    /// With Docker's leading `/`.
    pub name: String,
    #[serde(default)]
    pub created: String,
    /// The image id (`sha256:…`).
    #[serde(default)]
    pub image: String,
    pub state: ContainerState,
    #[serde(default)]
    pub restart_count: u64,
    pub config: ContainerConfig,
    pub host_config: HostConfig,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// `DELETE /containers/{id}` options.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RemoveContainerOptions {
    pub force: bool,
    /// Remove the container's anonymous volumes too.
    pub v: bool,
}

/// `POST /containers/{id}/wait` answer.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitResponse {
    pub status_code: i64,
    #[serde(default)]
    pub error: Option<WaitError>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WaitError {
    #[serde(default)]
    pub message: String,
}

/// `GET /containers/{id}/logs` options.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LogsOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub timestamps: bool,
    /// `all` or a number of lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tail: Option<String>,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
}

/// One chunk of a container's output, demultiplexed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogOutput {
    StdIn(Bytes),
    StdOut(Bytes),
    StdErr(Bytes),
    /// A tty container's output: one stream, no framing.
    Console(Bytes),
}

impl LogOutput {
    pub fn bytes(&self) -> &Bytes {
        match self {
            LogOutput::StdIn(b) | LogOutput::StdOut(b) | LogOutput::StdErr(b) | LogOutput::Console(b) => b,
        }
    }
}

fn query<T: Serialize>(path: &str, options: &T) -> Result<String, ClientError> {
    let q = serde_urlencoded::to_string(options).map_err(|e| ClientError::Request(format!("{path}: {e}")))?;
    Ok(if q.is_empty() { path.to_string() } else { format!("{path}?{q}") })
}

/// Container ids and names go into paths: anything but Docker's name characters is percent-encoded.
fn segment(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Client {
    /// `POST /containers/create`.
    pub async fn create_container(
        &self,
        options: Option<CreateContainerOptions>,
        body: &CreateBody,
    ) -> Result<CreateContainerResponse, ClientError> {
        let path = query("/containers/create", &options.unwrap_or_default())?;
        self.post_json(&path, body).await
    }

    /// `GET /containers/json`.
    pub async fn list_containers(
        &self,
        options: Option<ListContainersOptions>,
    ) -> Result<Vec<ContainerSummary>, ClientError> {
        let options = options.unwrap_or_default();
        let mut params: Vec<(&str, String)> = Vec::new();
        if options.all {
            params.push(("all", "1".into()));
        }
        if !options.filters.is_empty() {
            params.push(("filters", serde_json::to_string(&options.filters)?));
        }
        self.get_json(&query("/containers/json", &params)?).await
    }

    /// `GET /containers/{id}/json`.
    pub async fn inspect_container(&self, id: &str) -> Result<ContainerInspect, ClientError> {
        self.get_json(&format!("/containers/{}/json", segment(id))).await
    }

    /// `POST /containers/{id}/start`; starting a running container is not an error (Docker answers 304).
    pub async fn start_container(&self, id: &str) -> Result<(), ClientError> {
        self.request(Method::POST, &format!("/containers/{}/start", segment(id)), None).await.map(drop)
    }

    /// `POST /containers/{id}/stop?t=`: the stop signal, then SIGKILL after `timeout` seconds.
    pub async fn stop_container(&self, id: &str, timeout: Option<i64>) -> Result<(), ClientError> {
        let path = format!("/containers/{}/stop", segment(id));
        let t: Vec<(&str, i64)> = timeout.map(|t| ("t", t)).into_iter().collect();
        self.request(Method::POST, &query(&path, &t)?, None).await.map(drop)
    }

    /// `POST /containers/{id}/restart?t=`.
    pub async fn restart_container(&self, id: &str, timeout: Option<i64>) -> Result<(), ClientError> {
        let path = format!("/containers/{}/restart", segment(id));
        let t: Vec<(&str, i64)> = timeout.map(|t| ("t", t)).into_iter().collect();
        self.request(Method::POST, &query(&path, &t)?, None).await.map(drop)
    }

    /// `POST /containers/{id}/kill?signal=` (SIGKILL when `None`).
    pub async fn kill_container(&self, id: &str, signal: Option<&str>) -> Result<(), ClientError> {
        let path = format!("/containers/{}/kill", segment(id));
        let s: Vec<(&str, &str)> = signal.map(|s| ("signal", s)).into_iter().collect();
        self.request(Method::POST, &query(&path, &s)?, None).await.map(drop)
    }

    /// `POST /containers/{id}/pause`.
    pub async fn pause_container(&self, id: &str) -> Result<(), ClientError> {
        self.request(Method::POST, &format!("/containers/{}/pause", segment(id)), None).await.map(drop)
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn unpause_container(&self, id: &str) -> Result<(), ClientError> {
        self.request(Method::POST, &format!("/containers/{}/unpause", segment(id)), None).await.map(drop)
    }

    /// `POST /containers/{id}/rename?name=`.
    pub async fn rename_container(&self, id: &str, name: &str) -> Result<(), ClientError> {
        let path = query(&format!("/containers/{}/rename", segment(id)), &[("name", name)])?;
        self.request(Method::POST, &path, None).await.map(drop)
    }

    /// `POST /containers/{id}/wait?condition=` (`not-running`, `next-exit`, `removed`): blocks until it holds.
    pub async fn wait_container(&self, id: &str, condition: Option<&str>) -> Result<WaitResponse, ClientError> {
        let path = format!("/containers/{}/wait", segment(id));
        let c: Vec<(&str, &str)> = condition.map(|c| ("condition", c)).into_iter().collect();
        let raw = self.request(Method::POST, &query(&path, &c)?, None).await?;
        Ok(serde_json::from_slice(&raw)?)
    }

    /// `DELETE /containers/{id}?force=&v=`.
    pub async fn remove_container(&self, id: &str, options: Option<RemoveContainerOptions>) -> Result<(), ClientError> {
        let path = query(&format!("/containers/{}", segment(id)), &options.unwrap_or_default())?;
        self.request(Method::DELETE, &path, None).await.map(drop)
    }

    /// `GET /containers/{id}/logs` without following: the output so far, demultiplexed.
    pub async fn logs(&self, id: &str, options: &LogsOptions) -> Result<Vec<LogOutput>, ClientError> {
        let mut out = Vec::new();
        self.logs_follow(id, options, false, |chunk| out.push(chunk)).await?;
        Ok(out)
    }

    /// `GET /containers/{id}/logs`, calling `on_chunk` for each chunk; with `follow` it returns when the container
    /// stops (or the connection ends).
    pub async fn logs_follow(
        &self,
        id: &str,
        options: &LogsOptions,
        follow: bool,
        mut on_chunk: impl FnMut(LogOutput),
    ) -> Result<(), ClientError> {
        let path = query(&format!("/containers/{}/logs", segment(id)), options)?;
        let path = if follow { format!("{path}&follow=1") } else { path };
        let mut resp = self.send(Method::GET, &path, None).await?;
        // A tty container's log is raw: berthd says so with the raw-stream content type.
        let framed = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v != "application/vnd.docker.raw-stream");
        let mut demux = Demux::default();
        while let Some(frame) = resp.body_mut().frame().await {
            if let Ok(data) = frame?.into_data() {
                if framed {
                    demux.push(&data, &mut on_chunk);
                } else {
                    on_chunk(LogOutput::Console(data));
                }
            }
        }
        Ok(())
    }
}

/// Docker's stdcopy framing: `[stream, 0, 0, 0, size: u32 big-endian]` then `size` bytes of that stream.
#[derive(Default)]
pub struct Demux {
    buf: Vec<u8>,
}

impl Demux {
    /// Feed bytes as they arrive; every complete frame goes to `on_chunk`.
    pub fn push(&mut self, data: &[u8], on_chunk: &mut impl FnMut(LogOutput)) {
        self.buf.extend_from_slice(data);
        while self.buf.len() >= 8 {
            let size = u32::from_be_bytes([self.buf[4], self.buf[5], self.buf[6], self.buf[7]]) as usize;
            if self.buf.len() < 8 + size {
                break;
            }
            let stream = self.buf[0];
            let payload = Bytes::copy_from_slice(&self.buf[8..8 + size]);
            self.buf.drain(..8 + size);
            on_chunk(match stream {
                0 => LogOutput::StdIn(payload),
                2 => LogOutput::StdErr(payload),
                _ => LogOutput::StdOut(payload),
            });
        }
    }
}

fn null_as_empty<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(stream: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![stream, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn frames_split_anywhere_are_reassembled() {
        let mut bytes = frame(1, b"hello\n");
        bytes.extend(frame(2, b"oops\n"));
        bytes.extend(frame(1, b""));
        for cut in 0..bytes.len() {
            let mut demux = Demux::default();
            let mut got = Vec::new();
            demux.push(&bytes[..cut], &mut |c| got.push(c));
            demux.push(&bytes[cut..], &mut |c| got.push(c));
            assert_eq!(
                got,
                vec![
                    LogOutput::StdOut(Bytes::from_static(b"hello\n")),
                    LogOutput::StdErr(Bytes::from_static(b"oops\n")),
                    LogOutput::StdOut(Bytes::new()),
                ],
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn options_become_docker_query_strings() {
        let q = query("/containers/x", &RemoveContainerOptions { force: true, v: false });
        assert_eq!(q.ok().as_deref(), Some("/containers/x?force=true&v=false"));
        let q = query("/containers/create", &CreateContainerOptions { name: Some("a b".into()) });
        assert_eq!(q.ok().as_deref(), Some("/containers/create?name=a+b"));
        assert_eq!(query("/p", &CreateContainerOptions::default()).ok().as_deref(), Some("/p"));
        assert_eq!(segment("web/../x"), "web%2F..%2Fx");
    }

    #[test]
    fn inspect_answers_decode_with_unknown_fields_kept() {
        let raw = serde_json::json!({
            "Id": "abc", "Name": "/web", "Image": "sha256:1",
            "State": {"Status": "running", "Running": true, "Pid": 7, "ExitCode": 0, "Health": {"Status": "healthy"}},
            "Config": {"Image": "busybox", "Env": null, "Cmd": ["sleep", "1"]},
            "HostConfig": {"NetworkMode": "none"},
            "Mounts": []
        });
        let inspect: ContainerInspect = serde_json::from_value(raw).unwrap_or_default();
        assert_eq!(inspect.name, "/web");
        assert!(inspect.state.running);
        assert!(inspect.state.extra.contains_key("Health"));
        assert!(inspect.extra.contains_key("Mounts"));
        assert_eq!(inspect.config.cmd, Some(vec!["sleep".to_string(), "1".to_string()]));
    }
}
