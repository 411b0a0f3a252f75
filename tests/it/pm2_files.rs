//! Ecosystem files as pm2 users have them (issue #16, item 5; #17, item 11): unknown keys are
//! warnings and the apps start (`--strict` and `rcluster check` refuse them), pm2's aliases and
//! value forms (`cmd`, `pm2:`, camelCase keys, objects as env values), `static:` file servers,
//! source-mapped stack traces for transpiled Node apps, and files that are too deep, too large
//! or very long answered at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use rcluster::protocol::model::InstanceState;

use crate::ecosystem::{describe, env_of};
use crate::harness::{fixture, free_port, have, path_str, wait_until, Home};

/// An app that prints its environment's OBJ, ARR and NUM, then waits.
const PRINT_ENV: &str = "#!/bin/sh\necho \"OBJ=$OBJ ARR=$ARR NUM=$NUM\"\nexec sleep 1000\n";

#[test]
fn unknown_keys_are_warnings_and_strict_or_check_refuse_them() {
    let home = Home::new();
    home.write_script("app.sh", PRINT_ENV);
    // The file tried under pm2 7.0.4: it starts the app, prints nothing about `instancs`, and
    // the program sees {"x":1,"y":[1,2]} and [1,"b"].
    let file = home.work().join("eco.json");
    std::fs::write(
        &file,
        r#"{"apps":[{"name":"a1","script":"app.sh","instancs":2,"env":{"OBJ":{"x":1,"y":[1,2]},"ARR":[1,"b"],"NUM":3}}]}"#,
    )
    .expect("write file");
    let f = path_str(&file);

    let err = home.fails(&["check", f]);
    assert!(
        err.contains(&format!(
            "{f}:1:41: app \"a1\": unknown key `instancs`, did you mean `instances`?"
        )),
        "{err}"
    );
    let err = home.fails(&["start", f, "--strict"]);
    assert!(err.contains("unknown key `instancs`"), "{err}");
    assert!(err.contains("nothing was done"), "{err}");
    assert!(!home.socket().exists(), "refused before a daemon started");

    let out = home.run(&["start", f]);
    assert!(out.status.success(), "{}", home.report(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains(&format!(
            "[rcluster] warning: {f}:1:41: app \"a1\": unknown key `instancs`, did you mean `instances`? (ignored)"
        )),
        "{said}"
    );
    assert!(said.contains("--strict"), "{said}");
    let pid = wait_until("a1 online", || home.online_pids("a1", 1))[0];
    assert_eq!(env_of(pid, "OBJ").as_deref(), Some(r#"{"x":1,"y":[1,2]}"#));
    assert_eq!(env_of(pid, "ARR").as_deref(), Some(r#"[1,"b"]"#));
    assert_eq!(env_of(pid, "NUM").as_deref(), Some("3"));
    assert_eq!(home.app("a1").len(), 1, "the unknown key was ignored");

    // A wrong type of a known key still stops everything.
    let typed = home.work().join("typed.yaml");
    std::fs::write(
        &typed,
        "apps:\n  - name: b\n    script: app.sh\n    max_restarts: many\n    colour: blue\n",
    )
    .expect("write file");
    let err = home.fails(&["start", path_str(&typed)]);
    assert!(
        err.contains("`max_restarts`: expected a whole number"),
        "{err}"
    );
    assert!(err.contains("[rcluster] warning: "), "{err}");
    assert!(home.app("b").is_empty());
    let clean = home.work().join("clean.yaml");
    std::fs::write(&clean, "apps:\n  - name: c\n    script: app.sh\n").expect("write");
    let out = home.ok(&["check", path_str(&clean)]);
    assert!(out.contains("1 app(s), no problem: c"), "{out}");
}

#[test]
fn pm2_aliases_cmd_top_level_pm2_and_camel_case_keys() {
    let home = Home::new();
    home.write_script("app.sh", PRINT_ENV);
    let file = home.work().join("aliases.yaml");
    std::fs::write(
        &file,
        "pm2:\n  - name: by-cmd\n    cmd: app.sh\n    killTimeout: 2500\n    maxMemoryRestart: 300M\n  \
         - name: by-command\n    command: app.sh\n    env:\n      OBJ:\n        nested: [1, 2]\n",
    )
    .expect("write file");
    let out = home.run(&["start", path_str(&file)]);
    assert!(out.status.success(), "{}", home.report(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("warning"),
        "{}",
        home.report(&out)
    );
    wait_until("both online", || {
        home.online_pids("by-cmd", 1)
            .and(home.online_pids("by-command", 1))
    });
    let spec = describe(&home, "by-cmd").spec;
    assert_eq!(spec.kill_timeout_ms, 2500);
    assert_eq!(spec.max_memory_restart, Some(300 << 20));
    let pid = home.online_pids("by-command", 1).expect("online")[0];
    assert_eq!(env_of(pid, "OBJ").as_deref(), Some(r#"{"nested":[1,2]}"#));
}

/// One GET on a fresh connection: the status line and the body.
fn get(port: u16, path: &str, auth: Option<&str>) -> std::io::Result<(String, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let auth = auth
        .map(|a| format!("Authorization: Basic {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw)?;
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    Ok((status, body.to_owned()))
}

#[test]
fn static_entries_serve_folders_as_pm2_serve_blocks() {
    let home = Home::new();
    let work = home.work();
    for (dir, page) in [("public", "<h1>public</h1>"), ("admin", "<h1>admin</h1>")] {
        std::fs::create_dir_all(work.join(dir)).expect("mkdir");
        std::fs::write(work.join(dir).join("index.html"), page).expect("write");
    }
    let (open, guarded) = (free_port(), free_port());
    let file = work.join("static.yaml");
    std::fs::write(
        &file,
        format!(
            "static:\n  - path: ./public\n    port: {open}\n    host: 127.0.0.1\n    spa: true\n  \
             - name: admin\n    path: ./admin\n    port: {guarded}\n    host: 127.0.0.1\n    \
             basic_auth:\n      username: ops\n      password: s3cret\n    monitor: admin-app\n"
        ),
    )
    .expect("write file");
    let out = home.run(&["start", path_str(&file)]);
    assert!(out.status.success(), "{}", home.report(&out));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("`monitor` has no effect in rcluster"),
        "{said}"
    );
    // pm2's default name for a serve block.
    let default_name = format!("static-page-server-{open}");
    wait_until("both online", || {
        home.online_pids(&default_name, 1)
            .and(home.online_pids("admin", 1))
    });
    let (status, body) = wait_until("public served", || get(open, "/", None).ok());
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "<h1>public</h1>");
    // spa: an unknown path is the index page.
    let (status, body) = get(open, "/some/route", None).expect("spa fallback");
    assert!(
        status.contains("200") && body == "<h1>public</h1>",
        "{status} {body}"
    );
    let (status, _) = wait_until("admin answers", || get(guarded, "/", None).ok());
    assert!(status.contains("401"), "{status}");
    // "ops:s3cret" in base64.
    let (status, body) = get(guarded, "/", Some("b3BzOnMzY3JldA==")).expect("with auth");
    assert!(
        status.contains("200") && body == "<h1>admin</h1>",
        "{status} {body}"
    );
}

#[test]
fn node_apps_with_a_source_map_get_source_mapped_stack_traces() {
    if !have("node") {
        eprintln!("skipped: no node");
        return;
    }
    let home = Home::new();
    // A TypeScript app as tsc builds it: dist/app.js, dist/app.js.map pointing to src/app.ts.
    let work = home.work();
    for part in ["src/app.ts", "dist/app.js", "dist/app.js.map"] {
        let to = work.join(part);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(fixture(&format!("sourcemap/{part}")), &to).expect("copy");
    }
    let app = work.join("dist/app.js");
    home.ok(&["start", path_str(&app), "--name", "ts", "--no-autorestart"]);
    let log = wait_until("the stack trace", || {
        let log = home.read_log("ts-error.log");
        log.contains("at charge").then_some(log)
    });
    let source = work.join("src/app.ts");
    assert!(
        log.contains(&format!("at charge ({}:4:3)", source.display())),
        "{log}"
    );
    home.wait_status("ts", InstanceState::Stopped);
}

#[test]
fn deep_huge_and_long_files_are_answered_at_once() {
    let home = Home::new();
    let work = home.work();
    // 100,000 nested brackets (200 kB): was minutes of CPU before an error.
    let deep = work.join("deep.yaml");
    let brackets = format!("apps: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    std::fs::write(&deep, brackets).expect("write");
    let err = home.fails(&["check", path_str(&deep)]);
    assert!(
        err.contains("deep.yaml:1:134: lists and mappings nested more than 128 deep"),
        "{err}"
    );
    // 10 MiB: was "frame of 4294967295 bytes".
    let big = work.join("big.yaml");
    let mut text = String::from("apps:\n  - name: big\n    script: sleep\n    env:\n");
    let value = "x".repeat(200);
    let mut i = 0;
    while text.len() < 10 << 20 {
        text.push_str(&format!("      K{i}: \"{value}\"\n"));
        i += 1;
    }
    std::fs::write(&big, text).expect("write");
    let err = home.fails(&["start", path_str(&big)]);
    assert!(
        err.contains("big.yaml: the ecosystem file is too large (10 MiB, limit 4 MiB)"),
        "{err}"
    );
    assert!(!home.socket().exists(), "refused before a daemon started");
    // 10,000 apps in JSON: checking took 100 s (positions were found from the file's start).
    let long = work.join("long.json");
    let apps: Vec<String> = (0..10_000)
        .map(|i| format!(r#"{{"name":"app{i}","script":"sleep","args":"1000"}}"#))
        .collect();
    std::fs::write(&long, format!("{{\"apps\":[{}]}}", apps.join(","))).expect("write");
    let out = home.ok(&["check", path_str(&long)]);
    assert!(out.contains("10000 app(s), no problem"), "{out}");
}

#[test]
fn files_past_a_frame_start_in_several_requests() {
    let home = Home::new();
    // 1,500 apps added stopped, with 2.3 kB of env each: a 3.6 MB file, and one request of
    // 4.7 MB, past the 4 MiB frame (as 6,000 plain apps would be).
    let file = home.work().join("many.json");
    let value = "x".repeat(2_300);
    let apps: Vec<String> = (0..1_500)
        .map(|i| {
            format!(
                r#"{{"name":"app{i}","script":"sleep","args":"1000","autostart":false,"env":{{"BIG":"{value}"}}}}"#
            )
        })
        .collect();
    std::fs::write(&file, format!("{{\"apps\":[{}]}}", apps.join(","))).expect("write");
    let out = home.run(&["start", path_str(&file)]);
    assert!(out.status.success(), "{}", home.report(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("app11 and 1488 more"),
        "{}",
        home.report(&out)
    );
    // Asked of the daemon directly: the CLI's own target lookup lists every app, whose answer
    // at this count is past a frame too.
    let answer = crate::daemon::raw_request(
        &home,
        &rcluster::protocol::Request::Describe {
            target: rcluster::protocol::Target::Name("app1499".into()),
        },
    );
    match answer {
        Some(rcluster::protocol::Response::Apps { apps }) => {
            assert_eq!(apps.len(), 1);
            assert_eq!(apps[0].instances[0].status, InstanceState::Stopped);
        }
        other => panic!("app1499 is not there: {other:?}"),
    }
}
