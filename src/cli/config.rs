//! `berth config`: the project as berth understands it, in canonical form (as `docker compose config`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use berth_orchestrator::compose::hash::config_hash;
use berth_orchestrator::compose::model::Project;
use clap::{Args, ValueEnum};

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Only these services (and what they depend on).
    pub services: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Yaml)]
    pub format: Format,
    /// Print the service names, one per line.
    #[arg(long = "services")]
    pub list_services: bool,
    /// Print the volume names, one per line.
    #[arg(long)]
    pub volumes: bool,
    /// Print the network names, one per line.
    #[arg(long)]
    pub networks: bool,
    /// Print the profile names, one per line.
    #[arg(long = "profiles", id = "list_profiles")]
    pub list_profiles: bool,
    /// Print the image names, one per line.
    #[arg(long)]
    pub images: bool,
    /// Print the config hash of the services ('*' for all, or a comma-separated list).
    #[arg(long, value_name = "SERVICES")]
    pub hash: Option<String>,
    /// Don't interpolate environment variables.
    #[arg(long)]
    pub no_interpolate: bool,
    /// Only validate the configuration, don't print anything.
    #[arg(short, long)]
    pub quiet: bool,
    /// Save to file (default: stdout).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

pub fn run(global: &GlobalArgs, args: &ConfigArgs) -> Result<ExitCode, String> {
    let loaded = match super::load_project(global, !args.no_interpolate, &args.services) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let project = &loaded.project;
    let text = if args.list_services {
        lines(project.services.keys())
    } else if args.volumes {
        lines(project.volumes.keys())
    } else if args.networks {
        lines(project.networks.keys())
    } else if args.list_profiles {
        lines(loaded.all_profiles.iter())
    } else if args.images {
        lines(project.services.iter().map(|(name, s)| {
            s.image.clone().unwrap_or_else(|| format!("{}-{}", project.name.as_deref().unwrap_or_default(), name))
        }))
    } else if let Some(which) = &args.hash {
        hashes(project, which)?
    } else if args.no_interpolate {
        // Values such as `${PORT}` cannot live in the typed model; show the normalized tree as written.
        render_json(loaded.tree.to_json(), args.format)?
    } else {
        render(project, args.format)?
    };
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|e| format!("error: cannot write {}: {e}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (`berth config | head`) is not an error worth a message.
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn lines<I, S>(items: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut v: Vec<String> = items.into_iter().map(|s| s.as_ref().to_string()).collect();
    v.sort();
    v.into_iter().map(|s| s + "\n").collect()
}

fn hashes(project: &Project, which: &str) -> Result<String, String> {
    let names: Vec<String> = if which.trim() == "*" {
        let mut v: Vec<String> = project.services.keys().cloned().collect();
        v.sort();
        v
    } else {
        which.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
    };
    let mut out = String::new();
    for name in names {
        let svc = project.services.get(&name).ok_or_else(|| format!("error: no such service: {name}"))?;
        out.push_str(&format!("{name} {}\n", config_hash(svc)));
    }
    Ok(out)
}

/// The project as YAML or JSON, resource maps sorted by name as Docker Compose prints them.
pub fn render(project: &Project, format: Format) -> Result<String, String> {
    let json = serde_json::to_value(project).map_err(|e| format!("error: cannot render the project: {e}"))?;
    render_json(json, format)
}

fn render_json(mut json: serde_json::Value, format: Format) -> Result<String, String> {
    if let Some(obj) = json.as_object_mut() {
        for kind in ["services", "networks", "volumes", "secrets", "configs", "models"] {
            if let Some(serde_json::Value::Object(m)) = obj.get_mut(kind) {
                m.sort_keys();
            }
        }
    }
    match format {
        Format::Json => serde_json::to_string_pretty(&json).map(|s| s + "\n").map_err(|e| format!("error: {e}")),
        Format::Yaml => {
            serde_norway::to_string(&json).map(|y| quote_yaml11_booleans(&y)).map_err(|e| format!("error: {e}"))
        }
    }
}

/// YAML 1.1 readers (PyYAML, older Go yaml) take a plain `no`, `yes`, `on`, `off`, `y` or `n` for a boolean; the
/// emitter writes YAML 1.2, where they are strings. Quote them, as Docker Compose does (`restart: "no"`).
/// Booleans are always emitted as `true`/`false`, so a plain one of these words is a string.
fn quote_yaml11_booleans(yaml: &str) -> String {
    const WORDS: [&str; 16] =
        ["y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF"];
    let mut out = String::with_capacity(yaml.len() + 16);
    for line in yaml.lines() {
        let value = match line.rsplit_once(": ") {
            Some((key, v)) if !key.trim_start().starts_with(['\'', '"']) => v,
            _ => line.trim_start().strip_prefix("- ").unwrap_or(""),
        };
        if WORDS.contains(&value) {
            out.push_str(&line[..line.len() - value.len()]);
            out.push('"');
            out.push_str(value);
            out.push('"');
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml11_booleans_are_quoted() {
        let y = "restart: no\nlist:\n- on\n- onion\nkey: yes please\nno: 1\n";
        assert_eq!(quote_yaml11_booleans(y), "restart: \"no\"\nlist:\n- \"on\"\n- onion\nkey: yes please\nno: 1\n");
    }
}
