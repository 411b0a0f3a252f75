//! Starting the daemon on first use: re-execute this binary as `rcluster __daemon`, detached in
//! its own session, then poll until it answers. Two CLIs racing here both spawn one; the lock
//! lets one daemon win and the other exit, and both CLIs connect to the winner.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::paths::Home;

/// Generous: a loaded CI machine can take a while to exec a fresh binary.
const START_DEADLINE: Duration = Duration::from_secs(20);

fn spawn_daemon(home: &Home) -> Result<std::process::Child> {
    let exe = std::env::current_exe().context("cannot find the rcluster executable")?;
    let mut command = Command::new(exe);
    command
        .arg("__daemon")
        .env(crate::paths::HOME_ENV, home.root())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    command.spawn().context("cannot start the daemon")
}

pub fn start_daemon<S>(home: &Home, connect: impl Fn(&Home) -> Result<Option<S>>) -> Result<S> {
    home.ensure()?;
    let mut child = spawn_daemon(home)?;
    let deadline = Instant::now() + START_DEADLINE;
    let mut nap = Duration::from_millis(2);
    loop {
        if let Some(stream) = connect(home)? {
            return Ok(stream);
        }
        if let Ok(Some(status)) = child.try_wait() {
            // Exit code 3: another daemon holds the lock; it will answer soon — unless it was
            // shutting down, in which case, once its lock is free, we start one again.
            if status.code() == Some(crate::protocol::EXIT_DAEMON_ALREADY_RUNNING) {
                if !home.daemon_running() {
                    child = spawn_daemon(home)?;
                }
            } else {
                bail!(
                    "the daemon exited at start ({status}); see {}",
                    home.daemon_log().display()
                );
            }
        }
        if Instant::now() > deadline {
            bail!(
                "the daemon did not answer within {} s; see {}",
                START_DEADLINE.as_secs(),
                home.daemon_log().display()
            );
        }
        thread::sleep(nap); // polling interval while the daemon starts
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}
