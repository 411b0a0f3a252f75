//! Entry points of the fuzz targets in `fuzz/` (cargo-fuzz, libFuzzer): one function per decoder
//! that reads bytes from outside, each feeding them through the same code the program runs and
//! checking the promises the rest of the program relies on. A panic here is a finding: either
//! the decoder panicked, or a promise broke (named in the message). Nothing here is used by the
//! program itself; `cargo test` runs every seed of `fuzz/corpus/` through it (below), so the
//! targets and their seeds stay in step with the code. docs/fuzzing.md says how to run them.

use std::io::Cursor;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};

use crate::abi;
use crate::config::check::check_spec;
use crate::config::ecosystem::{self, LoadOptions, TextFormat};
use crate::protocol::frame::{decode, encode, read_frame_blocking, FrameError, MAX_FRAME};
use crate::protocol::{Hello, Request, Response};
use crate::serve::{files, request, Config};

/// The control socket as the daemon reads it (`daemon/server.rs`): frames from a byte stream, a
/// `Hello` first, then requests, stopping at the first bad frame; the apps a request carries go
/// through the daemon's one validation (`config::check::check_spec`). Every frame is also read as
/// the CLI reads the daemon's answers. Promises: no frame allocates past `MAX_FRAME`; a request
/// the daemon accepts encodes again (the dump and the `update` record are made that way) and
/// reads back to the same bytes.
pub fn control_stream(data: &[u8]) {
    let mut stream = Cursor::new(data);
    let mut hello_seen = false;
    loop {
        let body = match read_frame_blocking(&mut stream) {
            Ok(Some(body)) => body,
            Ok(None) | Err(FrameError::Truncated) => return,
            Err(FrameError::TooLarge { len }) => {
                assert!(len > MAX_FRAME as usize, "a frame of {len} bytes refused");
                return;
            }
            Err(e) => panic!("reading frames from memory failed: {e}"),
        };
        assert!(body.len() <= MAX_FRAME as usize);
        let _ = decode::<Response>(&body);
        if !hello_seen {
            match decode::<Hello>(&body) {
                Ok(peer) => {
                    let _ = peer.mismatch(&Hello::ours());
                    hello_seen = true;
                    continue;
                }
                Err(_) => return,
            }
        }
        match decode::<Request>(&body) {
            Ok(request) => request_round_trip(&request),
            Err(_) => return,
        }
    }
}

fn request_round_trip(request: &Request) {
    let _ = request.verb();
    if let Request::Start { apps, .. }
    | Request::Restart { apps, .. }
    | Request::Reload { apps, .. } = request
    {
        for app in apps {
            let _ = check_spec(app);
        }
    }
    let bytes = match encode(request) {
        Ok(bytes) => bytes,
        // Numbers written short (`1e9`) are longer once written out: refused, not cut.
        Err(FrameError::TooLarge { .. }) => return,
        Err(e) => panic!("a decoded request does not encode: {e}"),
    };
    let again: Request =
        decode(&bytes[4..]).unwrap_or_else(|e| panic!("an encoded request does not decode: {e}"));
    let bytes_again = encode(&again).unwrap_or_else(|e| panic!("re-encoding failed: {e}"));
    assert_eq!(bytes, bytes_again, "a request changes across a round trip");
}

/// An ecosystem file's text, YAML or JSON, through the whole check the CLI runs before it starts
/// anything. Promises: every app of a valid file passes the daemon's validation (so the file is
/// never refused later, by the daemon), and its spec crosses the control socket.
pub fn ecosystem_text(data: &[u8], format: TextFormat) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let dir = scratch_dir("ecosystem");
    let opts = LoadOptions::default();
    let loaded = match ecosystem::load_text("fuzz", text, format, &dir, &opts) {
        Ok(loaded) => loaded,
        Err(e) => {
            assert!(!e.problems.is_empty(), "an error with no problem in it");
            return;
        }
    };
    for app in &loaded.apps {
        if let Err(e) = check_spec(app) {
            panic!("a valid file gave an app the daemon refuses: {e}");
        }
        let bytes = encode(app).unwrap_or_else(|e| panic!("an app spec does not encode: {e}"));
        let _: crate::protocol::model::AppSpec =
            decode(&bytes[4..]).unwrap_or_else(|e| panic!("an app spec does not decode: {e}"));
    }
}

/// One `rcluster serve` request head (without its blank line), parsed and answered from a small
/// folder of files. The first byte picks the options (SPA, basic auth). Promises: no file above
/// the folder is ever opened; a range stays inside its file; every status has its reason.
pub fn serve_head(data: &[u8]) {
    let Some((&options, head)) = data.split_first() else {
        return;
    };
    let site = serve_site();
    let config = Config {
        root: site.clone(),
        port: 8080,
        host: None,
        spa: options & 1 != 0,
        homepage: "/index.html".into(),
        auth: (options & 2 != 0).then(|| ("user".to_owned(), "secret".to_owned())),
    };
    let Ok(request) = request::Request::parse(head) else {
        return;
    };
    let _ = (request.keep_alive(), request.has_body());
    let reply = files::answer(&request, &config);
    assert_ne!(
        files::reason(reply.status),
        "Internal Server Error",
        "status {} for {:?} (every file of the folder is readable)",
        reply.status,
        String::from_utf8_lossy(head)
    );
    if let files::Body::File { file, offset, len } = &reply.body {
        let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .unwrap_or_else(|e| panic!("cannot name an opened file: {e}"));
        assert!(
            opened.starts_with(site),
            "{} opened, outside the folder {}",
            opened.display(),
            site.display()
        );
        let size = file.metadata().map(|m| m.len()).unwrap_or_default();
        assert!(
            offset.checked_add(*len).is_some_and(|end| end <= size),
            "bytes {offset}+{len} of a file of {size}"
        );
    }
}

/// The preload ABI as the daemon receives it (`daemon/balancer/channel.rs`): the first byte is
/// how many fds travel with the message (255: the most a message can carry), the rest the
/// message, sent on a real `SOCK_SEQPACKET` pair and read back with the daemon's own receive
/// call, then given to every decoder. Promises: the bytes arrive as sent or the message is
/// refused as too long; every decoded message encodes back to what it decoded from; with
/// `strict_fds`, no received fd outlives the call (single-threaded callers only: it looks at
/// the lowest free fd number).
pub fn preload_message(data: &[u8], strict_fds: bool) {
    let Some((&fd_count, message)) = data.split_first() else {
        return;
    };
    decoders(message);
    let (ours, theirs, spare) = pair();
    let spare_fds = match fd_count {
        255 => 253,
        n => usize::from(n % 4),
    };
    let lowest_before = strict_fds.then(lowest_free_fd);
    let sent = send_with_fds(theirs.as_fd(), message, spare.as_raw_fd(), spare_fds);
    if sent.is_err() {
        return; // longer than the socket takes: never reaches the daemon
    }
    let mut buf = [0u8; abi::RECV_BUF_LEN];
    match abi::recv_with_fd_flags(ours.as_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) {
        Ok((n, fd)) => {
            assert_eq!(&buf[..n], message, "a message changed on its way");
            assert_eq!(fd.is_some(), spare_fds > 0, "fds sent: {spare_fds}");
            decoders(&buf[..n]);
        }
        Err(nix::Error::EMSGSIZE) => assert!(message.len() > abi::RECV_BUF_LEN),
        Err(e) => panic!("receiving a message that was sent: {e}"),
    }
    if let Some(before) = lowest_before {
        assert_eq!(lowest_free_fd(), before, "a received fd was left open");
    }
}

fn decoders(bytes: &[u8]) {
    if let Some(msg) = abi::decode_instance_msg(bytes) {
        assert_eq!(abi::decode_instance_msg(&msg.encode()), Some(msg));
    }
    if let Some(addr) = abi::decode_bind_request(bytes) {
        let again = abi::encode_bind_request(&addr);
        assert_eq!(abi::decode_bind_request(&again), Some(addr));
    }
    if let Some(conn) = abi::decode_conn(bytes) {
        let again = abi::encode_conn_with_flags(&conn.peer, conn.fdflags);
        assert_eq!(abi::decode_conn(&again), Some(conn));
    }
    if let Some(reply) = abi::decode_reply(bytes) {
        assert_eq!(abi::decode_reply(&reply.encode()), Some(reply));
    }
    if let Some(addr) = abi::decode_channel_name(bytes) {
        let name = abi::channel_name(&addr, 0);
        assert_eq!(abi::decode_channel_name(&name), Some(addr));
        assert!(matches!(addr, SocketAddr::V4(_) | SocketAddr::V6(_)));
    }
}

/// (daemon end, instance end, an fd to pass): made once, non-blocking.
fn pair() -> &'static (OwnedFd, OwnedFd, OwnedFd) {
    static PAIR: OnceLock<(OwnedFd, OwnedFd, OwnedFd)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
        let (a, b) = socketpair(AddressFamily::Unix, SockType::SeqPacket, None, flags)
            .expect("a socketpair for the fuzz target");
        let spare = std::fs::File::open("/dev/null").expect("/dev/null");
        (a, b, spare.into())
    })
}

fn send_with_fds(
    sock: std::os::fd::BorrowedFd<'_>,
    bytes: &[u8],
    fd: std::os::fd::RawFd,
    count: usize,
) -> nix::Result<usize> {
    use nix::sys::socket::{sendmsg, ControlMessage};
    let fds = vec![fd; count];
    let cmsgs = [ControlMessage::ScmRights(&fds)];
    let cmsgs: &[ControlMessage<'_>] = if count == 0 { &[] } else { &cmsgs };
    let iov = [std::io::IoSlice::new(bytes)];
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_DONTWAIT, None)
}

fn lowest_free_fd() -> i32 {
    let probe = std::fs::File::open("/dev/null").expect("/dev/null");
    probe.as_raw_fd()
}

/// A folder of this process's own under the temp dir (the same for every call).
fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rcluster-fuzz-{what}-{}",
        nix::unistd::getuid().as_raw()
    ));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

/// The served folder: a homepage, a page, a folder with an index, a 404 page; and a file beside
/// the folder that must never be served. Its canonical path (the server canonicalises its root).
fn serve_site() -> &'static PathBuf {
    static SITE: OnceLock<PathBuf> = OnceLock::new();
    SITE.get_or_init(|| {
        let base = scratch_dir("serve");
        let root = base.join("site");
        let files: [(&Path, &str); 5] = [
            (Path::new("index.html"), "<h1>home</h1>\n"),
            (
                Path::new("page.txt"),
                "0123456789abcdefghijklmnopqrstuvwxyz\n",
            ),
            (Path::new("dir/index.html"), "<p>dir</p>\n"),
            (Path::new("404.html"), "<p>not here</p>\n"),
            (Path::new("../secret.txt"), "never served\n"),
        ];
        for (path, body) in files {
            let path = root.join(path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("the served folder");
            }
            // Other processes (tests of other checkouts, fuzzers) may read it at this moment:
            // replace a file only when it differs, and whole, by a rename.
            if std::fs::read(&path).is_ok_and(|old| old == body.as_bytes()) {
                continue;
            }
            let temp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&temp, body).expect("a served file");
            std::fs::rename(&temp, &path).expect("a served file");
        }
        root.canonicalize().expect("the served folder")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds of one target (`fuzz/corpus/<target>/seed-*`), so that a target that no longer
    /// fits the code fails here rather than in a fuzzing run.
    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus")
            .join(target);
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("the seed folder") {
            let path = entry.expect("a seed").path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            if name.is_some_and(|n| n.starts_with("seed-")) {
                found.push(std::fs::read(&path).expect("a seed's bytes"));
            }
        }
        assert!(!found.is_empty(), "no seeds in {}", dir.display());
        found
    }

    #[test]
    fn control_seeds() {
        for seed in seeds("control") {
            control_stream(&seed);
        }
    }

    #[test]
    fn ecosystem_seeds() {
        for seed in seeds("ecosystem_yaml") {
            ecosystem_text(&seed, TextFormat::Yaml);
        }
        for seed in seeds("ecosystem_json") {
            ecosystem_text(&seed, TextFormat::Json);
        }
    }

    #[test]
    fn serve_seeds() {
        for seed in seeds("serve_head") {
            serve_head(&seed);
        }
    }

    #[test]
    fn preload_seeds() {
        for seed in seeds("preload_abi") {
            preload_message(&seed, false);
        }
    }
}
