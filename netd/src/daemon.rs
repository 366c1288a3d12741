//! berth-netd's main loop: open the state, repair the kernel side, bind the socket (mode 0660), serve until
//! SIGTERM or SIGINT. Stopping netd leaves every bridge, veth and rule in place, so containers keep talking.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::UnixListener;

use crate::paths::Paths;
use crate::service::{Netd, NetdError, Options};
use crate::state::Store;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create {path}: {source}")]
    CreateDir { path: PathBuf, source: std::io::Error },
    #[error("another berth-netd already answers on {0}; stop it first or use another --run-dir")]
    AlreadyRunning(PathBuf),
    #[error("cannot bind {path}: {source}")]
    Bind { path: PathBuf, source: std::io::Error },
    #[error("cannot start: {0}")]
    Start(#[from] NetdError),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

pub async fn run(paths: Paths, options: Options) -> Result<(), DaemonError> {
    for dir in [paths.state_dir(), paths.run_dir.clone()] {
        std::fs::create_dir_all(&dir).map_err(|source| DaemonError::CreateDir { path: dir.clone(), source })?;
    }
    let socket = paths.socket();
    // Refuse early if a live netd owns the socket: two netds on one root would fight over the same links.
    if socket.exists() && tokio::net::UnixStream::connect(&socket).await.is_ok() {
        return Err(DaemonError::AlreadyRunning(socket));
    }
    let netd = Arc::new(Netd::start(Store::new(&paths.state_dir()), options).await?);
    let listener = bind(&socket).await?;
    let pid_file = paths.pid_file();
    // Tests and scripts stop this daemon by its pid file.
    let _ = std::fs::write(&pid_file, format!("{}\n", std::process::id()));
    tracing::info!(socket = %socket.display(), root = %paths.root.display(), "berth-netd ready");
    axum::serve(listener, crate::server::router(netd))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(DaemonError::Serve)?;
    let _ = std::fs::remove_file(&socket);
    let _ = std::fs::remove_file(&pid_file);
    tracing::info!("berth-netd stopped; networks keep working");
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
    // 0660: root and the socket's group may talk to netd, nobody else.
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
