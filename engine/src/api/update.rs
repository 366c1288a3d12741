//! `POST /containers/{id}/update` (`docker update`): the restart policy. Resource changes are refused with a 400
//! rather than accepted and silently ignored; the docker CLI sends them as zeros unless asked, which pass.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::AppState;
use super::error::{ApiError, ApiResult};
use crate::runtime::config::RestartPolicy;
use crate::runtime::restart::Policy;

/// `POST /containers/{id}/update`.
pub async fn update(State(state): State<AppState>, Path(id): Path<String>, body: Bytes) -> ApiResult<Response> {
    let record = state.containers.get(&id)?;
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid update body: {e}")))?
    };
    let fields = body.as_object().ok_or_else(|| ApiError::bad_request("invalid update body: expected an object"))?;
    if let Some((key, _)) = fields.iter().find(|(k, v)| k.as_str() != "RestartPolicy" && is_set(v)) {
        return Err(ApiError::bad_request(format!("{key}: berthd updates only the restart policy of a container")));
    }
    let Some(raw) = fields.get("RestartPolicy").filter(|v| is_set(v)) else {
        return Ok(Json(json!({"Warnings": []})).into_response());
    };
    let policy: RestartPolicy =
        serde_json::from_value(raw.clone()).map_err(|e| ApiError::bad_request(format!("RestartPolicy: {e}")))?;
    policy.validate().map_err(ApiError::bad_request)?;
    if record.host_config.auto_remove && Policy::of(&policy) != Policy::No {
        return Err(ApiError::bad_request(
            "Restart policy cannot be updated because AutoRemove is enabled for the container",
        ));
    }
    // The supervisor reads the policy at each exit, so the new one holds from the next exit on.
    state.containers.update(&record.id, |r| r.host_config.restart_policy = policy)?;
    Ok(Json(json!({"Warnings": []})).into_response())
}

/// Whether the CLI asked for a value: it sends every field, unset ones as zero, empty or null.
fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => o.values().any(is_set),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_values_the_cli_was_asked_for_count() {
        assert!(!is_set(&json!({"Memory": 0, "CpusetCpus": "", "Devices": null, "BlkioWeightDevice": []})));
        assert!(is_set(&json!({"Memory": 1024})));
        assert!(is_set(&json!({"Name": "always", "MaximumRetryCount": 0})));
        assert!(!is_set(&json!({"Name": "", "MaximumRetryCount": 0})));
    }
}
