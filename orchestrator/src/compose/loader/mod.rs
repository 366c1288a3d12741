//! The loader: from command-line options and files on disk to a validated, normalized [`Project`].
//!
//! # Expected flow
//! 1. Which files, which project directory, which environment ([`discover`], `.env`, `--env-file`, `COMPOSE_*`).
//! 2. Each file: parse, interpolate, canonical long form, paths, `extends`, `include` ([`tree`]); then the files
//!    merge into one tree ([`merge`]).
//! 3. The merged tree: tags applied, scalars coerced and validated against the schema, profiles, logical
//!    [`checks`], service environments, resource names; then decoded into the typed [`Project`].
//!
//! # Guarantees
//! Nothing is written anywhere. Every problem comes back as a [`Diagnostic`] with file, line and column, and
//! as many of them as can be found before a phase has to stop.

pub mod canonical;
pub mod checks;
pub mod discover;
pub mod environment;
pub mod merge;
pub mod paths;
pub mod ports;
pub mod profiles;
pub mod project_name;
pub mod resources;
pub mod tree;
pub mod volumes;

use std::path::{Path, PathBuf};

use crate::compose::dotenv;
use crate::compose::error::{Diagnostic, LoadError, Span};
use crate::compose::model::Project;
use crate::compose::node::{Node, Value};
use crate::compose::schema;
pub use tree::Env;

/// What the user asked for: the global flags of `berth` and the environment they run in.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files, in order; empty means `COMPOSE_FILE` or discovery.
    pub config_files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
    /// `--profile`, repeatable.
    pub profiles: Vec<String>,
    /// `--env-file`, repeatable.
    pub env_files: Vec<PathBuf>,
    /// `false` for `--no-interpolate`.
    pub interpolate: bool,
    /// Services named on the command line: only they and their dependencies are loaded, whatever their profiles.
    pub services: Vec<String>,
    /// The process environment.
    pub environment: Env,
    /// Where relative `-f` paths start.
    pub working_dir: PathBuf,
}

impl LoadOptions {
    /// Options with the current process's environment and working directory, interpolation on.
    pub fn from_process() -> std::io::Result<Self> {
        Ok(LoadOptions {
            interpolate: true,
            environment: std::env::vars().collect(),
            working_dir: std::env::current_dir()?,
            ..Default::default()
        })
    }
}

/// A loaded project and what was learnt on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub project: Project,
    /// The final tree with positions, for tools that want to point at a service's source.
    pub tree: Node,
    /// The compose files, absolute.
    pub files: Vec<PathBuf>,
    pub project_directory: PathBuf,
    /// The interpolation environment (process environment over `.env`).
    pub environment: Env,
    /// Unset variables and other things worth a warning.
    pub warnings: Vec<Diagnostic>,
    /// Every profile any service names, before filtering.
    pub all_profiles: Vec<String>,
    /// Services left out by profiles or selection.
    pub disabled: Vec<String>,
}

pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let cwd = &opts.working_dir;
    let os_env = &opts.environment;
    let explicit: Vec<PathBuf> = opts.config_files.iter().map(|f| discover::absolute(cwd, f)).collect();
    let first_dir = |files: &[PathBuf]| files.first().and_then(|f| f.parent()).map(Path::to_path_buf);
    let chosen_dir = opts.project_directory.as_ref().map(|d| discover::absolute(cwd, d));
    let mut project_dir = chosen_dir.clone().or_else(|| first_dir(&explicit)).unwrap_or_else(|| cwd.clone());
    let mut env = project_env(opts, &project_dir)?;

    let files = if !explicit.is_empty() {
        explicit
    } else if let Some(value) = env.get("COMPOSE_FILE").filter(|v| !v.is_empty()) {
        discover::split_compose_file(value, env.get("COMPOSE_PATH_SEPARATOR").map(String::as_str), &project_dir)
    } else {
        let found = discover::find_default(&project_dir)?;
        if chosen_dir.is_none()
            && let Some(dir) = first_dir(&found)
            && dir != project_dir
        {
            // Found in a parent directory: that is the project directory, and its .env is the one that counts.
            project_dir = dir;
            env = project_env(opts, &project_dir)?;
        }
        found
    };

    let explicit_name =
        opts.project_name.clone().or_else(|| env.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()).cloned());
    if let Some(name) = &explicit_name {
        if let Some(reason) = project_name::invalid_reason(name) {
            return Err(Diagnostic::new(Span::default(), reason).into());
        }
        env.insert("COMPOSE_PROJECT_NAME".into(), name.clone());
    }

    let mut loader = tree::TreeLoader::new(os_env, opts.interpolate);
    let merged = loader.load_project(&files, &project_dir, &env);
    let mut warnings = std::mem::take(&mut loader.warnings);
    let syntax_errors = std::mem::take(&mut loader.errors);
    let mut tree = merged.map_err(|mut d| {
        d.extend(syntax_errors.iter().cloned());
        LoadError::Invalid(sorted(d))
    })?;
    tree = merge::strip_tags(tree).unwrap_or_else(|| Node::map(Span::default()));

    let name = match explicit_name {
        Some(n) => n,
        None => name_from_tree(&tree)?.unwrap_or_else(|| {
            project_name::normalize(&project_dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
        }),
    };
    if name.is_empty() {
        return Err(Diagnostic::new(Span::default(), "cannot derive a project name from the directory name")
            .with_hint("name the project with -p, COMPOSE_PROJECT_NAME or a top-level `name:`")
            .into());
    }
    let span = tree.span.clone();
    tree.insert("name", Node::string(&name, span));

    schema::coerce(&mut tree);
    // Short-syntax errors first; the schema's complaint about the same value would only repeat them.
    let mut diags = syntax_errors;
    for d in schema::validate(&tree) {
        if !diags.iter().any(|s| s.span == d.span) {
            diags.push(d);
        }
    }
    let all_profiles = profiles::all_profiles(&tree);
    let active = profiles::active_profiles(&opts.profiles, env.get("COMPOSE_PROFILES").map(String::as_str));
    let disabled = profiles::apply(&mut tree, &active, &opts.services).map_err(LoadError::Invalid)?;
    diags.extend(checks::check(&mut tree, &disabled));
    if diags.is_empty() {
        diags.extend(environment::resolve_services(&mut tree, &env));
    }
    if !diags.is_empty() {
        return Err(LoadError::Invalid(sorted(diags)));
    }
    resources::fill_in(&mut tree, &name);
    let project = decode(&tree)?;
    if let Err(cycle) = crate::graph::ServiceGraph::new(&project) {
        let first = cycle.services().first().cloned().unwrap_or_default();
        let span = tree.span_at(&["services".into(), first, "depends_on".into()]);
        return Err(Diagnostic::new(span, cycle.to_string()).with_hint("remove one dependency of the cycle").into());
    }
    warnings.dedup();
    Ok(Loaded {
        project,
        tree,
        files,
        project_directory: project_dir,
        environment: env,
        warnings,
        all_profiles,
        disabled,
    })
}

/// Diagnostics in source order, each once.
fn sorted(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    diags.sort_by(|a, b| (&a.span.file, a.span.line, a.span.column).cmp(&(&b.span.file, b.span.line, b.span.column)));
    diags.dedup();
    diags
}

/// The top-level `name:` when a file sets one; it must already be a valid name.
fn name_from_tree(tree: &Node) -> Result<Option<String>, LoadError> {
    let Some(node) = tree.get("name") else {
        return Ok(None);
    };
    let Some(name) = node.scalar_text().filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    match project_name::invalid_reason(&name) {
        Some(reason) => Err(Diagnostic::new(node.span.clone(), reason).into()),
        None => Ok(Some(name)),
    }
}

/// The interpolation environment of the main project: `.env` (or `--env-file`s, or `COMPOSE_ENV_FILES`) under
/// the process environment, which always wins.
fn project_env(opts: &LoadOptions, project_dir: &Path) -> Result<Env, LoadError> {
    let os_env = &opts.environment;
    let disabled =
        os_env.get("COMPOSE_DISABLE_ENV_FILE").is_some_and(|v| matches!(v.as_str(), "1" | "true" | "TRUE" | "True"));
    let (files, required): (Vec<PathBuf>, bool) = if !opts.env_files.is_empty() {
        (opts.env_files.iter().map(|f| discover::absolute(&opts.working_dir, f)).collect(), true)
    } else if let Some(list) = os_env.get("COMPOSE_ENV_FILES").filter(|v| !v.is_empty()) {
        (list.split(',').map(|f| discover::absolute(&opts.working_dir, Path::new(f.trim()))).collect(), true)
    } else if disabled {
        (Vec::new(), false)
    } else {
        (vec![project_dir.join(".env")], false)
    };
    let mut env = Env::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
            Err(source) => return Err(LoadError::Io { path: file, source }),
        };
        if std::fs::metadata(&file).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        let lookup = |k: &str| os_env.get(k).or_else(|| env.get(k)).cloned();
        let vars = dotenv::parse(&text, &file, &lookup)?;
        env.extend(vars);
    }
    for (k, v) in os_env {
        env.insert(k.clone(), v.clone());
    }
    Ok(env)
}

/// The typed project. The schema already accepted the tree, so a failure here is a bug in the model or the
/// schema; it is still reported at the value's position rather than as a panic.
fn decode(tree: &Node) -> Result<Project, LoadError> {
    let json = tree.to_json();
    serde_path_to_error::deserialize(json).map_err(|e| {
        let path: Vec<String> = e
            .path()
            .iter()
            .filter_map(|seg| match seg {
                serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
                serde_path_to_error::Segment::Unknown => None,
            })
            .collect();
        LoadError::from(Diagnostic::new(tree.span_at(&path), format!("{}: {}", e.path(), e.inner())))
    })
}

/// True when a node is the boolean `true`.
pub fn is_true(n: Option<&Node>) -> bool {
    matches!(n.map(|n| &n.value), Some(Value::Bool(true)))
}
