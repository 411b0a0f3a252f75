//! One client connection: read each request head (pipelined ones too), answer it through
//! `files`, keep the connection while both sides want it.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::files::{self, Body, Reply};
use super::Config;

/// A request head larger than this is refused (431), as Node's 16 KiB limit.
const MAX_HEAD: usize = 16 * 1024;
/// Time for a started request head to arrive.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// An idle keep-alive connection is closed after this (Node's keepAliveTimeout).
const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/a%20b?x=1`).
    pub target: String,
    /// HTTP/1.1 (else 1.0).
    pub http11: bool,
    headers: Vec<(String, String)>,
}

impl Request {
    /// Parse a head (request line and headers, without the blank line). Err: the status to
    /// answer with.
    pub fn parse(head: &[u8]) -> Result<Request, u16> {
        let text = String::from_utf8_lossy(head);
        let mut lines = text.split("\r\n");
        let line = lines.next().unwrap_or_default();
        let mut parts = line.split(' ');
        let (Some(method), Some(target), Some(version), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(400);
        };
        let http11 = match version {
            "HTTP/1.1" => true,
            "HTTP/1.0" => false,
            _ => return Err(505),
        };
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(400);
        }
        let mut headers = Vec::new();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                return Err(400);
            };
            if name.is_empty() || name.contains(' ') {
                return Err(400);
            }
            headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        Ok(Request {
            method: method.to_owned(),
            target: target.to_owned(),
            http11,
            headers,
        })
    }

    /// A header's value (the first one), by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn connection_has(&self, token: &str) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// Whether the client wants the connection kept after this answer.
    pub fn keep_alive(&self) -> bool {
        if self.http11 {
            !self.connection_has("close")
        } else {
            self.connection_has("keep-alive")
        }
    }

    /// Whether a body follows the head (GET and HEAD have none; one is never read here).
    pub fn has_body(&self) -> bool {
        self.header("transfer-encoding").is_some()
            || self
                .header("content-length")
                .is_some_and(|v| v.trim() != "0")
    }
}

/// Serve one connection until either side ends it.
pub async fn serve_connection(mut stream: TcpStream, config: Arc<Config>) {
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let head_len = match read_head(&mut stream, &mut buf).await {
            Ok(Some(len)) => len,
            Ok(None) => return,
            Err(status) => {
                let _ = write_reply(&mut stream, files::error(status), false, false).await;
                return;
            }
        };
        let parsed = Request::parse(&buf[..head_len - 4]);
        buf.drain(..head_len);
        let request = match parsed {
            Ok(request) => request,
            Err(status) => {
                let _ = write_reply(&mut stream, files::error(status), false, false).await;
                return;
            }
        };
        // A body is never read: answer, then close rather than parse what follows.
        let keep = request.keep_alive() && !request.has_body();
        let reply = files::answer(&request, &config);
        let head_only = request.method == "HEAD";
        if write_reply(&mut stream, reply, keep, head_only)
            .await
            .is_err()
            || !keep
        {
            return;
        }
    }
}

/// Read until a whole head is in `buf`: its length with the blank line, None when the client
/// closed (or idled) between requests, Err(status) for a head too large or too slow.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<Option<usize>, u16> {
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if pos > MAX_HEAD {
                return Err(431);
            }
            return Ok(Some(pos + 4));
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        let limit = if buf.is_empty() {
            IDLE_TIMEOUT
        } else {
            HEAD_TIMEOUT
        };
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout(limit, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(None),
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            Err(_) if buf.is_empty() => return Ok(None),
            Err(_) => return Err(408),
        }
    }
}

async fn write_reply(
    stream: &mut TcpStream,
    reply: Reply,
    keep: bool,
    head_only: bool,
) -> std::io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\n",
        reply.status,
        files::reason(reply.status)
    );
    head.push_str(&format!(
        "Date: {}\r\n",
        files::http_date(std::time::SystemTime::now())
    ));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(len) = reply.body.len() {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    head.push_str(if keep {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    match reply.body {
        Body::Bytes(bytes) if !head_only => {
            let mut all = head.into_bytes();
            all.extend_from_slice(&bytes);
            stream.write_all(&all).await?;
        }
        Body::File { file, offset, len } if !head_only => {
            stream.write_all(head.as_bytes()).await?;
            send_file(stream, &file, offset, len).await?;
        }
        _ => stream.write_all(head.as_bytes()).await?,
    }
    stream.flush().await
}

/// `len` bytes of `file` from `offset` with sendfile(2): the kernel copies from the page cache to
/// the socket, as nginx does; the task waits whenever the socket's buffer is full.
async fn send_file(
    stream: &TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut at = libc::off_t::try_from(offset).map_err(std::io::Error::other)?;
    let mut left = len;
    while left > 0 {
        stream.writable().await?;
        let chunk = left.min(1 << 20) as usize;
        let sent = stream.try_io(tokio::io::Interest::WRITABLE, || {
            // SAFETY: both fds are open for the call (borrowed from live owners), and `at` is
            // an off_t the kernel reads and advances.
            let n = unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut at, chunk) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as u64)
            }
        });
        match sent {
            // The file shrank under us: the length sent is wrong, so the connection must end.
            Ok(0) => return Err(std::io::Error::other("file shorter than announced")),
            Ok(n) => left = left.saturating_sub(n),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_head() {
        let r = Request::parse(b"GET /a%20b?x=1 HTTP/1.1\r\nHost: x\r\nRange:  bytes=0-1 ")
            .expect("test value");
        assert_eq!(
            (r.method.as_str(), r.target.as_str(), r.http11),
            ("GET", "/a%20b?x=1", true)
        );
        assert_eq!(r.header("range"), Some("bytes=0-1"));
        assert!(r.keep_alive() && !r.has_body());
    }

    #[test]
    fn keep_alive_rules() {
        let close =
            Request::parse(b"GET / HTTP/1.1\r\nConnection: keep-alive, close").expect("test value");
        assert!(!close.keep_alive());
        let old = Request::parse(b"GET / HTTP/1.0").expect("test value");
        assert!(!old.keep_alive());
        let old_keep =
            Request::parse(b"GET / HTTP/1.0\r\nConnection: Keep-Alive").expect("test value");
        assert!(old_keep.keep_alive());
        let body = Request::parse(b"POST / HTTP/1.1\r\nContent-Length: 3").expect("test value");
        assert!(body.has_body());
    }

    #[test]
    fn bad_heads() {
        assert_eq!(Request::parse(b"GET /"), Err(400));
        assert_eq!(Request::parse(b"GET / HTTP/2.0"), Err(505));
        assert_eq!(Request::parse(b"get / HTTP/1.1"), Err(400));
        assert_eq!(Request::parse(b"GET / HTTP/1.1\r\nno colon"), Err(400));
        assert_eq!(Request::parse(b"GET / HTTP/1.1\r\nBad Name: x"), Err(400));
    }
}
