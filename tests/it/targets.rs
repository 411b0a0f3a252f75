//! Naming and targets as pm2 takes them (issue 16, item 4), with real Node and Python
//! programs: a script file names the apps started from it, `/regex/` names apps, several
//! scripts in one start, `-f` for a second copy, a missing script refused, `all` with no app
//! refused, a stopped app started without counting a restart, `-i` below -1, and flags given
//! beside an ecosystem file.

use crate::harness::{have, path_str, wait_until, Home};
use rcluster::protocol::model::InstanceState;

const NODE_IDLE: &str = "console.log('up'); setInterval(() => {}, 1e6);\n";
const PY_IDLE: &str = "import time\nprint('up', flush=True)\nwhile True:\n    time.sleep(60)\n";

fn statuses(home: &Home) -> Vec<(String, InstanceState)> {
    let mut out: Vec<(String, InstanceState)> = home
        .list()
        .into_iter()
        .map(|i| (i.name, i.status))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn a_script_file_names_the_apps_started_from_it() {
    if !have("node") {
        eprintln!("skipped: no node");
        return;
    }
    let home = Home::new();
    home.write_script("echo.js", NODE_IDLE);
    home.write_script("server.py", PY_IDLE);
    home.ok(&["start", "echo.js"]);
    home.ok(&["start", "server.py", "--name", "api"]);
    home.online_pids("echo", 1).expect("echo online");
    let api = wait_until("api online", || home.online_pids("api", 1));

    home.ok(&["stop", "echo.js"]);
    home.wait_status("echo", InstanceState::Stopped);
    // From another folder, as pm2 resolves the path against the current directory.
    let sub = home.work().join("sub");
    std::fs::create_dir_all(&sub).expect("mkdir");
    let out = home
        .command(&["restart", "../server.py"])
        .current_dir(&sub)
        .output()
        .expect("run rcluster");
    assert!(out.status.success(), "{}", home.report(&out));
    wait_until("api restarted", || {
        home.online_pids("api", 1).filter(|pids| *pids != api)
    });
    let out = home.ok(&["flush", "server.py"]);
    assert!(out.contains("flushed the logs of 1 app"), "{out}");
    home.ok(&["delete", "./echo.js"]);
    assert_eq!(statuses(&home), [("api".to_owned(), InstanceState::Online)]);
    let err = home.fails(&["stop", "nothere.js"]);
    assert!(err.contains("no app named \"nothere.js\""), "{err}");
}

#[test]
fn a_regex_names_apps_by_name() {
    let home = Home::new();
    home.write_script("idle.py", PY_IDLE);
    for n in 1..=3 {
        home.ok(&["start", "idle.py", "--name", &format!("echo-{n}")]);
    }
    wait_until("three online", || {
        (home
            .list()
            .iter()
            .filter(|i| i.status == InstanceState::Online)
            .count()
            == 3)
            .then_some(())
    });
    home.ok(&["stop", "/echo-[1,2]/"]);
    home.wait_status("echo-1", InstanceState::Stopped);
    home.wait_status("echo-2", InstanceState::Stopped);
    assert_eq!(home.app("echo-3")[0].status, InstanceState::Online);
    let err = home.fails(&["stop", "/nomatch/"]);
    assert!(err.contains("no app name matches /nomatch/"), "{err}");
    let err = home.fails(&["restart", "/echo-(/"]);
    assert!(err.contains("not a regular expression"), "{err}");
}

#[test]
fn several_scripts_start_as_several_apps() {
    if !have("node") {
        eprintln!("skipped: no node");
        return;
    }
    let home = Home::new();
    home.write_script("a.js", NODE_IDLE);
    home.write_script("b.py", PY_IDLE);
    home.write_script("c.sh", "echo up; exec sleep 1000\n");
    home.ok(&["start", "a.js", "b.py", "c.sh"]);
    for name in ["a", "b", "c"] {
        wait_until(&format!("{name} online"), || home.online_pids(name, 1));
    }
    assert_eq!(home.list().len(), 3);
}

#[test]
fn a_running_script_is_refused_unless_forced() {
    if !have("node") {
        eprintln!("skipped: no node");
        return;
    }
    let home = Home::new();
    home.write_script("app.js", NODE_IDLE);
    home.ok(&["start", "app.js"]);
    home.online_pids("app", 1).expect("app online");
    let err = home.fails(&["start", "app.js"]);
    assert!(err.contains("script already launched"), "{err}");
    assert!(err.contains("add -f"), "{err}");
    assert_eq!(home.list().len(), 1);
    let out = home.run(&["start", "app.js", "-f"]);
    assert!(out.status.success(), "{}", home.report(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"app-2\""));
    wait_until("the copy online", || home.online_pids("app-2", 1));
    // The file names both.
    home.ok(&["stop", "app.js"]);
    home.wait_status("app", InstanceState::Stopped);
    home.wait_status("app-2", InstanceState::Stopped);
    // Starting the script of a stopped app starts it again (pm2 does), not a new app.
    home.ok(&["start", "app.js"]);
    wait_until("app online again", || home.online_pids("app", 1));
    assert_eq!(home.list().len(), 2);
    assert_eq!(home.app("app")[0].restarts, 0, "a start is not a restart");
}

#[test]
fn a_missing_script_is_refused_and_nothing_is_added() {
    let home = Home::new();
    let err = home.fails(&["start", "nothere.js"]);
    let missing = home.work().join("nothere.js");
    assert!(
        err.contains(&format!("script not found: {}", path_str(&missing))),
        "{err}"
    );
    home.fails(&["start", "./nothere"]);
    home.fails(&["start", "nothere", "-i", "2"]);
    assert!(home.list().is_empty());
    // What is no file but runs stays fine: a command line, a program on PATH and its
    // arguments, a known app by name.
    home.ok(&[
        "start",
        "python3 -m http.server 0 --bind 127.0.0.1",
        "--name",
        "http",
    ]);
    home.ok(&["start", "sleep", "--", "1000"]);
    wait_until("both online", || {
        home.online_pids("http", 1)?;
        home.online_pids("sleep", 1)
    });
    home.ok(&["stop", "sleep"]);
    home.wait_status("sleep", InstanceState::Stopped);
    home.ok(&["start", "sleep"]);
    wait_until("sleep online again", || home.online_pids("sleep", 1));
}

#[test]
fn all_with_no_app_fails_and_a_start_is_not_a_restart() {
    let home = Home::new();
    for verb in ["restart", "stop", "reload", "delete"] {
        let err = home.fails(&[verb, "all"]);
        assert!(err.contains("no process found"), "{verb}: {err}");
    }
    home.write_script("idle.py", PY_IDLE);
    home.ok(&["start", "idle.py"]);
    home.online_pids("idle", 1).expect("idle online");
    home.ok(&["stop", "all"]);
    home.wait_status("idle", InstanceState::Stopped);
    home.ok(&["start", "idle"]);
    wait_until("idle online", || home.online_pids("idle", 1));
    home.ok(&["stop", "idle"]);
    home.ok(&["restart", "idle"]);
    wait_until("idle online", || home.online_pids("idle", 1));
    assert_eq!(home.app("idle")[0].restarts, 0, "↺ stays: two starts");
    home.ok(&["restart", "idle"]);
    assert_eq!(
        home.app("idle")[0].restarts,
        1,
        "a restart of what runs counts"
    );
}

#[test]
fn instances_below_minus_one_and_flags_beside_a_file() {
    let home = Home::new();
    home.write_script("idle.py", PY_IDLE);
    home.ok(&["start", "idle.py", "-i", "-100"]);
    let idle = wait_until("one idle", || home.online_pids("idle", 1));
    assert_eq!(idle.len(), 1);
    assert_eq!(home.app("idle")[0].mode, "fork");

    let file = home.work().join("eco.json");
    std::fs::write(
        &file,
        r#"{"apps": [
            {"name": "api", "script": "idle.py", "env": {"A": "1"}, "env_production": {"A": "prod"}},
            {"name": "worker", "script": "idle.py"}
        ]}"#,
    )
    .expect("write eco.json");
    home.ok(&[
        "start",
        "eco.json",
        "-i",
        "2",
        "--only",
        "api",
        "--env-var",
        "B=2",
    ]);
    wait_until("two api", || home.online_pids("api", 2));
    assert!(home.app("worker").is_empty(), "--only");
    let listed: Vec<serde_json::Value> = serde_json::from_str(&home.ok(&["jlist"])).expect("json");
    let api: Vec<&serde_json::Value> = listed.iter().filter(|p| p["name"] == "api").collect();
    assert_eq!(api[0]["pm2_env"]["env"]["A"], "1");
    assert_eq!(api[0]["pm2_env"]["env"]["B"], "2");
    assert_eq!(api[0]["pm2_env"]["instances"], 2);

    home.ok(&[
        "start",
        "eco.json",
        "--only",
        "worker",
        "--name",
        "jobs",
        "--env",
        "production",
    ]);
    wait_until("jobs online", || home.online_pids("jobs", 1));
    let err = home.fails(&["start", "eco.json", "--name", "x"]);
    assert!(err.contains("--name names one app"), "{err}");
}

/// `rcluster ARGS` with `input` on its standard input.
fn piped(home: &Home, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = home
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rcluster");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("rcluster output")
}

#[test]
fn an_ecosystem_file_on_standard_input() {
    let home = Home::new();
    home.write_script("idle.py", PY_IDLE);
    let file = r#"{"apps": [{"name": "api", "script": "idle.py"}, {"name": "worker", "script": "idle.py"}]}"#;
    let out = piped(&home, &["start", "-"], file);
    assert!(out.status.success(), "{}", home.report(&out));
    wait_until("both online", || {
        home.online_pids("api", 1)?;
        home.online_pids("worker", 1)
    });
    assert!(home.app("-").is_empty(), "no app named -");
    let out = piped(&home, &["stop", "-", "--only", "worker"], file);
    assert!(out.status.success(), "{}", home.report(&out));
    home.wait_status("worker", InstanceState::Stopped);
    assert_eq!(home.app("api")[0].status, InstanceState::Online);
    let out = piped(&home, &["start", "-"], r#"{"apps": ["#);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("<stdin>:"), "{err}");
    assert_eq!(home.list().len(), 2);
}

#[test]
fn restart_with_a_name_renames_the_app() {
    let home = Home::new();
    home.write_script("idle.py", PY_IDLE);
    home.ok(&["start", "idle.py"]);
    home.ok(&["start", "idle.py", "--name", "other"]);
    let before = home.online_pids("idle", 1).expect("idle online");
    let id = home.app("idle")[0].id.to_string();
    home.ok(&["restart", &id, "--name", "renamed"]);
    let after = wait_until("renamed online", || home.online_pids("renamed", 1));
    assert_ne!(before, after, "restarted");
    assert!(home.app("idle").is_empty());
    let renamed = &home.app("renamed")[0];
    assert_eq!((renamed.id.to_string(), renamed.restarts), (id, 1));
    // Read once the program runs (the trampoline before its exec has its own environment).
    wait_until("the program sees its new name", || {
        let environ = std::fs::read(format!("/proc/{}/environ", after[0])).ok()?;
        environ
            .split(|b| *b == 0)
            .any(|v| v == b"RCLUSTER_APP=renamed")
            .then_some(())
    });
    wait_until("its log under the new name", || {
        home.read_log("renamed-out.log")
            .contains("up")
            .then_some(())
    });
    let err = home.fails(&["restart", "renamed", "--name", "other"]);
    assert!(err.contains("exists already"), "{err}");
    let err = home.fails(&["restart", "all", "--name", "x"]);
    assert!(err.contains("--name renames one app"), "{err}");
}
