//! The manifests berth reads from a registry: OCI image manifests and indexes, Docker schema2 manifests and
//! manifest lists. Parsed from the raw bytes (which are stored as they came, so that their digest holds), with
//! small tolerant structs rather than oci-spec's strict ones: only what pull and push need.

use serde::Deserialize;

use super::platform::Platform;
use crate::image::Digest;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// What berth asks registries for, in the `Accept` header.
pub const ACCEPTED: &[&str] = &[OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// Layer media types berth stores; the unpacker detects the compression from the bytes.
const LAYER_TYPES: &[&str] = &[
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub struct ImageManifest {
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone)]
pub struct IndexEntry {
    pub descriptor: Descriptor,
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone)]
pub enum Manifest {
    Image(ImageManifest),
    Index(Vec<IndexEntry>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    schema_version: Option<u32>,
    media_type: Option<String>,
    config: Option<RawDescriptor>,
    layers: Option<Vec<RawDescriptor>>,
    manifests: Option<Vec<RawDescriptor>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawDescriptor {
    media_type: Option<String>,
    digest: String,
    size: u64,
    platform: Option<RawPlatform>,
}

#[derive(Deserialize)]
struct RawPlatform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

/// The platform fields of an image config.
#[derive(Deserialize)]
struct RawConfigPlatform {
    os: Option<String>,
    architecture: Option<String>,
    variant: Option<String>,
}

impl RawDescriptor {
    fn convert(self, default_media_type: &str) -> Result<Descriptor, String> {
        let digest = self.digest.parse::<Digest>().map_err(|e| e.to_string())?;
        Ok(Descriptor {
            media_type: self.media_type.unwrap_or_else(|| default_media_type.into()),
            digest,
            size: self.size,
        })
    }
}

/// Parses a manifest or an index; the error is a sentence for [`super::RegistryError::InvalidManifest`].
pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
    let raw: RawManifest = serde_json::from_slice(bytes).map_err(|e| format!("not a manifest: {e}"))?;
    match raw.schema_version {
        Some(2) => {}
        Some(1) => {
            return Err(
                "Docker schema 1 manifests are not supported (push the image again with a recent client)".into()
            );
        }
        Some(v) => return Err(format!("unsupported schemaVersion {v}")),
        None => return Err("no schemaVersion".into()),
    }
    let media_type = raw.media_type.clone().unwrap_or_default();
    let is_index = matches!(media_type.as_str(), OCI_INDEX | DOCKER_MANIFEST_LIST)
        || (media_type.is_empty() && raw.manifests.is_some());
    if is_index {
        let entries = raw.manifests.ok_or("an index without manifests")?;
        return entries
            .into_iter()
            .map(|e| {
                let platform = e.platform.as_ref().map(|p| Platform::new(&p.os, &p.architecture, p.variant.as_deref()));
                Ok(IndexEntry { descriptor: e.convert(OCI_MANIFEST)?, platform })
            })
            .collect::<Result<Vec<_>, String>>()
            .map(Manifest::Index);
    }
    if !(media_type.is_empty() || media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST) {
        return Err(format!("unsupported manifest media type {media_type}"));
    }
    let config = raw.config.ok_or("a manifest without config")?.convert(OCI_CONFIG)?;
    if config.media_type != OCI_CONFIG && config.media_type != DOCKER_CONFIG {
        return Err(format!("not a container image: its config has media type {}", config.media_type));
    }
    let layers = raw
        .layers
        .ok_or("a manifest without layers")?
        .into_iter()
        .map(|l| l.convert(""))
        .collect::<Result<Vec<_>, String>>()?;
    if let Some(l) = layers.iter().find(|l| !LAYER_TYPES.contains(&l.media_type.as_str())) {
        return Err(format!("layer {} has unsupported media type {:?}", l.digest, l.media_type));
    }
    let media_type = if media_type.is_empty() { OCI_MANIFEST.to_string() } else { media_type };
    Ok(Manifest::Image(ImageManifest { media_type, config, layers }))
}

/// The platform an image config declares (`None` when it declares none).
pub fn config_platform(config: &[u8]) -> Result<Option<Platform>, String> {
    let raw: RawConfigPlatform = serde_json::from_slice(config).map_err(|e| format!("invalid image config: {e}"))?;
    Ok(match (raw.os, raw.architecture) {
        (Some(os), Some(arch)) if !os.is_empty() && !arch.is_empty() => {
            Some(Platform::new(&os, &arch, raw.variant.as_deref()))
        }
        _ => None,
    })
}

/// The media type a manifest's bytes declare, for the `Content-Type` of a push.
pub fn media_type_of(bytes: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct M {
        media_type: Option<String>,
    }
    serde_json::from_slice::<M>(bytes).ok()?.media_type
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifests() -> Result<(), String> {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}",
            "config":{{"mediaType":"{DOCKER_CONFIG}","digest":"{}","size":3}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{}","size":10}},
                      {{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"{}","size":11}}]}}"#,
            digest('a'),
            digest('b'),
            digest('c')
        );
        let Manifest::Image(m) = parse(m.as_bytes())? else { return Err("not an image".into()) };
        assert_eq!(m.media_type, DOCKER_MANIFEST);
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.layers[1].size, 11);
        assert_eq!(m.config.digest.to_string(), digest('a'));
        Ok(())
    }

    #[test]
    fn indexes_and_rejections() -> Result<(), String> {
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":5,
            "platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}},{{"digest":"{}","size":6}}]}}"#,
            digest('d'),
            digest('e')
        );
        let Manifest::Index(entries) = parse(i.as_bytes())? else { return Err("not an index".into()) };
        assert_eq!(entries[0].platform.as_ref().map(ToString::to_string).as_deref(), Some("linux/arm64/v8"));
        assert!(entries[1].platform.is_none());
        assert!(parse(br#"{"schemaVersion":1,"fsLayers":[]}"#).is_err_and(|e| e.contains("schema 1")));
        let helm = format!(
            r#"{{"schemaVersion":2,"layers":[],
            "config":{{"mediaType":"application/vnd.cncf.helm.config.v1+json","digest":"{}","size":1}}}}"#,
            digest('f')
        );
        assert!(parse(helm.as_bytes()).is_err_and(|e| e.contains("not a container image")));
        assert!(parse(b"[]").is_err());
        Ok(())
    }

    #[test]
    fn config_platforms() -> Result<(), String> {
        assert_eq!(
            config_platform(br#"{"os":"linux","architecture":"arm","variant":"v7"}"#)?.map(|p| p.to_string()),
            Some("linux/arm/v7".into())
        );
        assert_eq!(config_platform(br#"{"rootfs":{}}"#)?, None);
        Ok(())
    }
}
