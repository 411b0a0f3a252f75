//! `monit`: the list, refreshed every interval, each instance's CPU measured over that interval
//! (pm2's monit without its log pane: `logs -f` is the live log). On a terminal it redraws in
//! place on the alternate screen and restores the screen on Ctrl-C; otherwise it prints one table
//! per refresh, as `top -b` does.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};

use super::control::selected;
use crate::cli::args::MonitArgs;
use crate::cli::client::Client;
use crate::cli::render;
use crate::paths::Home;
use crate::protocol::Target;

const ENTER_SCREEN: &str = "\x1b[?1049h\x1b[?25l";
const LEAVE_SCREEN: &str = "\x1b[?25h\x1b[?1049l";
const HOME_AND_CLEAR: &str = "\x1b[H\x1b[2J";

static QUIT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_quit(_: libc::c_int) {
    QUIT.store(true, Ordering::SeqCst);
}

pub fn run(home: &Home, args: &MonitArgs) -> Result<i32> {
    let interval = crate::config::units::parse_duration_ms(&args.interval)
        .map_err(|e| anyhow::anyhow!("--interval: {e}"))?
        .max(100);
    let interval = Duration::from_millis(interval);
    let mut client = Client::connect(home)?;
    let on_terminal = std::io::stdout().is_terminal();
    let quit = SigAction::new(
        SigHandler::Handler(on_quit),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &quit) }.context("cannot handle Ctrl-C")?;
    }
    let mut out = std::io::stdout().lock();
    if on_terminal {
        write!(out, "{ENTER_SCREEN}")?;
    }
    let result = refresh_loop(&mut client, &mut out, args, interval, on_terminal);
    if on_terminal {
        write!(out, "{LEAVE_SCREEN}")?;
        out.flush()?;
    }
    result.map(|()| 0)
}

fn refresh_loop(
    client: &mut Client,
    out: &mut impl Write,
    args: &MonitArgs,
    interval: Duration,
    on_terminal: bool,
) -> Result<()> {
    let target = args.target.as_deref().map_or(Target::All, Target::parse);
    let mut shown = 0;
    while !QUIT.load(Ordering::SeqCst) {
        let instances = selected(client, &target)?;
        let header = format!(
            "rcluster monit · {} · every {} ms{}",
            chrono::Local::now().format("%H:%M:%S"),
            interval.as_millis(),
            if on_terminal {
                " · Ctrl-C to quit"
            } else {
                ""
            }
        );
        let body = if instances.is_empty() {
            "no instance".to_owned()
        } else {
            render::instances_table(&instances)
        };
        if on_terminal {
            write!(out, "{HOME_AND_CLEAR}{header}\n\n{body}\n")?;
        } else {
            writeln!(out, "{header}\n{body}\n")?;
        }
        out.flush()?;
        shown += 1;
        if args.count.is_some_and(|count| shown >= count) {
            break;
        }
        let next = Instant::now() + interval;
        while !QUIT.load(Ordering::SeqCst) && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(50).min(interval));
        }
    }
    Ok(())
}
