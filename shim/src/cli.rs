//! The command lines. berthd runs `berth-shim start …`; `berth-shim monitor` is the shim's own re-execution of
//! itself (hidden) and `berth-shim-runtime` the helper the monitor runs to create and delete the container, so
//! each process starts fresh and single-threaded.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::logfile::parse_size;

#[derive(Debug, Parser)]
#[command(
    name = "berth-shim",
    version,
    about = "One per container: creates it, holds its stdio, writes its log, reaps it"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a container under a new detached shim. Prints one JSON line (`{"type":"started",…}` or
    /// `{"type":"failed",…}`) and exits 0 when the container runs, 1 when it could not be started (the same record
    /// is in STATE_DIR/error.json), 2 on bad arguments. The shim lives on until the container exits.
    Start(ContainerArgs),
    /// The shim itself (what `start` leaves running). `--foreground` keeps it attached to the terminal, for
    /// debugging.
    #[command(hide = true)]
    Monitor {
        #[command(flatten)]
        args: ContainerArgs,
        #[arg(long)]
        foreground: bool,
    },
}

/// Everything the shim needs to know about one container.
#[derive(Debug, Clone, Args)]
pub struct ContainerArgs {
    /// Container id (the runtime's id; also the libcontainer state dir name).
    #[arg(long)]
    pub id: String,
    /// OCI bundle: config.json and the rootfs it names. `process.terminal` selects tty mode.
    #[arg(long)]
    pub bundle: PathBuf,
    /// The shim's directory for this container (pid files, control socket, exit record).
    #[arg(long)]
    pub state_dir: PathBuf,
    /// The runtime's state root (libcontainer's root path, or the runtime binary's --root).
    #[arg(long, default_value = "/run/berth/runc")]
    pub runtime_root: PathBuf,
    /// An OCI runtime binary (crun, runc) to use instead of the built-in libcontainer.
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    /// json-file log of the container's output; without it the output is read and dropped.
    #[arg(long)]
    pub log_path: Option<PathBuf>,
    /// Rotate the log once it reaches this size (`100k`, `10m`, `1g`).
    #[arg(long, value_parser = parse_size)]
    pub log_max_size: Option<u64>,
    /// Number of log files to keep, the current one included.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub log_max_file: u32,
    /// Keep the container's stdin open: the shim makes the FIFO STATE_DIR/stdin; whatever is written to it
    /// reaches the container, and the `close_stdin` request ends it.
    #[arg(long)]
    pub stdin: bool,
    /// Control socket path [default: STATE_DIR/control.sock].
    #[arg(long)]
    pub control_socket: Option<PathBuf>,
    /// The runtime helper binary [default: berth-shim-runtime beside this binary].
    #[arg(long)]
    pub helper: Option<PathBuf>,
}

impl ContainerArgs {
    /// These arguments as a command line again (for the launcher's exec of the monitor).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = Vec::new();
        let mut push = |flag: &str, value: OsString| {
            out.push(flag.into());
            out.push(value);
        };
        push("--id", self.id.clone().into());
        push("--bundle", self.bundle.clone().into());
        push("--state-dir", self.state_dir.clone().into());
        push("--runtime-root", self.runtime_root.clone().into());
        if let Some(r) = &self.runtime {
            push("--runtime", r.clone().into());
        }
        if let Some(p) = &self.log_path {
            push("--log-path", p.clone().into());
        }
        if let Some(s) = self.log_max_size {
            push("--log-max-size", s.to_string().into());
        }
        push("--log-max-file", self.log_max_file.to_string().into());
        if let Some(c) = &self.control_socket {
            push("--control-socket", c.clone().into());
        }
        if let Some(h) = &self.helper {
            push("--helper", h.clone().into());
        }
        if self.stdin {
            out.push("--stdin".into());
        }
        out
    }

    /// Make every path absolute (against the current directory): the helpers run elsewhere.
    pub fn absolutize(&mut self) -> std::io::Result<()> {
        let cwd = std::env::current_dir()?;
        for p in [&mut self.bundle, &mut self.state_dir, &mut self.runtime_root] {
            *p = cwd.join(&*p);
        }
        for p in
            [&mut self.runtime, &mut self.log_path, &mut self.control_socket, &mut self.helper].into_iter().flatten()
        {
            if p.components().count() > 1 || p.is_absolute() {
                *p = cwd.join(&*p);
            }
        }
        Ok(())
    }

    pub fn control_socket_path(&self) -> PathBuf {
        self.control_socket.clone().unwrap_or_else(|| self.state_dir.join(crate::protocol::files::CONTROL_SOCKET))
    }

    /// A tty container's console socket: beside the control socket (whose path berthd keeps short), with the
    /// extension `console` (`<run-dir>/s/<id>.console`), or `console.sock` in the state dir without one.
    pub fn console_socket_path(&self) -> PathBuf {
        match &self.control_socket {
            Some(c) => c.with_extension("console"),
            None => self.state_dir.join(crate::protocol::files::CONSOLE_SOCKET),
        }
    }
}

/// `berth-shim-runtime`: the helper that creates and deletes containers for the monitor, with libcontainer or an
/// OCI runtime binary. Apart from `berth-shim` so the long-lived monitor links none of libcontainer.
#[derive(Debug, Parser)]
#[command(name = "berth-shim-runtime", version)]
pub struct HelperCli {
    #[command(subcommand)]
    pub command: HelperCommand,
}

#[derive(Debug, Subcommand)]
pub enum HelperCommand {
    /// Create and start the container with this process's stdio as the container's; write a `CreateResult` to
    /// STATE_DIR/create.json.
    Create(CreateArgs),
    /// Delete the runtime state of a container whose init has exited (cgroup, runtime state dir); kills what is
    /// left in it. Exit 0, or 1 with the error on stderr.
    Delete(DeleteArgs),
    /// Run a process in a running container with this process's stdio (or a pty through --console-socket),
    /// wait for it and exit with its status; the outcome is also in --result (see `helper::exec`).
    Exec(ExecArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub bundle: PathBuf,
    #[arg(long)]
    pub runtime_root: PathBuf,
    /// The OCI runtime binary; libcontainer when absent.
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    /// Where the pty master goes (tty containers).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// The shim's state dir: the result, and a runtime binary's log and pid file, go there.
    #[arg(long)]
    pub state_dir: PathBuf,
}

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub runtime_root: PathBuf,
    /// The OCI runtime binary; libcontainer when absent.
    #[arg(long)]
    pub runtime: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    #[arg(long)]
    pub id: String,
    #[arg(long)]
    pub runtime_root: PathBuf,
    /// The OCI runtime binary; libcontainer when absent.
    #[arg(long)]
    pub runtime: Option<PathBuf>,
    /// The process as an OCI `process.json` (args, env, cwd, user, capabilities, terminal, …).
    #[arg(long)]
    pub process: PathBuf,
    /// Where the process's host pid goes once it runs.
    #[arg(long)]
    pub pid_file: PathBuf,
    /// Where the outcome goes (`{"type":"exited",…}` or `{"type":"failed",…}`).
    #[arg(long)]
    pub result: PathBuf,
    /// Where the pty master goes (`terminal: true` in process.json).
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_args_round_trip() -> Result<(), clap::Error> {
        let cli = Cli::try_parse_from([
            "berth-shim",
            "start",
            "--id",
            "c1",
            "--bundle",
            "/b",
            "--state-dir",
            "/s",
            "--log-path",
            "/s/c1-json.log",
            "--log-max-size",
            "100k",
            "--log-max-file",
            "3",
            "--stdin",
        ])?;
        let Command::Start(args) = cli.command else { panic!("not start") };
        assert_eq!(args.log_max_size, Some(102_400));
        let mut again = vec![OsString::from("berth-shim"), OsString::from("start")];
        again.extend(args.to_args());
        let cli2 = Cli::try_parse_from(again)?;
        let Command::Start(args2) = cli2.command else { panic!("not start") };
        assert_eq!(args2.to_args(), args.to_args());
        assert_eq!(args2.control_socket_path(), PathBuf::from("/s/control.sock"));
        Ok(())
    }
}
