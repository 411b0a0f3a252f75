//! JSON ecosystem files into the positioned tree of `tree.rs`. serde_json checks the syntax
//! (its errors carry line:column); a short walk over the then valid text records where each key
//! and value starts, which serde_json does not say for keys. JSON printed by `node` for `.js`
//! files is read with no positions: they would point into that output, not into the user's file.

use std::cell::Cell;

use serde::de::IgnoredAny;

use super::tree::{Node, Pos, SyntaxError, Value};

/// Parses JSON; with `positions` false every node's `pos` is `None`.
pub fn parse_json(text: &str, positions: bool) -> Result<Node, SyntaxError> {
    if let Err(err) = serde_json::from_str::<IgnoredAny>(text) {
        let pos = (err.line() > 0).then(|| Pos {
            line: err.line(),
            column: err.column().max(1),
        });
        let message = err.to_string();
        let message = match message.rfind(" at line ") {
            Some(at) if pos.is_some() => message[..at].to_owned(),
            _ => message,
        };
        return Err(SyntaxError { pos, message });
    }
    let mut walk = JsonWalk {
        text,
        at: 0,
        positions,
        depth: 0,
        counted: Cell::new((0, 1, 0)),
    };
    walk.value()
}

/// Walks JSON text that serde_json has already accepted.
struct JsonWalk<'t> {
    text: &'t str,
    at: usize,
    positions: bool,
    /// Lists and mappings open around the walk: bounded, since the walk recurses.
    depth: usize,
    /// Lines and columns counted so far: (up to this byte, its line, characters before it on
    /// its line). The walk only moves forward, so counting from here keeps it linear.
    counted: Cell<(usize, usize, usize)>,
}

use super::depth::MAX_DEPTH;

impl JsonWalk<'_> {
    fn value(&mut self) -> Result<Node, SyntaxError> {
        self.skip_ws();
        let pos = self.pos();
        let rest = &self.text[self.at..];
        let value = match rest.bytes().next() {
            Some(b'{' | b'[') if self.depth >= MAX_DEPTH => {
                return Err(SyntaxError {
                    pos,
                    message: format!("lists and mappings nested more than {MAX_DEPTH} deep"),
                });
            }
            Some(b'{') => return self.nested(|walk| walk.map(pos)),
            Some(b'[') => return self.nested(|walk| walk.seq(pos)),
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') => self.word("true", Value::Bool(true))?,
            Some(b'f') => self.word("false", Value::Bool(false))?,
            Some(b'n') => self.word("null", Value::Null)?,
            _ => self.number()?,
        };
        Ok(Node { pos, value })
    }

    fn nested(
        &mut self,
        walk: impl FnOnce(&mut Self) -> Result<Node, SyntaxError>,
    ) -> Result<Node, SyntaxError> {
        self.depth += 1;
        let node = walk(self);
        self.depth -= 1;
        node
    }

    fn map(&mut self, pos: Option<Pos>) -> Result<Node, SyntaxError> {
        self.at += 1;
        let mut entries = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b'}') => break,
                Some(b',') => self.at += 1,
                _ => {
                    let key = self.value()?;
                    self.skip_ws();
                    self.expect(b':')?;
                    let value = self.value()?;
                    entries.push((key, value));
                }
            }
        }
        self.at += 1;
        Ok(Node {
            pos,
            value: Value::Map(entries),
        })
    }

    fn seq(&mut self, pos: Option<Pos>) -> Result<Node, SyntaxError> {
        self.at += 1;
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.peek() {
                Some(b']') => break,
                Some(b',') => self.at += 1,
                _ => items.push(self.value()?),
            }
        }
        self.at += 1;
        Ok(Node {
            pos,
            value: Value::Seq(items),
        })
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        let bytes = self.text.as_bytes();
        let start = self.at;
        let mut i = start + 1;
        while i < bytes.len() && bytes[i] != b'"' {
            i += if bytes[i] == b'\\' { 2 } else { 1 };
        }
        let end = (i + 1).min(bytes.len());
        self.at = end;
        serde_json::from_str(&self.text[start..end]).map_err(|e| self.broken(&e.to_string()))
    }

    fn number(&mut self) -> Result<Value, SyntaxError> {
        let rest = &self.text[self.at..];
        let len = rest
            .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
            .unwrap_or(rest.len());
        let token = &rest[..len];
        self.at += len;
        if let Ok(int) = token.parse::<i128>() {
            return Ok(Value::Int(int));
        }
        token
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.broken("bad number"))
    }

    fn word(&mut self, word: &str, value: Value) -> Result<Value, SyntaxError> {
        if self.text[self.at..].starts_with(word) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(self.broken("unexpected word"))
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), SyntaxError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.broken("unexpected character"))
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn pos(&self) -> Option<Pos> {
        if !self.positions {
            return None;
        }
        let (from, mut line, mut column) = self.counted.get();
        let to = self.at.max(from);
        for b in &self.text.as_bytes()[from..to] {
            if *b == b'\n' {
                line += 1;
                column = 0;
            } else if b & 0xC0 != 0x80 {
                // Not a UTF-8 continuation byte: a character starts here.
                column += 1;
            }
        }
        self.counted.set((to, line, column));
        Some(Pos {
            line,
            column: column + 1,
        })
    }

    /// Only reachable if serde_json and this walk disagree about the text.
    fn broken(&self, what: &str) -> SyntaxError {
        SyntaxError {
            pos: self.pos(),
            message: format!("cannot read this JSON ({what})"),
        }
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
    fn json_positions() {
        let doc = "{\n  \"apps\": [\n    {\"name\": \"a\\\"b\", \"n\": -3, \"f\": 2.5e3, \"t\": false, \"z\": null}\n  ]\n}";
        let root = parse_json(doc, true).expect("valid");
        assert_eq!(root.pos, at(1, 1));
        let (key, apps) = &entries(&root)[0];
        assert_eq!(key.pos, at(2, 3));
        let Value::Seq(list) = &apps.value else {
            panic!("apps")
        };
        let app = entries(&list[0]);
        assert_eq!(app[0].0.pos, at(3, 6));
        assert_eq!(
            app[0].1,
            Node {
                pos: at(3, 14),
                value: Value::Str("a\"b".into())
            }
        );
        assert_eq!(app[1].1.value, Value::Int(-3));
        assert_eq!(app[2].1.value, Value::Float(2500.0));
        assert_eq!(app[3].1.value, Value::Bool(false));
        assert_eq!(app[4].1.value, Value::Null);
        assert_eq!(parse_json(doc, false).expect("valid").pos, None);
    }

    #[test]
    fn json_depth_is_bounded() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse_json(&deep, true).expect_err("too deep");
        assert_eq!(err.pos, at(1, 129));
        assert_eq!(err.message, "lists and mappings nested more than 128 deep");
        let fine = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse_json(&fine, true).is_ok());
    }

    #[test]
    fn json_errors() {
        let err = parse_json("{\n \"a\": 1,,\n}", true).expect_err("double comma");
        assert_eq!(
            err,
            SyntaxError {
                pos: at(2, 9),
                message: "key must be a string".into()
            }
        );
    }
}
