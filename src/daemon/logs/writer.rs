//! One writer per app owns its log files. It runs on a thread of its own, so file I/O (a slow
//! disk, a rotation, formatting) never holds up the daemon's event loop, which supervises and
//! deals connections. It formats each record (`format`), appends it to the right files (opened
//! lazily, 0600, O_APPEND), rotates them (`rotate`), and publishes it to live followers.
//!
//! Records are gathered while more are queued and written with one `write(2)` per file, so a
//! busy app costs a few large writes, not one per line; everything is written before the
//! writer waits again, so nothing sits in memory while an app is quiet.
//!
//! Followers get records through a broadcast channel: a slow one skips records (and is told how
//! many lines), the files lose nothing. Records go to followers only once they are in the files:
//! a follower that starts reads the files' tails, then the feed, and a line written in between
//! reaches it one way or the other (at worst both), never neither.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{broadcast, mpsc};

use tokio::sync::mpsc::UnboundedSender;

use super::format::{count_lines, LineFormat};
use super::output::Output;
use super::rotate::Policy;
use super::{log_path, LogHealth, LogRecord, WriterMsg};
use crate::daemon::events::InstanceEvent;
use crate::paths::Home;
use crate::protocol::model::AppSpec;
use crate::protocol::response::Stream;

/// Records queued between an app's captures and its writer; when full, captures wait (and the
/// apps' pipes fill). A record is one read (≤ 32 KiB, or one long line), so this bounds what an
/// app's output can hold in the daemon's memory to about 1 MiB.
pub const QUEUE: usize = 32;
/// Records a follower may fall behind before it skips: about 4 MiB of memory at most.
pub const FOLLOW_BUFFER: usize = 128;
/// Bytes gathered before a write even while more records are queued.
const FLUSH_AT: usize = 256 * 1024;

pub type Followers = broadcast::Sender<Arc<LogRecord>>;

pub fn followers() -> Followers {
    broadcast::channel(FOLLOW_BUFFER).0
}

/// Lines published on the live feed since the daemon started (one feed per daemon). Records
/// carry their first line's number, so a follower that skipped records counts the lines.
static FEED_LINES: Mutex<u64> = Mutex::new(0);

/// The number the next published line will get.
pub fn feed_position() -> u64 {
    *FEED_LINES.lock().unwrap_or_else(|p| p.into_inner())
}

fn publish(followers: &Followers, mut record: LogRecord) {
    record.lines = count_lines(&record.data) as u64;
    // Numbering and sending under one lock keeps the numbers in feed order across writers.
    let mut next = FEED_LINES.lock().unwrap_or_else(|p| p.into_inner());
    record.seq = *next;
    *next += record.lines;
    // No follower is not an error.
    let _ = followers.send(Arc::new(record));
}

/// Writer threads still running, so that an exiting daemon can let them finish.
static THREADS: Mutex<Vec<JoinHandle<()>>> = Mutex::new(Vec::new());

/// Wait (up to `limit`) for every writer to end, after the event loop is gone: its captures
/// and the supervisor dropped their senders, so each writer writes what is queued and ends.
/// For the daemon's exit path, so that the last lines of stopped apps reach the files.
pub fn wait_for_writers(limit: std::time::Duration) {
    let deadline = std::time::Instant::now() + limit;
    let threads = std::mem::take(&mut *THREADS.lock().unwrap_or_else(|p| p.into_inner()));
    for thread in threads {
        while !thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2)); // polling a thread's end
        }
        if thread.is_finished() {
            let _ = thread.join();
        }
    }
}

/// Start the writer for `spec`; it ends when every capture sender is gone. It counts the lines
/// it cannot write in `health`, and tells `events` when a file starts and stops failing.
pub fn spawn_writer(
    home: &Home,
    spec: &AppSpec,
    followers: Followers,
    health: Arc<LogHealth>,
    events: Option<UnboundedSender<InstanceEvent>>,
) -> mpsc::Sender<WriterMsg> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let writer = Writer::new(
        home,
        spec,
        followers.clone(),
        health.clone(),
        events.clone(),
    );
    let thread = std::thread::Builder::new()
        .name(format!("log {}", spec.name))
        .stack_size(256 * 1024)
        .spawn(move || writer.run_blocking(rx));
    match thread {
        Ok(thread) => {
            let mut threads = THREADS.lock().unwrap_or_else(|p| p.into_inner());
            threads.retain(|t| !t.is_finished());
            threads.push(thread);
            tx
        }
        Err(e) => {
            // Degraded but lossless: write from the event loop, as a task.
            crate::dlog!(
                "app {}: cannot start a log writer thread: {e}; writing from the event loop",
                spec.name
            );
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(Writer::new(home, spec, followers, health, events).run_async(rx));
            tx
        }
    }
}

struct Writer {
    home: Home,
    spec: AppSpec,
    followers: Followers,
    format: LineFormat,
    policy: Policy,
    outputs: Vec<Output>,
    /// (is stderr, instance index) → output; `None`: discarded.
    routes: HashMap<(bool, u32), Option<usize>>,
    /// The combined file (`log_file`), resolved on first use.
    combined: Option<Option<usize>>,
    buffered: usize,
    /// Records of the batch being written, for the live feed once they are in the files.
    unpublished: Vec<LogRecord>,
    unpublished_bytes: usize,
    /// Lines that could not be written, for `list`, `describe` and metrics.
    health: Arc<LogHealth>,
    /// Where a file that starts or stops failing is reported (the supervisor's journal).
    events: Option<UnboundedSender<InstanceEvent>>,
}

impl Writer {
    fn new(
        home: &Home,
        spec: &AppSpec,
        followers: Followers,
        health: Arc<LogHealth>,
        events: Option<UnboundedSender<InstanceEvent>>,
    ) -> Writer {
        Writer {
            home: home.clone(),
            spec: spec.clone(),
            followers,
            format: LineFormat::for_spec(&spec.logs),
            policy: Policy::of(&spec.logs),
            outputs: Vec::new(),
            routes: HashMap::new(),
            combined: None,
            buffered: 0,
            unpublished: Vec::new(),
            unpublished_bytes: 0,
            health,
            events,
        }
    }

    fn run_blocking(mut self, mut rx: mpsc::Receiver<WriterMsg>) {
        while let Some(msg) = rx.blocking_recv() {
            self.handle(msg);
            while let Ok(msg) = rx.try_recv() {
                self.handle(msg);
            }
            self.flush();
        }
        self.finish();
    }

    async fn run_async(mut self, mut rx: mpsc::Receiver<WriterMsg>) {
        while let Some(msg) = rx.recv().await {
            self.handle(msg);
            while let Ok(msg) = rx.try_recv() {
                self.handle(msg);
            }
            self.flush();
        }
        self.finish();
    }

    fn handle(&mut self, msg: WriterMsg) {
        match msg {
            WriterMsg::Record(record) => self.record(record),
            WriterMsg::Flush => {
                // Lines received before the flush go with it.
                for output in &mut self.outputs {
                    output.buf.clear();
                }
                self.buffered = 0;
                self.truncate_all();
            }
            WriterMsg::Reopen => {
                self.flush();
                for output in &mut self.outputs {
                    output.close();
                }
            }
            WriterMsg::Respec(spec) => {
                self.flush();
                self.finish_compression();
                self.format = LineFormat::for_spec(&spec.logs);
                self.policy = Policy::of(&spec.logs);
                self.spec = *spec;
                self.outputs.clear();
                self.routes.clear();
                self.combined = None;
            }
            WriterMsg::Sync(done) => {
                self.finish();
                let _ = done.send(());
            }
        }
    }

    fn record(&mut self, record: LogRecord) {
        let target = self.route(record.stream, record.index);
        let combined = self.combined().filter(|c| Some(*c) != target);
        // Discarded output has no file to read back: only those following now can see it.
        if target.is_none() && combined.is_none() && self.followers.receiver_count() == 0 {
            return;
        }
        let formatted = self.format.apply(&record);
        for index in [target, combined].into_iter().flatten() {
            self.outputs[index].buf.extend_from_slice(&formatted);
            self.buffered += formatted.len();
        }
        // Kept even with nobody following now: someone may start before the flush.
        let owned = match formatted {
            std::borrow::Cow::Owned(data) => Some(data),
            std::borrow::Cow::Borrowed(_) => None,
        };
        let data = owned.unwrap_or(record.data);
        self.unpublished_bytes += data.len();
        self.unpublished.push(LogRecord { data, ..record });
        if self.buffered.max(self.unpublished_bytes) >= FLUSH_AT {
            self.flush();
        }
    }

    fn route(&mut self, stream: Stream, index: u32) -> Option<usize> {
        let key = (stream == Stream::Err, index);
        if let Some(route) = self.routes.get(&key) {
            return *route;
        }
        let route = log_path(&self.home, &self.spec, stream, index).map(|p| self.output_for(p));
        self.routes.insert(key, route);
        route
    }

    fn combined(&mut self) -> Option<usize> {
        if let Some(combined) = self.combined {
            return combined;
        }
        let combined = self
            .spec
            .logs
            .log_file
            .clone()
            .filter(|p| p.as_os_str() != "/dev/null")
            .map(|p| self.output_for(p));
        self.combined = Some(combined);
        combined
    }

    fn output_for(&mut self, path: PathBuf) -> usize {
        match self.outputs.iter().position(|o| o.path == path) {
            Some(index) => index,
            None => {
                self.outputs.push(Output::new(path));
                self.outputs.len() - 1
            }
        }
    }

    /// Write the batch to the files, then hand it to followers.
    fn flush(&mut self) {
        for output in &mut self.outputs {
            let flushed = output.flush(&self.policy);
            if flushed.dropped > 0 {
                self.health.add_dropped(flushed.dropped);
            }
            let trouble = match (flushed.began, flushed.ended) {
                (Some(why), _) => Some((Some(why), flushed.dropped)),
                (None, Some(lost)) => Some((None, lost)),
                (None, None) => None,
            };
            if let (Some((failing, lost)), Some(events)) = (trouble, &self.events) {
                let _ = events.send(InstanceEvent::LogTrouble {
                    app: self.spec.name.clone(),
                    path: output.path.clone(),
                    failing,
                    lost,
                });
            }
        }
        self.buffered = 0;
        self.unpublished_bytes = 0;
        let records = std::mem::take(&mut self.unpublished);
        if self.followers.receiver_count() > 0 {
            for record in records {
                publish(&self.followers, record);
            }
        }
    }

    fn finish(&mut self) {
        self.flush();
        self.finish_compression();
    }

    fn finish_compression(&mut self) {
        for output in &mut self.outputs {
            if let Some(job) = output.compressing.take() {
                let _ = job.join();
            }
        }
    }

    /// Empty every file this app writes (opened or not yet).
    fn truncate_all(&mut self) {
        let mut paths: Vec<PathBuf> = self.outputs.iter().map(|o| o.path.clone()).collect();
        for stream in [Stream::Out, Stream::Err] {
            for index in 0..self.spec.instances {
                paths.extend(log_path(&self.home, &self.spec, stream, index));
            }
        }
        paths.extend(self.spec.logs.log_file.clone());
        paths.sort();
        paths.dedup();
        for path in paths {
            if path.as_os_str() == "/dev/null" {
                continue;
            }
            // O_APPEND writers go on at the new end, so truncating in place is safe.
            match super::open::open_existing(&path) {
                Ok(Some(file)) => {
                    if let Err(e) = file.set_len(0) {
                        crate::dlog!("cannot flush {}: {e}", path.display());
                    }
                }
                Ok(None) => {}
                Err(e) => crate::dlog!("cannot flush: {e}"),
            }
        }
        for output in &mut self.outputs {
            output.size = 0;
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

/// Tell an app's writer its new definition (after the lines already queued).
pub fn respec(tx: &mpsc::Sender<WriterMsg>, spec: &AppSpec) {
    send_control(tx, WriterMsg::Respec(Box::new(spec.clone())));
}

/// Block (up to `limit`) until an app's writer has written out every line queued so far. For
/// `rcluster update`, whose last step must not yield to other tasks; the writers are threads.
pub fn sync_blocking(tx: &mpsc::Sender<WriterMsg>, limit: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    let (done, written) = std::sync::mpsc::channel();
    let mut msg = WriterMsg::Sync(done);
    loop {
        match tx.try_send(msg) {
            Ok(()) => break,
            Err(mpsc::error::TrySendError::Full(back)) if std::time::Instant::now() < deadline => {
                msg = back;
                // The writer thread empties its queue meanwhile.
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(_) => return false,
        }
    }
    let left = deadline.saturating_duration_since(std::time::Instant::now());
    written.recv_timeout(left).is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[test]
    fn a_follower_that_starts_mid_batch_gets_the_line_from_the_file_or_the_feed() {
        let dir = std::env::temp_dir().join(format!("rcluster-feed-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let out = dir.join("app-out.log");
        let mut spec = AppSpec {
            name: "app".into(),
            ..AppSpec::default()
        };
        spec.logs.out_file = Some(out.clone());
        spec.logs.error_file = Some(PathBuf::from("/dev/null"));
        let feed = followers();
        let mut writer = Writer::new(
            &Home::at(&dir),
            &spec,
            feed.clone(),
            Default::default(),
            None,
        );
        // A line arrives while nobody follows; a follower starts before the batch is written
        // (it reads the file's tail first: nothing there yet).
        writer.record(LogRecord {
            id: 0,
            index: 0,
            app: Arc::from("app"),
            stream: Stream::Out,
            data: b"first line\n".to_vec(),
            at: SystemTime::now(),
            seq: 0,
            lines: 0,
        });
        let mut follower = feed.subscribe();
        let tail = std::fs::read(&out).unwrap_or_default();
        writer.flush();
        let live = follower
            .try_recv()
            .map(|r| r.data.clone())
            .unwrap_or_default();
        assert!(
            tail.ends_with(b"first line\n") || live.ends_with(b"first line\n"),
            "lost: tail {tail:?}, live {live:?}"
        );
        assert!(std::fs::read(&out)
            .expect("written")
            .ends_with(b"first line\n"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
