//! `monit` when stdout is not a terminal (or with `--count`): the list as a table per refresh,
//! each instance's CPU measured over the interval, as `top -b` prints. (pm2 monit draws its
//! dashboard into a pipe anyway and never ends.)

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::cli::args::MonitArgs;
use crate::cli::client::Client;
use crate::cli::cmd::control::selected;
use crate::cli::render;
use crate::protocol::Target;

pub fn run(
    mut client: Client,
    args: &MonitArgs,
    interval: Duration,
    quit: &AtomicBool,
) -> Result<()> {
    let target = args.target.as_deref().map_or(Target::All, Target::parse);
    let mut out = std::io::stdout().lock();
    let mut shown = 0;
    while !quit.load(Ordering::SeqCst) {
        let instances = selected(&mut client, &target)?;
        let header = format!(
            "rcluster monit · {} · every {} ms",
            chrono::Local::now().format("%H:%M:%S"),
            interval.as_millis(),
        );
        let body = if instances.is_empty() {
            "no instance".to_owned()
        } else {
            render::instances_table(&instances)
        };
        if let Err(e) = writeln!(out, "{header}\n{body}\n").and_then(|()| out.flush()) {
            // A closed pipe (`| head`) ends the command quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
        shown += 1;
        if args.count.is_some_and(|count| shown >= count) {
            break;
        }
        let next = Instant::now() + interval;
        while !quit.load(Ordering::SeqCst) && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(50).min(interval));
        }
    }
    Ok(())
}
