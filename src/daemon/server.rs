//! The control socket: accept, check the peer's uid (SO_PEERCRED), exchange `Hello`, then turn
//! each request frame into a supervisor command and its answer into response frames. A bad
//! client (garbage, truncated or oversized frames, a wrong version) gets an error and loses its
//! connection; the daemon goes on. Slow or silent clients are bounded (`crate::gate`): each
//! request must arrive whole within the request timeout, and the connections waiting for one
//! are limited; a follower of `logs -f` waits for nothing and is never cut.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use interprocess::local_socket::tokio::{prelude::*, Listener, Stream as LocalStream};
use interprocess::local_socket::{GenericFilePath, ListenerOptions};
use interprocess::os::unix::local_socket::ListenerOptionsExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;

use super::supervisor::{Cmd, SupervisorHandle};
use crate::gate::{descriptor_limit, Gate};
use crate::paths::Home;
use crate::protocol::frame::{decode, read_frame, write_frame, FrameError, MAX_FRAME};
use crate::protocol::{ErrorKind, ErrorReply, Hello, Request, Response, Target};

/// The daemon's environment sets how long a request may take to arrive whole (`500ms`, `30s`).
pub const REQUEST_TIMEOUT_ENV: &str = "RCLUSTER_REQUEST_TIMEOUT";
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// What bounds control connections: the gate, and how long each request may take.
#[derive(Clone)]
struct Limits {
    gate: Gate,
    request_timeout: Duration,
}

impl Limits {
    fn from_env() -> Limits {
        let request_timeout = std::env::var(REQUEST_TIMEOUT_ENV)
            .ok()
            .and_then(|text| crate::config::units::parse_duration_ms(&text).ok())
            .filter(|ms| *ms > 0)
            .map_or(DEFAULT_REQUEST_TIMEOUT, Duration::from_millis);
        // Half the descriptors at most for control connections, so that apps can always start;
        // an eighth of them may wait for a request.
        let gate = Gate::new(|| {
            let limit = descriptor_limit();
            ((limit / 2).clamp(16, 4096), (limit / 8).clamp(8, 256))
        });
        Limits {
            gate,
            request_timeout,
        }
    }

    /// The next whole frame, unless the request timeout passes or newer connections push this
    /// one out first (`None`: the connection is to be closed).
    async fn next_frame<R: AsyncRead + Unpin>(
        &self,
        rx: &mut R,
    ) -> Option<Result<Option<Vec<u8>>, FrameError>> {
        let mut waiting = self.gate.wait();
        let read = waiting.unless_pushed_out(read_frame(rx));
        tokio::time::timeout(self.request_timeout, read)
            .await
            .ok()
            .flatten()
    }
}

pub fn bind(home: &Home) -> Result<Listener> {
    let path = home.socket();
    // We hold the lock, so a socket file left here belongs to a dead daemon.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot remove stale {}", path.display())),
    }
    let name = path
        .as_path()
        .to_fs_name::<GenericFilePath>()
        .with_context(|| format!("bad socket path {}", path.display()))?;
    ListenerOptions::new()
        .name(name)
        .mode(0o600)
        .create_tokio()
        .with_context(|| format!("cannot listen on {}", path.display()))
}

/// The new image of an `update`: the control socket the previous one listened on.
pub fn adopt(fd: std::os::fd::OwnedFd) -> Result<Listener> {
    let listener = interprocess::os::unix::uds_local_socket::tokio::Listener::try_from(fd)
        .context("cannot take over the control socket")?;
    Ok(Listener::from(listener))
}

pub fn raw_fd(listener: &Listener) -> std::os::fd::RawFd {
    use std::os::fd::{AsFd, AsRawFd};
    let Listener::UdSocket(listener) = listener;
    listener.as_fd().as_raw_fd()
}

pub async fn accept_loop(listener: Listener, handle: SupervisorHandle, kill_answered: Arc<Notify>) {
    let limits = Limits::from_env();
    loop {
        match listener.accept().await {
            Ok(conn) => {
                tokio::spawn(serve_connection(
                    conn,
                    handle.clone(),
                    kill_answered.clone(),
                    limits.clone(),
                ));
            }
            Err(e) => {
                crate::dlog!("accept on the control socket failed: {e}");
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection(
    conn: LocalStream,
    handle: SupervisorHandle,
    kill_answered: Arc<Notify>,
    limits: Limits,
) {
    // `&Stream` reads and writes: one borrow for each direction.
    let (mut rx, mut tx) = (&conn, &conn);
    let _admitted = match limits.gate.admit() {
        Ok(admitted) => admitted,
        Err(open) => {
            let message = format!(
                "the daemon has {open} control connections open, as many as it takes (half its file descriptor limit), and is answering all of them; try again shortly"
            );
            let _ = send_error(&mut tx, ErrorKind::Os, &message).await;
            return;
        }
    };
    let our_uid = nix::unistd::geteuid().as_raw();
    let peer_uid = conn.peer_creds().ok().and_then(|c| c.euid());
    if peer_uid != Some(our_uid) {
        crate::dlog!("refused a client of uid {peer_uid:?}");
        let _ = send_error(
            &mut tx,
            ErrorKind::PermissionDenied,
            "this daemon belongs to another user",
        )
        .await;
        return;
    }
    match limits.next_frame(&mut rx).await {
        Some(Ok(Some(body))) => match decode::<Hello>(&body) {
            Ok(peer) => {
                let ours = Hello::ours();
                let _ = write_frame(&mut tx, &ours).await;
                if let Some(message) = peer.mismatch(&ours) {
                    let _ = send_error(&mut tx, ErrorKind::VersionMismatch, &message).await;
                    // One thing a CLI of another version may still ask: `kill`, so that an
                    // upgrade can replace this daemon. Its frame is the same in every version.
                    if let Some(Ok(Some(body))) = limits.next_frame(&mut rx).await {
                        match decode::<Request>(&body) {
                            Ok(Request::Kill) => {
                                let _ =
                                    handle_request(Request::Kill, &handle, &mut rx, &mut tx).await;
                                kill_answered.notify_one();
                            }
                            Ok(Request::Update { exe, format }) => {
                                update(exe, format, &conn, &handle).await
                            }
                            _ => {}
                        }
                    }
                    return;
                }
            }
            Err(e) => {
                let _ = send_error(
                    &mut tx,
                    ErrorKind::BadRequest,
                    &format!("expected a hello: {e}"),
                )
                .await;
                return;
            }
        },
        Some(Ok(None)) => return,
        Some(Err(e)) => {
            let _ = send_error(&mut tx, ErrorKind::BadRequest, &e.to_string()).await;
            return;
        }
        // Silent too long, or pushed out by newer connections.
        None => return,
    }
    loop {
        let body = match limits.next_frame(&mut rx).await {
            Some(Ok(Some(body))) => body,
            Some(Ok(None)) | None => return,
            Some(Err(FrameError::Io(_))) => return,
            Some(Err(e)) => {
                let _ = send_error(&mut tx, ErrorKind::BadRequest, &e.to_string()).await;
                return;
            }
        };
        let request = match decode::<Request>(&body) {
            Ok(request) => request,
            Err(e) => {
                let _ = send_error(
                    &mut tx,
                    ErrorKind::BadRequest,
                    &format!("malformed request: {e}"),
                )
                .await;
                return;
            }
        };
        if let Request::Update { exe, format } = request {
            return update(exe, format, &conn, &handle).await;
        }
        let is_kill = matches!(request, Request::Kill);
        let written = handle_request(request, &handle, &mut rx, &mut tx).await;
        if is_kill {
            kill_answered.notify_one();
        }
        if written.is_err() {
            return;
        }
    }
}

/// `update`: this connection goes with the daemon into its next image, which answers it; here
/// only a refusal is written.
async fn update(
    exe: std::path::PathBuf,
    format: u32,
    conn: &LocalStream,
    handle: &SupervisorHandle,
) {
    use std::os::fd::AsFd;
    let mut tx = conn;
    let ours = super::handoff::FORMAT;
    if format != ours {
        let message = format!(
            "{} cannot take over from this daemon (it reads state format {format}, this daemon writes {ours})",
            exe.display()
        );
        let refusal = ErrorReply::new(ErrorKind::VersionMismatch, message)
            .with_hint("rcluster save && rcluster kill && rcluster resurrect (the apps restart)");
        let _ = write_frame(&mut tx, &Response::Error(refusal)).await;
        return;
    }
    let LocalStream::UdSocket(socket) = conn;
    let client = match socket.as_fd().try_clone_to_owned() {
        Ok(client) => client,
        Err(e) => {
            let message = format!("cannot keep this connection across the update: {e}");
            let _ = send_error(&mut tx, ErrorKind::Os, &message).await;
            return;
        }
    };
    let agreed = handle
        .call(|reply| Cmd::Update { exe, client, reply })
        .await;
    if let Err(e) = agreed {
        let _ = write_frame(&mut tx, &Response::Error(e)).await;
    }
}

async fn send_error<W: AsyncWrite + Unpin>(
    tx: &mut W,
    kind: ErrorKind,
    message: &str,
) -> Result<(), FrameError> {
    write_frame(tx, &Response::Error(ErrorReply::new(kind, message))).await
}

fn instances_or_error<T>(
    result: Result<T, ErrorReply>,
    ok: impl FnOnce(T) -> Response,
) -> Response {
    match result {
        Ok(value) => ok(value),
        Err(e) => Response::Error(e),
    }
}

fn done(result: Result<String, ErrorReply>) -> Response {
    instances_or_error(result, |message| Response::Done { message })
}

async fn handle_request<R, W>(
    request: Request,
    handle: &SupervisorHandle,
    rx: &mut R,
    tx: &mut W,
) -> Result<(), FrameError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let verb = request.verb();
    let response = match request {
        Request::Ping => {
            instances_or_error(handle.ask(|reply| Cmd::Ping { reply }).await, |info| {
                Response::Pong {
                    pid: std::process::id(),
                    version: crate::protocol::VERSION.to_owned(),
                    uptime_ms: info.uptime_ms,
                    apps: info.apps,
                    instances: info.instances,
                }
            })
        }
        Request::Start {
            apps,
            base_env,
            if_running,
        } => {
            let result = handle
                .call(|reply| Cmd::Start {
                    apps,
                    base_env,
                    if_running,
                    reply,
                })
                .await;
            instances_or_error(result, replaced)
        }
        Request::Reload {
            target,
            apps,
            parallel,
            base_env,
        } => {
            let result = handle
                .call(|reply| Cmd::Reload {
                    target,
                    apps,
                    parallel,
                    base_env,
                    reply,
                })
                .await;
            instances_or_error(result, replaced)
        }
        Request::Scale { app, change } => {
            let result = handle.call(|reply| Cmd::Scale { app, change, reply }).await;
            instances_or_error(result, Response::instances)
        }
        Request::Save { force } => done(handle.call(|reply| Cmd::Save { force, reply }).await),
        Request::Resurrect => match handle.call(|reply| Cmd::Resurrect { reply }).await {
            Ok((instances, notes)) => Response::Instances { instances, notes },
            Err(e) => Response::Error(e),
        },
        Request::ClearDump => done(handle.call(|reply| Cmd::ClearDump { reply }).await),
        Request::Flush { target } => done(handle.call(|reply| Cmd::Flush { target, reply }).await),
        Request::ReloadLogs => done(handle.call(|reply| Cmd::ReloadLogs { reply }).await),
        Request::Signal { target, signal } => done(
            handle
                .call(|reply| Cmd::Signal {
                    target,
                    signal,
                    reply,
                })
                .await,
        ),
        Request::Reset { target } => done(handle.call(|reply| Cmd::Reset { target, reply }).await),
        Request::Rename { target, name } => done(
            handle
                .call(|reply| Cmd::Rename {
                    target,
                    name,
                    reply,
                })
                .await,
        ),
        Request::List => {
            if let Ok(Some(message)) = handle.ask(|reply| Cmd::Notice { reply }).await {
                write_frame(tx, &Response::Notice { message }).await?;
            }
            instances_or_error(handle.ask(|reply| Cmd::List { reply }).await, |instances| {
                Response::instances(instances)
            })
        }
        Request::Describe { target } => instances_or_error(
            handle.call(|reply| Cmd::Describe { target, reply }).await,
            |apps| Response::Apps { apps },
        ),
        Request::Stop { target } => instances_or_error(
            handle.call(|reply| Cmd::Stop { target, reply }).await,
            Response::instances,
        ),
        Request::Restart {
            target,
            apps,
            base_env,
        } => instances_or_error(
            handle
                .call(|reply| Cmd::Restart {
                    target,
                    apps,
                    base_env,
                    reply,
                })
                .await,
            Response::instances,
        ),
        Request::Delete { target } => instances_or_error(
            handle.call(|reply| Cmd::Delete { target, reply }).await,
            Response::instances,
        ),
        // Handled before: the connection itself goes with it.
        Request::Update { .. } => Response::Error(ErrorReply::new(
            ErrorKind::BadRequest,
            "update is not taken here",
        )),
        Request::Kill => instances_or_error(
            handle.call(|reply| Cmd::Kill { reply }).await,
            Response::instances,
        ),
        Request::Logs {
            target,
            lines,
            follow,
            streams,
        } => {
            return stream_logs(handle, target, lines, follow, streams, rx, tx).await;
        }
    };
    if let Response::Error(e) = &response {
        crate::dlog!("{verb}: {}", e.message);
    }
    write_reply(tx, shorten(response)).await
}

/// Longest error message sent back, in bytes: messages echo what the client sent (a name, a
/// target), which can be megabytes; the daemon log keeps the start of it too.
const MAX_MESSAGE: usize = 4096;

/// An error whose message echoes too much of the request, cut (on a character boundary).
fn shorten(response: Response) -> Response {
    let Response::Error(mut e) = response else {
        return response;
    };
    for text in std::iter::once(&mut e.message).chain(e.hint.as_mut()) {
        if text.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let more = text.len() - end;
            text.truncate(end);
            text.push_str(&format!("… [{more} more bytes]"));
        }
    }
    Response::Error(e)
}

/// Write a reply; one that cannot fit in a frame becomes a short error, so that the client
/// learns why instead of seeing its connection closed.
async fn write_reply<W: AsyncWrite + Unpin>(
    tx: &mut W,
    response: Response,
) -> Result<(), FrameError> {
    match write_frame(tx, &response).await {
        Err(FrameError::TooLarge { .. }) => {
            let message = format!(
                "the answer to this request would be larger than a frame ({MAX_FRAME} bytes)"
            );
            send_error(tx, ErrorKind::BadRequest, &message).await
        }
        other => other,
    }
}

async fn stream_logs<R, W>(
    handle: &SupervisorHandle,
    target: Target,
    lines: usize,
    follow: bool,
    streams: crate::protocol::LogStreams,
    rx: &mut R,
    tx: &mut W,
) -> Result<(), FrameError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    use crate::daemon::logs::{tail, writer};
    use tokio::sync::broadcast::error::RecvError;

    let mut sources = match handle.call(|reply| Cmd::LogSources { target, reply }).await {
        Ok(sources) => sources,
        Err(e) => return write_reply(tx, shorten(Response::Error(e))).await,
    };
    // Lines published after this are ours: the base for counting what a lagging reader missed.
    let mut next_line = writer::feed_position();
    // Lifecycle records go with both streams, as pm2's `PM2 |` lines do (not with --out/--err).
    let with_events = streams == crate::protocol::LogStreams::Both;
    if with_events {
        let skip = sources.history.len().saturating_sub(lines);
        for event in sources.history.drain(..).skip(skip) {
            write_frame(tx, &Response::Lifecycle((*event).clone())).await?;
        }
    }
    for source in &sources.files {
        let (app, stream, file) = (&source.app, &source.stream, &source.path);
        if !stream.wanted(streams) {
            continue;
        }
        // The file is read on the blocking pool, a chunk of lines at a time: a long tail
        // neither stalls the event loop nor sits in memory.
        let (chunk_tx, mut chunk_rx) = tokio::sync::mpsc::channel::<Vec<String>>(2);
        let path = file.clone();
        tokio::task::spawn_blocking(move || {
            let Ok(chunks) = tail::tail(&path, lines) else {
                return;
            };
            for chunk in chunks.map_while(Result::ok) {
                if chunk_tx.blocking_send(chunk).is_err() {
                    return;
                }
            }
        });
        let mut sent = false;
        while let Some(lines) = chunk_rx.recv().await {
            sent = true;
            let frame = Response::LogTail {
                app: app.clone(),
                stream: *stream,
                file: file.clone(),
                lines,
                id: source.id,
                stamped: source.stamped,
            };
            write_frame(tx, &frame).await?;
        }
        if !sent {
            let frame = Response::LogTail {
                app: app.clone(),
                stream: *stream,
                file: file.clone(),
                lines: Vec::new(),
                id: source.id,
                stamped: source.stamped,
            };
            write_frame(tx, &frame).await?;
        }
    }
    if !follow {
        return write_frame(tx, &Response::End).await;
    }
    // Live: until the client hangs up. A read on its side ends when it goes away.
    let mut probe = [0u8; 1];
    let mut lagged = false;
    loop {
        tokio::select! {
            record = sources.live.recv() => match record {
                Ok(record) => {
                    if std::mem::take(&mut lagged) {
                        // `records` counts lines (of every app on the feed) since the feed
                        // numbers them.
                        let missed = record.seq.saturating_sub(next_line);
                        write_frame(tx, &Response::LogsDropped { records: missed }).await?;
                    }
                    next_line = next_line.max(record.seq + record.lines);
                    let wanted = record.stream.wanted(streams)
                        && sources.wants(&record.app, record.index);
                    if !wanted {
                        continue;
                    }
                    let lines = record
                        .data
                        .split_inclusive(|b| *b == b'\n')
                        .map(|line| {
                            let line = line.strip_suffix(b"\n").unwrap_or(line);
                            tail::display_line(line.strip_suffix(b"\r").unwrap_or(line))
                        })
                        .collect();
                    let at_ms = record
                        .at
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64);
                    write_frame(tx, &Response::LogLines {
                        id: record.id,
                        app: record.app.to_string(),
                        stream: record.stream,
                        lines,
                        at_ms,
                    }).await?;
                }
                Err(RecvError::Lagged(_)) => lagged = true,
                Err(RecvError::Closed) => {
                    return write_frame(tx, &Response::End).await;
                }
            },
            event = sources.events.recv(), if with_events => match event {
                Ok(event) if sources.wants(&event.app, event.instance) => {
                    write_frame(tx, &Response::Lifecycle((*event).clone())).await?;
                }
                Ok(_) => {}
                // A follower this far behind is told about lines (above); records skipped
                // are in the daemon log.
                Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => {
                    return write_frame(tx, &Response::End).await;
                }
            },
            read = tokio::io::AsyncReadExt::read(rx, &mut probe) => {
                // EOF, an error, or unexpected bytes: the follower is done.
                let _ = read;
                return Ok(());
            }
        }
    }
}

fn replaced(answer: crate::daemon::supervisor::Replaced) -> Response {
    Response::Instances {
        instances: answer.instances,
        notes: answer.notes,
    }
}
