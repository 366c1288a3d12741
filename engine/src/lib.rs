//! berthd, the container engine: image store, containers (one shim each), volumes, and the Docker-Engine-API
//! subset served on `/run/berth/berth.sock`. See `docs/architecture.md`; the engine lands with issues #3 and #4.
