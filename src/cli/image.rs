//! `berth image …` and `berth system df`: the engine's image commands, through berthd's API.

use std::io::Write;
use std::process::ExitCode;

use berth_engine::client::Client;
use berth_engine::client::Method;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::GlobalArgs;
use super::engine::connect;
use super::format::{Table, ago, size};

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Pull an image from a registry.
    Pull {
        name: String,
        /// Registries reached over plain HTTP (loopback ones always are).
        #[arg(long = "insecure-registry")]
        insecure: Vec<String>,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Push an image to a registry.
    Push {
        name: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// List images.
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Show an image's details as JSON.
    Inspect { names: Vec<String> },
    /// Show an image's history.
    History { name: String },
    /// Give an image another name.
    Tag { source: String, target: String },
    /// Remove images.
    #[command(alias = "remove")]
    Rm {
        names: Vec<String>,
        #[arg(short, long)]
        force: bool,
    },
    /// Save images to a tar archive (docker-save and OCI layout in one), to a file or standard output.
    Save {
        names: Vec<String>,
        #[arg(short, long)]
        output: Option<std::path::PathBuf>,
    },
    /// Load images from a tar archive (docker-save or OCI layout), from a file or standard input.
    Load {
        #[arg(short, long)]
        input: Option<std::path::PathBuf>,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Make a one-layer image from a rootfs tarball (`-` for standard input) or a directory.
    Import {
        source: String,
        reference: Option<String>,
        /// Dockerfile instructions: CMD, ENTRYPOINT, ENV, WORKDIR, EXPOSE, USER, LABEL, VOLUME, STOPSIGNAL.
        #[arg(short, long)]
        change: Vec<String>,
    },
    /// Remove unused images.
    Prune {
        /// All images without a container, not just untagged ones.
        #[arg(short, long)]
        all: bool,
        #[arg(short, long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Only image ids.
    #[arg(short, long)]
    quiet: bool,
    /// Show full image ids.
    #[arg(long)]
    no_trunc: bool,
    /// Show digests.
    #[arg(long)]
    digests: bool,
}

pub fn run(global: &GlobalArgs, cmd: &ImageCommand) -> Result<ExitCode, String> {
    super::block_on(async {
        let client = connect(global).await?;
        match cmd {
            ImageCommand::Pull { name, insecure, quiet } => pull(&client, name, insecure, *quiet).await,
            ImageCommand::Push { name, quiet } => push(&client, name, *quiet).await,
            ImageCommand::Ls(args) => ls(&client, args).await,
            ImageCommand::Inspect { names } => inspect(&client, names).await,
            ImageCommand::History { name } => history(&client, name).await,
            ImageCommand::Tag { source, target } => tag(&client, source, target).await,
            ImageCommand::Rm { names, force } => rm(&client, names, *force).await,
            ImageCommand::Prune { all, force: _ } => prune(&client, *all).await,
            ImageCommand::Save { names, output } => save(&client, names, output.as_deref()).await,
            ImageCommand::Load { input, quiet } => load(&client, input.as_deref(), *quiet).await,
            ImageCommand::Import { source, reference, change } => {
                import(&client, source, reference.as_deref(), change).await
            }
        }
    })
}

fn api_err(e: berth_engine::client::ClientError) -> String {
    format!("error: {e}")
}

/// Query-string encoding of one value (names hold `/`, `:` and `@`).
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Docker's progress messages as plain lines: "<id>: <status>", skipping byte counts on a non-terminal.
fn print_progress(v: &Value, quiet: bool) {
    if quiet {
        return;
    }
    let status = v.get("status").and_then(Value::as_str).unwrap_or("");
    if v.get("progressDetail").is_some() || status.is_empty() {
        return;
    }
    match v.get("id").and_then(Value::as_str) {
        Some(id) => println!("{id}: {status}"),
        None => println!("{status}"),
    }
}

async fn pull(client: &Client, name: &str, insecure: &[String], quiet: bool) -> Result<ExitCode, String> {
    if !insecure.is_empty() {
        // The daemon decides transport; the flag is accepted for compatibility and documented as daemon config.
        eprintln!(
            "note: --insecure-registry applies to berthd's configuration; loopback registries are always plain HTTP"
        );
    }
    let path = format!("/images/create?fromImage={}", enc(name));
    client.stream_json(Method::POST, &path, None, |v| print_progress(&v, quiet)).await.map_err(api_err)?;
    let reference: berth_engine::image::Reference = name.parse().map_err(|e| format!("error: {e}"))?;
    println!("{}", reference);
    Ok(ExitCode::SUCCESS)
}

async fn push(client: &Client, name: &str, quiet: bool) -> Result<ExitCode, String> {
    let reference: berth_engine::image::Reference = name.parse().map_err(|e| format!("error: {e}"))?;
    let path = format!("/images/{}/push?tag={}", reference.name(), enc(reference.tag.as_deref().unwrap_or("latest")));
    client.stream_json(Method::POST, &path, None, |v| print_progress(&v, quiet)).await.map_err(api_err)?;
    Ok(ExitCode::SUCCESS)
}

async fn ls(client: &Client, args: &LsArgs) -> Result<ExitCode, String> {
    let images: Vec<Value> = client.get_json("/images/json").await.map_err(api_err)?;
    let id_of = |v: &Value| {
        let id = v["Id"].as_str().unwrap_or("").to_string();
        if args.no_trunc { id } else { id.trim_start_matches("sha256:").chars().take(12).collect() }
    };
    if args.quiet {
        for v in &images {
            println!("{}", id_of(v));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut headers = vec!["REPOSITORY", "TAG"];
    if args.digests {
        headers.push("DIGEST");
    }
    headers.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut table = Table::new(&headers);
    for v in &images {
        let tags: Vec<String> = v["RepoTags"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        let tags = if tags.is_empty() { vec!["<none>:<none>".to_string()] } else { tags };
        for t in tags {
            let (repo, tag) =
                t.rsplit_once(':').map(|(r, t)| (r.to_string(), t.to_string())).unwrap_or((t.clone(), String::new()));
            let mut row = vec![repo, tag];
            if args.digests {
                row.push(
                    v["RepoDigests"]
                        .get(0)
                        .and_then(Value::as_str)
                        .and_then(|d| d.split('@').nth(1))
                        .unwrap_or("<none>")
                        .to_string(),
                );
            }
            row.extend([id_of(v), ago(v["Created"].as_i64().unwrap_or(0)), size(v["Size"].as_u64().unwrap_or(0))]);
            table.row(row);
        }
    }
    print!("{table}");
    Ok(ExitCode::SUCCESS)
}

async fn inspect(client: &Client, names: &[String]) -> Result<ExitCode, String> {
    let mut out = Vec::new();
    let mut code = ExitCode::SUCCESS;
    for n in names {
        match client.get_json::<Value>(&format!("/images/{n}/json")).await {
            Ok(v) => out.push(v),
            Err(e) => {
                eprintln!("error: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    Ok(code)
}

async fn history(client: &Client, name: &str) -> Result<ExitCode, String> {
    let entries: Vec<Value> = client.get_json(&format!("/images/{name}/history")).await.map_err(api_err)?;
    let mut table = Table::new(&["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    for e in entries {
        let id = e["Id"].as_str().unwrap_or("");
        let id = if id.starts_with("sha256:") {
            id.trim_start_matches("sha256:").chars().take(12).collect()
        } else {
            id.to_string()
        };
        let by: String = e["CreatedBy"].as_str().unwrap_or("").chars().take(45).collect();
        table.row(vec![
            id,
            ago(e["Created"].as_i64().unwrap_or(0)),
            by,
            size(e["Size"].as_u64().unwrap_or(0)),
            e["Comment"].as_str().unwrap_or("").to_string(),
        ]);
    }
    print!("{table}");
    Ok(ExitCode::SUCCESS)
}

async fn tag(client: &Client, source: &str, target: &str) -> Result<ExitCode, String> {
    let reference: berth_engine::image::Reference = target.parse().map_err(|e| format!("error: {e}"))?;
    let path = format!(
        "/images/{source}/tag?repo={}&tag={}",
        enc(&reference.familiar_name()),
        enc(reference.tag.as_deref().unwrap_or("latest"))
    );
    client.request(Method::POST, &path, None).await.map_err(api_err)?;
    Ok(ExitCode::SUCCESS)
}

async fn rm(client: &Client, names: &[String], force: bool) -> Result<ExitCode, String> {
    let mut code = ExitCode::SUCCESS;
    for n in names {
        let path = format!("/images/{n}?force={}", if force { 1 } else { 0 });
        match client.request(Method::DELETE, &path, None).await {
            Ok(body) => {
                let events: Vec<Value> = serde_json::from_slice(&body).unwrap_or_default();
                print_remove_events(&events);
            }
            Err(e) => {
                eprintln!("error: {e}");
                code = ExitCode::FAILURE;
            }
        }
    }
    Ok(code)
}

fn print_remove_events(events: &[Value]) {
    let mut out = std::io::stdout().lock();
    for ev in events {
        if let Some(t) = ev.get("Untagged").and_then(Value::as_str) {
            let _ = writeln!(out, "Untagged: {t}");
        }
        if let Some(d) = ev.get("Deleted").and_then(Value::as_str) {
            let _ = writeln!(out, "Deleted: {d}");
        }
    }
}

async fn prune(client: &Client, all: bool) -> Result<ExitCode, String> {
    let path = if all { "/images/prune?filters=%7B%22dangling%22%3A%5B%22false%22%5D%7D" } else { "/images/prune" };
    let report: Value = client.post_json(path, &serde_json::json!({})).await.map_err(api_err)?;
    let events = report["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !events.is_empty() {
        println!("Deleted Images:");
        print_remove_events(&events);
        println!();
    }
    println!("Total reclaimed space: {}", size(report["SpaceReclaimed"].as_u64().unwrap_or(0)));
    Ok(ExitCode::SUCCESS)
}

async fn save(client: &Client, names: &[String], output: Option<&std::path::Path>) -> Result<ExitCode, String> {
    use std::io::IsTerminal;
    if names.is_empty() {
        return Err("error: name at least one image to save".into());
    }
    let query: Vec<String> = names.iter().map(|n| format!("names={}", enc(n))).collect();
    let path = format!("/images/get?{}", query.join("&"));
    match output {
        Some(file) => {
            // Written beside the target and renamed, so a failed save never leaves a truncated archive.
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| format!("error: {}: {e}", dir.display()))?;
            client.download(&path, tmp.as_file_mut()).await.map_err(api_err)?;
            tmp.persist(file).map_err(|e| format!("error: cannot write {}: {e}", file.display()))?;
        }
        None => {
            if std::io::stdout().is_terminal() {
                return Err("error: refusing to write an archive to a terminal; use -o FILE or a redirect".into());
            }
            let mut out = std::io::stdout().lock();
            client.download(&path, &mut out).await.map_err(api_err)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A file to upload: the named one, or standard input spooled to a temp file (the upload needs a length-free
/// stream, and stdin may be a pipe).
async fn upload_source(input: Option<&std::path::Path>) -> Result<tokio::fs::File, String> {
    match input {
        Some(p) => tokio::fs::File::open(p).await.map_err(|e| format!("error: cannot open {}: {e}", p.display())),
        None => {
            let mut tmp = tempfile::tempfile().map_err(|e| format!("error: {e}"))?;
            std::io::copy(&mut std::io::stdin().lock(), &mut tmp).map_err(|e| format!("error: reading stdin: {e}"))?;
            std::io::Seek::rewind(&mut tmp).map_err(|e| format!("error: {e}"))?;
            Ok(tokio::fs::File::from_std(tmp))
        }
    }
}

async fn load(client: &Client, input: Option<&std::path::Path>, quiet: bool) -> Result<ExitCode, String> {
    let file = upload_source(input).await?;
    let resp = client.upload("/images/load", file, "application/x-tar").await.map_err(api_err)?;
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.map_err(|e| format!("error: {e}"))?.to_bytes();
    for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap_or(Value::Null);
        if let Some(s) = v.get("stream").and_then(Value::as_str)
            && !quiet
        {
            print!("{s}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn import(
    client: &Client,
    source: &str,
    reference: Option<&str>,
    changes: &[String],
) -> Result<ExitCode, String> {
    let src = std::path::Path::new(source);
    let file = if source == "-" {
        upload_source(None).await?
    } else if src.is_dir() {
        tokio::fs::File::from_std(tar_directory(src)?)
    } else {
        upload_source(Some(src)).await?
    };
    let mut path = "/images/create?fromSrc=-".to_string();
    if let Some(r) = reference {
        let r: berth_engine::image::Reference = r.parse().map_err(|e| format!("error: {e}"))?;
        path.push_str(&format!("&repo={}&tag={}", enc(&r.familiar_name()), enc(r.tag.as_deref().unwrap_or("latest"))));
    }
    for c in changes {
        path.push_str(&format!("&changes={}", enc(c)));
    }
    let resp = client.upload(&path, file, "application/x-tar").await.map_err(api_err)?;
    let body = http_body_util::BodyExt::collect(resp.into_body()).await.map_err(|e| format!("error: {e}"))?.to_bytes();
    let v: Value =
        serde_json::from_slice(body.split(|b| *b == b'\n').next().unwrap_or_default()).unwrap_or(Value::Null);
    println!("{}", v["status"].as_str().unwrap_or(""));
    Ok(ExitCode::SUCCESS)
}

/// A directory as a tar in a temp file: owners, modes, symlinks (not followed) and hard links kept.
fn tar_directory(dir: &std::path::Path) -> Result<std::fs::File, String> {
    let tmp = tempfile::tempfile().map_err(|e| format!("error: {e}"))?;
    let mut builder = tar::Builder::new(tmp);
    builder.follow_symlinks(false);
    builder.mode(tar::HeaderMode::Complete);
    builder.append_dir_all(".", dir).map_err(|e| format!("error: cannot archive {}: {e}", dir.display()))?;
    let mut file = builder.into_inner().map_err(|e| format!("error: {e}"))?;
    std::io::Seek::rewind(&mut file).map_err(|e| format!("error: {e}"))?;
    Ok(file)
}

/// `berth system df`.
pub fn system_df(global: &GlobalArgs) -> Result<ExitCode, String> {
    super::block_on(async {
        let client = connect(global).await?;
        let df: Value = client.get_json("/system/df").await.map_err(api_err)?;
        let images = df["Images"].as_array().cloned().unwrap_or_default();
        let total: u64 = images.iter().filter_map(|i| i["Size"].as_u64()).sum();
        let mut table = Table::new(&["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]);
        table.row(vec!["Images".into(), images.len().to_string(), "0".into(), size(total), size(total)]);
        table.row(vec!["Containers".into(), "0".into(), "0".into(), size(0), size(0)]);
        table.row(vec!["Local Volumes".into(), "0".into(), "0".into(), size(0), size(0)]);
        print!("{table}");
        println!("\nUnpacked layers and blobs on disk: {}", size(df["LayersSize"].as_u64().unwrap_or(0)));
        Ok(ExitCode::SUCCESS)
    })
}
