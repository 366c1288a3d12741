//! `pause` and `unpause` of a container (Docker's semantics): the freezer of its cgroup, and the record's
//! `paused` status, which outlives a berthd restart as the kernel's frozen cgroup does.

use super::freezer;
use crate::runtime::lifecycle::{RunError, Runtime};
use crate::runtime::record::Status;

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
        self.containers.update(&record.id, |r| {
            if r.state.status == Status::Running {
                r.state.status = Status::Paused;
            }
        })?;
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

    /// After a signal was sent to a paused container: thaw it, so the signal is delivered (a frozen task does
    /// not even die of SIGKILL on v1). Docker and containerd do the same.
    pub(crate) async fn thaw_after_signal(&self, id: &str) {
        if let Err(e) = self.thaw(id).await {
            tracing::warn!(id, error = %e, "cannot thaw the paused container after a signal");
        }
    }

    async fn thaw(&self, id: &str) -> Result<(), RunError> {
        let (_, cgroup) = super::of_container(id, &self.shim_dir(id))?;
        freezer::thaw(&cgroup).await?;
        self.containers.update(id, |r| {
            if r.state.status == Status::Paused {
                r.state.status = Status::Running;
            }
        })?;
        Ok(())
    }
}
