//! `berth`: the command-line interface. Thin by design: it parses flags, calls the orchestrator library and
//! prints; the logic lives in `berth-orchestrator`.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::run()
}
