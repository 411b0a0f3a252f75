//! Signalling an instance's process group: the stop signal first, SIGKILL after `kill_timeout`
//! (the timer lives in the supervisor). Signalling the group, not the pid, is what leaves no
//! grandchild behind holding a port (PRODUCT.md §2).

use nix::errno::Errno;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

/// Send `signal` to the group; a group that has already gone is not an error.
pub fn signal_group(pgid: i32, signal: Signal) {
    match killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => crate::dlog!("killpg({pgid}, {signal}) failed: {e}"),
    }
}

/// Whether any process is left in the group.
pub fn group_alive(pgid: i32) -> bool {
    match killpg(Pid::from_raw(pgid), None) {
        Ok(()) => true,
        Err(Errno::ESRCH) => false,
        // EPERM: a member exists that we may not signal (it changed uid); it is still there.
        Err(_) => true,
    }
}

/// Parse a signal name as stored in an AppSpec (`SIGINT`); SIGINT when unknown, since specs are
/// validated by the client and the daemon must not fail on a bad one.
pub fn parse_signal(name: &str) -> Signal {
    name.parse::<Signal>().unwrap_or(Signal::SIGINT)
}
