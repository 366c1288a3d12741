//! The YAML document tree every loader phase works on.
//!
//! Why not `serde_norway::Value`: it forgets where each value came from, and every error the loader reports must
//! name file, line and column. So the parser builds this tree, each node keeping its [`Span`] and its compose tag
//! (`!reset`, `!override`), and the phases (interpolation, canonical form, merge, extends, include) rewrite it.
//! Only at the end is it turned into JSON for schema validation; the typed model decodes from the tree itself
//! (it is a serde `Deserializer`, see `de.rs`).

use indexmap::IndexMap;

use super::error::Span;

mod de;

/// The compose-specific YAML tags that steer merging.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// `!reset`: the value removes what earlier files set (and itself becomes empty/absent).
    Reset,
    /// `!override`: the value replaces what earlier files set instead of merging with it.
    Override,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Mapping),
}

/// A mapping keeps insertion order (output follows the source) and the span of each key.
///
/// Hashed with foldhash rather than SipHash: every phase looks keys up, and SipHash was a tenth of a load.
/// foldhash still seeds each map randomly, so crafted keys cannot force collisions.
pub type Mapping = IndexMap<String, Entry, foldhash::fast::RandomState>;

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key_span: Span,
    pub value: Node,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
    pub tag: Option<Tag>,
}

impl Node {
    pub fn new(value: Value, span: Span) -> Self {
        Node { value, span, tag: None }
    }

    pub fn string(s: impl Into<String>, span: Span) -> Self {
        Node::new(Value::String(s.into()), span)
    }

    pub fn map(span: Span) -> Self {
        Node::new(Value::Map(Mapping::default()), span)
    }

    pub fn as_map(&self) -> Option<&Mapping> {
        match &self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_map_mut(&mut self) -> Option<&mut Mapping> {
        match &mut self.value {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The child under `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?.get(key).map(|e| &e.value)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        self.as_map_mut()?.get_mut(key).map(|e| &mut e.value)
    }

    /// Insert or replace `key` in a mapping node; the key takes this node's span when it is new.
    /// Does nothing when the node is not a mapping.
    pub fn insert(&mut self, key: impl Into<String>, value: Node) {
        if let Value::Map(m) = &mut self.value {
            match m.entry(key.into()) {
                indexmap::map::Entry::Occupied(entry) => entry.into_mut().value = value,
                indexmap::map::Entry::Vacant(slot) => {
                    slot.insert(Entry { key_span: self.span.clone(), value });
                }
            }
        }
    }

    /// Scalars as the text a user wrote (numbers and booleans rendered), `None` for collections and null.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(format_float(*f)),
            Value::String(s) => Some(s.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// A short name of the node's kind for messages: "a string", "a mapping", …
    pub fn kind_name(&self) -> &'static str {
        match &self.value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::String(_) => "a string",
            Value::Seq(_) => "a sequence",
            Value::Map(_) => "a mapping",
        }
    }

    /// The node at a path of mapping keys and sequence indices (as in a JSON pointer, already split).
    pub fn pointer(&self, path: &[String]) -> Option<&Node> {
        let mut node = self;
        for part in path {
            node = match &node.value {
                Value::Map(m) => &m.get(part.as_str())?.value,
                Value::Seq(s) => s.get(part.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// The span of the deepest node on `path` that exists: errors about a missing child point at its parent.
    pub fn span_at(&self, path: &[String]) -> Span {
        let mut node = self;
        for part in path {
            let next = match &node.value {
                Value::Map(m) => m.get(part.as_str()).map(|e| &e.value),
                Value::Seq(s) => part.parse::<usize>().ok().and_then(|i| s.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => break,
            }
        }
        node.span.clone()
    }

    /// The span of the key `path.last()` in its parent mapping, falling back to [`Node::span_at`].
    pub fn key_span_at(&self, path: &[String]) -> Span {
        if let Some((last, parent)) = path.split_last()
            && let Some(entry) = self.pointer(parent).and_then(|p| p.as_map()).and_then(|m| m.get(last.as_str()))
        {
            return entry.key_span.clone();
        }
        self.span_at(path)
    }

    /// Plain JSON of this tree (tags dropped), for schema validation and typed decoding.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map(J::Number).unwrap_or(J::Null),
            Value::String(s) => J::String(s.clone()),
            Value::Seq(s) => J::Array(s.iter().map(Node::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, e)| (k.clone(), e.value.to_json())).collect()),
        }
    }

    /// A tree from JSON, every node at `span` (for values berth synthesizes, such as defaults).
    pub fn from_json(json: &serde_json::Value, span: &Span) -> Node {
        use serde_json::Value as J;
        let value = match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(0.0)),
            },
            J::String(s) => Value::String(s.clone()),
            J::Array(a) => Value::Seq(a.iter().map(|j| Node::from_json(j, span)).collect()),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Entry { key_span: span.clone(), value: Node::from_json(v, span) }))
                    .collect(),
            ),
        };
        Node::new(value, span.clone())
    }
}

/// Floats as YAML writes them: `1.5`, `1e+30`, and whole numbers with a trailing `.0` dropped.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { ".inf".into() } else { "-.inf".into() }
    } else {
        f.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> Node {
        let mut root = Node::map(Span::default());
        let mut svc = Node::map(Span::new(None, 2, 3));
        svc.insert("image", Node::string("busybox", Span::new(None, 3, 12)));
        root.insert("web", svc);
        root
    }

    #[test]
    fn pointer_and_spans() {
        let t = tree();
        let path = vec!["web".to_string(), "image".to_string()];
        assert_eq!(t.pointer(&path).and_then(Node::as_str), Some("busybox"));
        assert_eq!(t.span_at(&path).line, 3);
        // A missing child reports its parent's position.
        let missing = vec!["web".to_string(), "ports".to_string(), "0".to_string()];
        assert_eq!(t.span_at(&missing).line, 2);
    }

    #[test]
    fn json_round_trip() {
        let t = tree();
        let j = t.to_json();
        assert_eq!(j["web"]["image"], "busybox");
        let back = Node::from_json(&j, &Span::default());
        assert_eq!(back.to_json(), j);
    }
}
