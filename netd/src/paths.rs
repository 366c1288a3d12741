//! Where netd keeps its state and its socket: the same `--root`/`--run-dir` and `BERTH_ROOT`/`BERTH_RUN_DIR` as
//! berthd (engine/src/paths.rs), so one pair of settings moves both daemons.

use std::path::{Path, PathBuf};

pub const DEFAULT_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_RUN_DIR: &str = "/run/berth";
pub const SOCKET: &str = "netd.sock";
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

    pub fn socket(&self) -> PathBuf {
        self.run_dir.join(SOCKET)
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
    }
}
