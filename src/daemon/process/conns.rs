//! The TCP connections of a draining instance's process group. A graceful stop of a cluster
//! instance waits (up to kill_timeout) until the program has closed every connection it was
//! dealt and no other socket of the group is busy, then signals: a signal while an answer is
//! half written cuts it.
//!
//! Keep-alive connections never end by themselves, so the drain ends them as nginx's graceful
//! shutdown does, between requests: a served connection (one answer out) whose last request
//! has been answered gets its read side shut down. The program's next read there returns
//! end-of-file once nothing is queued, so it finishes the answer it may still be writing (a
//! request can arrive within the same clock tick as the previous answer, which looks idle),
//! then closes; the client sees its idle connection closed and sends its next request on a new
//! one, which a live instance gets. Only connections to the app's own ports are touched or
//! waited for: a program's outgoing ones (a database pool) stay open for as long as it runs.
//!
//! Connections to the app's Unix-socket addresses are waited for too, but never ended: a Unix
//! socket keeps no timestamps, so whether the program has read a whole request cannot be told.
//! One with bytes queued either way is busy; an idle keep-alive one holds the stop until the
//! program closes it or kill_timeout.
//!
//! Each socket is copied (pidfd_getfd; instances are our children, so ptrace rules allow it)
//! and its TCP_INFO read: an ESTABLISHED one is busy when no request has arrived yet, or data
//! arrived more recently than the last answer left. A socket closed (or a process gone) between
//! the listing and the copy is nothing to wait for. One that cannot be copied at all (a kernel
//! before 5.6, a refusal) counts as busy, so the stop waits out kill_timeout: reading
//! /proc/net/tcp instead took seconds under load (it lists every TCP socket on the machine,
//! TIME_WAIT ones included) and the supervisor would wait on it.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

/// The addresses an instance serves the app on: its connections there are the ones drained.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Served {
    /// TCP ports: the app's own, or the instance's private one (proxy).
    pub ports: Vec<u16>,
    /// Unix-socket paths, as bound.
    pub unix_paths: Vec<PathBuf>,
}

/// What holds a draining instance's stop up: the connections it was dealt (established ones
/// to the app's ports; every socket that cannot be inspected counts too).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drain {
    /// Still open in the program.
    pub open: usize,
    /// Of those, the ones with a request not yet answered.
    pub busy: usize,
}

impl Drain {
    pub fn is_done(&self) -> bool {
        self.open == 0
    }
}

/// Look at group `pgid`'s connections, ending idle served TCP ones to `served` (see above);
/// None when /proc cannot tell.
pub fn drain(pgid: i32, served: &Served) -> Option<Drain> {
    let mut drain = Drain::default();
    for (pid, fd) in socket_fds(pgid)? {
        match inspect(pid, fd, served) {
            // The program's own outgoing connections (a database pool) never end by themselves
            // and serve only requests that hold an inbound one open: not waited for.
            Inspected::NotEstablished | Inspected::Established { inbound: false, .. } => {}
            Inspected::Established {
                inbound: true,
                busy,
            } => {
                drain.open += 1;
                drain.busy += usize::from(busy);
            }
            Inspected::Unknown => {
                drain.open += 1;
                drain.busy += 1;
            }
        }
    }
    Some(drain)
}

/// The prefix of the kernel's `struct tcp_info` (linux/tcp.h) up to the data segment counts;
/// libc's copy stops before them. The kernel fills what it has and reports the length.
#[repr(C)]
#[derive(Default)]
struct TcpInfo {
    head: [u8; 8],
    /// rto ... fackets (9), then last_data_sent, last_ack_sent, last_data_recv, last_ack_recv,
    /// then pmtu ... total_retrans (11).
    words: [u32; 24],
    rates_and_bytes: [u64; 4],
    segs_out: u32,
    segs_in: u32,
    notsent_bytes: u32,
    min_rtt: u32,
    data_segs_in: u32,
    data_segs_out: u32,
}

const LAST_DATA_SENT: usize = 9;
const LAST_DATA_RECV: usize = 11;

enum Inspected {
    /// Not a TCP socket, or not ESTABLISHED.
    NotEstablished,
    Established {
        busy: bool,
        /// To one of the app's ports (a connection it was dealt).
        inbound: bool,
    },
    /// The socket could not be copied (no pidfd_getfd, or not allowed).
    Unknown,
}

const TCP_ESTABLISHED: u8 = 1;

fn inspect(pid: i32, fd: i32, served: &Served) -> Inspected {
    // SAFETY: plain syscalls on integers; the fds they return are owned and closed below.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if pidfd < 0 {
        return gone_or_unknown();
    }
    // SAFETY: as above.
    let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) } as i32;
    // Read errno before close can change it.
    let failed = (copy < 0).then(gone_or_unknown);
    // SAFETY: pidfd is ours.
    unsafe { libc::close(pidfd) };
    if let Some(failed) = failed {
        return failed;
    }
    // SAFETY: `copy` is a fd pidfd_getfd just gave us; OwnedFd closes it.
    let copy = unsafe { OwnedFd::from_raw_fd(copy) };
    let Some(info) = tcp_info(&copy) else {
        return inspect_unix(&copy, served);
    };
    if info.head[0] != TCP_ESTABLISHED {
        return Inspected::NotEstablished;
    }
    let inbound = local_port(&copy).is_some_and(|port| served.ports.contains(&port));
    let Some(answered_last) = answered_last(&info) else {
        // An old kernel without the segment counts: assume it is busy.
        return Inspected::Established {
            busy: true,
            inbound,
        };
    };
    if inbound && answered_last {
        // The shutdown acts on the socket the program holds, not only on our copy.
        let _ = nix::sys::socket::shutdown(copy.as_raw_fd(), nix::sys::socket::Shutdown::Read);
    }
    Inspected::Established {
        busy: !answered_last,
        inbound,
    }
}

/// A non-TCP socket: a connection accepted on one of the app's Unix-socket addresses (it
/// carries the listener's path as its own) counts, busy while bytes wait either way; anything
/// else (a channel, the listener itself, an outgoing connection) is nothing to wait for.
fn inspect_unix(socket: &OwnedFd, served: &Served) -> Inspected {
    use nix::sys::socket::{getsockname, getsockopt, sockopt, SockaddrStorage};
    if served.unix_paths.is_empty() {
        return Inspected::NotEstablished;
    }
    let Ok(addr) = getsockname::<SockaddrStorage>(socket.as_raw_fd()) else {
        return Inspected::NotEstablished;
    };
    let Some(path) = addr.as_unix_addr().and_then(|unix| unix.path()) else {
        return Inspected::NotEstablished;
    };
    let accepted = served.unix_paths.iter().any(|p| p == path)
        && getsockopt(socket, sockopt::AcceptConn).is_ok_and(|listening| !listening)
        && getsockopt(socket, sockopt::SockType)
            .is_ok_and(|t| t == nix::sys::socket::SockType::Stream);
    if !accepted {
        return Inspected::NotEstablished;
    }
    // A queue that cannot be read counts as busy.
    let queued = |outgoing| super::fds::socket_queue(socket, outgoing).is_none_or(|n| n > 0);
    Inspected::Established {
        busy: queued(false) || queued(true),
        inbound: true,
    }
}

fn tcp_info(socket: &OwnedFd) -> Option<TcpInfo> {
    let mut info = TcpInfo::default();
    let mut len = std::mem::size_of::<TcpInfo>() as libc::socklen_t;
    // SAFETY: `info` is valid for `len` bytes; the fd is borrowed for the call.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut TcpInfo).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    if len < std::mem::size_of::<TcpInfo>() as libc::socklen_t {
        // Mark the counts missing: the kernel did not fill them.
        info.data_segs_in = u32::MAX;
    }
    Some(info)
}

/// Whether a request arrived and an answer left no earlier than the last data received; None
/// when the kernel does not report the segment counts.
fn answered_last(info: &TcpInfo) -> Option<bool> {
    if info.data_segs_in == u32::MAX {
        return None;
    }
    let since_sent = info.words[LAST_DATA_SENT];
    let since_recv = info.words[LAST_DATA_RECV];
    Some(info.data_segs_in > 0 && info.data_segs_out > 0 && since_recv >= since_sent)
}

fn local_port(socket: &OwnedFd) -> Option<u16> {
    use nix::sys::socket::{getsockname, SockaddrStorage};
    let addr: SockaddrStorage = getsockname(socket.as_raw_fd()).ok()?;
    addr.as_sockaddr_in()
        .map(|v4| v4.port())
        .or_else(|| addr.as_sockaddr_in6().map(|v6| v6.port()))
}

/// After a failed pidfd_open/pidfd_getfd: the process or the fd went away meanwhile (nothing to
/// wait for), or the socket cannot be looked at.
fn gone_or_unknown() -> Inspected {
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) | Some(libc::EBADF) => Inspected::NotEstablished,
        _ => Inspected::Unknown,
    }
}

/// The addresses of the TCP sockets group `pgid` listens on itself (not the daemon's channels,
/// which are Unix sockets): a program of a cluster app that the preload did not reach binds
/// the app's port on its own, outside the shared one. Empty when /proc cannot tell.
pub fn listening_tcp(pgid: i32) -> Vec<std::net::SocketAddr> {
    use nix::sys::socket::{getsockname, getsockopt, sockopt, SockaddrStorage};
    let mut found = Vec::new();
    for (pid, fd) in socket_fds(pgid).unwrap_or_default() {
        // SAFETY: plain syscalls on integers; the fds they return are owned and closed here.
        let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
        if pidfd < 0 {
            continue;
        }
        // SAFETY: as above.
        let copy = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd, fd, 0) } as i32;
        // SAFETY: pidfd is ours.
        unsafe { libc::close(pidfd) };
        if copy < 0 {
            continue;
        }
        // SAFETY: `copy` is a fd pidfd_getfd just gave us; OwnedFd closes it.
        let copy = unsafe { OwnedFd::from_raw_fd(copy) };
        if !getsockopt(&copy, sockopt::AcceptConn).unwrap_or(false) || tcp_info(&copy).is_none() {
            continue;
        }
        let Ok(addr) = getsockname::<SockaddrStorage>(copy.as_raw_fd()) else {
            continue;
        };
        let addr = match (addr.as_sockaddr_in(), addr.as_sockaddr_in6()) {
            (Some(v4), _) => std::net::SocketAddr::from((v4.ip(), v4.port())),
            (_, Some(v6)) => std::net::SocketAddr::from((v6.ip(), v6.port())),
            _ => continue,
        };
        if !found.contains(&addr) {
            found.push(addr);
        }
    }
    found
}

/// (pid, fd) of every socket fd in the group.
fn socket_fds(pgid: i32) -> Option<Vec<(i32, i32)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        if process_group(pid) != Some(pgid) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Some(num) = fd.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
                continue;
            };
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            if target.to_string_lossy().starts_with("socket:[") {
                out.push((pid, num));
            }
        }
    }
    Some(out)
}

fn process_group(pid: i32) -> Option<i32> {
    // state(0) ppid(1) pgrp(2)
    super::stats::stat_fields(pid)?.get(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::unix::net::{UnixListener, UnixStream};

    fn connected() -> (TcpListener, TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        (listener, client, server)
    }

    fn own_group() -> i32 {
        nix::unistd::getpgrp().as_raw()
    }

    fn tcp_port(port: u16) -> Served {
        Served {
            ports: vec![port],
            ..Served::default()
        }
    }

    /// Removes a test's directory when the test ends.
    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A Unix listener at a fresh path, a client connected to it and the accepted end.
    fn unix_connected(name: &str) -> (Scratch, Served, UnixStream, UnixStream) {
        let dir =
            std::env::temp_dir().join(format!("rcluster-conns-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let scratch = Scratch(dir);
        let path = scratch.0.join("app.sock");
        let listener = UnixListener::bind(&path).expect("bind");
        let client = UnixStream::connect(&path).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let served = Served {
            unix_paths: vec![path],
            ..Served::default()
        };
        // The listener stays open in the process, as a program's would.
        std::mem::forget(listener);
        (scratch, served, client, server)
    }

    #[test]
    fn a_socket_closed_before_it_is_looked_at_is_not_waited_for() {
        // No such fd (closed between the listing and the copy): EBADF, nothing to wait for.
        let me = std::process::id() as i32;
        assert!(matches!(
            inspect(me, 1_000_000, &Served::default()),
            Inspected::NotEstablished
        ));
    }

    #[test]
    fn a_connection_with_no_request_yet_is_busy_and_left_open() {
        let (listener, client, mut server) = connected();
        let port = listener.local_addr().expect("addr").port();
        // Both ends belong to this test's process group.
        let drain = drain(own_group(), &tcp_port(port)).expect("readable /proc");
        assert!(drain.busy >= 1 && drain.open >= 1, "{drain:?}");
        // Not ended: the request it waits for is still read.
        (&client).write_all(b"request").expect("write");
        let mut buf = [0u8; 7];
        server.read_exact(&mut buf).expect("the request arrives");
    }

    #[test]
    fn an_answered_keep_alive_connection_is_ended_between_requests() {
        let (listener, mut client, mut server) = connected();
        let port = listener.local_addr().expect("addr").port();
        let mut buf = [0u8; 8];
        client.write_all(b"request1").expect("write");
        server.read_exact(&mut buf).expect("request");
        server.write_all(b"answer01").expect("answer");
        client.read_exact(&mut buf).expect("answer");

        let drain = drain(own_group(), &tcp_port(port)).expect("readable /proc");
        assert!(drain.open >= 1, "{drain:?}");
        // The program's next read sees the end (no wait: a timeout would be an error).
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        assert_eq!(server.read(&mut buf).expect("read"), 0);
        // The client's own end (not to an app port) is untouched: it still reads what is sent.
        server.write_all(b"late").expect("write");
        client.read_exact(&mut buf[..4]).expect("client reads on");
    }

    #[test]
    fn the_programs_own_outgoing_connections_are_not_waited_for() {
        // A connection this process made to a service (its end's local port is not an app
        // port), idle after an exchange, as a database pool's would be.
        let (_service, client, mut service_end) = connected();
        let app = TcpListener::bind("127.0.0.1:0").expect("bind");
        let app_port = app.local_addr().expect("addr").port();
        (&client).write_all(b"query").expect("query");
        let mut buf = [0u8; 5];
        service_end.read_exact(&mut buf).expect("query");
        service_end.write_all(b"rows!").expect("rows");
        (&client).read_exact(&mut buf).expect("rows");
        // No connection to the app's port: nothing to wait for, whatever else is open.
        assert_eq!(
            drain(own_group(), &tcp_port(app_port)).expect("readable /proc"),
            Drain::default()
        );
    }

    #[test]
    fn an_idle_unix_socket_connection_is_waited_for_and_left_open() {
        let (_dir, served, client, mut server) = unix_connected("idle");
        // The accepted end counts (not the listener, not the client's unnamed end), idle.
        assert_eq!(
            drain(own_group(), &served).expect("readable /proc"),
            Drain { open: 1, busy: 0 }
        );
        // Not ended: whether a request was half read cannot be told on a Unix socket.
        (&client).write_all(b"next").expect("write");
        let mut buf = [0u8; 4];
        server
            .read_exact(&mut buf)
            .expect("the next request arrives");
    }

    #[test]
    fn a_unix_socket_connection_with_bytes_waiting_is_busy() {
        let (_dir, served, client, server) = unix_connected("busy");
        (&client).write_all(b"request").expect("write");
        assert_eq!(
            drain(own_group(), &served).expect("readable /proc"),
            Drain { open: 1, busy: 1 },
            "a request not read yet"
        );
        let mut buf = [0u8; 7];
        (&server).read_exact(&mut buf).expect("read");
        (&server).write_all(b"answer").expect("answer");
        assert_eq!(
            drain(own_group(), &served).expect("readable /proc"),
            Drain { open: 1, busy: 1 },
            "an answer the client has not read yet"
        );
        (&client).read_exact(&mut buf[..6]).expect("read");
        assert_eq!(
            drain(own_group(), &served).expect("readable /proc"),
            Drain { open: 1, busy: 0 }
        );
    }
}
