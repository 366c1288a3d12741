//! A container's mounts from its create body, as Docker reads them: `HostConfig.Binds` (`/src:/dst[:opts]` is a
//! bind, `name:/dst[:opts]` a named volume), `HostConfig.Mounts` (bind, volume, tmpfs), `HostConfig.Tmpfs`, and
//! the image's and the config's `Volumes`, which become anonymous volumes unless another mount covers them.
//! [`plan`] only reads and checks; volumes are made by [`super::attach::attach`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Result, VolumeError};
use crate::runtime::config::{CreateBody, Mount};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    #[default]
    Bind,
    Volume,
    Tmpfs,
}

impl MountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MountKind::Bind => "bind",
            MountKind::Volume => "volume",
            MountKind::Tmpfs => "tmpfs",
        }
    }
}

/// One mount of a container, kept in its record: what inspect and ps show as `Mounts`, and what start turns
/// into the spec's mounts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPoint {
    pub kind: MountKind,
    /// The volume's name (volumes only).
    #[serde(default)]
    pub name: String,
    /// The host path: a bind's source, a volume's `_data`.
    #[serde(default)]
    pub source: String,
    pub destination: String,
    /// Docker's `Mode` column: the options of a `Binds` entry (`ro`, `z`…).
    #[serde(default)]
    pub mode: String,
    pub rw: bool,
    /// Binds only: `rprivate` unless asked otherwise.
    #[serde(default)]
    pub propagation: String,
    /// Made for this container without a name: `rm -v` and AutoRemove remove it.
    #[serde(default)]
    pub anonymous: bool,
    /// Volumes: do not copy the image's content into an empty volume.
    #[serde(default)]
    pub no_copy: bool,
    /// Binds: a missing source is created (`Binds`, or `Mounts` with `CreateMountpoint`).
    #[serde(default)]
    pub create_host_path: bool,
    #[serde(default)]
    pub non_recursive: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_mode: Option<u32>,
    /// `HostConfig.Tmpfs` options (`size=64m,mode=1777,uid=1000`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tmpfs_options: Vec<String>,
}

impl MountPoint {
    /// The `Mounts` entry of inspect and of `GET /containers/json`.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "Type": self.kind.as_str(),
            "Source": self.source,
            "Destination": self.destination,
            "Mode": self.mode,
            "RW": self.rw,
            "Propagation": self.propagation,
        });
        if self.kind == MountKind::Volume {
            v["Name"] = json!(self.name);
            v["Driver"] = json!("local");
        }
        v
    }
}

/// `Mounts` of inspect and ps for a container's mount points.
pub fn to_json(points: &[MountPoint]) -> Value {
    Value::Array(points.iter().map(MountPoint::to_json).collect())
}

/// A volume the container needs, before it exists: how to create it when it does not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeWanted {
    pub labels: BTreeMap<String, String>,
    pub driver: String,
    pub driver_options: BTreeMap<String, String>,
}

/// A mount point, and for volumes what to create.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Planned {
    pub point: MountPoint,
    pub volume: Option<VolumeWanted>,
}

fn invalid(msg: String) -> VolumeError {
    VolumeError::InvalidMount(msg)
}

/// Read and check every mount of a create body; `image_volumes` are the image config's `Volumes`.
pub fn plan(body: &CreateBody, image_volumes: &[String]) -> Result<Vec<Planned>> {
    let h = &body.host_config;
    let mut out: Vec<Planned> = Vec::new();
    for b in &h.binds {
        out.push(parse_bind(b)?);
    }
    for m in &h.mounts {
        out.push(parse_mount(m)?);
    }
    for (target, options) in &h.tmpfs {
        check_destination(target)?;
        let options: Vec<String> = options.split(',').filter(|o| !o.is_empty()).map(str::to_owned).collect();
        let read_only = options.iter().any(|o| o == "ro");
        out.push(Planned {
            point: MountPoint {
                kind: MountKind::Tmpfs,
                destination: target.clone(),
                rw: !read_only,
                tmpfs_options: options,
                ..Default::default()
            },
            volume: None,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for p in &out {
        if !seen.insert(clean(&p.point.destination)) {
            return Err(invalid(format!("Duplicate mount point: {}", p.point.destination)));
        }
    }
    // The image's VOLUMEs and the config's: an anonymous volume each, unless a mount covers it already.
    let config_volumes = body.config.volumes.iter().flat_map(|m| m.keys());
    for target in image_volumes.iter().chain(config_volumes) {
        check_destination(target)?;
        if !seen.insert(clean(target)) {
            continue;
        }
        out.push(Planned {
            point: MountPoint {
                kind: MountKind::Volume,
                destination: target.clone(),
                rw: true,
                anonymous: true,
                ..Default::default()
            },
            volume: Some(VolumeWanted::default()),
        });
    }
    Ok(out)
}

/// `SRC:DST[:OPTS]`, Docker's Linux parser: an absolute source is a bind, else a volume name.
fn parse_bind(spec: &str) -> Result<Planned> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (src, dst, mode) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid(format!("invalid volume specification: '{spec}'"))),
    };
    if src.is_empty() {
        return Err(invalid(format!("invalid volume specification: '{spec}': empty source")));
    }
    check_destination(dst)?;
    let mut read_only = false;
    let mut no_copy = false;
    let mut propagation = String::new();
    for m in mode.split(',').filter(|m| !m.is_empty()) {
        match m {
            "ro" => read_only = true,
            "rw" => read_only = false,
            // SELinux relabelling: nothing to do without SELinux, kept for the Mode column.
            "z" | "Z" => {}
            "nocopy" => no_copy = true,
            p if parse_propagation(p).is_some() => propagation = p.to_string(),
            other => return Err(invalid(format!("invalid mode: {other} (in '{spec}')"))),
        }
    }
    if src.starts_with('/') {
        if no_copy {
            return Err(invalid(format!("invalid mode: nocopy applies to volumes, not to the bind '{spec}'")));
        }
        return Ok(Planned {
            point: MountPoint {
                kind: MountKind::Bind,
                source: clean(src),
                destination: dst.to_string(),
                mode: mode.to_string(),
                rw: !read_only,
                propagation: if propagation.is_empty() { "rprivate".into() } else { propagation },
                create_host_path: true,
                ..Default::default()
            },
            volume: None,
        });
    }
    if !propagation.is_empty() {
        return Err(invalid(format!("invalid mode: propagation applies to binds, not to the volume '{spec}'")));
    }
    if !crate::runtime::record::valid_name(src) {
        return Err(VolumeError::InvalidName(src.to_string()));
    }
    Ok(Planned {
        point: MountPoint {
            kind: MountKind::Volume,
            name: src.to_string(),
            destination: dst.to_string(),
            mode: if mode.is_empty() { "z".into() } else { mode.to_string() },
            rw: !read_only,
            no_copy,
            ..Default::default()
        },
        volume: Some(VolumeWanted::default()),
    })
}

/// The typed options of a `Mounts` entry (kept as raw JSON in the record's config).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct MountOptions {
    bind_options: Option<BindOptions>,
    volume_options: Option<VolumeOptions>,
    tmpfs_options: Option<TmpfsOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct BindOptions {
    propagation: String,
    non_recursive: bool,
    create_mountpoint: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct VolumeOptions {
    no_copy: bool,
    #[serde(deserialize_with = "null_as_default")]
    labels: BTreeMap<String, String>,
    driver_config: Option<DriverConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DriverConfig {
    name: String,
    #[serde(deserialize_with = "null_as_default")]
    options: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct TmpfsOptions {
    size_bytes: i64,
    mode: u32,
}

fn null_as_default<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn parse_mount(m: &Mount) -> Result<Planned> {
    let raw = Value::Object(m.options.iter().map(|(k, v)| (k.clone(), v.clone())).collect());
    let options: MountOptions =
        serde_json::from_value(raw).map_err(|e| invalid(format!("invalid mount config for type {:?}: {e}", m.kind)))?;
    check_destination(&m.target)?;
    let wrong = |what: &str| invalid(format!("invalid mount config for type {:?}: {what}", m.kind));
    match m.kind.as_str() {
        "bind" => {
            if options.volume_options.is_some() || options.tmpfs_options.is_some() {
                return Err(wrong("only BindOptions go with a bind"));
            }
            if !m.source.starts_with('/') {
                return Err(wrong(&format!("invalid mount path: '{}' mount path must be absolute", m.source)));
            }
            let bind = options.bind_options.unwrap_or_default();
            let propagation = match bind.propagation.as_str() {
                "" => "rprivate".to_string(),
                p if parse_propagation(p).is_some() => p.to_string(),
                p => return Err(wrong(&format!("invalid propagation mode: {p}"))),
            };
            if !bind.create_mountpoint && !Path::new(&m.source).exists() {
                return Err(wrong(&format!("bind source path does not exist: {}", m.source)));
            }
            Ok(Planned {
                point: MountPoint {
                    kind: MountKind::Bind,
                    source: clean(&m.source),
                    destination: m.target.clone(),
                    rw: !m.read_only,
                    propagation,
                    create_host_path: bind.create_mountpoint,
                    non_recursive: bind.non_recursive,
                    ..Default::default()
                },
                volume: None,
            })
        }
        "volume" => {
            if options.bind_options.is_some() || options.tmpfs_options.is_some() {
                return Err(wrong("only VolumeOptions go with a volume"));
            }
            let vo = options.volume_options.unwrap_or_default();
            if !m.source.is_empty() && !crate::runtime::record::valid_name(&m.source) {
                return Err(VolumeError::InvalidName(m.source.clone()));
            }
            let (driver, driver_options) = vo.driver_config.map(|d| (d.name, d.options)).unwrap_or_default();
            Ok(Planned {
                point: MountPoint {
                    kind: MountKind::Volume,
                    name: m.source.clone(),
                    destination: m.target.clone(),
                    mode: "z".into(),
                    rw: !m.read_only,
                    anonymous: m.source.is_empty(),
                    no_copy: vo.no_copy,
                    ..Default::default()
                },
                volume: Some(VolumeWanted { labels: vo.labels, driver, driver_options }),
            })
        }
        "tmpfs" => {
            if !m.source.is_empty() {
                return Err(wrong("a tmpfs has no source"));
            }
            if options.bind_options.is_some() || options.volume_options.is_some() {
                return Err(wrong("only TmpfsOptions go with a tmpfs"));
            }
            let t = options.tmpfs_options.unwrap_or_default();
            if t.size_bytes < 0 {
                return Err(wrong("SizeBytes must not be negative"));
            }
            Ok(Planned {
                point: MountPoint {
                    kind: MountKind::Tmpfs,
                    destination: m.target.clone(),
                    rw: !m.read_only,
                    tmpfs_size: (t.size_bytes > 0).then_some(t.size_bytes as u64),
                    tmpfs_mode: (t.mode != 0).then_some(t.mode),
                    ..Default::default()
                },
                volume: None,
            })
        }
        other => Err(invalid(format!("mount type {other:?} is not supported (bind, volume and tmpfs are)"))),
    }
}

pub fn parse_propagation(p: &str) -> Option<crate::container::spec::Propagation> {
    use crate::container::spec::Propagation as P;
    Some(match p {
        "private" => P::Private,
        "rprivate" => P::Rprivate,
        "shared" => P::Shared,
        "rshared" => P::Rshared,
        "slave" => P::Slave,
        "rslave" => P::Rslave,
        _ => return None,
    })
}

fn check_destination(dst: &str) -> Result<()> {
    if !dst.starts_with('/') {
        return Err(invalid(format!("invalid mount config: mount path must be absolute: {dst:?}")));
    }
    if clean(dst) == "/" {
        return Err(invalid("invalid specification: destination can't be '/'".to_string()));
    }
    Ok(())
}

/// A path without `.`, empty components and trailing slashes, for comparing destinations.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::config::parse_create_body;

    fn body(json: &str) -> CreateBody {
        parse_create_body(json.as_bytes()).unwrap_or_default()
    }

    #[test]
    fn binds_are_binds_or_named_volumes() -> Result<()> {
        let b = body(r#"{"HostConfig":{"Binds":["/srv/a:/a:ro,rslave","data:/data","logs:/logs:nocopy"]}}"#);
        let p = plan(&b, &[])?;
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].point.kind, MountKind::Bind);
        assert_eq!((p[0].point.rw, p[0].point.propagation.as_str()), (false, "rslave"));
        assert!(p[0].point.create_host_path);
        assert!(p[0].volume.is_none());
        assert_eq!(
            (p[1].point.kind, p[1].point.name.as_str(), p[1].point.mode.as_str()),
            (MountKind::Volume, "data", "z")
        );
        assert!(!p[1].point.anonymous);
        assert!(p[2].point.no_copy);
        Ok(())
    }

    #[test]
    fn bad_binds_are_refused() {
        for bad in ["/a", "/a:rel", "/a:/b:xx", "bad name:/x", "/a:/", "v:/x:shared", "/a:/b:nocopy", "a:b:c:d"] {
            let b = body(&format!(r#"{{"HostConfig":{{"Binds":["{bad}"]}}}}"#));
            assert!(plan(&b, &[]).is_err(), "{bad}");
        }
    }

    #[test]
    fn mounts_of_each_type() -> Result<()> {
        let b = body(
            r#"{"HostConfig":{"Mounts":[
                {"Type":"volume","Target":"/v","ReadOnly":true,"VolumeOptions":{"NoCopy":true,"Labels":{"a":"b"},
                 "DriverConfig":{"Name":"local","Options":{"type":"tmpfs","device":"tmpfs"}}}},
                {"Type":"volume","Source":"named","Target":"/n"},
                {"Type":"bind","Source":"/nonexistent-berth-src","Target":"/b","BindOptions":{"CreateMountpoint":true,"Propagation":"shared"}},
                {"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1048576,"Mode":448}}]}}"#,
        );
        let p = plan(&b, &[])?;
        assert!(p[0].point.anonymous && p[0].point.no_copy && !p[0].point.rw);
        let wanted = p[0].volume.clone().unwrap_or_default();
        assert_eq!(wanted.labels.get("a").map(String::as_str), Some("b"));
        assert_eq!(wanted.driver_options.get("type").map(String::as_str), Some("tmpfs"));
        assert_eq!((p[1].point.name.as_str(), p[1].point.anonymous), ("named", false));
        assert_eq!(p[2].point.propagation, "shared");
        assert_eq!((p[3].point.tmpfs_size, p[3].point.tmpfs_mode), (Some(1 << 20), Some(0o700)));
        Ok(())
    }

    #[test]
    fn a_missing_bind_source_is_an_error_in_mounts() {
        let b = body(r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/nonexistent-berth-src","Target":"/b"}]}}"#);
        let e = plan(&b, &[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("bind source path does not exist"), "{e}");
        let b = body(r#"{"HostConfig":{"Mounts":[{"Type":"npipe","Source":"x","Target":"/b"}]}}"#);
        assert!(plan(&b, &[]).is_err());
        let b = body(r#"{"HostConfig":{"Mounts":[{"Type":"tmpfs","Source":"x","Target":"/b"}]}}"#);
        assert!(plan(&b, &[]).is_err());
    }

    #[test]
    fn image_volumes_become_anonymous_unless_covered() -> Result<()> {
        let b = body(r#"{"Volumes":{"/cache":{}},"HostConfig":{"Binds":["data:/data/"],"Tmpfs":{"/run":"size=1m"}}}"#);
        let p = plan(&b, &["/data".to_string(), "/logs".to_string(), "/run".to_string()])?;
        let dests: Vec<(&str, bool)> = p.iter().map(|p| (p.point.destination.as_str(), p.point.anonymous)).collect();
        assert_eq!(dests, [("/data/", false), ("/run", false), ("/logs", true), ("/cache", true)]);
        Ok(())
    }

    #[test]
    fn duplicate_destinations_are_refused() {
        let b = body(r#"{"HostConfig":{"Binds":["aa:/x"],"Mounts":[{"Type":"tmpfs","Target":"/x/"}]}}"#);
        let e = plan(&b, &[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("Duplicate mount point"), "{e}");
    }
}
