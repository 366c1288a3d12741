//! The config hash of a service (label `com.docker.compose.config-hash`): sha256 of the service's canonical JSON
//! (object keys sorted), leaving out what does not change the running container: `build`, `pull_policy`, `scale`,
//! `deploy.replicas`, `depends_on` and `profiles`. A container is recreated when this hash changes.

use sha2::{Digest, Sha256};

use crate::compose::model::Service;

const IGNORED: [&str; 5] = ["build", "pull_policy", "scale", "depends_on", "profiles"];

pub fn config_hash(service: &Service) -> String {
    let mut json = serde_json::to_value(service).unwrap_or(serde_json::Value::Null);
    if let Some(obj) = json.as_object_mut() {
        for key in IGNORED {
            obj.remove(key);
        }
        if let Some(deploy) = obj.get_mut("deploy").and_then(|d| d.as_object_mut()) {
            deploy.remove("replicas");
        }
        if obj.get("deploy").and_then(|d| d.as_object()).is_some_and(|d| d.is_empty()) {
            obj.remove("deploy");
        }
    }
    let canonical = canonical_json(&json);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

/// JSON with object keys sorted at every level, no insignificant white space.
pub fn canonical_json(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            let parts: Vec<String> =
                keys.into_iter().map(|k| format!("{}:{}", J::String(k.clone()), canonical_json(&o[k]))).collect();
            format!("{{{}}}", parts.join(","))
        }
        J::Array(a) => format!("[{}]", a.iter().map(canonical_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(j: serde_json::Value) -> Service {
        serde_json::from_value(j).unwrap_or_default()
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, {"z": 1, "y": 2}], "c": "x"}});
        assert_eq!(canonical_json(&v), r#"{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}"#);
    }

    #[test]
    fn ignored_fields_do_not_change_the_hash() {
        let base = svc(serde_json::json!({"image": "busybox", "command": ["sleep", "1"]}));
        let h = config_hash(&base);
        assert_eq!(h.len(), 64);
        let same = svc(serde_json::json!({
            "image": "busybox", "command": ["sleep", "1"], "scale": 3, "profiles": ["x"],
            "depends_on": {"db": {"condition": "service_started", "required": true}},
            "build": {"context": "/x", "dockerfile": "Dockerfile"}, "pull_policy": "always",
            "deploy": {"replicas": 2}
        }));
        assert_eq!(config_hash(&same), h);
        let other = svc(serde_json::json!({"image": "busybox", "command": ["sleep", "2"]}));
        assert_ne!(config_hash(&other), h);
    }
}
