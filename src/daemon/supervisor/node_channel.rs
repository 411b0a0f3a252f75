//! Node's IPC channel, as pm2 gives every Node instance: the program sees `process.send` (apps
//! written for pm2 call `process.send('ready')` unconditionally, and would crash without it), and
//! its `'ready'` message is the `wait_ready` signal. Node opens the channel from `NODE_CHANNEL_FD`
//! and keeps it unreferenced unless the app listens for messages, so it never holds a program
//! alive. Messages are JSON, one per line; everything but `"ready"` is read and dropped.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream as StdUnixStream;

use tokio::io::AsyncReadExt;
use tokio::net::UnixStream;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use crate::daemon::events::InstanceEvent;

/// Longer messages are skipped whole rather than buffered.
const MAX_MESSAGE: usize = 64 * 1024;

/// The environment that tells Node where its channel is, for a channel placed at `fd`.
pub fn channel_env(fd: usize) -> [(String, String); 2] {
    [
        ("NODE_CHANNEL_FD".into(), fd.to_string()),
        ("NODE_CHANNEL_SERIALIZATION_MODE".into(), "json".into()),
    ]
}

/// A channel for instance `id`: the instance's end to place in the child, and the daemon's
/// end, watched (see `watch`).
pub fn open(id: u32, events: UnboundedSender<InstanceEvent>) -> Result<(OwnedFd, Watched), String> {
    let (ours, theirs) =
        StdUnixStream::pair().map_err(|e| format!("cannot open a Node IPC channel: {e}"))?;
    Ok((theirs.into(), watch(ours.into(), id, events)?))
}

/// The daemon's end of a channel: a copy kept for `rcluster update`, and the task reading it.
pub struct Watched {
    pub kept: OwnedFd,
    pub task: JoinHandle<()>,
}

/// Read the daemon's end of instance `id`'s channel until the program is gone.
pub fn watch(
    ours: OwnedFd,
    id: u32,
    events: UnboundedSender<InstanceEvent>,
) -> Result<Watched, String> {
    let kept = ours
        .try_clone()
        .map_err(|e| format!("cannot duplicate a Node IPC channel: {e}"))?;
    let ours = StdUnixStream::from(ours);
    ours.set_nonblocking(true)
        .map_err(|e| format!("cannot watch a Node IPC channel: {e}"))?;
    let ours =
        UnixStream::from_std(ours).map_err(|e| format!("cannot watch a Node IPC channel: {e}"))?;
    let task = tokio::spawn(read_messages(ours, id, events));
    Ok(Watched { kept, task })
}

async fn read_messages(mut stream: UnixStream, id: u32, events: UnboundedSender<InstanceEvent>) {
    let mut lines = LineSplitter::default();
    let mut buf = vec![0u8; 2048];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for line in lines.push(&buf[..n]) {
            if is_ready(&line) {
                let ready = InstanceEvent::Notify {
                    id,
                    ready: true,
                    stopping: false,
                    status: None,
                };
                if events.send(ready).is_err() {
                    return;
                }
            }
        }
    }
}

/// pm2's test: the message is the string `ready`.
fn is_ready(line: &[u8]) -> bool {
    matches!(
        serde_json::from_slice::<serde_json::Value>(line),
        Ok(serde_json::Value::String(s)) if s == "ready"
    )
}

/// Whole lines out of a byte stream, with a bound on what one line may hold.
#[derive(Default)]
struct LineSplitter {
    pending: Vec<u8>,
    skipping: bool,
}

impl LineSplitter {
    fn push(&mut self, mut bytes: &[u8]) -> Vec<Vec<u8>> {
        let mut lines = Vec::new();
        while let Some(at) = bytes.iter().position(|&b| b == b'\n') {
            if !self.skipping {
                self.pending.extend_from_slice(&bytes[..at]);
                lines.push(std::mem::take(&mut self.pending));
            }
            self.skipping = false;
            self.pending.clear();
            bytes = &bytes[at + 1..];
        }
        if !self.skipping {
            self.pending.extend_from_slice(bytes);
            if self.pending.len() > MAX_MESSAGE {
                self.pending = Vec::new();
                self.skipping = true;
            }
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_is_the_string_ready_only() {
        assert!(is_ready(br#""ready""#));
        assert!(!is_ready(br#"{"cmd":"NODE_HANDLE_ACK"}"#));
        assert!(!is_ready(br#"{"type":"ready"}"#));
        assert!(!is_ready(b"ready"));
    }

    #[test]
    fn lines_are_split_across_reads_and_long_ones_skipped() {
        let mut split = LineSplitter::default();
        assert!(split.push(b"\"rea").is_empty());
        assert_eq!(
            split.push(b"dy\"\n{\"a\":1}\n\"x"),
            vec![b"\"ready\"".to_vec(), b"{\"a\":1}".to_vec()]
        );
        let long = vec![b'a'; MAX_MESSAGE + 1];
        assert!(split.push(&long).is_empty());
        assert!(split.push(b"more of it").is_empty());
        assert_eq!(split.push(b"\n\"ready\"\n"), vec![b"\"ready\"".to_vec()]);
    }
}
