//! Reload of fork-mode apps (issue #16, item 1): one instance of a server that binds a fixed
//! port itself, pm2's commonest setup (no `-i`, no `--port`). Under clients that count every
//! refused connection and failed request, a reload hands the port to the new instance with
//! nothing lost and the new pid serving; a memory restart does the same; a reload right after
//! start does not trip over the first instance's bind; instances with ports of their own
//! (`increment_var`) swap each port. Where no zero-downtime path exists (a static binary, a
//! program that binds nothing) the instance is restarted, as pm2 does, with a one-line note.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use rcluster::protocol::model::InstanceState;

use crate::harness::{
    express_modules, fixture, free_port, have, http_get, path_str, wait_until, Home,
};
use crate::reload::{close_client, keepalive_client, Tally};

/// Clients hammering a port until `finish`.
struct Load {
    stop: Arc<AtomicBool>,
    clients: Vec<JoinHandle<Tally>>,
}

impl Load {
    fn start(ports: &[u16]) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for &port in ports {
            clients.push(close_client(port, stop.clone()));
            clients.push(close_client(port, stop.clone()));
            clients.push(keepalive_client(port, stop.clone()));
        }
        Load { stop, clients }
    }

    fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Tally::default();
        for client in self.clients {
            let t = client.join().expect("client");
            total.ok += t.ok;
            total.refused += t.refused;
            total.failed += t.failed;
            total.failures.extend(t.failures);
        }
        total
    }
}

/// The pid in a `<instance> <pid>` answer on `port`.
fn serving_pid(port: u16) -> Option<u32> {
    http_get(port)
        .ok()?
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
}

/// The one instance's pid once it is online and ready.
fn ready_pid(home: &Home, name: &str) -> Option<u32> {
    let app = home.app(name);
    match app.as_slice() {
        [one] if one.ready && one.status == InstanceState::Online => one.pid,
        _ => None,
    }
}

/// `rounds` reloads of one-instance app `name` on `port` under load: each gives a new pid,
/// which is the one serving once the reload returns; nothing is refused or fails.
fn reloads_under_load(home: &Home, name: &str, port: u16, rounds: usize) {
    let first = wait_until("ready", || ready_pid(home, name));
    wait_until("serving", || serving_pid(port).filter(|p| *p == first));
    let load = Load::start(&[port]);
    let mut before = first;
    for round in 0..rounds {
        let out = home.ok(&["reload", name]);
        let now = wait_until("ready after the reload", || ready_pid(home, name));
        assert_ne!(now, before, "round {round}: a new process\n{out}");
        assert_eq!(
            serving_pid(port),
            Some(now),
            "round {round}: the new pid serves once the reload returns"
        );
        before = now;
    }
    let total = load.finish();
    eprintln!("{name}: {rounds} reloads under load: {total:?}");
    assert!(total.ok > 20, "the load ran: {total:?}");
    assert_eq!(
        (total.refused, total.failed),
        (0, 0),
        "{total:?}\ndaemon log:\n{}",
        home.daemon_log()
    );
    let app = home.app(name);
    assert_eq!(app[0].mode, "fork", "{app:?}");
    assert!(
        app[0]
            .ports
            .iter()
            .any(|a| a.ends_with(&format!(":{port}"))),
        "list shows the port it holds: {app:?}"
    );
}

#[test]
fn a_one_instance_python_server_reloads_with_nothing_refused() {
    let home = Home::new();
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    // No -i, no --port: fork mode, the program binds 127.0.0.1:port itself.
    home.ok(&["start", &cmd, "--name", "server"]);
    reloads_under_load(&home, "server", port, 3);
}

#[test]
fn a_one_instance_express_app_reloads_with_nothing_refused() {
    if !have("node") {
        eprintln!("skipped: node is not on PATH");
        return;
    }
    let Some(modules) = express_modules() else {
        eprintln!("skipped: no Express 5 found (NODE_PATH, or target/test-node/node_modules: see .ci/run)");
        return;
    };
    let home = Home::new();
    let port = free_port();
    let node_path = format!("NODE_PATH={}", path_str(&modules));
    home.ok(&[
        "start",
        &fixture("servers/express_whoami.js"),
        "--name",
        "fk",
        "--env-var",
        &node_path,
        "--",
        &port.to_string(),
    ]);
    reloads_under_load(&home, "fk", port, 3);
}

#[test]
fn a_memory_restart_of_a_one_instance_server_refuses_nothing() {
    let home = Home::new();
    let port = free_port();
    // Over the limit from the start: about 80 MiB touched (a Python process alone is ~20).
    let hungry = home.write_script(
        "hungry.py",
        &format!(
            "import runpy, sys\nballast = 'x' * (80 << 20)\nsys.argv = ['whoami', '{port}']\nrunpy.run_path({:?}, run_name='__main__')\n",
            fixture("servers/whoami.py")
        ),
    );
    home.ok(&[
        "start",
        "python3",
        "--name",
        "hungry",
        "--max-memory-restart",
        "50M",
        "--",
        path_str(&hungry),
    ]);
    let first = wait_until("ready", || ready_pid(&home, "hungry"));
    wait_until("serving", || serving_pid(port).filter(|p| *p == first));
    let load = Load::start(&[port]);
    // The memory check replaces it by a reload: a new pid serves, the old one is gone.
    let second = wait_until("replaced for its memory", || {
        ready_pid(&home, "hungry").filter(|p| *p != first)
    });
    wait_until("the new pid serves", || {
        serving_pid(port).filter(|p| *p == second)
    });
    let total = load.finish();
    eprintln!("memory restart under load: {total:?}");
    assert!(total.ok > 0, "the load ran: {total:?}");
    assert_eq!(
        (total.refused, total.failed),
        (0, 0),
        "{total:?}\ndaemon log:\n{}",
        home.daemon_log()
    );
    assert!(home.app("hungry")[0].restarts >= 1);
}

#[test]
fn a_reload_right_after_start_does_not_trip_over_the_first_bind() {
    let home = Home::new();
    let port = free_port();
    // Says READY=1 (sd_notify) once it listens, as a --wait-ready app does.
    let server = home.write_script(
        "ready_server.py",
        &format!(
            "import http.server, os, socket, sys\nsys.path.insert(0, {:?})\nfrom whoami import Handler\nsrv = http.server.ThreadingHTTPServer(('127.0.0.1', {port}), Handler)\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\ns.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\nsrv.serve_forever()\n",
            fixture("servers")
        ),
    );
    home.ok(&[
        "start",
        "python3",
        "--name",
        "quick",
        "-i",
        "1",
        "--wait-ready",
        "--",
        path_str(&server),
    ]);
    let first = home.app("quick")[0].pid.expect("a pid");
    // At once, while the first instance may still be binding.
    home.ok(&["reload", "quick"]);
    let now = wait_until("a new instance ready", || {
        ready_pid(&home, "quick").filter(|p| *p != first)
    });
    wait_until("the new pid serves", || {
        serving_pid(port).filter(|p| *p == now)
    });
    let errors = home.read_log("quick-error.log");
    assert!(!errors.contains("Address already in use"), "{errors}");
}

#[test]
fn instances_with_ports_of_their_own_each_swap_their_port() {
    let home = Home::new();
    let base = free_port_pair();
    let file = home.work().join("each.yaml");
    std::fs::write(
        &file,
        format!(
            "apps:\n  - name: each\n    script: {}\n    instances: 2\n    exec_mode: fork\n    increment_var: PORT\n    env:\n      PORT: {base}\n",
            fixture("servers/whoami.py")
        ),
    )
    .expect("write the file");
    home.ok(&["start", path_str(&file)]);
    let ports = [base, base + 1];
    let before = wait_until("both ready", || {
        let app = home.app("each");
        (app.len() == 2 && app.iter().all(|i| i.ready))
            .then(|| app.iter().filter_map(|i| i.pid).collect::<Vec<u32>>())
    });
    for port in ports {
        wait_until("serving", || serving_pid(port));
    }
    let load = Load::start(&ports);
    home.ok(&["reload", "each"]);
    for port in ports {
        let pid = serving_pid(port).expect("serves after the reload");
        assert!(!before.contains(&pid), "port {port}: a new process serves");
    }
    let total = load.finish();
    assert_eq!(
        (total.refused, total.failed),
        (0, 0),
        "{total:?}\ndaemon log:\n{}",
        home.daemon_log()
    );
}

/// A port p such that p and p + 1 were both free a moment ago.
fn free_port_pair() -> u16 {
    wait_until("two free ports in a row", || {
        let first = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
        let port = first.local_addr().ok()?.port();
        std::net::TcpListener::bind(("127.0.0.1", port.checked_add(1)?)).ok()?;
        Some(port)
    })
}

/// Build tests/fixtures/servers/static_whoami.c into a static binary, if cc can.
pub fn static_server(home: &Home) -> Option<String> {
    if !have("cc") {
        return None;
    }
    let out = home.work().join("static_whoami");
    let built = Command::new("cc")
        .args(["-static", "-O1", "-o", path_str(&out)])
        .arg(fixture("servers/static_whoami.c"))
        .status()
        .is_ok_and(|s| s.success());
    built.then(|| path_str(&out).to_owned())
}

#[test]
fn a_static_binary_is_restarted_with_a_note() {
    let home = Home::new();
    let Some(server) = static_server(&home) else {
        eprintln!("skipped: cannot build a static binary (cc -static needs a static libc)");
        return;
    };
    let port = free_port();
    home.ok(&[
        "start",
        &server,
        "--name",
        "native",
        "--",
        &port.to_string(),
    ]);
    let first = wait_until("serving", || serving_pid(port));
    let out = home.run(&["reload", "native"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}", home.report(&out));
    let notes: Vec<&str> = stderr.lines().filter(|l| l.contains("note:")).collect();
    assert_eq!(notes.len(), 1, "one line: {stderr}");
    assert!(
        notes[0].contains("restarted (stop, then start)") && notes[0].contains("statically linked"),
        "{stderr}"
    );
    wait_until("the restarted program serves", || {
        serving_pid(port).filter(|p| *p != first)
    });
}

#[test]
fn a_program_that_binds_nothing_is_restarted_with_a_note() {
    let home = Home::new();
    home.ok(&[
        "start",
        "sleep 1000",
        "--name",
        "worker",
        "--listen-timeout",
        "200",
    ]);
    let first = wait_until("ready", || ready_pid(&home, "worker"));
    let out = home.run(&["reload", "worker"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("note:") && stderr.contains("holds no TCP port"),
        "{stderr}"
    );
    let now = home.app("worker")[0].pid.expect("running again");
    assert_ne!(now, first);
}

#[test]
fn held_ports_survive_a_daemon_update() {
    let home = Home::new();
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    home.ok(&["start", &cmd, "--name", "kept"]);
    wait_until("ready", || ready_pid(&home, "kept"));
    let daemon = home.daemon_pid().expect("daemon pid");
    home.ok(&["update"]);
    assert_eq!(home.daemon_pid(), Some(daemon), "updated in place");
    // The new image holds the port as the old one did: the reload is still a swap.
    reloads_under_load(&home, "kept", port, 2);
}

#[test]
fn a_stopped_app_frees_its_port_and_starts_again() {
    let home = Home::new();
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    home.ok(&["start", &cmd, "--name", "freed"]);
    let first = wait_until("ready", || ready_pid(&home, "freed"));
    wait_until("serving", || serving_pid(port).filter(|p| *p == first));
    // As without rcluster (and under pm2): a stopped server's port is closed, not held.
    home.ok(&["stop", "freed"]);
    let refused = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.kind());
    assert_eq!(
        refused.err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "the port is closed"
    );
    std::net::TcpListener::bind(("127.0.0.1", port)).expect("another program may take it");
    home.ok(&["start", "freed"]);
    let again = wait_until("ready again", || ready_pid(&home, "freed"));
    wait_until("serving again", || {
        serving_pid(port).filter(|p| *p == again)
    });
}

#[test]
fn a_new_instance_slower_than_listen_timeout_finds_the_port_still_open() {
    let home = Home::new();
    let port = free_port();
    // Binds a second after it starts once the file `slow` exists: past listen_timeout.
    let server = home.write_script(
        "slow_server.py",
        &format!(
            "import os, runpy, sys, time\nif os.path.exists('slow'):\n    time.sleep(1)\nsys.argv = ['whoami', '{port}']\nrunpy.run_path({:?}, run_name='__main__')\n",
            fixture("servers/whoami.py")
        ),
    );
    home.ok(&[
        "start",
        "python3",
        "--name",
        "slow",
        "--listen-timeout",
        "300",
        "--",
        path_str(&server),
    ]);
    let first = wait_until("ready", || ready_pid(&home, "slow"));
    wait_until("serving", || serving_pid(port).filter(|p| *p == first));
    std::fs::write(home.work().join("slow"), "").expect("write");
    let load = Load::start(&[port]);
    // Taken as ready at listen_timeout, before it binds: the old one goes, and its socket (what
    // waits in it included) passes to the new one, which binds it a moment later.
    home.ok(&["reload", "slow"]);
    let now = wait_until("the new pid serves", || {
        serving_pid(port).filter(|p| *p != first)
    });
    let total = load.finish();
    eprintln!("slow new instance under load: {total:?}");
    assert_eq!(
        (total.refused, total.failed),
        (0, 0),
        "{total:?}\ndaemon log:\n{}",
        home.daemon_log()
    );
    assert_eq!(ready_pid(&home, "slow"), Some(now));
}

#[test]
fn a_new_version_on_another_port_leaves_the_old_port_closed() {
    let home = Home::new();
    let (old_port, new_port) = (free_port(), free_port());
    // Binds the port written in the file `port`.
    let server = home.write_script(
        "moving_server.py",
        &format!(
            "import runpy, sys\nsys.argv = ['whoami', open('port').read().strip()]\nrunpy.run_path({:?}, run_name='__main__')\n",
            fixture("servers/whoami.py")
        ),
    );
    std::fs::write(home.work().join("port"), old_port.to_string()).expect("write");
    home.ok(&[
        "start",
        "python3",
        "--name",
        "moving",
        "--",
        path_str(&server),
    ]);
    let first = wait_until("ready", || ready_pid(&home, "moving"));
    wait_until("serving", || serving_pid(old_port).filter(|p| *p == first));
    std::fs::write(home.work().join("port"), new_port.to_string()).expect("write");
    home.ok(&["reload", "moving"]);
    let now = wait_until("ready", || ready_pid(&home, "moving"));
    assert_eq!(serving_pid(new_port), Some(now));
    // As under pm2: the old port is closed, not held with no one to accept on it.
    let old = std::net::TcpStream::connect(("127.0.0.1", old_port)).map_err(|e| e.kind());
    assert_eq!(old.err(), Some(std::io::ErrorKind::ConnectionRefused));
}
