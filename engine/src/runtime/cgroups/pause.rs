//! `pause` and `unpause` of a container (Docker's semantics): the freezer of its cgroup, and the record's
//! `paused` status.
//!
//! The kernel's freezer is the truth: the status changes in memory only (a pause costs no fsync'd write, and a
//! reboot thaws everything anyway), and berthd reads it back from the freezer on start ([`Runtime::sync_paused`]),
//! so a paused container stays paused across a berthd restart.

use super::freezer;
use crate::runtime::lifecycle::{RunError, Runtime};
use crate::runtime::record::{ContainerRecord, Status};
use crate::runtime::restart::signal_number;

/// Whether a signal sent to a paused container thaws it: SIGKILL and the container's stop signal, as Docker
/// does (another signal stays pending until the unpause).
pub(crate) fn signal_thaws(record: &ContainerRecord, signal: &str) -> bool {
    let sent = signal_number(signal);
    sent == "9" || sent == signal_number(record.config.stop_signal.as_deref().unwrap_or("TERM"))
}

impl Runtime {
    /// Freeze every process of a running container.
    pub async fn pause(&self, key: &str) -> Result<(), RunError> {
        let record = self.containers.get(key)?;
        self.refresh(&record.id).await;
        let record = self.containers.get(&record.id)?;
        match record.state.status {
            Status::Running => {}
            Status::Paused => return Err(RunError::AlreadyPaused(record.id)),
            _ => return Err(RunError::NotRunning(record.id)),
        }
        let (_, cgroup) = super::of_container(&record.id, &self.shim_dir(&record.id))?;
        freezer::freeze(&cgroup).await?;
        self.set_paused(&record.id, true)?;
        self.events.container(&record, "pause", &[]);
        Ok(())
    }

    /// Thaw a paused container.
    pub async fn unpause(&self, key: &str) -> Result<(), RunError> {
        let record = self.containers.get(key)?;
        self.refresh(&record.id).await;
        let record = self.containers.get(&record.id)?;
        match record.state.status {
            Status::Paused => {}
            Status::Running => return Err(RunError::NotPaused(record.id)),
            _ => return Err(RunError::NotRunning(record.id)),
        }
        self.thaw(&record.id).await
    }

    /// After SIGKILL or the stop signal was sent to a paused container: thaw it, so the signal is delivered (a
    /// frozen task does not even die of SIGKILL on v1). Docker does the same.
    pub(crate) async fn thaw_after_signal(&self, id: &str) {
        if let Err(e) = self.thaw(id).await {
            tracing::warn!(id, error = %e, "cannot thaw the paused container after a signal");
        }
    }

    async fn thaw(&self, id: &str) -> Result<(), RunError> {
        let (_, cgroup) = super::of_container(id, &self.shim_dir(id))?;
        freezer::thaw(&cgroup).await?;
        self.set_paused(id, false)?;
        if let Ok(record) = self.containers.get(id) {
            self.events.container(&record, "unpause", &[]);
        }
        Ok(())
    }

    /// On berthd's start: a running container is paused exactly when its cgroup is frozen.
    pub(crate) fn sync_paused(&self, id: &str) {
        let Ok(record) = self.containers.get(id) else { return };
        if !matches!(record.state.status, Status::Running | Status::Paused) {
            return;
        }
        let frozen = super::of_container(id, &self.shim_dir(id)).and_then(|(_, cg)| freezer::is_frozen(&cg));
        match frozen {
            Ok(frozen) => {
                let _ = self.set_paused(id, frozen);
            }
            Err(e) => tracing::warn!(id, error = %e, "cannot read the container's freezer state"),
        }
    }

    fn set_paused(&self, id: &str, paused: bool) -> Result<(), RunError> {
        self.containers.update_in_memory(id, |r| match r.state.status {
            Status::Running if paused => r.state.status = Status::Paused,
            Status::Paused if !paused => r.state.status = Status::Running,
            _ => {}
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_and_the_stop_signal_thaw_others_do_not() {
        let mut r = ContainerRecord::default();
        for s in ["KILL", "SIGKILL", "9", "TERM", "15", "SIGTERM"] {
            assert!(signal_thaws(&r, s), "{s}");
        }
        for s in ["USR1", "HUP", "10"] {
            assert!(!signal_thaws(&r, s), "{s}");
        }
        r.config.stop_signal = Some("SIGQUIT".into());
        assert!(signal_thaws(&r, "QUIT") && signal_thaws(&r, "KILL") && !signal_thaws(&r, "TERM"));
    }
}
