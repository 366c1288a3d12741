//! Where berth keeps its state and its sockets. Both move with `--root`/`--run-dir` or `BERTH_ROOT`/`BERTH_RUN_DIR`,
//! which is how tests run isolated daemons side by side.

use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_RUN_DIR: &str = "/run/berth";
pub const ENGINE_SOCKET: &str = "berth.sock";
pub const NETD_SOCKET: &str = "netd.sock";

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

    pub fn engine_socket(&self) -> PathBuf {
        self.run_dir.join(ENGINE_SOCKET)
    }

    pub fn netd_socket(&self) -> PathBuf {
        self.run_dir.join(NETD_SOCKET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_paths_win() {
        let p = Paths::resolve(Some(Path::new("/tmp/r")), Some(Path::new("/tmp/run")));
        assert_eq!(p.engine_socket(), PathBuf::from("/tmp/run/berth.sock"));
        assert_eq!(p.root, PathBuf::from("/tmp/r"));
    }
}
