//! A JSON document as one flat, reusable tape: parsing a frame allocates nothing once the
//! tape has grown to the frames it reads.
//!
//! [`Tape::parse`] fills the tape with `serde_json`'s parser (so numbers are read as a
//! `serde_json::Value` reads them) and [`TapeJson`] lets the `jsonschema` crate validate
//! its nodes in place. Values follow their container in document order; a container
//! records its length and where its last descendant ends; an object's members are a key
//! (a string entry) and its value. All strings, unescaped, sit in one buffer.

use std::borrow::Cow;
use std::fmt;

use jsonschema::json::{cmp, Array, Json, Node, NodeIdentity, Object};
use jsonschema::JsonType;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Members an object may have here; more and [`Tape::parse`] gives up (the duplicate key
/// check is quadratic, and no call read here comes near it).
const MAX_MEMBERS: usize = 32;

/// Entries a tape keeps room for between frames; a bigger frame's room is given back.
const KEPT_ENTRIES: usize = 4096;

#[derive(Debug, Clone)]
enum Entry {
    Null,
    Bool(bool),
    Number(Number),
    /// Bytes `start..end` of the tape's strings.
    String {
        start: u32,
        end: u32,
    },
    /// `len` elements, the last descendant before entry `end`.
    Array {
        len: u32,
        end: u32,
    },
    /// `len` members (key, value), the last descendant before entry `end`.
    Object {
        len: u32,
        end: u32,
    },
}

/// One parsed document; reused, it keeps its room.
#[derive(Debug, Default)]
pub struct Tape {
    entries: Vec<Entry>,
    strings: String,
}

/// A document that is not JSON, or not one read here (duplicate keys, too many members).
#[derive(Debug)]
pub struct NotRead;

impl Tape {
    /// Parses `text` (one JSON value, whitespace around it allowed) into the tape, replacing
    /// what it held; its root is [`Tape::root`].
    pub fn parse(&mut self, text: &str) -> Result<(), NotRead> {
        self.clear();
        let mut parser = serde_json::Deserializer::from_str(text);
        let parsed = Build(self)
            .deserialize(&mut parser)
            .and_then(|()| parser.end());
        if parsed.is_err() {
            self.clear();
            return Err(NotRead);
        }
        Ok(())
    }

    /// The document's root (after [`Tape::parse`] succeeded).
    pub fn root(&self) -> TapeNode<'_> {
        TapeNode { tape: self, at: 0 }
    }

    /// Whether any number was read as a float that is a whole number of magnitude 2^63 or
    /// more (a long integer literal, or one like `1.8e19`).
    pub fn has_big_integral_float(&self) -> bool {
        self.entries.iter().any(|entry| match entry {
            Entry::Number(n) => n.is_f64() && n.as_f64().is_some_and(big_integral),
            _ => false,
        })
    }

    fn clear(&mut self) {
        if self.entries.capacity() > KEPT_ENTRIES {
            self.entries = Vec::new();
            self.strings = String::new();
        }
        self.entries.clear();
        self.strings.clear();
    }

    fn push_str(&mut self, text: &str) -> Result<(), NotRead> {
        let start = index(self.strings.len())?;
        self.strings.push_str(text);
        let end = index(self.strings.len())?;
        self.entries.push(Entry::String { start, end });
        Ok(())
    }

    fn str_at(&self, at: usize) -> Option<&str> {
        match self.entries[at] {
            Entry::String { start, end } => Some(&self.strings[start as usize..end as usize]),
            _ => None,
        }
    }

    /// The entry after the value at `at` and all its descendants.
    fn after(&self, at: usize) -> usize {
        match self.entries[at] {
            Entry::Array { end, .. } | Entry::Object { end, .. } => end as usize,
            _ => at + 1,
        }
    }

    /// Closes the container opened at `at` with `len` children; an object's keys must differ.
    fn close(&mut self, at: usize, len: usize, object: bool) -> Result<(), NotRead> {
        if object {
            let mut members = self.members(at, len);
            while let Some((key, _)) = members.next() {
                if members.clone().any(|(other, _)| other == key) {
                    return Err(NotRead);
                }
            }
        }
        let (len, end) = (index(len)?, index(self.entries.len())?);
        self.entries[at] = match object {
            true => Entry::Object { len, end },
            false => Entry::Array { len, end },
        };
        Ok(())
    }

    /// The `len` members of the object at `at`.
    fn members(&self, at: usize, len: usize) -> TapeMembers<'_> {
        TapeMembers {
            tape: self,
            next: at + 1,
            left: len,
        }
    }
}

fn big_integral(f: f64) -> bool {
    f.fract() == 0.0 && f.abs() >= 9.223_372_036_854_776e18
}

fn index(n: usize) -> Result<u32, NotRead> {
    u32::try_from(n).map_err(|_| NotRead)
}

impl de::Error for NotRead {
    fn custom<T: fmt::Display>(_: T) -> Self {
        NotRead
    }
}

impl fmt::Display for NotRead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not read")
    }
}

impl std::error::Error for NotRead {}

/// Appends one value to the tape.
struct Build<'t>(&'t mut Tape);

impl<'de> DeserializeSeed<'de> for Build<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

fn fail<E: de::Error>(_: NotRead) -> E {
    E::custom("not read")
}

impl<'de> Visitor<'de> for Build<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.0.entries.push(Entry::Null);
        Ok(())
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.0.entries.push(Entry::Bool(v));
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.0.entries.push(Entry::Number(v.into()));
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.0.entries.push(Entry::Number(v.into()));
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        let number = Number::from_f64(v).ok_or_else(|| E::custom("not finite"))?;
        self.0.entries.push(Entry::Number(number));
        Ok(())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v).map_err(fail)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let at = self.0.entries.len();
        self.0.entries.push(Entry::Null);
        let mut len = 0;
        while seq.next_element_seed(Build(self.0))?.is_some() {
            len += 1;
        }
        self.0.close(at, len, false).map_err(fail)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let at = self.0.entries.len();
        self.0.entries.push(Entry::Null);
        let mut len = 0;
        while map.next_key_seed(Key(self.0))?.is_some() {
            map.next_value_seed(Build(self.0))?;
            len += 1;
            if len > MAX_MEMBERS {
                return Err(fail(NotRead));
            }
        }
        self.0.close(at, len, true).map_err(fail)
    }
}

/// Appends an object's key.
struct Key<'t>(&'t mut Tape);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.0.push_str(v).map_err(fail)
    }
}

/// The `jsonschema` crate's view of a [`Tape`].
pub struct TapeJson;

impl Json for TapeJson {
    type Node<'a> = TapeNode<'a>;
    type PreparedKey = String;
    type StringBuffer = Tape;

    // A lookup is a scan of the members, as a members pass is.
    const KEYS_PER_LOOKUP: usize = MAX_MEMBERS;

    fn prepare_key(key: &str) -> String {
        key.to_owned()
    }

    fn with_string_node<T>(
        buffer: &mut Tape,
        string: &str,
        f: impl FnOnce(TapeNode<'_>) -> T,
    ) -> T {
        buffer.clear();
        buffer
            .push_str(string)
            .expect("a property name shorter than its frame");
        f(buffer.root())
    }
}

/// One value of a [`Tape`].
#[derive(Clone, Copy)]
pub struct TapeNode<'a> {
    tape: &'a Tape,
    at: u32,
}

impl<'a> TapeNode<'a> {
    fn entry(&self) -> &'a Entry {
        &self.tape.entries[self.at as usize]
    }

    /// The string, if this is one.
    pub fn str(&self) -> Option<&'a str> {
        self.tape.str_at(self.at as usize)
    }

    /// The number as a `u64`, if it is an integer that fits.
    pub fn u64(&self) -> Option<u64> {
        match self.entry() {
            Entry::Number(n) => n.as_u64(),
            _ => None,
        }
    }

    /// The number as an `i64`, if it is an integer that fits.
    pub fn i64(&self) -> Option<i64> {
        match self.entry() {
            Entry::Number(n) => n.as_i64(),
            _ => None,
        }
    }

    /// The number as an `f64`, if this is a number.
    pub fn f64(&self) -> Option<f64> {
        match self.entry() {
            Entry::Number(n) => n.as_f64(),
            _ => None,
        }
    }

    /// The member `key`, if this is an object that has it.
    pub fn get(&self, key: &str) -> Option<TapeNode<'a>> {
        self.is_object()
            .then_some(TapeObject(*self))?
            .members()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value)
    }

    /// The elements, if this is an array.
    pub fn items(&self) -> Option<TapeItems<'a>> {
        match self.entry() {
            Entry::Array { len, .. } => Some(TapeItems {
                tape: self.tape,
                next: self.at as usize + 1,
                left: *len as usize,
            }),
            _ => None,
        }
    }

    /// Whether this is an object.
    pub fn is_object(&self) -> bool {
        matches!(self.entry(), Entry::Object { .. })
    }
}

impl<'a> Node<'a, TapeJson> for TapeNode<'a> {
    type Object = TapeObject<'a>;
    type Array = TapeArray<'a>;
    type Number = Number;

    fn as_object(&self) -> Option<TapeObject<'a>> {
        self.is_object().then_some(TapeObject(*self))
    }

    fn as_array(&self) -> Option<TapeArray<'a>> {
        matches!(self.entry(), Entry::Array { .. }).then_some(TapeArray(*self))
    }

    fn as_string(&self) -> Option<Cow<'a, str>> {
        self.str().map(Cow::Borrowed)
    }

    fn as_number(&self) -> Option<Number> {
        match self.entry() {
            Entry::Number(n) => Some(n.clone()),
            _ => None,
        }
    }

    fn as_boolean(&self) -> Option<bool> {
        match self.entry() {
            Entry::Bool(b) => Some(*b),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self.entry(), Entry::Null)
    }

    fn json_type(&self) -> JsonType {
        match self.entry() {
            Entry::Null => JsonType::Null,
            Entry::Bool(_) => JsonType::Boolean,
            Entry::Number(_) => JsonType::Number,
            Entry::String { .. } => JsonType::String,
            Entry::Array { .. } => JsonType::Array,
            Entry::Object { .. } => JsonType::Object,
        }
    }

    fn equals_value(&self, expected: &Value) -> bool {
        match (self.entry(), expected) {
            (Entry::String { .. }, Value::String(want)) => self.str() == Some(want.as_str()),
            (Entry::Number(n), Value::Number(want)) => cmp::equal_numbers(n, want),
            // A container through its `Value` (no schema read here has an `enum` or `const`
            // of one); one kind against another is unequal.
            (Entry::Array { .. } | Entry::Object { .. }, _) => {
                cmp::equal(&self.to_value(), expected)
            }
            (Entry::Null, _) => expected.is_null(),
            (Entry::Bool(b), _) => expected.as_bool() == Some(*b),
            _ => false,
        }
    }

    fn to_value(&self) -> Cow<'a, Value> {
        Cow::Owned(match self.entry() {
            Entry::Null => Value::Null,
            Entry::Bool(b) => Value::Bool(*b),
            Entry::Number(n) => Value::Number(n.clone()),
            Entry::String { .. } => Value::String(self.str().unwrap_or_default().to_owned()),
            Entry::Array { .. } => Value::Array(
                TapeArray(*self)
                    .elements()
                    .map(|item| item.to_value().into_owned())
                    .collect(),
            ),
            Entry::Object { .. } => Value::Object(
                TapeObject(*self)
                    .members()
                    .map(|(key, value)| (key.to_owned(), value.to_value().into_owned()))
                    .collect::<Map<_, _>>(),
            ),
        })
    }

    fn identity(&self) -> Option<NodeIdentity> {
        Some(NodeIdentity::tagged(
            std::ptr::from_ref(self.tape) as usize,
            self.at,
        ))
    }
}

/// An object of a [`Tape`].
#[derive(Clone, Copy)]
pub struct TapeObject<'a>(TapeNode<'a>);

/// An object's members in document order.
#[derive(Clone)]
pub struct TapeMembers<'a> {
    tape: &'a Tape,
    next: usize,
    left: usize,
}

impl<'a> Iterator for TapeMembers<'a> {
    type Item = (&'a str, TapeNode<'a>);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let key = self.tape.str_at(self.next)?;
        let value = TapeNode {
            tape: self.tape,
            at: (self.next + 1) as u32,
        };
        self.next = self.tape.after(self.next + 1);
        Some((key, value))
    }
}

impl<'a> Object<'a, TapeJson> for TapeObject<'a> {
    type Node = TapeNode<'a>;
    type MemberName = &'a str;
    type MembersIter = TapeMembers<'a>;

    fn len(&self) -> usize {
        match self.0.entry() {
            Entry::Object { len, .. } => *len as usize,
            _ => 0,
        }
    }

    fn get(&self, key: &String) -> Option<TapeNode<'a>> {
        self.0.get(key)
    }

    fn members(&self) -> TapeMembers<'a> {
        self.0.tape.members(self.0.at as usize, self.len())
    }
}

/// An array of a [`Tape`].
#[derive(Clone, Copy)]
pub struct TapeArray<'a>(TapeNode<'a>);

/// An array's elements in document order.
#[derive(Clone)]
pub struct TapeItems<'a> {
    tape: &'a Tape,
    next: usize,
    left: usize,
}

impl<'a> Iterator for TapeItems<'a> {
    type Item = TapeNode<'a>;

    fn next(&mut self) -> Option<TapeNode<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let item = TapeNode {
            tape: self.tape,
            at: self.next as u32,
        };
        self.next = self.tape.after(self.next);
        Some(item)
    }
}

impl<'a> Array<'a, TapeJson> for TapeArray<'a> {
    type Node = TapeNode<'a>;
    type ElementsIter = TapeItems<'a>;

    fn len(&self) -> usize {
        self.elements().left
    }

    fn elements(&self) -> TapeItems<'a> {
        self.0.items().unwrap_or(TapeItems {
            tape: self.0.tape,
            next: 0,
            left: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Tape {
        let mut tape = Tape::default();
        tape.parse(text).unwrap();
        tape
    }

    #[test]
    fn reads_back_what_serde_json_reads() {
        for text in [
            r#"{"a": [1, -2, 3.5, 1e2, 18446744073709551616, true, null, "x\"\u00e9"], "b": {}}"#,
            r#"[2, "19", "Heartbeat", {}]"#,
            r#" "just a string" "#,
            "[[], [[]], {\"k\": [{}]}]",
        ] {
            let tape = parsed(text);
            let want: Value = serde_json::from_str(text).unwrap();
            assert_eq!(tape.root().to_value().into_owned(), want, "{text}");
        }
    }

    #[test]
    fn leaves_what_it_does_not_read() {
        let mut tape = Tape::default();
        for text in [
            "",
            "[1,]",
            "{\"a\": 1, \"a\": 2}",
            "[1] x",
            "NaN",
            "\"\\ud800\"",
        ] {
            assert!(tape.parse(text).is_err(), "{text}");
        }
        let many = (0..=MAX_MEMBERS)
            .map(|i| format!("\"k{i}\": {i}"))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(tape.parse(&format!("{{{many}}}")).is_err());
    }

    #[test]
    fn walks_members_and_items() {
        let tape = parsed(r#"{"a": {"x": [1, [2, 3]]}, "b": [4, 5], "c": "s"}"#);
        let root = tape.root();
        assert_eq!(root.get("c").and_then(|n| n.str()), Some("s"));
        let b: Vec<_> = root
            .get("b")
            .unwrap()
            .items()
            .unwrap()
            .map(|n| n.i64())
            .collect();
        assert_eq!(b, [Some(4), Some(5)]);
        assert_eq!(root.as_object().unwrap().len(), 3);
        assert!(root.get("d").is_none());
        assert_ne!(root.identity(), root.get("a").unwrap().identity());
    }

    #[test]
    fn the_validator_reads_the_tape() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["Available", "Charging"]},
                "n": {"type": "integer", "minimum": 0},
                "t": {"type": "string", "format": "date-time"}
            },
            "required": ["status"],
            "additionalProperties": false
        });
        let validator = jsonschema::options_for::<TapeJson>()
            .should_validate_formats(true)
            .build(&schema)
            .unwrap();
        let mut tape = Tape::default();
        for (text, valid) in [
            (
                r#"{"status": "Charging", "n": 3, "t": "2026-12-07T21:00:00Z"}"#,
                true,
            ),
            (r#"{"status": "Charging", "n": -3}"#, false),
            (r#"{"status": "Charging", "n": 3.5}"#, false),
            (r#"{"status": "Idle"}"#, false),
            (r#"{"status": "Charging", "t": "yesterday"}"#, false),
            (r#"{"status": "Charging", "x": 1}"#, false),
            (r#"{"n": 1}"#, false),
        ] {
            tape.parse(text).unwrap();
            assert_eq!(validator.is_valid(tape.root()), valid, "{text}");
        }
    }
}
