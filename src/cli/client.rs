//! A blocking connection to the daemon: connect (starting the daemon when asked), exchange
//! `Hello`, send requests, read responses. Blocking keeps a `list` to one connect and one
//! round trip (the hello and the request go together) with no async runtime to start.
//!
//! A daemon that does not answer (overloaded, stuck, out of descriptors) must not hang the
//! CLI: its hello, and the answer to a request it answers at once (`list`, `describe`...), are
//! awaited at most `RCLUSTER_TIMEOUT` (default 20 s); then the command fails and says so. The
//! answer to a request that waits for apps (`start`, `reload`, `stop`...) is awaited as long as
//! they take, once the daemon has shown it is there by its hello.

use std::io::ErrorKind as IoKind;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use interprocess::local_socket::{prelude::*, GenericFilePath, Stream};

use super::autostart;
use crate::paths::Home;
use crate::protocol::frame::{decode, read_frame_blocking, write_frame_blocking, FrameError};
use crate::protocol::{ErrorReply, Hello, Request, Response};

/// The environment's limit on waiting for the daemon (`30s`, `500ms`).
pub const TIMEOUT_ENV: &str = "RCLUSTER_TIMEOUT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// How long to wait for the daemon's hello and its quick answers.
fn wait_limit() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|text| crate::config::units::parse_duration_ms(&text).ok())
        .filter(|ms| *ms > 0)
        .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
}

pub struct Client {
    stream: Stream,
    /// The daemon's log, named when it does not answer.
    daemon_log: PathBuf,
    /// The limit on a wait for the daemon, and whether every read keeps it (else only the
    /// hello and quick answers do).
    limit: Duration,
    always_bounded: bool,
    /// True when this command started the daemon.
    pub started_daemon: bool,
    /// The daemon's hello is still to be read (see `greet`).
    hello_pending: bool,
    /// A daemon of another version is accepted (only `kill` and `update` talk to one).
    any_version: bool,
    /// The request sent last is one answered at once.
    quick_answer: bool,
}

/// An error the daemon answered with, kept whole so the exit code can follow its kind.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DaemonError(pub ErrorReply);

impl Client {
    /// Connect, starting the daemon if none answers. The daemon's hello is read with the first
    /// answer, so that a `list` costs one round trip, not two.
    pub fn connect(home: &Home) -> Result<Client> {
        match try_connect(home)? {
            Some(stream) => Client::greet(home, stream, false, false),
            None => {
                let stream = autostart::start_daemon(home, try_connect)?;
                Client::greet(home, stream, true, false)
            }
        }
    }

    /// Connect only if a daemon runs already, whatever its version (for `kill`, the one request
    /// a daemon of another version still takes).
    pub fn connect_existing_any_version(home: &Home) -> Result<Option<Client>> {
        match try_connect(home)? {
            Some(stream) => Ok(Some(Client::greet(home, stream, false, true)?.greeted()?)),
            None => Ok(None),
        }
    }

    /// As `connect_existing`, waiting at most `limit` for each read and write (shell
    /// completion: a stuck daemon must not hang a TAB).
    pub fn connect_existing_within(home: &Home, limit: Duration) -> Result<Option<Client>> {
        let Some(stream) = try_connect(home)? else {
            return Ok(None);
        };
        stream
            .set_send_timeout(Some(limit))
            .context("cannot set a time limit on the daemon's socket")?;
        let mut client = Client::greet(home, stream, false, false)?;
        client.limit = limit;
        client.always_bounded = true;
        client.bound_reads(true)?;
        Ok(Some(client.greeted()?))
    }

    /// Connect only if a daemon of this version runs already (and has answered).
    pub fn connect_existing(home: &Home) -> Result<Option<Client>> {
        match try_connect(home)? {
            Some(stream) => Ok(Some(Client::greet(home, stream, false, false)?.greeted()?)),
            None => Ok(None),
        }
    }

    /// Send our hello; the daemon's is read before the first answer (`read_hello`), within
    /// the wait limit.
    fn greet(
        home: &Home,
        mut stream: Stream,
        started_daemon: bool,
        any_version: bool,
    ) -> Result<Client> {
        write_frame_blocking(&mut stream, &Hello::ours()).context("cannot talk to the daemon")?;
        let mut client = Client {
            stream,
            daemon_log: home.daemon_log(),
            limit: wait_limit(),
            always_bounded: false,
            started_daemon,
            hello_pending: true,
            any_version,
            quick_answer: true,
        };
        client.bound_reads(true)?;
        Ok(client)
    }

    /// Reads wait at most the limit (`bounded`), or as long as the daemon takes.
    fn bound_reads(&mut self, bounded: bool) -> Result<()> {
        let limit = (bounded || self.always_bounded).then_some(self.limit);
        self.stream
            .set_recv_timeout(limit)
            .context("cannot set a time limit on the daemon's socket")
    }

    /// A read that failed: a clear error when it is the wait limit that ran out.
    fn read_error(&self, e: FrameError, what: &str) -> anyhow::Error {
        match &e {
            FrameError::Io(io) if matches!(io.kind(), IoKind::WouldBlock | IoKind::TimedOut) => {
                anyhow!(
                    "the daemon did not answer within {} ({what}): it may be overloaded or stuck; see {} ({TIMEOUT_ENV}=60s waits longer)",
                    match self.limit.as_millis() {
                        ms if ms % 1000 == 0 => format!("{} s", ms / 1000),
                        ms => format!("{ms} ms"),
                    },
                    self.daemon_log.display()
                )
            }
            _ => anyhow::Error::new(e).context(format!("cannot read {what}")),
        }
    }

    /// This client once the daemon's hello is read and checked.
    fn greeted(mut self) -> Result<Client> {
        self.read_hello()?;
        Ok(self)
    }

    fn read_hello(&mut self) -> Result<()> {
        if !self.hello_pending {
            return Ok(());
        }
        self.hello_pending = false;
        let body = read_frame_blocking(&mut self.stream)
            .map_err(|e| self.read_error(e, "its hello"))?
            .ok_or_else(|| anyhow!("the daemon closed the connection"))?;
        if let Ok(Response::Error(e)) = decode::<Response>(&body) {
            return Err(DaemonError(e).into());
        }
        let theirs: Hello =
            decode(&body).context("the daemon answered something that is not a hello")?;
        if let Some(message) = Hello::ours().mismatch(&theirs) {
            if !self.any_version {
                bail!(message);
            }
            // The daemon's version-mismatch error follows its hello.
            let _ = read_frame_blocking(&mut self.stream);
        }
        Ok(())
    }

    pub fn send(&mut self, request: &Request) -> Result<()> {
        self.quick_answer = request.answers_at_once();
        if !self.hello_pending {
            self.bound_reads(self.quick_answer)?;
        }
        if let Err(e) = write_frame_blocking(&mut self.stream, request) {
            // A daemon that refused us (another user's, say) has hung up: its reason is the
            // better error.
            self.read_hello()?;
            return Err(e).context("cannot send the request to the daemon");
        }
        Ok(())
    }

    /// The next response; `None` when the daemon hung up. Notices ahead of it go to stderr.
    pub fn next_response(&mut self) -> Result<Option<Response>> {
        if self.hello_pending {
            self.read_hello()?;
            self.bound_reads(self.quick_answer)?;
        }
        loop {
            let read = read_frame_blocking(&mut self.stream);
            let Some(body) = read.map_err(|e| self.read_error(e, "the answer"))? else {
                return Ok(None);
            };
            match decode(&body).context("malformed answer from the daemon")? {
                Response::Notice { message } => eprintln!("[rcluster] {message}"),
                response => return Ok(Some(response)),
            }
        }
    }

    /// One request, one response; an error response becomes an error.
    pub fn call(&mut self, request: &Request) -> Result<Response> {
        self.send(request)?;
        match self.next_response()? {
            Some(Response::Error(e)) => Err(DaemonError(e).into()),
            Some(response) => Ok(response),
            None => bail!("the daemon closed the connection before answering"),
        }
    }

    /// Wait (bounded) for the daemon to close the connection, e.g. after `kill`.
    pub fn wait_closed(mut self, limit: Duration) {
        let _ = self.stream.set_recv_timeout(Some(limit));
        while let Ok(Some(_)) = read_frame_blocking(&mut self.stream) {}
    }
}

/// `Ok(None)` when no daemon listens (no socket, or a stale one).
fn try_connect(home: &Home) -> Result<Option<Stream>> {
    let path = home.socket();
    let name = path
        .as_path()
        .to_fs_name::<GenericFilePath>()
        .with_context(|| format!("bad socket path {}", path.display()))?;
    match Stream::connect(name) {
        Ok(stream) => Ok(Some(stream)),
        Err(e) if matches!(e.kind(), IoKind::NotFound | IoKind::ConnectionRefused) => Ok(None),
        Err(e) => {
            Err(e).with_context(|| format!("cannot connect to the daemon at {}", path.display()))
        }
    }
}
