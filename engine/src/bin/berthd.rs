//! berthd: the berth engine daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use berth_engine::paths::Paths;
use clap::Parser;

/// The berth container engine: images, containers and volumes behind a Docker-compatible API.
#[derive(Debug, Parser)]
#[command(name = "berthd", version)]
struct Args {
    /// State directory (default /var/lib/berth, or BERTH_ROOT).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Socket directory (default /run/berth, or BERTH_RUN_DIR).
    #[arg(long)]
    run_dir: Option<PathBuf>,
    /// A registry (host[:port]) reached over plain HTTP; loopback registries always are. Repeatable.
    #[arg(long = "insecure-registry", value_name = "REGISTRY")]
    insecure_registries: Vec<String>,
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    let args = Args::parse();
    let paths = Paths::resolve(args.root.as_deref(), args.run_dir.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("berthd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = berth_engine::daemon::Options { insecure_registries: args.insecure_registries };
    match runtime.block_on(berth_engine::daemon::run(paths, options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berthd: {e}");
            ExitCode::FAILURE
        }
    }
}
