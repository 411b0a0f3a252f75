//! Copying a proxied connection both ways, in a form `rcluster update` can hand over: each
//! direction stops only between two copies (a read's bytes are always written out first), so at
//! a handover nothing is held in the daemon and the two sockets, with which sides have ended,
//! are all there is to carry across the exec.

use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::daemon::handoff::Handover;

/// Bytes read at once per direction (tokio's copy_bidirectional uses the same).
const BUF: usize = 8 * 1024;

/// A proxied connection handed back for `rcluster update`.
pub struct HandedConn {
    pub app: Arc<str>,
    /// The instance it is proxied to (None: still waiting for one, no upstream yet).
    pub backend: Option<u32>,
    pub client: OwnedFd,
    pub upstream: Option<OwnedFd>,
    /// [client → upstream, upstream → client] reached end-of-file (its write side is shut).
    pub ended: [bool; 2],
}

/// The proxy's side of `rcluster update`: every proxied connection hands itself over at its next
/// clean point, and the accept loops leave new connections in the kernel's queue.
pub static HANDOVER: Handover<HandedConn> = Handover::new();

/// How a pump ended.
pub enum Pumped {
    /// Both directions ended, or one failed: the connection is over.
    Done,
    /// A handover was asked for: the sockets, and which directions had ended.
    HandOver(TcpStream, TcpStream, [bool; 2]),
}

/// Copy client ↔ upstream until both directions end, one fails, or a handover is asked for.
pub async fn pump(mut client: TcpStream, mut upstream: TcpStream, ended: [bool; 2]) -> Pumped {
    let stop = Stop {
        live: AtomicUsize::new(ended.iter().filter(|e| !**e).count()),
        parked: AtomicUsize::new(0),
        all_parked: Notify::new(),
    };
    let outcome = {
        let (mut client_read, mut client_write) = client.split();
        let (mut upstream_read, mut upstream_write) = upstream.split();
        tokio::try_join!(
            one_way(&mut client_read, &mut upstream_write, ended[0], &stop),
            one_way(&mut upstream_read, &mut client_write, ended[1], &stop),
        )
    };
    match outcome {
        Ok((true, true)) | Err(_) => Pumped::Done,
        Ok((to_upstream, to_client)) => {
            Pumped::HandOver(client, upstream, [to_upstream, to_client])
        }
    }
}

/// The two directions of one connection agree on a handover: each parks at its next clean point,
/// and they stop together only once every live one has. If the handover is called off meanwhile
/// (an update abandoned because the other direction could not finish its write), the parked one
/// goes on copying.
struct Stop {
    // Atomics only for Send: both directions are polled by one task.
    live: AtomicUsize,
    parked: AtomicUsize,
    all_parked: Notify,
}

impl Stop {
    /// The last live direction to park (or end) releases the others.
    fn settled(&self) -> bool {
        let parked = self.parked.load(Ordering::Relaxed);
        let all = parked > 0 && parked == self.live.load(Ordering::Relaxed);
        if all {
            self.all_parked.notify_waiters();
        }
        all
    }
}

enum Step {
    Read(std::io::Result<usize>),
    Park,
}

/// One direction: true once it reached end-of-file (and shut the other side's write), false
/// when stopped for a handover.
async fn one_way<R, W>(from: &mut R, to: &mut W, ended: bool, stop: &Stop) -> std::io::Result<bool>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    if ended {
        return Ok(true);
    }
    let mut handover = HANDOVER.watch();
    let mut buf = vec![0u8; BUF];
    loop {
        let step = tokio::select! {
            biased;
            _ = handover.wait_for(|asked| *asked) => Step::Park,
            read = from.read(&mut buf) => Step::Read(read),
        };
        let n = match step {
            Step::Read(read) => read?,
            Step::Park => {
                stop.parked.fetch_add(1, Ordering::Relaxed);
                if stop.settled() {
                    return Ok(false);
                }
                let released = tokio::select! {
                    () = stop.all_parked.notified() => true,
                    _ = handover.wait_for(|asked| !*asked) => false,
                };
                if released {
                    return Ok(false);
                }
                stop.parked.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
        };
        if n == 0 {
            to.shutdown().await?;
            stop.live.fetch_sub(1, Ordering::Relaxed);
            stop.settled();
            return Ok(true);
        }
        to.write_all(&buf[..n]).await?;
    }
}
