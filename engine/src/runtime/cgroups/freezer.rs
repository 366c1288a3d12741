//! Freezing and thawing a container's processes: v1 `freezer.state` (`FROZEN`/`THAWED`, through `FREEZING`),
//! v2 `cgroup.freeze` (`1`/`0`, done when `cgroup.events` says `frozen 1`/`frozen 0`).
//!
//! The kernel freezes asynchronously: a write starts it, a read says whether every task got there. The wait is
//! a bounded poll, at first without sleeping (a few idle processes freeze in microseconds; pause + unpause must
//! stay well under 10 ms), then every millisecond.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::{CgroupError, ContainerCgroup, Result, read, write};

/// How long the processes get to freeze or thaw before the operation fails.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Polls without sleeping before the wait falls back to 1 ms sleeps.
const BUSY_POLLS: u32 = 50;

/// One freezer operation, as the files of the host's cgroup mode spell it.
struct Op {
    /// The file written to start it (and rewritten on each poll on v1, as runc does: a task that forked while
    /// freezing is caught by the next write).
    control: PathBuf,
    value: &'static str,
    /// The file that says when it is done, and what it must say.
    status: PathBuf,
    done: fn(&str) -> bool,
    rewrite: bool,
    what: &'static str,
}

fn op(cg: &ContainerCgroup, freeze: bool) -> Result<Op> {
    match cg {
        ContainerCgroup::V1(_) => {
            let dir = cg.dir("freezer").ok_or(CgroupError::NoController("freezer"))?;
            let file = dir.join("freezer.state");
            Ok(Op {
                control: file.clone(),
                value: if freeze { "FROZEN" } else { "THAWED" },
                status: file,
                done: if freeze { |s| s.trim() == "FROZEN" } else { |s| s.trim() == "THAWED" },
                rewrite: freeze,
                what: if freeze { "freeze" } else { "thaw" },
            })
        }
        ContainerCgroup::V2(dir) => Ok(Op {
            control: dir.join("cgroup.freeze"),
            value: if freeze { "1" } else { "0" },
            status: dir.join("cgroup.events"),
            done: if freeze { |s| events_frozen(s) == Some(true) } else { |s| events_frozen(s) == Some(false) },
            rewrite: false,
            what: if freeze { "freeze" } else { "thaw" },
        }),
    }
}

/// `frozen 0|1` of a v2 `cgroup.events`.
fn events_frozen(events: &str) -> Option<bool> {
    events.lines().find_map(|l| l.strip_prefix("frozen ")).map(|v| v.trim() == "1")
}

async fn run(op: Op, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    write(&op.control, op.value)?;
    for poll in 0u32.. {
        let state = read(&op.status)?;
        if (op.done)(&state) {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(CgroupError::Timeout {
                what: op.what,
                ms: timeout.as_millis(),
                path: op.status.clone(),
                state: state.trim().to_owned(),
            });
        }
        if poll < BUSY_POLLS {
            tokio::task::yield_now().await;
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        if op.rewrite {
            write(&op.control, op.value)?;
        }
    }
    Ok(())
}

/// Freeze every process of the container; on failure the cgroup is thawed again, so it is never left half
/// frozen.
pub async fn freeze(cg: &ContainerCgroup) -> Result<()> {
    freeze_within(cg, TIMEOUT).await
}

async fn freeze_within(cg: &ContainerCgroup, timeout: Duration) -> Result<()> {
    let result = run(op(cg, true)?, timeout).await;
    if result.is_err() {
        let thaw = op(cg, false)?;
        let _ = write(&thaw.control, thaw.value);
    }
    result
}

pub async fn thaw(cg: &ContainerCgroup) -> Result<()> {
    thaw_within(cg, TIMEOUT).await
}

async fn thaw_within(cg: &ContainerCgroup, timeout: Duration) -> Result<()> {
    run(op(cg, false)?, timeout).await
}

/// Whether the kernel says the container's cgroup is frozen (v1 `FROZEN` or `FREEZING`; v2 `frozen 1`).
pub fn is_frozen(cg: &ContainerCgroup) -> Result<bool> {
    let status = op(cg, true)?.status;
    let text = read(&status)?;
    Ok(match cg {
        ContainerCgroup::V1(_) => matches!(text.trim(), "FROZEN" | "FREEZING"),
        ContainerCgroup::V2(_) => events_frozen(&text).unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn rt() -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread().enable_time().build()
    }

    #[test]
    fn v1_freeze_writes_frozen_and_waits_for_it() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        // A plain file reads back what was written: the "kernel" froze at once.
        std::fs::write(tmp.path().join("freezer.state"), "THAWED\n")?;
        let cg = ContainerCgroup::V1(BTreeMap::from([("freezer", tmp.path().to_path_buf())]));
        rt()?.block_on(freeze(&cg))?;
        assert_eq!(std::fs::read_to_string(tmp.path().join("freezer.state"))?, "FROZEN");
        assert!(is_frozen(&cg)?);
        rt()?.block_on(thaw(&cg))?;
        assert_eq!(std::fs::read_to_string(tmp.path().join("freezer.state"))?, "THAWED");
        assert!(!is_frozen(&cg)?);
        Ok(())
    }

    #[test]
    fn v2_freeze_waits_for_the_events_file() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let tmp = tempfile::tempdir()?;
        std::fs::write(tmp.path().join("cgroup.freeze"), "0\n")?;
        std::fs::write(tmp.path().join("cgroup.events"), "populated 1\nfrozen 1\n")?;
        let cg = ContainerCgroup::V2(tmp.path().to_path_buf());
        rt()?.block_on(freeze(&cg))?;
        assert_eq!(std::fs::read_to_string(tmp.path().join("cgroup.freeze"))?, "1");
        assert!(is_frozen(&cg)?);
        // "frozen 1" never turns to 0 in this fake: thaw fails after its bounded wait instead of hanging.
        let err = rt()?.block_on(thaw_within(&cg, Duration::from_millis(20)));
        assert!(matches!(err, Err(CgroupError::Timeout { what: "thaw", .. })), "{err:?}");
        Ok(())
    }

    #[test]
    fn a_missing_freezer_is_an_error_not_a_panic() {
        let cg = ContainerCgroup::V1(BTreeMap::new());
        assert!(matches!(is_frozen(&cg), Err(CgroupError::NoController("freezer"))));
        let cg = ContainerCgroup::V2("/nonexistent/berth-test".into());
        assert!(matches!(is_frozen(&cg), Err(CgroupError::Io { .. })));
    }

    #[test]
    fn events_parse() {
        assert_eq!(events_frozen("populated 1\nfrozen 0\n"), Some(false));
        assert_eq!(events_frozen("populated 1\nfrozen 1\n"), Some(true));
        assert_eq!(events_frozen("populated 1\n"), None);
    }
}
