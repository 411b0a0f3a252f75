//! The command line: clap definitions (`args`), the connection to the daemon (`client`,
//! `autostart`), output (`render`) and one module per verb family (`cmd`). Never imports the
//! daemon: everything goes through `protocol`.

pub mod args;
pub mod autostart;
pub mod client;
pub mod cmd;
pub mod render;

pub use args::{Cli, Command};

use anyhow::Result;

use crate::paths::Home;

/// Run one CLI command; the exit code on success.
pub fn run(cli: Cli) -> Result<i32> {
    let home = Home::from_env()?;
    cmd::dispatch(cli, &home)
}
