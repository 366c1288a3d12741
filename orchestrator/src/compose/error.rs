//! Diagnostics of the compose loader.
//!
//! Every problem a user can cause is a [`Diagnostic`]: where (file, line, column), what is wrong, and what to do.
//! Phases collect as many diagnostics as they can before failing, so one run reports several mistakes together.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A position in a source file, 1-based. `line == 0` means "the whole file" (for example a file that is missing).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Span {
    /// The file, or `None` for values that come from the command line or the environment.
    pub file: Option<Arc<Path>>,
    pub line: usize,
    pub column: usize,
}

impl Span {
    pub fn new(file: Option<Arc<Path>>, line: usize, column: usize) -> Self {
        Span { file, line, column }
    }

    /// A span that points at a whole file.
    pub fn file(path: &Path) -> Self {
        Span { file: Some(Arc::from(path)), line: 0, column: 0 }
    }

    pub fn is_unknown(&self) -> bool {
        self.file.is_none() && self.line == 0
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), 0) => write!(f, "{}", file.display()),
            (Some(file), line) => write!(f, "{}:{}:{}", file.display(), line, self.column),
            (None, 0) => write!(f, "<command line>"),
            (None, line) => write!(f, "<input>:{}:{}", line, self.column),
        }
    }
}

/// One problem found while loading a compose project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub span: Span,
    /// What is wrong, lowercase, carrying the offending datum.
    pub message: String,
    /// What to do about it, when there is something more specific to say than the message.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Span, message: impl Into<String>) -> Self {
        Diagnostic { span, message: message.into(), hint: None }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.span, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// The error of a failed load: every diagnostic found, in source order where it has one.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LoadError {
    /// The diagnostics of this error (an I/O error becomes one that points at the file).
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        match self {
            LoadError::Invalid(d) => d.clone(),
            LoadError::Io { path, source } => {
                vec![Diagnostic::new(Span::file(path), format!("cannot read file: {source}"))]
            }
        }
    }
}

impl From<Diagnostic> for LoadError {
    fn from(d: Diagnostic) -> Self {
        LoadError::Invalid(vec![d])
    }
}

impl From<Vec<Diagnostic>> for LoadError {
    fn from(d: Vec<Diagnostic>) -> Self {
        LoadError::Invalid(d)
    }
}

fn render(diags: &[Diagnostic]) -> String {
    diags.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
}

/// Nearest candidate to `word` by edit distance, for "did you mean" hints; `None` when nothing is close.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::damerau_levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 3) && *d < c.len().max(word.len()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_finds_typos() {
        let keys = ["image", "command", "ports", "environment"];
        assert_eq!(nearest("imgae", keys), Some("image"));
        assert_eq!(nearest("enviroment", keys), Some("environment"));
        assert_eq!(nearest("zzzzzzzzzzzz", keys), None);
    }

    #[test]
    fn span_display() {
        let s = Span::new(Some(Arc::from(Path::new("a/compose.yaml"))), 3, 7);
        assert_eq!(s.to_string(), "a/compose.yaml:3:7");
    }
}
