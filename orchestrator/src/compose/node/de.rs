//! Typed decoding straight from a [`Node`] tree: `T::deserialize(&node)`.
//!
//! # Why
//! The loader used to turn the final tree into a `serde_json::Value` only to decode the typed project from it: a
//! copy of every string and a hash map per mapping, built and thrown away. This deserializer reads the tree
//! in place instead.
//!
//! # Guarantees
//! It behaves as `serde_json`'s deserializer of the value [`Node::to_json`] gives, so decoding (and every error
//! message) is the same as before: integers visit as `u64` when not negative and as `i64` otherwise, floats that
//! JSON cannot hold (NaN, infinities) read as null, structs also read from sequences, enums from a string or a
//! mapping with one key, and errors are `serde_json::Error`s built from the same `Unexpected` values.

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, Unexpected, VariantAccess,
    Visitor,
};
use serde_json::Error;

use super::{Entry, Mapping, Node, Value};

/// A node as JSON sees it: the one place that says which JSON value a node stands for.
enum Json<'de> {
    Null,
    Bool(bool),
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    String(&'de str),
    Array(&'de [Node]),
    Object(&'de Mapping),
}

impl Node {
    fn json(&self) -> Json<'_> {
        match &self.value {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => match u64::try_from(*i) {
                Ok(u) => Json::Unsigned(u),
                Err(_) => Json::Signed(*i),
            },
            // `to_json` writes what JSON cannot hold as null.
            Value::Float(f) if f.is_finite() => Json::Float(*f),
            Value::Float(_) => Json::Null,
            Value::String(s) => Json::String(s),
            Value::Seq(items) => Json::Array(items),
            Value::Map(map) => Json::Object(map),
        }
    }

    fn unexpected(&self) -> Unexpected<'_> {
        match self.json() {
            Json::Null => Unexpected::Unit,
            Json::Bool(b) => Unexpected::Bool(b),
            Json::Unsigned(u) => Unexpected::Unsigned(u),
            Json::Signed(i) => Unexpected::Signed(i),
            Json::Float(f) => Unexpected::Float(f),
            Json::String(s) => Unexpected::Str(s),
            Json::Array(_) => Unexpected::Seq,
            Json::Object(_) => Unexpected::Map,
        }
    }

    #[cold]
    fn invalid_type(&self, expected: &dyn de::Expected) -> Error {
        de::Error::invalid_type(self.unexpected(), expected)
    }
}

/// Numbers only: what serde_json does for every integer and float request.
macro_rules! deserialize_number {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.json() {
                Json::Unsigned(u) => visitor.visit_u64(u),
                Json::Signed(i) => visitor.visit_i64(i),
                Json::Float(f) => visitor.visit_f64(f),
                _ => Err(self.invalid_type(&visitor)),
            }
        }
    )*};
}

impl<'de> Deserializer<'de> for &'de Node {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json() {
            Json::Null => visitor.visit_unit(),
            Json::Bool(b) => visitor.visit_bool(b),
            Json::Unsigned(u) => visitor.visit_u64(u),
            Json::Signed(i) => visitor.visit_i64(i),
            Json::Float(f) => visitor.visit_f64(f),
            Json::String(s) => visitor.visit_borrowed_str(s),
            Json::Array(items) => visit_seq(items, visitor),
            Json::Object(map) => visit_map(map, visitor),
        }
    }

    deserialize_number!(
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    );

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json() {
            Json::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.json() {
            Json::Object(map) => {
                let mut entries = map.iter();
                match (entries.next(), entries.next()) {
                    (Some((variant, entry)), None) => visitor.visit_enum(Enum { variant, value: Some(&entry.value) }),
                    _ => Err(de::Error::invalid_value(Unexpected::Map, &"map with a single key")),
                }
            }
            Json::String(variant) => visitor.visit_enum(Enum { variant, value: None }),
            _ => Err(self.invalid_type(&"string or map")),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json() {
            Json::Bool(b) => visitor.visit_bool(b),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json() {
            Json::String(s) => visitor.visit_borrowed_str(s),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json() {
            Json::String(s) => visitor.visit_borrowed_str(s),
            Json::Array(items) => visit_seq(items, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json() {
            Json::Null => visitor.visit_unit(),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json() {
            Json::Array(items) => visit_seq(items, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.json() {
            Json::Object(map) => visit_map(map, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.json() {
            Json::Array(items) => visit_seq(items, visitor),
            Json::Object(map) => visit_map(map, visitor),
            _ => Err(self.invalid_type(&visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

fn visit_seq<'de, V: Visitor<'de>>(items: &'de [Node], visitor: V) -> Result<V::Value, Error> {
    let mut seq = Seq { items: items.iter() };
    let value = visitor.visit_seq(&mut seq)?;
    if seq.items.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(items.len(), &"fewer elements in array"))
    }
}

fn visit_map<'de, V: Visitor<'de>>(map: &'de Mapping, visitor: V) -> Result<V::Value, Error> {
    let mut access = Map { entries: map.iter(), value: None };
    let value = visitor.visit_map(&mut access)?;
    if access.entries.len() == 0 {
        Ok(value)
    } else {
        Err(de::Error::invalid_length(map.len(), &"fewer elements in map"))
    }
}

struct Seq<'de> {
    items: std::slice::Iter<'de, Node>,
}

impl<'de> SeqAccess<'de> for Seq<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        self.items.next().map(|item| seed.deserialize(item)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'de> {
    entries: indexmap::map::Iter<'de, String, Entry>,
    value: Option<&'de Node>,
}

impl<'de> MapAccess<'de> for Map<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        let Some((key, entry)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(&entry.value);
        seed.deserialize(Key(key)).map(Some)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// A mapping key: text. (serde_json also parses keys into numbers and booleans when asked; every map of the
/// model is keyed by strings, so none ever asks.)
struct Key<'de>(&'de str);

impl<'de> Deserializer<'de> for Key<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.0)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Map keys cannot be null.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::value::BorrowedStrDeserializer::<Error>::new(self.0).deserialize_enum(name, variants, visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq
        tuple tuple_struct map struct identifier ignored_any
    }
}

/// An enum: its variant's name, and the value when it came as `{variant: value}`.
struct Enum<'de> {
    variant: &'de str,
    value: Option<&'de Node>,
}

impl<'de> EnumAccess<'de> for Enum<'de> {
    type Error = Error;
    type Variant = Variant<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Variant<'de>), Error> {
        let variant: de::value::StrDeserializer<'_, Error> = self.variant.into_deserializer();
        seed.deserialize(variant).map(|v| (v, Variant { value: self.value }))
    }
}

struct Variant<'de> {
    value: Option<&'de Node>,
}

impl<'de> VariantAccess<'de> for Variant<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            Some(value) => de::Deserialize::deserialize(value),
            None => Ok(()),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(value) => seed.deserialize(value),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &"newtype variant")),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value.map(|v| (v, v.json())) {
            Some((_, Json::Array([]))) => visitor.visit_unit(),
            Some((_, Json::Array(items))) => visit_seq(items, visitor),
            Some((other, _)) => Err(other.invalid_type(&"tuple variant")),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        match self.value.map(|v| (v, v.json())) {
            Some((_, Json::Object(map))) => visit_map(map, visitor),
            Some((other, _)) => Err(other.invalid_type(&"struct variant")),
            None => Err(de::Error::invalid_type(Unexpected::UnitVariant, &"struct variant")),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use crate::compose::error::Span;
    use crate::compose::model::Project;
    use crate::compose::node::Node;

    /// Decoding from the tree and from its JSON give the same value, or the same error.
    fn same<T: for<'de> Deserialize<'de> + PartialEq + std::fmt::Debug>(json: serde_json::Value) {
        let node = Node::from_json(&json, &Span::default());
        let from_node = T::deserialize(&node).map_err(|e| e.to_string());
        let from_json = T::deserialize(&json).map_err(|e| e.to_string());
        assert_eq!(from_node, from_json, "{json}");
    }

    #[test]
    fn decodes_as_its_json() {
        same::<Project>(crate::compose::model::tests::full_project_json());
        same::<Project>(json!({"services": {"web": {"image": "nginx", "x-a": {"b": [1, -2, 1.5, null, true]}}}}));
    }

    #[test]
    fn errors_as_its_json() {
        same::<Project>(json!({"services": {"web": {"image": ["x"]}}}));
        same::<Project>(json!({"services": {"web": {"ports": [{"target": -1}]}}}));
        same::<Project>(json!({"services": {"web": {"cpus": "x"}}}));
        same::<Project>(json!({"services": {"web": {"restart": 3}}}));
        same::<Project>(json!({"services": {"web": {"deploy": {"mode": {"a": 1, "b": 2}}}}}));
        same::<Project>(json!({"services": []}));
        same::<Project>(json!(null));
    }

    #[test]
    fn scalars_and_enums_as_json() {
        #[derive(Debug, PartialEq, Deserialize)]
        enum E {
            Unit,
            New(u8),
            Tuple(u8, i8),
            Struct { a: bool },
        }
        same::<Vec<E>>(json!(["Unit", {"New": 1}, {"Tuple": [1, -1]}, {"Struct": {"a": true}}, {"Unit": null}]));
        same::<Vec<E>>(json!([{"New": "x"}]));
        same::<Vec<E>>(json!([{"Unit": 1}]));
        same::<Vec<E>>(json!([{"Tuple": 1}]));
        same::<Vec<E>>(json!(["Struct"]));
        same::<Vec<E>>(json!([1]));
        same::<(u8, i64, f64, String, Option<bool>)>(json!([1, -3, 2.5, "s", null]));
        same::<(u8, u8)>(json!([1, 2, 3]));
        same::<u8>(json!(300));
        same::<i8>(json!(-300));
        same::<f32>(json!("1"));
        same::<bool>(json!(1));
        same::<()>(json!(null));
        same::<()>(json!(1));
        same::<char>(json!("c"));
        same::<serde_json::Value>(json!({"a": [1, {"b": null}], "c": -1.25}));
    }

    #[test]
    fn floats_json_cannot_hold_are_null() {
        let node = Node::new(super::Value::Float(f64::NAN), Span::default());
        assert_eq!(Option::<f64>::deserialize(&node).ok(), Some(None));
        assert_eq!(serde_json::Value::deserialize(&node).ok(), Some(serde_json::Value::Null));
    }
}
