//! The daemon's own log (`<home>/daemon.log`): lifecycle lines at one level, timestamped in UTC.
//! Hand-written rather than `tracing` + a subscriber: a handful of lines per event, and the
//! daemon's idle footprint matters (PRODUCT.md §1). Never log env values.
//!
//! Lines often carry what clients sent (a name, a target, a path): each line is one line, so
//! control and invisible characters are escaped (a name with a newline cannot forge a line) and
//! a line is cut at `MAX_LINE` (a 4 MiB name adds a few KiB, not 4 MiB). The file is bounded:
//! past `MAX_BYTES` it is renamed `daemon.log.1` (the previous `.1` becomes `.2`) and a new one
//! begins, so the daemon log never holds more than about three times `MAX_BYTES`.

use std::borrow::Cow;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use crate::clock::format_utc;

/// Longest line kept, in bytes (the rest is cut, and said to be).
pub const MAX_LINE: usize = 4 * 1024;
/// Size past which the daemon log is rotated.
pub const MAX_BYTES: u64 = 4 << 20;
/// Rotated daemon logs kept (`daemon.log.1`, `daemon.log.2`).
const KEEP: u32 = 2;

struct DaemonLog {
    file: File,
    path: PathBuf,
    size: u64,
    /// stderr is the log file too (panics land there): it follows a rotation.
    stderr: bool,
}

static LOG: OnceLock<Mutex<DaemonLog>> = OnceLock::new();

fn open(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

/// Open the daemon log; later `log!` lines go there (before that, nowhere).
pub fn init(path: &Path) -> std::io::Result<File> {
    let file = open(path)?;
    let copy = file.try_clone()?;
    let size = file.metadata().map_or(0, |m| m.len());
    let _ = LOG.set(Mutex::new(DaemonLog {
        file,
        path: path.to_owned(),
        size,
        stderr: false,
    }));
    Ok(copy)
}

/// stderr has been pointed at the log file (`dup2`): point it at each new file too.
pub fn stderr_follows() {
    if let Some(lock) = LOG.get() {
        if let Ok(mut log) = lock.lock() {
            log.stderr = true;
        }
    }
}

pub fn write_line(args: std::fmt::Arguments<'_>) {
    let Some(lock) = LOG.get() else {
        return;
    };
    let text = args.to_string();
    // One write(2) a line: an unbuffered writeln! makes one per piece, and a panic message on
    // stderr (the same file) could land between them.
    let line = format!("{} {}\n", format_utc(SystemTime::now()), one_line(&text));
    if let Ok(mut log) = lock.lock() {
        if log.size > 0 && log.size + line.len() as u64 > MAX_BYTES {
            log.rotate();
        }
        if log.file.write_all(line.as_bytes()).is_ok() {
            log.size += line.len() as u64;
        }
    }
}

impl DaemonLog {
    fn rotate(&mut self) {
        let rotated = |k: u32| {
            let mut name = self.path.as_os_str().to_owned();
            name.push(format!(".{k}"));
            PathBuf::from(name)
        };
        for k in (1..KEEP).rev() {
            let _ = std::fs::rename(rotated(k), rotated(k + 1));
        }
        if std::fs::rename(&self.path, rotated(1)).is_err() {
            return; // go on in the same file rather than lose lines
        }
        let Ok(file) = open(&self.path) else {
            return;
        };
        if self.stderr {
            let _ = nix::unistd::dup2_stderr(&file);
        }
        self.file = file;
        self.size = 0;
    }
}

/// `text` as one bounded line: control characters and invisible ones that could disguise it
/// (bidirectional overrides, zero-width) escaped as Rust does, cut at `MAX_LINE` bytes.
pub fn one_line(text: &str) -> Cow<'_, str> {
    let clean = text.len() <= MAX_LINE && !text.chars().any(needs_escape);
    if clean {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(MAX_LINE) + 32);
    for (at, c) in text.char_indices() {
        if out.len() >= MAX_LINE {
            out.push_str(&format!(" [rcluster: {} more bytes]", text.len() - at));
            break;
        }
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// `log!("app {name}: started")` appends one line to the daemon log.
#[macro_export]
macro_rules! dlog {
    ($($arg:tt)*) => { $crate::daemon::log::write_line(format_args!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_stays_one_bounded_line() {
        assert_eq!(one_line("app web: started"), "app web: started");
        assert_eq!(
            one_line("no app named \"a\n2026-12-07T00:00:00.000Z forged\""),
            "no app named \"a\\n2026-12-07T00:00:00.000Z forged\""
        );
        assert_eq!(one_line("abc\u{202e}gnp.exe"), "abc\\u{202e}gnp.exe");
        let huge = "x".repeat(4 << 20);
        let cut = one_line(&huge);
        assert!(cut.len() < MAX_LINE + 64, "{}", cut.len());
        assert!(cut.ends_with(&format!(" [rcluster: {} more bytes]", (4 << 20) - MAX_LINE)));
    }
}
