//! `GET /containers/{id}/stats?stream=&one-shot=` and `GET /containers/{id}/top?ps_args=`, from the container's
//! cgroup ([`crate::runtime::cgroups`]).

use std::collections::HashMap;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::runtime::cgroups::stats::{HostCpu, Sample, networks};
use crate::runtime::cgroups::{self, top};
use crate::runtime::record::{ContainerRecord, Status};
use crate::time::now_rfc3339;

/// Docker's sampling interval: one object per second when streaming, and the gap between the two samples of a
/// one-off answer (the CPU % needs two).
const INTERVAL: Duration = Duration::from_secs(1);

/// Go's zero time, which Docker sends for a `preread` without a previous sample.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn flag(params: &HashMap<String, String>, key: &str) -> Option<bool> {
    params.get(key).map(|v| matches!(v.as_str(), "1" | "true" | "True"))
}

fn is_up(r: &ContainerRecord) -> bool {
    matches!(r.state.status, Status::Running | Status::Paused)
}

/// One sample with its time; `None` when the container does not run (its cgroup is gone).
struct Reading {
    read: String,
    sample: Sample,
    networks: Value,
}

fn reading(state: &AppState, r: &ContainerRecord) -> Option<Reading> {
    if !is_up(r) {
        return None;
    }
    let (shim, cgroup) = cgroups::of_container(&r.id, &state.runtime.shim_dir(&r.id)).ok()?;
    let sample = Sample::read(&cgroup, &HostCpu::read());
    // With the host's network the interfaces are the host's: Docker reports none then.
    let networks = if r.host_config.network_mode.as_deref() == Some("host") {
        Value::Null
    } else {
        serde_json::to_value(networks(shim.init_pid)).unwrap_or(Value::Null)
    };
    Some(Reading { read: now_rfc3339(), sample, networks })
}

/// The `StatsResponse` of `now` after `before`.
fn body(r: &ContainerRecord, now: Option<&Reading>, before: Option<&Reading>) -> Value {
    let sample = now.map(|n| n.sample.clone()).unwrap_or_default();
    let mut v = serde_json::to_value(&sample).unwrap_or_else(|_| json!({}));
    let pre = before.map(|b| b.sample.cpu_stats.clone()).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("name".into(), json!(format!("/{}", r.name)));
        obj.insert("id".into(), json!(r.id));
        obj.insert("read".into(), json!(now.map_or(ZERO_TIME, |n| n.read.as_str())));
        obj.insert("preread".into(), json!(before.map_or(ZERO_TIME, |b| b.read.as_str())));
        obj.insert("num_procs".into(), json!(0));
        obj.insert("storage_stats".into(), json!({}));
        obj.insert("precpu_stats".into(), serde_json::to_value(pre).unwrap_or(Value::Null));
        if let Some(n) = now.map(|n| &n.networks).filter(|n| n.as_object().is_some_and(|o| !o.is_empty())) {
            obj.insert("networks".into(), n.clone());
        }
    }
    v
}

/// `GET /containers/{id}/stats`: one object (`stream=0`; two samples a second apart unless `one-shot=1`), or
/// one a second while the container runs and the client stays connected.
pub async fn stats(state: AppState, key: &str, params: &HashMap<String, String>) -> ApiResult<Response> {
    let record = state.containers.get(key)?;
    state.runtime.refresh(&record.id).await;
    let record = state.containers.get(&record.id)?;
    let stream = flag(params, "stream").unwrap_or(true);
    if !stream {
        let first = reading(&state, &record);
        if flag(params, "one-shot").unwrap_or(false) || first.is_none() {
            return Ok(Json(body(&record, first.as_ref(), None)).into_response());
        }
        tokio::time::sleep(INTERVAL).await;
        let second = reading(&state, &record);
        return Ok(Json(body(&record, second.as_ref(), first.as_ref())).into_response());
    }
    // The stream ends when the container stops (a container that does not run gets one zero object, as from
    // Docker); the client's disconnect ends it earlier, as hyper then drops the body.
    struct Step {
        state: AppState,
        id: String,
        before: Option<Reading>,
        first: bool,
        done: bool,
    }
    let start = Step { state, id: record.id, before: None, first: true, done: false };
    let objects = futures_util::stream::unfold(start, |step| async move {
        if step.done {
            return None;
        }
        if !step.first {
            tokio::time::sleep(INTERVAL).await;
        }
        let current = step.state.containers.get(&step.id).ok()?;
        if !step.first && !is_up(&current) {
            return None;
        }
        let now = reading(&step.state, &current);
        let mut line = body(&current, now.as_ref(), step.before.as_ref()).to_string();
        line.push('\n');
        let done = now.is_none();
        let next = Step { before: now, first: false, done, ..step };
        Some((Ok::<Bytes, std::convert::Infallible>(Bytes::from(line)), next))
    });
    Ok(([("Content-Type", "application/json")], Body::from_stream(objects)).into_response())
}

/// `GET /containers/{id}/top?ps_args=`: `{Titles, Processes}` of the processes in the container's cgroup.
pub async fn top(state: AppState, key: &str, params: &HashMap<String, String>) -> ApiResult<Response> {
    let record = state.containers.get(key)?;
    state.runtime.refresh(&record.id).await;
    let record = state.containers.get(&record.id)?;
    if !is_up(&record) {
        return Err(ApiError::conflict(format!("container {} is not running", record.id)));
    }
    let ps_args = params.get("ps_args").map(String::as_str).unwrap_or_default();
    if !top::supported_ps_args(ps_args) {
        return Err(ApiError::bad_request(format!(
            "ps_args {ps_args:?}: berth lists a container's processes from /proc in the `ps -ef` format only"
        )));
    }
    let (_, cgroup) = cgroups::of_container(&record.id, &state.runtime.shim_dir(&record.id))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let pids = cgroup.procs().map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(top::top(pids)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::cgroups::stats::CpuUsage;

    fn reading(total: u64, read: &str, networks: Value) -> Reading {
        let mut sample = Sample::default();
        sample.cpu_stats.cpu_usage = CpuUsage { total_usage: total, ..Default::default() };
        sample.cpu_stats.system_cpu_usage = total * 10;
        Reading { read: read.to_owned(), sample, networks }
    }

    #[test]
    fn the_body_has_dockers_fields_and_the_previous_sample() {
        let record = ContainerRecord { id: "abc".into(), name: "web".into(), ..Default::default() };
        let before = reading(100, "2026-11-22T10:00:00Z", Value::Null);
        let now = reading(300, "2026-11-22T10:00:01Z", json!({"eth0": {"rx_bytes": 5}}));
        let v = body(&record, Some(&now), Some(&before));
        assert_eq!(v["name"], "/web");
        assert_eq!(v["id"], "abc");
        assert_eq!(v["read"], "2026-11-22T10:00:01Z");
        assert_eq!(v["preread"], "2026-11-22T10:00:00Z");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 300);
        assert_eq!(v["precpu_stats"]["cpu_usage"]["total_usage"], 100);
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 1000);
        assert_eq!(v["networks"]["eth0"]["rx_bytes"], 5);
        assert_eq!(v["num_procs"], 0);
    }

    #[test]
    fn a_container_that_does_not_run_gets_zeros() {
        let record = ContainerRecord { id: "abc".into(), name: "web".into(), ..Default::default() };
        let v = body(&record, None, None);
        assert_eq!(v["read"], ZERO_TIME);
        assert_eq!(v["preread"], ZERO_TIME);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 0);
        assert!(v.get("networks").is_none(), "{v}");
        // No networks (network mode none or host): the key is left out, as Docker does.
        let v = body(&record, Some(&reading(1, "t", json!({}))), None);
        assert!(v.get("networks").is_none(), "{v}");
    }
}
