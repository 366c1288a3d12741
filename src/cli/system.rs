//! `berth system …`, `berth login`, `berth logout`.

use std::io::BufRead;
use std::process::ExitCode;

use berth_engine::registry::{self, Credentials, RegistryOptions, auth};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::GlobalArgs;
use super::engine::{connect, paths};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Show disk usage.
    Df,
    /// Show engine information: versions, storage, cgroup mode, where things are.
    Info,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The registry (host[:port]).
    pub server: String,
    #[arg(short, long)]
    pub username: String,
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
}

pub fn run(global: &GlobalArgs, cmd: &SystemCommand) -> Result<ExitCode, String> {
    match cmd {
        SystemCommand::Df => super::image::system_df(global),
        SystemCommand::Info => info(global),
    }
}

fn info(global: &GlobalArgs) -> Result<ExitCode, String> {
    super::block_on(async {
        let client = connect(global).await?;
        let info: Value = client.get_json("/info").await.map_err(|e| format!("error: {e}"))?;
        let version: Value = client.version().await.map_err(|e| format!("error: {e}"))?;
        let p = paths(global);
        println!("Server Version: {}", version["Version"].as_str().unwrap_or(""));
        println!("API Version: {}", version["ApiVersion"].as_str().unwrap_or(""));
        println!("Storage Driver: {}", info["Driver"].as_str().unwrap_or(""));
        println!("Root Dir: {}", p.root.display());
        println!("Engine Socket: {}", p.engine_socket().display());
        println!("Network Socket: {}", p.netd_socket().display());
        println!("Cgroup Version: {}", info["CgroupVersion"].as_str().unwrap_or(""));
        println!("Kernel Version: {}", info["KernelVersion"].as_str().unwrap_or(""));
        println!("CPUs: {}", info["NCPU"]);
        println!("Images: {}", info["Images"]);
        Ok(ExitCode::SUCCESS)
    })
}

pub fn login(global: &GlobalArgs, args: &LoginArgs) -> Result<ExitCode, String> {
    let password = match (&args.password, args.password_stdin) {
        (Some(p), false) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("error: cannot read the password: {e}"))?;
            line.trim_end_matches(['\n', '\r']).to_string()
        }
        (Some(_), true) => return Err("error: --password and --password-stdin are mutually exclusive".into()),
        (None, false) => return Err("error: give the password with --password-stdin (or --password)".into()),
    };
    let file = auth::berth_auth_file(&paths(global).root);
    super::block_on(async {
        let opts = RegistryOptions::default();
        registry::login(&args.server, &Credentials::new(&args.username, password), &file, &opts)
            .await
            .map_err(|e| format!("error: {e}"))?;
        println!("Login Succeeded");
        Ok(ExitCode::SUCCESS)
    })
}

pub fn logout(global: &GlobalArgs, server: &str) -> Result<ExitCode, String> {
    let file = auth::berth_auth_file(&paths(global).root);
    match registry::logout(server, &file) {
        Ok(true) => println!("Removing login credentials for {server}"),
        Ok(false) => println!("Not logged in to {server}"),
        Err(e) => return Err(format!("error: {e}")),
    }
    Ok(ExitCode::SUCCESS)
}
