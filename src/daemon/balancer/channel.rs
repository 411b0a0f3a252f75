//! One instance's channel for one port: a SOCK_SEQPACKET socketpair whose instance end becomes
//! the program's listening fd (through the preload library), and a task that reads READY and
//! UNREADY from the daemon end: READY is reported to the supervisor (which admits the instance
//! to the rotation), UNREADY takes it out at once and redeals its queue.

use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;

use nix::errno::Errno;
use nix::sys::socket::{bind, socketpair, AddressFamily, MsgFlags, SockFlag, SockType, UnixAddr};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use super::deal::{Pool, Slot};
use crate::abi::{decode_instance_msg, recv_with_fd_flags, InstanceMsg, RECV_BUF_LEN};
use crate::daemon::events::InstanceEvent;

/// A new slot (not ready yet) for the listener at `addr`, and the end to hand to the child.
pub fn new_channel(id: u32, addr: &SocketAddr) -> Result<(Arc<Slot>, OwnedFd), String> {
    let (daemon_end, instance_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )
    .map_err(|e| format!("cannot create an instance channel: {e}"))?;
    name_instance_end(&instance_end, addr);
    // The instance end's description is shared with the program: it must start out blocking,
    // the program sets what it wants (SOCKET-PASSING.md §4). Ours stays non-blocking.
    set_blocking(&instance_end)
        .map_err(|e| format!("cannot configure an instance channel: {e}"))?;
    let held_instance_end = instance_end
        .try_clone()
        .map_err(|e| format!("cannot duplicate an instance channel: {e}"))?;
    let slot = Arc::new(Slot {
        id,
        daemon_end,
        held_instance_end,
        ready: AtomicBool::new(false),
        accepted: AtomicU64::new(0),
        gate: std::sync::Mutex::new(()),
    });
    Ok((slot, instance_end))
}

/// Binds the instance end to its abstract name (`abi::channel_name`), by which the preload
/// library knows a channel it was not told of. Best effort: without a name, only such copies
/// go unrecognised (the program's own bind and its forks do not need it).
fn name_instance_end(instance_end: &OwnedFd, addr: &SocketAddr) {
    use std::sync::atomic::Ordering;
    // Unique in the network namespace: this daemon's pid, and a count that starts from the
    // clock, so that an updated daemon (same pid) does not meet its former self's names.
    static NEXT: std::sync::LazyLock<AtomicU64> = std::sync::LazyLock::new(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        AtomicU64::new(now)
    });
    let pid = u64::from(std::process::id());
    for _ in 0..4 {
        let unique = (pid << 40) ^ NEXT.fetch_add(1, Ordering::Relaxed);
        let name = match UnixAddr::new_abstract(&crate::abi::channel_name(addr, unique)) {
            Ok(name) => name,
            Err(e) => {
                crate::dlog!("cannot name an instance channel: {e}");
                return;
            }
        };
        match bind(instance_end.as_raw_fd(), &name) {
            Ok(()) => return,
            Err(Errno::EADDRINUSE) => continue,
            Err(e) => {
                crate::dlog!("cannot name an instance channel: {e}");
                return;
            }
        }
    }
}

fn set_blocking(fd: &OwnedFd) -> nix::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL)?);
    fcntl(fd, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK))?;
    Ok(())
}

/// Watch the daemon end for READY/UNREADY until aborted.
pub fn spawn_ready_reader(
    slot: Arc<Slot>,
    pool: Arc<Pool>,
    events: UnboundedSender<InstanceEvent>,
) -> Result<JoinHandle<()>, String> {
    let watched = slot
        .daemon_end
        .try_clone()
        .map_err(|e| format!("cannot watch an instance channel: {e}"))?;
    // The processes of the instance that listen on this channel: the program, or workers of
    // its own that are new programs (uvicorn --workers). It stops accepting when the last stops.
    let mut listening = ListeningPids::default();
    spawn_message_reader(watched, move |bytes, _fd| {
        match decode_instance_msg(bytes) {
            // The supervisor admits it to the rotation (`Balancer::admit`) once every readiness
            // condition of the app holds.
            Some(InstanceMsg::Ready { pid }) => {
                listening.add(pid);
                events
                    .send(InstanceEvent::Ready { id: slot.id, pid })
                    .is_ok()
            }
            Some(InstanceMsg::Unready { pid }) => {
                if !listening.remove(pid) {
                    return true;
                }
                pool.drain(&slot);
                events
                    .send(InstanceEvent::Unready { id: slot.id, pid })
                    .is_ok()
            }
            None => true,
        }
    })
}

/// The pids that said READY on one channel and have not said UNREADY.
#[derive(Default)]
struct ListeningPids(Vec<u32>);

impl ListeningPids {
    fn add(&mut self, pid: u32) {
        if !self.0.contains(&pid) {
            self.0.push(pid);
        }
    }

    /// `pid` stopped listening: is none left? Pids that ended without a word (killed, or not
    /// reaped yet) do not count. A channel handed over by `update` starts knowing none, so
    /// there the first UNREADY ends it, as it did before workers were counted.
    fn remove(&mut self, pid: u32) -> bool {
        self.0.retain(|&p| p != pid && process_runs(p));
        self.0.is_empty()
    }
}

/// Alive and not a zombie (a worker its parent has not reaped yet accepts nothing).
fn process_runs(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(crate::daemon::process::stats::stat_fields)
        .and_then(|fields| fields.first().map(|state| state != "Z" && state != "X"))
        .unwrap_or(false)
}

/// Port discovery: read BIND requests (each with its reply socket) from an instance's
/// rendezvous socket and hand them to the supervisor, which owns the listeners. The same kind of
/// socket carries READY for `shared`/`reuseport` instances (their activation fd).
pub fn spawn_rendezvous_reader(
    daemon_end: OwnedFd,
    id: u32,
    events: UnboundedSender<InstanceEvent>,
) -> Result<JoinHandle<()>, String> {
    spawn_message_reader(daemon_end, move |bytes, fd| {
        if let Some(InstanceMsg::Ready { pid }) = decode_instance_msg(bytes) {
            return events.send(InstanceEvent::Ready { id, pid }).is_ok();
        }
        match (crate::abi::decode_bind(bytes), fd) {
            (Some(bind), Some(reply)) => events
                .send(InstanceEvent::BindRequest { id, bind, reply })
                .is_ok(),
            _ => true,
        }
    })
}

/// Read SEQPACKET messages (with the fd each may carry) from `fd` until EOF, an error, or
/// `handle` returning false (nobody listens any more).
fn spawn_message_reader(
    fd: OwnedFd,
    mut handle: impl FnMut(&[u8], Option<OwnedFd>) -> bool + Send + 'static,
) -> Result<JoinHandle<()>, String> {
    // SAFETY: the OwnedFd moves into the AsyncFd: it stays open, on the same description, for
    // exactly the AsyncFd's lifetime.
    let watched = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
        .map_err(|e| format!("cannot watch an instance socket: {e}"))?;
    Ok(tokio::spawn(async move {
        let mut buf = [0u8; RECV_BUF_LEN];
        loop {
            let Ok(mut guard) = watched.readable().await else {
                return;
            };
            loop {
                match recv_with_fd_flags(
                    watched.get_ref().as_fd(),
                    &mut buf,
                    MsgFlags::MSG_DONTWAIT,
                ) {
                    Ok((0, _)) => return,
                    Ok((n, fd)) => {
                        if !handle(&buf[..n], fd) {
                            return;
                        }
                    }
                    Err(nix::Error::EAGAIN) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(nix::Error::EINTR) => continue,
                    Err(_) => return,
                }
            }
        }
    }))
}

/// A rendezvous socketpair: (daemon end, non-blocking; instance end, blocking).
pub fn new_rendezvous() -> Result<(OwnedFd, OwnedFd), String> {
    let (daemon_end, instance_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
    )
    .map_err(|e| format!("cannot create a rendezvous socket: {e}"))?;
    set_blocking(&instance_end)
        .map_err(|e| format!("cannot configure a rendezvous socket: {e}"))?;
    Ok((daemon_end, instance_end))
}

/// The rendezvous by name (`abi::ENV_RENDEZVOUS_NAME`): a listening abstract Unix socket for
/// the processes of an instance that did not inherit its rendezvous fd. Returns the name (what
/// follows the leading NUL) and the listener.
pub fn new_named_rendezvous() -> Result<(String, OwnedFd), String> {
    use nix::sys::socket::{listen, socket, Backlog};
    let listener = socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
        None,
    )
    .map_err(|e| format!("cannot create a rendezvous listener: {e}"))?;
    for _ in 0..4 {
        let mut random = [0u8; 8];
        // SAFETY: getrandom writes at most `random.len()` bytes into it.
        unsafe { libc::getrandom(random.as_mut_ptr().cast(), random.len(), 0) };
        let name = format!(
            "rcluster-rdv-{}-{:016x}",
            std::process::id(),
            u64::from_ne_bytes(random)
        );
        let addr = UnixAddr::new_abstract(name.as_bytes())
            .map_err(|e| format!("cannot name a rendezvous listener: {e}"))?;
        match bind(listener.as_raw_fd(), &addr) {
            Ok(()) => {
                listen(&listener, Backlog::new(64).unwrap_or(Backlog::MAXCONN))
                    .map_err(|e| format!("cannot listen for rendezvous: {e}"))?;
                return Ok((name, listener));
            }
            Err(Errno::EADDRINUSE) => continue,
            Err(e) => return Err(format!("cannot name a rendezvous listener: {e}")),
        }
    }
    Err("cannot name a rendezvous listener: every name tried is taken".into())
}

/// Accept connections on an instance's named rendezvous (from processes of the same user only:
/// the name is visible to every user in /proc/net/unix) and read each like its rendezvous fd.
/// Aborting the task ends the readers of its connections too.
pub fn spawn_named_rendezvous(
    listener: OwnedFd,
    id: u32,
    events: UnboundedSender<InstanceEvent>,
) -> Result<JoinHandle<()>, String> {
    // SAFETY: the OwnedFd moves into the AsyncFd, open for exactly its lifetime.
    let watched =
        unsafe { AsyncFd::register_with_interest(listener, tokio::io::Interest::READABLE) }
            .map_err(|e| format!("cannot watch a rendezvous listener: {e}"))?;
    let me = nix::unistd::geteuid();
    Ok(tokio::spawn(async move {
        let mut readers = AbortOnDrop(Vec::new());
        loop {
            let Ok(mut guard) = watched.readable().await else {
                return;
            };
            loop {
                let accepted = nix::sys::socket::accept4(
                    watched.get_ref().as_raw_fd(),
                    SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
                );
                let conn = match accepted {
                    // SAFETY: accept4 just returned this fd; nothing else owns it.
                    Ok(fd) => unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) },
                    Err(Errno::EAGAIN) => {
                        guard.clear_ready();
                        break;
                    }
                    Err(Errno::EINTR | Errno::ECONNABORTED) => continue,
                    Err(_) => return,
                };
                let peer =
                    nix::sys::socket::getsockopt(&conn, nix::sys::socket::sockopt::PeerCredentials);
                let allowed = peer.is_ok_and(|c| c.uid() == me.as_raw() || c.uid() == 0);
                if !allowed {
                    crate::dlog!("instance id {id}: a rendezvous from another user is refused");
                    continue;
                }
                readers.0.retain(|r| !r.is_finished());
                match spawn_rendezvous_reader(conn, id, events.clone()) {
                    Ok(reader) => readers.0.push(reader),
                    Err(e) => crate::dlog!("instance id {id}: {e}"),
                }
            }
        }
    }))
}

/// Tasks ended with their owner.
struct AbortOnDrop(Vec<JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}
