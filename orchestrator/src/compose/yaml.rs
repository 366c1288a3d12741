//! The YAML front end of the compose loader: text → [`Node`] tree.
//!
//! # Design
//!
//! Every later phase reports errors with file, line and column, so the tree must remember where each value came
//! from. Off-the-shelf YAML value types forget positions, so this module builds its own tree from the low-level
//! event stream of `saphyr-parser` (which gives a span for every event). The builder folds the events with an
//! explicit stack of the collections still open ([`Open`]): a scalar or alias becomes a node at once, a collection
//! when its end event comes, and each finished node goes into its parent. No recursion over user data, so no input
//! can overflow the thread's stack; nesting is bounded by [`MAX_DEPTH`] instead.
//!
//! It follows what Docker Compose sees through Go's `yaml.v3`:
//! - plain scalars are resolved like yaml.v3 does (YAML 1.2 core schema plus its compatibility rules: `_` digit
//!   separators, `0x`/`0o`/`0b` and legacy `0755` octal integers); quoted and block scalars are strings;
//! - the standard tags `!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!map`, `!!seq` are honoured;
//! - the compose tags `!reset` and `!override` are kept in [`Node::tag`], any other local tag is an error;
//! - aliases are deep copies of their anchored node, bounded in total size ("billion laughs") and depth;
//! - merge keys `<<` insert the entries of a mapping (or of a list of mappings, earlier ones winning) that the
//!   mapping does not define itself;
//! - mapping keys are the text of scalars (`80: x` has key `"80"`), and a key defined twice is an error.
//!
//! Spans are 1-based lines and columns (columns counted in characters) of the start of each node's event; for block
//! scalars (`|`, `>`) that is the first line of their content.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use indexmap::map::Entry as Slot;
use saphyr_parser::{Event, Marker, Parser, ScalarStyle, ScanError, StrInput};

use super::error::{Diagnostic, Span};
use super::node::{Entry, Mapping, Node, Tag, Value};

/// The most nodes one file may produce, counting every copy an alias makes (guards against alias bombs).
const MAX_NODES: usize = 1_000_000;

/// The deepest nesting of sequences and mappings accepted.
const MAX_DEPTH: usize = 256;

/// The handle saphyr gives the standard `!!` tags.
const CORE_PREFIX: &str = "tag:yaml.org,2002:";

/// Parse one compose file into a Node tree. `file` goes into every span (1-based line and column).
/// An empty document (or only comments) gives a Node with Value::Null.
pub fn parse(text: &str, file: Option<Arc<Path>>) -> Result<Node, Diagnostic> {
    Builder::new(text, file).stream()
}

/// A node anchored with `&name`, kept for the aliases that refer to it.
struct Anchored {
    node: Node,
    /// Number of nodes in the tree, charged to the budget at each copy.
    size: usize,
    /// Levels of collections in the tree (0 for a scalar).
    height: usize,
}

/// A sequence or mapping whose end event has not come yet.
struct Open {
    /// Where its start event is.
    at: saphyr_parser::Span,
    anchor: usize,
    tag: Option<Tag>,
    content: Content,
}

enum Content {
    Seq(Vec<Node>),
    Map {
        /// The entries with keys of their own, in order. A key written twice is found here.
        entries: Mapping,
        /// The mappings of each `<<` entry, with the number of entries written before it.
        merges: Vec<(usize, Vec<Mapping>)>,
        /// The line of the `<<` key, once seen: it may appear once too.
        merge_line: Option<usize>,
        /// The entry whose key was read and whose value comes next.
        pending: Option<Pending>,
    },
}

impl Content {
    fn map() -> Self {
        Content::Map { entries: Mapping::default(), merges: Vec::new(), merge_line: None, pending: None }
    }
}

/// A mapping entry waiting for its value.
enum Pending {
    /// The index of its slot in `entries`, taken when the key came (so each key is hashed once).
    Entry(usize),
    /// The merge key `<<`, at this position.
    Merge(Span),
}

/// A mapping key as text, with its position.
struct Key {
    text: String,
    span: Span,
    /// Whether it is the merge key `<<`.
    merge: bool,
}

/// Whether the next event of this open collection is a mapping key.
fn awaits_key(open: Option<&Open>) -> bool {
    matches!(open, Some(Open { content: Content::Map { pending: None, .. }, .. }))
}

/// Add a finished node to its open parent: an item of a sequence, or the value of the pending mapping key.
fn add(parent: &mut Open, node: Node) -> Result<(), Diagnostic> {
    match &mut parent.content {
        Content::Seq(items) => items.push(node),
        Content::Map { entries, merges, pending, .. } => match pending.take() {
            Some(Pending::Merge(key_span)) => merges.push((entries.len(), merge_sources(node, &key_span)?)),
            Some(Pending::Entry(index)) => {
                if let Some((_, entry)) = entries.get_index_mut(index) {
                    entry.value = node;
                }
            }
            None => {
                return Err(Diagnostic::new(node.span, "invalid YAML: a mapping value without a key"));
            }
        },
    }
    Ok(())
}

/// What a YAML tag asks for, once resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TagKind {
    /// No tag: plain scalars are resolved, the rest are strings.
    None,
    /// The non-specific tag `!`: a scalar is a string.
    NonSpecific,
    Compose(Tag),
    Core(Core),
}

/// The standard tags this loader honours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Core {
    Str,
    Int,
    Float,
    Bool,
    Null,
    Map,
    Seq,
    Merge,
}

type Spanned<'a> = (Event<'a>, saphyr_parser::Span);

struct Builder<'a> {
    text: &'a str,
    file: Option<Arc<Path>>,
    parser: Parser<'a, StrInput<'a>>,
    /// Anchored nodes by saphyr's anchor id; an id is present once its node is complete.
    anchors: HashMap<usize, Anchored>,
    /// Nodes produced so far, copies included.
    nodes: usize,
}

impl<'a> Builder<'a> {
    fn new(text: &'a str, file: Option<Arc<Path>>) -> Self {
        Builder { text, file, parser: Parser::new_from_str(text), anchors: HashMap::new(), nodes: 0 }
    }

    // ----- the stream and its documents -----

    /// The whole stream: the first document, then only empty documents.
    fn stream(mut self) -> Result<Node, Diagnostic> {
        let (event, span) = self.next()?;
        if event != Event::StreamStart {
            return Err(self.unexpected(&event, span));
        }
        let (event, span) = self.next()?;
        let root = match event {
            Event::StreamEnd => {
                return Ok(Node::new(Value::Null, Span::new(self.file.clone(), 1, 1)));
            }
            Event::DocumentStart(_) => self.document()?,
            other => return Err(self.unexpected(&other, span)),
        };
        loop {
            let (event, span) = self.next()?;
            match event {
                Event::StreamEnd => return Ok(root),
                Event::DocumentStart(_) => self.extra_document()?,
                other => return Err(self.unexpected(&other, span)),
            }
        }
    }

    /// The content of a document after its start, through its end.
    fn document(&mut self) -> Result<Node, Diagnostic> {
        let root = self.root()?;
        self.document_end()?;
        Ok(root)
    }

    /// A document after the first: fine when empty, an error otherwise.
    fn extra_document(&mut self) -> Result<(), Diagnostic> {
        let (event, span) = self.next()?;
        let empty = matches!(&event, Event::Scalar(v, ScalarStyle::Plain, 0, None) if v.is_empty());
        if !empty {
            return Err(Diagnostic::new(
                self.span(span.start),
                "multiple YAML documents in one compose file are not supported",
            )
            .with_hint("put each compose file in its own file and pass them with several -f options"));
        }
        self.document_end()
    }

    fn document_end(&mut self) -> Result<(), Diagnostic> {
        match self.next()? {
            (Event::DocumentEnd, _) => Ok(()),
            (other, span) => Err(self.unexpected(&other, span)),
        }
    }

    // ----- nodes -----

    /// The tree of one document: its events folded with an explicit stack of the open collections, so that the
    /// depth bound (not the size of the thread's stack) limits nesting.
    fn root(&mut self) -> Result<Node, Diagnostic> {
        let mut open: Vec<Open> = Vec::new();
        loop {
            let (event, span) = self.next()?;
            let depth = open.len();
            let node = match event {
                Event::SequenceEnd | Event::MappingEnd => match open.pop() {
                    Some(collection) => self.close(collection)?,
                    None => return Err(self.unexpected(&event, span)),
                },
                _ if awaits_key(open.last()) => {
                    let key = self.key(event, span, depth)?;
                    if let Some(map) = open.last_mut() {
                        self.set_key(map, key)?;
                    }
                    continue;
                }
                Event::SequenceStart(anchor, tag) => {
                    open.push(self.open(Content::Seq(Vec::new()), anchor, tag.as_deref(), span, depth)?);
                    continue;
                }
                Event::MappingStart(anchor, tag) => {
                    open.push(self.open(Content::map(), anchor, tag.as_deref(), span, depth)?);
                    continue;
                }
                Event::Scalar(text, style, anchor, tag) => self.scalar(text, style, anchor, tag.as_deref(), span)?,
                Event::Alias(id) => self.alias(id, span, depth)?,
                other => return Err(self.unexpected(&other, span)),
            };
            match open.last_mut() {
                None => return Ok(node),
                Some(parent) => add(parent, node)?,
            }
        }
    }

    /// A collection that starts at `depth`, checked against the depth bound and its tag.
    fn open(
        &self,
        content: Content,
        anchor: usize,
        tag: Option<&saphyr_parser::Tag>,
        span: saphyr_parser::Span,
        depth: usize,
    ) -> Result<Open, Diagnostic> {
        if depth >= MAX_DEPTH {
            return Err(self.too_deep(span));
        }
        let own = if matches!(content, Content::Seq(_)) { Core::Seq } else { Core::Map };
        let tag = match self.tag_kind(tag, span)? {
            TagKind::Core(core) if core != own => {
                let what = if own == Core::Map { "a mapping" } else { "a sequence" };
                let message = format!("tag {} cannot be used on {what}", core_name(core));
                return Err(Diagnostic::new(self.span(span.start), message));
            }
            kind => compose_tag(kind),
        };
        Ok(Open { at: span, anchor, tag, content })
    }

    /// The node of a collection at its end event (merge keys applied), anchored if it has an anchor.
    fn close(&mut self, collection: Open) -> Result<Node, Diagnostic> {
        let value = match collection.content {
            Content::Seq(items) => Value::Seq(items),
            Content::Map { entries, merges, .. } => Value::Map(apply_merges(entries, merges)),
        };
        let node = Node { value, span: self.span(collection.at.start), tag: collection.tag };
        self.count(1, collection.at)?;
        self.anchor(collection.anchor, node, collection.at)
    }

    /// A scalar: its value resolved as its style and tag say; anchored if it has an anchor.
    fn scalar(
        &mut self,
        text: Cow<'a, str>,
        style: ScalarStyle,
        anchor: usize,
        tag: Option<&saphyr_parser::Tag>,
        span: saphyr_parser::Span,
    ) -> Result<Node, Diagnostic> {
        let at = self.span(span.start);
        let kind = self.tag_kind(tag, span)?;
        // The event's text moves into the node when it stays a string (saphyr hands over owned strings).
        let value = match kind {
            TagKind::None | TagKind::Compose(_) if style == ScalarStyle::Plain => {
                resolve_plain_typed(&text).unwrap_or_else(|| Value::String(text.into_owned()))
            }
            TagKind::None | TagKind::Compose(_) | TagKind::NonSpecific => Value::String(text.into_owned()),
            TagKind::Core(core) => resolve_tagged(&text, core)
                .ok_or_else(|| Diagnostic::new(at.clone(), format!("cannot use {text:?} as {}", core_name(core))))?,
        };
        self.count(1, span)?;
        self.anchor(anchor, Node { value, span: at, tag: compose_tag(kind) }, span)
    }

    /// The key a mapping entry starts with: scalars as written (`80`, `true`), null as `""`; collections are
    /// refused.
    fn key(&mut self, event: Event<'a>, span: saphyr_parser::Span, depth: usize) -> Result<Key, Diagnostic> {
        let merge = is_merge_key(&event);
        let text = match event {
            // The common key, untagged and not anchored, needs no node: only whether it reads as null.
            Event::Scalar(text, style, 0, None) => {
                self.count(1, span)?;
                if style == ScalarStyle::Plain && is_null_word(&text) { String::new() } else { text.into_owned() }
            }
            Event::Scalar(text, style, anchor, tag) => {
                let owned = text.to_string();
                let node = self.scalar(text, style, anchor, tag.as_deref(), span)?;
                if node.is_null() { String::new() } else { owned }
            }
            Event::Alias(id) => {
                let node = self.alias(id, span, depth)?;
                match node.value {
                    Value::Null => String::new(),
                    _ => node.scalar_text().ok_or_else(|| self.collection_key(node.kind_name(), span))?,
                }
            }
            Event::SequenceStart(..) => return Err(self.collection_key("a sequence", span)),
            Event::MappingStart(..) => return Err(self.collection_key("a mapping", span)),
            other => return Err(self.unexpected(&other, span)),
        };
        Ok(Key { text, span: self.span(span.start), merge })
    }

    fn collection_key(&self, kind: &str, span: saphyr_parser::Span) -> Diagnostic {
        Diagnostic::new(self.span(span.start), format!("a mapping key must be a scalar, not {kind}"))
            .with_hint("compose keys are names or numbers")
    }

    /// Record the key of the next entry of an open mapping, refusing a key the mapping already has.
    /// The entry's slot is taken now, holding null until the value comes.
    fn set_key(&self, map: &mut Open, key: Key) -> Result<(), Diagnostic> {
        let Content::Map { entries, merge_line, pending, .. } = &mut map.content else {
            return Ok(());
        };
        let duplicate = |text: &str, span: Span, line: usize| {
            Diagnostic::new(span, format!("mapping key {text:?} already defined at line {line}"))
        };
        // The merge key is tracked apart from a quoted "<<", which is an ordinary key.
        if key.merge {
            if let Some(line) = merge_line.replace(key.span.line) {
                return Err(duplicate(&key.text, key.span, line));
            }
            *pending = Some(Pending::Merge(key.span));
            return Ok(());
        }
        match entries.entry(key.text) {
            Slot::Occupied(earlier) => Err(duplicate(earlier.key(), key.span, earlier.get().key_span.line)),
            Slot::Vacant(slot) => {
                *pending = Some(Pending::Entry(slot.index()));
                slot.insert(Entry { key_span: key.span, value: Node::new(Value::Null, Span::default()) });
                Ok(())
            }
        }
    }

    /// A copy of the node anchored under `id`, within the size and depth bounds.
    fn alias(&mut self, id: usize, span: saphyr_parser::Span, depth: usize) -> Result<Node, Diagnostic> {
        let Some(anchored) = self.anchors.get(&id) else {
            // saphyr knows the anchor, so its node is still open: the alias is inside it.
            let message = format!("alias {} refers to a node that contains it", self.source_word(span.start));
            return Err(Diagnostic::new(self.span(span.start), message));
        };
        if depth + anchored.height > MAX_DEPTH {
            return Err(self.too_deep(span));
        }
        self.nodes = self.nodes.saturating_add(anchored.size);
        if self.nodes > MAX_NODES {
            return Err(self.too_large(span));
        }
        // The copy keeps the spans of the anchored node.
        Ok(anchored.node.clone())
    }

    /// Remember `node` for later aliases when it carries an anchor (`anchor != 0`).
    fn anchor(&mut self, anchor: usize, node: Node, span: saphyr_parser::Span) -> Result<Node, Diagnostic> {
        if anchor != 0 {
            let (size, height) = measure(&node);
            // The kept copy costs as much as the node itself.
            self.count(size, span)?;
            self.anchors.insert(anchor, Anchored { node: node.clone(), size, height });
        }
        Ok(node)
    }

    // ----- bounds -----

    /// Charge `n` nodes to the budget.
    fn count(&mut self, n: usize, span: saphyr_parser::Span) -> Result<(), Diagnostic> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > MAX_NODES { Err(self.too_large(span)) } else { Ok(()) }
    }

    fn too_large(&self, span: saphyr_parser::Span) -> Diagnostic {
        Diagnostic::new(
            self.span(span.start),
            format!("the document is too large: more than {MAX_NODES} values once aliases are expanded"),
        )
        .with_hint("aliases that refer to other aliases multiply the size of the document")
    }

    fn too_deep(&self, span: saphyr_parser::Span) -> Diagnostic {
        Diagnostic::new(self.span(span.start), format!("the document nests more than {MAX_DEPTH} levels deep"))
    }

    // ----- tags -----

    /// What a tag asks for; unknown tags are errors.
    fn tag_kind(&self, tag: Option<&saphyr_parser::Tag>, span: saphyr_parser::Span) -> Result<TagKind, Diagnostic> {
        let Some(tag) = tag else {
            return Ok(TagKind::None);
        };
        let full = if tag.handle == "!" { format!("!{}", tag.suffix) } else { format!("{}{}", tag.handle, tag.suffix) };
        if full == "!" {
            return Ok(TagKind::NonSpecific);
        }
        if let Some(name) = full.strip_prefix(CORE_PREFIX) {
            return core_tag(name).map(TagKind::Core).ok_or_else(|| {
                Diagnostic::new(self.span(span.start), format!("unsupported tag !!{name}"))
                    .with_hint("the standard tags allowed are !!str, !!int, !!float, !!bool, !!null, !!map and !!seq")
            });
        }
        match full.as_str() {
            "!reset" => Ok(TagKind::Compose(Tag::Reset)),
            "!override" => Ok(TagKind::Compose(Tag::Override)),
            _ => {
                let shown = if full.starts_with('!') { full } else { format!("!<{full}>") };
                Err(Diagnostic::new(self.span(span.start), format!("unknown tag {shown}"))
                    .with_hint("compose understands the tags !reset and !override"))
            }
        }
    }

    // ----- events and positions -----

    /// The next event; a syntax error becomes a diagnostic.
    fn next(&mut self) -> Result<Spanned<'a>, Diagnostic> {
        match self.parser.next_event() {
            Some(Ok(event)) => Ok(event),
            Some(Err(err)) => Err(self.syntax_error(&err)),
            None => Err(Diagnostic::new(self.span(Marker::new(0, 1, 0)), "unexpected end of the YAML stream")),
        }
    }

    /// Our span of a saphyr marker (line 1-based, column 0-based → 1-based).
    fn span(&self, mark: Marker) -> Span {
        Span::new(self.file.clone(), mark.line().max(1), mark.col().saturating_add(1))
    }

    fn unexpected(&self, event: &Event<'_>, span: saphyr_parser::Span) -> Diagnostic {
        Diagnostic::new(self.span(span.start), format!("invalid YAML: unexpected {event:?}"))
    }

    /// The source word (anchor, alias or tag name) that starts at a marker, for messages.
    fn source_word(&self, mark: Marker) -> String {
        self.text
            .chars()
            .skip(mark.index())
            .take_while(|c| !c.is_whitespace() && !matches!(c, ',' | '[' | ']' | '{' | '}'))
            .take(80)
            .collect()
    }

    fn syntax_error(&self, err: &ScanError) -> Diagnostic {
        let at = self.span(*err.marker());
        let info = err.info();
        if info.contains("unknown anchor") {
            let alias = self.source_word(*err.marker());
            let name = alias.trim_start_matches('*');
            return Diagnostic::new(at, format!("alias {alias} refers to an unknown anchor"))
                .with_hint(format!("define the anchor with &{name} before the alias"));
        }
        if info.contains("recursion limit") {
            // saphyr allows at most 255 levels of `[`/`{`.
            return Diagnostic::new(at, "the document nests too deeply (more than 255 levels of [ ] or { })");
        }
        let diagnostic = Diagnostic::new(at, format!("invalid YAML: {info}"));
        match syntax_hint(info) {
            Some(hint) => diagnostic.with_hint(hint),
            None => diagnostic,
        }
    }
}

/// Advice for the common syntax errors saphyr reports.
fn syntax_hint(info: &str) -> Option<&'static str> {
    let hints: [(&str, &str); 7] = [
        ("tab", "indent with spaces: YAML does not allow tabs for indentation"),
        ("mapping values are not allowed", "quote a value that contains ': ', or fix the indentation of this line"),
        ("did not find expected key", "check the indentation of this line against the lines above"),
        ("invalid indentation", "check the indentation of this line against the lines above"),
        ("quoted scalar, found unexpected end", "a quoted string is not closed"),
        ("expected ',' or", "a flow collection ([...] or {...}) is not closed, or lacks a comma"),
        ("did not find expected '-' indicator", "items of a list start with '- ' at the same indentation"),
    ];
    hints.iter().find(|(needle, _)| info.contains(needle)).map(|(_, hint)| *hint)
}

fn core_tag(name: &str) -> Option<Core> {
    Some(match name {
        "str" => Core::Str,
        "int" => Core::Int,
        "float" => Core::Float,
        "bool" => Core::Bool,
        "null" => Core::Null,
        "map" => Core::Map,
        "seq" => Core::Seq,
        "merge" => Core::Merge,
        _ => return None,
    })
}

fn core_name(core: Core) -> &'static str {
    match core {
        Core::Str => "!!str",
        Core::Int => "!!int",
        Core::Float => "!!float",
        Core::Bool => "!!bool",
        Core::Null => "!!null",
        Core::Map => "!!map",
        Core::Seq => "!!seq",
        Core::Merge => "!!merge",
    }
}

fn compose_tag(kind: TagKind) -> Option<Tag> {
    match kind {
        TagKind::Compose(tag) => Some(tag),
        _ => None,
    }
}

/// Whether a key event is the merge key: a plain `<<` (or one tagged `!!merge`).
fn is_merge_key(event: &Event<'_>) -> bool {
    match event {
        Event::Scalar(text, ScalarStyle::Plain, _, None) => text == "<<",
        Event::Scalar(_, _, _, Some(tag)) => {
            tag.handle == CORE_PREFIX && tag.suffix == "merge"
                || tag.handle.is_empty() && tag.suffix == "tag:yaml.org,2002:merge"
        }
        _ => false,
    }
}

// ----- merge keys -----

/// The mappings a `<<` value brings: one mapping, or a sequence of mappings.
fn merge_sources(value: Node, key_span: &Span) -> Result<Vec<Mapping>, Diagnostic> {
    let refuse = |what: &str| {
        Diagnostic::new(
            key_span.clone(),
            format!("the merge key << needs a mapping or a sequence of mappings, not {what}"),
        )
        .with_hint("write `<<: *anchor` or `<<: [*a, *b]` with anchors of mappings")
    };
    match value.value {
        Value::Map(map) => Ok(vec![map]),
        Value::Seq(items) => items
            .into_iter()
            .map(|item| match item.value {
                Value::Map(map) => Ok(map),
                _ => Err(refuse(&format!("a sequence holding {}", item.kind_name()))),
            })
            .collect(),
        _ => Err(refuse(value.kind_name())),
    }
}

/// The mapping of the entries as written: explicit keys always win; merged keys fill in, at the place of their
/// `<<`, the earlier merged mapping winning over the later ones.
fn apply_merges(explicit: Mapping, merges: Vec<(usize, Vec<Mapping>)>) -> Mapping {
    if merges.is_empty() {
        return explicit;
    }
    // The merged entries that count, each with the number of explicit entries that come before it.
    let mut fills = Mapping::default();
    let mut places = Vec::new();
    for (place, sources) in merges {
        for (key, entry) in sources.into_iter().flatten() {
            if !explicit.contains_key(&key) && !fills.contains_key(&key) {
                fills.insert(key, entry);
                places.push(place);
            }
        }
    }
    if places.iter().all(|place| *place == 0) {
        // Every `<<` came first (the usual `<<: *common`): the merged entries, then the explicit ones.
        fills.extend(explicit);
        return fills;
    }
    let mut out = Mapping::with_capacity_and_hasher(explicit.len() + fills.len(), Default::default());
    let mut fills = fills.into_iter().zip(places).peekable();
    for (i, (key, entry)) in explicit.into_iter().enumerate() {
        while let Some(((k, e), _)) = fills.next_if(|(_, place)| *place <= i) {
            out.insert(k, e);
        }
        out.insert(key, entry);
    }
    out.extend(fills.map(|(fill, _)| fill));
    out
}

/// Size (nodes) and height (levels of collections) of a tree.
fn measure(node: &Node) -> (usize, usize) {
    let children: Box<dyn Iterator<Item = &Node>> = match &node.value {
        Value::Seq(items) => Box::new(items.iter()),
        Value::Map(map) => Box::new(map.values().map(|e| &e.value)),
        _ => return (1, 0),
    };
    children.fold((1, 1), |(size, height), child| {
        let (s, h) = measure(child);
        (size.saturating_add(s), height.max(h + 1))
    })
}

// ----- scalar resolution -----

/// A plain scalar resolved as yaml.v3 resolves untagged plain scalars.
fn resolve_plain(text: &str) -> Value {
    resolve_plain_typed(text).unwrap_or_else(|| string(text))
}

/// [`resolve_plain`], `None` meaning a string (so the caller can move its text in rather than copy it).
fn resolve_plain_typed(text: &str) -> Option<Value> {
    if let Some(value) = resolve_word(text) {
        return Some(value);
    }
    match text.chars().next() {
        Some('.') if is_yaml_float(text) => text.parse().map(Value::Float).ok(),
        Some('+' | '-' | '0'..='9') => resolve_number(text),
        _ => None,
    }
}

/// The plain scalars that resolve to null.
fn is_null_word(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

fn string(text: &str) -> Value {
    Value::String(text.to_owned())
}

/// The fixed words of the core schema: null, booleans and the special floats.
fn resolve_word(text: &str) -> Option<Value> {
    Some(match text {
        _ if is_null_word(text) => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        ".nan" | ".NaN" | ".NAN" => Value::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Value::Float(f64::NEG_INFINITY),
        _ => return None,
    })
}

/// A scalar starting with a sign or digit: integer within i64, else float, else string (`None`), as yaml.v3 reads
/// it, with `_` separators dropped.
fn resolve_number(text: &str) -> Option<Value> {
    let plain: Cow<'_, str> =
        if text.contains('_') { text.chars().filter(|c| *c != '_').collect::<String>().into() } else { text.into() };
    if let Some(i) = parse_int(&plain) {
        return Some(Value::Int(i));
    }
    if is_yaml_float(&plain) { plain.parse::<f64>().ok().map(Value::Float) } else { None }
}

/// An integer the way Go's `strconv.ParseInt(s, 0, 64)` reads it: optional sign, then `0x`, `0o`, `0b`, a leading
/// `0` (octal) or decimal digits. `None` when malformed or outside i64.
fn parse_int(text: &str) -> Option<i64> {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (radix, digits) = split_radix(rest);
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if negative { 0i64.checked_sub_unsigned(magnitude) } else { i64::try_from(magnitude).ok() }
}

/// The radix of an unsigned integer literal and its digits.
fn split_radix(text: &str) -> (u32, &str) {
    for (prefix, radix) in [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)] {
        if let Some(digits) = text.strip_prefix(prefix) {
            return (radix, digits);
        }
    }
    match text.strip_prefix('0') {
        Some(digits) if !digits.is_empty() => (8, digits),
        _ => (10, text),
    }
}

/// yaml.v3's float syntax: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(text: &str) -> bool {
    fn digits(s: &str) -> (usize, &str) {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        (n, s.get(n..).unwrap_or(""))
    }
    let s = text.strip_prefix(['+', '-']).unwrap_or(text);
    let rest = if let Some(frac) = s.strip_prefix('.') {
        let (n, rest) = digits(frac);
        if n == 0 {
            return false;
        }
        rest
    } else {
        let (n, rest) = digits(s);
        if n == 0 {
            return false;
        }
        rest.strip_prefix('.').map_or(rest, |frac| digits(frac).1)
    };
    match rest.strip_prefix(['e', 'E']) {
        None => rest.is_empty(),
        Some(exp) => {
            let (n, rest) = digits(exp.strip_prefix(['+', '-']).unwrap_or(exp));
            n > 0 && rest.is_empty()
        }
    }
}

/// A scalar under a standard tag; `None` when its text does not fit the tag.
fn resolve_tagged(text: &str, core: Core) -> Option<Value> {
    let resolved = resolve_plain(text);
    match (core, resolved) {
        (Core::Str, _) => Some(string(text)),
        (Core::Int, value @ Value::Int(_)) => Some(value),
        (Core::Float, value @ Value::Float(_)) => Some(value),
        (Core::Float, Value::Int(i)) => Some(Value::Float(i as f64)),
        (Core::Bool, value @ Value::Bool(_)) => Some(value),
        (Core::Null, Value::Null) => Some(Value::Null),
        (Core::Merge, _) if text == "<<" => Some(string(text)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Node {
        match parse(text, None) {
            Ok(node) => node,
            Err(d) => panic!("unexpected error for {text:?}: {d}"),
        }
    }

    fn err(text: &str) -> Diagnostic {
        match parse(text, None) {
            Ok(node) => panic!("expected an error for {text:?}, got {node:?}"),
            Err(d) => d,
        }
    }

    /// The value of `v: <scalar>`.
    fn scalar(yaml: &str) -> Value {
        ok(&format!("v: {yaml}\n")).get("v").map(|n| n.value.clone()).unwrap_or(Value::String("<missing>".into()))
    }

    fn at<'n>(node: &'n Node, path: &str) -> &'n Node {
        let parts: Vec<String> = path.split('/').map(str::to_owned).collect();
        node.pointer(&parts).unwrap_or_else(|| panic!("no node at {path}"))
    }

    fn pos(span: &Span) -> (usize, usize) {
        (span.line, span.column)
    }

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn plain_scalars_resolve_like_yaml_v3() {
        for null in ["~", "null", "Null", "NULL", ""] {
            assert_eq!(scalar(null), Value::Null, "{null}");
        }
        for (text, b) in [("true", true), ("True", true), ("TRUE", true), ("false", false), ("FALSE", false)] {
            assert_eq!(scalar(text), Value::Bool(b), "{text}");
        }
        for (text, i) in [
            ("0", 0),
            ("42", 42),
            ("-17", -17),
            ("+5", 5),
            ("0x1F", 31),
            ("-0x10", -16),
            ("0o17", 15),
            ("0b101", 5),
            ("0755", 493), // legacy octal, as yaml.v3 (file modes)
            ("1_000", 1000),
            ("9223372036854775807", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(scalar(text), Value::Int(i), "{text}");
        }
        for (text, f) in [("1.5", 1.5), ("1e3", 1000.0), ("-2.5E-1", -0.25), (".5", 0.5), ("1.", 1.0)] {
            assert_eq!(scalar(text), Value::Float(f), "{text}");
        }
        assert_eq!(scalar("9223372036854775808"), Value::Float(9223372036854775808.0));
        assert_eq!(scalar(".inf"), Value::Float(f64::INFINITY));
        assert_eq!(scalar("-.Inf"), Value::Float(f64::NEG_INFINITY));
        assert!(matches!(scalar(".nan"), Value::Float(f) if f.is_nan()));
        for text in [
            "yes",
            "no",
            "on",
            "off",
            "hello",
            "1.2.3",
            "0x",
            "0xfffffffffffffffff",
            "12:30",
            "-x",
            "+",
            "1e",
            "nginx:1.25",
        ] {
            assert_eq!(scalar(text), s(text), "{text}");
        }
    }

    #[test]
    fn quoted_and_block_scalars_are_strings() {
        assert_eq!(scalar("\"123\""), s("123"));
        assert_eq!(scalar("'true'"), s("true"));
        assert_eq!(scalar("''"), s(""));
        assert_eq!(scalar("\"a\\tb\""), s("a\tb"));
        let doc = ok("lit: |\n  line one\n  line two\nfold: >\n  folded\n  text\nstrip: |-\n  x\nnum: |\n  42\n");
        assert_eq!(doc.get("lit").and_then(Node::as_str), Some("line one\nline two\n"));
        assert_eq!(doc.get("fold").and_then(Node::as_str), Some("folded text\n"));
        assert_eq!(doc.get("strip").and_then(Node::as_str), Some("x"));
        assert_eq!(doc.get("num").and_then(Node::as_str), Some("42\n"));
    }

    #[test]
    fn standard_tags() {
        assert_eq!(scalar("!!str 123"), s("123"));
        assert_eq!(scalar("!!str true"), s("true"));
        assert_eq!(scalar("!!int \"12\""), Value::Int(12));
        assert_eq!(scalar("!!float 1"), Value::Float(1.0));
        assert_eq!(scalar("!!bool 'false'"), Value::Bool(false));
        assert_eq!(scalar("!!null ''"), Value::Null);
        assert_eq!(scalar("! 12"), s("12"));
        assert_eq!(scalar("!<tag:yaml.org,2002:str> 7"), s("7"));
        assert!(matches!(ok("v: !!map {a: 1}").get("v").map(|n| &n.value), Some(Value::Map(_))));
        assert!(matches!(ok("v: !!seq [1]").get("v").map(|n| &n.value), Some(Value::Seq(_))));
        assert_eq!(err("v: !!int abc").message, "cannot use \"abc\" as !!int");
        assert_eq!(err("v: !!map [1]").message, "tag !!map cannot be used on a sequence");
        assert_eq!(err("v: !!seq 1").message, "cannot use \"1\" as !!seq");
        assert_eq!(err("v: !!binary aGk=").message, "unsupported tag !!binary");
    }

    #[test]
    fn compose_tags() {
        let doc = ok("a: !reset []\nb: !override\n  x: 1\nc: !reset\nd: !override 5\ne: !reset ''\n");
        for (key, tag) in [("a", Tag::Reset), ("b", Tag::Override), ("c", Tag::Reset), ("d", Tag::Override)] {
            assert_eq!(doc.get(key).and_then(|n| n.tag), Some(tag), "{key}");
        }
        assert!(doc.get("a").and_then(Node::as_seq).is_some_and(<[Node]>::is_empty));
        assert_eq!(doc.get("b").and_then(|n| n.get("x")).map(|n| &n.value), Some(&Value::Int(1)));
        assert!(doc.get("c").is_some_and(Node::is_null));
        assert_eq!(doc.get("d").map(|n| &n.value), Some(&Value::Int(5)));
        assert_eq!(doc.get("e").map(|n| &n.value), Some(&s("")));
        assert_eq!(doc.get("e").and_then(|n| n.tag), Some(Tag::Reset));
        assert_eq!(ok("a: 1").get("a").and_then(|n| n.tag), None);
    }

    #[test]
    fn unknown_tags() {
        let d = err("services:\n  web: !foo x\n");
        assert_eq!(d.message, "unknown tag !foo");
        assert_eq!(pos(&d.span), (2, 8));
        assert_eq!(err("a: !foo {b: 1}").message, "unknown tag !foo");
        assert_eq!(err("a: !<tag:example.com,2000:x> 1").message, "unknown tag !<tag:example.com,2000:x>");
    }

    #[test]
    fn spans_of_keys_and_values() {
        let file: Arc<Path> = Arc::from(Path::new("compose.yaml"));
        let doc = parse(
            "services:\n  web:\n    image: \"nginx\"\n    ports:\n      - 80\n      - '81'\n",
            Some(file.clone()),
        )
        .unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(pos(&doc.span), (1, 1));
        let services = doc.as_map().and_then(|m| m.get("services")).unwrap_or_else(|| panic!("services"));
        assert_eq!(pos(&services.key_span), (1, 1));
        let web = at(&doc, "services").as_map().and_then(|m| m.get("web")).unwrap_or_else(|| panic!("web"));
        assert_eq!(pos(&web.key_span), (2, 3));
        let image = web.value.as_map().and_then(|m| m.get("image")).unwrap_or_else(|| panic!("image"));
        assert_eq!(pos(&image.key_span), (3, 5));
        assert_eq!(pos(&image.value.span), (3, 12));
        assert_eq!(pos(&at(&doc, "services/web/ports").span), (5, 7));
        assert_eq!(pos(&at(&doc, "services/web/ports/0").span), (5, 9));
        assert_eq!(pos(&at(&doc, "services/web/ports/1").span), (6, 9));
        assert_eq!(at(&doc, "services/web/ports/1").span.file.as_deref(), Some(Path::new("compose.yaml")));
        assert_eq!(doc.key_span_at(&["services".into(), "web".into(), "image".into()]).file, Some(file));
    }

    #[test]
    fn flow_and_block_styles() {
        let flow = ok("{services: {web: {image: nginx, ports: [80, \"443:443\"]}}}");
        let block = ok("services:\n  web:\n    image: nginx\n    ports:\n    - 80\n    - \"443:443\"\n");
        assert_eq!(flow.to_json(), block.to_json());
        assert_eq!(at(&flow, "services/web/ports/1").as_str(), Some("443:443"));
        assert_eq!(pos(&at(&flow, "services/web/image").span), (1, 26));
        assert_eq!(ok("[a, {b: c}, [d]]").to_json(), serde_json::json!(["a", {"b": "c"}, ["d"]]));
        assert_eq!(ok("plain").value, s("plain"));
    }

    #[test]
    fn keys_are_scalar_text() {
        let doc = ok("80: a\ntrue: b\n~: c\n1.50: d\n0x10: e\n\"q\": f\n? k\n: g\n");
        let keys: Vec<&str> = doc.as_map().map(|m| m.keys().map(String::as_str).collect()).unwrap_or_default();
        assert_eq!(keys, ["80", "true", "", "1.50", "0x10", "q", "k"]);
        let d = err("? [a, b]\n: c\n");
        assert_eq!(d.message, "a mapping key must be a scalar, not a sequence");
        assert_eq!(pos(&d.span), (1, 3));
        assert_eq!(err("{a: 1}: x").message, "a mapping key must be a scalar, not a mapping");
        assert_eq!(err("a: &m {b: 1}\n*m : x\n").message, "a mapping key must be a scalar, not a mapping");
        assert_eq!(ok("a: &k name\n*k : x\n").get("name").map(|n| &n.value), Some(&s("x")));
    }

    #[test]
    fn duplicate_keys() {
        let d = err("services:\n  web:\n    image: a\n    command: x\n    image: b\n");
        assert_eq!(d.message, "mapping key \"image\" already defined at line 3");
        assert_eq!(pos(&d.span), (5, 5));
        assert_eq!(err("80: a\n\"80\": b\n").message, "mapping key \"80\" already defined at line 1");
        assert_eq!(err("{a: 1, a: 2}").message, "mapping key \"a\" already defined at line 1");
        // The same key in different mappings is fine.
        ok("a: {x: 1}\nb: {x: 2}\n");
    }

    #[test]
    fn anchors_and_aliases() {
        let doc = ok(
            "x-env: &env\n  A: 1\n  B: two\nweb:\n  environment: *env\nlist: &l [1, 2]\nagain: *l\nname: &n n1\nalso: *n\n",
        );
        assert_eq!(at(&doc, "web/environment").to_json(), serde_json::json!({"A": 1, "B": "two"}));
        assert_eq!(at(&doc, "again").to_json(), serde_json::json!([1, 2]));
        assert_eq!(at(&doc, "also").as_str(), Some("n1"));
        // The copy keeps the anchored node's spans.
        assert_eq!(at(&doc, "web/environment/A").span.line, 2);
        // An anchor defined again later refers to the new node from then on.
        let doc = ok("a: &x 1\nb: *x\nc: &x 2\nd: *x\n");
        assert_eq!(doc.to_json(), serde_json::json!({"a": 1, "b": 1, "c": 2, "d": 2}));
    }

    #[test]
    fn alias_errors() {
        let d = err("a: 1\nb: *nope\n");
        assert_eq!(d.message, "alias *nope refers to an unknown anchor");
        assert_eq!(pos(&d.span), (2, 4));
        let d = err("a: &s [1, *s]\n");
        assert_eq!(d.message, "alias *s refers to a node that contains it");
        assert_eq!(pos(&d.span), (1, 11));
    }

    #[test]
    fn merge_key_single() {
        let doc = ok("base: &b {image: nginx, restart: always}\nweb:\n  <<: *b\n  ports: [80]\n");
        assert_eq!(
            at(&doc, "web").to_json(),
            serde_json::json!({"image": "nginx", "restart": "always", "ports": [80]})
        );
        // Merged keys keep their own spans.
        assert_eq!(pos(&at(&doc, "web").key_span_at(&["image".into()])), (1, 11));
    }

    #[test]
    fn merge_key_list_earlier_wins() {
        let doc = ok("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n");
        assert_eq!(at(&doc, "c").to_json(), serde_json::json!({"x": 1, "y": 1, "z": 2}));
        let doc = ok("a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*b, *a]\n");
        assert_eq!(at(&doc, "c/y").value, Value::Int(2));
        let inline = ok("c:\n  <<: [{p: 1}, {p: 2, q: 3}]\n");
        assert_eq!(at(&inline, "c").to_json(), serde_json::json!({"p": 1, "q": 3}));
    }

    #[test]
    fn merge_key_explicit_key_wins() {
        // Before and after the merge key alike.
        let doc = ok("b: &b {image: old, tty: true}\nx:\n  image: new\n  <<: *b\ny:\n  <<: *b\n  image: new\n");
        assert_eq!(at(&doc, "x/image").as_str(), Some("new"));
        assert_eq!(at(&doc, "y/image").as_str(), Some("new"));
        assert_eq!(at(&doc, "y/tty").value, Value::Bool(true));
        // Merged entries come in at the place of `<<`.
        let keys: Vec<String> = at(&doc, "y").as_map().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        assert_eq!(keys, ["tty", "image"]);
        // Merge sources that are themselves merged.
        let doc = ok("a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, z: 3}\n");
        assert_eq!(at(&doc, "c").to_json(), serde_json::json!({"x": 1, "y": 2, "z": 3}));
    }

    #[test]
    fn merge_key_errors() {
        let d = err("a: &s hello\nb:\n  <<: *s\n");
        assert_eq!(d.message, "the merge key << needs a mapping or a sequence of mappings, not a string");
        assert_eq!(pos(&d.span), (3, 3));
        assert!(err("b:\n  <<: [{a: 1}, 2]\n").message.contains("a sequence holding an integer"));
        assert!(err("b:\n  <<: {a: 1}\n  <<: {c: 1}\n").message.contains("already defined at line 2"));
        // A quoted "<<" is an ordinary key.
        assert_eq!(ok("\"<<\": 1").get("<<").map(|n| &n.value), Some(&Value::Int(1)));
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![prev; 10].join(", ")));
        }
        let d = err(&text);
        assert!(d.message.contains("too large"), "{}", d.message);
        assert!(d.span.line > 1);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(err(&deep).message.contains("nests too deeply"));
        let mixed = format!("{}x", "- ".repeat(300));
        assert!(err(&mixed).message.contains("more than 256 levels"));
        let mut block = String::new();
        for i in 0..300 {
            block.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        assert!(err(&block).message.contains("more than 256 levels"));
        let fine = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        ok(&fine);
        // Aliases cannot stack depth past the limit either.
        let mut text = format!("a0: &a0 {}1{}\n", "[".repeat(200), "]".repeat(200));
        for i in 1..5 {
            text.push_str(&format!("a{i}: &a{i} {}*a{}{}\n", "[".repeat(30), i - 1, "]".repeat(30)));
        }
        assert!(err(&text).message.contains("more than 256 levels"));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let d = err("services:\n  web:\n    image: a: b\n");
        assert_eq!(pos(&d.span), (3, 13));
        assert!(d.message.starts_with("invalid YAML: mapping values are not allowed"), "{}", d.message);
        assert!(d.hint.is_some());
        let d = err("a:\n  b: 1\n c: 2\n");
        assert_eq!(pos(&d.span), (3, 2));
        assert!(d.hint.as_deref().is_some_and(|h| h.contains("indentation")));
        let d = err("a: \"open\n");
        assert_eq!(d.span.line, 1);
        assert_eq!(d.hint.as_deref(), Some("a quoted string is not closed"));
        let file: Arc<Path> = Arc::from(Path::new("x.yml"));
        let d = parse("a: [1, 2\nb: 3\n", Some(file)).err().unwrap_or_else(|| panic!("error expected"));
        assert!(d.to_string().starts_with("x.yml:2:"), "{d}");
    }

    #[test]
    fn empty_documents() {
        for text in ["", "\n\n", "# only a comment\n", "---\n", "---\n...\n"] {
            let node = ok(text);
            assert!(node.is_null(), "{text:?}");
        }
        assert_eq!(pos(&ok("").span), (1, 1));
    }

    #[test]
    fn multiple_documents() {
        let d = err("a: 1\n---\nb: 2\n");
        assert_eq!(d.message, "multiple YAML documents in one compose file are not supported");
        assert_eq!(d.span.line, 3);
        assert_eq!(ok("a: 1\n---\n").to_json(), serde_json::json!({"a": 1}));
        assert_eq!(ok("---\na: 1\n...\n---\n").to_json(), serde_json::json!({"a": 1}));
        // A syntax error in a later document is still reported.
        assert!(err("a: 1\n---\n\"open\n").message.starts_with("invalid YAML"));
    }

    #[test]
    fn unicode_columns_count_characters() {
        let doc = ok("é: ü\nname: \"日本\"\n");
        assert_eq!(pos(&at(&doc, "é").span), (1, 4));
        assert_eq!(at(&doc, "name").as_str(), Some("日本"));
    }

    /// No input may panic: prefixes and byte-level mutations of a document with every construct.
    #[test]
    fn never_panics() {
        let base = "x: &a {p: [1, '2', \"3\"], q: !reset ~}\ny:\n  <<: [*a, {r: |\n    t\n  }]\n  s: !override >-\n    u\n? k\n: - v\n  - *a\n--- \n...\n";
        let chars: Vec<char> = base.chars().collect();
        for end in 0..=chars.len() {
            let prefix: String = chars.iter().take(end).collect();
            let _ = parse(&prefix, None);
        }
        let alphabet =
            ['\t', ' ', '\n', ':', '-', '[', ']', '{', '}', '&', '*', '!', '|', '>', '?', '"', '\'', '#', ',', '<'];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut mutated = chars.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let len = mutated.len().max(1);
                let i = usize::try_from(seed % len as u64).unwrap_or(0);
                let c = alphabet.get(usize::try_from((seed >> 32) % alphabet.len() as u64).unwrap_or(0)).copied();
                if let (Some(slot), Some(c)) = (mutated.get_mut(i), c) {
                    *slot = c;
                }
            }
            let text: String = mutated.into_iter().collect();
            let _ = parse(&text, None);
        }
    }
}
