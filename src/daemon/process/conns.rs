//! Which TCP connections of a process group are still busy with a request. A graceful stop of
//! a cluster instance waits (up to kill_timeout) until none is before signalling, so requests
//! in flight on connections it was dealt finish first, while idle keep-alive connections (which
//! never end by themselves) do not hold the stop up.
//!
//! Each socket of the group is copied (pidfd_getfd; instances are our children, so ptrace rules
//! allow it) and its TCP_INFO read: an ESTABLISHED one is busy when no request has arrived yet,
//! or data arrived more recently than the last answer left. A socket closed (or a process gone)
//! between the listing and the copy is nothing to wait for. One that cannot be copied at all
//! (a kernel before 5.6, a refusal) counts as busy, so the stop waits out kill_timeout: reading
//! /proc/net/tcp instead took seconds under load (it lists every TCP socket on the machine,
//! TIME_WAIT ones included) and the supervisor would wait on it.

/// Busy TCP connections of group `pgid` (all established ones where a socket cannot be
/// inspected); None when /proc cannot tell.
pub fn busy(pgid: i32) -> Option<usize> {
    let mut busy = 0;
    for (pid, fd) in socket_fds(pgid)? {
        match inspect(pid, fd) {
            Inspected::NotEstablished => {}
            Inspected::Established { busy: b } => busy += usize::from(b),
            Inspected::Unknown => busy += 1,
        }
    }
    Some(busy)
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
    },
    /// The socket could not be copied (no pidfd_getfd, or not allowed).
    Unknown,
}

const TCP_ESTABLISHED: u8 = 1;

fn inspect(pid: i32, fd: i32) -> Inspected {
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
    let mut info = TcpInfo::default();
    let mut len = std::mem::size_of::<TcpInfo>() as libc::socklen_t;
    // SAFETY: `info` is valid for `len` bytes; `copy` is our fd.
    let rc = unsafe {
        libc::getsockopt(
            copy,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut TcpInfo).cast(),
            &mut len,
        )
    };
    // SAFETY: `copy` is ours.
    unsafe { libc::close(copy) };
    if rc != 0 {
        // Not TCP (a Unix socket, a channel): nothing to wait for.
        return Inspected::NotEstablished;
    }
    if info.head[0] != TCP_ESTABLISHED {
        return Inspected::NotEstablished;
    }
    if len < std::mem::size_of::<TcpInfo>() as libc::socklen_t {
        // An old kernel without the segment counts: assume it is busy.
        return Inspected::Established { busy: true };
    }
    let since_sent = info.words[LAST_DATA_SENT];
    let since_recv = info.words[LAST_DATA_RECV];
    Inspected::Established {
        busy: info.data_segs_in == 0 || info.data_segs_out == 0 || since_recv < since_sent,
    }
}

/// After a failed pidfd_open/pidfd_getfd: the process or the fd went away meanwhile (nothing to
/// wait for), or the socket cannot be looked at.
fn gone_or_unknown() -> Inspected {
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) | Some(libc::EBADF) => Inspected::NotEstablished,
        _ => Inspected::Unknown,
    }
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

    #[test]
    fn a_socket_closed_before_it_is_looked_at_is_not_waited_for() {
        // No such fd (closed between the listing and the copy): EBADF, nothing to wait for.
        let me = std::process::id() as i32;
        assert!(matches!(inspect(me, 1_000_000), Inspected::NotEstablished));
    }

    #[test]
    fn a_connection_with_no_request_yet_is_busy() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        let pgid = nix::unistd::getpgrp().as_raw();
        // Both ends belong to this test's process group.
        assert!(busy(pgid).expect("readable /proc") >= 2);
        drop((client, server));
    }
}
