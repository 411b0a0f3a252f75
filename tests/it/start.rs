//! Starting apps in the three forms pm2 users type, listing, stopping and deleting them, and
//! what an instance's environment holds.

use rcluster::protocol::model::InstanceState;

use crate::harness::{path_str, run_with_deadline, wait_until, Home};

#[test]
fn start_list_stop_delete() {
    let home = Home::new();
    let worker = home.write_script("worker.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    home.ok(&["start", path_str(&worker), "-i", "3"]);
    let pids = wait_until("3 online", || home.online_pids("worker", 3));
    let list = home.app("worker");
    let mut ids: Vec<u32> = list.iter().map(|i| i.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "ids are unique per instance: {list:?}");
    let mut indexes: Vec<u32> = list.iter().map(|i| i.instance).collect();
    indexes.sort();
    assert_eq!(indexes, vec![0, 1, 2]);
    assert!(
        list.iter().all(|i| i.memory > 0 && i.reason.is_none()),
        "{list:?}"
    );

    let table = home.ok(&["ls"]);
    assert!(
        table.contains("worker") && table.contains("online"),
        "{table}"
    );

    home.ok(&["stop", "worker"]);
    let stopped = home.app("worker");
    assert!(
        stopped
            .iter()
            .all(|i| i.status == InstanceState::Stopped && i.pid.is_none()),
        "{stopped:?}"
    );
    for pid in pids {
        assert!(
            !crate::harness::pid_alive(pid as i32),
            "pid {pid} survived stop"
        );
    }
    home.ok(&["restart", "worker"]);
    wait_until("3 online again", || home.online_pids("worker", 3));
    home.ok(&["delete", "worker"]);
    assert!(home.app("worker").is_empty());
    let err = home.fails(&["stop", "worker"]);
    assert!(err.contains("no app named \"worker\""), "{err}");
}

#[test]
fn command_line_forms() {
    let home = Home::new();
    let work = home.work();
    std::fs::write(
        work.join("app.js"),
        "setInterval(() => {}, 1000); console.log('js', process.argv[2]);\n",
    )
    .expect("write");
    // A quoted command line, a program with args after `--`, and a stop by id.
    home.ok(&["start", "sleep 1000", "--name", "quoted"]);
    home.ok(&["start", "--name", "dashed", "sleep", "--", "1000"]);
    let quoted = wait_until("quoted online", || home.online_pids("quoted", 1));
    wait_until("dashed online", || home.online_pids("dashed", 1));
    // Empty while the kernel is still inside the instance's execve: wait for the real one.
    let cmdline = wait_until("the instance's cmdline", || {
        std::fs::read(format!("/proc/{}/cmdline", quoted[0]))
            .ok()
            .filter(|c| !c.is_empty())
    });
    assert_eq!(
        cmdline, b"sleep\x001000\x00",
        "exec'd directly, no shell in between"
    );
    let id = home.app("dashed")[0].id.to_string();
    home.ok(&["stop", &id]);
    assert_eq!(home.app("dashed")[0].status, InstanceState::Stopped);
    home.ok(&["delete", "all"]);
    assert!(home.list().is_empty());

    // pm2's --node-args (--interpreter-args): before the script, the script's own args after.
    home.ok(&[
        "start",
        "app.js",
        "--name",
        "tuned",
        "--node-args=--max-old-space-size=256 --no-warnings",
        "--",
        "arg1",
    ]);
    let pid = wait_until("tuned online", || home.online_pids("tuned", 1))[0];
    let cmdline = wait_until("node's cmdline", || {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .filter(|c| c.starts_with(b"node"))
    });
    // The script as the file it names (an absolute path, as in ecosystem files and pm2).
    let script = home.work().join("app.js");
    assert_eq!(
        String::from_utf8_lossy(&cmdline),
        format!(
            "node\0--max-old-space-size=256\0--no-warnings\0{}\0arg1\0",
            script.display()
        )
    );
}

#[test]
fn instances_max_uses_available_cpus() {
    let home = Home::new();
    home.ok(&["start", "sleep 1000", "--name", "maxed", "-i", "max"]);
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    wait_until("max online", || home.online_pids("maxed", cpus));
}

#[test]
fn instance_env_is_the_apps_env_plus_documented_variables() {
    let home = Home::new();
    let dump = home.write_script(
        "dump.sh",
        "#!/bin/sh\nenv > \"env-$RCLUSTER_INSTANCE.txt\"\nexec sleep 1000\n",
    );
    let work = home.work();
    let out = home
        .command(&[
            "start",
            path_str(&dump),
            "-i",
            "2",
            "--env-var",
            "GREETING=hi there",
            "--instance-var",
            "MY_INDEX",
        ])
        .env("RCLUSTER_SECRET_INTERNAL", "x")
        .env("LISTEN_FDS", "7")
        .output()
        .expect("start");
    assert!(out.status.success(), "{}", home.report(&out));
    for index in 0..2 {
        let file = work.join(format!("env-{index}.txt"));
        let env = wait_until("env dumped", || {
            std::fs::read_to_string(&file)
                .ok()
                .filter(|s| s.contains("RCLUSTER_APP="))
        });
        assert!(
            env.contains(&format!("RCLUSTER_INSTANCE={index}\n")),
            "{env}"
        );
        assert!(env.contains(&format!("MY_INDEX={index}\n")), "{env}");
        assert!(env.contains("GREETING=hi there\n"), "{env}");
        assert!(env.contains("RCLUSTER_APP=dump\n"), "{env}");
        assert!(
            !env.contains("RCLUSTER_SECRET_INTERNAL"),
            "internal variable leaked: {env}"
        );
        assert!(!env.contains("RCLUSTER_HOME"), "{env}");
        assert!(!env.contains("LISTEN_FDS"), "{env}");
        assert!(
            !env.contains("NODE_APP_INSTANCE"),
            "instance_var replaced it: {env}"
        );
    }

    // pm2's `env <id>`: what the running program started with, the same as it dumped.
    let ids: Vec<u32> = home.app("dump").iter().map(|i| i.id).collect();
    let shown = home.ok(&["env", &ids[1].to_string()]);
    let dumped = std::fs::read_to_string(work.join("env-1.txt")).expect("dump");
    let sorted = |text: &str| {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    // Every variable shown is in the dump, but those the shell keeps itself (SHLVL, PWD, _).
    let dumped = sorted(&dumped);
    let shells_own = ["SHLVL=", "PWD=", "OLDPWD=", "_="];
    for line in sorted(&shown) {
        if !shells_own.iter().any(|own| line.starts_with(own)) {
            assert!(dumped.contains(&line), "{line:?} not in {dumped:?}");
        }
    }
    for expected in ["GREETING=hi there", "MY_INDEX=1", "RCLUSTER_INSTANCE=1"] {
        assert!(shown.lines().any(|l| l == expected), "{expected}: {shown}");
    }
    let err = home.fails(&["env", "dump"]);
    assert!(err.contains("has 2 instances"), "{err}");
    home.ok(&["stop", &ids[0].to_string()]);
    let err = home.fails(&["env", &ids[0].to_string()]);
    assert!(err.contains("is stopped"), "{err}");
}

#[test]
fn bad_names_and_duplicates_are_refused() {
    let home = Home::new();
    let err = home.fails(&["start", "sleep 1000", "--name", "../evil"]);
    assert!(err.contains("path separators"), "{err}");
    let err = home.fails(&["start", "sleep 1000", "--name", "42"]);
    assert!(err.contains("reserved"), "{err}");
    home.ok(&["start", "sleep 1000", "--name", "once"]);
    let err = home.fails(&["start", "sleep 1000", "--name", "once"]);
    assert!(err.contains("already exists"), "{err}");
    let err = home.fails(&["start", "sleep 1000", "--name", "x", "-i", "lots"]);
    assert!(err.contains("instance count"), "{err}");
}

#[test]
fn an_argument_that_is_not_utf8_is_a_usage_error_not_a_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let home = Home::new();
    let mut cmd = home.command(&["start", "echo", "--"]);
    cmd.arg(OsStr::from_bytes(b"\xff"));
    let out = run_with_deadline(cmd, &["start", "echo", "--", "<0xff>"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("invalid UTF-8"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn pm2_mini_list_and_silent_flag() {
    let home = Home::new();
    // -s: the start report is silenced, not what a command is asked to show.
    let out = home.ok(&["start", "sleep 1000", "--name", "quiet", "-i", "2", "-s"]);
    assert_eq!(out, "", "start -s printed");
    let pids = wait_until("online", || home.online_pids("quiet", 2));
    let mini = home.ok(&["-s", "ls", "-m"]);
    let blocks: Vec<&str> = mini.split("+--- quiet\n").skip(1).collect();
    assert_eq!(blocks.len(), 2, "{mini}");
    for pid in &pids {
        assert!(mini.contains(&format!("pid : {pid}\n")), "{mini}");
    }
    assert!(mini.contains("status : online\n"), "{mini}");
    assert!(mini.contains("id : 1\n"), "{mini}");
    // Errors still reach stderr under -s.
    let err = home.fails(&["stop", "nope", "-s"]);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn monit_refreshes_the_list_with_cpu_and_memory() {
    let home = Home::new();
    // One busy instance, one idle one, another app that the target leaves out.
    home.ok(&["start", "sh -c 'while :; do :; done'", "--name", "busy"]);
    home.ok(&["start", "sleep 1000", "--name", "idle"]);
    wait_until("both online", || {
        home.online_pids("busy", 1)?;
        home.online_pids("idle", 1)
    });
    let out = home.ok(&["monit", "busy", "--interval", "300ms", "--count", "5"]);
    let frames: Vec<&str> = out.split("rcluster monit").skip(1).collect();
    assert_eq!(frames.len(), 5, "{out}");
    for frame in &frames {
        assert!(frame.contains("busy") && !frame.contains("idle"), "{frame}");
    }
    // The busy loop's CPU shows once there is an interval to measure it over. Its best
    // interval: on a machine loaded by other jobs one interval can catch it starved.
    let cpu_of = |frame: &str| {
        let busy_line = frame
            .lines()
            .find(|l| l.contains("busy"))
            .expect("busy row");
        busy_line
            .split(['│', '┆', '|'])
            .map(str::trim)
            .find_map(|cell| cell.strip_suffix('%')?.parse::<f64>().ok())
            .expect("a CPU % cell")
    };
    let best = frames[1..].iter().map(|f| cpu_of(f)).fold(0.0, f64::max);
    assert!(best > 5.0, "busy loop at {best}% at best: {out}");
}

#[test]
fn start_of_a_known_name_id_or_all_starts_it_again_as_in_pm2() {
    let home = Home::new();
    home.ok(&["start", "sleep 1000", "--name", "api"]);
    home.ok(&["start", "sleep 1000", "--name", "jobs", "-i", "2"]);
    wait_until("3 online", || {
        home.online_pids("api", 1)?;
        home.online_pids("jobs", 2)
    });
    // `pm2 stop api` then `pm2 start api`: the app runs again, not a new one named after it.
    home.ok(&["stop", "api"]);
    home.ok(&["start", "api"]);
    wait_until("api online again", || home.online_pids("api", 1));
    let jobs = home.app("jobs");
    home.ok(&["stop", "all"]);
    home.ok(&["start", &jobs[1].id.to_string()]);
    wait_until("that instance online", || {
        home.app("jobs")
            .iter()
            .any(|i| i.id == jobs[1].id && i.status == InstanceState::Online)
            .then_some(())
    });
    home.ok(&["start", "all"]);
    wait_until("all online", || {
        home.online_pids("api", 1)?;
        home.online_pids("jobs", 2)
    });
    assert_eq!(home.list().len(), 3, "no app was added");
    // With anything that defines an app, a taken name stays an error.
    let err = home.fails(&["start", "api", "--watch"]);
    assert!(err.contains("already exists"), "{err}");
}

#[test]
fn pm2_only_start_flags_run_with_a_note() {
    let home = Home::new();
    let args = [
        "start",
        "sleep 1000",
        "--name",
        "quiet",
        "--no-vizion",
        "--no-pmx",
        "--no-automation",
    ];
    let out = home.run(&args);
    assert!(out.status.success(), "{}", home.report(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    for flag in ["--no-vizion", "--no-pmx", "--no-automation"] {
        assert!(said.contains(&format!("{flag} has no effect")), "{said}");
    }
    home.wait_status("quiet", InstanceState::Online);
}

#[test]
fn scripts_as_pm2_runs_them_a_file_in_the_cwd_and_no_exec_bit() {
    if !crate::harness::have("node") {
        eprintln!("skipped: no node");
        return;
    }
    let home = Home::new();
    let work = home.work();
    std::fs::create_dir_all(work.join("bin")).expect("mkdir");
    // Express's generator layout, copied without its exec bit: pm2 runs it with node.
    std::fs::write(
        work.join("bin/www"),
        "#!/usr/bin/env node\nconsole.log('www up'); setInterval(() => {}, 1e6);\n",
    )
    .expect("write");
    // An extensionless JavaScript file named like a program: the file in the cwd wins.
    std::fs::write(
        work.join("server"),
        "console.log('server up'); setInterval(() => {}, 1e6);\n",
    )
    .expect("write");
    home.ok(&["start", "bin/www"]);
    home.ok(&["start", "server"]);
    for (name, line) in [("www", "www up"), ("server", "server up")] {
        wait_until(&format!("{name} printed"), || {
            home.read_log(&format!("{name}-out.log"))
                .contains(line)
                .then_some(())
        });
        assert_eq!(home.app(name)[0].status, InstanceState::Online);
    }
}

#[test]
fn pm2_start_flags_that_mean_something_here() {
    let home = Home::new();
    let work = home.work();
    std::fs::create_dir_all(work.join("src")).expect("mkdir");
    // `--watch src` after the script, as pm2 takes it.
    home.ok(&["start", "sleep 1000", "--name", "dev", "--watch", "src"]);
    let described = home.ok(&["describe", "dev"]);
    let watch_row = described
        .lines()
        .find(|l| l.contains(" watch ") && !l.contains("ignore"))
        .unwrap_or_default();
    assert!(
        watch_row.contains(&work.join("src").display().to_string()),
        "{described}"
    );
    // --disable-logs: both files discarded; -x is pm2's fork mode, noted.
    let out = home.run(&["start", "echo hi", "--name", "mute", "--disable-logs", "-x"]);
    assert!(out.status.success(), "{}", home.report(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--execute-command has no effect"),
        "{}",
        home.report(&out)
    );
    let described = home.ok(&["describe", "mute"]);
    assert_eq!(described.matches("(discarded)").count(), 2, "{described}");
    // pm2's id, and its uid refused with the reason.
    home.ok(&["start", "sleep 1000", "--name", "pair", "-i", "2"]);
    let ids: Vec<String> = home.app("pair").iter().map(|i| i.id.to_string()).collect();
    assert_eq!(
        home.ok(&["id", "pair"]).trim(),
        format!("[ {} ]", ids.join(", "))
    );
    assert_eq!(home.ok(&["id", "nothing-here"]).trim(), "[]");
    let err = home.fails(&["start", "sleep 1000", "--name", "other", "--uid", "1000"]);
    assert!(err.contains("another user"), "{err}");
    // pm2.io's flags run, each with its note.
    let out = home.run(&[
        "start",
        "sleep 1000",
        "--name",
        "traced",
        "--trace",
        "--v8",
        "--deep-monitoring",
        "--filter-env",
        "--pid",
        "app.pid",
    ]);
    assert!(out.status.success(), "{}", home.report(&out));
    let notes = String::from_utf8_lossy(&out.stderr);
    for flag in ["--trace", "--v8", "--deep-monitoring", "--pid"] {
        assert!(notes.contains(&format!("{flag} has no effect")), "{notes}");
    }
    assert!(
        notes.contains("--filter-env without a name has no effect"),
        "{notes}"
    );

    // `--env production` on a script runs, with a note (pm2 ignores it).
    let out = home.run(&[
        "start",
        "sleep 1000",
        "--name",
        "envd",
        "--env",
        "production",
    ]);
    assert!(out.status.success(), "{}", home.report(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--env production has no effect"),
        "{}",
        home.report(&out)
    );

    // pm2's `ls --sort`.
    let sorted: Vec<rcluster::protocol::model::InstanceView> =
        serde_json::from_str(&home.ok(&["list", "--json", "--sort", "name:desc"])).expect("json");
    let names: Vec<&str> = sorted.iter().map(|i| i.name.as_str()).collect();
    let mut expected = names.clone();
    expected.sort_by(|a, b| b.cmp(a));
    assert_eq!(names, expected);
    let err = home.fails(&["list", "--sort", "colour"]);
    assert!(err.contains("sort by one of"), "{err}");

    // --attach: started, then its logs follow.
    let (mut child, mut reader) = crate::logs::follower(
        &home,
        &[
            "start",
            "sh -c 'echo attached-line; sleep 1000'",
            "--name",
            "talk",
            "--attach",
        ],
    );
    crate::logs::read_until(&mut reader, "the app's line", |l| {
        l.contains("attached-line")
    });
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn autostart_false_adds_the_app_stopped() {
    let home = Home::new();
    let file = home.work().join("ecosystem.json");
    std::fs::write(
        &file,
        r#"{"apps": [{"name": "later", "script": "sleep", "args": "1000", "autostart": false},
                     {"name": "now", "script": "sleep", "args": "1000"}]}"#,
    )
    .expect("write");
    home.ok(&["start", path_str(&file)]);
    wait_until("now online", || home.online_pids("now", 1));
    let later = home.app("later");
    assert_eq!(later[0].status, InstanceState::Stopped, "{later:?}");
    assert_eq!(later[0].pid, None);
    // `start <name>` starts it, as under pm2.
    home.ok(&["start", "later"]);
    wait_until("later online", || home.online_pids("later", 1));
    // The flag does the same.
    home.ok(&["start", "sleep 1000", "--name", "flagged", "--no-autostart"]);
    assert_eq!(home.app("flagged")[0].status, InstanceState::Stopped);
}
