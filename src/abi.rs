//! The daemon's side of the ABI it shares with the preload library (`preload/rcluster_preload.c`).
//!
//! An instance in round-robin mode runs with `LD_PRELOAD=<the library>` and:
//! - [`ENV_CHANNELS`] = `PORT=FD[,PORT=FD...]` ([`format_channels`]): the program's `bind()` of a
//!   TCP socket to PORT is redirected to the Unix `SOCK_SEQPACKET` channel at FD, which the child
//!   inherits WITHOUT close-on-exec (wrapper chains such as `sh -c 'exec prog'` pass it on).
//! - [`ENV_RENDEZVOUS_FD`] = `N` (optional): port discovery for programs started without a
//!   declared port. A TCP bind to a non-zero port that is not in the channels and not in
//!   [`ENV_PRIVATE_PORTS`] sends a [`KIND_BIND`] request on fd N, carrying a fresh reply socket.
//!   The daemon answers on that socket with [`encode_reply`]: BOUND (plus a channel fd, sent
//!   with [`send_with_fd`]), REFUSE (errno) or PASS (the program binds for real).
//! - [`ENV_PRIVATE_PORTS`] = `P1,P2` (optional): ports that are never shared.
//! - [`ENV_RENDEZVOUS_NAME`] = `NAME` (optional): the same rendezvous, reached by connecting a
//!   `SOCK_SEQPACKET` socket to the abstract Unix address `\0NAME`. A process that did not inherit
//!   fd N (a wrapper such as npm, whose Node marks inherited fds close-on-exec, or one that closes
//!   every fd it does not know) still reaches the daemon this way; the daemon checks the peer's uid.
//!
//! A fork-mode instance (no shared port) runs with the library and a rendezvous only: the
//! daemon answers a BIND with ADOPT and a real listening TCP socket it created with
//! `SO_REUSEPORT` for that address and holds (`daemon::balancer::held`). The program accepts on
//! it directly, and the daemon keeps it open across the instance's restarts and reloads; the
//! library says READY on the rendezvous when the program listens on it.
//!
//! An instance in `shared` or `reuseport` mode inherits real listening sockets (LISTEN_FDS) and
//! runs with the library and [`ENV_ACTIVATION_FD`] = `N`: the first time the program touches one
//! of its LISTEN_FDS sockets (listen, accept, getsockname, getsockopt...), the library sends
//! READY on fd N, the instance's report socket (the same kind of socket as a rendezvous fd).
//!
//! Messages are fixed-size and native-endian:
//!
//! | message | direction, socket | bytes |
//! |---|---|---|
//! | CONN (1) | daemon → instance, channel | 32: kind, fdflags ([`FDFLAG_NONBLOCK`]), peer sockaddr length (≤ 28), 0, peer sockaddr zero padded; `SCM_RIGHTS` with exactly one fd |
//! | READY (2) / UNREADY (3) | instance → daemon, channel (READY also on the activation fd) | 8: kind, 0, 0, 0, pid as u32 |
//! | BIND (4) | instance → daemon, rendezvous fd | 32: kind, 0, sockaddr length (16 or 28), 0, sockaddr; `SCM_RIGHTS` with the reply socket |
//! | BIND (4) flags | byte 1 | [`BIND_V6ONLY`]: the program's IPv6 socket has `IPV6_V6ONLY` set |
//! | BOUND (5) / REFUSE (6) / PASS (7) / ADOPT (8) | daemon → instance, reply socket | 8: kind, 0, 0, 0, errno as u32 (REFUSE); BOUND carries the channel fd, ADOPT a listening TCP socket |
//! | READY (2) | instance → daemon, rendezvous | 8, as on a channel: the program listens on an adopted socket |
//!
//! Socket addresses are laid out exactly as the kernel's `sockaddr_in`/`sockaddr_in6` (family
//! in native order, port and IPv4 address in network order; `sin6_flowinfo` and
//! `sin6_scope_id` as std and the kernel hold them). Every decoder returns `None` for a message
//! of the wrong size or kind; nothing here panics on input.
//!
//! Daemon rules that follow from the ABI (see `shared/design/SOCKET-PASSING.md` §2): never send a
//! CONN without an fd (several processes of an instance may read one channel), never change
//! `O_NONBLOCK` on the instance end (it is shared with the instance: use `MSG_DONTWAIT`, as in
//! `recv_with_fd_flags(.., MsgFlags::MSG_DONTWAIT)` when draining it).

use std::io::{IoSlice, IoSliceMut};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::sys::socket::{self, ControlMessage, ControlMessageOwned, MsgFlags};

/// `PORT=FD[,PORT=FD...]`: managed ports and the channel fd of each.
pub const ENV_CHANNELS: &str = "RCLUSTER_CHANNELS";
/// Fd of the rendezvous socket for port discovery (optional).
pub const ENV_RENDEZVOUS_FD: &str = "RCLUSTER_RENDEZVOUS_FD";
/// Fd of the report socket on which `shared`/`reuseport` instances say READY (optional).
pub const ENV_ACTIVATION_FD: &str = "RCLUSTER_ACTIVATION_FD";
/// Abstract Unix name of the rendezvous, for processes that did not inherit its fd (optional).
pub const ENV_RENDEZVOUS_NAME: &str = "RCLUSTER_RENDEZVOUS_NAME";
/// Comma-separated ports that the library never shares (optional).
pub const ENV_PRIVATE_PORTS: &str = "RCLUSTER_PRIVATE_PORTS";
/// Set to `1` to make the library log its decisions on the instance's stderr (debugging aid).
pub const ENV_PRELOAD_DEBUG: &str = "RCLUSTER_PRELOAD_DEBUG";

/// Daemon → instance: one dealt connection.
pub const KIND_CONN: u8 = 1;
/// Instance → daemon: first `listen()` on the channel in that pid.
pub const KIND_READY: u8 = 2;
/// Instance → daemon: the pid that sent READY closed or shut down its last copy of the listener.
pub const KIND_UNREADY: u8 = 3;
/// Instance → daemon (rendezvous fd): the program binds a port that is not managed yet.
pub const KIND_BIND: u8 = 4;
/// Reply to BIND: the port is managed; the reply carries the channel fd.
pub const KIND_BOUND: u8 = 5;
/// Reply to BIND: `bind()` fails with the errno in bytes 4..8.
pub const KIND_REFUSE: u8 = 6;
/// Reply to BIND: the program binds for real.
pub const KIND_PASS: u8 = 7;
/// Reply to BIND: the reply carries a real listening TCP socket for the address, which the
/// program takes in place of its own (fork mode: the daemon holds the port across restarts).
pub const KIND_ADOPT: u8 = 8;
/// BIND byte 1, bit 0: the program's IPv6 socket is IPv6-only (`IPV6_V6ONLY`).
pub const BIND_V6ONLY: u8 = 0x01;

/// Start of a channel's name. Each channel's instance end is bound to an abstract Unix address:
/// this prefix, one byte (the sockaddr's length, 16 or 28), the daemon's listening address as a
/// sockaddr, and 8 bytes that make the name unique ([`channel_name`]). A process that gets a
/// channel fd by a way the library cannot follow (passed to a worker that is a new program,
/// such as uvicorn's and multiprocessing's "spawn" workers) knows it by that name, and its port.
pub const CHANNEL_NAME_PREFIX: &[u8] = b"rcluster-channel";

/// Size of a CONN message.
pub const CONN_LEN: usize = 32;
/// Size of a READY/UNREADY message.
pub const INSTANCE_MSG_LEN: usize = 8;
/// Size of a BIND request.
pub const BIND_LEN: usize = 32;
/// Size of a BOUND/REFUSE/PASS reply.
pub const REPLY_LEN: usize = 8;
/// A receive buffer of this size holds any message of this ABI with room to spare, so that a
/// longer (foreign) message is seen as such rather than silently cut to a valid size.
pub const RECV_BUF_LEN: usize = 64;
/// CONN byte 1, bit 0: the passed fd's file description has `O_NONBLOCK`.
pub const FDFLAG_NONBLOCK: u8 = 0x01;
/// Largest sockaddr carried (`sizeof(struct sockaddr_in6)`).
pub const MAX_SOCKADDR_LEN: usize = 28;

const SOCKADDR_IN_LEN: usize = 16;
const SOCKADDR_IN6_LEN: usize = 28;
/// Minimum `sockaddr_in6` the kernel accepts (no scope id), as in `SIN6_LEN_RFC2133`.
const SOCKADDR_IN6_MIN_LEN: usize = 24;
/// Control buffer: room for the most fds one message can carry (SCM_MAX_FD = 253), so that an
/// unexpected fd list is never truncated (truncated fds could not be closed).
const CMSG_BUF_LEN: usize = 1040;

/// A message an instance sends on its channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceMsg {
    /// The first `listen()` on the channel in process `pid`.
    Ready { pid: u32 },
    /// Process `pid`, which sent READY, closed or shut down its last copy of the listener.
    Unready { pid: u32 },
}

impl InstanceMsg {
    /// The pid the message speaks for.
    pub fn pid(&self) -> u32 {
        match *self {
            InstanceMsg::Ready { pid } | InstanceMsg::Unready { pid } => pid,
        }
    }

    /// The 8 bytes the library sends (for tests and tools; the library is the real sender).
    pub fn encode(&self) -> [u8; INSTANCE_MSG_LEN] {
        let (kind, pid) = match *self {
            InstanceMsg::Ready { pid } => (KIND_READY, pid),
            InstanceMsg::Unready { pid } => (KIND_UNREADY, pid),
        };
        let mut m = [0u8; INSTANCE_MSG_LEN];
        m[0] = kind;
        m[4..8].copy_from_slice(&pid.to_ne_bytes());
        m
    }
}

/// A decoded CONN message (the fd travels beside it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conn {
    /// CONN byte 1 ([`FDFLAG_NONBLOCK`]).
    pub fdflags: u8,
    /// The client's address as `accept` gave it.
    pub peer: SocketAddr,
}

/// A decoded reply to a BIND request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reply {
    /// The port is shared; the channel fd comes with the message.
    Bound,
    /// `bind()` fails with this errno.
    Refuse(u32),
    /// The program binds the port for real.
    Pass,
    /// The program takes the listening socket that comes with the message.
    Adopt,
}

impl Reply {
    /// The 8 bytes of this reply (`encode_reply` with the matching kind).
    pub fn encode(&self) -> [u8; REPLY_LEN] {
        match *self {
            Reply::Bound => encode_reply(KIND_BOUND, 0),
            Reply::Refuse(errno) => encode_reply(KIND_REFUSE, errno),
            Reply::Pass => encode_reply(KIND_PASS, 0),
            Reply::Adopt => encode_reply(KIND_ADOPT, 0),
        }
    }
}

/// Writes `addr` as the kernel lays out `sockaddr_in`/`sockaddr_in6`; returns the length used.
fn put_sockaddr(addr: &SocketAddr, out: &mut [u8; MAX_SOCKADDR_LEN]) -> usize {
    *out = [0; MAX_SOCKADDR_LEN];
    match addr {
        SocketAddr::V4(a) => {
            out[0..2].copy_from_slice(&(libc::AF_INET as libc::sa_family_t).to_ne_bytes());
            out[2..4].copy_from_slice(&a.port().to_be_bytes());
            out[4..8].copy_from_slice(&a.ip().octets());
            SOCKADDR_IN_LEN
        }
        SocketAddr::V6(a) => {
            out[0..2].copy_from_slice(&(libc::AF_INET6 as libc::sa_family_t).to_ne_bytes());
            out[2..4].copy_from_slice(&a.port().to_be_bytes());
            out[4..8].copy_from_slice(&a.flowinfo().to_ne_bytes());
            out[8..24].copy_from_slice(&a.ip().octets());
            out[24..28].copy_from_slice(&a.scope_id().to_ne_bytes());
            SOCKADDR_IN6_LEN
        }
    }
}

/// Reads a `sockaddr_in`/`sockaddr_in6` of `bytes.len()` bytes.
fn get_sockaddr(bytes: &[u8]) -> Option<SocketAddr> {
    let family = libc::sa_family_t::from_ne_bytes(bytes.get(0..2)?.try_into().ok()?);
    let port = u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?);
    if family == libc::AF_INET as libc::sa_family_t && bytes.len() >= SOCKADDR_IN_LEN {
        let ip: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
        Some(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port)))
    } else if family == libc::AF_INET6 as libc::sa_family_t && bytes.len() >= SOCKADDR_IN6_MIN_LEN {
        let flowinfo = u32::from_ne_bytes(bytes.get(4..8)?.try_into().ok()?);
        let ip: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
        let scope_id = match bytes.get(24..28) {
            Some(s) => u32::from_ne_bytes(s.try_into().ok()?),
            None => 0,
        };
        Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::from(ip),
            port,
            flowinfo,
            scope_id,
        )))
    } else {
        None
    }
}

/// Header (kind, flags, sockaddr length, 0) plus sockaddr: the layout of CONN and BIND.
fn encode_addr_msg(kind: u8, flags: u8, addr: &SocketAddr) -> [u8; 32] {
    let mut sa = [0u8; MAX_SOCKADDR_LEN];
    let len = put_sockaddr(addr, &mut sa);
    let mut m = [0u8; 32];
    m[0] = kind;
    m[1] = flags;
    m[2] = len as u8;
    m[4..].copy_from_slice(&sa);
    m
}

fn decode_addr_msg(bytes: &[u8], kind: u8) -> Option<(u8, SocketAddr)> {
    if bytes.len() != 32 || bytes[0] != kind {
        return None;
    }
    let len = usize::from(bytes[2]);
    if len > MAX_SOCKADDR_LEN {
        return None;
    }
    Some((bytes[1], get_sockaddr(&bytes[4..4 + len])?))
}

/// CONN for a connection the daemon accepted in blocking mode (fdflags 0).
pub fn encode_conn(peer: &SocketAddr) -> [u8; CONN_LEN] {
    encode_conn_with_flags(peer, 0)
}

/// CONN with explicit fdflags: pass [`FDFLAG_NONBLOCK`] if the accepted fd's description has
/// `O_NONBLOCK` (for example after `accept4(.., SOCK_NONBLOCK)`).
pub fn encode_conn_with_flags(peer: &SocketAddr, fdflags: u8) -> [u8; CONN_LEN] {
    encode_addr_msg(KIND_CONN, fdflags, peer)
}

/// Decodes a CONN message (the receiving side is the library; this is for tests and drains).
pub fn decode_conn(bytes: &[u8]) -> Option<Conn> {
    decode_addr_msg(bytes, KIND_CONN).map(|(fdflags, peer)| Conn { fdflags, peer })
}

/// Decodes READY/UNREADY; `None` for anything else (wrong size, wrong kind).
pub fn decode_instance_msg(bytes: &[u8]) -> Option<InstanceMsg> {
    if bytes.len() != INSTANCE_MSG_LEN {
        return None;
    }
    let pid = u32::from_ne_bytes(bytes[4..8].try_into().ok()?);
    match bytes[0] {
        KIND_READY => Some(InstanceMsg::Ready { pid }),
        KIND_UNREADY => Some(InstanceMsg::Unready { pid }),
        _ => None,
    }
}

/// The BIND request the library sends for `addr` (for tests; the library is the real sender).
pub fn encode_bind_request(addr: &SocketAddr) -> [u8; BIND_LEN] {
    encode_addr_msg(KIND_BIND, 0, addr)
}

/// A BIND request with its flags byte ([`BIND_V6ONLY`]).
pub fn encode_bind_request_with_flags(addr: &SocketAddr, flags: u8) -> [u8; BIND_LEN] {
    encode_addr_msg(KIND_BIND, flags, addr)
}

/// Decodes a BIND request into the address the program asked to bind.
pub fn decode_bind_request(bytes: &[u8]) -> Option<SocketAddr> {
    decode_bind(bytes).map(|bind| bind.addr)
}

/// A decoded BIND request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind {
    pub addr: SocketAddr,
    /// The program's IPv6 socket is IPv6-only ([`BIND_V6ONLY`]).
    pub v6only: bool,
}

/// Decodes a BIND request with its flags.
pub fn decode_bind(bytes: &[u8]) -> Option<Bind> {
    decode_addr_msg(bytes, KIND_BIND).map(|(flags, addr)| Bind {
        addr,
        v6only: flags & BIND_V6ONLY != 0,
    })
}

/// The abstract name (without its leading NUL) of a channel for the listener at `addr`.
pub fn channel_name(addr: &SocketAddr, unique: u64) -> Vec<u8> {
    let mut sa = [0u8; MAX_SOCKADDR_LEN];
    let len = put_sockaddr(addr, &mut sa);
    let mut name = CHANNEL_NAME_PREFIX.to_vec();
    name.push(len as u8);
    name.extend_from_slice(&sa[..len]);
    name.extend_from_slice(&unique.to_ne_bytes());
    name
}

/// The listening address a channel's name carries; `None` for any other name.
pub fn decode_channel_name(name: &[u8]) -> Option<SocketAddr> {
    let rest = name.strip_prefix(CHANNEL_NAME_PREFIX)?;
    let (&len, rest) = rest.split_first()?;
    get_sockaddr(rest.get(..usize::from(len))?)
}

/// A reply to BIND: `kind` is [`KIND_BOUND`], [`KIND_REFUSE`] or [`KIND_PASS`]; `errno` is
/// only meaningful for REFUSE (the library uses EADDRINUSE if it is 0 or out of range).
pub fn encode_reply(kind: u8, errno: u32) -> [u8; REPLY_LEN] {
    let mut m = [0u8; REPLY_LEN];
    m[0] = kind;
    m[4..8].copy_from_slice(&errno.to_ne_bytes());
    m
}

/// Decodes a reply to BIND (the receiving side is the library; this is for tests).
pub fn decode_reply(bytes: &[u8]) -> Option<Reply> {
    if bytes.len() != REPLY_LEN {
        return None;
    }
    match bytes[0] {
        KIND_BOUND => Some(Reply::Bound),
        KIND_REFUSE => Some(Reply::Refuse(u32::from_ne_bytes(
            bytes[4..8].try_into().ok()?,
        ))),
        KIND_PASS => Some(Reply::Pass),
        KIND_ADOPT => Some(Reply::Adopt),
        _ => None,
    }
}

/// The value of [`ENV_CHANNELS`] for `(port, fd in the child)` pairs: `8000=3,8443=4`.
pub fn format_channels(channels: &[(u16, RawFd)]) -> String {
    let mut s = String::new();
    for (i, (port, fd)) in channels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&format!("{port}={fd}"));
    }
    s
}

/// Sends `bytes` as one message on `sock` with `fd` attached (`SCM_RIGHTS`). The daemon's
/// dealing call is `send_with_fd(end, &encode_conn(&peer), conn, MSG_DONTWAIT | MSG_NOSIGNAL)`:
/// `EAGAIN` means that instance's queue is full.
pub fn send_with_fd(
    sock: BorrowedFd<'_>,
    bytes: &[u8],
    fd: BorrowedFd<'_>,
    flags: MsgFlags,
) -> nix::Result<usize> {
    let fds = [fd.as_raw_fd()];
    let cmsgs = [ControlMessage::ScmRights(&fds)];
    socket::sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &cmsgs,
        flags,
        None,
    )
}

/// Receives one message into `buf` (blocking unless the socket is non-blocking), with the fd it
/// carries, if any, received close-on-exec. See [`recv_with_fd_flags`].
pub fn recv_with_fd(sock: BorrowedFd<'_>, buf: &mut [u8]) -> nix::Result<(usize, Option<OwnedFd>)> {
    recv_with_fd_flags(sock, buf, MsgFlags::empty())
}

/// Receives one message into `buf` with extra `flags` (e.g. `MSG_DONTWAIT` to drain an
/// instance end without touching its shared `O_NONBLOCK`). Returns the message length and the
/// first fd it carried (close-on-exec); any further fds are closed. `Ok((0, None))` is end of
/// file on a `SOCK_SEQPACKET` socket. A message longer than `buf` is an error (`EMSGSIZE`),
/// its fds closed: use a buffer of [`RECV_BUF_LEN`].
pub fn recv_with_fd_flags(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    flags: MsgFlags,
) -> nix::Result<(usize, Option<OwnedFd>)> {
    #[repr(C, align(8))]
    struct CmsgBuf([u8; CMSG_BUF_LEN]);
    let mut space = CmsgBuf([0; CMSG_BUF_LEN]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = socket::recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut space.0[..]),
        flags | MsgFlags::MSG_CMSG_CLOEXEC,
    )?;
    let mut first: Option<OwnedFd> = None;
    if let Ok(cmsgs) = msg.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                for raw in fds {
                    // SAFETY: the kernel has just installed `raw` in this process for this
                    // message; nothing else knows it, so this OwnedFd is its only owner.
                    let owned = unsafe { OwnedFd::from_raw_fd(raw) };
                    if first.is_none() {
                        first = Some(owned);
                    }
                }
            }
        }
    }
    if msg.flags.contains(MsgFlags::MSG_TRUNC) {
        return Err(Errno::EMSGSIZE);
    }
    Ok((msg.bytes, first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    use std::io::{Read, Write};
    use std::os::fd::AsFd;

    #[test]
    fn a_channel_name_carries_the_listening_address() {
        for addr in ["127.0.0.1:8000", "[::1]:3000", "0.0.0.0:1"] {
            let addr: SocketAddr = addr.parse().expect("address");
            let name = channel_name(&addr, 42);
            assert!(name.starts_with(CHANNEL_NAME_PREFIX));
            assert_eq!(decode_channel_name(&name), Some(addr));
            assert_ne!(
                name,
                channel_name(&addr, 43),
                "the last bytes make it unique"
            );
        }
        assert_eq!(decode_channel_name(b"rcluster-channel"), None);
        assert_eq!(decode_channel_name(b"rcluster-channel\x10short"), None);
        assert_eq!(decode_channel_name(b"something else"), None);
    }

    fn v6() -> SocketAddr {
        SocketAddr::V6(SocketAddrV6::new(
            "2001:db8::17".parse().expect("addr"),
            65001,
            0x0012_3456,
            7,
        ))
    }

    fn struct_bytes<T>(value: &T) -> Vec<u8> {
        // SAFETY: reads size_of::<T>() bytes of a live, fully initialised plain C struct.
        unsafe {
            std::slice::from_raw_parts((value as *const T).cast::<u8>(), std::mem::size_of::<T>())
                .to_vec()
        }
    }

    #[test]
    fn conn_v4_matches_the_kernel_layout() {
        // The kernel's own bytes: getsockname of a bound socket.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let local = listener.local_addr().expect("local_addr");
        // SAFETY: sockaddr_storage is plain data; all-zero is a valid value.
        let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        // SAFETY: valid fd, and a buffer of `len` bytes that outlives the call.
        let rc = unsafe {
            libc::getsockname(
                listener.as_raw_fd(),
                (&mut storage as *mut libc::sockaddr_storage).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        let kernel = struct_bytes(&storage);
        let m = encode_conn(&local);
        assert_eq!(&m[..4], &[KIND_CONN, 0, 16, 0]);
        assert_eq!(len, 16);
        assert_eq!(&m[4..20], &kernel[..16]);
        assert!(m[20..].iter().all(|&b| b == 0));
        assert_eq!(
            decode_conn(&m),
            Some(Conn {
                fdflags: 0,
                peer: local
            })
        );
    }

    #[test]
    fn conn_v6_matches_the_c_layout() {
        let peer = v6();
        let SocketAddr::V6(a) = peer else {
            unreachable!()
        };
        // SAFETY: sockaddr_in6 is plain data; all-zero is a valid value.
        let mut c: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
        c.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        c.sin6_port = a.port().to_be();
        c.sin6_flowinfo = a.flowinfo();
        c.sin6_addr.s6_addr = a.ip().octets();
        c.sin6_scope_id = a.scope_id();
        let m = encode_conn_with_flags(&peer, FDFLAG_NONBLOCK);
        assert_eq!(&m[..4], &[KIND_CONN, FDFLAG_NONBLOCK, 28, 0]);
        assert_eq!(&m[4..32], &struct_bytes(&c)[..]);
        assert_eq!(
            decode_conn(&m),
            Some(Conn {
                fdflags: FDFLAG_NONBLOCK,
                peer
            })
        );
    }

    #[test]
    fn conn_rejects_bad_input() {
        let m = encode_conn(&"127.0.0.1:1".parse().expect("addr"));
        assert_eq!(decode_conn(&m[..31]), None);
        let mut longer = m.to_vec();
        longer.push(0);
        assert_eq!(decode_conn(&longer), None);
        let mut wrong_kind = m;
        wrong_kind[0] = KIND_BIND;
        assert_eq!(decode_conn(&wrong_kind), None);
        let mut too_long_addr = m;
        too_long_addr[2] = 29;
        assert_eq!(decode_conn(&too_long_addr), None);
        let mut short_v4 = m;
        short_v4[2] = 8;
        assert_eq!(decode_conn(&short_v4), None);
        let mut unix = m;
        unix[4..6].copy_from_slice(&(libc::AF_UNIX as libc::sa_family_t).to_ne_bytes());
        assert_eq!(decode_conn(&unix), None);
        assert_eq!(decode_conn(&[]), None);
    }

    #[test]
    fn instance_messages() {
        let mut m = [0u8; 8];
        m[0] = 2;
        m[4..].copy_from_slice(&4242u32.to_ne_bytes());
        assert_eq!(
            decode_instance_msg(&m),
            Some(InstanceMsg::Ready { pid: 4242 })
        );
        m[0] = 3;
        assert_eq!(
            decode_instance_msg(&m),
            Some(InstanceMsg::Unready { pid: 4242 })
        );
        for msg in [
            InstanceMsg::Ready { pid: 1 },
            InstanceMsg::Unready { pid: u32::MAX },
        ] {
            assert_eq!(decode_instance_msg(&msg.encode()), Some(msg));
        }
        assert_eq!(InstanceMsg::Unready { pid: 9 }.pid(), 9);
        m[0] = 1;
        assert_eq!(decode_instance_msg(&m), None);
        m[0] = 2;
        assert_eq!(decode_instance_msg(&m[..7]), None);
        assert_eq!(decode_instance_msg(&[2, 0, 0, 0, 1, 0, 0, 0, 0]), None);
    }

    #[test]
    fn bind_requests() {
        for addr in [
            "0.0.0.0:8000".parse().expect("addr"),
            "[::]:3000".parse().expect("addr"),
            v6(),
        ] {
            let m = encode_bind_request(&addr);
            assert_eq!(m[0], KIND_BIND);
            assert_eq!(decode_bind_request(&m), Some(addr));
            assert_eq!(decode_bind_request(&m[..20]), None);
            assert_eq!(decode_conn(&m), None);
        }
        // An IPv6 sockaddr without scope id (24 bytes, as old programs pass it) is accepted.
        let mut m = encode_bind_request(&"[::1]:80".parse().expect("addr"));
        m[2] = 24;
        assert_eq!(
            decode_bind_request(&m),
            Some("[::1]:80".parse().expect("addr"))
        );
        m[2] = 23;
        assert_eq!(decode_bind_request(&m), None);
        // The flags byte: IPv6-only or dual stack.
        let addr: SocketAddr = "[::]:3000".parse().expect("addr");
        let m = encode_bind_request_with_flags(&addr, BIND_V6ONLY);
        assert_eq!(m[1], BIND_V6ONLY);
        assert_eq!(decode_bind(&m), Some(Bind { addr, v6only: true }));
        let m = encode_bind_request(&addr);
        assert_eq!(
            decode_bind(&m),
            Some(Bind {
                addr,
                v6only: false
            })
        );
    }

    #[test]
    fn replies() {
        assert_eq!(
            decode_reply(&encode_reply(KIND_BOUND, 0)),
            Some(Reply::Bound)
        );
        assert_eq!(decode_reply(&encode_reply(KIND_PASS, 0)), Some(Reply::Pass));
        let refuse = encode_reply(KIND_REFUSE, libc::EACCES as u32);
        assert_eq!(&refuse[4..], &(libc::EACCES as u32).to_ne_bytes());
        assert_eq!(
            decode_reply(&refuse),
            Some(Reply::Refuse(libc::EACCES as u32))
        );
        for r in [Reply::Bound, Reply::Pass, Reply::Refuse(98), Reply::Adopt] {
            assert_eq!(decode_reply(&r.encode()), Some(r));
        }
        assert_eq!(decode_reply(&encode_reply(KIND_READY, 0)), None);
        assert_eq!(decode_reply(&refuse[..7]), None);
    }

    #[test]
    fn channels_env_value() {
        assert_eq!(format_channels(&[]), "");
        assert_eq!(format_channels(&[(8000, 3)]), "8000=3");
        assert_eq!(format_channels(&[(8000, 3), (8443, 4)]), "8000=3,8443=4");
    }

    fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::SeqPacket,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .expect("socketpair")
    }

    #[test]
    fn fd_passing_round_trip() {
        let (a, b) = seqpacket_pair();
        let (pr, pw) = nix::unistd::pipe().expect("pipe");
        let peer: SocketAddr = "10.1.2.3:4567".parse().expect("addr");
        let m = encode_conn(&peer);
        let sent =
            send_with_fd(a.as_fd(), &m, pw.as_fd(), MsgFlags::MSG_DONTWAIT).expect("send_with_fd");
        assert_eq!(sent, CONN_LEN);
        drop(pw);
        let mut buf = [0u8; RECV_BUF_LEN];
        let (n, fd) = recv_with_fd(b.as_fd(), &mut buf).expect("recv_with_fd");
        assert_eq!(decode_conn(&buf[..n]).map(|c| c.peer), Some(peer));
        let fd = fd.expect("an fd came with the message");
        let flags = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_GETFD).expect("F_GETFD");
        assert_ne!(flags & libc::FD_CLOEXEC, 0, "received fd must be CLOEXEC");
        let mut w = std::fs::File::from(fd);
        w.write_all(b"ok").expect("write through the passed fd");
        drop(w);
        let mut got = String::new();
        std::fs::File::from(pr)
            .read_to_string(&mut got)
            .expect("read");
        assert_eq!(got, "ok");
    }

    #[test]
    fn recv_without_fd_eof_and_oversize() {
        let (a, b) = seqpacket_pair();
        let ready = InstanceMsg::Ready { pid: 77 }.encode();
        socket::send(a.as_raw_fd(), &ready, MsgFlags::empty()).expect("send");
        let mut buf = [0u8; RECV_BUF_LEN];
        let (n, fd) = recv_with_fd(b.as_fd(), &mut buf).expect("recv");
        assert!(fd.is_none());
        assert_eq!(
            decode_instance_msg(&buf[..n]),
            Some(InstanceMsg::Ready { pid: 77 })
        );
        // Nothing queued: a non-blocking receive says EAGAIN.
        assert_eq!(
            recv_with_fd_flags(b.as_fd(), &mut buf, MsgFlags::MSG_DONTWAIT).map(|(n, _)| n),
            Err(Errno::EAGAIN)
        );
        // Too long for the buffer: an error, not a silently cut message.
        socket::send(a.as_raw_fd(), &[9u8; 40], MsgFlags::empty()).expect("send");
        let mut small = [0u8; 32];
        assert_eq!(
            recv_with_fd(b.as_fd(), &mut small).map(|(n, _)| n),
            Err(Errno::EMSGSIZE)
        );
        drop(a);
        assert_eq!(
            recv_with_fd(b.as_fd(), &mut buf).map(|(n, fd)| (n, fd.is_none())),
            Ok((0, true))
        );
    }
}
