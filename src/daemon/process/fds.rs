//! Whatever started the daemon (a shell, a CI step, the first CLI) may have left fds open
//! without CLOEXEC. The daemon must not hand them to every instance it spawns: a CI step
//! waiting for a pipe to close would wait as long as the daemon lives. Also: how many bytes wait
//! in a socket's queues.

/// The daemon uses none of them: close every fd above stderr (before opening its own).
pub fn close_inherited() {
    close_inherited_except(&[]);
}

/// `close_inherited`, but for `keep` (what a previous image of the daemon handed over).
pub fn close_inherited_except(keep: &[i32]) {
    for fd in inherited().into_iter().filter(|fd| !keep.contains(fd)) {
        // SAFETY: closing an fd number nobody in this process owns yet (called first thing).
        unsafe { libc::close(fd) };
    }
}

/// Bytes waiting in a socket's receive queue (SIOCINQ) or not yet read by its peer
/// (`outgoing`, SIOCOUTQ); None when the ioctl fails.
pub fn socket_queue(socket: &impl std::os::fd::AsRawFd, outgoing: bool) -> Option<usize> {
    let request = if outgoing {
        libc::TIOCOUTQ
    } else {
        libc::FIONREAD
    };
    let mut bytes: libc::c_int = 0;
    // SAFETY: SIOCINQ/SIOCOUTQ write one int into `bytes`; the fd is valid for the call.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), request, &mut bytes) };
    (rc == 0).then(|| bytes.max(0) as usize)
}

fn inherited() -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    // Collected first: the directory's own fd is among them, and closing it mid-walk is harmless
    // only once the walk is over.
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|fd| *fd > 2)
        .collect()
}

/// Mark every inherited fd above stderr close-on-exec (`rcluster run`, which keeps its own).
pub fn cloexec_inherited() {
    for fd in inherited() {
        // SAFETY: F_GETFD/F_SETFD on an fd number touch no memory; a closed fd just fails.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}
