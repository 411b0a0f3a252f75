//! The daemon's death, however it comes (`kill -9`, a crash, the OOM killer): no process of
//! its generation outlives it holding a port, so the next daemon starts clean (issue #17.9).

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{fixture, free_port, group_members, http_get, pid_alive, wait_until, Home};

fn parent_of(pid: i32) -> Option<i32> {
    rcluster::daemon::process::stats::stat_fields(pid)?
        .get(1)?
        .parse()
        .ok()
}

fn port_free(port: u16) -> bool {
    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
}

#[test]
fn a_killed_daemon_leaves_no_process_holding_a_port() {
    let home = Home::new();
    let whoami = fixture("servers/whoami.py");
    let (direct_port, wrapped_port) = (free_port(), free_port());
    let direct_arg = direct_port.to_string();
    home.ok(&[
        "start",
        "python3",
        "--name",
        "direct",
        "--",
        &whoami,
        &direct_arg,
    ]);
    // A shell that does not exec: the server is the instance's grandchild.
    let line = format!("python3 {whoami} {wrapped_port}; echo ended");
    home.ok(&["start", &line, "--name", "wrapped"]);
    for port in [direct_port, wrapped_port] {
        wait_until("serving", || http_get(port).ok());
    }
    let groups: Vec<i32> = home
        .list()
        .iter()
        .filter_map(|i| i.pid)
        .map(|p| p as i32)
        .collect();
    assert_eq!(groups.len(), 2);
    home.ok(&["save"]);
    // An update re-executes the daemon in place: the same process, under the same keeper.
    let daemon = home.daemon_pid().expect("daemon pid");
    let keeper = parent_of(daemon).expect("the daemon's parent");
    home.ok(&["update"]);
    assert_eq!(home.daemon_pid(), Some(daemon));
    assert_eq!(parent_of(daemon), Some(keeper));

    kill(Pid::from_raw(daemon), Signal::SIGKILL).expect("kill -9 the daemon");
    for pgid in &groups {
        wait_until("the instance's whole group gone", || {
            group_members(*pgid).is_empty().then_some(())
        });
    }
    for port in [direct_port, wrapped_port] {
        wait_until("the port free", || port_free(port).then_some(()));
    }
    wait_until("the keeper gone too", || (!pid_alive(keeper)).then_some(()));
    assert!(
        home.daemon_log().contains("was killed by SIGKILL"),
        "{}",
        home.daemon_log()
    );

    // The next generation takes the same ports.
    home.ok(&["resurrect"]);
    for port in [direct_port, wrapped_port] {
        let body = wait_until("serving again", || http_get(port).ok());
        let pid: i32 = body
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("a pid in the answer");
        assert!(!groups.contains(&pid), "a new process serves {port}");
    }
}
