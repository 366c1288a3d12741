//! The container's stdio as the shim holds it.
//!
//! - **Pipes** (`process.terminal` false): one pipe for stdout and one for stderr; the shim keeps the read ends.
//!   stdin is `/dev/null`, or with `--stdin` the FIFO `<state dir>/stdin`: the container reads it, berthd writes
//!   to it, and the shim holds it open for writing so the container sees no EOF until `close_stdin`.
//! - **TTY** (`process.terminal` true): the runtime makes the pty inside the container and sends its master over
//!   the console socket (`<state dir>/console.sock`, the OCI `--console-socket` mechanism); the shim reads the
//!   master for output and, with `--stdin`, relays the FIFO into it.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;
use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};

use crate::error::{Result, ShimError};
use crate::logfile::Stream;
use crate::protocol::files;

/// What the process that creates the container (our creator helper or the runtime binary) gets as stdio; a
/// container init created without a console inherits it.
pub struct ChildStdio {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

/// The shim's ends.
pub struct ShimStdio {
    /// Read ends of the output pipes (empty in tty mode until the console arrives).
    pub outputs: Vec<(Stream, OwnedFd)>,
    /// The stdin FIFO, opened read-write and non-blocking: held open (pipes) or relayed into the pty (tty).
    pub stdin_fifo: Option<File>,
    /// Waiting for the pty master (tty mode).
    pub console: Option<ConsoleListener>,
}

/// Set up stdio for a container. `console_socket` is where a tty container's pty master arrives: a Unix socket
/// path, so it must stay under the kernel's 108-byte limit (the state dir under the data root may not).
pub fn setup(state_dir: &Path, console_socket: &Path, tty: bool, keep_stdin: bool) -> Result<(ChildStdio, ShimStdio)> {
    let (stdin_fifo, container_stdin) = if keep_stdin { make_stdin_fifo(state_dir, !tty)? } else { (None, None) };
    if tty {
        let console = ConsoleListener::bind(console_socket)?;
        let child = ChildStdio { stdin: Stdio::null(), stdout: Stdio::null(), stderr: Stdio::null() };
        return Ok((child, ShimStdio { outputs: Vec::new(), stdin_fifo, console: Some(console) }));
    }
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    set_nonblocking(&out_r)?;
    set_nonblocking(&err_r)?;
    let child = ChildStdio {
        stdin: container_stdin.map(Stdio::from).unwrap_or_else(Stdio::null),
        stdout: Stdio::from(out_w),
        stderr: Stdio::from(err_w),
    };
    Ok((
        child,
        ShimStdio { outputs: vec![(Stream::Stdout, out_r), (Stream::Stderr, err_r)], stdin_fifo, console: None },
    ))
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(ShimError::sys("create a pipe"))
}

pub fn set_nonblocking(fd: impl AsFd) -> Result<()> {
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).map_err(ShimError::sys("read file status flags"))?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(fd.as_fd(), FcntlArg::F_SETFL(flags)).map_err(ShimError::sys("set O_NONBLOCK"))?;
    Ok(())
}

/// Make `<state dir>/stdin`; return the shim's read-write end and, for pipe mode, the container's read end.
fn make_stdin_fifo(state_dir: &Path, container_end: bool) -> Result<(Option<File>, Option<File>)> {
    let path = state_dir.join(files::STDIN_FIFO);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(ShimError::io("remove stale", &path)(e)),
    }
    nix::unistd::mkfifo(&path, Mode::from_bits_truncate(0o600)).map_err(|e| ShimError::Io {
        action: "make the fifo",
        path: path.clone(),
        source: e.into(),
    })?;
    // Read-write: a FIFO opened this way never blocks the open and always has a writer, so the container sees
    // no EOF while berthd's writers come and go.
    let hold = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(&path)
        .map_err(ShimError::io("open", &path))?;
    let container = if container_end { Some(File::open(&path).map_err(ShimError::io("open", &path))?) } else { None };
    Ok((Some(hold), container))
}

/// The console socket: the runtime connects and sends the pty master with SCM_RIGHTS.
pub struct ConsoleListener {
    listener: UnixListener,
    pub path: PathBuf,
}

impl ConsoleListener {
    fn bind(path: &Path) -> Result<Self> {
        match fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(ShimError::io("remove stale", path)(e)),
        }
        let listener = UnixListener::bind(path).map_err(ShimError::io("bind the console socket", path))?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(ShimError::io("chmod", path))?;
        Ok(ConsoleListener { listener, path: path.to_path_buf() })
    }

    /// Take the pty master the runtime sent (it connected during create), then remove the socket.
    pub fn receive(self, timeout: Duration) -> Result<OwnedFd> {
        let result = self.receive_inner(timeout);
        let _ = fs::remove_file(&self.path);
        result
    }

    fn receive_inner(&self, timeout: Duration) -> Result<OwnedFd> {
        let timeout_ms = timeout.as_millis() as u64;
        let ready = {
            let mut fds = [PollFd::new(self.listener.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::try_from(timeout).unwrap_or(PollTimeout::MAX))
                .map_err(ShimError::sys("poll the console socket"))?
        };
        if ready == 0 {
            return Err(ShimError::ConsoleTimeout { path: self.path.clone(), timeout_ms });
        }
        let (stream, _) = self.listener.accept().map_err(ShimError::io("accept on", &self.path))?;
        let mut name = [0u8; 4096];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        recvmsg(&stream, &mut [IoSliceMut::new(&mut name)], &mut control, RecvFlags::CMSG_CLOEXEC)
            .map_err(|e| ShimError::io("receive the pty master on", &self.path)(e.into()))?;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(mut fds) = message
                && let Some(fd) = fds.next()
            {
                return Ok(fd);
            }
        }
        Err(ShimError::NoConsoleFd)
    }
}
