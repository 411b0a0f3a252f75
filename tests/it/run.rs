//! `rcluster run` (pm2-runtime): foreground, output on stdout/stderr with prefixes, SIGTERM
//! stops the apps gracefully, exit code from how the apps ended, orphans reaped as PID 1.

use std::io::Read;
use std::process::{Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::harness::{have, run_with_deadline, wait_until, Home, BIN};

#[test]
fn runs_in_the_foreground_and_exits_with_the_apps() {
    let home = Home::new();
    let out = run_with_deadline(
        home.command(&[
            "run",
            "sh -c 'echo hello; echo oops >&2'",
            "--no-autorestart",
            "-i",
            "2",
        ]),
        &["run"],
    );
    assert!(out.status.success(), "{}", home.report(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("0|sh")
            && stdout.contains("1|sh")
            && stdout.matches("| hello").count() == 2,
        "{stdout}"
    );
    assert!(stderr.contains("| oops"), "{stderr}");
    // No daemon was involved.
    assert!(!home.socket().exists());

    let out = run_with_deadline(
        home.command(&["run", "surely-not-a-program-rcluster"]),
        &["run"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no such file"),
        "{}",
        home.report(&out)
    );
}

#[test]
fn sigterm_stops_the_apps_gracefully() {
    let home = Home::new();
    let work = home.work();
    let app = home.write_script(
        "trap.sh",
        "#!/bin/sh\ntrap 'echo stopped-gracefully > stopped.txt; exit 0' INT\necho up\nwhile true; do sleep 0.05; done\n",
    );
    let mut child = home
        .command(&["run", app.to_str().expect("path")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rcluster run");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    let mut buf = [0u8; 256];
    // Blocks until the app's first line is printed (the read is bounded by the app's output).
    while !String::from_utf8_lossy(&seen).contains("| up") {
        let n = stdout.read(&mut buf).expect("read");
        assert!(n > 0, "rcluster run ended early");
        seen.extend_from_slice(&buf[..n]);
    }
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
    let status = wait_until("run to exit", || child.try_wait().ok().flatten());
    assert!(status.success(), "{status:?}");
    assert_eq!(
        std::fs::read_to_string(work.join("stopped.txt")).unwrap_or_default(),
        "stopped-gracefully\n"
    );
}

#[test]
fn as_pid_1_it_reaps_orphans() {
    if !have("unshare")
        || !Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "true"])
            .status()
            .is_ok_and(|s| s.success())
    {
        eprintln!(
            "skipped: cannot create a PID namespace here (unshare --pid --fork --mount-proc)"
        );
        return;
    }
    let home = Home::new();
    // Inside the namespace rcluster is PID 1: the orphaned `sleep 0.1` becomes its child. After it
    // ended, count zombies in the namespace; rcluster must have reaped it.
    let script =
        "(sleep 0.1 &); sleep 1; grep -l '^State:.*Z' /proc/[0-9]*/status 2>/dev/null | wc -l";
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--pid",
        "--fork",
        "--mount-proc",
        BIN,
        "run",
        &format!("sh -c \"{script}\""),
        "--no-autorestart",
    ])
    .env("RCLUSTER_HOME", &home.dir)
    .current_dir(home.work());
    let out = run_with_deadline(cmd, &["unshare", "run"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.trim_end().ends_with("| 0"), "zombies left: {stdout}");
}

#[test]
fn start_no_daemon_is_run() {
    // pm2's container form: `pm2 start app.js --no-daemon`.
    let home = Home::new();
    let out = run_with_deadline(
        home.command(&[
            "start",
            "sh -c 'echo from-the-foreground'",
            "--no-daemon",
            "--no-autorestart",
        ]),
        &["start"],
    );
    assert!(out.status.success(), "{}", home.report(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("| from-the-foreground"),
        "{}",
        home.report(&out)
    );
    assert!(!home.socket().exists(), "no daemon was involved");
}
