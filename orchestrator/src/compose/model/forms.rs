//! Readers for the few secondary attributes whose short syntax the canonical pass leaves alone.
//!
//! The loader rewrites the short syntax of the attributes it merges by key (environment, ports, volumes, …) before
//! validation. For some rarely used ones (a hook's `command`, `develop.watch[].ignore`, a device request's
//! `options`, a service's `models` list, …) compose allows a short form too; rather than rejecting a valid file,
//! the model reads both forms and always holds, and prints, the long one. Each reader has a schema function
//! describing both forms, so validation accepts exactly what decoding accepts.

use indexmap::IndexMap;
use schemars::{Schema, SchemaGenerator, json_schema};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// A scalar compose accepts where text is meant (`3`, `true`), kept as the text.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    String(String),
    Bool(bool),
    Int(i64),
    Float(f64),
}

impl Scalar {
    fn into_text(self) -> String {
        match self {
            Scalar::String(s) => s,
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => crate::compose::node::format_float(f),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Scalar),
    Many(Vec<Scalar>),
}

impl OneOrMany {
    fn into_list(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.into_text()],
            OneOrMany::Many(v) => v.into_iter().map(Scalar::into_text).collect(),
        }
    }
}

/// `ignore: "*.tmp"` is `ignore: ["*.tmp"]`.
pub fn string_or_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(Option::<OneOrMany>::deserialize(deserializer)?.map(OneOrMany::into_list).unwrap_or_default())
}

pub fn string_or_list_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "string"},
        ],
    })
}

/// A mapping value of `provider.options`: one value or several, always held as a list.
pub fn options_lists<'de, D: Deserializer<'de>>(deserializer: D) -> Result<IndexMap<String, Vec<String>>, D::Error> {
    let map = Option::<IndexMap<String, OneOrMany>>::deserialize(deserializer)?.unwrap_or_default();
    Ok(map.into_iter().map(|(k, v)| (k, v.into_list())).collect())
}

pub fn options_lists_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "additionalProperties": {
            "anyOf": [
                {"type": "array", "items": {"type": "string"}},
                {"type": "string"},
            ],
        },
    })
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ListOrDict {
    Dict(IndexMap<String, Option<Scalar>>),
    List(Vec<String>),
}

impl ListOrDict {
    /// `["A=1", "B"]` and `{A: 1, B: null}` both give `{A: Some("1"), B: None}`.
    fn into_map(self) -> IndexMap<String, Option<String>> {
        match self {
            ListOrDict::Dict(m) => m.into_iter().map(|(k, v)| (k, v.map(Scalar::into_text))).collect(),
            ListOrDict::List(l) => l
                .into_iter()
                .map(|entry| match entry.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (entry, None),
                })
                .collect(),
        }
    }
}

/// Labels-like: a bare key in the list form has the empty value.
pub fn dict<'de, D: Deserializer<'de>>(deserializer: D) -> Result<IndexMap<String, String>, D::Error> {
    let map = Option::<ListOrDict>::deserialize(deserializer)?.map(ListOrDict::into_map).unwrap_or_default();
    Ok(map.into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect())
}

/// Environment-like: a bare key stays unresolved (`None`).
pub fn dict_opt<'de, D: Deserializer<'de>>(deserializer: D) -> Result<IndexMap<String, Option<String>>, D::Error> {
    Ok(Option::<ListOrDict>::deserialize(deserializer)?.map(ListOrDict::into_map).unwrap_or_default())
}

pub fn dict_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "object", "additionalProperties": {"type": "string"}},
            {"type": "array", "items": {"type": "string"}},
        ],
    })
}

pub fn dict_opt_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
            {"type": "array", "items": {"type": "string"}},
        ],
    })
}

/// `models: [llm]` is `models: {llm: null}`.
pub fn null_map<'de, D, T>(deserializer: D) -> Result<IndexMap<String, Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form<T> {
        Map(IndexMap<String, Option<T>>),
        List(Vec<String>),
    }
    Ok(match Option::<Form<T>>::deserialize(deserializer)? {
        None => IndexMap::new(),
        Some(Form::Map(m)) => m,
        Some(Form::List(l)) => l.into_iter().map(|k| (k, None)).collect(),
    })
}

/// A command as a string (split like a POSIX shell would, as compose does) or as a list; null stays unset.
pub fn command<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        Shell(String),
        Exec(Vec<String>),
    }
    match Option::<Form>::deserialize(deserializer)? {
        None => Ok(None),
        Some(Form::Exec(words)) => Ok(Some(words)),
        Some(Form::Shell(line)) => shell_words::split(&line)
            .map(Some)
            .map_err(|e| D::Error::custom(format!("cannot split command {line:?}: {e}"))),
    }
}

pub fn command_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "string"},
            {"type": "null"},
        ],
    })
}

/// `ssh: {default: null, key: ./id}` is `ssh: [default, key=./id]`, the list form compose prints.
pub fn ssh_keys<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    Ok(match Option::<ListOrDict>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(ListOrDict::List(l)) => l,
        Some(dict @ ListOrDict::Dict(_)) => dict
            .into_map()
            .into_iter()
            .map(|(id, path)| match path {
                Some(path) if !path.is_empty() => format!("{id}={path}"),
                _ => id,
            })
            .collect(),
    })
}

pub fn ssh_keys_schema(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "anyOf": [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Probe {
        #[serde(deserialize_with = "string_or_list")]
        list: Vec<String>,
        #[serde(deserialize_with = "dict")]
        labels: IndexMap<String, String>,
        #[serde(deserialize_with = "dict_opt")]
        env: IndexMap<String, Option<String>>,
        #[serde(deserialize_with = "command")]
        cmd: Option<Vec<String>>,
        #[serde(deserialize_with = "null_map")]
        models: IndexMap<String, Option<String>>,
        #[serde(deserialize_with = "ssh_keys")]
        ssh: Vec<String>,
        #[serde(deserialize_with = "options_lists")]
        options: IndexMap<String, Vec<String>>,
    }

    fn probe(j: serde_json::Value) -> Probe {
        match serde_json::from_value(j) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn short_forms_read_as_long_forms() {
        let p = probe(json!({
            "list": "*.tmp",
            "labels": ["a=1", "b"],
            "env": ["A=1", "B"],
            "cmd": "echo 'hello world'",
            "models": ["llm"],
            "ssh": {"default": null, "key": "./id"},
            "options": {"one": 1, "many": ["a", true]},
        }));
        assert_eq!(p.list, vec!["*.tmp"]);
        assert_eq!(p.labels.get("b").map(String::as_str), Some(""));
        assert_eq!(p.env.get("A"), Some(&Some("1".to_string())));
        assert_eq!(p.env.get("B"), Some(&None));
        assert_eq!(p.cmd, Some(vec!["echo".to_string(), "hello world".to_string()]));
        assert_eq!(p.models.get("llm"), Some(&None));
        assert_eq!(p.ssh, vec!["default", "key=./id"]);
        assert_eq!(p.options["one"], vec!["1"]);
        assert_eq!(p.options["many"], vec!["a", "true"]);
        let long = probe(json!({"labels": {"n": 3}, "cmd": ["a", "b"], "env": {"X": null}}));
        assert_eq!(long.labels["n"], "3");
        assert_eq!(long.cmd, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(long.env.get("X"), Some(&None));
        assert_eq!(probe(json!({"cmd": null})).cmd, None);
    }
}
