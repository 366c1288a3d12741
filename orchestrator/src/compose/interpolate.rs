//! Variable interpolation (`$VAR`, `${VAR:-default}`, …) as Docker Compose does it.
//!
//! This is a hand-written parser: no crate implements compose-go's exact dialect, whose behaviour comes from a regular
//! expression plus a brace-counting pass rather than from a grammar. The code below reproduces that behaviour step by
//! step (compose-go `template/template.go`, v2), including its corner cases:
//!
//! - `$$` is a literal `$`; `$NAME` takes the longest name (`[_a-zA-Z][_a-zA-Z0-9]*`); anything else after a `$`
//!   (a space, a digit, the end of the string, `${}`, `${ X}`, `${X }`, `${X!}`) is an invalid template: an error,
//!   not literal text. Go folds case in the name pattern, so `ſ` (U+017F) and `K` (U+212A) count as name letters too.
//! - `${NAME<op>…}`: the operator is the first of `:?` `?` `:-` `-` `:+` `+` right after the name. Its argument runs
//!   to the first `}` that balances the braces counted from the `${` (every `{` opens one and hides the character
//!   after it); when none balances, to the last `}` on the same line. With no `}` on the line it is invalid.
//! - Defaults, replacements and error messages are themselves interpolated, but only when they are used (the
//!   lazy evaluation of compose-go ≥ 2.x: `${SET:-${UNSET}}` warns about nothing, `${SET:-$}` is not an error).
//! - A variable that is unset and used without any operator becomes the empty string and is reported (compose-go
//!   logs "The "FOO" variable is not set. Defaulting to a blank string.").
//!
//! Berth's only additions are limits for untrusted input: nesting deeper than [`MAX_DEPTH`] is an error, and the
//! tree walk is iterative. Where compose-go would go on scanning after the first error (only to log more warnings),
//! this stops: the result is discarded either way.

use super::error::{Diagnostic, Span};
use super::node::{Node, Value};

/// Looks a variable up; None = unset.
pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The deepest nesting of defaults within defaults (`${A:-${B:-${C:-…}}}`) accepted.
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubstError {
    /// `${VAR:?message}` or `${VAR?message}` with VAR missing (or empty, for `:?`). `message` is interpolated.
    #[error("required variable {var} is missing a value{}", reason_suffix(.message))]
    Required { var: String, message: String },
    /// The template is not valid interpolation syntax. `template` is the whole string that was being substituted.
    #[error("invalid interpolation format for {template:?}: {reason}")]
    Syntax { template: String, reason: String },
}

fn reason_suffix(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(": {message}") }
}

/// An error before it knows the whole template.
enum Fail {
    Required { var: String, message: String },
    Syntax(String),
}

/// Substitute variables in one string. Returns the result and the names of unset variables that were
/// used without a default (for warnings), each once, in order of first use.
pub fn substitute(template: &str, lookup: Lookup) -> Result<(String, Vec<String>), SubstError> {
    let mut s = Substituter { lookup, unset: Vec::new() };
    match s.run(template, 0) {
        Ok(out) => Ok((out, s.unset)),
        Err(Fail::Required { var, message }) => Err(SubstError::Required { var, message }),
        Err(Fail::Syntax(reason)) => Err(SubstError::Syntax { template: template.to_owned(), reason }),
    }
}

struct Substituter<'a> {
    lookup: Lookup<'a>,
    unset: Vec<String>,
}

/// The operators of `${NAME<op>arg}`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `-` (unset) and `:-` (unset or empty): a default.
    Default,
    /// `+` and `:+`: a replacement when the variable is set.
    Alternative,
    /// `?` and `:?`: an error when the variable is missing.
    Required,
}

fn is_name_start(c: char) -> bool {
    // Go's `(?i)[_a-z]` also matches the two non-ASCII characters that case-fold onto ASCII letters.
    c == '_' || c.is_ascii_alphabetic() || c == '\u{17F}' || c == '\u{212A}'
}

fn is_name_char(c: char) -> bool {
    is_name_start(c) || c.is_ascii_digit()
}

/// The end of the name that starts at `start` (which must be a name start), as a byte offset.
fn name_end(text: &str, start: usize) -> usize {
    let rest = text.get(start..).unwrap_or_default();
    rest.char_indices().find(|&(_, c)| !is_name_char(c)).map_or(text.len(), |(i, _)| start + i)
}

fn char_at(text: &str, at: usize) -> Option<char> {
    text.get(at..).and_then(|s| s.chars().next())
}

impl Substituter<'_> {
    fn run(&mut self, text: &str, depth: usize) -> Result<String, Fail> {
        if depth > MAX_DEPTH {
            return Err(Fail::Syntax(format!("variables are nested more than {MAX_DEPTH} levels deep")));
        }
        let bytes = text.as_bytes();
        let mut out = String::with_capacity(text.len());
        let mut done = 0;
        while let Some(rel) = text.get(done..).and_then(|s| s.find('$')) {
            let dollar = done + rel;
            out.push_str(text.get(done..dollar).unwrap_or_default());
            let after = dollar + 1;
            match char_at(text, after) {
                Some('$') => {
                    out.push('$');
                    done = after + 1;
                }
                Some(c) if is_name_start(c) => {
                    let end = name_end(text, after);
                    let value = self.variable(text.get(after..end).unwrap_or_default());
                    out.push_str(&value);
                    done = end;
                }
                Some('{') => {
                    let (value, end) = self.braced(text, bytes, dollar, depth)?;
                    out.push_str(&value);
                    done = end;
                }
                Some(c) => return Err(Fail::Syntax(format!("`$` followed by {c:?} is not a variable reference"))),
                None => return Err(Fail::Syntax("`$` at the end is not a variable reference".into())),
            }
        }
        out.push_str(text.get(done..).unwrap_or_default());
        Ok(out)
    }

    /// A plain reference: the value, or the empty string (and a warning) when unset.
    fn variable(&mut self, name: &str) -> String {
        match (self.lookup)(name) {
            Some(v) => v,
            None => {
                if !self.unset.iter().any(|n| n == name) {
                    self.unset.push(name.to_owned());
                }
                String::new()
            }
        }
    }

    /// `${…}` starting with the `$` at `dollar`: its value and the byte offset where scanning resumes.
    fn braced(&mut self, text: &str, bytes: &[u8], dollar: usize, depth: usize) -> Result<(String, usize), Fail> {
        let start = dollar + 2;
        if !char_at(text, start).is_some_and(is_name_start) {
            return Err(Fail::Syntax("`${` must be followed by a variable name".into()));
        }
        let end = name_end(text, start);
        let name = text.get(start..end).unwrap_or_default();
        let colon = bytes.get(end) == Some(&b':');
        let op_at = if colon { end + 1 } else { end };
        let op = match bytes.get(op_at) {
            Some(b'-') => Op::Default,
            Some(b'+') => Op::Alternative,
            Some(b'?') => Op::Required,
            _ if bytes.get(end) == Some(&b'}') => return Ok((self.variable(name), end + 1)),
            _ => {
                return Err(Fail::Syntax(format!(
                    "`${{{name}` must be closed by `}}` or followed by one of `:-` `-` `:+` `+` `:?` `?`"
                )));
            }
        };
        let arg_start = op_at + 1;
        let close = closing_brace(text, bytes, dollar, arg_start)
            .ok_or_else(|| Fail::Syntax(format!("`${{{name}` is not closed by a `}}` on its line")))?;
        let arg = text.get(arg_start..close).unwrap_or_default();
        let value = (self.lookup)(name);
        let set = value.as_deref().is_some_and(|v| !(colon && v.is_empty()));
        let result = match op {
            Op::Default if set => value.unwrap_or_default(),
            Op::Default => self.run(arg, depth + 1)?,
            Op::Alternative if set => self.run(arg, depth + 1)?,
            Op::Alternative => value.unwrap_or_default(),
            Op::Required if set => value.unwrap_or_default(),
            Op::Required => {
                let message = self.run(arg, depth + 1)?;
                return Err(Fail::Required { var: name.to_owned(), message });
            }
        };
        Ok((result, close + 1))
    }
}

/// Where `${NAME<op>…` (its `$` at `dollar`, its argument from `arg_start`) closes, as compose-go finds it.
///
/// The regular expression first takes everything up to the last `}` on the line (`.` stops at a newline); then the
/// braces of that text are counted from the `$`: each `{` opens one and skips the character after it, each `}` closes
/// one, and the `}` that brings the count back to zero ends the reference. When none does, the last `}` ends it.
fn closing_brace(text: &str, bytes: &[u8], dollar: usize, arg_start: usize) -> Option<usize> {
    // The name and operator hold no brace and no newline, so scanning from the `$` is scanning the match.
    let mut open = 0usize;
    let mut i = dollar;
    let line_end = loop {
        match bytes.get(i) {
            None | Some(b'\n') => break i.min(text.len()),
            Some(b'}') => {
                open = open.saturating_sub(1);
                if open == 0 {
                    return Some(i);
                }
                i += 1;
            }
            Some(b'{') => {
                open += 1;
                // The skipped character is still subject to the end of the line.
                if bytes.get(i + 1) == Some(&b'\n') {
                    break i + 1;
                }
                i += 2;
            }
            Some(_) => i += 1,
        }
    };
    text.get(arg_start..line_end).and_then(|s| s.rfind('}')).map(|i| arg_start + i)
}

/// One step of the path to a value, for messages (`services.web.command[1]`).
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// A step and the index of the step before it. The walk keeps every step in one arena (a vector), so a path
/// costs no allocation of its own; it is rendered only for an error.
struct PathLink<'a> {
    seg: Seg<'a>,
    parent: Option<usize>,
}

fn render_path(links: &[PathLink<'_>], path: Option<usize>) -> String {
    let mut segs = Vec::new();
    let mut link = path.and_then(|i| links.get(i));
    while let Some(l) = link {
        segs.push(&l.seg);
        link = l.parent.and_then(|i| links.get(i));
    }
    let mut out = String::new();
    for seg in segs.into_iter().rev() {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    if out.is_empty() { "the value".into() } else { out }
}

/// Interpolate every string value of a Node tree in place (never mapping keys). Unset variables add one
/// warning Diagnostic each ("the \"FOO\" variable is not set, defaulting to a blank string" at the value's span)
/// to `warnings`; errors (required variable missing, bad syntax) are all collected and returned together,
/// each at the span of the offending value.
pub fn interpolate(node: &mut Node, lookup: Lookup, warnings: &mut Vec<Diagnostic>) -> Result<(), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut links: Vec<PathLink> = Vec::new();
    // Depth-first, in document order, without recursion (trees from untrusted files can be deep).
    let mut stack: Vec<(&mut Node, Option<usize>)> = vec![(node, None)];
    while let Some((node, path)) = stack.pop() {
        let Node { value, span, .. } = node;
        match value {
            // Without a `$` there is nothing to substitute (and most strings have none).
            Value::String(s) if !s.contains('$') => {}
            Value::String(s) => match substitute(s, lookup) {
                Ok((out, unset)) => {
                    *s = out;
                    warnings.extend(unset.into_iter().map(|name| unset_warning(&name, span)));
                }
                Err(e) => errors.push(error_diagnostic(e, &render_path(&links, path), span.clone())),
            },
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate().rev() {
                    links.push(PathLink { seg: Seg::Index(i), parent: path });
                    stack.push((item, Some(links.len() - 1)));
                }
            }
            Value::Map(map) => {
                for (key, entry) in map.iter_mut().rev() {
                    links.push(PathLink { seg: Seg::Key(key), parent: path });
                    stack.push((&mut entry.value, Some(links.len() - 1)));
                }
            }
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) => {}
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn unset_warning(name: &str, span: &Span) -> Diagnostic {
    Diagnostic::new(span.clone(), format!("the \"{name}\" variable is not set, defaulting to a blank string"))
}

fn error_diagnostic(e: SubstError, path: &str, span: Span) -> Diagnostic {
    match e {
        SubstError::Syntax { template, reason } => {
            Diagnostic::new(span, format!("invalid interpolation format for {path}: {reason}, in {template:?}"))
                .with_hint("you may need to escape any $ with another $")
        }
        e @ SubstError::Required { .. } => Diagnostic::new(span, format!("error while interpolating {path}: {e}"))
            .with_hint("set the variable in the environment or in the .env file"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::compose::node::Entry;

    /// FOO=first, BAR= (set but empty), NUM=42; everything else unset.
    fn env(name: &str) -> Option<String> {
        match name {
            "FOO" => Some("first".into()),
            "BAR" => Some(String::new()),
            "NUM" => Some("42".into()),
            _ => None,
        }
    }

    fn sub(t: &str) -> String {
        match substitute(t, &env) {
            Ok((s, _)) => s,
            Err(e) => panic!("{t:?} failed: {e}"),
        }
    }

    fn unset_of(t: &str) -> Vec<String> {
        match substitute(t, &env) {
            Ok((_, u)) => u,
            Err(e) => panic!("{t:?} failed: {e}"),
        }
    }

    fn err(t: &str) -> SubstError {
        match substitute(t, &env) {
            Ok((s, _)) => panic!("{t:?} should fail, gave {s:?}"),
            Err(e) => e,
        }
    }

    fn is_syntax(t: &str) -> bool {
        matches!(substitute(t, &env), Err(SubstError::Syntax { .. }))
    }

    #[test]
    fn text_without_variables_is_unchanged() {
        assert_eq!(sub("foo"), "foo");
        assert_eq!(sub(""), "");
        assert_eq!(sub("héllo {} } {"), "héllo {} } {");
    }

    #[test]
    fn plain_references() {
        assert_eq!(sub("This $FOO var"), "This first var");
        assert_eq!(sub("This ${FOO} var"), "This first var");
        assert_eq!(sub("$FOO$NUM"), "first42");
        assert_eq!(sub("${FOO}${NUM}"), "first42");
        // Lower case names are names too.
        let lower = |n: &str| (n == "foo").then(|| "x".to_string());
        assert_eq!(substitute("$foo", &lower).map(|r| r.0), Ok("x".into()));
    }

    #[test]
    fn unbraced_name_stops_at_the_first_non_name_character() {
        // docker/compose#8601: `$FOO-bar` is FOO followed by "-bar".
        assert_eq!(sub("$FOO-bar"), "first-bar");
        assert_eq!(sub("$FOO.x"), "first.x");
        assert_eq!(sub("$FOO:1"), "first:1");
        assert_eq!(sub("$FOO}"), "first}");
        // The longest name is taken: FOOX is another (unset) variable.
        assert_eq!(sub("$FOOX"), "");
        assert_eq!(sub("$NUM9"), "");
    }

    #[test]
    fn unset_and_empty_without_default() {
        assert_eq!(sub("This ${missing} var"), "This  var");
        assert_eq!(sub("This ${BAR} var"), "This  var");
        assert_eq!(unset_of("${missing} $missing ${other}"), vec!["missing", "other"]);
        // Set-but-empty is not reported.
        assert!(unset_of("${BAR}$BAR").is_empty());
    }

    #[test]
    fn dollar_dollar_is_a_literal_dollar() {
        assert_eq!(sub("$${foo}"), "${foo}");
        assert_eq!(sub("$$FOO"), "$FOO");
        assert_eq!(sub("a$$"), "a$");
        assert_eq!(sub("$$$FOO"), "$first");
        assert_eq!(sub("$$$$"), "$$");
        assert!(unset_of("$$UNSET").is_empty());
    }

    #[test]
    fn soft_default_applies_when_unset_or_empty() {
        assert_eq!(sub("ok ${missing:-def}"), "ok def");
        assert_eq!(sub("ok ${BAR:-def}"), "ok def");
        assert_eq!(sub("ok ${FOO:-def}"), "ok first");
        assert_eq!(sub("ok ${missing:-}"), "ok ");
        assert!(unset_of("${missing:-def}").is_empty());
    }

    #[test]
    fn hard_default_applies_only_when_unset() {
        assert_eq!(sub("ok ${missing-def}"), "ok def");
        assert_eq!(sub("ok ${BAR-def}"), "ok ");
        assert_eq!(sub("ok ${FOO-def}"), "ok first");
    }

    #[test]
    fn defaults_keep_operator_characters_literally() {
        assert_eq!(sub("ok ${BAR:-/non:-alphanumeric}"), "ok /non:-alphanumeric");
        assert_eq!(sub("${missing-myerror?msg}"), "myerror?msg");
        assert_eq!(sub("${missing:-a:b=c,d}"), "a:b=c,d");
        assert_eq!(sub("${missing:-with spaces}"), "with spaces");
    }

    #[test]
    fn soft_alternative_applies_when_set_and_not_empty() {
        assert_eq!(sub("${FOO:+alt}"), "alt");
        assert_eq!(sub("${BAR:+alt}"), "");
        assert_eq!(sub("${missing:+alt}"), "");
        // No warning for an unset variable behind `+`.
        assert!(unset_of("${missing:+alt}").is_empty());
    }

    #[test]
    fn hard_alternative_applies_when_set() {
        assert_eq!(sub("${FOO+alt}"), "alt");
        assert_eq!(sub("${BAR+alt}"), "alt");
        assert_eq!(sub("${missing+alt}"), "");
    }

    #[test]
    fn required_when_set_gives_the_value() {
        assert_eq!(sub("ok ${FOO:?err}"), "ok first");
        assert_eq!(sub("ok ${FOO?err}"), "ok first");
        // `?` accepts an empty value, `:?` does not.
        assert_eq!(sub("ok ${BAR?err}"), "ok ");
        assert_eq!(sub("${FOO?bar-baz}"), "first");
    }

    #[test]
    fn required_errors() {
        let cases = [
            ("not ok ${UNSET_VAR:?Mandatory Variable Unset}", "UNSET_VAR", "Mandatory Variable Unset"),
            ("not ok ${BAR:?Mandatory Variable Empty}", "BAR", "Mandatory Variable Empty"),
            ("not ok ${UNSET_VAR:?}", "UNSET_VAR", ""),
            ("not ok ${UNSET_VAR?Mandatory Variable Unset}", "UNSET_VAR", "Mandatory Variable Unset"),
            ("not ok ${UNSET_VAR?}", "UNSET_VAR", ""),
            ("${UNSET_VAR?bar-baz}", "UNSET_VAR", "bar-baz"),
        ];
        for (t, var, message) in cases {
            assert_eq!(err(t), SubstError::Required { var: var.into(), message: message.into() }, "{t}");
        }
        assert_eq!(err("${X:?must be set}").to_string(), "required variable X is missing a value: must be set");
        assert_eq!(err("${X?}").to_string(), "required variable X is missing a value");
    }

    #[test]
    fn required_message_is_interpolated() {
        for t in ["not ok ${UNSET_VAR:?Mandatory Variable ${FOO}}", "not ok ${UNSET_VAR?Mandatory Variable ${FOO}}"] {
            assert_eq!(
                err(t),
                SubstError::Required { var: "UNSET_VAR".into(), message: "Mandatory Variable first".into() }
            );
        }
    }

    #[test]
    fn nested_defaults() {
        assert_eq!(sub("ok ${UNSET_VAR-$FOO}"), "ok first");
        assert_eq!(sub("ok ${UNSET_VAR-${FOO}}"), "ok first");
        assert_eq!(sub("ok ${UNSET_VAR-${FOO} ${FOO}}"), "ok first first");
        assert_eq!(sub("ok ${BAR:-$FOO}"), "ok first");
        assert_eq!(sub("ok ${BAR:-${FOO}}"), "ok first");
        assert_eq!(sub("ok ${BAR:-${FOO} ${FOO}}"), "ok first first");
        assert_eq!(sub("${A:-${B:-x}}"), "x");
        assert_eq!(sub("${A:-${B:-${FOO}}}"), "first");
        assert_eq!(sub("${FOO:+[${NUM}]}"), "[42]");
        assert_eq!(sub("${A:-${B:-x}}-${NUM}"), "x-42");
        assert_eq!(sub("${A:-$$}"), "$");
    }

    #[test]
    fn several_references_on_one_line() {
        assert_eq!(sub("${A:-x} and ${B:-y}"), "x and y");
        assert_eq!(sub("${A:-x}/${FOO}/${B-z}/$NUM"), "x/first/z/42");
        assert_eq!(unset_of("${A:-x} ${B} $C"), vec!["B", "C"]);
    }

    #[test]
    fn defaults_are_evaluated_only_when_used() {
        // The default of a set variable is neither checked nor reported.
        assert_eq!(sub("${FOO:-${UNSET}}"), "first");
        assert!(unset_of("${FOO:-${UNSET}}").is_empty());
        assert_eq!(sub("${FOO:-${UNSET?boom}}"), "first");
        assert_eq!(sub("${missing:+${UNSET?boom}}"), "");
        // …but a used one is.
        assert_eq!(unset_of("${missing:-${UNSET}}"), vec!["UNSET"]);
        assert!(matches!(err("${missing:-${UNSET?boom}}"), SubstError::Required { var, .. } if var == "UNSET"));
    }

    #[test]
    fn argument_ends_at_the_balancing_brace() {
        // An unbalanced extra `}` after the reference is literal text.
        assert_eq!(sub("${A:-x}}"), "x}");
        assert_eq!(sub("${A:-x} }"), "x }");
        // Braces inside the default: `{` hides the next character, so `{}` does not count as a pair and the
        // reference runs to the last `}` on the line, as in compose-go.
        assert_eq!(sub("${A:-{}}"), "{}");
        assert_eq!(sub("${A:-{a}}"), "{a}");
        // A newline ends the search: the `}` must be on the `${` line.
        assert!(is_syntax("${A:-x\n}"));
        assert_eq!(sub("${A:-x}\n}"), "x\n}");
    }

    #[test]
    fn invalid_syntax_is_an_error() {
        for t in ["${", "$}", "${}", "${ }", "${ foo}", "${foo }", "${foo!}", "${FOO", "${FOO:-x", "${1}", "${FOO:x}"] {
            assert!(is_syntax(t), "{t:?} should be invalid");
        }
    }

    #[test]
    fn a_dollar_not_followed_by_a_name_is_an_error() {
        for t in ["$", "cost: 5$", "$ ", "echo $1", "$-", "$.x", "a$é"] {
            assert!(is_syntax(t), "{t:?} should be invalid");
        }
        let e = err("echo $1");
        assert_eq!(
            e,
            SubstError::Syntax {
                template: "echo $1".into(),
                reason: "`$` followed by '1' is not a variable reference".into()
            }
        );
        assert!(e.to_string().starts_with("invalid interpolation format for \"echo $1\""));
    }

    #[test]
    fn errors_in_used_defaults_propagate() {
        assert!(is_syntax("${missing:-$}"));
        assert!(is_syntax("${missing:-${}}"));
        // The template of the error is the whole string.
        match err("x ${missing:-$1}") {
            SubstError::Syntax { template, .. } => assert_eq!(template, "x ${missing:-$1}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn case_folded_name_letters() {
        // Go's case-insensitive `[a-z]` also matches U+017F and U+212A.
        let l = |n: &str| (n == "\u{17F}").then(|| "s".to_string());
        assert_eq!(substitute("$\u{17F}!", &l).map(|r| r.0), Ok("s!".into()));
    }

    #[test]
    fn deep_nesting_is_bounded() {
        let deep = format!("{}x{}", "${A:-".repeat(10_000), "}".repeat(10_000));
        assert!(is_syntax(&deep));
        let unclosed = "${A:-".repeat(100_000) + "}";
        assert!(is_syntax(&unclosed));
        let ok = format!("{}x{}", "${A:-".repeat(MAX_DEPTH), "}".repeat(MAX_DEPTH));
        assert_eq!(sub(&ok), "x");
    }

    #[test]
    fn long_lines_are_linear() {
        let many = "${A-x}".repeat(200_000);
        assert_eq!(sub(&many), "x".repeat(200_000));
        let many = "${FOO:+${NUM}}-".repeat(100_000);
        assert_eq!(sub(&many), "42-".repeat(100_000));
    }

    // ---- the tree ----

    fn span(line: usize) -> Span {
        Span::new(Some(Arc::from(Path::new("compose.yaml"))), line, 5)
    }

    fn map(entries: Vec<(&str, Node)>, line: usize) -> Node {
        let mut m = Node::map(span(line));
        if let Some(mm) = m.as_map_mut() {
            for (k, v) in entries {
                mm.insert(k.into(), Entry { key_span: span(line), value: v });
            }
        }
        m
    }

    fn s(text: &str, line: usize) -> Node {
        Node::string(text, span(line))
    }

    #[test]
    fn tree_values_are_interpolated_keys_are_not() {
        let mut tree = map(
            vec![(
                "services",
                map(
                    vec![(
                        "$FOO",
                        map(
                            vec![
                                ("image", s("busybox:${NUM}", 4)),
                                ("command", Node::new(Value::Seq(vec![s("echo", 5), s("$$FOO $FOO", 6)]), span(5))),
                                ("ports", Node::new(Value::Int(80), span(7))),
                                ("x-null", Node::new(Value::Null, span(8))),
                            ],
                            3,
                        ),
                    )],
                    2,
                ),
            )],
            1,
        );
        let mut warnings = Vec::new();
        assert_eq!(interpolate(&mut tree, &env, &mut warnings), Ok(()));
        assert!(warnings.is_empty());
        let svc = tree.get("services").and_then(|s| s.get("$FOO"));
        assert!(svc.is_some(), "keys are left alone");
        let svc = svc.cloned().unwrap_or_else(|| Node::map(Span::default()));
        assert_eq!(svc.get("image").and_then(Node::as_str), Some("busybox:42"));
        let cmd: Vec<&str> =
            svc.get("command").and_then(Node::as_seq).unwrap_or_default().iter().filter_map(Node::as_str).collect();
        assert_eq!(cmd, vec!["echo", "$FOO first"]);
        assert_eq!(svc.get("ports").map(|n| &n.value), Some(&Value::Int(80)));
    }

    #[test]
    fn warnings_are_collected_at_each_value() {
        let mut tree = map(vec![("a", s("${U1} $U1 ${U2}", 2)), ("b", s("${U1:-ok}", 3)), ("c", s("$U1", 4))], 1);
        let mut warnings = Vec::new();
        assert_eq!(interpolate(&mut tree, &env, &mut warnings), Ok(()));
        let got: Vec<(usize, &str)> = warnings.iter().map(|w| (w.span.line, w.message.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (2, "the \"U1\" variable is not set, defaulting to a blank string"),
                (2, "the \"U2\" variable is not set, defaulting to a blank string"),
                (4, "the \"U1\" variable is not set, defaulting to a blank string"),
            ]
        );
        assert_eq!(tree.get("a").and_then(Node::as_str), Some("  "));
    }

    #[test]
    fn all_errors_are_reported_together_with_their_spans() {
        let mut tree = map(
            vec![(
                "services",
                map(
                    vec![(
                        "web",
                        map(
                            vec![
                                ("image", s("${IMAGE:?set IMAGE}", 3)),
                                ("command", Node::new(Value::Seq(vec![s("ok", 4), s("echo $1", 5)]), span(4))),
                                ("user", s("${UNSET}", 6)),
                                ("working_dir", s("${}", 7)),
                            ],
                            2,
                        ),
                    )],
                    2,
                ),
            )],
            1,
        );
        let mut warnings = Vec::new();
        let errors = match interpolate(&mut tree, &env, &mut warnings) {
            Ok(()) => panic!("should fail"),
            Err(e) => e,
        };
        let got: Vec<(usize, &str)> = errors.iter().map(|d| (d.span.line, d.message.as_str())).collect();
        assert_eq!(got.len(), 3, "{got:?}");
        assert_eq!(
            got[0],
            (3, "error while interpolating services.web.image: required variable IMAGE is missing a value: set IMAGE")
        );
        assert_eq!(got[1].0, 5);
        assert!(got[1].1.starts_with("invalid interpolation format for services.web.command[1]:"), "{}", got[1].1);
        assert!(got[1].1.ends_with("in \"echo $1\""), "{}", got[1].1);
        assert_eq!(got[2].0, 7);
        assert!(got[2].1.starts_with("invalid interpolation format for services.web.working_dir:"));
        assert!(errors.iter().all(|d| d.span.file.is_some()));
        assert_eq!(errors[1].hint.as_deref(), Some("you may need to escape any $ with another $"));
        // The values that were fine are still interpolated and warned about.
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].span.line, 6);
    }

    #[test]
    fn a_lone_string_root() {
        let mut node = s("$FOO", 1);
        let mut warnings = Vec::new();
        assert_eq!(interpolate(&mut node, &env, &mut warnings), Ok(()));
        assert_eq!(node.as_str(), Some("first"));
        let mut node = s("${X?}", 1);
        let errs = interpolate(&mut node, &env, &mut warnings).err().unwrap_or_default();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].message.contains("the value"));
    }

    #[test]
    fn lookup_map_works() {
        let vars: HashMap<&str, &str> = [("A", "1")].into_iter().collect();
        let l = |k: &str| vars.get(k).map(|v| v.to_string());
        assert_eq!(substitute("${A}${B:-2}", &l).map(|r| r.0), Ok("12".into()));
    }
}
