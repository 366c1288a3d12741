//! berthd's main loop: open the state, bind the socket (mode 0660), serve until SIGTERM or SIGINT.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use axum::ServiceExt as _;
use tokio::net::UnixListener;
use tower::Layer as _;

use crate::api::{self, AppState};
use crate::image::store::ImageStore;
use crate::paths::Paths;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create {path}: {source}")]
    CreateDir { path: std::path::PathBuf, source: std::io::Error },
    #[error("another berthd already answers on {0}; stop it first or use another --run-dir")]
    AlreadyRunning(std::path::PathBuf),
    #[error("cannot bind {path}: {source}")]
    Bind { path: std::path::PathBuf, source: std::io::Error },
    #[error("cannot open the image store: {0}")]
    Store(String),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// How long open requests may run on after SIGTERM.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// berthd's settings beyond where its files live.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Registries reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
}

pub async fn run(paths: Paths, options: Options) -> Result<(), DaemonError> {
    for dir in [&paths.root, &paths.run_dir] {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::CreateDir { path: dir.clone(), source })?;
    }
    let socket = paths.engine_socket();
    let listener = bind(&socket).await?;
    let images = ImageStore::open(&paths.root).map_err(|e| DaemonError::Store(e.to_string()))?;
    let containers =
        crate::runtime::record::Containers::open(&paths.root).map_err(|e| DaemonError::Store(e.to_string()))?;
    let mut state = AppState::new(paths.clone(), images, containers);
    state.registry.insecure_registries = options.insecure_registries;
    // Containers that ran while berthd was away: record exits that happened, watch the ones still running.
    state.runtime.reconcile().await;
    // Their restart policies are re-armed: running ones get their supervisor again, stopped ones the policy
    // wants running (the host went down, or they exited meanwhile) are started.
    let records = state.containers.list();
    for r in &records {
        if matches!(r.state.status, crate::runtime::record::Status::Running | crate::runtime::record::Status::Paused) {
            crate::api::containers::spawn_watcher(&state, &r.id);
        }
    }
    let due = crate::runtime::restart::due_on_daemon_start(&records);
    let restarter = state.clone();
    tokio::spawn(async move {
        for id in due {
            if crate::runtime::restart::start_on_daemon_start(&restarter.runtime, &id).await {
                crate::api::containers::spawn_watcher(&restarter, &id);
            }
        }
    });
    let on_shutdown = state.clone();
    let app = tower::util::MapRequestLayer::new(api::strip_version_prefix).layer(api::router(state));
    // Tests and scripts stop this daemon by its pid file.
    let pid_file = paths.run_dir.join("berthd.pid");
    let _ = std::fs::write(&pid_file, format!("{}\n", std::process::id()));
    tracing::info!(socket = %socket.display(), root = %paths.root.display(), "berthd ready");
    // On SIGTERM, open requests get a few seconds to finish (followers of logs and attachers may never do);
    // containers are not affected either way: their shims keep them.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let serve = axum::serve(listener, app.into_make_service()).with_graceful_shutdown(async move {
        shutdown_signal().await;
        // No restart from now on (the containers keep running in their shims), and event streams end.
        on_shutdown.runtime.restarts.shutdown();
        on_shutdown.events.close();
        let _ = stop_tx.send(true);
    });
    let grace = async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|stopping| *stopping).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        result = serve => result.map_err(DaemonError::Serve)?,
        () = grace => tracing::warn!("requests still open after {}s; exiting anyway", SHUTDOWN_GRACE.as_secs()),
    }
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&pid_file);
    tracing::info!("berthd stopped; containers keep running");
    Ok(())
}

/// Bind the socket, replacing a stale file left by a daemon that died, but never one a live daemon answers on.
async fn bind(socket: &Path) -> Result<UnixListener, DaemonError> {
    if socket.exists() {
        if tokio::net::UnixStream::connect(socket).await.is_ok() {
            return Err(DaemonError::AlreadyRunning(socket.to_path_buf()));
        }
        let _ = std::fs::remove_file(socket);
    }
    let listener =
        UnixListener::bind(socket).map_err(|source| DaemonError::Bind { path: socket.to_path_buf(), source })?;
    // 0660: root and the socket's group may talk to the engine, nobody else.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|source| DaemonError::Bind { path: socket.to_path_buf(), source })?;
    Ok(listener)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        // Without signal handlers we can still be stopped with SIGKILL; serve on.
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
