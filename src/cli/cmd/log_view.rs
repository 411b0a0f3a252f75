//! How `rcluster logs` prints what the daemon sends: app lines (from a file's tail or live),
//! lifecycle records and dropped-line notices, as text (`id|name | line`, coloured on a
//! terminal; lifecycle records as `rcluster | App [web:0] exited with code 1`, pm2's
//! `PM2 | ...` lines), raw lines, or JSON objects with pm2's keys (`message`, `timestamp`,
//! `type`, `process_id`, `app_name`; `status` for lifecycle records, whose `type` is
//! `process_event`) beside rcluster's own (`app`, `id`, `stream`...).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

use crate::protocol::event::LifecycleEvent;
use crate::protocol::response::Stream;

const PALETTE: [u8; 6] = [36, 33, 35, 32, 34, 31];
/// pm2 prints its own lines in blue.
const LIFECYCLE_HUE: u8 = 34;
/// The name column of lifecycle records (pm2's is `PM2`).
const LIFECYCLE_NAME: &str = "rcluster";

pub struct View {
    pub raw: bool,
    pub json: bool,
    pub timestamp: bool,
    pub colour: bool,
}

/// Where a line comes from.
pub struct Origin<'a> {
    pub app: &'a str,
    pub stream: Stream,
    /// The instance's id: always for live lines, for a file's lines when the file holds one
    /// instance's.
    pub id: Option<u32>,
    /// When the daemon read it (live lines).
    pub at_ms: Option<u64>,
    /// A file line that starts with the app's timestamp and `: ` (`--time`).
    pub stamped: bool,
}

/// A line as `--json` prints it, pm2's keys first (`pm2 logs --json`).
#[derive(Serialize)]
struct JsonLine<'a> {
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    process_id: Option<u32>,
    app_name: &'a str,
    app: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<u32>,
    stream: &'static str,
}

/// A lifecycle record as `--json` prints it: pm2's `process_event` keys, then the record.
#[derive(Serialize)]
struct JsonEvent<'a> {
    message: String,
    timestamp: String,
    #[serde(rename = "type")]
    kind: &'static str,
    status: &'static str,
    process_id: u32,
    app_name: &'a str,
    #[serde(flatten)]
    event: &'a LifecycleEvent,
}

fn stream_name(stream: Stream) -> &'static str {
    match stream {
        Stream::Out => "out",
        Stream::Err => "err",
    }
}

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

impl View {
    pub fn header(
        &self,
        out: &mut impl Write,
        file: &std::path::Path,
        stream: Stream,
    ) -> std::io::Result<()> {
        if self.raw || self.json {
            return Ok(());
        }
        let which = if stream == Stream::Err {
            "error"
        } else {
            "out"
        };
        writeln!(out, "==> {} ({which}) <==", file.display())
    }

    pub fn line(
        &self,
        out: &mut impl Write,
        origin: &Origin<'_>,
        line: &str,
    ) -> std::io::Result<()> {
        if self.json {
            return writeln!(out, "{}", self.json_line(origin, line));
        }
        let stamp = match (origin.at_ms, self.timestamp) {
            (Some(ms), true) => format!("{} ", local_stamp(at(ms))),
            _ => String::new(),
        };
        if self.raw {
            return writeln!(out, "{stamp}{line}");
        }
        let prefix = match origin.id {
            Some(id) => format!("{id}|{:<10}|", origin.app),
            None => format!("{:<12}|", origin.app),
        };
        if self.colour {
            let hue = PALETTE[origin
                .app
                .bytes()
                .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
                % PALETTE.len()];
            writeln!(out, "\x1b[{hue}m{prefix}\x1b[0m {stamp}{line}")
        } else {
            writeln!(out, "{prefix} {stamp}{line}")
        }
    }

    fn json_line(&self, origin: &Origin<'_>, line: &str) -> String {
        let kind = stream_name(origin.stream);
        // A line of a `log_type: json` app is a JSON object already: pm2's keys are added.
        if line.starts_with('{') {
            if let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(line) {
                object.entry("type").or_insert_with(|| json!(kind));
                if let Some(id) = origin
                    .id
                    .map(Value::from)
                    .or_else(|| object.get("id").cloned())
                {
                    object.entry("process_id").or_insert(id);
                }
                object
                    .entry("app_name")
                    .or_insert_with(|| json!(origin.app));
                return Value::Object(object).to_string();
            }
        }
        let (timestamp, message) = match (origin.at_ms, origin.stamped) {
            (Some(ms), _) => (Some(crate::clock::format_utc(at(ms))), line),
            // The file's own stamp, as the app's format wrote it.
            (None, true) => match line.split_once(": ") {
                Some((stamp, rest)) => (Some(stamp.to_owned()), rest),
                None => (None, line),
            },
            (None, false) => (None, line),
        };
        let object = JsonLine {
            message,
            timestamp,
            kind,
            process_id: origin.id,
            app_name: origin.app,
            app: origin.app,
            id: origin.id,
            stream: kind,
        };
        serde_json::to_string(&object).unwrap_or_default()
    }

    /// A lifecycle record (none with `--raw`: the apps' lines alone).
    pub fn event(&self, out: &mut impl Write, event: &LifecycleEvent) -> std::io::Result<()> {
        if self.raw {
            return Ok(());
        }
        let message = event.message();
        if self.json {
            let object = JsonEvent {
                message,
                timestamp: crate::clock::format_utc(at(event.at_ms)),
                kind: "process_event",
                status: event.pm2_status(),
                process_id: event.id,
                app_name: &event.app,
                event,
            };
            return writeln!(
                out,
                "{}",
                serde_json::to_string(&object).unwrap_or_default()
            );
        }
        let stamp = if self.timestamp {
            format!("{} ", local_stamp(at(event.at_ms)))
        } else {
            String::new()
        };
        let prefix = format!("{LIFECYCLE_NAME:<12}|");
        if self.colour {
            writeln!(out, "\x1b[{LIFECYCLE_HUE}m{prefix}\x1b[0m {stamp}{message}")
        } else {
            writeln!(out, "{prefix} {stamp}{message}")
        }
    }

    pub fn dropped(&self, out: &mut impl Write, lines: u64) -> std::io::Result<()> {
        if self.json {
            return writeln!(out, "{}", json!({ "dropped": lines }));
        }
        writeln!(
            out,
            "[rcluster] {lines} lines dropped: this reader fell behind (the log files have them)"
        )
    }
}

/// Local time: `2024-03-05T08:08:09.123+01:00` (`localtime_r`, so `TZ` applies).
pub fn local_stamp(at: SystemTime) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as libc::time_t;
    // SAFETY: `tm` is plain data (zeroed is valid); localtime_r only writes into it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call.
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        return format!("{}.{:03}", since.as_secs(), since.subsec_millis());
    }
    let offset = tm.tm_gmtoff;
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{sign}{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        since.subsec_millis(),
        abs / 3600,
        abs % 3600 / 60
    )
}
