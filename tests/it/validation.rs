//! One validation for every way into the daemon (issue #17, items 5, 7 and 12): a crafted
//! saved list, raw requests that skip the CLI, names that would spoof `list`, and the limits
//! of counts and durations, the same for flags, files, `scale` and the daemon.

use std::path::PathBuf;

use rcluster::protocol::model::{AppSpec, CommandSpec, InstanceState};
use rcluster::protocol::{ErrorKind, Request, Response, Target};
use serde_json::Value;

use crate::daemon::raw_request;
use crate::harness::{path_str, pid_alive, Home};

/// The saved list, whatever its name and format: the file `save` wrote in the home.
fn saved_list(home: &Home) -> PathBuf {
    let entries = std::fs::read_dir(&home.dir).expect("read home");
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| {
                n.starts_with("dump") && !n.ends_with(".bak") && !n.ends_with(".tmp")
            })
        })
        .collect();
    assert_eq!(found.len(), 1, "one saved list in the home: {found:?}");
    found.remove(0)
}

/// Every string equal to `from` becomes `to`; every `instances` inside an object that names
/// `huge` (or inside its children) becomes `count`.
fn craft(value: &mut Value, from: &str, to: &str, in_huge: bool, count: u64) {
    match value {
        Value::String(s) if s == from => *s = to.to_owned(),
        Value::Array(items) => {
            for item in items {
                craft(item, from, to, in_huge, count);
            }
        }
        Value::Object(map) => {
            let huge = in_huge || map.values().any(|v| v.as_str() == Some("huge"));
            for (key, item) in map.iter_mut() {
                if huge && key == "instances" && item.is_number() {
                    *item = Value::from(count);
                } else {
                    craft(item, from, to, huge, count);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn resurrect_refuses_a_crafted_saved_list_and_keeps_the_rest() {
    let home = Home::new();
    let talk = home.write_script("talk.sh", "#!/bin/sh\necho started\nexec sleep 1000\n");
    for name in ["keep", "victim", "huge"] {
        home.ok(&["start", path_str(&talk), "--name", name]);
    }
    home.ok(&["save"]);
    home.ok(&["kill"]);
    let path = saved_list(&home);
    let mut dump: Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read the saved list"))
            .expect("the saved list is JSON");
    craft(&mut dump, "victim", "../../evil", false, 4_000_000_000);
    std::fs::write(&path, serde_json::to_vec(&dump).expect("encode")).expect("write");
    // Where the app's log would go if its name were taken as given.
    let outside = home.dir.join("logs/../../evil-out.log");
    let _ = std::fs::remove_file(&outside);

    let err = home.fails(&["resurrect"]);
    assert!(
        err.contains("2 saved app(s) refused, 1 resurrected"),
        "{err}"
    );
    assert!(
        err.contains("app name \"../../evil\" may not contain path separators"),
        "{err}"
    );
    assert!(
        err.contains("4000000000 instances is too many (at most 1024)"),
        "{err}"
    );
    let daemon = home.daemon_pid().expect("the daemon runs");
    assert!(pid_alive(daemon));
    home.wait_status("keep", InstanceState::Online);
    crate::harness::wait_until("keep's line", || {
        home.read_log("keep-out.log")
            .contains("started")
            .then_some(())
    });
    assert_eq!(home.list().len(), 1, "only `keep` came back");
    assert!(!outside.exists(), "{} was written", outside.display());
    home.ok(&["ping"]);
}

fn sleeper(home: &Home, name: &str) -> AppSpec {
    AppSpec {
        name: name.into(),
        command: CommandSpec::Exec {
            program: "sleep".into(),
            args: vec!["1000".into()],
        },
        cwd: home.work(),
        ..AppSpec::default()
    }
}

fn refused(answer: Option<Response>) -> String {
    match answer {
        Some(Response::Error(e)) if e.kind == ErrorKind::InvalidSpec => e.message,
        other => panic!("expected an invalid-spec error, got {other:?}"),
    }
}

#[test]
fn raw_requests_get_the_same_validation_as_the_cli() {
    let home = Home::new();
    home.ok(&["ping"]);
    let start = |spec: AppSpec| Request::Start {
        apps: vec![spec],
        base_env: Default::default(),
        if_running: Default::default(),
    };
    let message = refused(raw_request(
        &home,
        &start(sleeper(&home, "abc\u{202e}gnp.exe")),
    ));
    assert!(
        message.contains("U+202E (a bidirectional control)"),
        "{message}"
    );
    let mut nul = sleeper(&home, "nul");
    nul.cwd = PathBuf::from("/tmp\0x");
    let message = refused(raw_request(&home, &start(nul)));
    assert!(
        message.contains("`cwd` contains a NUL character"),
        "{message}"
    );

    // A new definition brought by restart (an ecosystem file's) is checked as a start is.
    home.ok(&["start", "sleep 1000", "--name", "web"]);
    let mut bigger = sleeper(&home, "web");
    bigger.instances = 4_000_000_000;
    let message = refused(raw_request(
        &home,
        &Request::Restart {
            target: Target::Name("web".into()),
            apps: vec![bigger],
            base_env: None,
        },
    ));
    assert!(message.contains("at most 1024"), "{message}");
    let mut slow = sleeper(&home, "web");
    slow.listen_timeout_ms = u64::MAX;
    let message = refused(raw_request(
        &home,
        &Request::Reload {
            target: Target::Name("web".into()),
            apps: vec![slow],
            parallel: 1,
            base_env: None,
        },
    ));
    assert!(message.contains("`listen_timeout`"), "{message}");
    assert_eq!(home.app("web").len(), 1);
    assert_eq!(home.list().len(), 1, "nothing else was added");
}

#[test]
fn names_that_spoof_the_list_are_refused_with_the_rule() {
    let home = Home::new();
    for (name, why) in [
        ("abc\u{202e}gnp.exe", "U+202E (a bidirectional control)"),
        ("web\u{200b}", "U+200B (a zero-width character)"),
        ("   ", "leading, trailing or doubled spaces"),
        ("a\u{00a0}b", "whitespace other than a space"),
    ] {
        let err = home.fails(&["start", "sleep 1000", "--name", name]);
        assert!(err.contains(why), "{name:?}: {err}");
        assert!(err.contains("a name is printable text"), "{name:?}: {err}");
        let err = home.fails(&["start", "sleep 1000", "--name", "ok", "--namespace", name]);
        assert!(err.contains("namespace"), "{name:?}: {err}");
    }
    let file = home.work().join("spoof.yaml");
    std::fs::write(
        &file,
        "apps:\n  - name: \"abc\\u202egnp.exe\"\n    script: sleep\n    args: \"1000\"\n",
    )
    .expect("write file");
    let err = home.fails(&["start", path_str(&file)]);
    assert!(
        err.contains("spoof.yaml:2:11: app \"abc\\u{202e}gnp.exe\": `name`: app name"),
        "{err}"
    );
    assert!(!home.socket().exists(), "refused before a daemon started");
    home.ok(&["start", "sleep 1000", "--name", "my app"]);
    assert_eq!(home.app("my app").len(), 1);
}

#[test]
fn counts_and_durations_have_one_limit_everywhere() {
    let home = Home::new();
    let err = home.fails(&[
        "start",
        "sleep 1000",
        "--listen-timeout",
        "18446744073709551615",
    ]);
    assert!(
        err.contains("is too long a duration (at most 24h)"),
        "{err}"
    );
    let err = home.fails(&["start", "sleep 1000", "--kill-timeout", "25h"]);
    assert!(
        err.contains("--kill-timeout: `25h` is too long a duration (at most 24h)"),
        "{err}"
    );
    let err = home.fails(&["start", "sleep 1000", "-i", "1025"]);
    assert!(
        err.contains("1025 instances is too many (at most 1024)"),
        "{err}"
    );
    let err = home.fails(&["start", "sleep 1000", "--log-retain", "4000000000"]);
    assert!(err.contains("at most 1000"), "{err}");
    let file = home.work().join("limits.yaml");
    std::fs::write(
        &file,
        "apps:\n  - name: a\n    script: sleep\n    instances: 1025\n    kill_timeout: 86400001\n",
    )
    .expect("write file");
    let err = home.fails(&["start", path_str(&file)]);
    assert!(
        err.contains(
            "limits.yaml:4:16: app \"a\": `instances`: 1025 instances is too many (at most 1024)"
        ),
        "{err}"
    );
    assert!(err.contains("limits.yaml:5:19: app \"a\": `kill_timeout`: 86400001 ms is too long a duration (at most 24h"), "{err}");

    home.ok(&["start", "sleep 1000", "--name", "sc", "-i", "2"]);
    for (change, shown) in [
        (
            "+9223372036854775807",
            "scale +9223372036854775807: an app has 1 to 1024 instances",
        ),
        (
            "-9223372036854775808",
            "scale -9223372036854775808: an app has 1 to 1024 instances",
        ),
        ("1025", "scale 1025: an app has 1 to 1024 instances"),
        (
            "+1023",
            "cannot have 2 + 1023 instances: an app has 1 to 1024",
        ),
        ("-2", "cannot have 2 - 2 instances: an app has 1 to 1024"),
    ] {
        let err = home.fails(&["scale", "sc", change]);
        assert!(err.contains(shown), "{change}: {err}");
    }
    assert_eq!(home.app("sc").len(), 2);
}

#[test]
fn a_nul_in_script_or_cwd_is_named_as_such() {
    let home = Home::new();
    let file = home.work().join("nul.json");
    std::fs::write(
        &file,
        r#"{"apps": [{"name": "a", "script": "app\u0000.js"}, {"name": "b", "script": "sleep", "cwd": "/tmp\u0000x"}]}"#,
    )
    .expect("write file");
    let err = home.fails(&["start", path_str(&file)]);
    assert!(
        err.contains("app \"a\": `script`: contains a NUL character"),
        "{err}"
    );
    assert!(
        err.contains("app \"b\": `cwd`: contains a NUL character"),
        "{err}"
    );
    assert!(!err.contains("no such"), "{err}");
}
