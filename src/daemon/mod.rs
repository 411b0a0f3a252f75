//! The daemon: take the home's lock (one daemon per home), bind the control socket (0600 in a
//! 0700 dir), start the reaper, the supervisor and the accept loop, and run until `kill` or a
//! termination signal has stopped every app.

pub mod balancer;
pub mod events;
pub mod handoff;
mod keeper;
pub mod log;
pub mod logs;
pub mod persist;
pub mod previous_run;
pub mod process;
mod server;
mod signals;
pub mod supervisor;
mod watch;

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use nix::fcntl::{Flock, FlockArg};
use tokio::sync::{mpsc, Notify};

use crate::paths::Home;
use supervisor::{ClusterContext, Supervisor, SupervisorHandle};

pub use crate::protocol::EXIT_DAEMON_ALREADY_RUNNING as EXIT_ALREADY_RUNNING;

/// Entry point of `rcluster __daemon` (`__daemon --handoff <fd>`: the new image of an
/// `update`, which takes over from the previous one).
pub fn main(home: Home) -> Result<i32> {
    let handoff = match std::env::args().skip(2).collect::<Vec<_>>().as_slice() {
        [flag, fd] if flag == handoff::HANDOFF_ARG => {
            Some(handoff::read_record(fd).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    let mut carried = handoff::FdsIn::new(handoff.as_ref().map_or(&[][..], |h| &h.fds));
    process::fds::close_inherited_except(handoff.as_ref().map_or(&[][..], |h| &h.fds));
    // The keeper above the daemon (not again in an `update`'s new image: same process).
    if handoff.is_none() {
        if let Some(code) = keeper::split(&home) {
            return Ok(code);
        }
    }
    // One malloc arena: glibc gives each thread that allocates (dealers, log writers, the
    // threads that fork a batch of instances) an arena of its own, kept after the thread ends,
    // which an idle daemon would carry for nothing. Its allocation rate is far too low to
    // contend for one.
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    home.ensure()?;
    let log_file = log::init(&home.daemon_log()).context("cannot open the daemon log")?;
    let lock_file = match &handoff {
        // The previous image's lock: the same open file, so locking it again is ours at once.
        Some(h) => std::fs::File::from(carried.take(h.lock).map_err(anyhow::Error::msg)?),
        None => OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(home.lock())
            .with_context(|| format!("cannot open {}", home.lock().display()))?,
    };
    let lock_fd = lock_file.as_raw_fd();
    let mut lock = match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            crate::dlog!("another daemon holds {}; exiting", home.lock().display());
            return Ok(EXIT_ALREADY_RUNNING);
        }
        Err((_, e)) => return Err(e).context("cannot lock the daemon lock file"),
    };
    let _ = lock.set_len(0);
    // A lock handed over by `update` is at the end of what the previous image wrote.
    let _ = std::io::Seek::rewind(&mut *lock);
    let _ = writeln!(&mut *lock, "{}", std::process::id());
    // Panics and anything written to stderr land in the daemon log, not in /dev/null.
    if nix::unistd::dup2_stderr(&log_file).is_ok() {
        log::stderr_follows();
    }
    drop(log_file);
    raise_nofile_limit();
    process::reaper::become_subreaper().context("cannot become a child subreaper")?;
    crate::dlog!(
        "daemon {} starting, pid {}, home {}",
        crate::protocol::VERSION,
        std::process::id(),
        home.root().display()
    );
    // Not in the new image of an `update`: the run goes on.
    let previous = match handoff {
        Some(_) => None,
        None => previous_run::begin(&home),
    };
    if let Some(previous) = &previous {
        crate::dlog!(
            "the previous daemon (pid {}) did not stop cleanly: killed or crashed",
            previous.pid
        );
    }
    persist::remove_stale_temps(&home);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(home.clone(), lock_fd, handoff, carried, previous));
    drop(runtime);
    // Lines still queued when the apps stopped reach the files before we exit.
    logs::writer::wait_for_writers(Duration::from_secs(2));
    let _ = std::fs::remove_file(home.socket());
    previous_run::end(&home);
    crate::dlog!("daemon stopped");
    drop(lock);
    result.map(|()| 0)
}

pub use crate::protocol::RESURRECT_ENV;

async fn serve(
    home: Home,
    lock_fd: RawFd,
    handoff: Option<handoff::Handoff>,
    mut carried: handoff::FdsIn,
    previous: Option<previous_run::PreviousRun>,
) -> Result<()> {
    let (reaped_tx, mut reaped_rx) = mpsc::unbounded_channel();
    // The first reaping also takes the children that ended while a previous image exec'd.
    process::reaper::spawn_reaper(reaped_tx).context("cannot watch SIGCHLD")?;
    let (cmd_tx, mut cmd_rx) = mpsc::channel(256);
    let handle = SupervisorHandle::new(cmd_tx);
    let listener = match &handoff {
        Some(h) => server::adopt(carried.take(h.control).map_err(anyhow::Error::msg)?)?,
        None => server::bind(&home)?,
    };
    let control_fd = server::raw_fd(&listener);
    let followers = logs::writer::followers();
    let (balancer_tx, mut balancer_rx) = mpsc::unbounded_channel();
    let cluster = ClusterContext {
        events: balancer_tx,
        preload: install_preload(&home),
        trampoline: std::env::current_exe().context("cannot find the rcluster executable")?,
        handoff_fds: Some(supervisor::HandoffFds {
            lock: lock_fd,
            control: control_fd,
        }),
    };
    let mut supervisor = Supervisor::new(home.clone(), followers, cluster);
    supervisor.set_previous_run(previous);
    // At boot (the systemd unit of `rcluster startup`), bring the saved list back; not in the
    // new image of an `update`, whose environment still says so but which runs what it was
    // handed.
    let resurrect = handoff.is_none() && std::env::var_os(RESURRECT_ENV).is_some_and(|v| v == "1");
    if let Some(handoff) = handoff {
        let client = carried.take(handoff.client);
        let from = handoff.from_version.clone();
        supervisor.adopt(handoff, &mut carried);
        carried.close_rest();
        let message = format!(
            "daemon pid {} re-executed: rcluster {from} → {}; every app, instance and socket kept",
            std::process::id(),
            crate::protocol::VERSION
        );
        crate::dlog!("update: {message}");
        if let Ok(client) = client {
            handoff::answer(client, &crate::protocol::Response::Done { message });
        }
    }
    // Told once the answer to `kill` has been written, so the client hears it before we exit.
    let answered = Arc::new(Notify::new());
    signals::spawn_signal_handler(handle.clone(), answered.clone())?;
    let accept = tokio::spawn(server::accept_loop(
        listener,
        handle.clone(),
        answered.clone(),
    ));
    // The supervisor ends after a `kill` (or SIGTERM) has stopped everything.
    if resurrect {
        let resurrector = handle.clone();
        tokio::spawn(async move {
            match resurrector
                .call(|reply| supervisor::Cmd::Resurrect { reply })
                .await
            {
                Ok((started, _notes)) => {
                    crate::dlog!("resurrected {} instance(s) at start", started.len())
                }
                Err(e) => crate::dlog!("resurrect at start: {}", e.message),
            }
        });
    }
    supervisor
        .run(&mut cmd_rx, &mut reaped_rx, &mut balancer_rx)
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(2), answered.notified()).await;
    accept.abort();
    Ok(())
}

/// Write the embedded preload library into the home (by content hash, so an upgraded binary
/// never overwrites a library that running instances have mapped).
fn install_preload(home: &Home) -> Option<std::path::PathBuf> {
    match crate::preload::install(&home.lib_dir()) {
        Ok(path) => Some(path),
        Err(e) => {
            crate::dlog!(
                "cannot install the preload library: {e}; round-robin cluster mode is unavailable"
            );
            None
        }
    }
}

/// File descriptors in flight and held per instance count against the daemon's limit.
fn raise_nofile_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
}
