//! `rcluster update` (PRODUCT.md §8): the daemon re-executes the new binary in place — same pid,
//! same instances, listening sockets and connections (proxied ones too) kept, log lines neither
//! lost nor cut — and refuses while something is in motion.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rcluster::protocol::model::InstanceState;

use rcluster::protocol::frame::encode;
use rcluster::protocol::{ErrorKind, Hello, Request, Response};

use crate::daemon::{connect_as_another_version, raw_connect, read_hello, read_response};
use crate::harness::{declared_length, fixture, free_port, http_get, wait_until, Home};

/// Start a whoami cluster app and wait until every instance answers on `port` (the app binds
/// `port` itself, or in proxy mode its private $PORT).
fn start_whoami(home: &Home, name: &str, port: u16, extra: &[&str]) {
    let proxied = extra.contains(&"proxy");
    let cmd = match proxied {
        true => format!("python3 {}", fixture("servers/whoami.py")),
        false => format!("python3 {} {port}", fixture("servers/whoami.py")),
    };
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec![
        "start", &cmd, "--name", name, "-i", "2", "--listen", &listen,
    ];
    args.extend_from_slice(extra);
    home.ok(&args);
    wait_until(&format!("{name}: both instances answer"), || {
        (serving(port, |p| http_get(p).ok()).len() == 2).then_some(())
    });
}

/// The instances (`RCLUSTER_INSTANCE`) that answered 8 requests on `port`.
fn serving(port: u16, get: impl Fn(u16) -> Option<String>) -> std::collections::BTreeSet<String> {
    (0..8)
        .filter_map(|_| get(port))
        .filter_map(|body| body.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// A raw connection that has exchanged hellos as this version.
fn said_hello(home: &Home) -> std::os::unix::net::UnixStream {
    let mut s = raw_connect(home);
    s.write_all(&encode(&Hello::ours()).expect("hello"))
        .expect("write");
    read_hello(&mut s);
    s
}

/// An `update` request on a raw connection that has said hello; the daemon's answer.
fn raw_update(
    mut s: std::os::unix::net::UnixStream,
    exe: PathBuf,
    format: u32,
) -> Option<Response> {
    let update = Request::Update { exe, format };
    s.write_all(&encode(&update).expect("update"))
        .expect("write");
    read_response(&mut s)
}

/// An app whose every line is written in two halves, with a pause between: an update lands
/// between them sooner or later.
fn start_ticker(home: &Home) {
    let ticker = home.write_script(
        "ticker.py",
        "import sys, time\ni = 0\nwhile True:\n    sys.stdout.write(f'tick {i} begins ')\n    sys.stdout.flush()\n    time.sleep(0.01)\n    sys.stdout.write(f'and ends {i}\\n')\n    sys.stdout.flush()\n    i += 1\n",
    );
    home.ok(&["start", crate::harness::path_str(&ticker), "--name", "tick"]);
    wait_until("ticker lines", || {
        (home.read_log("tick-out.log").lines().count() > 5).then_some(())
    });
}

/// The ticker's log goes on, with no line lost or cut.
fn ticker_goes_on_whole(home: &Home) {
    let lines_then = home.read_log("tick-out.log").lines().count();
    wait_until("more ticker lines", || {
        (home.read_log("tick-out.log").lines().count() > lines_then + 5).then_some(())
    });
    let log = home.read_log("tick-out.log");
    for (expected, line) in log.lines().enumerate() {
        let want = format!("tick {expected} begins and ends {expected}");
        assert!(line.ends_with(&want), "line {expected} is {line:?}");
    }
}

/// GET on an open keep-alive connection; the body.
fn get_on(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .expect("send on the kept connection");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("read the answer");
        assert!(n == 1, "connection closed mid-answer: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut body = vec![0u8; declared_length(&head).expect("Content-Length")];
    stream.read_exact(&mut body).expect("read the body");
    String::from_utf8_lossy(&body).into_owned()
}

/// The rcluster binary copied elsewhere, as `cargo install` would put a new version.
fn next_binary(home: &Home) -> std::path::PathBuf {
    let next = home.dir.join("rcluster-next");
    std::fs::copy(crate::harness::BIN, &next).expect("copy the binary");
    // Until every child forked by other tests while the copy was open for writing has exec'd,
    // running it fails with ETXTBSY.
    wait_until("the copied binary to run", || {
        std::process::Command::new(&next)
            .arg("--version")
            .output()
            .ok()
            .filter(|out| out.status.success())
    });
    next
}

fn update_with(home: &Home, binary: &Path) -> std::process::Output {
    let mut cmd = std::process::Command::new(binary);
    cmd.arg("update")
        .env("RCLUSTER_HOME", &home.dir)
        .env_remove("RCLUSTER_INSTANCE")
        .current_dir(home.work())
        .stdin(std::process::Stdio::null());
    crate::harness::run_with_deadline(cmd, &["update"])
}

#[test]
fn update_keeps_every_instance_socket_connection_and_log_line() {
    let home = Home::new();
    let rr_port = free_port();
    start_whoami(&home, "rr", rr_port, &[]);
    let proxy_port = free_port();
    start_whoami(&home, "prox", proxy_port, &["--balance", "proxy"]);
    start_ticker(&home);
    let mut kept = TcpStream::connect(("127.0.0.1", rr_port)).expect("connect");
    kept.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let first = get_on(&mut kept);
    // A proxied keep-alive connection: its two sockets cross the exec between two copies.
    let mut proxied = TcpStream::connect(("127.0.0.1", proxy_port)).expect("connect");
    proxied
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let proxied_first = get_on(&mut proxied);

    let daemon = home.daemon_pid().expect("daemon pid");
    let before: BTreeMap<u32, (Option<u32>, u64)> = home
        .list()
        .iter()
        .map(|i| (i.id, (i.pid, i.accepted)))
        .collect();
    let next = next_binary(&home);
    let out = update_with(&home, &next);
    assert!(out.status.success(), "update failed\n{}", home.report(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("re-executed"), "{said}");

    assert_eq!(home.daemon_pid(), Some(daemon), "the daemon keeps its pid");
    let exe = std::fs::read_link(format!("/proc/{daemon}/exe")).expect("daemon exe");
    assert_eq!(exe, next, "the daemon runs the new binary");
    let after = home.list();
    for inst in &after {
        let (pid, accepted) = before[&inst.id];
        assert_eq!(inst.pid, pid, "{inst:?} kept its process");
        assert_eq!(inst.restarts, 0, "{inst:?}");
        assert_eq!(inst.status, InstanceState::Online, "{inst:?}");
        assert!(inst.accepted >= accepted, "{inst:?} kept its counts");
    }
    assert_eq!(after.len(), before.len());

    // The connections made before the update go on, served by the same instances.
    assert_eq!(get_on(&mut kept), first);
    assert_eq!(get_on(&mut proxied), proxied_first);
    for (name, port) in [("rr", rr_port), ("prox", proxy_port)] {
        let served = serving(port, |p| {
            Some(http_get(p).expect("served after the update"))
        });
        assert_eq!(served.len(), 2, "{name}: {served:?}");
    }

    ticker_goes_on_whole(&home);

    // The new image reaps and replaces a crashed instance.
    let victim = after
        .iter()
        .find(|i| i.name == "rr")
        .expect("an rr instance");
    let old_pid = victim.pid.expect("pid");
    kill(Pid::from_raw(old_pid as i32), Signal::SIGKILL).expect("kill -9");
    wait_until("the crashed instance replaced", || {
        home.list()
            .into_iter()
            .find(|i| i.id == victim.id)
            .filter(|i| i.status == InstanceState::Online && i.pid.is_some_and(|p| p != old_pid))
            .map(|i| assert_eq!(i.restarts, 1))
    });
    home.ok(&["stop", "all"]);
    assert!(home
        .list()
        .iter()
        .all(|i| i.status == InstanceState::Stopped));
}

#[test]
fn update_waits_until_nothing_is_in_motion() {
    let home = Home::new();
    // An instance still starting (it never says READY) holds the update back.
    home.ok(&[
        "start",
        "sleep 1000",
        "--name",
        "starting",
        "--wait-ready",
        "--listen-timeout",
        "60000",
    ]);
    let daemon = home.daemon_pid().expect("daemon pid");
    let refused = home.fails(&["update"]);
    assert!(refused.contains("is starting"), "{refused}");
    home.ok(&["delete", "starting"]);

    home.ok(&["update"]);
    assert_eq!(home.daemon_pid(), Some(daemon));
}

#[test]
fn an_update_that_cannot_execute_leaves_the_daemon_as_it_was() {
    let home = Home::new();
    let port = free_port();
    start_whoami(&home, "rr", port, &[]);
    start_ticker(&home);
    let daemon = home.daemon_pid().expect("daemon pid");
    let before = home.list();
    // A binary that cannot run (its interpreter is missing), asked for by a client of another
    // version: the one request besides `kill` that a daemon of another version takes.
    let broken = home.write_script("rcluster-broken", "#!/nonexistent/interpreter\n");
    let format = rcluster::daemon::handoff::FORMAT;
    let refusal = |answer: Option<Response>| match answer {
        Some(Response::Error(e)) => e,
        other => panic!("expected a refusal, got {other:?}\n{}", home.daemon_log()),
    };
    let e = refusal(raw_update(
        connect_as_another_version(&home),
        broken,
        format,
    ));
    assert!(
        e.message.contains("update failed") && e.message.contains("cannot execute"),
        "{e:?}"
    );

    // A program that is not an rcluster able to read this daemon's state is refused after the
    // handover began: everything resumes.
    let impostor = home.write_script("rcluster-impostor", "#!/bin/sh\necho nope\n");
    let e = refusal(raw_update(said_hello(&home), impostor, format));
    assert!(
        e.message
            .contains("cannot take over from this daemon: nope"),
        "{e:?}"
    );

    // A binary that reads another state format is refused before anything pauses.
    let e = refusal(raw_update(
        said_hello(&home),
        next_binary(&home),
        format + 1,
    ));
    assert!(
        e.kind == ErrorKind::VersionMismatch && e.message.contains("cannot take over"),
        "{e:?}"
    );

    // Nothing changed: same daemon and instances, the port served by both, logs whole.
    assert_eq!(home.daemon_pid(), Some(daemon));
    let after = home.list();
    let pids = |list: &[rcluster::protocol::model::InstanceView]| -> Vec<Option<u32>> {
        list.iter().map(|i| i.pid).collect()
    };
    assert_eq!(pids(&after), pids(&before));
    let served = serving(port, |p| {
        Some(http_get(p).expect("served after the failed update"))
    });
    assert_eq!(served.len(), 2, "{served:?}");
    ticker_goes_on_whole(&home);
    // And an update that can run still works afterwards.
    home.ok(&["update"]);
    assert_eq!(home.daemon_pid(), Some(daemon));
    ticker_goes_on_whole(&home);
}

#[test]
fn an_updated_boot_daemon_does_not_resurrect_the_saved_list_again() {
    let home = Home::new();
    // As the systemd unit of `rcluster startup` runs it: resurrect at start.
    let mut ping = home.command(&["ping"]);
    ping.env("RCLUSTER_RESURRECT", "1");
    let out = crate::harness::run_with_deadline(ping, &["ping"]);
    assert!(out.status.success(), "{}", home.report(&out));
    home.ok(&["start", "sleep 1000", "--name", "kept"]);
    home.ok(&["start", "sleep 1000", "--name", "deleted"]);
    home.ok(&["save"]);
    home.ok(&["delete", "deleted"]);
    home.ok(&["update"]);
    let names: Vec<String> = home.list().into_iter().map(|i| i.name).collect();
    assert_eq!(
        names,
        ["kept"],
        "the new image runs what it was handed, nothing more"
    );
}

#[test]
fn a_follower_follows_on_after_an_update() {
    let home = Home::new();
    start_ticker(&home);
    let (mut child, mut reader) =
        crate::logs::follower(&home, &["logs", "tick", "--follow", "--lines", "0"]);
    crate::logs::read_until(&mut reader, "a live line", |l| l.contains("ends"));
    home.ok(&["update"]);
    let last = home.read_log("tick-out.log").lines().count();
    // A line written after the update reaches the same follower.
    crate::logs::read_until(&mut reader, "a line after the update", |l| {
        l.split_whitespace()
            .last()
            .and_then(|n| n.parse::<usize>().ok())
            .is_some_and(|n| n > last)
    });
    let _ = child.kill();
    let _ = child.wait();
}
