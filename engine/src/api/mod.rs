//! The Docker-Engine-API-compatible HTTP surface of berthd, on a Unix socket.
//!
//! Paths may carry a version prefix (`/v1.47/images/json`), as Docker clients send them; the prefix is removed
//! before routing, so every handler is written once.

pub mod archives;
pub mod container_archive;
pub mod containers;
pub mod error;
pub mod events;
pub mod exec;
pub mod images;
pub mod logs;
pub mod networks;
pub mod stats;
pub mod system;
pub mod update;
pub mod volumes;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::routing::{get, post};

use crate::image::Digest;
use crate::image::store::ImageStore;
use crate::paths::Paths;
use crate::registry::{Puller, RegistryOptions};
use crate::runtime::lifecycle::Runtime;
use crate::runtime::record::Containers;

/// The API version berthd speaks (Docker 27's); clients negotiate down to it.
pub const API_VERSION: &str = "1.47";
pub const MIN_API_VERSION: &str = "1.24";

#[derive(Clone)]
pub struct AppState {
    pub paths: Arc<Paths>,
    pub images: Arc<ImageStore>,
    /// One puller for the daemon, so concurrent pulls of one image fetch each blob once.
    pub puller: Arc<Puller>,
    /// Transport and credentials defaults for registries.
    pub registry: RegistryOptions,
    pub containers: Arc<Containers>,
    pub runtime: Arc<Runtime>,
    /// Attach sessions per container: an AutoRemove container is removed only once its output was delivered.
    pub attachers: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>>,
    /// The event bus (the runtime's handle, shared).
    pub events: crate::events::Events,
    /// Execs created through the API (`/exec/{id}/…`, a container's `ExecIDs`).
    pub execs: Arc<crate::runtime::exec::Execs>,
    /// Healthcheck monitors of running containers.
    pub health: Arc<crate::runtime::health::Monitors>,
}

impl AppState {
    pub fn new(paths: Paths, images: ImageStore, containers: Containers) -> AppState {
        let images = Arc::new(images);
        let registry = RegistryOptions {
            auth_files: crate::registry::auth::default_auth_files(Some(&paths.root)),
            ..Default::default()
        };
        let containers = Arc::new(containers);
        let runtime = Arc::new(Runtime::new(paths.clone(), images.clone(), containers.clone()));
        let events = runtime.events.clone();
        AppState {
            events,
            paths: Arc::new(paths),
            puller: Arc::new(Puller::new(images.clone())),
            images,
            registry,
            containers,
            runtime,
            attachers: Default::default(),
            execs: Default::default(),
            health: Default::default(),
        }
    }

    /// Whether a container uses an image: `image rm` refuses such an image unless forced.
    pub fn image_in_use(&self) -> impl Fn(&Digest) -> bool + use<> {
        let containers = self.containers.clone();
        move |id: &Digest| containers.uses_image(id)
    }
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/system/df", get(images::system_df))
        .route("/events", get(events::events))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/prune", post(images::prune))
        .route("/images/load", post(archives::load))
        .route("/images/get", get(archives::save_many))
        .route("/images/{*rest}", get(images::get).post(images::post).delete(images::delete))
        .route("/containers/json", get(containers::list))
        .route("/containers/create", post(containers::create))
        .route("/containers/{id}/logs", get(logs::logs))
        .route("/containers/{id}/attach", post(logs::attach))
        .route("/containers/{id}/update", post(update::update))
        .route("/containers/{id}/exec", post(exec::create))
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route(
            "/containers/{id}/archive",
            get(container_archive::get).head(container_archive::head).put(container_archive::put),
        )
        .route("/containers/{id}/{verb}", get(containers::get).post(containers::post))
        .route("/containers/{id}", axum::routing::delete(containers::delete))
        .route("/volumes", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route("/volumes/{name}", get(volumes::inspect).delete(volumes::delete))
        .route("/networks", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        .route("/networks/{id}", get(networks::inspect).delete(networks::delete))
        .route("/networks/{id}/connect", post(networks::connect))
        .route("/networks/{id}/disconnect", post(networks::disconnect))
        .with_state(state)
}

impl AppState {
    /// Count an attach session of container `id` in or out.
    pub fn attach_count(&self, id: &str, delta: isize) {
        let mut map = self.attachers.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(id.to_string()).or_insert(0);
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            map.remove(id);
        }
    }

    pub fn attached(&self, id: &str) -> bool {
        self.attachers.lock().unwrap_or_else(|e| e.into_inner()).contains_key(id)
    }
}

/// `/v1.47/containers/json` → `/containers/json`. Runs before routing (it wraps the router).
pub fn strip_version_prefix(mut req: Request) -> Request {
    let path = req.uri().path();
    if let Some(rest) = path.strip_prefix("/v")
        && let Some((version, tail)) = rest.split_once('/')
        && !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit() || b == b'.')
    {
        let tail = format!("/{tail}");
        let new = match req.uri().query() {
            Some(q) => format!("{tail}?{q}"),
            None => tail,
        };
        if let Ok(uri) = new.parse() {
            *req.uri_mut() = uri;
        }
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefix_is_removed() {
        let req = |p: &str| Request::builder().uri(p).body(axum::body::Body::empty()).unwrap_or_default();
        assert_eq!(strip_version_prefix(req("/v1.47/images/json?all=1")).uri(), "/images/json?all=1");
        assert_eq!(strip_version_prefix(req("/_ping")).uri(), "/_ping");
        assert_eq!(strip_version_prefix(req("/volumes/v1")).uri(), "/volumes/v1");
        assert_eq!(strip_version_prefix(req("/vx/a")).uri(), "/vx/a");
    }
}
