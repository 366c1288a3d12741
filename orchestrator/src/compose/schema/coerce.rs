//! Schema-directed coercion of scalars (see [`coerce`]).
//!
//! # Why a plan
//! The walk asks the schema the same questions at every node: which alternatives a location offers (`$ref`s
//! followed, `anyOf` flattened), which JSON types they accept, which sub-schema a key or an item has. Answered
//! from the JSON schema each time, that was a fifth of a whole load. So the answers are worked out once per
//! schema location, into a [`Plan`] of [`Location`]s, and the walk only looks up keys.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use serde_json::Value as Json;

use super::{accepted_types, alternative_for, alternatives, schema};
use crate::compose::node::{Node, Value};

/// Schema-directed coercion: walk `node` (the whole project tree) alongside the schema and turn strings into
/// numbers or booleans where the schema wants a number or a boolean and the string parses (`cpus: "0.5"`, a port's
/// `target: "8080"`, `read_only: "true"`), as compose-go casts interpolated values; and numbers or booleans into
/// strings where the schema wants a string (`image: 3`, a port's `published: 8080`, environment values).
///
/// Booleans read as Go's `strconv.ParseBool` does: `1 t T TRUE true True` and `0 f F FALSE false False`.
/// Values the schema does not constrain (`x-` extensions) are left alone; what does not parse is left for
/// validation to report.
pub fn coerce(node: &mut Node) {
    let plan = &*PLAN;
    coerce_at(node, plan, plan.root);
}

static PLAN: LazyLock<Plan> = LazyLock::new(|| Plan::new(schema()));

fn coerce_at(node: &mut Node, plan: &Plan, at: usize) {
    let location = &plan.locations[at];
    if let Some(wants) = location.wants {
        coerce_scalar(node, wants);
    }
    match &mut node.value {
        Value::Map(map) => {
            let Some(object) = &location.object else {
                return;
            };
            for (key, entry) in map.iter_mut() {
                if let Some(child) = object.child(key) {
                    coerce_at(&mut entry.value, plan, child);
                }
            }
        }
        Value::Seq(items) => {
            let Some(item) = location.items else {
                return;
            };
            for node in items.iter_mut() {
                coerce_at(node, plan, item);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The plan.

/// Every schema location the walk can reach, each compiled once. Locations refer to each other by index.
struct Plan {
    locations: Vec<Location>,
    root: usize,
}

/// What the walk needs to know at one schema location.
#[derive(Default)]
struct Location {
    /// The scalar types the location accepts; `None` when one of its alternatives accepts any value.
    wants: Option<Wants>,
    /// Its first alternative that takes a mapping, if any.
    object: Option<Object>,
    /// The location of the items of its first alternative that takes a sequence, if any.
    items: Option<usize>,
}

/// Where the keys of a mapping lead: a declared property, else the first `^prefix` pattern that matches, else the
/// schema of the other keys (the order in which [`super::property_schema`] looks).
struct Object {
    properties: HashMap<&'static str, usize>,
    prefixes: Vec<(&'static str, usize)>,
    additional: Option<usize>,
}

impl Object {
    fn child(&self, key: &str) -> Option<usize> {
        if let Some(&at) = self.properties.get(key) {
            return Some(at);
        }
        match self.prefixes.iter().find(|(prefix, _)| key.starts_with(prefix)) {
            Some(&(_, at)) => Some(at),
            None => self.additional,
        }
    }
}

/// Which of the types that coercion converts between a location accepts.
#[derive(Clone, Copy, Debug)]
struct Wants {
    string: bool,
    integer: bool,
    number: bool,
    boolean: bool,
}

impl Wants {
    fn of(types: &BTreeSet<&str>) -> Self {
        Wants {
            string: types.contains("string"),
            integer: types.contains("integer"),
            number: types.contains("number"),
            boolean: types.contains("boolean"),
        }
    }
}

impl Plan {
    fn new(root: &'static Json) -> Self {
        let mut compiler = Compiler { root, locations: Vec::new(), seen: HashMap::new() };
        let root = compiler.location(root);
        Plan { locations: compiler.locations, root }
    }
}

struct Compiler {
    root: &'static Json,
    locations: Vec<Location>,
    /// Locations already compiled, by the address of their schema: a definition that several `$ref`s name is
    /// compiled once, and a recursive one would not loop.
    seen: HashMap<*const Json, usize>,
}

impl Compiler {
    fn location(&mut self, schema: &'static Json) -> usize {
        let id: *const Json = schema;
        if let Some(&at) = self.seen.get(&id) {
            return at;
        }
        let at = self.locations.len();
        self.locations.push(Location::default());
        self.seen.insert(id, at);
        let alts = alternatives(schema, self.root);
        let wants = accepted_types(&alts).map(|types| Wants::of(&types));
        let object = alternative_for(&alts, "object").map(|o| self.object(o));
        let items = alternative_for(&alts, "array").and_then(|a| a.get("items")).map(|s| self.location(s));
        self.locations[at] = Location { wants, object, items };
        at
    }

    fn object(&mut self, object: &'static Json) -> Object {
        let mut properties = HashMap::new();
        for (key, sub) in object.get("properties").and_then(Json::as_object).into_iter().flatten() {
            properties.insert(key.as_str(), self.location(sub));
        }
        let mut prefixes = Vec::new();
        for (pattern, sub) in object.get("patternProperties").and_then(Json::as_object).into_iter().flatten() {
            // Only `^literal` patterns ever match (see `prefix_pattern_matches`).
            if let Some(prefix) = literal_prefix(pattern) {
                prefixes.push((prefix, self.location(sub)));
            }
        }
        let additional = object.get("additionalProperties").filter(|a| a.is_object()).map(|a| self.location(a));
        Object { properties, prefixes, additional }
    }
}

/// The literal of a `^literal` pattern; `None` for any other pattern.
pub(super) fn literal_prefix(pattern: &str) -> Option<&str> {
    pattern.strip_prefix('^').filter(|p| !p.contains(['.', '*', '+', '?', '[', '(', '|', '$', '\\']))
}

// ---------------------------------------------------------------------------------------------------------------
// Scalars.

fn coerce_scalar(node: &mut Node, wants: Wants) {
    let numeric = wants.integer || wants.number;
    let replacement = match &node.value {
        Value::String(s) if !wants.string => parse_as(s, wants),
        // `replicas: 2.0` is an integer for JSON Schema, but not for serde.
        Value::Float(f) if wants.integer && !wants.number && f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Some(Value::Int(*f as i64))
        }
        Value::Int(_) | Value::Float(_) if !numeric && wants.string => node.scalar_text().map(Value::String),
        Value::Float(_) if !wants.number && wants.string => node.scalar_text().map(Value::String),
        Value::Bool(_) if !wants.boolean && wants.string => node.scalar_text().map(Value::String),
        _ => None,
    };
    if let Some(value) = replacement {
        node.value = value;
    }
}

/// A string as the integer, number or boolean the schema wants, when it parses as one.
fn parse_as(s: &str, wants: Wants) -> Option<Value> {
    if (wants.integer || wants.number)
        && let Some(i) = parse_int(s)
    {
        return Some(Value::Int(i));
    }
    if wants.number
        && let Some(f) = parse_float(s)
    {
        return Some(Value::Float(f));
    }
    if wants.boolean { parse_bool(s).map(Value::Bool) } else { None }
}

/// Decimal integers as Go's `strconv.Atoi` reads them: an optional sign and digits, nothing else.
fn parse_int(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Finite decimal numbers (`0.5`, `1e3`); not `inf` or `NaN`, which no compose attribute means.
fn parse_float(s: &str) -> Option<f64> {
    let looks_numeric = s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'));
    s.parse::<f64>().ok().filter(|f| looks_numeric && f.is_finite())
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}
