//! The preload library (`preload/rcluster_preload.c`) against real, unmodified servers, with
//! this test playing the daemon's part (no rcluster daemon involved): it owns a TCP listener on
//! 127.0.0.1, gives each instance a `SOCK_SEQPACKET` channel on fd 3, waits for READY, accepts
//! connections itself and deals them with `abi::send_with_fd`, then checks over real HTTP/TCP
//! which instance answered.
//!
//! Every child runs in its own process group; the `Children` guard kills each group with
//! SIGKILL and reaps the child by pid when a test ends, passed or failed (and prints the
//! children's logs, which include the library's debug lines, when it failed). Waits poll with
//! a 20 s deadline; nothing sleeps to synchronise and nothing asserts on timing.
//!
//! Needs `python3` (tests skip with a message without it) and, for one test, `node`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{killpg, Signal};
use nix::sys::socket::{socketpair, AddressFamily, MsgFlags, SockFlag, SockType};
use nix::unistd::Pid;
use rcluster::abi::{self, InstanceMsg};
use rcluster::preload;

/// Generous: CI is a loaded 2-core machine.
const WAIT: Duration = Duration::from_secs(20);

// ---- scratch directory -------------------------------------------------------------------------

/// A directory under the system temp dir, removed on drop.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(tag: &str) -> Scratch {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "rcluster-preload-it-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create scratch dir");
        Scratch { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("create dir");
        }
        fs::write(&p, text).expect("write scratch file");
        p
    }

    /// The library, written with the same `install` the daemon uses.
    fn library(&self) -> PathBuf {
        preload::install(&self.path("lib")).expect("install the preload library")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

// ---- children ----------------------------------------------------------------------------------

struct Kid {
    name: String,
    child: Child,
    log: PathBuf,
}

/// Every child a test started. Drop kills each one's process group (forked workers included)
/// and reaps the child by pid.
#[derive(Default)]
struct Children {
    kids: Vec<Kid>,
}

struct Spawned {
    pid: u32,
    /// Lines of stdout, when captured.
    lines: Option<Receiver<String>>,
    stdin: Option<ChildStdin>,
}

impl Children {
    /// Starts `cmd` with `fds` (an fd of this process, the fd number it gets in the child)
    /// placed without close-on-exec, the library's debug log on, stderr (and stdout unless
    /// `capture_stdout`) in `<name>.log`.
    fn spawn(
        &mut self,
        scratch: &Scratch,
        name: &str,
        mut cmd: Command,
        fds: &[(BorrowedFd<'_>, RawFd)],
        capture_stdout: bool,
        pipe_stdin: bool,
    ) -> Spawned {
        let log = scratch.path(&format!("{name}.log"));
        let file = fs::File::create(&log).expect("create log");
        cmd.stderr(file.try_clone().expect("dup log"));
        if capture_stdout {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(file);
        }
        cmd.stdin(if pipe_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd.env(abi::ENV_PRELOAD_DEBUG, "1");
        cmd.process_group(0);
        let maps: Vec<(RawFd, RawFd)> = fds.iter().map(|(f, to)| (f.as_raw_fd(), *to)).collect();
        // SAFETY: the closure runs in the child between fork and exec. It only calls fcntl and
        // dup2 (async-signal-safe) on fd numbers captured beforehand; it does not allocate.
        unsafe {
            cmd.pre_exec(move || place_fds(&maps));
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        let pid = child.id();
        let lines = child.stdout.take().map(|out| {
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
            rx
        });
        let stdin = child.stdin.take();
        self.kids.push(Kid {
            name: name.to_string(),
            child,
            log,
        });
        Spawned { pid, lines, stdin }
    }

    /// Waits (polling, with the deadline) until the child `pid` exits.
    fn wait_exit(&mut self, pid: u32) -> ExitStatus {
        let kid = self
            .kids
            .iter_mut()
            .find(|k| k.child.id() == pid)
            .expect("a child of this test");
        let end = Instant::now() + WAIT;
        loop {
            if let Some(status) = kid.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < end,
                "{} (pid {pid}) did not exit within {WAIT:?}",
                kid.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for kid in &mut self.kids {
            if let Ok(pgid) = i32::try_from(kid.child.id()) {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
            }
            let _ = kid.child.kill();
            let _ = kid.child.wait();
        }
        if std::thread::panicking() {
            for kid in &self.kids {
                let text = fs::read_to_string(&kid.log).unwrap_or_default();
                eprintln!(
                    "---- log of {} ----\n{text}---- end of {} ----",
                    kid.name, kid.name
                );
            }
        }
    }
}

/// In the child: put each source fd on its target number, without close-on-exec. Sources are
/// first moved out of the way so that a source numbered like another target survives.
fn place_fds(maps: &[(RawFd, RawFd)]) -> io::Result<()> {
    let mut moved: [RawFd; 8] = [-1; 8];
    if maps.len() > moved.len() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    for (slot, &(src, _)) in moved.iter_mut().zip(maps) {
        // SAFETY: plain fcntl on an fd number; the copy is close-on-exec and vanishes at exec.
        let fd = unsafe { libc::fcntl(src, libc::F_DUPFD_CLOEXEC, 64) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        *slot = fd;
    }
    for (&from, &(_, to)) in moved.iter().zip(maps) {
        // SAFETY: dup2 between fd numbers of this (child) process; the result has no CLOEXEC.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| fs::metadata(p).map(|m| m.is_file()).unwrap_or(false))
}

fn python() -> Option<PathBuf> {
    let p = which("python3");
    if p.is_none() {
        eprintln!("SKIP: python3 is not on PATH");
    }
    p
}

/// A command with the library preloaded and no inherited RCLUSTER_* variables.
fn preloaded(program: &Path, library: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("LD_PRELOAD", library)
        .env_remove(abi::ENV_CHANNELS)
        .env_remove(abi::ENV_RENDEZVOUS_FD)
        .env_remove(abi::ENV_PRIVATE_PORTS)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    cmd
}

fn next_line(lines: &Receiver<String>, what: &str) -> String {
    lines
        .recv_timeout(WAIT)
        .unwrap_or_else(|e| panic!("waiting for {what} on the child's stdout: {e}"))
}

// ---- the daemon's part ---------------------------------------------------------------------------

fn seqpacket_pair() -> (OwnedFd, OwnedFd) {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .expect("socketpair")
}

fn loopback_listener() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.set_nonblocking(true).expect("nonblocking listener");
    l
}

/// A port that was free a moment ago (bound on loopback, then released).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("pick a free port")
        .port()
}

fn wait_readable(fd: BorrowedFd<'_>, what: &str) {
    let end = Instant::now() + WAIT;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out after {WAIT:?} waiting for {what}"
        );
        let slice = u16::try_from(left.as_millis().min(1000)).unwrap_or(1000);
        let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(slice)) {
            Ok(0) | Err(Errno::EINTR) => continue,
            Ok(_) => return,
            Err(e) => panic!("poll while waiting for {what}: {e}"),
        }
    }
}

fn next_instance_msg(end: BorrowedFd<'_>, what: &str) -> InstanceMsg {
    wait_readable(end, what);
    let mut buf = [0u8; abi::RECV_BUF_LEN];
    let (n, fd) =
        abi::recv_with_fd_flags(end, &mut buf, MsgFlags::MSG_DONTWAIT).expect("recv on channel");
    assert!(fd.is_none(), "{what}: an instance message carried an fd");
    abi::decode_instance_msg(&buf[..n])
        .unwrap_or_else(|| panic!("{what}: not an instance message: {:?}", &buf[..n]))
}

fn assert_no_message(end: BorrowedFd<'_>, what: &str) {
    let mut buf = [0u8; abi::RECV_BUF_LEN];
    match abi::recv_with_fd_flags(end, &mut buf, MsgFlags::MSG_DONTWAIT) {
        Err(Errno::EAGAIN) => {}
        Ok((n, _)) => panic!("{what}: unexpected message {:?}", &buf[..n]),
        Err(e) => panic!("{what}: recv: {e}"),
    }
}

/// Accepts the next connection on the test's listener and deals it to the channel `end`.
fn deal(listener: &TcpListener, end: BorrowedFd<'_>) -> SocketAddr {
    wait_readable(listener.as_fd(), "a connection on the test listener");
    let (conn, peer) = listener.accept().expect("accept");
    let sent = abi::send_with_fd(
        end,
        &abi::encode_conn(&peer),
        conn.as_fd(),
        MsgFlags::MSG_DONTWAIT | MsgFlags::MSG_NOSIGNAL,
    )
    .expect("deal the connection");
    assert_eq!(sent, abi::CONN_LEN);
    peer
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(WAIT)).expect("read timeout");
    s.set_write_timeout(Some(WAIT)).expect("write timeout");
    s
}

/// Connects to a port the program bound for real, retrying until it listens.
fn connect_when_listening(addr: SocketAddr) -> TcpStream {
    let end = Instant::now() + WAIT;
    loop {
        match TcpStream::connect(addr) {
            Ok(s) => {
                s.set_read_timeout(Some(WAIT)).expect("read timeout");
                return s;
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("connect {addr}: {e}"),
        }
    }
}

fn read_all(mut s: TcpStream, what: &str) -> String {
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("reading {what}: {e}"));
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET path` with `Connection: close`; returns the body of a 200 response.
fn http_exchange(mut client: TcpStream, path: &str) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    client.write_all(req.as_bytes()).expect("send request");
    let text = read_all(client, "an HTTP response");
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        panic!("not an HTTP response: {text:?}");
    };
    assert!(
        head.starts_with("HTTP/1.") && head.lines().next().unwrap_or("").contains(" 200 "),
        "unexpected status: {head}"
    );
    body.to_string()
}

/// One request through the test's listener, dealt to the instance at `end`.
fn http_via(listener: &TcpListener, end: BorrowedFd<'_>, path: &str) -> String {
    let client = connect(listener.local_addr().expect("local_addr"));
    deal(listener, end);
    http_exchange(client, path)
}

fn python_http_server(
    python: &Path,
    library: &Path,
    port: u16,
    dir: &Path,
    env: &[(&str, String)],
) -> Command {
    let mut cmd = preloaded(python, library);
    cmd.args([
        "-m",
        "http.server",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
    ])
    .arg("--directory")
    .arg(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

// ---- tests ---------------------------------------------------------------------------------------

/// (1) Two `python3 -m http.server` instances share one port: 40 requests, 20 each, each
/// answered by the instance it was dealt to; the program's getsockname shows the managed port.
#[test]
fn python_http_server_two_instances_round_robin() {
    let Some(python) = python() else { return };
    let scratch = Scratch::new("py2");
    let library = scratch.library();
    let listener = loopback_listener();
    let port = listener.local_addr().expect("local_addr").port();
    let mut kids = Children::default();
    let mut ends = Vec::new();
    for i in 0..2 {
        let www = scratch.path(&format!("www{i}"));
        scratch.write(&format!("www{i}/who"), &format!("instance-{i}"));
        let (daemon_end, instance_end) = seqpacket_pair();
        let cmd = python_http_server(
            &python,
            &library,
            port,
            &www,
            &[(abi::ENV_CHANNELS, abi::format_channels(&[(port, 3)]))],
        );
        let spawned = kids.spawn(
            &scratch,
            &format!("http.server-{i}"),
            cmd,
            &[(instance_end.as_fd(), 3)],
            true,
            false,
        );
        drop(instance_end);
        assert_eq!(
            next_instance_msg(daemon_end.as_fd(), "READY"),
            InstanceMsg::Ready { pid: spawned.pid }
        );
        let lines = spawned.lines.expect("stdout captured");
        let banner = next_line(&lines, "the 'Serving HTTP' banner");
        assert!(
            banner.contains(&format!("Serving HTTP on 127.0.0.1 port {port} ")),
            "getsockname must report the managed port: {banner}"
        );
        ends.push(daemon_end);
    }

    let mut answered: HashMap<String, usize> = HashMap::new();
    for n in 0..40 {
        let i = n % 2;
        let body = http_via(&listener, ends[i].as_fd(), "/who");
        assert_eq!(
            body,
            format!("instance-{i}"),
            "request {n} was dealt to {i}"
        );
        *answered.entry(body).or_default() += 1;
    }
    assert_eq!(answered.get("instance-0"), Some(&20));
    assert_eq!(answered.get("instance-1"), Some(&20));
    for end in &ends {
        assert_no_message(end.as_fd(), "while serving");
    }
}

const NODE_SERVER: &str = r#"
const http = require('http');
const server = http.createServer((q, r) => {
  if (q.url === '/close') { r.end('closing'); server.close(); return; }
  const a = server.address();
  r.end([process.env.TAG, a.port, a.family, q.socket.remoteAddress, q.socket.localAddress,
         q.socket.localPort].join(' '));
});
server.listen(Number(process.argv[1]));
"#;

/// (2) Plain Node `http.createServer().listen(port)`: requests answered by the instance they
/// were dealt to, `server.address().port` is the managed port, addresses are v4-mapped for
/// Node's dual-stack socket, and `server.close()` (libuv closes with `syscall(SYS_close)`)
/// sends UNREADY.
#[test]
fn node_http_server() {
    let Some(node) = which("node") else {
        eprintln!("SKIP: node is not on PATH");
        return;
    };
    let scratch = Scratch::new("node");
    let library = scratch.library();
    let listener = loopback_listener();
    let port = listener.local_addr().expect("local_addr").port();
    let mut kids = Children::default();
    let mut instances = Vec::new();
    for i in 0..2 {
        let (daemon_end, instance_end) = seqpacket_pair();
        let mut cmd = preloaded(&node, &library);
        cmd.arg("-e")
            .arg(NODE_SERVER)
            .arg(port.to_string())
            .env("TAG", format!("node-{i}"))
            .env(abi::ENV_CHANNELS, abi::format_channels(&[(port, 3)]));
        let spawned = kids.spawn(
            &scratch,
            &format!("node-{i}"),
            cmd,
            &[(instance_end.as_fd(), 3)],
            false,
            false,
        );
        drop(instance_end);
        assert_eq!(
            next_instance_msg(daemon_end.as_fd(), "READY from node"),
            InstanceMsg::Ready { pid: spawned.pid }
        );
        instances.push((daemon_end, spawned.pid));
    }

    for n in 0..8 {
        let i = n % 2;
        let body = http_via(&listener, instances[i].0.as_fd(), "/");
        let f: Vec<&str> = body.split(' ').collect();
        assert_eq!(f.len(), 6, "unexpected body {body:?}");
        assert_eq!(f[0], format!("node-{i}"), "request {n} was dealt to {i}");
        assert_eq!(f[1], port.to_string(), "server.address().port");
        assert_eq!(f[5], port.to_string(), "socket.localPort");
        if f[2] == "IPv6" {
            assert_eq!(f[3], "::ffff:127.0.0.1", "remoteAddress, v4-mapped");
            assert_eq!(f[4], "::ffff:127.0.0.1", "localAddress, v4-mapped");
        } else {
            assert_eq!(f[3], "127.0.0.1", "remoteAddress");
        }
    }

    let body = http_via(&listener, instances[0].0.as_fd(), "/close");
    assert_eq!(body, "closing");
    assert_eq!(
        next_instance_msg(instances[0].0.as_fd(), "UNREADY after server.close()"),
        InstanceMsg::Unready {
            pid: instances[0].1
        }
    );
    // The other instance is unaffected.
    let body = http_via(&listener, instances[1].0.as_fd(), "/");
    assert!(body.starts_with("node-1 "), "{body}");
}

/// (3) Port discovery: no RCLUSTER_CHANNELS, only RCLUSTER_RENDEZVOUS_FD. The test answers the
/// BIND request with BOUND and a fresh channel, and the server serves through it.
#[test]
fn rendezvous_bound() {
    let Some(python) = python() else { return };
    let scratch = Scratch::new("rdv");
    let library = scratch.library();
    let listener = loopback_listener();
    let port = listener.local_addr().expect("local_addr").port();
    scratch.write("www/who", "rendezvous");
    let (rdv_daemon, rdv_instance) = seqpacket_pair();
    let cmd = python_http_server(
        &python,
        &library,
        port,
        &scratch.path("www"),
        &[(abi::ENV_RENDEZVOUS_FD, "3".to_string())],
    );
    let mut kids = Children::default();
    let spawned = kids.spawn(
        &scratch,
        "http.server-rdv",
        cmd,
        &[(rdv_instance.as_fd(), 3)],
        false,
        false,
    );
    drop(rdv_instance);

    wait_readable(rdv_daemon.as_fd(), "a BIND request");
    let mut buf = [0u8; abi::RECV_BUF_LEN];
    let (n, reply) = abi::recv_with_fd_flags(rdv_daemon.as_fd(), &mut buf, MsgFlags::MSG_DONTWAIT)
        .expect("recv BIND");
    assert_eq!(n, abi::BIND_LEN);
    let asked = abi::decode_bind_request(&buf[..n]).expect("a BIND request");
    assert_eq!(asked, SocketAddr::from(([127, 0, 0, 1], port)));
    let reply = reply.expect("BIND carries a reply socket");

    let (daemon_end, instance_end) = seqpacket_pair();
    abi::send_with_fd(
        reply.as_fd(),
        &abi::encode_reply(abi::KIND_BOUND, 0),
        instance_end.as_fd(),
        MsgFlags::MSG_NOSIGNAL,
    )
    .expect("send BOUND");
    drop(instance_end);
    drop(reply);

    assert_eq!(
        next_instance_msg(daemon_end.as_fd(), "READY after BOUND"),
        InstanceMsg::Ready { pid: spawned.pid }
    );
    for _ in 0..3 {
        assert_eq!(
            http_via(&listener, daemon_end.as_fd(), "/who"),
            "rendezvous"
        );
    }
    assert_no_message(rdv_daemon.as_fd(), "one BIND per port");
}

const RENDEZVOUS_PROBE: &str = r#"
import socket, sys
refuse, passed, private = (int(a) for a in sys.argv[1:4])
def bind(port):
    s = socket.socket()
    try:
        s.bind(('127.0.0.1', port))
        return s, 'bound %d' % s.getsockname()[1]
    except OSError as e:
        s.close()
        return None, 'error %d' % e.errno
_, r = bind(refuse); print('refuse', r, flush=True)
ps, r = bind(passed); print('pass', r, flush=True)
vs, r = bind(private); print('private', r, flush=True)
zs, r = bind(0); print('zero', r, flush=True)
for s in (ps, vs):
    s.listen(4)
print('listening', flush=True)
for s in (ps, vs):
    c, _ = s.accept()
    c.sendall(b'real')
    c.close()
print('done', flush=True)
"#;

/// (3b) Rendezvous answers REFUSE (bind fails with that errno) and PASS (real bind); a private
/// port and port 0 never ask.
#[test]
fn rendezvous_refuse_pass_private() {
    let Some(python) = python() else { return };
    let scratch = Scratch::new("rdv2");
    let library = scratch.library();
    let script = scratch.write("probe.py", RENDEZVOUS_PROBE);
    let (refuse, passed, private) = (free_port(), free_port(), free_port());
    let (rdv_daemon, rdv_instance) = seqpacket_pair();
    let mut cmd = preloaded(&python, &library);
    cmd.arg(&script)
        .args([refuse, passed, private].map(|p| p.to_string()))
        .env(abi::ENV_RENDEZVOUS_FD, "3")
        .env(abi::ENV_PRIVATE_PORTS, format!("1,{private}"));
    let mut kids = Children::default();
    let spawned = kids.spawn(
        &scratch,
        "probe",
        cmd,
        &[(rdv_instance.as_fd(), 3)],
        true,
        false,
    );
    drop(rdv_instance);
    let lines = spawned.lines.expect("stdout captured");

    for (port, reply) in [
        (
            refuse,
            abi::encode_reply(abi::KIND_REFUSE, libc::EACCES as u32),
        ),
        (passed, abi::encode_reply(abi::KIND_PASS, 0)),
    ] {
        wait_readable(rdv_daemon.as_fd(), "a BIND request");
        let mut buf = [0u8; abi::RECV_BUF_LEN];
        let (n, reply_sock) =
            abi::recv_with_fd_flags(rdv_daemon.as_fd(), &mut buf, MsgFlags::MSG_DONTWAIT)
                .expect("recv BIND");
        assert_eq!(
            abi::decode_bind_request(&buf[..n]),
            Some(SocketAddr::from(([127, 0, 0, 1], port)))
        );
        let reply_sock = reply_sock.expect("reply socket");
        nix::sys::socket::send(reply_sock.as_raw_fd(), &reply, MsgFlags::MSG_NOSIGNAL)
            .expect("send reply");
    }
    assert_eq!(
        next_line(&lines, "refuse"),
        format!("refuse error {}", libc::EACCES)
    );
    assert_eq!(next_line(&lines, "pass"), format!("pass bound {passed}"));
    assert_eq!(
        next_line(&lines, "private"),
        format!("private bound {private}")
    );
    let zero = next_line(&lines, "zero");
    assert!(
        zero.starts_with("zero bound ") && zero != "zero bound 0",
        "{zero}"
    );
    assert_eq!(next_line(&lines, "listening"), "listening");
    assert_no_message(rdv_daemon.as_fd(), "private port and port 0 must not ask");
    for port in [passed, private] {
        let s = connect_when_listening(SocketAddr::from(([127, 0, 0, 1], port)));
        assert_eq!(read_all(s, "the real listener's reply"), "real");
    }
    assert_eq!(next_line(&lines, "done"), "done");
}

const UNREADY_PROBE: &str = r#"
import socket, sys, time
port = int(sys.argv[1])
try:
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); host = '::'
except OSError:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); host = '0.0.0.0'
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
s.bind((host, port))
s.listen(8)
s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
c, peer = s.accept()
fields = [
    'family=%s' % ('6' if s.family == socket.AF_INET6 else '4'),
    'name=%s,%d' % s.getsockname()[:2],
    'peer=%s,%d' % peer[:2],
    'getpeername=%s,%d' % c.getpeername()[:2],
    'getsockname=%s,%d' % c.getsockname()[:2],
    'nodelay=%d' % c.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY),
    'keepalive=%d' % c.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
    'type=%d' % s.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE),
    'acceptconn=%d' % s.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
    'blocking=%d' % c.getblocking(),
    'cloexec=%d' % (not c.get_inheritable()),
]
c.sendall(' '.join(fields).encode())
c.close()
s.close()
time.sleep(600)
"#;

/// (4) A program that binds, listens, accepts one connection and closes its listener: the
/// accepted socket looks like a real one (addresses in the listener's family, options set on
/// the listener re-applied, blocking, close-on-exec) and closing the listener sends UNREADY.
#[test]
fn unready_when_the_program_closes_its_listener() {
    let Some(python) = python() else { return };
    let scratch = Scratch::new("unready");
    let library = scratch.library();
    let script = scratch.write("probe.py", UNREADY_PROBE);
    let listener = loopback_listener();
    let port = listener.local_addr().expect("local_addr").port();
    let (daemon_end, instance_end) = seqpacket_pair();
    let mut cmd = preloaded(&python, &library);
    cmd.arg(&script)
        .arg(port.to_string())
        .env(abi::ENV_CHANNELS, abi::format_channels(&[(port, 3)]));
    let mut kids = Children::default();
    let spawned = kids.spawn(
        &scratch,
        "probe",
        cmd,
        &[(instance_end.as_fd(), 3)],
        false,
        false,
    );
    drop(instance_end);
    assert_eq!(
        next_instance_msg(daemon_end.as_fd(), "READY"),
        InstanceMsg::Ready { pid: spawned.pid }
    );

    let client = connect(listener.local_addr().expect("local_addr"));
    let client_port = client.local_addr().expect("client addr").port();
    deal(&listener, daemon_end.as_fd());
    let report = read_all(client, "the probe's report");
    let f: HashMap<&str, &str> = report
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let (any, client_ip) = if f.get("family") == Some(&"6") {
        ("::", "::ffff:127.0.0.1")
    } else {
        ("0.0.0.0", "127.0.0.1")
    };
    let expect = [
        ("name", format!("{any},{port}")),
        ("peer", format!("{client_ip},{client_port}")),
        ("getpeername", format!("{client_ip},{client_port}")),
        ("getsockname", format!("{client_ip},{port}")),
        ("nodelay", "1".to_string()),
        ("keepalive", "1".to_string()),
        ("type", libc::SOCK_STREAM.to_string()),
        ("acceptconn", "1".to_string()),
        ("blocking", "1".to_string()),
        ("cloexec", "1".to_string()),
    ];
    for (key, want) in expect {
        assert_eq!(
            f.get(key).copied(),
            Some(want.as_str()),
            "{key} in {report:?}"
        );
    }
    assert_eq!(
        next_instance_msg(daemon_end.as_fd(), "UNREADY after close()"),
        InstanceMsg::Unready { pid: spawned.pid }
    );
}

/// (5) A port that is not managed still binds for real, beside a managed one.
#[test]
fn unmanaged_port_binds_for_real() {
    let Some(python) = python() else { return };
    let scratch = Scratch::new("real");
    let library = scratch.library();
    scratch.write("www/who", "real-bind");
    let managed = loopback_listener();
    let managed_port = managed.local_addr().expect("local_addr").port();
    let port = free_port();
    let (daemon_end, instance_end) = seqpacket_pair();
    let cmd = python_http_server(
        &python,
        &library,
        port,
        &scratch.path("www"),
        &[(
            abi::ENV_CHANNELS,
            abi::format_channels(&[(managed_port, 3)]),
        )],
    );
    let mut kids = Children::default();
    kids.spawn(
        &scratch,
        "http.server-real",
        cmd,
        &[(instance_end.as_fd(), 3)],
        false,
        false,
    );
    drop(instance_end);
    let client = connect_when_listening(SocketAddr::from(([127, 0, 0, 1], port)));
    assert_eq!(http_exchange(client, "/who"), "real-bind");
    assert_no_message(daemon_end.as_fd(), "no READY for an unmanaged port");
}

const FORKING_SERVER: &str = r#"
import os, socket, sys
port = int(sys.argv[1])
s = socket.socket()
s.bind(('127.0.0.1', port))
s.listen(16)
workers = []
for i in range(2):
    pid = os.fork()
    if pid == 0:
        while True:
            c, _ = s.accept()
            data = c.recv(100)
            if data.startswith(b'close'):
                s.close()
                c.sendall(('closed %d' % os.getpid()).encode())
                c.close()
                os._exit(0)
            c.sendall(str(os.getpid()).encode())
            c.close()
    workers.append(pid)
print('workers', *workers, flush=True)
sys.stdin.readline()
s.close()
print('master closed', flush=True)
sys.stdin.readline()
"#;

fn raw_request(listener: &TcpListener, end: BorrowedFd<'_>, text: &str) -> String {
    let mut client = connect(listener.local_addr().expect("local_addr"));
    deal(listener, end);
    client.write_all(text.as_bytes()).expect("send");
    read_all(client, "a worker's reply")
}

/// (6) gunicorn-style: the master binds and listens (READY with its pid), forked workers
/// accept from the shared channel, a worker closing its copy sends nothing, the master closing
/// its listener sends UNREADY with its pid.
#[test]
fn forked_workers_share_the_channel() {
    let Some(python) = python() else { return };
    let scratch = Scratch::new("fork");
    let library = scratch.library();
    let script = scratch.write("server.py", FORKING_SERVER);
    let listener = loopback_listener();
    let port = listener.local_addr().expect("local_addr").port();
    let (daemon_end, instance_end) = seqpacket_pair();
    let mut cmd = preloaded(&python, &library);
    cmd.arg(&script)
        .arg(port.to_string())
        .env(abi::ENV_CHANNELS, abi::format_channels(&[(port, 3)]));
    let mut kids = Children::default();
    let spawned = kids.spawn(
        &scratch,
        "forking",
        cmd,
        &[(instance_end.as_fd(), 3)],
        true,
        true,
    );
    drop(instance_end);
    let master = spawned.pid;
    let lines = spawned.lines.expect("stdout captured");
    let mut stdin = spawned.stdin.expect("stdin piped");
    assert_eq!(
        next_instance_msg(daemon_end.as_fd(), "READY from the master"),
        InstanceMsg::Ready { pid: master }
    );
    let workers: Vec<String> = next_line(&lines, "the workers' pids")
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect();
    assert_eq!(workers.len(), 2);

    for _ in 0..6 {
        let who = raw_request(&listener, daemon_end.as_fd(), "hello");
        assert!(
            workers.contains(&who),
            "answered by {who:?}, workers {workers:?}"
        );
    }
    let closed = raw_request(&listener, daemon_end.as_fd(), "close");
    let gone = closed
        .strip_prefix("closed ")
        .unwrap_or_else(|| panic!("unexpected reply {closed:?}"))
        .to_string();
    assert!(workers.contains(&gone));
    // The worker's close() ran before its reply: had it sent UNREADY, it would be queued now.
    assert_no_message(daemon_end.as_fd(), "a forked worker must not send UNREADY");
    let left: Vec<&String> = workers.iter().filter(|w| **w != gone).collect();
    for _ in 0..2 {
        let who = raw_request(&listener, daemon_end.as_fd(), "hello");
        assert_eq!(&&who, left.first().expect("one worker left"));
    }

    stdin.write_all(b"\n").expect("tell the master to close");
    stdin.flush().expect("flush");
    assert_eq!(next_line(&lines, "master closed"), "master closed");
    assert_eq!(
        next_instance_msg(daemon_end.as_fd(), "UNREADY from the master"),
        InstanceMsg::Unready { pid: master }
    );
}

const COPIES_PROBE: &str = r#"
import fcntl, os, socket, sys
port = int(sys.argv[1])
def say(*a):
    print(*a, flush=True)
def wait():
    sys.stdin.readline()
s = socket.socket()
s.bind(('127.0.0.1', port))
s.listen(4)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, 5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
say('opts', s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN),
    s.getsockopt(socket.SOL_SOCKET, socket.SO_PROTOCOL),
    s.getsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT))
s.setblocking(False)
try:
    s.accept()
    say('accepted?!')
except BlockingIOError:
    say('eagain')
d1 = os.dup(s.fileno())
d2 = fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 50)
t = socket.socket(fileno=d1)
say('copy', int(t.family), int(t.type), t.getsockname()[1])
u = socket.socket(fileno=d2)
u.setblocking(True)
say('ready')
c, _ = u.accept()
c.sendall(b'via-copy')
c.close()
s.close()
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, t.detach())
say('copies closed')
wait()
u.shutdown(socket.SHUT_RDWR)
say('shut')
wait()
u.listen(4)
say('listening again')
wait()
fd = u.detach()
os.closerange(fd, fd + 1)
say('closerange')
wait()
"#;

/// (8) Copies of the listener (dup, fcntl F_DUPFD_CLOEXEC, a socket object built on a copy)
/// behave like the listener; closing or overwriting some copies sends nothing, shutdown sends
/// UNREADY, listen again READY, and closing the last copy with close_range UNREADY. Options a
/// Unix socket would reject are accepted; a non-blocking accept with nothing queued is EAGAIN.
#[test]
fn listener_copies_shutdown_and_close_range() {
    let Some(python) = python() else { return };
    let scratch = Scratch::new("copies");
    let library = scratch.library();
    let script = scratch.write("probe.py", COPIES_PROBE);
    let listener = loopback_listener();
    let port = listener.local_addr().expect("local_addr").port();
    let (daemon_end, instance_end) = seqpacket_pair();
    let mut cmd = preloaded(&python, &library);
    cmd.arg(&script)
        .arg(port.to_string())
        .env(abi::ENV_CHANNELS, abi::format_channels(&[(port, 3)]));
    let mut kids = Children::default();
    let spawned = kids.spawn(
        &scratch,
        "probe",
        cmd,
        &[(instance_end.as_fd(), 3)],
        true,
        true,
    );
    drop(instance_end);
    let pid = spawned.pid;
    let lines = spawned.lines.expect("stdout captured");
    let mut stdin = spawned.stdin.expect("stdin piped");
    let mut go_on = || {
        stdin.write_all(b"\n").expect("write to the probe");
        stdin.flush().expect("flush");
    };
    let end = daemon_end.as_fd();
    assert_eq!(next_instance_msg(end, "READY"), InstanceMsg::Ready { pid });
    assert_eq!(
        next_line(&lines, "options"),
        format!("opts {} {} 5", libc::AF_INET, libc::IPPROTO_TCP)
    );
    assert_eq!(next_line(&lines, "non-blocking accept"), "eagain");
    assert_eq!(
        next_line(&lines, "the copy's family, type, port"),
        format!("copy {} {} {port}", libc::AF_INET, libc::SOCK_STREAM)
    );
    assert_eq!(next_line(&lines, "ready"), "ready");
    let client = connect(listener.local_addr().expect("local_addr"));
    deal(&listener, end);
    assert_eq!(read_all(client, "the reply"), "via-copy");
    assert_eq!(next_line(&lines, "copies closed"), "copies closed");
    assert_no_message(end, "one copy is still open");
    go_on();
    assert_eq!(next_line(&lines, "shut"), "shut");
    assert_eq!(
        next_instance_msg(end, "UNREADY after shutdown"),
        InstanceMsg::Unready { pid }
    );
    go_on();
    assert_eq!(next_line(&lines, "listening again"), "listening again");
    assert_eq!(
        next_instance_msg(end, "READY after listen again"),
        InstanceMsg::Ready { pid }
    );
    go_on();
    assert_eq!(next_line(&lines, "closerange"), "closerange");
    assert_eq!(
        next_instance_msg(end, "UNREADY after closerange"),
        InstanceMsg::Unready { pid }
    );
    go_on();
}

/// (7) The daemon goes away (its channel end closes): the instance reads EOF and gets SIGTERM
/// once, instead of spinning on a channel that stays readable.
#[test]
fn daemon_gone_sends_sigterm() {
    let Some(python) = python() else { return };
    let scratch = Scratch::new("gone");
    let library = scratch.library();
    let listener = loopback_listener();
    let port = listener.local_addr().expect("local_addr").port();
    let (daemon_end, instance_end) = seqpacket_pair();
    let cmd = python_http_server(
        &python,
        &library,
        port,
        &scratch.path("www"),
        &[(abi::ENV_CHANNELS, abi::format_channels(&[(port, 3)]))],
    );
    fs::create_dir_all(scratch.path("www")).expect("www");
    let mut kids = Children::default();
    let spawned = kids.spawn(
        &scratch,
        "http.server-gone",
        cmd,
        &[(instance_end.as_fd(), 3)],
        false,
        false,
    );
    drop(instance_end);
    assert_eq!(
        next_instance_msg(daemon_end.as_fd(), "READY"),
        InstanceMsg::Ready { pid: spawned.pid }
    );
    drop(daemon_end);
    let status = kids.wait_exit(spawned.pid);
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "expected death by SIGTERM, got {status:?}"
    );
}
