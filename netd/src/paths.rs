//! Where berth keeps its state and its sockets, for both daemons: berthd uses this type too (as
//! `berth_engine::paths`), so one pair of settings — `--root`/`--run-dir` or `BERTH_ROOT`/`BERTH_RUN_DIR` — moves
//! both, which is how tests run isolated installations side by side. No daemon dependencies: the client half of
//! this crate has it.

use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_RUN_DIR: &str = "/run/berth";
pub const SOCKET: &str = "netd.sock";
pub const ENGINE_SOCKET: &str = "berth.sock";
pub const PID_FILE: &str = "netd.pid";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub root: PathBuf,
    pub run_dir: PathBuf,
}

impl Paths {
    /// Explicit values first, then the environment, then the defaults.
    pub fn resolve(root: Option<&Path>, run_dir: Option<&Path>) -> Paths {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        Paths {
            root: root.map(Path::to_path_buf).or_else(|| env("BERTH_ROOT")).unwrap_or_else(|| DEFAULT_ROOT.into()),
            run_dir: run_dir
                .map(Path::to_path_buf)
                .or_else(|| env("BERTH_RUN_DIR"))
                .unwrap_or_else(|| DEFAULT_RUN_DIR.into()),
        }
    }

    /// `<root>/netd/`.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("netd")
    }

    /// berth-netd's socket.
    pub fn socket(&self) -> PathBuf {
        self.run_dir.join(SOCKET)
    }

    /// The same as [`Paths::socket`], by the name berthd and the CLI use.
    pub fn netd_socket(&self) -> PathBuf {
        self.socket()
    }

    /// berthd's socket (Docker API compatible).
    pub fn engine_socket(&self) -> PathBuf {
        self.run_dir.join(ENGINE_SOCKET)
    }

    pub fn pid_file(&self) -> PathBuf {
        self.run_dir.join(PID_FILE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_paths_win() {
        let p = Paths::resolve(Some(Path::new("/tmp/r")), Some(Path::new("/tmp/run")));
        assert_eq!(p.socket(), PathBuf::from("/tmp/run/netd.sock"));
        assert_eq!(p.state_dir(), PathBuf::from("/tmp/r/netd"));
        assert_eq!(p.engine_socket(), PathBuf::from("/tmp/run/berth.sock"));
        assert_eq!(p.root, PathBuf::from("/tmp/r"));
    }
}
