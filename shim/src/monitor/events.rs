//! The poll loop: container output into the log, the stdin relay, the control socket, and SIGCHLD.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::{Exit, Monitor, shimlog};
use crate::control::Incoming;
use crate::error::chain;
use crate::protocol::{Request, Response, SignalName, Status};
use crate::timefmt;

/// After the init exits, output still in flight is read for at most this long.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);
/// Bytes read per output per poll round (fairness between stdout, stderr and the control socket).
const READ_CHUNK: usize = 64 * 1024;
const READS_PER_ROUND: usize = 4;

#[derive(Debug, Clone, Copy)]
enum Token {
    Signals,
    Output(usize),
    Listener,
    Client(usize),
    StdinFifo,
    MasterWritable,
}

impl Monitor {
    /// Until the init has exited and its output is drained (or the drain deadline passed).
    pub(super) fn run_events(&mut self) {
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            let timeout = match &self.exit {
                Some(exit) => {
                    let now = Instant::now();
                    if self.outputs.iter().all(|o| !o.open) || now >= exit.drain_deadline {
                        return;
                    }
                    PollTimeout::try_from(exit.drain_deadline - now).unwrap_or(PollTimeout::MAX)
                }
                None => PollTimeout::NONE,
            };
            let ready = match self.poll_once(timeout) {
                Ok(ready) => ready,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    // Nothing sensible is left to do without poll; waiting blocks on the init at least.
                    shimlog!("poll failed: {e}; waiting for the init without serving clients");
                    self.block_until_exit();
                    return;
                }
            };
            for (token, revents) in ready {
                match token {
                    Token::Signals => self.on_signals(),
                    Token::Output(i) => self.on_output(i, &mut buf),
                    Token::Listener => self.control.accept(),
                    Token::Client(i) => self.on_client(i),
                    Token::StdinFifo => self.on_stdin(&mut buf),
                    Token::MasterWritable => self.flush_relay(),
                }
                let _ = revents;
            }
            self.control.reap();
            if let Some(log) = &mut self.log
                && let Err(e) = log.flush()
            {
                self.log_error(&e);
            }
        }
    }

    fn poll_once(&self, timeout: PollTimeout) -> Result<Vec<(Token, PollFlags)>, Errno> {
        let mut watch: Vec<(Token, BorrowedFd<'_>, PollFlags)> =
            vec![(Token::Signals, self.signals.as_fd(), PollFlags::POLLIN)];
        for (i, o) in self.outputs.iter().enumerate().filter(|(_, o)| o.open) {
            watch.push((Token::Output(i), o.fd.as_fd(), PollFlags::POLLIN));
        }
        // Served while the output drains too: `state` then says `stopping`.
        watch.push((Token::Listener, self.control.listener_fd(), PollFlags::POLLIN));
        for (i, fd) in self.control.client_fds() {
            watch.push((Token::Client(i), fd, PollFlags::POLLIN));
        }
        if self.tty
            && let Some(fifo) = &self.stdin_fifo
            && self.exit.is_none()
        {
            match (self.relay.is_empty(), self.outputs.first()) {
                (true, _) => watch.push((Token::StdinFifo, fifo.as_fd(), PollFlags::POLLIN)),
                (false, Some(master)) if master.open => {
                    watch.push((Token::MasterWritable, master.fd.as_fd(), PollFlags::POLLOUT))
                }
                _ => {}
            }
        }
        let mut fds: Vec<PollFd<'_>> = watch.iter().map(|(_, fd, ev)| PollFd::new(*fd, *ev)).collect();
        poll(&mut fds, timeout)?;
        Ok(watch
            .iter()
            .zip(&fds)
            .filter_map(|((token, _, _), fd)| fd.revents().filter(|r| !r.is_empty()).map(|r| (*token, r)))
            .collect())
    }

    fn on_signals(&mut self) {
        while let Ok(Some(info)) = self.signals.read_signal() {
            if info.ssi_signo != Signal::SIGCHLD as u32 {
                shimlog!("ignoring signal {} from pid {}", info.ssi_signo, info.ssi_pid);
            }
        }
        self.reap_children();
    }

    /// Reap every child that has exited (the runtime's helpers, reparented orphans, and the init).
    fn reap_children(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return,
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    shimlog!("waitpid failed: {e}");
                    return;
                }
                Ok(status) => {
                    if status.pid() == Some(Pid::from_raw(self.init_pid)) {
                        self.on_init_exit(status);
                    }
                }
            }
        }
    }

    fn on_init_exit(&mut self, status: WaitStatus) {
        let (exit_code, signal) = match status {
            WaitStatus::Exited(_, code) => (code, None),
            WaitStatus::Signaled(_, sig, _) => (128 + sig as i32, Some(sig as i32)),
            other => {
                shimlog!("unexpected wait status of the init: {other:?}");
                return;
            }
        };
        shimlog!("container {} init {} exited: code {exit_code}", self.args.id, self.init_pid);
        self.exit = Some(Exit {
            exit_code,
            signal,
            finished_at: timefmt::now(),
            drain_deadline: Instant::now() + DRAIN_TIMEOUT,
        });
        // Without a pid namespace the init's children outlive it and may hold the output open: the container
        // is over when its init is, as with Docker.
        self.kill_cgroup(Signal::SIGKILL);
    }

    /// Block (no poll) until the init exits: the fallback when poll itself fails.
    fn block_until_exit(&mut self) {
        while self.exit.is_none() {
            match waitpid(Pid::from_raw(self.init_pid), None) {
                Ok(status) => self.on_init_exit(status),
                Err(Errno::EINTR) => continue,
                Err(e) => {
                    shimlog!("waitpid {} failed: {e}", self.init_pid);
                    return;
                }
            }
        }
    }

    fn on_output(&mut self, index: usize, buf: &mut [u8]) {
        let Monitor { outputs, log, log_failed, .. } = self;
        let Some(output) = outputs.get_mut(index) else { return };
        let mut write_error = None;
        for _ in 0..READS_PER_ROUND {
            match nix::unistd::read(&output.fd, buf) {
                Ok(0) | Err(Errno::EIO) => {
                    // EOF of a pipe; EIO is how a pty master says its last slave closed.
                    output.open = false;
                    let stream = output.stream;
                    let time = timefmt::now();
                    output.splitter.finish(|m| {
                        if let Some(log) = log.as_mut()
                            && let Err(e) = log.write(stream, m, &time)
                        {
                            write_error = Some(e);
                        }
                    });
                    break;
                }
                Ok(n) => {
                    let stream = output.stream;
                    let time = timefmt::now();
                    output.splitter.push(&buf[..n], |m| {
                        if let Some(log) = log.as_mut()
                            && let Err(e) = log.write(stream, m, &time)
                        {
                            write_error = Some(e);
                        }
                    });
                    if n < buf.len() {
                        break;
                    }
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => break,
                Err(e) => {
                    shimlog!("reading the container's {} failed: {e}", output.stream.as_str());
                    output.open = false;
                    break;
                }
            }
        }
        if let Some(e) = write_error
            && !*log_failed
        {
            *log_failed = true;
            shimlog!("writing the container log failed (later failures not reported): {}", chain(&e));
        }
    }

    fn log_error(&mut self, e: &crate::error::ShimError) {
        if !self.log_failed {
            self.log_failed = true;
            shimlog!("writing the container log failed (later failures not reported): {}", chain(e));
        }
    }

    /// tty mode: the FIFO has input for the pty.
    fn on_stdin(&mut self, buf: &mut [u8]) {
        let Some(fifo) = &self.stdin_fifo else { return };
        match nix::unistd::read(fifo, &mut buf[..4096]) {
            Ok(n) => self.relay.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN | Errno::EINTR) => {}
            Err(e) => {
                shimlog!("reading the stdin fifo failed: {e}");
                self.stdin_fifo = None;
            }
        }
        self.flush_relay();
    }

    /// Give the pty master what it takes of the relayed input.
    fn flush_relay(&mut self) {
        let Some(master) = self.outputs.first().filter(|o| o.open) else {
            self.relay.clear();
            return;
        };
        while !self.relay.is_empty() {
            match nix::unistd::write(&master.fd, &self.relay) {
                Ok(n) => {
                    self.relay.drain(..n);
                }
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN) => return,
                Err(e) => {
                    shimlog!("writing to the pty failed: {e}");
                    self.relay.clear();
                    return;
                }
            }
        }
    }

    fn on_client(&mut self, index: usize) {
        for incoming in self.control.read(index) {
            let response = match incoming {
                Incoming::Invalid(message) => Some(Response::Error { message }),
                Incoming::Request(Request::Wait) => {
                    self.control.set_waiting(index);
                    None
                }
                Incoming::Request(request) => Some(self.handle(request)),
            };
            if let Some(response) = response {
                self.control.respond(index, &response);
            }
        }
    }

    fn handle(&mut self, request: Request) -> Response {
        match request {
            Request::State => Response::State {
                status: if self.exit.is_some() { Status::Stopping } else { Status::Running },
                shim_pid: self.shim_pid,
                init_pid: self.init_pid,
                started_at: self.started_at.clone(),
                exit_code: self.exit.as_ref().map(|e| e.exit_code),
            },
            Request::Kill { signal, all } => match parse_signal(&signal) {
                Err(message) => Response::Error { message },
                Ok(_) if self.exit.is_some() => {
                    Response::Error { message: format!("container {} has exited", self.args.id) }
                }
                Ok(sig) => {
                    // The init is our unreaped child: its pid is still its own.
                    let result = kill(Pid::from_raw(self.init_pid), sig);
                    if all {
                        self.kill_cgroup(sig);
                    }
                    match result {
                        Ok(()) | Err(Errno::ESRCH) => Response::Ok,
                        Err(e) => Response::Error { message: format!("kill {} {sig}: {e}", self.init_pid) },
                    }
                }
            },
            Request::Resize { rows, cols } => self.resize(rows, cols),
            Request::CloseStdin => self.close_stdin(),
            Request::Wait => Response::Error { message: "wait is answered on exit".into() },
        }
    }

    fn resize(&self, rows: u16, cols: u16) -> Response {
        let master = match self.outputs.first() {
            Some(m) if self.tty && m.open => m,
            _ => return Response::Error { message: format!("container {} has no terminal", self.args.id) },
        };
        let size = rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
        match rustix::termios::tcsetwinsize(&master.fd, size) {
            Ok(()) => Response::Ok,
            Err(e) => Response::Error { message: format!("resize to {rows}x{cols}: {e}") },
        }
    }

    fn close_stdin(&mut self) -> Response {
        if self.stdin_fifo.take().is_none() {
            return Response::Error { message: format!("container {} has no open stdin", self.args.id) };
        }
        if self.tty {
            // A terminal has no EOF of its own: send the line discipline's EOF character (^D), as a user would.
            self.relay.push(0x04);
            self.flush_relay();
        }
        let _ = std::fs::remove_file(self.args.state_dir.join(crate::protocol::files::STDIN_FIFO));
        Response::Ok
    }

    /// Signal every process in the container's cgroup.
    pub(super) fn kill_cgroup(&self, sig: Signal) {
        for pid in self.cgroup.procs() {
            match kill(Pid::from_raw(pid), sig) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => shimlog!("kill {pid} {sig}: {e}"),
            }
        }
    }
}

/// `TERM`, `SIGTERM`, `15` → SIGTERM.
pub(crate) fn parse_signal(name: &SignalName) -> Result<Signal, String> {
    match name {
        SignalName::Number(n) => Signal::try_from(*n).map_err(|_| format!("unknown signal {n}")),
        SignalName::Name(s) => {
            let upper = s.trim().to_ascii_uppercase();
            if let Ok(n) = upper.parse::<i32>() {
                return Signal::try_from(n).map_err(|_| format!("unknown signal {n}"));
            }
            let full = if upper.starts_with("SIG") { upper } else { format!("SIG{upper}") };
            full.parse().map_err(|_| format!("unknown signal {s:?}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal(&SignalName::Name("TERM".into())), Ok(Signal::SIGTERM));
        assert_eq!(parse_signal(&SignalName::Name("sigkill".into())), Ok(Signal::SIGKILL));
        assert_eq!(parse_signal(&SignalName::Name("9".into())), Ok(Signal::SIGKILL));
        assert_eq!(parse_signal(&SignalName::Number(1)), Ok(Signal::SIGHUP));
        assert!(parse_signal(&SignalName::Name("NOPE".into())).is_err());
        assert!(parse_signal(&SignalName::Number(999)).is_err());
    }
}
