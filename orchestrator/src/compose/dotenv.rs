//! `.env` files, in the syntax Docker Compose reads them with.
//!
//! Hand-written parsers: no crate reads compose-go's dotenv dialect (a fork of joho/godotenv) or docker's
//! `--env-file` format exactly, so both are reproduced here, statement by statement:
//!
//! [`parse`] (compose-go `dotenv/parser.go`, v2):
//! - blank lines and lines whose first non-blank character is `#` are skipped; a UTF-8 BOM is dropped;
//! - `export NAME=…` is `NAME=…`; `NAME: value` (YAML style) is `NAME=value`; blanks around `=` are dropped;
//! - a name is letters, digits and `_ . - [ ]`; blanks inside it are skipped while scanning but a name that ends up
//!   containing a space is an error ("key cannot contain a space"); `=value` sets the empty name, as compose-go does;
//! - a bare `NAME` line takes NAME's value from the lookup, and is left out when the lookup has none;
//! - unquoted values run to the end of the line, lose a ` #…` comment (a `#` after a space) and trailing blanks,
//!   and are interpolated;
//! - `'…'` values are literal, except that `\'` is a `'`; `"…"` values understand `\"`, the echo escapes `\a \b \f
//!   \n \r \t \v \\`, octal `\0nnn` and `\$` (a literal `$`), and are then interpolated. Both may span lines; whatever
//!   follows the closing quote on its line is read as the next statement (so `# comments` there are fine);
//! - interpolation follows [`interpolate`](super::interpolate), looking a name up first in the lookup (the process
//!   environment, earlier files), then in the lines above (compose-go gives the lookup precedence). The file's own
//!   value for a name is kept even when the lookup has another one.
//!
//! One deliberate difference: a bare `NAME` on the last line with no newline after it is read like any other bare
//! name. compose-go reads it as the value of the empty name (`"" = "NAME"`), an accident of its scanner.
//!
//! Names are checked with Rust's `char::is_alphabetic`, which, unlike Go's `unicode.IsLetter`, also accepts
//! combining vowel signs and circled letters; no real file depends on the difference.
//!
//! [`parse_raw`] (`env_file` with `format: raw`, docker's `--env-file` reader): `NAME=value` lines taken literally.

use std::path::Path;
use std::sync::Arc;

use indexmap::IndexMap;

use super::error::{Diagnostic, Span};
use super::interpolate::{Lookup, SubstError, substitute};

const BOM: char = '\u{FEFF}';

/// Parse a .env file in compose-go's dotenv syntax. Variables from earlier lines and from `lookup` are
/// substituted in unquoted and double-quoted values (not single-quoted). A bare `VAR` line (no `=`) takes
/// VAR's value from `lookup` and is omitted when lookup has none. Returns entries in file order.
pub fn parse(text: &str, file: &Path, lookup: Lookup) -> Result<IndexMap<String, String>, Diagnostic> {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let mut parser = Parser { text, file: Arc::from(file), out: IndexMap::new() };
    let mut at = 0;
    while let Some(start) = parser.statement_start(at) {
        at = parser.statement(start, lookup)?;
    }
    Ok(parser.out)
}

/// `env_file` with `format: raw`: each line `KEY=VALUE` taken literally (no quotes processing, no substitution),
/// blank lines and `#` comment lines skipped. A bare `KEY` line is left out (see [`parse_raw_with_lookup`]).
pub fn parse_raw(text: &str, file: &Path) -> Result<IndexMap<String, String>, Diagnostic> {
    parse_raw_with_lookup(text, file, &|_| None)
}

/// [`parse_raw`] as docker reads it (`docker run --env-file`): leading blanks are dropped, the value is everything
/// after the first `=` (trailing blanks and quotes included), a bare `KEY` line takes KEY's value from `lookup` and
/// is left out when it has none. A name that is empty or holds a space or tab is an error.
pub fn parse_raw_with_lookup(text: &str, file: &Path, lookup: Lookup) -> Result<IndexMap<String, String>, Diagnostic> {
    let file: Arc<Path> = Arc::from(file);
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let mut out = IndexMap::new();
    for (n, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let column = line.chars().count() - trimmed.chars().count() + 1;
        let span = Span::new(Some(file.clone()), n + 1, column);
        let (key, value) = match trimmed.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (trimmed, None),
        };
        if key.is_empty() {
            return Err(Diagnostic::new(span, "no variable name before `=`").with_hint("write the line as NAME=value"));
        }
        if key.contains([' ', '\t']) {
            return Err(Diagnostic::new(span, format!("variable name {key:?} contains whitespace"))
                .with_hint("a raw env file holds one NAME=value per line, taken literally"));
        }
        let value = match value {
            Some(v) => Some(v.to_owned()),
            None => lookup(key),
        };
        if let Some(v) = value {
            out.insert(key.to_owned(), v);
        }
    }
    Ok(out)
}

struct Parser<'t> {
    text: &'t str,
    file: Arc<Path>,
    out: IndexMap<String, String>,
}

/// compose-go's `isSpace`: blanks, but not the newline.
fn is_blank(c: char) -> bool {
    matches!(c, '\t' | '\u{B}' | '\u{C}' | '\r' | ' ' | '\u{85}' | '\u{A0}')
}

fn is_key_char(c: char) -> bool {
    matches!(c, '_' | '.' | '-' | '[' | ']') || c.is_alphabetic() || c.is_numeric()
}

impl Parser<'_> {
    fn rest(&self, at: usize) -> &str {
        self.text.get(at..).unwrap_or_default()
    }

    /// The first byte offset at or after `at` that is not blank and not blank space of a comment line.
    fn statement_start(&self, mut at: usize) -> Option<usize> {
        loop {
            let rest = self.rest(at);
            let skip = rest.find(|c: char| !c.is_whitespace())?;
            at += skip;
            if !self.rest(at).starts_with('#') {
                return Some(at);
            }
            at += self.rest(at).find('\n')?;
        }
    }

    fn skip_blanks(&self, at: usize) -> usize {
        let rest = self.rest(at);
        at + rest.find(|c: char| !is_blank(c)).unwrap_or(rest.len())
    }

    fn span(&self, at: usize) -> Span {
        let before = self.text.get(..at).unwrap_or(self.text);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = self.text.get(line_start..at).map_or(0, |s| s.chars().count()) + 1;
        Span::new(Some(self.file.clone()), line, column)
    }

    /// One statement starting at `start`; returns where the next one may start.
    fn statement(&mut self, start: usize, lookup: Lookup) -> Result<usize, Diagnostic> {
        let mut key_start = start;
        let rest = self.rest(start);
        if let Some(after) = rest.strip_prefix("export")
            && after.starts_with(['\t', '\n', '\u{C}', '\r', ' '])
        {
            key_start = self.skip_blanks(start + "export".len());
        }

        // The name runs to `=`, `:` or the end of the line (a bare name).
        let mut end = None;
        for (i, c) in self.rest(key_start).char_indices() {
            match c {
                '=' | ':' | '\n' => {
                    end = Some((key_start + i, c));
                    break;
                }
                c if is_blank(c) || is_key_char(c) => {}
                c => {
                    let line = self.rest(key_start);
                    let name = line.split(['=', ':', '\n']).next().unwrap_or_default().trim_end();
                    return Err(Diagnostic::new(
                        self.span(key_start + i),
                        format!("unexpected character {:?} in variable name {name:?}", c.to_string()),
                    )
                    .with_hint("names are made of letters, digits and `_ . - [ ]`; write lines as NAME=value"));
                }
            }
        }
        let (key_end, terminator) = end.unwrap_or((self.text.len(), '\n'));
        let key = self.text.get(key_start..key_end).unwrap_or_default().trim_end();
        if key.contains(' ') {
            return Err(Diagnostic::new(self.span(key_start), format!("key cannot contain a space: {key:?}"))
                .with_hint("write lines as NAME=value, with no space inside the name"));
        }
        let key = key.to_owned();
        let after = (key_end + 1).min(self.text.len());
        if terminator == '\n' {
            if let Some(value) = lookup(&key) {
                self.out.insert(key, value);
            }
            return Ok(after);
        }

        let value_start = self.skip_blanks(after);
        let (value, next) = match self.rest(value_start).chars().next() {
            Some(quote @ ('"' | '\'')) => self.quoted(&key, value_start, quote, lookup)?,
            _ => {
                let rest = self.rest(value_start);
                let line_len = rest.find('\n').unwrap_or(rest.len());
                let line = rest.get(..line_len).unwrap_or_default();
                let raw = line.split_once(" #").map_or(line, |(v, _)| v).trim_end();
                let value = self.expand(&key, raw, value_start, lookup)?;
                (value, (value_start + line_len + 1).min(self.text.len()))
            }
        };
        self.out.insert(key, value);
        Ok(next)
    }

    /// A quoted value whose opening quote is at `open`: the value and where the next statement may start.
    fn quoted(&self, key: &str, open: usize, quote: char, lookup: Lookup) -> Result<(String, usize), Diagnostic> {
        let body_start = open + quote.len_utf8();
        let mut raw = String::new();
        let mut escaped = false;
        let mut close = None;
        for (i, c) in self.rest(body_start).char_indices() {
            if escaped {
                escaped = false;
                // An escaped quote loses its backslash; any other escaped character keeps it.
                if c != quote {
                    raw.push('\\');
                }
                raw.push(c);
            } else if c == '\\' {
                escaped = true;
            } else if c == quote {
                close = Some(body_start + i);
                break;
            } else {
                raw.push(c);
            }
        }
        let Some(close) = close else {
            return Err(Diagnostic::new(self.span(open), format!("unterminated quoted value for {key:?}"))
                .with_hint(format!("close the value with {quote}, or escape the quote inside it with a backslash")));
        };
        let value = if quote == '"' { self.expand(key, &expand_escapes(&raw), open, lookup)? } else { raw };
        Ok((value, close + quote.len_utf8()))
    }

    /// Interpolate a value, looking names up in `lookup` first, then in the lines above.
    fn expand(&self, key: &str, value: &str, at: usize, lookup: Lookup) -> Result<String, Diagnostic> {
        if !value.contains('$') {
            return Ok(value.to_owned());
        }
        let scoped = |name: &str| lookup(name).or_else(|| self.out.get(name).cloned());
        match substitute(value, &scoped) {
            Ok((v, _unset)) => Ok(v),
            Err(SubstError::Syntax { reason, .. }) => Err(Diagnostic::new(
                self.span(at),
                format!("invalid interpolation format in the value of {key:?}: {reason}"),
            )
            .with_hint("you may need to escape any $ with another $, or single-quote the value")),
            Err(e @ SubstError::Required { .. }) => {
                Err(Diagnostic::new(self.span(at), format!("in the value of {key:?}: {e}")))
            }
        }
    }
}

/// The escapes of double-quoted values, as compose-go's `expandEscapes`: `\a \b \f \n \r \t \v \\ \"` as in C,
/// `\0` followed by up to three digits as an octal byte value (when that is valid; otherwise the `0` is dropped and
/// the rest kept), `\$` as `$$` (a literal `$` for the interpolation that follows), `\c` and anything else kept as is.
fn expand_escapes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let simple = match chars.peek() {
            Some('a') => Some('\u{7}'),
            Some('b') => Some('\u{8}'),
            Some('f') => Some('\u{C}'),
            Some('n') => Some('\n'),
            Some('r') => Some('\r'),
            Some('t') => Some('\t'),
            Some('v') => Some('\u{B}'),
            Some('\\') => Some('\\'),
            Some('"') => Some('"'),
            _ => None,
        };
        if let Some(e) = simple {
            chars.next();
            out.push(e);
            continue;
        }
        match chars.peek() {
            Some('$') => {
                chars.next();
                out.push_str("$$");
            }
            Some('0') => {
                chars.next();
                let mut digits = String::new();
                while digits.len() < 3
                    && let Some(d) = chars.next_if(char::is_ascii_digit)
                {
                    digits.push(d);
                }
                // Go's UnquoteChar on `\ddd`: exactly three octal digits, at most 0o377.
                let byte = (digits.len() == 3)
                    .then(|| u32::from_str_radix(&digits, 8).ok())
                    .flatten()
                    .filter(|v| *v <= 0o377)
                    .and_then(char::from_u32);
                match byte {
                    Some(b) => out.push(b),
                    None => {
                        out.push('\\');
                        out.push_str(&digits);
                    }
                }
            }
            // `\c` is in compose-go's pattern but not a Go escape: kept. So is any other character.
            _ => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str =
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/compose/compose-go-fixtures/dotenv/fixtures/");

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn os_env(name: &str) -> Option<String> {
        (name == "VAR_TO_BE_LOADED_FROM_OS_ENV").then(|| "SOME_RANDOM_VALUE".to_string())
    }

    fn read(name: &str) -> String {
        let path = format!("{FIXTURES}{name}");
        match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => panic!("fixture {path}: {e}"),
        }
    }

    fn fixture_with(name: &str, lookup: Lookup) -> Vec<(String, String)> {
        match parse(&read(name), Path::new(name), lookup) {
            Ok(m) => m.into_iter().collect(),
            Err(d) => panic!("{name}: {d}"),
        }
    }

    fn fixture(name: &str) -> Vec<(String, String)> {
        fixture_with(name, &no_env)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn one(line: &str) -> IndexMap<String, String> {
        match parse(line, Path::new(".env"), &no_env) {
            Ok(m) => m,
            Err(d) => panic!("{line:?}: {d}"),
        }
    }

    fn value(line: &str, key: &str) -> String {
        let m = one(line);
        match m.get(key) {
            Some(v) => v.clone(),
            None => panic!("{line:?}: no {key:?} in {m:?}"),
        }
    }

    fn error(text: &str) -> Diagnostic {
        match parse(text, Path::new(".env"), &no_env) {
            Ok(m) => panic!("{text:?} should fail, gave {m:?}"),
            Err(d) => d,
        }
    }

    // ---- the compose-go fixtures ----

    #[test]
    fn fixture_plain() {
        // compose-go's `Read` drops names starting with a digit; `ParseWithLookup`, which docker compose uses for
        // `.env` and `env_file`, keeps them.
        assert_eq!(
            fixture("plain.env"),
            pairs(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", "3"),
                ("OPTION_D", "4"),
                ("OPTION_E", "5"),
                ("456", "ABC"),
                ("OPTION_F", ""),
                ("OPTION_G", ""),
                ("OPTION_H", "my string"),
            ])
        );
    }

    #[test]
    fn fixture_utf8_bom() {
        assert!(read("utf8-bom.env").starts_with(BOM), "the fixture must keep its BOM");
        assert_eq!(
            fixture("utf8-bom.env"),
            pairs(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", "3"),
                ("OPTION_D", "4"),
                ("OPTION_E", "5"),
                ("456", "ABC"),
                ("OPTION_F", ""),
                ("OPTION_G", ""),
                ("OPTION_H", "my string"),
            ])
        );
    }

    #[test]
    fn fixture_quoted() {
        assert_eq!(
            fixture("quoted.env"),
            pairs(&[
                ("OPTION_A", "1"),
                ("OPTION_B", "2"),
                ("OPTION_C", ""),
                ("OPTION_D", "\\n"),
                ("OPTION_E", "1"),
                ("OPTION_F", "2"),
                ("OPTION_G", ""),
                ("OPTION_H", "\n"),
                ("OPTION_I", "echo 'asd'"),
                ("OPTION_J", "first line\nsecond line\nthird line\nand so on"),
                ("OPTION_K", "Let's go!"),
                ("OPTION_Z", "last value"),
            ])
        );
    }

    #[test]
    fn fixture_unquoted() {
        assert_eq!(
            fixture("unquoted.env"),
            pairs(&[
                ("OPTION_A", "some quoted phrase"),
                ("OPTION_B", "first one with an unquoted phrase"),
                ("OPTION_C", "then another one with an unquoted phrase"),
                ("OPTION_D", "then another one with an unquoted phrase special è char"),
                ("OPTION_E", "then another one quoted phrase"),
            ])
        );
    }

    #[test]
    fn fixture_equals() {
        assert_eq!(fixture("equals.env"), pairs(&[("OPTION_A", "postgres://localhost:5432/database?sslmode=disable")]));
    }

    #[test]
    fn fixture_exported() {
        assert_eq!(fixture("exported.env"), pairs(&[("OPTION_A", "2"), ("OPTION_B", "\\n")]));
    }

    #[test]
    fn fixture_special() {
        assert_eq!(
            fixture("special.env"),
            pairs(
                &[("VAR.WITH.DOTS", "dots"), ("VAR_WITH_UNDERSCORES", "underscores"), ("VAR-WITH-DASHES", "dashes"),]
            )
        );
    }

    #[test]
    fn fixture_substitutions() {
        let expected = [("OPTION_A", "1"), ("OPTION_B", "1"), ("OPTION_C", "1"), ("OPTION_D", "1_1"), ("OPTION_E", "")];
        assert_eq!(fixture("substitutions.env"), pairs(&expected));
        // The lookup (the process environment) wins over the lines above when substituting, but the file's own
        // value for OPTION_A stays (compose-go TestSubstitutionsWithEnvFilePrecedence).
        let five = |n: &str| (n == "OPTION_A").then(|| "5".to_string());
        assert_eq!(
            fixture_with("substitutions.env", &five),
            pairs(&[("OPTION_A", "1"), ("OPTION_B", "5"), ("OPTION_C", "5"), ("OPTION_D", "5_5"), ("OPTION_E", "")])
        );
    }

    #[test]
    fn fixture_substitutions_default() {
        let expected = [("OPTION_A", "1"), ("OPTION_B", "1"), ("OPTION_C", "1"), ("OPTION_D", "1_1"), ("OPTION_E", "")];
        assert_eq!(fixture("substitutions-default.env"), pairs(&expected));
        let five = |n: &str| (n == "OPTION_A").then(|| "5".to_string());
        assert_eq!(
            fixture_with("substitutions-default.env", &five),
            pairs(&[("OPTION_A", "5"), ("OPTION_B", "5"), ("OPTION_C", "5"), ("OPTION_D", "5_5"), ("OPTION_E", "")])
        );
    }

    #[test]
    fn fixture_inherited_multi_var() {
        assert_eq!(
            fixture_with("inherited-multi-var.env", &os_env),
            pairs(&[("foo", "bar"), ("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE"), ("bar", "baz")])
        );
        assert_eq!(fixture("inherited-multi-var.env"), pairs(&[("foo", "bar"), ("bar", "baz")]));
    }

    #[test]
    fn fixture_inherited_single_var() {
        assert_eq!(
            fixture_with("inherited-single-var.env", &os_env),
            pairs(&[("VAR_TO_BE_LOADED_FROM_OS_ENV", "SOME_RANDOM_VALUE")])
        );
        assert_eq!(fixture("inherited-single-var.env"), pairs(&[]));
    }

    #[test]
    fn fixture_inherited_not_found() {
        assert_eq!(fixture_with("inherited-not-found.env", &os_env), pairs(&[]));
    }

    #[test]
    fn fixture_invalid1() {
        let text = read("invalid1.env");
        let d = match parse(&text, Path::new("invalid1.env"), &no_env) {
            Ok(m) => panic!("should fail, gave {m:?}"),
            Err(d) => d,
        };
        assert_eq!((d.span.line, d.span.column), (7, 1));
        assert_eq!(d.span.file.as_deref(), Some(Path::new("invalid1.env")));
        assert!(d.message.starts_with("key cannot contain a space"), "{}", d.message);
        assert!(d.message.contains("INVALID LINE"), "{}", d.message);
        // Up to the bad line the file is fine, its multi-line double-quoted value included.
        let head: String = text.lines().take(6).map(|l| format!("{l}\n")).collect();
        assert_eq!(
            parse(&head, Path::new("invalid1.env"), &no_env).map(|m| m.into_iter().collect::<Vec<_>>()),
            Ok(pairs(&[("foo", "\n  a\n  multine\n  value\n")]))
        );
    }

    #[test]
    fn fixture_custom_format() {
        // compose-go registers a custom parser for this file in its tests (lines split at `:`). berth has no
        // pluggable formats: the default reading already takes `FOO:BAR` as the YAML-style `FOO: BAR`, which gives
        // the same result. As a raw file it holds no `=`, so only bare names, none of which the lookup knows.
        assert_eq!(fixture("custom.format"), pairs(&[("FOO", "BAR"), ("ZOT", "QIX")]));
        let raw = parse_raw(&read("custom.format"), Path::new("custom.format")).map(|m| m.len());
        assert_eq!(raw, Ok(0));
    }

    // ---- the syntax, line by line (compose-go TestParsing and friends) ----

    #[test]
    fn unquoted_values() {
        assert_eq!(value("FOO=bar", "FOO"), "bar");
        assert_eq!(value("FOO =bar", "FOO"), "bar");
        assert_eq!(value("FOO= bar", "FOO"), "bar");
        assert_eq!(value("FOO=bar ", "FOO"), "bar");
        assert_eq!(value("FOO=foobar=", "FOO"), "foobar=");
        assert_eq!(value("FOO=a\\tb", "FOO"), "a\\tb");
        assert_eq!(value("OPTION_A=1:B", "OPTION_A"), "1:B");
        assert_eq!(value("FOO.BAR=foobar", "FOO.BAR"), "foobar");
        assert_eq!(value("ARR[0]=x", "ARR[0]"), "x");
        assert_eq!(value("VAR=", "VAR"), "");
        assert_eq!(value("VAR=\nB=1", "VAR"), "");
    }

    #[test]
    fn inline_comments() {
        assert_eq!(value("FOO=bar # this is foo", "FOO"), "bar");
        assert_eq!(value("FOO=bar #this is foo", "FOO"), "bar");
        assert_eq!(value("FOO=bar #", "FOO"), "bar");
        assert_eq!(value("FOO=123#not-an-inline-comment", "FOO"), "123#not-an-inline-comment");
        assert_eq!(value("FOO=\"bar#baz\"", "FOO"), "bar#baz");
        assert_eq!(value("FOO=\"bar#baz\"#", "FOO"), "bar#baz");
        assert_eq!(value("FOO=\"bar#baz\" # comment", "FOO"), "bar#baz");
        assert_eq!(value("FOO='bar#baz' # comment", "FOO"), "bar#baz");
        assert_eq!(value("FOO=\"bar#baz#bang\" # comment", "FOO"), "bar#baz#bang");
        assert_eq!(value("FOO='ba#r'", "FOO"), "ba#r");
    }

    #[test]
    fn yaml_style() {
        assert_eq!(value("OPTION_A: 1", "OPTION_A"), "1");
        assert_eq!(value("OPTION_A: Foo=bar", "OPTION_A"), "Foo=bar");
    }

    #[test]
    fn export_prefix() {
        assert_eq!(value("export OPTION_A=2", "OPTION_A"), "2");
        assert_eq!(value("export OPTION_B='\\n'", "OPTION_B"), "\\n");
        assert_eq!(value("export exportFoo=2", "exportFoo"), "2");
        assert_eq!(value("exportFOO=2", "exportFOO"), "2");
        assert_eq!(value("export_FOO =2", "export_FOO"), "2");
        assert_eq!(value("export.FOO= 2", "export.FOO"), "2");
        assert_eq!(value("export\tOPTION_A=2", "OPTION_A"), "2");
        assert_eq!(value("  export OPTION_A=2", "OPTION_A"), "2");
        assert_eq!(value("\texport OPTION_A=2", "OPTION_A"), "2");
        assert_eq!(value("export OPTION_A=\"export A\"", "OPTION_A"), "export A");
        assert_eq!(value("export=1", "export"), "1");
    }

    #[test]
    fn quoted_values() {
        assert_eq!(value("FOO=\"bar\"", "FOO"), "bar");
        assert_eq!(value("FOO='bar'", "FOO"), "bar");
        assert_eq!(value("FOO=\"escaped\\\"bar\"", "FOO"), "escaped\"bar");
        assert_eq!(value("FOO=\"\\\"quoted\\\"\"", "FOO"), "\"quoted\"");
        assert_eq!(value("FOO=\"'d'\"", "FOO"), "'d'");
        assert_eq!(value("FOO='\"d\"'", "FOO"), "\"d\"");
        assert_eq!(value("FOO='it\\'s'", "FOO"), "it's");
        assert_eq!(value("FOO='a\\nb\\\\'", "FOO"), "a\\nb\\\\");
        assert_eq!(value("ONE=1\nTWO='2'\nTHREE = \"3\"", "THREE"), "3");
        assert_eq!(value("=\"value\"", ""), "value");
    }

    #[test]
    fn double_quote_escapes() {
        assert_eq!(value("FOO=\"bar\\nbaz\"", "FOO"), "bar\nbaz");
        assert_eq!(value("FOO=\"a\\tb\"", "FOO"), "a\tb");
        assert_eq!(value(r#"KEY="Z\aZ\bZ\fZ\nZ\rZ\tZ\vZ\\Z\0123Z""#, "KEY"), "Z\u{7}Z\u{8}Z\u{C}Z\nZ\rZ\tZ\u{B}Z\\ZSZ");
        assert_eq!(value(r#"FOO="bar\n\ b\az""#, "FOO"), "bar\n\\ b\u{7}z");
        assert_eq!(value(r#"FOO="bar\\\n\ b\az""#, "FOO"), "bar\\\n\\ b\u{7}z");
        assert_eq!(value(r#"FOO="bar\\r\ b\az""#, "FOO"), "bar\\r\\ b\u{7}z");
        assert_eq!(value(r#"FOO="bar\nbaz\\""#, "FOO"), "bar\nbaz\\");
        assert_eq!(value(r#"KEY="\0123""#, "KEY"), "S");
        assert_eq!(value(r#"KEY="\0351""#, "KEY"), "é");
        // Not XSI/POSIX escapes: kept.
        assert_eq!(value(r#"KEY="\x07""#, "KEY"), r"\x07");
        assert_eq!(value(r#"KEY="\u12e4""#, "KEY"), r"\u12e4");
        assert_eq!(value(r#"KEY="\U00101234""#, "KEY"), r"\U00101234");
        assert_eq!(value(r#"KEY="\c""#, "KEY"), r"\c");
        // `\0` with fewer than three digits, or an invalid octal value, loses its `0`.
        assert_eq!(value(r#"KEY="\0""#, "KEY"), "\\");
        assert_eq!(value(r#"KEY="\012x""#, "KEY"), "\\12x");
        assert_eq!(value(r#"KEY="\0999""#, "KEY"), "\\999");
        assert_eq!(value(r#"KEY="\0777""#, "KEY"), "\\777");
        // In single quotes nothing is an escape but `\'`.
        assert_eq!(value(r"KEY='\t\0123'", "KEY"), r"\t\0123");
    }

    #[test]
    fn multi_line_values() {
        let text = "TEST_URLS=\"stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443\"";
        assert_eq!(
            value(text, "TEST_URLS"),
            "stratum+tcp://stratum.antpool.com:3333\nstratum+tcp://stratum.antpool.com:443"
        );
        let m = one("A='x\ny'\nB=2");
        assert_eq!(m.get("A").map(String::as_str), Some("x\ny"));
        assert_eq!(m.get("B").map(String::as_str), Some("2"));
    }

    #[test]
    fn blank_lines_comments_and_crlf() {
        for text in ["\n", "\r\n", "\t\t ", "# Comment", "\t # comment", "", "#"] {
            assert!(one(text).is_empty(), "{text:?}");
        }
        let m = one("# head\r\n\r\nA=1\r\nB = \"two\"\r\n  # indented\r\nC='3'\r\nD\r\n");
        assert_eq!(m.into_iter().collect::<Vec<_>>(), pairs(&[("A", "1"), ("B", "two"), ("C", "3")]));
        assert_eq!(value(" KEY =value", "KEY"), "value");
        assert_eq!(value("   KEY=value", "KEY"), "value");
        assert_eq!(value("\tKEY=value", "KEY"), "value");
    }

    #[test]
    fn what_follows_a_closing_quote_is_the_next_statement() {
        // As in compose-go: `A="x"B=1` is A=x then B=1.
        let m = one("A=\"x\"B=1");
        assert_eq!(m.into_iter().collect::<Vec<_>>(), pairs(&[("A", "x"), ("B", "1")]));
    }

    #[test]
    fn later_lines_override_earlier_ones() {
        let m = one("A=1\nB=2\nA=3");
        assert_eq!(m.into_iter().collect::<Vec<_>>(), pairs(&[("A", "3"), ("B", "2")]));
    }

    #[test]
    fn bare_names_come_from_the_lookup() {
        let env = |n: &str| match n {
            "HOME" => Some("/home/me".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let m = parse("HOME\nEMPTY\nMISSING\nexport HOME\nLAST=1\nHOME", Path::new(".env"), &env);
        assert_eq!(
            m.map(|m| m.into_iter().collect::<Vec<_>>()),
            Ok(pairs(&[("HOME", "/home/me"), ("EMPTY", ""), ("LAST", "1")]))
        );
    }

    #[test]
    fn substitution() {
        assert_eq!(value("FOO=test\nBAR=$FOO", "BAR"), "test");
        assert_eq!(value("FOO=test\nBAR=${FOO}bar", "BAR"), "testbar");
        assert_eq!(value("BAR=$FOO", "BAR"), "");
        assert_eq!(value("FOO=test\nBAR=\"quote $FOO\"", "BAR"), "quote test");
        assert_eq!(value("BAR='quote $FOO'", "BAR"), "quote $FOO");
        assert_eq!(value(r#"FOO="foo\$BAR""#, "FOO"), "foo$BAR");
        assert_eq!(value(r#"FOO="foo\${BAR}""#, "FOO"), "foo${BAR}");
        assert_eq!(value("FOO=test\nBAR=\"foo\\${FOO} ${FOO}\"", "BAR"), "foo${FOO} test");
        assert_eq!(value("FOO=a$$b", "FOO"), "a$b");
        assert_eq!(value("A=${UNSET:-dflt}", "A"), "dflt");
        // Later lines are not visible to earlier ones.
        assert_eq!(value("A=$B\nB=1", "A"), "");
        let me = |n: &str| (n == "ME").then(|| "YES".to_string());
        assert_eq!(parse("TEST=$ME", Path::new(".env"), &me).map(|m| m.get("TEST").cloned()), Ok(Some("YES".into())));
    }

    #[test]
    fn substitution_errors_point_at_the_value() {
        let d = error("A=1\nPASSWORD=abc$1");
        assert_eq!((d.span.line, d.span.column), (2, 10));
        assert!(d.message.contains("invalid interpolation format"), "{}", d.message);
        assert!(d.message.contains("\"PASSWORD\""), "{}", d.message);
        assert!(!d.message.contains("abc"), "the value is not echoed: {}", d.message);
        let d = error("X=\"${NEED:?set NEED}\"");
        assert_eq!((d.span.line, d.span.column), (1, 3));
        assert!(d.message.contains("required variable NEED is missing a value: set NEED"), "{}", d.message);
        // Single quotes are not interpolated, so they cannot fail.
        assert_eq!(value("PASSWORD='abc$1'", "PASSWORD"), "abc$1");
    }

    #[test]
    fn bad_names_are_errors_with_positions() {
        let d = error("lol$wut");
        assert_eq!((d.span.line, d.span.column), (1, 4));
        assert_eq!(d.message, "unexpected character \"$\" in variable name \"lol$wut\"");
        let d = error("OK=1\n  BAD/NAME=secret");
        assert_eq!((d.span.line, d.span.column), (2, 6));
        assert!(!d.message.contains("secret"), "{}", d.message);
        let d = error("A=1\nFOO BAR=1");
        assert_eq!((d.span.line, d.span.column), (2, 1));
        assert!(d.message.starts_with("key cannot contain a space"));
    }

    #[test]
    fn unterminated_quotes_are_errors() {
        for text in [
            "KEY=\"",
            "KEY=\"value",
            "KEY=\"value\\\"",
            "KEY=\"value'",
            "KEY='",
            "KEY='value",
            "KEY='value\\'",
            "KEY='value\"",
        ] {
            let d = error(text);
            assert!(d.message.starts_with("unterminated quoted value"), "{text:?}: {}", d.message);
            assert_eq!((d.span.line, d.span.column), (1, 5));
        }
        let d = error("A=1\nB = 'open\nC=2");
        assert_eq!((d.span.line, d.span.column), (2, 5));
    }

    #[test]
    fn hostile_input_does_not_panic() {
        for text in [
            "=", ":", "export", "export ", "export\n", "\"", "'", "A=\"\\", "A='\\", "A=\"\\0", "é=è", "\u{FEFF}",
            "A=$", "[]=x",
        ] {
            let _ = parse(text, Path::new(".env"), &no_env);
            let _ = parse_raw(text, Path::new(".env"));
        }
        let long = "A=".to_string() + &"${B:-".repeat(50_000);
        assert!(parse(&long, Path::new(".env"), &no_env).is_err());
    }

    // ---- format: raw ----

    #[test]
    fn raw_lines_are_literal() {
        let text = "\u{FEFF}# comment\r\n\r\n  A=1\r\nQ=\"x\"\nS='y' # not a comment\nT=$HOME ${X:?}\nU=a=b\nV=\nW=  spaced  \n";
        let m = parse_raw(text, Path::new("raw.env")).map(|m| m.into_iter().collect::<Vec<_>>());
        assert_eq!(
            m,
            Ok(pairs(&[
                ("A", "1"),
                ("Q", "\"x\""),
                ("S", "'y' # not a comment"),
                ("T", "$HOME ${X:?}"),
                ("U", "a=b"),
                ("V", ""),
                ("W", "  spaced  "),
            ]))
        );
    }

    #[test]
    fn raw_bare_names() {
        let env = |n: &str| (n == "HOME").then(|| "/home/me".to_string());
        let m = parse_raw_with_lookup("HOME\nMISSING\nA:1\n", Path::new("raw.env"), &env);
        assert_eq!(m.map(|m| m.into_iter().collect::<Vec<_>>()), Ok(pairs(&[("HOME", "/home/me")])));
        assert_eq!(parse_raw("HOME\n", Path::new("raw.env")).map(|m| m.len()), Ok(0));
    }

    #[test]
    fn raw_bad_names() {
        let d = parse_raw("A=1\n  =x\n", Path::new("raw.env")).err();
        assert_eq!(d.map(|d| (d.span.line, d.span.column)), Some((2, 3)));
        let d = parse_raw("A B=1\n", Path::new("raw.env")).err();
        assert!(d.is_some_and(|d| d.message.contains("whitespace")));
    }
}
