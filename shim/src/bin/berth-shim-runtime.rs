//! berth-shim-runtime: the helper the shim monitor runs to create and delete its container (see `helper`).

use std::process::ExitCode;

use berth_shim::cli::{HelperCli, HelperCommand};
use clap::Parser;

fn main() -> ExitCode {
    let cli = HelperCli::parse();
    let result = match &cli.command {
        HelperCommand::Create(args) => berth_shim::helper::create(args),
        HelperCommand::Delete(args) => berth_shim::helper::delete(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("berth-shim-runtime: {message}");
            ExitCode::from(1)
        }
    }
}
