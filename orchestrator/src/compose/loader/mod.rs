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

use serde::Deserialize;

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
        // Relative to the working directory, not the project directory, as Docker Compose resolves them.
        discover::split_compose_file(value, env.get("COMPOSE_PATH_SEPARATOR").map(String::as_str), cwd)
    } else {
        let found = discover::find_default(&project_dir)?;
        if chosen_dir.is_none()
            && let Some(dir) = first_dir(&found)
            && dir != project_dir
        {
            // Found in a parent directory: that is the project directory. Its .env adds what the working
            // directory's .env (already read) left unset.
            project_dir = dir;
            for (k, v) in project_env(opts, &project_dir)? {
                env.entry(k).or_insert(v);
            }
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

    if explicit_name.is_none() && opts.interpolate && mentions_project_name(&files) {
        // `${COMPOSE_PROJECT_NAME}` must see the name that `name:` or the directory gives: learn it first.
        let mut probe = tree::TreeLoader::new(os_env, true);
        if let Ok(t) = probe.load_project(&files, &project_dir, &env)
            && let Ok(Some(name)) = name_from_tree(&t)
        {
            env.insert("COMPOSE_PROJECT_NAME".into(), name);
        } else {
            env.insert("COMPOSE_PROJECT_NAME".into(), dir_name(&project_dir));
        }
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
    merge::enforce_unicity(&mut tree);

    let name = match explicit_name {
        Some(n) => n,
        None => name_from_tree(&tree)?.unwrap_or_else(|| dir_name(&project_dir)),
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
    let mut typed_tree = None;
    let schema_diags = if opts.interpolate {
        schema::validate(&tree)
    } else {
        // Without interpolation `${PORT}` stays text where a number belongs. Docker Compose accepts that for
        // `config --no-interpolate`; so do we: such attributes are shown as written and left out of the typed view.
        let pruned = prune_unresolved(tree.clone());
        let diags = schema::validate(&pruned);
        typed_tree = Some(pruned);
        diags
    };
    for d in schema_diags {
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
    let project = match typed_tree {
        Some(mut pruned) => {
            let keep: Vec<String> =
                tree.get("services").and_then(Node::as_map).map(|m| m.keys().cloned().collect()).unwrap_or_default();
            if let Some(m) = pruned.get_mut("services").and_then(Node::as_map_mut) {
                m.retain(|k, _| keep.contains(k));
            }
            let _ = checks::check(&mut pruned, &disabled);
            let _ = environment::resolve_services(&mut pruned, &env);
            resources::fill_in(&mut pruned, &name);
            decode(&pruned)?
        }
        None => decode(&tree)?,
    };
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

/// Drop every attribute (a service's key, or a top-level resource's key) whose value fails validation because of
/// an uninterpolated `$` reference somewhere inside it. Bounded: each round removes at least one attribute.
fn prune_unresolved(mut tree: Node) -> Node {
    for _ in 0..64 {
        let mut targets: Vec<Vec<String>> = schema::validate(&tree)
            .iter()
            .filter_map(|d| path_of(&tree, &d.span, &mut Vec::new()))
            .map(|p| {
                let depth = if p.first().is_some_and(|k| k == "services") { 3 } else { 2 };
                p.into_iter().take(depth).collect::<Vec<String>>()
            })
            .filter(|p| tree.pointer(p).is_some_and(has_unresolved))
            .collect();
        targets.dedup();
        if targets.is_empty() {
            break;
        }
        for t in targets {
            if let Some((last, parent)) = t.split_last()
                && let Some(m) = pointer_mut(&mut tree, parent).and_then(Node::as_map_mut)
            {
                m.shift_remove(last.as_str());
            }
        }
    }
    tree
}

fn has_unresolved(n: &Node) -> bool {
    match &n.value {
        Value::String(s) => s.contains('$'),
        Value::Map(m) => m.values().any(|e| has_unresolved(&e.value)),
        Value::Seq(items) => items.iter().any(has_unresolved),
        _ => false,
    }
}

fn pointer_mut<'a>(node: &'a mut Node, path: &[String]) -> Option<&'a mut Node> {
    let mut node = node;
    for part in path {
        node = match &mut node.value {
            Value::Map(m) => &mut m.get_mut(part.as_str())?.value,
            Value::Seq(s) => s.get_mut(part.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

/// The path of the first node (or mapping key) at `span`.
fn path_of(node: &Node, span: &Span, path: &mut Vec<String>) -> Option<Vec<String>> {
    if node.span == *span {
        return Some(path.clone());
    }
    match &node.value {
        Value::Map(m) => {
            for (k, e) in m {
                path.push(k.clone());
                if e.key_span == *span {
                    return Some(path.clone());
                }
                if let Some(p) = path_of(&e.value, span, path) {
                    return Some(p);
                }
                path.pop();
            }
            None
        }
        Value::Seq(items) => {
            for (i, n) in items.iter().enumerate() {
                path.push(i.to_string());
                if let Some(p) = path_of(n, span, path) {
                    return Some(p);
                }
                path.pop();
            }
            None
        }
        _ => None,
    }
}

fn dir_name(dir: &Path) -> String {
    project_name::normalize(&dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
}

/// Whether any of the files refers to `COMPOSE_PROJECT_NAME` (a cheap text check before a second pass).
fn mentions_project_name(files: &[PathBuf]) -> bool {
    files.iter().any(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("COMPOSE_PROJECT_NAME")))
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
/// schema; it is still reported at the value's position rather than as a panic. The tree decodes as its JSON
/// would (see `node/de.rs`), without building that JSON.
fn decode(tree: &Node) -> Result<Project, LoadError> {
    // Tracking the path costs a copy of every key, and the path only matters in an error: so decode untracked,
    // and on failure decode again (the same tree fails the same way) to learn where.
    match Project::deserialize(tree) {
        Ok(project) => Ok(project),
        Err(_) => decode_tracked(tree),
    }
}

fn decode_tracked(tree: &Node) -> Result<Project, LoadError> {
    serde_path_to_error::deserialize(tree).map_err(|e| {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_name_the_path_and_position() {
        let json = serde_json::json!({"services": {"web": {"image": "x", "cpus": "lots"}}});
        let mut tree = Node::from_json(&json, &Span::default());
        if let Some(cpus) = tree.get_mut("services").and_then(|s| s.get_mut("web")).and_then(|w| w.get_mut("cpus")) {
            cpus.span = Span::new(None, 7, 5);
        }
        let diags = match decode(&tree) {
            Err(e) => e.diagnostics(),
            Ok(p) => panic!("decoded {p:?}"),
        };
        assert_eq!(diags.len(), 1);
        assert!(diags[0].message.starts_with("services.web.cpus: "), "{}", diags[0].message);
        assert_eq!((diags[0].span.line, diags[0].span.column), (7, 5));
    }
}
