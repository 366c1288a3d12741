//! Fuzzing of the loader's front end, run as a normal test: YAML parsing, interpolation and dotenv parsing.
//!
//! For a time budget it generates inputs and feeds them to `yaml::parse` → `interpolate::interpolate` (and
//! `Node::to_json`), to `dotenv::parse` and to `interpolate::substitute`. It checks only that nothing panics or
//! hangs and that every diagnostic that names a file also names a line (>= 1).
//!
//! Input families:
//! - `grammar`: compose-like YAML from a small random grammar (block and flow collections, anchors and aliases,
//!   merge keys, `!reset`/`!override`/unknown tags, quoted and block scalars, duplicate keys, deep nesting, alias
//!   bombs) with interpolation fragments sprinkled in keys and values;
//! - `fixture`: compose-go's fixture files (`shared/compose/compose-go-fixtures`) mutated (byte flips,
//!   truncation, deletion, duplication, insertion of YAML and interpolation tokens);
//! - `dotenv`: dotenv-like files from a small grammar;
//! - `bytes`: random bytes read as lossy UTF-8;
//! - `template`: raw strings for `substitute`.
//!
//! Knobs (environment):
//! - `BERTH_FUZZ_SECS` — time budget in seconds (default 3, so the normal suite stays fast);
//! - `BERTH_FUZZ_SEED` — the run's seed (decimal or `0x…`); printed at the start of every run;
//! - `BERTH_FUZZ_CASE` — run only this case number of that seed, printing its input (to reproduce a failure);
//! - `BERTH_FUZZ_TRACE=1` — print every case number before running it (for crashes that abort the process);
//!   `=2` also prints every YAML parse error;
//! - `BERTH_FUZZ_STALL_SECS` — one input running longer than this is reported as a hang (default 60).
//!
//! Every case is generated from `(seed, case number)` alone, so a failure prints the seed and case that reproduce it.

use std::collections::HashMap;
use std::error::Error;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use berth_orchestrator::compose::{Diagnostic, dotenv, interpolate, yaml};

/// Inputs longer than this (in bytes) are cut, at a character boundary.
const MAX_INPUT: usize = 128 * 1024;

/// Depth of the random structure (deep nesting is generated separately, without recursion).
const MAX_GEN_DEPTH: usize = 10;

const FIXTURES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/compose/compose-go-fixtures");

// ----- a small seeded PRNG (splitmix64) -----

#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (`n > 0`; modulo bias is irrelevant here).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    /// True with probability `1/n`.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }
    fn pick<'a, T: ?Sized>(&mut self, items: &'a [&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

fn case_rng(seed: u64, case: u64) -> Rng {
    let mut r = Rng(seed ^ case.wrapping_mul(0xD1B5_4A32_D192_ED03));
    r.next();
    r
}

// ----- vocabulary -----

/// Interpolation fragments, valid and not.
#[rustfmt::skip]
const FRAGS: &[&str] = &[
    "$", "$$", "${", "}", "{", "$A", "${A}", "${B}", "${UNSET}", "$UNSET", "${A:-x}", "${UNSET:-def}", "${A-x}",
    "${UNSET-x}", "${A:?err}", "${UNSET:?required ${A}}", "${UNSET?}", "${B:?empty}", "${A:+alt}", "${A+alt}",
    "${UNSET:+alt}", "${A:-${B:?x}}", "${UNSET:-${UNSET2:?x}}", "${A+", "${A:-", "${A:-}}", "${A:-{}", "${{A}}",
    "${ A}", "${A }", "${A!}", "${}", "$1", "$-", "$ ", "${é}", "$é", "${ſ}", "$\u{212A}", "${_}", "$_x9",
    "${A:-${B:-${C:-${D}}}}", "$$$", "$$${A}", "\\$", "${A:?}", "${UNSET:?}", "${A:-$}", "${UNSET:-$}", "${LONG}",
    "${UNI}", "${A:-a}b}", "${A:-\n}", "é", "日本語", "😀", "\u{200b}", "\u{feff}", "\u{0}", "\r",
];

/// Fragments that keep a plain block scalar valid most of the time.
#[rustfmt::skip]
const SAFE_FRAGS: &[&str] = &[
    "$", "$$", "$A", "${A}", "${B}", "${UNSET}", "${A:-x}", "${UNSET:-def}", "${UNSET-x}", "${UNSET:?required}",
    "${B:?empty}", "${A:+alt}", "${A:-${B:?x}}", "${UNSET:-${UNSET2:?x}}", "${A+", "${ A}", "${}", "$1", "${é}",
    "${ſ}", "${A:-${B:-${C:-${D}}}}", "$$${A}", "${UNI}", "é", "日本語", "😀",
];

/// YAML tokens for insertion into mutated files.
#[rustfmt::skip]
const YAML_TOKENS: &[&str] = &[
    ":", ": ", "- ", "-", "&a ", "*a", "&b ", "*b", "*nope", "<<: *a", "<<: [*a, *b]", "<<:", "!reset ", "!override ",
    "!custom ", "!!str ", "!!int ", "!!map ", "!!seq ", "!!binary ", "!", "{", "}", "[", "]", ",", "\n", "\r\n", "\t",
    "  ", "    ", "'", "\"", "|", "|-", ">", ">+", "#", "? ", "---", "...", "%YAML 1.2\n", "%TAG ! tag:x,2000:\n",
    "\\", "\\u00", "null", "~", "true", "0x", "0o", "1e", ".inf", "\u{feff}", "\u{85}", "\u{2028}",
];

#[rustfmt::skip]
const WORDS: &[&str] = &[
    "web", "db", "redis", "app", "worker", "nginx:1.25", "postgres", "alpine", "busybox", "x", "foo", "bar baz",
    "localhost", "/data", "./src", "../up", "~/home", "8080", "80", "5432", "echo hello", "sh -c 'exit 0'", "10s",
    "1m30s", "512m", "0.5", "none", "host", "bridge", "service_healthy", "service_started", "always",
    "unless-stopped", "C:\\dir", "a=b", "KEY=value", "tcp", "udp",
];

#[rustfmt::skip]
const SCALARS: &[&str] = &[
    "0", "-1", "007", "0755", "0o17", "0x1F", "0b101", "1_000", "1e3", "-2.5e-3", ".5", "+12", ".inf", "-.Inf",
    ".NaN", "true", "false", "True", "FALSE", "yes", "no", "on", "off", "y", "n", "null", "Null", "~", "",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "9223372036854775807", "9223372036854775808",
    "-9223372036854775809", "1.7976931348623157e309", "0x_FF", "1__0", "12:30:00", "=", "<<",
];

#[rustfmt::skip]
const KEYS: &[&str] = &[
    "image", "command", "entrypoint", "environment", "env_file", "ports", "expose", "volumes", "depends_on",
    "healthcheck", "test", "interval", "retries", "networks", "aliases", "labels", "build", "context", "dockerfile",
    "args", "deploy", "resources", "limits", "cpus", "memory", "restart", "profiles", "extends", "service", "file",
    "container_name", "hostname", "user", "working_dir", "x-custom", "condition", "required", "driver", "external",
    "name", "target", "published", "protocol", "mode", "source", "type", "read_only", "ulimits", "nofile", "soft",
    "hard", "secrets", "configs", "include", "path", "80", "true", "null", "a b", "ключ", "键", "${A}", "$$", "x-${A}",
];

const TOP_KEYS: &[&str] =
    &["services", "networks", "volumes", "configs", "secrets", "include", "name", "version", "x-common", "models"];

#[rustfmt::skip]
const TAGS: &[&str] = &[
    "!reset ", "!override ", "!custom ", "!!str ", "!!int ", "!!float ", "!!bool ", "!!null ", "!!map ", "!!seq ",
    "!!merge ", "!!timestamp ", "! ", "!<tag:yaml.org,2002:str> ", "!<!reset> ", "!e!x ",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Scalar,
    Map,
    Seq,
}

const ANCHORS: &[&str] = &["a", "b", "base", "common", "x1", "日本", "a-b_c"];

// ----- the YAML grammar -----

struct YamlGen<'r> {
    rng: &'r mut Rng,
    out: String,
    /// Anchors defined so far, with the kind of node each names.
    anchors: Vec<(String, Kind)>,
    /// Whether this document gets syntax noise (stray indentation, unclosed quotes and brackets…); clean documents
    /// parse more often, and so reach interpolation and merge keys.
    noisy: bool,
}

impl YamlGen<'_> {
    fn new(rng: &mut Rng) -> YamlGen<'_> {
        let noisy = rng.one_in(3);
        YamlGen { rng, out: String::new(), anchors: Vec::new(), noisy }
    }

    /// Whether to nest one level more: always near the top, less and less often further down, never past
    /// [`MAX_GEN_DEPTH`] (so that documents stay a few kilobytes).
    fn deeper(&mut self, depth: usize) -> bool {
        depth < 2 || (depth < MAX_GEN_DEPTH && self.rng.below(MAX_GEN_DEPTH) >= 2 * depth)
    }

    /// True with probability `1/n` in a noisy document, never in a clean one.
    fn noise(&mut self, n: usize) -> bool {
        self.noisy && self.rng.one_in(n)
    }

    fn ind(&mut self, indent: usize) {
        // Mostly right; sometimes off by one or a tab, to reach the indentation errors.
        if self.noise(100) {
            self.out.push('\t');
        }
        let indent = if self.noise(80) { indent + 1 } else { indent };
        self.out.extend(std::iter::repeat_n(' ', indent));
    }

    fn frag(&mut self, safe: bool) -> &'static str {
        if safe { self.rng.pick(SAFE_FRAGS) } else { self.rng.pick(FRAGS) }
    }

    /// A nested default deeper than the interpolation limit, sometimes.
    fn deep_default(&mut self) -> String {
        let n = self.rng.pick(&[&3usize, &3, &10, &63, &64, &65, &100, &1000][..]);
        let mut s = String::new();
        for i in 0..*n {
            let _ = write!(s, "${{V{i}:-");
        }
        s.push_str("end");
        s.extend(std::iter::repeat_n('}', *n));
        s
    }

    /// Text of a plain-ish value with interpolation fragments.
    fn text(&mut self, safe: bool) -> String {
        let mut s = String::new();
        for _ in 0..1 + self.rng.below(4) {
            match self.rng.below(6) {
                0 | 1 => s.push_str(self.rng.pick(WORDS)),
                2..=4 => {
                    let f = self.frag(safe);
                    s.push_str(f);
                }
                _ => {
                    if self.rng.one_in(20) {
                        let d = self.deep_default();
                        s.push_str(&d);
                    } else {
                        s.push_str(self.rng.pick(SCALARS));
                    }
                }
            }
        }
        s
    }

    fn double_quoted(&mut self, raw: &str) -> String {
        let mut s = String::from("\"");
        for c in raw.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '\n' => s.push_str("\\n"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(s, "\\x{:02x}", c as u32);
                }
                '\u{7f}' | '\u{85}' | '\u{feff}' | '\u{2028}' | '\u{2029}' if !self.noisy => {
                    let _ = write!(s, "\\u{:04x}", c as u32);
                }
                c => s.push(c),
            }
            if self.noise(30) {
                let esc = [
                    "\\n",
                    "\\t",
                    "\\u00e9",
                    "\\x41",
                    "\\U0001F600",
                    "\\N",
                    "\\_",
                    "\\L",
                    "\\P",
                    "\\ ",
                    "\\0",
                    "\\q",
                    "\\u",
                    "\\uD800",
                    "\\\n  ",
                    "\u{feff}",
                    "\u{0}",
                ];
                s.push_str(self.rng.pick(&esc));
            }
        }
        if !self.noise(60) {
            s.push('"');
        }
        s
    }

    /// Without the characters YAML does not allow raw in a document (in clean documents).
    fn printable(&self, raw: &str) -> String {
        if self.noisy {
            return raw.replace('\n', " ");
        }
        raw.chars()
            .filter(|&c| c == '\t' || !(c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}')))
            .collect()
    }

    fn single_quoted(&mut self, raw: &str) -> String {
        let mut s = format!("'{}", self.printable(raw).replace('\'', "''"));
        if !self.noise(60) {
            s.push('\'');
        }
        s
    }

    /// A scalar as it appears inline after `key: ` or `- ` (block) or inside a flow collection.
    fn scalar(&mut self, flow: bool) -> String {
        let s = match self.rng.below(10) {
            0..=3 => {
                let mut t = self.text(true);
                if flow {
                    t.retain(|c| !matches!(c, ',' | '[' | ']' | '{' | '}'));
                }
                if t.starts_with(['-', '?', ':', '&', '*', '!', '|', '>', '\'', '"', '%', '@', '`', '#']) {
                    t.insert(0, 'x');
                }
                let t = t.replace(": ", ":").replace(" #", "#");
                if t.is_empty() { "x".to_owned() } else { t }
            }
            4 | 5 => {
                let raw = self.text(false);
                self.double_quoted(&raw)
            }
            8 if self.noisy => {
                // Anything at all: often invalid.
                let f = self.frag(false);
                let w = self.rng.pick(WORDS);
                format!("{f}{w}")
            }
            6 | 8 => {
                let raw = self.text(false);
                self.single_quoted(&raw)
            }
            7 => self.rng.pick(SCALARS).to_owned(),
            _ => self.alias(None),
        };
        if s.is_empty() && (flow || !self.noisy) { "\"\"".to_owned() } else { s }
    }

    /// An alias to an anchor defined earlier (of the kind asked, if any), or in noisy documents sometimes to an
    /// unknown one.
    fn alias(&mut self, want: Option<Kind>) -> String {
        let known: Vec<String> =
            self.anchors.iter().filter(|(_, k)| want.is_none_or(|w| *k == w)).map(|(n, _)| n.clone()).collect();
        if known.is_empty() || self.noise(5) {
            if self.noisy {
                return format!("*{}", self.rng.pick(ANCHORS));
            }
            return match want {
                Some(Kind::Map) => "{x-merged: \"${A}\"}".to_owned(),
                Some(Kind::Seq) => "[\"${A}\"]".to_owned(),
                _ => "\"${A}\"".to_owned(),
            };
        }
        format!("*{}", known[self.rng.below(known.len())])
    }

    /// A mapping key. Clean documents get no merge key `<<` from here (the callers that can hold one write it), no
    /// empty key and none longer than YAML's 1024-character limit for implicit keys.
    fn key(&mut self) -> String {
        let k = self.any_key();
        if !self.noisy && (k == "<<" || k.is_empty() || k.len() > 1000) {
            return self.rng.pick(KEYS).to_owned();
        }
        k
    }

    fn any_key(&mut self) -> String {
        match self.rng.below(12) {
            0..=6 => self.rng.pick(KEYS).to_owned(),
            7 => {
                let k = self.scalar(false);
                match k.strip_prefix('*') {
                    // An alias as a key needs a space before the colon; in clean documents, no alias keys.
                    Some(name) if !self.noisy => name.to_owned(),
                    Some(_) => format!("{k} "),
                    None => k,
                }
            }
            8 => {
                let k = self.rng.pick(KEYS).to_owned();
                self.double_quoted(&k)
            }
            9 => "<<".to_owned(),
            10 => format!("{}{}", self.rng.pick(KEYS), self.frag(true)),
            _ => self.rng.pick(SCALARS).to_owned(),
        }
    }

    /// Node properties (anchor, tag) before a value of this kind, or nothing. The anchor, if any, is returned too:
    /// the caller defines it (see [`Self::define`]) once the value is written, so that aliases in clean documents
    /// only refer to complete nodes.
    fn props(&mut self, kind: Kind) -> (String, Option<String>) {
        let mut p = String::new();
        let mut anchor = None;
        if self.rng.one_in(10) {
            let name = self.rng.pick(ANCHORS).to_owned();
            let _ = write!(p, "&{name} ");
            if !self.noisy {
                // Redefined: until its node is complete, an alias would refer to the open node.
                self.anchors.retain(|(n, _)| *n != name);
            }
            if self.noise(4) {
                // Defined early: aliases inside the node itself become possible.
                self.anchors.push((name, kind));
            } else {
                anchor = Some(name);
            }
        }
        if self.rng.one_in(10) {
            let tags: &[&str] = match kind {
                _ if self.noisy => TAGS,
                Kind::Scalar => &["!reset ", "!override ", "!!str ", "! "],
                Kind::Map => &["!reset ", "!override ", "!!map "],
                Kind::Seq => &["!reset ", "!override ", "!!seq "],
            };
            p.push_str(self.rng.pick(tags));
        }
        (p, anchor)
    }

    fn define(&mut self, anchor: Option<String>, kind: Kind) {
        // When the node's content defined the same anchor again, that later definition is the one aliases see.
        if let Some(name) = anchor
            && !self.anchors.iter().any(|(n, _)| *n == name)
        {
            self.anchors.push((name, kind));
        }
    }

    /// A key that is not in `keys` yet (in clean documents), else any key.
    fn fresh_key(&mut self, keys: &[String]) -> String {
        let bare = |k: &str| match k.trim_matches(['"', '\'']) {
            "null" | "Null" | "NULL" | "~" => String::new(),
            k => k.to_owned(),
        };
        for _ in 0..8 {
            let k = self.key();
            if self.noisy || !keys.iter().any(|o| bare(o) == bare(&k)) {
                return k;
            }
        }
        format!("k{}", keys.len())
    }

    fn flow(&mut self, depth: usize) -> String {
        let map = self.rng.one_in(2);
        self.flow_of(if map { Kind::Map } else { Kind::Seq }, depth)
    }

    fn flow_of(&mut self, kind: Kind, depth: usize) -> String {
        let mut s = String::new();
        let map = kind == Kind::Map;
        s.push(if map { '{' } else { '[' });
        let n = self.rng.below(5);
        let mut keys = Vec::new();
        for i in 0..n {
            if i > 0 {
                s.push_str(if self.noise(20) { " " } else { ", " });
            }
            let mut merge = false;
            if map {
                if self.rng.one_in(20) {
                    s.push_str("? ");
                }
                let mut k = self.fresh_key(&keys);
                k.retain(|c| !matches!(c, ',' | '[' | ']' | '{' | '}'));
                if k.is_empty() {
                    k.push('k');
                }
                merge = k == "<<";
                s.push_str(&k);
                s.push_str(if self.noise(10) { ":" } else { ": " });
                keys.push(k);
            }
            if merge && !self.noisy {
                let m = self.merge_value();
                s.push_str(&m);
                continue;
            }
            let inner = if self.deeper(depth) && self.rng.one_in(4) {
                if self.rng.one_in(2) { Kind::Map } else { Kind::Seq }
            } else {
                Kind::Scalar
            };
            let (p, anchor) = if self.rng.one_in(8) { self.props(inner) } else { (String::new(), None) };
            let v = match inner {
                Kind::Scalar => self.scalar(true),
                k => self.flow_of(k, depth + 1),
            };
            if !v.starts_with('*') || self.noisy {
                // (An alias cannot have properties.)
                s.push_str(&p);
                s.push_str(&v);
                self.define(anchor, inner);
            } else {
                s.push_str(&v);
            }
            if self.noise(20) {
                s.push_str("\n  ");
            }
        }
        if n > 0 && self.rng.one_in(15) {
            s.push(',');
        }
        if !self.noise(40) {
            s.push(if map { '}' } else { ']' });
        }
        s
    }

    fn block_scalar(&mut self, indent: usize) {
        let header = ["|", "|-", "|+", ">", ">-", ">+", "|2", ">1-", "|-2", "| # c", "|0", "|10", "|-+"];
        let h = self.rng.pick(&header[..if self.noisy { header.len() } else { header.len() - 3 }]);
        self.out.push(' ');
        self.out.push_str(h);
        self.out.push('\n');
        let mut first = true;
        for _ in 0..1 + self.rng.below(4) {
            if self.rng.one_in(6) {
                self.out.push('\n');
                continue;
            }
            // The first line that is not empty sets the indentation; later ones may be indented more.
            let extra = if (!first || self.noisy) && self.rng.one_in(8) { 2 } else { 0 };
            first = false;
            self.ind(indent + extra);
            let raw = self.text(false);
            let t = self.printable(&raw).replace('\n', " ");
            self.out.push_str(&t);
            self.out.push('\n');
        }
    }

    /// A value after `key:` or `-`, ending with a newline. `indent` is the column of the key or dash.
    fn value(&mut self, indent: usize, depth: usize) {
        let step = if self.rng.one_in(4) { 4 } else { 2 };
        let choice = if self.deeper(depth) { self.rng.below(10) } else { self.rng.below(4) };
        let kind = match choice {
            2 if self.rng.one_in(2) => Kind::Map,
            2 | 7 | 8 => Kind::Seq,
            4..=6 => Kind::Map,
            _ => Kind::Scalar,
        };
        let (props, anchor) = self.props(kind);
        match choice {
            0 | 1 => {
                let s = self.scalar(false);
                if s.starts_with('*') && !self.noisy {
                    // An alias cannot have properties.
                    let _ = writeln!(self.out, " {s}");
                    return;
                }
                let _ = writeln!(self.out, " {props}{s}");
            }
            2 => {
                let f = self.flow_of(kind, depth);
                let _ = writeln!(self.out, " {props}{f}");
            }
            3 => {
                if !props.is_empty() {
                    self.out.push(' ');
                    self.out.push_str(props.trim_end());
                }
                self.block_scalar(indent + step);
            }
            4..=6 => {
                self.head(&props);
                self.block_map(indent + step, depth + 1);
            }
            7 => {
                // Compact sequences sit at the key's own column, as compose files often write them.
                self.head(&props);
                let at = if self.rng.one_in(3) && (props.is_empty() || self.noisy) { indent } else { indent + step };
                self.block_seq(at, depth + 1);
            }
            8 => {
                self.head(&props);
                self.block_seq(indent + step, depth + 1);
            }
            _ => {
                // Empty value (null), or just properties.
                let _ = writeln!(self.out, " {}", props.trim_end());
            }
        }
        self.define(anchor, kind);
    }

    fn head(&mut self, props: &str) {
        if !props.is_empty() {
            self.out.push(' ');
            self.out.push_str(props.trim_end());
        }
        self.out.push('\n');
    }

    fn block_map(&mut self, indent: usize, depth: usize) {
        let n = 1 + self.rng.below(if depth < 3 { 6 } else { 3 });
        let mut keys: Vec<String> = Vec::new();
        for _ in 0..n {
            self.ind(indent);
            let key = if !keys.is_empty() && self.noise(10) {
                keys[self.rng.below(keys.len())].clone()
            } else {
                self.fresh_key(&keys)
            };
            if (key == "<<" && self.rng.one_in(2)) || (!self.noisy && keys.is_empty() && self.rng.one_in(6)) {
                let merge = self.merge_value();
                let _ = writeln!(self.out, "<<: {merge}");
                keys.push("<<".to_owned());
                continue;
            }
            if self.rng.one_in(40) {
                // Explicit key.
                let _ = writeln!(self.out, "? {key}");
                self.ind(indent);
                self.out.push(':');
            } else {
                self.out.push_str(&key);
                self.out.push(':');
            }
            keys.push(key);
            self.value(indent, depth);
        }
    }

    /// The value of a merge key `<<`: in clean documents, mappings only.
    fn merge_value(&mut self) -> String {
        if self.noisy && self.rng.one_in(3) {
            return match self.rng.below(3) {
                0 => self.alias(None),
                1 => self.flow(MAX_GEN_DEPTH - 1),
                _ => self.scalar(false),
            };
        }
        match self.rng.below(5) {
            0 | 1 => self.alias(Some(Kind::Map)),
            2 | 3 => format!("[{}, {}]", self.alias(Some(Kind::Map)), self.alias(Some(Kind::Map))),
            _ => self.flow_of(Kind::Map, MAX_GEN_DEPTH - 1),
        }
    }

    fn block_seq(&mut self, indent: usize, depth: usize) {
        let n = 1 + self.rng.below(if depth < 3 { 5 } else { 3 });
        for _ in 0..n {
            self.ind(indent);
            self.out.push('-');
            if self.deeper(depth) && self.rng.one_in(4) {
                // A mapping starting on the dash's line.
                self.out.push(' ');
                let k = self.key();
                self.out.push_str(&k);
                self.out.push(':');
                self.value(indent + 2, depth + 1);
                if self.rng.one_in(2) {
                    self.ind(indent + 2);
                    let k = self.fresh_key(&[k]);
                    self.out.push_str(&k);
                    self.out.push(':');
                    self.value(indent + 2, depth + 1);
                }
            } else {
                self.value(indent, depth);
            }
        }
    }

    /// A service body with compose-shaped values for the common keys.
    fn service(&mut self, indent: usize, merged: bool) {
        let n = 1 + self.rng.below(8);
        let mut used: Vec<String> = Vec::new();
        if merged {
            used.push("<<".to_owned());
        }
        // The key each choice below writes (6 and 11 pick theirs).
        const CHOICE_KEYS: [&str; 8] =
            ["image", "ports", "environment", "depends_on", "healthcheck", "<<", "", "volumes"];
        for _ in 0..n {
            let mut choice = self.rng.below(12);
            if let Some(key) = CHOICE_KEYS.get(choice).filter(|k| !k.is_empty())
                && !self.noisy
            {
                // One of each in clean documents.
                if used.iter().any(|u| u == key) {
                    choice = 11;
                } else {
                    used.push((*key).to_owned());
                }
            }
            self.ind(indent);
            match choice {
                0 => {
                    let img = self.scalar(false);
                    let _ = writeln!(self.out, "image: {img}");
                }
                1 => {
                    self.out.push_str("ports:\n");
                    for _ in 0..1 + self.rng.below(3) {
                        self.ind(indent + 2);
                        let p = ["\"8080:80\"", "${PORT:-80}:80/udp", "80", "127.0.0.1:${A}:80", "\"1-3:4-6\""];
                        let _ = writeln!(self.out, "- {}", self.rng.pick(&p));
                    }
                }
                2 => {
                    self.out.push_str("environment:\n");
                    let map = self.rng.one_in(2);
                    for i in 0..1 + self.rng.below(3) {
                        self.ind(indent + 2);
                        let v = self.scalar(false);
                        if map {
                            let _ = writeln!(self.out, "KEY_{i}: {v}");
                        } else {
                            let (n, t) = (self.rng.below(5), self.text(true));
                            let _ = writeln!(self.out, "- KEY_{n}={t}");
                        }
                    }
                }
                3 => {
                    self.out.push_str("depends_on:\n");
                    self.ind(indent + 2);
                    let _ = writeln!(self.out, "s{}:", self.rng.below(4));
                    self.ind(indent + 4);
                    let c = self.scalar(false);
                    let _ = writeln!(self.out, "condition: {c}");
                }
                4 => {
                    self.out.push_str("healthcheck:\n");
                    self.ind(indent + 2);
                    let t = self.flow(MAX_GEN_DEPTH - 1);
                    let _ = writeln!(self.out, "test: {t}");
                    self.ind(indent + 2);
                    let i = self.scalar(false);
                    let _ = writeln!(self.out, "interval: {i}");
                }
                5 => {
                    let merge = self.merge_value();
                    let _ = writeln!(self.out, "<<: {merge}");
                }
                6 => {
                    let tags = if self.noisy {
                        &["!reset", "!override", "!bogus", "!reset []", "!override {}"][..]
                    } else {
                        &["!reset", "!override {}", "!reset []", "!reset null"][..]
                    };
                    let tag = self.rng.pick(tags);
                    let k = self.fresh_key(&used);
                    let _ = writeln!(self.out, "{k}: {tag}");
                    used.push(k);
                }
                7 => {
                    self.out.push_str("volumes:\n");
                    self.ind(indent + 2);
                    let v = self.text(true);
                    let _ = writeln!(self.out, "- {v}:/data:ro");
                }
                _ => {
                    let k = self.fresh_key(&used);
                    self.out.push_str(&k);
                    self.out.push(':');
                    self.value(indent, 2);
                    used.push(k);
                }
            }
        }
    }

    fn compose(&mut self) {
        let mut top = vec!["services"];
        if self.rng.one_in(3) {
            let _ = writeln!(self.out, "x-common: &common");
            self.block_map(2, 2);
            self.define(Some("common".to_owned()), Kind::Map);
            top.push("x-common");
        }
        let _ = writeln!(self.out, "services:");
        let mut names = Vec::new();
        for i in 0..1 + self.rng.below(5) {
            self.ind(2);
            let name = if self.rng.one_in(6) { self.fresh_key(&names) } else { format!("s{i}") };
            let (p, anchor) = self.props(Kind::Map);
            let _ = writeln!(self.out, "{name}: {}", p.trim_end());
            names.push(name);
            let merged = self.rng.one_in(4);
            if merged {
                self.ind(4);
                let m = self.alias(Some(Kind::Map));
                let _ = writeln!(self.out, "<<: {m}");
            }
            self.service(4, merged);
            self.define(anchor, Kind::Map);
        }
        for _ in 0..self.rng.below(3) {
            let k = self.rng.pick(TOP_KEYS);
            if top.contains(&k) && !self.noisy {
                continue;
            }
            top.push(k);
            self.out.push_str(k);
            self.out.push(':');
            self.value(0, 1);
        }
    }

    /// Nesting near and past the parsers' depth limits, built without recursion.
    fn deep(&mut self) {
        let depth = *self.rng.pick(&[&10usize, &100, &250, &255, &256, &257, &300, &2000, &20000, &60000][..]);
        match self.rng.below(4) {
            0 => {
                let d = depth.min(300);
                for i in 0..d {
                    self.ind(i * 2);
                    self.out.push_str("a:\n");
                }
                self.ind(d * 2);
                self.out.push_str("b: ${A}\n");
            }
            1 => {
                let d = depth.min(300);
                for i in 0..d {
                    self.ind(i * 2);
                    self.out.push_str("-\n");
                }
                self.ind(d * 2);
                self.out.push_str("- ${A}\n");
            }
            2 => {
                self.out.push_str("x: ");
                self.out.extend(std::iter::repeat_n('[', depth));
                self.out.push_str("${A}");
                if !self.rng.one_in(4) {
                    self.out.extend(std::iter::repeat_n(']', depth));
                }
                self.out.push('\n');
            }
            _ => {
                self.out.push_str("x: ");
                for _ in 0..depth {
                    self.out.push_str(if self.rng.one_in(2) { "{a: " } else { "[" });
                }
                self.out.push_str("end");
                self.out.push('\n');
            }
        }
    }

    /// Aliases that multiply ("billion laughs"), bounded by the parser's node budget.
    fn alias_bomb(&mut self) {
        let width = 2 + self.rng.below(9);
        let levels = 2 + self.rng.below(9);
        let _ = writeln!(self.out, "l0: &l0 [\"${{A}}\", x]");
        for l in 1..levels {
            let refs: Vec<String> = (0..width).map(|_| format!("*l{}", l - 1)).collect();
            let _ = writeln!(self.out, "l{l}: &l{l} [{}]", refs.join(", "));
        }
        if self.rng.one_in(2) {
            let _ = writeln!(self.out, "m: &m {{<<: *l0}}\nn: {{<<: [*m, *m]}}");
        }
    }

    fn doc(&mut self) {
        match self.rng.below(12) {
            0 => self.out.push_str("%YAML 1.2\n---\n"),
            1 => self.out.push_str("---\n"),
            2 => self.out.push_str("# ${A} comment\n"),
            3 => self.out.push('\u{feff}'),
            _ => {}
        }
        match self.rng.below(20) {
            0 => {
                let s = self.scalar(false);
                self.out.push_str(&s);
                self.out.push('\n');
            }
            1 => {
                let f = self.flow(0);
                self.out.push_str(&f);
                self.out.push('\n');
            }
            2 => self.deep(),
            3 if self.rng.one_in(3) => self.alias_bomb(),
            4 | 5 => self.block_map(0, 0),
            6 => self.block_seq(0, 1),
            _ => self.compose(),
        }
        match self.rng.below(25) {
            0 => self.out.push_str("---\n"),
            1 => self.out.push_str("...\n"),
            2 if self.noisy => self.out.push_str("---\nx: 1\n"),
            3 => self.out.push_str("--- # empty\n...\n"),
            _ => {}
        }
    }
}

fn gen_yaml(rng: &mut Rng) -> String {
    let mut g = YamlGen::new(rng);
    g.doc();
    g.out
}

// ----- dotenv grammar -----

fn gen_dotenv(rng: &mut Rng) -> String {
    let mut out = String::new();
    if rng.one_in(20) {
        out.push('\u{feff}');
    }
    let eol = rng.pick(&["\n", "\n", "\n", "\r\n", "\r"]);
    let names = ["A", "B", "KEY", "key_2", "_X", "1BAD", "K-E.Y", "KÉY", "export", "", " SPACED ", "A B", "X=Y"];
    for _ in 0..rng.below(16) {
        let name = rng.pick(&names);
        let val = {
            let mut s = String::new();
            for _ in 0..rng.below(4) {
                match rng.below(3) {
                    0 => s.push_str(rng.pick(WORDS)),
                    1 => s.push_str(rng.pick(FRAGS)),
                    _ => {
                        s.push_str(rng.pick(&["#", " # c", "\\n", "\\\"", "\\'", "'", "\"", "=", " ", "\t", "\\"][..]))
                    }
                }
            }
            s
        };
        match rng.below(14) {
            0..=2 => {
                let _ = write!(out, "{name}={val}");
            }
            3 => {
                let _ = write!(out, "export {name}={val}");
            }
            4 | 5 => {
                let v = val.replace('"', "\\\"");
                let nl = if rng.one_in(3) { "\nsecond line ${A}\n" } else { "" };
                let close = if rng.one_in(20) { "" } else { "\"" };
                let _ = write!(out, "{name}=\"{v}{nl}{close}");
            }
            6 => {
                let close = if rng.one_in(20) { "" } else { "'" };
                let _ = write!(out, "{name}='{}{close}", val.replace('\'', ""));
            }
            7 => {
                let _ = write!(out, "{name}");
            }
            8 => {
                let _ = write!(out, "# {val}");
            }
            9 => {}
            10 => {
                let _ = write!(out, "  {name} = {val}  ");
            }
            11 => {
                let _ = write!(out, "{name}: {val}");
            }
            12 => {
                let _ = write!(out, "{name}={val} # comment");
            }
            _ => {
                let _ = write!(out, "={val}");
            }
        }
        out.push_str(eol);
    }
    out
}

// ----- templates for substitute -----

fn gen_template(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(20) {
        match rng.below(8) {
            0..=4 => s.push_str(rng.pick(FRAGS)),
            5 => s.push_str(rng.pick(WORDS)),
            6 => s.push(char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('\u{fffd}')),
            _ => {
                let mut g = YamlGen::new(rng);
                let d = g.deep_default();
                s.push_str(&d);
            }
        }
    }
    s
}

// ----- mutations and random bytes -----

struct Fixture {
    path: PathBuf,
    bytes: Vec<u8>,
}

fn load_fixtures(dir: &Path) -> Vec<Fixture> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.len() <= MAX_INPUT
            {
                out.push(Fixture { path, bytes });
            }
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn mutate(rng: &mut Rng, fixtures: &[Fixture]) -> Vec<u8> {
    let Some(f) = fixtures.get(rng.below(fixtures.len())) else {
        return Vec::new();
    };
    let mut b = f.bytes.clone();
    for _ in 0..1 + rng.below(8) {
        let len = b.len();
        let at = rng.below(len + 1);
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = rng.next() as u8;
            }
            2 => b.truncate(at),
            3 => {
                let end = (at + rng.below(64)).min(len);
                b.drain(at..end);
            }
            4 => {
                let end = (at + rng.below(256)).min(len);
                let chunk = b[at..end].to_vec();
                let to = rng.below(b.len() + 1);
                b.splice(to..to, chunk);
            }
            5 | 6 => {
                let tok = rng.pick(YAML_TOKENS).as_bytes();
                b.splice(at..at, tok.iter().copied());
            }
            7 => {
                let tok = rng.pick(FRAGS).as_bytes();
                b.splice(at..at, tok.iter().copied());
            }
            _ => {
                // Splice in a piece of another fixture.
                if let Some(o) = fixtures.get(rng.below(fixtures.len())) {
                    let s = rng.below(o.bytes.len() + 1);
                    let e = (s + rng.below(200)).min(o.bytes.len());
                    b.splice(at..at, o.bytes[s..e].iter().copied());
                }
            }
        }
        if b.len() > MAX_INPUT {
            b.truncate(MAX_INPUT);
        }
    }
    b
}

fn random_bytes(rng: &mut Rng) -> Vec<u8> {
    let max = if rng.one_in(10) { 16384 } else { 512 };
    let len = rng.below(max);
    let alphabet = b"${}:-?+[]&*!|>#'\"\n\t =,<.~%@`\\aAbB019_";
    (0..len).map(|_| if rng.one_in(3) { rng.next() as u8 } else { alphabet[rng.below(alphabet.len())] }).collect()
}

// ----- cases -----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Family {
    Grammar,
    Fixture,
    Dotenv,
    Bytes,
    Template,
}

const FAMILIES: [Family; 5] = [Family::Grammar, Family::Fixture, Family::Dotenv, Family::Bytes, Family::Template];

fn make_case(seed: u64, case: u64, fixtures: &[Fixture]) -> (Family, String) {
    let mut rng = case_rng(seed, case);
    let family = match rng.below(16) {
        0..=6 => Family::Grammar,
        7..=10 if !fixtures.is_empty() => Family::Fixture,
        7..=12 => Family::Dotenv,
        13 => Family::Bytes,
        _ => Family::Template,
    };
    let mut text = match family {
        Family::Grammar => gen_yaml(&mut rng),
        Family::Fixture => String::from_utf8_lossy(&mutate(&mut rng, fixtures)).into_owned(),
        Family::Dotenv => gen_dotenv(&mut rng),
        Family::Bytes => String::from_utf8_lossy(&random_bytes(&mut rng)).into_owned(),
        Family::Template => gen_template(&mut rng),
    };
    if text.len() > MAX_INPUT {
        let mut n = MAX_INPUT;
        while !text.is_char_boundary(n) {
            n -= 1;
        }
        text.truncate(n);
    }
    (family, text)
}

// ----- running a case -----

fn environment() -> HashMap<String, String> {
    let mut env = HashMap::new();
    for (k, v) in [
        ("A", "a"),
        ("B", ""),
        ("C", "${A}"),
        ("D", "$$"),
        ("E", "x}y"),
        ("PORT", "8080"),
        ("UNI", "é日本😀"),
        ("ſ", "long s"),
        ("V0", "v0"),
        ("V63", "v63"),
    ] {
        env.insert(k.to_owned(), v.to_owned());
    }
    env.insert("LONG".to_owned(), "x".repeat(10_000));
    env
}

#[derive(Default)]
struct Stats {
    inputs: u64,
    per_family: HashMap<Family, u64>,
    yaml_ok: u64,
    /// Grammar inputs that parsed (a check that the grammar reaches the later phases).
    grammar_parsed: u64,
    yaml_err: u64,
    interp_ok: u64,
    interp_err: u64,
    dotenv_ok: u64,
    dotenv_err: u64,
    subst_ok: u64,
    subst_err: u64,
    bytes: u64,
    /// The slowest cases: (duration, case, family, input length).
    slowest: Vec<(Duration, u64, Family, usize)>,
}

fn check_diag(what: &str, d: &Diagnostic, file: &Path) {
    let _ = d.to_string();
    if let Some(f) = &d.span.file {
        assert!(d.span.line >= 1, "{what}: diagnostic names a file but no line: {d:?}");
        assert_eq!(&**f, file, "{what}: diagnostic names another file: {d:?}");
    }
}

/// Returns whether the text parsed.
fn run_yaml(text: &str, lookup: interpolate::Lookup, stats: &mut Stats) -> bool {
    let file: Arc<Path> = Arc::from(Path::new("fuzz/compose.yaml"));
    match yaml::parse(text, Some(file.clone())) {
        Ok(mut node) => {
            stats.yaml_ok += 1;
            let mut warnings = Vec::new();
            match interpolate::interpolate(&mut node, lookup, &mut warnings) {
                Ok(()) => stats.interp_ok += 1,
                Err(errors) => {
                    stats.interp_err += 1;
                    assert!(!errors.is_empty(), "interpolate failed with no diagnostic");
                    for d in &errors {
                        check_diag("interpolate", d, &file);
                    }
                }
            }
            for w in &warnings {
                check_diag("interpolate warning", w, &file);
            }
            let _ = node.to_json();
            true
        }
        Err(d) => {
            stats.yaml_err += 1;
            check_diag("yaml::parse", &d, &file);
            if VERBOSE.load(Ordering::Relaxed) {
                eprintln!("yaml::parse: {d}");
            }
            false
        }
    }
}

fn run_dotenv(text: &str, lookup: interpolate::Lookup, stats: &mut Stats) {
    let file = Path::new("fuzz/.env");
    match dotenv::parse(text, file, lookup) {
        Ok(_) => stats.dotenv_ok += 1,
        Err(d) => {
            stats.dotenv_err += 1;
            check_diag("dotenv::parse", &d, file);
        }
    }
}

fn run_substitute(text: &str, lookup: interpolate::Lookup, stats: &mut Stats) {
    match interpolate::substitute(text, lookup) {
        Ok(_) => stats.subst_ok += 1,
        Err(e) => {
            stats.subst_err += 1;
            let _ = e.to_string();
        }
    }
}

fn run_case(family: Family, text: &str, lookup: interpolate::Lookup, stats: &mut Stats) {
    match family {
        Family::Grammar => {
            if run_yaml(text, lookup, stats) {
                stats.grammar_parsed += 1;
            }
        }
        Family::Fixture | Family::Bytes => {
            run_yaml(text, lookup, stats);
            run_dotenv(text, lookup, stats);
        }
        Family::Dotenv => {
            run_dotenv(text, lookup, stats);
            run_substitute(text, lookup, stats);
        }
        Family::Template => run_substitute(text, lookup, stats),
    }
}

// ----- reporting a failing case -----

static SEED: AtomicU64 = AtomicU64::new(0);
static CASE: AtomicU64 = AtomicU64::new(0);
static IN_CASE: AtomicBool = AtomicBool::new(false);
static VERBOSE: AtomicBool = AtomicBool::new(false);
static FIXTURES: OnceLock<Vec<Fixture>> = OnceLock::new();

fn fixtures() -> &'static [Fixture] {
    FIXTURES.get_or_init(|| load_fixtures(Path::new(FIXTURES_DIR)))
}

/// Print the input of a case (regenerated from seed and case number) and save it to a temporary file.
fn report_case(seed: u64, case: u64, why: &str) {
    let (family, text) = make_case(seed, case, fixtures());
    let file = std::env::temp_dir().join(format!("berth-fuzz-{seed:#x}-{case}.txt"));
    let saved = std::fs::write(&file, text.as_bytes()).is_ok();
    let shown: String = text.chars().take(4000).collect();
    eprintln!(
        "\nfuzz_loader: {why} at case {case} ({family:?}, {} bytes); reproduce with \
         BERTH_FUZZ_SEED={seed:#x} BERTH_FUZZ_CASE={case}{}\ninput: {shown:?}{}\n",
        text.len(),
        if saved { format!("; input saved to {}", file.display()) } else { String::new() },
        if shown.len() < text.len() { " …(cut)" } else { "" },
    );
}

fn env_u64(name: &str) -> Result<Option<u64>, Box<dyn Error>> {
    match std::env::var(name) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => {
            let v = v.trim();
            let n = match v.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16)?,
                None => v.parse()?,
            };
            Ok(Some(n))
        }
        Err(_) => Ok(None),
    }
}

#[test]
fn fuzz_parse_and_interpolate() -> Result<(), Box<dyn Error>> {
    let budget = match std::env::var("BERTH_FUZZ_SECS") {
        Ok(v) => Duration::from_secs_f64(v.trim().parse::<f64>()?),
        Err(_) => Duration::from_secs(3),
    };
    let stall = Duration::from_secs(env_u64("BERTH_FUZZ_STALL_SECS")?.unwrap_or(60));
    let trace = std::env::var("BERTH_FUZZ_TRACE").is_ok_and(|v| v == "1" || v == "2");
    VERBOSE.store(std::env::var("BERTH_FUZZ_TRACE").is_ok_and(|v| v == "2"), Ordering::Relaxed);
    let seed = match env_u64("BERTH_FUZZ_SEED")? {
        Some(s) => s,
        None => {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
            Rng(now.as_nanos() as u64 ^ u64::from(std::process::id())).next()
        }
    };
    let only = env_u64("BERTH_FUZZ_CASE")?;
    SEED.store(seed, Ordering::SeqCst);
    let fixtures = fixtures();
    eprintln!(
        "fuzz_loader: seed {seed:#x} (BERTH_FUZZ_SEED={seed:#x} reproduces this run), budget {:.1}s, \
         {} fixture files from {FIXTURES_DIR}",
        budget.as_secs_f64(),
        fixtures.len()
    );
    if fixtures.is_empty() {
        eprintln!("fuzz_loader: no fixture files found; the fixture family is skipped");
    }

    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        if IN_CASE.load(Ordering::SeqCst) && std::thread::current().name() == Some("fuzz-worker") {
            IN_CASE.store(false, Ordering::SeqCst);
            report_case(SEED.load(Ordering::SeqCst), CASE.load(Ordering::SeqCst), "panic");
        }
    }));

    let progress = Arc::new(AtomicU64::new(0));
    let worker_progress = Arc::clone(&progress);
    let started = Instant::now();
    let worker = std::thread::Builder::new()
        .name("fuzz-worker".to_owned())
        // The size of a main thread's stack: what the berth binary runs the loader on.
        .stack_size(8 << 20)
        .spawn(move || {
            let env = environment();
            let lookup = move |k: &str| env.get(k).cloned();
            let mut stats = Stats::default();
            let cases: Box<dyn Iterator<Item = u64>> = match only {
                Some(c) => Box::new(std::iter::once(c)),
                None => Box::new(0..),
            };
            for case in cases {
                if only.is_none() && started.elapsed() >= budget {
                    break;
                }
                if trace {
                    eprintln!("case {case}");
                }
                CASE.store(case, Ordering::SeqCst);
                let (family, text) = make_case(seed, case, fixtures);
                if only.is_some() {
                    let file = std::env::temp_dir().join(format!("berth-fuzz-{seed:#x}-{case}.txt"));
                    let saved = match std::fs::write(&file, text.as_bytes()) {
                        Ok(()) => format!(", saved to {}", file.display()),
                        Err(_) => String::new(),
                    };
                    let shown: String = text.chars().take(4000).collect();
                    eprintln!("case {case} ({family:?}, {} bytes{saved}): {shown:?}", text.len());
                }
                IN_CASE.store(true, Ordering::SeqCst);
                let t0 = Instant::now();
                run_case(family, &text, &lookup, &mut stats);
                let took = t0.elapsed();
                IN_CASE.store(false, Ordering::SeqCst);
                stats.inputs += 1;
                stats.bytes += text.len() as u64;
                *stats.per_family.entry(family).or_default() += 1;
                if stats.slowest.len() < 5 || took > stats.slowest[stats.slowest.len() - 1].0 {
                    stats.slowest.push((took, case, family, text.len()));
                    stats.slowest.sort_by_key(|s| std::cmp::Reverse(s.0));
                    stats.slowest.truncate(5);
                }
                worker_progress.store(case + 1, Ordering::SeqCst);
            }
            stats
        })?;

    // Watchdog: report a case that runs for longer than `stall`, and show progress on long runs.
    let mut last = (0, Instant::now());
    let mut next_report = Duration::from_secs(30);
    while !worker.is_finished() {
        std::thread::sleep(Duration::from_millis(100));
        let done = progress.load(Ordering::SeqCst);
        if done != last.0 {
            last = (done, Instant::now());
        } else if last.1.elapsed() > stall && IN_CASE.load(Ordering::SeqCst) {
            let case = CASE.load(Ordering::SeqCst);
            report_case(seed, case, "hang");
            panic!("fuzz_loader: case {case} has run for more than {}s (seed {seed:#x})", stall.as_secs());
        }
        if started.elapsed() >= next_report {
            eprintln!("fuzz_loader: {:>4}s, {done} inputs", started.elapsed().as_secs());
            next_report += Duration::from_secs(30);
        }
    }
    let stats = match worker.join() {
        Ok(s) => s,
        Err(_) => panic!("fuzz_loader: an input panicked (seed {seed:#x}, case {})", CASE.load(Ordering::SeqCst)),
    };

    let secs = started.elapsed().as_secs_f64();
    let mut fam = String::new();
    for f in FAMILIES {
        let _ = write!(fam, " {f:?}={}", stats.per_family.get(&f).copied().unwrap_or(0));
    }
    eprintln!(
        "fuzz_loader: {} inputs ({:.1} MB) in {secs:.1}s, no crash (seed {seed:#x})\n  families:{fam} (grammar inputs that parsed: {})\n  \
         yaml::parse ok/err {}/{}, interpolate ok/err {}/{}, dotenv::parse ok/err {}/{}, substitute ok/err {}/{}",
        stats.inputs,
        stats.bytes as f64 / 1e6,
        stats.grammar_parsed,
        stats.yaml_ok,
        stats.yaml_err,
        stats.interp_ok,
        stats.interp_err,
        stats.dotenv_ok,
        stats.dotenv_err,
        stats.subst_ok,
        stats.subst_err,
    );
    for (took, case, family, len) in &stats.slowest {
        eprintln!("  slow: case {case} ({family:?}, {len} bytes) {:.1} ms", took.as_secs_f64() * 1e3);
    }
    Ok(())
}
