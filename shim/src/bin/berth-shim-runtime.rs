//! berth-shim-runtime: the helper the shim monitor runs to create and delete its container, and berthd runs to
//! exec a process in one (see `helper`).

use std::process::ExitCode;

use berth_shim::cli::{HelperCli, HelperCommand};
use clap::Parser;

fn main() -> ExitCode {
    let cli = HelperCli::parse();
    if let HelperCommand::Exec(args) = &cli.command {
        // The exit status is the process's; stderr is the process's too, so an error here is only in --result.
        return match berth_shim::helper::exec_in(args) {
            Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(255)),
            Err(_) => ExitCode::from(255),
        };
    }
    let result = match &cli.command {
        HelperCommand::Create(args) => berth_shim::helper::create(args),
        HelperCommand::Delete(args) => berth_shim::helper::delete(args),
        HelperCommand::Exec(args) => berth_shim::helper::exec_in(args).map(|_| ()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("berth-shim-runtime: {message}");
            ExitCode::from(1)
        }
    }
}
