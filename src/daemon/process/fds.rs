//! Whatever started the daemon (a shell, a CI step, the first CLI) may have left fds open
//! without CLOEXEC. The daemon must not hand them to every instance it spawns: a CI step
//! waiting for a pipe to close would wait as long as the daemon lives.

/// The daemon uses none of them: close every fd above stderr (before opening its own).
pub fn close_inherited() {
    for fd in inherited() {
        // SAFETY: closing an fd number nobody in this process owns yet (called first thing).
        unsafe { libc::close(fd) };
    }
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
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|fd| *fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD/F_SETFD on an fd number touch no memory; a closed fd just fails.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
}
