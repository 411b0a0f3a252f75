//! The keeper: a small parent process above the daemon, so that the daemon's death never
//! leaves an instance holding a port (issue #17.9). `rcluster __daemon` forks first thing;
//! the child is the daemon, the parent (named `rcluster-keeper`) is a child subreaper that
//! only waits. When the daemon ends, however it ends (`kill -9`, a crash, the OOM killer), its
//! instances are reparented to the keeper, which SIGKILLs each one's process group — and, as
//! the groups' orphans come to it in turn, theirs — then exits with the daemon's status.
//!
//! Why not `PR_SET_PDEATHSIG` on each instance: it reaches the direct child only (an app run
//! through npm or a shell leaves its server behind), it fires when the *thread* that forked
//! ends (the daemon starts large batches from short-lived threads), and posix_spawn cannot set
//! it without an extra exec per instance. The keeper covers grandchildren, costs nothing per
//! spawn, and is where a daemon that comes back by itself (issue #20) will be restarted from.
//!
//! Signals sent to the keeper (systemd stops its main process, which the keeper is) go on to
//! the daemon. An `update` re-executes the daemon in place: same pid, same parent, nothing
//! changes here.

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, killpg, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, getpgrp, getpid, ForkResult, Pid};

use crate::paths::Home;

/// Passed on to the daemon.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// How long the keeper goes on killing what its daemon left (each round catches the orphans
/// the previous one made).
const CLEANUP: Duration = Duration::from_secs(5);

/// Split into keeper and daemon. `None` in the daemon (which goes on), `Some(code)` in the
/// keeper once the daemon has ended and its leftovers are gone. Must run while the process
/// has a single thread.
pub fn split(home: &Home) -> Option<i32> {
    let mut waited = SigSet::empty();
    for signal in FORWARDED {
        waited.add(signal);
    }
    waited.add(Signal::SIGCHLD);
    // Blocked before the fork, so none is lost to its default action in between.
    let mut before = SigSet::empty();
    if nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&waited), Some(&mut before))
        .is_err()
    {
        return None;
    }
    let restore = || {
        let _ = nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&before), None);
    };
    // SAFETY: the process is single-threaded here (the first thing `__daemon` does), so the
    // child may run any code after the fork.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            restore();
            None
        }
        Ok(ForkResult::Parent { child }) => Some(keep(home, child, &waited)),
        Err(e) => {
            // No keeper: the daemon runs as before, unguarded.
            restore();
            eprintln!("rcluster: cannot fork the keeper ({e}); the daemon runs without one");
            None
        }
    }
}

fn keep(home: &Home, daemon: Pid, waited: &SigSet) -> i32 {
    // SAFETY: prctl with these options takes integers and a NUL-terminated name.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::prctl(libc::PR_SET_NAME, c"rcluster-keeper".as_ptr(), 0, 0, 0);
    }
    let status = loop {
        match waited.wait() {
            Ok(Signal::SIGCHLD) => {
                if let Some(status) = reap(daemon) {
                    break status;
                }
            }
            Ok(signal) => {
                let _ = kill(daemon, signal);
            }
            Err(_) => {}
        }
    };
    let left = kill_leftovers();
    let (code, how) = match status {
        WaitStatus::Exited(_, code) => (code, format!("exited with code {code}")),
        WaitStatus::Signaled(_, signal, _) => (
            128 + signal as i32,
            format!("was killed by {}", signal.as_str()),
        ),
        _ => (1, "ended".to_owned()),
    };
    let clean = matches!(
        status,
        WaitStatus::Exited(_, 0 | crate::protocol::EXIT_DAEMON_ALREADY_RUNNING)
    );
    if !clean || !left.is_empty() {
        let _ = crate::daemon::log::init(&home.daemon_log());
        crate::dlog!(
            "keeper {}: the daemon (pid {daemon}) {how}; killed the {} process(es) it left: {left:?}",
            std::process::id(),
            left.len()
        );
    }
    code
}

/// Reap every ended child; the daemon's status if it is among them.
fn reap(daemon: Pid) -> Option<WaitStatus> {
    let mut found = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return found,
            Ok(status) if status.pid() == Some(daemon) => found = Some(status),
            Ok(_) => {}
        }
    }
}

/// SIGKILL every process the daemon left to us, with its process group, until none is left
/// (or CLEANUP has passed); the pids killed.
fn kill_leftovers() -> Vec<i32> {
    let me = getpid().as_raw();
    let own_group = getpgrp();
    let deadline = Instant::now() + CLEANUP;
    let mut killed = Vec::new();
    loop {
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if status == WaitStatus::StillAlive {
                break;
            }
        }
        let children = children_of(me);
        if children.is_empty() || Instant::now() > deadline {
            return killed;
        }
        for pid in children {
            let pid = Pid::from_raw(pid);
            match nix::unistd::getpgid(Some(pid)) {
                Ok(group) if group != own_group && group.as_raw() > 1 => {
                    let _ = killpg(group, Signal::SIGKILL);
                }
                _ => {}
            }
            match kill(pid, Signal::SIGKILL) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(_) => continue,
            }
            if !killed.contains(&pid.as_raw()) {
                killed.push(pid.as_raw());
            }
        }
        std::thread::sleep(Duration::from_millis(5)); // their exits, then a look again
    }
}

/// Live (not zombie) children of `parent`, from /proc.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            crate::daemon::process::stats::stat_fields(*pid).is_some_and(|fields| {
                fields.first().map(String::as_str) != Some("Z")
                    && fields.get(1).and_then(|p| p.parse::<i32>().ok()) == Some(parent)
            })
        })
        .collect()
}
