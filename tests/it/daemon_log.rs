//! The daemon log under what clients send (issue #17): a name with a newline cannot forge a
//! line, a 4 MiB name adds a few KiB, not 4 MiB, a request whose echo would not fit in a frame
//! gets a short error (not a closed connection), and the log is rotated so it stays bounded.

use std::io::Write;

use rcluster::protocol::frame::{encode, MAX_FRAME};
use rcluster::protocol::{ErrorKind, Hello, Request, Response, Target};

use crate::daemon::{raw_connect, read_hello, read_response};
use crate::harness::Home;

fn stop(name: String) -> Request {
    Request::Stop {
        target: Target::Name(name),
    }
}

#[test]
fn client_strings_cannot_forge_or_flood_the_daemon_log() {
    let home = Home::new();
    home.ok(&["ping"]);
    let mut conn = raw_connect(&home);
    conn.write_all(&encode(&Hello::ours()).expect("hello"))
        .expect("write");
    read_hello(&mut conn);

    let forged = "2026-01-01T00:00:00.000Z daemon 9.9.9 starting, pid 1";
    conn.write_all(&encode(&stop(format!("web\n{forged}"))).expect("request"))
        .expect("write");
    assert!(matches!(
        read_response(&mut conn),
        Some(Response::Error(e)) if e.kind == ErrorKind::NotFound
    ));
    let log = home.daemon_log();
    assert!(log.lines().all(|l| !l.starts_with(forged)), "{log}");
    assert!(log.contains("web\\n2026-01-01"), "escaped in place: {log}");

    // A name as long as a frame allows: its echo would not fit in one.
    let before = home.daemon_log().len();
    let huge = "x".repeat(MAX_FRAME as usize - 60);
    conn.write_all(&encode(&stop(huge)).expect("request fits"))
        .expect("write");
    match read_response(&mut conn) {
        Some(Response::Error(e)) => {
            assert_eq!(e.kind, ErrorKind::NotFound);
            assert!(e.message.len() < 8 * 1024, "{}", e.message.len());
            assert!(e.message.contains("more bytes]"), "says it is cut");
        }
        other => panic!("expected a short error, got {other:?}"),
    }
    let grown = home.daemon_log().len() - before;
    assert!(grown < 16 * 1024, "the daemon log grew by {grown} bytes");
    // The connection goes on.
    conn.write_all(&encode(&Request::Ping).expect("ping"))
        .expect("write");
    assert!(matches!(
        read_response(&mut conn),
        Some(Response::Pong { .. })
    ));
}

#[test]
fn the_daemon_log_is_rotated_and_bounded() {
    let home = Home::new();
    // A daemon log grown past its bound by an earlier daemon.
    let log = home.dir.join("daemon.log");
    std::fs::write(&log, "old line\n".repeat(5 << 20 >> 3)).expect("write");
    home.ok(&["ping"]);
    let rotated = home.dir.join("daemon.log.1");
    assert!(
        std::fs::read_to_string(&rotated)
            .expect("daemon.log.1")
            .starts_with("old line\n"),
        "the old log moved to daemon.log.1"
    );
    let fresh = home.daemon_log();
    assert!(
        fresh.len() < 64 * 1024 && fresh.contains("starting"),
        "{fresh}"
    );
    // Again: .1 moves to .2, and nothing older is kept.
    home.ok(&["kill"]);
    std::fs::write(&log, "newer line\n".repeat(5 << 20 >> 3)).expect("write");
    home.ok(&["ping"]);
    let second = std::fs::read_to_string(home.dir.join("daemon.log.2")).expect("daemon.log.2");
    assert!(second.starts_with("old line\n"));
    assert!(std::fs::read_to_string(&rotated)
        .expect("daemon.log.1")
        .starts_with("newer line\n"));
    assert!(!home.dir.join("daemon.log.3").exists());
}
