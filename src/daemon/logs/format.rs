//! How a captured line is written to the files: as is, prefixed with a timestamp
//! (`--time`, `log_date_format`), or as one JSON object (`log_type: json`). The writer owns
//! one `LineFormat` per app and applies it to whole records, so a timestamp is rendered once per
//! record (one read from the pipe) and copied in front of each of its lines.
//!
//! Date formats are the ones pm2 users write: moment/dayjs tokens (`YYYY-MM-DD HH:mm:ss Z`, pm2's
//! documented examples) or, when the format contains `%`, strftime (`%Y-%m-%d %H:%M:%S`). Times
//! are local (`localtime_r`, so `TZ` applies).

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use super::LogRecord;
use crate::protocol::model::LogSpec;
use crate::protocol::response::Stream;

/// pm2's `--time` format (pm2 `Common.js`: `app.time` sets `log_date_format` to this).
pub const PM2_TIME_FORMAT: &str = "YYYY-MM-DDTHH:mm:ss";
/// JSON lines without a `log_date_format`: ISO 8601 local time with milliseconds and offset.
pub const JSON_TIME_FORMAT: &str = "YYYY-MM-DDTHH:mm:ss.SSSZ";

/// What the writer does to each line.
pub enum LineFormat {
    Plain,
    /// `<time>: <line>`, as pm2 writes it.
    Time(Stamper),
    Json(Stamper),
}

impl LineFormat {
    pub fn for_spec(logs: &LogSpec) -> LineFormat {
        let declared = logs.date_format.as_deref().filter(|f| !f.is_empty());
        if logs.json {
            LineFormat::Json(Stamper::new(declared.unwrap_or(JSON_TIME_FORMAT)))
        } else if logs.time || declared.is_some() {
            LineFormat::Time(Stamper::new(declared.unwrap_or(PM2_TIME_FORMAT)))
        } else {
            LineFormat::Plain
        }
    }

    /// The record's lines as they go to the files (and to live followers).
    pub fn apply<'a>(&mut self, record: &'a LogRecord) -> Cow<'a, [u8]> {
        match self {
            LineFormat::Plain => Cow::Borrowed(&record.data),
            LineFormat::Time(stamper) => {
                let stamp = stamper.stamp(record.at);
                let lines = count_lines(&record.data);
                let mut out = Vec::with_capacity(record.data.len() + lines * (stamp.len() + 2));
                for line in record.data.split_inclusive(|b| *b == b'\n') {
                    out.extend_from_slice(stamp);
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(line);
                }
                Cow::Owned(out)
            }
            LineFormat::Json(stamper) => {
                let mut head = Vec::with_capacity(128);
                head.extend_from_slice(b"{\"timestamp\":\"");
                escape_json(stamper.stamp(record.at), &mut head);
                head.extend_from_slice(b"\",\"app\":\"");
                escape_json(record.app.as_bytes(), &mut head);
                let stream = match record.stream {
                    Stream::Out => "out",
                    Stream::Err => "err",
                };
                head.extend_from_slice(
                    format!(
                        "\",\"id\":{},\"instance\":{},\"stream\":\"{stream}\",\"message\":\"",
                        record.id, record.index
                    )
                    .as_bytes(),
                );
                let lines = count_lines(&record.data);
                let mut out = Vec::with_capacity(record.data.len() + lines * (head.len() + 4));
                for line in record.data.split_inclusive(|b| *b == b'\n') {
                    let message = line.strip_suffix(b"\n").unwrap_or(line);
                    out.extend_from_slice(&head);
                    match std::str::from_utf8(message) {
                        Ok(text) => escape_json(text.as_bytes(), &mut out),
                        // JSON is text: invalid bytes become U+FFFD rather than a broken file.
                        Err(_) => {
                            escape_json(String::from_utf8_lossy(message).as_bytes(), &mut out)
                        }
                    }
                    out.extend_from_slice(b"\"}\n");
                }
                Cow::Owned(out)
            }
        }
    }
}

pub fn count_lines(data: &[u8]) -> usize {
    data.iter().filter(|b| **b == b'\n').count()
}

/// Escape UTF-8 text for a JSON string (RFC 8259 §7): quotes, backslashes, control characters.
pub fn escape_json(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        if escaped.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escaped);
        }
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
}

/// Renders timestamps with one format, caching the text for the current second (or
/// millisecond, when the format shows sub-second digits).
pub struct Stamper {
    format: DateFormat,
    key: Option<(u64, u32)>,
    text: Vec<u8>,
}

impl Stamper {
    pub fn new(format: &str) -> Stamper {
        Stamper {
            format: DateFormat::parse(format),
            key: None,
            text: Vec::new(),
        }
    }

    pub fn stamp(&mut self, at: SystemTime) -> &[u8] {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let sub = if self.format.subsecond {
            since.subsec_nanos()
        } else {
            0
        };
        let key = (since.as_secs(), sub);
        if self.key != Some(key) {
            self.text.clear();
            self.format.render(at, &mut self.text);
            self.key = Some(key);
        }
        &self.text
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Year4,
    Year2,
    Month2,
    Month1,
    MonthShort,
    MonthLong,
    Day2,
    Day1,
    /// Day of the year, 001..366.
    YearDay3,
    YearDay1,
    WeekdayShort,
    WeekdayLong,
    /// 0 = Sunday (moment `d`, strftime `%w`).
    Weekday,
    Hour2,
    Hour1,
    Hour12_2,
    Hour12_1,
    Minute2,
    Minute1,
    Second2,
    Second1,
    /// The first N digits of the fraction of a second (1..=9).
    Fraction(u8),
    AmPmUpper,
    AmPmLower,
    /// `+02:00`
    OffsetColon,
    /// `+0200`
    Offset,
    /// `CEST` (the zone's abbreviation).
    ZoneName,
    UnixSeconds,
    UnixMillis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(String),
    Tok(Tok),
}

/// A parsed date format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateFormat {
    parts: Vec<Part>,
    subsecond: bool,
}

/// moment tokens, longest first so `YYYY` wins over `YY` (moment's own matching order).
const MOMENT: &[(&str, Tok)] = &[
    ("YYYY", Tok::Year4),
    ("YY", Tok::Year2),
    ("MMMM", Tok::MonthLong),
    ("MMM", Tok::MonthShort),
    ("MM", Tok::Month2),
    ("M", Tok::Month1),
    ("DDDD", Tok::YearDay3),
    ("DDD", Tok::YearDay1),
    ("DD", Tok::Day2),
    ("D", Tok::Day1),
    ("dddd", Tok::WeekdayLong),
    ("ddd", Tok::WeekdayShort),
    ("d", Tok::Weekday),
    ("HH", Tok::Hour2),
    ("H", Tok::Hour1),
    ("hh", Tok::Hour12_2),
    ("h", Tok::Hour12_1),
    ("mm", Tok::Minute2),
    ("m", Tok::Minute1),
    ("ss", Tok::Second2),
    ("s", Tok::Second1),
    ("SSSSSSSSS", Tok::Fraction(9)),
    ("SSSSSS", Tok::Fraction(6)),
    ("SSS", Tok::Fraction(3)),
    ("SS", Tok::Fraction(2)),
    ("S", Tok::Fraction(1)),
    ("ZZ", Tok::Offset),
    ("Z", Tok::OffsetColon),
    ("A", Tok::AmPmUpper),
    ("a", Tok::AmPmLower),
    ("X", Tok::UnixSeconds),
    ("x", Tok::UnixMillis),
];

impl DateFormat {
    /// strftime when the text has a `%`, moment/dayjs tokens otherwise. Never fails: what is
    /// not a token is literal text, as in moment.
    pub fn parse(text: &str) -> DateFormat {
        let parts = if text.contains('%') {
            parse_strftime(text)
        } else {
            parse_moment(text)
        };
        let subsecond = parts
            .iter()
            .any(|p| matches!(p, Part::Tok(Tok::Fraction(_) | Tok::UnixMillis)));
        DateFormat { parts, subsecond }
    }

    pub fn render(&self, at: SystemTime, out: &mut Vec<u8>) {
        use std::io::Write;
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        let t = local_time(since.as_secs() as i64);
        for part in &self.parts {
            let tok = match part {
                Part::Lit(s) => {
                    out.extend_from_slice(s.as_bytes());
                    continue;
                }
                Part::Tok(tok) => *tok,
            };
            let hour12 = match t.hour % 12 {
                0 => 12,
                h => h,
            };
            // Writing to a Vec cannot fail.
            let _ = match tok {
                Tok::Year4 => write!(out, "{:04}", t.year),
                Tok::Year2 => write!(out, "{:02}", t.year.rem_euclid(100)),
                Tok::Month2 => write!(out, "{:02}", t.month),
                Tok::Month1 => write!(out, "{}", t.month),
                Tok::MonthShort => write!(out, "{}", &MONTHS[month_index(t.month)][..3]),
                Tok::MonthLong => write!(out, "{}", MONTHS[month_index(t.month)]),
                Tok::Day2 => write!(out, "{:02}", t.day),
                Tok::Day1 => write!(out, "{}", t.day),
                Tok::YearDay3 => write!(out, "{:03}", t.yday + 1),
                Tok::YearDay1 => write!(out, "{}", t.yday + 1),
                Tok::WeekdayShort => write!(out, "{}", &WEEKDAYS[(t.wday % 7) as usize][..3]),
                Tok::WeekdayLong => write!(out, "{}", WEEKDAYS[(t.wday % 7) as usize]),
                Tok::Weekday => write!(out, "{}", t.wday),
                Tok::Hour2 => write!(out, "{:02}", t.hour),
                Tok::Hour1 => write!(out, "{}", t.hour),
                Tok::Hour12_2 => write!(out, "{hour12:02}"),
                Tok::Hour12_1 => write!(out, "{hour12}"),
                Tok::Minute2 => write!(out, "{:02}", t.minute),
                Tok::Minute1 => write!(out, "{}", t.minute),
                Tok::Second2 => write!(out, "{:02}", t.second),
                Tok::Second1 => write!(out, "{}", t.second),
                Tok::Fraction(digits) => {
                    let nanos = format!("{:09}", since.subsec_nanos());
                    write!(out, "{}", &nanos[..(digits as usize).clamp(1, 9)])
                }
                Tok::AmPmUpper => write!(out, "{}", if t.hour < 12 { "AM" } else { "PM" }),
                Tok::AmPmLower => write!(out, "{}", if t.hour < 12 { "am" } else { "pm" }),
                Tok::OffsetColon | Tok::Offset => {
                    let sign = if t.offset < 0 { '-' } else { '+' };
                    let abs = t.offset.unsigned_abs();
                    let colon = if tok == Tok::OffsetColon { ":" } else { "" };
                    write!(out, "{sign}{:02}{colon}{:02}", abs / 3600, abs % 3600 / 60)
                }
                Tok::ZoneName => write!(out, "{}", t.zone),
                Tok::UnixSeconds => write!(out, "{}", since.as_secs()),
                Tok::UnixMillis => write!(out, "{}", since.as_millis()),
            };
        }
    }
}

fn parse_moment(text: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut rest = text;
    'outer: while let Some(c) = rest.chars().next() {
        // `[text]` is literal in moment: `YYYY-MM-DD[T]HH:mm`.
        if c == '[' {
            if let Some(end) = rest.find(']') {
                lit.push_str(&rest[1..end]);
                rest = &rest[end + 1..];
                continue;
            }
        }
        for (token, tok) in MOMENT {
            if let Some(after) = rest.strip_prefix(token) {
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Tok(*tok));
                rest = after;
                continue 'outer;
            }
        }
        lit.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    parts
}

fn parse_strftime(text: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    let push = |parts: &mut Vec<Part>, lit: &mut String, toks: &[Tok]| {
        if !lit.is_empty() {
            parts.push(Part::Lit(std::mem::take(lit)));
        }
        parts.extend(toks.iter().map(|t| Part::Tok(*t)));
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        // Optional width digits (`%3N`, `%6f`) and chrono's `%.3f`.
        let mut dot = false;
        if chars.peek() == Some(&'.') {
            dot = true;
            chars.next();
        }
        let mut width: Option<u8> = None;
        while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
            width = Some(
                width
                    .unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(d as u8),
            );
            chars.next();
        }
        let Some(spec) = chars.next() else {
            lit.push('%');
            break;
        };
        if dot {
            lit.push('.');
        }
        let colon_z = spec == ':' && chars.peek() == Some(&'z');
        if colon_z {
            chars.next();
            push(&mut parts, &mut lit, &[Tok::OffsetColon]);
            continue;
        }
        let toks: &[Tok] = match spec {
            'Y' => &[Tok::Year4],
            'y' => &[Tok::Year2],
            'm' => &[Tok::Month2],
            'd' => &[Tok::Day2],
            'e' => &[Tok::Day1],
            'j' => &[Tok::YearDay3],
            'H' => &[Tok::Hour2],
            'k' => &[Tok::Hour1],
            'I' => &[Tok::Hour12_2],
            'l' => &[Tok::Hour12_1],
            'M' => &[Tok::Minute2],
            'S' => &[Tok::Second2],
            'p' => &[Tok::AmPmUpper],
            'P' => &[Tok::AmPmLower],
            'z' => &[Tok::Offset],
            'Z' => &[Tok::ZoneName],
            'a' => &[Tok::WeekdayShort],
            'A' => &[Tok::WeekdayLong],
            'w' => &[Tok::Weekday],
            'b' | 'h' => &[Tok::MonthShort],
            'B' => &[Tok::MonthLong],
            's' => &[Tok::UnixSeconds],
            'L' => &[Tok::Fraction(3)],
            'f' => &[Tok::Fraction(width.unwrap_or(6))],
            'N' => &[Tok::Fraction(width.unwrap_or(9))],
            // Shorthands expand to their definitions (strftime(3)).
            'F' | 'T' | 'R' => {
                let long = match spec {
                    'F' => "%Y-%m-%d",
                    'T' => "%H:%M:%S",
                    _ => "%H:%M",
                };
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.extend(parse_strftime(long));
                continue;
            }
            'n' => {
                lit.push('\n');
                continue;
            }
            't' => {
                lit.push('\t');
                continue;
            }
            '%' => {
                lit.push('%');
                continue;
            }
            other => {
                lit.push('%');
                lit.push(other);
                continue;
            }
        };
        push(&mut parts, &mut lit, toks);
    }
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    parts
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

fn month_index(month: u32) -> usize {
    (month.clamp(1, 12) - 1) as usize
}

/// Broken-down local time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub wday: u32,
    /// 0-based day of the year.
    pub yday: u32,
    /// Seconds east of UTC.
    pub offset: i64,
    pub zone: String,
}

/// `localtime_r(3)`; UTC if it fails (a time far out of range).
pub fn local_time(secs: i64) -> LocalTime {
    let t: libc::time_t = secs as libc::time_t;
    // SAFETY: `tm` is plain data, zeroed is a valid value; localtime_r writes only into it and
    // is thread-safe (unlike localtime).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the duration of the call.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        // SAFETY: as above.
        unsafe { libc::gmtime_r(&t, &mut tm) };
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: glibc points tm_zone at a static NUL-terminated abbreviation.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    LocalTime {
        year: i64::from(tm.tm_year) + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        second: tm.tm_sec as u32,
        wday: tm.tm_wday as u32,
        yday: tm.tm_yday as u32,
        offset: tm.tm_gmtoff,
        zone,
    }
}

/// The local calendar day of a time, for daily rotation.
pub fn local_day(at: SystemTime) -> (i64, u32, u32) {
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let t = local_time(secs);
    (t.year, t.month, t.day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// 2024-03-05 07:08:09.123456789 UTC, a Tuesday.
    fn sample() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_709_622_489, 123_456_789)
    }

    fn render(format: &str) -> String {
        // Offsets of the machine's zone are not known here: compare against our own local_time.
        let mut out = Vec::new();
        DateFormat::parse(format).render(sample(), &mut out);
        String::from_utf8(out).expect("utf8")
    }

    fn expected(f: impl Fn(&LocalTime) -> String) -> String {
        f(&local_time(1_709_622_489))
    }

    #[test]
    fn moment_formats_as_pm2_documents_them() {
        let want = expected(|t| {
            let sign = if t.offset < 0 { '-' } else { '+' };
            let abs = t.offset.unsigned_abs();
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {sign}{:02}:{:02}",
                t.year,
                t.month,
                t.day,
                t.hour,
                t.minute,
                t.second,
                abs / 3600,
                abs % 3600 / 60
            )
        });
        assert_eq!(render("YYYY-MM-DD HH:mm:ss Z"), want);
        let want = expected(|t| {
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.123",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            )
        });
        assert_eq!(render("YYYY-MM-DDTHH:mm:ss.SSS"), want);
        assert_eq!(render("[at] X"), "at 1709622489");
        assert_eq!(render("x"), "1709622489123");
    }

    #[test]
    fn strftime_formats() {
        let want = expected(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.123 %",
                t.year, t.month, t.day, t.hour, t.minute, t.second
            )
        });
        assert_eq!(render("%Y-%m-%d %H:%M:%S.%3N %%"), want);
        assert_eq!(render("%F %T"), render("YYYY-MM-DD HH:mm:ss"));
        assert_eq!(render("%s.%L"), "1709622489.123");
        assert_eq!(render("%.3f"), ".123");
    }

    #[test]
    fn names_and_twelve_hour_clock() {
        let t = local_time(1_709_622_489);
        let month = MONTHS[month_index(t.month)];
        assert_eq!(render("MMMM MMM"), format!("{month} {}", &month[..3]));
        let hour12 = if t.hour % 12 == 0 { 12 } else { t.hour % 12 };
        assert_eq!(
            render("h A"),
            format!("{hour12} {}", if t.hour < 12 { "AM" } else { "PM" })
        );
    }

    fn record(data: &[u8]) -> LogRecord {
        LogRecord {
            id: 7,
            index: 1,
            app: Arc::from("web"),
            stream: Stream::Err,
            data: data.to_vec(),
            at: sample(),
            seq: 0,
            lines: 0,
        }
    }

    #[test]
    fn stamps_every_line() {
        let spec = LogSpec {
            date_format: Some("X".into()),
            ..LogSpec::default()
        };
        let mut format = LineFormat::for_spec(&spec);
        let two = record(b"a\nb\n");
        let out = format.apply(&two);
        assert_eq!(&*out, b"1709622489: a\n1709622489: b\n");
        let spec = LogSpec {
            time: true,
            ..LogSpec::default()
        };
        let mut format = LineFormat::for_spec(&spec);
        let out = String::from_utf8(format.apply(&record(b"a\n")).into_owned()).expect("utf8");
        assert_eq!(out, format!("{}: a\n", render(PM2_TIME_FORMAT)));
    }

    #[test]
    fn json_lines_escape_and_parse() {
        let spec = LogSpec {
            json: true,
            ..LogSpec::default()
        };
        let mut format = LineFormat::for_spec(&spec);
        let lines = record(b"say \"hi\"\t\\ \x01\nbad \xff\n");
        let out = format.apply(&lines);
        let text = String::from_utf8(out.into_owned()).expect("utf8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["message"], "say \"hi\"\t\\ \u{1}");
        assert_eq!(lines[1]["message"], "bad \u{fffd}");
        assert_eq!(lines[0]["app"], "web");
        assert_eq!(lines[0]["id"], 7);
        assert_eq!(lines[0]["instance"], 1);
        assert_eq!(lines[0]["stream"], "err");
        assert_eq!(lines[0]["timestamp"], render(JSON_TIME_FORMAT));
    }
}
