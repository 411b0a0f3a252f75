//! Listening sockets the daemon creates and keeps for an app's whole life, so the port never
//! closes across crashes, restarts and reloads (PRODUCT.md §4). Everything is CLOEXEC.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use nix::sys::socket::{
    bind, listen, setsockopt, socket, sockopt, AddressFamily, Backlog, SockFlag, SockType,
    SockaddrIn, SockaddrIn6, UnixAddr,
};

use crate::protocol::model::ListenAddr;

/// Deep enough for bursts while every instance is busy; the kernel caps it at somaxconn.
const BACKLOG: i32 = 4096;

/// Bind and listen. `reuseport` for the strategy that gives each instance its own socket.
pub fn bind_listener(addr: &ListenAddr, reuseport: bool) -> Result<OwnedFd, String> {
    match addr {
        ListenAddr::Tcp(sa) => bind_tcp(*sa, reuseport, true, true),
        ListenAddr::Unix(path) => bind_unix(path),
    }
    .map_err(|e| describe_bind_error(addr, e))
}

/// Hold a SO_REUSEPORT address without listening: it reserves the port (and finds conflicts)
/// while the per-instance sockets, which do listen, take every connection.
pub fn reserve_reuseport(addr: &ListenAddr) -> Result<OwnedFd, String> {
    match addr {
        ListenAddr::Tcp(sa) => {
            bind_tcp(*sa, true, false, true).map_err(|e| describe_bind_error(addr, e))
        }
        ListenAddr::Unix(_) => Err(format!("listen {addr}: reuseport needs a TCP address")),
    }
}

fn bind_tcp(
    addr: std::net::SocketAddr,
    reuseport: bool,
    listening: bool,
    v6only: bool,
) -> nix::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    };
    let fd = socket(family, SockType::Stream, SockFlag::SOCK_CLOEXEC, None)?;
    setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    if reuseport {
        setsockopt(&fd, sockopt::ReusePort, &true)?;
    }
    match addr {
        std::net::SocketAddr::V4(v4) => bind(fd.as_raw_fd(), &SockaddrIn::from(v4))?,
        std::net::SocketAddr::V6(v6) => {
            // A declared `[::]:port` means IPv6 only (IPv4 is declared separately); a
            // discovered one behaves as the program asked the kernel: dual stack.
            setsockopt(&fd, sockopt::Ipv6V6Only, &v6only)?;
            bind(fd.as_raw_fd(), &SockaddrIn6::from(v6))?
        }
    }
    if listening {
        listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    }
    Ok(fd)
}

/// The listener for an address a program bound itself (port discovery): as the kernel would
/// have given the program, dual stack for `::`.
pub fn bind_discovered(addr: std::net::SocketAddr) -> nix::Result<OwnedFd> {
    bind_tcp(addr, false, true, false)
}

/// A fork-mode app's held socket (`held`): bound with SO_REUSEPORT so that a reload's new
/// instance gets one of its own on the same address, not yet listening (it joins the port's
/// reuseport group when it listens, which the caller times).
pub fn bind_held(addr: std::net::SocketAddr, v6only: bool) -> nix::Result<OwnedFd> {
    bind_tcp(addr, true, false, v6only)
}

pub fn start_listening(fd: &OwnedFd) -> nix::Result<()> {
    listen(fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))
}

fn bind_unix(path: &Path) -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    // A socket file left by a previous run of this app would make bind fail.
    if std::fs::symlink_metadata(path)
        .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        .unwrap_or(false)
    {
        let _ = std::fs::remove_file(path);
    }
    bind(fd.as_raw_fd(), &UnixAddr::new(path)?)?;
    listen(&fd, Backlog::new(BACKLOG).unwrap_or(Backlog::MAXCONN))?;
    Ok(fd)
}

fn describe_bind_error(addr: &ListenAddr, e: nix::Error) -> String {
    match e {
        nix::Error::EADDRINUSE => {
            format!("cannot listen on {addr}: address already in use (another program holds it)")
        }
        nix::Error::EACCES => {
            format!("cannot listen on {addr}: permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)")
        }
        nix::Error::EADDRNOTAVAIL => {
            format!("cannot listen on {addr}: address not available on this machine")
        }
        e => format!("cannot listen on {addr}: {}", e.desc()),
    }
}

/// The port a TCP listener got (for `port 0`).
pub fn local_port(fd: &OwnedFd) -> Option<u16> {
    let addr: nix::sys::socket::SockaddrStorage =
        nix::sys::socket::getsockname(fd.as_raw_fd()).ok()?;
    addr.as_sockaddr_in()
        .map(|a| a.port())
        .or_else(|| addr.as_sockaddr_in6().map(|a| a.port()))
}

/// A duplicate (same socket), CLOEXEC.
pub fn dup(fd: &OwnedFd) -> Result<OwnedFd, String> {
    fd.try_clone()
        .map_err(|e| format!("cannot duplicate a listener: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_port_zero_and_reports_conflicts() {
        let addr: std::net::SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let fd = bind_listener(&ListenAddr::Tcp(addr), false).expect("bind");
        let port = local_port(&fd).expect("port");
        assert!(port > 0);
        let taken: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let err = bind_listener(&ListenAddr::Tcp(taken), false).expect_err("in use");
        assert!(err.contains("already in use"), "{err}");
    }
}
