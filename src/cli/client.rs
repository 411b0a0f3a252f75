//! A blocking connection to the daemon: connect (starting the daemon when asked), exchange
//! `Hello`, send requests, read responses. Blocking keeps a `list` to one connect and one
//! round trip (the hello and the request go together) with no async runtime to start.

use std::io::ErrorKind as IoKind;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use interprocess::local_socket::{prelude::*, GenericFilePath, Stream};

use super::autostart;
use crate::paths::Home;
use crate::protocol::frame::{decode, read_frame_blocking, write_frame_blocking};
use crate::protocol::{ErrorReply, Hello, Request, Response};

pub struct Client {
    stream: Stream,
    /// True when this command started the daemon.
    pub started_daemon: bool,
    /// The daemon's hello is still to be read (see `greet`).
    hello_pending: bool,
    /// A daemon of another version is accepted (only `kill` and `update` talk to one).
    any_version: bool,
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
            Some(stream) => Client::greet(stream, false, false),
            None => {
                let stream = autostart::start_daemon(home, try_connect)?;
                Client::greet(stream, true, false)
            }
        }
    }

    /// Connect only if a daemon runs already, whatever its version (for `kill`, the one request
    /// a daemon of another version still takes).
    pub fn connect_existing_any_version(home: &Home) -> Result<Option<Client>> {
        match try_connect(home)? {
            Some(stream) => Ok(Some(Client::greet(stream, false, true)?.greeted()?)),
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
            .set_recv_timeout(Some(limit))
            .and_then(|()| stream.set_send_timeout(Some(limit)))
            .context("cannot set a time limit on the daemon's socket")?;
        Ok(Some(Client::greet(stream, false, false)?.greeted()?))
    }

    /// Connect only if a daemon of this version runs already (and has answered).
    pub fn connect_existing(home: &Home) -> Result<Option<Client>> {
        match try_connect(home)? {
            Some(stream) => Ok(Some(Client::greet(stream, false, false)?.greeted()?)),
            None => Ok(None),
        }
    }

    /// Send our hello; the daemon's is read before the first answer (`read_hello`).
    fn greet(mut stream: Stream, started_daemon: bool, any_version: bool) -> Result<Client> {
        write_frame_blocking(&mut stream, &Hello::ours()).context("cannot talk to the daemon")?;
        Ok(Client {
            stream,
            started_daemon,
            hello_pending: true,
            any_version,
        })
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
            .context("cannot read the daemon's hello")?
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
        self.read_hello()?;
        loop {
            let Some(body) =
                read_frame_blocking(&mut self.stream).context("cannot read the daemon's answer")?
            else {
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
