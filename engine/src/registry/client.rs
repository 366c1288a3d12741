//! oci-client clients, one per registry and credentials, kept so that connections and tokens are reused across
//! pulls; plain HTTP only for loopback registries and those the user declared insecure.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use oci_client::Client;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth;

use super::auth::{self, Credentials};
use super::error::RegistryError;
use crate::image::Reference;

/// How berth talks to registries: transport and credentials. Shared by pull, push and login.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Registries (`host[:port]`) reached over plain HTTP. Loopback registries always are.
    pub insecure_registries: Vec<String>,
    /// Credentials files searched in order (see [`auth::default_auth_files`]).
    pub auth_files: Vec<PathBuf>,
    /// Credentials to use instead of the files (the API's `X-Registry-Auth`).
    pub credentials: Option<Credentials>,
    pub connect_timeout: Duration,
    /// The longest wait for the next bytes of a response.
    pub read_timeout: Duration,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        RegistryOptions {
            insecure_registries: Vec::new(),
            auth_files: auth::default_auth_files(None),
            credentials: None,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl RegistryOptions {
    /// Whether `registry` is reached over plain HTTP.
    pub fn plain_http(&self, registry: &str) -> bool {
        let probe = Reference { registry: registry.to_string(), repository: "x".into(), tag: None, digest: None };
        probe.is_loopback_registry()
            || self
                .insecure_registries
                .iter()
                .any(|r| auth::normalize_registry(r) == auth::normalize_registry(registry))
    }

    /// The credentials for `registry`: the explicit ones, else the first file with an entry, else anonymous.
    pub fn auth_for(&self, registry: &str) -> Result<RegistryAuth, RegistryError> {
        if let Some(c) = &self.credentials {
            return Ok(c.to_registry_auth());
        }
        Ok(auth::lookup(&self.auth_files, registry)?.map_or(RegistryAuth::Anonymous, |c| c.to_registry_auth()))
    }
}

/// The user agent berth sends.
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// A client for one registry.
pub(crate) fn build(registry: &str, opts: &RegistryOptions) -> Client {
    let oci_registry = to_oci(&Reference {
        registry: registry.to_string(),
        repository: "x".into(),
        tag: Some("latest".into()),
        digest: None,
    });
    let protocol = if opts.plain_http(registry) {
        // oci-client compares with its resolved registry name (`docker.io` becomes `index.docker.io`).
        ClientProtocol::HttpsExcept(vec![registry.to_string(), oci_registry.resolve_registry().to_string()])
    } else {
        ClientProtocol::Https
    };
    Client::new(ClientConfig {
        protocol,
        // berth picks the platform itself (variant-aware, with the list of what exists in its error).
        platform_resolver: None,
        // One PUT per blob, streamed from the store file: no chunking round trips.
        use_monolithic_push: true,
        connect_timeout: Some(opts.connect_timeout),
        read_timeout: Some(opts.read_timeout),
        user_agent: USER_AGENT,
        ..ClientConfig::default()
    })
}

/// berth's reference as oci-client's (repository, then tag or digest).
pub(crate) fn to_oci(r: &Reference) -> oci_client::Reference {
    match (&r.tag, &r.digest) {
        (Some(tag), Some(d)) => oci_client::Reference::with_tag_and_digest(
            r.registry.clone(),
            r.repository.clone(),
            tag.clone(),
            d.to_string(),
        ),
        (None, Some(d)) => oci_client::Reference::with_digest(r.registry.clone(), r.repository.clone(), d.to_string()),
        (Some(tag), None) => oci_client::Reference::with_tag(r.registry.clone(), r.repository.clone(), tag.clone()),
        (None, None) => oci_client::Reference::with_tag(r.registry.clone(), r.repository.clone(), "latest".into()),
    }
}

struct Cached {
    plain_http: bool,
    auth: RegistryAuth,
    timeouts: (Duration, Duration),
    client: Client,
}

/// Clients by registry, rebuilt when the transport, timeouts or credentials change (oci-client keeps the first
/// credentials it was given for a registry).
#[derive(Default)]
pub(crate) struct Clients {
    map: Mutex<HashMap<String, Cached>>,
}

impl Clients {
    /// The client for `registry` and the credentials to use with it.
    pub(crate) fn get(&self, registry: &str, opts: &RegistryOptions) -> Result<(Client, RegistryAuth), RegistryError> {
        let auth = opts.auth_for(registry)?;
        let plain_http = opts.plain_http(registry);
        let timeouts = (opts.connect_timeout, opts.read_timeout);
        let mut map = self.map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(c) = map.get(registry)
            && c.plain_http == plain_http
            && c.auth == auth
            && c.timeouts == timeouts
        {
            return Ok((c.client.clone(), auth));
        }
        let client = build(registry, opts);
        map.insert(registry.to_string(), Cached { plain_http, auth: auth.clone(), timeouts, client: client.clone() });
        Ok((client, auth))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_insecure() {
        let opts = RegistryOptions { insecure_registries: vec!["http://reg.lan:5000".into()], ..Default::default() };
        assert!(opts.plain_http("127.0.0.1:5000"));
        assert!(opts.plain_http("localhost:5000"));
        assert!(opts.plain_http("reg.lan:5000"));
        assert!(!opts.plain_http("reg.lan"));
        assert!(!opts.plain_http("docker.io"));
    }

    #[test]
    fn references_convert() -> Result<(), Box<dyn std::error::Error>> {
        let r: Reference = "127.0.0.1:5000/a/b:1".parse()?;
        let o = to_oci(&r);
        assert_eq!((o.registry(), o.repository(), o.tag()), ("127.0.0.1:5000", "a/b", Some("1")));
        let d = crate::image::Digest::of(b"x");
        let r: Reference = format!("busybox@{d}").parse()?;
        let o = to_oci(&r);
        assert_eq!(
            (o.resolve_registry(), o.repository(), o.digest()),
            ("index.docker.io", "library/busybox", Some(d.to_string().as_str()))
        );
        Ok(())
    }
}
