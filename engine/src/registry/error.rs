//! Errors of pull, push and login, each naming the image and what failed, and the mapping from oci-client's
//! errors (HTTP statuses, OCI error envelopes, transport errors) to them.

use std::path::PathBuf;

use oci_client::errors::{DigestError, OciDistributionError, OciErrorCode};

use super::platform::Platform;
use crate::image::Digest;
use crate::image::error::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("image {image} not found in registry {registry} (manifest unknown)")]
    NotFound { image: String, registry: String },

    #[error("{what} {digest} of {image} not found in registry {registry} (blob unknown)")]
    BlobNotFound { image: String, registry: String, what: &'static str, digest: Digest },

    #[error(
        "{action} of {image} refused by registry {registry} ({status}): log in with `berth login {registry}`{}",
        if detail.is_empty() { String::new() } else { format!(" ({detail})") }
    )]
    Unauthorized { image: String, registry: String, action: &'static str, status: u16, detail: String },

    #[error("registry {registry} failed on {action} of {image}: HTTP {status}: {message}")]
    Server { image: String, registry: String, action: &'static str, status: u16, message: String },

    #[error("cannot reach registry {registry} for {image}: {detail}")]
    Unreachable { image: String, registry: String, detail: String },

    #[error("connection to registry {registry} cut during {action} of {what} of {image}: {detail}")]
    Interrupted { image: String, registry: String, action: &'static str, what: String, detail: String },

    #[error("timed out talking to registry {registry} about {image}: {detail}")]
    Timeout { image: String, registry: String, detail: String },

    #[error("{what} {digest} of {image} is truncated: registry {registry} sent {received} of {expected} bytes")]
    Truncated { image: String, registry: String, what: &'static str, digest: Digest, received: u64, expected: u64 },

    #[error(
        "{what} {expected} of {image} from registry {registry} has the wrong content ({detail}); it was not stored"
    )]
    DigestMismatch { image: String, registry: String, what: &'static str, expected: String, detail: String },

    #[error("image {image} has no variant for {wanted}; it is available for: {}", list_or_none(available))]
    PlatformNotAvailable { image: String, wanted: Platform, available: Vec<String> },

    #[error("invalid manifest {digest} of {image}: {detail}")]
    InvalidManifest { image: String, digest: String, detail: String },

    #[error("{image}: registry protocol error with {registry}: {source}")]
    Protocol {
        image: String,
        registry: String,
        #[source]
        source: Box<OciDistributionError>,
    },

    #[error("{context}: {source}")]
    Store {
        context: String,
        #[source]
        source: Box<StoreError>,
    },

    #[error("writing {what} {digest} of {image} to the store: {detail}")]
    StoreWrite { image: String, what: &'static str, digest: Digest, detail: String },

    #[error("credentials file {}: {detail}", path.display())]
    Credentials { path: PathBuf, detail: String },

    #[error("login to registry {registry} failed: {detail}")]
    LoginFailed { registry: String, detail: String },
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() { "no platform declared".to_string() } else { v.join(", ") }
}

/// What a request was about, to name it in errors.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub image: &'a str,
    pub registry: &'a str,
    /// "pull" or "push".
    pub action: &'static str,
    /// "manifest", "config" or "layer".
    pub what: &'static str,
    pub digest: Option<&'a Digest>,
    /// Bytes received and expected, for a blob transfer.
    pub progress: Option<(u64, u64)>,
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(image: &'a str, registry: &'a str, action: &'static str, what: &'static str) -> Self {
        Ctx { image, registry, action, what, digest: None, progress: None }
    }

    pub(crate) fn blob(self, what: &'static str, digest: &'a Digest) -> Self {
        Ctx { what, digest: Some(digest), ..self }
    }

    fn what_named(&self) -> String {
        match self.digest {
            Some(d) => format!("{} {d}", self.what),
            None => self.what.to_string(),
        }
    }

    fn not_found(&self) -> RegistryError {
        match (self.what, self.digest) {
            ("manifest", _) | (_, None) => {
                RegistryError::NotFound { image: self.image.into(), registry: self.registry.into() }
            }
            (what, Some(d)) => RegistryError::BlobNotFound {
                image: self.image.into(),
                registry: self.registry.into(),
                what,
                digest: d.clone(),
            },
        }
    }

    fn unauthorized(&self, status: u16, detail: String) -> RegistryError {
        RegistryError::Unauthorized {
            image: self.image.into(),
            registry: self.registry.into(),
            action: self.action,
            status,
            detail,
        }
    }

    fn server(&self, status: u16, message: &str) -> RegistryError {
        let message = message.trim();
        let message = if message.len() > 300 { format!("{}…", truncate_utf8(message, 300)) } else { message.into() };
        RegistryError::Server {
            image: self.image.into(),
            registry: self.registry.into(),
            action: self.action,
            status,
            message,
        }
    }

    fn digest_mismatch(&self, expected: String, actual: String) -> RegistryError {
        RegistryError::DigestMismatch {
            image: self.image.into(),
            registry: self.registry.into(),
            what: self.what,
            expected,
            detail: format!("its sha256 is {actual}"),
        }
    }

    fn interrupted(&self, detail: String) -> RegistryError {
        let detail = match self.progress {
            Some((got, total)) => format!("after {got} of {total} bytes: {detail}"),
            None => detail,
        };
        RegistryError::Interrupted {
            image: self.image.into(),
            registry: self.registry.into(),
            action: self.action,
            what: self.what_named(),
            detail,
        }
    }

    /// Maps an oci-client error.
    pub(crate) fn classify(&self, e: OciDistributionError) -> RegistryError {
        match e {
            OciDistributionError::UnauthorizedError { .. } => self.unauthorized(401, String::new()),
            OciDistributionError::AuthenticationFailure(reason) => {
                self.unauthorized(401, format!("token request refused: {}", reason.trim()))
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let first = envelope.errors.first();
                let message = envelope.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>().join("; ");
                match first.map(|e| &e.code) {
                    Some(OciErrorCode::ManifestUnknown | OciErrorCode::NameUnknown | OciErrorCode::NotFound) => {
                        self.not_found()
                    }
                    Some(OciErrorCode::BlobUnknown) => self.not_found(),
                    Some(OciErrorCode::Unauthorized) => self.unauthorized(401, message),
                    Some(OciErrorCode::Denied) => self.unauthorized(403, message),
                    Some(OciErrorCode::Toomanyrequests) => self.server(429, &message),
                    Some(code) => self.server(400, &format!("{code:?}: {message}")),
                    None => self.server(400, "error without details"),
                }
            }
            OciDistributionError::ServerError { code, message, .. } => match code {
                404 => self.not_found(),
                401 => self.unauthorized(401, String::new()),
                403 => self.unauthorized(403, message.trim().to_string()),
                _ => self.server(code, &message),
            },
            OciDistributionError::RequestError(r) => {
                let detail = chain(&r);
                if r.is_timeout() {
                    RegistryError::Timeout { image: self.image.into(), registry: self.registry.into(), detail }
                } else if r.is_connect() || (r.is_request() && self.progress.is_none()) {
                    RegistryError::Unreachable { image: self.image.into(), registry: self.registry.into(), detail }
                } else {
                    self.interrupted(detail)
                }
            }
            OciDistributionError::DigestError(DigestError::VerificationError { expected, actual }) => {
                self.digest_mismatch(expected, actual)
            }
            OciDistributionError::IoError(io) => self.classify_io(io),
            other => RegistryError::Protocol {
                image: self.image.into(),
                registry: self.registry.into(),
                source: Box::new(other),
            },
        }
    }

    /// Maps an error of a blob stream: a digest check at its end, or the transport.
    pub(crate) fn classify_io(&self, e: std::io::Error) -> RegistryError {
        if let Some(DigestError::VerificationError { expected, actual }) =
            e.get_ref().and_then(|inner| inner.downcast_ref::<DigestError>())
        {
            if let (Some((got, total)), Some(d)) = (self.progress, self.digest)
                && got < total
            {
                return RegistryError::Truncated {
                    image: self.image.into(),
                    registry: self.registry.into(),
                    what: self.what,
                    digest: d.clone(),
                    received: got,
                    expected: total,
                };
            }
            return self.digest_mismatch(expected.clone(), actual.clone());
        }
        if e.kind() == std::io::ErrorKind::TimedOut {
            return RegistryError::Timeout {
                image: self.image.into(),
                registry: self.registry.into(),
                detail: chain(&e),
            };
        }
        self.interrupted(chain(&e))
    }
}

/// An error and its sources, `: `-separated, without repeating a source its parent already printed.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_client::errors::{OciEnvelope, OciError};

    fn ctx() -> Ctx<'static> {
        Ctx::new("127.0.0.1:5000/app:1", "127.0.0.1:5000", "pull", "manifest")
    }

    fn envelope(code: OciErrorCode) -> OciDistributionError {
        OciDistributionError::RegistryError {
            envelope: OciEnvelope {
                errors: vec![OciError { code, message: "msg".into(), detail: serde_json::Value::Null }],
            },
            url: "http://x".into(),
        }
    }

    #[test]
    fn messages_name_the_image_and_the_failure() {
        let e = ctx().classify(envelope(OciErrorCode::ManifestUnknown)).to_string();
        assert_eq!(e, "image 127.0.0.1:5000/app:1 not found in registry 127.0.0.1:5000 (manifest unknown)");
        let e = ctx().classify(OciDistributionError::UnauthorizedError { url: "u".into() }).to_string();
        assert!(e.contains("log in with `berth login 127.0.0.1:5000`"), "{e}");
        let e = ctx()
            .classify(OciDistributionError::ServerError { code: 500, url: "u".into(), message: "boom\n".into() })
            .to_string();
        assert_eq!(e, "registry 127.0.0.1:5000 failed on pull of 127.0.0.1:5000/app:1: HTTP 500: boom");
        let d = Digest::of(b"x");
        let e = ctx().blob("layer", &d).classify(envelope(OciErrorCode::BlobUnknown)).to_string();
        assert!(e.starts_with(&format!("layer {d} of 127.0.0.1:5000/app:1 not found")), "{e}");
    }

    #[test]
    fn digest_errors_in_streams() {
        let d = Digest::of(b"x");
        let io = || {
            std::io::Error::other(DigestError::VerificationError {
                expected: d.to_string(),
                actual: "sha256:00".into(),
            })
        };
        let c = Ctx { progress: Some((10, 10)), ..ctx().blob("layer", &d) };
        assert!(matches!(c.classify_io(io()), RegistryError::DigestMismatch { .. }));
        let c = Ctx { progress: Some((4, 10)), ..c };
        let e = c.classify_io(io());
        assert!(matches!(e, RegistryError::Truncated { received: 4, expected: 10, .. }), "{e}");
        let e = c.classify_io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"));
        assert!(e.to_string().contains("after 4 of 10 bytes: reset"), "{e}");
    }

    #[test]
    fn platform_list() {
        let e = RegistryError::PlatformNotAvailable {
            image: "app:1".into(),
            wanted: Platform::default(),
            available: vec!["linux/arm64/v8".into(), "linux/s390x".into()],
        };
        assert_eq!(
            e.to_string(),
            "image app:1 has no variant for linux/amd64; it is available for: linux/arm64/v8, linux/s390x"
        );
    }
}
