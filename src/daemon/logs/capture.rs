//! One task per instance stream: read the pipe, cut at newlines, hand whole lines to the app's
//! writer. A final line without a newline is completed at EOF; a line longer than `MAX_LINE` is
//! cut there with a marker and the rest of it skipped, so one runaway line cannot exhaust memory.

use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use super::{LogRecord, WriterMsg};
use crate::daemon::log::format_utc;
use crate::protocol::response::Stream;

/// Longest line kept whole (documented in README: logs).
pub const MAX_LINE: usize = 1 << 20;
const CUT_MARKER: &[u8] = b" [rcluster: line cut at 1 MiB]\n";

pub struct CaptureSpec {
    pub id: u32,
    pub index: u32,
    pub app: Arc<str>,
    pub stream: Stream,
    pub timestamps: bool,
}

pub fn spawn_capture(fd: OwnedFd, spec: CaptureSpec, sink: mpsc::Sender<WriterMsg>) {
    let pipe = match pipe::Receiver::from_owned_fd(fd) {
        Ok(pipe) => pipe,
        Err(e) => {
            crate::dlog!("app {}: cannot watch output pipe: {e}", spec.app);
            return;
        }
    };
    tokio::spawn(capture(pipe, spec, sink));
}

async fn capture(mut pipe: pipe::Receiver, spec: CaptureSpec, sink: mpsc::Sender<WriterMsg>) {
    let mut lines = LineSplitter::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match pipe.read(&mut chunk).await {
            Ok(0) => 0,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                crate::dlog!("app {}: reading output failed: {e}", spec.app);
                0
            }
        };
        let whole = if n == 0 {
            lines.finish()
        } else {
            lines.push(&chunk[..n])
        };
        if !whole.is_empty() {
            let data = if spec.timestamps {
                stamp(&whole)
            } else {
                whole
            };
            let record = LogRecord {
                id: spec.id,
                index: spec.index,
                app: spec.app.clone(),
                stream: spec.stream,
                data,
            };
            if sink.send(WriterMsg::Record(record)).await.is_err() {
                return;
            }
        }
        if n == 0 {
            return;
        }
    }
}

/// Prefix every line with one timestamp taken now (per LINE, not per chunk).
fn stamp(lines: &[u8]) -> Vec<u8> {
    let prefix = format_utc(SystemTime::now());
    let count = lines.iter().filter(|b| **b == b'\n').count();
    let mut out = Vec::with_capacity(lines.len() + count * (prefix.len() + 2));
    for line in lines.split_inclusive(|b| *b == b'\n') {
        out.extend_from_slice(prefix.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(line);
    }
    out
}

/// Accumulates bytes and releases whole lines.
#[derive(Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
    /// Inside a line that was cut: drop bytes until its newline.
    skipping: bool,
}

impl LineSplitter {
    /// Whole lines completed by `bytes`, in order.
    pub fn push(&mut self, mut bytes: &[u8]) -> Vec<u8> {
        if self.skipping {
            match bytes.iter().position(|b| *b == b'\n') {
                Some(pos) => {
                    self.skipping = false;
                    bytes = &bytes[pos + 1..];
                }
                None => return Vec::new(),
            }
        }
        self.pending.extend_from_slice(bytes);
        let mut out = match self.pending.iter().rposition(|b| *b == b'\n') {
            Some(last) => {
                let rest = self.pending.split_off(last + 1);
                std::mem::replace(&mut self.pending, rest)
            }
            None => Vec::new(),
        };
        if self.pending.len() > MAX_LINE {
            out.extend_from_slice(&self.pending[..MAX_LINE]);
            out.extend_from_slice(CUT_MARKER);
            self.pending.clear();
            self.skipping = true;
        }
        out
    }

    /// At EOF: the last line, even without its newline.
    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.pending);
        if !out.is_empty() {
            out.push(b'\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_whole_lines_only() {
        let mut s = LineSplitter::default();
        assert_eq!(s.push(b"one\ntw"), b"one\n");
        assert_eq!(s.push(b"o\nthr"), b"two\n");
        assert_eq!(s.push(b"ee"), b"");
        assert_eq!(s.finish(), b"three\n");
        assert_eq!(s.finish(), b"");
    }

    #[test]
    fn cuts_runaway_lines() {
        let mut s = LineSplitter::default();
        let big = vec![b'x'; MAX_LINE + 10];
        let out = s.push(&big);
        assert_eq!(out.len(), MAX_LINE + CUT_MARKER.len());
        assert_eq!(s.push(b"yyy\nnext\n"), b"next\n");
    }

    #[test]
    fn stamps_each_line() {
        let out = String::from_utf8(stamp(b"a\nb\n")).expect("utf8");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(
            lines[0].ends_with("Z: a") && lines[1].ends_with("Z: b"),
            "{out}"
        );
    }
}
