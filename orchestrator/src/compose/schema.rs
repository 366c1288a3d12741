//! The JSON Schema of a canonical compose project: generation, schema-directed coercion, and validation.
//!
//! The schema is generated from the typed model ([`crate::compose::model::Project`]) so that what validation
//! accepts is exactly what decoding accepts. schemars describes what serde would accept, which is lenient (unknown
//! keys ignored); compose is strict, so the generated schema is tightened: objects reject unknown keys and accept
//! `x-` keys only where the model keeps extensions. `schemas/compose.schema.json` is this schema, for editors and
//! other tools; a test keeps it current.
//!
//! Validation runs on the whole merged tree ([`Node`]) so every error can point at the user's file, line and
//! column, and reports every problem at once.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use jsonschema::error::{TypeKind, ValidationErrorKind};
use jsonschema::{JsonType, ValidationError};
use serde_json::Value as Json;

use super::error::{Diagnostic, Span, nearest};
use super::model::units::{BYTE_SIZE_PATTERN, DURATION_PATTERN, FILE_MODE_PATTERN};
use super::model::{NAME_PATTERN, Project};
use super::node::{Node, Value, format_float};

mod coerce;
mod instance;

use instance::Tree;

pub use coerce::coerce;

/// Key pattern of the extension keys compose allows on most objects.
const EXTENSION_PATTERN: &str = "^x-";

static SCHEMA: LazyLock<Json> = LazyLock::new(generate);

/// The validators are compiled once; a failure is berth's bug, reported as a diagnostic rather than a panic.
/// This one reads the tree in place ([`instance`]) and answers whether a project is valid.
static TREE_VALIDATOR: LazyLock<Result<jsonschema::Validator<Tree>, String>> =
    LazyLock::new(|| jsonschema::options_for::<Tree>().build(schema()).map_err(|e| e.to_string()));

/// This one reads the tree's JSON and reports each error; only an invalid project needs it.
static VALIDATOR: LazyLock<Result<jsonschema::Validator, String>> =
    LazyLock::new(|| jsonschema::validator_for(schema()).map_err(|e| e.to_string()));

/// The schema, generated from the model with schemars (generated once, cached).
pub fn schema() -> &'static Json {
    &SCHEMA
}

/// Pretty JSON text of [`schema()`], exactly what `schemas/compose.schema.json` contains.
pub fn schema_text() -> String {
    let mut text = serde_json::to_string_pretty(schema()).unwrap_or_default();
    text.push('\n');
    text
}

fn generate() -> Json {
    let generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let mut root = generator.into_root_schema_for::<Project>().to_value();
    tighten(&mut root);
    let Json::Object(mut generated) = root else {
        return root;
    };
    // `version` is obsolete: accepted, ignored, never printed.
    if let Some(props) = generated.get_mut("properties").and_then(Json::as_object_mut) {
        props.insert(
            "version".into(),
            serde_json::json!({"type": "string", "deprecated": true, "description": "Obsolete; ignored."}),
        );
    }
    generated.insert("title".into(), "Compose project (berth canonical form)".into());
    generated.insert(
        "description".into(),
        "A compose project after berth's loader rewrote every short syntax to its long form. Generated from \
         berth's typed model by `schema::schema_text()`; do not edit."
            .into(),
    );
    // The conventional order of a root schema, so the file reads from the top.
    let mut ordered = serde_json::Map::new();
    for key in ["$schema", "title", "description", "type", "properties", "additionalProperties", "patternProperties"] {
        if let Some(v) = generated.shift_remove(key) {
            ordered.insert(key.into(), v);
        }
    }
    ordered.extend(generated);
    Json::Object(ordered)
}

/// Make every object schema generated from a struct strict: unknown keys are errors, `x-` keys are allowed where
/// the struct keeps extensions (schemars marks those with `additionalProperties: true`, from the flattened map).
/// Defaults of required keys are dropped, since a required key never takes its default.
fn tighten(schema: &mut Json) {
    match schema {
        Json::Object(obj) => {
            if obj.contains_key("properties") {
                let open = obj.get("additionalProperties") == Some(&Json::Bool(true));
                obj.insert("additionalProperties".into(), Json::Bool(false));
                if open {
                    obj.insert("patternProperties".into(), serde_json::json!({ EXTENSION_PATTERN: {} }));
                }
                let required: Vec<String> = obj
                    .get("required")
                    .and_then(Json::as_array)
                    .map(|r| r.iter().filter_map(|k| k.as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                if let Some(props) = obj.get_mut("properties").and_then(Json::as_object_mut) {
                    for key in &required {
                        if let Some(p) = props.get_mut(key).and_then(Json::as_object_mut) {
                            p.shift_remove("default");
                        }
                    }
                }
            }
            obj.values_mut().for_each(tighten);
        }
        Json::Array(items) => items.iter_mut().for_each(tighten),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the schema: the alternatives a location offers, the types they accept, the schema of a child.

/// The schemas a location offers: `$ref`s followed, `anyOf`/`oneOf` flattened.
fn alternatives<'a>(schema: &'a Json, root: &'a Json) -> Vec<&'a Json> {
    let mut out = Vec::new();
    collect_alternatives(schema, root, &mut out, 0);
    out
}

fn collect_alternatives<'a>(schema: &'a Json, root: &'a Json, out: &mut Vec<&'a Json>, depth: usize) {
    // Our schema has no recursive types, but a bound keeps a broken reference from looping.
    if depth > 32 {
        return;
    }
    if let Some(target) = schema.get("$ref").and_then(Json::as_str).and_then(|r| resolve_ref(root, r)) {
        collect_alternatives(target, root, out, depth + 1);
        return;
    }
    let mut branched = false;
    for key in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(key).and_then(Json::as_array) {
            branched = true;
            for b in branches {
                collect_alternatives(b, root, out, depth + 1);
            }
        }
    }
    if !branched {
        out.push(schema);
    }
}

fn resolve_ref<'a>(root: &'a Json, reference: &str) -> Option<&'a Json> {
    root.pointer(reference.strip_prefix('#')?)
}

/// The JSON types one alternative accepts; `None` when it accepts any value (`{}`, `true`).
fn types_of(alt: &Json) -> Option<BTreeSet<&'static str>> {
    const ALL: [&str; 7] = ["null", "boolean", "integer", "number", "string", "array", "object"];
    let name = |t: &str| ALL.iter().copied().find(|a| *a == t);
    match alt.get("type") {
        Some(Json::String(t)) => Some(name(t).into_iter().collect()),
        Some(Json::Array(ts)) => Some(ts.iter().filter_map(Json::as_str).filter_map(name).collect()),
        _ => {
            let values: Vec<&Json> = match (alt.get("enum"), alt.get("const")) {
                (Some(Json::Array(vs)), _) => vs.iter().collect(),
                (_, Some(v)) => vec![v],
                _ => return None,
            };
            Some(values.into_iter().map(json_type_name).collect())
        }
    }
}

fn json_type_name(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    }
}

/// The union of what the alternatives accept; `None` when one of them accepts anything.
fn accepted_types(alts: &[&Json]) -> Option<BTreeSet<&'static str>> {
    let mut all = BTreeSet::new();
    for alt in alts {
        all.extend(types_of(alt)?);
    }
    Some(all)
}

/// The first alternative that takes a value of JSON type `kind` (`object`, `array`).
fn alternative_for<'a>(alts: &[&'a Json], kind: &str) -> Option<&'a Json> {
    alts.iter().copied().find(|alt| types_of(alt).is_some_and(|t| t.contains(kind)))
}

/// The schema of `key` inside an object schema: a declared property, a matching pattern, or the rest.
fn property_schema<'a>(object: &'a Json, key: &str) -> Option<&'a Json> {
    if let Some(p) = object.get("properties").and_then(|p| p.get(key)) {
        return Some(p);
    }
    if let Some(patterns) = object.get("patternProperties").and_then(Json::as_object) {
        for (pattern, sub) in patterns {
            if prefix_pattern_matches(pattern, key) {
                return Some(sub);
            }
        }
    }
    object.get("additionalProperties").filter(|a| a.is_object())
}

/// Whether `key` matches a pattern of the `^literal` form, the only one our pattern properties use.
fn prefix_pattern_matches(pattern: &str, key: &str) -> bool {
    coerce::literal_prefix(pattern).is_some_and(|p| key.starts_with(p))
}

/// The schema alternatives at an instance path, choosing among alternatives by what the tree holds there.
fn schema_at<'a>(root_node: &Node, path: &[String], root: &'a Json) -> Vec<&'a Json> {
    let mut alts = alternatives(root, root);
    let mut node = Some(root_node);
    for part in path {
        let here = node;
        node = here.and_then(|n| n.pointer(std::slice::from_ref(part)));
        let is_seq = here.is_some_and(|n| n.as_seq().is_some());
        let next = if is_seq {
            alternative_for(&alts, "array").and_then(|a| a.get("items"))
        } else {
            alternative_for(&alts, "object").and_then(|o| property_schema(o, part))
        };
        match next {
            Some(s) => alts = alternatives(s, root),
            None => return Vec::new(),
        }
    }
    alts
}

// ---------------------------------------------------------------------------------------------------------------
// Validation.

/// Validate the whole project tree against [`schema()`]. Every error is a [`Diagnostic`] at the span of the
/// offending node (or key), saying what is expected; unknown keys come with a "did you mean" hint. Sorted by
/// file, line and column.
pub fn validate(node: &Node) -> Vec<Diagnostic> {
    // Most projects are valid: the yes/no check on the tree itself stops early, collects nothing and copies
    // nothing. Only an invalid project pays for its JSON and the walk that gathers every error.
    match &*TREE_VALIDATOR {
        Ok(validator) if validator.is_valid(node) => return Vec::new(),
        Ok(_) => {}
        Err(e) => return vec![does_not_compile(node, e)],
    }
    let validator = match &*VALIDATOR {
        Ok(v) => v,
        Err(e) => return vec![does_not_compile(node, e)],
    };
    let instance = node.to_json();
    let mut diags = Vec::new();
    for error in validator.iter_errors(&instance) {
        report(node, &error, &mut diags);
    }
    diags.sort_by(|a, b| {
        (a.span.file.as_deref(), a.span.line, a.span.column).cmp(&(b.span.file.as_deref(), b.span.line, b.span.column))
    });
    diags.dedup();
    diags
}

fn does_not_compile(node: &Node, error: &str) -> Diagnostic {
    Diagnostic::new(node.span.clone(), format!("berth's compose schema does not compile: {error}"))
        .with_hint("this is a bug in berth; please report it")
}

fn instance_path(error: &ValidationError<'_>) -> Vec<String> {
    error.instance_path().iter().map(|segment| segment.to_string()).collect()
}

/// Turn one validation error into diagnostics (several for several unknown keys).
fn report(root: &Node, error: &ValidationError<'_>, diags: &mut Vec<Diagnostic>) {
    let path = instance_path(error);
    let here = display_path(&path);
    let span = root.span_at(&path);
    let found = describe(root.pointer(&path), error.instance());
    match error.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let allowed = allowed_keys(root, &path);
            for key in unexpected {
                let mut key_path = path.clone();
                key_path.push(key.clone());
                let mut d =
                    Diagnostic::new(root.key_span_at(&key_path), format!("unknown key `{key}` {}", whereabouts(&path)));
                if let Some(best) = nearest(key, allowed.iter().map(String::as_str)) {
                    d = d.with_hint(format!("did you mean `{best}`?"));
                } else if extensions_allowed(root, &path) {
                    d = d.with_hint("keys of your own must start with `x-`");
                }
                diags.push(d);
            }
        }
        ValidationErrorKind::Type { kind } => {
            let expected: Vec<&str> = match kind {
                TypeKind::Single(t) => vec![type_name(*t)],
                TypeKind::Multiple(set) => set.iter().map(type_name).collect(),
            };
            diags
                .push(Diagnostic::new(span, format!("{here}: expected {}, found {found}", expected_phrase(&expected))));
        }
        ValidationErrorKind::Required { property } => {
            let key = property.as_str().map(str::to_owned).unwrap_or_else(|| property.to_string());
            diags.push(Diagnostic::new(span, format!("missing required key `{key}` {}", whereabouts(&path))));
        }
        ValidationErrorKind::Enum { options } => {
            let choices: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter().map(|o| format!("`{}`", o.as_str().map_or_else(|| o.to_string(), str::to_owned))).collect()
                })
                .unwrap_or_default();
            diags.push(Diagnostic::new(span, format!("{here}: expected one of {}, found {found}", choices.join(", "))));
        }
        ValidationErrorKind::Constant { expected_value } => {
            diags.push(Diagnostic::new(span, format!("{here}: expected `{expected_value}`, found {found}")));
        }
        ValidationErrorKind::Pattern { pattern } => {
            diags.push(Diagnostic::new(span, format!("{here}: {}, found {found}", pattern_expectation(pattern))));
        }
        ValidationErrorKind::PropertyNames { error: inner } => {
            let key = inner.instance().as_str().map(str::to_owned).unwrap_or_default();
            let mut key_path = path.clone();
            key_path.push(key.clone());
            let pattern = match inner.kind() {
                ValidationErrorKind::Pattern { pattern } => pattern.as_str(),
                _ => "",
            };
            let rule = if pattern == NAME_PATTERN {
                "use only letters, digits, `.`, `_` and `-`".to_string()
            } else {
                format!("it must match `{pattern}`")
            };
            diags.push(Diagnostic::new(
                root.key_span_at(&key_path),
                format!("invalid {} `{key}`: {rule}", name_kind(&path)),
            ));
        }
        ValidationErrorKind::Minimum { limit } => {
            diags.push(Diagnostic::new(span, format!("{here}: expected at least {limit}, found {found}")));
        }
        ValidationErrorKind::Maximum { limit } => {
            diags.push(Diagnostic::new(span, format!("{here}: expected at most {limit}, found {found}")));
        }
        ValidationErrorKind::AnyOf { context } | ValidationErrorKind::OneOfNotValid { context } => {
            report_alternatives(root, &path, &found, context, span, diags);
        }
        _ => diags.push(Diagnostic::new(span, format!("{here}: {error}"))),
    }
}

/// An `anyOf`/`oneOf` failed. Alternatives that reject the value's type outright (the `null` of an optional
/// field, the list form of a mapping) say nothing useful; report the errors of the closest remaining one, or,
/// when none takes this type, what types would do.
fn report_alternatives(
    root: &Node,
    path: &[String],
    found: &str,
    context: &[Vec<ValidationError<'static>>],
    span: Span,
    diags: &mut Vec<Diagnostic>,
) {
    let rejects_type = |errors: &Vec<ValidationError<'static>>| {
        errors.iter().any(|e| {
            instance_path(e) == path
                && matches!(
                    e.kind(),
                    ValidationErrorKind::Type { .. }
                        | ValidationErrorKind::Enum { .. }
                        | ValidationErrorKind::Constant { .. }
                )
        })
    };
    let closest = context.iter().filter(|errors| !rejects_type(errors)).min_by_key(|errors| errors.len());
    if let Some(errors) = closest {
        for e in errors {
            report(root, e, diags);
        }
        return;
    }
    let alts = schema_at(root, path, schema());
    let mut expected: Vec<&str> = Vec::new();
    for t in accepted_types(&alts).unwrap_or_default() {
        if t != "null" && !(t == "integer" && expected.contains(&"number")) {
            expected.push(t);
        }
    }
    // Enumerations (a closed set of strings) are better told by their values.
    let values: Vec<String> = alts
        .iter()
        .filter_map(|a| a.get("enum").and_then(Json::as_array))
        .flatten()
        .filter_map(|v| v.as_str().map(|s| format!("`{s}`")))
        .collect();
    let what = if !values.is_empty() && expected == ["string"] {
        format!("one of {}", values.join(", "))
    } else {
        expected_phrase(&expected.iter().map(|t| type_name_str(t)).collect::<Vec<_>>())
    };
    diags.push(Diagnostic::new(span, format!("{}: expected {what}, found {found}", display_path(path))));
}

/// The property names a location allows, for "did you mean" hints.
fn allowed_keys(root: &Node, path: &[String]) -> Vec<String> {
    schema_at(root, path, schema())
        .iter()
        .filter_map(|alt| alt.get("properties").and_then(Json::as_object))
        .flat_map(|props| props.keys().cloned())
        .collect()
}

fn extensions_allowed(root: &Node, path: &[String]) -> bool {
    schema_at(root, path, schema())
        .iter()
        .any(|alt| alt.get("patternProperties").and_then(|p| p.get(EXTENSION_PATTERN)).is_some())
}

/// `services.web.ports[0].target`; the top level is `(top level)`.
fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for part in path {
        if part.parse::<usize>().is_ok() && !out.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    if out.is_empty() { "(top level)".to_string() } else { out }
}

/// Where an object is, in words: "in service `web`", "in `build` of service `web`", "at the top level".
fn whereabouts(path: &[String]) -> String {
    let kind = |section: &str| match section {
        "services" => Some("service"),
        "networks" => Some("network"),
        "volumes" => Some("volume"),
        "secrets" => Some("secret"),
        "configs" => Some("config"),
        "models" => Some("model"),
        _ => None,
    };
    if path.is_empty() {
        return "at the top level".to_string();
    }
    if let [section, name, rest @ ..] = path
        && let Some(kind) = kind(section)
    {
        return if rest.is_empty() {
            format!("in {kind} `{name}`")
        } else {
            format!("in `{}` of {kind} `{name}`", display_path(rest))
        };
    }
    format!("in `{}`", display_path(path))
}

/// What the keys of the mapping at `path` name, for invalid-name messages.
fn name_kind(path: &[String]) -> String {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["services"] => "service name".into(),
        ["networks"] => "network name".into(),
        ["volumes"] => "volume name".into(),
        ["secrets"] => "secret name".into(),
        ["configs"] => "config name".into(),
        ["models"] => "model name".into(),
        [.., "depends_on"] => "service name in `depends_on`".into(),
        [.., "networks"] => "network name in `networks`".into(),
        [.., "models"] => "model name in `models`".into(),
        [.., "ulimits"] => "ulimit name".into(),
        _ => format!("key in `{}`", display_path(path)),
    }
}

fn pattern_expectation(pattern: &str) -> String {
    match pattern {
        p if p == DURATION_PATTERN => "expected a duration such as `10s`, `1m30s` or `500ms`".into(),
        p if p == BYTE_SIZE_PATTERN => "expected a size such as `512m`, `1gb` or a number of bytes".into(),
        p if p == FILE_MODE_PATTERN => "expected an octal file mode such as \"0440\"".into(),
        p if p == NAME_PATTERN => "expected a name of letters, digits, `.`, `_` and `-`".into(),
        p => format!("expected text matching `{p}`"),
    }
}

fn type_name(t: JsonType) -> &'static str {
    type_name_str(t.as_str())
}

fn type_name_str(t: &str) -> &'static str {
    match t {
        "null" => "null",
        "boolean" => "a boolean",
        "integer" => "an integer",
        "number" => "a number",
        "string" => "a string",
        "array" => "a sequence",
        "object" => "a mapping",
        _ => "a value",
    }
}

/// "an integer", "an integer or a string", "a number, a string or null" (null last, and only when alone).
fn expected_phrase(names: &[&str]) -> String {
    let mut names: Vec<&str> = names.to_vec();
    if names.len() > 1 {
        names.retain(|n| *n != "null");
    }
    if names.contains(&"a number") {
        names.retain(|n| *n != "an integer");
    }
    match names.as_slice() {
        [] => "a value".into(),
        [one] => (*one).into(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// The found value in words, quoting scalars: `a string "abc"`, `an integer 3`, `a mapping`.
fn describe(node: Option<&Node>, instance: &Json) -> String {
    match node.map(|n| &n.value) {
        Some(Value::String(s)) => format!("a string {s:?}"),
        Some(Value::Int(i)) => format!("an integer {i}"),
        Some(Value::Float(f)) => format!("a number {}", format_float(*f)),
        Some(Value::Bool(b)) => format!("a boolean {b}"),
        Some(Value::Null) => "null".into(),
        Some(Value::Seq(_)) => "a sequence".into(),
        Some(Value::Map(_)) => "a mapping".into(),
        None => match instance {
            Json::String(s) => format!("a string {s:?}"),
            other => format!("{} {other}", type_name_str(json_type_name(other))),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::compose::node::Entry;

    /// A tree from JSON where every node and key has its own position: line `n` for the `n`-th node in document
    /// order, keys at column 1 and values at column 5, in `compose.yaml`.
    fn tree(j: serde_json::Value) -> Node {
        let file: Arc<Path> = Arc::from(Path::new("compose.yaml"));
        let mut line = 0;
        let mut node = Node::from_json(&j, &Span::default());
        number(&mut node, &file, &mut line);
        node
    }

    fn number(node: &mut Node, file: &Arc<Path>, line: &mut usize) {
        *line += 1;
        node.span = Span::new(Some(file.clone()), *line, 5);
        match &mut node.value {
            Value::Map(m) => {
                for Entry { key_span, value } in m.values_mut() {
                    number(value, file, line);
                    *key_span = Span::new(Some(file.clone()), value.span.line, 1);
                }
            }
            Value::Seq(items) => items.iter_mut().for_each(|i| number(i, file, line)),
            _ => {}
        }
    }

    fn path(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    fn messages(d: &[Diagnostic]) -> Vec<String> {
        d.iter().map(|d| d.message.clone()).collect()
    }

    #[test]
    fn schema_compiles() {
        assert!(VALIDATOR.is_ok(), "{:?}", VALIDATOR.as_ref().err());
    }

    #[test]
    fn schema_file_is_current() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/compose.schema.json");
        let current = schema_text();
        if std::env::var_os("BERTH_BLESS").is_some() {
            if let Err(e) = std::fs::write(&file, &current) {
                panic!("cannot write {}: {e}", file.display());
            }
            return;
        }
        let on_disk = std::fs::read_to_string(&file).unwrap_or_default();
        assert!(
            on_disk == current,
            "{} is out of date; regenerate it with `BERTH_BLESS=1 cargo test -p berth-orchestrator schema`",
            file.display()
        );
    }

    #[test]
    fn schema_is_strict() {
        let s = schema();
        assert_eq!(s["additionalProperties"], json!(false));
        assert_eq!(s["patternProperties"], json!({"^x-": {}}));
        let service = &s["$defs"]["Service"];
        assert_eq!(service["additionalProperties"], json!(false));
        assert_eq!(service["patternProperties"], json!({"^x-": {}}));
        // blkio_config allows no extensions in the Compose Specification.
        assert_eq!(s["$defs"]["BlkioConfig"]["additionalProperties"], json!(false));
        assert!(s["$defs"]["BlkioConfig"].get("patternProperties").is_none());
        assert_eq!(s["properties"]["services"]["propertyNames"], json!({"pattern": NAME_PATTERN}));
        assert!(s["properties"].get("version").is_some());
    }

    #[test]
    fn valid_project_passes() {
        let project = crate::compose::model::tests::full_project_json();
        let diags = validate(&tree(project));
        assert!(diags.is_empty(), "{diags:#?}");
        let minimal = validate(&tree(json!({"services": {"web": {"image": "nginx"}}})));
        assert!(minimal.is_empty(), "{minimal:#?}");
    }

    #[test]
    fn printed_model_validates() {
        // What berth prints (compose config) must load again.
        let project: Project =
            serde_json::from_value(crate::compose::model::tests::full_project_json()).unwrap_or_default();
        let printed = serde_json::to_value(&project).unwrap_or_default();
        let diags = validate(&tree(printed));
        assert!(diags.is_empty(), "{diags:#?}");
    }

    #[test]
    fn unknown_key_with_suggestion() {
        let t = tree(json!({"services": {"web": {"imgae": "nginx"}}}));
        let d = validate(&t);
        assert_eq!(messages(&d), vec!["unknown key `imgae` in service `web`"]);
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `image`?"));
        assert_eq!(d[0].span, t.key_span_at(&path(&["services", "web", "imgae"])));
        assert_eq!(d[0].span.column, 1, "points at the key");

        let t = tree(json!({"services": {"web": {"build": {"context": ".", "dockerfil": "x"}}}, "netwroks": {}}));
        let d = validate(&t);
        assert_eq!(
            messages(&d),
            vec!["unknown key `dockerfil` in `build` of service `web`", "unknown key `netwroks` at the top level"]
        );
        assert_eq!(d[0].hint.as_deref(), Some("did you mean `dockerfile`?"));
        assert_eq!(d[1].hint.as_deref(), Some("did you mean `networks`?"));

        let d = validate(&tree(json!({"services": {"web": {"zzzzzzzz": 1}}})));
        assert_eq!(d[0].hint.as_deref(), Some("keys of your own must start with `x-`"));
    }

    #[test]
    fn wrong_type_points_at_the_value() {
        let t = tree(json!({"services": {"web": {"ports": [{"target": "abc", "published": "80"}]}}}));
        let d = validate(&t);
        assert_eq!(messages(&d), vec!["services.web.ports[0].target: expected an integer, found a string \"abc\""]);
        let target = path(&["services", "web", "ports", "0", "target"]);
        assert_eq!(d[0].span, t.span_at(&target));
        assert_eq!(d[0].span.to_string(), format!("compose.yaml:{}:5", t.span_at(&target).line));

        let d = validate(&tree(json!({"services": {"web": {"cpus": "lots", "healthcheck": []}}})));
        assert_eq!(
            messages(&d),
            vec![
                "services.web.cpus: expected a number, found a string \"lots\"",
                "services.web.healthcheck: expected a mapping, found a sequence",
            ]
        );
    }

    #[test]
    fn several_errors_sorted_by_position() {
        let t = tree(json!({
            "services": {
                "web": {"image": ["x"], "restart": "always", "ports": [{"target": 70000}]},
                "db": {"environment": {"A": ["x"]}, "depends_on": {"web": {"condition": "service_ready"}}},
            },
            "volumes": {"data": {"external": "maybe"}},
        }));
        let d = validate(&t);
        assert_eq!(
            messages(&d),
            vec![
                "services.web.image: expected a string, found a sequence",
                "services.web.ports[0].target: expected at most 65535, found an integer 70000",
                "services.db.environment.A: expected a string, found a sequence",
                "services.db.depends_on.web.condition: expected one of `service_started`, `service_healthy`, \
                 `service_completed_successfully`, found a string \"service_ready\"",
                "volumes.data.external: expected a boolean, found a string \"maybe\"",
            ]
        );
        let lines: Vec<usize> = d.iter().map(|d| d.span.line).collect();
        assert!(lines.windows(2).all(|w| w[0] <= w[1]), "{lines:?}");
    }

    #[test]
    fn required_keys_patterns_and_names() {
        let t = tree(json!({
            "services": {
                "my web": {"image": "x"},
                "app": {
                    "volumes": [{"source": "data", "target": "/data"}],
                    "healthcheck": {"interval": "10"},
                    "mem_limit": "lots",
                    "pull_policy": "sometimes",
                },
            },
        }));
        let d = validate(&t);
        assert_eq!(
            messages(&d),
            vec![
                "invalid service name `my web`: use only letters, digits, `.`, `_` and `-`",
                "missing required key `type` in `volumes[0]` of service `app`",
                "services.app.healthcheck.interval: expected a duration such as `10s`, `1m30s` or `500ms`, \
                 found a string \"10\"",
                "services.app.mem_limit: expected a size such as `512m`, `1gb` or a number of bytes, found a string \
                 \"lots\"",
                "services.app.pull_policy: expected text matching \
                 `^(always|never|build|if_not_present|missing|refresh|daily|weekly|every_([0-9]+[wdhms])+)$`, found \
                 a string \"sometimes\"",
            ]
        );
        assert_eq!(d[0].span, t.key_span_at(&path(&["services", "my web"])));
    }

    #[test]
    fn extensions_where_the_spec_allows_them() {
        let ok = tree(json!({
            "x-top": {"anything": [1]},
            "services": {"web": {
                "x-svc": 1,
                "ports": [{"target": 80, "x-port": "p"}],
                "volumes": [{"type": "bind", "source": ".", "target": "/src", "bind": {"x-b": 1}}],
                "build": {"context": ".", "x-build": true},
                "deploy": {"resources": {"limits": {"x-l": 1}}},
            }},
            "networks": {"n": {"x-net": 1}},
            "secrets": {"s": {"file": "f", "x-s": 1}},
        }));
        let d = validate(&ok);
        assert!(d.is_empty(), "{d:#?}");

        let bad = tree(json!({"services": {"web": {
            "blkio_config": {"x-no": 1},
            "env_file": [{"path": "a.env", "x-no": 1}],
            "extends": {"service": "base", "x-no": 1},
        }}}));
        let d = validate(&bad);
        assert_eq!(
            messages(&d),
            vec![
                "unknown key `x-no` in `blkio_config` of service `web`",
                "unknown key `x-no` in `env_file[0]` of service `web`",
                "unknown key `x-no` in `extends` of service `web`",
            ]
        );
    }

    #[test]
    fn nullable_and_alternative_forms() {
        let d = validate(&tree(json!({"services": {"web": {
            "networks": {"front": null},
            "models": ["llm"],
            "develop": {"watch": [{"path": ".", "action": "rebuild", "ignore": "*.tmp"}]},
            "post_start": [{"command": "echo hi", "environment": ["A=1"]}],
            "image": null,
        }}})));
        assert!(d.is_empty(), "{d:#?}");
        let d =
            validate(&tree(json!({"services": {"web": {"develop": {"watch": [{"path": ".", "action": "jump"}]}}}})));
        assert_eq!(
            messages(&d),
            vec![
                "services.web.develop.watch[0].action: expected one of `rebuild`, `sync`, `restart`, `sync+restart`, \
                 `sync+exec`, found a string \"jump\""
            ]
        );
        let d = validate(&tree(json!({"services": {"web": {"post_start": [{"command": 3}]}}})));
        assert_eq!(
            messages(&d),
            vec!["services.web.post_start[0].command: expected a sequence or a string, found an integer 3"]
        );
    }

    #[test]
    fn coercion_of_strings_numbers_and_booleans() {
        let mut t = tree(json!({
            "x-anything": "1",
            "services": {"web": {
                "image": 3,
                "cpus": "0.5",
                "cpu_shares": "512",
                "read_only": "true",
                "tty": "F",
                "init": "1",
                "scale": 2.0,
                "environment": {"A": 1, "B": true, "C": 1.5, "D": null},
                "ports": [{"target": "8080", "published": 80}],
                "ulimits": {"nofile": {"soft": "100", "hard": "200"}},
                "mem_limit": "512m",
                "secrets": [{"source": "s", "mode": "0440", "uid": 103}],
                "group_add": [100],
                "healthcheck": {"retries": "3", "interval": 0},
                "depends_on": {"db": {"condition": "service_started", "required": "False"}},
                "x-ext": "true",
                "stop_signal": "yes",
            }},
            "networks": {"n": {"external": "false", "driver_opts": {"mtu": 1400}}},
        }));
        coerce(&mut t);
        let j = t.to_json();
        let web = &j["services"]["web"];
        assert_eq!(web["image"], json!("3"));
        assert_eq!(web["cpus"], json!(0.5));
        assert_eq!(web["cpu_shares"], json!(512));
        assert_eq!(web["read_only"], json!(true));
        assert_eq!(web["tty"], json!(false));
        assert_eq!(web["init"], json!(true));
        assert_eq!(web["scale"], json!(2));
        assert_eq!(web["environment"], json!({"A": "1", "B": "true", "C": "1.5", "D": null}));
        assert_eq!(web["ports"][0], json!({"target": 8080, "published": "80"}));
        assert_eq!(web["ulimits"]["nofile"], json!({"soft": 100, "hard": 200}));
        assert_eq!(web["mem_limit"], json!("512m"), "a size stays text: the model parses its unit");
        assert_eq!(web["secrets"][0], json!({"source": "s", "mode": "0440", "uid": "103"}));
        assert_eq!(web["group_add"], json!(["100"]));
        assert_eq!(web["healthcheck"], json!({"retries": 3, "interval": "0"}));
        assert_eq!(web["depends_on"]["db"]["required"], json!(false));
        assert_eq!(web["x-ext"], json!("true"), "extensions are left alone");
        assert_eq!(web["stop_signal"], json!("yes"));
        assert_eq!(j["x-anything"], json!("1"));
        assert_eq!(j["networks"]["n"], json!({"external": false, "driver_opts": {"mtu": "1400"}}));
        assert!(validate(&t).is_empty(), "{:#?}", validate(&t));
        // Spans survive coercion.
        assert_eq!(t.span_at(&path(&["services", "web", "cpus"])).column, 5);
    }

    #[test]
    fn coercion_leaves_what_does_not_parse() {
        let mut t =
            tree(json!({"services": {"web": {"cpus": "half", "read_only": "yes", "ports": [{"target": "x"}]}}}));
        coerce(&mut t);
        let web = &t.to_json()["services"]["web"];
        assert_eq!(web["cpus"], json!("half"));
        assert_eq!(web["read_only"], json!("yes"), "only Go's ParseBool spellings are booleans");
        assert_eq!(web["ports"][0]["target"], json!("x"));
        assert_eq!(validate(&t).len(), 3);
    }

    /// Walk a Compose Specification schema and ours side by side, following property names, map values and list
    /// items; note every key the specification has at a place where we have none (`missing`) and the reverse.
    fn compare(
        spec_root: &Json,
        spec: &Json,
        ours: &Json,
        at: &str,
        missing: &mut Vec<String>,
        extra: &mut Vec<String>,
    ) {
        let root = schema();
        let spec_alts = alternatives(spec, spec_root);
        let our_alts = alternatives(ours, root);
        let keys = |alts: &[&Json]| -> BTreeSet<String> {
            alts.iter()
                .filter_map(|a| a.get("properties").and_then(Json::as_object))
                .flat_map(|p| p.keys().cloned())
                .collect()
        };
        let (spec_keys, our_keys) = (keys(&spec_alts), keys(&our_alts));
        // The legacy `external: {name: …}` is rewritten to `external: true` plus `name` before validation.
        if !spec_keys.is_empty() && !at.ends_with(".external") {
            for key in spec_keys.difference(&our_keys) {
                // `include` is resolved before validation.
                if !(at.is_empty() && key == "include") {
                    missing.push(format!("{at}.{key}"));
                }
            }
            for key in our_keys.difference(&spec_keys) {
                extra.push(format!("{at}.{key}"));
            }
        }
        for key in spec_keys.intersection(&our_keys) {
            let sub_spec = spec_alts.iter().find_map(|a| a.get("properties").and_then(|p| p.get(key)));
            let sub_ours = our_alts.iter().find_map(|a| a.get("properties").and_then(|p| p.get(key)));
            if let (Some(sub_spec), Some(sub_ours)) = (sub_spec, sub_ours) {
                compare(spec_root, sub_spec, sub_ours, &format!("{at}.{key}"), missing, extra);
            }
        }
        // Mapping values: the specification's name patterns, our `additionalProperties`.
        let our_values = our_alts.iter().find_map(|a| a.get("additionalProperties").filter(|v| v.is_object()));
        for alt in &spec_alts {
            for (pattern, sub_spec) in alt.get("patternProperties").and_then(Json::as_object).into_iter().flatten() {
                if pattern != EXTENSION_PATTERN
                    && let Some(sub_ours) = our_values
                {
                    compare(spec_root, sub_spec, sub_ours, &format!("{at}{{}}"), missing, extra);
                }
            }
            if let (Some(sub_spec), Some(sub_ours)) = (alt.get("items"), our_alts.iter().find_map(|a| a.get("items"))) {
                compare(spec_root, sub_spec, sub_ours, &format!("{at}[]"), missing, extra);
            }
        }
    }

    /// `exact`: also fail on keys the specification lacks (the newest specification has every key we have).
    fn check_against(relative: &str, exact: bool) {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => panic!("cannot read the Compose Specification at {}: {e}", file.display()),
        };
        let spec: Json = match serde_json::from_str(&text) {
            Ok(s) => s,
            Err(e) => panic!("{} is not JSON: {e}", file.display()),
        };
        let (mut missing, mut extra) = (Vec::new(), Vec::new());
        compare(&spec, &spec, schema(), "", &mut missing, &mut extra);
        assert!(missing.is_empty(), "keys of {} missing from our schema: {missing:#?}", file.display());
        assert!(!exact || extra.is_empty(), "keys of our schema that {} does not have: {extra:#?}", file.display());
    }

    #[test]
    fn covers_the_compose_specification() {
        check_against("../../shared/compose/compose-spec.json", false);
        check_against("../../shared/compose/compose-go-fixtures/schema/compose-spec.json", true);
    }
}
