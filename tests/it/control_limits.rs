//! Clients that hold control connections open (say hello, then nothing; trickle a request a
//! byte at a time) with the daemon's descriptors scarce: `ls` still answers, a crashed
//! instance still restarts, and the daemon closes them (issue #17.8). A start that fails for
//! want of descriptors is tried again; the CLI gives up on a daemon that does not answer.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rcluster::protocol::frame::encode;
use rcluster::protocol::model::InstanceState;
use rcluster::protocol::Hello;

use crate::harness::{run_with_deadline, wait_until, Home};

/// The soft limit on `pid`'s open descriptors becomes `soft`; the previous one.
fn set_descriptor_limit(pid: i32, soft: u64) -> u64 {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: prlimit reads `old`'s size first; with a null new limit it only reads the limit.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, std::ptr::null(), &mut old) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    let new = libc::rlimit {
        rlim_cur: soft,
        rlim_max: old.rlim_max,
    };
    // SAFETY: both pointers are to live rlimit values for the call.
    let rc = unsafe { libc::prlimit(pid, libc::RLIMIT_NOFILE, &new, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
    old.rlim_cur
}

fn open_descriptors(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// Whether the daemon has closed this connection (what it sent before is read and dropped).
fn closed_by_daemon(stream: &mut UnixStream) -> bool {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(10)));
    let mut sink = Vec::new();
    stream.read_to_end(&mut sink).is_ok()
}

#[test]
fn silent_and_trickling_control_connections_hold_nothing_up() {
    let home = Home::new();
    let mut start = home.command(&["start", "sleep 1000", "--name", "idle"]);
    // Short, so the silent ones are seen closed soon; the default is 10 s.
    start.env("RCLUSTER_REQUEST_TIMEOUT", "1s");
    let out = run_with_deadline(start, &["start"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let first = wait_until("idle online", || home.online_pids("idle", 1))[0];
    let daemon = home.daemon_pid().expect("daemon pid");
    let limit = 256;
    let before = set_descriptor_limit(daemon, limit);

    // 300 connections that say hello and nothing else (241 used to hang `ls` for good).
    let hello = encode(&Hello::ours()).expect("hello");
    let mut silent: Vec<UnixStream> = (0..300)
        .filter_map(|_| {
            let mut stream = UnixStream::connect(home.socket()).ok()?;
            stream.write_all(&hello).ok()?;
            Some(stream)
        })
        .collect();
    assert!(silent.len() > 250, "{} connected", silent.len());
    // One that sends a request a byte at a time, forever if it may.
    let socket = home.socket();
    let trickler = std::thread::spawn(move || {
        let mut stream = UnixStream::connect(socket).expect("connect");
        stream.write_all(&hello).expect("hello");
        let mut frame = 1000u32.to_be_bytes().to_vec();
        frame.extend(std::iter::repeat_n(b' ', 1000));
        for byte in frame {
            if stream.write_all(&[byte]).is_err() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20)); // the trickle's pace
        }
        false
    });

    let out = home.run(&["ls"]);
    assert!(out.status.success(), "{}", home.report(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("idle"));
    // A crash still finds descriptors for the restart.
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).expect("kill the instance");
    let again = wait_until("idle restarted", || {
        home.online_pids("idle", 1).filter(|p| p[0] != first)
    });
    assert_ne!(again[0], first);
    // The daemon closes them: silent past the request timeout, or pushed out by newer ones.
    wait_until("the silent connections closed", || {
        silent.retain_mut(|s| !closed_by_daemon(s));
        silent.is_empty().then_some(())
    });
    assert!(
        trickler.join().expect("trickler"),
        "the trickling request was cut off"
    );
    set_descriptor_limit(daemon, before);
}

#[test]
fn a_start_that_fails_for_want_of_descriptors_is_tried_again() {
    let home = Home::new();
    home.ok(&["start", "sleep 1000", "--name", "tight"]);
    let first = wait_until("tight online", || home.online_pids("tight", 1))[0];
    let daemon = home.daemon_pid().expect("daemon pid");
    // One fewer than it holds: once the instance's own descriptors close, enough to take a
    // control connection, never enough for a new instance's pipes.
    let before = set_descriptor_limit(daemon, open_descriptors(daemon) as u64 - 1);
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).expect("kill the instance");
    let waiting = wait_until("a start that waits for descriptors", || {
        home.app("tight").into_iter().find(|i| {
            i.status == InstanceState::WaitingRestart
                && i.reason.as_deref().is_some_and(|r| {
                    r.contains("Too many open files") && r.contains("trying again")
                })
        })
    });
    assert_eq!(waiting.pid, None);
    set_descriptor_limit(daemon, before);
    let again = wait_until("online once descriptors are back", || {
        home.online_pids("tight", 1)
    });
    assert_ne!(again[0], first);
    assert_eq!(
        home.app("tight")[0].restarts,
        1,
        "one restart, however many tries"
    );
}

#[test]
fn the_cli_gives_up_on_a_daemon_that_does_not_answer() {
    let home = Home::new();
    // A socket that takes connections and never answers, as a daemon out of descriptors.
    let _mute = UnixListener::bind(home.socket()).expect("bind");
    let mut ls = home.command(&["ls"]);
    ls.env("RCLUSTER_TIMEOUT", "500ms");
    let out = run_with_deadline(ls, &["ls"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("did not answer within 500 ms") && err.contains("daemon.log"),
        "{err}"
    );
}
