//! The daemon itself: started on first use, one per home (even when started twice at once),
//! private socket and home, unharmed by garbage on its socket, clear about version mismatches.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::Stdio;
use std::time::Duration;

use rcluster::protocol::frame::{decode, encode, MAX_FRAME};
use rcluster::protocol::model::InstanceState;
use rcluster::protocol::{ErrorKind, Hello, Request, Response};

use crate::harness::{pid_alive, run_with_deadline, wait_until, Home};

pub fn raw_connect(home: &Home) -> UnixStream {
    let stream = UnixStream::connect(home.socket()).expect("connect to the daemon socket");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}

pub fn read_response(stream: &mut UnixStream) -> Option<Response> {
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).ok()?;
    let mut body = vec![0; u32::from_be_bytes(head) as usize];
    stream.read_exact(&mut body).ok()?;
    decode(&body).ok()
}

/// A raw connection that says hello as a client of another version, and has heard the daemon's
/// version-mismatch error (after which a daemon still takes `kill` and `update`).
pub fn connect_as_another_version(home: &Home) -> UnixStream {
    let mut s = raw_connect(home);
    let other = Hello {
        protocol: 99,
        version: "9.9.9".into(),
    };
    s.write_all(&encode(&other).expect("hello")).expect("write");
    read_hello(&mut s);
    assert!(
        matches!(read_response(&mut s), Some(Response::Error(e)) if e.kind == ErrorKind::VersionMismatch)
    );
    s
}

pub fn read_hello(stream: &mut UnixStream) -> Hello {
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).expect("hello length");
    let mut body = vec![0; u32::from_be_bytes(head) as usize];
    stream.read_exact(&mut body).expect("hello body");
    decode(&body).expect("a hello")
}

#[test]
fn ping_starts_the_daemon_with_a_private_home() {
    let home = Home::new();
    let out = home.ok(&["ping"]);
    assert!(out.contains("daemon started"), "{out}");
    let again = home.ok(&["ping"]);
    assert!(again.starts_with("pong: daemon pid"), "{again}");
    let dir_mode = std::fs::metadata(&home.dir)
        .expect("home")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let sock_mode = std::fs::metadata(home.socket())
        .expect("socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(sock_mode, 0o600);
    let log_mode = std::fs::metadata(home.dir.join("daemon.log"))
        .expect("log")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(log_mode, 0o600);
}

#[test]
fn garbage_truncated_and_oversized_frames_never_hurt_the_daemon() {
    let home = Home::new();
    home.ok(&["ping"]);
    let pid = home.daemon_pid().expect("daemon pid");

    // Garbage where a hello belongs: an error reply, then the connection closes.
    let mut s = raw_connect(&home);
    s.write_all(&[0, 0, 0, 5, b'h', b'e', b'l', b'l', b'o'])
        .expect("write");
    match read_response(&mut s) {
        Some(Response::Error(e)) => assert_eq!(e.kind, ErrorKind::BadRequest),
        other => panic!("expected an error, got {other:?}"),
    }

    // An oversized length: refused before anything is allocated.
    let mut s = raw_connect(&home);
    s.write_all(&(MAX_FRAME + 1).to_be_bytes()).expect("write");
    assert!(matches!(read_response(&mut s), Some(Response::Error(_))));

    // A good hello, then a truncated frame and a hang-up.
    let mut s = raw_connect(&home);
    s.write_all(&encode(&Hello::ours()).expect("hello"))
        .expect("write");
    read_hello(&mut s);
    s.write_all(&[0, 0, 1, 0, b'{']).expect("write");
    drop(s);

    // A good hello, then JSON that is not a request.
    let mut s = raw_connect(&home);
    s.write_all(&encode(&Hello::ours()).expect("hello"))
        .expect("write");
    read_hello(&mut s);
    s.write_all(&encode(&serde_json::json!({"verb": "launch_missiles"})).expect("frame"))
        .expect("write");
    match read_response(&mut s) {
        Some(Response::Error(e)) => assert_eq!(e.kind, ErrorKind::BadRequest),
        other => panic!("expected an error, got {other:?}"),
    }

    // Random bytes, a half header, and a peer that sends nothing and leaves.
    let mut s = raw_connect(&home);
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&noise);
    drop(s);
    let mut s = raw_connect(&home);
    s.write_all(&[0, 0]).expect("write");
    drop(s);
    drop(raw_connect(&home));

    // Still the same daemon, still answering a well-formed request on a raw connection.
    let mut s = raw_connect(&home);
    s.write_all(&encode(&Hello::ours()).expect("hello"))
        .expect("write");
    read_hello(&mut s);
    s.write_all(&encode(&Request::Ping).expect("ping"))
        .expect("write");
    assert!(matches!(read_response(&mut s), Some(Response::Pong { .. })));
    assert!(pid_alive(pid));
    assert_eq!(home.daemon_pid(), Some(pid));
    home.ok(&["ping"]);
}

#[test]
fn a_client_of_another_version_is_told_so() {
    let home = Home::new();
    home.ok(&["ping"]);
    let mut s = raw_connect(&home);
    let old = Hello {
        protocol: 0,
        version: "0.0.1".into(),
    };
    s.write_all(&encode(&old).expect("hello")).expect("write");
    let theirs = read_hello(&mut s);
    assert_eq!(theirs, Hello::ours());
    match read_response(&mut s) {
        Some(Response::Error(e)) => {
            assert_eq!(e.kind, ErrorKind::VersionMismatch);
            assert!(
                e.message.contains("0.0.1") && e.message.contains(&theirs.version),
                "{}",
                e.message
            );
            assert!(e.message.contains("rcluster kill"), "{}", e.message);
        }
        other => panic!("expected a version mismatch, got {other:?}"),
    }
}

#[test]
fn the_cli_names_both_versions_when_the_daemon_differs() {
    // A stand-in daemon of another version on the home's socket.
    let home = Home::new();
    std::fs::set_permissions(&home.dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let listener = UnixListener::bind(home.socket()).expect("bind fake daemon");
    let fake = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut head = [0u8; 4];
        let _ = conn.read_exact(&mut head);
        let mut body = vec![0; u32::from_be_bytes(head) as usize];
        let _ = conn.read_exact(&mut body);
        let other = Hello {
            protocol: 99,
            version: "9.9.9".into(),
        };
        let _ = conn.write_all(&encode(&other).expect("hello"));
    });
    let out = run_with_deadline(home.command(&["list"]), &["list"]);
    fake.join().expect("fake daemon");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("9.9.9") && err.contains(rcluster::protocol::VERSION),
        "{err}"
    );
    assert!(err.contains("rcluster kill"), "{err}");
    let _ = std::fs::remove_file(home.socket());
}

#[test]
fn two_daemons_racing_for_one_home_leave_exactly_one() {
    let home = Home::new();
    std::fs::create_dir_all(&home.dir).expect("home");
    let mut racers: Vec<_> = (0..3)
        .map(|_| {
            home.command(&["__daemon"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn daemon")
        })
        .collect();
    // Two losers exit with code 3; one winner keeps running and answers.
    let winner = wait_until("two racers to give up", || {
        let exited: Vec<_> = racers
            .iter_mut()
            .filter_map(|r| r.try_wait().ok().flatten())
            .collect();
        (exited.len() == 2).then_some(exited)
    });
    assert!(winner.iter().all(|s| s.code() == Some(3)), "{winner:?}");
    // And CLIs racing to autostart agree on one daemon.
    let clis: Vec<_> = (0..3)
        .map(|_| {
            home.command(&["ping"])
                .stdout(Stdio::piped())
                .spawn()
                .expect("ping")
        })
        .collect();
    let mut pids = Vec::new();
    for cli in clis {
        let out = cli.wait_with_output().expect("ping output");
        assert!(out.status.success());
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let pid = text
            .split("daemon pid ")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .map(str::to_owned);
        pids.push(pid);
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "{pids:?}");
    home.ok(&["kill"]);
    for mut racer in racers {
        let status = wait_until("racer exit", || racer.try_wait().ok().flatten());
        assert!(status.success() || status.code() == Some(3), "{status:?}");
    }
}

#[test]
fn kill_stops_every_app_and_the_daemon() {
    let home = Home::new();
    home.ok(&["start", "sleep 1000", "--name", "a", "-i", "2"]);
    let pids = wait_until("2 online", || home.online_pids("a", 2));
    let daemon = home.daemon_pid().expect("daemon pid");
    let out = home.ok(&["kill"]);
    assert!(
        out.contains("daemon stopped (2 instance(s) stopped)"),
        "{out}"
    );
    for pid in pids {
        assert!(!pid_alive(pid as i32));
    }
    wait_until("daemon gone", || (!pid_alive(daemon)).then_some(()));
    assert!(!home.socket().exists());
    let again = home.ok(&["kill"]);
    assert!(again.contains("no daemon runs"), "{again}");
}

#[test]
fn a_client_of_another_version_can_still_stop_the_daemon() {
    let home = Home::new();
    home.ok(&["ping"]);
    let daemon = home.daemon_pid().expect("daemon pid");
    let mut s = connect_as_another_version(&home);
    s.write_all(&encode(&Request::Kill).expect("kill"))
        .expect("write");
    assert!(matches!(
        read_response(&mut s),
        Some(Response::Instances { .. })
    ));
    wait_until("daemon gone", || (!pid_alive(daemon)).then_some(()));
}

/// One request on a fresh raw connection (the CLI checks what it sends; other clients may not).
pub fn raw_request(home: &Home, request: &Request) -> Option<Response> {
    let mut s = raw_connect(home);
    s.write_all(&encode(&Hello::ours()).expect("hello"))
        .expect("write");
    read_hello(&mut s);
    s.write_all(&encode(request).expect("request"))
        .expect("write");
    read_response(&mut s)
}

/// A change to an app's definition, named.
type Mutation = Box<dyn Fn(&mut rcluster::protocol::model::AppSpec)>;

#[test]
fn extreme_values_from_a_raw_client_never_hurt_the_daemon() {
    use rcluster::protocol::model::{AppSpec, CommandSpec, ProbeKind, ReadinessSpec, WatchSpec};
    use rcluster::protocol::{ScaleChange, Target};
    let home = Home::new();
    home.ok(&["ping"]);
    let pid = home.daemon_pid().expect("daemon pid");
    let base = AppSpec {
        command: CommandSpec::Exec {
            program: "sleep".into(),
            args: vec!["1000".into()],
        },
        cwd: home.work(),
        ..AppSpec::default()
    };
    const HUGE: u64 = u64::MAX;
    let watched = home.work();
    let watched_too = home.work();
    let variants: Vec<(&str, Mutation)> = vec![
        ("kill-timeout", Box::new(|s| s.kill_timeout_ms = HUGE)),
        ("restart-delay", Box::new(|s| s.restart_delay_ms = HUGE)),
        (
            "backoff",
            Box::new(|s| s.exp_backoff_restart_delay_ms = Some(HUGE)),
        ),
        ("min-uptime", Box::new(|s| s.min_uptime_ms = HUGE)),
        (
            "listen-timeout",
            Box::new(|s| {
                s.listen_timeout_ms = HUGE;
                s.wait_ready = true;
            }),
        ),
        ("memory", Box::new(|s| s.max_memory_restart = Some(0))),
        ("signal", Box::new(|s| s.kill_signal = "SIGNOPE".into())),
        (
            "cron",
            Box::new(|s| s.cron_restart = Some("not a cron line".into())),
        ),
        (
            "probe",
            Box::new(|s| {
                s.readiness = Some(ReadinessSpec {
                    probe: ProbeKind::Http { path: "x".into() },
                    interval_ms: 0,
                    timeout_ms: HUGE,
                })
            }),
        ),
        (
            "watch",
            Box::new(move |s| {
                s.watch = Some(WatchSpec {
                    paths: vec![watched.clone(), "/surely/not/there".into()],
                    ignore: vec!["[".into()],
                    ignore_regex: vec!["/(/".into(), "no literal".into()],
                    extensions: vec![String::new(), "JS".into()],
                    delay_ms: HUGE,
                })
            }),
        ),
        (
            "watch-here",
            Box::new(move |s| {
                s.watch = Some(WatchSpec {
                    paths: vec![watched_too.clone()],
                    ignore: vec!["[".into(), String::new()],
                    ignore_regex: vec!["/a/q".into()],
                    extensions: Vec::new(),
                    delay_ms: HUGE,
                })
            }),
        ),
        (
            "empty-program",
            Box::new(|s| {
                s.command = CommandSpec::Exec {
                    program: String::new(),
                    args: vec!["a\0b".into()],
                }
            }),
        ),
        (
            "env",
            Box::new(|s| {
                s.env.insert("A=B".into(), "x\0y".into());
                s.instance_var = String::new();
                s.increment_var = Some("NOT_A_NUMBER".into());
            }),
        ),
        (
            "logs",
            Box::new(|s| {
                s.logs.max_size = Some(0);
                s.logs.retain = Some(0);
                s.logs.out_file = Some("/surely/not/there/out.log".into());
                s.logs.date_format = Some("%Q%".into());
            }),
        ),
        (
            "depends",
            Box::new(|s| s.depends_on = vec![s.name.clone(), "nobody".into()]),
        ),
    ];
    for (name, mutate) in &variants {
        let mut spec = AppSpec {
            name: (*name).to_owned(),
            ..base.clone()
        };
        mutate(&mut spec);
        let start = Request::Start {
            apps: vec![spec],
            base_env: Default::default(),
            if_running: Default::default(),
        };
        let target = Target::Name((*name).to_owned());
        // A reload waits for readiness as long as the app's listen_timeout says: its answer is
        // not awaited, but it must not hold up the requests that follow.
        let mut reload = raw_connect(&home);
        reload
            .write_all(&encode(&Hello::ours()).expect("hello"))
            .expect("write");
        read_hello(&mut reload);
        // Each may be refused; none may hang or end the daemon.
        for request in [
            start,
            Request::Restart {
                target: target.clone(),
                apps: Vec::new(),
                base_env: Some([("A=B".to_owned(), "x\0y".to_owned())].into()),
            },
            Request::Scale {
                app: (*name).to_owned(),
                change: ScaleChange::By(i64::MIN),
            },
            Request::Scale {
                app: (*name).to_owned(),
                change: ScaleChange::To(u32::MAX),
            },
            Request::Stop {
                target: target.clone(),
            },
            Request::Delete { target },
        ] {
            let answered = raw_request(&home, &request);
            assert!(
                answered.is_some(),
                "{name}: no answer to {request:?}\n{}",
                home.daemon_log()
            );
            if matches!(request, Request::Restart { .. }) {
                let request = Request::Reload {
                    target: Target::Name((*name).to_owned()),
                    apps: Vec::new(),
                    parallel: 0,
                    base_env: None,
                };
                reload
                    .write_all(&encode(&request).expect("request"))
                    .expect("write");
            }
        }
        drop(reload);
        assert!(
            matches!(
                raw_request(&home, &Request::Ping),
                Some(Response::Pong { .. })
            ),
            "{name}: the daemon stopped answering\n{}",
            home.daemon_log()
        );
    }
    // Requests about nothing, or with absurd arguments, next to an app that runs.
    home.ok(&["start", "--name", "idle", "sleep", "--", "1000"]);
    for target in [
        Target::Id(u32::MAX),
        Target::Names(Vec::new()),
        Target::Name("\0/..".into()),
        Target::All,
    ] {
        for request in [
            Request::Describe {
                target: target.clone(),
            },
            Request::Signal {
                target: target.clone(),
                signal: "SIGRTMAX+999".into(),
            },
            Request::Signal {
                target: target.clone(),
                signal: "-1".into(),
            },
            Request::Reset {
                target: target.clone(),
            },
            Request::Flush {
                target: target.clone(),
            },
            Request::Logs {
                target,
                lines: usize::MAX,
                follow: false,
                streams: Default::default(),
            },
        ] {
            assert!(
                raw_request(&home, &request).is_some(),
                "no answer to {request:?}\n{}",
                home.daemon_log()
            );
        }
    }
    assert_eq!(home.app("idle")[0].status, InstanceState::Online);
    assert_eq!(home.daemon_pid(), Some(pid));
    assert!(
        !home.daemon_log().contains("panicked"),
        "{}",
        home.daemon_log()
    );
}
