//! Command-line parsing and dispatch.

mod compose;
mod config;
mod engine;
mod format;
mod image;
mod report;
mod system;

use std::path::PathBuf;
use std::process::ExitCode;

use berth_orchestrator::compose::loader::{LoadOptions, Loaded, load};
use clap::{Args, Parser, Subcommand};

/// Compose-first, declarative multi-container orchestrator.
#[derive(Debug, Parser)]
#[command(name = "berth", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every compose command takes, as `docker compose` names them. Like `docker compose -f x.yaml up`,
/// the compose flags come before the command (so `berth image rm -f` can mean force); `--root` and `--run-dir`
/// go anywhere.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Compose configuration files (repeatable); default: compose.yaml found in this or a parent directory.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name.
    #[arg(short = 'p', long = "project-name", value_name = "NAME")]
    pub project_name: Option<String>,
    /// Activate a profile (repeatable).
    #[arg(long = "profile", value_name = "PROFILE")]
    pub profiles: Vec<String>,
    /// An alternate environment file (repeatable).
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// An alternate working directory (default: the directory of the first compose file).
    #[arg(long = "project-directory", value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// berth's state directory (default /var/lib/berth, or BERTH_ROOT).
    #[arg(long, global = true, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Where the sockets live (default /run/berth, or BERTH_RUN_DIR).
    #[arg(long = "run-dir", global = true, value_name = "DIR")]
    pub run_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse, resolve and render the compose file in canonical format.
    Config(config::ConfigArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Engine-wide information and maintenance.
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Log in to a registry.
    Login(system::LoginArgs),
    /// Log out from a registry.
    Logout {
        /// The registry (host[:port]).
        server: String,
    },
    #[command(flatten)]
    Compose(compose::ComposeCommand),
}

pub fn run() -> ExitCode {
    init_tracing();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Config(args) => config::run(&cli.global, args),
        Command::Image(cmd) => image::run(&cli.global, cmd),
        Command::System(cmd) => system::run(&cli.global, cmd),
        Command::Login(args) => system::login(&cli.global, args),
        Command::Logout { server } => system::logout(&cli.global, server),
        Command::Compose(cmd) => compose::run(&cli.global, cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Run an async command body on a small runtime: the CLI is one request at a time.
pub fn block_on<F: std::future::Future<Output = Result<ExitCode, String>>>(f: F) -> Result<ExitCode, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("error: cannot start the runtime: {e}"))?
        .block_on(f)
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

/// Load the project the global flags describe; on failure the diagnostics are already printed.
pub fn load_project(global: &GlobalArgs, interpolate: bool, services: &[String]) -> Result<Loaded, ExitCode> {
    let mut opts = LoadOptions::from_process().map_err(|e| {
        eprintln!("error: cannot read the current directory: {e}");
        ExitCode::FAILURE
    })?;
    opts.config_files = global.files.clone();
    opts.project_name = global.project_name.clone();
    opts.profiles = global.profiles.clone();
    opts.env_files = global.env_files.clone();
    opts.project_directory = global.project_directory.clone();
    opts.interpolate = interpolate;
    opts.services = services.to_vec();
    match load(&opts) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                report::warning(w);
            }
            Ok(loaded)
        }
        Err(e) => {
            report::errors(&e.diagnostics());
            Err(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn config_flags_do_not_clash_with_global_ones() {
        let cli = Cli::try_parse_from(["berth", "--profile", "dev", "config", "--profiles", "--services", "web"]);
        let Ok(Cli { global, command: Command::Config(args) }) = cli else {
            panic!("parse failed: {cli:?}");
        };
        assert_eq!(global.profiles, ["dev"]);
        assert!(args.list_profiles && args.list_services);
        assert_eq!(args.services, ["web"]);
    }
}
