//! Process groups, stop signals and reaping: a stop leaves no grandchild behind, the configured
//! signal is the one sent, kill_timeout ends in SIGKILL, and no zombie is left.

use rcluster::protocol::model::InstanceState;

use crate::harness::{group_members, path_str, wait_until, zombie_children, Home};

#[test]
fn stop_ends_the_whole_process_group() {
    let home = Home::new();
    // The background sleep ignores SIGINT (non-interactive shells do that for `&` jobs), so only
    // the group-wide SIGKILL after kill_timeout ends it.
    home.ok(&[
        "start",
        "sh -c 'sleep 1000 & sleep 1000'",
        "--name",
        "grp",
        "--kill-timeout",
        "300",
    ]);
    let pid = wait_until("grp online", || home.online_pids("grp", 1))[0] as i32;
    wait_until("both sleeps in the group", || {
        (group_members(pid).len() >= 3).then_some(())
    });
    home.ok(&["stop", "grp"]);
    assert!(
        group_members(pid).is_empty(),
        "left behind: {:?}",
        group_members(pid)
    );
    assert_eq!(home.app("grp")[0].status, InstanceState::Stopped);
}

#[test]
fn every_instance_leads_a_session_of_its_own() {
    let home = Home::new();
    // Ten: a batch that large forks from several threads at once.
    home.ok(&["start", "sleep 1000", "--name", "sess", "-i", "10"]);
    let pids = wait_until("sess online", || home.online_pids("sess", 10));
    let distinct: std::collections::BTreeSet<u32> = pids.iter().copied().collect();
    assert_eq!(distinct.len(), 10);
    let daemon = home.daemon_pid().expect("daemon pid");
    for pid in pids {
        let pid = pid as i32;
        // SAFETY: getsid only reads the process table.
        let sid = unsafe { libc::getsid(pid) };
        assert_eq!(sid, pid, "instance {pid} is not a session leader");
        // SAFETY: as above.
        assert_ne!(sid, unsafe { libc::getsid(daemon) });
    }
}

#[test]
fn kill_signal_is_configurable_and_kill_timeout_ends_in_sigkill() {
    let home = Home::new();
    let work = home.work();
    // Ignores SIGINT; records SIGTERM and exits on it.
    let polite = home.write_script(
        "polite.sh",
        "#!/bin/bash\ntrap '' INT\ntrap 'echo got-term > term.txt; exit 0' TERM\necho up > up.txt\nwhile true; do sleep 0.05; done\n",
    );
    home.ok(&["start", path_str(&polite), "--kill-signal", "SIGTERM"]);
    wait_until("polite online", || home.online_pids("polite", 1));
    // Online is at exec; the traps are set a moment later (under load, much later).
    wait_until("polite's traps set", || {
        work.join("up.txt").exists().then_some(())
    });
    home.ok(&["stop", "polite"]);
    assert_eq!(
        std::fs::read_to_string(work.join("term.txt")).unwrap_or_default(),
        "got-term\n"
    );

    let stubborn = home.write_script(
        "stubborn.sh",
        "#!/bin/bash\ntrap '' INT TERM\nwhile true; do sleep 0.05; done\n",
    );
    home.ok(&["start", path_str(&stubborn), "--kill-timeout", "200"]);
    let pid = wait_until("stubborn online", || home.online_pids("stubborn", 1))[0] as i32;
    home.ok(&["stop", "stubborn"]);
    assert!(group_members(pid).is_empty());
    assert_eq!(home.app("stubborn")[0].status, InstanceState::Stopped);
}

#[test]
fn orphaned_grandchildren_are_reaped() {
    let home = Home::new();
    // The subshell exits at once, orphaning its short-lived `sleep`: the daemon (a subreaper)
    // inherits and must reap it.
    home.ok(&[
        "start",
        "sh -c '(sleep 0.2 &); exec sleep 1000'",
        "--name",
        "orphans",
    ]);
    let pid = wait_until("orphans online", || home.online_pids("orphans", 1))[0] as i32;
    let daemon = home.daemon_pid().expect("daemon pid");
    wait_until("the orphan has ended and been reaped", || {
        (group_members(pid).len() == 1 && zombie_children(daemon).is_empty()).then_some(())
    });
}

#[test]
fn signal_reaches_running_instances_and_pid_lists_them() {
    let home = Home::new();
    let work = home.work();
    let dir = path_str(&work);
    // Says it is ready once its handler is installed; SIGUSR2 leaves a file behind.
    let script = home.write_script(
        "usr2.py",
        &format!(
            "import os, signal, time\n\
             def got(*_):\n    open('{dir}/got-%d' % os.getpid(), 'w').close()\n\
             signal.signal(signal.SIGUSR2, got)\n\
             open('{dir}/ready-%d' % os.getpid(), 'w').close()\n\
             while True:\n    time.sleep(1)\n"
        ),
    );
    home.ok(&["start", path_str(&script), "--name", "sig", "-i", "2"]);
    let mut pids = wait_until("2 online", || home.online_pids("sig", 2));
    pids.sort_unstable();
    wait_until("handlers installed", || {
        pids.iter()
            .all(|pid| work.join(format!("ready-{pid}")).exists())
            .then_some(())
    });

    let listed = |target: Option<&str>| -> Vec<u32> {
        let mut args = vec!["pid"];
        args.extend(target);
        let mut pids: Vec<u32> = home
            .ok(&args)
            .lines()
            .map(|l| l.parse().expect("a pid per line"))
            .collect();
        pids.sort_unstable();
        pids
    };
    assert_eq!(listed(Some("sig")), pids);
    assert_eq!(listed(None), pids);
    let err = home.fails(&["pid", "nosuch"]);
    assert!(err.contains("no app or instance nosuch"), "{err}");

    let out = home.ok(&["signal", "SIGUSR2", "sig"]);
    assert!(out.contains("sent SIGUSR2 to 2 instance(s)"), "{out}");
    wait_until("both got SIGUSR2", || {
        pids.iter()
            .all(|pid| work.join(format!("got-{pid}")).exists())
            .then_some(())
    });
    // pm2's spelling, a bare name, an instance id.
    let out = home.ok(&["sendSignal", "usr2", "0"]);
    assert!(out.contains("sent SIGUSR2 to 1 instance(s)"), "{out}");
    assert_eq!(
        home.online_pids("sig", 2).map(|mut p| {
            p.sort_unstable();
            p
        }),
        Some(pids.clone()),
        "handled, not ended"
    );

    let err = home.fails(&["signal", "BOGUS", "sig"]);
    assert!(err.contains("`BOGUS` is not a signal"), "{err}");
    home.ok(&["stop", "sig"]);
    let err = home.fails(&["signal", "USR2", "sig"]);
    assert!(
        err.contains("no running instance to send SIGUSR2 to"),
        "{err}"
    );
}
