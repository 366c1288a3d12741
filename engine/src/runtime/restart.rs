//! Restart policies (`HostConfig.RestartPolicy`): a supervisor per started container notices each exit (the
//! shim's `wait` answers when the container exits) and starts it again as the policy says, with Docker's
//! backoff — 100 ms doubling up to a minute, back to 100 ms once a run lasted 10 s.
//!
//! # Rules (Docker's)
//! - `always` restarts after every exit, `unless-stopped` too unless the container was stopped through the API,
//!   `on-failure[:N]` after a non-zero exit while fewer than N restarts happened (N = 0: no limit).
//! - A stop or a kill (with SIGKILL or the stop signal) through the API sets the persisted `manually_stopped`
//!   flag: no restart follows it while berthd runs; an API `start` clears the flag and the restart count.
//! - On berthd's start, `always` and `unless-stopped` containers that are not running come back (the host went
//!   down, or they exited while berthd was away), as do `on-failure` ones that failed and have retries left;
//!   `always` even after a manual stop, as Docker documents. Running containers get their supervisor again.
//! - Between an exit and its restart the container is `restarting`; its RestartCount counts the restarts.
//! - When berthd shuts down, no restart is started: the containers keep running in their shims.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::config::{HostConfig, RestartPolicy};
use super::lifecycle::Runtime;
use super::record::{ContainerRecord, Status};

/// Docker's first restart delay.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// Docker's longest restart delay.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long resets the delay.
const RESET_AFTER: Duration = Duration::from_secs(10);

/// The supervisor's daemon-wide state: whether berthd is shutting down, and which restarts are under way.
#[derive(Debug, Default)]
pub struct Restarts {
    stopping: AtomicBool,
    /// Containers the supervisor is starting again (from `restarting` until the start returned); changed only
    /// under the container table's lock, so a stop sees either a restart it can cancel or one under way.
    starting: Mutex<HashSet<String>>,
}

impl Restarts {
    /// berthd is shutting down: exits from now on are recorded but never restarted.
    pub fn shutdown(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    fn starting(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.starting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_starting(&self, id: &str) -> bool {
        self.starting().contains(id)
    }
}

/// Marks a restart under way until dropped (also when the start fails or its task ends).
struct Starting<'a> {
    restarts: &'a Restarts,
    id: String,
}

impl Drop for Starting<'_> {
    fn drop(&mut self) {
        self.restarts.starting().remove(&self.id);
    }
}

/// A restart policy, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    No,
    Always,
    UnlessStopped,
    /// At most this many restarts; 0 is no limit.
    OnFailure(u64),
}

impl Policy {
    pub fn of(p: &RestartPolicy) -> Policy {
        match p.name.as_str() {
            "always" => Policy::Always,
            "unless-stopped" => Policy::UnlessStopped,
            "on-failure" => Policy::OnFailure(u64::try_from(p.maximum_retry_count).unwrap_or(0)),
            _ => Policy::No,
        }
    }

    /// Whether an exit with `exit_code` is followed by a restart while berthd runs.
    pub fn restarts_after(self, exit_code: i64, manually_stopped: bool, restart_count: u64) -> bool {
        if manually_stopped {
            return false;
        }
        match self {
            Policy::No => false,
            Policy::Always | Policy::UnlessStopped => true,
            Policy::OnFailure(max) => exit_code != 0 && (max == 0 || restart_count < max),
        }
    }

    /// Whether a container that is not running is started when berthd starts.
    pub fn restarts_on_daemon_start(self, exit_code: i64, manually_stopped: bool, restart_count: u64) -> bool {
        match self {
            Policy::Always => true,
            _ => self.restarts_after(exit_code, manually_stopped, restart_count),
        }
    }
}

/// Docker's 400 for a policy that cannot be: AutoRemove removes the container at its first exit.
pub fn validate(h: &HostConfig) -> Result<(), String> {
    if h.auto_remove && Policy::of(&h.restart_policy) != Policy::No {
        return Err("can't create 'AutoRemove' container with restart policy".into());
    }
    Ok(())
}

/// The delay before each restart: 100 ms doubling up to a minute, reset after a run of 10 s or more.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    delay: Duration,
}

impl Backoff {
    /// The delay before the restart that follows a run of `ran_for`.
    pub fn next(&mut self, ran_for: Duration) -> Duration {
        if ran_for >= RESET_AFTER {
            self.delay = Duration::ZERO;
        }
        self.delay = if self.delay.is_zero() { FIRST_DELAY } else { (self.delay * 2).min(MAX_DELAY) };
        self.delay
    }
}

/// How long the last run lasted, from the record's RFC 3339 start and finish times.
fn ran_for(r: &ContainerRecord) -> Duration {
    let nanos = |s: &str| crate::events::parse_time(s).ok();
    match (nanos(&r.state.started_at), nanos(&r.state.finished_at)) {
        (Some(a), Some(b)) if b > a => Duration::from_nanos(u64::try_from(b - a).unwrap_or(0)),
        _ => Duration::ZERO,
    }
}

/// Watch a started container until it stops for good: each exit is recorded (the runtime's `wait`), then the
/// container is restarted as its policy says. Returns when it stays stopped, is removed, or berthd stops.
pub async fn supervise(runtime: Arc<Runtime>, id: String) {
    let mut backoff = Backoff::default();
    // Bounded by the container: each round is one run of it, and a removal or a stop ends the loop.
    loop {
        let _ = runtime.wait(&id).await;
        if runtime.restarts.stopping() {
            return;
        }
        let Ok(r) = runtime.containers.get(&id) else { return };
        if r.state.status != Status::Exited {
            // Started again by someone else (an API start or restart), who watches it now.
            return;
        }
        let policy = Policy::of(&r.host_config.restart_policy);
        if !policy.restarts_after(r.state.exit_code, r.manually_stopped, r.restart_count) {
            return;
        }
        let delay = backoff.next(ran_for(&r));
        let mut marked = false;
        let _ = runtime.containers.update(&id, |r| {
            // Re-checked under the lock: a stop may have come in between.
            if r.state.status == Status::Exited && !r.manually_stopped {
                r.state.status = Status::Restarting;
                r.restart_count += 1;
                marked = true;
            }
        });
        if !marked {
            return;
        }
        tracing::info!(container = %id, delay_ms = delay.as_millis() as u64, "restarting per its restart policy");
        tokio::time::sleep(delay).await;
        // A stop, kill or removal during the delay cancels the restart; a berthd shutdown leaves it
        // `restarting`, which the next berthd start completes.
        if runtime.restarts.stopping() {
            return;
        }
        let mut go = false;
        let _ = runtime.containers.update(&id, |r| {
            if r.state.status == Status::Restarting && !r.manually_stopped {
                runtime.restarts.starting().insert(id.clone());
                go = true;
            }
        });
        if !go {
            return;
        }
        let _starting = Starting { restarts: &runtime.restarts, id: id.clone() };
        if let Err(e) = runtime.start(&id).await {
            tracing::warn!(container = %id, error = %e, "restart failed; the container stays exited");
            give_up(&runtime, &id);
            return;
        }
    }
}

/// A restart that failed: the container is exited (with the start's error) rather than restarting forever.
fn give_up(runtime: &Runtime, id: &str) {
    let _ = runtime.containers.update(id, |r| {
        if r.state.status == Status::Restarting {
            r.state.status = Status::Exited;
        }
    });
}

/// How long a stop waits for a restart already under way (the shim's start timeout is 60 s).
const START_UNDER_WAY: Duration = Duration::from_secs(90);

/// A stop or kill of a `restarting` container: the pending restart is cancelled and the container stays exited
/// (true). A restart already under way is waited for: then the container runs (false), and the caller stops
/// it as any running container.
pub async fn cancel(runtime: &Runtime, id: &str) -> bool {
    let deadline = tokio::time::Instant::now() + START_UNDER_WAY;
    loop {
        let mut cancelled = None;
        let _ = runtime.containers.update(id, |r| {
            if r.state.status != Status::Restarting {
                cancelled = Some(false);
            } else if !runtime.restarts.is_starting(id) {
                r.state.status = Status::Exited;
                r.manually_stopped = true;
                cancelled = Some(true);
            }
        });
        match cancelled {
            Some(done) => return done,
            None if tokio::time::Instant::now() > deadline => return false,
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A signal sent through the API: SIGKILL or the container's stop signal means "stay stopped" (not while berthd
/// shuts down, which signals nothing anyway).
pub fn note_kill(runtime: &Runtime, record: &ContainerRecord, signal: &str) {
    let stop_signal = record.config.stop_signal.as_deref().unwrap_or("TERM");
    let sent = signal_number(signal);
    if runtime.restarts.stopping() || (sent != signal_number("KILL") && sent != signal_number(stop_signal)) {
        return;
    }
    let _ = runtime.containers.update(&record.id, |r| r.manually_stopped = true);
}

/// An API `start`: the container is wanted again, so its manual stop and its restart count are forgotten.
pub fn note_start(runtime: &Runtime, id: &str) {
    let _ = runtime.containers.update(id, |r| {
        r.manually_stopped = false;
        r.restart_count = 0;
    });
}

/// `SIGTERM`, `TERM` or `15` as Docker's events show it: `15` (unknown names stay as they are).
pub fn signal_number(signal: &str) -> String {
    let bare = signal.trim().trim_start_matches("SIG");
    if bare.parse::<i32>().is_ok() {
        return bare.to_string();
    }
    format!("SIG{}", bare.to_ascii_uppercase())
        .parse::<nix::sys::signal::Signal>()
        .map(|s| (s as i32).to_string())
        .unwrap_or_else(|_| bare.to_string())
}

/// The containers berthd starts again when it starts: not running, started before, and due per policy.
pub fn due_on_daemon_start(records: &[ContainerRecord]) -> Vec<String> {
    records
        .iter()
        .filter(|r| match r.state.status {
            // Its restart was pending when berthd went away.
            Status::Restarting => true,
            Status::Exited => {
                !r.state.started_at.is_empty()
                    && Policy::of(&r.host_config.restart_policy).restarts_on_daemon_start(
                        r.state.exit_code,
                        r.manually_stopped,
                        r.restart_count,
                    )
            }
            _ => false,
        })
        .map(|r| r.id.clone())
        .collect()
}

/// Start a container found due on berthd's start; whether it runs (then it needs its supervisor).
pub async fn start_on_daemon_start(runtime: &Runtime, id: &str) -> bool {
    match runtime.start(id).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "restart on berthd start failed");
            give_up(runtime, id);
            false
        }
    }
}

/// ps's `Restarting (1) 2 seconds ago`: the last exit code and the time since that exit.
pub fn restarting_status(r: &ContainerRecord) -> String {
    let since = crate::events::parse_time(&r.state.finished_at).ok().map(|finished| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let now = i64::try_from(now.as_nanos()).unwrap_or(i64::MAX);
        Duration::from_nanos(u64::try_from(now - finished).unwrap_or(0))
    });
    format!("Restarting ({}) {} ago", r.state.exit_code, human_duration(since.unwrap_or_default()))
}

/// Docker's `units.HumanDuration`, which the CLI's status column is made of.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = (d.as_secs_f64() / 3600.0).round() as u64;
    match () {
        () if seconds < 1 => "Less than a second".into(),
        () if seconds == 1 => "1 second".into(),
        () if seconds < 60 => format!("{seconds} seconds"),
        () if minutes == 1 => "About a minute".into(),
        () if minutes < 60 => format!("{minutes} minutes"),
        () if hours == 1 => "About an hour".into(),
        () if hours < 48 => format!("{hours} hours"),
        () if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        () if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        () if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        () => format!("{} years", seconds / 3600 / 24 / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, max: i64) -> Policy {
        Policy::of(&RestartPolicy { name: name.into(), maximum_retry_count: max })
    }

    #[test]
    fn backoff_doubles_from_100ms_to_a_minute_and_resets_after_10s() {
        let mut b = Backoff::default();
        let short = Duration::from_millis(50);
        let delays: Vec<u128> = (0..12).map(|_| b.next(short).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]);
        assert_eq!(b.next(Duration::from_secs(10)), FIRST_DELAY);
        assert_eq!(b.next(Duration::from_secs(9)), Duration::from_millis(200));
    }

    #[test]
    fn policies_decide_as_dockers_do() {
        assert!(!policy("", 0).restarts_after(1, false, 0));
        assert!(!policy("no", 0).restarts_after(1, false, 0));
        assert!(policy("always", 0).restarts_after(0, false, 50));
        assert!(policy("unless-stopped", 0).restarts_after(0, false, 0));
        assert!(!policy("always", 0).restarts_after(0, true, 0));
        assert!(!policy("unless-stopped", 0).restarts_after(137, true, 0));
        assert!(policy("on-failure", 2).restarts_after(1, false, 0));
        assert!(policy("on-failure", 2).restarts_after(1, false, 1));
        assert!(!policy("on-failure", 2).restarts_after(1, false, 2));
        assert!(!policy("on-failure", 0).restarts_after(0, false, 0));
        assert!(policy("on-failure", 0).restarts_after(3, false, 1000));
        // berthd's start: `always` comes back even after a manual stop, unless-stopped does not.
        assert!(policy("always", 0).restarts_on_daemon_start(0, true, 0));
        assert!(!policy("unless-stopped", 0).restarts_on_daemon_start(0, true, 0));
        assert!(policy("unless-stopped", 0).restarts_on_daemon_start(255, false, 0));
        assert!(!policy("no", 0).restarts_on_daemon_start(255, false, 0));
    }

    #[test]
    fn auto_remove_allows_no_policy() {
        let mut h = HostConfig { auto_remove: true, ..Default::default() };
        assert!(validate(&h).is_ok());
        h.restart_policy.name = "no".into();
        assert!(validate(&h).is_ok());
        h.restart_policy.name = "always".into();
        assert!(validate(&h).is_err());
        h.auto_remove = false;
        assert!(validate(&h).is_ok());
    }

    #[test]
    fn due_on_daemon_start_are_stopped_containers_the_policy_wants_running() {
        let rec = |name: &str, status: Status, started: bool, policy: &str, manual: bool| {
            let mut r = ContainerRecord { id: name.into(), ..Default::default() };
            r.state.status = status;
            r.state.exit_code = 0;
            if started {
                r.state.started_at = "2026-11-22T10:00:00Z".into();
            }
            r.host_config.restart_policy.name = policy.into();
            r.manually_stopped = manual;
            r
        };
        let records = [
            rec("a", Status::Exited, true, "always", true),
            rec("b", Status::Exited, true, "unless-stopped", false),
            rec("c", Status::Exited, true, "unless-stopped", true),
            rec("d", Status::Exited, false, "always", false),
            rec("e", Status::Running, true, "always", false),
            rec("f", Status::Restarting, true, "on-failure", false),
            rec("g", Status::Exited, true, "on-failure", false),
            rec("h", Status::Exited, true, "", false),
        ];
        assert_eq!(due_on_daemon_start(&records), ["a", "b", "f"]);
    }

    #[test]
    fn signals_are_numbers_in_events() {
        assert_eq!(signal_number("KILL"), "9");
        assert_eq!(signal_number("SIGTERM"), "15");
        assert_eq!(signal_number("15"), "15");
        assert_eq!(signal_number("hup"), "1");
        assert_eq!(signal_number("NOPE"), "NOPE");
    }

    #[test]
    fn human_durations_read_as_dockers() {
        assert_eq!(human_duration(Duration::from_millis(300)), "Less than a second");
        assert_eq!(human_duration(Duration::from_secs(1)), "1 second");
        assert_eq!(human_duration(Duration::from_secs(2)), "2 seconds");
        assert_eq!(human_duration(Duration::from_secs(61)), "About a minute");
        assert_eq!(human_duration(Duration::from_secs(600)), "10 minutes");
        assert_eq!(human_duration(Duration::from_secs(3600)), "About an hour");
        assert_eq!(human_duration(Duration::from_secs(3 * 86_400)), "3 days");
    }
}
