//! Where `monit`'s messages come from, each on its own thread and connection so that none
//! waits for another: the list, polled at the interval (the daemon reads /proc only when asked,
//! so nothing samples while no one looks); the apps' log lines, followed as `logs -f` does; the
//! terminal's keys and resizes; and each action (restart, reload, stop) the keys ask for.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use ratatui::crossterm::event::{self, Event};

use super::model::{Msg, Verb};
use crate::cli::client::Client;
use crate::paths::Home;
use crate::protocol::model::InstanceView;
use crate::protocol::{LogStreams, Request, Response, Target};

/// Everything the loop waits on.
pub enum Input {
    Feed(Msg),
    Terminal(Event),
}

/// How long to wait before trying a daemon that did not answer again.
const RETRY: Duration = Duration::from_secs(1);
/// Lines of each log file shown at start.
const TAIL_LINES: usize = 20;

/// The list every `interval`, and at once when poked (after an action). The apps' definitions
/// come with it whenever the set of app names changes.
pub fn spawn_poller(home: Home, interval: Duration, tx: Sender<Input>, poke: Receiver<()>) {
    std::thread::spawn(move || {
        let mut client: Option<Client> = None;
        let mut names: Vec<String> = Vec::new();
        loop {
            let message = match list(&home, &mut client) {
                Ok(instances) => {
                    let now = app_names(&instances);
                    if now != names {
                        let described = client.as_mut().map(|c| {
                            c.call(&Request::Describe {
                                target: Target::All,
                            })
                        });
                        if let Some(Ok(Response::Apps { apps })) = described {
                            if tx.send(Input::Feed(Msg::Specs(apps))).is_err() {
                                return;
                            }
                        }
                        names = now;
                    }
                    Msg::List(instances)
                }
                Err(why) => Msg::Unreachable(Some(why)),
            };
            let wait = if client.is_some() { interval } else { RETRY };
            if tx.send(Input::Feed(message)).is_err() {
                return;
            }
            match poke.recv_timeout(wait) {
                Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    });
}

/// One list, on the open connection or a new one (a connection the daemon has closed, after
/// an `update` say, is replaced once before the daemon is reported unreachable).
fn list(home: &Home, client: &mut Option<Client>) -> Result<Vec<InstanceView>, String> {
    for attempt in 0..2 {
        let open = match client {
            Some(open) => open,
            None => match Client::connect_existing(home) {
                Ok(Some(new)) => client.insert(new),
                Ok(None) => return Err("the daemon is not running".into()),
                Err(e) => return Err(format!("{e:#}")),
            },
        };
        match open.call(&Request::List) {
            Ok(Response::Instances { instances, .. }) => return Ok(instances),
            Ok(other) => return Err(format!("unexpected answer from the daemon: {other:?}")),
            Err(e) => {
                *client = None;
                if attempt == 1 {
                    return Err(format!("{e:#}"));
                }
            }
        }
    }
    Err("the daemon is not running".into())
}

fn app_names(instances: &[InstanceView]) -> Vec<String> {
    let mut names: Vec<String> = instances.iter().map(|i| i.name.clone()).collect();
    names.sort();
    names.dedup();
    names
}

/// Every app's log lines and lifecycle records: the tail of its files, then live lines; after the daemon is gone
/// (or replaced by `update`), again from its next image, live lines only.
pub fn spawn_logs(home: Home, tx: Sender<Input>) {
    std::thread::spawn(move || {
        let mut lines = TAIL_LINES;
        loop {
            if let Ok(Some(mut client)) = Client::connect_existing(&home) {
                let request = Request::Logs {
                    target: Target::All,
                    lines,
                    follow: true,
                    streams: LogStreams::Both,
                };
                if client.send(&request).is_ok() {
                    while let Ok(Some(response)) = client.next_response() {
                        let message = match response {
                            Response::LogTail {
                                app,
                                stream,
                                lines,
                                id,
                                ..
                            } => Msg::Lines {
                                app,
                                id,
                                stream: Some(stream),
                                lines,
                            },
                            Response::LogLines {
                                id,
                                app,
                                stream,
                                lines,
                                ..
                            } => Msg::Lines {
                                app,
                                id: Some(id),
                                stream: Some(stream),
                                lines,
                            },
                            // Starts, exits, restarts and why: among the app's lines, as pm2's
                            // monit shows its own log lines.
                            Response::Lifecycle(event) => Msg::Lines {
                                lines: vec![event.message()],
                                app: event.app,
                                id: Some(event.id),
                                stream: None,
                            },
                            Response::End | Response::Error(_) => break,
                            _ => continue,
                        };
                        if tx.send(Input::Feed(message)).is_err() {
                            return;
                        }
                    }
                }
                lines = 0;
            }
            std::thread::sleep(RETRY); // the daemon is gone or restarting: try again later
        }
    });
}

/// The terminal's events (keys, resizes), read as they come.
pub fn spawn_terminal(tx: Sender<Input>) {
    std::thread::spawn(move || {
        while let Ok(event) = event::read() {
            if tx.send(Input::Terminal(event)).is_err() {
                return;
            }
        }
    });
}

/// One action on an app; its outcome comes back as a message, then the list is refreshed.
pub fn spawn_action(home: Home, verb: Verb, app: String, tx: Sender<Input>, poke: Sender<()>) {
    std::thread::spawn(move || {
        let target = Target::Name(app.clone());
        let request = match verb {
            Verb::Restart => Request::Restart {
                target,
                apps: Vec::new(),
                base_env: None,
            },
            Verb::Reload => Request::Reload {
                target,
                apps: Vec::new(),
                parallel: 1,
                base_env: None,
            },
            Verb::Stop => Request::Stop { target },
        };
        let outcome = Client::connect_existing(&home).and_then(|client| {
            client
                .ok_or_else(|| anyhow::anyhow!("the daemon is not running"))?
                .call(&request)
        });
        // What the daemon wants known about how it went (a reload done as a restart) follows.
        let notes = match &outcome {
            Ok(Response::Instances { notes, .. }) if !notes.is_empty() => {
                format!(" ({})", notes.join("; "))
            }
            _ => String::new(),
        };
        let done = match (verb, outcome) {
            (Verb::Restart, Ok(_)) => format!("restarted {app}{notes}"),
            (Verb::Reload, Ok(_)) => format!("reloaded {app}{notes}"),
            (Verb::Stop, Ok(_)) => format!("stopped {app}{notes}"),
            (verb, Err(e)) => format!("{} {app} failed: {e:#}", verb.doing()),
        };
        let _ = tx.send(Input::Feed(Msg::Done(done)));
        let _ = poke.send(());
    });
}
