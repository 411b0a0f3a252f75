//! `rcluster logs`: the tail of each log file, then live lines as the daemon captures them
//! until Ctrl-C (`--nostream`: exit after the tail), prefixed `id|name |` and coloured per app on
//! a terminal (plain when piped). `--json` prints one JSON object per line, `--timestamp` stamps
//! live lines with the time they arrive, `--raw` prints the lines alone.
//!
//! Following is the default even when stdout is a pipe, as `pm2 logs` does (`logs | grep x`
//! is a live filter); a follower whose reader has gone (`logs | head`) exits at once, without
//! waiting for a next line to fail on.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

use super::log_view::{Origin, View};
use crate::cli::args::LogsArgs;
use crate::cli::client::{Client, DaemonError};
use crate::paths::Home;
use crate::protocol::{LogStreams, Request, Response, Target};

pub fn run(home: &Home, args: &LogsArgs) -> Result<i32> {
    let follow = !args.nostream;
    let mut client = Client::connect(home)?;
    let streams = if args.out {
        LogStreams::Out
    } else if args.err {
        LogStreams::Err
    } else {
        LogStreams::Both
    };
    let request = |lines| Request::Logs {
        target: args.target.as_deref().map_or(Target::All, Target::parse),
        lines,
        follow,
        streams,
    };
    client.send(&request(args.lines))?;
    if follow {
        exit_when_reader_leaves();
    }
    let view = View {
        raw: args.raw,
        json: args.json,
        timestamp: args.timestamp,
        colour: std::io::stdout().is_terminal() && !args.raw && !args.json,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    // A file's tail comes in several frames; its header is printed once.
    let mut header: Option<PathBuf> = None;
    loop {
        let response = match client.next_response() {
            Ok(Some(response)) => response,
            // The daemon hung up: after `rcluster update`, its new image follows on.
            Ok(None) if follow => match reconnect(home) {
                Some(again) => {
                    client = again;
                    client.send(&request(0))?;
                    continue;
                }
                None => break,
            },
            Ok(None) => break,
            Err(e) => return Err(e),
        };
        let written = match response {
            Response::LogTail {
                app,
                stream,
                file,
                lines,
                id,
                stamped,
            } => {
                let mut result = Ok(());
                if header.as_ref() != Some(&file) {
                    result = view.header(&mut out, &file, stream);
                }
                header = Some(file);
                let origin = Origin {
                    app: &app,
                    stream,
                    id,
                    at_ms: None,
                    stamped,
                };
                result.and_then(|()| {
                    lines
                        .iter()
                        .try_for_each(|line| view.line(&mut out, &origin, line))
                })
            }
            Response::LogLines {
                id,
                app,
                stream,
                lines,
                at_ms,
            } => {
                let origin = Origin {
                    app: &app,
                    stream,
                    id: Some(id),
                    // A daemon of this version always says when; 0 would be one that did not.
                    at_ms: Some(at_ms).filter(|ms| *ms > 0).or_else(|| Some(now_ms())),
                    stamped: false,
                };
                lines
                    .iter()
                    .try_for_each(|line| view.line(&mut out, &origin, line))
            }
            Response::Lifecycle(event) => view.event(&mut out, &event),
            // The field counts lines (daemons of this version number the live feed).
            Response::LogsDropped { records } => view.dropped(&mut out, records),
            Response::End => break,
            Response::Error(e) => return Err(DaemonError(e).into()),
            _ => Ok(()),
        };
        if let Err(e) = written.and_then(|()| out.flush()) {
            // A closed pipe (`| head`) ends the command quietly.
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(0);
            }
            return Err(e.into());
        }
    }
    Ok(0)
}

/// When stdout is a pipe or a socket, end the command as soon as its reader closes it: a
/// follower otherwise waits in its read from the daemon until the next line fails to print
/// (`rcluster logs web | head` would hang on a quiet app).
fn exit_when_reader_leaves() {
    use std::os::fd::AsRawFd;
    let fd = std::io::stdout().as_raw_fd();
    // SAFETY: fstat fills a plain struct for an fd this process has open.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `stat` is valid for writing.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 {
        return;
    }
    let kind = stat.st_mode & libc::S_IFMT;
    if kind != libc::S_IFIFO && kind != libc::S_IFSOCK {
        return;
    }
    let watcher = std::thread::Builder::new()
        .name("stdout-watch".into())
        .stack_size(64 * 1024)
        .spawn(move || loop {
            // No events asked: poll(2) reports POLLERR/POLLHUP only, which a pipe's write end
            // gets once every reader is gone.
            let mut pfd = libc::pollfd {
                fd,
                events: 0,
                revents: 0,
            };
            // SAFETY: one valid pollfd, for the duration of the call.
            let n = unsafe { libc::poll(&mut pfd, 1, -1) };
            if n > 0 && pfd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
                std::process::exit(0);
            }
            if n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                return;
            }
        });
    // Without the thread, a closed pipe is still noticed at the next line.
    drop(watcher);
}

/// How long a follower waits for a daemon that hung up but still holds its lock.
const RECONNECT_LIMIT: Duration = Duration::from_secs(10);

/// The daemon that this follower's connection ended with is still there (an `update`
/// re-executed it): a connection to it, once it answers. None when it is gone (`kill`).
fn reconnect(home: &Home) -> Option<Client> {
    let deadline = std::time::Instant::now() + RECONNECT_LIMIT;
    while home.daemon_running() && std::time::Instant::now() < deadline {
        if let Ok(Some(client)) = Client::connect_existing(home) {
            eprintln!("[rcluster] the daemon was replaced (update); following on");
            return Some(client);
        }
        std::thread::sleep(Duration::from_millis(10)); // polling interval for the new image
    }
    None
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
