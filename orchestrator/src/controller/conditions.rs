//! `depends_on` conditions: what a dependent waits for before its containers start. `service_started` holds once
//! the dependency's step is done; `service_healthy` polls the containers' `State.Health`; and
//! `service_completed_successfully` waits for them to exit with code 0. Every wait is bounded by a timeout.

use std::time::Duration;

use berth_engine::client::Client;
use berth_engine::client::containers::ContainerInspect;
use tokio::time::Instant;

use crate::compose::model::DependencyCondition;

/// How often health is polled.
const POLL: Duration = Duration::from_millis(200);

/// One container's answer to a condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ready,
    Waiting,
    Failed(String),
}

/// `service_healthy` for one inspected container.
pub fn health_verdict(c: &ContainerInspect) -> Verdict {
    let name = super::names::plain(&c.name);
    let health = c.state.extra.get("Health").and_then(|h| h.get("Status")).and_then(|s| s.as_str());
    match health {
        Some("healthy") => Verdict::Ready,
        Some("unhealthy") => Verdict::Failed(format!("container {name} is unhealthy")),
        _ if !c.state.running && !c.state.restarting && c.state.status != "created" => {
            Verdict::Failed(format!("container {name} exited ({})", c.state.exit_code))
        }
        Some(_) => Verdict::Waiting,
        None => Verdict::Failed(format!("container {name} has no healthcheck configured")),
    }
}

/// `service_completed_successfully` for one container's exit code.
pub fn completion_verdict(name: &str, exit_code: i64) -> Verdict {
    if exit_code == 0 {
        Verdict::Ready
    } else {
        Verdict::Failed(format!("container {name} exited with code {exit_code}"))
    }
}

/// Wait until every container (`(id, name)`) of `service` meets `condition`, or fail with the reason.
pub async fn wait_for(
    client: &Client,
    service: &str,
    containers: &[(String, String)],
    condition: DependencyCondition,
    timeout: Duration,
) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let timed_out = || format!("dependency {service:?} did not become ready within {}s", timeout.as_secs());
    match condition {
        DependencyCondition::ServiceStarted => Ok(()),
        DependencyCondition::ServiceHealthy => {
            for (id, _) in containers {
                loop {
                    let inspect = client.inspect_container(id).await.map_err(|e| e.to_string())?;
                    match health_verdict(&inspect) {
                        Verdict::Ready => break,
                        Verdict::Failed(why) => return Err(format!("dependency {service:?} failed: {why}")),
                        Verdict::Waiting if Instant::now() >= deadline => return Err(timed_out()),
                        Verdict::Waiting => tokio::time::sleep(POLL).await,
                    }
                }
            }
            Ok(())
        }
        DependencyCondition::ServiceCompletedSuccessfully => {
            for (id, name) in containers {
                let waited = tokio::time::timeout_at(deadline, client.wait_container(id, Some("not-running")))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| e.to_string())?;
                if let Verdict::Failed(why) = completion_verdict(name, waited.status_code) {
                    return Err(format!("service {service:?} didn't complete successfully: {why}"));
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn inspect(state: serde_json::Value) -> ContainerInspect {
        serde_json::from_value(json!({
            "Id": "x", "Name": "/p-db-1", "State": state, "Config": {}, "HostConfig": {}
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn health_states() {
        let healthy = inspect(json!({"Status": "running", "Running": true, "Health": {"Status": "healthy"}}));
        assert_eq!(health_verdict(&healthy), Verdict::Ready);
        let starting = inspect(json!({"Status": "running", "Running": true, "Health": {"Status": "starting"}}));
        assert_eq!(health_verdict(&starting), Verdict::Waiting);
        let sick = inspect(json!({"Status": "running", "Running": true, "Health": {"Status": "unhealthy"}}));
        assert!(matches!(health_verdict(&sick), Verdict::Failed(m) if m.contains("unhealthy")));
        let none = inspect(json!({"Status": "running", "Running": true}));
        assert!(matches!(health_verdict(&none), Verdict::Failed(m) if m.contains("no healthcheck")));
        let dead = inspect(json!({"Status": "exited", "ExitCode": 3, "Health": {"Status": "starting"}}));
        assert!(matches!(health_verdict(&dead), Verdict::Failed(m) if m.contains("exited (3)")));
    }

    #[test]
    fn completion_needs_exit_zero() {
        assert_eq!(completion_verdict("m", 0), Verdict::Ready);
        assert!(matches!(completion_verdict("m", 2), Verdict::Failed(m) if m.contains("code 2")));
    }
}
