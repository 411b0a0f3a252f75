//! One task per instance stream: read the pipe, cut at newlines, hand whole lines to the app's
//! writer. A final line without a newline is completed at EOF; a line longer than `MAX_LINE` is
//! cut there with a marker and the rest of it skipped, so one runaway line cannot exhaust memory.
//!
//! Reading is batched without costing latency that anyone can see: the task waits for the pipe
//! to become readable (epoll, no wakeups while the app is quiet), then takes it OUT of epoll,
//! reads everything there, sleeps `LINGER` and reads again, and only goes back to epoll when a
//! read finds the pipe empty. A program that writes one line per `write(2)` (Python with
//! `PYTHONUNBUFFERED`, pm2's setting) would otherwise cost the daemon a wakeup and a read per
//! line; this way one read takes a millisecond's worth of lines, and writes made while the task
//! sleeps wake nobody. While the writer's queue is full the task does not read, the pipe fills
//! and the app's `write` blocks: back-pressure, never dropped lines.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, watch};

use super::{LogRecord, WriterMsg};
use crate::daemon::handoff::Handover;
use crate::protocol::response::Stream;

/// Longest line kept whole, in bytes without its newline (documented in README: Logs).
pub const MAX_LINE: usize = 1 << 20;
/// Ends a line that was cut at `MAX_LINE`.
pub const CUT_MARKER: &[u8] = b" [rcluster: line cut at 1 MiB]\n";
/// Read buffer of a quiet stream; a stream whose reads fill it gets `CHUNK`.
const MIN_BUF: usize = 4 * 1024;
/// Read buffer of a busy stream, and so the usual size of a record (the writer's queue holds
/// `writer::QUEUE` of them: that bounds the daemon's memory per app).
const CHUNK: usize = 32 * 1024;
/// How long a busy stream's lines gather in the pipe between two reads.
const LINGER: Duration = Duration::from_millis(1);
/// Bytes in one batch that mark a stream as busy: its pipe is enlarged so that a `LINGER` never
/// fills it (the default 64 KiB holds ~2 ms of a fast Python writer).
const BUSY_BATCH: usize = 16 * 1024;
const BUSY_PIPE: libc::c_int = 256 * 1024;
/// Bytes read in one go before other tasks get the thread.
const FAIR_SHARE: usize = 256 * 1024;

pub struct CaptureSpec {
    pub id: u32,
    /// The id users see (`Instance::public_id`), written in JSON log lines.
    pub public_id: u32,
    pub index: u32,
    pub app: Arc<str>,
    pub stream: Stream,
}

pub fn spawn_capture(fd: OwnedFd, spec: CaptureSpec, sink: mpsc::Sender<WriterMsg>) {
    spawn_capture_from(fd, spec, sink, LineSplitter::default());
}

/// Resume a stream that a previous daemon image handed over (`rcluster update`), with the line
/// it had begun.
pub fn resume_capture(handed: HandedOutput, spec: CaptureSpec, sink: mpsc::Sender<WriterMsg>) {
    let lines = LineSplitter::resumed(handed.partial, handed.skipping);
    spawn_capture_from(handed.fd, spec, sink, lines);
}

fn spawn_capture_from(
    fd: OwnedFd,
    spec: CaptureSpec,
    sink: mpsc::Sender<WriterMsg>,
    lines: LineSplitter,
) {
    if let Err(e) = set_nonblocking(&fd) {
        crate::dlog!("app {}: cannot watch output pipe: {e}", spec.app);
        return;
    }
    let running = HANDOVER.task();
    tokio::spawn(async move {
        let _running = running;
        capture(fd, spec, sink, lines).await
    });
}

/// A stream handed back for `rcluster update`: its pipe and the line begun but not ended.
pub struct HandedOutput {
    pub id: u32,
    pub stream: Stream,
    pub fd: OwnedFd,
    pub partial: Vec<u8>,
    pub skipping: bool,
}

/// The captures' side of `rcluster update`: each stops reading and hands its stream back.
pub static HANDOVER: Handover<HandedOutput> = Handover::new();

fn set_nonblocking(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

enum Drained {
    /// Bytes read; `more` when the pipe may hold more (we stopped to be fair to other tasks).
    Read { bytes: usize, more: bool },
    /// The pipe is closed on every writing side (the instance and its descendants are gone),
    /// or the app's writer is gone.
    Done,
}

async fn capture(
    fd: OwnedFd,
    spec: CaptureSpec,
    sink: mpsc::Sender<WriterMsg>,
    mut lines: LineSplitter,
) {
    let mut handover = HANDOVER.watch();
    let mut fd = fd;
    let mut enlarged = false;
    loop {
        let (watched, readable) = wait_readable(fd, &spec, &mut handover).await;
        fd = watched;
        if !readable {
            return hand_over(fd, &spec, lines);
        }
        loop {
            if *handover.borrow() {
                return hand_over(fd, &spec, lines);
            }
            match drain(&fd, &mut lines, &spec, &sink).await {
                Drained::Done => return,
                Drained::Read { bytes: 0, .. } => break,
                Drained::Read { more: true, .. } => tokio::task::yield_now().await,
                Drained::Read { bytes, more: false } => {
                    if bytes >= BUSY_BATCH && !enlarged {
                        enlarged = true;
                        enlarge_pipe(&fd);
                    }
                    tokio::time::sleep(LINGER).await;
                }
            }
        }
        lines.relax();
    }
}

fn hand_over(fd: OwnedFd, spec: &CaptureSpec, lines: LineSplitter) {
    let (partial, skipping) = lines.into_pending();
    let handed = HandedOutput {
        id: spec.id,
        stream: spec.stream,
        fd,
        partial,
        skipping,
    };
    // Captures run on the supervisor's thread, which alone flips the flag: it is still set.
    if let Err(handed) = HANDOVER.hand_over(handed) {
        HANDOVER.restore(vec![handed]);
    }
}

/// Wait in epoll until the pipe has data (or is closed), then leave epoll again. False (and the
/// fd back) when a handover was asked for instead.
async fn wait_readable(
    fd: OwnedFd,
    spec: &CaptureSpec,
    handover: &mut watch::Receiver<bool>,
) -> (OwnedFd, bool) {
    if *handover.borrow() {
        return (fd, false);
    }
    // SAFETY: the OwnedFd is open, and it stays the same fd while registered: `AsyncFd` owns
    // it until `into_inner` hands it back.
    let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
    match registered {
        Ok(watched) => {
            let failed = tokio::select! {
                ready = watched.readable() => ready.err(),
                asked = handover.wait_for(|asked| *asked) => {
                    if asked.is_ok() {
                        return (watched.into_inner(), false);
                    }
                    None
                }
            };
            if let Some(e) = failed {
                crate::dlog!("app {}: waiting for output failed: {e}", spec.app);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            (watched.into_inner(), true)
        }
        Err(e) => {
            // Without epoll (it refused the fd) poll slowly rather than lose the output.
            let (fd, e) = e.into_parts();
            crate::dlog!("app {}: cannot watch output pipe: {e}", spec.app);
            tokio::time::sleep(Duration::from_millis(50)).await;
            (fd, true)
        }
    }
}

async fn drain(
    fd: &OwnedFd,
    lines: &mut LineSplitter,
    spec: &CaptureSpec,
    sink: &mpsc::Sender<WriterMsg>,
) -> Drained {
    let mut bytes = 0;
    loop {
        let read = nix::unistd::read(fd.as_fd(), lines.spare());
        let n = match read {
            Ok(n) => n,
            Err(nix::errno::Errno::EAGAIN) => return Drained::Read { bytes, more: false },
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                crate::dlog!("app {}: reading output failed: {e}", spec.app);
                0
            }
        };
        let whole = if n == 0 {
            lines.finish()
        } else {
            lines.commit(n)
        };
        if let Some(data) = whole {
            let record = LogRecord {
                id: spec.public_id,
                index: spec.index,
                app: spec.app.clone(),
                stream: spec.stream,
                data,
                at: SystemTime::now(),
                seq: 0,
                lines: 0,
            };
            if sink.send(WriterMsg::Record(record)).await.is_err() {
                return Drained::Done;
            }
        }
        if n == 0 {
            return Drained::Done;
        }
        bytes += n;
        if bytes >= FAIR_SHARE {
            return Drained::Read { bytes, more: true };
        }
    }
}

/// `F_SETPIPE_SZ` (pipe(7)): best effort, the user's pipe quota may refuse it.
fn enlarge_pipe(fd: &OwnedFd) {
    // SAFETY: fcntl on an fd we own, with an integer argument; no memory is passed.
    let _ = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, BUSY_PIPE) };
}

/// Accumulates bytes read from a pipe and releases whole lines. Reads go straight into its
/// buffer (`spare`, then `commit`), so a record costs one copy of its lines.
pub struct LineSplitter {
    buf: Vec<u8>,
    filled: usize,
    /// Inside a line that was cut: drop bytes until its newline.
    skipping: bool,
}

impl Default for LineSplitter {
    fn default() -> Self {
        LineSplitter {
            buf: vec![0; MIN_BUF],
            filled: 0,
            skipping: false,
        }
    }
}

impl LineSplitter {
    /// Where the next read goes (never empty).
    pub fn spare(&mut self) -> &mut [u8] {
        if self.filled == self.buf.len() {
            // A line longer than the buffer: grow, up to the limit plus its newline.
            let grown = (self.buf.len() * 2).clamp(CHUNK, MAX_LINE + 1);
            self.buf.resize(grown, 0);
        }
        &mut self.buf[self.filled..]
    }

    /// `n` bytes were read into `spare()`: the whole lines completed, in order.
    pub fn commit(&mut self, n: usize) -> Option<Vec<u8>> {
        let start = self.filled;
        let filled_spare = start + n == self.buf.len();
        self.filled += n;
        let mut begin = 0;
        if self.skipping {
            // `start` is 0 here: the cut emptied the buffer.
            match self.buf[start..self.filled]
                .iter()
                .position(|b| *b == b'\n')
            {
                Some(pos) => {
                    self.skipping = false;
                    begin = start + pos + 1;
                }
                None => {
                    self.filled = 0;
                    return None;
                }
            }
        }
        // Bytes before `start` held no newline (they were a pending partial line).
        let from = start.max(begin);
        let mut out = match self.buf[from..self.filled]
            .iter()
            .rposition(|b| *b == b'\n')
        {
            Some(pos) => {
                let end = from + pos + 1;
                let whole = self.buf[begin..end].to_vec();
                self.buf.copy_within(end..self.filled, 0);
                self.filled -= end;
                Some(whole)
            }
            None => {
                self.buf.copy_within(begin..self.filled, 0);
                self.filled -= begin;
                None
            }
        };
        if self.filled > MAX_LINE {
            let mut cut = Vec::with_capacity(MAX_LINE + CUT_MARKER.len());
            cut.extend_from_slice(&self.buf[..MAX_LINE]);
            cut.extend_from_slice(CUT_MARKER);
            match &mut out {
                Some(lines) => lines.extend_from_slice(&cut),
                None => out = Some(cut),
            }
            self.filled = 0;
            self.skipping = true;
        }
        if filled_spare && self.buf.len() < CHUNK {
            // Reads fill the buffer: a busy stream, give it fewer, larger reads.
            self.buf.resize(CHUNK, 0);
        } else if self.buf.len() > CHUNK && self.filled <= CHUNK / 2 {
            // A long line is out: give its memory back.
            self.buf.truncate(CHUNK);
            self.buf.shrink_to_fit();
        }
        out
    }

    /// At EOF: the last line, even without its newline.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.skipping || self.filled == 0 {
            self.filled = 0;
            return None;
        }
        let mut out = self.buf[..self.filled].to_vec();
        out.push(b'\n');
        self.filled = 0;
        Some(out)
    }

    /// The line begun and not ended, and whether it is the rest of a cut one (for a handover).
    pub fn into_pending(mut self) -> (Vec<u8>, bool) {
        self.buf.truncate(self.filled);
        (self.buf, self.skipping)
    }

    /// Go on from what `into_pending` gave.
    pub fn resumed(mut partial: Vec<u8>, skipping: bool) -> LineSplitter {
        let filled = partial.len().min(MAX_LINE);
        partial.truncate(filled);
        partial.resize(filled.max(MIN_BUF).max(filled + 1), 0);
        LineSplitter {
            buf: partial,
            filled,
            skipping,
        }
    }

    /// The stream went quiet: keep only a small buffer.
    pub fn relax(&mut self) {
        if self.buf.len() > MIN_BUF && self.filled <= MIN_BUF {
            self.buf.truncate(MIN_BUF);
            self.buf.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn push(s: &mut LineSplitter, mut bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let spare = s.spare();
            let n = spare.len().min(bytes.len());
            spare[..n].copy_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            out.extend(s.commit(n).unwrap_or_default());
        }
        out
    }

    #[test]
    fn releases_whole_lines_only() {
        let mut s = LineSplitter::default();
        assert_eq!(push(&mut s, b"one\ntw"), b"one\n");
        assert_eq!(push(&mut s, b"o\nthr"), b"two\n");
        assert_eq!(push(&mut s, b"ee"), b"");
        assert_eq!(s.finish().unwrap_or_default(), b"three\n");
        assert_eq!(s.finish(), None);
    }

    #[test]
    fn keeps_long_lines_whole() {
        let mut s = LineSplitter::default();
        let mut line = vec![b'x'; 300 * 1024];
        line.push(b'\n');
        let out = push(&mut s, &line);
        assert_eq!(out, line);
        // Exactly the limit is kept.
        let mut line = vec![b'y'; MAX_LINE];
        line.push(b'\n');
        assert_eq!(push(&mut s, &line), line);
        s.relax();
        assert_eq!(s.buf.len(), MIN_BUF);
    }

    #[test]
    fn a_handed_over_line_goes_on() {
        let mut s = LineSplitter::default();
        assert_eq!(push(&mut s, b"one\nhalf a "), b"one\n");
        let (partial, skipping) = s.into_pending();
        assert_eq!(partial, b"half a ");
        let mut s = LineSplitter::resumed(partial, skipping);
        assert_eq!(push(&mut s, b"line\n"), b"half a line\n");
        let (partial, skipping) = LineSplitter::default().into_pending();
        let mut s = LineSplitter::resumed(partial, skipping);
        assert_eq!(push(&mut s, b"x\n"), b"x\n");
    }

    #[test]
    fn cuts_runaway_lines() {
        let mut s = LineSplitter::default();
        let big = vec![b'x'; MAX_LINE + 10];
        let out = push(&mut s, &big);
        assert_eq!(out.len(), MAX_LINE + CUT_MARKER.len());
        assert!(out.ends_with(CUT_MARKER));
        assert_eq!(push(&mut s, b"yyy\nnext\n"), b"next\n");
        // A cut line that ends the stream adds nothing more.
        push(&mut s, &big);
        assert_eq!(s.finish(), None);
    }
}
