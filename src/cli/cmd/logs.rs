//! `rcluster logs`: the tail of each log file, then (with --follow) live lines as the daemon
//! captures them, prefixed `id|name |` and coloured per app on a terminal.

use std::io::{IsTerminal, Write};

use anyhow::Result;

use crate::cli::args::LogsArgs;
use crate::cli::client::{Client, DaemonError};
use crate::paths::Home;
use crate::protocol::response::Stream;
use crate::protocol::{LogStreams, Request, Response, Target};

const PALETTE: [u8; 6] = [36, 33, 35, 32, 34, 31];

pub fn run(home: &Home, args: &LogsArgs) -> Result<i32> {
    let mut client = Client::connect(home)?;
    let streams = if args.out {
        LogStreams::Out
    } else if args.err {
        LogStreams::Err
    } else {
        LogStreams::Both
    };
    client.send(&Request::Logs {
        target: args.target.as_deref().map_or(Target::All, Target::parse),
        lines: args.lines,
        follow: args.follow,
        streams,
    })?;
    let colour = std::io::stdout().is_terminal() && !args.raw;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    while let Some(response) = client.next_response()? {
        let written = match response {
            Response::LogTail { app, stream, file, lines } => {
                if !args.raw {
                    let which = if stream == Stream::Err { "error" } else { "out" };
                    writeln!(out, "==> {} ({which}, last {} lines) <==", file.display(), lines.len())?;
                }
                lines
                    .iter()
                    .try_for_each(|line| print_line(&mut out, None, &app, line, args.raw, colour))
            }
            Response::LogLines { id, app, lines, .. } => lines
                .iter()
                .try_for_each(|line| print_line(&mut out, Some(id), &app, line, args.raw, colour)),
            Response::LogsDropped { records } => writeln!(
                out,
                "[rcluster] {records} log records skipped: this reader fell behind (the files have them)"
            ),
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

fn print_line(
    out: &mut impl Write,
    id: Option<u32>,
    app: &str,
    line: &str,
    raw: bool,
    colour: bool,
) -> std::io::Result<()> {
    if raw {
        return writeln!(out, "{line}");
    }
    let prefix = match id {
        Some(id) => format!("{id}|{app:<10}|"),
        None => format!("{app:<12}|"),
    };
    if colour {
        let hue = PALETTE[app
            .bytes()
            .fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
            % PALETTE.len()];
        writeln!(out, "\x1b[{hue}m{prefix}\x1b[0m {line}")
    } else {
        writeln!(out, "{prefix} {line}")
    }
}
