//! cron_restart: on each match a fork app is restarted, a cluster app reloaded with no request
//! lost, and a job that ended by itself runs again; a bad pattern is refused up front.

use std::collections::BTreeSet;

use rcluster::protocol::model::InstanceState;

use crate::harness::{fixture, free_port, http_get, path_str, wait_until, Home};

#[test]
fn a_fork_app_is_restarted_on_every_tick() {
    let home = Home::new();
    home.ok(&[
        "start",
        "sleep 1000",
        "--name",
        "ticked",
        "--cron-restart",
        "* * * * * *",
    ]);
    let first = wait_until("online", || home.online_pids("ticked", 1))[0];
    let described = home.ok(&["describe", "ticked"]);
    assert!(
        described.contains("cron restart") && described.contains("* * * * * *"),
        "{described}"
    );
    let mut seen = BTreeSet::from([first]);
    wait_until("restarted by cron twice", || {
        let app = home.app("ticked");
        seen.extend(app[0].pid);
        (seen.len() >= 3 && app[0].restarts >= 2).then_some(())
    });
}

#[test]
fn a_job_that_ended_runs_again_until_stopped() {
    let home = Home::new();
    let work = home.work();
    let job = home.write_script("job.sh", "#!/bin/sh\necho ran >> runs.txt\n");
    home.ok(&[
        "start",
        path_str(&job),
        "--name",
        "job",
        "--no-autorestart",
        "--cron",
        "* * * * * *",
    ]);
    let runs = || {
        std::fs::read_to_string(work.join("runs.txt"))
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };
    wait_until("the job ran three times", || (runs() >= 3).then_some(()));
    home.ok(&["stop", "job"]);
    // The daemon logs each tick: two more after the stop, and the job stayed stopped.
    let ticks = || {
        std::fs::read_to_string(home.dir.join("daemon.log"))
            .map(|s| s.matches("cron_restart `* * * * * *` is due").count())
            .unwrap_or(0)
    };
    let at_stop = ticks();
    let runs_at_stop = runs();
    wait_until("two ticks after the stop", || {
        (ticks() >= at_stop + 2).then_some(())
    });
    let app = home.app("job");
    assert_eq!(app[0].status, InstanceState::Stopped, "{app:?}");
    assert_eq!(runs(), runs_at_stop, "a stopped job ran again");
}

#[test]
fn a_cluster_app_is_reloaded_without_losing_a_request() {
    let home = Home::new();
    let port = free_port();
    let cmd = format!("python3 {} {port}", fixture("servers/whoami.py"));
    let listen = format!("127.0.0.1:{port}");
    home.ok(&[
        "start",
        &cmd,
        "--name",
        "web",
        "-i",
        "2",
        "--listen",
        &listen,
        "--cron",
        "*/2 * * * * *",
    ]);
    let before: BTreeSet<u32> = wait_until("2 online", || home.online_pids("web", 2))
        .into_iter()
        .collect();
    wait_until("both instances replaced while serving", || {
        for _ in 0..5 {
            http_get(port).expect("every request served during cron reloads");
        }
        let now: BTreeSet<u32> = home.online_pids("web", 2)?.into_iter().collect();
        now.is_disjoint(&before).then_some(())
    });
}

#[test]
fn a_bad_pattern_is_refused() {
    let home = Home::new();
    let err = home.fails(&["start", "sleep 1000", "--cron-restart", "61 * * * *"]);
    assert!(
        err.contains("--cron-restart") && err.contains("the minute field allows 0-59, not 61"),
        "{err}"
    );
    let file = home.work().join("eco.yaml");
    std::fs::write(
        &file,
        "apps:\n  - name: a\n    script: sleep 1000\n    cron_restart: '* * *'\n",
    )
    .expect("write");
    let err = home.fails(&["start", path_str(&file)]);
    assert!(
        err.contains("eco.yaml:4") && err.contains("not a cron pattern"),
        "{err}"
    );
    std::fs::write(
        &file,
        "apps:\n  - name: a\n    script: sleep 1000\n    cron_restart: '0 25 * * *'\n",
    )
    .expect("write");
    let err = home.fails(&["start", path_str(&file)]);
    assert!(
        err.contains("eco.yaml:4") && err.contains("the hour field allows 0-23, not 25"),
        "{err}"
    );
}
