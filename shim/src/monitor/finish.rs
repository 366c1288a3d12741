//! The container has exited: record it and clean up.

use std::fs;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{Monitor, shimlog};
use crate::atomic::{self, Durability};
use crate::error::chain;
use crate::protocol::{ExitRecord, Response, files};
use crate::runtime;
use crate::timefmt;

/// How long clients that connected before the socket was removed may take to send their request.
const LAST_REQUESTS: Duration = Duration::from_millis(200);

impl Monitor {
    /// Log flush, OOM counter, leftovers, runtime state, `exit.json`, sockets, last answers, in that order.
    pub(super) fn finish(mut self) {
        let time = timefmt::now();
        let Monitor { outputs, log, .. } = &mut self;
        for output in outputs.iter_mut().filter(|o| o.open) {
            // The drain deadline passed: what is buffered still goes to the log.
            let stream = output.stream;
            output.splitter.finish(|m| {
                if let Some(log) = log.as_mut() {
                    let _ = log.write(stream, m, &time);
                }
            });
        }
        if let Some(log) = &mut self.log
            && let Err(e) = log.flush()
        {
            shimlog!("flushing the container log failed: {}", chain(&e));
        }
        let oom_killed = self.cgroup.oom_kills().is_some_and(|n| n > self.oom_baseline);
        self.kill_cgroup(Signal::SIGKILL);
        let cleanup_error =
            runtime::delete(&self.runtime, &self.args.id, &self.args.runtime_root, self.args.helper.as_deref()).err();
        if let Some(e) = &cleanup_error {
            shimlog!("{e}");
        }
        let (exit_code, signal, finished_at) = match &self.exit {
            Some(e) => (e.exit_code, e.signal, e.finished_at.clone()),
            // Only when waiting itself failed; say so rather than invent a status.
            None => (255, None, timefmt::now()),
        };
        let record = ExitRecord {
            exit_code,
            signal,
            oom_killed,
            started_at: self.started_at.clone(),
            finished_at,
            cleanup_error,
        };
        // exit.json first, then the socket goes: at every moment berthd finds one or the other. Whoever is still
        // connected or queued on the socket gets the exit as the answer.
        if let Err(e) = atomic::write_json(&self.args.state_dir.join(files::EXIT), &record, Durability::UntilReboot) {
            shimlog!("cannot write exit.json: {}", chain(&e));
        }
        let _ = fs::remove_file(self.control.path());
        let _ = fs::remove_file(self.args.state_dir.join(files::STDIN_FIFO));
        self.control.answer_after_exit(&Response::Exited(record), Instant::now() + LAST_REQUESTS);
        shimlog!("container {} done: exit code {exit_code}", self.args.id);
    }
}
