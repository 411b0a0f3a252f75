//! One log file of an app, as its writer (`writer`) appends to it: opened lazily (`open`),
//! rotated between two lines (`rotate`), and kept whole when the disk is full.
//!
//! A full disk (or a quota, or an I/O error) never holds the app back: the lines that do not
//! fit are dropped, counted (`LogHealth`, shown by `list`, `describe` and `logs`), and the
//! writer tries again with the next batch, so writing resumes by itself once there is room. A
//! write the disk cut short is taken back to its last whole line (the file is truncated by the
//! torn part), so the file never ends in half a line onto which the first line written after
//! the recovery would be glued.

use std::fs::File;
use std::io::{self, Write};
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::format::{count_lines, local_day};
use super::rotate::{self, Policy};

/// How long writes must go in after a failure before the file counts as working again.
const SETTLED: Duration = Duration::from_secs(1);

/// Where an output's bytes go: a file; a trait so that tests can play a full disk.
pub trait Sink: Write {
    fn file_len(&self) -> io::Result<u64>;
    fn set_len(&self, len: u64) -> io::Result<()>;
}

impl Sink for File {
    fn file_len(&self) -> io::Result<u64> {
        self.metadata().map(|m| m.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }
}

/// What one write of whole lines came to.
#[derive(Debug, Default)]
pub struct Written {
    /// Bytes in the file now (whole lines only).
    pub bytes: usize,
    /// Lines that did not go in.
    pub dropped: u64,
    pub error: Option<io::Error>,
    /// A torn line could not be taken back: the next write must begin on a new line.
    pub torn: bool,
}

/// Append `data` (whole lines) to `sink`; when the write stops short, take the file back to its
/// last whole line.
pub fn write_lines(sink: &mut dyn Sink, data: &[u8]) -> Written {
    let mut written = 0;
    let error = loop {
        if written == data.len() {
            break None;
        }
        match sink.write(&data[written..]) {
            Ok(0) => break Some(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break Some(e),
        }
    };
    if error.is_none() {
        return Written {
            bytes: written,
            ..Written::default()
        };
    }
    let whole = data[..written]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |at| at + 1);
    let torn = written - whole;
    let untorn = torn == 0
        || sink
            .file_len()
            .and_then(|len| sink.set_len(len.saturating_sub(torn as u64)))
            .is_ok();
    Written {
        bytes: whole,
        dropped: count_lines(&data[whole..]).max(usize::from(whole < data.len())) as u64,
        error,
        torn: !untorn,
    }
}

/// What a flush came to.
#[derive(Debug, Default)]
pub struct Flushed {
    /// Lines that did not go in.
    pub dropped: u64,
    /// The file began failing, for this reason.
    pub began: Option<String>,
    /// The file works again, after dropping this many lines.
    pub ended: Option<u64>,
}

/// One log file of an app.
pub struct Output {
    pub path: PathBuf,
    file: Option<File>,
    /// Bytes in the file (for `log_max_size`).
    pub size: u64,
    /// The local day its lines are from (for daily rotation).
    pub day: (i64, u32, u32),
    /// Formatted lines not written yet.
    pub buf: Vec<u8>,
    /// Why lines are not getting in (open or write failure), while that lasts.
    pub failing: Option<String>,
    /// Lines dropped since it began failing.
    pub lost: u64,
    /// The last failure: the file counts as working again once writes go in for `SETTLED`
    /// after it (a nearly full disk takes a short line now and then).
    failed_at: Option<Instant>,
    /// The file ends in a torn line that could not be taken back.
    torn: bool,
    /// The compression of the last rotated file.
    pub compressing: Option<JoinHandle<()>>,
}

impl Output {
    pub fn new(path: PathBuf) -> Output {
        Output {
            path,
            file: None,
            size: 0,
            day: local_day(SystemTime::now()),
            buf: Vec::new(),
            failing: None,
            lost: 0,
            failed_at: None,
            torn: false,
            compressing: None,
        }
    }

    pub fn close(&mut self) {
        self.file = None;
    }

    fn open(&mut self) -> bool {
        if self.file.is_some() {
            return true;
        }
        match super::open::open_append(&self.path) {
            Ok(file) => {
                let meta = file.metadata().ok();
                self.size = meta.as_ref().map_or(0, |m| m.len());
                // A file carried over from an earlier day rotates at its first write today.
                self.day = match meta.and_then(|m| m.modified().ok()) {
                    Some(modified) if self.size > 0 => local_day(modified),
                    _ => local_day(SystemTime::now()),
                };
                self.file = Some(file);
                true
            }
            Err(e) => {
                self.fail(e.to_string());
                false
            }
        }
    }

    fn fail(&mut self, why: String) {
        self.failed_at = Some(Instant::now());
        if self.failing.is_none() {
            self.failing = Some(why);
        }
    }

    /// Write what is buffered.
    pub fn flush(&mut self, policy: &Policy) -> Flushed {
        if self.buf.is_empty() {
            return Flushed::default();
        }
        let was_failing = self.failing.is_some();
        let mut data = std::mem::take(&mut self.buf);
        let dropped = if self.open() {
            self.write_rotating(&data, policy)
        } else {
            count_lines(&data) as u64
        };
        data.clear();
        self.buf = data;
        let mut flushed = Flushed {
            dropped,
            ..Flushed::default()
        };
        if dropped > 0 {
            self.lost += dropped;
            if !was_failing {
                flushed.began = self.failing.clone();
            }
        } else if was_failing && self.failed_at.is_none_or(|at| at.elapsed() >= SETTLED) {
            self.failing = None;
            flushed.ended = Some(std::mem::take(&mut self.lost));
        }
        flushed
    }

    /// Write whole lines, rotating between two lines whenever the next would take the file past
    /// `max_size` (a single line longer than that gets a file of its own).
    fn write_rotating(&mut self, data: &[u8], policy: &Policy) -> u64 {
        if policy.daily {
            let today = local_day(SystemTime::now());
            if today != self.day {
                if self.size > 0 {
                    self.rotate(policy);
                }
                self.day = today;
            }
        }
        let mut dropped = 0;
        let mut rest = data;
        if let Some(max) = policy.max_size {
            while !rest.is_empty() && self.size + rest.len() as u64 > max {
                let room = (max.saturating_sub(self.size) as usize).min(rest.len());
                let take = match rest[..room].iter().rposition(|b| *b == b'\n') {
                    Some(pos) => pos + 1,
                    None if self.size == 0 => rest
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(rest.len(), |pos| pos + 1),
                    None => 0,
                };
                dropped += self.write(&rest[..take]);
                rest = &rest[take..];
                if !self.rotate(policy) {
                    break;
                }
            }
        }
        dropped + self.write(rest)
    }

    /// Append whole lines; the number of lines that did not go in.
    fn write(&mut self, bytes: &[u8]) -> u64 {
        if bytes.is_empty() {
            return 0;
        }
        let Some(file) = self.file.as_mut() else {
            return count_lines(bytes) as u64;
        };
        if self.torn {
            // The file ends in half a line: end it before the next whole one.
            if write_lines(file, b"\n").error.is_some() {
                return count_lines(bytes) as u64;
            }
            self.size += 1;
            self.torn = false;
        }
        let written = write_lines(file, bytes);
        self.size += written.bytes as u64;
        self.torn = written.torn;
        if let Some(e) = written.error {
            let why = format!(
                "cannot write log file {}: {}",
                self.path.display(),
                super::open::describe(&e)
            );
            self.fail(why);
        }
        written.dropped
    }

    /// Rename the file away and open a fresh one. False when the rename failed: the lines
    /// then go on into the same file.
    fn rotate(&mut self, policy: &Policy) -> bool {
        if let Some(job) = self.compressing.take() {
            // The shift renames `.1`: its compression must be over.
            let _ = job.join();
        }
        self.file = None;
        self.torn = false;
        let shifted = rotate::shift(&self.path, policy.retain);
        let ok = match shifted {
            Ok(first) => {
                if let (true, Some(first)) = (policy.compress, first) {
                    self.compressing = rotate::spawn_compress(first);
                }
                true
            }
            Err(e) => {
                crate::dlog!("cannot rotate {}: {e}", self.path.display());
                false
            }
        };
        self.open();
        ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: u64, retain: u32) -> Policy {
        Policy {
            max_size: Some(max),
            daily: false,
            retain,
            compress: false,
        }
    }

    /// A disk with `room` bytes left: writes stop there with ENOSPC (after a short write, as
    /// write(2) does), truncation frees room.
    struct FullDisk {
        data: std::cell::RefCell<Vec<u8>>,
        room: usize,
        truncatable: bool,
    }

    impl FullDisk {
        fn new(room: usize, truncatable: bool) -> FullDisk {
            FullDisk {
                data: Default::default(),
                room,
                truncatable,
            }
        }

        fn data(&self) -> Vec<u8> {
            self.data.borrow().clone()
        }
    }

    impl Write for FullDisk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let data = self.data.get_mut();
            let free = self.room.saturating_sub(data.len());
            if free == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = free.min(buf.len());
            data.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Sink for FullDisk {
        fn file_len(&self) -> io::Result<u64> {
            Ok(self.data.borrow().len() as u64)
        }

        fn set_len(&self, len: u64) -> io::Result<()> {
            if !self.truncatable {
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            self.data.borrow_mut().truncate(len as usize);
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_keeps_lines_whole_and_counts_the_rest() {
        let mut disk = FullDisk::new(25, true);
        let lines = b"line 1\nline 2\nline 3\nline 4\nline 5\n";
        let written = write_lines(&mut disk, lines);
        // 25 bytes fit: three lines and 4 bytes of the fourth, taken back.
        assert_eq!(disk.data(), b"line 1\nline 2\nline 3\n");
        assert_eq!(written.bytes, 21);
        assert_eq!(written.dropped, 2);
        assert!(written.error.is_some() && !written.torn);
        // Room again: the next line starts on a line of its own.
        disk.room = 1000;
        let written = write_lines(&mut disk, b"line 6\n");
        assert!(written.error.is_none());
        assert_eq!(disk.data(), b"line 1\nline 2\nline 3\nline 6\n");
    }

    #[test]
    fn a_torn_line_that_cannot_be_taken_back_is_ended_before_the_next() {
        let dir = std::env::temp_dir().join(format!("rcluster-torn-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let mut disk = FullDisk::new(10, false);
        let written = write_lines(&mut disk, b"first\nsecond\n");
        assert_eq!(disk.data(), b"first\nseco");
        assert!(written.torn);
        assert_eq!(written.dropped, 1);
        // The output ends a torn file's last line before writing on.
        let mut out = Output::new(dir.join("t.log"));
        std::fs::write(&out.path, b"first\nseco").expect("write");
        out.torn = true;
        out.buf.extend_from_slice(b"third\n");
        assert_eq!(out.flush(&Policy::of(&Default::default())).dropped, 0);
        assert_eq!(
            std::fs::read(&out.path).expect("read"),
            b"first\nseco\nthird\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rotates_daily_at_the_first_write_of_a_new_day() {
        let dir = std::env::temp_dir().join(format!("rcluster-daily-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("d.log");
        let daily = Policy {
            max_size: None,
            daily: true,
            retain: 2,
            compress: false,
        };
        let mut out = Output::new(path.clone());
        out.buf.extend_from_slice(b"yesterday\n");
        out.flush(&daily);
        // As if the clock had passed midnight since the file was started.
        out.day = (1970, 1, 1);
        out.buf.extend_from_slice(b"today\n");
        out.flush(&daily);
        out.buf.extend_from_slice(b"still today\n");
        out.flush(&daily);
        let rotated = rotate::rotated_path(&path, 1, false);
        assert_eq!(
            std::fs::read_to_string(rotated).expect("rotated"),
            "yesterday\n"
        );
        assert_eq!(
            std::fs::read_to_string(&path).expect("live"),
            "today\nstill today\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rotates_between_lines_and_loses_nothing() {
        let dir = std::env::temp_dir().join(format!("rcluster-writer-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("a.log");
        let mut out = Output::new(path.clone());
        let policy = policy(100, 1000);
        let lines: Vec<String> = (0..1000).map(|i| format!("line {i}\n")).collect();
        let text = lines.concat();
        // Batches of whole lines, as the writer gathers them.
        for batch in lines.chunks(7) {
            out.buf.extend_from_slice(batch.concat().as_bytes());
            out.flush(&policy);
        }
        let mut all = String::new();
        let mut k = 1;
        let mut rotated = Vec::new();
        while rotate::rotated_path(&path, k, false).exists() {
            rotated.push(
                std::fs::read_to_string(rotate::rotated_path(&path, k, false)).expect("read"),
            );
            k += 1;
        }
        for part in rotated.iter().rev() {
            assert!(part.len() <= 100 && part.ends_with('\n'), "{part:?}");
            all.push_str(part);
        }
        all.push_str(&std::fs::read_to_string(&path).expect("live"));
        assert_eq!(all, text);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
