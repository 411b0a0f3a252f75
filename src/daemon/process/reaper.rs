//! The only `waitpid` in the daemon. SIGCHLD wakes it; it reaps every child that has ended —
//! instances and orphaned grandchildren alike (the daemon is a child subreaper) — and reports
//! each as an `Exited` event. Crash detection is therefore event-driven, never polled.

use nix::errno::Errno;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc::UnboundedSender;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Code(i32),
    Signal(i32),
}

impl std::fmt::Display for ExitKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExitKind::Code(code) => write!(f, "exited with code {code}"),
            ExitKind::Signal(sig) => {
                let name = nix::sys::signal::Signal::try_from(*sig)
                    .map(|s| s.as_str())
                    .unwrap_or("unknown signal");
                write!(f, "killed by signal {sig} ({name})")
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Reaped {
    pub pid: i32,
    pub exit: ExitKind,
}

/// Make orphaned descendants of instances our children, so they are reaped (no zombies) and
/// their deaths tell us when a process group has emptied.
pub fn become_subreaper() -> std::io::Result<()> {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes one integer argument and touches no memory.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Start reaping. The SIGCHLD handler is installed before this returns, so it must be called
/// before the first child is spawned.
pub fn spawn_reaper(events: UnboundedSender<Reaped>) -> std::io::Result<()> {
    let mut sigchld = signal(SignalKind::child())?;
    tokio::spawn(async move {
        loop {
            if !reap_all(&events) {
                return;
            }
            if sigchld.recv().await.is_none() {
                return;
            }
        }
    });
    Ok(())
}

/// Reap everything that has ended. `false` when nobody listens any more.
fn reap_all(events: &UnboundedSender<Reaped>) -> bool {
    loop {
        let reaped = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => Reaped {
                pid: pid.as_raw(),
                exit: ExitKind::Code(code),
            },
            Ok(WaitStatus::Signaled(pid, sig, _)) => Reaped {
                pid: pid.as_raw(),
                exit: ExitKind::Signal(sig as i32),
            },
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return true,
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(e) => {
                crate::dlog!("waitpid failed: {e}");
                return true;
            }
        };
        if events.send(reaped).is_err() {
            return false;
        }
    }
}
