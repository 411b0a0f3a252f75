//! Instance output: `capture` turns each pipe into whole lines, `writer` owns an app's files
//! (formatting with `format`, rotating with `rotate`) and publishes every record to live
//! followers, `tail` reads the end of a file for `logs`.
//! Capture → writer is a bounded channel, so a child writing faster than the disk is slowed by
//! its pipe filling up (back-pressure), never by lines being dropped.

pub mod capture;
pub mod format;
pub mod open;
pub mod output;
pub mod rotate;
pub mod tail;
pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use crate::paths::Home;
use crate::protocol::model::AppSpec;
use crate::protocol::response::Stream;

/// How an app's log files fare: lines that could not be written (a full disk, a file that
/// cannot be opened), counted by its writer and read by the supervisor for `list`, `describe`
/// and metrics.
#[derive(Debug, Default)]
pub struct LogHealth {
    dropped: AtomicU64,
}

impl LogHealth {
    pub fn add_dropped(&self, lines: u64) {
        self.dropped.fetch_add(lines, Ordering::Relaxed);
    }

    /// Lines dropped since the app started under this daemon.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// What an app's writer receives.
#[derive(Debug)]
pub enum WriterMsg {
    Record(LogRecord),
    /// Empty the app's files (`rcluster flush`).
    Flush,
    /// Close and reopen the files (`rcluster reloadLogs`, after an external rotation).
    Reopen,
    /// The app's definition changed (a reload with a new one): write the next lines with its
    /// files, format and rotation.
    Respec(Box<AppSpec>),
    /// Write out everything queued before this, then answer (`rcluster update` waits for it).
    Sync(std::sync::mpsc::Sender<()>),
}

/// Whole lines (each ending in `\n`) from one stream of one instance, read at one time.
#[derive(Debug)]
pub struct LogRecord {
    /// The instance's public id (what `list` shows).
    pub id: u32,
    pub index: u32,
    pub app: Arc<str>,
    pub stream: Stream,
    /// From a capture: the raw lines. On the live feed: the lines as written to the files
    /// (with their timestamp prefix, or as JSON objects).
    pub data: Vec<u8>,
    /// When the daemon read these lines from the pipe: their timestamp.
    pub at: SystemTime,
    /// On the live feed: the number of the record's first line since the daemon started, so a
    /// follower that skipped records can say how many lines it missed. 0 elsewhere.
    pub seq: u64,
    /// On the live feed: how many lines `data` holds. 0 elsewhere.
    pub lines: u64,
}

/// Where an instance's stream goes: `None` when discarded (`/dev/null`).
pub fn log_path(home: &Home, spec: &AppSpec, stream: Stream, index: u32) -> Option<PathBuf> {
    let (declared, suffix) = match stream {
        Stream::Out => (&spec.logs.out_file, "out"),
        Stream::Err => (&spec.logs.error_file, "error"),
    };
    let path = match declared {
        Some(path) if path.as_os_str() == "/dev/null" => return None,
        Some(path) => path.clone(),
        None => home.logs_dir().join(format!("{}-{suffix}.log", spec.name)),
    };
    if spec.logs.merge_logs {
        return Some(path);
    }
    // Per-instance files: `web-out.log` → `web-out-2.log`.
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{index}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}"),
    };
    Some(path.with_file_name(name))
}
