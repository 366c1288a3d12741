//! berth-shim: see the crate docs (`lib.rs`) and `protocol` for the CLI, files and control socket.

use std::process::ExitCode;

use berth_shim::cli::{Cli, Command};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start(args) => berth_shim::launcher::run(&args),
        Command::Monitor { args, foreground } => berth_shim::monitor::run(args, foreground),
    }
}
