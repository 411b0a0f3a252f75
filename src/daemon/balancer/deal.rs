//! Round-robin dealing (SOCKET-PASSING.md §2): a plain OS thread blocks in accept4 on the
//! daemon's listener and sends each connection, with its peer address, over the next READY
//! instance's channel. A full queue (EAGAIN) moves on to the next instance; when none can take
//! it the connection is parked, in arrival order, and dealt as soon as a queue has room or an
//! instance becomes READY; an instance that dies or says UNREADY has its queue drained and
//! redealt. Nothing is dropped while any instance is up.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::socket::MsgFlags;

use crate::abi::{
    encode_conn, recv_with_fd_flags, send_with_fd, CONN_LEN, KIND_CONN, RECV_BUF_LEN,
};

/// Connections held while no instance can take one (beyond this, the oldest waits in the kernel's
/// listen queue instead: the dealer stops accepting until one is dealt).
const MAX_PARKED: usize = 4096;

/// One instance's end of the dealing: where connections go, and its counters.
#[derive(Debug)]
pub struct Slot {
    pub id: u32,
    /// Ours: connections are sent on it; READY/UNREADY arrive on it.
    pub daemon_end: OwnedFd,
    /// A duplicate of the instance's end, so a dead instance's queue survives to be redealt.
    pub held_instance_end: OwnedFd,
    pub ready: AtomicBool,
    pub accepted: AtomicU64,
    /// Held across "is it ready? send" by the dealer and across "not ready" by a drain, so no
    /// connection can be sent after a drain has begun (it would be stranded in a dead queue).
    pub gate: Mutex<()>,
}

impl Slot {
    /// Send `fd` to this instance whether or not it is in the rotation: a readiness probe's
    /// connection, which must reach this instance and no other.
    pub fn hand_over(&self, fd: OwnedFd, msg: &[u8; CONN_LEN]) -> nix::Result<()> {
        let _gate = lock(&self.gate);
        let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
        send_with_fd(self.daemon_end.as_fd(), msg, fd.as_fd(), flags).map(|_| ())
    }

    /// Connections waiting in this instance's queue (SIOCINQ counts bytes; one message each).
    pub fn queued(&self) -> u64 {
        crate::daemon::process::fds::socket_queue(&self.held_instance_end, false)
            .map_or(0, |bytes| (bytes / CONN_LEN) as u64)
    }
}

/// A parked connection by fd number, and its message.
pub type ParkedRaw = (i32, [u8; CONN_LEN]);

struct Parked {
    fd: OwnedFd,
    msg: [u8; CONN_LEN],
}

/// The instances of one port, and the connections waiting for one of them.
#[derive(Default)]
pub struct Pool {
    slots: Mutex<Arc<Vec<Arc<Slot>>>>,
    cursor: AtomicUsize,
    parked: Mutex<VecDeque<Parked>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding these locks cannot leave them inconsistent (plain pushes and pops).
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Pool {
    pub fn add(&self, slot: Arc<Slot>) {
        let mut slots = lock(&self.slots);
        let mut next: Vec<Arc<Slot>> = slots.iter().cloned().collect();
        next.push(slot);
        next.sort_by_key(|s| s.id);
        *slots = Arc::new(next);
    }

    pub fn remove(&self, id: u32) -> Option<Arc<Slot>> {
        let mut slots = lock(&self.slots);
        let found = slots.iter().find(|s| s.id == id).cloned()?;
        *slots = Arc::new(slots.iter().filter(|s| s.id != id).cloned().collect());
        Some(found)
    }

    pub fn slot(&self, id: u32) -> Option<Arc<Slot>> {
        lock(&self.slots).iter().find(|s| s.id == id).cloned()
    }

    /// Hand `fd` to the next ready instance, or park it behind those already waiting.
    pub fn deal(&self, fd: OwnedFd, msg: [u8; CONN_LEN]) {
        let mut parked = lock(&self.parked);
        if !parked.is_empty() {
            parked.push_back(Parked { fd, msg });
            drop(parked);
            self.deal_parked();
            return;
        }
        drop(parked);
        if let Err(fd) = self.try_deal(fd, &msg) {
            lock(&self.parked).push_back(Parked { fd, msg });
        }
    }

    fn parked_count(&self) -> usize {
        lock(&self.parked).len()
    }

    /// While connections are parked (every queue full): wait until a ready instance's queue
    /// has room (its channel turns writable) or, below MAX_PARKED, the listener has a
    /// connection; then deal what waits. True when the listener has a connection (or is shut).
    fn wait_for_room_or_listener(&self, listener: &OwnedFd, watch_listener: bool) -> bool {
        let slots = lock(&self.slots).clone();
        let mut fds = vec![libc::pollfd {
            fd: if watch_listener {
                listener.as_raw_fd()
            } else {
                -1
            },
            events: libc::POLLIN,
            revents: 0,
        }];
        fds.extend(
            slots
                .iter()
                .filter(|s| s.ready.load(Ordering::Acquire))
                .map(|s| libc::pollfd {
                    fd: s.daemon_end.as_raw_fd(),
                    events: libc::POLLOUT,
                    revents: 0,
                }),
        );
        // The timeout covers what poll cannot see: an instance that becomes ready is dealt to
        // by `admit`, and the slot list may have changed.
        // SAFETY: `fds` is a valid array of fds.len() pollfds (a negative fd is ignored).
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        self.deal_parked();
        // Any event sends the dealer to accept: a shut listener then ends it (EINVAL).
        fds[0].revents != 0
    }

    fn try_deal(&self, fd: OwnedFd, msg: &[u8; CONN_LEN]) -> Result<(), OwnedFd> {
        let slots = lock(&self.slots).clone();
        let n = slots.len();
        if n == 0 {
            return Err(fd);
        }
        let start = self.cursor.load(Ordering::Relaxed);
        for k in 0..n {
            let at = (start + k) % n;
            let slot = &slots[at];
            let _gate = lock(&slot.gate);
            if !slot.ready.load(Ordering::Acquire) {
                continue;
            }
            let flags = MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL;
            match send_with_fd(slot.daemon_end.as_fd(), msg, fd.as_fd(), flags) {
                Ok(_) => {
                    slot.accepted.fetch_add(1, Ordering::Relaxed);
                    self.cursor.store(at + 1, Ordering::Relaxed);
                    return Ok(());
                }
                // Its queue is full: the next instance takes it.
                Err(nix::Error::EAGAIN) => continue,
                Err(e) => {
                    crate::dlog!("instance id {}: dealing failed ({e}); skipping it", slot.id);
                    slot.ready.store(false, Ordering::Release);
                }
            }
        }
        Err(fd)
    }

    /// Deal what waits, in arrival order, until nothing can take more.
    pub fn deal_parked(&self) {
        loop {
            let Some(next) = lock(&self.parked).pop_front() else {
                return;
            };
            if let Err(fd) = self.try_deal(next.fd, &next.msg) {
                lock(&self.parked).push_front(Parked { fd, msg: next.msg });
                return;
            }
        }
    }

    /// For `rcluster update`, with the dealers paused: the slots, the next slot's position and
    /// the connections parked (their fds stay open here until the exec).
    pub fn export(&self) -> (Vec<Arc<Slot>>, usize, Vec<ParkedRaw>) {
        let slots = lock(&self.slots).iter().cloned().collect();
        let parked = lock(&self.parked)
            .iter()
            .map(|p| (p.fd.as_raw_fd(), p.msg))
            .collect();
        (slots, self.cursor.load(Ordering::Relaxed), parked)
    }

    /// A pool as a previous daemon image left it.
    pub fn restore(
        slots: Vec<Arc<Slot>>,
        cursor: usize,
        parked: Vec<(OwnedFd, [u8; CONN_LEN])>,
    ) -> Pool {
        Pool {
            slots: Mutex::new(Arc::new(slots)),
            cursor: AtomicUsize::new(cursor),
            parked: Mutex::new(
                parked
                    .into_iter()
                    .map(|(fd, msg)| Parked { fd, msg })
                    .collect(),
            ),
        }
    }

    /// Take back every connection queued to `slot` (dead or no longer accepting) and deal it
    /// to the others.
    pub fn drain(&self, slot: &Slot) {
        {
            let _gate = lock(&slot.gate);
            slot.ready.store(false, Ordering::Release);
        }
        let mut buf = [0u8; RECV_BUF_LEN];
        let mut redealt = 0;
        loop {
            match recv_with_fd_flags(
                slot.held_instance_end.as_fd(),
                &mut buf,
                MsgFlags::MSG_DONTWAIT,
            ) {
                Ok((n, Some(fd))) if n == CONN_LEN && buf[0] == KIND_CONN => {
                    let mut msg = [0u8; CONN_LEN];
                    msg.copy_from_slice(&buf[..CONN_LEN]);
                    self.deal(fd, msg);
                    redealt += 1;
                }
                Ok((0, None)) => break,
                Ok(_) => continue,
                Err(nix::Error::EINTR) => continue,
                Err(_) => break,
            }
        }
        if redealt > 0 {
            crate::dlog!(
                "instance id {}: {redealt} queued connection(s) redealt",
                slot.id
            );
        }
    }
}

/// Accept on `listener` and deal until the listener is shut down (accept then fails EINVAL).
pub fn spawn_dealer(listener: Arc<OwnedFd>, pool: Arc<Pool>, label: String) -> std::io::Result<()> {
    thread::Builder::new()
        .name(format!("deal {label}"))
        .stack_size(64 * 1024)
        .spawn(move || {
            let _registered = Registered::new();
            deal_loop(&listener, &pool, &label);
        })
        .map(|_| ())
}

fn deal_loop(listener: &OwnedFd, pool: &Pool, label: &str) {
    loop {
        park_while_paused();
        // With connections parked, a blocking accept would leave them waiting for the next
        // READY: watch the queues too. Beyond MAX_PARKED, new ones wait in the kernel.
        let parked = pool.parked_count();
        if parked > 0 && !pool.wait_for_room_or_listener(listener, parked < MAX_PARKED) {
            continue;
        }
        match accept_with_peer(listener) {
            Ok((fd, peer)) => pool.deal(fd, encode_conn(&peer)),
            Err(nix::Error::EINVAL) | Err(nix::Error::EBADF) => return,
            Err(nix::Error::EINTR) | Err(nix::Error::ECONNABORTED) => {}
            Err(e) => {
                crate::dlog!("{label}: accept failed: {e}");
                // EMFILE/ENFILE/ENOBUFS: let resources free up instead of spinning.
                thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Pausing every dealer between two connections, for `rcluster update`: a dealer caught
/// between accept and send would carry its connection into the exec. One blocked in accept4 is
/// woken by a signal whose handler does nothing (installed without SA_RESTART, so accept4 and
/// poll fail EINTR) and parks at the top of its loop.
struct Dealers {
    threads: Vec<libc::pthread_t>,
    parked: usize,
}

static DEALERS: Mutex<Dealers> = Mutex::new(Dealers {
    threads: Vec::new(),
    parked: 0,
});
static DEALERS_CHANGED: Condvar = Condvar::new();
static PAUSED: AtomicBool = AtomicBool::new(false);

/// A dealer thread, listed while it runs (so that it is only ever signalled while alive).
struct Registered(libc::pthread_t);

impl Registered {
    fn new() -> Registered {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        lock(&DEALERS).threads.push(me);
        Registered(me)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut dealers = lock(&DEALERS);
        dealers.threads.retain(|t| *t != self.0);
        DEALERS_CHANGED.notify_all();
    }
}

fn park_while_paused() {
    if !PAUSED.load(Ordering::Acquire) {
        return;
    }
    let mut dealers = lock(&DEALERS);
    dealers.parked += 1;
    DEALERS_CHANGED.notify_all();
    while PAUSED.load(Ordering::Acquire) {
        dealers = DEALERS_CHANGED
            .wait(dealers)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
    dealers.parked -= 1;
}

extern "C" fn wake_dealer(_: libc::c_int) {}

fn wake_signal() -> libc::c_int {
    libc::SIGRTMIN() + 2
}

fn install_wake_handler() -> Result<(), String> {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            // SAFETY: a zeroed sigaction is valid; the handler is async-signal-safe (empty).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = wake_dealer as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut action.sa_mask);
                action.sa_flags = 0;
                if libc::sigaction(wake_signal(), &action, std::ptr::null_mut()) != 0 {
                    return Err(format!(
                        "cannot install the dealers' wake-up handler: {}",
                        std::io::Error::last_os_error()
                    ));
                }
            }
            Ok(())
        })
        .clone()
}

/// Stop every dealer between two connections (up to `limit`); they stay parked until
/// `resume_dealers` (or the exec).
pub fn pause_dealers(limit: Duration) -> Result<(), String> {
    install_wake_handler()?;
    PAUSED.store(true, Ordering::Release);
    let deadline = Instant::now() + limit;
    let mut dealers = lock(&DEALERS);
    while dealers.parked < dealers.threads.len() {
        if Instant::now() > deadline {
            drop(dealers);
            resume_dealers();
            return Err("a connection dealer did not pause in time".into());
        }
        for thread in &dealers.threads {
            // SAFETY: listed threads are alive: each unlists itself, under this lock, before
            // it ends.
            unsafe { libc::pthread_kill(*thread, wake_signal()) };
        }
        dealers = DEALERS_CHANGED
            .wait_timeout(dealers, Duration::from_millis(2))
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .0;
    }
    Ok(())
}

pub fn resume_dealers() {
    PAUSED.store(false, Ordering::Release);
    let _dealers = lock(&DEALERS);
    DEALERS_CHANGED.notify_all();
}

/// Blocking accept4 that also returns the peer's address (nix's accept4 does not).
fn accept_with_peer(listener: &OwnedFd) -> nix::Result<(OwnedFd, SocketAddr)> {
    // SAFETY: zeroed sockaddr_storage is a valid value for the kernel to fill.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage and len are valid for writes of the sizes given; the fd is borrowed.
    let raw = unsafe {
        libc::accept4(
            listener.as_raw_fd(),
            (&mut storage as *mut libc::sockaddr_storage).cast(),
            &mut len,
            libc::SOCK_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: accept4 returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let peer = sockaddr_to_std(&storage).ok_or(nix::Error::EAFNOSUPPORT)?;
    Ok((fd, peer))
}

fn sockaddr_to_std(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says this storage holds a sockaddr_in.
            let v4: &libc::sockaddr_in =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr));
            Some(SocketAddr::from((ip, u16::from_be(v4.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says this storage holds a sockaddr_in6.
            let v6: &libc::sockaddr_in6 =
                unsafe { &*(storage as *const libc::sockaddr_storage).cast() };
            let ip = std::net::Ipv6Addr::from(v6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(v6.sin6_port),
                v6.sin6_flowinfo,
                v6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}
