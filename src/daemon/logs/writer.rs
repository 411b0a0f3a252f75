//! One task per app owns its log files: it appends every record to the right file (opened
//! lazily, 0600, O_APPEND) and publishes it to live followers. Followers get records through a
//! broadcast channel: a slow one skips records (and is told how many), the files lose nothing.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use super::{log_path, LogRecord, WriterMsg};
use crate::paths::Home;
use crate::protocol::model::AppSpec;
use crate::protocol::response::Stream;

/// Records queued between an app's captures and its writer; when full, captures wait.
const QUEUE: usize = 64;
/// Records a follower may fall behind before it skips.
pub const FOLLOW_BUFFER: usize = 1024;

pub type Followers = broadcast::Sender<Arc<LogRecord>>;

pub fn followers() -> Followers {
    broadcast::channel(FOLLOW_BUFFER).0
}

/// Start the writer for `spec`; it ends when every capture sender is gone.
pub fn spawn_writer(home: &Home, spec: &AppSpec, followers: Followers) -> mpsc::Sender<WriterMsg> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let writer = Writer {
        home: home.clone(),
        spec: spec.clone(),
        files: HashMap::new(),
        combined: None,
    };
    tokio::spawn(writer.run(rx, followers));
    tx
}

struct Writer {
    home: Home,
    spec: AppSpec,
    /// `None` value: discarded or could not be opened (reported once).
    files: HashMap<PathBuf, Option<File>>,
    combined: Option<Option<File>>,
}

impl Writer {
    async fn run(mut self, mut rx: mpsc::Receiver<WriterMsg>, followers: Followers) {
        while let Some(msg) = rx.recv().await {
            match msg {
                WriterMsg::Record(record) => {
                    self.write(&record);
                    // No follower is not an error.
                    let _ = followers.send(Arc::new(record));
                }
                WriterMsg::Flush => self.truncate_all(),
                WriterMsg::Reopen => {
                    self.files.clear();
                    self.combined = None;
                }
            }
        }
    }

    /// Empty every file this app writes (opened or not yet).
    fn truncate_all(&mut self) {
        let mut paths: Vec<PathBuf> = self.files.keys().cloned().collect();
        for stream in [Stream::Out, Stream::Err] {
            for index in 0..self.spec.instances {
                paths.extend(log_path(&self.home, &self.spec, stream, index));
            }
        }
        paths.extend(self.spec.logs.log_file.clone());
        for path in paths {
            if path.as_os_str() == "/dev/null" {
                continue;
            }
            // O_APPEND writers go on at the new end, so truncating in place is safe.
            if let Err(e) = OpenOptions::new()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_len(0))
            {
                if e.kind() != std::io::ErrorKind::NotFound {
                    crate::dlog!("cannot flush {}: {e}", path.display());
                }
            }
        }
    }

    fn write(&mut self, record: &LogRecord) {
        if let Some(path) = log_path(&self.home, &self.spec, record.stream, record.index) {
            let file = self
                .files
                .entry(path.clone())
                .or_insert_with(|| open_log(&path));
            append(file, &path, &record.data);
        }
        if let Some(path) = self.spec.logs.log_file.clone() {
            let file = self.combined.get_or_insert_with(|| open_log(&path));
            append(file, &path, &record.data);
        }
    }
}

fn open_log(path: &Path) -> Option<File> {
    if path.as_os_str() == "/dev/null" {
        return None;
    }
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    match OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => Some(file),
        Err(e) => {
            crate::dlog!(
                "cannot open log file {}: {e}; its lines are discarded",
                path.display()
            );
            None
        }
    }
}

fn append(file: &mut Option<File>, path: &Path, data: &[u8]) {
    if let Some(f) = file {
        if let Err(e) = f.write_all(data) {
            crate::dlog!("writing {} failed: {e}", path.display());
        }
    }
}

/// Ask an app's writer to empty its files; 1 when asked (for counting).
pub fn flush(tx: &mpsc::Sender<WriterMsg>) -> usize {
    send_control(tx, WriterMsg::Flush);
    1
}

/// Ask an app's writer to reopen its files.
pub fn reopen(tx: &mpsc::Sender<WriterMsg>) {
    send_control(tx, WriterMsg::Reopen);
}

/// Queue a control message behind the records already queued, without blocking the caller.
fn send_control(tx: &mpsc::Sender<WriterMsg>, msg: WriterMsg) {
    let tx = tx.clone();
    tokio::spawn(async move {
        let _ = tx.send(msg).await;
    });
}

/// The files `logs` should tail for an app, per stream.
pub fn files_of(home: &Home, spec: &AppSpec, instances: &[u32]) -> Vec<(Stream, PathBuf)> {
    let mut out: Vec<(Stream, PathBuf)> = Vec::new();
    for stream in [Stream::Out, Stream::Err] {
        for index in instances {
            if let Some(path) = log_path(home, spec, stream, *index) {
                if !out.iter().any(|(_, p)| *p == path) {
                    out.push((stream, path));
                }
            }
        }
    }
    out
}
