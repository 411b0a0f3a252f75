//! A JSON value that keeps its keys in order (`Js`), printed two ways: as JSON (`jlist`) and
//! as Node's `util.inspect(value, false, null, false)` does (`prettylist`, as pm2 prints it:
//! `status: 'online'`, 80 columns, Node 20's line breaking). Used by `cli::pm2_list`.

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

/// A JSON value whose objects keep insertion order.
#[derive(Debug, Clone, PartialEq)]
pub enum Js {
    Null,
    Bool(bool),
    Num(serde_json::Number),
    Str(String),
    Arr(Vec<Js>),
    Obj(Vec<(String, Js)>),
}

impl From<serde_json::Value> for Js {
    fn from(value: serde_json::Value) -> Js {
        use serde_json::Value;
        match value {
            Value::Null => Js::Null,
            Value::Bool(b) => Js::Bool(b),
            Value::Number(n) => Js::Num(n),
            Value::String(s) => Js::Str(s),
            Value::Array(items) => Js::Arr(items.into_iter().map(Js::from).collect()),
            Value::Object(map) => Js::Obj(map.into_iter().map(|(k, v)| (k, v.into())).collect()),
        }
    }
}

impl From<&str> for Js {
    fn from(s: &str) -> Js {
        Js::Str(s.to_owned())
    }
}

impl From<String> for Js {
    fn from(s: String) -> Js {
        Js::Str(s)
    }
}

impl From<bool> for Js {
    fn from(b: bool) -> Js {
        Js::Bool(b)
    }
}

impl From<u64> for Js {
    fn from(n: u64) -> Js {
        Js::Num(n.into())
    }
}

impl From<u32> for Js {
    fn from(n: u32) -> Js {
        Js::Num(n.into())
    }
}

impl From<f64> for Js {
    fn from(n: f64) -> Js {
        serde_json::Number::from_f64(n).map_or(Js::Null, Js::Num)
    }
}

impl Js {
    /// The value of `key` in an object (the first, as JavaScript keeps one).
    pub fn get(&self, key: &str) -> Option<&Js> {
        match self {
            Js::Obj(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }
}

impl Serialize for Js {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Js::Null => s.serialize_unit(),
            Js::Bool(b) => s.serialize_bool(*b),
            Js::Num(n) => n.serialize(s),
            Js::Str(text) => s.serialize_str(text),
            Js::Arr(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Js::Obj(entries) => {
                let mut map = s.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
        }
    }
}

/// Node's defaults for `util.inspect` (Node 20: `breakLength` 80, `compact` 3).
const BREAK_LENGTH: usize = 80;
const COMPACT: usize = 3;
const MAX_ARRAY_LENGTH: usize = 100;
const MAX_STRING_LENGTH: usize = 10_000;
/// Strings shorter than this are never split on their newlines.
const MIN_LINE_LENGTH: usize = 16;

/// `value` as `util.inspect(value, false, null, false)` prints it.
pub fn inspect(value: &Js) -> String {
    let mut ctx = Ctx {
        indentation: 0,
        current_depth: 0,
    };
    ctx.value(value, 0)
}

struct Ctx {
    indentation: usize,
    /// The depth of the object entered last (Node's `ctx.currentDepth`): an object holding
    /// objects nested `COMPACT` deep is never put on one line.
    current_depth: usize,
}

impl Ctx {
    fn value(&mut self, value: &Js, depth: usize) -> String {
        match value {
            Js::Null => "null".into(),
            Js::Bool(b) => b.to_string(),
            Js::Num(n) => number(n),
            Js::Str(s) => self.string(s),
            Js::Arr(items) if items.is_empty() => "[]".into(),
            Js::Obj(entries) if entries.is_empty() => "{}".into(),
            Js::Arr(items) => {
                let depth = depth + 1;
                self.current_depth = depth;
                let shown = items.len().min(MAX_ARRAY_LENGTH);
                let mut output: Vec<String> = items[..shown]
                    .iter()
                    .map(|item| self.nested(item, depth))
                    .collect();
                let more = items.len() - shown;
                if more > 0 {
                    output.push(format!("... {more} more item{}", plural(more)));
                }
                let numbers = items[..shown].iter().all(|i| matches!(i, Js::Num(_)));
                self.reduce(output, ("[", "]"), depth, Some(numbers))
            }
            Js::Obj(entries) => {
                let depth = depth + 1;
                self.current_depth = depth;
                let mut output = Vec::with_capacity(entries.len());
                for (key, item) in js_key_order(entries) {
                    let shown = self.nested(item, depth);
                    output.push(format!("{}: {shown}", self.key(key)));
                }
                self.reduce(output, ("{", "}"), depth, None)
            }
        }
    }

    fn nested(&mut self, value: &Js, depth: usize) -> String {
        self.indentation += 2;
        let out = self.value(value, depth);
        self.indentation -= 2;
        out
    }

    /// Node's `reduceToSingleString`: one line when short and shallow, else one entry a line
    /// (long arrays of short entries in columns). `numbers`: Some for arrays (all numbers?).
    fn reduce(
        &self,
        mut output: Vec<String>,
        braces: (&str, &str),
        depth: usize,
        numbers: Option<bool>,
    ) -> String {
        let entries = output.len();
        if let Some(numbers) = numbers {
            if entries > 6 {
                output = self.group(output, numbers);
            }
        }
        if self.current_depth - depth < COMPACT && entries == output.len() {
            let start = output.len() + self.indentation + braces.0.len() + 10;
            if below_break_length(&output, start) {
                let joined = output.join(", ");
                if !joined.contains('\n') {
                    return format!("{} {joined} {}", braces.0, braces.1);
                }
            }
        }
        let indentation = format!("\n{}", " ".repeat(self.indentation));
        format!(
            "{}{indentation}  {}{indentation}{}",
            braces.0,
            output.join(&format!(",{indentation}  ")),
            braces.1
        )
    }

    /// Node's `groupArrayElements`: entries in aligned columns.
    fn group(&self, output: Vec<String>, numbers: bool) -> Vec<String> {
        let mut length = output.len();
        if output.last().is_some_and(|l| l.starts_with("... ")) && length > MAX_ARRAY_LENGTH {
            length -= 1;
        }
        const SEPARATOR: usize = 2;
        let widths: Vec<usize> = output[..length].iter().map(|e| width(e)).collect();
        let total: usize = widths.iter().map(|w| w + SEPARATOR).sum();
        let max = widths.iter().copied().max().unwrap_or(0);
        let actual_max = max + SEPARATOR;
        if !(actual_max * 3 + self.indentation < BREAK_LENGTH
            && (total as f64 / actual_max as f64 > 5.0 || max <= 6))
        {
            return output;
        }
        let average_bias = (actual_max as f64 - total as f64 / output.len() as f64).sqrt();
        let biased_max = (actual_max as f64 - 3.0 - average_bias).max(1.0);
        let columns = [
            ((2.5 * biased_max * length as f64).sqrt() / biased_max).round() as usize,
            (BREAK_LENGTH - self.indentation) / actual_max,
            COMPACT * 4,
            15,
        ]
        .into_iter()
        .min()
        .unwrap_or(1);
        if columns <= 1 {
            return output;
        }
        let column_width: Vec<usize> = (0..columns)
            .map(|c| {
                (c..output.len())
                    .step_by(columns)
                    .filter_map(|j| widths.get(j).copied())
                    .max()
                    .unwrap_or(0)
                    + SEPARATOR
            })
            .collect();
        let mut grouped = Vec::new();
        for row in (0..length).step_by(columns) {
            let end = (row + columns).min(length);
            let mut line = String::new();
            for j in row..end - 1 {
                let cell = format!("{}, ", output[j]);
                line.push_str(&pad(&cell, column_width[j - row], numbers));
            }
            let last = &output[end - 1];
            if numbers {
                let w = column_width[end - 1 - row] - SEPARATOR;
                line.push_str(&pad(last, w, true));
            } else {
                line.push_str(last);
            }
            grouped.push(line);
        }
        if length < output.len() {
            grouped.push(output[length].clone());
        }
        grouped
    }

    /// Node's `formatPrimitive` for strings: quoted, and a long one with newlines split into
    /// `'line\n' +` pieces.
    fn string(&self, s: &str) -> String {
        let count = s.chars().count();
        let (text, trailer) = if count > MAX_STRING_LENGTH {
            let cut: String = s.chars().take(MAX_STRING_LENGTH).collect();
            let more = count - MAX_STRING_LENGTH;
            (cut, format!("... {more} more character{}", plural(more)))
        } else {
            (s.to_owned(), String::new())
        };
        let length = text.encode_utf16().count();
        if length > MIN_LINE_LENGTH
            && (length as isize) > BREAK_LENGTH as isize - self.indentation as isize - 4
        {
            let pieces: Vec<String> = text.split_inclusive('\n').map(quote).collect();
            let joint = format!(" +\n{}", " ".repeat(self.indentation + 2));
            return pieces.join(&joint) + &trailer;
        }
        quote(&text) + &trailer
    }

    fn key(&self, key: &str) -> String {
        let mut chars = key.chars();
        let identifier = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if identifier {
            key.to_owned()
        } else {
            quote(key)
        }
    }
}

/// Node's `isBelowBreakLength`.
fn below_break_length(output: &[String], start: usize) -> bool {
    let mut total = output.len() + start;
    if total + output.len() > BREAK_LENGTH {
        return false;
    }
    for entry in output {
        total += entry.encode_utf16().count();
        if total > BREAK_LENGTH {
            return false;
        }
    }
    true
}

/// JavaScript objects list integer-like keys first, ascending, then the others in insertion
/// order (what `JSON.parse` then `util.inspect` shows).
fn js_key_order(entries: &[(String, Js)]) -> Vec<(&str, &Js)> {
    let index = |k: &str| -> Option<u32> {
        let n: u32 = k.parse().ok()?;
        (n.to_string() == k && n < u32::MAX).then_some(n)
    };
    let mut integers: Vec<(u32, &str, &Js)> = entries
        .iter()
        .filter_map(|(k, v)| index(k).map(|n| (n, k.as_str(), v)))
        .collect();
    integers.sort_by_key(|(n, _, _)| *n);
    let mut out: Vec<(&str, &Js)> = integers.into_iter().map(|(_, k, v)| (k, v)).collect();
    out.extend(
        entries
            .iter()
            .filter(|(k, _)| index(k).is_none())
            .map(|(k, v)| (k.as_str(), v)),
    );
    out
}

fn pad(cell: &str, to: usize, start: bool) -> String {
    let fill = " ".repeat(to.saturating_sub(width(cell)));
    if start {
        format!("{fill}{cell}")
    } else {
        format!("{cell}{fill}")
    }
}

/// Display width as Node's `getStringWidth` counts it for the text rcluster prints.
fn width(s: &str) -> usize {
    s.chars().count()
}

fn plural(n: usize) -> &'static str {
    if n > 1 {
        "s"
    } else {
        ""
    }
}

/// JavaScript's `String(number)` for what JSON carries.
fn number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    if f == 0.0 {
        // util.inspect prints -0 as such; JSON has no -0 worth keeping.
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{f:.0}");
    }
    // Rust's shortest round-trip digits, as JavaScript's; exponents written as JS does.
    let plain = format!("{f}");
    if f.abs() >= 1e21 || f.abs() < 1e-6 {
        let exp = format!("{f:e}");
        return match exp.split_once('e') {
            Some((mantissa, e)) if !e.starts_with('-') => format!("{mantissa}e+{e}"),
            Some((mantissa, e)) => format!("{mantissa}e{e}"),
            None => exp,
        };
    }
    plain
}

/// Node's `strEscape`: single quotes, or double quotes (then backticks) when the text has
/// single quotes, and its escapes.
fn quote(s: &str) -> String {
    let quote = if !s.contains('\'') {
        '\''
    } else if !s.contains('"') {
        '"'
    } else if !s.contains('`') && !s.contains("${") {
        '`'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\'' if quote == '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\x0B"),
            c if (c as u32) < 0x20 || (0x7f..0xa0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Js {
        serde_json::from_str::<serde_json::Value>(json)
            .expect("test JSON")
            .into()
    }

    #[test]
    fn prints_as_node_does() {
        // Each expectation is what Node 20's util.inspect(JSON.parse(...)) printed.
        assert_eq!(inspect(&parse(r#"{"a":1,"b":"x"}"#)), "{ a: 1, b: 'x' }");
        assert_eq!(inspect(&parse("[]")), "[]");
        assert_eq!(
            inspect(&parse(r#"{"a'b":"say \"hi\" it's","c":"x'y"}"#)),
            "{ \"a'b\": `say \"hi\" it's`, c: \"x'y\" }"
        );
        assert_eq!(
            inspect(&parse(r#"{"deep":{"d":{"e":{"f":1}}}}"#)),
            "{\n  deep: { d: { e: { f: 1 } } }\n}"
        );
        let numbers: Vec<String> = (1..=27).map(|n| n.to_string()).collect();
        let array = parse(&format!("[{}]", numbers.join(",")));
        assert_eq!(
            inspect(&array),
            "[\n   1,  2,  3,  4,  5,  6,  7,  8,\n   9, 10, 11, 12, 13, 14, 15, 16,\n  17, 18, 19, 20, 21, 22, 23, 24,\n  25, 26, 27\n]"
        );
        assert_eq!(inspect(&parse("[0.0, 1.5, 100.0]")), "[ 0, 1.5, 100 ]");
        // Insertion order, but integer-like keys first; long strings split at their newlines.
        let object = Js::Obj(vec![
            ("x".into(), Js::from(1u32)),
            ("10".into(), "b".into()),
            ("2".into(), "a".into()),
            (
                "a b".into(),
                "multi\nline\nstring that is quite long so that it needs to be split on its newlines ok".into(),
            ),
        ]);
        assert_eq!(
            inspect(&object),
            "{\n  '2': 'a',\n  '10': 'b',\n  x: 1,\n  'a b': 'multi\\n' +\n    'line\\n' +\n    'string that is quite long so that it needs to be split on its newlines ok'\n}"
        );
    }
}
