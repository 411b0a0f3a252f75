//! The daemon's own log (`<home>/daemon.log`): lifecycle lines at one level, timestamped in UTC.
//! Hand-written rather than `tracing` + a subscriber: a handful of lines per event, and the
//! daemon's idle footprint matters (PRODUCT.md §1). Never log env values.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use crate::clock::format_utc;

static LOG: OnceLock<Mutex<File>> = OnceLock::new();

/// Open the daemon log; later `log!` lines go there (before that, nowhere).
pub fn init(path: &Path) -> std::io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let copy = file.try_clone()?;
    let _ = LOG.set(Mutex::new(file));
    Ok(copy)
}

pub fn write_line(args: std::fmt::Arguments<'_>) {
    let Some(lock) = LOG.get() else {
        return;
    };
    // One write(2) a line: an unbuffered writeln! makes one per piece, and a panic message on
    // stderr (the same file) could land between them.
    let line = format!("{} {}\n", format_utc(SystemTime::now()), args);
    if let Ok(mut file) = lock.lock() {
        let _ = file.write_all(line.as_bytes());
    }
}

/// `log!("app {name}: started")` appends one line to the daemon log.
#[macro_export]
macro_rules! dlog {
    ($($arg:tt)*) => { $crate::daemon::log::write_line(format_args!($($arg)*)) };
}
