//! The compose commands that run a project: `up`, `down`, `ps`, `stop`, `start`, `restart`, `kill`, `rm`,
//! `pause`, `unpause`, `logs`, `wait`, `ls`. The work is the orchestrator's controller; this file parses flags,
//! loads the project (an invalid file fails here, before berthd is touched) and prints as Docker Compose prints.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use berth_engine::client::Client;
use berth_engine::client::containers::{ListContainersOptions, LogOutput, LogsOptions};
use berth_orchestrator::compose::loader::Loaded;
use berth_orchestrator::controller::desired::Origin;
use berth_orchestrator::controller::observe::{self, ObservedContainer};
use berth_orchestrator::controller::ops::{self, Op};
use berth_orchestrator::controller::progress::{Event, Reporter};
use berth_orchestrator::controller::up::{self, DownOptions, UpOptions};
use berth_orchestrator::controller::{ControllerError, labels};
use berth_orchestrator::graph::ServiceGraph;
use clap::{Args, Subcommand, ValueEnum};
use futures_util::future::join_all;

use super::GlobalArgs;
use super::format::{Table, ago};

#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// Create and start containers.
    Up(UpArgs),
    /// Stop and remove containers (and with -v, volumes).
    Down(DownArgs),
    /// List containers.
    Ps(PsArgs),
    /// Stop services.
    Stop(StopArgs),
    /// Start services.
    Start(ServicesArgs),
    /// Restart services.
    Restart(StopArgs),
    /// Force stop services.
    Kill(KillArgs),
    /// Remove stopped service containers.
    Rm(RmArgs),
    /// Pause services.
    Pause(ServicesArgs),
    /// Unpause services.
    Unpause(ServicesArgs),
    /// View output from containers.
    Logs(LogsArgs),
    /// Block until containers of the services stop; print their exit codes.
    Wait(ServicesArgs),
    /// List running compose projects.
    Ls(LsArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Services to start (and what they depend on); default: all.
    pub services: Vec<String>,
    /// Detached mode: run containers in the background (the only mode berth has yet; without it berth says so).
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Recreate containers even if their configuration and image haven't changed.
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// If containers already exist, don't recreate them.
    #[arg(long)]
    pub no_recreate: bool,
    /// Don't start linked services.
    #[arg(long)]
    pub no_deps: bool,
    /// Remove containers for services not defined in the compose file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Scale SERVICE to NUM instances (overrides `scale` in the file).
    #[arg(long, value_name = "SERVICE=NUM")]
    pub scale: Vec<String>,
    /// Shutdown timeout in seconds (for containers that are replaced or removed).
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<i64>,
    /// Wait for services to be running|healthy.
    #[arg(long)]
    pub wait: bool,
    /// Maximum duration to wait for the project to be running|healthy, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    pub wait_timeout: u64,
    /// How many engine operations run at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub parallel: usize,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Remove named volumes declared in the compose file and anonymous volumes attached to containers.
    #[arg(short = 'v', long)]
    pub volumes: bool,
    /// Remove containers for services not defined in the compose file.
    #[arg(long)]
    pub remove_orphans: bool,
    /// Shutdown timeout in seconds.
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<i64>,
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub parallel: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PsFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    pub services: Vec<String>,
    /// Show all stopped containers too.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display IDs.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Display services.
    #[arg(long = "services")]
    pub list_services: bool,
    #[arg(long, value_enum, default_value_t = PsFormat::Table)]
    pub format: PsFormat,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    pub services: Vec<String>,
    /// Shutdown timeout in seconds.
    #[arg(short = 't', long, value_name = "SECONDS")]
    pub timeout: Option<i64>,
}

#[derive(Debug, Args)]
pub struct KillArgs {
    pub services: Vec<String>,
    /// Signal to send to the container.
    #[arg(short = 's', long, default_value = "SIGKILL")]
    pub signal: String,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    pub services: Vec<String>,
    /// Don't ask to confirm removal.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Stop the containers, if required, before removing.
    #[arg(short = 's', long)]
    pub stop: bool,
    /// Remove any anonymous volumes attached to containers.
    #[arg(short = 'v', long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub services: Vec<String>,
    /// Follow log output.
    #[arg(short = 'f', long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs for each container.
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show timestamps.
    #[arg(short = 't', long)]
    pub timestamps: bool,
    /// Don't print a prefix in logs.
    #[arg(long)]
    pub no_log_prefix: bool,
    /// Produce monochrome output.
    #[arg(long)]
    pub no_color: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Show all stopped projects too.
    #[arg(short = 'a', long)]
    pub all: bool,
    /// Only display project names.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(long, value_enum, default_value_t = PsFormat::Table)]
    pub format: PsFormat,
}

pub fn run(global: &GlobalArgs, cmd: &ComposeCommand) -> Result<ExitCode, String> {
    super::block_on(async {
        match cmd {
            ComposeCommand::Up(args) => up_cmd(global, args).await,
            ComposeCommand::Down(args) => down_cmd(global, args).await,
            ComposeCommand::Ps(args) => ps_cmd(global, args).await,
            ComposeCommand::Stop(a) => op_cmd(global, &a.services, Op::Stop { timeout: a.timeout }).await,
            ComposeCommand::Start(a) => op_cmd(global, &a.services, Op::Start).await,
            ComposeCommand::Restart(a) => op_cmd(global, &a.services, Op::Restart { timeout: a.timeout }).await,
            ComposeCommand::Kill(a) => op_cmd(global, &a.services, Op::Kill { signal: Some(a.signal.clone()) }).await,
            ComposeCommand::Rm(args) => rm_cmd(global, args).await,
            ComposeCommand::Pause(a) => op_cmd(global, &a.services, Op::Pause).await,
            ComposeCommand::Unpause(a) => op_cmd(global, &a.services, Op::Unpause).await,
            ComposeCommand::Logs(args) => logs_cmd(global, args).await,
            ComposeCommand::Wait(a) => wait_cmd(global, &a.services).await,
            ComposeCommand::Ls(args) => ls_cmd(global, args).await,
        }
    })
}

/// Progress lines on stderr, as Docker Compose writes them.
fn stderr_reporter() -> Reporter {
    Arc::new(|e: &Event| eprintln!("{e}"))
}

/// Load the project (diagnostics printed on failure) and reach berthd.
async fn open(global: &GlobalArgs, services: &[String]) -> Result<(Loaded, Client), ExitCode> {
    let loaded = super::load_project(global, true, services)?;
    let client = super::engine::connect(global).await.map_err(|e| {
        eprintln!("{e}");
        ExitCode::FAILURE
    })?;
    Ok((loaded, client))
}

fn project_name(loaded: &Loaded) -> String {
    loaded.project.name.clone().unwrap_or_default()
}

/// Services named on the command line must exist.
fn check_services(loaded: &Loaded, services: &[String]) -> Result<(), String> {
    match services.iter().find(|s| !loaded.project.services.contains_key(*s)) {
        Some(s) => Err(format!("error: no such service: {s}")),
        None => Ok(()),
    }
}

fn print_errors(errors: &[ControllerError]) {
    for e in errors {
        eprintln!("Error: {e}");
    }
}

fn parse_scale(entries: &[String]) -> Result<BTreeMap<String, u32>, String> {
    entries
        .iter()
        .map(|e| {
            let (svc, n) = e.split_once('=').ok_or_else(|| format!("error: --scale {e:?}: expected SERVICE=NUM"))?;
            let n: u32 = n.parse().map_err(|_| format!("error: --scale {e:?}: {n:?} is not a number"))?;
            Ok((svc.to_string(), n))
        })
        .collect()
}

async fn up_cmd(global: &GlobalArgs, args: &UpArgs) -> Result<ExitCode, String> {
    let scale = parse_scale(&args.scale)?;
    let (loaded, client) = match open(global, &args.services).await {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    check_services(&loaded, &args.services)?;
    if let Some(svc) = scale.keys().find(|s| !loaded.project.services.contains_key(*s)) {
        return Err(format!("error: --scale: no such service: {svc}"));
    }
    let opts = UpOptions {
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        remove_orphans: args.remove_orphans,
        only: (args.no_deps && !args.services.is_empty()).then(|| args.services.iter().cloned().collect()),
        scale,
        parallel: args.parallel,
        stop_timeout: args.timeout,
        wait: args.wait.then(|| Duration::from_secs(args.wait_timeout)),
        ..Default::default()
    };
    let origin = Origin { working_dir: loaded.project_directory.clone(), config_files: loaded.files.clone() };
    let project = Arc::new(loaded.project.clone());
    if !args.detach {
        eprintln!(
            "WARN attached mode is not available yet: the containers run detached, as with -d; follow them with `berth logs -f`"
        );
    }
    let summary = up::up(&client, project, origin, &loaded.disabled, &opts, stderr_reporter())
        .await
        .map_err(|e| format!("Error: {e}"))?;
    if !summary.orphans.is_empty() {
        eprintln!(
            "WARN Found orphan containers ({}) for this project. If you removed or renamed this service in your \
             compose file, you can run this command with the --remove-orphans flag to clean it up.",
            summary.orphans.join(", ")
        );
    }
    for w in &summary.report.warnings {
        eprintln!("WARN {w}");
    }
    print_errors(&summary.report.failures);
    for s in &summary.report.skipped {
        eprintln!("Error: not started: {s}");
    }
    if !summary.changed && summary.report.ok() {
        eprintln!("Project {} is up to date: nothing to do", project_name(&loaded));
    }
    Ok(if summary.report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn down_cmd(global: &GlobalArgs, args: &DownArgs) -> Result<ExitCode, String> {
    let (loaded, client) = match open(global, &[]).await {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    let opts = DownOptions {
        remove_volumes: args.volumes,
        remove_orphans: args.remove_orphans,
        stop_timeout: args.timeout,
        parallel: args.parallel,
    };
    let summary = up::down(&client, Arc::new(loaded.project.clone()), &opts, stderr_reporter())
        .await
        .map_err(|e| format!("Error: {e}"))?;
    if !summary.orphans.is_empty() {
        eprintln!(
            "WARN Found orphan containers ({}) for this project. Run down with --remove-orphans to remove them.",
            summary.orphans.join(", ")
        );
    }
    print_errors(&summary.report.failures);
    Ok(if summary.report.ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The project's service containers (not one-off), limited to `services` when given.
async fn project_containers(
    client: &Client,
    loaded: &Loaded,
    services: &[String],
) -> Result<Vec<ObservedContainer>, String> {
    let all = observe::containers(client, &project_name(loaded)).await.map_err(|e| format!("Error: {e}"))?;
    Ok(all.into_iter().filter(|c| !c.oneoff && (services.is_empty() || services.contains(&c.service))).collect())
}

async fn op_cmd(global: &GlobalArgs, services: &[String], op: Op) -> Result<ExitCode, String> {
    let (loaded, client) = match open(global, &[]).await {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    check_services(&loaded, services)?;
    let containers = project_containers(&client, &loaded, services).await?;
    let graph = ServiceGraph::new(&loaded.project).map_err(|e| format!("error: {e}"))?;
    let errors = ops::run(&client, &graph, &containers, &op, 16, &stderr_reporter()).await;
    print_errors(&errors);
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn rm_cmd(global: &GlobalArgs, args: &RmArgs) -> Result<ExitCode, String> {
    let (loaded, client) = match open(global, &[]).await {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    check_services(&loaded, &args.services)?;
    let graph = ServiceGraph::new(&loaded.project).map_err(|e| format!("error: {e}"))?;
    let reporter = stderr_reporter();
    let mut errors = Vec::new();
    let containers = project_containers(&client, &loaded, &args.services).await?;
    if args.stop {
        errors.extend(ops::run(&client, &graph, &containers, &Op::Stop { timeout: None }, 16, &reporter).await);
    }
    // Only stopped containers are removed, as Docker Compose does; -s stopped them above.
    let containers = project_containers(&client, &loaded, &args.services).await?;
    let stopped: Vec<ObservedContainer> =
        containers.into_iter().filter(|c| !c.is_running() && c.state != "paused").collect();
    if stopped.is_empty() {
        eprintln!("No stopped containers");
        return Ok(ExitCode::SUCCESS);
    }
    if !args.force && std::io::stdin().is_terminal() {
        let names: Vec<&str> = stopped.iter().map(|c| c.name.as_str()).collect();
        eprint!("Going to remove {}\n? Are you sure? [yN] ", names.join(", "));
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().read_line(&mut answer);
        if !answer.trim().eq_ignore_ascii_case("y") {
            return Ok(ExitCode::SUCCESS);
        }
    }
    errors.extend(ops::run(&client, &graph, &stopped, &Op::Remove { volumes: args.volumes }, 16, &reporter).await);
    print_errors(&errors);
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn ps_cmd(global: &GlobalArgs, args: &PsArgs) -> Result<ExitCode, String> {
    if args.list_services {
        let loaded = match super::load_project(global, true, &[]) {
            Ok(l) => l,
            Err(code) => return Ok(code),
        };
        let mut out = std::io::stdout().lock();
        for s in loaded.project.services.keys().filter(|s| args.services.is_empty() || args.services.contains(s)) {
            let _ = writeln!(out, "{s}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let (loaded, client) = match open(global, &[]).await {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    check_services(&loaded, &args.services)?;
    let containers: Vec<ObservedContainer> = project_containers(&client, &loaded, &args.services)
        .await?
        .into_iter()
        .filter(|c| args.all || c.is_running() || c.state == "paused")
        .collect();
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for c in &containers {
            let _ = writeln!(out, "{}", c.id);
        }
        return Ok(ExitCode::SUCCESS);
    }
    match args.format {
        PsFormat::Json => {
            for c in &containers {
                let row = serde_json::json!({
                    "ID": c.id, "Name": c.name, "Image": c.image, "Command": c.command, "Project": project_name(&loaded),
                    "Service": c.service, "Created": c.created, "State": c.state, "Status": c.status,
                    "Health": "", "ExitCode": 0, "Publishers": [],
                });
                let _ = writeln!(out, "{row}");
            }
        }
        PsFormat::Table => {
            let mut table = Table::new(&["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]);
            for c in &containers {
                let command = if c.command.chars().count() > 20 {
                    format!("\"{}…\"", c.command.chars().take(19).collect::<String>())
                } else {
                    format!("\"{}\"", c.command)
                };
                table.row(vec![
                    c.name.clone(),
                    c.image.clone(),
                    command,
                    c.service.clone(),
                    ago(c.created),
                    c.status.clone(),
                    String::new(),
                ]);
            }
            let _ = write!(out, "{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// ANSI colours Docker Compose cycles through for log prefixes.
const COLORS: [&str; 6] = ["36", "33", "32", "35", "34", "31"];

/// Splits a container's output into lines and prints each with its prefix.
struct LinePrinter {
    prefix: String,
    pending: Vec<u8>,
}

impl LinePrinter {
    fn push(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
        while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=pos).collect();
            self.print(&line[..line.len() - 1]);
        }
    }

    fn print(&self, line: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(self.prefix.as_bytes());
        let _ = out.write_all(line);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
    }

    fn finish(&mut self) {
        if !self.pending.is_empty() {
            let rest = std::mem::take(&mut self.pending);
            self.print(&rest);
        }
    }
}

async fn logs_cmd(global: &GlobalArgs, args: &LogsArgs) -> Result<ExitCode, String> {
    let (loaded, client) = match open(global, &[]).await {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    check_services(&loaded, &args.services)?;
    let containers = project_containers(&client, &loaded, &args.services).await?;
    let project = project_name(&loaded);
    // Docker Compose's prefix: the container name without the project, padded to the widest.
    let short = |c: &ObservedContainer| c.name.strip_prefix(&format!("{project}-")).unwrap_or(&c.name).to_string();
    let width = containers.iter().map(|c| short(c).chars().count()).max().unwrap_or(0);
    let color = !args.no_color && std::io::stdout().is_terminal();
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        timestamps: args.timestamps,
        tail: Some(args.tail.clone()),
        ..Default::default()
    };
    let streams = containers.iter().enumerate().map(|(i, c)| {
        let prefix = if args.no_log_prefix {
            String::new()
        } else if color {
            format!("\x1b[{}m{:width$}  | \x1b[0m", COLORS[i % COLORS.len()], short(c))
        } else {
            format!("{:width$}  | ", short(c))
        };
        let (client, options) = (&client, &options);
        async move {
            let mut printer = LinePrinter { prefix, pending: Vec::new() };
            let result =
                client.logs_follow(&c.id, options, args.follow, |chunk: LogOutput| printer.push(chunk.bytes())).await;
            printer.finish();
            result.map_err(|e| format!("Error: logs of {}: {e}", c.name))
        }
    });
    let results = join_all(streams).await;
    let errors: Vec<String> = results.into_iter().filter_map(Result::err).collect();
    for e in &errors {
        eprintln!("{e}");
    }
    Ok(if errors.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

async fn wait_cmd(global: &GlobalArgs, services: &[String]) -> Result<ExitCode, String> {
    let (loaded, client) = match open(global, &[]).await {
        Ok(x) => x,
        Err(code) => return Ok(code),
    };
    check_services(&loaded, services)?;
    let containers = project_containers(&client, &loaded, services).await?;
    let waits = containers.iter().map(|c| {
        let client = &client;
        async move { (c, client.wait_container(&c.id, Some("not-running")).await) }
    });
    let mut first: Option<i64> = None;
    for (c, result) in join_all(waits).await {
        match result {
            Ok(w) => {
                println!("{} exited with code {}", c.name, w.status_code);
                first.get_or_insert(w.status_code);
            }
            Err(e) => return Err(format!("Error: wait for {}: {e}", c.name)),
        }
    }
    Ok(ExitCode::from(first.unwrap_or(0).clamp(0, 255) as u8))
}

async fn ls_cmd(global: &GlobalArgs, args: &LsArgs) -> Result<ExitCode, String> {
    let client = super::engine::connect(global).await?;
    let mut options = ListContainersOptions { all: true, ..Default::default() };
    options.filters.insert("label".into(), vec![labels::PROJECT.to_string()]);
    let list = client.list_containers(Some(options)).await.map_err(|e| format!("Error: {e}"))?;
    // project → (state → count), config files
    let mut projects: BTreeMap<String, (BTreeMap<String, usize>, BTreeSet<String>)> = BTreeMap::new();
    for c in &list {
        let Some(project) = c.labels.get(labels::PROJECT) else { continue };
        let entry = projects.entry(project.clone()).or_default();
        *entry.0.entry(c.state.clone()).or_default() += 1;
        if let Some(files) = c.labels.get(labels::CONFIG_FILES) {
            entry.1.insert(files.clone());
        }
    }
    if !args.all {
        projects.retain(|_, (states, _)| states.contains_key("running") || states.contains_key("paused"));
    }
    let mut out = std::io::stdout().lock();
    if args.quiet {
        for name in projects.keys() {
            let _ = writeln!(out, "{name}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let status = |states: &BTreeMap<String, usize>| {
        states.iter().map(|(s, n)| format!("{s}({n})")).collect::<Vec<_>>().join(", ")
    };
    let files = |f: &BTreeSet<String>| f.iter().cloned().collect::<Vec<_>>().join(",");
    match args.format {
        PsFormat::Json => {
            let rows: Vec<serde_json::Value> = projects
                .iter()
                .map(|(n, (s, f))| serde_json::json!({"Name": n, "Status": status(s), "ConfigFiles": files(f)}))
                .collect();
            let _ = writeln!(out, "{}", serde_json::Value::Array(rows));
        }
        PsFormat::Table => {
            let mut table = Table::new(&["NAME", "STATUS", "CONFIG FILES"]);
            for (n, (s, f)) in &projects {
                table.row(vec![n.clone(), status(s), files(f)]);
            }
            let _ = write!(out, "{table}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
