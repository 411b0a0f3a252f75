//! Zero-downtime reload (PRODUCT.md §5): under a steady load of `Connection: close` and
//! keep-alive clients, ten reloads of four instances fail no request and refuse no
//! connection; a new version that does not come up stops the reload and the old one serves on.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rcluster::protocol::model::InstanceState;

use crate::harness::{fixture, free_port, have, http_get, path_str, wait_until, Home};

#[derive(Debug, Default)]
pub struct Tally {
    pub ok: u64,
    pub refused: u64,
    pub failed: u64,
    /// What the first failures were, for the assertion message.
    pub failures: Vec<String>,
}

impl Tally {
    fn fail(&mut self, what: String) {
        self.failed += 1;
        if self.failures.len() < 5 {
            // The time of day (UTC), to find the moment in the daemon's log.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let (secs, millis) = (now.as_secs() % 86_400, now.subsec_millis());
            let clock = format!(
                "{:02}:{:02}:{:02}.{millis:03}",
                secs / 3600,
                secs / 60 % 60,
                secs % 60
            );
            self.failures.push(format!("{clock} {what}"));
        }
    }
}

/// Requests with `Connection: close`, one connection each, until told to stop.
pub fn close_client(port: u16, stop: Arc<AtomicBool>) -> JoinHandle<Tally> {
    std::thread::spawn(move || {
        let mut tally = Tally::default();
        while !stop.load(Ordering::Relaxed) {
            match http_get(port) {
                Ok(_) => tally.ok += 1,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => tally.refused += 1,
                Err(e) => tally.fail(format!("close client: {e}")),
            }
        }
        tally
    })
}

/// One keep-alive connection reused for request after request. As every HTTP client does, a
/// request that finds its idle connection closed before any byte of an answer is sent again on
/// a new connection; anything else is a failure.
pub fn keepalive_client(port: u16, stop: Arc<AtomicBool>) -> JoinHandle<Tally> {
    std::thread::spawn(move || {
        let mut tally = Tally::default();
        let mut conn: Option<BufReader<TcpStream>> = None;
        while !stop.load(Ordering::Relaxed) {
            let reused = conn.is_some();
            let stream = match conn.take() {
                Some(c) => c,
                None => match TcpStream::connect(("127.0.0.1", port)) {
                    Ok(s) => {
                        let _ = s.set_read_timeout(Some(Duration::from_secs(20)));
                        BufReader::new(s)
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                        tally.refused += 1;
                        continue;
                    }
                    Err(e) => {
                        tally.fail(format!("keep-alive client connecting: {e}"));
                        continue;
                    }
                },
            };
            match keepalive_request(stream) {
                Ok(next) => {
                    tally.ok += 1;
                    conn = Some(next);
                }
                Err(Attempt::NothingReceived) if reused => {}
                Err(Attempt::NothingReceived) => {
                    tally.fail("keep-alive client: no answer on a new connection".into())
                }
                Err(Attempt::Broken(what)) => tally.fail(format!("keep-alive client: {what}")),
            }
        }
        tally
    })
}

enum Attempt {
    NothingReceived,
    Broken(String),
}

fn keepalive_request(mut conn: BufReader<TcpStream>) -> Result<BufReader<TcpStream>, Attempt> {
    let request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    conn.get_mut()
        .write_all(request)
        .map_err(|_| Attempt::NothingReceived)?;
    let mut status = String::new();
    match conn.read_line(&mut status) {
        Ok(0) | Err(_) => return Err(Attempt::NothingReceived),
        Ok(_) => {}
    }
    if !status.starts_with("HTTP/1.1 200") {
        return Err(Attempt::Broken(format!("status line {status:?}")));
    }
    let mut length = 0usize;
    let mut close = false;
    loop {
        let mut line = String::new();
        conn.read_line(&mut line)
            .map_err(|e| Attempt::Broken(format!("reading headers: {e}")))?;
        if line.is_empty() {
            return Err(Attempt::Broken(
                "the connection ended in the headers".into(),
            ));
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v
                .trim()
                .parse()
                .map_err(|_| Attempt::Broken(format!("bad {line:?}")))?;
        }
        if lower == "connection: close" {
            close = true;
        }
    }
    let mut body = vec![0; length];
    conn.read_exact(&mut body)
        .map_err(|e| Attempt::Broken(format!("reading a {length}-byte body: {e}")))?;
    if close {
        // The server said this connection ends: the next request opens a new one.
        let _ = conn.get_mut().shutdown(std::net::Shutdown::Both);
    }
    Ok(conn)
}

fn reload_under_load(home: &Home, name: &str, port: u16) {
    let stop = Arc::new(AtomicBool::new(false));
    let clients = vec![
        close_client(port, stop.clone()),
        close_client(port, stop.clone()),
        keepalive_client(port, stop.clone()),
    ];
    let first = home.app(name);
    let mut ids: Vec<u32> = first.iter().map(|i| i.id).collect();
    ids.sort_unstable();
    for round in 0..10 {
        let before: Vec<u32> = home.app(name).iter().filter_map(|i| i.pid).collect();
        home.ok(&["reload", name]);
        let after = home.app(name);
        assert_eq!(after.len(), 4, "round {round}: {after:?}");
        assert!(
            after
                .iter()
                .all(|i| i.status == InstanceState::Online && i.ready),
            "{after:?}"
        );
        assert!(
            after.iter().all(|i| !before.contains(&i.pid.unwrap_or(0))),
            "round {round}: old pids remain"
        );
        // New processes under the same ids, as pm2 keeps pm_id across a reload, each reload
        // counted as a restart of the id.
        let mut now: Vec<u32> = after.iter().map(|i| i.id).collect();
        now.sort_unstable();
        assert_eq!(now, ids, "round {round}: ids kept");
        assert!(
            after.iter().all(|i| i.restarts == round + 1),
            "round {round}: {after:?}"
        );
    }
    // An id still names its instance after the reloads.
    let id = ids[0].to_string();
    home.ok(&["describe", &id]);
    home.ok(&["logs", &id, "--lines", "1", "--nostream"]);
    stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    for client in clients {
        let t = client.join().expect("client");
        total.ok += t.ok;
        total.refused += t.refused;
        total.failed += t.failed;
        total.failures.extend(t.failures);
    }
    eprintln!(
        "{name}: 10 reloads of {} instances under load: {total:?}",
        first.len()
    );
    assert!(total.ok > 100, "the load ran: {total:?}");
    assert_eq!(
        (total.refused, total.failed),
        (0, 0),
        "{total:?}\ndaemon log:\n{}",
        home.daemon_log()
    );
}

#[test]
fn ten_reloads_under_load_fail_nothing_python() {
    let home = Home::new();
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    home.ok(&[
        "start",
        &cmd,
        "--name",
        "py",
        "-i",
        "4",
        // A loaded machine can take seconds to start a program or answer a request: neither
        // limit is what is tested here (a request still running at kill_timeout is cut).
        "--kill-timeout",
        "10000",
        "--listen-timeout",
        "30000",
    ]);
    wait_until("4 ready", || {
        home.app("py")
            .iter()
            .all(|i| i.ready)
            .then_some(())
            .filter(|_| home.app("py").len() == 4)
    });
    wait_until("served", || http_get(port).ok());
    reload_under_load(&home, "py", port);
}

#[test]
fn ten_reloads_under_load_fail_nothing_node() {
    if !have("node") {
        eprintln!("skipped: node is not on PATH");
        return;
    }
    let home = Home::new();
    let port = free_port();
    let port_arg = port.to_string();
    home.ok(&[
        "start",
        &fixture("servers/whoami.js"),
        "--name",
        "js",
        "-i",
        "4",
        // A loaded machine can take seconds to start a program or answer a request: neither
        // limit is what is tested here (a request still running at kill_timeout is cut).
        "--kill-timeout",
        "10000",
        "--listen-timeout",
        "30000",
        "--",
        &port_arg,
    ]);
    wait_until("4 ready", || {
        home.app("js")
            .iter()
            .all(|i| i.ready)
            .then_some(())
            .filter(|_| home.app("js").len() == 4)
    });
    wait_until("served", || http_get(port).ok());
    reload_under_load(&home, "js", port);
}

#[test]
fn a_new_version_that_does_not_come_up_leaves_the_old_one_serving() {
    let home = Home::new();
    let port = free_port();
    let work = home.work();
    let cmd = format!("python3 {} {port}", fixture("servers/flaky_start.py"));
    home.ok(&[
        "start",
        &cmd,
        "--name",
        "app",
        "-i",
        "2",
        // The hung deploy below waits this long; a healthy start on a loaded machine must fit.
        "--listen-timeout",
        "8000",
    ]);
    wait_until("2 ready", || {
        let app = home.app("app");
        (app.len() == 2 && app.iter().all(|i| i.ready)).then_some(())
    });
    let before: Vec<u32> = home.app("app").iter().filter_map(|i| i.pid).collect();

    // A deploy that crashes at start.
    std::fs::write(work.join("broken"), "").expect("write");
    let err = home.fails(&["reload", "app"]);
    assert!(
        err.contains("reload of app \"app\" stopped") && err.contains("before it was ready"),
        "{err}"
    );
    assert!(err.contains("old instances keep serving"), "{err}");
    let app = home.app("app");
    assert_eq!(
        app.iter().filter_map(|i| i.pid).collect::<Vec<_>>(),
        before,
        "{app:?}"
    );
    assert!(
        app.iter().all(|i| i.status == InstanceState::Online),
        "{app:?}"
    );
    http_get(port).expect("the old version serves");

    // A deploy that starts but never listens.
    std::fs::remove_file(work.join("broken")).expect("rm");
    std::fs::write(work.join("hang"), "").expect("write");
    let err = home.fails(&["reload", "app"]);
    assert!(err.contains("not listening on the managed port"), "{err}");
    let app = home.app("app");
    assert_eq!(app.len(), 2, "the hung new instance is removed: {app:?}");
    assert_eq!(app.iter().filter_map(|i| i.pid).collect::<Vec<_>>(), before);
    http_get(port).expect("the old version serves");

    // Fixed: the reload goes through.
    std::fs::remove_file(work.join("hang")).expect("rm");
    home.ok(&["reload", "app"]);
    assert!(home
        .app("app")
        .iter()
        .all(|i| !before.contains(&i.pid.unwrap_or(0))));
    http_get(port).expect("the new version serves");
}

#[test]
fn scale_adds_and_removes_instances_live() {
    let home = Home::new();
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    home.ok(&["start", &cmd, "--name", "sc", "-i", "2"]);
    wait_until("2 online", || home.online_pids("sc", 2));
    home.ok(&["scale", "sc", "4"]);
    wait_until("4 online", || home.online_pids("sc", 4));
    home.ok(&["scale", "sc", "-3"]);
    let left = home.app("sc");
    assert_eq!(left.len(), 1, "{left:?}");
    home.ok(&["scale", "sc", "+1"]);
    wait_until("2 online", || home.online_pids("sc", 2));
    let err = home.fails(&["scale", "sc", "0"]);
    assert!(err.contains("cannot have 0 instances"), "{err}");
    wait_until("both serve", || {
        let served: std::collections::BTreeSet<String> = (0..8)
            .filter_map(|_| http_get(port).ok())
            .filter_map(|b| b.split_whitespace().next().map(str::to_owned))
            .collect();
        (served.len() == 2).then_some(())
    });
}

#[test]
fn wait_ready_waits_for_sd_notify() {
    let home = Home::new();
    // Ready only once the file `go` exists: then it tells the daemon with READY=1.
    let app = home.write_script(
        "notify.py",
        "import os, socket, time\nwhile not os.path.exists('go'):\n    time.sleep(0.02)\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.sendto(b'STATUS=warming done\\nREADY=1', os.environ['NOTIFY_SOCKET'])\ntime.sleep(1000)\n",
    );
    home.ok(&[
        "start",
        "python3",
        "--name",
        "notified",
        "--wait-ready",
        "--listen-timeout",
        "60s",
        "--",
        app.to_str().expect("path"),
    ]);
    launching_until_go_then_ready(&home, "notified");
}

/// The app (started with --wait-ready, ready once the file `go` exists in the work directory)
/// is `launching` and not ready; once `go` is written it becomes ready and online.
fn launching_until_go_then_ready(home: &Home, name: &str) {
    let app = home.app(name);
    assert_eq!(app[0].status, InstanceState::Launching, "{app:?}");
    assert!(!app[0].ready, "{app:?}");
    std::fs::write(home.work().join("go"), "").expect("write");
    wait_until(&format!("{name} ready after its signal"), || {
        let app = home.app(name);
        (app[0].ready && app[0].status == InstanceState::Online).then_some(())
    });
}

#[test]
fn wait_ready_waits_for_node_process_send() {
    if !have("node") {
        eprintln!("skipped: node is not on PATH");
        return;
    }
    let home = Home::new();
    // pm2's idiom: ready once the file `go` exists, said with process.send('ready').
    let app = home.write_script(
        "ready.js",
        "const fs = require('fs');\nconst t = setInterval(() => {\n  if (fs.existsSync('go')) { clearInterval(t); process.send('ready'); setInterval(() => {}, 1e6); }\n}, 20);\n",
    );
    home.ok(&[
        "start",
        path_str(&app),
        "--name",
        "nodeready",
        "--wait-ready",
        "--listen-timeout",
        "60s",
    ]);
    launching_until_go_then_ready(&home, "nodeready");
}

#[test]
fn node_apps_have_process_send_and_still_exit_on_their_own() {
    if !have("node") {
        eprintln!("skipped: node is not on PATH");
        return;
    }
    let home = Home::new();
    let work = home.work();
    // Written for pm2: calls process.send unconditionally (a TypeError without a channel),
    // then ends; the open channel must not keep it alive.
    let app = home.write_script(
        "sender.js",
        "process.send('ready');\nprocess.send({ any: 'message' }, () => require('fs').writeFileSync('sent', ''));\n",
    );
    home.ok(&[
        "start",
        path_str(&app),
        "--name",
        "sender",
        "--no-autorestart",
    ]);
    let app_view = home.wait_status("sender", InstanceState::Stopped);
    assert!(work.join("sent").exists(), "{app_view:?}");
    assert_eq!(app_view[0].restarts, 0, "{app_view:?}");
    let reason = app_view[0].reason.as_deref().unwrap_or_default();
    assert!(reason.contains("exited with code 0"), "{app_view:?}");
}

#[test]
fn workers_in_cluster_mode_without_a_port_reload_as_in_pm2() {
    // `pm2 start worker.js -i 2` for a queue worker: cluster mode, no port ever bound. Its
    // instances are ready once listen_timeout has passed, so a reload goes through.
    let home = Home::new();
    home.ok(&[
        "start",
        "sleep 1000",
        "-i",
        "2",
        "--name",
        "worker",
        "--listen-timeout",
        "200",
    ]);
    let before = wait_until("2 online", || home.online_pids("worker", 2));
    home.ok(&["reload", "worker"]);
    let after = wait_until("2 new online", || {
        home.online_pids("worker", 2)
            .filter(|pids| pids.iter().all(|p| !before.contains(p)))
    });
    assert_eq!(after.len(), 2);
    let app = wait_until("both ready", || {
        let app = home.app("worker");
        app.iter().all(|i| i.ready).then_some(app)
    });
    assert!(app.iter().all(|i| i.reason.is_none()), "{app:?}");
}
