//! The shim's errors. Each failed system call is its own variant carrying the path or datum it was about; errors
//! that must reach berthd cross the process boundary as an `ErrorRecord` (see `protocol`), never as a crash.

use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ShimError {
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("failed to {action} {path}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to {action}")]
    Sys {
        action: &'static str,
        #[source]
        source: nix::Error,
    },
    #[error("failed to read the runtime spec {path}: {message}")]
    Spec { path: PathBuf, message: String },
    #[error("failed to run {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to parse {what}")]
    Json {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the monitor exited before the container started ({0})")]
    MonitorLost(String),
    #[error("no console received on {path} within {timeout_ms} ms")]
    ConsoleTimeout { path: PathBuf, timeout_ms: u64 },
    #[error("the console socket sent no file descriptor")]
    NoConsoleFd,
    #[error("the creator helper exited with {status} and left no result in {path}")]
    CreatorLost { status: String, path: PathBuf },
}

impl ShimError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ShimError {
        let path = path.into();
        move |source| ShimError::Io { action, path, source }
    }

    pub fn sys(action: &'static str) -> impl FnOnce(nix::Error) -> ShimError {
        move |source| ShimError::Sys { action, source }
    }

    pub fn json(what: impl Into<String>) -> impl FnOnce(serde_json::Error) -> ShimError {
        let what = what.into();
        move |source| ShimError::Json { what, source }
    }
}

pub type Result<T, E = ShimError> = std::result::Result<T, E>;

/// The whole `source()` chain of an error on one line, as berthd shows it to the user.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // thiserror's `transparent` and wrappers often repeat their source's message verbatim.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_joins_sources() {
        let err = ShimError::Io {
            action: "open",
            path: "/x".into(),
            source: std::io::Error::from_raw_os_error(libc_enoent()),
        };
        let text = chain(&err);
        assert!(text.starts_with("failed to open /x: "), "{text}");
        assert!(text.contains("No such file or directory"), "{text}");
    }

    fn libc_enoent() -> i32 {
        nix::errno::Errno::ENOENT as i32
    }
}
