//! berthd, the container engine: image store, containers (one shim each), volumes, and the Docker-Engine-API
//! subset served on `/run/berth/berth.sock`, plus the typed client the orchestrator uses.
//! See `docs/architecture.md` for the picture.

pub mod api;
pub mod client;
pub mod container;
pub mod daemon;
pub mod events;
pub mod image;
pub mod network;
pub mod paths;
pub mod registry;
pub mod runtime;
pub mod time;
pub mod volume;
