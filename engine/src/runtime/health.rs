//! Healthchecks: Docker's `Config.Healthcheck` (or the image's), probed by exec while the container runs.
//!
//! One monitor task per container with a healthcheck, started with the container's watcher (on start and, for
//! running containers, on berthd's start) and ended with it. Each run of the container (told apart by its
//! `StartedAt`) starts `starting` with a failing streak of 0; the log of the last 5 probes is kept. A probe
//! runs every `Interval` (`StartInterval` while still starting inside `StartPeriod`), is killed after `Timeout`
//! (exit -1, as Docker), exit 0 is healthy, anything else a failure; `Retries` failures in a row make the
//! container unhealthy, except failures inside the start period while it never was healthy. Health lives in
//! the container's record, so inspect after a berthd restart shows it, and berthd's restart does not reset it.
//! A change of status is a `health_status: <status>` event.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::exec::{self, ExecConfig};
use super::lifecycle::Runtime;
use super::record::{ContainerRecord, Status};
use crate::time::now_rfc3339;

/// Docker's defaults (moby daemon/health.go).
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_RETRIES: u64 = 3;
/// Probe results kept in the log.
const MAX_LOG: usize = 5;
/// Bytes of a probe's output kept.
const MAX_OUTPUT: usize = 4096;
/// How often a monitor looks again while the container is paused or between runs.
const IDLE_POLL: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    #[default]
    Starting,
    Healthy,
    Unhealthy,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthStatus::Starting => "starting",
            HealthStatus::Healthy => "healthy",
            HealthStatus::Unhealthy => "unhealthy",
        }
    }
}

/// `State.Health` of inspect, as the record keeps it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    pub status: HealthStatus,
    pub failing_streak: u64,
    #[serde(default)]
    pub log: Vec<HealthLog>,
    /// The `StartedAt` of the run this health belongs to (not shown by inspect): a new run starts over.
    #[serde(default)]
    pub run: String,
}

impl Health {
    /// As inspect shows it.
    pub fn to_api(&self) -> Value {
        json!({"Status": self.status.as_str(), "FailingStreak": self.failing_streak, "Log": self.log})
    }

    /// Record one probe's result (moby `handleProbeResult`); whether the status changed.
    pub fn record(&mut self, result: HealthLog, check: &Healthcheck, in_start_period: bool) -> bool {
        let before = self.status;
        let healthy = result.exit_code == 0;
        if self.log.len() >= MAX_LOG {
            self.log.drain(..=self.log.len() - MAX_LOG);
        }
        self.log.push(result);
        if healthy {
            self.failing_streak = 0;
            self.status = HealthStatus::Healthy;
        } else if !(self.status == HealthStatus::Starting && in_start_period) {
            self.failing_streak += 1;
            if self.failing_streak >= check.retries {
                self.status = HealthStatus::Unhealthy;
            }
        }
        self.status != before
    }
}

/// One probe's result in the log.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HealthLog {
    pub start: String,
    pub end: String,
    pub exit_code: i64,
    pub output: String,
}

/// A container's effective healthcheck.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// The probe's command line (`CMD-SHELL` already turned into `/bin/sh -c …`).
    pub command: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub start_period: Duration,
    pub start_interval: Duration,
    pub retries: u64,
}

/// The healthcheck from the container's config merged over the image's (moby daemon/commit.go `merge`): a
/// missing one is the image's; an empty `Test` or a zero field takes the image's. `None` without one, or with
/// `["NONE"]`.
pub fn effective(container: Option<&Value>, image: Option<&Value>) -> Option<Healthcheck> {
    let pick = |key: &str| -> Option<&Value> {
        let own = container.and_then(|c| c.get(key)).filter(|v| !is_zero(v));
        own.or_else(|| image.and_then(|i| i.get(key)).filter(|v| !is_zero(v)))
    };
    let test: Vec<String> = pick("Test")?.as_array()?.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    let command = match test.first().map(String::as_str) {
        Some("CMD") => test[1..].to_vec(),
        Some("CMD-SHELL") => vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")],
        _ => return None,
    };
    if command.is_empty() || command[0].is_empty() {
        return None;
    }
    let duration = |key: &str, default: Duration| {
        pick(key).and_then(Value::as_u64).filter(|n| *n > 0).map(Duration::from_nanos).unwrap_or(default)
    };
    Some(Healthcheck {
        command,
        interval: duration("Interval", DEFAULT_INTERVAL),
        timeout: duration("Timeout", DEFAULT_TIMEOUT),
        start_period: duration("StartPeriod", Duration::ZERO),
        start_interval: duration("StartInterval", DEFAULT_START_INTERVAL),
        retries: pick("Retries").and_then(Value::as_u64).filter(|n| *n > 0).unwrap_or(DEFAULT_RETRIES),
    })
}

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Number(n) => n.as_u64() == Some(0),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The image's `config.Healthcheck` (Docker's image config; OCI's has none, so it is read from the config blob).
fn image_healthcheck(runtime: &Runtime, record: &ContainerRecord) -> Option<Value> {
    let id = record.image_id.as_ref()?;
    let blob = runtime.images.read_blob(id).ok()?;
    let config: Value = serde_json::from_slice(&blob).ok()?;
    config.get("config")?.get("Healthcheck").cloned()
}

/// The container's healthcheck, if it has one.
pub fn healthcheck_of(runtime: &Runtime, record: &ContainerRecord) -> Option<Healthcheck> {
    effective(record.config.healthcheck.as_ref(), image_healthcheck(runtime, record).as_ref())
}

/// The monitors running, by container id.
#[derive(Default)]
pub struct Monitors {
    tasks: Mutex<HashMap<String, tokio::task::AbortHandle>>,
}

impl Monitors {
    /// Start monitoring container `id` if it has a healthcheck (a monitor already running is left alone).
    /// Returns whether one runs now.
    pub fn start(self: &Arc<Self>, runtime: &Arc<Runtime>, id: &str) -> bool {
        let Ok(record) = runtime.containers.get(id) else { return false };
        let Some(check) = healthcheck_of(runtime, &record) else { return false };
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        if tasks.get(id).is_some_and(|t| !t.is_finished()) {
            return true;
        }
        let handle = tokio::spawn(monitor(runtime.clone(), record.id.clone(), check));
        tasks.insert(record.id, handle.abort_handle());
        true
    }

    /// Stop monitoring container `id`.
    pub fn stop(&self, id: &str) {
        if let Some(t) = self.tasks.lock().unwrap_or_else(|e| e.into_inner()).remove(id) {
            t.abort();
        }
    }
}

/// The monitor of one container, until aborted or the container is gone.
async fn monitor(runtime: Arc<Runtime>, id: String, check: Healthcheck) {
    let mut run = String::new();
    loop {
        let Ok(record) = runtime.containers.get(&id) else { return };
        if record.state.status != Status::Running {
            tokio::time::sleep(IDLE_POLL).await;
            continue;
        }
        if record.state.started_at != run {
            run = record.state.started_at.clone();
            begin_run(&runtime, &record);
        }
        let started = started_at(&record);
        let in_start_period = |now: SystemTime| now.duration_since(started).unwrap_or_default() < check.start_period;
        let starting = record.state.health.as_ref().is_some_and(|h| h.status == HealthStatus::Starting);
        let wait = if starting && in_start_period(SystemTime::now()) { check.start_interval } else { check.interval };
        tokio::time::sleep(wait).await;
        // Stopped, paused or restarted meanwhile: look again before probing.
        let Ok(record) = runtime.containers.get(&id) else { return };
        if record.state.status != Status::Running || record.state.started_at != run {
            continue;
        }
        let probe_started = SystemTime::now();
        let result = probe(&runtime, &record, &check).await;
        let Ok(now) = runtime.containers.get(&id) else { return };
        if now.state.status != Status::Running || now.state.started_at != run {
            continue; // the probe saw the container go; that is no verdict on its health
        }
        let mut changed = None;
        let updated = runtime.containers.update(&id, |r| {
            let health = r.state.health.get_or_insert_with(Default::default);
            if health.record(result.clone(), &check, in_start_period(probe_started)) {
                changed = Some(health.status);
            }
        });
        if let (Ok(r), Some(status)) = (updated, changed) {
            runtime.events.container(&r, &format!("health_status: {}", status.as_str()), &[]);
        }
    }
}

/// A new run starts `starting` with no failing streak (the log stays, as Docker's); the same run seen again
/// after berthd restarted keeps its health.
fn begin_run(runtime: &Runtime, record: &ContainerRecord) {
    if record.state.health.as_ref().is_some_and(|h| h.run == record.state.started_at) {
        return;
    }
    let _ = runtime.containers.update(&record.id, |r| {
        let health = r.state.health.get_or_insert_with(Default::default);
        health.status = HealthStatus::Starting;
        health.failing_streak = 0;
        health.run = r.state.started_at.clone();
    });
}

fn started_at(record: &ContainerRecord) -> SystemTime {
    let secs = crate::time::unix_seconds(Some(&record.state.started_at));
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).unwrap_or(0))
}

/// Run the probe once; its log entry.
async fn probe(runtime: &Runtime, record: &ContainerRecord, check: &Healthcheck) -> HealthLog {
    let start = now_rfc3339();
    let config = ExecConfig { cmd: check.command.clone(), user: record.config.user.clone(), ..Default::default() };
    let (exit_code, output) = match exec::run_captured(runtime, record, &config, check.timeout, MAX_OUTPUT).await {
        Ok(c) if c.timed_out => (-1, format!("Health check exceeded timeout ({})", go_duration(check.timeout))),
        Ok(c) => (c.exit_code, c.output),
        Err(e) => (-1, e.to_string()),
    };
    HealthLog { start, end: now_rfc3339(), exit_code, output }
}

/// A duration as Go prints it (`1s`, `1.5s`, `500ms`), as in Docker's timeout message.
fn go_duration(d: Duration) -> String {
    if d.as_secs() == 0 {
        return format!("{}ms", d.as_millis());
    }
    let secs = d.as_secs_f64();
    if secs.fract() == 0.0 { format!("{}s", d.as_secs()) } else { format!("{secs}s") }
}

/// `docker ps`'s health suffix: ` (healthy)`, ` (health: starting)`, ` (unhealthy)`.
pub fn status_suffix(record: &ContainerRecord) -> &'static str {
    match record.state.health.as_ref().map(|h| h.status) {
        Some(HealthStatus::Starting) => " (health: starting)",
        Some(HealthStatus::Healthy) => " (healthy)",
        Some(HealthStatus::Unhealthy) => " (unhealthy)",
        None => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(retries: u64) -> Healthcheck {
        Healthcheck {
            command: vec!["true".into()],
            interval: DEFAULT_INTERVAL,
            timeout: DEFAULT_TIMEOUT,
            start_period: Duration::ZERO,
            start_interval: DEFAULT_START_INTERVAL,
            retries,
        }
    }

    fn result(code: i64) -> HealthLog {
        HealthLog { exit_code: code, ..Default::default() }
    }

    #[test]
    fn container_healthcheck_is_merged_over_the_image() {
        let image = json!({"Test": ["CMD", "check"], "Interval": 2_000_000_000u64, "Retries": 5});
        let own = json!({"Test": [], "Timeout": 1_000_000_000u64});
        let h = effective(Some(&own), Some(&image)).unwrap_or_else(|| check(0));
        assert_eq!(h.command, vec!["check".to_string()]);
        assert_eq!((h.interval, h.timeout, h.retries), (Duration::from_secs(2), Duration::from_secs(1), 5));
        let shell = json!({"Test": ["CMD-SHELL", "curl -f localhost || exit 1"]});
        let h = effective(Some(&shell), None).unwrap_or_else(|| check(0));
        assert_eq!(h.command, vec!["/bin/sh", "-c", "curl -f localhost || exit 1"]);
        assert_eq!((h.interval, h.timeout, h.retries), (DEFAULT_INTERVAL, DEFAULT_TIMEOUT, DEFAULT_RETRIES));
        assert_eq!(effective(Some(&json!({"Test": ["NONE"]})), Some(&image)), None);
        assert_eq!(effective(None, None), None);
        assert_eq!(effective(Some(&json!({"Test": ["CMD"]})), None), None);
    }

    #[test]
    fn failures_in_a_row_make_it_unhealthy_and_a_success_heals() {
        let mut h = Health::default();
        assert!(!h.record(result(1), &check(2), false));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 1));
        assert!(h.record(result(1), &check(2), false));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 2));
        assert!(h.record(result(0), &check(2), false));
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Healthy, 0));
        for _ in 0..10 {
            h.record(result(0), &check(2), false);
        }
        assert_eq!(h.log.len(), MAX_LOG);
    }

    #[test]
    fn failures_in_the_start_period_do_not_count_until_healthy() {
        let mut h = Health::default();
        h.record(result(1), &check(1), true);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Starting, 0));
        h.record(result(0), &check(1), true);
        h.record(result(1), &check(1), true);
        assert_eq!((h.status, h.failing_streak), (HealthStatus::Unhealthy, 1));
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(Duration::from_secs(1)), "1s");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_millis(500)), "500ms");
    }
}
