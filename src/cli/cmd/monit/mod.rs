//! `monit`: on a terminal, pm2 monit's dashboard (ratatui): the instances with live CPU and
//! memory, the selected app's log lines, its CPU and memory over the last minutes, its details,
//! and keys to restart, reload, stop and filter; when stdout is not a terminal (or with
//! `--count`), the list as a table per refresh, as `top -b` prints (`plain`). The daemon does no
//! sampling of its own: each refresh is a `list` request, CPU measured since the previous one.

mod draw;
mod feed;
mod model;
mod plain;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use anyhow::{Context, Result};
use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
use ratatui::crossterm::event::{Event, KeyEventKind};

use crate::cli::args::MonitArgs;
use crate::cli::client::Client;
use crate::paths::Home;
use feed::Input;
use model::{Asked, Model};

static QUIT: AtomicBool = AtomicBool::new(false);

extern "C" fn on_quit(_: libc::c_int) {
    QUIT.store(true, Ordering::SeqCst);
}

/// How often the loop looks at QUIT (a signal cannot wake a channel) and the clock.
const TICK: Duration = Duration::from_millis(250);

pub fn run(home: &Home, args: &MonitArgs) -> Result<i32> {
    let interval = crate::config::units::parse_duration_ms(&args.interval)
        .map_err(|e| anyhow::anyhow!("--interval: {e}"))?
        .max(100);
    let interval = Duration::from_millis(interval);
    // Starts the daemon if none runs, as every command that needs it does.
    let client = Client::connect(home)?;
    let quit = SigAction::new(
        SigHandler::Handler(on_quit),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(signal, &quit) }.context("cannot handle Ctrl-C")?;
    }
    let on_terminal = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if !on_terminal || args.count.is_some() {
        return plain::run(client, args, interval, &QUIT).map(|()| 0);
    }
    drop(client);
    dashboard(home, args, interval)
}

fn dashboard(home: &Home, args: &MonitArgs, interval: Duration) -> Result<i32> {
    let (tx, rx) = mpsc::channel();
    let (poke_tx, poke_rx) = mpsc::channel();
    feed::spawn_poller(home.clone(), interval, tx.clone(), poke_rx);
    feed::spawn_logs(home.clone(), tx.clone());
    let mut model = Model {
        filter: args.target.clone().unwrap_or_default(),
        ..Model::default()
    };
    let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
    feed::spawn_terminal(tx.clone());
    let outcome = (|| -> Result<()> {
        loop {
            if QUIT.load(Ordering::SeqCst) {
                return Ok(());
            }
            if std::mem::take(&mut model.dirty) || model.notice().is_some() {
                terminal
                    .draw(|frame| draw::frame(frame, &model))
                    .context("cannot draw")?;
            }
            let input = match rx.recv_timeout(TICK) {
                Ok(input) => input,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            };
            match input {
                Input::Feed(msg) => model.apply(msg),
                Input::Terminal(Event::Key(key)) if key.kind != KeyEventKind::Release => {
                    match model.on_key(key) {
                        Asked::Nothing => {}
                        Asked::Quit => return Ok(()),
                        Asked::Act(verb, app) => {
                            model.apply(model::Msg::Done(format!("{} {app}…", verb.doing())));
                            feed::spawn_action(
                                home.clone(),
                                verb,
                                app,
                                tx.clone(),
                                poke_tx.clone(),
                            );
                        }
                    }
                }
                Input::Terminal(Event::Resize(..)) => model.dirty = true,
                Input::Terminal(_) => {}
            }
        }
    })();
    ratatui::restore();
    outcome.map(|()| 0)
}
