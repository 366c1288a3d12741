//! From files on disk to one merged project tree: read, parse, interpolate, canonical form, paths, `extends`,
//! `include`, merge. Everything here works on [`Node`] trees, so every later error still knows its position.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use super::canonical::canonicalize;
use super::discover::absolute;
use super::merge::merge;
use super::paths::{self, PathContext};
use crate::compose::error::{Diagnostic, Span};
use crate::compose::node::{Node, Value};
use crate::compose::{dotenv, interpolate, yaml};

/// Variables for interpolation, already in precedence order (the OS environment over `.env`).
pub type Env = IndexMap<String, String>;

pub struct TreeLoader<'a> {
    /// The process environment: it wins over every `.env`, also in included projects.
    pub os_env: &'a Env,
    pub interpolate: bool,
    pub home: Option<String>,
    pub warnings: Vec<Diagnostic>,
    /// Problems in short syntax: the loader goes on so that validation can report its findings with them.
    pub errors: Vec<Diagnostic>,
    /// Files being included right now, outermost first, to name an include cycle.
    include_stack: Vec<PathBuf>,
    /// Files pulled in by `extends`, parsed once per directory they resolve against.
    extends_cache: HashMap<PathBuf, Node>,
}

impl<'a> TreeLoader<'a> {
    pub fn new(os_env: &'a Env, interpolate: bool) -> Self {
        TreeLoader {
            os_env,
            interpolate,
            home: os_env.get("HOME").cloned(),
            warnings: Vec::new(),
            errors: Vec::new(),
            include_stack: Vec::new(),
            extends_cache: HashMap::new(),
        }
    }

    /// Load and merge `files` of one project whose relative paths resolve against `project_dir`.
    pub fn load_project(&mut self, files: &[PathBuf], project_dir: &Path, env: &Env) -> Result<Node, Vec<Diagnostic>> {
        let mut merged: Option<Node> = None;
        let mut diags = Vec::new();
        for file in files {
            match self.load_file(file, project_dir, env) {
                Ok(tree) => {
                    merged = Some(match merged.take() {
                        Some(base) => merge(base, tree, &[]),
                        None => tree,
                    });
                }
                Err(mut d) => diags.append(&mut d),
            }
        }
        if !diags.is_empty() {
            return Err(diags);
        }
        let span = files.first().map(|f| Span::file(f)).unwrap_or_default();
        Ok(merged.unwrap_or_else(|| Node::map(span)))
    }

    /// One file: parsed, interpolated, in canonical form, paths resolved against `base`, with its `extends` and
    /// `include` applied. Tags (`!reset`, `!override`) stay for the merge with the next file.
    fn load_file(&mut self, file: &Path, base: &Path, env: &Env) -> Result<Node, Vec<Diagnostic>> {
        let mut tree = self.parse_file(file, env)?;
        paths::resolve(&mut tree, &PathContext { base, home: self.home.as_deref() });
        let mut diags = self.apply_extends(&mut tree, file, env);
        diags.extend(self.apply_include(&mut tree, file, env));
        if diags.is_empty() { Ok(tree) } else { Err(diags) }
    }

    /// Read, parse, interpolate and canonicalize one file.
    fn parse_file(&mut self, file: &Path, env: &Env) -> Result<Node, Vec<Diagnostic>> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| vec![Diagnostic::new(Span::file(file), format!("cannot read compose file: {e}"))])?;
        let mut tree = yaml::parse(&text, Some(std::sync::Arc::from(file))).map_err(|d| vec![d])?;
        match &tree.value {
            Value::Map(_) => {}
            Value::Null => {
                return Err(vec![
                    Diagnostic::new(Span::file(file), "the compose file is empty")
                        .with_hint("add at least a `services:` section"),
                ]);
            }
            _ => {
                return Err(vec![
                    Diagnostic::new(
                        tree.span.clone(),
                        format!("the top level must be a mapping, found {}", tree.kind_name()),
                    )
                    .with_hint("start the file with keys such as `services:`"),
                ]);
            }
        }
        if self.interpolate {
            let lookup = |k: &str| env.get(k).cloned();
            interpolate::interpolate(&mut tree, &lookup, &mut self.warnings)?;
        }
        self.errors.extend(canonicalize(&mut tree));
        Ok(tree)
    }

    fn apply_extends(&mut self, tree: &mut Node, file: &Path, env: &Env) -> Vec<Diagnostic> {
        let names: Vec<String> = match tree.get("services").and_then(Node::as_map) {
            Some(m) => m.keys().cloned().collect(),
            None => return Vec::new(),
        };
        let mut diags = Vec::new();
        for name in names {
            let mut chain = Vec::new();
            if let Err(d) = self.extend_service(tree, file, &name, env, &mut chain) {
                diags.push(d);
            }
        }
        diags
    }

    /// Resolve `extends` of service `name` in `tree` (which came from `file`), recursively.
    fn extend_service(
        &mut self,
        tree: &mut Node,
        file: &Path,
        name: &str,
        env: &Env,
        chain: &mut Vec<(PathBuf, String)>,
    ) -> Result<(), Diagnostic> {
        let Some(svc) = tree.get("services").and_then(|s| s.get(name)) else {
            return Ok(());
        };
        let Some(ext) = svc.get("extends") else {
            return Ok(());
        };
        let ext_span = ext.span.clone();
        let Some(base_name) = ext.get("service").and_then(Node::as_str).map(str::to_owned) else {
            return Err(Diagnostic::new(ext_span, "`extends` needs the name of a service")
                .with_hint("write `extends: {service: NAME}` or `extends: NAME`"));
        };
        if let Some(f) = ext.get("file").and_then(Node::as_str)
            && super::discover::is_remote(f)
        {
            return Err(remote_error(ext_span, f));
        }
        let other_file = ext.get("file").and_then(Node::as_str).map(|f| {
            let dir = file.parent().unwrap_or(Path::new("/"));
            absolute(dir, Path::new(f))
        });
        let here = (file.to_path_buf(), name.to_string());
        if chain.contains(&here) {
            let mut cycle: Vec<String> = chain.iter().map(|(f, s)| format!("{s} ({})", f.display())).collect();
            cycle.push(format!("{name} ({})", file.display()));
            return Err(Diagnostic::new(ext_span, format!("circular extends: {}", cycle.join(" -> ")))
                .with_hint("remove one of the `extends` in this chain"));
        }
        chain.push(here);
        let base = match &other_file {
            None => {
                self.extend_service(tree, file, &base_name, env, chain)?;
                tree.get("services").and_then(|s| s.get(&base_name)).cloned()
            }
            Some(other) => {
                let mut other_tree = self.extends_source(other, env, &ext_span)?;
                self.extend_service(&mut other_tree, other, &base_name, env, chain)?;
                other_tree.get("services").and_then(|s| s.get(&base_name)).cloned()
            }
        };
        chain.pop();
        let where_ = other_file.as_deref().unwrap_or(file);
        let Some(mut base) = base else {
            return Err(Diagnostic::new(
                ext_span,
                format!("service {name:?} extends {base_name:?}, which is not defined in {}", where_.display()),
            ));
        };
        // What a service inherits never includes the base's own `extends`.
        if let Some(m) = base.as_map_mut() {
            m.shift_remove("extends");
        }
        let Some(services) = tree.get_mut("services") else {
            return Ok(());
        };
        let Some(svc) = services.get_mut(name) else {
            return Ok(());
        };
        let mut own = svc.clone();
        if let Some(m) = own.as_map_mut() {
            m.shift_remove("extends");
        }
        *svc = merge(base, own, &["services", name]);
        Ok(())
    }

    /// A file named by `extends: {file: …}`, with its paths resolved against its own directory.
    fn extends_source(&mut self, path: &Path, env: &Env, span: &Span) -> Result<Node, Diagnostic> {
        if let Some(t) = self.extends_cache.get(path) {
            return Ok(t.clone());
        }
        let mut tree = self.parse_file(path, env).map_err(|d| {
            let first = d.into_iter().next();
            match first {
                Some(d) if d.span.file.as_deref() == Some(path) => d,
                Some(d) => Diagnostic::new(span.clone(), format!("in extended file {}: {}", path.display(), d.message)),
                None => Diagnostic::new(span.clone(), format!("cannot load extended file {}", path.display())),
            }
        })?;
        let dir = path.parent().unwrap_or(Path::new("/")).to_path_buf();
        paths::resolve(&mut tree, &PathContext { base: &dir, home: self.home.as_deref() });
        self.extends_cache.insert(path.to_path_buf(), tree.clone());
        Ok(tree)
    }

    /// `include`: each entry is a project of its own (own project directory, own `.env`), loaded and then merged
    /// into this file's tree; a resource defined differently on both sides is an error, as in Docker Compose.
    fn apply_include(&mut self, tree: &mut Node, file: &Path, env: &Env) -> Vec<Diagnostic> {
        let Some(include) = tree.as_map_mut().and_then(|m| m.shift_remove("include")) else {
            return Vec::new();
        };
        let Some(items) = include.value.as_seq() else {
            return vec![Diagnostic::new(include.value.span.clone(), "`include` must be a list of files")];
        };
        let mut diags = Vec::new();
        self.include_stack.push(file.to_path_buf());
        for item in items {
            match self.load_include(item, env) {
                Ok(included) => diags.extend(merge_included(tree, included, &item.span)),
                Err(mut d) => diags.append(&mut d),
            }
        }
        self.include_stack.pop();
        diags
    }

    fn load_include(&mut self, item: &Node, parent_env: &Env) -> Result<Node, Vec<Diagnostic>> {
        let strings = |key: &str| -> Vec<PathBuf> {
            item.get(key)
                .and_then(Node::as_seq)
                .map(|s| s.iter().filter_map(Node::as_str).map(PathBuf::from).collect())
                .unwrap_or_default()
        };
        const KEYS: [&str; 3] = ["path", "project_directory", "env_file"];
        if let Some(m) = item.as_map() {
            let unknown: Vec<Diagnostic> = m
                .iter()
                .filter(|(k, _)| !KEYS.contains(&k.as_str()))
                .map(|(k, e)| {
                    let d = Diagnostic::new(e.key_span.clone(), format!("unknown key `{k}` in an `include` entry"));
                    match crate::compose::error::nearest(k, KEYS) {
                        Some(n) => d.with_hint(format!("did you mean `{n}`?")),
                        None => d.with_hint("an include entry takes `path`, `project_directory` and `env_file`"),
                    }
                })
                .collect();
            if !unknown.is_empty() {
                return Err(unknown);
            }
        }
        let files = strings("path");
        if let Some(remote) = files.iter().find(|f| super::discover::is_remote(&f.to_string_lossy())) {
            return Err(vec![remote_error(item.span.clone(), &remote.to_string_lossy())]);
        }
        let Some(first) = files.first() else {
            return Err(vec![Diagnostic::new(item.span.clone(), "an `include` entry needs a `path`")]);
        };
        if let Some(pos) = files.iter().find_map(|f| self.include_stack.iter().position(|s| s == f)) {
            let mut cycle: Vec<String> = self.include_stack[pos..].iter().map(|p| p.display().to_string()).collect();
            cycle.push(self.include_stack[pos].display().to_string());
            return Err(vec![
                Diagnostic::new(item.span.clone(), format!("include cycle: {}", cycle.join(" -> ")))
                    .with_hint("a file cannot include itself, directly or through other files"),
            ]);
        }
        let project_dir = item
            .get("project_directory")
            .and_then(Node::as_str)
            .map(PathBuf::from)
            .unwrap_or_else(|| first.parent().map(Path::to_path_buf).unwrap_or_default());
        let mut env_files = strings("env_file");
        if env_files.is_empty() {
            env_files.push(project_dir.join(".env"));
        }
        let env = self.include_env(&env_files, parent_env, item)?;
        self.load_project(&files, &project_dir, &env)
    }

    /// The environment of an included project: the including project's (process environment and its `.env`),
    /// with the included project's own `.env` (or `env_file`) only filling in what is unset, as Docker Compose does.
    fn include_env(&mut self, files: &[PathBuf], parent_env: &Env, item: &Node) -> Result<Env, Vec<Diagnostic>> {
        let mut env = parent_env.clone();
        for f in files {
            if !f.is_file() {
                if item.get("env_file").is_some() {
                    return Err(vec![Diagnostic::new(
                        item.span.clone(),
                        format!("env file {} not found", f.display()),
                    )]);
                }
                continue;
            }
            let text = std::fs::read_to_string(f)
                .map_err(|e| vec![Diagnostic::new(Span::file(f), format!("cannot read env file: {e}"))])?;
            let lookup = |k: &str| env.get(k).cloned();
            let vars = dotenv::parse(&text, f, &lookup).map_err(|d| vec![d])?;
            for (k, v) in vars {
                env.entry(k).or_insert(v);
            }
        }
        Ok(env)
    }
}

fn remote_error(span: Span, reference: &str) -> Diagnostic {
    Diagnostic::new(span, format!("remote resources are not supported: {reference}"))
        .with_hint("berth loads local files only: check the file out and refer to it by path")
}

/// Merge an included project's resources into the including tree: new names are added, an identical definition is
/// fine, a different one is a conflict.
fn merge_included(tree: &mut Node, included: Node, at: &Span) -> Vec<Diagnostic> {
    let mut diags = Vec::new();
    let Value::Map(inc) = included.value else {
        return diags;
    };
    for (kind, entry) in inc {
        let Value::Map(resources) = entry.value.value else {
            continue;
        };
        if !matches!(kind.as_str(), "services" | "networks" | "volumes" | "secrets" | "configs" | "models") {
            continue;
        }
        if tree.get(&kind).is_none() {
            tree.insert(kind.clone(), Node::map(at.clone()));
        }
        let Some(target) = tree.get_mut(&kind).and_then(Node::as_map_mut) else {
            continue;
        };
        for (name, res) in resources {
            match target.get(&name) {
                Some(existing) if existing.value.to_json() != res.value.to_json() => diags.push(
                    Diagnostic::new(
                        existing.key_span.clone(),
                        format!(
                            "{kind}.{name} conflicts with the one imported from {} (line {})",
                            res.value.span.file.as_deref().map(|p| p.display().to_string()).unwrap_or_default(),
                            res.value.span.line
                        ),
                    )
                    .with_hint("rename one of them, or remove the duplicate definition"),
                ),
                Some(_) => {}
                None => {
                    target.insert(name, res);
                }
            }
        }
    }
    diags
}
