//! The project tree as an instance the validator reads in place.
//!
//! # Why
//! Validating a `serde_json::Value` meant copying the whole tree into one first (every key and string), then
//! freeing it: together more than the validation itself. `jsonschema` validates any representation that
//! implements its `Json` traits, so [`Tree`] lets it read [`Node`]s directly.
//!
//! # Guarantees
//! Every node reads as the JSON value [`Node::to_json`] gives it: integers and finite floats are numbers (as
//! `serde_json::Number`s), floats JSON cannot hold are null, sequences are arrays, mappings are objects in
//! their order. So the validator's answer is the one it gives for that JSON. [`super::validate`] uses this for
//! the yes/no question only and still reports errors from the JSON, so messages cannot differ.

use std::borrow::Cow;

use jsonschema::JsonType;
use jsonschema::json::{Array, Json, Node as JsonNode, NodeIdentity, Object, cmp};
use serde_json::{Number, Value as JsonValue};

use crate::compose::error::Span;
use crate::compose::node::{Entry, Mapping, Node, Value};

/// The representation: a node of the tree is an instance (or part of one).
pub struct Tree;

/// Backs the nodes that stand for property names (`propertyNames` validates them as strings).
pub struct NameNode(Node);

impl Default for NameNode {
    fn default() -> Self {
        NameNode(Node::new(Value::Null, Span::default()))
    }
}

impl Json for Tree {
    type Node<'a> = &'a Node;
    type PreparedKey = String;
    type StringBuffer = NameNode;

    // A tree holds each node once: none is its own descendant.
    const ACYCLIC: bool = true;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(buffer: &mut NameNode, string: &str, f: impl FnOnce(&Node) -> T) -> T {
        match &mut buffer.0.value {
            Value::String(s) => {
                s.clear();
                s.push_str(string);
            }
            other => *other = Value::String(string.to_owned()),
        }
        f(&buffer.0)
    }
}

/// What JSON value a node is, the way `Node::to_json` writes it.
enum Kind<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(&'a str),
    Array,
    Object,
}

fn kind(node: &Node) -> Kind<'_> {
    match &node.value {
        Value::Null => Kind::Null,
        Value::Bool(b) => Kind::Bool(*b),
        Value::Int(i) => Kind::Number(Number::from(*i)),
        Value::Float(f) => Number::from_f64(*f).map_or(Kind::Null, Kind::Number),
        Value::String(s) => Kind::String(s),
        Value::Seq(_) => Kind::Array,
        Value::Map(_) => Kind::Object,
    }
}

impl<'a> JsonNode<'a, Tree> for &'a Node {
    type Object = &'a Mapping;
    type Array = &'a [Node];
    type Number = Number;

    fn as_object(&self) -> Option<&'a Mapping> {
        self.as_map()
    }

    fn as_array(&self) -> Option<&'a [Node]> {
        self.as_seq()
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        Node::as_str(self).map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<Number> {
        match kind(self) {
            Kind::Number(n) => Some(n),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.value {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(kind(self), Kind::Null)
    }

    fn json_type(&self) -> JsonType {
        match kind(self) {
            Kind::Null => JsonType::Null,
            Kind::Bool(_) => JsonType::Boolean,
            Kind::Number(_) => JsonType::Number,
            Kind::String(_) => JsonType::String,
            Kind::Array => JsonType::Array,
            Kind::Object => JsonType::Object,
        }
    }

    /// `const` and `enum`: scalars compare without building their JSON.
    fn equals_value(&self, expected: &JsonValue) -> bool {
        match (kind(self), expected) {
            (Kind::Null, JsonValue::Null) => true,
            (Kind::Bool(b), JsonValue::Bool(e)) => b == *e,
            (Kind::Number(n), JsonValue::Number(e)) => cmp::equal_numbers(&n, e),
            (Kind::String(s), JsonValue::String(e)) => s == e,
            (Kind::Array | Kind::Object, _) => cmp::equal(&self.to_json(), expected),
            _ => false,
        }
    }

    fn to_value(&self) -> Cow<'a, JsonValue> {
        Cow::Owned(self.to_json())
    }

    fn identity(&self) -> Option<NodeIdentity> {
        let address: *const Node = *self;
        Some(NodeIdentity::new(address as usize))
    }
}

impl<'a> Object<'a, Tree> for &'a Mapping {
    type Node = &'a Node;
    type MemberName = &'a str;
    type MembersIter = Members<'a>;

    fn len(&self) -> usize {
        Mapping::len(self)
    }

    fn get(&self, key: &String) -> Option<&'a Node> {
        Mapping::get(self, key.as_str()).map(|e| &e.value)
    }

    fn members(&self) -> Members<'a> {
        Members(self.iter())
    }
}

pub struct Members<'a>(indexmap::map::Iter<'a, String, Entry>);

impl<'a> Iterator for Members<'a> {
    type Item = (&'a str, &'a Node);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(key, entry)| (key.as_str(), &entry.value))
    }
}

impl<'a> Array<'a, Tree> for &'a [Node] {
    type Node = &'a Node;
    type ElementsIter = std::slice::Iter<'a, Node>;

    fn len(&self) -> usize {
        <[Node]>::len(self)
    }

    fn elements(&self) -> std::slice::Iter<'a, Node> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value as Json, json};

    use super::super::{TREE_VALIDATOR, VALIDATOR};
    use crate::compose::error::Span;
    use crate::compose::node::{Node, Value};

    /// The tree and its JSON get the same answer.
    fn agree(json: &Json) -> bool {
        let (Ok(on_tree), Ok(on_json)) = (&*TREE_VALIDATOR, &*VALIDATOR) else {
            panic!("the schema does not compile");
        };
        let tree = Node::from_json(json, &Span::default());
        let answer = on_json.is_valid(json);
        assert_eq!(on_tree.is_valid(&tree), answer, "{json}");
        answer
    }

    /// Every value of `json` (at any depth), replaced in turn by each candidate.
    fn variants(json: &Json, out: &mut Vec<Json>) {
        let candidates = [
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(70000),
            json!(1.5),
            json!(2.0),
            json!(""),
            json!("x"),
            json!("10s"),
            json!([]),
            json!(["a", "a"]),
            json!({}),
            json!({"x-a": 1}),
            json!({"zzz": 1}),
        ];
        fn walk(root: &Json, at: &mut Vec<String>, candidates: &[Json], out: &mut Vec<Json>) {
            let here = root.pointer(&pointer(at)).cloned().unwrap_or(Json::Null);
            if !at.is_empty() {
                for c in candidates {
                    let mut v = root.clone();
                    if let Some(slot) = v.pointer_mut(&pointer(at)) {
                        *slot = c.clone();
                    }
                    out.push(v);
                }
            }
            let children: Vec<String> = match &here {
                Json::Object(m) => m.keys().cloned().collect(),
                Json::Array(a) => (0..a.len()).map(|i| i.to_string()).collect(),
                _ => Vec::new(),
            };
            for c in children {
                at.push(c);
                walk(root, at, candidates, out);
                at.pop();
            }
        }
        fn pointer(at: &[String]) -> String {
            at.iter().map(|p| format!("/{}", p.replace('~', "~0").replace('/', "~1"))).collect()
        }
        walk(json, &mut Vec::new(), &candidates, out);
    }

    #[test]
    fn tree_and_json_agree() {
        let full = crate::compose::model::tests::full_project_json();
        assert!(agree(&full));
        let mut all = Vec::new();
        variants(&full, &mut all);
        variants(&json!({"services": {"web": {"image": "nginx", "ports": [{"target": 80}]}}}), &mut all);
        assert!(all.len() > 1000, "{}", all.len());
        let mut valid = 0;
        for v in &all {
            valid += usize::from(agree(v));
        }
        // Both answers occur often.
        assert!(valid > 100 && all.len() - valid > 100, "{valid} of {} valid", all.len());
    }

    #[test]
    fn floats_json_cannot_hold_are_null() {
        let (Ok(on_tree), Ok(on_json)) = (&*TREE_VALIDATOR, &*VALIDATOR) else {
            panic!("the schema does not compile");
        };
        let mut tree = Node::from_json(&json!({"services": {"web": {"image": "x", "cpus": 1}}}), &Span::default());
        for f in [f64::NAN, f64::INFINITY, 0.5] {
            if let Some(cpus) = tree.get_mut("services").and_then(|s| s.get_mut("web")).and_then(|w| w.get_mut("cpus"))
            {
                cpus.value = Value::Float(f);
            }
            assert_eq!(on_tree.is_valid(&tree), on_json.is_valid(&tree.to_json()), "{f}");
        }
    }
}
