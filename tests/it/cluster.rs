//! Cluster mode (PRODUCT.md §4): N unmodified instances of a server share one port, dealt
//! round-robin by the daemon; the other strategies; the port stays open while instances crash;
//! clear errors for ports that cannot work.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rcluster::protocol::model::InstanceState;

use crate::harness::{
    declared_length, fixture, free_port, have, http_get, path_str, pid_alive, wait_until, Home,
};

/// Start `args` and wait until `n` instances are online and accepting on `port`.
fn start_cluster(home: &Home, name: &str, n: usize, port: u16, args: &[&str]) {
    let mut all = vec!["start", "--name", name];
    all.extend_from_slice(args);
    home.ok(&all);
    wait_until(&format!("{n} online"), || home.online_pids(name, n));
    wait_until("every instance accepting", || {
        let served: std::collections::BTreeSet<String> = (0..4 * n)
            .filter_map(|_| http_get(port).ok())
            .filter_map(|body| body.split_whitespace().next().map(str::to_owned))
            .collect();
        (served.len() == n).then_some(())
    });
}

fn tally(port: u16, requests: usize) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for _ in 0..requests {
        let body = http_get(port).expect("request served");
        let instance = body.split_whitespace().next().unwrap_or("?").to_owned();
        *counts.entry(instance).or_insert(0) += 1;
    }
    counts
}

#[test]
fn a_burst_beyond_what_the_instances_queues_hold_is_all_served() {
    // Each instance's queue holds a few hundred connections (its channel's send buffer); the
    // rest wait in the daemon and must be dealt as the queues empty, not at the next READY.
    let burst = raise_open_files_limit(4200).saturating_sub(200).min(2000);
    if burst < 2000 {
        eprintln!("only {burst} connections: the open files limit is low");
    }
    let home = Home::new();
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    start_cluster(&home, "py", 2, port, &[&cmd, "-i", "2"]);
    let pids: Vec<Pid> = home
        .app("py")
        .iter()
        .filter_map(|i| i.pid)
        .map(|pid| Pid::from_raw(pid as i32))
        .collect();
    // Paused instances take nothing from their queues while the burst arrives.
    for pid in &pids {
        kill(*pid, Signal::SIGSTOP).expect("pause an instance");
    }
    let request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut conns = Vec::new();
    for _ in 0..burst {
        let mut conn = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        conn.write_all(request).expect("send");
        conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        conns.push(conn);
    }
    for pid in &pids {
        kill(*pid, Signal::SIGCONT).expect("resume an instance");
    }
    for (n, mut conn) in conns.into_iter().enumerate() {
        let mut answer = String::new();
        let read = conn.read_to_string(&mut answer);
        assert!(
            read.is_ok() && answer.starts_with("HTTP/1.1 200"),
            "connection {n} of {burst}: {read:?} {answer:?}"
        );
    }
}

/// Raise this process's soft limit on open files towards `wanted`; the limit now in force.
fn raise_open_files_limit(wanted: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    let target = wanted.min(hard).max(soft);
    match setrlimit(Resource::RLIMIT_NOFILE, target, hard) {
        Ok(()) => target,
        Err(_) => soft,
    }
}

#[test]
fn round_robin_deals_exactly_to_unmodified_python_servers() {
    let home = Home::new();
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    let listen = format!("127.0.0.1:{port}");
    start_cluster(
        &home,
        "py",
        4,
        port,
        &[&cmd, "-i", "4", "--listen", &listen],
    );
    let counts = tally(port, 400);
    assert_eq!(counts.len(), 4, "{counts:?}");
    for (instance, served) in &counts {
        assert!(
            (99..=101).contains(served),
            "instance {instance} served {served}: {counts:?}"
        );
    }
    let list = home.app("py");
    assert!(
        list.iter()
            .all(|i| i.mode == "round-robin" && i.ports == vec![listen.clone()]),
        "{list:?}"
    );
    let accepted: u64 = list.iter().map(|i| i.accepted).sum();
    assert!(accepted >= 400, "{list:?}");
    let table = home.ok(&["ls"]);
    assert!(
        table.contains("round-robin") && table.contains(&listen),
        "{table}"
    );
}

#[test]
fn plain_python_http_server_works_unchanged() {
    let home = Home::new();
    let port = free_port();
    std::fs::write(home.work().join("hello.txt"), "hello from rcluster\n").expect("write");
    let cmd = format!("python3 -m http.server {port} --bind 127.0.0.1");
    home.ok(&[
        "start",
        &cmd,
        "--name",
        "files",
        "-i",
        "2",
        "--port",
        &port.to_string(),
    ]);
    wait_until("2 online", || home.online_pids("files", 2));
    let body = wait_until("a file served", || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.write_all(b"GET /hello.txt HTTP/1.0\r\n\r\n").ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.contains("200").then_some(out)
    });
    assert!(body.ends_with("hello from rcluster\n"), "{body}");
}

#[test]
fn plain_node_servers_share_one_port() {
    if !have("node") {
        eprintln!("skipped: node is not on PATH");
        return;
    }
    let home = Home::new();
    let port = free_port();
    let script = fixture("servers/whoami.js");
    let port_arg = port.to_string();
    start_cluster(
        &home,
        "nodeapp",
        2,
        port,
        &[&script, "-i", "2", "--port", &port_arg, "--", &port_arg],
    );
    let counts = tally(port, 40);
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![20, 20],
        "{counts:?}"
    );
    // server.address().port reports the managed port.
    let body = http_get(port).expect("served");
    assert!(body.ends_with(&format!(" {port}")), "{body}");
}

#[test]
fn shared_and_reuseport_pass_the_socket_by_listen_fds() {
    let home = Home::new();
    for (name, strategy) in [("shared", "shared"), ("reuse", "reuseport")] {
        let port = free_port();
        let cmd = format!("python3 {}", fixture("servers/whoami_fd.py"));
        let listen = format!("127.0.0.1:{port}");
        // A listen_timeout far beyond the harness's deadline: readiness must come from the
        // preload seeing the program take up fd 3, or neither wait below ends in time.
        start_cluster(
            &home,
            name,
            2,
            port,
            &[
                &cmd,
                "-i",
                "2",
                "--listen",
                &listen,
                "--balance",
                strategy,
                "--listen-timeout",
                "600000",
            ],
        );
        let body = http_get(port).expect("served");
        assert!(
            body.ends_with(" True"),
            "LISTEN_PID must be the program's own pid: {body}"
        );
        assert_eq!(home.app(name)[0].mode, strategy);
        wait_until("both ready", || {
            home.app(name).iter().all(|i| i.ready).then_some(())
        });
        let old = home.online_pids(name, 2).expect("2 online");
        home.ok(&["reload", name]);
        let new = home
            .online_pids(name, 2)
            .expect("2 online after the reload");
        assert!(new.iter().all(|p| !old.contains(p)), "{old:?} -> {new:?}");
        assert!(home.app(name).iter().all(|i| i.ready));
        http_get(port).expect("served after the reload");
    }
}

/// Reads an HTTP/1.1 answer's head from `stream`; the head and its `Content-Length`.
fn read_head(stream: &mut UnixStream) -> std::io::Result<(String, usize)> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte)?;
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let length = declared_length(&head)
        .ok_or_else(|| std::io::Error::other(format!("no Content-Length in {head:?}")))?;
    Ok((head, length))
}

fn read_body(stream: &mut UnixStream, length: usize) -> std::io::Result<String> {
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

fn unix_get(path: &std::path::Path, target: &str) -> std::io::Result<UnixStream> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(std::time::Duration::from_secs(20)))?;
    write!(stream, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n")?;
    Ok(stream)
}

#[test]
fn a_unix_socket_is_shared_and_a_stop_lets_its_requests_finish() {
    let home = Home::new();
    let sock = home.work().join("web.sock");
    let listen = format!("unix:{}", path_str(&sock));
    let cmd = format!("python3 {}", fixture("servers/whoami_fd.py"));
    home.ok(&[
        "start",
        "--name",
        "web",
        &cmd,
        "-i",
        "2",
        "--listen",
        &listen,
        "--balance",
        "shared",
        "--kill-timeout",
        "30000",
    ]);
    wait_until("2 online", || home.online_pids("web", 2));
    // Both instances take connections from the one socket (the kernel deals).
    wait_until("both instances answering on the socket", || {
        let seen: std::collections::BTreeSet<String> = (0..8)
            .filter_map(|_| {
                let mut stream = unix_get(&sock, "/").ok()?;
                let (_, length) = read_head(&mut stream).ok()?;
                let body = read_body(&mut stream, length).ok()?;
                body.split_whitespace().next().map(str::to_owned)
            })
            .collect();
        (seen.len() == 2).then_some(())
    });

    // A request in flight (its head has arrived, its body comes 1.5 s later) when the stop comes.
    let mut slow = unix_get(&sock, "/slow?ms=1500").expect("connect");
    let (_, length) = read_head(&mut slow).expect("the answer's head");
    let stopper = {
        let cmd = home.command(&["stop", "web"]);
        std::thread::spawn(move || crate::harness::run_with_deadline(cmd, &["stop", "web"]))
    };
    wait_until("stopping", || {
        home.app("web")
            .iter()
            .any(|i| i.status == InstanceState::Stopping)
            .then_some(())
    });
    let body = read_body(&mut slow, length).unwrap_or_else(|e| format!("(read failed: {e})"));
    assert!(
        body.ends_with(" True"),
        "the answer in flight was cut: {body:?}\n{}",
        home.daemon_log()
    );
    drop(slow);
    let out = stopper.join().expect("stop thread");
    assert!(out.status.success(), "{}", home.report(&out));
    assert!(home
        .app("web")
        .iter()
        .all(|i| i.status == InstanceState::Stopped));
}

#[test]
fn proxy_and_least_conn_forward_to_private_ports() {
    let home = Home::new();
    for (name, strategy) in [("prox", "proxy"), ("least", "least-conn")] {
        let port = free_port();
        let cmd = format!("python3 {}", fixture("servers/whoami.py"));
        let listen = format!("127.0.0.1:{port}");
        start_cluster(
            &home,
            name,
            2,
            port,
            &[&cmd, "-i", "2", "--listen", &listen, "--balance", strategy],
        );
        let counts = tally(port, 20);
        assert_eq!(counts.len(), 2, "{counts:?}");
        let app = home.app(name);
        assert!(app.iter().all(|i| i.accepted > 0), "{app:?}");
    }
}

#[test]
fn a_crashing_instance_never_closes_the_port() {
    let home = Home::new();
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    let listen = format!("127.0.0.1:{port}");
    start_cluster(
        &home,
        "steady",
        4,
        port,
        &[&cmd, "-i", "4", "--listen", &listen],
    );
    let stop = Arc::new(AtomicBool::new(false));
    let client = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let (mut ok, mut refused, mut failed) = (0, 0, 0);
            while !stop.load(Ordering::Relaxed) || ok < 200 {
                match http_get(port) {
                    Ok(_) => ok += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused += 1,
                    Err(_) => failed += 1,
                }
            }
            (ok, refused, failed)
        }
    });
    for round in 0..3 {
        let victim = home.app("steady")[round].pid.expect("pid") as i32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(victim),
            nix::sys::signal::Signal::SIGKILL,
        )
        .expect("kill");
        wait_until("replacement online", || {
            home.online_pids("steady", 4)
                .filter(|p| !p.contains(&(victim as u32)))
        });
    }
    stop.store(true, Ordering::Relaxed);
    let (ok, refused, failed) = client.join().expect("client");
    assert_eq!(refused, 0, "connections refused while instances were up");
    // Only a request the killed instance had already accepted may fail: at most one per kill.
    assert!(failed <= 3, "{failed} failed of {ok}");
}

#[test]
fn ports_that_cannot_work_are_clear_errors() {
    let home = Home::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let listen = format!("127.0.0.1:{port}");
    let err = home.fails(&[
        "start",
        "sleep 1000",
        "--name",
        "clash",
        "--listen",
        &listen,
    ]);
    assert!(
        err.contains("app \"clash\"") && err.contains("already in use"),
        "{err}"
    );
    assert!(home.app("clash").is_empty(), "nothing starts");

    // A program that ignores the managed socket and binds another port is named as such.
    let port = free_port();
    let elsewhere = free_port();
    let cmd = format!("python3 {} {elsewhere}", fixture("servers/elsewhere.py"));
    home.ok(&[
        "start",
        &cmd,
        "--name",
        "stray",
        "--port",
        &port.to_string(),
        "--listen-timeout",
        "300",
    ]);
    // Which reason depends on whether the program has bound its port when listen_timeout
    // ends: not yet (nothing on the managed port), or already (its own port, named).
    let app = wait_until("the stray reported", || {
        let app = home.app("stray");
        app[0]
            .reason
            .as_deref()
            .is_some_and(|r| {
                r.contains("not listening on the managed port")
                    || r.contains(&format!("listens on 127.0.0.1:{elsewhere} itself"))
            })
            .then_some(app)
    });
    assert_eq!(app[0].status, InstanceState::Online);
    // The other apps are untouched, and the daemon still answers.
    home.ok(&["ping"]);
}

#[test]
fn no_port_needed_the_ports_a_program_binds_are_shared() {
    let home = Home::new();
    // pm2 habit: `-i 4` and the program binds its port itself; no --port anywhere.
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    start_cluster(&home, "auto", 4, port, &[&cmd, "-i", "4"]);
    let counts = tally(port, 40);
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![10, 10, 10, 10],
        "{counts:?}"
    );
    let app = home.app("auto");
    assert!(
        app.iter()
            .all(|i| i.mode == "round-robin" && i.ports == vec![format!("127.0.0.1:{port}")]),
        "{app:?}"
    );

    if have("node") {
        let port = free_port();
        let port_arg = port.to_string();
        start_cluster(
            &home,
            "autojs",
            2,
            port,
            &[&fixture("servers/whoami.js"), "-i", "2", "--", &port_arg],
        );
        let counts = tally(port, 20);
        assert_eq!(
            counts.values().copied().collect::<Vec<_>>(),
            vec![10, 10],
            "{counts:?}"
        );
    } else {
        eprintln!("node part skipped: node is not on PATH");
    }
}

#[test]
fn private_ports_and_fork_mode_stay_per_instance() {
    let home = Home::new();
    // A private port is bound by the program itself: with two instances the second one gets
    // EADDRINUSE, exactly as without rcluster.
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    let private = port.to_string();
    home.ok(&[
        "start",
        &cmd,
        "--name",
        "own",
        "-i",
        "2",
        "--private-port",
        &private,
        "--max-restarts",
        "0",
    ]);
    let app = wait_until("one errored, one online", || {
        let app = home.app("own");
        let online = app
            .iter()
            .filter(|i| i.status == InstanceState::Online && i.restarts == 0)
            .count();
        let errored = app
            .iter()
            .filter(|i| i.status == InstanceState::Errored)
            .count();
        (online == 1 && errored == 1).then_some(app)
    });
    assert!(app.iter().all(|i| i.ports.is_empty()), "{app:?}");
    home.ok(&["delete", "own"]);

    // --exec-mode fork: no sharing at all.
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    home.ok(&[
        "start",
        &cmd,
        "--name",
        "forked",
        "-i",
        "2",
        "--exec-mode",
        "fork",
        "--max-restarts",
        "0",
    ]);
    wait_until("the second instance fails to bind", || {
        let app = home.app("forked");
        (app.iter()
            .filter(|i| i.status == InstanceState::Errored)
            .count()
            == 1)
            .then_some(())
    });
    assert_eq!(home.app("forked")[0].mode, "fork");
}

#[test]
fn gunicorn_takes_the_socket_with_no_bind_even_behind_a_shell() {
    if !have("gunicorn") {
        eprintln!("skipped: gunicorn is not on PATH (pip install gunicorn)");
        return;
    }
    let home = Home::new();
    let servers = std::path::Path::new(&fixture("servers")).to_path_buf();
    // Round-robin: gunicorn reads LISTEN_FDS/LISTEN_PID itself (no --bind); its master and
    // forked workers share each instance's channel.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    home.ok(&[
        "start",
        "gunicorn wsgi_whoami:app -w 2",
        "--name",
        "gu",
        "-i",
        "2",
        "--listen",
        &listen,
        "--cwd",
        crate::harness::path_str(&servers),
    ]);
    wait_until("both instances serve", || {
        let served: std::collections::BTreeSet<String> = (0..8)
            .filter_map(|_| http_get(port).ok())
            .filter_map(|b| b.split_whitespace().next().map(str::to_owned))
            .collect();
        (served.len() == 2).then_some(())
    });
    // Behind a shell that forks (`; true` keeps sh alive), LISTEN_PID must still name gunicorn.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    home.ok(&[
        "start",
        "gunicorn wsgi_whoami:app; true",
        "--name",
        "gush",
        "--listen",
        &listen,
        "--balance",
        "shared",
        "--cwd",
        crate::harness::path_str(&servers),
    ]);
    wait_until("served behind a shell", || http_get(port).ok());
}

#[test]
fn listen_pid_names_the_program_behind_a_forking_wrapper() {
    let home = Home::new();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let cmd = format!("python3 {}; true", fixture("servers/whoami_fd.py"));
    home.ok(&[
        "start",
        &cmd,
        "--name",
        "wrapped",
        "--listen",
        &listen,
        "--balance",
        "shared",
    ]);
    let body = wait_until("served", || http_get(port).ok());
    assert!(
        body.ends_with(" True"),
        "LISTEN_PID must be the program's own pid: {body}"
    );
}

#[test]
fn readiness_probes_reach_each_round_robin_instance() {
    let home = Home::new();
    let (http_port, tcp_port) = (free_port(), free_port());
    // `tcp` binds only once the file `go` exists, so its probe must not pass before.
    let gated = home.write_script(
        "gated.sh",
        &format!(
            "#!/bin/sh\nwhile [ ! -e go ]; do sleep 0.05; done\nexec python3 {} \"$PORT\"\n",
            fixture("servers/whoami.py")
        ),
    );
    let file = home.work().join("probed.yaml");
    std::fs::write(
        &file,
        format!(
            "apps:\n\
             - name: http\n  script: python3\n  args: [\"{whoami}\", \"{http_port}\"]\n  instances: 2\n  \
               listen: [\"127.0.0.1:{http_port}\"]\n  listen_timeout: 10m\n  \
               readiness: {{http: /, interval: 20ms}}\n\
             - name: tcp\n  script: {gated}\n  instances: 2\n  listen: [\"127.0.0.1:{tcp_port}\"]\n  \
               listen_timeout: 10m\n  readiness: {{tcp: true, interval: 20ms, timeout: 50ms}}\n",
            whoami = fixture("servers/whoami.py"),
            gated = path_str(&gated),
        ),
    )
    .expect("write ecosystem");
    home.ok(&["start", path_str(&file)]);

    // Each instance is probed through its own channel: through the shared port, the first
    // probe would wait for an instance already ready, and none would ever be.
    wait_until("both http instances ready", || {
        home.app("http").iter().all(|i| i.ready).then_some(())
    });
    assert_eq!(tally(http_port, 20).len(), 2);

    // Probe connections wait in the channels of programs that do not accept yet: the TCP
    // probe has run, and has not passed.
    wait_until("tcp probes queued", || {
        home.app("tcp").iter().all(|i| i.open >= 2).then_some(())
    });
    for inst in home.app("tcp") {
        assert!(!inst.ready, "ready before the program listens: {inst:?}");
        assert_eq!(inst.status, InstanceState::Launching, "{inst:?}");
    }
    std::fs::write(home.work().join("go"), "").expect("write go");
    wait_until("both tcp instances ready", || {
        home.app("tcp").iter().all(|i| i.ready).then_some(())
    });
    assert_eq!(tally(tcp_port, 20).len(), 2);
}

#[test]
fn workers_that_are_new_programs_take_the_listener_passed_to_them() {
    let home = Home::new();
    let script = fixture("servers/spawned_workers.py");
    for (name, declared) in [("found", false), ("declared", true)] {
        let port = free_port();
        let (port_arg, listen) = (port.to_string(), format!("127.0.0.1:{port}"));
        // --merge-logs: one file to read both instances' workers from.
        let mut args = vec![
            "start",
            "python3",
            "--name",
            name,
            "-i",
            "2",
            "--merge-logs",
        ];
        if declared {
            args.extend(["--listen", &listen]);
        }
        args.extend(["--", &script, &port_arg]);
        home.ok(&args);
        // The main process binds and never listens; its spawned workers (fresh programs, given
        // the socket's fd) listen and accept. Each instance's READY comes from them.
        wait_until("both instances ready", || {
            let instances = home.app(name);
            (instances.len() == 2 && instances.iter().all(|i| i.ready)).then_some(())
        });
        let workers: Vec<String> = wait_until("the workers' pids", || {
            let log = home.read_log(&format!("{name}-out.log"));
            let pids: Vec<String> = log
                .lines()
                .filter_map(|line| line.strip_prefix("workers "))
                .flat_map(|pids| pids.split_whitespace().map(str::to_owned))
                .collect();
            (pids.len() == 4).then_some(pids)
        });
        let mut by_instance: BTreeMap<String, usize> = BTreeMap::new();
        for _ in 0..20 {
            let body = http_get(port).expect("served by a worker");
            let (instance, pid) = body.split_once(' ').expect("instance and pid");
            assert!(
                workers.iter().any(|w| w == pid),
                "{body}: not a worker of {workers:?}"
            );
            *by_instance.entry(instance.to_owned()).or_default() += 1;
        }
        assert_eq!(by_instance.values().copied().collect::<Vec<_>>(), [10, 10]);
    }
}

#[test]
fn an_instance_accepts_while_any_of_its_listening_workers_does() {
    let home = Home::new();
    let port = free_port();
    let script = fixture("servers/spawned_workers.py");
    // One instance, so that one out of the rotation would leave requests waiting.
    let listen = format!("127.0.0.1:{port}");
    let port_arg = port.to_string();
    home.ok(&[
        "start", "python3", "--name", "w", "--listen", &listen, "--", &script, &port_arg,
    ]);
    assert_eq!(home.app("w")[0].mode, "round-robin");
    wait_until("ready", || {
        home.app("w").first().filter(|i| i.ready).map(|_| ())
    });
    let workers: Vec<i32> = wait_until("the workers' pids", || {
        let log = home.read_log("w-out.log");
        let line = log.lines().find_map(|line| line.strip_prefix("workers "))?;
        Some(
            line.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect(),
        )
    });
    let [leaving, staying] = workers[..] else {
        panic!("two workers: {workers:?}");
    };
    // Both have said READY (each prints once it has listened).
    wait_until("both workers listening", || {
        let log = home.read_log("w-out.log");
        workers
            .iter()
            .all(|pid| log.contains(&format!("listening {pid}\n")))
            .then_some(())
    });
    // The first worker closes its listener (UNREADY from its pid) and ends; the main process,
    // waiting on it, reaps it.
    kill(Pid::from_raw(leaving), Signal::SIGTERM).expect("SIGTERM to a worker");
    wait_until("the worker gone", || (!pid_alive(leaving)).then_some(()));
    for _ in 0..10 {
        let body = http_get(port).expect("served by the other worker");
        assert_eq!(body, format!("0 {staying}"));
    }
    let instance = &home.app("w")[0];
    assert!(instance.ready, "{instance:?}");
    assert!(
        !home.daemon_log().contains("stopped accepting"),
        "{}",
        home.daemon_log()
    );
}
