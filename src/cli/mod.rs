//! The command line: clap definitions (`args`), the connection to the daemon (`client`,
//! `autostart`), output (`render`) and one module per verb family (`cmd`). Never imports the
//! daemon: everything goes through `protocol`.

pub mod args;
pub mod autostart;
pub mod client;
pub mod cmd;
pub mod complete;
pub mod inspect;
pub mod pm2_list;
pub mod render;
pub mod target;

pub use args::{Cli, Command};

use anyhow::{Context, Result};

use crate::paths::Home;

/// What `main` does after the command line is handled.
pub enum Outcome {
    /// Done: exit with this code.
    Exit(i32),
    /// `rcluster run`: supervise these apps in the foreground (no daemon).
    Foreground(Vec<crate::protocol::model::AppSpec>),
}

/// Run one CLI command.
pub fn run(cli: Cli) -> Result<Outcome> {
    if let Command::Run(args) = cli.command {
        return cmd::start::foreground_specs(*args).map(Outcome::Foreground);
    }
    if let Command::Start(args) = &cli.command {
        if args.no_daemon {
            let args = (**args).clone();
            return cmd::start::foreground_specs(args).map(Outcome::Foreground);
        }
    }
    if let Command::Serve(args) = &cli.command {
        if args.no_daemon {
            let start = cmd::serve::start_args(args)?;
            return cmd::start::foreground_specs(start).map(Outcome::Foreground);
        }
    }
    if cli.silent && cli.command.reports_a_change() {
        silence_stdout()?;
    }
    let home = Home::from_env()?;
    cmd::dispatch(cli, &home).map(Outcome::Exit)
}

/// `-s`: stdout goes to /dev/null from here on (stderr stays).
fn silence_stdout() -> Result<()> {
    use std::os::fd::AsRawFd;
    let null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .context("cannot open /dev/null for --silent")?;
    // SAFETY: dup2 onto fd 1, which this process owns; `null` stays open until it returns.
    if unsafe { libc::dup2(null.as_raw_fd(), libc::STDOUT_FILENO) } < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot silence stdout");
    }
    Ok(())
}
