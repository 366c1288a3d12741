//! The control socket: a Unix stream socket (mode 0600) speaking line-JSON (`protocol::Request` in,
//! `protocol::Response` out). Non-blocking throughout; the monitor's poll loop drives it.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::error::{Result, ShimError};
use crate::protocol::{Request, Response};

/// More than this many clients at once are turned away.
const MAX_CLIENTS: usize = 32;
/// A request line longer than this closes the connection.
const MAX_LINE: usize = 64 * 1024;

pub struct ControlServer {
    listener: UnixListener,
    path: PathBuf,
    clients: Vec<Client>,
}

pub struct Client {
    stream: UnixStream,
    buf: Vec<u8>,
    /// Asked `wait`: answered when the container has exited.
    pub waiting: bool,
    /// The client shut its side: not polled any more, kept while it waits for its answer.
    read_done: bool,
    closed: bool,
    /// Got at least one response.
    answered: bool,
}

/// What a client said.
pub enum Incoming {
    Request(Request),
    /// A line that is not a request; answered with an error, the connection stays.
    Invalid(String),
}

impl ControlServer {
    pub fn bind(path: &Path) -> Result<Self> {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(ShimError::io("remove stale", path)(e)),
        }
        let listener = UnixListener::bind(path).map_err(ShimError::io("bind the control socket", path))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(ShimError::io("chmod", path))?;
        listener.set_nonblocking(true).map_err(ShimError::io("set non-blocking", path))?;
        Ok(ControlServer { listener, path: path.to_path_buf(), clients: Vec::new() })
    }

    pub fn listener_fd(&self) -> BorrowedFd<'_> {
        self.listener.as_fd()
    }

    pub fn client_fds(&self) -> impl Iterator<Item = (usize, BorrowedFd<'_>)> {
        self.clients.iter().enumerate().filter(|(_, c)| !c.read_done && !c.closed).map(|(i, c)| (i, c.stream.as_fd()))
    }

    /// Accept every pending connection.
    pub fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if self.clients.len() >= MAX_CLIENTS || stream.set_nonblocking(true).is_err() {
                        let mut s = stream;
                        let _ = reply(&mut s, &Response::Error { message: "too many control clients".into() });
                        continue;
                    }
                    self.clients.push(Client {
                        stream,
                        buf: Vec::new(),
                        waiting: false,
                        read_done: false,
                        closed: false,
                        answered: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
    }

    /// Read what client `index` sent: the complete lines, parsed.
    pub fn read(&mut self, index: usize) -> Vec<Incoming> {
        let Some(client) = self.clients.get_mut(index) else { return Vec::new() };
        let mut chunk = [0u8; 4096];
        loop {
            match client.stream.read(&mut chunk) {
                Ok(0) => {
                    // The client shut its side; a waiter may still want its answer.
                    client.read_done = true;
                    break;
                }
                Ok(n) => client.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    client.closed = true;
                    break;
                }
            }
        }
        let mut out = Vec::new();
        while let Some(pos) = client.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = client.buf.drain(..=pos).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            out.push(match serde_json::from_str(line) {
                Ok(req) => Incoming::Request(req),
                Err(e) => Incoming::Invalid(format!("bad request {line:?}: {e}")),
            });
        }
        if client.buf.len() > MAX_LINE {
            client.closed = true;
        }
        if client.read_done && !client.waiting && out.iter().all(|i| !matches!(i, Incoming::Request(Request::Wait))) {
            // Answers to the last requests still go out (respond() works until reap()).
            client.closed = true;
        }
        out
    }

    /// Answer client `index`; a client that cannot take the answer is dropped.
    pub fn respond(&mut self, index: usize, response: &Response) {
        if let Some(client) = self.clients.get_mut(index) {
            client.answered = true;
            if reply(&mut client.stream, response).is_err() {
                client.closed = true;
            }
        }
    }

    pub fn set_waiting(&mut self, index: usize) {
        if let Some(c) = self.clients.get_mut(index) {
            c.waiting = true;
            c.closed = false;
        }
    }

    /// The exit is final (`exit.json` is written) and the socket path is gone, so no new client can come: answer
    /// every client still connected or in the listen backlog, `state` and `wait` with `exited`, anything else with
    /// an error. A client that connected but has not sent its request yet gets until `deadline`. So berthd never
    /// sees a shim vanish without an answer: `exit.json` exists, or its request is answered.
    pub fn answer_after_exit(&mut self, exited: &Response, deadline: Instant) {
        let gone = Response::Error { message: "the container has exited".into() };
        loop {
            self.accept();
            for i in 0..self.clients.len() {
                if self.clients[i].waiting {
                    self.clients[i].waiting = false;
                    self.respond(i, exited);
                }
                for incoming in self.read(i) {
                    let invalid;
                    let response = match incoming {
                        Incoming::Request(Request::State | Request::Wait) => exited,
                        Incoming::Request(_) => &gone,
                        Incoming::Invalid(message) => {
                            invalid = Response::Error { message };
                            &invalid
                        }
                    };
                    self.respond(i, response);
                }
            }
            let finished = |c: &Client| c.closed || c.read_done || (c.answered && c.buf.is_empty());
            self.clients.retain(|c| !finished(c));
            let now = Instant::now();
            if (self.clients.is_empty() && !self.backlog_ready()) || now >= deadline {
                return;
            }
            // Wait for a request (or a late connection) to arrive, not longer than the deadline.
            let mut fds: Vec<PollFd<'_>> = std::iter::once(self.listener.as_fd())
                .chain(self.clients.iter().map(|c| c.stream.as_fd()))
                .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
                .collect();
            let wait = PollTimeout::try_from(deadline - now).unwrap_or(PollTimeout::MAX);
            if poll(&mut fds, wait).is_err() {
                return;
            }
        }
    }

    /// A connection waits in the listen backlog.
    fn backlog_ready(&self) -> bool {
        let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|n| n > 0)
    }

    /// Forget closed clients (indices change; call between poll rounds).
    pub fn reap(&mut self) {
        self.clients.retain(|c| !c.closed);
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn reply(stream: &mut UnixStream, response: &Response) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}
