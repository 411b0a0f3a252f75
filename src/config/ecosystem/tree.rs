//! An ecosystem document as a tree of nodes that know their line:column, so that validation can
//! report EVERY problem at its own place instead of stopping at the first serde error.
//!
//! YAML: serde_norway attaches the position of the event it stands on to an error raised inside a
//! visitor (style README §5). The scalar visitor here parks the scalar in a slot and raises a
//! marker error; the enclosing map/seq visitor catches it, reads the position from the error and
//! carries on (a scalar is one event, so the stream is intact). Any other error is a real one.
//! JSON is read into the same tree by `json.rs`.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts; for a YAML mapping or sequence, where its first child starts.
    pub pos: Option<Pos>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order, duplicates kept (validation reports them).
    Map(Vec<(Node, Node)>),
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_scalar(&self) -> bool {
        !matches!(self.value, Value::Seq(_) | Value::Map(_))
    }

    /// "a string ("yes")", "a list": what a type error says was found.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "null".into(),
            Value::Bool(b) => format!("a boolean ({b})"),
            Value::Int(i) => format!("a number ({i})"),
            Value::Float(f) => format!("a number ({f})"),
            Value::Str(s) => format!("a string ({s:?})"),
            Value::Seq(_) => "a list".into(),
            Value::Map(_) => "a mapping".into(),
        }
    }
}

/// A document that could not be parsed at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub pos: Option<Pos>,
    pub message: String,
}

/// Parses YAML; `<<` merge keys are applied.
pub fn parse_yaml(text: &str) -> Result<Node, SyntaxError> {
    super::depth::check_depth(text)?;
    let slot = RefCell::new(None);
    let result = NodeSeed { slot: &slot }.deserialize(serde_norway::Deserializer::from_str(text));
    match result {
        Ok(node) => Ok(merge_keys(node)),
        Err(err) => match slot.take() {
            Some(value) => Ok(Node {
                pos: marker_pos(&err.to_string()),
                value,
            }),
            None => {
                let pos = err.location().map(|l| Pos {
                    line: l.line(),
                    column: l.column(),
                });
                let mut message = err.to_string();
                if let Some(p) = pos {
                    message = message.replacen(
                        &format!(" at line {} column {}", p.line, p.column),
                        "",
                        1,
                    );
                }
                Err(SyntaxError { pos, message })
            }
        },
    }
}

/// The message of the marker error; its content does not matter, the slot says it is ours.
const MARKER: &str = "\u{1}scalar";

struct NodeSeed<'s> {
    slot: &'s RefCell<Option<Value>>,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor { slot: self.slot })
    }
}

struct NodeVisitor<'s> {
    slot: &'s RefCell<Option<Value>>,
}

impl NodeVisitor<'_> {
    fn park<E: de::Error>(self, value: Value) -> Result<Node, E> {
        *self.slot.borrow_mut() = Some(value);
        Err(E::custom(MARKER))
    }

    /// The node behind `result`: a compound node, or a scalar parked by the marker error.
    fn catch<E: de::Error>(&self, result: Result<Node, E>) -> Result<Node, E> {
        match result {
            Ok(node) => Ok(node),
            Err(err) => match self.slot.borrow_mut().take() {
                Some(value) => Ok(Node {
                    pos: marker_pos(&err.to_string()),
                    value,
                }),
                None => Err(err),
            },
        }
    }
}

impl<'de> Visitor<'de> for NodeVisitor<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        self.park(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        self.park(Value::Int(v.into()))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        self.park(Value::Int(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        self.park(Value::Int(v.into()))
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        match i128::try_from(v) {
            Ok(v) => self.park(Value::Int(v)),
            Err(_) => self.park(Value::Str(v.to_string())),
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        self.park(Value::Float(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        self.park(Value::Str(v.to_owned()))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        self.park(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        self.park(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        loop {
            let next = seq.next_element_seed(NodeSeed { slot: self.slot });
            let item = match next {
                Ok(None) => break,
                Ok(Some(node)) => node,
                Err(err) => self.catch(Err(err))?,
            };
            items.push(item);
        }
        Ok(Node {
            pos: items.first().and_then(|n| n.pos),
            value: Value::Seq(items),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        loop {
            let key = match map.next_key_seed(NodeSeed { slot: self.slot }) {
                Ok(None) => break,
                Ok(Some(node)) => node,
                Err(err) => self.catch(Err(err))?,
            };
            let value = map.next_value_seed(NodeSeed { slot: self.slot });
            let value = self.catch(value)?;
            entries.push((key, value));
        }
        Ok(Node {
            pos: entries.first().and_then(|(k, _)| k.pos),
            value: Value::Map(entries),
        })
    }
}

/// The position serde_norway appended to a marker error: `... at line 3 column 5`. It leaves
/// the position out when the event is at the very start of the input.
fn marker_pos(display: &str) -> Option<Pos> {
    let Some((_, tail)) = display.rsplit_once(" at line ") else {
        return Some(Pos { line: 1, column: 1 });
    };
    let (line, column) = tail.split_once(" column ")?;
    Some(Pos {
        line: line.parse().ok()?,
        column: column.parse().ok()?,
    })
}

/// Applies YAML merge keys (`<<: *defaults`): the mapping's own keys win, then earlier sources.
fn merge_keys(node: Node) -> Node {
    let value = match node.value {
        Value::Seq(items) => Value::Seq(items.into_iter().map(merge_keys).collect()),
        Value::Map(entries) => {
            let mut own = Vec::new();
            let mut inherited = Vec::new();
            for (key, value) in entries {
                let value = merge_keys(value);
                if key.as_str() != Some("<<") {
                    own.push((key, value));
                    continue;
                }
                match value.value {
                    Value::Map(from) => inherited.extend(from),
                    Value::Seq(ref list)
                        if list.iter().all(|n| matches!(n.value, Value::Map(_))) =>
                    {
                        for source in list.clone() {
                            if let Value::Map(from) = source.value {
                                inherited.extend(from);
                            }
                        }
                    }
                    _ => own.push((key, value)),
                }
            }
            for (key, value) in inherited {
                let taken = |k: &Node| k.as_str().is_some() && k.as_str() == key.as_str();
                if !own.iter().any(|(k, _)| taken(k)) {
                    own.push((key, value));
                }
            }
            Value::Map(own)
        }
        scalar => scalar,
    };
    Node {
        pos: node.pos,
        value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: usize, column: usize) -> Option<Pos> {
        Some(Pos { line, column })
    }

    fn entries(node: &Node) -> &[(Node, Node)] {
        match &node.value {
            Value::Map(e) => e,
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn yaml_positions_and_types() {
        let doc =
            "apps:\n  - name: api\n    instances: 4\n    ratio: 1.5\n    on: true\n    none: ~\n";
        let root = parse_yaml(doc).expect("valid");
        let (key, apps) = &entries(&root)[0];
        assert_eq!(key.pos, at(1, 1));
        let Value::Seq(list) = &apps.value else {
            panic!("apps")
        };
        let app = entries(&list[0]);
        assert_eq!(app[0].0.pos, at(2, 5));
        assert_eq!(
            app[0].1,
            Node {
                pos: at(2, 11),
                value: Value::Str("api".into())
            }
        );
        assert_eq!(
            app[1].1,
            Node {
                pos: at(3, 16),
                value: Value::Int(4)
            }
        );
        assert_eq!(app[2].1.value, Value::Float(1.5));
        assert_eq!(app[3].1.value, Value::Bool(true));
        assert_eq!(app[4].1.value, Value::Null);
        assert_eq!(list[0].pos, at(2, 5));
    }

    #[test]
    fn yaml_merge_keys() {
        let doc = "base: &b\n  a: 1\n  b: 2\napp:\n  <<: *b\n  b: 3\n";
        let root = parse_yaml(doc).expect("valid");
        let app = entries(&entries(&root)[1].1);
        let pairs: Vec<_> = app
            .iter()
            .map(|(k, v)| (k.as_str(), v.value.clone()))
            .collect();
        assert_eq!(
            pairs,
            vec![(Some("b"), Value::Int(3)), (Some("a"), Value::Int(1))]
        );
    }

    #[test]
    fn yaml_errors() {
        let err = parse_yaml("a: [1\nb: 2").expect_err("unclosed");
        assert_eq!(err.pos, at(2, 2));
        assert!(
            err.message.starts_with("did not find expected ',' or ']'"),
            "{}",
            err.message
        );
        let scalar = parse_yaml("just text").expect("a scalar document");
        assert_eq!(scalar.value, Value::Str("just text".into()));
    }
}
