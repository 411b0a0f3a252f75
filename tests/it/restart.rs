//! The restart policy of PRODUCT.md §3, end to end: crash → replaced at once with a new pid,
//! unstable restarts → errored with the reason, a missing program → errored at once.

use rcluster::protocol::model::InstanceState;

use crate::harness::{path_str, wait_until, Home};

#[test]
fn a_killed_instance_is_replaced_with_a_new_pid() {
    let home = Home::new();
    home.ok(&["start", "--name", "idle", "-i", "2", "sleep", "--", "1000"]);
    let before = wait_until("2 online", || home.online_pids("idle", 2));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(before[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("signal instance");
    let after = wait_until("a new pid", || {
        home.online_pids("idle", 2)
            .filter(|p| !p.contains(&before[0]))
    });
    assert!(
        after.contains(&before[1]),
        "the other instance is untouched"
    );
    let replaced = home
        .app("idle")
        .into_iter()
        .find(|i| i.pid != Some(before[1]))
        .expect("replaced");
    assert_eq!(replaced.restarts, 1);
}

#[test]
fn a_missing_program_is_errored_at_once_without_restarts() {
    let home = Home::new();
    // Neither a file nor a program on PATH: refused before anything is added (pm2's "Script
    // not found").
    let err = home.fails(&["start", "surely-not-a-program-rcluster", "--name", "ghost"]);
    assert!(err.contains("script not found"), "{err}");
    assert!(home.app("ghost").is_empty());
    // A script whose interpreter is missing gets as far as the daemon: errored at once.
    home.write_script("ghost.py", "print('never')\n");
    let err = home.fails(&[
        "start",
        "ghost.py",
        "--interpreter",
        "surely-not-a-program-rcluster",
        "--name",
        "ghost",
    ]);
    assert!(err.contains("no such file"), "{err}");
    let app = home.app("ghost");
    assert_eq!(app[0].status, InstanceState::Errored);
    assert_eq!(app[0].restarts, 0);
    assert!(
        app[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("no such file"),
        "{app:?}"
    );
    // A shell command line whose program is missing: the shell's 127 ends it, no storm.
    home.ok(&[
        "start",
        "GREETING=hi surely-not-a-program-rcluster",
        "--name",
        "shellghost",
    ]);
    let app = home.wait_status("shellghost", InstanceState::Errored);
    assert!(
        app[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("command not found"),
        "{app:?}"
    );
    assert_eq!(app[0].restarts, 0);
}

#[test]
fn a_script_without_a_shebang_runs_with_sh_and_a_foreign_binary_is_errored() {
    let home = Home::new();
    // As shells, execvp(3) and pm2 do.
    let script = home.write_script("plain", "echo \"ran $1\" > ran.txt; exec sleep 1000\n");
    home.ok(&["start", path_str(&script), "--name", "plain", "--", "arg1"]);
    home.wait_status("plain", InstanceState::Online);
    let ran = wait_until("the script ran", || {
        std::fs::read_to_string(home.work().join("ran.txt"))
            .ok()
            .filter(|s| s.ends_with('\n'))
    });
    assert_eq!(ran, "ran arg1\n");
    // An ELF file that cannot run here: the exec error, no restarts.
    let foreign = home.write_script("foreign", "\x7fELF\x02\x01\x01 not for this machine");
    let err = home.fails(&["start", path_str(&foreign), "--name", "foreign"]);
    assert!(err.contains("exec format error"), "{err}");
    let app = home.app("foreign");
    assert_eq!(app[0].status, InstanceState::Errored);
    assert_eq!(app[0].restarts, 0);
}

#[test]
fn unstable_restarts_end_errored_with_the_reason() {
    let home = Home::new();
    let crash = home.write_script("crash.sh", "#!/bin/sh\necho crashing\nexit 3\n");
    home.ok(&[
        "start",
        path_str(&crash),
        "--max-restarts",
        "3",
        "--min-uptime",
        "5s",
    ]);
    let app = home.wait_status("crash", InstanceState::Errored);
    assert_eq!(app[0].restarts, 3, "{app:?}");
    let reason = app[0].reason.clone().unwrap_or_default();
    assert!(
        reason.contains("too many unstable restarts") && reason.contains("exited with code 3"),
        "{reason}"
    );
}

#[test]
fn no_autorestart_and_stop_exit_codes_leave_it_stopped() {
    let home = Home::new();
    let once = home.write_script("once.sh", "#!/bin/sh\nexit 4\n");
    home.ok(&[
        "start",
        path_str(&once),
        "--name",
        "once",
        "--no-autorestart",
    ]);
    let app = home.wait_status("once", InstanceState::Stopped);
    assert_eq!(app[0].restarts, 0);
    assert!(
        app[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("exited with code 4"),
        "{app:?}"
    );

    home.ok(&[
        "start",
        path_str(&once),
        "--name",
        "coded",
        "--stop-exit-codes",
        "0,4",
    ]);
    let app = home.wait_status("coded", InstanceState::Stopped);
    assert_eq!(app[0].restarts, 0);
}

#[test]
fn restart_delay_waits_between_runs() {
    let home = Home::new();
    let quick = home.write_script("quick.sh", "#!/bin/sh\nexit 1\n");
    home.ok(&["start", path_str(&quick), "--restart-delay", "60s"]);
    let app = home.wait_status("quick", InstanceState::WaitingRestart);
    assert!(
        app[0]
            .reason
            .as_deref()
            .unwrap_or("")
            .contains("restarting in 60000 ms"),
        "{app:?}"
    );
    // Stopping a waiting instance cancels the restart.
    home.ok(&["stop", "quick"]);
    assert_eq!(home.app("quick")[0].status, InstanceState::Stopped);
}

#[test]
fn max_memory_restart_replaces_the_instance_gracefully() {
    let home = Home::new();
    let hog = home.write_script(
        "hog.py",
        "import time\nblock = bytearray(64 * 1024 * 1024)\nblock[::4096] = b'x' * len(block[::4096])\nprint('allocated', flush=True)\ntime.sleep(1000)\n",
    );
    home.ok(&[
        "start",
        "python3",
        "--name",
        "hog",
        "--max-memory-restart",
        "32M",
        "--",
        path_str(&hog),
    ]);
    let first = wait_until("hog online", || home.online_pids("hog", 1))[0];
    // Checked every 5 s: the instance is reloaded, a new pid takes its place.
    wait_until("a new pid after the memory check", || {
        home.online_pids("hog", 1).filter(|p| p[0] != first)
    });
}

#[test]
fn reset_sets_restart_counts_back_to_zero() {
    let home = Home::new();
    let work = home.work();
    // Crashes on its first run only.
    let script = home.write_script(
        "once.sh",
        &format!(
            "#!/bin/sh\nif [ ! -e '{dir}/crashed' ]; then touch '{dir}/crashed'; exit 1; fi\nexec sleep 1000\n",
            dir = path_str(&work)
        ),
    );
    home.ok(&["start", path_str(&script), "--name", "once"]);
    wait_until("restarted once and online", || {
        let app = home.app("once");
        (app[0].restarts == 1 && app[0].status == InstanceState::Online).then_some(())
    });
    let out = home.ok(&["reset", "once"]);
    assert!(
        out.contains("reset the restart counts of 1 instance(s)"),
        "{out}"
    );
    assert_eq!(home.app("once")[0].restarts, 0);
    let err = home.fails(&["reset", "nosuch"]);
    assert!(err.contains("nosuch"), "{err}");
}

#[test]
fn update_env_gives_restarted_and_reloaded_apps_the_shells_environment() {
    let home = Home::new();
    let script = home.write_script(
        "tagged.sh",
        "#!/bin/sh\necho \"$DEPLOY_TAG\" > \"tag-$$.txt\"\nexec sleep 1000\n",
    );
    let run = |args: &[&str], tag: &str| {
        let out = home
            .command(args)
            .env("DEPLOY_TAG", tag)
            .output()
            .expect("rcluster");
        assert!(out.status.success(), "{args:?}\n{}", home.report(&out));
    };
    // What the program wrote, once the instance now online has written it.
    let tag_now = || {
        let pid = wait_until("online", || home.online_pids("tagged", 1))[0];
        wait_until("the tag written", || {
            std::fs::read_to_string(home.work().join(format!("tag-{pid}.txt")))
                .ok()
                .filter(|t| t.ends_with('\n'))
        })
    };
    run(
        &[
            "start",
            path_str(&script),
            "--name",
            "tagged",
            "--listen-timeout",
            "100",
        ],
        "one",
    );
    assert_eq!(tag_now(), "one\n");
    // As pm2: a restart keeps the environment of the shell that started the app...
    run(&["restart", "tagged"], "two");
    assert_eq!(tag_now(), "one\n");
    // ...unless told to take this one.
    run(&["restart", "tagged", "--update-env"], "two");
    assert_eq!(tag_now(), "two\n");
    run(&["reload", "tagged", "--update-env"], "three");
    assert_eq!(tag_now(), "three\n");
    run(&["reload", "tagged"], "four");
    assert_eq!(tag_now(), "three\n");
}
