//! Copying a proxied connection both ways, in a form `rcluster update` can hand over: each
//! direction stops only between two copies (a read's bytes are always written out first), so at
//! a handover nothing is held in the daemon and the two sockets, with which sides have ended,
//! are all there is to carry across the exec.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

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

fn handover_flag() -> &'static watch::Sender<bool> {
    static FLAG: OnceLock<watch::Sender<bool>> = OnceLock::new();
    FLAG.get_or_init(|| watch::channel(false).0)
}

static HANDED: Mutex<Vec<HandedConn>> = Mutex::new(Vec::new());

/// Ask every proxied connection to hand itself over at its next clean point, and every proxy
/// accept loop to leave new connections in the kernel's queue.
pub fn begin_handover() {
    handover_flag().send_replace(true);
}

/// The update did not happen: accept loops go on (the caller resumes the handed connections).
pub fn end_handover() {
    handover_flag().send_replace(false);
}

pub fn take_handed() -> Vec<HandedConn> {
    std::mem::take(&mut *HANDED.lock().unwrap_or_else(|p| p.into_inner()))
}

pub fn hand_over(conn: HandedConn) {
    HANDED.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
}

pub fn handover_watch() -> watch::Receiver<bool> {
    handover_flag().subscribe()
}

/// How a pump ended.
pub enum Pumped {
    /// Both directions ended, or one failed: the connection is over.
    Done,
    /// A handover was asked for: the sockets, and which directions had ended.
    HandOver(TcpStream, TcpStream, [bool; 2]),
}

/// Copy client ↔ upstream until both directions end, one fails, or a handover is asked for.
pub async fn pump(mut client: TcpStream, mut upstream: TcpStream, ended: [bool; 2]) -> Pumped {
    let outcome = {
        let (mut client_read, mut client_write) = client.split();
        let (mut upstream_read, mut upstream_write) = upstream.split();
        tokio::try_join!(
            one_way(&mut client_read, &mut upstream_write, ended[0]),
            one_way(&mut upstream_read, &mut client_write, ended[1]),
        )
    };
    match outcome {
        Ok((true, true)) | Err(_) => Pumped::Done,
        Ok((to_upstream, to_client)) => {
            Pumped::HandOver(client, upstream, [to_upstream, to_client])
        }
    }
}

/// One direction: true once it reached end-of-file (and shut the other side's write), false
/// when stopped for a handover.
async fn one_way<R, W>(from: &mut R, to: &mut W, ended: bool) -> std::io::Result<bool>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    if ended {
        return Ok(true);
    }
    let mut handover = handover_watch();
    let mut buf = vec![0u8; BUF];
    loop {
        let n = tokio::select! {
            biased;
            _ = handover.wait_for(|asked| *asked) => return Ok(false),
            read = from.read(&mut buf) => read?,
        };
        if n == 0 {
            to.shutdown().await?;
            return Ok(true);
        }
        to.write_all(&buf[..n]).await?;
    }
}
