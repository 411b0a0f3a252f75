//! The saved process list: pm2's dump.pm2 with the environment each app ran with, an atomic
//! backup, a fallback to it, dump.json from an earlier rcluster, and a `save` after a daemon
//! crash that keeps what was saved.

use std::os::unix::fs::PermissionsExt;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::ecosystem::env_of;
use crate::harness::{
    fixture, free_port, http_get, path_str, pid_alive, run_with_deadline, wait_until, Home,
};

fn dump(home: &Home) -> serde_json::Value {
    let text = std::fs::read_to_string(home.dir.join("dump.pm2")).expect("dump.pm2");
    serde_json::from_str(&text).expect("dump.pm2 is JSON")
}

/// `kill -9` of the daemon; returns once it is gone.
fn crash_daemon(home: &Home) {
    let daemon = home.daemon_pid().expect("a daemon pid");
    kill(Pid::from_raw(daemon), Signal::SIGKILL).expect("kill the daemon");
    wait_until("the daemon gone", || (!pid_alive(daemon)).then_some(()));
}

#[test]
fn save_after_a_daemon_crash_keeps_the_saved_list() {
    let home = Home::new();
    home.ok(&["start", "sleep 1000", "--name", "kept", "-i", "2"]);
    wait_until("2 online", || home.online_pids("kept", 2));
    home.ok(&["save"]);
    crash_daemon(&home);

    // The next command starts a new daemon, which runs nothing: it says why.
    let out = home.run(&["ls"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let notice = String::from_utf8_lossy(&out.stderr);
    assert!(
        notice.contains("ended without `rcluster kill`") && notice.contains("kept"),
        "{notice}"
    );
    for _ in 0..2 {
        let said = home.ok(&["save"]);
        assert!(
            said.contains("nothing saved") && said.contains("is kept"),
            "{said}"
        );
    }
    assert_eq!(
        dump(&home).as_array().map(Vec::len),
        Some(2),
        "2 instances saved"
    );
    let bak = std::fs::read_to_string(home.dir.join("dump.pm2.bak")).unwrap_or_default();
    assert!(!bak.contains("[]"), "the backup was not emptied: {bak}");
    home.ok(&["resurrect"]);
    wait_until("2 online again", || home.online_pids("kept", 2));
    let out = home.run(&["ls"]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("ended without"),
        "the notice goes once apps run again: {}",
        home.report(&out)
    );

    // pm2's --force saves an empty list.
    home.ok(&["delete", "all"]);
    home.ok(&["save", "--force"]);
    assert_eq!(dump(&home), serde_json::json!([]));
}

#[test]
fn the_environment_an_app_ran_with_comes_back() {
    let home = Home::new();
    let port = free_port();
    let script = fixture("servers/whoami.py");
    let mut start = home.command(&[
        "start",
        "python3",
        "--name",
        "web",
        "--filter-env",
        "SECRET",
        "--",
        &script,
    ]);
    start
        .env("PORT", port.to_string())
        .env("IT_SECRET_TOKEN", "hunter2");
    let out = run_with_deadline(start, &["start"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let pid = wait_until("web online", || home.online_pids("web", 1))[0];
    assert_eq!(
        env_of(pid, "IT_SECRET_TOKEN"),
        None,
        "--filter-env keeps it out"
    );
    wait_until("web serves", || http_get(port).ok());
    home.ok(&["save"]);

    let saved = dump(&home);
    let entry = &saved[0];
    assert_eq!(entry["env"]["PORT"], port.to_string());
    assert!(entry["env"].get("IT_SECRET_TOKEN").is_none(), "{entry}");
    assert_eq!(entry["name"], "web");
    assert_eq!(entry["exec_interpreter"], "python3");
    assert_eq!(entry["pm_exec_path"], script.as_str());
    let mode = std::fs::metadata(home.dir.join("dump.pm2"))
        .expect("dump")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the dump holds env values: private");

    // A reboot: the daemon and the shell that had PORT are gone.
    home.ok(&["kill"]);
    let mut resurrect = home.command(&["resurrect"]);
    resurrect.env_remove("PORT");
    let out = run_with_deadline(resurrect, &["resurrect"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let pid = wait_until("web back", || home.online_pids("web", 1))[0];
    assert_eq!(env_of(pid, "PORT"), Some(port.to_string()));
    let body = wait_until("web serves on its port again", || http_get(port).ok());
    assert!(body.contains(&pid.to_string()), "{body}");

    // rcluster's list is a pm2 list: `import pm2` reads it too.
    let written = home.work().join("from-dump.json");
    home.ok(&[
        "import",
        "pm2",
        "--pm2-home",
        path_str(&home.dir),
        "--write",
        path_str(&written),
    ]);
    let apps = std::fs::read_to_string(&written).expect("converted");
    assert!(
        apps.contains("\"web\"") && apps.contains("whoami.py"),
        "{apps}"
    );
}

#[test]
fn the_backup_is_whole_and_a_damaged_list_falls_back_to_it() {
    let home = Home::new();
    home.ok(&["start", "sleep 1000", "--name", "first"]);
    home.ok(&["save"]);
    home.ok(&["start", "sleep 1000", "--name", "second"]);
    home.ok(&["save"]);
    let names = |value: &serde_json::Value| -> Vec<String> {
        let mut names: Vec<String> = value
            .as_array()
            .expect("a list")
            .iter()
            .filter_map(|e| e["name"].as_str().map(str::to_owned))
            .collect();
        names.dedup();
        names
    };
    assert_eq!(names(&dump(&home)), ["first", "second"]);
    let bak = std::fs::read_to_string(home.dir.join("dump.pm2.bak")).expect("a backup");
    let bak: serde_json::Value = serde_json::from_str(&bak).expect("a whole backup");
    assert_eq!(names(&bak), ["first"]);

    // What a save killed midway leaves is cleaned up by the next daemon.
    home.ok(&["kill"]);
    for stale in ["dump.pm2.tmp", "dump.pm2.bak.tmp"] {
        std::fs::write(home.dir.join(stale), "[{\"na").expect("a torn temp file");
    }
    home.ok(&["ping"]);
    for stale in ["dump.pm2.tmp", "dump.pm2.bak.tmp"] {
        assert!(!home.dir.join(stale).exists(), "{stale} was left behind");
    }

    // A torn list: resurrect reads the backup, says so, and leaves the damaged file.
    std::fs::write(home.dir.join("dump.pm2"), "[{\"name\": \"fir").expect("tear the list");
    let out = home.run(&["resurrect"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("damaged") && said.contains("dump.pm2.bak"),
        "{said}"
    );
    wait_until("first back", || home.online_pids("first", 1));
    assert!(home.app("second").is_empty());
    assert!(home.dir.join("dump.pm2").exists());
}

#[test]
fn the_list_of_an_earlier_rcluster_is_resurrected() {
    let home = Home::new();
    let legacy = serde_json::json!({
        "version": 1,
        "rcluster": "0.1.0",
        "apps": [{
            "name": "old",
            "command": {"kind": "exec", "program": "sleep", "args": ["1000"]},
            "cwd": path_str(&home.work()),
            "env": {"FROM": "dump.json"}
        }]
    });
    std::fs::write(home.dir.join("dump.json"), legacy.to_string()).expect("write dump.json");
    let out = home.run(&["resurrect"]);
    assert!(out.status.success(), "{}", home.report(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("earlier rcluster"),
        "{}",
        home.report(&out)
    );
    let pid = wait_until("old back", || home.online_pids("old", 1))[0];
    assert_eq!(env_of(pid, "FROM").as_deref(), Some("dump.json"));
    home.ok(&["save"]);
    assert_eq!(dump(&home)[0]["name"], "old");
}

#[test]
fn filter_env_in_a_file_keeps_the_shells_variables_out() {
    let home = Home::new();
    let file = home.work().join("ecosystem.yaml");
    std::fs::write(
        &file,
        "apps:\n  - name: some\n    script: sleep 1000\n    filter_env: [IT_SECRET]\n    env:\n      IT_SECRET_DECLARED: kept\n  - name: none\n    script: sleep 1000\n    filter_env: true\n",
    )
    .expect("write");
    let mut start = home.command(&["start", path_str(&file)]);
    start.env("IT_SECRET_TOKEN", "x").env("IT_PLAIN", "y");
    let out = run_with_deadline(start, &["start"]);
    assert!(out.status.success(), "{}", home.report(&out));
    let some = wait_until("some online", || home.online_pids("some", 1))[0];
    assert_eq!(env_of(some, "IT_SECRET_TOKEN"), None);
    assert_eq!(env_of(some, "IT_PLAIN").as_deref(), Some("y"));
    assert_eq!(
        env_of(some, "IT_SECRET_DECLARED").as_deref(),
        Some("kept"),
        "only the shell's variables are filtered, as in pm2"
    );
    let none = wait_until("none online", || home.online_pids("none", 1))[0];
    assert_eq!(env_of(none, "IT_PLAIN"), None);
    assert_eq!(env_of(none, "RCLUSTER_APP").as_deref(), Some("none"));
}
