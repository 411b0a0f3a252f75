//! Typed reads of one app's values: each read checks the type and the range, reports a problem
//! at the value's own line:column (the key's, for a list or mapping), and returns `None` when
//! the value is unusable, so that the caller goes on and every problem is found.

use std::collections::BTreeMap;

use super::keys::Key;
use super::tree::{Node, Pos, Value};
use super::Ctx;
use crate::config::{interpreter, units};

/// What a string holding `\0` is told: the OS takes paths, arguments and variables as C strings.
const NUL: &str = "contains a NUL character (\\0), which no path, argument or variable can hold";

/// One `key: value` of the file, as written.
#[derive(Debug, Clone, Copy)]
pub struct Field<'n> {
    /// `max_memory_restart`, or `interval` inside `readiness` (then `parent` is `readiness`).
    pub written: &'n str,
    pub parent: Option<&'n str>,
    pub key_pos: Option<Pos>,
    pub value: &'n Node,
}

impl Field<'_> {
    /// Where a problem with the value is shown: at a scalar itself, at the key of a list or map.
    pub fn pos(&self) -> Option<Pos> {
        if self.value.is_scalar() {
            self.value.pos.or(self.key_pos)
        } else {
            self.key_pos
        }
    }

    fn display(&self) -> String {
        match self.parent {
            Some(parent) => format!("`{parent}.{}`", self.written),
            None => format!("`{}`", self.written),
        }
    }
}

/// An app being read: its fields by key, and where problems go.
pub struct App<'c, 'n> {
    pub ctx: &'c mut Ctx,
    /// `app "api"`, or `app #2` before a name is known.
    pub label: String,
    pub fields: BTreeMap<Key, Field<'n>>,
}

impl<'n> App<'_, 'n> {
    pub fn get(&self, key: Key) -> Option<Field<'n>> {
        self.fields.get(&key).copied()
    }

    /// A problem about the app: `app "api": <message>`.
    pub fn error(&mut self, pos: Option<Pos>, message: impl std::fmt::Display) {
        let text = format!("{}: {message}", self.label);
        self.ctx.error(pos, text);
    }

    /// What pm2 would ignore (an unknown key): a warning, a problem when strict.
    pub fn warn(&mut self, pos: Option<Pos>, message: impl std::fmt::Display) {
        let text = format!("{}: {message}", self.label);
        self.ctx.warn(pos, text);
    }

    pub fn note(&mut self, pos: Option<Pos>, message: impl std::fmt::Display) {
        let text = format!("{}: {message}", self.label);
        self.ctx.note(pos, text);
    }

    /// A problem with a value: `app "api": `key`: <message>`.
    pub fn bad(&mut self, field: &Field<'_>, message: impl std::fmt::Display) {
        self.error(field.pos(), format!("{}: {message}", field.display()));
    }

    /// `app "api": `key`: expected <expected>, found <what>`.
    pub fn wrong_type(&mut self, field: &Field<'_>, expected: &str) {
        let found = field.value.describe();
        self.bad(field, format!("expected {expected}, found {found}"));
    }

    pub fn string(&mut self, key: Key) -> Option<String> {
        self.get(key).and_then(|f| self.string_of(&f))
    }

    /// A non-empty string.
    pub fn string_of(&mut self, f: &Field<'_>) -> Option<String> {
        match &f.value.value {
            Value::Str(s) if s.trim().is_empty() => {
                self.error(f.pos(), format!("{} is empty", f.display()));
                None
            }
            Value::Str(s) if s.contains('\0') => {
                self.bad(f, NUL);
                None
            }
            Value::Str(s) => Some(s.clone()),
            _ => {
                self.wrong_type(f, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, key: Key) -> Option<bool> {
        let f = self.get(key)?;
        self.bool_of(&f)
    }

    pub fn bool_of(&mut self, f: &Field<'_>) -> Option<bool> {
        match f.value.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.wrong_type(f, "true or false");
                None
            }
        }
    }

    /// Milliseconds: a number, or a string such as `"1.5s"`.
    pub fn duration(&mut self, key: Key) -> Option<u64> {
        let f = self.get(key)?;
        self.duration_of(&f)
    }

    pub fn duration_of(&mut self, f: &Field<'_>) -> Option<u64> {
        let parsed = match &f.value.value {
            Value::Int(i) if *i < 0 => Err(format!("{i} is not a duration: it is negative")),
            Value::Int(i) => {
                crate::config::check::check_duration(u64::try_from(*i).unwrap_or(u64::MAX))
            }
            Value::Float(x) => units::parse_duration_ms(&x.to_string()),
            Value::Str(s) => units::parse_duration_ms(s),
            _ => {
                self.wrong_type(f, "a duration (milliseconds, or a string like \"1.5s\")");
                return None;
            }
        };
        parsed.map_err(|e| self.bad(f, e)).ok()
    }

    /// Bytes: a number, or a string such as `"300M"`.
    pub fn size(&mut self, key: Key) -> Option<u64> {
        let f = self.get(key)?;
        let parsed = match &f.value.value {
            Value::Int(i) => {
                u64::try_from(*i).map_err(|_| format!("{i} is not a size: it is negative"))
            }
            Value::Str(s) => units::parse_size(s),
            _ => {
                self.wrong_type(&f, "a size (bytes, or a string like \"300M\")");
                return None;
            }
        };
        match parsed {
            Ok(0) => self.bad(&f, "must be more than 0"),
            Ok(bytes) => return Some(bytes),
            Err(e) => self.bad(&f, e),
        }
        None
    }

    /// A whole number that fits in `u32`.
    pub fn count(&mut self, key: Key) -> Option<u32> {
        let f = self.get(key)?;
        match whole(f.value).map(u32::try_from) {
            Some(Ok(n)) => return Some(n),
            Some(Err(_)) if whole(f.value).is_some_and(|i| i < 0) => {
                self.bad(&f, "must not be negative")
            }
            Some(Err(_)) => self.bad(&f, format!("is too large (at most {})", u32::MAX)),
            None => self.wrong_type(&f, "a whole number"),
        }
        None
    }

    /// Arguments: a string split like a shell would (no expansion), or a list.
    pub fn words(&mut self, key: Key) -> Option<Vec<String>> {
        let f = self.get(key)?;
        match &f.value.value {
            Value::Str(s) if s.contains('\0') => {
                self.bad(&f, NUL);
                None
            }
            Value::Str(s) => interpreter::split_words(s)
                .map_err(|e| self.bad(&f, e))
                .ok(),
            Value::Seq(items) => self.scalar_list(&f, items, "a string"),
            _ => {
                self.wrong_type(&f, "a string or a list of strings");
                None
            }
        }
    }

    /// One string or a list of strings, with the position of each.
    pub fn names(&mut self, key: Key) -> Option<Vec<(String, Option<Pos>)>> {
        let f = self.get(key)?;
        match &f.value.value {
            Value::Str(s) => Some(vec![(s.clone(), f.pos())]),
            Value::Seq(items) => {
                let mut out = Vec::new();
                for item in items {
                    match &item.value {
                        Value::Str(s) => out.push((s.clone(), item.pos.or(f.key_pos))),
                        _ => self.wrong_type(&Field { value: item, ..f }, "a string"),
                    }
                }
                (out.len() == items.len()).then_some(out)
            }
            _ => {
                self.wrong_type(&f, "a string or a list of strings");
                None
            }
        }
    }

    /// Environment variables: a mapping of names to strings, numbers or booleans.
    pub fn env_of(&mut self, f: &Field<'_>) -> Option<BTreeMap<String, String>> {
        let Value::Map(entries) = &f.value.value else {
            self.wrong_type(f, "a mapping of variable names to values");
            return None;
        };
        let mut env = BTreeMap::new();
        let mut ok = true;
        for (key, value) in entries {
            let Some(name) = key
                .as_str()
                .filter(|n| !n.is_empty() && !n.contains(['=', '\0']))
            else {
                let what = key.describe();
                self.error(
                    key.pos.or(f.key_pos),
                    format!("{}: {what} is not a variable name", f.display()),
                );
                ok = false;
                continue;
            };
            let entry = Field {
                written: name,
                parent: Some(f.written),
                key_pos: key.pos,
                value,
            };
            // pm2 (`mergeEnvironmentVariables`) gives a program `JSON.stringify` of an object,
            // a list or null: so does rcluster.
            let text = match &value.value {
                Value::Map(_) | Value::Seq(_) => json_text(value),
                Value::Null => {
                    self.note(
                        value.pos.or(key.pos),
                        format!(
                            "{} is null: the app sees the text \"null\", as under pm2",
                            entry.display()
                        ),
                    );
                    "null".to_owned()
                }
                _ => match scalar_text(value) {
                    Some(text) => text,
                    None => {
                        self.wrong_type(&entry, "a string, number or boolean");
                        ok = false;
                        continue;
                    }
                },
            };
            if text.contains('\0') {
                self.bad(&entry, NUL);
                ok = false;
                continue;
            }
            if env.insert(name.to_owned(), text).is_some() {
                self.error(key.pos, format!("{} is given twice", entry.display()));
                ok = false;
            }
        }
        ok.then_some(env)
    }

    fn scalar_list(
        &mut self,
        f: &Field<'_>,
        items: &[Node],
        expected: &str,
    ) -> Option<Vec<String>> {
        let mut out = Vec::new();
        for item in items {
            match scalar_text(item) {
                Some(text) if text.contains('\0') => self.bad(&Field { value: item, ..*f }, NUL),
                Some(text) => out.push(text),
                None => self.wrong_type(&Field { value: item, ..*f }, expected),
            }
        }
        (out.len() == items.len()).then_some(out)
    }
}

/// A scalar as the string a program would see: numbers and booleans as written by JSON.
pub fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(x) => Some(x.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A node as JavaScript's `JSON.stringify` writes it: compact, keys in file order.
pub fn json_text(node: &Node) -> String {
    let mut out = String::new();
    write_json(node, &mut out);
    out
}

fn write_json(node: &Node, out: &mut String) {
    let quoted = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    match &node.value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(&b.to_string()),
        Value::Int(i) => out.push_str(&i.to_string()),
        // JSON has no NaN or infinity; JSON.stringify writes null for them.
        Value::Float(x) if !x.is_finite() => out.push_str("null"),
        Value::Float(x) => out.push_str(&x.to_string()),
        Value::Str(s) => out.push_str(&quoted(s)),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let key = scalar_text(key).unwrap_or_else(|| json_text(key));
                out.push_str(&quoted(&key));
                out.push(':');
                write_json(value, out);
            }
            out.push('}');
        }
    }
}

/// A number without a fraction (`4`, `4.0`).
pub fn whole(node: &Node) -> Option<i128> {
    match node.value {
        Value::Int(i) => Some(i),
        // The range check keeps the cast exact; `as` is the only float -> int conversion.
        Value::Float(x) if x.fract() == 0.0 && x.abs() < 1e18 => Some(x as i128),
        _ => None,
    }
}
