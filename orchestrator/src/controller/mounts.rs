//! A service's `volumes` as engine mounts: named volumes by their engine name (`<project>_<key>` or `name:`),
//! anonymous volumes, binds and tmpfs, as Docker Compose sends them.

use berth_engine::client::containers::{CreateBody, HostConfig};
use berth_engine::runtime::config::Mount;
use serde_json::{Value, json};

use super::SpecError;
use crate::compose::model::{MountType, Project, Service, ServiceVolumeConfig};

pub fn apply(project: &Project, service_name: &str, s: &Service, host: &mut HostConfig) -> Result<(), SpecError> {
    for v in &s.volumes {
        let target = v.target.clone().ok_or_else(|| SpecError::Invalid {
            service: service_name.to_string(),
            message: "a volume needs a target path".into(),
        })?;
        match v.kind {
            // Binds the host path may need creating for go in Binds, whose engine parser creates a missing
            // source directory as Docker Compose's short syntax expects; the others are Mounts, which never do.
            MountType::Bind if v.bind.as_ref().and_then(|b| b.create_host_path) != Some(false) => {
                host.binds.push(bind_spec(v, &target));
            }
            MountType::Bind => host.mounts.push(mount("bind", v.source.clone().unwrap_or_default(), target, v)),
            MountType::Volume => {
                let source = v.source.as_deref().map(|key| volume_name(project, key)).unwrap_or_default();
                host.mounts.push(mount("volume", source, target, v));
            }
            MountType::Tmpfs => host.mounts.push(mount("tmpfs", String::new(), target, v)),
            other => {
                return Err(SpecError::Invalid {
                    service: service_name.to_string(),
                    message: format!("{other:?} mounts are not supported by berth").to_lowercase(),
                });
            }
        }
    }
    Ok(())
}

/// The engine name of a named volume: the top-level entry's `name` (the loader fills in `<project>_<key>`).
pub fn volume_name(project: &Project, key: &str) -> String {
    let project_name = project.name.as_deref().unwrap_or_default();
    match project.volumes.get(key) {
        Some(v) => super::names::scoped_name(project_name, key, v.name.as_deref()),
        // Not declared at the top level: an engine volume used as is (the loader's checks reject most of these).
        None => key.to_string(),
    }
}

/// Whether a volume name is one the engine made up for an anonymous volume (64 hex digits).
fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A replacement container keeps its predecessor's anonymous volumes, as Docker Compose does: an anonymous mount
/// of the new body at the same path gets the old volume, and the old anonymous volumes at paths the new body does
/// not mount (the image's `VOLUME`s) are mounted again. `old` is (destination, volume name).
pub fn reuse_anonymous(body: &mut CreateBody, old: &[(String, String)]) {
    let anonymous: Vec<&(String, String)> = old.iter().filter(|(_, name)| is_anonymous(name)).collect();
    let h = &mut body.host_config;
    for m in h.mounts.iter_mut().filter(|m| m.kind == "volume" && m.source.is_empty()) {
        if let Some((_, name)) = anonymous.iter().find(|(dest, _)| *dest == m.target) {
            m.source = name.clone();
        }
    }
    let covered = |h: &HostConfig, dest: &str| {
        h.mounts.iter().any(|m| m.target == dest)
            || h.tmpfs.contains_key(dest)
            || h.binds.iter().any(|b| b.split(':').nth(1) == Some(dest))
    };
    for (dest, name) in anonymous {
        if !covered(h, dest) {
            h.mounts.push(Mount {
                kind: "volume".into(),
                source: name.clone(),
                target: dest.clone(),
                ..Default::default()
            });
        }
    }
}

fn bind_spec(v: &ServiceVolumeConfig, target: &str) -> String {
    let mut options: Vec<&str> = Vec::new();
    if v.read_only {
        options.push("ro");
    }
    if let Some(p) = v.bind.as_ref().and_then(|b| b.propagation.as_deref()) {
        options.push(p);
    }
    let source = v.source.as_deref().unwrap_or_default();
    if options.is_empty() { format!("{source}:{target}") } else { format!("{source}:{target}:{}", options.join(",")) }
}

fn mount(kind: &str, source: String, target: String, v: &ServiceVolumeConfig) -> Mount {
    let mut m = Mount { kind: kind.to_string(), source, target, read_only: v.read_only, ..Default::default() };
    if let Some(b) = &v.bind {
        let mut o = serde_json::Map::new();
        if let Some(p) = &b.propagation {
            o.insert("Propagation".into(), json!(p));
        }
        if !o.is_empty() {
            m.options.insert("BindOptions".into(), Value::Object(o));
        }
    }
    if let Some(vol) = &v.volume {
        let mut o = serde_json::Map::new();
        if vol.nocopy {
            o.insert("NoCopy".into(), json!(true));
        }
        if let Some(sub) = &vol.subpath {
            o.insert("Subpath".into(), json!(sub));
        }
        if !vol.labels.is_empty() {
            o.insert("Labels".into(), json!(vol.labels));
        }
        if !o.is_empty() {
            m.options.insert("VolumeOptions".into(), Value::Object(o));
        }
    }
    if let Some(t) = &v.tmpfs {
        let mut o = serde_json::Map::new();
        if let Some(size) = t.size {
            o.insert("SizeBytes".into(), json!(size.0));
        }
        if let Some(mode) = t.mode {
            o.insert("Mode".into(), json!(mode));
        }
        if !o.is_empty() {
            m.options.insert("TmpfsOptions".into(), Value::Object(o));
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replacements_keep_anonymous_volumes_only() {
        let anon = "a".repeat(64);
        let image_anon = "b".repeat(64);
        let mut body = CreateBody::default();
        body.host_config.mounts = vec![
            Mount { kind: "volume".into(), target: "/cache".into(), ..Default::default() },
            Mount { kind: "volume".into(), source: "p_data".into(), target: "/data".into(), ..Default::default() },
        ];
        body.host_config.binds = vec!["/srv:/srv".into()];
        let old = vec![
            ("/cache".to_string(), anon.clone()),
            ("/data".to_string(), "p_data".to_string()),
            ("/var/lib/x".to_string(), image_anon.clone()),
            ("/srv".to_string(), "c".repeat(64)),
            ("/gone".to_string(), "p_removed".to_string()),
        ];
        reuse_anonymous(&mut body, &old);
        let got: Vec<(&str, &str)> =
            body.host_config.mounts.iter().map(|m| (m.target.as_str(), m.source.as_str())).collect();
        assert_eq!(got, [("/cache", anon.as_str()), ("/data", "p_data"), ("/var/lib/x", image_anon.as_str())]);
    }

    #[test]
    fn volumes_become_binds_and_mounts() {
        let project: Project = serde_json::from_value(json!({
            "name": "p",
            "volumes": {"data": {"name": "p_data"}, "shared": {"name": "global"}},
            "services": {"web": {"image": "x", "volumes": [
                {"type": "volume", "source": "data", "target": "/data"},
                {"type": "volume", "source": "shared", "target": "/shared", "read_only": true, "volume": {"nocopy": true}},
                {"type": "volume", "target": "/anon"},
                {"type": "bind", "source": "/srv", "target": "/srv", "read_only": true, "bind": {"create_host_path": true}},
                {"type": "bind", "source": "/etc/x", "target": "/x", "bind": {"create_host_path": false}},
                {"type": "tmpfs", "target": "/t", "tmpfs": {"size": 1024}}
            ]}}
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let mut host = HostConfig::default();
        apply(&project, "web", &project.services["web"], &mut host).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(host.binds, vec!["/srv:/srv:ro"]);
        let got: Vec<(&str, &str, &str, bool)> =
            host.mounts.iter().map(|m| (m.kind.as_str(), m.source.as_str(), m.target.as_str(), m.read_only)).collect();
        assert_eq!(
            got,
            vec![
                ("volume", "p_data", "/data", false),
                ("volume", "global", "/shared", true),
                ("volume", "", "/anon", false),
                ("bind", "/etc/x", "/x", false),
                ("tmpfs", "", "/t", false),
            ]
        );
        assert_eq!(host.mounts[1].options.get("VolumeOptions"), Some(&json!({"NoCopy": true})));
        assert_eq!(host.mounts[4].options.get("TmpfsOptions"), Some(&json!({"SizeBytes": 1024})));
    }
}
